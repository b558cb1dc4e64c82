// Data validation against the copy: a one-time Ferry job copies a 2,000,000-row table between
// the two local PostgreSQL clusters (source 5432, destination 5433), then `:validate` compares
// it (row count, checksum of every value, per key bucket). Prints both wall times side by side.
// Run with `npm run bench:validate` (builds first).
//
// Environment: BENCH_ROWS (default 2000000), FERRY_TEST_PG_* as in lib.js.
//
// The validation reads both sides through copyOut and hashes in Ferry (docs/validation.md): it
// moves the table over the wire twice (source and destination), the copy moves it twice too
// (read and write). Databases and the server (stopped by its PID) are removed at the end.
import { DST_PORT, SRC_PORT, call, createDatabase, log, runBench, runFerryOneTime, seconds, sleep, startFerry, uid, withClient } from './lib.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);

const TABLE_SQL = `
  CREATE TABLE public.t (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(14, 2), created_at timestamptz NOT NULL, attrs jsonb);
  INSERT INTO public.t
  SELECT g, substr(md5(g::text) || md5((g + 1)::text), 1, 30 + (g % 21)::integer), round((g % 1000003)::numeric / 7, 2),
         '2022-01-01 00:00:00+00'::timestamptz + g * interval '1.25 second', jsonb_build_object('k', g % 100, 'tag', 'x' || (g % 7))
    FROM generate_series(1, ${ROWS}::bigint) g;
  ANALYZE public.t;`;

async function main() {
  const source = `bench_val_src_${uid()}`;
  const destination = `bench_val_dst_${uid()}`;
  await createDatabase(SRC_PORT, source);
  await createDatabase(DST_PORT, destination);
  log(`filling ${ROWS} rows`);
  await withClient(SRC_PORT, source, (c) => c.query(TABLE_SQL));
  const ferry = await startFerry('ferry-bench-validate-');
  const copy = await runFerryOneTime(ferry, source, destination, { keepJob: true });
  log(`copy: ${copy.wall.toFixed(1)} s`);
  const started = process.hrtime.bigint();
  let validation = await call(ferry.url, 'POST', `/v1/migrationJobs/${copy.job.id}:validate`, {});
  const deadline = Date.now() + 900_000;
  while (validation.status === 'RUNNING') {
    if (Date.now() > deadline) throw new Error(`validation still running after 900 s: ${JSON.stringify(validation.summary)}`);
    await sleep(100);
    validation = await call(ferry.url, 'GET', `/v1/migrationJobs/${copy.job.id}/validations/${validation.id}`);
  }
  const wall = seconds(started);
  if (validation.clean !== true) throw new Error(`validation not clean: ${JSON.stringify(validation)}`);
  const table = validation.tables[0];
  const result = {
    rows: ROWS,
    copySeconds: Number(copy.wall.toFixed(2)),
    validateSeconds: Number(wall.toFixed(2)),
    validateRowsPerSecond: Math.round(ROWS / wall),
    ratio: Number((wall / copy.wall).toFixed(2)),
    sourceRows: table.sourceRows,
    destinationRows: table.destinationRows,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdout.write(`copy of ${ROWS} rows: ${result.copySeconds} s; validation: ${result.validateSeconds} s (${result.ratio}x the copy)\n`);
}

await runBench(main);
