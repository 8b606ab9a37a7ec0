import { WEBHOOK_RETRY_POLICY } from '../schedule/retry-policy.ts';
import { ALERT_KINDS, type AlertKind } from './alert.ts';

/**
 * The `alerts:` block of tsform.yml. Pure: the project loader hands over the parsed YAML value.
 *
 * ```yaml
 * alerts:
 *   - type: log                        # one JSON line per alert on the run's log stream
 *   - type: webhook                    # POST the alert as JSON
 *     url_env: TSFORM_ALERT_WEBHOOK    # the URL comes from this variable, never from the file
 *     timeout_ms: 5000                 # per attempt (default 5000)
 *     retries: 2                       # extra attempts on 5xx, 408, 429, timeout or network error (default 2)
 *     backoff_ms: 500                  # ceiling of the first retry's delay, doubled each time up to 30 s; full jitter (default 500)
 *     kinds: [sla_late, node_failed]   # optional: only these kinds (default all)
 * ```
 */

export type AlertSinkConfig =
  | { type: 'log'; kinds?: AlertKind[] }
  | {
      type: 'webhook';
      /** Environment variable holding the URL (it often embeds a token). */
      urlEnv: string;
      timeoutMs: number;
      retries: number;
      backoffMs: number;
      kinds?: AlertKind[];
    };

/** Where `alerts:` is absent, a project alerts to its log. */
export const DEFAULT_ALERT_SINKS: readonly AlertSinkConfig[] = [{ type: 'log' }];

/** retries and backoff_ms default to the webhook's retry policy (schedule/retry-policy.ts). */
export const WEBHOOK_DEFAULTS = { timeoutMs: 5000, retries: WEBHOOK_RETRY_POLICY.maxRetries, backoffMs: WEBHOOK_RETRY_POLICY.baseMs } as const;

/**
 * One problem in `alerts:`. `parent` is the YAML mapping or list that holds it and `key` the
 * key within it, so the loader can point at a line (`YamlFile.lineOfKey(parent, key)`).
 */
export interface AlertConfigIssue {
  message: string;
  parent: object | undefined;
  key?: string;
}

export interface AlertConfig {
  sinks: AlertSinkConfig[];
  /** Every problem as one readable line, e.g. `alerts[1].url_env: ...`. */
  errors: string[];
  issues: AlertConfigIssue[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEYS = {
  log: new Set(['type', 'kinds']),
  webhook: new Set(['type', 'url_env', 'timeout_ms', 'retries', 'backoff_ms', 'kinds']),
};

/** Reads the value of `alerts:` (undefined or null: no sinks, no errors). Collects every problem. */
export function readAlertConfig(raw: unknown): AlertConfig {
  const out: AlertConfig = { sinks: [], errors: [], issues: [] };
  const fail = (path: string, message: string, parent: object | undefined, key?: string) => {
    out.errors.push(`${path}: ${message}`);
    out.issues.push({ message: `${path}: ${message}`, parent, ...(key !== undefined ? { key } : {}) });
  };
  if (raw === undefined || raw === null) return out;
  if (!Array.isArray(raw)) {
    fail('alerts', 'must be a list of sinks, e.g. [{ type: log }, { type: webhook, url_env: TSFORM_ALERT_WEBHOOK }]', undefined);
    return out;
  }
  raw.forEach((entry: unknown, i) => {
    const path = `alerts[${i}]`;
    if (!isRecord(entry)) {
      fail(path, "each sink must be a mapping with a 'type' (log or webhook)", raw);
      return;
    }
    const type = entry.type;
    if (type !== 'log' && type !== 'webhook') {
      fail(`${path}.type`, `unknown alert sink type ${show(type)} (log or webhook)`, entry, 'type');
      return;
    }
    for (const key of Object.keys(entry)) {
      if (key === 'url' || key === 'headers') {
        fail(`${path}.${key}`, 'secrets never go in tsform.yml; name an environment variable with url_env', entry, key);
      } else if (!KEYS[type].has(key)) {
        fail(`${path}.${key}`, `unknown key for a ${type} sink (known: ${[...KEYS[type]].join(', ')})`, entry, key);
      }
    }
    const kinds = readKinds(entry, path, fail);
    if (type === 'log') {
      out.sinks.push({ type, ...(kinds ? { kinds } : {}) });
      return;
    }
    const urlEnv = entry.url_env;
    if (typeof urlEnv !== 'string' || !ENV_NAME.test(urlEnv)) {
      fail(`${path}.url_env`, `a webhook needs url_env naming the environment variable that holds its URL${urlEnv === undefined ? '' : `, got ${show(urlEnv)}`}`, entry, 'url_env');
      return;
    }
    const timeoutMs = readInt(entry, 'timeout_ms', WEBHOOK_DEFAULTS.timeoutMs, 1, path, fail);
    const retries = readInt(entry, 'retries', WEBHOOK_DEFAULTS.retries, 0, path, fail, 10);
    const backoffMs = readInt(entry, 'backoff_ms', WEBHOOK_DEFAULTS.backoffMs, 0, path, fail);
    out.sinks.push({ type, urlEnv, timeoutMs, retries, backoffMs, ...(kinds ? { kinds } : {}) });
  });
  return out;
}

type Fail = (path: string, message: string, parent: object | undefined, key?: string) => void;

function readKinds(entry: Record<string, unknown>, path: string, fail: Fail): AlertKind[] | undefined {
  const v = entry.kinds;
  if (v === undefined) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) {
    fail(`${path}.kinds`, `must be a list of alert kinds (${ALERT_KINDS.join(', ')})`, entry, 'kinds');
    return undefined;
  }
  const kinds: AlertKind[] = [];
  for (const k of list) {
    if (ALERT_KINDS.includes(k as AlertKind)) kinds.push(k as AlertKind);
    else fail(`${path}.kinds`, `unknown alert kind ${show(k)} (${ALERT_KINDS.join(', ')})`, entry, 'kinds');
  }
  return kinds;
}

function readInt(entry: Record<string, unknown>, key: string, fallback: number, min: number, path: string, fail: Fail, max = Number.MAX_SAFE_INTEGER): number {
  const v = entry[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`${path}.${key}`, `must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got ${show(v)}`, entry, key);
    return fallback;
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v);
}
