// MySQL/MariaDB to PostgreSQL load throughput: a Ferry one-time job next to pgloader (the
// Debian package) on the same MariaDB table in the same run. Run with
// `node bench/mysql-to-postgres.js` after `npm run build` (it drives dist/ through the REST
// API of a `ferry serve` it starts and stops by PID).
//
// Environment: BENCH_ROWS (default 2000000), BENCH_REPEAT (default 3), BENCH_PGLOADER=0 (Ferry
// alone, where pgloader is not installed),
// FERRY_TEST_MYSQL_HOST / FERRY_TEST_MYSQL_PORT / FERRY_TEST_MYSQL_USER (default
// 127.0.0.1:3306 root, no password), FERRY_TEST_PG_HOST / FERRY_TEST_PG_DEST_PORT /
// FERRY_TEST_PG_USER (default 127.0.0.1:5433 postgres).
//
// Both methods do the same work: read the table from MariaDB, create the schema, the table and
// its primary key on PostgreSQL, load every row. Each repetition loads into a fresh, empty
// PostgreSQL database; the order of the two methods alternates between repetitions. The
// source table is built once per run without writing it to the binlog (sql_log_bin = 0: the
// binlog is shared with the tests). Everything the benchmark created is removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { DST_PORT as PG_PORT, HOST as PG_HOST, USER as PG_USER, call, createDatabase, dropDatabase, log, median, onCleanup, run, runBench, seconds, sleep, startFerry, uid, withClient } from './lib.js';

const MYSQL_HOST = process.env.FERRY_TEST_MYSQL_HOST ?? '127.0.0.1';
const MYSQL_PORT = Number(process.env.FERRY_TEST_MYSQL_PORT ?? 3306);
const MYSQL_USER = process.env.FERRY_TEST_MYSQL_USER ?? 'root';
const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PGLOADER = process.env.BENCH_PGLOADER !== '0';

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

/** Rows of <schema>.t on the destination, and whether it has a primary key. */
async function checkLoaded(database, schema) {
  return withClient(PG_PORT, database, async (c) => {
    const rows = Number((await c.query(`SELECT count(*) AS n FROM "${schema}".t`)).rows[0].n);
    const key = await c.query(`SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, [`"${schema}".t`]);
    return { rows, primaryKey: key.rows.length === 1 };
  });
}

async function runFerry(ferry, sourceDb, rep) {
  const dst = `bench_m2p_ferry_${uid()}`;
  await createDatabase(PG_PORT, dst);
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
    await dropDatabase(PG_PORT, dst);
  }
}

async function runPgloader(sourceDb, rep, workDir) {
  const dst = `bench_m2p_pgloader_${uid()}`;
  await createDatabase(PG_PORT, dst);
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
    await dropDatabase(PG_PORT, dst);
  }
}

async function main() {
  const sourceDb = `bench_m2p_${uid()}`;
  const workDir = mkdtempSync(join(tmpdir(), 'ferry-bench-pgloader-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  const admin = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, multipleStatements: true });
  onCleanup(() => admin.end());
  const pgloaderVersion = await run('pgloader', ['--version']).then(
    (r) => r.stdout.split('\n')[0],
    (error) => {
      if (error.code !== 'ENOENT') throw error;
      if (!PGLOADER) return null;
      throw new Error('pgloader is not installed: install it (Debian package pgloader) to compare, or set BENCH_PGLOADER=0 to time Ferry alone');
    },
  );
  const [[{ version }]] = await admin.query('SELECT VERSION() AS version');
  log(`building ${sourceDb}.t on MariaDB ${version} at ${MYSQL_HOST}:${MYSQL_PORT}: ${ROWS.toLocaleString('en-US')} rows`);
  await admin.query(`CREATE DATABASE ${sourceDb} CHARACTER SET utf8mb4`);
  onCleanup(() => admin.query(`DROP DATABASE IF EXISTS ${sourceDb}`));
  await admin.query(`SET SESSION sql_log_bin = 0; USE ${sourceDb}`);
  await admin.query(TABLE_DDL);
  for (let from = 1; from <= ROWS; from += 500_000) await admin.query(fillSql(from, Math.min(ROWS, from + 499_999)));
  await admin.query('ANALYZE TABLE t');
  const [[size]] = await admin.query('SELECT DATA_LENGTH AS data, AVG_ROW_LENGTH AS avg FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sourceDb, 't']);
  log(`source table: InnoDB data ${(Number(size.data) / 1e6).toFixed(0)} MB, ${size.avg} bytes per row on average`);

  const ferry = await startFerry({ prefix: 'ferry-bench-m2p-' });
  const ferryRuns = [];
  const pgloaderRuns = [];
  for (let rep = 1; rep <= REPEAT; rep++) {
    // Alternate the order so that neither method always runs on warmer servers.
    if (rep % 2 === 1 || pgloaderVersion === null) {
      ferryRuns.push(await runFerry(ferry, sourceDb, rep));
      if (pgloaderVersion !== null) pgloaderRuns.push(await runPgloader(sourceDb, rep, workDir));
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
      pgloaderVersion === null
        ? '| pgloader | not run (BENCH_PGLOADER=0) | | |'
        : line(`pgloader (${pgloaderVersion.replace(/^pgloader version /, '').replace(/"/g, '')}, default settings)`, pgloaderRuns),
      '',
      'Reproduce: `npm run build && node bench/mysql-to-postgres.js` (BENCH_ROWS and BENCH_REPEAT change the size and the number of runs; BENCH_PGLOADER=0 leaves pgloader out).',
      '',
    ].join('\n'),
  );
}

await runBench(main);
