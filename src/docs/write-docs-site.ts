import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DocsData } from './docs-data.ts';
import { DOCS_ASSETS, renderDocsSite } from './render-site.ts';

/** The static assets ship as plain files beside this module (no bundler, no CDN). */
const ASSET_DIR = new URL('./site/', import.meta.url);

export interface WrittenDocsSite {
  dir: string;
  /** Absolute path of the page to open (file:// works, no server needed). */
  index: string;
  files: string[];
}

/** Writes index.html, docs-data.js, app.js and style.css into `outDir` (created when missing). */
export function writeDocsSite(outDir: string, data: DocsData): WrittenDocsSite {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = { ...renderDocsSite(data) };
  for (const asset of DOCS_ASSETS) files[asset] = readFileSync(new URL(asset, ASSET_DIR), 'utf8');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, index: join(dir, 'index.html'), files: Object.keys(files) };
}
