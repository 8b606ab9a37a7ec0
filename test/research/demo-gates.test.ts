import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { practicePatientIdentity } from '../../scripts/prepare-demo-data.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import {
  cli,
  failuresOf,
  filesContaining,
  fingerprintRows,
  leakScanOf,
  num,
  onlyResult,
  PSEUDO_MODELS,
  PUBLISHED_MODELS,
  relationsOf,
  resultsOf,
  scalar,
  sha256,
  SQL_PERSON_TOKEN,
  syntheaPatientIds,
  targetFiles,
  VAULT_NODE,
  withDuckFile,
  withEnv,
  withWarehouse,
  type Query,
} from '../support/research-fixture.ts';

/**
 * Issue 4 on the demo data, every practice (a person's records are spread over many of the 221
 * practices, so linkage needs them all): one build, then the gates, the files, linkage and the
 * audited way back. Nothing identifying is printed: counts, booleans and hashes only.
 */

const K = 11;
/** Column names that must never be in the research file. */
const IDENTIFYING_COLUMN = /patient_id|practice_id|mrn|ssn|first_name|last_name|middle_name|maiden_name|birth_date|death_date|address|drivers|passport|phone|email|^name$/;

let demo: DemoCopy;
let run: RunResults;

beforeAll(async () => {
  demo = copyDemoProject();
  run = await runWorkspace({ projectDir: demo.dir, command: 'build' });
}, 600_000);

afterAll(() => demo?.remove());

describe('the privacy gates on the demo data', () => {
  it('pass: every node succeeds, the vault node per practice, the research models, and privacy:leak_scan', () => {
    expect(failuresOf(run)).toEqual([]);
    const tenants = demo.tenantIds;
    expect(tenants.length).toBe(221);
    // The vault node and every pseudonymized model ran for every practice.
    for (const model of [VAULT_NODE, ...PSEUDO_MODELS]) {
      expect(new Set(resultsOf(run, model).map((r) => r.tenant)), model).toEqual(new Set(tenants));
    }
    for (const model of PUBLISHED_MODELS) expect(onlyResult(run, model).status, model).toBe('success');
    const scan = leakScanOf(run)!;
    expect(scan.status).toBe('success');
    expect(scan.rows).toBe(0);
    expect(scan.message).toBeNull();
  });

  it('publishes condition prevalence with no cell below k (suppressed cells have no row)', async () => {
    await withWarehouse(demo.dir, async (q) => {
      const rows = await q(
        `SELECT count(*) AS n, count(*) FILTER (WHERE persons IS NULL OR persons < ${K}) AS small FROM research.research_condition_prevalence`,
      );
      expect(num(rows[0]!.n)).toBeGreaterThan(0);
      expect(num(rows[0]!.small)).toBe(0);
      const columns = await q(`SELECT column_name FROM duckdb_columns() WHERE database_name = 'research' AND table_name = 'research_condition_prevalence' ORDER BY column_index`);
      expect(columns.map((c) => c.column_name)).toEqual(['age_group', 'sex', 'condition_code', 'condition_description', 'persons']);
    });
  });

  it('publishes the diabetes cohort as an aggregate: bands and persons, no token, no cell below k', async () => {
    await withWarehouse(demo.dir, async (q) => {
      const columns = await q(`SELECT column_name FROM duckdb_columns() WHERE database_name = 'research' AND table_name = 'research_diabetes_cohort' ORDER BY column_index`);
      expect(columns.map((c) => c.column_name)).toEqual(['practices_band', 'encounters_band', 'persons']);
      const [r] = await q(`SELECT count(*) AS n, count(*) FILTER (WHERE persons IS NULL OR persons < ${K}) AS small FROM research.research_diabetes_cohort`);
      expect(num(r!.n)).toBeGreaterThan(0);
      expect(num(r!.small)).toBe(0);
    });
  });
});

describe('tsform privacy check on the demo data', () => {
  it('passes lineage, k-anonymity of every published relation and the leak scan (exit 0)', async () => {
    const { code, lines } = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    expect(code).toBe(0);
    expect(lines.filter((l) => l.startsWith('lineage: '))).toHaveLength(1);
    const k = lines.filter((l) => l.startsWith('k-anonymity: '));
    expect(k.map((l) => l.split(' ')[1]).sort()).toEqual([...PUBLISHED_MODELS].sort());
    for (const l of k) expect(l).toMatch(/^k-anonymity: \w+ ok \(k=11, smallest cell \d+, \d+ suppressed cells: \d+ below k, \d+ complementary; \d+ rows published\)$/);
    expect(lines.at(-1)).toBe('leak scan: no raw identifier in any pseudonymized relation');
  });
});

describe('the database files', () => {
  it('research.duckdb holds only research_* relations and no identifying column', async () => {
    await withDuckFile(targetFiles(demo.dir).research, async (q) => {
      const db = String(await scalar(q, 'SELECT current_database()'));
      const rels = await relationsOf(q, db);
      expect(rels.length).toBeGreaterThan(0);
      expect(rels.filter((r) => !/^main\.research_/.test(r))).toEqual([]);
      expect(rels).toEqual(expect.arrayContaining(PUBLISHED_MODELS.map((m) => `main.${m}`)));
      const columns = await q(`SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = '${db}'`);
      expect(columns.length).toBeGreaterThan(0);
      expect(columns.filter((c) => IDENTIFYING_COLUMN.test(String(c.column_name))).map((c) => `${c.table_name}.${c.column_name}`)).toEqual([]);
      const schemas = await q(`SELECT schema_name FROM duckdb_schemas() WHERE database_name = '${db}' AND schema_name NOT IN ('information_schema', 'pg_catalog')`);
      expect(schemas.map((s) => s.schema_name)).toEqual(['main']);
    });
  });

  it('vault.duckdb holds the token map and the key fingerprint; the main file holds neither research nor vault', async () => {
    const f = targetFiles(demo.dir);
    await withDuckFile(f.vault, async (q) => {
      const db = String(await scalar(q, 'SELECT current_database()'));
      const rels = await relationsOf(q, db);
      // linkage_*: the match keys (hashes only; linkage_keys holds the same, one row per value), their settings and the resolution counts (issue 17)
      const vaultTables = ['main.keys', 'main.person_tokens', 'main.linkage_records', 'main.linkage_keys', 'main.linkage_config', 'main.linkage_events'];
      expect(rels).toEqual(expect.arrayContaining(vaultTables));
      expect(rels.filter((r) => ![...vaultTables, 'main.reidentification_audit'].includes(r))).toEqual([]);
      const [keys] = await q(`SELECT count(*) AS n, count(key_hex) AS stored_keys, min(fingerprint) AS fp FROM keys`);
      expect(num(keys!.n)).toBe(1);
      // The key came from $TSFORM_VAULT_KEY: the vault keeps its fingerprint, not the key.
      expect(num(keys!.stored_keys)).toBe(0);
      const [tokens] = await q(
        `SELECT count(*) AS n, count(DISTINCT (practice_id, patient_id)) AS records, count(*) FILTER (WHERE key_fingerprint <> '${String(keys!.fp)}') AS other_key,
                count(*) FILTER (WHERE NOT regexp_full_match(person_token, '${SQL_PERSON_TOKEN}')) AS malformed,
                count(*) FILTER (WHERE date_shift_days = 0) AS unshifted
           FROM person_tokens`,
      );
      expect(num(tokens!.n)).toBeGreaterThan(0);
      expect(num(tokens!.records)).toBe(num(tokens!.n));
      expect(num(tokens!.other_key)).toBe(0);
      expect(num(tokens!.malformed)).toBe(0);
      expect(num(tokens!.unshifted)).toBe(0);
    });
    await withWarehouse(demo.dir, async (q) => {
      // One vault row per patient record of the identity model.
      const patients = await scalar(q, 'SELECT count(*) FROM staging.stg_patients');
      const vaultRows = await scalar(q, 'SELECT count(*) FROM vault.person_tokens');
      expect(num(vaultRows)).toBe(num(patients));
      const main = await relationsOf(q, 'tsform');
      expect(main.filter((r) => /^(research|vault)\./.test(r) || /\.(research_|person_tokens$|keys$|reidentification_audit$)/.test(r))).toEqual([]);
      // Only the pseudonymized per-practice models live in the main file's `pseudo` schema.
      expect(main.filter((r) => r.startsWith('pseudo.'))).toEqual(PSEUDO_MODELS.map((m) => `pseudo.${m}`).sort());
    });
  });

  it('never writes the vault key to target/ (not even to the vault file)', () => {
    const key = process.env.TSFORM_VAULT_KEY!;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const target = join(demo.dir, 'target');
    expect(filesContaining(target, key)).toEqual([]);
    expect(filesContaining(target, key.toUpperCase())).toEqual([]);
  });
});

describe('linkage in the warehouse', () => {
  it('gives a person seen at several practices one token and two persons never the same token (Synthea ground truth)', async () => {
    const records = await withWarehouse(demo.dir, (q) => q(`SELECT practice_id, patient_id, person_token FROM vault.person_tokens`));
    // (practice, patient id) -> Synthea person, with the demo data's own derivation of patient ids.
    const personOf = new Map<string, string>();
    const practices = [...new Set(records.map((r) => String(r.practice_id)))];
    for (const syntheaId of syntheaPatientIds()) {
      for (const practice of practices) personOf.set(`${practice}|${practicePatientIdentity(practice, syntheaId).patientId}`, syntheaId);
    }
    const tokensOf = new Map<string, Set<string>>();
    const practicesOf = new Map<string, Set<string>>();
    const personsOf = new Map<string, Set<string>>();
    let unmatched = 0;
    for (const r of records) {
      const person = personOf.get(`${r.practice_id}|${r.patient_id}`);
      if (person === undefined) {
        unmatched++;
        continue;
      }
      const token = String(r.person_token);
      (tokensOf.get(person) ?? tokensOf.set(person, new Set()).get(person)!).add(token);
      (practicesOf.get(person) ?? practicesOf.set(person, new Set()).get(person)!).add(String(r.practice_id));
      (personsOf.get(token) ?? personsOf.set(token, new Set()).get(token)!).add(person);
    }
    expect(unmatched).toBe(0);
    const multi = [...practicesOf].filter(([, p]) => p.size >= 2).map(([person]) => person);
    const linked = multi.filter((person) => tokensOf.get(person)!.size === 1);
    const falseMerges = [...personsOf.values()].filter((s) => s.size > 1).length;
    expect(multi.length).toBeGreaterThan(50);
    expect({ multiPractice: multi.length, singleToken: linked.length, falseMerges }).toEqual({ multiPractice: multi.length, singleToken: multi.length, falseMerges: 0 });
    expect(personsOf.size).toBe(tokensOf.size);
  });

  it('agrees with the identity columns, compared inside DuckDB', async () => {
    await withWarehouse(demo.dir, async (q) => {
      const identity = `(p.first_name, p.last_name, p.birth_date, p.sex, p.ssn)`;
      const [r] = await q(
        `WITH linked AS (
           SELECT v.person_token, v.practice_id, ${identity} AS ident, p.ssn
             FROM vault.person_tokens v JOIN staging.stg_patients p ON p.practice_id = v.practice_id AND p.patient_id = v.patient_id)
         SELECT (SELECT count(*) FROM vault.person_tokens) AS vault_rows,
                (SELECT count(*) FROM linked) AS joined,
                (SELECT count(*) FROM (SELECT ident FROM linked GROUP BY ident HAVING count(DISTINCT practice_id) > 1)) AS multi_practice,
                (SELECT count(*) FROM (SELECT ident FROM linked GROUP BY ident HAVING count(DISTINCT person_token) <> 1)) AS split,
                (SELECT count(*) FROM (SELECT person_token FROM linked GROUP BY person_token HAVING count(DISTINCT ident) <> 1)) AS merged,
                (SELECT count(DISTINCT ident) FROM linked) AS identities,
                (SELECT count(DISTINCT ssn) FROM linked) AS ssns`,
      );
      expect(num(r!.joined)).toBe(num(r!.vault_rows));
      expect(num(r!.multi_practice)).toBeGreaterThan(0);
      expect(num(r!.split)).toBe(0);
      expect(num(r!.merged)).toBe(0);
      // In Synthea an SSN is a person: the identity tuple is neither finer nor coarser.
      expect(num(r!.identities)).toBe(num(r!.ssns));
    });
  });
});

describe('tsform reidentify (DuckDB)', () => {
  const CLAIMED = 'research-test-steward';
  // The audit names the operating-system user; $TSFORM_ACTOR is only recorded as a claim beside it.
  const ACTOR = `${userInfo().username} (claims "${CLAIMED}")`;
  const reidentify = (token: string, reason: string) =>
    withEnv({ TSFORM_ACTOR: CLAIMED }, () => cli(['reidentify', '--project-dir', demo.dir, '--token', token, '--reason', reason]));

  interface AuditRow {
    actor: string;
    reason: string;
    token: string;
    records_found: number;
    /** When, in epoch milliseconds. */
    at: number;
  }
  const auditRows = (): Promise<AuditRow[]> =>
    withDuckFile(targetFiles(demo.dir).vault, async (q: Query) => {
      const rels = await relationsOf(q, String(await scalar(q, 'SELECT current_database()')));
      if (!rels.includes('main.reidentification_audit')) return [];
      const rows = await q(`SELECT actor, reason, token, records_found, epoch_ms("at") AS at_ms FROM reidentification_audit ORDER BY "at"`);
      return rows.map((r) => ({ actor: String(r.actor), reason: String(r.reason), token: String(r.token), records_found: num(r.records_found), at: num(r.at_ms) }));
    });

  it('returns the practice records of a real token, audited once with actor, reason, token and records found', async () => {
    const { token, records, vaultRows } = await withWarehouse(demo.dir, async (q) => {
      // The person seen at the most practices.
      const [c] = await q(`SELECT person_token FROM pseudo.pseudo_encounters GROUP BY 1 ORDER BY count(DISTINCT practice_token) DESC, person_token LIMIT 1`);
      const t = String(c!.person_token);
      const rows = await q(`SELECT practice_id || chr(9) || patient_id AS line FROM vault.person_tokens WHERE person_token = '${t}' ORDER BY 1`);
      return { token: t, records: rows.map((r) => String(r.line)), vaultRows: rows.length };
    });
    expect(vaultRows).toBeGreaterThanOrEqual(2);
    const before = await auditRows();
    const reason = 'audit test: cohort follow-up';
    const startedAt = Date.now();
    const { code, lines } = await reidentify(token, reason);
    const endedAt = Date.now();
    expect(code).toBe(0);
    const recordLines = lines.filter((l) => /^p_[a-z0-9_]+\t\S+$/.test(l));
    expect(recordLines.length).toBe(vaultRows);
    // Same records as the vault holds, compared by hash (the lines are identifying).
    expect(sha256([...recordLines].sort().join('\n'))).toBe(sha256(records.join('\n')));
    expect(lines.length).toBe(vaultRows + 1);
    // Compared as a boolean: a failing diff must not print a record line.
    expect(lines.at(-1) === `${vaultRows} record(s); audited as ${ACTOR}`).toBe(true);

    const after = await auditRows();
    expect(after.length).toBe(before.length + 1);
    const row = after.at(-1)!;
    expect({ actor: row.actor, reason: row.reason, token: row.token === token, records_found: row.records_found }).toEqual({
      actor: ACTOR,
      reason,
      token: true,
      records_found: vaultRows,
    });
    // stamped by the command's clock (the system clock, as this test reads it) while it ran
    expect(row.at).toBeGreaterThanOrEqual(startedAt);
    expect(row.at).toBeLessThanOrEqual(endedAt);
  });

  it('refuses a token that does not exist with a clear message, and audits the attempt', async () => {
    const before = await auditRows();
    const unknown = `pt_${'0'.repeat(64)}`;
    const { code, lines } = await reidentify(unknown, 'audit test: probing an unknown token');
    expect(code).toBe(1);
    expect(lines).toEqual([`no person has token ${unknown}; the attempt was audited as ${ACTOR}`]);
    const after = await auditRows();
    expect(after.length).toBe(before.length + 1);
    expect(after.at(-1)).toMatchObject({ actor: ACTOR, reason: 'audit test: probing an unknown token', token: unknown, records_found: 0 });

    // A malformed token is looked up nowhere, and audited too.
    const malformed = await reidentify('not-a-token', 'audit test: malformed token');
    expect(malformed.code).toBe(1);
    const last = await auditRows();
    expect(last.length).toBe(before.length + 2);
    expect(last.at(-1)).toMatchObject({ actor: ACTOR, token: 'not-a-token', records_found: 0 });
  });

  it('refuses a reason shorter than 8 characters with exit code 2 and reveals nothing', async () => {
    const token = String(await withWarehouse(demo.dir, (q) => scalar(q, 'SELECT min(person_token) FROM pseudo.pseudo_persons')));
    const before = await auditRows();
    const { code, lines } = await reidentify(token, 'why');
    expect(code).toBe(2);
    expect(lines.length).toBe(0);
    // Current contract: the request is refused before any lookup, so there is nothing to audit.
    expect((await auditRows()).length).toBe(before.length);
  });

  it('leaves the research file untouched by re-identification', async () => {
    const f = targetFiles(demo.dir);
    const rels = await withDuckFile(f.research, async (q) => relationsOf(q, String(await scalar(q, 'SELECT current_database()'))));
    expect(rels.filter((r) => r.includes('audit'))).toEqual([]);
    // And the published relations are still there, unchanged in shape.
    await withWarehouse(demo.dir, async (q) => {
      for (const m of PUBLISHED_MODELS) expect(await fingerprintRows(q, `research.${m}`)).toMatch(/^\d+:/);
    });
  });
});
