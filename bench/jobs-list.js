// Jobs-list benchmark: a real `ferry serve` on a fresh data directory with BENCH_JOBS jobs
// (default 1,000; each with BENCH_TABLES table rows in its progress, default 10), then
// BENCH_CLIENTS concurrent clients (default 200) drive GET /v1/migrationJobs for BENCH_SECONDS
// per scenario (default 20) over keep-alive connections (Node's own http). Prints requests/s,
// p50, p95 and p99 latency and errors per scenario, and the command that reproduces it.
//
// Scenarios (BENCH_SCENARIOS=page,filter,search picks some; all by default):
//   page    the console's first page: ?pageSize=50
//   filter  a status filter: ?pageSize=50&status=NOT_STARTED,RUNNING
//   search  a text search over id and name: ?pageSize=50&search=<name of 1 job in 10>
//   all     every job in one answer (what the console fetched before paging): ?pageSize=1000
//
// The jobs and profiles are created through the API; the table rows (job objects), which only
// a running job writes, through the metadata store of the same data directory (SQLite in WAL
// mode takes both). The server logs at its default level (info) into a file in its data
// directory, as a service would. Target: p99 under 100 ms for `page` on a 2-core machine.
//
// Run: `npm run bench:jobs-list` (builds first), or `node bench/jobs-list.js` after a build.
// Profile the server: BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/jobs-list.js
// The server is stopped by its PID and its data directory removed at the end, also on failure.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, cpuMillis, log, percentile, runBench, startFerry } from './lib.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const TABLES = Number(process.env.BENCH_TABLES ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const REQUEST_TIMEOUT_MS = 30_000;
const SCENARIOS = {
  page: { query: '?pageSize=50', what: "console's first page (50 jobs)" },
  filter: { query: '?pageSize=50&status=NOT_STARTED,RUNNING', what: 'status filter, 50 jobs' },
  search: { query: '?pageSize=50&search=orders', what: 'search "orders" (1 job in 10)' },
  all: { query: '?pageSize=1000', what: 'every job in one answer' },
};
const chosen = (process.env.BENCH_SCENARIOS ?? 'page,filter,search,all').split(',').map((s) => s.trim()).filter(Boolean);
for (const name of chosen) {
  if (!(name in SCENARIOS)) throw new Error(`BENCH_SCENARIOS: unknown scenario "${name}"; use ${Object.keys(SCENARIOS).join(', ')}`);
}

/** One HTTP request over `agent`; resolves { status, body, millis } or rejects on a socket error. */
function request(agent, port, method, path, body) {
  return new Promise((resolveRequest, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const started = process.hrtime.bigint();
    const req = http.request(
      {
        agent, host: '127.0.0.1', port, method, path, timeout: REQUEST_TIMEOUT_MS,
        headers: payload === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const millis = Number(process.hrtime.bigint() - started) / 1e6;
          resolveRequest({ status: res.statusCode, body: Buffer.concat(chunks), millis });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function seed(port, dataDir) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const post = async (path, body) => {
    const r = await request(agent, port, 'POST', path, body);
    if (r.status !== 201) throw new Error(`POST ${path} answered ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`);
    return JSON.parse(r.body.toString('utf8'));
  };
  const profile = (id, database) =>
    post('/v1/connectionProfiles', { id, displayName: `Bench ${id}`, engine: 'postgresql', host: '127.0.0.1', port: 5432, database, username: 'postgres' });
  await profile('bench-source', 'app');
  await profile('bench-destination', 'app_copy');
  const words = ['orders', 'billing', 'inventory', 'users', 'events', 'payments', 'catalog', 'search', 'audit', 'reports'];
  const ids = [];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= JOBS) return;
      const id = `bench-job-${String(index).padStart(5, '0')}`;
      await post('/v1/migrationJobs', {
        id, displayName: `${words[index % words.length]} migration ${index}`, type: index % 2 === 0 ? 'continuous' : 'one-time',
        sourceProfileId: 'bench-source', destinationProfileId: 'bench-destination',
      });
      ids.push(id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();

  if (TABLES > 0) {
    // Table progress is written by running jobs only: write it through the store itself.
    const { SqliteMetadataStore } = await import(join(ROOT, 'dist', 'store', 'sqlite', 'sqlite-metadata-store.js'));
    const store = SqliteMetadataStore.open(join(dataDir, 'ferry.db'));
    try {
      const time = new Date().toISOString();
      for (const jobId of ids) {
        await store.upsertJobObjects(
          Array.from({ length: TABLES }, (_, t) => ({
            jobId, name: `public.table_${t}`, state: t % 3 === 0 ? 'DUMPED' : 'NOT_STARTED', rowsCopied: t * 1000, bytesCopied: t * 100_000,
            estimatedRows: 10_000, estimatedBytes: 1_000_000, error: null, updateTime: time,
          })),
        );
      }
    } finally {
      await store.close();
    }
  }
}

/** BENCH_CLIENTS loops, each sending the next request when the last one answered, for `seconds`. */
async function drive(port, path, seconds = SECONDS, serverPid = 0) {
  const cpuBefore = cpuMillis(serverPid);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies = [];
  let errors = 0;
  let firstError = null;
  let bytes = 0;
  const started = Date.now();
  const until = started + seconds * 1000;
  const client = async () => {
    while (Date.now() < until) {
      try {
        const r = await request(agent, port, 'GET', path);
        if (r.status === 200) {
          latencies.push(r.millis);
          bytes += r.body.length;
        } else {
          errors++;
          firstError ??= `HTTP ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`;
        }
      } catch (error) {
        errors++;
        firstError ??= error.message;
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const elapsed = (Date.now() - started) / 1000;
  const serverCpu = cpuMillis(serverPid) - cpuBefore;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length, errors, firstError, perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN,
    kbPerAnswer: latencies.length === 0 ? 0 : bytes / latencies.length / 1024,
    cpuPerRequest: latencies.length === 0 ? NaN : serverCpu / latencies.length,
  };
}

async function main() {
  if (!existsSync(join(ROOT, 'dist'))) throw new Error('dist/ does not exist: run `npm run build` first (npm run bench:jobs-list does).');
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-bench-jobs-'));
  const logFile = join(dataDir, 'server.log');
  let server = null;
  const loadStart = loadavg()[0];
  try {
    // The server logs at its default level (info) into a file in its data directory, as a service would.
    server = await startFerry({
      dataDir, logFile, logLevel: process.env.FERRY_LOG_LEVEL ?? 'info', nodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    });
    const { port } = server;
    log(`ferry serve pid ${server.pid} on 127.0.0.1:${port}, data ${dataDir}`);
    const seedStart = Date.now();
    await seed(port, dataDir);
    log(`created ${JOBS} jobs with ${TABLES} tables each in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

    const results = [];
    for (const name of chosen) {
      const scenario = SCENARIOS[name];
      const path = `/v1/migrationJobs${scenario.query}`;
      // A short warm-up so the first requests do not pay for JIT and prepared statements.
      await drive(port, path, Math.min(2, SECONDS), server.pid);
      log(`${name}: ${CLIENTS} clients for ${SECONDS} s on GET ${path}`);
      const result = await drive(port, path, SECONDS, server.pid);
      results.push({ name, path, what: scenario.what, ...result });
      if (result.firstError) log(`${name}: first error: ${result.firstError}`);
    }
    const logBytes = statSync(logFile).size;

    const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
    const rows = [
      ['scenario', 'request', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors', 'KB/answer', 'server CPU ms/req'],
      ...results.map((r) => [r.name, `GET ${r.path}`, fmt(r.perSecond), fmt(r.p50, 1), fmt(r.p95, 1), fmt(r.p99, 1), fmt(r.max, 1), String(r.errors), fmt(r.kbPerAnswer, 1), fmt(r.cpuPerRequest, 2)]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    const line = (row) => `| ${row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
    console.log('');
    console.log(`Jobs list: ${JOBS} jobs (${TABLES} tables each), ${CLIENTS} concurrent keep-alive clients, ${SECONDS} s per scenario, Node ${process.version}`);
    console.log(line(rows[0]));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const row of rows.slice(1)) console.log(line(row));
    console.log(`Load average (1 min) at start ${loadStart.toFixed(1)}, at end ${loadavg()[0].toFixed(1)} on ${(await import('node:os')).cpus().length} cores: other work on the machine shows in the latencies.`);
    console.log(`Server log written during the run: ${(logBytes / 1024).toFixed(0)} KB at level ${process.env.FERRY_LOG_LEVEL ?? 'info'}.`);
    const env = [
      process.env.BENCH_JOBS ? `BENCH_JOBS=${JOBS}` : '', process.env.BENCH_TABLES ? `BENCH_TABLES=${TABLES}` : '',
      process.env.BENCH_CLIENTS ? `BENCH_CLIENTS=${CLIENTS}` : '', process.env.BENCH_SECONDS ? `BENCH_SECONDS=${SECONDS}` : '',
      process.env.BENCH_SCENARIOS ? `BENCH_SCENARIOS=${chosen.join(',')}` : '',
    ].filter(Boolean).join(' ');
    console.log(`Reproduce: ${env ? `${env} ` : ''}npm run bench:jobs-list`);
    const page = results.find((r) => r.name === 'page');
    if (page) console.log(`Target: p99 under 100 ms for "page": ${page.p99 < 100 && page.errors === 0 ? 'met' : 'NOT met'} (${fmt(page.p99, 1)} ms).`);
  } finally {
    if (server) await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await runBench(main);
