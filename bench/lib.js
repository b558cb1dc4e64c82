// Shared setup of the benchmarks (the one home of what every bench/*.js script needs): the two
// local PostgreSQL clusters (source 5432, destination 5433), databases created and dropped by
// name, commands and shell pipelines, a real `ferry serve` from the compiled code (stopped by
// its PID) and its REST API, the memory and CPU of a process from /proc, medians and
// percentiles, and clean-up steps that also run on failure and on Ctrl-C.
//
// Environment: FERRY_TEST_PG_HOST / FERRY_TEST_PG_SOURCE_PORT / FERRY_TEST_PG_DEST_PORT /
// FERRY_TEST_PG_USER; FERRY_LOG_LEVEL for the server (default warn); FERRY_BENCH_NODE_ARGS,
// node options for the server (space-separated), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
// to profile it (NODE_OPTIONS refuses --cpu-prof); FERRY_BENCH_LOG_FILE, a file the server's
// output is appended to (default: kept in memory, shown only when it fails to start).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const HOST = process.env.FERRY_TEST_PG_HOST ?? '127.0.0.1';
export const SRC_PORT = Number(process.env.FERRY_TEST_PG_SOURCE_PORT ?? 5432);
export const DST_PORT = Number(process.env.FERRY_TEST_PG_DEST_PORT ?? 5433);
export const USER = process.env.FERRY_TEST_PG_USER ?? 'postgres';

export const log = (message) => process.stderr.write(`[bench] ${new Date().toISOString().slice(11, 19)} ${message}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uid = () => randomBytes(4).toString('hex');
export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
export const seconds = (startedNs) => Number(process.hrtime.bigint() - startedNs) / 1e9;
/** The p-th percentile (nearest rank) of `values`; NaN when there are none. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** The environment variable `name` as a number >= 0 (`fallback` when unset); throws on anything else. */
export function envNumber(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0, got ${JSON.stringify(process.env[name])}`);
  return value;
}

/** A connected client the caller ends; its idle errors (server gone) are ignored. */
export async function connect(port, database) {
  const client = new pg.Client({ host: HOST, port, user: USER, database });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export async function withClient(port, database, fn) {
  const client = new pg.Client({ host: HOST, port, user: USER, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Databases created by createDatabase and not dropped yet, as [port, name]: dropAllDatabases() removes them. */
export const created = [];
export async function createDatabase(port, name) {
  await withClient(port, 'postgres', (c) => c.query(`CREATE DATABASE ${name}`));
  created.push([port, name]);
}
export async function dropDatabase(port, name) {
  await withClient(port, 'postgres', async (c) => {
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [name]);
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  const i = created.findIndex(([p, n]) => p === port && n === name);
  if (i >= 0) created.splice(i, 1);
}
export async function dropAllDatabases() {
  for (const [port, name] of [...created]) await dropDatabase(port, name).catch((e) => log(`dropping ${name} failed: ${e.message}`));
}

/**
 * The pgbench source of the CDC benchmarks: database `name` on SRC_PORT (dropped at the end),
 * `pgbench -i -s scale`, pgbench_history with REPLICA IDENTITY FULL (it has no key), the
 * benchmark's own one-row table (`tableSql`: CREATE TABLE, then INSERT), VACUUM ANALYZE.
 * Resolves { source (a client, ended at the end), accounts (pgbench_accounts rows) }.
 */
export async function pgbenchSource(name, scale, tableSql) {
  await createDatabase(SRC_PORT, name);
  await run('pgbench', ['-i', '-q', '-s', String(scale), '-h', HOST, '-p', String(SRC_PORT), name]);
  const source = await connect(SRC_PORT, name);
  onCleanup(() => source.end());
  await source.query('ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL');
  for (const sql of tableSql) await source.query(sql);
  await source.query('VACUUM ANALYZE');
  const accounts = Number((await source.query('SELECT count(*) AS n FROM pgbench_accounts')).rows[0].n);
  return { source, accounts };
}

/**
 * Runs a command; resolves { stdout, stderr }, rejects with both on a non-zero exit. PGUSER is
 * set; `env` adds variables, `cwd` sets the directory; `echo` copies its stderr to ours.
 */
export function run(command, args, { env = {}, cwd, echo = false } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGUSER: USER, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-100_000);
      if (echo) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun({ stdout, stderr }) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout.slice(-20_000)}\n${stderr}`))));
  });
}

/** Runs a bash script; resolves with its stdout, rejects with its output on a non-zero exit. */
export const bash = (script, env = {}) => run('bash', ['-c', script], { env }).then((r) => r.stdout);

export const psqlCmd = (port, db, sql) => `psql -X -q -v ON_ERROR_STOP=1 -h ${HOST} -p ${port} -U ${USER} -d ${db} -c "${sql}"`;
export const pgUri = (port, db) => `postgresql://${USER}@${HOST}:${port}/${db}`;

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * `ferry serve` from the compiled code (dist/), on a free port, stopped by its PID.
 * Options: `prefix` of its temporary data directory, or `dataDir` (kept on stop); `logFile`
 * (its output goes there instead of a 20 kB buffer; default FERRY_BENCH_LOG_FILE); `logLevel` (FERRY_LOG_LEVEL, default warn);
 * `nodeArgs` (e.g. --cpu-prof). A string argument is the prefix. Stopped by runBench's clean-up
 * unless stopped before (stop() may be called more than once).
 */
export async function startFerry(options = {}) {
  const { prefix = 'ferry-bench-', dataDir: givenDir = null, logFile = process.env.FERRY_BENCH_LOG_FILE ?? null, logLevel = process.env.FERRY_LOG_LEVEL ?? 'warn', nodeArgs = (process.env.FERRY_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '') } =
    typeof options === 'string' ? { prefix: options } : options;
  if (!existsSync(join(ROOT, 'dist'))) throw new Error('dist/ is missing: run `npm run build` first');
  const dataDir = givenDir ?? mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const fd = logFile === null ? null : openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'bin', 'ferry.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: logLevel },
    stdio: fd === null ? ['ignore', 'ignore', 'pipe'] : ['ignore', fd, fd],
  });
  if (fd !== null) closeSync(fd);
  let output = '';
  child.stderr?.on('data', (d) => (output = (output + d).slice(-20_000)));
  const tail = () => (logFile === null ? output : `see ${logFile}`);
  let exited = false;
  const exit = new Promise((r) => child.on('exit', (code, signal) => ((exited = true), r({ code, signal }))));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`ferry serve exited: ${tail()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      process.kill(child.pid, 'SIGKILL');
      throw new Error(`ferry serve did not start: ${tail()}`);
    }
    await sleep(100);
  }
  const server = {
    url,
    port,
    pid: child.pid,
    dataDir,
    exit,
    isRunning: () => !exited,
    output: () => output,
    async stop() {
      if (!exited) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => !exited && process.kill(child.pid, 'SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      if (givenDir === null) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  onCleanup(() => server.stop());
  return server;
}

/** VmRSS and VmHWM (peak RSS) of a process in bytes, from /proc/PID/status; null once it is gone. */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Resets the peak RSS (VmHWM) of a process we started to its current RSS; false where the kernel does not allow it. */
export function resetPeakMemory(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `check` every `everyMs` (default 100) until it returns a value other than null/false,
 * and returns it; throws after `timeoutMs` (default 900 s) naming `what` (and `hint`, the knob
 * that changes the timeout).
 */
export async function waitUntil(what, check, { everyMs = 100, timeoutMs = 900_000, hint = null } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${hint ? ` (${hint})` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * Runs `tick` every `everyMs` (fixed rate, skipping missed ticks) until stop() is called, which
 * resolves once the loop ended; a failing tick is logged. Stopped by runBench's clean-up too,
 * before the clients it uses are ended (clean-up runs last-in first-out).
 */
export function every(everyMs, tick) {
  let stopped = false;
  const done = (async () => {
    let next = Date.now();
    while (!stopped) {
      try {
        await tick();
      } catch (error) {
        if (!stopped) log(`poll failed: ${error.message}`);
      }
      next += everyMs;
      const now = Date.now();
      if (next < now) next = now;
      await sleep(next - now);
    }
  })();
  const stop = async () => {
    stopped = true;
    await done;
  };
  onCleanup(stop);
  return { stop };
}

/**
 * Watches the memory of a process from now on: stop() resolves { sampled: max VmRSS sampled
 * every 100 ms, hwm: VmHWM (peak RSS, reset at the start; NaN where the kernel refused the
 * reset), peak: the larger of both }.
 */
export function watchMemory(pid) {
  const reset = resetPeakMemory(pid);
  let maxRss = memoryOf(pid)?.rss ?? NaN;
  const loop = every(100, async () => {
    const m = memoryOf(pid);
    if (m !== null && !(m.rss <= maxRss)) maxRss = m.rss;
  });
  return {
    async stop() {
      await loop.stop();
      const hwm = memoryOf(pid)?.hwm ?? NaN;
      // Without a reset VmHWM is the peak of the whole process life: only the samples then.
      return { sampled: maxRss, hwm: reset ? hwm : NaN, peak: reset ? Math.max(maxRss, hwm) : maxRss };
    },
  };
}

/** CPU time (user + system) a process has used so far, in ms; NaN where /proc is missing. */
export function cpuMillis(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** CPU ms used so far by each server process of `db` (pg_stat_activity on the cluster `client` is on), by PID; `type` filters backend_type. */
export async function serverCpu(client, db, type = null) {
  const { rows } = await client.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR backend_type = $2)`, [db, type]);
  return new Map(rows.map((r) => [r.pid, cpuMillis(r.pid)]).filter(([, ms]) => Number.isFinite(ms)));
}

/** CPU ms used between two serverCpu readings (a process that started in between counts whole). */
export function cpuSince(before, after) {
  return [...after].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);
}

/**
 * Clean-up steps, undone last-in first-out by runBench: after main ends, fails, or on Ctrl-C
 * (SIGINT) or SIGTERM; then the databases createDatabase made and nobody dropped. A failing step
 * is logged and the others still run.
 */
const cleanupSteps = [];
export const onCleanup = (step) => cleanupSteps.push(step);
async function cleanUp() {
  while (cleanupSteps.length > 0) {
    const step = cleanupSteps.pop();
    try {
      await step();
    } catch (error) {
      log(`cleanup step failed: ${error.message}`);
    }
  }
  await dropAllDatabases();
}

/** Runs a benchmark's main(), then its clean-up steps (also on failure and on SIGINT/SIGTERM), and exits 0 or 1. */
export async function runBench(main) {
  let interrupted = false;
  const onSignal = (signal) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: cleaning up`);
    cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let failed = false;
  try {
    await main();
  } catch (error) {
    failed = true;
    process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  }
  if (interrupted) return;
  await cleanUp();
  log('cleaned up');
  process.exit(failed ? 1 : 0);
}

/** One REST call; throws on a non-2xx answer. */
export async function call(url, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  const parsed = text === '' ? null : JSON.parse(text);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return parsed;
}

/**
 * A Ferry job of `type` ('one-time' or 'continuous') from `sourceDb` (source cluster) to
 * `destinationDb` (destination cluster) and its two connection profiles, created through the
 * REST API, not started. `remove()` deletes the job (which drops its slot and publication on
 * the source) and the profiles.
 */
export async function createPgJob(ferry, type, sourceDb, destinationDb) {
  const id = uid();
  const srcId = `src-${id}`;
  const dstId = `dst-${id}`;
  const jobId = `bench-${id}`;
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: srcId, displayName: 'bench source', engine: 'postgresql', host: HOST, port: SRC_PORT, database: sourceDb, username: USER });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: dstId, displayName: 'bench destination', engine: 'postgresql', host: HOST, port: DST_PORT, database: destinationDb, username: USER });
  await call(ferry.url, 'POST', '/v1/migrationJobs', { id: jobId, displayName: 'bench', type, sourceProfileId: srcId, destinationProfileId: dstId });
  return {
    jobId,
    async remove() {
      await call(ferry.url, 'DELETE', `/v1/migrationJobs/${jobId}`);
      await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${srcId}`);
      await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${dstId}`);
    },
  };
}

/**
 * A Ferry one-time job from `sourceDb` (source cluster) to `destinationDb` (destination
 * cluster), through the REST API: profiles, job, :start, polled every 50 ms until Completed.
 * Returns the wall time from :start to Completed, the job and its objects; removes the job and
 * the profiles afterwards, unless `keepJob` (the caller then works on `job.id`).
 */
export async function runFerryOneTime(ferry, sourceDb, destinationDb, { timeoutMs = 900_000, keepJob = false } = {}) {
  const { jobId, remove } = await createPgJob(ferry, 'one-time', sourceDb, destinationDb);
  const started = process.hrtime.bigint();
  await call(ferry.url, 'POST', `/v1/migrationJobs/${jobId}:start`, {});
  let job;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    job = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}`);
    if (job.status === 'COMPLETED') break;
    if (job.status === 'FAILED') throw new Error(`Ferry job failed: ${JSON.stringify(job.error)}`);
    if (Date.now() > deadline) throw new Error(`Ferry job not Completed after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await sleep(50);
  }
  const wall = seconds(started);
  const { objects } = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}/objects`);
  const { events } = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}/events`);
  if (keepJob) return { wall, job, objects, events };
  await remove();
  return { wall, job, objects, events };
}
