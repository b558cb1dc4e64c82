// MySQL/MariaDB change-stream benchmark: a sysbench `oltp_write_only` load on a private MariaDB
// source while, AT THE SAME TIME and from the same binlog, these follow it:
//   - a native MariaDB replica (CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos) with
//     slave_parallel_threads = 4, slave_parallel_mode = optimistic: the reference;
//   - (BENCH_REPLICA_THREADS, default "4,0") a second, single-threaded replica;
//   - a Ferry continuous job to a MariaDB destination (a third private server);
//   - a Ferry continuous job to PostgreSQL (a unique database on 5433).
// Both Ferry jobs run in one real `ferry serve` from the compiled code (dist/).
//
// Lag is measured end to end, the same way for everyone: the source updates a heartbeat row
// (the wall clock in ms) ten times a second, from before the load (every destination holds one
// of those heartbeats before it starts) to its end, and each destination is polled every 100 ms for
// the age of the newest heartbeat it holds. Percentiles are over the polls taken while
// sysbench ran. Sustained rows/s = row changes written to the source during the load
// (sysbench's writes, one row each, plus the heartbeats) / time from the load's start until
// that destination holds the last heartbeat. Ferry's peak RSS is read from /proc (VmHWM,
// and the largest VmRSS sampled during the load). CPU seconds of each process doing the work
// (ferry serve, the mariadbd servers, the PostgreSQL backends of the destination database) from
// the load's start until every destination caught up, from /proc, with the load average.
// Beside the p99 judged against the target, the p99 of the polls after the load's first 2 s:
// every destination meets its first rows of the tables there (cold statements and caches), and
// with 300 polls those 20 decide the p99 alone.
//
// Run: `npm run bench:mysql-cdc` (= `npm run build && node bench/mysql-cdc.js`).
// Environment: BENCH_TABLES (4), BENCH_TABLE_SIZE (100000), BENCH_THREADS (4), BENCH_SECONDS
// (30), BENCH_REPLICA_THREADS (comma list of replicas' slave_parallel_threads, "4,0"; the
// first is the reference), BENCH_CATCH_UP_TIMEOUT_SECONDS (300), FERRY_TEST_PG_* as in lib.js;
// BENCH_SAMPLES_FILE=path writes every lag poll (destination, time, lag) as JSON, to set a tail
// beside Ferry's per-batch log (FERRY_LOG_LEVEL=debug FERRY_BENCH_LOG_FILE=path).
// Everything it creates (three or four mariadbd servers by PID and their directories, the
// PostgreSQL database, the Ferry server by PID and its data directory) is removed at the end,
// also on failure or Ctrl-C. The shared MariaDB on 3306 is not used.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { DST_PORT, HOST, USER, call, cpuMillis, cpuSince, createDatabase, dropDatabase, log, onCleanup, percentile, runBench, serverCpu, sleep, startFerry, uid } from './lib.js';
import { cpus, loadavg } from 'node:os';
import { startMariadb } from './mariadb.js';
import pg from 'pg';

const { openMysqlChangeReader } = await import('../dist/engines/mysql/mysql-change-reader.js').catch(() => {
  throw new Error('dist/ is missing: run `npm run build` first');
});
const { BinlogPosition } = await import('../dist/engines/mysql/binlog-position.js');

const TABLES = Number(process.env.BENCH_TABLES ?? 4);
const TABLE_SIZE = Number(process.env.BENCH_TABLE_SIZE ?? 100_000);
const THREADS = Number(process.env.BENCH_THREADS ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const REPLICA_THREADS = (process.env.BENCH_REPLICA_THREADS ?? '4,0').split(',').filter((s) => s.trim() !== '').map(Number);
const CATCH_UP_TIMEOUT_MS = Number(process.env.BENCH_CATCH_UP_TIMEOUT_SECONDS ?? 300) * 1000;
const READY_TIMEOUT_MS = 600_000;
const HEARTBEAT_MS = 100;
const POLL_MS = 100;
/** The start of the load left out of the second p99 column (reported beside the target, which is judged on the whole load). */
const WARMUP_MS = 2_000;
const SYSBENCH = ['/usr/bin/sysbench', '/usr/local/bin/sysbench'].find((p) => existsSync(p)) ?? null;

const id = uid();
const DB = `sbtest_${id}`;
const PG_DB = `bench_mycdc_${id}`;

function run(command, args) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout.slice(-5000)}\n${stderr}`))));
  });
}

const sysbenchArgs = (port, command) => [
  'oltp_write_only', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=root', `--mysql-db=${DB}`,
  `--tables=${TABLES}`, `--table-size=${TABLE_SIZE}`, `--threads=${THREADS}`, `--time=${SECONDS}`, '--report-interval=0', command,
];

function procStatus(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function firstRow(connection, sql, params = []) {
  const [rows] = await connection.query(sql, params);
  return rows[0] ?? null;
}

/** Starts a replica of `source` with `threads` parallel appliers (0: single-threaded), replicating from the start of its binlog. */
async function startReplica(source, threads, serverId) {
  const replica = await startMariadb({
    serverId,
    name: `replica${threads}`,
    extraArgs: [`--slave-parallel-threads=${threads}`, '--slave-parallel-mode=optimistic', '--skip-slave-start'],
  });
  onCleanup(() => replica.stop());
  const c = await replica.connect();
  onCleanup(() => c.end().catch(() => undefined));
  await c.query(`CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${source.port}, MASTER_USER = 'root', MASTER_PASSWORD = '', MASTER_USE_GTID = slave_pos`);
  await c.query('START SLAVE');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await firstRow(c, 'SHOW SLAVE STATUS');
    if (status?.Slave_IO_Running === 'Yes' && status?.Slave_SQL_Running === 'Yes') break;
    if (status?.Last_IO_Error || status?.Last_SQL_Error) throw new Error(`replica ${threads} failed: ${status.Last_IO_Error} ${status.Last_SQL_Error}`);
    if (Date.now() > deadline) throw new Error(`replica ${threads} did not start: ${JSON.stringify(status)}`);
    await sleep(200);
  }
  return { instance: replica, connection: c };
}

/** A destination polled for the newest heartbeat it holds. */
function mysqlProbe(label, connection) {
  return { label, read: async () => Number((await firstRow(connection, `SELECT v FROM \`${DB}\`.heartbeat WHERE id = 1`))?.v ?? NaN) };
}
function pgProbe(label, client) {
  return { label, read: async () => Number((await client.query(`SELECT v FROM "${DB}".heartbeat WHERE id = 1`)).rows[0]?.v ?? NaN) };
}

async function waitAllHold(probes, value, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await Promise.all(probes.map((p) => p.read().catch(() => NaN)));
    if (seen.every((v) => v >= value)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not every destination holds heartbeat ${value} after ${timeoutMs / 1000} s: ${probes.map((p, i) => `${p.label}=${seen[i]}`).join(', ')}`);
    await sleep(200);
  }
}

/** count, sum of ids and of k over the sysbench tables: equal on every destination once caught up. */
async function mysqlChecksum(connection) {
  const parts = [];
  for (let t = 1; t <= TABLES; t++) {
    const row = await firstRow(connection, `SELECT COUNT(*) AS n, COALESCE(SUM(id), 0) AS s, COALESCE(SUM(k), 0) AS k FROM \`${DB}\`.sbtest${t}`);
    parts.push(`${row.n}/${row.s}/${row.k}`);
  }
  return parts.join(' ');
}
async function pgChecksum(client) {
  const parts = [];
  for (let t = 1; t <= TABLES; t++) {
    const row = (await client.query(`SELECT COUNT(*)::text AS n, COALESCE(SUM(id), 0)::text AS s, COALESCE(SUM(k), 0)::text AS k FROM "${DB}".sbtest${t}`)).rows[0];
    parts.push(`${row.n}/${row.s}/${row.k}`);
  }
  return parts.join(' ');
}

async function binlogPosition(connection) {
  const row = await firstRow(connection, 'SHOW MASTER STATUS');
  return `${row.File}:${row.Position}`;
}

/** Statements the server ran, by kind, since it started (Questions and the Com_ counters that matter here). */
async function statementCounters(connection) {
  const [rows] = await connection.query(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_insert', 'Com_update', 'Com_delete', 'Com_replace', 'Com_select', 'Com_commit', 'Com_begin', 'Com_set_option', 'Com_savepoint')",
  );
  return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
}

/**
 * Ferry's change reader alone (from dist/, in this process), no applier: the binlog between
 * `from` and `to` decoded as for a destination of `engine`. Resolves with the row changes read and the seconds it took.
 */
async function readerAlone(source, from, to, engine) {
  const params = { engine: 'mysql', host: '127.0.0.1', port: source.port, database: DB, username: 'root', password: null, tls: { mode: 'none' } };
  const end = BinlogPosition.parse(to);
  const started = process.hrtime.bigint();
  const reader = await openMysqlChangeReader(params, from, { destinationEngine: engine });
  let changes = 0;
  const timeout = setTimeout(() => void reader.close(), CATCH_UP_TIMEOUT_MS);
  try {
    outer: for await (const chunk of reader.events()) {
      for (const event of chunk) {
        if (event.kind === 'change') changes++;
        else if ((event.kind === 'commit' || event.kind === 'heartbeat') && BinlogPosition.parse(event.position).compare(end) >= 0) break outer;
      }
    }
  } finally {
    clearTimeout(timeout);
    await reader.close();
  }
  return { changes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

async function main() {
  if (SYSBENCH === null) throw new Error('sysbench is not installed: apt-get install -y sysbench');
  if (!Number.isInteger(TABLES) || TABLES < 1 || !Number.isInteger(THREADS) || THREADS < 1 || !(SECONDS > 0) || !(TABLE_SIZE > 0)) {
    throw new Error('BENCH_TABLES, BENCH_THREADS must be positive integers, BENCH_SECONDS and BENCH_TABLE_SIZE positive');
  }
  if (REPLICA_THREADS.length === 0 || REPLICA_THREADS.some((n) => !Number.isInteger(n) || n < 0)) throw new Error('BENCH_REPLICA_THREADS must list integers >= 0, e.g. "4,0"');

  log('starting the private MariaDB servers (source, replicas, Ferry destination)');
  const source = await startMariadb({ serverId: 1, name: 'source', extraArgs: ['--gtid-strict-mode=1'] });
  onCleanup(() => source.stop());
  const src = await source.connect();
  onCleanup(() => src.end().catch(() => undefined));
  // Replicas first: with an empty gtid_slave_pos they replicate the whole binlog, the prepare included.
  const replicas = [];
  for (const [i, threads] of REPLICA_THREADS.entries()) replicas.push({ threads, ...(await startReplica(source, threads, 10 + i)) });
  const ferryDst = await startMariadb({ serverId: 3, name: 'ferry-dst' });
  onCleanup(() => ferryDst.stop());
  const ferryDstConn = await ferryDst.connect();
  onCleanup(() => ferryDstConn.end().catch(() => undefined));
  await createDatabase(DST_PORT, PG_DB);
  onCleanup(() => dropDatabase(DST_PORT, PG_DB));
  const pgDst = new pg.Client({ host: HOST, port: DST_PORT, user: USER, database: PG_DB });
  pgDst.on('error', () => undefined);
  await pgDst.connect();
  onCleanup(() => pgDst.end().catch(() => undefined));

  log(`sysbench prepare: ${TABLES} tables x ${TABLE_SIZE} rows in ${DB} on 127.0.0.1:${source.port}`);
  await src.query(`CREATE DATABASE \`${DB}\``);
  await src.query(`CREATE TABLE \`${DB}\`.heartbeat (id int NOT NULL PRIMARY KEY, v bigint NOT NULL) ENGINE=InnoDB`);
  await src.query(`INSERT INTO \`${DB}\`.heartbeat VALUES (1, 0)`);
  await run(SYSBENCH, sysbenchArgs(source.port, 'prepare'));

  log('starting ferry serve and its two continuous jobs (MariaDB, PostgreSQL)');
  const ferry = await startFerry('ferry-bench-mycdc-');
  const jobs = { mysql: `bench-mycdc-my-${id}`, postgres: `bench-mycdc-pg-${id}` };
  onCleanup(async () => {
    for (const job of Object.values(jobs)) await call(ferry.url, 'DELETE', `/v1/migrationJobs/${job}`).catch((e) => log(`deleting ${job}: ${e.message}`));
    await ferry.stop();
  });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: `src-${id}`, displayName: 'bench MariaDB source', engine: 'mysql', host: '127.0.0.1', port: source.port, username: 'root' });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: `mdst-${id}`, displayName: 'bench MariaDB destination', engine: 'mysql', host: '127.0.0.1', port: ferryDst.port, username: 'root' });
  await call(ferry.url, 'POST', '/v1/connectionProfiles', { id: `pdst-${id}`, displayName: 'bench PostgreSQL destination', engine: 'postgresql', host: HOST, port: DST_PORT, database: PG_DB, username: USER });
  const selection = { include: [DB], exclude: [] };
  await call(ferry.url, 'POST', '/v1/migrationJobs', { id: jobs.mysql, displayName: 'mysql cdc bench to MariaDB', type: 'continuous', sourceProfileId: `src-${id}`, destinationProfileId: `mdst-${id}`, selection });
  await call(ferry.url, 'POST', '/v1/migrationJobs', { id: jobs.postgres, displayName: 'mysql cdc bench to PostgreSQL', type: 'continuous', sourceProfileId: `src-${id}`, destinationProfileId: `pdst-${id}`, selection });
  const setupStarted = Date.now();
  for (const job of Object.values(jobs)) await call(ferry.url, 'POST', `/v1/migrationJobs/${job}:start`, {});
  const readyAt = {};
  for (;;) {
    for (const [key, job] of Object.entries(jobs)) {
      if (readyAt[key] !== undefined) continue;
      const view = await call(ferry.url, 'GET', `/v1/migrationJobs/${job}`);
      if (view.status === 'FAILED') throw new Error(`Ferry job ${job} failed: ${JSON.stringify(view.error)}`);
      if (view.status === 'RUNNING' && view.substatus === 'Incremental load' && view.replication) readyAt[key] = Date.now();
    }
    if (Object.keys(readyAt).length === 2) break;
    if (Date.now() - setupStarted > READY_TIMEOUT_MS) throw new Error(`Ferry jobs not in Incremental load after ${READY_TIMEOUT_MS / 1000} s: ${ferry.output()}`);
    await sleep(200);
  }

  const probes = [
    ...replicas.map((r) => ({ ...mysqlProbe(r.threads > 0 ? `MariaDB replica, ${r.threads} parallel appliers (optimistic)` : 'MariaDB replica, single-threaded', r.connection), kind: 'replica', threads: r.threads })),
    { ...mysqlProbe('Ferry to MariaDB', ferryDstConn), kind: 'ferry' },
    { ...pgProbe('Ferry to PostgreSQL', pgDst), kind: 'ferry' },
  ];
  // The heartbeat writer runs from before the load until its end, so that from the load's first
  // poll on, the newest heartbeat is never older than one interval on a destination that is not
  // behind (a marker written once, then a pause, would show as lag on every destination).
  let loading = false;
  let writing = true;
  let heartbeats = 0;
  let lastBeat = 0;
  const writer = (async () => {
    const hb = await source.connect();
    try {
      while (writing) {
        const next = Date.now();
        await hb.query(`UPDATE \`${DB}\`.heartbeat SET v = ? WHERE id = 1`, [next]);
        lastBeat = next;
        if (loading) heartbeats++;
        await sleep(Math.max(0, HEARTBEAT_MS - (Date.now() - next)));
      }
    } finally {
      await hb.end().catch(() => undefined);
    }
  })();
  onCleanup(async () => {
    writing = false;
    await writer.catch(() => undefined);
  });
  // Everyone at the same point before the load: a heartbeat every destination must hold.
  while (lastBeat === 0) await sleep(10);
  const marker = lastBeat;
  await waitAllHold(probes, marker, READY_TIMEOUT_MS, 'before the load');
  log(`all destinations in step (Ferry to MariaDB ${((readyAt.mysql - setupStarted) / 1000).toFixed(1)} s, to PostgreSQL ${((readyAt.postgres - setupStarted) / 1000).toFixed(1)} s to Incremental load); sysbench run: ${THREADS} threads, ${SECONDS} s`);

  const loadFrom = await binlogPosition(src);
  const rssBefore = procStatus(ferry.pid, 'VmRSS');
  const countersBefore = await statementCounters(ferryDstConn);
  // CPU seconds of every process doing the work, from the load's start until all caught up: steadier than wall time on a shared machine.
  const cpuProcesses = [
    { label: '`ferry serve` (both jobs)', pid: ferry.pid },
    { label: 'mariadbd source (sysbench, binlog senders)', pid: source.pid },
    ...replicas.map((r) => ({ label: `mariadbd replica, ${r.threads > 0 ? `${r.threads} parallel appliers` : 'single-threaded'}`, pid: r.instance.pid })),
    { label: 'mariadbd Ferry destination', pid: ferryDst.pid },
  ];
  const cpuBefore = cpuProcesses.map((p) => cpuMillis(p.pid));
  const pgCpuBefore = await serverCpu(pgDst, PG_DB);
  const loadAverageBefore = loadavg();

  // The load: sysbench, the heartbeat writer, the pollers and the RSS sampler, all at once.
  loading = true;
  let polling = true;
  const samples = probes.map(() => []); // [{ t, lagMs, loading }]
  const caughtUpAt = probes.map(() => null);
  const polls = probes.map(() => 0);
  let finalBeat = Infinity;
  let rssMax = 0;
  const loadStarted = Date.now();
  const pollers = probes.map(async (probe, i) => {
    while (polling) {
      const sent = Date.now();
      const v = await probe.read().catch(() => NaN);
      polls[i]++;
      const now = Date.now();
      if (Number.isFinite(v) && v >= marker) {
        samples[i].push({ t: now - loadStarted, lagMs: now - v, loading });
        if (caughtUpAt[i] === null && v >= finalBeat) caughtUpAt[i] = now;
      }
      await sleep(Math.max(0, POLL_MS - (Date.now() - sent)));
    }
  });
  // Ferry's own view of its lag (job.replication.lagSeconds), every 500 ms, next to the measured one.
  const reported = { mysql: [], postgres: [] };
  const apiSampler = (async () => {
    while (polling) {
      for (const [key, job] of Object.entries(jobs)) {
        const view = await call(ferry.url, 'GET', `/v1/migrationJobs/${job}`).catch(() => null);
        const lag = view?.replication?.lagSeconds;
        if (loading && typeof lag === 'number') reported[key].push(lag);
      }
      await sleep(500);
    }
  })();
  const rssSampler = (async () => {
    while (polling) {
      rssMax = Math.max(rssMax, procStatus(ferry.pid, 'VmRSS') ?? 0);
      await sleep(250);
    }
  })();
  let sysbenchOut;
  try {
    sysbenchOut = await run(SYSBENCH, sysbenchArgs(source.port, 'run'));
  } finally {
    loading = false;
    writing = false;
    await writer;
  }
  const loadEnded = Date.now();
  finalBeat = lastBeat;
  log(`load done; waiting for every destination to hold the last heartbeat (up to ${CATCH_UP_TIMEOUT_MS / 1000} s)`);
  const catchUpDeadline = Date.now() + CATCH_UP_TIMEOUT_MS;
  while (caughtUpAt.some((t) => t === null) && Date.now() < catchUpDeadline) await sleep(100);
  polling = false;
  await Promise.all([...pollers, rssSampler, apiSampler]);
  const ferryHwm = procStatus(ferry.pid, 'VmHWM');
  const cpuUsed = [
    ...cpuProcesses.map((p, i) => ({ label: p.label, seconds: (cpuMillis(p.pid) - (cpuBefore[i] ?? NaN)) / 1000 })),
    { label: 'PostgreSQL backends of the Ferry destination database', seconds: cpuSince(pgCpuBefore, await serverCpu(pgDst, PG_DB)) / 1000 },
  ];
  const loadAverageAfter = loadavg();
  const countersAfter = await statementCounters(ferryDstConn);
  const statements = Object.fromEntries(Object.keys(countersAfter).map((k) => [k, countersAfter[k] - (countersBefore[k] ?? 0)]));
  // Less the bench's own polls of that server (one SELECT each) and the counter query itself.
  const ownPolls = polls[probes.findIndex((p) => p.label === 'Ferry to MariaDB')];
  statements.Questions -= ownPolls + 1;
  statements.Com_select -= ownPolls;
  const loadTo = await binlogPosition(src);
  log(`Ferry's change reader alone over the load's binlog (${loadFrom} to ${loadTo})`);
  const alone = {};
  // Twice each, the faster kept: the first pass also warms the code up.
  for (let pass = 0; pass < 2; pass++) {
    for (const engine of ['mysql', 'postgresql']) {
      const result = await readerAlone(source, loadFrom, loadTo, engine);
      if (alone[engine] === undefined || result.seconds < alone[engine].seconds) alone[engine] = result;
    }
  }
  const ferryViews = {};
  for (const [key, job] of Object.entries(jobs)) ferryViews[key] = await call(ferry.url, 'GET', `/v1/migrationJobs/${job}`);

  // Sanity: every destination that caught up holds the source's rows.
  const sums = { source: await mysqlChecksum(src) };
  const equal = [];
  for (const [i, probe] of probes.entries()) {
    if (caughtUpAt[i] === null) {
      equal.push('not caught up');
      continue;
    }
    const sum = probe.label === 'Ferry to PostgreSQL' ? await pgChecksum(pgDst) : await mysqlChecksum(probe.kind === 'replica' ? replicas.find((r) => r.threads === probe.threads).connection : ferryDstConn);
    equal.push(sum === sums.source ? 'yes' : 'NO');
    if (sum !== sums.source) log(`WARNING: ${probe.label} differs from the source: ${sum} vs ${sums.source}`);
  }

  // Results.
  const writes = Number(/write:\s+(\d+)/.exec(sysbenchOut)?.[1] ?? NaN);
  const tps = Number(/transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(sysbenchOut)?.[1] ?? NaN);
  const transactions = Number(/transactions:\s+(\d+)/.exec(sysbenchOut)?.[1] ?? NaN) + heartbeats;
  const rows = writes + heartbeats;
  const loadSeconds = (loadEnded - loadStarted) / 1000;
  // Every lag sample with its time (ms since the epoch), for a look at where a tail comes from: BENCH_SAMPLES_FILE=path.
  if (process.env.BENCH_SAMPLES_FILE) {
    writeFileSync(process.env.BENCH_SAMPLES_FILE, JSON.stringify(probes.map((probe, i) => ({ name: probe.label, samples: samples[i].map((x) => ({ ...x, at: loadStarted + x.t })) }))));
  }
  const stats = probes.map((probe, i) => {
    const lags = samples[i].filter((s) => s.loading).map((s) => s.lagMs / 1000);
    // The same without the load's first WARMUP_MS: every destination meets its first rows of the tables then (cold statements, caches).
    const warm = samples[i].filter((s) => s.loading && s.t >= WARMUP_MS).map((s) => s.lagMs / 1000);
    const until = caughtUpAt[i] === null ? null : (caughtUpAt[i] - loadStarted) / 1000;
    return {
      probe,
      n: lags.length,
      p50: percentile(lags, 50),
      p95: percentile(lags, 95),
      p99: percentile(lags, 99),
      warmP99: percentile(warm, 99),
      max: lags.length ? Math.max(...lags) : null,
      sustained: until === null ? null : rows / until,
      catchUp: caughtUpAt[i] === null ? null : (caughtUpAt[i] - loadEnded) / 1000,
    };
  });
  const reference = stats[0];
  const sec = (v) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
  const num = (v) => (v === null || !Number.isFinite(v) ? 'n/a' : Math.round(v).toLocaleString('en-US'));
  const mib = (v) => (v === null ? 'n/a' : `${(v / 1048576).toFixed(0)} MiB`);
  const target = (s) => {
    if (s.probe.kind !== 'ferry') return s === reference ? 'reference' : '';
    if (!Number.isFinite(s.p99)) return 'MISS (no samples)';
    const bound = Math.min(0.25, 2 * reference.p99 + 0.1);
    return `${s.p99 <= bound ? 'PASS' : 'MISS'} (p99 <= ${bound.toFixed(3)} s)`;
  };
  const lines = [
    '',
    `MySQL CDC: sysbench oltp_write_only, ${TABLES} tables x ${TABLE_SIZE.toLocaleString('en-US')} rows, ${THREADS} threads, ${SECONDS} s, on a private MariaDB (${(await firstRow(src, 'SELECT VERSION() AS v')).v}, ROW/FULL binlog, GTID strict);`,
    'every destination followed the same source in the same run: native replicas (MASTER_USE_GTID = slave_pos), Ferry to a private MariaDB and Ferry to PostgreSQL 5433 (one `ferry serve`).',
    `Source: ${num(tps)} tps, ${num(writes)} row writes + ${num(heartbeats)} heartbeats = ${num(rows / loadSeconds)} rows/s offered during ${loadSeconds.toFixed(1)} s.`,
    `The machine has ${cpus().length} cores shared with other work (load average ${loadAverageBefore.map((v) => v.toFixed(1)).join(' ')} before the load, ${loadAverageAfter.map((v) => v.toFixed(1)).join(' ')} after it): absolute numbers are noisy; compare within the run.`,
    '',
    `| Destination | lag p50 (s) | p95 (s) | p99 (s) | max (s) | p99 after the first ${WARMUP_MS / 1000} s (s) | sustained rows/s | caught up after load (s) | rows equal | target (on the whole load) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...stats.map((s, i) => `| ${s.probe.label} | ${sec(s.p50)} | ${sec(s.p95)} | ${sec(s.p99)} | ${sec(s.max)} | ${sec(s.warmP99)} | ${num(s.sustained)} | ${sec(s.catchUp)} | ${equal[i]} | ${target(s)} |`),
    '',
    '| Process | CPU seconds from the load\'s start until every destination caught up |',
    '|---|---:|',
    ...cpuUsed.map((c) => `| ${c.label} | ${Number.isFinite(c.seconds) ? c.seconds.toFixed(1) : 'n/a'} |`),
    '',
    `Lag: age of the newest heartbeat (written every ${HEARTBEAT_MS} ms) each destination held, polled every ${POLL_MS} ms while sysbench ran (${stats.map((s) => s.n).join(' / ')} samples). Target for Ferry: p99 <= 0.25 s and <= 2 x the reference p99 + 0.1 s.`,
    `Ferry's change reader alone (decode only, no applier, in the bench process, faster of 2 passes) over the load's binlog: ${Object.entries(alone).map(([engine, a]) => `for ${engine === 'mysql' ? 'MariaDB' : 'PostgreSQL'} ${num(a.changes)} rows in ${a.seconds.toFixed(2)} s = ${num(a.changes / a.seconds)} rows/s`).join('; ')}.`,
    `Statements Ferry ran on its MariaDB destination during the load and catch-up: ${num(statements.Questions)} (${(statements.Questions / transactions).toFixed(1)} per source transaction, ${(statements.Questions / rows).toFixed(2)} per row change; insert ${num(statements.Com_insert)}, update ${num(statements.Com_update)}, delete ${num(statements.Com_delete)}, replace ${num(statements.Com_replace)}, select ${num(statements.Com_select)}, commit ${num(statements.Com_commit)}, set ${num(statements.Com_set_option)}; ${num(statements.Com_savepoint)} queries of several statements, each behind a SAVEPOINT).`,
    `Ferry's own lag (job.replication.lagSeconds, every 500 ms while sysbench ran), p50 / p99: ${Object.entries(reported).map(([key, values]) => `to ${key === 'mysql' ? 'MariaDB' : 'PostgreSQL'} ${sec(percentile(values, 50))} / ${sec(percentile(values, 99))} s (${values.length} samples)`).join('; ')}.`,
    `Ferry peak RSS: ${mib(rssMax)} during the load (largest VmRSS sampled; ${mib(rssBefore)} when it started), ${mib(ferryHwm)} over the whole run (VmHWM, initial copies included). Ferry's counters: ${Object.entries(ferryViews).map(([k, v]) => `${k} changesApplied ${num(v.replication?.changesApplied ?? null)}, lagSeconds ${v.replication?.lagSeconds ?? 'n/a'}`).join('; ')}.`,
    `Reproduce: \`npm run bench:mysql-cdc\` (BENCH_TABLES=${TABLES} BENCH_TABLE_SIZE=${TABLE_SIZE} BENCH_THREADS=${THREADS} BENCH_SECONDS=${SECONDS} BENCH_REPLICA_THREADS=${REPLICA_THREADS.join(',')}).`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

await runBench(main);
