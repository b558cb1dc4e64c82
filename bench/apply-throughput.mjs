// Change-apply throughput: Ferry's PostgreSQL change applier writing into the destination
// cluster (5433), one destination transaction (changes + position) per batch. Measures 100,000
// inserts, 100,000 updates with the whole row (upserts), 100,000 updates with an unchanged
// TOASTed column (UPDATE by key) and 100,000 deletes, in batches of 5,000 changes, and, for
// comparison, the same inserts as one change per destination transaction.
// Run with `npm run build && node bench/apply-throughput.mjs` (it loads the compiled code).
//
// Environment: BENCH_ROWS (default 100000), BENCH_BATCH (default 5000), BENCH_REPEAT
// (default 3; medians are reported), BENCH_SINGLE_ROWS (default 5000),
// FERRY_TEST_PG_HOST / FERRY_TEST_PG_DEST_PORT / FERRY_TEST_PG_USER.
// The database it creates is dropped at the end.
import { UNCHANGED } from '../dist/engines/engine.js';
import { openPostgresChangeApplier } from '../dist/engines/postgres/postgres-change-applier.js';
import { DST_PORT as PORT, HOST, USER, log, median, uid, withClient as withClientOn } from './lib.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 5_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const SINGLE_ROWS = Number(process.env.BENCH_SINGLE_ROWS ?? 5_000);

const TABLE = { schema: 'public', name: 't' };
const COLUMNS = ['id', 'name', 'amount', 'created_at', 'attrs'];
const DDL = `CREATE TABLE public.t (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(14, 2), created_at timestamptz NOT NULL, attrs jsonb)`;

const withClient = (database, fn) => withClientOn(PORT, database, fn);

/** A row as the change stream would carry it: every value as its text output. */
function row(id, version) {
  const created = new Date(Date.UTC(2022, 0, 1) + id * 1250).toISOString().replace('T', ' ').replace('Z', '+00');
  return [String(id), `name ${id} v${version} ${'x'.repeat(20 + (id % 21))}`, `${(id * 7.31 + version).toFixed(2)}`, created, `{"k": ${id % 100}, "tag": "x${id % 7}", "v": ${version}}`];
}

function phases() {
  const inserts = [];
  const upserts = [];
  const partial = [];
  const deletes = [];
  for (let id = 1; id <= ROWS; id++) {
    inserts.push({ op: 'insert', table: TABLE, columns: COLUMNS, values: row(id, 0) });
    upserts.push({ op: 'update', table: TABLE, columns: COLUMNS, values: row(id, 1), oldColumns: null, oldValues: null });
    const values = row(id, 2);
    values[4] = UNCHANGED;
    partial.push({ op: 'update', table: TABLE, columns: COLUMNS, values, oldColumns: null, oldValues: null });
    deletes.push({ op: 'delete', table: TABLE, oldColumns: ['id'], oldValues: [String(id)] });
  }
  return [
    ['inserts', inserts],
    ['updates, whole row', upserts],
    ['updates, unchanged TOAST column', partial],
    ['deletes', deletes],
  ];
}

async function timeBatches(applier, changes, batch, position) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < changes.length; i += batch) {
    await applier.apply(changes.slice(i, i + batch));
    await applier.commit(`${position}/${i}`);
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main() {
  const database = `bench_apply_${uid()}`;
  await withClient('postgres', (c) => c.query(`CREATE DATABASE ${database}`));
  const params = { engine: 'postgresql', host: HOST, port: PORT, database, username: USER, password: null, tls: { mode: 'none' } };
  const results = new Map();
  try {
    await withClient(database, (c) => c.query(DDL));
    const tables = [{ ...TABLE, columns: [], primaryKey: { name: 't_pkey', columns: ['id'] }, uniqueConstraints: [], checkConstraints: [], indexes: [], foreignKeys: [], estimatedRows: -1, estimatedBytes: -1, replicaIdentity: 'default' }];
    const work = phases();
    for (let rep = 1; rep <= REPEAT; rep++) {
      await withClient(database, (c) => c.query('TRUNCATE public.t'));
      const applier = await openPostgresChangeApplier(params, 'bench', tables);
      try {
        for (const [name, changes] of work) {
          const seconds = await timeBatches(applier, changes, BATCH, `${rep}-${name}`);
          const rate = changes.length / seconds;
          log(`run ${rep}: ${name}: ${changes.length} in ${seconds.toFixed(2)} s = ${Math.round(rate)} rows/s`);
          results.set(name, [...(results.get(name) ?? []), rate]);
        }
        await withClient(database, (c) => c.query('TRUNCATE public.t'));
        const single = work[0][1].slice(0, SINGLE_ROWS);
        const seconds = await timeBatches(applier, single, 1, `${rep}-single`);
        const rate = single.length / seconds;
        log(`run ${rep}: inserts, one per transaction: ${single.length} in ${seconds.toFixed(2)} s = ${Math.round(rate)} rows/s`);
        results.set('inserts, one change per destination transaction', [...(results.get('inserts, one change per destination transaction') ?? []), rate]);
      } finally {
        await applier.close();
      }
    }
  } finally {
    await withClient('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  }
  console.log(`Change apply into PostgreSQL at ${HOST}:${PORT}: ${ROWS} changes per phase, batches of ${BATCH}, median of ${REPEAT}`);
  for (const [name, rates] of results) console.log(`  ${name.padEnd(50)} ${Math.round(median(rates)).toLocaleString('en-US')} rows/s`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
