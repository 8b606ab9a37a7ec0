import type { Alert, AlertKind } from './alert.ts';

/**
 * Where alerts go: the `AlertSink` contract and the two sinks that need no network (the JSON
 * log line and the kind filter). The webhook sink is in `webhook-alert-sink.ts`; building the
 * sinks from config and fanning an alert out to them is in `alert-dispatcher.ts`.
 */

export interface AlertSink {
  /** Resolves when the alert is delivered or given up on; a well-behaved sink never rejects. */
  send(alert: Alert): Promise<void>;
}

/** An alert a sink gave up on. Names the practice id, never the sink's secret address. */
export interface AlertDeliveryFailure {
  sink: string;
  kind: AlertKind;
  tenant: string;
  attempts: number;
  error: string;
  at: string;
}

/** Anything with `write(string)`: `process.stderr`, a file stream, a test buffer. */
export interface AlertLogStream {
  write(chunk: string): unknown;
}

/**
 * One JSON line per alert: `{"event":"alert", ...Alert}`. The stream is given, so the CLI
 * decides where alerts go (stderr, the JSON log, a file).
 */
export class LogAlertSink implements AlertSink {
  readonly name = 'log';

  constructor(private readonly out: AlertLogStream) {}

  /** Write errors (a closed pipe) are counted, not thrown: alerting never stops a run. */
  writeErrors = 0;

  async send(alert: Alert): Promise<void> {
    try {
      this.out.write(`${JSON.stringify({ event: 'alert', ...alert })}\n`);
    } catch {
      this.writeErrors++;
    }
  }
}

/** Passes on only the configured kinds. */
export class KindFilterSink implements AlertSink {
  constructor(
    readonly inner: AlertSink,
    readonly kinds: readonly AlertKind[],
  ) {}

  async send(alert: Alert): Promise<void> {
    if (this.kinds.includes(alert.kind)) await this.inner.send(alert);
  }
}
