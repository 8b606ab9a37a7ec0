/**
 * `npm run fleet:generate -- --practices 5000 [--encounters n] [--out dir] [--seed n]`: writes a
 * deterministic synthetic EHR fleet as a copy of the demo project (scripts/lib/fleet-ehr.ts) that
 * `tsform run --project <out>` builds. Prints the fleet's figures as one JSON line.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateFleet } from './lib/fleet-ehr.ts';

/** Encounters per practice by default: 5,000 practices make 1M encounters (see README, bench:nightly). */
export const DEFAULT_ENCOUNTERS_PER_PRACTICE = 200;

const { values } = parseArgs({
  options: {
    practices: { type: 'string', default: '5000' },
    encounters: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});
const practices = Number(values.practices);
const stats = await generateFleet({
  practices,
  encounters: values.encounters === undefined ? practices * DEFAULT_ENCOUNTERS_PER_PRACTICE : Number(values.encounters),
  seed: Number(values.seed),
  out: resolve(values.out ?? `target/fleet-${practices}`),
});
process.stdout.write(`${JSON.stringify(stats)}\n`);
