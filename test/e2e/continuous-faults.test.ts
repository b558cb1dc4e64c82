/**
 * Faults during the incremental load of a continuous job, on the two clusters reserved for
 * fault tests (source 127.0.0.1:5434, destination 5435), which these tests stop and start:
 * (a) the destination server stops: Running with errors, with a useful message; once it is
 *     back the job returns to Running by itself and applies what was written meanwhile;
 * (b) the source server stops for longer than the retry budget: Failed in Incremental load,
 *     recoverable; once it is back the job resumes by itself;
 * (c) the job's replication slot is dropped: Failed, saying to Restart; Restart succeeds;
 * (d) DDL on the source (a column added, then used): Running with errors, SCHEMA_CHANGED,
 *     naming the table and what to do; the same ALTER on the destination clears it;
 * (e) a fast shutdown of the source while the job's tables are idle (other databases write)
 *     completes: the job confirms the WAL it was sent, as PostgreSQL's own subscriber does.
 * Every scenario ends with Promote and the oracle: the destination equals the source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import {
  FAST_RETRY_ENV,
  api,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  waitFor,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { FAULT_DESTINATION, FAULT_SOURCE, ensureFaultClustersOnline, startCluster, stopCluster, type StopResult } from '../helpers/pg-cluster.js';
import { PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { MARKER_KEY_BASE, Workload, createWorkloadSchema } from '../helpers/workload.js';

interface JobError {
  code: string;
  message: string;
  retryable: boolean;
  recoverable: boolean;
  details: Record<string, unknown>;
}

interface JobView {
  id: string;
  status: string;
  substatus: string | null;
  phase: string | null;
  availableActions: string[];
  error: JobError | null;
  replication: { changesApplied: number } | null;
}

interface JobEvent {
  kind: string;
  action?: string;
  status?: string;
  message: string;
  details?: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** How long a fast shutdown of a fault cluster may take (PostgreSQL's pg_ctl waits 60 s by default). */
const FAST_SHUTDOWN_SECONDS = 20;

/** Runs `fn` with a fresh connection (the test's long-lived ones die when a cluster stops). */
async function withDb<T>(db: TestDatabase, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: db.params.host, port: db.params.port, user: PG_USER, database: db.params.database as string, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function jobOf(client: ApiClient, id: string): Promise<JobView> {
  return client.getOk<JobView>(`/v1/migrationJobs/${id}`);
}

async function eventsOf(client: ApiClient, id: string): Promise<JobEvent[]> {
  return (await client.getOk<{ events: JobEvent[] }>(`/v1/migrationJobs/${id}/events`)).events;
}

/** Polls until `ready`; `seen` collects every status observed. A FAILED job only passes when `ready` accepts it. */
async function waitForJob(
  client: ApiClient, id: string, what: string, ready: (job: JobView) => boolean,
  { timeoutMs = 90_000, seen }: { timeoutMs?: number; seen?: string[] } = {},
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await jobOf(client, id);
    if (seen && seen.at(-1) !== job.status) seen.push(job.status);
    if (ready(job)) return job;
    if (job.status === 'FAILED' && !ready(job) && !what.startsWith('FAILED') && job.error?.recoverable !== true) {
      throw new Error(`job ${id} failed while waiting for ${what}: ${JSON.stringify(job.error)}`);
    }
    if (Date.now() > deadline) throw new Error(`job ${id}: timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(job)}`);
    await sleep(200);
  }
}

const inIncrementalLoad = (job: JobView) => job.status === 'RUNNING' && job.substatus === 'Incremental load' && job.replication !== null;

/** A row written on the source by the test, out of the workload's reach; resolves when it is on the destination. */
async function markerArrives(destination: TestDatabase, id: number, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return waitFor(`account ${id} on the destination`, () => withDb(destination, async (c) => {
    const { rows } = await c.query(`SELECT * FROM public.accounts WHERE id = $1`, [id]);
    return rows[0] as Record<string, unknown> | undefined;
  }), { timeoutMs, intervalMs: 300 });
}

async function insertMarker(source: TestDatabase, id: number, owner: string): Promise<void> {
  await withDb(source, (c) => c.query(`INSERT INTO public.accounts (id, owner, balance, updated_at) VALUES ($1, $2, 1, now())`, [id, owner]));
}

describe('faults during the incremental load (clusters 5434 -> 5435)', () => {
  const databases: TestDatabase[] = [];
  const workloads: Workload[] = [];
  let server: FerryServer;
  let client: ApiClient;

  beforeAll(async () => {
    await ensureFaultClustersOnline();
    // Long enough a budget that a stopped destination stays Running with errors (scenario b has its own server).
    server = await spawnFerryServer({ env: { ...FAST_RETRY_ENV, FERRY_RETRY_BUDGET_SECONDS: '120' } });
    client = api(server.url);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(workloads.map((w) => w.stop()));
    await stopAllFerryServers();
    await ensureFaultClustersOnline();
    await Promise.allSettled(databases.map((d) => d.drop()));
  }, 180_000);

  /** Source and destination databases on the fault clusters, the workload's schema, profiles and a continuous job. */
  async function setUp(on: FerryServer, jobId: string, seed: number): Promise<{ source: TestDatabase; destination: TestDatabase; workload: Workload }> {
    const source = await createTestDatabase(FAULT_SOURCE.port, 'ferry_fault_src');
    const destination = await createTestDatabase(FAULT_DESTINATION.port, 'ferry_fault_dst');
    databases.push(source, destination);
    for (const db of [source, destination]) db.client.on('error', () => undefined); // the server may stop under it
    await createWorkloadSchema(source.client);
    for (const [id, db] of [[`${jobId}-src`, source], [`${jobId}-dst`, destination]] as const) {
      await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(db.params.port),
        '--database', db.params.database as string, '--username', PG_USER], { server: on.url });
    }
    await runCliJson(['jobs', 'create', '--id', jobId, '--type', 'continuous', '--source', `${jobId}-src`, '--destination', `${jobId}-dst`], { server: on.url });
    const workload = new Workload({ connection: source.params, workers: 2, seed, pauseMs: 10, reconnectDelayMs: 300 });
    workloads.push(workload);
    await workload.start();
    return { source, destination, workload };
  }

  /** Stops the workload, promotes, waits for Completed and compares with the oracle. */
  async function promoteAndCompare(on: FerryServer, jobId: string, source: TestDatabase, destination: TestDatabase, workload: Workload | null): Promise<void> {
    if (workload !== null) {
      const stats = await workload.stop();
      expect(stats.errors, stats.errors.join('\n')).toEqual([]);
      expect(stats.committed).toBeGreaterThan(0);
    }
    await runCliJson(['jobs', 'promote', jobId], { server: on.url });
    const done = await waitForJob(api(on.url), jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', { timeoutMs: 120_000 });
    expect(done.error).toBeNull();
    const differences = await withDb(source, (s) => withDb(destination, (d) => compareDatabases(s, d)));
    expect(differences, formatDifferences(differences)).toEqual([]);
    const slots = await withDb(source, (c) => c.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`));
    expect(slots.rows).toEqual([]);
  }

  it('(a) the destination server stops: Running with errors, then Running again by itself; changes made meanwhile are applied', async () => {
    const jobId = 'fault-dst';
    const { source, destination, workload } = await setUp(server, jobId, 101);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad);
    await workload.waitForCommits(200);

    let degraded: JobView;
    const seen: string[] = ['RUNNING'];
    try {
      const stop = await stopCluster(FAULT_DESTINATION, FAST_SHUTDOWN_SECONDS);
      expect.soft(stop.fast, `fast shutdown of the destination did not complete in ${FAST_SHUTDOWN_SECONDS} s: ${stop.fastError}`).toBe(true);
      degraded = await waitForJob(client, jobId, 'Running with errors', (j) => j.status === 'RUNNING_WITH_ERRORS', { timeoutMs: 60_000, seen });
      expect(degraded.substatus).toBe('Incremental load');
      expect(degraded.availableActions).toEqual(['stop', 'restart', 'promote']);
      const error = degraded.error as JobError;
      expect(error, 'Running with errors shows the error').not.toBeNull();
      expect(error.retryable).toBe(true);
      // Useful: it says which server (the destination, host:port) and that Ferry retries.
      expect(error.message).toMatch(/destination|127\.0\.0\.1:5435/i);
      expect(error.message.length).toBeGreaterThan(30);
      const described = await runCli(['jobs', 'describe', jobId], { server: server.url });
      expect(described.stdout).toContain('Running with errors');
      expect(described.stdout).toContain(error.code);

      // Changes keep coming on the source while the destination is down; the job keeps retrying (not Failed).
      await workload.waitForCommits(200);
      await insertMarker(source, MARKER_KEY_BASE + 1, 'written while the destination was down');
      await sleep(4_000);
      const still = await jobOf(client, jobId);
      expect(still.status, JSON.stringify(still.error)).toBe('RUNNING_WITH_ERRORS');
    } finally {
      await startCluster(FAULT_DESTINATION);
    }

    // No action: the job recovers by itself and applies what was written meanwhile.
    const recovered = await waitForJob(client, jobId, 'Running again', (j) => j.status === 'RUNNING', { timeoutMs: 90_000, seen });
    expect(recovered.error).toBeNull();
    expect(recovered.substatus).toBe('Incremental load');
    const marker = await markerArrives(destination, MARKER_KEY_BASE + 1);
    expect(marker.owner).toBe('written while the destination was down');
    // Running, Running with errors while the destination was down, Running again; never Failed.
    expect(seen).toEqual(['RUNNING', 'RUNNING_WITH_ERRORS', 'RUNNING']);
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start']);
    await promoteAndCompare(server, jobId, source, destination, workload);
  }, 300_000);

  it('(b) the source server stops beyond the retry budget: Failed in Incremental load (recoverable), then it resumes by itself', async () => {
    const budgetServer = await spawnFerryServer({ env: { ...FAST_RETRY_ENV, FERRY_RETRY_BUDGET_SECONDS: '5' } });
    const budgetClient = api(budgetServer.url);
    const jobId = 'fault-src';
    const { source, destination, workload } = await setUp(budgetServer, jobId, 202);
    await runCliJson(['jobs', 'start', jobId], { server: budgetServer.url });
    await waitForJob(budgetClient, jobId, 'Running (Incremental load)', inIncrementalLoad);
    await workload.waitForCommits(200);

    const seen: string[] = [];
    try {
      // A fast shutdown ends once every walsender's client confirmed all the WAL sent (the
      // shutdown checkpoint included): a change reader that never confirms it blocks the source's
      // shutdown. Checked softly, so that the rest of the scenario still runs (after an immediate stop).
      const stop = await stopCluster(FAULT_SOURCE, FAST_SHUTDOWN_SECONDS);
      expect.soft(stop.fast, `fast shutdown of the source did not complete within ${FAST_SHUTDOWN_SECONDS} s while Ferry's change reader was connected (stopped in immediate mode instead): ${stop.fastError}`).toBe(true);
      const failed = await waitForJob(budgetClient, jobId, 'FAILED after the retry budget', (j) => j.status === 'FAILED', { timeoutMs: 90_000, seen });
      expect(failed.substatus).toBe('Failed in Incremental load');
      expect(failed.availableActions).toEqual(['restart', 'delete']);
      const error = failed.error as JobError;
      expect(error.recoverable, JSON.stringify(error)).toBe(true);
      expect(error.message).toMatch(/source|127\.0\.0\.1:5434/i);
      expect(error.message).toMatch(/resume|retr|check/i);
      expect(seen, 'retryable first (Running with errors), Failed once the budget is spent').toContain('RUNNING_WITH_ERRORS');
      // It stays Failed while the source is down (probing).
      await sleep(3_000);
      expect((await jobOf(budgetClient, jobId)).status).toBe('FAILED');
    } finally {
      await startCluster(FAULT_SOURCE);
    }

    // No action: the probe finds the source again and the job resumes and keeps applying.
    const back = await waitForJob(budgetClient, jobId, 'Running (Incremental load) after the source is back', inIncrementalLoad, { timeoutMs: 90_000, seen });
    expect(back.error).toBeNull();
    await workload.waitForCommits(100, 60_000); // the workload reconnected too
    await insertMarker(source, MARKER_KEY_BASE + 2, 'written after the source came back');
    await markerArrives(destination, MARKER_KEY_BASE + 2);
    const events = await eventsOf(budgetClient, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start']);
    expect(events.some((e) => e.status === 'RESUMING' || /resum/i.test(e.message))).toBe(true);
    await promoteAndCompare(budgetServer, jobId, source, destination, workload);
    await budgetServer.stop();
  }, 300_000);

  it('(c) the replication slot is dropped: Failed saying to Restart; Restart succeeds and promote gives an exact copy', async () => {
    const jobId = 'fault-slot';
    const { source, destination, workload } = await setUp(server, jobId, 303);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad);
    await workload.waitForCommits(200);

    const slot = await withDb(source, async (c) => {
      const { rows } = await c.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND NOT temporary`);
      expect(rows).toHaveLength(1);
      return rows[0]!.slot_name;
    });
    // Ferry reconnects quickly: terminate its walsender and drop the slot until the drop wins.
    await withDb(source, async (c) => {
      for (let attempt = 1; ; attempt++) {
        await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [slot]);
        try {
          await c.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
          return;
        } catch (error) {
          if (attempt >= 200) throw error;
          await sleep(10);
        }
      }
    });

    const failed = await waitForJob(client, jobId, 'FAILED after the slot was dropped', (j) => j.status === 'FAILED', { timeoutMs: 60_000 });
    const error = failed.error as JobError;
    expect(failed.substatus).toBe('Failed in Incremental load');
    expect(error.code).toBe('REPLICATION_SLOT_LOST');
    expect(error.recoverable).toBe(false);
    expect(error.message).toMatch(/restart/i);
    expect(error.message).toContain(slot);
    expect(failed.availableActions).toEqual(['restart', 'delete']);
    // Not recoverable: it stays Failed.
    await sleep(3_000);
    expect((await jobOf(client, jobId)).status).toBe('FAILED');

    const restarting = await runCliJson<JobView>(['jobs', 'restart', jobId], { server: server.url });
    expect(['RESTARTING', 'STARTING', 'RUNNING']).toContain(restarting.status);
    const again = await waitForJob(client, jobId, 'Running (Incremental load) after Restart', inIncrementalLoad, { timeoutMs: 120_000 });
    expect(again.error).toBeNull();
    const slots = await withDb(source, (c) => c.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND NOT temporary`));
    expect(slots.rows, 'Restart created a new slot').toHaveLength(1);
    await insertMarker(source, MARKER_KEY_BASE + 3, 'after restart');
    await markerArrives(destination, MARKER_KEY_BASE + 3);
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'restart']);
    await promoteAndCompare(server, jobId, source, destination, workload);
  }, 300_000);

  it('(d) DDL on the source: Running with errors (SCHEMA_CHANGED, naming the table and what to do); the same ALTER on the destination clears it', async () => {
    const jobId = 'fault-ddl';
    const { source, destination, workload } = await setUp(server, jobId, 404);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad);
    await workload.waitForCommits(200);

    await withDb(source, async (c) => {
      await c.query(`ALTER TABLE public.accounts ADD COLUMN nickname text`);
      await c.query(`INSERT INTO public.accounts (id, owner, balance, updated_at, nickname) VALUES ($1, 'ddl', 1, now(), 'nick')`, [MARKER_KEY_BASE + 4]);
    });
    const degraded = await waitForJob(client, jobId, 'Running with errors (SCHEMA_CHANGED)', (j) => j.status === 'RUNNING_WITH_ERRORS' && j.error?.code === 'SCHEMA_CHANGED', { timeoutMs: 60_000 });
    const error = degraded.error as JobError;
    expect(degraded.substatus).toBe('Incremental load');
    expect(error.message).toContain('public.accounts');
    expect(error.message).toContain('nickname');
    expect(error.message, 'says what to do').toMatch(/destination/i);
    expect(error.message).toMatch(/ALTER TABLE|add the column|apply the same|same change/i);
    // It does not give up while the user fixes it (no Failed after the retry budget either).
    await sleep(4_000);
    const still = await jobOf(client, jobId);
    expect(still.status).toBe('RUNNING_WITH_ERRORS');
    const events = await eventsOf(client, jobId);
    expect(events.some((e) => e.message.includes('public.accounts') && e.message.includes('nickname')), JSON.stringify(events)).toBe(true);

    await withDb(destination, (c) => c.query(`ALTER TABLE public.accounts ADD COLUMN nickname text`));
    const recovered = await waitForJob(client, jobId, 'Running again after the same ALTER on the destination', (j) => j.status === 'RUNNING', { timeoutMs: 90_000 });
    expect(recovered.error).toBeNull();
    const marker = await markerArrives(destination, MARKER_KEY_BASE + 4);
    expect(marker.nickname).toBe('nick');
    await promoteAndCompare(server, jobId, source, destination, workload);
  }, 300_000);
  it('(e) a fast shutdown of the source is not held up by the job while its tables are idle and other databases write', async () => {
    const jobId = 'fault-shutdown';
    const { source, destination, workload } = await setUp(server, jobId, 505);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad);
    await workload.waitForCommits(100);
    const stats = await workload.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);

    // The job's tables are idle; another database of the same server keeps writing (WAL moves on).
    const side = await createTestDatabase(FAULT_SOURCE.port, 'ferry_fault_side');
    databases.push(side);
    side.client.on('error', () => undefined);
    await side.client.query(`CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`);
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        await side.client.query(`INSERT INTO ticks DEFAULT VALUES`).catch(() => undefined);
        await sleep(500);
      }
    })();
    await sleep(15_000);
    ticking = false;
    await ticker;

    let stop: StopResult;
    try {
      stop = await stopCluster(FAULT_SOURCE, FAST_SHUTDOWN_SECONDS);
      // PostgreSQL's fast shutdown waits until each walsender's client has confirmed all the WAL
      // sent to it; with the tables idle nothing needs applying, so the job must confirm it.
      expect.soft(stop.fast, `fast shutdown of the source did not complete within ${FAST_SHUTDOWN_SECONDS} s while the job was connected (the server was then stopped in immediate mode): ${stop.fastError}`).toBe(true);
    } finally {
      await startCluster(FAULT_SOURCE);
    }
    await waitForJob(client, jobId, 'Running (Incremental load) after the source restarted', (j) => inIncrementalLoad(j) && j.error === null, { timeoutMs: 90_000 });
    await insertMarker(source, MARKER_KEY_BASE + 5, 'after the source restarted');
    await markerArrives(destination, MARKER_KEY_BASE + 5);
    await promoteAndCompare(server, jobId, source, destination, null);
  }, 300_000);
});
