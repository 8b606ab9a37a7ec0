/**
 * Database error text, made safe to log. Engines quote offending values in their messages
 * ("Could not convert string 'Walker122' to INT32", "Duplicate key \"ssn: 999-…\""); those values
 * can be PHI, so every single-quoted literal and every duplicate-key payload is redacted.
 */
export function safeDbMessage(err: unknown, maxLines = 3): string {
  const raw = err instanceof Error ? err.message : String(err);
  // DuckDB's CSV errors quote the offending input line; PostgreSQL's DETAIL holds row values.
  const cut = raw.split(/\n\s*DETAIL:|\nDETAIL|\n\s*HINT:|Original Line:/i)[0] ?? raw;
  return cut
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, maxLines)
    .join(' | ')
    .replace(/'(?:[^']|'')*'/g, "'…'")
    .replace(/\b(Duplicate key|key|string|value|input|literal|text) "(?:[^"]|"")*"/gi, '$1 "…"')
    .replace(/\(([^()]*)\)=\(([^()]*)\)/g, '($1)=(…)')
    .replace(/(for type [a-z ]+): "(?:[^"]|"")*"/gi, '$1: "…"');
}
