/** The final-select-list heuristic of strict check 3 (strict-checks.ts): does a query output a column? */

interface Token {
  kind: 'word' | 'quoted' | 'string' | 'number' | 'punct' | 'other';
  /** Words lower-cased; quoted identifiers unquoted, case kept. */
  text: string;
  depth: number;
}

/** SQL keywords that end a select list at its own depth. */
const LIST_END = new Set(['from', 'where', 'group', 'having', 'window', 'qualify', 'order', 'limit', 'offset', 'fetch', 'union', 'intersect', 'except', 'into']);
/** Words that are never an implicit alias (`CASE … END` names no column). */
const NOT_ALIAS = new Set(['end', 'null', 'true', 'false', 'distinct', 'all', 'and', 'or', 'not', 'is', 'in', 'like', 'then', 'else', 'when']);

/**
 * A deliberately simple heuristic, no SQL parser: does the query's result have a column named
 * `column`? It finds the first SELECT at the outermost parenthesis level (CTE bodies and
 * subqueries are nested in parentheses, so this is the main query; in a UNION the first branch
 * names the columns), splits its select list at top-level commas and takes each item's output
 * name: the alias after AS, an implicit alias (`expr name`), or the bare or qualified column
 * (`t.practice_id`). The column is carried when an item is named so, or when an item is `*` or
 * `t.*` (without a DuckDB `EXCLUDE` naming it). Comments, strings and `$1` are skipped.
 * Unquoted names compare case-insensitively. A query with no SELECT at all is given the benefit
 * of the doubt.
 */
export function selectsColumn(sql: string, column: string): boolean {
  const tokens = tokenize(sql);
  const selects = tokens.map((t, i) => ({ t, i })).filter(({ t }) => t.kind === 'word' && t.text === 'select');
  if (selects.length === 0) return true;
  const depth = Math.min(...selects.map(({ t }) => t.depth));
  const start = selects.find(({ t }) => t.depth === depth)!.i;
  const items = selectItems(tokens, start, depth);
  const want = column.toLowerCase();
  const isWanted = (t: Token | undefined) =>
    t !== undefined && ((t.kind === 'word' && t.text === want) || (t.kind === 'quoted' && t.text === column));
  for (const item of items) {
    const starAt = item.findIndex((t) => t.kind === 'punct' && t.text === '*' && t.depth === depth);
    const isStar = starAt >= 0 && (starAt === 0 || item[starAt - 1]?.text === '.') && item.slice(0, starAt).every((t) => t.kind !== 'punct' || t.text === '.');
    if (isStar) {
      const rest = item.slice(starAt + 1);
      const excludes = rest[0]?.kind === 'word' && rest[0].text === 'exclude' && rest.some((t) => isWanted(t));
      if (!excludes) return true;
      continue;
    }
    if (isWanted(outputName(item))) return true;
  }
  return false;
}

function selectItems(tokens: Token[], selectAt: number, depth: number): Token[][] {
  let i = selectAt + 1;
  const at = (k: number) => tokens[k];
  const isWord = (k: number, w: string) => at(k)?.kind === 'word' && at(k)?.text === w && at(k)?.depth === depth;
  if (isWord(i, 'all')) i++;
  else if (isWord(i, 'distinct')) {
    i++;
    if (isWord(i, 'on') && at(i + 1)?.text === '(') {
      i += 2;
      while (i < tokens.length && !(at(i)?.text === ')' && at(i)?.depth === depth)) i++;
      i++;
    }
  }
  const items: Token[][] = [[]];
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.depth < depth) break;
    if (t.depth === depth) {
      if (t.kind === 'word' && LIST_END.has(t.text)) break;
      if (t.kind === 'punct' && t.text === ';') break;
      if (t.kind === 'punct' && t.text === ',') {
        items.push([]);
        continue;
      }
    }
    items[items.length - 1]!.push(t);
  }
  return items.filter((it) => it.length > 0);
}

/** The token naming an item's output column, if the heuristic can tell. */
function outputName(item: Token[]): Token | undefined {
  const last = item[item.length - 1];
  const prev = item[item.length - 2];
  const isName = (t: Token | undefined) => t !== undefined && (t.kind === 'quoted' || t.kind === 'word');
  if (!isName(last)) return undefined;
  if (item.length === 1) return last;
  if (prev?.kind === 'word' && prev.text === 'as' && prev.depth === last!.depth) return last;
  if (prev?.kind === 'punct' && prev.text === '.') return last;
  const implicitAlias =
    prev !== undefined &&
    prev.depth === last!.depth &&
    (isName(prev) || prev.kind === 'string' || prev.kind === 'number' || (prev.kind === 'punct' && prev.text === ')')) &&
    !(last!.kind === 'word' && NOT_ALIAS.has(last!.text));
  return implicitAlias ? last : undefined;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const push = (kind: Token['kind'], text: string) => tokens.push({ kind, text, depth });
  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (ch === "'") {
      let j = i + 1;
      while (j < n && !(sql[j] === "'" && sql[j + 1] !== "'")) j += sql[j] === "'" ? 2 : 1;
      push('string', '');
      i = j + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      while (j < n) {
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') {
            text += '"';
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j];
        j++;
      }
      push('quoted', text);
      i = j + 1;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        push('string', '');
        i = end < 0 ? n : end + tag[0].length;
      } else {
        const num = /^\$\d*/.exec(sql.slice(i))![0];
        push('other', num);
        i += num.length;
      }
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0];
      push('word', word.toLowerCase());
      i += word.length;
    } else if (/[0-9]/.test(ch)) {
      const num = /^[0-9][0-9.eE]*/.exec(sql.slice(i))![0];
      push('number', num);
      i += num.length;
    } else if (ch === '(') {
      push('punct', ch);
      depth++;
      i++;
    } else if (ch === ')') {
      depth = Math.max(0, depth - 1);
      push('punct', ch);
      i++;
    } else if (ch === ':' && next === ':') {
      push('punct', '::');
      i += 2;
    } else if (',.*;'.includes(ch)) {
      push('punct', ch);
      i++;
    } else {
      push('other', ch);
      i++;
    }
  }
  return tokens;
}
