// Whole-database copy (issue 11): a Ferry one-time job next to `pg_dump | pg_restore` and
// `pgcopydb clone`, on the same generated database, in the same run, each into a fresh
// destination database, medians of BENCH_REPEAT runs (default 3). Run with
// `npm run bench:whole-db` (builds first).
//
// The generated source database (schema app): 50 tables = 41 ordinary tables (4 of 250,000
// rows, 37 of 20,000) + 1 partitioned table with 8 RANGE partitions (32,000 rows each); about
// 2.0 M rows; a primary key and a secondary index on every table, 10 foreign keys, 20 views
// (10 on tables, 10 on those views), 30 functions (20 SQL, 10 plpgsql, one of them a trigger
// function used by 2 triggers). BENCH_SCALE multiplies the row counts (default 1).
//
// Methods (all from 5432 to 5433 on the same machine, so 2 cores are shared by both servers
// and the tool):
// - Ferry one-time job through a real `ferry serve`: wall time from :start to Completed;
// - `pg_dump -Fc | pg_restore --no-owner` (custom format through a pipe: one stream, no -j);
// - `pg_dump -Fd -j 2` to a directory, then `pg_restore -j 2 --no-owner` (both timed);
// - `pgcopydb clone --table-jobs 2 --index-jobs 2 --no-owner` (Debian's pgcopydb).
// After each run the destination is checked with the same queries for every method: tables,
// views, functions, triggers, foreign keys, rows, and whether its normalized
// `pg_dump --schema-only --no-owner` equals the source's; a method that leaves something out
// shows it in the table (it is not an error: the point is to compare).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DST_PORT, HOST, SRC_PORT, USER, bash, createDatabase, dropDatabase, log, median, pgUri, runBench, runFerryOneTime, seconds, startFerry, uid, withClient,
} from './lib.js';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const PG_BIN = process.env.FERRY_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const BIG_TABLES = 4;
const SMALL_TABLES = 37;
const BIG_ROWS = Math.round(250_000 * SCALE);
const SMALL_ROWS = Math.round(20_000 * SCALE);
const PARTITIONS = 8;
const PARTITION_ROWS = Math.round(32_000 * SCALE);
const TOTAL_ROWS = BIG_TABLES * BIG_ROWS + SMALL_TABLES * SMALL_ROWS + PARTITIONS * PARTITION_ROWS;

const t = (i) => `app.t${String(i).padStart(2, '0')}`;

/** The DDL and data of the source database, as a list of statements. */
function sourceStatements() {
  const s = ['CREATE SCHEMA app'];
  const tables = BIG_TABLES + SMALL_TABLES;
  for (let i = 1; i <= tables; i++) {
    const rows = i <= BIG_TABLES ? BIG_ROWS : SMALL_ROWS;
    s.push(`CREATE TABLE ${t(i)} (
      id bigint PRIMARY KEY,
      ref_id bigint${i > BIG_TABLES && i <= BIG_TABLES + 10 ? ` REFERENCES ${t(1)} (id)` : ''},
      name text NOT NULL,
      amount numeric(12, 2),
      created_at timestamptz NOT NULL,
      last_update timestamptz,
      attrs jsonb)`);
    s.push(`INSERT INTO ${t(i)}
      SELECT g, 1 + g % ${BIG_ROWS}, substr(md5(g::text) || md5((g + ${i})::text), 1, 20 + (g % 30)::integer), (g % 100000) / 100.0,
             '2023-01-01 00:00:00+00'::timestamptz + g * interval '37 seconds', NULL, jsonb_build_object('k', g % 100, 't', ${i})
        FROM generate_series(1, ${rows}) g`);
    s.push(`CREATE INDEX t${String(i).padStart(2, '0')}_created_idx ON ${t(i)} (created_at)`);
  }
  s.push(`CREATE TABLE app.events (id bigint NOT NULL, at date NOT NULL, kind text NOT NULL, payload jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`);
  for (let p = 0; p < PARTITIONS; p++) {
    const from = `2024-${String(p + 1).padStart(2, '0')}-01`;
    const to = p + 2 <= 12 ? `2024-${String(p + 2).padStart(2, '0')}-01` : '2025-01-01';
    s.push(`CREATE TABLE app.events_${p + 1} PARTITION OF app.events FOR VALUES FROM ('${from}') TO ('${to}')`);
  }
  s.push(`INSERT INTO app.events
    SELECT g, DATE '2024-01-01' + ((g % ${PARTITIONS}) * 30 + g % 28), (ARRAY['a', 'b', 'c'])[1 + g % 3], jsonb_build_object('n', g)
      FROM generate_series(1, ${PARTITIONS * PARTITION_ROWS}) g`);
  s.push(`CREATE INDEX events_kind_idx ON app.events (kind)`);
  // 30 functions: 20 SQL, 10 plpgsql (one a trigger function).
  for (let f = 1; f <= 20; f++) s.push(`CREATE FUNCTION app.f${f}(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT x * ${f} + ${f} $$`);
  for (let f = 21; f <= 29; f++) {
    s.push(`CREATE FUNCTION app.f${f}(n integer) RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE total integer := 0;
      BEGIN
        FOR i IN 1..n LOOP total := total + i * ${f}; END LOOP;
        RETURN total;
      END $$`);
  }
  s.push(`CREATE FUNCTION app.f30() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.last_update := now(); RETURN NEW; END $$`);
  s.push(`CREATE TRIGGER t02_stamp BEFORE INSERT OR UPDATE ON ${t(2)} FOR EACH ROW EXECUTE FUNCTION app.f30()`);
  s.push(`CREATE TRIGGER t03_stamp BEFORE INSERT OR UPDATE ON ${t(3)} FOR EACH ROW EXECUTE FUNCTION app.f30()`);
  // 20 views: 10 on tables, 10 on those views.
  for (let v = 1; v <= 10; v++) s.push(`CREATE VIEW app.v${v} AS SELECT id, name, app.f${v}(amount) AS scaled FROM ${t(v)} WHERE amount > 100`);
  for (let v = 11; v <= 20; v++) s.push(`CREATE VIEW app.v${v} AS SELECT count(*) AS n, max(scaled) AS top FROM app.v${v - 10}`);
  s.push('ANALYZE');
  return s;
}

const NORMALIZE = (text) =>
  text
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l !== '' && !l.startsWith('--') && !/^SET\s/.test(l) && !l.startsWith('SELECT pg_catalog.set_config(') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'));

async function schemaDump(port, db) {
  return NORMALIZE(await bash(`${PG_BIN}/pg_dump --schema-only --no-owner -h ${HOST} -p ${port} -U ${USER} ${db}`));
}

/** What the destination holds, with the same queries for every method. */
async function inventory(port, db) {
  return withClient(port, db, async (c) => {
    const { rows } = await c.query(`
      SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p'))::int AS tables,
             (SELECT count(*) FROM pg_views WHERE schemaname = 'app')::int AS views,
             (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'app')::int AS functions,
             (SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND NOT g.tgisinternal)::int AS triggers,
             (SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'app' AND k.contype = 'f')::int AS fks,
             (SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint), 0)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind = 'r')::bigint AS rows`);
    return rows[0];
  });
}

const METHODS = [
  {
    name: 'Ferry one-time job (`:start` to Completed)',
    async run(ferry, sourceDb, dst) {
      const { wall } = await runFerryOneTime(ferry, sourceDb, dst);
      return wall;
    },
  },
  {
    name: '`pg_dump -Fc \\| pg_restore --no-owner` (one stream)',
    async run(_ferry, sourceDb, dst) {
      const started = process.hrtime.bigint();
      await bash(`set -o pipefail; ${PG_BIN}/pg_dump -Fc -h ${HOST} -p ${SRC_PORT} -U ${USER} ${sourceDb} | ${PG_BIN}/pg_restore --no-owner --exit-on-error -h ${HOST} -p ${DST_PORT} -U ${USER} -d ${dst}`);
      return seconds(started);
    },
  },
  {
    name: '`pg_dump -Fd -j 2` + `pg_restore -j 2 --no-owner`',
    async run(_ferry, sourceDb, dst) {
      const dir = mkdtempSync(join(tmpdir(), 'bench-wdb-dump-'));
      try {
        const started = process.hrtime.bigint();
        await bash(`${PG_BIN}/pg_dump -Fd -j 2 -f ${dir}/d -h ${HOST} -p ${SRC_PORT} -U ${USER} ${sourceDb} && ${PG_BIN}/pg_restore -j 2 --no-owner --exit-on-error -h ${HOST} -p ${DST_PORT} -U ${USER} -d ${dst} ${dir}/d`);
        return seconds(started);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
  {
    name: '`pgcopydb clone --table-jobs 2 --index-jobs 2 --no-owner`',
    async run(_ferry, sourceDb, dst) {
      const dir = mkdtempSync(join(tmpdir(), 'bench-wdb-pgcopydb-'));
      try {
        const started = process.hrtime.bigint();
        await bash(`pgcopydb clone --source ${pgUri(SRC_PORT, sourceDb)} --target ${pgUri(DST_PORT, dst)} --table-jobs 2 --index-jobs 2 --no-owner --dir ${dir}/work`, { PATH: `${PG_BIN}:${process.env.PATH}` });
        return seconds(started);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];

async function main() {
  const sourceDb = `bench_wdb_src_${uid()}`;
  log(`building the source database: 50 tables (8 partitions), 20 views, 30 functions, ${TOTAL_ROWS.toLocaleString('en-US')} rows on ${HOST}:${SRC_PORT}`);
  await createDatabase(SRC_PORT, sourceDb);
  const built = process.hrtime.bigint();
  await withClient(SRC_PORT, sourceDb, async (c) => {
    for (const statement of sourceStatements()) await c.query(statement);
  });
  const source = await inventory(SRC_PORT, sourceDb);
  log(`source built in ${seconds(built).toFixed(1)} s: ${JSON.stringify(source)}`);
  if (source.tables !== 50 || source.views !== 20 || source.functions !== 30 || Number(source.rows) !== TOTAL_ROWS) {
    throw new Error(`the generated source is not what it should be: ${JSON.stringify(source)} (expected 50 relations: 41 tables, the partitioned parent and its 8 partitions, 20 views, 30 functions, ${TOTAL_ROWS} rows)`);
  }
  const sourceSchema = await schemaDump(SRC_PORT, sourceDb);

  const ferry = await startFerry('ferry-bench-wdb-');
  const times = METHODS.map(() => []);
  const results = METHODS.map(() => null);
  for (let rep = 1; rep <= REPEAT; rep++) {
    // Rotate the order so that no method always runs first (on a colder or warmer server).
    for (let k = 0; k < METHODS.length; k++) {
      const m = (k + rep - 1) % METHODS.length;
      const method = METHODS[m];
      const dst = `bench_wdb_dst_${uid()}`;
      await createDatabase(DST_PORT, dst);
      try {
        let secondsTaken;
        try {
          secondsTaken = await method.run(ferry, sourceDb, dst);
        } catch (error) {
          log(`run ${rep}: ${method.name} FAILED: ${error.message.slice(0, 2000)}`);
          results[m] = { failed: error.message.split('\n')[0].slice(0, 200) };
          continue;
        }
        times[m].push(secondsTaken);
        const held = await inventory(DST_PORT, dst);
        const schemaEqual = (await schemaDump(DST_PORT, dst)).join('\n') === sourceSchema.join('\n');
        results[m] = { ...held, schemaEqual };
        log(`run ${rep}: ${method.name} ${secondsTaken.toFixed(2)} s; destination ${JSON.stringify(held)}, schema ${schemaEqual ? 'equal' : 'DIFFERENT'}`);
      } finally {
        await dropDatabase(DST_PORT, dst);
      }
    }
  }

  const lines = [
    '',
    `Whole-database copy: 50 tables (41 ordinary, 1 partitioned with 8 partitions), 20 views, 30 functions, 2 triggers, 10 foreign keys, ` +
      `${TOTAL_ROWS.toLocaleString('en-US')} rows; PostgreSQL ${SRC_PORT} to ${DST_PORT} on ${HOST} (same machine); fresh destination database per run; ${REPEAT} runs each, order rotated.`,
    '',
    '| Method | Median s | Runs s | Rows/s | On the destination (last run): tables / views / functions / triggers / FKs / rows | Schema dump equal |',
    '|---|---:|---|---:|---|---|',
    ...METHODS.map((method, m) => {
      const r = results[m];
      if (times[m].length === 0) return `| ${method.name} | failed | | | ${r?.failed ?? ''} | |`;
      const med = median(times[m]);
      const held = r && !r.failed ? `${r.tables} / ${r.views} / ${r.functions} / ${r.triggers} / ${r.fks} / ${Number(r.rows).toLocaleString('en-US')}` : (r?.failed ?? '');
      return `| ${method.name} | ${med.toFixed(2)} | ${times[m].map((v) => v.toFixed(2)).join(', ')} | ${Math.round(TOTAL_ROWS / med).toLocaleString('en-US')} | ${held} | ${r && !r.failed ? (r.schemaEqual ? 'yes' : 'no') : ''} |`;
    }),
    '',
    `Source: ${source.tables} tables incl. the partitioned parent / ${source.views} / ${source.functions} / ${source.triggers} / ${source.fks} / ${Number(source.rows).toLocaleString('en-US')}.`,
    '"Schema dump equal": the destination\'s `pg_dump --schema-only --no-owner` (15), without comments, SET lines and blank lines, equals the source\'s.',
    '',
    'Reproduce: `npm run bench:whole-db` (BENCH_REPEAT runs per method, BENCH_SCALE multiplies the rows).',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await runBench(main);
