// Private MariaDB servers for the benchmarks: a fresh data directory, then `mariadbd` on a free
// loopback port with its own data directory, socket and tmpdir, row binlog with full images,
// stopped by its PID and removed. The layout and the server's arguments are the tests' own
// (test/helpers/mariadb-server.js); the shared server on 3306 is never touched.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { MARIADBD, installMariadb, mariadbdArgs } from '../test/helpers/mariadb-server.js';
import { freePort, sleep } from './lib.js';

/**
 * Starts a fresh server; resolves once it accepts connections. `extraArgs` come last (later
 * options win). Returns { name, host, port, pid, connect(database?), log(), stop() }.
 */
export async function startMariadb({ serverId, extraArgs = [], bufferPool = '256M', name = 'mariadb' } = {}) {
  const layout = installMariadb(`ferry-bench-${name}-`);
  const { root, errorLog } = layout;
  const port = await freePort();
  const child = spawn(MARIADBD, mariadbdArgs(layout, { port, serverId, bufferPool, logFileSize: '256M', extraArgs }), { stdio: 'ignore' });
  let exited = false;
  const exit = new Promise((r) => child.on('exit', () => ((exited = true), r())));
  const log = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');
  const connect = async (database) => {
    const connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', database, supportBigNumbers: true, bigNumberStrings: true, multipleStatements: true });
    connection.on('error', () => undefined);
    return connection;
  };
  const stop = async (graceMs = 20_000) => {
    if (!exited) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timedOut = await Promise.race([exit.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut && !exited) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await exit;
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      const text = log();
      rmSync(root, { recursive: true, force: true });
      throw new Error(`${MARIADBD} (${name}) exited during startup:\n${text}`);
    }
    try {
      await (await connect()).end();
      break;
    } catch {
      // not accepting connections yet
    }
    if (Date.now() > deadline) {
      const text = log();
      await stop(5_000);
      throw new Error(`${MARIADBD} (${name}) did not accept connections on port ${port} within 60 s:\n${text}`);
    }
    await sleep(100);
  }
  return { name, host: '127.0.0.1', port, pid: child.pid, connect, log, stop };
}
