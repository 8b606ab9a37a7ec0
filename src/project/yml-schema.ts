import { Codes } from '../errors.ts';
import { suggest } from './suggest.ts';
import { isRecord, type YamlReader } from './yaml-file.ts';

/**
 * Which keys a yml file may hold, checked before the readers take the values (issue 15): a key
 * no reader knows is an error, never ignored, because a typo (`colums:`) would otherwise drop
 * every test and PHI class under it without a word. Types and values stay the readers' business;
 * this only answers "is this key one we read?".
 *
 * - `keys`: the keys a mapping may hold, each with the shape of its value;
 * - `names`: a mapping keyed by the author's own names (targets, pools): each value has this shape;
 * - `others: 'checked-elsewhere'`: a reader reports unknown keys itself, with a better message
 *   (a test's kind, a loader);
 * - `'any'`: not checked here (a scalar, `vars:`, `meta:`, or a block with its own reader).
 *
 * `meta:` is dbt's free-form place: allowed on models, columns, sources, source tables and seeds,
 * never read by tsform, its content unchecked.
 */
export type Shape = 'any' | { list: Shape } | MapShape;

export interface MapShape {
  /** How a message names one such mapping: `model 'stg_visits'`. */
  label: string;
  /** The key whose value names one such mapping in messages (default `name`). */
  nameKey?: string;
  keys: Record<string, Shape>;
  names?: Shape;
  others?: 'checked-elsewhere';
}

const column: MapShape = {
  label: 'column',
  keys: {
    name: 'any',
    description: 'any',
    phi: 'any',
    data_type: 'any',
    meta: 'any',
    tests: {
      list: {
        label: 'test',
        keys: {
          // dbt's `where:`, `severity:` or `config:` are not read: refused, never ignored.
          not_null: { label: 'not_null test', keys: {} },
          unique: { label: 'unique test', keys: {} },
          accepted_values: { label: 'accepted_values test', keys: { values: 'any' } },
          relationships: { label: 'relationships test', keys: { to: 'any', field: 'any' } },
        },
        // load-properties.ts names the unknown test kind and the known ones.
        others: 'checked-elsewhere',
      },
    },
  },
};

/** `models/**\/*.yml`: model properties, sources and seed column types. */
export const PROPERTIES_SCHEMA: MapShape = {
  label: 'properties file',
  keys: {
    version: 'any',
    models: { list: { label: 'model', keys: { name: 'any', description: 'any', columns: { list: column }, meta: 'any' } } },
    sources: {
      list: {
        label: 'source',
        keys: {
          name: 'any',
          description: 'any',
          schema: 'any',
          scope: 'any',
          // read-source-loader.ts checks a loader's keys with messages of its own.
          loader: 'any',
          meta: 'any',
          tables: { list: { label: 'source table', keys: { name: 'any', identifier: 'any', description: 'any', key: 'any', columns: { list: column }, meta: 'any' } } },
        },
      },
    },
    seeds: { list: { label: 'seed', keys: { name: 'any', column_types: 'any', meta: 'any' } } },
  },
};

/** `tsform.yml`. Blocks with a reader of their own (`models:` folders, generalizers, alerts) are 'any'. */
export const CONFIG_SCHEMA: MapShape = {
  label: 'tsform.yml',
  keys: {
    name: 'any',
    tenant_column: 'any',
    schemas: { label: 'schemas', keys: { raw: 'any', seeds: 'any', staging: 'any', marts: 'any', research: 'any', vault: 'any', meta: 'any' } },
    target: 'any',
    targets: {
      label: 'targets',
      keys: {},
      names: {
        label: 'target',
        // password and url are known so that load-config.ts can say why they never belong here.
        keys: {
          type: 'any', threads: 'any', path: 'any', research_path: 'any', vault_path: 'any', url_env: 'any', password: 'any', url: 'any', settings: 'any', search_path: 'any',
          partition_by_practice: { label: 'partition_by_practice', keys: { list: 'any', hash_partitions: 'any' } },
        },
      },
    },
    vars: 'any',
    models: 'any',
    pools: { label: 'pools', keys: {}, names: { label: 'pool', keys: { slots: 'any' } } },
    run: { label: 'run', keys: { node_timeout_seconds: 'any', retries: 'any' } },
    privacy: {
      label: 'privacy',
      keys: {
        k: 'any',
        identity_model: 'any',
        key_env: 'any',
        generalizers: 'any',
        not_identifiers: 'any',
        identity: {
          label: 'privacy.identity',
          keys: { patient_id: 'any', first_name: 'any', last_name: 'any', birth_date: 'any', sex: 'any', ssn: 'any', match_keys: 'any', birth_date_tolerance: 'any', ssn_area_9xx: 'any', max_key_holders: 'any' },
        },
      },
    },
    alerts: 'any',
    batch: { label: 'batch', keys: { size: 'any' } },
  },
};

/** `tenants.yml`: thousands of entries, where a typo (`tag:`, `pol:`) would put a practice in the wrong pool or batch. */
export const TENANTS_SCHEMA: MapShape = {
  label: 'tenants.yml',
  keys: {
    tenants: { list: { label: 'tenant', nameKey: 'id', keys: { id: 'any', name: 'any', timezone: 'any', sla: { label: 'sla', keys: { ready_by: 'any' } }, tags: 'any', pool: 'any', research: 'any' } } },
  },
};

/** `policies/policies.yml`: a typo (`protects:`) would fall back to the default protected schemas. */
export const POLICIES_SCHEMA: MapShape = {
  label: 'policies.yml',
  keys: {
    roles: { label: 'roles', keys: { owner: 'any', research_reader: 'any', vault_steward: 'any', practices: 'any', practice_groups: 'any' } },
    practice_roles: { label: 'practice_roles', keys: { name: 'any', groups: { list: { label: 'group', nameKey: 'role', keys: { role: 'any', practices: 'any' } } } } },
    security_schema: 'any',
    protect: { label: 'protect', keys: { schemas: 'any', relations: 'any' } },
    grants: { label: 'grants', keys: { practice_roles: 'any', research_reader: 'any' } },
    planner_statistics: { label: 'planner_statistics', keys: { tenant_column: 'any' } },
  },
};

/**
 * Reports every key `shape` does not allow, at the key's line, with the closest known key. `title`
 * names the mapping in messages (`model 'stg_visits'`, `target 'duckdb'`); by default its label
 * and its `name:`.
 */
export function checkKeys(r: YamlReader, value: unknown, shape: Shape, title?: string): void {
  if (shape === 'any') return;
  if ('list' in shape) {
    if (Array.isArray(value)) for (const item of value) checkKeys(r, item, shape.list);
    return;
  }
  if (!isRecord(value)) return;
  const name = value[shape.nameKey ?? 'name'];
  const own = title ?? `${shape.label}${typeof name === 'string' ? ` '${name}'` : ''}`;
  const known = Object.keys(shape.keys);
  for (const [key, child] of Object.entries(value)) {
    if (Object.hasOwn(shape.keys, key)) checkKeys(r, child, shape.keys[key]!);
    else if (shape.names !== undefined) checkKeys(r, child, shape.names, shape.names === 'any' || 'list' in shape.names ? undefined : `${shape.names.label} '${key}'`);
    else if (shape.others !== 'checked-elsewhere') {
      r.fail(value, key, `${own}: unknown key '${key}'${suggest(key, known) || ` (known: ${known.join(', ')})`}`, Codes.unknownKey);
    }
  }
}
