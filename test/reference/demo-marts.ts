/**
 * Independent reference computation of two demo marts, in plain TypeScript over the demo CSVs
 * (data/ehr/*.csv.gz) and tenants.yml. No SQL and no database on purpose: tests compare what
 * tsform builds against these rows, so the two must not share code.
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';

const gunzipAsync = promisify(gunzip);
const REPO_ROOT = new URL('../../', import.meta.url);

export interface PracticeDailyActivityRow {
  practice_id: string;
  activity_date: string;
  encounter_class: string;
  encounters: number;
  distinct_patients: number;
  total_claim_cost: string;
}

export interface ProviderPanelRow {
  practice_id: string;
  provider_id: string;
  active_patients_12m: number;
}

export interface DemoTenant {
  id: string;
  name: string;
  timezone: string;
  sla: { ready_by: string };
  tags: string[];
  pool: string;
}

/** Rows of data/ehr/<table>.csv.gz as strings; '' stands for NULL. */
export async function loadDemoCsv(table: string): Promise<Record<string, string>[]> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`not a demo table name: ${table}`);
  const gz = await readFile(new URL(`data/ehr/${table}.csv.gz`, REPO_ROOT));
  return parse(await gunzipAsync(gz), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
}

export async function loadDemoTenants(): Promise<DemoTenant[]> {
  const text = await readFile(new URL('tenants.yml', REPO_ROOT), 'utf8');
  const doc = YAML.parse(text) as { tenants?: DemoTenant[] };
  if (!Array.isArray(doc.tenants)) throw new Error('tenants.yml has no tenants list');
  return doc.tenants;
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();

/** Calendar date (YYYY-MM-DD) of a UTC instant on the wall clock of `timeZone`. */
export function localDate(isoUtc: string, timeZone: string): string {
  let format = dateFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'iso8601',
      numberingSystem: 'latn',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    dateFormats.set(timeZone, format);
  }
  const parts = format.formatToParts(parseInstant(isoUtc));
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year').padStart(4, '0')}-${part('month')}-${part('day')}`;
}

/** Same UTC wall time `months` calendar months earlier; a missing day clamps to the month's end. */
export function subtractMonthsUtc(instant: Date, months: number): Date {
  const monthIndex = instant.getUTCFullYear() * 12 + instant.getUTCMonth() - months;
  const year = Math.floor(monthIndex / 12);
  const month = monthIndex - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const result = new Date(instant.getTime());
  result.setUTCFullYear(year, month, Math.min(instant.getUTCDate(), lastDay));
  return result;
}

function parseInstant(isoUtc: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(isoUtc)) {
    throw new Error(`not an ISO UTC timestamp: ${isoUtc}`);
  }
  return new Date(isoUtc);
}

/** Exact cents of a decimal string with at most 2 fraction digits. */
export function toCents(decimal: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(decimal);
  if (!m) throw new Error(`not a money amount: ${JSON.stringify(decimal)}`);
  const cents = BigInt(m[2]!) * 100n + BigInt((m[3] ?? '').padEnd(2, '0'));
  return m[1] === '-' ? -cents : cents;
}

export function formatCents(cents: bigint): string {
  const sign = cents < 0n ? '-' : '';
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

async function timezoneByPractice(): Promise<Map<string, string>> {
  return new Map((await loadDemoTenants()).map((t) => [t.id, t.timezone]));
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return 0;
}

/** Encounters per practice, local activity date and encounter class. */
export async function referencePracticeDailyActivity(): Promise<PracticeDailyActivityRow[]> {
  const [encounters, zones] = await Promise.all([loadDemoCsv('encounters'), timezoneByPractice()]);
  const groups = new Map<string, { key: [string, string, string]; count: number; patients: Set<string>; cents: bigint }>();
  for (const e of encounters) {
    const practiceId = e.practice_id!;
    const zone = zones.get(practiceId);
    if (zone === undefined) throw new Error(`practice ${practiceId} is not in tenants.yml`);
    const key: [string, string, string] = [practiceId, localDate(e.started_at!, zone), e.encounter_class!];
    const id = key.join('\u0000');
    let group = groups.get(id);
    if (!group) {
      group = { key, count: 0, patients: new Set(), cents: 0n };
      groups.set(id, group);
    }
    group.count++;
    group.patients.add(e.patient_id!);
    group.cents += toCents(e.total_claim_cost!);
  }
  return [...groups.values()]
    .sort((a, b) => compareKeys(a.key, b.key))
    .map(({ key, count, patients, cents }) => ({
      practice_id: key[0],
      activity_date: key[1],
      encounter_class: key[2],
      encounters: count,
      distinct_patients: patients.size,
      total_claim_cost: formatCents(cents),
    }));
}

/**
 * Per provider of a practice: distinct patients with an encounter with that provider at that
 * practice in (latest practice start − 12 months, latest practice start].
 */
export async function referenceProviderPanel(): Promise<ProviderPanelRow[]> {
  const [encounters, providers] = await Promise.all([loadDemoCsv('encounters'), loadDemoCsv('providers')]);
  const latestStart = new Map<string, number>();
  for (const e of encounters) {
    const t = parseInstant(e.started_at!).getTime();
    if (t > (latestStart.get(e.practice_id!) ?? -Infinity)) latestStart.set(e.practice_id!, t);
  }
  const windowOf = new Map<string, { from: number; to: number }>();
  for (const [practiceId, to] of latestStart) {
    windowOf.set(practiceId, { from: subtractMonthsUtc(new Date(to), 12).getTime(), to });
  }
  const active = new Map<string, Set<string>>();
  for (const e of encounters) {
    const window = windowOf.get(e.practice_id!)!;
    const t = parseInstant(e.started_at!).getTime();
    if (t <= window.from || t > window.to) continue;
    const key = `${e.practice_id}\u0000${e.provider_id}`;
    const set = active.get(key) ?? new Set<string>();
    set.add(e.patient_id!);
    active.set(key, set);
  }
  return providers
    .map((p) => ({
      practice_id: p.practice_id!,
      provider_id: p.provider_id!,
      active_patients_12m: active.get(`${p.practice_id}\u0000${p.provider_id}`)?.size ?? 0,
    }))
    .sort((a, b) => compareKeys([a.practice_id, a.provider_id], [b.practice_id, b.provider_id]));
}
