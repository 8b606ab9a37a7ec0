import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelNode } from '../../artifacts/manifest.ts';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent } from '../../sql/quote.ts';
import { mergeKeyColumns } from '../slice-replace.ts';
import type { BuildContext } from '../strategy.ts';
import type { StagedCheck } from './relation-write.ts';

/**
 * An incremental model's `unique_key` must be a key of the rows it writes, on every write (first
 * build, full refresh, each merge), as SQLMesh refuses duplicate keys in INCREMENTAL_BY_UNIQUE_KEY:
 * - every key column is a column of the staged rows (TSF403; before, the first build passed and
 *   every later merge failed with the engine's binder error about tsform's alias `st`);
 * - no two staged rows share a key, matched as the merge matches them (mergeKeyColumns: per
 *   practice in a slice). A merge deletes every row sharing a staged key, so duplicates written
 *   once cost all but the latest load's rows later (red-team: a 63-row slice became 3, exit 0).
 *   TSF423 gives counts only, never a key's value;
 * - no staged row has a NULL in a key column (TSF423): the merge's `=` never matches it, so such a
 *   row was written again by every merge, one more copy a run, exit 0 (red-team, 2026-12-07).
 * One GROUP BY over the staged rows, for both (measured in the README).
 */
export function uniqueKeyCheck(ctx: Pick<BuildContext, 'adapter' | 'tenantColumn' | 'projectRoot'>, node: ModelNode): StagedCheck {
  // As the merge's quoted names match: DuckDB ignores case in them, PostgreSQL does not.
  const same = ctx.adapter.kind === 'duckdb' ? (a: string, b: string) => a.toLowerCase() === b.toLowerCase() : (a: string, b: string) => a === b;
  return async (s, stageTable, tenants) => {
    const stage = quoteIdent(stageTable);
    const columns = (await s.query(`SELECT * FROM ${stage} LIMIT 0`)).columns;
    const missing = node.unique_key.filter((k) => !columns.some((c) => same(c, k)));
    if (missing.length > 0) {
      throw new TsformError(
        Codes.schemaChanged,
        `${node.name}: unique_key ${missing.map((k) => `'${k}'`).join(', ')} is not a column the model outputs (${columns.join(', ')})${configAt(ctx, node)}; nothing was written. Name output columns in {{config unique_key=…}}, or output the column`,
      );
    }
    const key = mergeKeyColumns(node.unique_key, tenants !== undefined, ctx.tenantColumn).map(quoteIdent);
    const what = tenants ? `(${mergeKeyColumns(node.unique_key, true, ctx.tenantColumn).join(', ')})` : `(${node.unique_key.join(', ')})`;
    // One scan: NULL parts group together, so each group says whether its key has one.
    const { rows } = await s.query(
      `SELECT coalesce(sum(n) FILTER (WHERE null_key), 0) AS nulls, count(*) FILTER (WHERE n > 1 AND NOT null_key) AS keys, coalesce(sum(n) FILTER (WHERE n > 1 AND NOT null_key), 0) AS dup_rows
         FROM (SELECT count(*) AS n, bool_or(${key.map((k) => `${k} IS NULL`).join(' OR ')}) AS null_key FROM ${stage} GROUP BY ${key.join(', ')}) AS d`,
    );
    const nulls = Number(rows[0]?.nulls ?? 0);
    if (nulls > 0) {
      throw new TsformError(
        Codes.uniqueKeyDuplicates,
        `${node.name}: ${nulls} row(s) this build would write have a NULL in unique_key ${what}${configAt(ctx, node)}; nothing was written${tenants ? ' for this practice' : ''}. A merge never matches a NULL key, so each run would add such rows again: give every row a key, or filter the rows without one`,
      );
    }
    const keys = Number(rows[0]?.keys ?? 0);
    if (keys === 0) return [];
    throw new TsformError(
      Codes.uniqueKeyDuplicates,
      `${node.name}: unique_key is not unique in the rows this build would write: ${keys} key(s) ${what} occur in more than one row (${Number(rows[0]?.dup_rows ?? 0)} rows)${configAt(ctx, node)}; nothing was written${tenants ? ' for this practice' : ''}. A merge deletes every row sharing a key: name columns that identify one row in unique_key, or make the model's SQL return one row per key`,
    );
  };
}

/** Runs `first`, then `then` (either may be absent). */
export function bothChecks(first: StagedCheck, then: StagedCheck | undefined): StagedCheck {
  return async (s, stageTable, tenants) => [...(await first(s, stageTable, tenants)), ...(then ? await then(s, stageTable, tenants) : [])];
}

/** ` (unique_key at line N)`: the line of the model file that sets it, when found (the message starts with the file). */
function configAt(ctx: Pick<BuildContext, 'projectRoot'>, node: ModelNode): string {
  try {
    const lines = readFileSync(join(ctx.projectRoot, node.path), 'utf8').split('\n');
    const at = lines.findIndex((l) => /\bunique_key\s*=/.test(l));
    return at < 0 ? '' : ` (unique_key at line ${at + 1})`;
  } catch {
    return '';
  }
}
