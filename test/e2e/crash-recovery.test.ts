/**
 * Restart safety, end to end: a real `ferry serve` is killed with SIGKILL (by PID) in the
 * middle of a full dump, twice; a new server on the same data directory resumes the job by
 * itself, keeps the tables that were already copied (they are not copied again) and ends with
 * an exact copy. And: Stop during the full dump, then Restart, wipes and copies again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { compareDatabases, formatDifferences, quoteIdent } from '../helpers/compare.js';
import {
  FAST_RETRY_ENV,
  api,
  makeDataDir,
  removeDataDir,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

/** ~2.6 million rows in six tables, plus a small parent table they reference. */
const TABLE_ROWS: [string, number][] = [
  ['events_a', 700_000],
  ['events_b', 600_000],
  ['events_c', 500_000],
  ['events_d', 400_000],
  ['events_e', 300_000],
  ['events_f', 100_000],
];

function sourceSql(): string {
  const parts = [
    `CREATE TABLE public.kinds (id integer PRIMARY KEY, name text NOT NULL UNIQUE);
     INSERT INTO public.kinds SELECT g, 'kind ' || g FROM generate_series(1, 10) g;`,
  ];
  for (const [name, rows] of TABLE_ROWS) {
    parts.push(`
      CREATE TABLE public.${name} (
        id bigint PRIMARY KEY,
        kind_id integer NOT NULL REFERENCES public.kinds (id),
        payload text NOT NULL,
        amount numeric(12, 2),
        created_at timestamptz NOT NULL,
        attrs jsonb
      );
      INSERT INTO public.${name}
      SELECT g, (g % 10) + 1, md5(g::text) || md5((g * 7)::text) || CASE WHEN g % 5 = 0 THEN ' é🚀' ELSE '' END,
             CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 100000) * 1.01 END,
             '2021-01-01 00:00:00+00'::timestamptz + g * interval '1.5 second',
             jsonb_build_object('n', g, 'even', g % 2 = 0)
        FROM generate_series(1, ${rows}) g;
      CREATE INDEX ${name}_created_idx ON public.${name} (created_at);`);
  }
  parts.push('ANALYZE;');
  return parts.join('\n');
}

interface JobView {
  id: string;
  status: string;
  substatus: string | null;
  availableActions: string[];
  error: { code: string; message: string } | null;
  progress: { tablesTotal: number; tablesCompleted: number; rowsCopied: number };
}

interface JobObject {
  name: string;
  state: string;
  rowsCopied: number;
  updateTime: string;
}

interface JobEvent {
  id: number;
  time: string;
  kind: string;
  actor: string;
  action?: string;
  status?: string;
  message: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tableNames = () => ['public.kinds', ...TABLE_ROWS.map(([n]) => `public.${n}`)];

async function objectsOf(client: ApiClient, jobId: string): Promise<JobObject[]> {
  return (await client.getOk<{ objects: JobObject[] }>(`/v1/migrationJobs/${jobId}/objects`)).objects;
}

async function jobOf(client: ApiClient, jobId: string): Promise<JobView> {
  return client.getOk<JobView>(`/v1/migrationJobs/${jobId}`);
}

/**
 * Polls the job's objects until `ready` holds; fails if the job ends first (the dump was
 * too quick to catch in the act, or it failed).
 */
async function waitForObjects(
  client: ApiClient,
  jobId: string,
  what: string,
  ready: (objects: JobObject[]) => boolean,
  timeoutMs = 120_000,
): Promise<JobObject[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const objects = await objectsOf(client, jobId);
    if (ready(objects)) return objects;
    const job = await jobOf(client, jobId);
    if (['COMPLETED', 'FAILED', 'STOPPED'].includes(job.status)) {
      throw new Error(`job ${jobId} is ${job.status} before ${what}: ${JSON.stringify({ error: job.error, objects })}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(objects)}`);
    await sleep(50);
  }
}

async function waitForStatus(client: ApiClient, jobId: string, statuses: string[], timeoutMs: number, onPoll?: () => Promise<void>): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  for (;;) {
    if (onPoll) await onPoll();
    last = await jobOf(client, jobId);
    if (statuses.includes(last.status)) return last;
    if (last.status === 'FAILED' && !statuses.includes('FAILED')) throw new Error(`job ${jobId} failed: ${JSON.stringify(last.error)}`);
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not reach ${statuses.join('/')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

/** What identifies the physical copy of a destination table: a reload (TRUNCATE or DROP, or DELETE + COPY) changes it. */
async function physicalIdentity(client: pg.ClientBase, qualified: string): Promise<string> {
  const [schema, name] = qualified.split('.') as [string, string];
  const rel = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const { rows } = await client.query<{ f: string; x: string | null }>(
    `SELECT (SELECT relfilenode::text FROM pg_class WHERE oid = $1::regclass) AS f,
            (SELECT string_agg(DISTINCT xmin::text, ',') FROM ${rel}) AS x`,
    [rel],
  );
  return `relfilenode ${rows[0]!.f} xmin ${rows[0]!.x}`;
}

async function sourceCounts(client: pg.ClientBase): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const name of tableNames()) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`);
    counts.set(name, Number(rows[0]!.n));
  }
  return counts;
}

/** Database connections other than the test's own, on the given database. */
async function otherSessions(client: pg.ClientBase): Promise<{ pid: number; state: string; query: string }[]> {
  const { rows } = await client.query<{ pid: number; state: string; query: string }>(
    `SELECT pid, state, left(query, 120) AS query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
  );
  return rows;
}

describe('restart safety of the full dump', () => {
  let source: TestDatabase;
  let counts: Map<string, number>;
  const destinations: TestDatabase[] = [];
  const dataDirs: string[] = [];

  beforeAll(async () => {
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_crash_src');
    await source.client.query(sourceSql());
    counts = await sourceCounts(source.client);
  }, 300_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await Promise.allSettled([source?.drop(), ...destinations.map((d) => d.drop())]);
    for (const dir of dataDirs) removeDataDir(dir);
  }, 120_000);

  async function setUpJob(server: FerryServer, destination: TestDatabase, jobId: string): Promise<void> {
    const opts = { server: server.url };
    for (const [id, port, db] of [['src', PG_SOURCE_PORT, source], ['dst', PG_DEST_PORT, destination]] as const) {
      await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(port),
        '--database', db.params.database as string, '--username', PG_USER], opts);
    }
    await runCliJson(['jobs', 'create', '--id', jobId, '--type', 'one-time', '--source', 'src', '--destination', 'dst',
      '--dump-parallelism', '2'], opts);
  }

  it('SIGKILL during the full dump, twice: the job resumes by itself, keeps copied tables and ends with an exact copy', async () => {
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_crash_dst');
    destinations.push(destination);
    const dataDir = makeDataDir('ferry-crash-');
    dataDirs.push(dataDir);
    const jobId = 'crash-job';

    let server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    let client = api(server.url);
    await setUpJob(server, destination, jobId);
    const started = await runCliJson<JobView>(['jobs', 'start', jobId], { server: server.url });
    expect(['STARTING', 'RUNNING']).toContain(started.status);

    /** Tables copied before a kill, with their physical identity on the destination and their object's updateTime. */
    const kept = new Map<string, { identity: string; updateTime: string }>();
    const kills: { at: number; dumped: string[]; dumping: string[] }[] = [];

    for (let round = 1; round <= 2; round++) {
      // Catch the dump in the act: a table already copied (one not copied before the previous kill) and another being copied.
      const objects = await waitForObjects(client, jobId, `round ${round}: a newly DUMPED table and a DUMPING one`, (os) =>
        os.some((o) => o.state === 'DUMPED' && !kept.has(o.name)) && os.some((o) => o.state === 'DUMPING'),
      );
      const dumped = objects.filter((o) => o.state === 'DUMPED');
      const dumping = objects.filter((o) => o.state === 'DUMPING').map((o) => o.name);
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      kills.push({ at: Date.now(), dumped: dumped.map((o) => o.name), dumping });

      // The store, as the dead server left it: objects DUMPED at kill time (re-read: the last poll may be a few ms old).
      for (const o of dumped) {
        if (!kept.has(o.name)) kept.set(o.name, { identity: await physicalIdentity(destination.client, o.name), updateTime: o.updateTime });
      }
      // Every table marked DUMPED holds exactly the source's rows on the destination already.
      for (const name of kept.keys()) {
        const { rows } = await destination.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`);
        expect(Number(rows[0]!.n), `${name} after kill ${round}`).toBe(counts.get(name));
      }

      // A new server on the same data directory: the job is still Running (Full dump in progress) and resumes with no action.
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);
      const job = await jobOf(client, jobId);
      expect(job.status, JSON.stringify(job)).toBe('RUNNING');
      expect(job.substatus).toBe('Full dump in progress');
      const afterRestart = await objectsOf(client, jobId);
      for (const name of kept.keys()) {
        const o = afterRestart.find((x) => x.name === name);
        expect(o?.state, `${name} right after restart ${round}`).toBe('DUMPED');
      }
    }

    // Until it completes, the tables copied before a kill are never copied again.
    const violations: string[] = [];
    const final = await waitForStatus(client, jobId, ['COMPLETED'], 240_000, async () => {
      for (const o of await objectsOf(client, jobId)) {
        const before = kept.get(o.name);
        if (before === undefined || o.state === 'COMPLETED') continue;
        if (o.state !== 'DUMPED') violations.push(`${o.name} went back to ${o.state}`);
        else if (o.updateTime !== before.updateTime) violations.push(`${o.name} was updated at ${o.updateTime} (was ${before.updateTime})`);
      }
    });
    expect(violations, violations.join('\n')).toEqual([]);
    expect(final.error).toBeNull();
    expect(final.availableActions).toEqual(['delete']);
    expect(final.progress.tablesCompleted).toBe(final.progress.tablesTotal);
    expect(final.progress.tablesTotal).toBe(tableNames().length);

    // Physically the same rows: the destination tables copied before a kill were not reloaded.
    for (const [name, before] of kept) {
      expect(await physicalIdentity(destination.client, name), `${name} was reloaded after a kill`).toBe(before.identity);
    }

    const objects = await objectsOf(client, jobId);
    for (const name of tableNames()) {
      const o = objects.find((x) => x.name === name);
      expect(o?.state, name).toBe('COMPLETED');
      expect(o?.rowsCopied, name).toBe(counts.get(name));
    }

    // Nobody acted after the kills: the history shows the start action only.
    const { events } = await client.getOk<{ events: JobEvent[] }>(`/v1/migrationJobs/${jobId}/events`);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start']);
    expect(events.some((e) => e.status === 'FAILED')).toBe(false);

    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);

    // A killed server's half-done loads left nothing behind: no session of Ferry on either side, no slot on the source.
    await sleep(500);
    expect(await otherSessions(destination.client)).toEqual([]);
    const slots = await source.client.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots.rows).toEqual([]);

    expect(kills).toHaveLength(2);
    console.log(`crash-recovery: killed twice; DUMPED at the kills: ${kills.map((k) => `[${k.dumped.join(', ')}] (DUMPING: ${k.dumping.join(', ')})`).join(' then ')}`);
    await server.stop();
  }, 600_000);

  it('Stop during the full dump: Stopping..., then Stopped in Full dump; Restart wipes and copies again to an exact copy', async () => {
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_stop_dst');
    destinations.push(destination);
    const server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    const client = api(server.url);
    const opts = { server: server.url };
    const jobId = 'stop-job';
    await setUpJob(server, destination, jobId);
    await runCliJson(['jobs', 'start', jobId], opts);

    const objects = await waitForObjects(client, jobId, 'a DUMPED table and a DUMPING one', (os) =>
      os.some((o) => o.state === 'DUMPED') && os.some((o) => o.state === 'DUMPING'),
    );
    const dumpedAtStop = objects.filter((o) => o.state === 'DUMPED').map((o) => o.name);
    const identities = new Map<string, string>();
    for (const name of dumpedAtStop) identities.set(name, await physicalIdentity(destination.client, name));

    const stopRequested = Date.now();
    const stopping = await runCliJson<JobView>(['jobs', 'stop', jobId], opts);
    expect(stopping.status).toBe('STOPPING');
    expect(stopping.availableActions).toEqual(['delete']);

    const stopped = await waitForStatus(client, jobId, ['STOPPED'], 60_000);
    const stopSeconds = (Date.now() - stopRequested) / 1000;
    expect(stopSeconds, 'Stopping... takes seconds, not a minute').toBeLessThan(15);
    expect(stopped.substatus).toBe('Stopped in Full dump');
    expect(stopped.availableActions).toEqual(['restart', 'delete']);

    // The history shows Stopping..., then Stopped.
    const { events } = await client.getOk<{ events: JobEvent[] }>(`/v1/migrationJobs/${jobId}/events`);
    const statuses = events.filter((e) => e.status !== undefined).map((e) => e.status);
    const iStopping = statuses.indexOf('STOPPING');
    expect(iStopping, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
    expect(statuses.indexOf('STOPPED', iStopping)).toBeGreaterThan(iStopping);

    // Nothing is left half-way: no table DUMPING, no open session on either database.
    const afterStop = await objectsOf(client, jobId);
    expect(afterStop.filter((o) => o.state === 'DUMPING')).toEqual([]);
    for (const name of dumpedAtStop) expect(afterStop.find((o) => o.name === name)?.state).toBe('DUMPED');
    await sleep(500);
    expect(await otherSessions(destination.client)).toEqual([]);
    expect(await otherSessions(source.client)).toEqual([]);

    // `jobs watch` ends (exit 0) on a Stopped job.
    const watchStopped = await runCli(['jobs', 'watch', jobId, '--output', 'json'], { ...opts, timeoutMs: 30_000 });
    expect(watchStopped.code).toBe(0);
    expect(JSON.parse(watchStopped.stdout.trim().split('\n').at(-1)!).status).toBe('STOPPED');

    // Resume is not offered in Full dump; Restart is.
    const resume = await runCli(['jobs', 'resume', jobId], opts);
    expect(resume.code).not.toBe(0);
    expect(resume.stderr).toContain('ACTION_NOT_ALLOWED');

    const restarting = await runCliJson<JobView>(['jobs', 'restart', jobId], opts);
    expect(restarting.status).toBe('RESTARTING');
    const watch = await runCli(['jobs', 'watch', jobId, '--output', 'json', '--interval', '0.5'], { ...opts, timeoutMs: 280_000 });
    expect(watch.code, watch.stderr).toBe(0);
    const final = await jobOf(client, jobId);
    expect(final.status, JSON.stringify(final.error)).toBe('COMPLETED');
    expect(final.availableActions).toEqual(['delete']);

    // Restart wiped what the job wrote: the tables copied before the stop were loaded again.
    for (const [name, before] of identities) {
      expect(await physicalIdentity(destination.client, name), `${name} should have been reloaded by Restart`).not.toBe(before);
    }
    const { events: after } = await client.getOk<{ events: JobEvent[] }>(`/v1/migrationJobs/${jobId}/events`);
    expect(after.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'stop', 'restart']);

    const finalObjects = await objectsOf(client, jobId);
    for (const name of tableNames()) expect(finalObjects.find((o) => o.name === name)?.rowsCopied, name).toBe(counts.get(name));

    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);
    await server.stop();
  }, 600_000);
});
