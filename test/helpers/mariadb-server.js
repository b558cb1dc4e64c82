// How a private MariaDB server is laid out and started, shared by the tests
// (test/helpers/mariadb-instance.ts) and the benchmarks (bench/mariadb.js). Plain JavaScript so
// that both vitest and plain node import it; types in mariadb-server.d.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INSTALL_DB = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((p) => existsSync(p)) ?? 'mariadb-install-db';
export const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p)) ?? 'mariadbd';

const asRoot = () => process.getuid?.() === 0;

/**
 * A fresh data directory: `mariadb-install-db` into `<root>/data` (root without a password),
 * with a temporary directory of its own, `<root>/tmp`: a mariadbd starting (or bootstrapping)
 * with a shared tmpdir deletes the #sql* files of every other server there (MariaDB 10.11 then
 * crashes). Removes `root` and throws with the tool's output when it fails.
 */
export function installMariadb(prefix) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(root, 'data');
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  // --no-defaults: the system server's my.cnf (user, log paths, port) must not leak in.
  const install = spawnSync(
    INSTALL_DB,
    ['--no-defaults', `--datadir=${dataDir}`, `--tmpdir=${tmp}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(asRoot() ? ['--user=root'] : [])],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`${INSTALL_DB} failed (exit ${install.status}): ${install.stdout}\n${install.stderr}`);
  }
  return { root, dataDir, tmp, errorLog: join(root, 'error.log') };
}

/**
 * mariadbd's arguments for a server on `layout` (from installMariadb): loopback `port`, its own
 * socket and pid file, row binlog with full images, local_infile, utf8mb4. `extraArgs` come
 * last: later options win.
 */
export function mariadbdArgs(layout, { port, serverId, bufferPool = '128M', logFileSize = '64M', extraArgs = [] }) {
  return [
    '--no-defaults',
    ...(asRoot() ? ['--user=root'] : []),
    `--datadir=${layout.dataDir}`,
    `--tmpdir=${layout.tmp}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(layout.root, 'mysqld.sock')}`,
    `--pid-file=${join(layout.root, 'mysqld.pid')}`,
    `--log-error=${layout.errorLog}`,
    `--log-bin=${join(layout.dataDir, 'mariadb-bin')}`,
    `--server-id=${serverId}`,
    '--binlog-format=ROW',
    '--binlog-row-image=FULL',
    '--local-infile=1',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    `--innodb-buffer-pool-size=${bufferPool}`,
    `--innodb-log-file-size=${logFileSize}`,
    '--max-connections=200',
    ...extraArgs,
  ];
}
