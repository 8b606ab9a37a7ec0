import { Codes } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import type { SourceCapture } from './types.ts';
import type { YamlReader } from './yaml-file.ts';

const LOADERS = ['csv', 'postgres', 'csv_landing'] as const;
const POSTGRES_KEYS = ['schema', 'url_env', 'mode', 'updated_at', 'deleted_at', 'timeout_seconds', 'chunk_rows', 'slice_seconds', 'settle_seconds'];
const MODES = ['watermark', 'logical'] as const;
/** Watermark settings that log-based capture has no use for: set with mode logical, they are a mistake. */
const WATERMARK_ONLY = ['updated_at', 'chunk_rows', 'settle_seconds'];
const LANDING_KEYS = ['path', 'layout', 'deleted_at'];
const LAYOUTS = ['folder_per_practice', 'practice_column'] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A source's `loader:` block, read once; `forTable` gives each table its loader. */
export interface SourceLoader {
  csvPattern?: string;
  forTable(table: Record<string, unknown>, identifier: string): SourceCapture | undefined;
}

/**
 * `loader: { csv: path }` (demo files, loaded whole each run), `loader: { postgres: {...} }` or
 * `loader: { csv_landing: {...} }` (per-practice capture; the table then needs `key:`). Every
 * mistake is a diagnostic at its line; a URL never belongs in a file (`url_env` names a variable).
 */
export function readSourceLoader(r: YamlReader, source: Record<string, unknown>, sourceName: string, scope: string): SourceLoader {
  const none: SourceLoader = { forTable: () => undefined };
  const loader = r.record(source, 'loader');
  if (!loader) return none;
  const kinds = Object.keys(loader);
  for (const k of kinds) {
    if (!(LOADERS as readonly string[]).includes(k)) r.fail(loader, k, `source '${sourceName}': unknown loader '${k}' (${LOADERS.join(', ')})`, Codes.invalidConfig);
  }
  const known = kinds.filter((k) => (LOADERS as readonly string[]).includes(k));
  if (known.length > 1) {
    r.fail(loader, known[1], `source '${sourceName}': one loader per source, not ${known.join(' and ')}`, Codes.invalidConfig);
    return none;
  }
  if (known[0] === 'csv') return { csvPattern: r.string(loader, 'csv'), forTable: () => undefined };
  if (known.length === 0) return none;
  if (scope !== 'tenant') {
    r.fail(loader, known[0], `source '${sourceName}': capture is per practice, so the source's scope must be tenant`, Codes.invalidConfig);
    return none;
  }
  const kind = known[0] as 'postgres' | 'csv_landing';
  const cfg = r.record(loader, kind);
  if (!cfg) return none;
  const allowed = kind === 'postgres' ? POSTGRES_KEYS : LANDING_KEYS;
  for (const k of Object.keys(cfg)) {
    if (k === 'url') r.fail(cfg, k, `source '${sourceName}': never put a connection URL in a file; name an environment variable with url_env`, Codes.invalidConfig);
    else if (!allowed.includes(k)) r.fail(cfg, k, `source '${sourceName}': unknown ${kind} loader key '${k}' (${allowed.join(', ')})`, Codes.invalidConfig);
  }
  const ident = (key: string, fallback: string): string => {
    const v = r.string(cfg, key) ?? fallback;
    if (!SIMPLE_NAME.test(v)) r.fail(cfg, key, `source '${sourceName}': ${key} '${v}' is not a simple identifier`, Codes.invalidIdentifier);
    return v;
  };
  const deletedAt = ident('deleted_at', 'deleted_at');
  const keyOf = (table: Record<string, unknown>, identifier: string, required: boolean): string[] => {
    const key = r.stringList(table, 'key');
    if (key.length === 0 && required) {
      r.fail(table, undefined, `source '${sourceName}.${identifier}': a captured table needs 'key:' (its primary key without the tenant column)`, Codes.invalidConfig);
    }
    for (const k of key) if (!SIMPLE_NAME.test(k)) r.fail(table, 'key', `source '${sourceName}.${identifier}': key column '${k}' is not a simple identifier`, Codes.invalidIdentifier);
    return key;
  };

  if (kind === 'postgres') {
    const schema = ident('schema', 'oltp');
    const updatedAt = ident('updated_at', 'updated_at');
    const urlEnv = r.string(cfg, 'url_env', { required: true }) ?? '';
    if (urlEnv && !ENV_NAME.test(urlEnv)) r.fail(cfg, 'url_env', `source '${sourceName}': url_env '${urlEnv}' is not an environment variable name`, Codes.invalidConfig);
    const timeout = positiveNumber(r, cfg, 'timeout_seconds', sourceName);
    const chunkRows = cfg.chunk_rows === undefined ? undefined : r.positiveInt(cfg, 'chunk_rows', 50_000);
    const slice = positiveNumber(r, cfg, 'slice_seconds', sourceName);
    const settle = positiveNumber(r, cfg, 'settle_seconds', sourceName);
    const modeText = r.string(cfg, 'mode') ?? 'watermark';
    const mode = modeText === 'logical' ? 'logical' : 'watermark';
    if (!(MODES as readonly string[]).includes(modeText)) {
      r.fail(cfg, 'mode', `source '${sourceName}': capture mode is ${MODES.join(' or ')}, not '${modeText}'`, Codes.captureMode);
    } else if (mode === 'logical') {
      for (const k of WATERMARK_ONLY) {
        if (cfg[k] !== undefined) r.fail(cfg, k, `source '${sourceName}': '${k}' is a watermark setting; mode logical reads the replication stream and has no use for it`, Codes.captureMode);
      }
    }
    return {
      forTable: (table, identifier) => ({
        kind,
        schema,
        table: identifier,
        urlEnv,
        key: keyOf(table, identifier, true),
        updatedAt,
        deletedAt,
        ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
        ...(chunkRows !== undefined ? { chunkRows } : {}),
        ...(slice !== undefined ? { sliceMs: slice * 1000 } : {}),
        ...(settle !== undefined ? { settleSeconds: settle } : {}),
        mode,
      }),
    };
  }
  const path = r.string(cfg, 'path', { required: true }) ?? '';
  if (path.startsWith('/') || path.split(/[\\/]/).includes('..')) {
    r.fail(cfg, 'path', `source '${sourceName}': a landing path is relative to the project and stays inside it`, Codes.invalidConfig);
  }
  const layout = r.string(cfg, 'layout') ?? 'folder_per_practice';
  if (!(LAYOUTS as readonly string[]).includes(layout)) r.fail(cfg, 'layout', `source '${sourceName}': layout is ${LAYOUTS.join(' or ')}, not '${layout}'`, Codes.invalidConfig);
  return {
    forTable: (table, identifier) => ({
      kind,
      path: path.replaceAll('{table}', identifier),
      layout: layout === 'practice_column' ? 'practice_column' : 'folder_per_practice',
      key: keyOf(table, identifier, false),
      deletedAt,
    }),
  };
}

function positiveNumber(r: YamlReader, obj: Record<string, unknown>, key: string, sourceName: string): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !(v > 0)) {
    r.fail(obj, key, `source '${sourceName}': '${key}' must be a positive number`, Codes.invalidConfig);
    return undefined;
  }
  return v;
}
