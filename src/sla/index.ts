/** The SLA layer (DESIGN §1 promise 4, §6): deadlines, prediction and freshness are pure; sinks send. */
export { addDays, localDateOf, localTimeOf, slaDeadline, zonedTimeToInstant, type SlaDeadline } from './deadline.ts';
export { DurationProfile, p90RunMs, predictFinish, quantile, type HistoryRow, type PredictOptions, type RemainingEstimate } from './predict.ts';
export {
  evaluateFreshness,
  evaluateTenantFreshness,
  formatDuration,
  summarizeFreshness,
  type FreshnessInput,
  type FreshnessRow,
  type FreshnessStatus,
  type FreshnessTenant,
  type TenantLoadState,
  type TenantProgress,
} from './freshness.ts';
export { ALERT_KINDS, AlertDeduper, nodeFailedAlert, slaAlert, type Alert, type AlertKind } from './alert.ts';
export {
  DEFAULT_ALERT_SINKS,
  readAlertConfig,
  WEBHOOK_DEFAULTS,
  type AlertConfig,
  type AlertConfigIssue,
  type AlertSinkConfig,
} from './alert-config.ts';
export { KindFilterSink, LogAlertSink, type AlertDeliveryFailure, type AlertLogStream, type AlertSink } from './alert-sink.ts';
export { AlertDispatcher, createAlertSinks, type AlertSinkDeps } from './alert-dispatcher.ts';
export { WebhookAlertSink, type WebhookOptions } from './webhook-alert-sink.ts';
