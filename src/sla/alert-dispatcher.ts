import type { Clock } from '../clock.ts';
import { AlertDeduper, type Alert, type AlertKind } from './alert.ts';
import type { AlertSinkConfig } from './alert-config.ts';
import { KindFilterSink, LogAlertSink, type AlertDeliveryFailure, type AlertLogStream, type AlertSink } from './alert-sink.ts';
import { WebhookAlertSink } from './webhook-alert-sink.ts';

/**
 * Sending alerts: the side-effect half of `sla/` (building alerts is pure, in `alert.ts`).
 * `createAlertSinks` turns the `alerts:` config into sinks; `AlertDispatcher` fans one alert out
 * to all of them, once per practice, run and kind, and never throws into the run.
 */

export interface AlertSinkDeps {
  /** Where `type: log` writes. */
  log: AlertLogStream;
  /** Where `url_env` is looked up (cli/ passes the process environment). */
  env: Readonly<Record<string, string | undefined>>;
  /** Told about every alert a webhook gave up on (e.g. to print a warning). */
  onFailure?: (failure: AlertDeliveryFailure) => void;
  /** Stamps delivery failures. */
  clock: Clock;
}

/**
 * Sinks for the configured `alerts:` entries. A webhook whose variable is unset or not an
 * http(s) URL is left out and reported in `errors`; whether that stops a run is the caller's call.
 */
export function createAlertSinks(configs: readonly AlertSinkConfig[], deps: AlertSinkDeps): { sinks: AlertSink[]; errors: string[] } {
  const { env } = deps;
  const sinks: AlertSink[] = [];
  const errors: string[] = [];
  configs.forEach((config, i) => {
    let sink: AlertSink;
    switch (config.type) {
      case 'log':
        sink = new LogAlertSink(deps.log);
        break;
      case 'webhook': {
        const url = env[config.urlEnv];
        if (url === undefined || url === '') {
          errors.push(`alerts[${i}]: environment variable ${config.urlEnv} is not set; webhook alerts are off`);
          return;
        }
        if (!isHttpUrl(url)) {
          errors.push(`alerts[${i}]: ${config.urlEnv} does not hold an http(s) URL; webhook alerts are off`);
          return;
        }
        sink = new WebhookAlertSink(url, {
          timeoutMs: config.timeoutMs,
          retries: config.retries,
          backoffMs: config.backoffMs,
          clock: deps.clock,
          ...(deps.onFailure ? { onFailure: deps.onFailure } : {}),
        });
        break;
      }
      default: {
        const never: never = config;
        throw new Error(`unhandled alert sink ${JSON.stringify(never)}`);
      }
    }
    sinks.push(config.kinds ? new KindFilterSink(sink, config.kinds) : sink);
  });
  return { sinks, errors };
}

/**
 * What the runner and `tsform freshness` call: de-duplicates (one alert per practice, run and
 * kind), sends to every sink at once, and records instead of throwing.
 */
export class AlertDispatcher {
  /** Alerts sent (after de-duplication), in order: the run summary lists them. */
  readonly raised: Alert[] = [];
  /** Sinks that rejected despite the contract. */
  readonly sinkErrors: { kind: AlertKind; tenant: string; error: string }[] = [];
  private readonly deduper: AlertDeduper | undefined;

  constructor(
    readonly sinks: readonly AlertSink[],
    options: { dedupe?: boolean | AlertDeduper } = {},
  ) {
    const d = options.dedupe ?? true;
    this.deduper = d === true ? new AlertDeduper() : d === false ? undefined : d;
  }

  /** False when the alert repeats one already sent for this practice, run and kind. */
  async send(alert: Alert): Promise<boolean> {
    if (this.deduper && !this.deduper.admit(alert)) return false;
    this.raised.push(alert);
    const settled = await Promise.allSettled(this.sinks.map((s) => s.send(alert)));
    for (const s of settled) {
      if (s.status === 'rejected') {
        this.sinkErrors.push({ kind: alert.kind, tenant: alert.tenant.id, error: s.reason instanceof Error ? s.reason.message : String(s.reason) });
      }
    }
    return true;
  }
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
