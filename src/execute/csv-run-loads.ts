import type { Adapter } from '../adapters/adapter.ts';
import { projectFilePath } from '../project/project-path.ts';
import { quoteRelation } from '../sql/quote.ts';
import { loadCsvText, loadTableName } from '../warehouse/load-csv.ts';

/**
 * Each CSV source file is parsed once per run, not once per batch of practices: the first batch
 * of a source loads the rows of every practice the run builds into one load table in the meta
 * schema (committed on its own, so every batch's transaction reads it), and each batch selects
 * its own practices from it. Parsing the whole file per batch made a fleet's load step grow as
 * practices × file size (5,000 practices in batches of 50: ~150 parses of every extract).
 * The load tables live in the meta schema, which only the owner reads, and are dropped when
 * the run ends (`dropAll`).
 */

export interface CsvRunLoad {
  /** Meta-schema table with the file's rows (all VARCHAR) of the run's practices. */
  table: string;
  header: string[];
  /** Rows whose practice id is not in tenants.yml: counted, never loaded. */
  unknownTenantRows: number;
}

export interface CsvRunLoads {
  /** The run's load of a project-relative CSV path; concurrent callers share one load. */
  load(csvPath: string): Promise<CsvRunLoad>;
  /** Drops every load table of the run. */
  dropAll(): Promise<void>;
}

export interface CsvRunLoadsOptions {
  adapter: Adapter;
  projectRoot: string;
  metaSchema: string;
  tenantColumn: string;
  /** The practices this run builds (the plan's batches): the rows kept. */
  runTenants: ReadonlySet<string>;
  /** Every practice of tenants.yml (others' rows are counted as unknown). */
  knownTenants: ReadonlySet<string>;
}

export function csvRunLoads(o: CsvRunLoadsOptions): CsvRunLoads {
  const loads = new Map<string, Promise<CsvRunLoad>>();
  const created: string[] = [];
  return {
    load(csvPath) {
      let p = loads.get(csvPath);
      if (!p) {
        p = o.adapter.transaction(async (s) => {
          const table = loadTableName();
          created.push(table);
          const r = await loadCsvText(s, projectFilePath(o.projectRoot, csvPath), csvPath, o.metaSchema, table, {
            column: o.tenantColumn,
            wanted: o.runTenants,
            known: o.knownTenants,
          });
          return { table, header: r.header, unknownTenantRows: r.unknownTenantRows };
        });
        // A failed load (missing or malformed file, lost connection) is tried again by the next
        // batch or retry rather than remembered.
        const mine = p;
        mine.catch(() => {
          if (loads.get(csvPath) === mine) loads.delete(csvPath);
        });
        loads.set(csvPath, mine);
      }
      return p;
    },
    async dropAll() {
      await Promise.allSettled([...loads.values()]);
      for (const table of created.splice(0)) await o.adapter.query(`DROP TABLE IF EXISTS ${quoteRelation(o.metaSchema, table)}`);
      loads.clear();
    },
  };
}
