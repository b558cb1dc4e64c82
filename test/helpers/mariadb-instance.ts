/**
 * A private MariaDB server for one test file: `mariadb-install-db` into a temporary data
 * directory, then `mariadbd` on a free loopback port (row binlog, full images, local_infile),
 * stopped by its PID. Tests that must not share the main server use it: a MySQL to MySQL job
 * (the destination needs database names the source already uses) and the binlog purge test
 * (purging the main server's binlog would break the continuous jobs of other test files).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { freePort } from './ferry-server.js';
import { MARIADBD, installMariadb, mariadbdArgs } from './mariadb-server.js';

export interface MariadbInstance {
  host: string;
  port: number;
  pid: number;
  dataDir: string;
  /** Params for this server as root (no password); `database` null unless given. */
  params(database?: string | null): ConnectionParams;
  /** A root connection with the options Ferry uses for exact values, in UTC, multiple statements allowed. */
  connect(database?: string): Promise<Connection>;
  /** The server's error log so far (for failure messages). */
  log(): string;
  /** True once the server process has exited (stopped, or crashed). */
  exited(): boolean;
  /** Starts the server again on the same data directory and port, after it exited (a crash). */
  restart(): Promise<void>;
  /** SIGTERM by PID, waits for the exit (SIGKILL after `graceMs`), removes the data directory. */
  stop(graceMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a fresh MariaDB server; resolves once it accepts connections. */
export async function startMariadbInstance(options: { serverId?: number; extraArgs?: string[] } = {}): Promise<MariadbInstance> {
  const layout = installMariadb('ferry-mariadb-');
  const { root, dataDir, errorLog } = layout;
  const port = await freePort();
  // Later options win: a test may listen elsewhere or turn TLS on (--ssl-ca, --ssl-cert, --ssl-key).
  const launch = () => spawn(
    MARIADBD,
    mariadbdArgs(layout, { port, serverId: options.serverId ?? 2, extraArgs: options.extraArgs ?? [] }),
    { stdio: 'ignore' },
  );
  let pid = 0;
  let exited = false;
  let exit: Promise<void> = Promise.resolve();
  /** Spawns the server on this data directory and port. */
  const spawnServer = () => {
    const child = launch();
    if (child.pid === undefined) throw new Error(`spawning ${MARIADBD} failed`);
    pid = child.pid;
    exited = false;
    exit = new Promise<void>((resolveExit) => {
      child.on('exit', () => {
        exited = true;
        resolveExit();
      });
    });
  };
  spawnServer();
  const log = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');

  const connect = async (database?: string): Promise<Connection> => {
    const connection = await mysql.createConnection({
      host: '127.0.0.1',
      port,
      user: 'root',
      database,
      charset: 'utf8mb4_general_ci',
      timezone: 'Z',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      jsonStrings: true,
      multipleStatements: true,
    });
    connection.on('error', () => undefined);
    await connection.query("SET time_zone = '+00:00'");
    return connection;
  };

  const stop = async (graceMs = 20_000): Promise<void> => {
    if (!exited) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
      const timedOut = await Promise.race([exit.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut && !exited) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await exit;
      }
    }
    rmSync(root, { recursive: true, force: true });
  };

  const waitReady = async (): Promise<void> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited) {
        const text = log();
        rmSync(root, { recursive: true, force: true });
        throw new Error(`${MARIADBD} exited during startup:\n${text}`);
      }
      try {
        const probe = await connect();
        await probe.end();
        break;
      } catch {
        // not accepting connections yet
      }
      if (Date.now() > deadline) {
        const text = log();
        await stop(5_000);
        throw new Error(`${MARIADBD} did not accept connections on port ${port} within 60 s:\n${text}`);
      }
      await sleep(100);
    }
  };
  await waitReady();

  return {
    host: '127.0.0.1',
    port,
    get pid() {
      return pid;
    },
    dataDir,
    exited: () => exited,
    async restart() {
      if (!exited) throw new Error(`mariadbd ${pid} is running; restart() starts a server that exited`);
      spawnServer();
      await waitReady();
    },
    params: (database = null) => ({
      engine: 'mysql',
      host: '127.0.0.1',
      port,
      database,
      username: 'root',
      password: null,
      tls: { mode: 'none' },
    }),
    connect,
    log,
    stop,
  };
}

/** A fresh MariaDB server with an empty `database` (utf8mb4) and a root connection to it; `stop` ends both. */
export async function startMariadbWithDatabase(database: string, options: { serverId?: number } = {}): Promise<{ instance: MariadbInstance; connection: Connection; stop(): Promise<void> }> {
  const instance = await startMariadbInstance(options);
  const admin = await instance.connect();
  await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  await admin.end();
  const connection = await instance.connect(database);
  return {
    instance,
    connection,
    async stop() {
      await connection.end().catch(() => undefined);
      await instance.stop();
    },
  };
}
