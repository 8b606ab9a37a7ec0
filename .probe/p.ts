import { loadProject } from '../src/project/load-project.ts';
import { compileProject } from '../src/compile/compile.ts';
import { buildDag } from '../src/graph/dag.ts';
import { readdirSync } from 'node:fs';
for (const d of readdirSync('test/fixtures')) {
  const r = compileProject(loadProject(`test/fixtures/${d}`));
  console.log('=====', d);
  for (const x of r.diagnostics) console.log(JSON.stringify(x));
  if (r.diagnostics.length === 0) console.log('dag', JSON.stringify(buildDag(r.manifest).diagnostics));
}
