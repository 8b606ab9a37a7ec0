import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upgradeManifest } from '../../src/artifacts/upgrade-manifest.ts';
import { readStateManifest } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { modifiedNodes } from '../../src/graph/state.ts';
import { compileDir, REPO_ROOT } from '../fixtures/project-fixture.ts';

/** The demo manifest as tsform wrote it before schema version 2 (tenants and vault among the seeds). */
function asVersion1(): unknown {
  const { manifest } = compileDir(REPO_ROOT);
  const seeds: Record<string, unknown> = { ...manifest.seeds };
  for (const [name, node] of Object.entries(manifest.builtins)) {
    const { identity_model: _gone, ...rest } = node as typeof node & { identity_model?: string };
    seeds[name] = rest;
  }
  const { builtins: _b, ...rest } = manifest;
  return JSON.parse(JSON.stringify({ ...rest, schema_version: 1, seeds }));
}

describe('manifest schema versions', () => {
  it('a version-1 manifest (production state saved before the upgrade) reads as the current one, with nothing modified', () => {
    const { manifest } = compileDir(REPO_ROOT);
    const upgraded = upgradeManifest(asVersion1())!;
    expect(upgraded).toEqual(JSON.parse(JSON.stringify(manifest)));
    expect([...modifiedNodes(manifest, upgraded)]).toEqual([]);
  });

  it('--state reads a version-1 manifest from disk and refuses an unknown version with TSF221', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsform-state-'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(asVersion1()));
    expect(readStateManifest(dir).schema_version).toBe(2);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...(asVersion1() as object), schema_version: 9 }));
    expect(() => readStateManifest(dir)).toThrow(expect.objectContaining({ code: Codes.stateManifest, message: expect.stringContaining('schema_version 9') }));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ schema_version: 2 }));
    expect(() => readStateManifest(dir)).toThrow(expect.objectContaining({ code: Codes.stateManifest }));
  });
});
