import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyDemoProject } from '../../test/support/demo-project.ts';

const LOADER = /loader:\n\s+csv: data\/ehr\/\{table\}\.csv\.gz\n/;

/** The demo project with its ehr source read from the OLTP in $TSFORM_OLTP_URL (sources.yml keeps its keys). */
export function demoCaptureProject(): ReturnType<typeof copyDemoProject> {
  const project = copyDemoProject();
  const path = join(project.dir, 'models/sources.yml');
  const text = readFileSync(path, 'utf8');
  if (!LOADER.test(text)) throw new Error('models/sources.yml: the csv loader line this bench replaces was not found');
  writeFileSync(path, text.replace(LOADER, 'loader:\n      postgres: { url_env: TSFORM_OLTP_URL, schema: oltp }\n'));
  return project;
}
