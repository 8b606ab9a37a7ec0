/**
 * Names in a model's SQL that the engine would read otherwise than the checks do. The checks
 * read the PostgreSQL grammar's tree, where a name is cut at 63 bytes and compared without case;
 * DuckDB keeps long names whole, and PostgreSQL keeps the case of a quoted name. So two aliases
 * or CTEs that differ only after 63 bytes, or only in the case of a quoted name, were one name to
 * the checks and two to an engine: the later silently stood for the earlier, and another
 * practice's rows reached a practice's slice (red-team, 2026-12-07). A parameter reference reads
 * what tsform binds, the practices of the batch. Pure: the WebAssembly parser only.
 */
import { scanSync } from 'libpg-query';
import { isObject, type PgJson as Json } from './pg-tree.ts';

/** What model-sql.ts reports (its NameFinding): a message, and a word to find the line by. */
interface NameFinding {
  message: string;
  near?: string;
}

/** PostgreSQL's NAMEDATALEN - 1. */
const NAME_BYTES = 63;

export function nameFindings(sql: string, tree: unknown, reservedPrefix: string, tenantColumn?: string): NameFinding[] {
  return [...tokenFindings(sql, tenantColumn?.toLowerCase()), ...caseTwins(tree), ...reservedAliases(tree, reservedPrefix), ...parameters(tree)];
}

function tokenFindings(sql: string, tenantColumn: string | undefined): NameFinding[] {
  const out: NameFinding[] = [];
  for (const t of scanSync(sql).tokens) {
    // PostgreSQL reads `?` as an operator, DuckDB as a parameter (after tsform's own).
    if (t.text === '?') out.push({ message: 'uses ?, which DuckDB reads as a parameter and PostgreSQL as an operator; a model reads values through its refs, sources and {{var}}', near: '?' });
    if (t.tokenName !== 'IDENT' && t.tokenName !== 'UIDENT') continue;
    const name = t.text.startsWith('"') ? t.text.slice(1, -1).replaceAll('""', '"') : t.text.toLowerCase();
    // `"PRACTICE_ID"` is another column than practice_id to PostgreSQL, the same to DuckDB and the
    // checks: a NATURAL JOIN or USING the checks saw on the practice crossed the rows instead.
    if (tenantColumn !== undefined && name !== tenantColumn && name.toLowerCase() === tenantColumn) {
      out.push({ message: `writes the tenant column as ${t.text}: PostgreSQL keeps a quoted name's case, so that is another column there and the same one to DuckDB; write ${tenantColumn}`, near: t.text });
    }
    if (Buffer.byteLength(name) <= NAME_BYTES) continue;
    out.push({
      message: `uses the name ${name.slice(0, 24)}…, longer than ${NAME_BYTES} bytes: PostgreSQL cuts it to ${NAME_BYTES} and DuckDB does not, so two such names could be one to the checks and two to the engine (a ref's or source's name counts with tsform's 11-byte prefix); shorten it`,
      near: t.text.startsWith('"') ? t.text.slice(1, 40) : t.text.slice(0, 40),
    });
  }
  return out;
}

/** CTE names and FROM aliases, as written (quoted names keep their case in the tree). */
function definedNames(tree: unknown): string[] {
  const names: string[] = [];
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(visit);
    if (!isObject(n)) return;
    for (const [k, v] of Object.entries(n)) {
      if (!isObject(v)) {
        if (Array.isArray(v)) visit(v);
        continue;
      }
      if (k === 'CommonTableExpr' && typeof v.ctename === 'string') names.push(v.ctename);
      if ((k === 'RangeVar' || k === 'RangeSubselect' || k === 'RangeFunction' || k === 'JoinExpr') && isObject(v.alias) && typeof v.alias.aliasname === 'string') names.push(v.alias.aliasname);
      visit(v);
    }
  };
  visit(tree);
  return names;
}

function caseTwins(tree: unknown): NameFinding[] {
  const spellings = new Map<string, Set<string>>();
  for (const n of definedNames(tree)) spellings.set(n.toLowerCase(), (spellings.get(n.toLowerCase()) ?? new Set()).add(n));
  return [...spellings.values()]
    .filter((s) => s.size > 1)
    .map((s) => {
      const [a, b] = [...s];
      return { message: `names two CTEs or aliases ${a} and ${b}, which differ only in case: PostgreSQL keeps a quoted name's case and DuckDB does not, so they are one name to one engine and two to the other; rename one`, near: b };
    });
}

const DUCKDB_SUBQUERY_NAME = /^unnamed_subquery\d*$/i;

function reservedAliases(tree: unknown, prefix: string): NameFinding[] {
  const visit = (n: unknown, out: NameFinding[]): NameFinding[] => {
    if (Array.isArray(n)) n.forEach((x) => visit(x, out));
    if (!isObject(n)) return out;
    for (const [k, v] of Object.entries(n)) {
      if (k !== 'CommonTableExpr' && isObject(v) && isObject(v.alias) && typeof v.alias.aliasname === 'string' && v.alias.aliasname.toLowerCase().startsWith(prefix)) {
        out.push({ message: `uses the alias ${v.alias.aliasname}: the prefix ${prefix} is reserved for tsform's own relations`, near: v.alias.aliasname });
      }
      // DuckDB names an unaliased subquery so (the checks give it no name): `unnamed_subquery.practice_id`
      // in a sub-select bound to a local `(select 'p_x' as practice_id)`, not to the outer alias.
      const named = k === 'CommonTableExpr' && isObject(v) ? v.ctename : isObject(v) && isObject(v.alias) ? v.alias.aliasname : undefined;
      if (typeof named === 'string' && DUCKDB_SUBQUERY_NAME.test(named)) {
        out.push({ message: `uses the name ${named}, which DuckDB gives a subquery without an alias (then one name for two relations); rename it`, near: named });
      }
      if (isObject(v) || Array.isArray(v)) visit(v, out);
    }
    return out;
  };
  return visit(tree, []);
}

/** `$1`: tsform binds the practices of the batch there. */
function parameters(tree: unknown): NameFinding[] {
  let found: Json | undefined;
  const visit = (n: unknown): void => {
    if (found) return;
    if (Array.isArray(n)) return n.forEach(visit);
    if (!isObject(n)) return;
    if (isObject(n.ParamRef)) {
      found = n.ParamRef;
      return;
    }
    Object.values(n).forEach(visit);
  };
  visit(tree);
  if (!found) return [];
  const number = typeof found.number === 'number' ? found.number : 1;
  return [{ message: `reads the parameter $${number}, where tsform binds the practices of the run; a model reads values through its refs, sources and {{var}}`, near: `$${number}` }];
}
