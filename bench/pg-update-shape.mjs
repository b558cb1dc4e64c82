// The statement shapes of the PostgreSQL applier for full-row updates (issue 15, catch-up):
// the same 200,000 pgbench_accounts updates (100 chunks of 2,000 rows, one transaction), sent
// as Ferry sends them (text[] arrays, cast in SQL), as
//   upsert            INSERT ... SELECT FROM unnest(...) ON CONFLICT (aid) DO UPDATE  (before 4b32fd8)
//   update            UPDATE ... FROM unnest(...) WHERE t.aid = v.p1                   (the applier now)
//   upsert-projectset the upsert with unnest in the target list (ProjectSet, no tuplestore)
// Shapes alternate per round over two key ranges, so table bloat grows alike for each. Prints
// seconds and WAL bytes per run; WAL is the steadier number on a shared machine.
//
// Run: `node bench/pg-update-shape.mjs`. Environment: BENCH_SCALE (10), BENCH_ROUNDS (3),
// FERRY_TEST_PG_* as in lib.js (the table lives on the destination port). Its database is removed at the end.
import { DST_PORT, HOST, connect, createDatabase, envNumber, log, median, onCleanup, run, runBench, uid } from './lib.js';

const SCALE = envNumber('BENCH_SCALE', 10);
const ROUNDS = Math.max(1, envNumber('BENCH_ROUNDS', 3));
const CHUNKS = 100;
const CHUNK_ROWS = 2_000;
const FILLER = ' '.repeat(84);

const functionScan = 'SELECT u.p1::int4 AS p1, u.p2::int4 AS p2, u.p3::int4 AS p3, u.p4::character(84) AS p4 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u (p1, p2, p3, p4)';
const projectSet = 'SELECT unnest($1::text[])::int4 AS p1, unnest($2::text[])::int4 AS p2, unnest($3::text[])::int4 AS p3, unnest($4::text[])::character(84) AS p4';
const upsert = (source) =>
  `INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT v.p1, v.p2, v.p3, v.p4 FROM (${source}) AS v` +
  ' ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, abalance = EXCLUDED.abalance, filler = EXCLUDED.filler';
const SHAPES = {
  upsert: upsert(functionScan),
  update: `UPDATE ONLY pgbench_accounts AS t SET bid = v.p2, abalance = v.p3, filler = v.p4 FROM (${functionScan}) AS v WHERE t.aid = v.p1`,
  'upsert-projectset': upsert(projectSet),
};

async function main() {
  const db = `bench_shape_${uid()}`;
  await createDatabase(DST_PORT, db);
  await run('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', HOST, '-p', String(DST_PORT), db]);
  const client = await connect(DST_PORT, db);
  onCleanup(() => client.end());

  const runShape = async (name, first) => {
    const lsn = (await client.query('SELECT pg_current_wal_lsn() AS l')).rows[0].l;
    const started = process.hrtime.bigint();
    await client.query('BEGIN');
    for (let k = 0; k < CHUNKS; k++) {
      const columns = [[], [], [], []];
      for (let i = 0; i < CHUNK_ROWS; i++) {
        const aid = first + k * CHUNK_ROWS + i;
        columns[0].push(String(aid));
        columns[1].push(String(1 + Math.floor((aid - 1) / 100_000)));
        columns[2].push(String(k + 1));
        columns[3].push(FILLER);
      }
      await client.query({ name, text: SHAPES[name], values: columns });
    }
    await client.query('COMMIT');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const wal = Number((await client.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [lsn])).rows[0].d);
    return { seconds, walMiB: wal / 1024 / 1024 };
  };

  const names = Object.keys(SHAPES);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  const span = CHUNKS * CHUNK_ROWS;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, name] of names.entries()) {
      const first = 1 + ((round + i) % names.length) * span;
      results[name].push(await runShape(name, first));
      log(`round ${round + 1}: ${name} ${results[name].at(-1).seconds.toFixed(2)} s`);
    }
  }

  console.log(`\nFull-row updates of pgbench_accounts (scale ${SCALE}), ${CHUNKS} chunks of ${CHUNK_ROWS} rows in one transaction per run, ${ROUNDS} runs per shape:\n`);
  console.log('| Shape | Median s | Runs s | WAL per run, MiB |');
  console.log('|---|---:|---|---|');
  for (const name of names) {
    const runs = results[name];
    console.log(`| ${name} | ${median(runs.map((r) => r.seconds)).toFixed(2)} | ${runs.map((r) => r.seconds.toFixed(2)).join(', ')} | ${runs.map((r) => r.walMiB.toFixed(0)).join(', ')} |`);
  }
  console.log(`\nReproduce: \`BENCH_SCALE=${SCALE} BENCH_ROUNDS=${ROUNDS} node bench/pg-update-shape.mjs\``);
}

runBench(main);
