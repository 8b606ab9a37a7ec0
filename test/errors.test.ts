import { describe, expect, it } from 'vitest';
import { backfillWorkspace } from '../src/cli/backfill.ts';
import { Codes } from '../src/errors.ts';
import { safeType } from '../src/warehouse/load-csv.ts';
import { resolveSpec } from '../src/ingest/capture-spec.ts';

/**
 * Settings refused at run time carry their own codes: TSF418 for a project setting compile does
 * not see, TSF305 for a bad `--from`/`--to`. TSF205 stays the compile-time code of a model's config.
 */
describe('codes of settings refused at run time', () => {
  it('a seed column type that is not a plain SQL type name is TSF418', () => {
    expect(safeType(' numeric(10, 2) ')).toBe('numeric(10, 2)');
    expect(() => safeType('int); drop table x; --')).toThrow(expect.objectContaining({ code: Codes.invalidRunSetting }));
  });

  it('a capture without a key column is TSF418', () => {
    expect(() => resolveSpec({ table: 'claims', key: [], tenantColumn: 'practice_id' })).toThrow(expect.objectContaining({ code: 'TSF418' }));
  });

  it('a backfill --from that is not an ISO date is TSF305, before anything is read', async () => {
    await expect(backfillWorkspace({ projectDir: '/nonexistent', tenants: ['p1'], from: 'yesterday' })).rejects.toMatchObject({ code: 'TSF305' });
  });
});

describe('Codes', () => {
  it('never gives one code two names', () => {
    const byCode = new Map<string, string[]>();
    for (const [name, code] of Object.entries(Codes)) byCode.set(code, [...(byCode.get(code) ?? []), name]);
    expect([...byCode].filter(([, names]) => names.length > 1)).toEqual([]);
  });
});
