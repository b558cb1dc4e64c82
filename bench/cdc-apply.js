// Change-apply benchmark: a pgbench TPC-B write load on a source database while two replicas
// follow it AT THE SAME TIME, from the same source and the same WAL:
//   (a) a Ferry continuous job (already in Incremental load) applying to one destination database;
//   (b) PostgreSQL's own logical replication: CREATE PUBLICATION on the source,
//       CREATE SUBSCRIPTION ... WITH (copy_data = true) on another destination database.
// Both destinations are on the destination-side cluster (5433); the source is on 5432.
//
// Measured for each, on the destination side, independently of Ferry's own counters:
// - rows applied: TPC-B changes 4 rows per transaction (3 UPDATEs, 1 INSERT into
//   pgbench_history; the SELECT changes nothing), so applied rows = 4 x rows in the
//   destination's pgbench_history (sampled every 500 ms);
// - sustained apply throughput = rows applied from the load's start until that destination has
//   caught up (same pgbench_history count as the source) / that time;
// - peak apply rate = best 5-second window;
// - lag, sampled every 500 ms during the load: Ferry from its API (job.replication.lagSeconds,
//   lagBytes); the subscription from pg_stat_replication on the source (replay_lag, and
//   pg_current_wal_lsn() - replay_lsn); and for both, the same source-side measure:
//   pg_current_wal_lsn() - confirmed_flush_lsn of their slot (what the source may not free yet).
//
// Run: `npm run build && node bench/cdc-apply.js`
// Environment: BENCH_SCALE (pgbench scale, default 10), BENCH_SECONDS (default 30),
// BENCH_CLIENTS (default 4), BENCH_SCRIPT (a pgbench script file instead of TPC-B; rows per
// transaction then come from BENCH_ROWS_PER_TX, default 4), FERRY_TEST_PG_HOST /
// FERRY_TEST_PG_SOURCE_PORT / FERRY_TEST_PG_DEST_PORT / FERRY_TEST_PG_USER.
// Everything it creates (databases, subscription, publication, slots, the Ferry server by its
// PID and its data directory) is removed at the end, also on failure.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
const SCALE = Number(process.env.BENCH_SCALE ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const SCRIPT = process.env.BENCH_SCRIPT ?? null;
const ROWS_PER_TX = Number(process.env.BENCH_ROWS_PER_TX ?? 4);
const SAMPLE_MS = 500;
const CATCH_UP_TIMEOUT_MS = Number(process.env.BENCH_CATCH_UP_TIMEOUT_SECONDS ?? 300) * 1000;

const log = (message) => process.stderr.write(`[bench] ${new Date().toISOString().slice(11, 19)} ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const id = randomBytes(3).toString('hex');
const names = {
  source: `bench_cdc_src_${id}`,
  ferryDst: `bench_cdc_ferry_${id}`,
  subDst: `bench_cdc_sub_${id}`,
  publication: `bench_cdc_pub_${id}`,
  subscription: `bench_cdc_sub_${id}`,
  job: `bench-cdc-${id}`,
};

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

async function withClient(port, database, fn) {
  const client = new pg.Client({ host: HOST, port, user: USER, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function connect(port, database) {
  const client = new pg.Client({ host: HOST, port, user: USER, database });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function run(command, args, { env = {}, quiet = false } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGUSER: USER, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!quiet) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun({ stdout, stderr }) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`))));
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

/** `ferry serve` from the compiled code (dist/), stopped by its PID. */
async function startFerry() {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-bench-cdc-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'ferry.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output = (output + d).slice(-20_000)));
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
    output: () => output,
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
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  const parsed = text === '' ? null : JSON.parse(text);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return parsed;
}

async function historyCount(client) {
  return Number((await client.query('SELECT count(*) AS n FROM public.pgbench_history')).rows[0].n);
}

/** Source-side view of a slot and of its walsender. */
async function sourceLag(source) {
  const { rows } = await source.query(
    `SELECT s.slot_name,
            pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS slot_lag_bytes,
            pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS replay_lag_bytes,
            extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds
       FROM pg_replication_slots s
       LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name IN ($1, $2)`,
    [names.subscription, ferrySlotName()],
  );
  return new Map(rows.map((r) => [r.slot_name, r]));
}

/** Ferry's slot: the only slot of the source database that is not the subscription's (found once the job runs). */
let ferrySlot = null;
const ferrySlotName = () => ferrySlot;

const cleanup = []; // steps run last-in first-out

async function main() {
  log(`pgbench -i -s ${SCALE} on ${HOST}:${SRC_PORT}/${names.source}`);
  await withClient(SRC_PORT, 'postgres', (c) => c.query(`CREATE DATABASE ${names.source}`));
  cleanup.push(() => withClient(SRC_PORT, 'postgres', async (c) => {
    // A slot left behind (a failed delete) pins the database: drop it first.
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [names.source]);
    await c.query(`DROP DATABASE IF EXISTS ${names.source} WITH (FORCE)`);
  }));
  for (const db of [names.ferryDst, names.subDst]) {
    await withClient(DST_PORT, 'postgres', (c) => c.query(`CREATE DATABASE ${db}`));
    cleanup.push(() => withClient(DST_PORT, 'postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)));
  }
  await run('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', HOST, '-p', String(SRC_PORT), names.source], { quiet: true });
  const source = await connect(SRC_PORT, names.source);
  cleanup.push(() => source.end().catch(() => undefined));
  // pgbench_history has no primary key. Ferry leaves a table without a replica identity out of
  // its publication (its start warns: copied by the dump, changes not replicated), while a
  // subscription replicates its INSERTs. REPLICA IDENTITY FULL makes both replicate it (pgbench
  // only inserts into it, so FULL costs nothing here): the same data for both.
  await source.query('ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL');
  await source.query('VACUUM ANALYZE');
  const accounts = Number((await source.query('SELECT count(*) AS n FROM pgbench_accounts')).rows[0].n);

  // (a) Ferry: a continuous job, brought to Incremental load.
  const ferry = await startFerry();
  cleanup.push(async () => {
    // Delete removes the job's slot and publication on the source; then the server stops (by PID).
    await call(ferry.url, 'DELETE', `/v1/migrationJobs/${names.job}`).catch((e) => log(`deleting the Ferry job: ${e.message}`));
    await ferry.stop();
  });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: `src-${id}`, displayName: 'bench source', engine: 'postgresql', host: HOST, port: SRC_PORT, database: names.source, username: USER });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: `dst-${id}`, displayName: 'bench destination', engine: 'postgresql', host: HOST, port: DST_PORT, database: names.ferryDst, username: USER });
  await call(ferry.url, 'POST', '/v1/migrationJobs', { id: names.job, displayName: 'cdc bench', type: 'continuous', sourceProfileId: `src-${id}`, destinationProfileId: `dst-${id}` });

  // (b) The subscription: the same tables created on its destination, then CREATE SUBSCRIPTION with copy_data.
  // pg_dump | psql (the dump may hold psql meta-commands, e.g. \restrict).
  const ddlFile = join(mkdtempSync(join(tmpdir(), 'ferry-bench-ddl-')), 'schema.sql');
  cleanup.push(() => rmSync(dirname(ddlFile), { recursive: true, force: true }));
  await run('pg_dump', ['--schema-only', '--no-owner', '--no-publications', '--no-subscriptions', '-h', HOST, '-p', String(SRC_PORT), '-f', ddlFile, names.source], { quiet: true });
  await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', HOST, '-p', String(DST_PORT), '-d', names.subDst, '-f', ddlFile], { quiet: true });
  const subDst = await connect(DST_PORT, names.subDst);
  cleanup.push(() => subDst.end().catch(() => undefined));
  await source.query(`CREATE PUBLICATION ${names.publication} FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history`);
  cleanup.push(async () => {
    // DROP SUBSCRIPTION also drops its slot on the source.
    await subDst.query(`ALTER SUBSCRIPTION ${names.subscription} DISABLE`).catch(() => undefined);
    await subDst.query(`DROP SUBSCRIPTION IF EXISTS ${names.subscription}`).catch(async (e) => {
      log(`DROP SUBSCRIPTION failed (${e.message}); dropping the slot by hand`);
      await subDst.query(`ALTER SUBSCRIPTION ${names.subscription} SET (slot_name = NONE)`).catch(() => undefined);
      await subDst.query(`DROP SUBSCRIPTION IF EXISTS ${names.subscription}`).catch(() => undefined);
    });
    await source.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [names.subscription]).catch(() => undefined);
    await source.query(`DROP PUBLICATION IF EXISTS ${names.publication}`).catch(() => undefined);
  });

  log('starting both: the Ferry job (full dump) and the subscription (copy_data = true)');
  const setupStarted = Date.now();
  await call(ferry.url, 'POST', `/v1/migrationJobs/${names.job}:start`, {});
  await subDst.query(`CREATE SUBSCRIPTION ${names.subscription} CONNECTION 'host=${HOST} port=${SRC_PORT} user=${USER} dbname=${names.source}' PUBLICATION ${names.publication} WITH (copy_data = true)`);

  let ferryReadyAt = null;
  let subReadyAt = null;
  for (;;) {
    if (ferryReadyAt === null) {
      const job = await call(ferry.url, 'GET', `/v1/migrationJobs/${names.job}`);
      if (job.status === 'FAILED') throw new Error(`Ferry job failed: ${JSON.stringify(job.error)}`);
      if (job.status === 'RUNNING' && job.phase === 'INCREMENTAL_LOAD' && job.replication !== null) ferryReadyAt = Date.now();
    }
    if (subReadyAt === null) {
      const { rows } = await subDst.query(`SELECT count(*) FILTER (WHERE srsubstate <> 'r') AS pending, count(*) AS total FROM pg_subscription_rel`);
      if (Number(rows[0].total) === 4 && Number(rows[0].pending) === 0) subReadyAt = Date.now();
    }
    if (ferryReadyAt !== null && subReadyAt !== null) break;
    if (Date.now() - setupStarted > 600_000) throw new Error('initial copies did not finish within 10 minutes');
    await sleep(200);
  }
  log(`initial copy of ${accounts.toLocaleString('en-US')} accounts: Ferry in Incremental load after ${((ferryReadyAt - setupStarted) / 1000).toFixed(1)} s, subscription ready after ${((subReadyAt - setupStarted) / 1000).toFixed(1)} s`);

  const ferryDst = await connect(DST_PORT, names.ferryDst);
  cleanup.push(() => ferryDst.end().catch(() => undefined));
  const base = { source: await historyCount(source), ferry: await historyCount(ferryDst), sub: await historyCount(subDst) };
  if (base.source !== base.ferry || base.source !== base.sub) log(`note: history counts before the load differ: ${JSON.stringify(base)}`);
  const ferryBase = (await call(ferry.url, 'GET', `/v1/migrationJobs/${names.job}`)).replication?.changesApplied ?? 0;
  const slots = (await source.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND NOT temporary`)).rows.map((r) => r.slot_name);
  const others = slots.filter((n) => n !== names.subscription);
  if (others.length !== 1 || !slots.includes(names.subscription)) throw new Error(`expected the subscription's slot and one slot of Ferry's job on the source, found: ${slots.join(', ')}`);
  ferrySlot = others[0];
  log(`slots on the source: Ferry ${ferrySlot}, subscription ${names.subscription}`);

  // The load, with sampling every 500 ms until both destinations caught up.
  const args = ['-n', '-c', String(CLIENTS), '-j', String(Math.min(CLIENTS, 2)), '-T', String(SECONDS), '-h', HOST, '-p', String(SRC_PORT)];
  if (SCRIPT) args.push('-f', SCRIPT);
  log(`pgbench ${args.join(' ')} ${names.source}${SCRIPT ? '' : ' (TPC-B)'}`);
  const loadStarted = Date.now();
  let loadEnded = null;
  const pgbench = run('pgbench', [...args, names.source], { quiet: true }).then((r) => {
    loadEnded = Date.now();
    return r;
  });
  const samples = [];
  let caughtUp = { ferry: null, sub: null };
  let sourceFinal = null;
  let pgbenchOut = null;
  pgbench.then((r) => (pgbenchOut = r), () => undefined);
  for (;;) {
    const t = Date.now();
    const [job, srcHist, ferryHist, subHist, lags] = await Promise.all([
      call(ferry.url, 'GET', `/v1/migrationJobs/${names.job}`),
      historyCount(source),
      historyCount(ferryDst),
      historyCount(subDst),
      sourceLag(source),
    ]);
    if (job.status === 'FAILED' || job.status === 'RUNNING_WITH_ERRORS') log(`Ferry job ${job.status}: ${JSON.stringify(job.error)}`);
    const sub = lags.get(names.subscription);
    const fs = lags.get(ferrySlotName());
    samples.push({
      t: t - loadStarted,
      loading: loadEnded === null,
      srcHist, ferryHist, subHist,
      ferryChanges: (job.replication?.changesApplied ?? ferryBase) - ferryBase,
      ferryLagSeconds: job.replication?.lagSeconds ?? null,
      ferryLagBytes: job.replication?.lagBytes ?? null,
      ferrySlotLagBytes: fs ? Number(fs.slot_lag_bytes) : null,
      subLagSeconds: sub ? (sub.replay_lag_seconds === null ? 0 : Number(sub.replay_lag_seconds)) : null,
      subLagBytes: sub && sub.replay_lag_bytes !== null ? Number(sub.replay_lag_bytes) : null,
      subSlotLagBytes: sub ? Number(sub.slot_lag_bytes) : null,
    });
    if (loadEnded !== null) {
      if (sourceFinal === null) sourceFinal = await historyCount(source);
      if (caughtUp.ferry === null && ferryHist >= sourceFinal) caughtUp.ferry = Date.now();
      if (caughtUp.sub === null && subHist >= sourceFinal) caughtUp.sub = Date.now();
      if (caughtUp.ferry !== null && caughtUp.sub !== null) break;
      if (Date.now() - loadEnded > CATCH_UP_TIMEOUT_MS) {
        log(`not caught up ${CATCH_UP_TIMEOUT_MS / 1000} s after the load: ${JSON.stringify({ sourceFinal, ferryHist, subHist })}`);
        break;
      }
    }
    const elapsed = Date.now() - t;
    await sleep(Math.max(0, SAMPLE_MS - elapsed));
  }
  await pgbench;
  const tpsMatch = /tps = ([\d.]+)/.exec(pgbenchOut?.stdout ?? '');
  const tps = tpsMatch ? Number(tpsMatch[1]) : null;
  const transactions = sourceFinal - base.source;

  // Sanity: the three databases agree once caught up.
  const checksum = (c) => c.query(`SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(bbalance) FROM pgbench_branches)::text AS b,
                                          (SELECT sum(tbalance) FROM pgbench_tellers)::text AS t, (SELECT count(*) FROM pgbench_history)::text AS h`).then((r) => r.rows[0]);
  const sums = { source: await checksum(source), ferry: await checksum(ferryDst), subscription: await checksum(subDst) };
  const ferryEqual = JSON.stringify(sums.ferry) === JSON.stringify(sums.source);
  const subEqual = JSON.stringify(sums.subscription) === JSON.stringify(sums.source);
  if (!ferryEqual || !subEqual) log(`WARNING: balances differ: ${JSON.stringify(sums)}`);

  // Results.
  const loadSeconds = (loadEnded - loadStarted) / 1000;
  const rowsOf = (hist) => (hist - base.source) * ROWS_PER_TX;
  const result = (key, caught) => {
    const histKey = key === 'ferry' ? 'ferryHist' : 'subHist';
    const last = samples.at(-1);
    const applied = rowsOf(last[histKey]);
    const until = caught === null ? last.t / 1000 : (caught - loadStarted) / 1000;
    // Best 5 s window.
    let peak = 0;
    for (let i = 0; i < samples.length; i++) {
      for (let j = i + 1; j < samples.length; j++) {
        const dt = (samples[j].t - samples[i].t) / 1000;
        if (dt >= 5) {
          peak = Math.max(peak, ((samples[j][histKey] - samples[i][histKey]) * ROWS_PER_TX) / dt);
          break;
        }
      }
    }
    return { applied, until, sustained: applied / until, peak, catchUp: caught === null ? null : (caught - loadEnded) / 1000 };
  };
  const ferryResult = result('ferry', caughtUp.ferry);
  const subResult = result('sub', caughtUp.sub);
  const during = samples.filter((s) => s.loading);
  const pct = (key, p) => percentile(during.map((s) => s[key]).filter((v) => v !== null && Number.isFinite(v)), p);
  const sec = (v) => (v === null ? 'n/a' : `${v.toFixed(2)} s`);
  const bytes = (v) => (v === null ? 'n/a' : v >= 1e6 ? `${(v / 1e6).toFixed(2)} MB` : `${(v / 1e3).toFixed(1)} kB`);
  const num = (v) => Math.round(v).toLocaleString('en-US');
  const ferryCounted = samples.at(-1).ferryChanges;

  const lines = [
    '',
    `CDC apply: pgbench ${SCRIPT ? `script ${SCRIPT}` : 'TPC-B (default script)'}, scale ${SCALE} (${accounts.toLocaleString('en-US')} accounts), ${CLIENTS} clients, ${SECONDS} s, on ${HOST}:${SRC_PORT};`,
    `Ferry and the subscription ran AT THE SAME TIME from the same source (one pgbench run), each into its own database on ${HOST}:${DST_PORT}; pgbench_history was given REPLICA IDENTITY FULL so that both replicate it.`,
    `Source: ${num(transactions)} transactions committed (pgbench ${tps === null ? 'tps n/a' : `${tps.toFixed(0)} tps`}), ${num(transactions * ROWS_PER_TX)} row changes (${ROWS_PER_TX} per transaction), ${num((transactions * ROWS_PER_TX) / loadSeconds)} rows/s offered during ${loadSeconds.toFixed(1)} s.`,
    '',
    '| Measure | Ferry continuous job | PostgreSQL subscription |',
    '|---|---:|---:|',
    `| Sustained apply throughput (rows/s, load start to caught up) | ${num(ferryResult.sustained)} | ${num(subResult.sustained)} |`,
    `| Peak apply rate, best 5 s (rows/s) | ${num(ferryResult.peak)} | ${num(subResult.peak)} |`,
    `| Rows applied (4 x pgbench_history rows on the destination) | ${num(ferryResult.applied)} | ${num(subResult.applied)} |`,
    `| Caught up after the load ended | ${sec(ferryResult.catchUp)} | ${sec(subResult.catchUp)} |`,
    `| Lag p50 / p99, seconds (Ferry: lagSeconds; subscription: replay_lag) | ${sec(pct('ferryLagSeconds', 50))} / ${sec(pct('ferryLagSeconds', 99))} | ${sec(pct('subLagSeconds', 50))} / ${sec(pct('subLagSeconds', 99))} |`,
    `| Lag p50 / p99, bytes (Ferry: lagBytes; subscription: current - replay_lsn) | ${bytes(pct('ferryLagBytes', 50))} / ${bytes(pct('ferryLagBytes', 99))} | ${bytes(pct('subLagBytes', 50))} / ${bytes(pct('subLagBytes', 99))} |`,
    `| Slot lag p50 / p99 on the source (current - confirmed_flush_lsn) | ${bytes(pct('ferrySlotLagBytes', 50))} / ${bytes(pct('ferrySlotLagBytes', 99))} | ${bytes(pct('subSlotLagBytes', 50))} / ${bytes(pct('subSlotLagBytes', 99))} |`,
    `| Balances and history equal to the source at the end | ${ferryEqual ? 'yes' : 'NO'} | ${subEqual ? 'yes' : 'NO'} |`,
    '',
    `Lag percentiles over ${during.length} samples taken every ${SAMPLE_MS} ms while pgbench ran. Ferry's own counter: ${num(ferryCounted)} changes applied (changesApplied) for ${num(ferryResult.applied)} rows counted on its destination.`,
    `Initial copy (pgbench tables, both at once): Ferry ${((ferryReadyAt - setupStarted) / 1000).toFixed(1)} s to Incremental load, subscription ${((subReadyAt - setupStarted) / 1000).toFixed(1)} s to all tables ready.`,
    'Reproduce: `npm run build && node bench/cdc-apply.js` (BENCH_SCALE, BENCH_SECONDS, BENCH_CLIENTS, BENCH_SCRIPT).',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Undoes in reverse order: the subscription and the job before the databases. */
async function cleanUp() {
  for (const step of [...cleanup].reverse()) {
    try {
      await step();
    } catch (error) {
      log(`cleanup step failed: ${error.message}`);
    }
  }
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
} finally {
  await cleanUp();
  log('cleaned up');
}
process.exit(failed ? 1 : 0);
