// Copy throughput: Ferry's full dump against the plain `psql COPY | psql COPY` pipe and
// `pgcopydb clone`, in one run, on the same table between the two local PostgreSQL clusters
// (source 5432, destination 5433). Run with `npm run bench:copy` (builds first).
//
// Environment: BENCH_ROWS (default 2000000), BENCH_REPEAT (default 3), BENCH_METHODS (comma
// list of ferry, psql, pgcopydb; default all three), PGCOPYDB (default pgcopydb),
// BENCH_DB_PREFIX (default bench: the databases' names start with it, so that two runs at once
// can be told apart and cleaned up separately),
// FERRY_TEST_PG_HOST / FERRY_TEST_PG_SOURCE_PORT / FERRY_TEST_PG_DEST_PORT / FERRY_TEST_PG_USER.
//
// Each repetition copies into a fresh, empty destination database. The source table is built
// once per run, then CHECKPOINTed (else the first method to run pays for writing the build's
// dirty pages), and read by every method (equally warm in the cache). Every method ends with
// the primary key built: the psql pipe loads a table without it and then runs ADD PRIMARY KEY,
// inside its timing. Ferry's peak RSS (VmHWM of `ferry serve`, over the whole run) is printed
// too: BENCH_ROWS=10000000 BENCH_METHODS=ferry BENCH_REPEAT=1 gives the 10 M-row figure; and the
// CPU seconds `ferry serve` used per job (the wall times are noisy on a shared machine, its CPU
// much less so).
// Databases, the Ferry server (stopped by its PID) and the work directories are removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DST_PORT, HOST, SRC_PORT, bash, cpuMillis, createDatabase, dropDatabase, log, median, memoryOf, pgUri, psqlCmd, runBench, runFerryOneTime, seconds, startFerry, uid, withClient } from './lib.js';

const peakRssMiB = (pid) => {
  const hwm = memoryOf(pid)?.hwm;
  return hwm === undefined || Number.isNaN(hwm) ? null : hwm / 2 ** 20;
};

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const METHODS = (process.env.BENCH_METHODS ?? 'ferry,psql,pgcopydb').split(',').map((m) => m.trim()).filter(Boolean);
const PGCOPYDB = process.env.PGCOPYDB ?? 'pgcopydb';
const PREFIX = process.env.BENCH_DB_PREFIX ?? 'bench';
if (!/^[a-z_][a-z0-9_]*$/.test(PREFIX)) throw new Error(`BENCH_DB_PREFIX must be a lower-case SQL identifier, got ${JSON.stringify(PREFIX)}`);
const TARGET_VS_PSQL = 1.0;
const TARGET_VS_PGCOPYDB = 0.8;
const TARGET_RSS_MIB = 200;

const COLUMNS_DDL = `
    id bigint NOT NULL,
    name text NOT NULL,
    amount numeric(14, 2),
    created_at timestamptz NOT NULL,
    attrs jsonb`;
const TABLE_DDL = `CREATE TABLE public.t (${COLUMNS_DDL}, CONSTRAINT t_pkey PRIMARY KEY (id))`;
const TABLE_WITHOUT_PK_DDL = `CREATE TABLE public.t (${COLUMNS_DDL})`;
// ~40-character text (30 to 50), a numeric, a timestamptz and a small jsonb per row.
const FILL_SQL = `
  INSERT INTO public.t
  SELECT g,
         substr(md5(g::text) || md5((g + 1)::text), 1, 30 + (g % 21)::integer),
         round((random() * 1000000)::numeric, 2),
         '2022-01-01 00:00:00+00'::timestamptz + g * interval '1.25 second',
         jsonb_build_object('k', g % 100, 'tag', 'x' || (g % 7), 'ok', g % 2 = 0, 'note', md5((g * 7)::text))
    FROM generate_series(1, $1::bigint) g`;

async function countRows(port, database) {
  return withClient(port, database, async (c) => Number((await c.query('SELECT count(*) AS n FROM public.t')).rows[0].n));
}

async function checkCopy(method, dst) {
  const rows = await countRows(DST_PORT, dst);
  if (rows !== ROWS) throw new Error(`${method} copied ${rows} rows, expected ${ROWS}`);
  const hasPk = await withClient(DST_PORT, dst, async (c) => (await c.query(`SELECT 1 FROM pg_constraint WHERE conrelid = 'public.t'::regclass AND contype = 'p'`)).rows.length === 1);
  if (!hasPk) throw new Error(`${method} left public.t without its primary key`);
}

async function runPsqlPipe(sourceDb, rep) {
  const dst = `${PREFIX}_dst_psql_${uid()}`;
  await createDatabase(DST_PORT, dst);
  try {
    await withClient(DST_PORT, dst, (c) => c.query(TABLE_WITHOUT_PK_DDL));
    const started = process.hrtime.bigint();
    await bash(`set -o pipefail; ${psqlCmd(SRC_PORT, sourceDb, 'COPY public.t TO STDOUT')} | ${psqlCmd(DST_PORT, dst, 'COPY public.t FROM STDIN')}`);
    await bash(psqlCmd(DST_PORT, dst, 'ALTER TABLE public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id)'));
    const s = seconds(started);
    await checkCopy('psql pipe', dst);
    log(`run ${rep}: psql pipe + ADD PRIMARY KEY ${s.toFixed(2)} s`);
    return s;
  } finally {
    await dropDatabase(DST_PORT, dst);
  }
}

async function runPgcopydb(sourceDb, rep) {
  const dst = `${PREFIX}_dst_pgcopydb_${uid()}`;
  await createDatabase(DST_PORT, dst);
  const dir = mkdtempSync(join(tmpdir(), 'pgcopydb-bench-'));
  try {
    const started = process.hrtime.bigint();
    await bash(`${PGCOPYDB} clone --source '${pgUri(SRC_PORT, sourceDb)}' --target '${pgUri(DST_PORT, dst)}' --dir '${dir}' --no-owner --no-acl`);
    const s = seconds(started);
    await checkCopy('pgcopydb clone', dst);
    log(`run ${rep}: pgcopydb clone ${s.toFixed(2)} s`);
    return s;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(DST_PORT, dst);
  }
}

/** CPU seconds `ferry serve` used per job, in run order. */
const ferryCpu = [];

async function runFerry(ferry, sourceDb, rep) {
  const dst = `${PREFIX}_dst_ferry_${uid()}`;
  await createDatabase(DST_PORT, dst);
  try {
    const cpuBefore = cpuMillis(ferry.pid);
    const { wall, objects } = await runFerryOneTime(ferry, sourceDb, dst);
    const cpu = (cpuMillis(ferry.pid) - cpuBefore) / 1000;
    ferryCpu.push(cpu);
    const table = objects.find((o) => o.name === 'public.t');
    if (!table || table.rowsCopied !== ROWS) throw new Error(`Ferry reports ${table?.rowsCopied} rows copied, expected ${ROWS}`);
    await checkCopy('Ferry', dst);
    log(`run ${rep}: Ferry ${wall.toFixed(2)} s :start to Completed, ferry serve CPU ${cpu.toFixed(2)} s (peak RSS so far ${peakRssMiB(ferry.pid)?.toFixed(0)} MiB)`);
    return wall;
  } finally {
    await dropDatabase(DST_PORT, dst);
  }
}

async function main() {
  const sourceDb = `${PREFIX}_src_${uid()}`;
  let ferry = null;
  log(`building the source table: ${ROWS.toLocaleString('en-US')} rows on ${HOST}:${SRC_PORT}`);
  await createDatabase(SRC_PORT, sourceDb);
  await withClient(SRC_PORT, sourceDb, async (c) => {
    await c.query(TABLE_DDL);
    await c.query(FILL_SQL, [ROWS]);
    await c.query('VACUUM ANALYZE public.t');
    // The build's dirty pages written now, not by the checkpointer during the first timed copy.
    await c.query('CHECKPOINT');
  });
  const tableBytes = await withClient(SRC_PORT, sourceDb, async (c) => Number((await c.query(`SELECT pg_table_size('public.t') AS n`)).rows[0].n));
  log(`table size on the source: ${(tableBytes / 2 ** 20).toFixed(0)} MiB`);

  if (METHODS.includes('ferry')) ferry = await startFerry();
  const runs = { ferry: [], psql: [], pgcopydb: [] };
  const runners = { ferry: (rep) => runFerry(ferry, sourceDb, rep), psql: (rep) => runPsqlPipe(sourceDb, rep), pgcopydb: (rep) => runPgcopydb(sourceDb, rep) };
  for (let rep = 1; rep <= REPEAT; rep++) {
    // Rotate the order so that no method always runs on a warmer (or busier) server.
    const order = METHODS.map((_, i) => METHODS[(i + rep - 1) % METHODS.length]);
    for (const method of order) runs[method].push(await runners[method](rep));
  }
  const rss = ferry === null ? null : peakRssMiB(ferry.pid);

  const m = Object.fromEntries(Object.entries(runs).filter(([, v]) => v.length > 0).map(([k, v]) => [k, median(v)]));
  const line = (name, key) => `| ${name} | ${m[key].toFixed(2)} | ${runs[key].map((v) => v.toFixed(2)).join(', ')} | ${Math.round(ROWS / m[key]).toLocaleString('en-US')} |`;
  const verdict = (ok) => (ok ? 'PASS' : 'MISS');
  const lines = [
    '',
    `Copy throughput: ${ROWS.toLocaleString('en-US')} rows (bigint PK, 30-50-char text, numeric, timestamptz, jsonb), ` +
      `${(tableBytes / 2 ** 20).toFixed(0)} MiB on the source, PostgreSQL ${SRC_PORT} to ${DST_PORT} on ${HOST}, ${REPEAT} runs each, fresh destination database per run, medians.`,
    '',
    '| Method | Median s | Runs s | Rows/s |',
    '|---|---:|---|---:|',
    ...(m.ferry !== undefined ? [line('Ferry one-time job, :start to Completed', 'ferry')] : []),
    ...(m.psql !== undefined ? [line('psql COPY TO \\| psql COPY FROM (no PK), then ADD PRIMARY KEY', 'psql')] : []),
    ...(m.pgcopydb !== undefined ? [line('pgcopydb clone (default jobs)', 'pgcopydb')] : []),
    ...(ferryCpu.length > 0 ? ['', `ferry serve CPU per job (user + system, s): ${ferryCpu.map((v) => v.toFixed(2)).join(', ')}; load average at the end: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`] : []),
    '',
    '| Target | Measured | Verdict |',
    '|---|---:|---|',
    ...(m.ferry !== undefined && m.psql !== undefined ? [`| Ferry / psql pipe <= ${TARGET_VS_PSQL.toFixed(1)}x | ${(m.ferry / m.psql).toFixed(2)}x | ${verdict(m.ferry / m.psql <= TARGET_VS_PSQL)} |`] : []),
    ...(m.ferry !== undefined && m.pgcopydb !== undefined ? [`| Ferry / pgcopydb clone <= ${TARGET_VS_PGCOPYDB.toFixed(1)}x | ${(m.ferry / m.pgcopydb).toFixed(2)}x | ${verdict(m.ferry / m.pgcopydb <= TARGET_VS_PGCOPYDB)} |`] : []),
    ...(rss !== null ? [`| ferry serve peak RSS (VmHWM) <= ${TARGET_RSS_MIB} MiB (target stated for a 10 M-row dump; this run: ${ROWS.toLocaleString('en-US')} rows) | ${rss.toFixed(0)} MiB | ${verdict(rss <= TARGET_RSS_MIB)} |`] : []),
    '',
    `Reproduce: BENCH_ROWS=${ROWS} BENCH_REPEAT=${REPEAT} BENCH_METHODS=${METHODS.join(',')} npm run bench:copy`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await runBench(main);
