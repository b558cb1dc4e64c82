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
import { DST_PORT, HOST, SRC_PORT, bash, createDatabase, dropDatabase, log, median, psqlCmd, runBench, runFerryOneTime, startFerry, uid, withClient } from './lib.js';

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

async function countRows(port, database) {
  return withClient(port, database, async (c) => Number((await c.query('SELECT count(*) AS n FROM public.t')).rows[0].n));
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
  try {
    const { wall, job, objects, events } = await runFerryOneTime(ferry, sourceDb, dst);
    const running = events.find((e) => e.status === 'RUNNING');
    const completed = [...events].reverse().find((e) => e.status === 'COMPLETED');
    const dumpSeconds = running && completed ? (Date.parse(completed.time) - Date.parse(running.time)) / 1000 : null;
    const table = objects.find((o) => o.name === 'public.t');
    if (!table || table.rowsCopied !== ROWS) throw new Error(`Ferry reports ${table?.rowsCopied} rows copied, expected ${ROWS}`);
    const rows = await countRows(DST_PORT, dst);
    if (rows !== ROWS) throw new Error(`Ferry copied ${rows} rows, expected ${ROWS}`);
    log(`run ${rep}: Ferry ${wall.toFixed(2)} s start to Completed (full dump phase ${dumpSeconds?.toFixed(2)} s, job duration ${job.durationSeconds} s, bytesCopied ${table.bytesCopied})`);
    return { wall, dumpSeconds, durationSeconds: job.durationSeconds, bytesCopied: table.bytesCopied };
  } finally {
    await dropDatabase(DST_PORT, dst);
  }
}

async function main() {
  const sourceDb = `bench_src_${uid()}`;
  log(`building the source table: ${ROWS.toLocaleString('en-US')} rows on ${HOST}:${SRC_PORT}`);
  await createDatabase(SRC_PORT, sourceDb);
  await withClient(SRC_PORT, sourceDb, async (c) => {
    await c.query(TABLE_DDL);
    await c.query(FILL_SQL, [ROWS]);
    await c.query('VACUUM ANALYZE public.t');
  });
  const copyBytes = Number((await bash(`set -o pipefail; ${psqlCmd(SRC_PORT, sourceDb, 'COPY public.t TO STDOUT')} | wc -c`)).trim());
  log(`COPY text size: ${(copyBytes / 1e6).toFixed(1)} MB`);

  const ferry = await startFerry();
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
}

await runBench(main);
