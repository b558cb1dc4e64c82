// Store-copy benchmark: a SQLite store with BENCH_JOBS jobs (default 1,000), each with
// BENCH_EVENTS history events (default 20), BENCH_OBJECTS table rows (default 10) and one
// checkpoint, copied by `ferry store copy` (copySqliteStoreToPostgres) into a fresh database on
// BENCH_PG_PORT (default 5433, user postgres on 127.0.0.1). Prints rows per table, the time of
// the copy (the target's migrations included) and the command that reproduces it.
//
// Run: `npm run bench:store-copy` (builds first), or `node bench/store-copy.js` after a build.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const PORT = Number(process.env.BENCH_PG_PORT ?? 5433);
const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20);
const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 10);
const { SqliteMetadataStore } = await import(join(root, 'dist/store/sqlite/sqlite-metadata-store.js'));
const { copySqliteStoreToPostgres } = await import(join(root, 'dist/store/store-copy.js'));
const dir = mkdtempSync(join(tmpdir(), 'ferry-copy-measure-'));
const store = SqliteMetadataStore.open(join(dir, 'ferry.db'));
await store.migrate();
const t = '2026-01-01T00:00:00.000Z';
for (let j = 0; j < JOBS; j++) {
  const id = `job-${j}`;
  await store.insertJob({ id, displayName: id, type: 'continuous', sourceProfileId: 'a', destinationProfileId: 'b', sourceEngine: 'postgresql', destinationEngine: 'postgresql', connectivityMethod: 'direct', selection: { include: [], exclude: [] }, dumpParallelism: 4, labels: {}, status: 'RUNNING', phase: 'INCREMENTAL_LOAD', error: null, promoteRequested: false, createTime: t, updateTime: t, startTime: t, endTime: null, runningMillis: 0, runStartTime: t });
  await store.upsertJobObjects(Array.from({ length: OBJECTS }, (_, i) => ({ jobId: id, name: `public.t${i}`, state: 'DUMPED', rowsCopied: 1000, bytesCopied: 100000, estimatedRows: 1000, estimatedBytes: 100000, error: null, updateTime: t })));
  for (let e = 0; e < EVENTS; e++) await store.appendJobEvent({ jobId: id, time: t, kind: 'info', message: `event ${e} of ${id}`, actor: 'system' });
  await store.putCheckpoint(id, 'replication', { slot: `ferry_${j}`, lsn: '0/16B6C50' });
}
await store.close();
const db = `ferry_copy_measure_${Date.now()}`;
const admin = new pg.Client({ host: '127.0.0.1', port: PORT, user: 'postgres', database: 'postgres' });
await admin.connect();
await admin.query(`CREATE DATABASE ${db}`);
try {
  const started = performance.now();
  const result = await copySqliteStoreToPostgres({ fromDataDir: dir, toUrl: `postgresql://postgres@127.0.0.1:${PORT}/${db}` });
  const ms = performance.now() - started;
  const rows = result.tables.reduce((n, t) => n + t.rows, 0);
  console.log('| table | rows |\n|---|---|');
  for (const t of result.tables) console.log(`| ${t.table} | ${t.rows} |`);
  console.log(`| total | ${rows} rows in ${(ms / 1000).toFixed(2)} s (${Math.round(rows / (ms / 1000))} rows/s, migrations of the empty target included) |`);
  console.log(`\nReproduce: BENCH_JOBS=${JOBS} BENCH_EVENTS=${EVENTS} BENCH_OBJECTS=${OBJECTS} BENCH_PG_PORT=${PORT} node bench/store-copy.js`);
} finally {
  await admin.query(`DROP DATABASE ${db} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
