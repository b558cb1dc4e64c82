// MySQL/MariaDB to PostgreSQL load throughput: a Ferry one-time job next to pgloader (the
// Debian package) on the same MariaDB table in the same run. Run with
// `node bench/mysql-to-postgres.js` after `npm run build` (it drives dist/ through the REST
// API of a `ferry serve` it starts and stops by PID).
//
// Environment: BENCH_ROWS (default 2000000), BENCH_REPEAT (default 3),
// FERRY_TEST_MYSQL_HOST / FERRY_TEST_MYSQL_PORT / FERRY_TEST_MYSQL_USER (default
// 127.0.0.1:3306 root, no password), FERRY_TEST_PG_HOST / FERRY_TEST_PG_DEST_PORT /
// FERRY_TEST_PG_USER (default 127.0.0.1:5433 postgres).
//
// Both methods do the same work: read the table from MariaDB, create the schema, the table and
// its primary key on PostgreSQL, load every row. Each repetition loads into a fresh, empty
// PostgreSQL database; the order of the two methods alternates between repetitions. The
// source table is built once per run without writing it to the binlog (sql_log_bin = 0: the
// binlog is shared with the tests). Everything the benchmark created is removed at the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MYSQL_HOST = process.env.FERRY_TEST_MYSQL_HOST ?? '127.0.0.1';
const MYSQL_PORT = Number(process.env.FERRY_TEST_MYSQL_PORT ?? 3306);
const MYSQL_USER = process.env.FERRY_TEST_MYSQL_USER ?? 'root';
const PG_HOST = process.env.FERRY_TEST_PG_HOST ?? '127.0.0.1';
const PG_PORT = Number(process.env.FERRY_TEST_PG_DEST_PORT ?? 5433);
const PG_USER = process.env.FERRY_TEST_PG_USER ?? 'postgres';
const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

// A typical order table: integers, a varchar, a decimal, a datetime with milliseconds, a text.
const TABLE_DDL = `
  CREATE TABLE t (
    id bigint NOT NULL PRIMARY KEY,
    customer_id int NOT NULL,
    name varchar(64) NOT NULL,
    amount decimal(14,2) NOT NULL,
    created_at datetime(3) NOT NULL,
    note text
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const fillSql = (from, to) => `
  INSERT INTO t
  SELECT seq, seq % 100000,
         CONCAT('customer ', seq % 100000, ' ', LEFT(MD5(seq), 8 + seq % 24)),
         (seq * 37 % 10000000) / 100,
         TIMESTAMP '2022-01-01 00:00:00' + INTERVAL seq * 1250000 MICROSECOND,
         IF(seq % 10 = 0, NULL, REPEAT(CONCAT(MD5(seq), ' '), 1 + seq % 4))
    FROM seq_${from}_to_${to}`;

const log = (message) => process.stderr.write(`[bench] ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uid = () => randomBytes(4).toString('hex');
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const seconds = (started) => Number(process.hrtime.bigint() - started) / 1e9;

async function withPg(database, fn) {
  const client = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const createdPg = [];
async function createPgDatabase(name) {
  await withPg('postgres', (c) => c.query(`CREATE DATABASE ${name}`));
  createdPg.push(name);
}
async function dropPgDatabase(name) {
  await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const i = createdPg.indexOf(name);
  if (i >= 0) createdPg.splice(i, 1);
}

/** Rows of <schema>.t on the destination, and whether it has a primary key. */
async function checkLoaded(database, schema) {
  return withPg(database, async (c) => {
    const rows = Number((await c.query(`SELECT count(*) AS n FROM "${schema}".t`)).rows[0].n);
    const key = await c.query(`SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, [`"${schema}".t`]);
    return { rows, primaryKey: key.rows.length === 1 };
  });
}

function run(command, args, options = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun({ stdout, stderr }) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`))));
  });
}

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
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-bench-m2p-'));
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

async function runFerry(ferry, sourceDb, rep) {
  const dst = `bench_m2p_ferry_${uid()}`;
  await createPgDatabase(dst);
  const id = uid();
  const srcId = `src-${id}`;
  const dstId = `dst-${id}`;
  const jobId = `bench-${id}`;
  try {
    await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: srcId, displayName: 'bench MariaDB', engine: 'mysql', host: MYSQL_HOST, port: MYSQL_PORT, username: MYSQL_USER });
    await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: dstId, displayName: 'bench PostgreSQL', engine: 'postgresql', host: PG_HOST, port: PG_PORT, database: dst, username: PG_USER });
    await call(ferry.url, 'POST', '/v1/migrationJobs', {
      id: jobId,
      displayName: 'bench',
      type: 'one-time',
      sourceProfileId: srcId,
      destinationProfileId: dstId,
      selection: { include: [sourceDb], exclude: [] },
    });
    const started = process.hrtime.bigint();
    await call(ferry.url, 'POST', `/v1/migrationJobs/${jobId}:start`, {});
    let job;
    for (;;) {
      job = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}`);
      if (job.status === 'COMPLETED') break;
      if (job.status === 'FAILED') throw new Error(`Ferry job failed: ${JSON.stringify(job.error)}`);
      await sleep(50);
    }
    const wall = seconds(started);
    const { objects } = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}/objects`);
    const table = objects.find((o) => o.name === `${sourceDb}.t`);
    if (!table || table.rowsCopied !== ROWS) throw new Error(`Ferry reports ${table?.rowsCopied} rows copied, expected ${ROWS}`);
    const loaded = await checkLoaded(dst, sourceDb);
    if (loaded.rows !== ROWS || !loaded.primaryKey) throw new Error(`Ferry loaded ${JSON.stringify(loaded)}, expected ${ROWS} rows and a primary key`);
    log(`run ${rep}: Ferry ${wall.toFixed(2)} s from :start to Completed (${table.bytesCopied} bytes copied)`);
    await call(ferry.url, 'DELETE', `/v1/migrationJobs/${jobId}`);
    await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${srcId}`);
    await call(ferry.url, 'DELETE', `/v1/connectionProfiles/${dstId}`);
    return wall;
  } finally {
    await dropPgDatabase(dst);
  }
}

async function runPgloader(sourceDb, rep, workDir) {
  const dst = `bench_m2p_pgloader_${uid()}`;
  await createPgDatabase(dst);
  try {
    // pgloader's defaults do what Ferry's one-time job does: create the schema (named after
    // the MySQL database) and the table, load the rows, then build the primary key.
    const commandFile = join(workDir, `load-${rep}.load`);
    writeFileSync(
      commandFile,
      [
        'LOAD DATABASE',
        `  FROM mysql://${MYSQL_USER}@${MYSQL_HOST}:${MYSQL_PORT}/${sourceDb}`,
        `  INTO postgresql://${PG_USER}@${PG_HOST}:${PG_PORT}/${dst}`,
        '  WITH include drop, create tables, create indexes, reset sequences, foreign keys',
        ';',
        '',
      ].join('\n'),
    );
    const started = process.hrtime.bigint();
    const { stdout } = await run('pgloader', ['--no-ssl-cert-verification', '--dynamic-space-size', '2048', commandFile], { cwd: workDir });
    const wall = seconds(started);
    const summary = stdout.split('\n').find((l) => /Total import time/.test(l))?.trim() ?? '';
    const loaded = await checkLoaded(dst, sourceDb);
    if (loaded.rows !== ROWS || !loaded.primaryKey) throw new Error(`pgloader loaded ${JSON.stringify(loaded)}, expected ${ROWS} rows and a primary key:\n${stdout}`);
    log(`run ${rep}: pgloader ${wall.toFixed(2)} s (${summary.replace(/\s+/g, ' ')})`);
    return wall;
  } finally {
    await dropPgDatabase(dst);
  }
}

async function main() {
  const sourceDb = `bench_m2p_${uid()}`;
  const workDir = mkdtempSync(join(tmpdir(), 'ferry-bench-pgloader-'));
  const admin = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, multipleStatements: true });
  let ferry = null;
  let sourceCreated = false;
  try {
    const pgloaderVersion = (await run('pgloader', ['--version'])).stdout.split('\n')[0];
    const [[{ version }]] = await admin.query('SELECT VERSION() AS version');
    log(`building ${sourceDb}.t on MariaDB ${version} at ${MYSQL_HOST}:${MYSQL_PORT}: ${ROWS.toLocaleString('en-US')} rows`);
    await admin.query(`CREATE DATABASE ${sourceDb} CHARACTER SET utf8mb4`);
    sourceCreated = true;
    await admin.query(`SET SESSION sql_log_bin = 0; USE ${sourceDb}`);
    await admin.query(TABLE_DDL);
    for (let from = 1; from <= ROWS; from += 500_000) await admin.query(fillSql(from, Math.min(ROWS, from + 499_999)));
    await admin.query('ANALYZE TABLE t');
    const [[size]] = await admin.query('SELECT DATA_LENGTH AS data, AVG_ROW_LENGTH AS avg FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sourceDb, 't']);
    log(`source table: InnoDB data ${(Number(size.data) / 1e6).toFixed(0)} MB, ${size.avg} bytes per row on average`);

    ferry = await startFerry();
    const ferryRuns = [];
    const pgloaderRuns = [];
    for (let rep = 1; rep <= REPEAT; rep++) {
      // Alternate the order so that neither method always runs on warmer servers.
      if (rep % 2 === 1) {
        ferryRuns.push(await runFerry(ferry, sourceDb, rep));
        pgloaderRuns.push(await runPgloader(sourceDb, rep, workDir));
      } else {
        pgloaderRuns.push(await runPgloader(sourceDb, rep, workDir));
        ferryRuns.push(await runFerry(ferry, sourceDb, rep));
      }
    }

    const line = (name, values) => {
      const m = median(values);
      return `| ${name} | ${m.toFixed(2)} | ${Math.round(ROWS / m).toLocaleString('en-US')} | ${values.map((v) => v.toFixed(2)).join(', ')} |`;
    };
    process.stdout.write(
      [
        '',
        `MySQL/MariaDB to PostgreSQL: ${ROWS.toLocaleString('en-US')} rows (bigint id, int, varchar(64), decimal(14,2), datetime(3), text; ` +
          `${(Number(size.data) / 1e6).toFixed(0)} MB InnoDB data), MariaDB ${version} ${MYSQL_HOST}:${MYSQL_PORT} to PostgreSQL ${PG_HOST}:${PG_PORT}, ` +
          `${REPEAT} runs each, fresh destination database per run, both creating the table and its primary key.`,
        '',
        '| Method | Median s | Rows/s | Runs s |',
        '|---|---:|---:|---|',
        line('Ferry one-time job (REST :start to Completed)', ferryRuns),
        line(`pgloader (${pgloaderVersion.replace(/^pgloader version /, '').replace(/"/g, '')}, default settings)`, pgloaderRuns),
        '',
        'Reproduce: `npm run build && node bench/mysql-to-postgres.js` (BENCH_ROWS and BENCH_REPEAT change the size and the number of runs).',
        '',
      ].join('\n'),
    );
  } finally {
    if (ferry) await ferry.stop().catch((e) => log(`stopping Ferry failed: ${e.message}`));
    for (const name of [...createdPg]) await dropPgDatabase(name).catch((e) => log(`dropping ${name} failed: ${e.message}`));
    if (sourceCreated) await admin.query(`DROP DATABASE IF EXISTS ${sourceDb}`).catch((e) => log(`dropping ${sourceDb} failed: ${e.message}`));
    await admin.end().catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
