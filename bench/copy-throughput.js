// Copy throughput: Ferry's full dump against the plain `psql COPY | psql COPY` pipe, on the
// same 1,000,000-row table between the two local PostgreSQL clusters (source 5432,
// destination 5433). Run with `npm run bench:copy` (builds first).
//
// Environment: BENCH_ROWS (default 1000000), BENCH_REPEAT (default 3),
// FERRY_TEST_PG_HOST / FERRY_TEST_PG_SOURCE_PORT / FERRY_TEST_PG_DEST_PORT / FERRY_TEST_PG_USER.
//
// Each repetition copies into a fresh, empty destination database. The source table is built
// once per run and read by both methods (equally warm in the cache). Databases, the Ferry
// server (stopped by its PID) and its data directory are removed at the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = process.env.FERRY_TEST_PG_HOST ?? '127.0.0.1';
const SRC_PORT = Number(process.env.FERRY_TEST_PG_SOURCE_PORT ?? 5432);
const DST_PORT = Number(process.env.FERRY_TEST_PG_DEST_PORT ?? 5433);
const USER = process.env.FERRY_TEST_PG_USER ?? 'postgres';
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

const TABLE_DDL = `
  CREATE TABLE public.t (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    amount numeric(14, 2),
    created_at timestamptz NOT NULL,
    attrs jsonb
  )`;
// ~40-character text (30 to 50), a numeric, a timestamptz and a small jsonb per row.
const FILL_SQL = `
  INSERT INTO public.t
  SELECT g,
         substr(md5(g::text) || md5((g + 1)::text), 1, 30 + (g % 21)::integer),
         round((random() * 1000000)::numeric, 2),
         '2022-01-01 00:00:00+00'::timestamptz + g * interval '1.25 second',
         jsonb_build_object('k', g % 100, 'tag', 'x' || (g % 7), 'ok', g % 2 = 0)
    FROM generate_series(1, $1::bigint) g`;

const log = (message) => process.stderr.write(`[bench] ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uid = () => randomBytes(4).toString('hex');
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

async function withClient(port, database, fn) {
  const client = new pg.Client({ host: HOST, port, user: USER, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const created = []; // [port, name]
async function createDatabase(port, name) {
  await withClient(port, 'postgres', (c) => c.query(`CREATE DATABASE ${name}`));
  created.push([port, name]);
}
async function dropDatabase(port, name) {
  await withClient(port, 'postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const i = created.findIndex(([p, n]) => p === port && n === name);
  if (i >= 0) created.splice(i, 1);
}
async function countRows(port, database) {
  return withClient(port, database, async (c) => Number((await c.query('SELECT count(*) AS n FROM public.t')).rows[0].n));
}

function bash(script) {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGUSER: USER } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(`bash -c ${JSON.stringify(script)} exited ${code}: ${stderr}`))));
  });
}

const psqlCmd = (port, db, sql) => `psql -X -q -v ON_ERROR_STOP=1 -h ${HOST} -p ${port} -U ${USER} -d ${db} -c "${sql}"`;

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** `ferry serve` from the compiled code, stopped by PID. */
async function startFerry() {
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'ferry.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output += d));
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

async function call(url, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text === '' ? null : JSON.parse(text);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return parsed;
}

async function runPsqlPipe(sourceDb, rep) {
  const dst = `bench_dst_psql_${uid()}`;
  await createDatabase(DST_PORT, dst);
  try {
    await withClient(DST_PORT, dst, (c) => c.query(TABLE_DDL));
    const started = process.hrtime.bigint();
    await bash(`set -o pipefail; ${psqlCmd(SRC_PORT, sourceDb, 'COPY public.t TO STDOUT')} | ${psqlCmd(DST_PORT, dst, 'COPY public.t FROM STDIN')}`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rows = await countRows(DST_PORT, dst);
    if (rows !== ROWS) throw new Error(`psql pipe copied ${rows} rows, expected ${ROWS}`);
    log(`run ${rep}: psql pipe ${seconds.toFixed(2)} s`);
    return seconds;
  } finally {
    await dropDatabase(DST_PORT, dst);
  }
}

async function runFerry(ferry, sourceDb, rep) {
  const dst = `bench_dst_ferry_${uid()}`;
  await createDatabase(DST_PORT, dst);
  const id = uid();
  const srcId = `src-${id}`;
  const dstId = `dst-${id}`;
  const jobId = `bench-${id}`;
  try {
    await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: srcId, displayName: 'bench source', engine: 'postgresql', host: HOST, port: SRC_PORT, database: sourceDb, username: USER });
    await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: dstId, displayName: 'bench destination', engine: 'postgresql', host: HOST, port: DST_PORT, database: dst, username: USER });
    await call(ferry.url, 'POST', '/v1/migrationJobs', { id: jobId, displayName: 'bench', type: 'one-time', sourceProfileId: srcId, destinationProfileId: dstId });
    const started = process.hrtime.bigint();
    await call(ferry.url, 'POST', `/v1/migrationJobs/${jobId}:start`, {});
    let job;
    for (;;) {
      job = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}`);
      if (job.status === 'COMPLETED') break;
      if (job.status === 'FAILED') throw new Error(`Ferry job failed: ${JSON.stringify(job.error)}`);
      await sleep(50);
    }
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const { objects } = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}/objects`);
    const { events } = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}/events`);
    const running = events.find((e) => e.status === 'RUNNING');
    const completed = [...events].reverse().find((e) => e.status === 'COMPLETED');
    const dumpSeconds = running && completed ? (Date.parse(completed.time) - Date.parse(running.time)) / 1000 : null;
    const table = objects.find((o) => o.name === 'public.t');
    if (!table || table.rowsCopied !== ROWS) throw new Error(`Ferry reports ${table?.rowsCopied} rows copied, expected ${ROWS}`);
    const rows = await countRows(DST_PORT, dst);
    if (rows !== ROWS) throw new Error(`Ferry copied ${rows} rows, expected ${ROWS}`);
    log(`run ${rep}: Ferry ${wall.toFixed(2)} s start to Completed (full dump phase ${dumpSeconds?.toFixed(2)} s, job duration ${job.durationSeconds} s, bytesCopied ${table.bytesCopied})`);
    await call(ferry.url, 'DELETE', `/v1/migrationJobs/${jobId}`);
    await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${srcId}`);
    await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${dstId}`);
    return { wall, dumpSeconds, durationSeconds: job.durationSeconds, bytesCopied: table.bytesCopied };
  } finally {
    await dropDatabase(DST_PORT, dst);
  }
}

async function main() {
  const sourceDb = `bench_src_${uid()}`;
  let ferry = null;
  try {
    log(`building the source table: ${ROWS.toLocaleString('en-US')} rows on ${HOST}:${SRC_PORT}`);
    await createDatabase(SRC_PORT, sourceDb);
    await withClient(SRC_PORT, sourceDb, async (c) => {
      await c.query(TABLE_DDL);
      await c.query(FILL_SQL, [ROWS]);
      await c.query('VACUUM ANALYZE public.t');
    });
    const copyBytes = Number((await bash(`set -o pipefail; ${psqlCmd(SRC_PORT, sourceDb, 'COPY public.t TO STDOUT')} | wc -c`)).trim());
    log(`COPY text size: ${(copyBytes / 1e6).toFixed(1)} MB`);

    ferry = await startFerry();
    const psql = [];
    const ferryRuns = [];
    for (let rep = 1; rep <= REPEAT; rep++) {
      // Alternate the order so that neither method always runs on a warmer server.
      if (rep % 2 === 1) {
        psql.push(await runPsqlPipe(sourceDb, rep));
        ferryRuns.push(await runFerry(ferry, sourceDb, rep));
      } else {
        ferryRuns.push(await runFerry(ferry, sourceDb, rep));
        psql.push(await runPsqlPipe(sourceDb, rep));
      }
    }

    const rowsLine = (name, values) => {
      const m = median(values);
      return `| ${name} | ${m.toFixed(2)} | ${values.map((v) => v.toFixed(2)).join(', ')} | ${Math.round(ROWS / m).toLocaleString('en-US')} | ${(copyBytes / 1e6 / m).toFixed(1)} |`;
    };
    const dumpTimes = ferryRuns.map((r) => r.dumpSeconds).filter((v) => v !== null);
    const lines = [
      '',
      `Copy throughput: ${ROWS.toLocaleString('en-US')} rows (bigint id, ~40-char text, numeric, timestamptz, small jsonb), ` +
        `${(copyBytes / 1e6).toFixed(1)} MB of COPY text, PostgreSQL ${SRC_PORT} to ${DST_PORT} on ${HOST}, ${REPEAT} runs each, fresh destination database per run.`,
      '',
      '| Method | Median s | Runs s | Rows/s | MB/s |',
      '|---|---:|---|---:|---:|',
      rowsLine('psql COPY TO STDOUT \\| psql COPY FROM STDIN (table pre-created)', psql),
      rowsLine('Ferry one-time job, wall time from :start to Completed', ferryRuns.map((r) => r.wall)),
      ...(dumpTimes.length === ferryRuns.length ? [rowsLine('Ferry, full dump phase only (Running event to Completed event)', dumpTimes)] : []),
      '',
      `MB = 10^6 bytes of the table's COPY text (${copyBytes} bytes, measured with COPY TO STDOUT | wc -c); Ferry reported bytesCopied = ${ferryRuns.map((r) => r.bytesCopied).join(', ')}.`,
      `Ferry's wall time includes the Starting... checks, the schema creation and the primary key; the psql pipe loads into a pre-created table with its primary key.`,
      '',
      'Reproduce: `npm run bench:copy` (BENCH_ROWS and BENCH_REPEAT change the size and the number of runs).',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    if (ferry) await ferry.stop().catch((e) => log(`stopping Ferry failed: ${e.message}`));
    for (const [port, name] of [...created]) await dropDatabase(port, name).catch((e) => log(`dropping ${name} failed: ${e.message}`));
    if (created.length === 0) log('cleaned up');
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
