/**
 * The forms in which a person would recognise an identifier, as SQL text both targets accept
 * (DuckDB and PostgreSQL share lower, regexp_replace with 'g', translate, trim, split_part, ltrim, LIKE).
 * The leak scan compares research values with raw identifiers in these forms only, so a
 * `lower(first_name)`, `replace(ssn, '-', '')` or a ZIP cast to an integer is still the value.
 */

/** Lower case, every run of characters other than a-z and 0-9 as one space, trimmed: `o brien 289`. */
export function wordsSql(text: string): string {
  return `trim(regexp_replace(lower(${text}), '[^a-z0-9]+', ' ', 'g'))`;
}

/** Lower case, letters and digits only: `obrien289`; for an SSN or a phone number, its digits. */
export function compactSql(text: string): string {
  return `regexp_replace(lower(${text}), '[^a-z0-9]+', '', 'g')`;
}

/**
 * The compact form without its digits. translate, not regexp_replace: PostgreSQL spent a third of a
 * batch's identifier forms on that regular expression (both engines delete the characters of
 * the second argument that the empty third one does not map).
 */
function withoutDigits(compact: string): string {
  return `translate(${compact}, '0123456789', '')`;
}

/** True when a compact form is digits only (an SSN, a phone, a ZIP, a date). */
export function digitsOnlySql(compact: string): string {
  return `(${compact} <> '' AND ${withoutDigits(compact)} = '')`;
}

/** True when a compact form holds a digit (a date, a ZIP: values that identify one person). */
export function hasDigitSql(compact: string): string {
  return `(${withoutDigits(compact)} <> ${compact})`;
}

/**
 * One identifier value, given as its words `w` and compact form `c` (columns computed once), as rows `(w, whole)` of its recognisable forms. Word forms
 * (`whole` false) may match inside a longer value: its words; its compact form as one word; for
 * an ISO date (`yyyy mm dd`), month-day-year as well. A number without its leading zeros (a ZIP or
 * SSN cast to an integer) is `whole`: it matches only a value that is that number, because as a
 * word it would be any year or count.
 */
export function identifierFormsSql(w: string, c: string): string {
  const iso = `${w} LIKE '____ __ __'`;
  return `(VALUES (${w}, FALSE), (${c}, FALSE),
    (CASE WHEN ${digitsOnlySql(c)} AND ltrim(${c}, '0') <> ${c} THEN ltrim(${c}, '0') END, TRUE),
    (CASE WHEN ${iso} THEN split_part(${w}, ' ', 2) || ' ' || split_part(${w}, ' ', 3) || ' ' || split_part(${w}, ' ', 1) END, FALSE),
    (CASE WHEN ${iso} THEN split_part(${w}, ' ', 2) || split_part(${w}, ' ', 3) || split_part(${w}, ' ', 1) END, FALSE))`;
}

/**
 * Shapes that are identifiers whoever they belong to, whatever any yml declares: an SSN written
 * `ddd-dd-dddd`, an email address, a North American phone number with its separators
 * (`(617) 555-0123`, `617-555-0123`, `617.555.0123`). The leak scan counts a research value of
 * such a shape as a finding even when no declared identifier holds it (a new source column
 * declared `none`). Separators are required, so a number, a date or a code is never such a
 * shape. No `\b`: PostgreSQL reads it as a backspace, so boundaries are spelled out.
 */
const SSN = '[0-9]{3}-[0-9]{2}-[0-9]{4}';
const PHONE = '(\\([0-9]{3}\\) ?|[0-9]{3}[-.])[0-9]{3}[-.][0-9]{4}';
const EMAIL = '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}';
/** One alternation, matched once per value: three separate patterns cost twice as much on PostgreSQL (6.6 s against 3.4 s for 1M values). */
const IDENTIFIER_SHAPES = `(^|[^0-9])(${SSN}|${PHONE})($|[^0-9])|${EMAIL}`;

/** True when `text` holds one of the shapes (regexp_replace without 'g' changes a text only where the pattern matches). */
export function identifierShapeSql(text: string): string {
  return `(regexp_replace(${text}, '${IDENTIFIER_SHAPES}', '') <> ${text})`;
}
