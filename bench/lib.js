// Shared setup of the benchmarks: the two local PostgreSQL clusters (source 5432, destination
// 5433), databases created and dropped by name, shell pipelines, a real `ferry serve` from the
// compiled code (stopped by its PID) and its REST API, medians.
//
// Environment: FERRY_TEST_PG_HOST / FERRY_TEST_PG_SOURCE_PORT / FERRY_TEST_PG_DEST_PORT /
// FERRY_TEST_PG_USER; FERRY_LOG_LEVEL for the server (default warn).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

/** Runs a bash script; resolves with its stdout, rejects with its stderr on a non-zero exit. */
export function bash(script, env = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGUSER: USER, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(`bash -c ${JSON.stringify(script)} exited ${code}: ${stderr}`))));
  });
}

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

/** `ferry serve` from the compiled code (dist/), on a free port with its own data directory, stopped by its PID. */
export async function startFerry(prefix = 'ferry-bench-') {
  if (!existsSync(join(ROOT, 'dist'))) throw new Error('dist/ is missing: run `npm run build` first');
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'ferry.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output = (output + d).slice(-20_000)));
  let exited = false;
  const exit = new Promise((r) => child.on('exit', () => ((exited = true), r())));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`ferry serve exited: ${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`ferry serve did not start: ${output}`);
    await sleep(100);
  }
  return {
    url,
    pid: child.pid,
    output: () => output,
    async stop() {
      if (!exited) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => !exited && process.kill(child.pid, 'SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A process's peak resident set size so far (VmHWM of /proc/PID/status), in MiB; null when unreadable. */
export function peakRssMiB(pid) {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
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
 * A Ferry one-time job from `sourceDb` (source cluster) to `destinationDb` (destination
 * cluster), through the REST API: profiles, job, :start, polled every 50 ms until Completed.
 * Returns the wall time from :start to Completed, the job and its objects; removes the job and
 * the profiles afterwards, unless `keepJob` (the caller then works on `job.id`).
 */
export async function runFerryOneTime(ferry, sourceDb, destinationDb, { timeoutMs = 900_000, keepJob = false } = {}) {
  const id = uid();
  const srcId = `src-${id}`;
  const dstId = `dst-${id}`;
  const jobId = `bench-${id}`;
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: srcId, displayName: 'bench source', engine: 'postgresql', host: HOST, port: SRC_PORT, database: sourceDb, username: USER });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: dstId, displayName: 'bench destination', engine: 'postgresql', host: HOST, port: DST_PORT, database: destinationDb, username: USER });
  await call(ferry.url, 'POST', '/v1/migrationJobs', { id: jobId, displayName: 'bench', type: 'one-time', sourceProfileId: srcId, destinationProfileId: dstId });
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
  await call(ferry.url, 'DELETE', `/v1/migrationJobs/${jobId}`);
  await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${srcId}`);
  await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${dstId}`);
  return { wall, job, objects, events };
}
