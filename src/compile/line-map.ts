import Handlebars from 'handlebars';

/**
 * Where each line of a rendering came from in the model file (issue 15 item 7): errors the
 * database reports against compiled SQL (DuckDB's `LINE n:`, PostgreSQL's `position`) and errors
 * the compiler finds in a rendering are shown at the model's own line. Pure.
 *
 * How: before rendering, a marker naming its source line is put in front of the first
 * non-blank character of every line of template text (and before a plain `{{…}}` that starts a
 * line). Markers never sit in a run of whitespace, so Handlebars' standalone-line and `~`
 * whitespace rules see the same text and the rendering is the same once they are taken out.
 * An output line without a marker (a macro's second line) belongs to the line above it.
 */

/** Per line of a rendering (index 0 = line 1): the model file's line, or null for text tsform added. */
export type LineMap = (number | null)[];

const OPEN = '\uE000';
const CLOSE = '\uE001';
const MARKER = /\uE000(\d+)\uE001/g;

/** The template with line markers, or undefined when it cannot carry them (it holds the marker characters). */
export function markTemplate(template: string): string | undefined {
  if (template.includes(OPEN) || template.includes(CLOSE)) return undefined;
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parseWithoutProcessing(template);
  } catch {
    return undefined;
  }
  const lineStarts = [0];
  for (let i = 0; i < template.length; i++) if (template[i] === '\n') lineStarts.push(i + 1);
  const offsetOf = (p: hbs.AST.Position) => lineStarts[p.line - 1]! + p.column;
  /** Offset → source line to insert there. */
  const inserts = new Map<number, number>();
  const visit = (body: hbs.AST.Statement[]) => {
    for (const st of body) {
      if (st.type === 'ContentStatement') {
        // The raw text (hbs's typings call it StripFlags; it is the string before whitespace control).
        const text = (st as unknown as { original: string }).original;
        const start = offsetOf(st.loc.start);
        let line = st.loc.start.line;
        let lineHasMark = false;
        for (let i = 0; i < text.length; i++) {
          const ch = text[i]!;
          if (ch === '\n') {
            line++;
            lineHasMark = false;
          } else if (!lineHasMark && !/\s/.test(ch)) {
            inserts.set(start + i, line);
            lineHasMark = true;
          }
        }
      } else if (st.type === 'MustacheStatement') {
        const m = st as hbs.AST.MustacheStatement;
        const at = offsetOf(m.loc.start);
        // Only a plain {{…}} first on its line: `{{~` would strip the whitespace before the marker.
        if (!m.strip.open && /^[ \t]*$/.test(template.slice(lineStarts[m.loc.start.line - 1]!, at))) inserts.set(at, m.loc.start.line);
      } else if (st.type === 'BlockStatement') {
        const b = st as hbs.AST.BlockStatement;
        if (b.program) visit(b.program.body);
        if (b.inverse) visit(b.inverse.body);
      }
    }
  };
  visit(ast.body);
  let out = '';
  let last = 0;
  for (const at of [...inserts.keys()].sort((a, b) => a - b)) {
    out += template.slice(last, at) + `${OPEN}${inserts.get(at)}${CLOSE}`;
    last = at;
  }
  return out + template.slice(last);
}

/** The rendering without markers, and the source line of each of its lines. */
export function stripMarkers(rendered: string): { text: string; lines: LineMap } {
  const lines: LineMap = [];
  let current: number | null = null;
  const text = rendered
    .split('\n')
    .map((l) => {
      const first = /\uE000(\d+)\uE001/.exec(l);
      if (first) current = Number(first[1]);
      lines.push(current);
      return l.replace(MARKER, '');
    })
    .join('\n');
  return { text, lines };
}

/**
 * The line map of `output`, which is `body` with text added around it (tsform's CTEs before it;
 * `WITH` merged into the author's own): lines equal from the end and from the start keep their
 * source line, the first line that only lost its `WITH` too, the rest is tsform's (null).
 */
export function alignLines(output: string, body: string, bodyLines: LineMap): LineMap {
  const out = output.split('\n');
  const src = body.trim().split('\n');
  const offset = body.split('\n').findIndex((l) => l.trim() !== '');
  const srcLines = bodyLines.slice(Math.max(0, offset), Math.max(0, offset) + src.length);
  const map: LineMap = out.map(() => null);
  let i = out.length - 1;
  let j = src.length - 1;
  while (i >= 0 && j >= 0 && (out[i] === src[j] || (src[j]!.trimEnd().endsWith(out[i]!.trim()) && out[i]!.trim() !== ''))) {
    map[i] = srcLines[j] ?? null;
    const lostWith = out[i] !== src[j];
    i--;
    j--;
    if (lostWith) break;
  }
  for (let k = 0; k <= i && k <= j && out[k] === src[k]; k++) map[k] = srcLines[k] ?? null;
  return map;
}

/** 1-based line and column of a 0-based character offset. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  return { line, column: before.length - before.lastIndexOf('\n') };
}

/** libpg-query reports byte offsets into the UTF-8 text; this is the character offset. */
export function charOffsetOfByte(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
}

/** The model file's line of a character offset in a model's compiled SQL, when its line map says. */
export function modelLineAt(node: { compiled_sql: string; compiled_lines?: LineMap }, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined;
  return node.compiled_lines?.[lineColumnAt(node.compiled_sql, offset).line - 1] ?? undefined;
}

/** The first line of a file that mentions `word` (case-insensitive), else 1. */
export function lineOfWord(source: string, word: string | undefined): number {
  if (!word) return 1;
  const at = source.toLowerCase().indexOf(word.toLowerCase());
  return at < 0 ? 1 : source.slice(0, at).split('\n').length;
}
