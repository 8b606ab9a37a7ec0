import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { TENANT_ID_PATTERN, type Tenant } from './types.ts';
import { isRecord, YamlReader, type YamlFile } from './yaml-file.ts';
import { checkKeys, TENANTS_SCHEMA } from './yml-schema.ts';

export const TENANTS_FILE = 'tenants.yml';

const READY_BY = /^([01]\d|2[0-3]):[0-5]\d$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Shows a user-supplied id in a message without letting it break the line or the terminal. */
export function showValue(value: string): string {
  const clipped = value.length > 70 ? `${value.slice(0, 70)}…` : value;
  return JSON.stringify(clipped);
}

const zoneCache = new Map<string, boolean>();
export function isValidTimeZone(zone: string): boolean {
  let ok = zoneCache.get(zone);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      ok = zone.includes('/') || zone === 'UTC';
    } catch {
      ok = false;
    }
    zoneCache.set(zone, ok);
  }
  return ok;
}

export function readTenants(y: YamlFile | undefined, pools: readonly string[], diagnostics: Diagnostic[]): Tenant[] {
  if (!y) return [];
  const r = new YamlReader(y, diagnostics);
  const root = y.value;
  const list = isRecord(root) ? root.tenants : undefined;
  if (!Array.isArray(list)) {
    diagnostics.push(diagnostic(Codes.yamlShape, "tenants.yml must be a mapping with a 'tenants' list", { file: y.file, line: 1 }));
    return [];
  }
  checkKeys(r, root, TENANTS_SCHEMA, 'tenants.yml');
  const tenants: Tenant[] = [];
  const seen = new Map<string, number | undefined>();
  for (const entry of list) {
    if (!isRecord(entry)) {
      r.fail(list, undefined, 'each tenant must be a mapping with at least id, name and timezone');
      continue;
    }
    const line = y.lineOf(entry);
    if (entry.id !== undefined && entry.id !== null && typeof entry.id !== 'string') {
      // `id: 0042` would silently become practice 42: ids must be strings in the file.
      r.fail(entry, 'id', `tenant id ${showValue(String(entry.id))} is not a string; quote it in tenants.yml`, Codes.invalidTenantId);
      continue;
    }
    const id = r.string(entry, 'id', { required: true });
    if (id === undefined) continue;
    if (!TENANT_ID_PATTERN.test(id)) {
      r.fail(entry, 'id', `tenant id ${showValue(id)} does not match ${TENANT_ID_PATTERN.source}`, Codes.invalidTenantId);
      continue;
    }
    if (seen.has(id)) {
      r.fail(entry, 'id', `tenant id '${id}' repeats (first at line ${seen.get(id) ?? '?'})`, Codes.duplicateTenant);
      continue;
    }
    seen.set(id, line);
    const timezone = r.string(entry, 'timezone', { required: true }) ?? 'UTC';
    if (!isValidTimeZone(timezone)) {
      r.fail(entry, 'timezone', `tenant '${id}': ${showValue(timezone)} is not an IANA time zone`, Codes.invalidTimezone);
    }
    const sla = r.record(entry, 'sla');
    const readyBy = (sla && r.string(sla, 'ready_by')) ?? '07:00';
    if (!READY_BY.test(readyBy)) {
      r.fail(sla ?? entry, sla ? 'ready_by' : 'sla', `tenant '${id}': sla.ready_by must be HH:MM local time`, Codes.invalidSla);
    }
    const tags = r.stringList(entry, 'tags');
    for (const tag of tags) {
      if (!TAG.test(tag)) r.fail(entry, 'tags', `tenant '${id}': tag ${showValue(tag)} is not a simple name`, Codes.yamlShape);
    }
    const pool = r.string(entry, 'pool') ?? 'steady';
    if (!pools.includes(pool)) r.fail(entry, 'pool', `tenant '${id}': unknown pool '${pool}' (${pools.join(', ')})`, Codes.yamlShape);
    const research = r.boolean(entry, 'research', true);
    tenants.push({ id, name: r.string(entry, 'name') ?? id, timezone, readyBy, tags, pool, research, file: y.file, line });
  }
  return tenants;
}
