import type { Clock } from '../clock.ts';
import { retrying, WEBHOOK_RETRY_POLICY } from '../schedule/index.ts';
import type { Alert } from './alert.ts';
import type { AlertDeliveryFailure, AlertSink } from './alert-sink.ts';

export interface WebhookOptions {
  /** Per attempt; a slower answer counts as a failed attempt. */
  timeoutMs: number;
  /** Extra attempts after the first, on 5xx, 408, 429, timeout or network error. */
  retries: number;
  /**
   * Ceiling of the first retry's delay in ms, doubled for each next one and capped at 30 s; each
   * delay is uniform below its ceiling (full jitter, schedule/retry-policy.ts). Default 500.
   */
  backoffMs?: number;
  /** Called once per alert given up on (after the last attempt). */
  onFailure?: (failure: AlertDeliveryFailure) => void;
  /** Stamps delivery failures. */
  clock: Clock;
}

/**
 * POSTs each alert as JSON (the `Alert` object itself) with the global `fetch`. Never throws
 * into the run: an alert given up on is recorded in `failures` and passed to `onFailure`.
 * Failure texts never contain the URL, which often embeds a token.
 */
export class WebhookAlertSink implements AlertSink {
  readonly name = 'webhook';
  readonly failures: AlertDeliveryFailure[] = [];
  /** Alerts the endpoint accepted (2xx). */
  delivered = 0;

  constructor(
    private readonly url: string,
    private readonly options: WebhookOptions,
  ) {}

  async send(alert: Alert): Promise<void> {
    const body = JSON.stringify(alert);
    const policy = { ...WEBHOOK_RETRY_POLICY, maxRetries: this.options.retries, baseMs: this.options.backoffMs ?? WEBHOOK_RETRY_POLICY.baseMs };
    let error: string;
    let attempts = 0;
    try {
      await retrying(
        async (attempt) => {
          attempts = attempt;
          const outcome = await this.post(body);
          if (outcome !== 'ok') throw new DeliveryError(outcome.error, outcome.retry);
        },
        // 5xx, 408, 429, a timeout or a network error may pass; another 4xx will not.
        { policy, classify: (err) => (err instanceof DeliveryError && err.retry ? 'transient' : 'permanent') },
      );
      this.delivered++;
      return;
    } catch (err) {
      error = err instanceof DeliveryError ? err.message : `unexpected: ${err instanceof Error ? err.name : typeof err}`;
    }
    const failure: AlertDeliveryFailure = { sink: this.name, kind: alert.kind, tenant: alert.tenant.id, attempts, error, at: this.options.clock.now().toISOString() };
    this.failures.push(failure);
    try {
      this.options.onFailure?.(failure);
    } catch {
      // a failing failure hook must not break the run either
    }
  }

  private async post(body: string): Promise<'ok' | { error: string; retry: boolean }> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'tsform-alerts' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (err) {
      return { error: describeFetchError(err, this.options.timeoutMs), retry: true };
    }
    // Drain the answer so the connection can be reused; its content is not needed.
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return 'ok';
    return { error: `HTTP ${res.status}`, retry: res.status >= 500 || res.status === 408 || res.status === 429 };
  }
}

/** One failed attempt: its safe description (no URL), and whether another attempt may succeed. */
class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `timed out after ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return `network error ${cause.code}`;
  return `network error (${err instanceof Error ? err.name : typeof err})`;
}
