import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { readAlertConfig } from '../../src/sla/alert-config.ts';
import { AlertDeduper, nodeFailedAlert, slaAlert, type Alert } from '../../src/sla/alert.ts';
import { AlertDispatcher, createAlertSinks } from '../../src/sla/alert-dispatcher.ts';
import { LogAlertSink, type AlertDeliveryFailure, type AlertSink } from '../../src/sla/alert-sink.ts';
import { WebhookAlertSink } from '../../src/sla/webhook-alert-sink.ts';
import { evaluateFreshness } from '../../src/sla/freshness.ts';

const at = new Date('2026-11-28T11:30:00Z');
const clock = fixedClock(at);
const practice = { id: 'o_3e6fff7a9d', name: 'ST ELIZABETH FT THOMAS', timezone: 'America/New_York', readyBy: '06:00' };

const lateAlert = (): Alert => {
  const [row] = evaluateFreshness({ tenants: [practice], now: at, state: new Map([[practice.id, { loadedThrough: '2026-11-26' }]]), history: [] });
  const alert = slaAlert(row!, { at, runId: 'run-42' });
  if (!alert) throw new Error('expected an alert');
  return alert;
};

class Buffer {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** A webhook endpoint on 127.0.0.1, port 0: answers with `statuses` in turn, then 200. */
async function webhookServer(statuses: number[] = [], opts: { hang?: boolean } = {}) {
  const bodies: unknown[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      bodies.push(JSON.parse(data));
      headers.push(req.headers);
      if (opts.hang) return;
      res.writeHead(statuses.shift() ?? 200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  servers.push(close);
  return { url: `http://127.0.0.1:${port}/hooks/tsform`, port, bodies, headers, close };
}
const servers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()));
});

describe('alerts name the practice and the SLA at stake', () => {
  it('sla_late from a freshness row', () => {
    expect(lateAlert()).toEqual({
      kind: 'sla_late',
      tenant: { id: 'o_3e6fff7a9d', name: 'ST ELIZABETH FT THOMAS' },
      sla: { ready_by: '06:00', timezone: 'America/New_York', deadline: '2026-11-28T11:00:00.000Z' },
      message:
        'practice o_3e6fff7a9d (ST ELIZABETH FT THOMAS) is late for its T+1 SLA: 2026-11-27 by 06:00 America/New_York; ' +
        'loaded through 2026-11-26; 2026-11-27 was due by 06:00 local, 30 min ago; no run in progress; no run history to predict from',
      run_id: 'run-42',
      at: '2026-11-28T11:30:00.000Z',
    });
  });

  it('node_failed names the node and code, not the database error text', () => {
    const a = nodeFailedAlert({ tenant: practice, node: 'stg_encounters@o_3e6fff7a9d', code: 'TSF401', at, runId: 'run-42' });
    expect(a).toMatchObject({
      kind: 'node_failed',
      tenant: { id: practice.id, name: practice.name },
      sla: { ready_by: '06:00', timezone: 'America/New_York', deadline: '2026-11-28T11:00:00.000Z' },
      run_id: 'run-42',
    });
    expect(a.message).toBe(
      'practice o_3e6fff7a9d (ST ELIZABETH FT THOMAS): node stg_encounters@o_3e6fff7a9d failed (TSF401); its downstream is skipped; 2026-11-27 is due by 06:00 America/New_York',
    );
  });

  it('the deduper lets one alert through per practice, run and kind', () => {
    const d = new AlertDeduper();
    const a = lateAlert();
    expect(d.admit(a)).toBe(true);
    expect(d.admit(a)).toBe(false);
    expect(d.admit({ ...a, kind: 'node_failed' })).toBe(true);
    expect(d.admit({ ...a, tenant: { id: 'other', name: 'Other' } })).toBe(true);
    expect(d.admit({ ...a, run_id: 'run-43' })).toBe(true);
    expect(d.size).toBe(4);
  });
});

describe('LogAlertSink', () => {
  it('writes one JSON line per alert to the stream it was given', async () => {
    const out = new Buffer();
    const sink = new LogAlertSink(out);
    await sink.send(lateAlert());
    await sink.send(nodeFailedAlert({ tenant: practice, node: 'stg_patients@o_3e6fff7a9d', at }));
    const lines = out.text.split('\n');
    expect(lines.at(-1)).toBe('');
    const parsed = lines.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => [p.event, p.kind])).toEqual([
      ['alert', 'sla_late'],
      ['alert', 'node_failed'],
    ]);
    for (const p of parsed) expect(p).toMatchObject({ tenant: { id: practice.id, name: practice.name }, sla: { ready_by: '06:00', timezone: 'America/New_York' } });
  });
});

describe('WebhookAlertSink against a local HTTP server', () => {
  it('POSTs the alert as JSON naming the practice id, name and SLA; retries once on a 503', async () => {
    const hook = await webhookServer([503]);
    const sink = new WebhookAlertSink(hook.url, { timeoutMs: 2000, retries: 2, backoffMs: 1, clock });
    await sink.send(lateAlert());
    expect(hook.bodies).toHaveLength(2);
    expect(sink.delivered).toBe(1);
    expect(sink.failures).toEqual([]);
    expect(hook.headers[0]?.['content-type']).toBe('application/json');
    expect(hook.bodies[1]).toEqual(lateAlert());
    expect(hook.bodies[1]).toMatchObject({
      tenant: { id: 'o_3e6fff7a9d', name: 'ST ELIZABETH FT THOMAS' },
      sla: { ready_by: '06:00', timezone: 'America/New_York', deadline: '2026-11-28T11:00:00.000Z' },
    });
  });

  it('does not retry a 4xx: the alert is rejected, not the moment', async () => {
    const hook = await webhookServer([400]);
    const sink = new WebhookAlertSink(hook.url, { timeoutMs: 2000, retries: 3, backoffMs: 1, clock });
    await sink.send(lateAlert());
    expect(hook.bodies).toHaveLength(1);
    expect(sink.failures).toMatchObject([{ sink: 'webhook', kind: 'sla_late', tenant: 'o_3e6fff7a9d', attempts: 1, error: 'HTTP 400' }]);
  });

  it('gives up cleanly when the server is down: resolves, records the failure, names no URL', async () => {
    const hook = await webhookServer();
    await hook.close();
    const seen: AlertDeliveryFailure[] = [];
    const sink = new WebhookAlertSink(hook.url, { timeoutMs: 2000, retries: 2, backoffMs: 1, onFailure: (f) => seen.push(f), clock });
    await expect(sink.send(lateAlert())).resolves.toBeUndefined();
    expect(sink.delivered).toBe(0);
    expect(sink.failures).toEqual(seen);
    expect(seen).toMatchObject([{ tenant: 'o_3e6fff7a9d', kind: 'sla_late', attempts: 3, error: 'network error ECONNREFUSED', at: at.toISOString() }]);
    expect(JSON.stringify(seen)).not.toContain(String(hook.port));
  });

  it('an endpoint that never answers times out per attempt', async () => {
    const hook = await webhookServer([], { hang: true });
    const sink = new WebhookAlertSink(hook.url, { timeoutMs: 150, retries: 1, backoffMs: 1, clock });
    await sink.send(lateAlert());
    expect(hook.bodies).toHaveLength(2);
    expect(sink.failures).toMatchObject([{ attempts: 2, error: 'timed out after 150 ms' }]);
  });
});

describe('alert config in tsform.yml', () => {
  it('reads log and webhook sinks with defaults', () => {
    const cfg = readAlertConfig([{ type: 'log' }, { type: 'webhook', url_env: 'TSFORM_ALERT_WEBHOOK' }, { type: 'webhook', url_env: 'PAGER', retries: 0, kinds: ['sla_late'] }]);
    expect(cfg.errors).toEqual([]);
    expect(cfg.sinks).toEqual([
      { type: 'log' },
      { type: 'webhook', urlEnv: 'TSFORM_ALERT_WEBHOOK', timeoutMs: 5000, retries: 2, backoffMs: 500 },
      { type: 'webhook', urlEnv: 'PAGER', timeoutMs: 5000, retries: 0, backoffMs: 500, kinds: ['sla_late'] },
    ]);
    expect(readAlertConfig(undefined)).toEqual({ sinks: [], errors: [], issues: [] });
  });

  it('reports every mistake, and a URL written in the file', () => {
    const entries = [
      { type: 'webhook', url: 'https://hooks.example/secret-token' },
      { type: 'sms' },
      { type: 'webhook', url_env: 'HOOK', retries: -1, timeout_ms: 'soon', kinds: ['sla_late', 'page_everyone'] },
      'log',
      { type: 'log', colour: 'red' },
    ];
    const cfg = readAlertConfig(entries);
    expect(cfg.errors).toEqual([
      'alerts[0].url: secrets never go in tsform.yml; name an environment variable with url_env',
      'alerts[0].url_env: a webhook needs url_env naming the environment variable that holds its URL',
      "alerts[1].type: unknown alert sink type 'sms' (log or webhook)",
      "alerts[2].kinds: unknown alert kind 'page_everyone' (sla_at_risk, sla_late, node_failed)",
      "alerts[2].timeout_ms: must be an integer from 1, got 'soon'",
      'alerts[2].retries: must be an integer from 0 to 10, got -1',
      "alerts[3]: each sink must be a mapping with a 'type' (log or webhook)",
      'alerts[4].colour: unknown key for a log sink (known: type, kinds)',
    ]);
    // issues point at the mapping and key, for the loader's line numbers
    expect(cfg.issues[0]).toMatchObject({ parent: entries[0], key: 'url' });
    expect(cfg.errors.join('\n')).not.toContain('secret-token');
    expect(readAlertConfig({ type: 'log' }).errors).toEqual([
      'alerts: must be a list of sinks, e.g. [{ type: log }, { type: webhook, url_env: TSFORM_ALERT_WEBHOOK }]',
    ]);
  });

  it('createAlertSinks takes the webhook URL from the environment, and reports an unset variable', async () => {
    const hook = await webhookServer();
    const out = new Buffer();
    const { sinks: configs } = readAlertConfig([
      { type: 'log', kinds: ['node_failed'] },
      { type: 'webhook', url_env: 'TSFORM_ALERT_WEBHOOK', backoff_ms: 1 },
      { type: 'webhook', url_env: 'UNSET_HOOK' },
    ]);
    const { sinks, errors } = createAlertSinks(configs, { log: out, env: { TSFORM_ALERT_WEBHOOK: hook.url }, clock });
    expect(errors).toEqual(['alerts[2]: environment variable UNSET_HOOK is not set; webhook alerts are off']);
    expect(sinks).toHaveLength(2);
    const dispatcher = new AlertDispatcher(sinks);
    expect(await dispatcher.send(lateAlert())).toBe(true);
    expect(await dispatcher.send(lateAlert())).toBe(false);
    expect(await dispatcher.send(nodeFailedAlert({ tenant: practice, node: 'stg_patients@o_3e6fff7a9d', at, runId: 'run-42' }))).toBe(true);
    // the log sink takes node_failed only; the webhook takes both, once each
    expect(out.text.trim().split('\n').map((l) => (JSON.parse(l) as Alert).kind)).toEqual(['node_failed']);
    expect(hook.bodies.map((b) => (b as Alert).kind)).toEqual(['sla_late', 'node_failed']);
    expect(dispatcher.raised.map((a) => a.kind)).toEqual(['sla_late', 'node_failed']);
    expect(createAlertSinks(configs.slice(1, 2), { log: out, env: { TSFORM_ALERT_WEBHOOK: 'file:///etc/passwd' }, clock }).errors).toEqual([
      'alerts[0]: TSFORM_ALERT_WEBHOOK does not hold an http(s) URL; webhook alerts are off',
    ]);
  });

  it('the dispatcher never throws into the run, whatever a sink does', async () => {
    const broken: AlertSink = { send: () => Promise.reject(new Error('sink exploded')) };
    const out = new Buffer();
    const dispatcher = new AlertDispatcher([broken, new LogAlertSink(out)]);
    await expect(dispatcher.send(lateAlert())).resolves.toBe(true);
    expect(dispatcher.sinkErrors).toEqual([{ kind: 'sla_late', tenant: 'o_3e6fff7a9d', error: 'sink exploded' }]);
    expect(out.text).toContain('"kind":"sla_late"');
  });
});
