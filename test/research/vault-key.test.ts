import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { keyFingerprint, parseKey } from '../../src/security/pseudonymize.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import {
  cli,
  failuresOf,
  FINGERPRINT,
  fingerprintRows,
  OTHER_KEY,
  PSEUDO_MODELS,
  PUBLISHED_MODELS,
  resultsOf,
  targetFiles,
  VAULT_NODE,
  withDuckFile,
  withEnv,
  withWarehouse,
} from '../support/research-fixture.ts';

/**
 * The vault key (issue 4, "Bad input"): a wrong or missing key is a clear TSF413 per practice,
 * and nothing is tokenized, pseudonymized or published with it; `tsform vault init` prints a
 * fingerprint, never the key, and is idempotent.
 */

const TEST_KEY = process.env.TSFORM_VAULT_KEY!;

/** Everything the key decides: the token map, the pseudonymized slices, the published relations. */
async function keyedState(dir: string): Promise<Record<string, string>> {
  return withWarehouse(dir, async (q) => {
    const state: Record<string, string> = { 'vault.person_tokens': await fingerprintRows(q, 'vault.person_tokens') };
    for (const m of PSEUDO_MODELS) state[`pseudo.${m}`] = await fingerprintRows(q, `pseudo.${m}`);
    for (const m of PUBLISHED_MODELS) state[`research.${m}`] = await fingerprintRows(q, `research.${m}`);
    return state;
  });
}

describe('a vault made with one key', () => {
  let demo: DemoCopy;
  let before: Record<string, string>;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(10) });
    const first = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(first)).toEqual([]);
    before = await keyedState(demo.dir);
    expect(Number(before['vault.person_tokens']!.split(':')[0])).toBeGreaterThan(0);
  }, 300_000);

  afterAll(() => demo?.remove());

  /** Every result of the vault node: one per practice, each TSF413 with `pattern`, none naming a key. */
  function expectVaultRefused(run: RunResults, pattern: RegExp): void {
    const vault = resultsOf(run, VAULT_NODE);
    expect(new Set(vault.map((r) => r.tenant))).toEqual(new Set(demo.tenantIds));
    expect(vault.filter((r) => r.status !== 'error' || r.code !== 'TSF413').map((r) => `${r.tenant}: ${r.status} ${r.code}`)).toEqual([]);
    for (const r of vault) {
      expect(r.message ?? '').toMatch(pattern);
      expect(r.message ?? '').not.toContain(TEST_KEY);
      expect(r.message ?? '').not.toContain(OTHER_KEY);
    }
  }

  it('refuses a different key: TSF413 for every practice, research skipped there, nothing rewritten', async () => {
    const run = await withEnv({ TSFORM_VAULT_KEY: OTHER_KEY }, () => runWorkspace({ projectDir: demo.dir, command: 'build' }));
    expect(process.env.TSFORM_VAULT_KEY).toBe(TEST_KEY);
    const stored = keyFingerprint(parseKey(TEST_KEY));
    const offered = keyFingerprint(parseKey(OTHER_KEY));
    expectVaultRefused(run, new RegExp(`wrong vault key: the vault was created with ${stored}, this key is ${offered}`));
    // Every pseudonymized model of every practice is skipped, not built from another key's tokens.
    for (const m of PSEUDO_MODELS) {
      const results = resultsOf(run, m);
      expect(new Set(results.map((r) => r.tenant)), m).toEqual(new Set(demo.tenantIds));
      expect(results.filter((r) => r.status !== 'skipped' || r.code !== 'TSF405').map((r) => `${r.tenant}: ${r.status} ${r.code}`), m).toEqual([]);
    }
    // The identifiable path of the practices is not held hostage by the vault.
    expect(resultsOf(run, 'stg_patients').every((r) => r.status === 'success')).toBe(true);
    // Published relations read every practice as last built (fan-in use_last_good): the old tokens.
    for (const m of PUBLISHED_MODELS) {
      const [r] = resultsOf(run, m);
      expect(r?.status, m).toBe('success');
      expect(new Set(r?.stale_tenants), m).toEqual(new Set(demo.tenantIds));
    }
    // Nothing was rewritten: the vault kept its tokens, the pseudonymized and published rows are the same.
    expect(await keyedState(demo.dir)).toEqual(before);
  });

  it('refuses to run without the key when the vault keeps only its fingerprint', async () => {
    const run = await withEnv({ TSFORM_VAULT_KEY: undefined }, () => runWorkspace({ projectDir: demo.dir, command: 'run', select: [`${VAULT_NODE}+`] }));
    expectVaultRefused(run, /the vault key lives outside the vault: set \$TSFORM_VAULT_KEY/);
    expect(await keyedState(demo.dir)).toEqual(before);
  });

  it('refuses a malformed key without echoing it', async () => {
    const malformed = 'not-a-key-0123';
    const run = await withEnv({ TSFORM_VAULT_KEY: malformed }, () => runWorkspace({ projectDir: demo.dir, command: 'run', select: [VAULT_NODE] }));
    expectVaultRefused(run, /TSFORM_VAULT_KEY is not a valid key/);
    expect(resultsOf(run, VAULT_NODE).some((r) => (r.message ?? '').includes(malformed))).toBe(false);
    expect(await keyedState(demo.dir)).toEqual(before);
  });

  it('builds again, unchanged, with the right key', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
    expect(failuresOf(run)).toEqual([]);
    expect(await keyedState(demo.dir)).toEqual(before);
  });
});

describe('tsform vault init', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
  });
  afterAll(() => demo?.remove());

  const keysOf = (dir: string) =>
    withDuckFile(targetFiles(dir).vault, (q) => q(`SELECT fingerprint, key_hex FROM keys`)).then((rows) =>
      rows.map((r) => ({ fingerprint: String(r.fingerprint), keyHex: r.key_hex === null ? null : String(r.key_hex) })),
    );

  it('records the fingerprint of $TSFORM_VAULT_KEY, prints only that, and is idempotent', async () => {
    const expected = keyFingerprint(parseKey(TEST_KEY));
    const first = await cli(['vault', 'init', '--project-dir', demo.dir]);
    expect(first.code).toBe(0);
    const text = first.lines.join('\n');
    expect(text.match(new RegExp(FINGERPRINT.source, 'g'))).toEqual([expected]);
    expect(text).not.toContain(TEST_KEY);
    expect(text.toLowerCase()).not.toContain(TEST_KEY.slice(0, 16));
    expect(first.lines).toEqual([`vault key ${expected} created (from $TSFORM_VAULT_KEY; the vault keeps only its fingerprint)`]);
    expect(await keysOf(demo.dir)).toEqual([{ fingerprint: expected, keyHex: null }]);

    const again = await cli(['vault', 'init', '--project-dir', demo.dir]);
    expect(again.code).toBe(0);
    expect(again.lines).toEqual([`vault already has key ${expected}; nothing changed`]);
    expect(await keysOf(demo.dir)).toEqual([{ fingerprint: expected, keyHex: null }]);
  });

  it('refuses a different $TSFORM_VAULT_KEY for an existing vault (TSF413, exit 2), printing no key', async () => {
    const r = await withEnv({ TSFORM_VAULT_KEY: OTHER_KEY }, () => cli(['vault', 'init', '--project-dir', demo.dir]));
    expect(r.code).toBe(2);
    expect(r.lines.join('\n')).not.toContain(OTHER_KEY);
    expect((await keysOf(demo.dir)).length).toBe(1);
  });

  it('without $TSFORM_VAULT_KEY, creates a key kept in the vault only and never prints it', async () => {
    const fresh = copyDemoProject({ tenants: sampleTenants(2) });
    try {
      const first = await withEnv({ TSFORM_VAULT_KEY: undefined }, () => cli(['vault', 'init', '--project-dir', fresh.dir]));
      expect(first.code).toBe(0);
      const [key] = await keysOf(fresh.dir);
      expect(key?.keyHex ?? '').toMatch(/^[0-9a-f]{64}$/);
      expect(key!.fingerprint).toBe(keyFingerprint(Buffer.from(key!.keyHex!, 'hex')));
      expect(first.lines).toEqual([`vault key ${key!.fingerprint} created (kept in the vault only)`]);
      expect(first.lines.join('\n').includes(key!.keyHex!)).toBe(false);

      const again = await withEnv({ TSFORM_VAULT_KEY: undefined }, () => cli(['vault', 'init', '--project-dir', fresh.dir]));
      expect(again.code).toBe(0);
      expect(again.lines).toEqual([`vault already has key ${key!.fingerprint}; nothing changed`]);
      expect(again.lines.join('\n').includes(key!.keyHex!)).toBe(false);
      expect(await keysOf(fresh.dir)).toEqual([key]);
    } finally {
      fresh.remove();
    }
  });
});
