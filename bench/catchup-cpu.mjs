// CPU per change of a PostgreSQL catch-up (issue 15, point 2): how many microseconds of CPU
// `ferry serve` spends per row change while it applies a backlog, next to the source's walsender
// and the destination's backends. CPU time varies far less than wall time on a shared machine,
// so this is the number to compare before and after a change to the decode / plan / apply path.
//
// Setup: `pgbench -i -s BENCH_SCALE` on the source (5432), pgbench_history with REPLICA
// IDENTITY FULL, a marker table; a real `ferry serve` from dist/ and a continuous job into a
// database on 5433 (full dump, then Incremental load). Each round: the job's :stop, then the
// backlog (pgbench for BENCH_BACKLOG_SECONDS, BENCH_BACKLOG_UPDATES updates of every
// pgbench_accounts row, one transaction each, then the marker), then :resume, timed until the
// destination holds the marker and equals the source (balances and history). CPU from
// /proc/PID/stat: `ferry serve`, the source database's walsenders, the destination database's
// backends. Row changes = 4 per pgbench transaction + the accounts updated + the marker.
//
// Run: `npm run build && node bench/catchup-cpu.mjs`. Environment: BENCH_SCALE (10),
// BENCH_BACKLOG_SECONDS (10), BENCH_BACKLOG_UPDATES (2), BENCH_ROUNDS (2), BENCH_CLIENTS (4),
// BENCH_TIMEOUT_SECONDS (900, per wait), FERRY_BENCH_NODE_ARGS / FERRY_BENCH_LOG_FILE and
// FERRY_TEST_PG_* as in lib.js. Everything it creates is removed at the end, also on failure.
import { cpus, loadavg } from 'node:os';
import {
  DST_PORT, HOST, SRC_PORT, call, connect, cpuMillis, cpuSince, createDatabase, createPgJob, envNumber, log, median, onCleanup, pgbenchSource, run, runBench, serverCpu, startFerry, uid, waitUntil, watchMemory,
} from './lib.js';

const SCALE = envNumber('BENCH_SCALE', 10);
const BACKLOG_SECONDS = envNumber('BENCH_BACKLOG_SECONDS', 10);
const BACKLOG_UPDATES = envNumber('BENCH_BACKLOG_UPDATES', 2);
const ROUNDS = Math.max(1, envNumber('BENCH_ROUNDS', 2));
const CLIENTS = Math.max(1, envNumber('BENCH_CLIENTS', 4));
const TIMEOUT_MS = envNumber('BENCH_TIMEOUT_SECONDS', 900) * 1000;
const COMMAND = `BENCH_SCALE=${SCALE} BENCH_BACKLOG_SECONDS=${BACKLOG_SECONDS} BENCH_BACKLOG_UPDATES=${BACKLOG_UPDATES} BENCH_ROUNDS=${ROUNDS} BENCH_CLIENTS=${CLIENTS} node bench/catchup-cpu.mjs`;
const MiB = 1024 * 1024;

const id = uid();
const names = { source: `bench_cpu_src_${id}`, destination: `bench_cpu_dst_${id}` };
const waitFor = (what, check, everyMs = 100) => waitUntil(what, check, { everyMs, timeoutMs: TIMEOUT_MS, hint: 'BENCH_TIMEOUT_SECONDS' });
const num = (v) => Math.round(v).toLocaleString('en-US');
const checksum = (client) =>
  client
    .query(`SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(tbalance) FROM pgbench_tellers)::text AS t, (SELECT count(*) FROM pgbench_history)::text AS h`)
    .then((r) => JSON.stringify(r.rows[0]));
const markerOf = async (client) => Number((await client.query('SELECT seq FROM public.bench_marker WHERE id = 1')).rows[0]?.seq ?? -1);

async function main() {
  log(`load average ${loadavg().map((v) => v.toFixed(1)).join(' ')} on ${cpus().length} cores; pgbench -i -s ${SCALE} into ${HOST}:${SRC_PORT}/${names.source}`);
  await createDatabase(DST_PORT, names.destination);
  const { source, accounts } = await pgbenchSource(names.source, SCALE, ['CREATE TABLE public.bench_marker (id int PRIMARY KEY, seq bigint NOT NULL)', 'INSERT INTO public.bench_marker VALUES (1, 0)']);
  const mark = async () => Number((await source.query('UPDATE public.bench_marker SET seq = seq + 1 WHERE id = 1 RETURNING seq')).rows[0].seq);

  const ferry = await startFerry({ prefix: 'ferry-bench-cpu-' });
  log(`ferry serve pid ${ferry.pid} at ${ferry.url}`);
  const job = await createPgJob(ferry, 'continuous', names.source, names.destination);
  onCleanup(() => job.remove());
  const jobState = async () => {
    const j = await call(ferry.url, 'GET', `/v1/migrationJobs/${job.jobId}`);
    if (j.status === 'FAILED' || j.status === 'RUNNING_WITH_ERRORS') throw new Error(`the Ferry job is ${j.status}: ${JSON.stringify(j.error)}`);
    return j;
  };
  await call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:start`, {});
  await waitFor('Ferry in Incremental load', async () => {
    const j = await jobState();
    return j.status === 'RUNNING' && j.phase === 'INCREMENTAL_LOAD';
  }, 250);
  const destination = await connect(DST_PORT, names.destination);
  onCleanup(() => destination.end());
  const first = await mark();
  await waitFor('the destination in step with the source', async () => (await markerOf(destination)) >= first);

  const rounds = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:stop`, {});
    await waitFor('Ferry job Stopped', async () => (await jobState()).status === 'STOPPED', 250);
    const history0 = Number((await source.query('SELECT count(*) AS n FROM pgbench_history')).rows[0].n);
    log(`round ${round}: backlog of pgbench -c ${CLIENTS} for ${BACKLOG_SECONDS} s, then ${BACKLOG_UPDATES} x UPDATE of all ${num(accounts)} accounts`);
    if (BACKLOG_SECONDS > 0) await run('pgbench', ['-n', '-c', String(CLIENTS), '-j', String(Math.min(CLIENTS, 2)), '-T', String(BACKLOG_SECONDS), '-h', HOST, '-p', String(SRC_PORT), names.source]);
    for (let i = 0; i < BACKLOG_UPDATES; i++) await source.query('UPDATE pgbench_accounts SET abalance = abalance + 1');
    const marker = await mark();
    const transactions = Number((await source.query('SELECT count(*) AS n FROM pgbench_history')).rows[0].n) - history0;
    const changes = transactions * 4 + BACKLOG_UPDATES * accounts + 1;
    const sourceSum = await checksum(source);

    const memory = watchMemory(ferry.pid);
    const before = { ferry: cpuMillis(ferry.pid), walsender: await serverCpu(source, names.source, 'walsender'), destination: await serverCpu(destination, names.destination) };
    const started = process.hrtime.bigint();
    await call(ferry.url, 'POST', `/v1/migrationJobs/${job.jobId}:resume`, {});
    // The job's state once a second (a failed job ends the wait): a REST call costs the server CPU too.
    let polls = 0;
    await waitFor('Ferry caught up with the backlog', async () => {
      if (polls++ % 10 === 0) await jobState();
      return (await markerOf(destination)) >= marker;
    });
    await waitFor('the destination equal to the source', async () => (await checksum(destination)) === sourceSum, 250);
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = {
      ferry: (cpuMillis(ferry.pid) - before.ferry) / 1000,
      walsender: cpuSince(before.walsender, await serverCpu(source, names.source, 'walsender')) / 1000,
      destination: cpuSince(before.destination, await serverCpu(destination, names.destination)) / 1000,
    };
    const rss = await memory.stop();
    rounds.push({ round, transactions, changes, wall, cpu, rss: rss.peak, load: loadavg()[0] });
    log(`round ${round}: ${num(changes)} changes in ${wall.toFixed(1)} s; ferry serve ${cpu.ferry.toFixed(1)} CPU s = ${((cpu.ferry * 1e6) / changes).toFixed(2)} µs per change`);
  }

  const perChange = (s, changes) => ((s * 1e6) / changes).toFixed(2);
  const lines = [
    '',
    `PostgreSQL catch-up CPU: scale ${SCALE} (${num(accounts)} accounts); backlog per round: pgbench -c ${CLIENTS} for ${BACKLOG_SECONDS} s + ${BACKLOG_UPDATES} x UPDATE of every account; Ferry resumed and timed until the destination equals the source.`,
    '',
    '| Round | Row changes | Wall s | ferry serve CPU s | µs per change | walsender CPU s | destination backends CPU s | Peak RSS | Load avg (1 min) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rounds.map((r) => `| ${r.round} | ${num(r.changes)} | ${r.wall.toFixed(1)} | ${r.cpu.ferry.toFixed(1)} | ${perChange(r.cpu.ferry, r.changes)} | ${r.cpu.walsender.toFixed(1)} | ${r.cpu.destination.toFixed(1)} | ${(r.rss / MiB).toFixed(0)} MiB | ${r.load.toFixed(1)} |`),
    `| median | | ${median(rounds.map((r) => r.wall)).toFixed(1)} | ${median(rounds.map((r) => r.cpu.ferry)).toFixed(1)} | ${median(rounds.map((r) => (r.cpu.ferry * 1e6) / r.changes)).toFixed(2)} | | | | |`,
    '',
    `Reproduce: \`${COMMAND}\``,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await runBench(main);
