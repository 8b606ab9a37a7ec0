import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The folder holding tsform's own package.json: this checkout, or node_modules/tsform when installed. */
export const TSFORM_PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/[\\/]$/, '');

/** `version` of tsform's package.json. */
export function tsformVersion(): string {
  return (JSON.parse(readFileSync(`${TSFORM_PACKAGE_ROOT}/package.json`, 'utf8')) as { version: string }).version;
}
