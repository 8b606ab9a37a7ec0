import { performance } from 'node:perf_hooks';
import { DEFAULT_LINKAGE } from '../../src/project/linkage-config.ts';
import { identityDigest, linkRecordOf, type LinkRecord } from '../../src/security/match-keys.ts';
import { newPersonToken } from '../../src/security/pseudonymize.ts';
import { resolvePersons } from '../../src/security/resolve-persons.ts';
import type { SyntheticIdentityRow } from './pseudo-identities.ts';

export interface LinkageComputeFigures {
  records: number;
  /** Identity digest + every default match key and guard hash of a record, per second. */
  match_keys_per_s: number;
  /** Resolution of all records into persons with new tokens (the vault's first build), records per second. */
  resolve_per_s: number;
  persons: number;
}

/**
 * What the vault adds per record for linkage (issue 17), in Node alone, as the vault strategy
 * computes it: the identity digest and link record of each record, then one resolution of all.
 */
export function linkageCompute(key: Buffer, identities: readonly SyntheticIdentityRow[]): LinkageComputeFigures {
  const fieldsOf = (r: SyntheticIdentityRow) => ({ firstName: r.first_name, lastName: r.last_name, birthDate: r.birth_date, sex: r.sex, ssn: r.ssn });
  for (let i = 0; i < Math.min(5_000, identities.length); i++) linkRecordOf(key, 'warm', fieldsOf(identities[i]!), DEFAULT_LINKAGE);
  let t = performance.now();
  const records: LinkRecord[] = identities.map((r) => {
    const fields = fieldsOf(r);
    identityDigest(key, fields, DEFAULT_LINKAGE);
    return linkRecordOf(key, JSON.stringify([r.practice_id, r.patient_id]), fields, DEFAULT_LINKAGE);
  });
  const keysMs = performance.now() - t;
  t = performance.now();
  const resolution = resolvePersons(records, { maxKeyHolders: DEFAULT_LINKAGE.maxKeyHolders, previous: new Map(), newToken: (ids, attempt) => newPersonToken(key, ids, attempt) });
  const resolveMs = performance.now() - t;
  return {
    records: records.length,
    match_keys_per_s: Math.round(records.length / (keysMs / 1000)),
    resolve_per_s: Math.round(records.length / (resolveMs / 1000)),
    persons: resolution.counts.persons,
  };
}
