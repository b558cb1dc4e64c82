// Change-apply benchmark (issue 15): a Ferry continuous job next to a native PostgreSQL
// subscription, both fed by the same source database in the same run, each into its own
// database on the destination cluster (source 5432, destinations 5433, one machine).
//
// Setup: `pgbench -i -s BENCH_SCALE` on the source, plus a heartbeat table (one row). Ferry: a
// real `ferry serve` from dist/ and a continuous job, started through the REST API (full dump,
// then Incremental load). Subscription: the schema pre-created with `pg_dump --schema-only`,
// CREATE PUBLICATION on the source, CREATE SUBSCRIPTION ... WITH (copy_data = true).
// pgbench_history has no primary key: it gets REPLICA IDENTITY FULL so that both replicate it.
//
// 1. Lag under steady load: `pgbench -c BENCH_CLIENTS -j 2 -T BENCH_SECONDS` (TPC-B). The bench
//    updates the heartbeat row 10 times a second with the source's clock_timestamp(), and polls
//    each destination every 100 ms for the age of the heartbeat it holds (clock_timestamp() on
//    the destination minus the heartbeat's value: one clock, both clusters run on this machine).
//    The age includes up to 100 ms of heartbeat period, for both alike. Rows/s applied: 4 row
//    changes per TPC-B transaction (3 UPDATEs, 1 INSERT), counted through pgbench_history rows
//    on each destination. Ferry's RSS: /proc/PID/status of the `ferry serve` process, every 100 ms.
// 2. Catch-up: both paused (Ferry: the job's :stop; subscription: ALTER SUBSCRIPTION ... DISABLE),
//    then the same backlog is written (pgbench for BENCH_BACKLOG_SECONDS, then
//    BENCH_BACKLOG_UPDATES updates of every pgbench_accounts row, each one transaction, then a
//    last heartbeat as the end marker); then each is resumed ALONE in turn (Ferry first unless
//    BENCH_CATCHUP_FIRST=subscription; alternating over BENCH_CATCHUP_ROUNDS rounds) and timed
//    from resume until its destination holds the end marker and equals the source (balances and
//    history). Ferry's peak RSS during its catch-up:
//    VmHWM reset before it (clear_refs) and VmRSS sampled every 100 ms. CPU seconds of the
//    processes doing each catch-up (/proc/PID/stat): the source's walsenders of the database,
//    `ferry serve`, and the destination database's server processes (Ferry's applier session;
//    the subscription's apply worker): on a shared machine they vary less than wall time. The
//    walsender decodes the whole cluster's WAL, so other databases' writes count there.
//
// Run: `npm run bench:cdc` (builds first). Environment: BENCH_SCALE (10), BENCH_SECONDS (30),
// BENCH_CLIENTS (4), BENCH_BACKLOG_SECONDS (20), BENCH_BACKLOG_UPDATES (2), BENCH_CATCHUP_ROUNDS
// (2; 0 skips the catch-up; the one resumed first alternates between rounds, medians are compared),
// BENCH_CATCHUP_FIRST (ferry: who goes first in round 1), BENCH_TIMEOUT_SECONDS (900, per wait),
// FERRY_TEST_PG_* as in lib.js. Everything it creates (databases, subscription, publication,
// slots, the Ferry job, the server by its PID and its data directory) is removed at the end,
// also on failure and on Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DST_PORT, HOST, SRC_PORT, USER, call, connect, cpuMillis, cpuSince, createDatabase, createPgJob, envNumber, every, log, median, onCleanup, percentile, pgbenchSource, run, runBench, serverCpu, startFerry, uid, waitUntil, watchMemory,
} from './lib.js';

const SCALE = envNumber('BENCH_SCALE', 10);
const SECONDS = envNumber('BENCH_SECONDS', 30);
const CLIENTS = envNumber('BENCH_CLIENTS', 4);
const BACKLOG_SECONDS = envNumber('BENCH_BACKLOG_SECONDS', 20);
const BACKLOG_UPDATES = envNumber('BENCH_BACKLOG_UPDATES', 2);
const CATCHUP_ROUNDS = envNumber('BENCH_CATCHUP_ROUNDS', 2);
const CATCHUP_FIRST = process.env.BENCH_CATCHUP_FIRST ?? 'ferry';
if (!['ferry', 'subscription'].includes(CATCHUP_FIRST)) throw new Error(`BENCH_CATCHUP_FIRST must be ferry or subscription, got ${CATCHUP_FIRST}`);
const TIMEOUT_MS = envNumber('BENCH_TIMEOUT_SECONDS', 900) * 1000;
const THREADS = Math.max(1, Math.min(CLIENTS, 2));
const POLL_MS = 100;
const HEARTBEAT_MS = 100;
const ROWS_PER_TX = 4;
const MiB = 1024 * 1024;
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history', 'bench_heartbeat'];
const TARGET = { lagP99: 0.25, lagVsSub: (subP99) => 2 * subP99 + 0.1, catchUpRatio: 1.0, rssMiB: 200 };

const COMMAND = `BENCH_SCALE=${SCALE} BENCH_SECONDS=${SECONDS} BENCH_CLIENTS=${CLIENTS} BENCH_BACKLOG_SECONDS=${BACKLOG_SECONDS} BENCH_BACKLOG_UPDATES=${BACKLOG_UPDATES} BENCH_CATCHUP_ROUNDS=${CATCHUP_ROUNDS} BENCH_CATCHUP_FIRST=${CATCHUP_FIRST} npm run bench:cdc`;

const id = uid();
const names = { source: `bench_cdc_src_${id}`, ferryDst: `bench_cdc_ferry_${id}`, subDst: `bench_cdc_sub_${id}`, publication: `bench_cdc_pub_${id}`, subscription: `bench_cdc_sub_${id}` };

const fmtS = (v) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const fmtMiB = (v) => (Number.isFinite(v) ? `${(v / MiB).toFixed(0)} MiB` : 'n/a');
const num = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');

const historyCount = async (client) => Number((await client.query('SELECT count(*) AS n FROM public.pgbench_history')).rows[0].n);
const heartbeatSeq = async (client) => Number((await client.query('SELECT seq FROM public.bench_heartbeat WHERE id = 1')).rows[0]?.seq ?? -1);
const checksum = (client) =>
  client
    .query(`SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(bbalance) FROM pgbench_branches)::text AS b,
                   (SELECT sum(tbalance) FROM pgbench_tellers)::text AS t, (SELECT count(*) FROM pgbench_history)::text AS h`)
    .then((r) => JSON.stringify(r.rows[0]));

/** waitFor with this bench's timeout (BENCH_TIMEOUT_SECONDS). */
const waitFor = (what, check, everyMs = POLL_MS) => waitUntil(what, check, { everyMs, timeoutMs: TIMEOUT_MS, hint: 'BENCH_TIMEOUT_SECONDS' });

async function jobOf(ferry, jobId) {
  const job = await call(ferry.url, 'GET', `/v1/migrationJobs/${jobId}`);
  if (job.status === 'FAILED' || job.status === 'RUNNING_WITH_ERRORS') throw new Error(`the Ferry job is ${job.status}: ${JSON.stringify(job.error)}`);
  return job;
}

/** A check of the Ferry job at most once a second (a failed job ends the bench instead of a wait until the timeout). */
function throttledJobCheck(ferry, jobId) {
  let last = 0;
  return async () => {
    if (Date.now() - last < 1000) return;
    last = Date.now();
    await jobOf(ferry, jobId);
  };
}

async function main() {
  log(`load average ${loadavg().map((v) => v.toFixed(1)).join(' ')} on ${cpus().length} cores; pgbench -i -s ${SCALE} into ${HOST}:${SRC_PORT}/${names.source}`);
  // Dropped by runBench's clean-up after every other step (the subscription, the job, the server).
  for (const db of [names.ferryDst, names.subDst]) await createDatabase(DST_PORT, db);
  const { source, accounts } = await pgbenchSource(names.source, SCALE, [
    'CREATE TABLE public.bench_heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL, seq bigint NOT NULL)',
    'INSERT INTO public.bench_heartbeat VALUES (1, clock_timestamp(), 0)',
  ]);

  // The subscription's destination: the schema from pg_dump (through psql: the dump may hold meta-commands).
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-cdc-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  await run('pg_dump', ['--schema-only', '--no-owner', '--no-publications', '--no-subscriptions', '-h', HOST, '-p', String(SRC_PORT), '-f', join(dir, 'schema.sql'), names.source]);
  await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', HOST, '-p', String(DST_PORT), '-d', names.subDst, '-f', join(dir, 'schema.sql')]);
  const subDst = await connect(DST_PORT, names.subDst);
  onCleanup(() => subDst.end());
  await source.query(`CREATE PUBLICATION ${names.publication} FOR TABLE ${TABLES.join(', ')}`);
  onCleanup(async () => {
    await source.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [names.subscription]).catch(() => undefined);
    await source.query(`DROP PUBLICATION IF EXISTS ${names.publication}`);
  });

  // Ferry: a continuous job through a real server.
  const ferry = await startFerry({ prefix: 'ferry-bench-cdc-' }); // stopped by runBench's clean-up
  log(`ferry serve pid ${ferry.pid} at ${ferry.url}`);
  const job = await createPgJob(ferry, 'continuous', names.source, names.ferryDst);
  onCleanup(() => job.remove());

  log('starting both: the Ferry job (full dump) and the subscription (copy_data = true)');
  const setupStarted = Date.now();
  await call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:start`, {});
  await subDst.query(`CREATE SUBSCRIPTION ${names.subscription} CONNECTION 'host=${HOST} port=${SRC_PORT} user=${USER} dbname=${names.source}' PUBLICATION ${names.publication} WITH (copy_data = true)`);
  onCleanup(async () => {
    // DROP SUBSCRIPTION drops its slot on the source too; disabled first so that its worker lets go.
    await subDst.query(`ALTER SUBSCRIPTION ${names.subscription} DISABLE`).catch(() => undefined);
    await subDst.query(`DROP SUBSCRIPTION IF EXISTS ${names.subscription}`).catch(async (e) => {
      log(`DROP SUBSCRIPTION failed (${e.message}); detaching its slot and dropping it on the source`);
      await subDst.query(`ALTER SUBSCRIPTION ${names.subscription} SET (slot_name = NONE)`);
      await subDst.query(`DROP SUBSCRIPTION IF EXISTS ${names.subscription}`);
    });
  });
  const [ferryReady, subReady] = await Promise.all([
    waitFor('Ferry in Incremental load', async () => {
      const j = await jobOf(ferry, job.jobId);
      return j.status === 'RUNNING' && j.phase === 'INCREMENTAL_LOAD' ? Date.now() : null;
    }, 250),
    waitFor('subscription tables ready', async () => {
      const { rows } = await subDst.query(`SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS pending, count(*)::int AS total FROM pg_subscription_rel`);
      return rows[0].total === TABLES.length && rows[0].pending === 0 ? Date.now() : null;
    }, 250),
  ]);
  log(`initial copy of ${num(accounts)} accounts: Ferry in Incremental load after ${((ferryReady - setupStarted) / 1000).toFixed(1)} s, subscription ready after ${((subReady - setupStarted) / 1000).toFixed(1)} s`);
  const ferryDst = await connect(DST_PORT, names.ferryDst);
  onCleanup(() => ferryDst.end());
  // Own connections for the heartbeat writer and the lag pollers: nothing else queues on them.
  const heartbeatClient = await connect(SRC_PORT, names.source);
  onCleanup(() => heartbeatClient.end());
  const lagClient = async (db) => {
    const c = await connect(DST_PORT, db);
    onCleanup(() => c.end());
    return c;
  };
  const dests = [
    { key: 'ferry', name: 'Ferry continuous job', client: ferryDst, lagClient: await lagClient(names.ferryDst), countClient: await lagClient(names.ferryDst), healthy: throttledJobCheck(ferry, job.jobId) },
    { key: 'sub', name: 'PostgreSQL subscription', client: subDst, lagClient: await lagClient(names.subDst), countClient: await lagClient(names.subDst), healthy: async () => undefined },
  ];

  // Heartbeat, and both destinations in step before the load.
  let heartbeats = 0;
  const beat = async () => {
    const { rows } = await heartbeatClient.query('UPDATE public.bench_heartbeat SET ts = clock_timestamp(), seq = seq + 1 WHERE id = 1 RETURNING seq');
    heartbeats++;
    return Number(rows[0].seq);
  };
  const sync = async (what) => {
    const seq = await beat();
    const sourceSum = await checksum(source);
    for (const d of dests) {
      await waitFor(`${d.name} ${what}`, async () => (await d.healthy(), (await heartbeatSeq(d.client)) >= seq));
      const sum = await checksum(d.client);
      if (sum !== sourceSum) throw new Error(`${d.name} ${what}: holds ${sum}, the source ${sourceSum}`);
    }
  };
  await sync('in step with the source before the load');

  // 1. Steady load.
  const history0 = await historyCount(source);
  const heartbeat = every(HEARTBEAT_MS, beat);
  const lags = { ferry: [], sub: [] };
  const applied = { ferry: [], sub: [] }; // [ms since load start, history rows]
  let loading = false;
  let loadStarted = Date.now();
  const pollers = dests.map((d) =>
    every(POLL_MS, async () => {
      const { rows } = await d.lagClient.query('SELECT extract(epoch FROM clock_timestamp() - ts)::float8 AS age FROM public.bench_heartbeat WHERE id = 1');
      if (loading) lags[d.key].push(rows[0].age);
    }),
  );
  const counters = dests.map((d) => every(500, async () => applied[d.key].push([Date.now() - loadStarted, (await historyCount(d.countClient)) - history0])));
  const steadyMemory = watchMemory(ferry.pid);
  const pgbenchArgs = (seconds) => ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds), '-h', HOST, '-p', String(SRC_PORT), names.source];
  log(`load: pgbench ${pgbenchArgs(SECONDS).join(' ')}; heartbeat every ${HEARTBEAT_MS} ms, destinations polled every ${POLL_MS} ms`);
  loadStarted = Date.now();
  loading = true;
  const { stdout: pgbenchOut } = await run('pgbench', pgbenchArgs(SECONDS));
  const loadEnded = Date.now();
  loading = false;
  const loadSeconds = (loadEnded - loadStarted) / 1000;
  const transactions = (await historyCount(source)) - history0;
  const tps = Number(/tps = ([\d.]+)/.exec(pgbenchOut)?.[1] ?? NaN);
  const atLoadEnd = {};
  for (const d of dests) atLoadEnd[d.key] = (await historyCount(d.client)) - history0;
  const caughtAfter = {};
  await Promise.all(
    dests.map(async (d) => {
      await waitFor(`${d.name} caught up after the load`, async () => (await d.healthy(), (await historyCount(d.client)) - history0 >= transactions));
      caughtAfter[d.key] = (Date.now() - loadEnded) / 1000;
    }),
  );
  for (const c of counters) await c.stop();
  for (const p of pollers) await p.stop();
  const steadyRss = await steadyMemory.stop();
  await heartbeat.stop();
  await sync('equal to the source after the load');
  const ferryJob = await jobOf(ferry, job.jobId);

  const lag = {};
  for (const d of dests) lag[d.key] = { p50: percentile(lags[d.key], 50), p95: percentile(lags[d.key], 95), p99: percentile(lags[d.key], 99), max: percentile(lags[d.key], 100), n: lags[d.key].length };
  // Best 5 s window of applied rows, from the 500 ms samples.
  const peakRate = (samples) => {
    let best = NaN;
    for (let i = 0; i < samples.length; i++) {
      const j = samples.findIndex(([t]) => t - samples[i][0] >= 5000);
      if (j < 0) break;
      best = Math.max(Number.isNaN(best) ? 0 : best, ((samples[j][1] - samples[i][1]) * ROWS_PER_TX) / ((samples[j][0] - samples[i][0]) / 1000));
    }
    return best;
  };
  const steadyLines = [
    '',
    `CDC lag under steady load: pgbench TPC-B, scale ${SCALE} (${num(accounts)} accounts), ${CLIENTS} clients, ${THREADS} threads, ${loadSeconds.toFixed(1)} s on ${HOST}:${SRC_PORT};`,
    `Ferry and a PostgreSQL subscription fed by the same source AT THE SAME TIME, each into its own database on ${HOST}:${DST_PORT}.`,
    `Source: ${num(transactions)} transactions (pgbench ${num(tps)} tps), ${num(transactions * ROWS_PER_TX)} row changes = ${num((transactions * ROWS_PER_TX) / loadSeconds)} rows/s offered; ${num(heartbeats)} heartbeats.`,
    '',
    '| Measure | Ferry continuous job | PostgreSQL subscription |',
    '|---|---:|---:|',
    `| Heartbeat lag p50, s | ${fmtS(lag.ferry.p50)} | ${fmtS(lag.sub.p50)} |`,
    `| Heartbeat lag p95, s | ${fmtS(lag.ferry.p95)} | ${fmtS(lag.sub.p95)} |`,
    `| Heartbeat lag p99, s | ${fmtS(lag.ferry.p99)} | ${fmtS(lag.sub.p99)} |`,
    `| Heartbeat lag max, s | ${fmtS(lag.ferry.max)} | ${fmtS(lag.sub.max)} |`,
    `| Lag samples (every ${POLL_MS} ms while pgbench ran) | ${lag.ferry.n} | ${lag.sub.n} |`,
    `| Sustained rows/s applied while the load ran | ${num((atLoadEnd.ferry * ROWS_PER_TX) / loadSeconds)} | ${num((atLoadEnd.sub * ROWS_PER_TX) / loadSeconds)} |`,
    `| Best 5 s apply rate, rows/s | ${num(peakRate(applied.ferry))} | ${num(peakRate(applied.sub))} |`,
    `| Rows behind when the load ended | ${num((transactions - atLoadEnd.ferry) * ROWS_PER_TX)} | ${num((transactions - atLoadEnd.sub) * ROWS_PER_TX)} |`,
    `| Caught up after the load ended, s | ${caughtAfter.ferry.toFixed(1)} | ${caughtAfter.sub.toFixed(1)} |`,
    `| Peak RSS of \`ferry serve\` during the load | ${fmtMiB(steadyRss.peak)} | — |`,
    `| Balances and history equal to the source afterwards | yes | yes |`,
    '',
    `Lag = clock_timestamp() on the destination minus the heartbeat it holds (written 10x/s with the source's clock_timestamp(); same machine, one clock): it includes up to ${HEARTBEAT_MS} ms of heartbeat period for both.`,
    `Rows/s applied = ${ROWS_PER_TX} x pgbench_history rows on the destination (TPC-B: 3 UPDATEs + 1 INSERT per transaction) / load time. Ferry's own counters: changesApplied ${num(ferryJob.replication?.changesApplied)}, lagBytes ${num(ferryJob.replication?.lagBytes)}.`,
    `Initial copy (both at once): Ferry ${((ferryReady - setupStarted) / 1000).toFixed(1)} s to Incremental load, subscription ${((subReady - setupStarted) / 1000).toFixed(1)} s to all tables ready.`,
    `Load average at the end: ${loadavg().map((v) => v.toFixed(1)).join(' ')} on ${cpus().length} cores (the machine may be shared: timings are noisy).`,
    `Reproduce: \`${COMMAND}\``,
    '',
  ];
  process.stdout.write(steadyLines.join('\n'));

  // 2. Catch-up, BENCH_CATCHUP_ROUNDS times; the one resumed first alternates between rounds.
  const resumeFerry = () => call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:resume`, {});
  const resumeSub = () => subDst.query(`ALTER SUBSCRIPTION ${names.subscription} ENABLE`);
  /** One round: both paused, the backlog written, each resumed alone in `order` and timed until it holds the end marker and equals the source. */
  const catchUpRound = async (round, order) => {
    log(`catch-up round ${round}: pausing both (Ferry :stop, ALTER SUBSCRIPTION ... DISABLE)`);
    await call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:stop`, {});
    await subDst.query(`ALTER SUBSCRIPTION ${names.subscription} DISABLE`);
    await waitFor('Ferry job Stopped', async () => (await jobOf(ferry, job.jobId)).status === 'STOPPED', 250);
    await waitFor('no walsender on either slot', async () => {
      const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database() AND active`);
      return rows[0].n === 0;
    }, 250);
    const lsn0 = (await source.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
    const backlogHistory0 = await historyCount(source);
    log(`backlog: pgbench ${pgbenchArgs(BACKLOG_SECONDS).join(' ')}, then ${BACKLOG_UPDATES} x UPDATE of all ${num(accounts)} accounts`);
    const backlogStarted = Date.now();
    if (BACKLOG_SECONDS > 0) await run('pgbench', pgbenchArgs(BACKLOG_SECONDS));
    for (let i = 0; i < BACKLOG_UPDATES; i++) await source.query('UPDATE pgbench_accounts SET abalance = abalance + 1');
    const marker = await beat();
    const backlogTx = (await historyCount(source)) - backlogHistory0;
    const walBytes = Number((await source.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS bytes`, [lsn0])).rows[0].bytes);
    const changes = backlogTx * ROWS_PER_TX + BACKLOG_UPDATES * accounts + 1;
    const sourceSum = await checksum(source);
    log(`backlog written in ${((Date.now() - backlogStarted) / 1000).toFixed(1)} s: ${num(backlogTx)} transactions + ${BACKLOG_UPDATES} x ${num(accounts)} rows = ${num(changes)} row changes, ${fmtMiB(walBytes)} of WAL (cluster-wide)`);
    const result = { round, order: order.map((d) => d.key), backlogTx, changes, walBytes };
    for (const d of order) {
      log(`catch-up round ${round}: resuming ${d.name} alone`);
      const memory = d.key === 'ferry' ? watchMemory(ferry.pid) : null;
      // CPU seconds of every process that does the work: on a shared machine they vary less than wall time.
      const cpu0 = { walsender: await serverCpu(source, names.source, 'walsender'), destination: await serverCpu(d.client, d.key === 'ferry' ? names.ferryDst : names.subDst), ferry: cpuMillis(ferry.pid) };
      const started = process.hrtime.bigint();
      await (d.key === 'ferry' ? resumeFerry() : resumeSub());
      await waitFor(`${d.name} caught up with the backlog`, async () => (await d.healthy(), (await heartbeatSeq(d.client)) >= marker));
      let secondsTaken = Number(process.hrtime.bigint() - started) / 1e9;
      const sum = await checksum(d.client);
      if (sum !== sourceSum) {
        log(`${d.name} holds the end marker but differs from the source (${sum} vs ${sourceSum}); waiting until equal`);
        await waitFor(`${d.name} equal to the source after catch-up`, async () => (await checksum(d.client)) === sourceSum, 500);
        secondsTaken = Number(process.hrtime.bigint() - started) / 1e9;
      }
      result[d.key] = secondsTaken;
      result[`${d.key}Cpu`] = {
        walsender: cpuSince(cpu0.walsender, await serverCpu(source, names.source, 'walsender')) / 1000,
        destination: cpuSince(cpu0.destination, await serverCpu(d.client, d.key === 'ferry' ? names.ferryDst : names.subDst)) / 1000,
        ferry: d.key === 'ferry' ? (cpuMillis(ferry.pid) - cpu0.ferry) / 1000 : 0,
      };
      if (memory !== null) result.rss = await memory.stop();
      log(`${d.name}: caught up in ${secondsTaken.toFixed(1)} s${memory !== null ? `, peak RSS ${fmtMiB(result.rss.peak)}` : ''}`);
    }
    result.load = loadavg()[0];
    return result;
  };
  const rounds = [];
  for (let round = 1; round <= CATCHUP_ROUNDS; round++) {
    const ferryFirst = (CATCHUP_FIRST === 'ferry') === (round % 2 === 1);
    rounds.push(await catchUpRound(round, ferryFirst ? [dests[0], dests[1]] : [dests[1], dests[0]]));
  }
  let catchUp = null;
  if (rounds.length > 0) {
    catchUp = { ferry: median(rounds.map((r) => r.ferry)), sub: median(rounds.map((r) => r.sub)), rss: Math.max(...rounds.map((r) => r.rss.peak)) };
    const first = rounds[0];
    const catchLines = [
      '',
      `CDC catch-up: both paused, then the same backlog written on the source: pgbench (${CLIENTS} clients) for ${BACKLOG_SECONDS} s, then ${BACKLOG_UPDATES} x UPDATE of all ${num(accounts)} pgbench_accounts rows`,
      `(one transaction each), then an end marker; each resumed ALONE in turn and timed from its resume until its destination held the marker and its balances and history equalled the source's.`,
      `WAL is cluster-wide (other databases' writes on ${HOST}:${SRC_PORT} included). The subscription is PostgreSQL's default (streaming = off).`,
      '',
      '| Round | Resumed first | Backlog: transactions / row changes / WAL | Ferry s | Subscription s | Ratio Ferry / subscription | Ferry peak RSS (sampled / VmHWM) | Load avg (1 min) |',
      '|---:|---|---|---:|---:|---:|---|---:|',
      ...rounds.map((r) => `| ${r.round} | ${r.order[0] === 'ferry' ? 'Ferry' : 'subscription'} | ${num(r.backlogTx)} / ${num(r.changes)} / ${fmtMiB(r.walBytes)} | ${r.ferry.toFixed(1)} | ${r.sub.toFixed(1)} | ${(r.ferry / r.sub).toFixed(2)} | ${fmtMiB(r.rss.sampled)} / ${fmtMiB(r.rss.hwm)} | ${r.load.toFixed(1)} |`),
      ...(rounds.length > 1 ? [`| median | | | ${catchUp.ferry.toFixed(1)} | ${catchUp.sub.toFixed(1)} | ${(catchUp.ferry / catchUp.sub).toFixed(2)} | max ${fmtMiB(catchUp.rss)} | |`] : []),
      '',
      `Row changes/s during catch-up (round 1): Ferry ${num(first.changes / first.ferry)}, subscription ${num(first.changes / first.sub)}.`,
      '',
      'CPU seconds used during each catch-up (/proc/PID/stat of the processes doing the work; steadier than wall time on a shared machine):',
      '',
      '| Round | Ferry: walsender / ferry serve / destination backends = total | Subscription: walsender / apply worker (destination backends) = total |',
      '|---:|---|---|',
      ...rounds.map((r) => {
        const f = r.ferryCpu;
        const s = r.subCpu;
        return `| ${r.round} | ${f.walsender.toFixed(1)} / ${f.ferry.toFixed(1)} / ${f.destination.toFixed(1)} = ${(f.walsender + f.ferry + f.destination).toFixed(1)} | ${s.walsender.toFixed(1)} / ${s.destination.toFixed(1)} = ${(s.walsender + s.destination).toFixed(1)} |`;
      }),
      `Reproduce: \`${COMMAND}\``,
      '',
    ];
    process.stdout.write(catchLines.join('\n'));
  }

  // Targets of issue 15.
  const p99Ok = Number.isFinite(lag.ferry.p99) ? lag.ferry.p99 <= TARGET.lagP99 : null;
  const vsSubOk = Number.isFinite(lag.ferry.p99) && Number.isFinite(lag.sub.p99) ? lag.ferry.p99 <= TARGET.lagVsSub(lag.sub.p99) : null;
  const targetLines = [
    '',
    `Targets (issue 15), this run on ${cpus().length} cores:`,
    '',
    '| Target | Measured | Result |',
    '|---|---:|---|',
    `| Ferry lag p99 <= ${TARGET.lagP99} s | ${fmtS(lag.ferry.p99)} s | ${verdict(p99Ok)} |`,
    `| Ferry lag p99 <= 2 x subscription p99 + 0.1 s (= ${fmtS(TARGET.lagVsSub(lag.sub.p99))} s) | ${fmtS(lag.ferry.p99)} s | ${verdict(vsSubOk)} |`,
    ...(catchUp
      ? [
          `| Catch-up <= ${TARGET.catchUpRatio.toFixed(1)} x subscription (${rounds.length > 1 ? 'medians: ' : ''}${catchUp.sub.toFixed(1)} s) | ${catchUp.ferry.toFixed(1)} s (${(catchUp.ferry / catchUp.sub).toFixed(2)} x) | ${verdict(catchUp.ferry <= TARGET.catchUpRatio * catchUp.sub)} |`,
          `| Ferry peak RSS during catch-up <= ${TARGET.rssMiB} MiB | ${fmtMiB(catchUp.rss)} | ${verdict(catchUp.rss <= TARGET.rssMiB * MiB)} |`,
        ]
      : ['| Catch-up and its RSS | not run (BENCH_CATCHUP_ROUNDS=0) | n/a |']),
    `| (for reference) Ferry peak RSS during the steady load <= ${TARGET.rssMiB} MiB | ${fmtMiB(steadyRss.peak)} | ${verdict(steadyRss.peak <= TARGET.rssMiB * MiB)} |`,
    '',
    `Reproduce: \`${COMMAND}\``,
    '',
  ];
  process.stdout.write(targetLines.join('\n'));
}

await runBench(main);
