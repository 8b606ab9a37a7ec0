import { sqlLiteral } from '../../sql/quote.ts';
import type { FoldDialect } from '../fold-dialect.ts';
import { duckdbStrictCast } from '../unloadable-value.ts';

export const duckdbFoldDialect: FoldDialect = {
  // The LSN sort key is sixteen hex digits: as a number it orders like the text, with no sort
  // (seq, a change's place in its transaction, stays below 2^40).
  position: `CAST(CAST(('0x' || lsn) AS UBIGINT) AS HUGEINT) * 1099511627776 + seq`,
  // One parse per row into a map: an absent member is no key, a present null a NULL value.
  parsedRow: () => `json_transform(row_json, '"MAP(VARCHAR, VARCHAR)"')`,
  present: (name) => `coalesce(map_contains(j, ${sqlLiteral(name)}), false)`,
  value: (name) => `j[${sqlLiteral(name)}]`,
  carriesOther: (names) => `coalesce(NOT list_has_all([${names.map(sqlLiteral).join(', ')}]::VARCHAR[], map_keys(j)), false)`,
  keyPart: (i) => `json_extract_string(key_json, '$[${i}]')`,
  // CAST('1961-07-04 BC' AS DATE) is 1961-07-04 AD: dates, timestamps and decimals are cast strictly
  cast: (expr, type, column) => duckdbStrictCast(expr, type, column),
  last: (expr, filter) => `arg_max_null(${expr}, pos)${filter ? ` FILTER (WHERE ${filter})` : ''}`,
};
