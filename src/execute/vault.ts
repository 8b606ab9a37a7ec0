import type { Adapter, Session } from '../adapters/adapter.ts';
import type { ManifestNode } from '../artifacts/manifest.ts';
import type { Clock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PrivacyConfig } from '../project/types.ts';
import { generateKey, keyFingerprint, parseKey } from '../security/pseudonymize.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { ensureVaultTable, VAULT_KEYS } from '../warehouse/vault-tables.ts';
import type { RowsByTenant } from './slice-replace.ts';
import { resolveLinkage, type IdentityRow, type LinkageSummary } from './vault-linkage.ts';

const KEYS_TABLE = VAULT_KEYS.name;

export interface VaultContext {
  adapter: Adapter;
  vaultSchema: string;
  privacy: PrivacyConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** Stamps the key's creation. */
  clock: Clock;
}

/**
 * `tsform vault init`: creates the key in the vault, or records the fingerprint of the key
 * supplied through the environment. Returns the fingerprint only: the key is never printed.
 */
export async function initVault(v: VaultContext): Promise<{ fingerprint: string; created: boolean; source: 'vault' | 'env' }> {
  // A collision with a process that creates the vault schema for another reason (a run's
  // schemas) is transient; the settle below is idempotent, so it is simply run again.
  return settleKey(v).catch((err: unknown) => (v.adapter.classifyError(err) === 'transient' ? settleKey(v) : Promise.reject(err)));
}

async function settleKey(v: VaultContext): Promise<{ fingerprint: string; created: boolean; source: 'vault' | 'env' }> {
  const table = quoteRelation(v.vaultSchema, KEYS_TABLE);
  const fromEnv = v.env[v.privacy.keyEnv];
  const source = fromEnv ? 'env' : 'vault';
  // DuckDB: one process holds its file, so nobody creates these beside us.
  if (v.adapter.kind !== 'postgres') {
    await v.adapter.ensureSchema(v.vaultSchema);
    await ensureVaultTable(v.adapter, v.vaultSchema, VAULT_KEYS);
  }
  return v.adapter.transaction(async (s) => {
    if (v.adapter.kind === 'postgres') {
      // Several processes may settle the key at once (distributed workers, two CI jobs). One at
      // a time, from the schema on: two `CREATE ... IF NOT EXISTS` at once still collide in the
      // catalog ("relation already exists", seen in CI), and two key reads at once would each
      // find no key and write their own. The second process then finds the first one's key.
      await s.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tsform.vault', v.vaultSchema]);
      await s.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(v.vaultSchema)}`);
      await ensureVaultTable(s, v.vaultSchema, VAULT_KEYS);
    }
    const { rows } = await s.query(`SELECT fingerprint FROM ${table}`);
    if (rows.length > 0) {
      const fingerprint = String(rows[0]!.fingerprint);
      if (fromEnv && keyFingerprint(parseKey(fromEnv)) !== fingerprint) {
        throw new TsformError(Codes.vaultKey, `$${v.privacy.keyEnv} holds a different key than the vault (vault key ${fingerprint}); refusing to mix keys`);
      }
      return { fingerprint, created: false, source };
    }
    const key = fromEnv ? parseKey(fromEnv) : generateKey();
    const fingerprint = keyFingerprint(key);
    // A key from the environment stays there: the vault keeps only its fingerprint.
    const row = [fingerprint, fromEnv ? null : key.toString('hex'), v.clock.now().toISOString()];
    // PostgreSQL: COPY FROM STDIN. Its data travels in CopyData messages, which no statement
    // log records (log_statement=all logs the COPY statement; a bound parameter would be logged
    // with it, as "DETAIL: parameters: $2 = '<key>'"). DuckDB has no server and no statement
    // log: the value is bound and lands in the vault file, whose permissions are the control.
    if (s.copyInText) {
      await s.copyInText(v.vaultSchema, KEYS_TABLE, ['fingerprint', 'key_hex', 'created_at'], copyTextRow(row));
    } else {
      await s.query(`INSERT INTO ${table} (fingerprint, key_hex, created_at) VALUES ($1, $2, CAST($3 AS TIMESTAMPTZ))`, row);
    }
    return { fingerprint, created: true, source };
  });
}

/** One row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes. */
async function* copyTextRow(values: readonly (string | null)[]): AsyncGenerator<Buffer> {
  const field = (v: string | null) =>
    v === null ? '\\N' : v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);
  yield Buffer.from(`${values.map(field).join('\t')}\n`, 'utf8');
}

/** The fingerprint of the vault's key, or undefined when the vault has none yet (nothing is created). */
export async function storedVaultFingerprint(adapter: Adapter, vaultSchema: string): Promise<string | undefined> {
  if (!(await adapter.describe(vaultSchema, KEYS_TABLE))) return undefined;
  const { rows } = await adapter.query(`SELECT fingerprint FROM ${quoteRelation(vaultSchema, KEYS_TABLE)}`);
  return rows.length > 0 ? String(rows[0]!.fingerprint) : undefined;
}

/** The key to tokenize with; a missing key or one that differs from the vault's is an error. */
export async function resolveVaultKey(v: VaultContext): Promise<{ key: Buffer; fingerprint: string }> {
  const described = await v.adapter.describe(v.vaultSchema, KEYS_TABLE);
  const rows = described ? (await v.adapter.query(`SELECT fingerprint, key_hex FROM ${quoteRelation(v.vaultSchema, KEYS_TABLE)}`)).rows : [];
  const fromEnv = v.env[v.privacy.keyEnv];
  if (rows.length === 0) {
    if (!fromEnv) throw new TsformError(Codes.vaultKey, `the vault has no key: run \`tsform vault init\` first (or set $${v.privacy.keyEnv})`);
    // A key supplied by the environment: the vault records its fingerprint on first use.
    await initVault(v);
    return resolveVaultKey(v);
  }
  const stored = String(rows[0]!.fingerprint);
  let key: Buffer;
  try {
    key = fromEnv ? parseKey(fromEnv) : rows[0]!.key_hex ? Buffer.from(String(rows[0]!.key_hex), 'hex') : Buffer.alloc(0);
  } catch (err) {
    throw new TsformError(Codes.vaultKey, `$${v.privacy.keyEnv} is not a valid key: ${(err as Error).message}`);
  }
  if (key.length === 0) throw new TsformError(Codes.vaultKey, `the vault key lives outside the vault: set $${v.privacy.keyEnv}`);
  const fingerprint = keyFingerprint(key);
  if (fingerprint !== stored) {
    throw new TsformError(Codes.vaultKey, `wrong vault key: the vault was created with ${stored}, this key is ${fingerprint}; nothing was tokenized`);
  }
  return { key, fingerprint };
}

/**
 * Maintains the token map for a batch of practices: match keys for their new or changed
 * identities, then one resolution of every practice's records into persons (vault-linkage.ts),
 * which writes the token of each record whose person changed. `departed`: practices whose
 * records the vault forgets whether or not they are in the batch (withheld from research, gone
 * from tenants.yml: departed-linkage.ts), so that no person stays linked through them. Identities
 * never leave this function except as hashes and tokens.
 */
export async function buildVaultTokens(
  s: Session,
  node: ManifestNode,
  identityModel: ManifestNode,
  tenants: readonly string[],
  tenantColumn: string,
  privacy: PrivacyConfig,
  key: { key: Buffer; fingerprint: string },
  departed: readonly string[] = [],
): Promise<{ rows: RowsByTenant; linkage: LinkageSummary }> {
  const vault = quoteRelation(node.schema, node.identifier);
  const source = quoteRelation(identityModel.schema, identityModel.identifier);
  const tc = quoteIdent(tenantColumn);
  const id = privacy.identity;
  await s.query(
    `CREATE TABLE IF NOT EXISTS ${vault} (${tc} VARCHAR NOT NULL, patient_id VARCHAR NOT NULL, person_token VARCHAR NOT NULL,
       practice_token VARCHAR NOT NULL, date_shift_days INTEGER NOT NULL, key_fingerprint VARCHAR NOT NULL)`,
  );
  const bound = [[...tenants]];
  const other = await s.query(`SELECT count(*) AS n FROM ${vault} WHERE key_fingerprint <> $1`, [key.fingerprint]);
  if (Number(other.rows[0]?.n ?? 0) > 0) {
    throw new TsformError(Codes.vaultKey, `${Number(other.rows[0]!.n)} token(s) in the vault were made with another key; refusing to mix keys (rotate the vault explicitly)`);
  }
  // A departed practice keeps no token: its records are left out of the identities below, so
  // linkage forgets them too, and the persons they linked resolve again without them.
  await s.query(
    `DELETE FROM ${vault} WHERE ${tc} = ANY($2::VARCHAR[])
       OR (${tc} = ANY($1::VARCHAR[])
           AND NOT EXISTS (SELECT 1 FROM ${source} p WHERE p.${tc} = ${vault}.${tc} AND CAST(p.${quoteIdent(id.patientId)} AS VARCHAR) = ${vault}.patient_id))`,
    [[...tenants], [...departed]],
  );
  const taking = tenants.filter((t) => !departed.includes(t));
  const ssn = id.ssn ? `CAST(p.${quoteIdent(id.ssn)} AS VARCHAR)` : 'NULL';
  // Every identity of these practices, not only new ones: a corrected identity must be re-keyed.
  const { rows } = await s.query(
    `SELECT p.${tc} AS practice, CAST(p.${quoteIdent(id.patientId)} AS VARCHAR) AS patient, CAST(p.${quoteIdent(id.firstName)} AS VARCHAR) AS first_name,
            CAST(p.${quoteIdent(id.lastName)} AS VARCHAR) AS last_name, CAST(p.${quoteIdent(id.birthDate)} AS VARCHAR) AS birth_date,
            CAST(p.${quoteIdent(id.sex)} AS VARCHAR) AS sex, ${ssn} AS ssn
       FROM ${source} p
      WHERE p.${tc} = ANY($1::VARCHAR[])`,
    [taking],
  );
  const identities: IdentityRow[] = rows.map((r) => ({
    practice: String(r.practice),
    patient: String(r.patient),
    fields: {
      firstName: r.first_name as string | null,
      lastName: r.last_name as string | null,
      birthDate: r.birth_date as string | null,
      sex: r.sex as string | null,
      ssn: r.ssn as string | null,
    },
  }));
  // The departed practices are resolved with the batch: none of their identities is read, so all of their records go.
  const resolving = [...new Set([...tenants, ...departed])];
  const linkage = await resolveLinkage(s, { vaultSchema: node.schema, tokenTable: node.identifier, tenantColumn, tenants: resolving, identities, key, config: id.linkage });
  const counts = await s.query(`SELECT ${tc} AS tenant, count(*) AS n FROM ${vault} WHERE ${tc} = ANY($1::VARCHAR[]) GROUP BY 1`, bound);
  const out: RowsByTenant = new Map(tenants.map((t) => [t, 0]));
  for (const r of counts.rows) out.set(String(r.tenant), Number(r.n));
  return { rows: out, linkage };
}
