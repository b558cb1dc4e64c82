/**
 * Stops and starts the two PostgreSQL clusters reserved for fault tests:
 * 15/ferryfaultsrc on 127.0.0.1:5434 (source side) and 15/ferryfaultdst on 5435 (destination
 * side). Nothing else uses them, so a test may stop them; it must start them again in a
 * `finally` or `afterAll` (`ensureFaultClustersOnline`). The shared clusters (5432, 5433) are
 * never touched here.
 *
 * `pg_ctlcluster --skip-systemctl-redirect` is used (no systemd in the test environment);
 * when the tests do not run as root, it is run through `sudo -n -u postgres`.
 */
import { execFile } from 'node:child_process';
import pg from 'pg';
import { PG_HOST, PG_USER } from './postgres.js';

export interface FaultCluster {
  version: string;
  name: string;
  port: number;
}

export const FAULT_SOURCE: FaultCluster = {
  version: process.env.FERRY_TEST_PG_FAULT_VERSION ?? '15',
  name: process.env.FERRY_TEST_PG_FAULT_SOURCE_CLUSTER ?? 'ferryfaultsrc',
  port: Number(process.env.FERRY_TEST_PG_FAULT_SOURCE_PORT ?? 5434),
};

export const FAULT_DESTINATION: FaultCluster = {
  version: process.env.FERRY_TEST_PG_FAULT_VERSION ?? '15',
  name: process.env.FERRY_TEST_PG_FAULT_DEST_CLUSTER ?? 'ferryfaultdst',
  port: Number(process.env.FERRY_TEST_PG_FAULT_DEST_PORT ?? 5435),
};

const PROTECTED_PORTS = new Set([5432, 5433]);

function run(command: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolveRun({ stdout, stderr });
    });
  });
}

function pgCtlCluster(cluster: FaultCluster, action: 'start' | 'stop' | 'status', extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
  if (PROTECTED_PORTS.has(cluster.port)) throw new Error(`refusing to ${action} the shared cluster on port ${cluster.port}`);
  const args = ['--skip-systemctl-redirect', cluster.version, cluster.name, action, ...extra];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return isRoot ? run('pg_ctlcluster', args) : run('sudo', ['-n', '-u', 'postgres', 'pg_ctlcluster', ...args]);
}

/** True when a connection to the cluster succeeds now. */
export async function isAccepting(cluster: FaultCluster): Promise<boolean> {
  const client = new pg.Client({ host: PG_HOST, port: cluster.port, user: PG_USER, database: 'postgres', connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True when pg_ctlcluster reports the server running. */
export async function isRunning(cluster: FaultCluster): Promise<boolean> {
  try {
    await pgCtlCluster(cluster, 'status');
    return true;
  } catch {
    return false; // pg_ctlcluster status exits 3 when the server is down
  }
}

export interface StopResult {
  /** True when the fast shutdown completed within the timeout. */
  fast: boolean;
  /** Seconds until the server was down. */
  seconds: number;
  /** Why the fast shutdown did not complete, when it did not. */
  fastError: string | null;
}

/**
 * Fast shutdown (client sessions are terminated, like a server restart), waiting at most
 * `fastTimeoutSeconds` for it (pg_ctl -t). A fast shutdown waits for the walsenders to send
 * everything and for their clients to confirm it: when it does not complete in time the
 * server is stopped in immediate mode and `fast` is false. Resolves once the server is down.
 */
export async function stopCluster(cluster: FaultCluster, fastTimeoutSeconds = 30): Promise<StopResult> {
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  if (!(await isRunning(cluster))) return { fast: true, seconds: 0, fastError: null };
  try {
    await pgCtlCluster(cluster, 'stop', ['-m', 'fast', '--', '-t', String(fastTimeoutSeconds)]);
    return { fast: true, seconds: seconds(), fastError: null };
  } catch (error) {
    const fastError = (error as Error).message;
    if (await isRunning(cluster)) await pgCtlCluster(cluster, 'stop', ['-m', 'immediate']);
    return { fast: false, seconds: seconds(), fastError };
  }
}

/**
 * Starts the cluster (if down) and resolves once it accepts connections. A server stuck in a
 * shutdown (see stopCluster) is stopped in immediate mode first.
 */
export async function startCluster(cluster: FaultCluster, timeoutMs = 60_000): Promise<void> {
  if (await isRunning(cluster)) {
    // Starting up (recovery) ends by itself; a shutdown that hangs does not.
    for (let i = 0; i < 50; i++) {
      if (await isAccepting(cluster)) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    await pgCtlCluster(cluster, 'stop', ['-m', 'immediate']).catch(() => undefined);
  }
  if (!(await isRunning(cluster))) await pgCtlCluster(cluster, 'start');
  const deadline = Date.now() + timeoutMs;
  while (!(await isAccepting(cluster))) {
    if (Date.now() > deadline) throw new Error(`cluster ${cluster.version}/${cluster.name} (port ${cluster.port}) does not accept connections after start`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** For finally/afterAll: both fault clusters are running again, whatever happened. */
export async function ensureFaultClustersOnline(): Promise<void> {
  const results = await Promise.allSettled([startCluster(FAULT_SOURCE), startCluster(FAULT_DESTINATION)]);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw new Error(failed.map((f) => String(f.reason)).join('\n'));
}

/** Runs `fn` with the cluster stopped; the cluster is started again afterwards even when `fn` throws. */
export async function withClusterStopped<T>(cluster: FaultCluster, fn: (stop: StopResult) => Promise<T>): Promise<T> {
  const stop = await stopCluster(cluster);
  try {
    return await fn(stop);
  } finally {
    await startCluster(cluster);
  }
}
