// Private MariaDB servers for the benchmarks: `mariadb-install-db` into a temporary directory,
// then `mariadbd` on a free loopback port with its own data directory, socket and tmpdir, row
// binlog with full images, stopped by its PID and removed. Same settings as the tests' private
// servers (test/helpers/mariadb-instance.ts, TypeScript run by vitest, which plain node cannot
// import); the shared server on 3306 is never touched.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { freePort, sleep } from './lib.js';

const INSTALL_DB = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((p) => existsSync(p)) ?? 'mariadb-install-db';
const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p)) ?? 'mariadbd';

/**
 * Starts a fresh server; resolves once it accepts connections. `extraArgs` come last (later
 * options win). Returns { host, port, pid, connect(database?), log(), stop() }.
 */
export async function startMariadb({ serverId, extraArgs = [], bufferPool = '256M', name = 'mariadb' } = {}) {
  const root = mkdtempSync(join(tmpdir(), `ferry-bench-${name}-`));
  const dataDir = join(root, 'data');
  // Its own tmpdir: a mariadbd starting with a shared tmpdir deletes the #sql* files of others.
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  const asRoot = process.getuid?.() === 0;
  const install = spawnSync(
    INSTALL_DB,
    ['--no-defaults', `--datadir=${dataDir}`, `--tmpdir=${tmp}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(asRoot ? ['--user=root'] : [])],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${INSTALL_DB} failed (exit ${install.status}): ${install.stdout}\n${install.stderr}`);
  }
  const port = await freePort();
  const errorLog = join(root, 'error.log');
  const child = spawn(
    MARIADBD,
    [
      '--no-defaults',
      ...(asRoot ? ['--user=root'] : []),
      `--datadir=${dataDir}`,
      `--tmpdir=${tmp}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(root, 'mysqld.sock')}`,
      `--pid-file=${join(root, 'mysqld.pid')}`,
      `--log-error=${errorLog}`,
      `--log-bin=${join(dataDir, 'mariadb-bin')}`,
      `--server-id=${serverId}`,
      '--binlog-format=ROW',
      '--binlog-row-image=FULL',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      `--innodb-buffer-pool-size=${bufferPool}`,
      '--innodb-log-file-size=256M',
      '--max-connections=200',
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
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
