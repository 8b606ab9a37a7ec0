import { createHash } from 'node:crypto';

/**
 * Names of the partitions of a table partitioned by practice (PostgreSQL target option
 * `partition_by_practice`): `<table>__p<i>` for the listed practices, `<table>__rest` for the
 * others, HASH-subpartitioned into `<table>__h<k>`. A model may not take one of these names
 * (compile/relation-collisions.ts): writing its relation dropped the partition, and with it
 * the rows of every practice it held.
 */
export const PARTITION_SUFFIX = /__(?:p[1-9]\d*|rest|h(?:0|[1-9]\d*))$/i;

/** PostgreSQL cuts names at 63 bytes, which could make two partitions' names equal: shorten with a hash instead. */
export function partitionName(table: string, suffix: string): string {
  const name = `${table}${suffix}`;
  if (Buffer.byteLength(name) <= 63) return name;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  let head = table;
  while (Buffer.byteLength(`${head}_${hash}${suffix}`) > 63) head = head.slice(0, -1);
  return `${head}_${hash}${suffix}`;
}
