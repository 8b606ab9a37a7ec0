import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDocs, type DocsServer } from '../../src/docs/serve-docs.ts';

/** `tsform docs serve`: loopback only, files of the docs directory only. */

let dir: string;
let server: DocsServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsform-docs-serve-'));
  mkdirSync(join(dir, 'site'));
  writeFileSync(join(dir, 'site', 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(dir, 'site', 'app.js'), 'void 0;');
  writeFileSync(join(dir, 'secret.txt'), 'outside the site');
  server = await serveDocs(join(dir, 'site'), { port: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw request, so `..` reaches the server unnormalized. */
function get(path: string, method = 'GET'): Promise<{ status: number; type?: string; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('docs serve', () => {
  it('listens on 127.0.0.1 and serves the site with content types', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await get('/')).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(await get('/app.js')).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8', body: 'void 0;' });
    expect((await get('/missing.css')).status).toBe(404);
  });

  it('never serves a file outside the docs directory, and only reads', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const res = await get(path);
      expect(res.status, path).not.toBe(200);
      expect(res.body).not.toContain('outside the site');
    }
    expect((await get('/index.html', 'POST')).status).toBe(405);
  });
});
