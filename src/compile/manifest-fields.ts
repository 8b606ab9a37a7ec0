import type { ManifestCapture, ManifestColumn } from '../artifacts/manifest.ts';
import type { ColumnSpec, SourceCapture } from '../project/types.ts';

/** Project settings as manifest.json spells them (snake_case, optional fields left out). */

export function manifestCapture(c: SourceCapture): ManifestCapture {
  switch (c.kind) {
    case 'postgres':
      return {
        kind: c.kind,
        schema: c.schema,
        table: c.table,
        url_env: c.urlEnv,
        key: c.key,
        updated_at: c.updatedAt,
        deleted_at: c.deletedAt,
        ...(c.timeoutMs !== undefined ? { timeout_ms: c.timeoutMs } : {}),
        ...(c.chunkRows !== undefined ? { chunk_rows: c.chunkRows } : {}),
        ...(c.sliceMs !== undefined ? { slice_ms: c.sliceMs } : {}),
        ...(c.settleSeconds !== undefined ? { settle_seconds: c.settleSeconds } : {}),
        ...(c.mode === 'logical' ? { mode: c.mode } : {}),
      };
    case 'csv_landing':
      return { kind: c.kind, path: c.path, layout: c.layout, key: c.key, deleted_at: c.deletedAt };
    default: {
      const never: never = c;
      throw new Error(`unknown capture ${JSON.stringify(never)}`);
    }
  }
}

export function columnsOf(cols: ColumnSpec[]): Record<string, ManifestColumn> {
  return Object.fromEntries(
    cols.map((c) => [c.name, { phi: c.phi, ...(c.description ? { description: c.description } : {}), ...(c.dataType ? { data_type: c.dataType } : {}) }]),
  );
}
