/**
 * Functions whose output carries no more than what they read (issue 12, "lineage fails closed"):
 * the lineage analysis passes their arguments' classes through. Any other function is unknown
 * and its output is `direct`: a function nobody reviewed (DuckDB's `columns('first_name')`, an
 * extension's, a user-defined one) may produce any input column. To add one, review that its
 * result is computed from its arguments only, and add it here.
 */
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'any_value', 'first', 'last', 'arbitrary', 'string_agg', 'array_agg', 'list',
  'bool_and', 'bool_or', 'every', 'median', 'mode', 'percentile_cont', 'percentile_disc', 'quantile_cont', 'quantile_disc',
  'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'corr', 'covar_pop', 'covar_samp', 'approx_count_distinct',
  // windows
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value', 'last_value', 'nth_value',
  // numbers
  'abs', 'round', 'floor', 'ceil', 'ceiling', 'trunc', 'greatest', 'least', 'mod', 'power', 'pow', 'sqrt', 'ln', 'log', 'exp', 'sign',
  // text
  'lower', 'upper', 'trim', 'ltrim', 'rtrim', 'btrim', 'substr', 'substring', 'left', 'right', 'length', 'char_length', 'concat',
  'concat_ws', 'replace', 'lpad', 'rpad', 'split_part', 'strpos', 'position', 'starts_with', 'regexp_replace', 'regexp_matches',
  'regexp_extract', 'md5', 'initcap', 'reverse', 'repeat', 'format', 'contains', 'prefix', 'suffix', 'nullif', 'coalesce', 'ifnull',
  // dates and times
  'date_part', 'date_trunc', 'extract', 'age', 'make_date', 'make_timestamp', 'to_char', 'to_date', 'to_timestamp', 'strftime',
  'strptime', 'date_diff', 'datediff', 'date_add', 'date_sub', 'year', 'month', 'day', 'epoch', 'timezone', 'now', 'current_date',
  'last_day', 'dayofweek', 'isodow', 'dow', 'week', 'quarter',
  // casts and checks
  'try_cast', 'typeof', 'pg_typeof',
  // tsform's own markers of approved macros (lineage renderings only)
  'tsf_generalized', 'tsf_shifted', 'tsf_generalized_if_shifted',
]);
