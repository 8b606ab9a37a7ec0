/** A bound parameter. `string[]` is how practice ids travel (as `$1::VARCHAR[]`). */
export type SqlParam = string | number | boolean | null | string[];
