/**
 * Continuous PostgreSQL to PostgreSQL migrations, end to end, through the CLI and the REST API
 * of a real `ferry serve`:
 * - a job started while a concurrent workload writes to the source (inserts, updates, key
 *   changes, TOASTed values changed and unchanged, deletes, multi-table and rolled-back
 *   transactions, truncate, sequences) reaches Incremental load, shows its lag in the API, in
 *   `jobs describe` and on /metrics, and after Promote the destination equals the source (the
 *   independent oracle of compare.ts), sequences included; nothing of the job is left on the
 *   source (slot, publication) or on the destination (`_ferry` schema);
 * - Stop in Incremental load, changes made while stopped, Resume, Promote from Stopped;
 * - actions the status does not allow are refused with 409 ACTION_NOT_ALLOWED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
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
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';
import { KEY_SHIFT, MARKER_KEY_BASE, WORKLOAD_TABLES, Workload, createWorkloadSchema, type WorkloadStats } from '../helpers/workload.js';

interface ReplicationView {
  appliedPosition: string | null;
  sourcePosition: string | null;
  lagBytes: number | null;
  lagSeconds: number;
  appliedChangesPerSecond: number;
  changesApplied: number;
  transactionsApplied: number;
  lastAppliedCommitTime: string | null;
  tableChanges: Record<string, number>;
}

interface JobView {
  id: string;
  type: string;
  status: string;
  substatus: string | null;
  phase: string | null;
  availableActions: string[];
  error: { code: string; message: string; retryable: boolean; recoverable: boolean } | null;
  replication: ReplicationView | null;
  promoteRequested: boolean;
  progress: { tablesTotal: number; tablesCompleted: number };
}

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function jobOf(client: ApiClient, id: string): Promise<JobView> {
  return client.getOk<JobView>(`/v1/migrationJobs/${id}`);
}

/** Polls until `ready(job)`; throws at once when the job fails (unless `ready` accepts it) or after the timeout. */
async function waitForJob(client: ApiClient, id: string, what: string, ready: (job: JobView) => boolean, timeoutMs = 120_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  for (;;) {
    last = await jobOf(client, id);
    if (ready(last)) return last;
    if (last.status === 'FAILED') throw new Error(`job ${id} failed while waiting for ${what}: ${JSON.stringify(last.error)}`);
    if (Date.now() > deadline) throw new Error(`job ${id}: timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(250);
  }
}

const inIncrementalLoad = (job: JobView) => job.status === 'RUNNING' && job.substatus === 'Incremental load' && job.replication !== null;

async function createProfilesAndJob(server: FerryServer, source: TestDatabase, destination: TestDatabase, jobId: string): Promise<void> {
  const opts = { server: server.url };
  for (const [id, port, db] of [[`${jobId}-src`, PG_SOURCE_PORT, source], [`${jobId}-dst`, PG_DEST_PORT, destination]] as const) {
    await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(port),
      '--database', db.params.database as string, '--username', PG_USER], opts);
  }
  const job = await runCliJson<JobView>(['jobs', 'create', '--id', jobId, '--type', 'continuous', '--source', `${jobId}-src`,
    '--destination', `${jobId}-dst`, '--dump-parallelism', '2'], opts);
  expect(job.type).toBe('continuous');
  expect(job.status).toBe('NOT_STARTED');
}

/** POST /v1/migrationJobs/{id}:{action} must answer 409 ACTION_NOT_ALLOWED naming the allowed actions. */
async function expectRefused(client: ApiClient, id: string, action: string, allowed: string[]): Promise<void> {
  const response = await client.post<ErrorBody>(`/v1/migrationJobs/${id}:${action}`);
  expect(response.status, `${action}: ${JSON.stringify(response.body)}`).toBe(409);
  expect(response.body.error.code).toBe('ACTION_NOT_ALLOWED');
  expect(response.body.error.details.availableActions).toEqual(allowed);
  for (const a of allowed) expect(response.body.error.message).toContain(a);
}

/** The same through the CLI: non-zero exit, the code on stderr. */
async function expectCliRefused(server: FerryServer, id: string, action: string): Promise<void> {
  const result = await runCli(['jobs', action, id], { server: server.url });
  expect(result.code, `ferry jobs ${action}: ${result.stdout}`).not.toBe(0);
  expect(result.stderr).toContain('ACTION_NOT_ALLOWED');
}

async function replicationObjects(source: pg.ClientBase): Promise<{ slots: string[]; publications: string[] }> {
  const slots = await source.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1`);
  const publications = await source.query<{ pubname: string }>(`SELECT pubname FROM pg_publication ORDER BY 1`);
  return { slots: slots.rows.map((r) => r.slot_name), publications: publications.rows.map((r) => r.pubname) };
}

async function sequenceValues(client: pg.ClientBase): Promise<Map<string, bigint | null>> {
  const { rows } = await client.query<{ name: string; last_value: string | null }>(
    `SELECT schemaname || '.' || sequencename AS name, last_value::text FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema', '_ferry')`,
  );
  return new Map(rows.map((r) => [r.name, r.last_value === null ? null : BigInt(r.last_value)]));
}

async function expectDestinationStandsAlone(source: TestDatabase, destination: TestDatabase): Promise<void> {
  // Sequences at least the source's (the oracle below wants them equal once writes stopped).
  const [src, dst] = await Promise.all([sequenceValues(source.client), sequenceValues(destination.client)]);
  expect(src.size).toBeGreaterThan(0);
  for (const [name, value] of src) {
    expect(dst.has(name), `sequence ${name} on the destination`).toBe(true);
    if (value !== null) expect((dst.get(name) ?? -1n) >= value, `sequence ${name}: destination ${dst.get(name)} < source ${value}`).toBe(true);
  }
  // Nothing of the job is left: no slot, no publication on the source, no _ferry schema on the destination.
  expect(await replicationObjects(source.client)).toEqual({ slots: [], publications: [] });
  const ferrySchema = await destination.client.query(`SELECT nspname FROM pg_namespace WHERE nspname = '_ferry'`);
  expect(ferrySchema.rows, 'the _ferry schema (replication position) must be removed by promote').toEqual([]);
  const differences = await compareDatabases(source.client, destination.client);
  expect(differences, formatDifferences(differences)).toEqual([]);
}

function expectWorkloadExercisedEverything(stats: WorkloadStats): void {
  expect(stats.errors, stats.errors.join('\n')).toEqual([]);
  for (const op of ['insertAccount', 'updateAccount', 'changeAccountKey', 'deleteAccount', 'updateDocumentKeepBody', 'updateDocumentBody',
    'changeDocumentKey', 'insertFamily', 'updateChild', 'deleteParent', 'insertAudit', 'updateOneAudit', 'deleteOneAudit', 'insertItem',
    'updateItem', 'transfer', 'nextval', 'multiTableTransaction', 'rolledBackTransaction', 'truncate']) {
    expect(stats.ops[op] ?? 0, `workload operation ${op}`).toBeGreaterThan(0);
  }
  expect(stats.rolledBack).toBeGreaterThan(0);
}

describe('continuous PostgreSQL to PostgreSQL migration', () => {
  let server: FerryServer;
  let client: ApiClient;
  const pairs: { drop(): Promise<void> }[] = [];
  const workloads: Workload[] = [];

  beforeAll(async () => {
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    client = api(server.url);
  });

  afterAll(async () => {
    await Promise.allSettled(workloads.map((w) => w.stop()));
    await stopAllFerryServers();
    await Promise.allSettled(pairs.map((p) => p.drop()));
  }, 120_000);

  it('migrates under a concurrent workload, reports lag, and after promote the destination equals the source', async () => {
    const pair = await createDatabasePair('ferry_cont');
    pairs.push(pair);
    const { source, destination } = pair;
    await createWorkloadSchema(source.client, { accounts: 30_000, documents: 400, parents: 3_000, auditRows: 5_000, items: 5_000 });
    const jobId = 'cont-main';
    await createProfilesAndJob(server, source, destination, jobId);

    // Not started: only Start and Delete.
    await expectRefused(client, jobId, 'promote', ['start', 'delete']);
    await expectRefused(client, jobId, 'resume', ['start', 'delete']);

    const workload = new Workload({ connection: source.params, workers: 4, seed: 11, pauseMs: 5, truncateEvery: 60 });
    workloads.push(workload);
    await workload.start();
    await workload.waitForCommits(100);

    const started = await runCliJson<JobView>(['jobs', 'start', jobId], { server: server.url });
    expect(['STARTING', 'RUNNING']).toContain(started.status);

    const seenSubstatuses = new Set<string>();
    const running = await waitForJob(client, jobId, 'Running (Incremental load) with replication numbers', (job) => {
      if (job.substatus !== null) seenSubstatuses.add(`${job.status}/${job.substatus}`);
      return inIncrementalLoad(job);
    }, 180_000);
    expect(running.error).toBeNull();
    expect(running.availableActions).toEqual(['stop', 'promote', 'delete']);

    // The slot and the publication exist on the source while the job replicates.
    const objects = await replicationObjects(source.client);
    expect(objects.slots).toHaveLength(1);
    expect(objects.publications).toHaveLength(1);

    // Keep writing a while; the job stays Running (no error) and applies changes.
    const statuses = new Set<string>();
    const before = running.replication as ReplicationView;
    const deadline = Date.now() + 12_000;
    let lastJob = running;
    while (Date.now() < deadline) {
      lastJob = await jobOf(client, jobId);
      statuses.add(lastJob.status);
      if (lastJob.error !== null) throw new Error(`error during incremental load: ${JSON.stringify(lastJob.error)}`);
      await sleep(500);
    }
    expect([...statuses]).toEqual(['RUNNING']);
    const replication = lastJob.replication as ReplicationView;
    expect(replication.changesApplied).toBeGreaterThan(before.changesApplied);
    expect(replication.transactionsApplied).toBeGreaterThan(0);
    expect(replication.appliedChangesPerSecond).toBeGreaterThan(0);
    expect(replication.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(replication.lagSeconds, 'a light workload on a local pair should not lag by a minute').toBeLessThan(60);
    expect(replication.appliedPosition).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    for (const table of ['public.accounts', 'public.documents', 'inventory.items', 'public.audit_log']) {
      expect(replication.tableChanges[table] ?? 0, `changes applied to ${table}`).toBeGreaterThan(0);
    }
    // lagBytes is measured every couple of seconds.
    const measured = await waitForJob(client, jobId, 'lagBytes measured', (j) => typeof j.replication?.lagBytes === 'number', 20_000);
    expect(measured.replication?.lagBytes).toBeGreaterThanOrEqual(0);
    expect(measured.replication?.sourcePosition).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    // describe: JSON has the numbers, the text shows a Replication section with the lag.
    const described = await runCliJson<JobView>(['jobs', 'describe', jobId], { server: server.url });
    expect(described.replication).not.toBeNull();
    expect(typeof described.replication?.lagSeconds).toBe('number');
    expect(typeof described.replication?.appliedChangesPerSecond).toBe('number');
    expect(described.replication).toHaveProperty('lagBytes');
    const text = await runCli(['jobs', 'describe', jobId], { server: server.url });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('Incremental load');
    expect(text.stdout).toMatch(/Replication\s+lag \d+\.\d s \/ /);

    // /metrics has the job's lag in bytes and seconds and the changes applied.
    const metrics = await fetch(`${server.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(new RegExp(`^ferry_job_replication_lag_bytes\\{job="${jobId}"\\} \\d+(\\.\\d+)?$`, 'm'));
    expect(metrics).toMatch(new RegExp(`^ferry_job_replication_lag_seconds\\{job="${jobId}"\\} \\d+(\\.\\d+)?(e-?\\d+)?$`, 'm'));
    const applied = new RegExp(`^ferry_job_changes_applied_total\\{job="${jobId}"\\} (\\d+)$`, 'm').exec(metrics);
    expect(applied, metrics).not.toBeNull();
    expect(Number(applied?.[1])).toBeGreaterThan(0);

    // Running in Incremental load: no Resume, Start or Restart.
    await expectRefused(client, jobId, 'resume', ['stop', 'promote', 'delete']);
    await expectRefused(client, jobId, 'restart', ['stop', 'promote', 'delete']);
    await expectCliRefused(server, jobId, 'start');

    const stats = await workload.stop();
    expectWorkloadExercisedEverything(stats);

    // Writes the workload does not do, after it stopped (so that it cannot touch the row): one row
    // inserted, changed in 20 transactions, its key changed, then applied before promote.
    await source.client.query(`INSERT INTO public.accounts (id, owner, balance, updated_at) VALUES (777777777, 'edge', 1, now())`);
    for (let i = 0; i < 20; i++) await source.client.query(`UPDATE public.accounts SET balance = balance + 1, version = version + 1 WHERE id = 777777777`);
    await source.client.query(`UPDATE public.accounts SET id = ${777777777 + KEY_SHIFT} WHERE id = 777777777`);

    const promoting = await runCliJson<JobView>(['jobs', 'promote', jobId], { server: server.url });
    expect(promoting.promoteRequested).toBe(true);
    expect(['RUNNING']).toContain(promoting.status);
    const completed = await waitForJob(client, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 180_000);
    expect(completed.error).toBeNull();
    expect(completed.availableActions).toEqual(['delete']);
    expect(completed.substatus).toBeNull();

    const { events } = await client.getOk<{ events: { kind: string; action?: string; status?: string; phase?: string | null; message: string }[] }>(`/v1/migrationJobs/${jobId}/events`);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
    expect(events.some((e) => e.phase === 'PROMOTE')).toBe(true);

    await expectRefused(client, jobId, 'resume', ['delete']);
    await expectRefused(client, jobId, 'promote', ['delete']);

    await expectDestinationStandsAlone(source, destination);
    const edge = await destination.client.query(`SELECT balance::text, version FROM public.accounts WHERE id = $1`, [777777777 + KEY_SHIFT]);
    expect(edge.rows).toEqual([{ balance: '21.00', version: 21 }]);
    console.log(`continuous-migration: workload ${JSON.stringify({ committed: stats.committed, rolledBack: stats.rolledBack, conflicts: stats.conflicts })}; phases seen ${[...seenSubstatuses].join(', ')}; last replication ${JSON.stringify({ ...replication, tableChanges: undefined })}`);
  }, 420_000);

  it('Stop in Incremental load keeps the position; changes made while stopped are applied after Resume; Promote from Stopped', async () => {
    const pair = await createDatabasePair('ferry_contstop');
    pairs.push(pair);
    const { source, destination } = pair;
    await createWorkloadSchema(source.client);
    const jobId = 'cont-stop';
    await createProfilesAndJob(server, source, destination, jobId);

    const workload = new Workload({ connection: source.params, workers: 2, seed: 23, pauseMs: 5 });
    workloads.push(workload);
    await workload.start();
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    // Starting...: only Delete.
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad, 180_000);
    await workload.waitForCommits(300);

    const stopAsked = Date.now();
    const stopping = await runCliJson<JobView>(['jobs', 'stop', jobId], { server: server.url });
    expect(['STOPPING', 'STOPPED']).toContain(stopping.status);
    const stopped = await waitForJob(client, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
    expect((Date.now() - stopAsked) / 1000, 'Stopping... takes seconds').toBeLessThan(15);
    expect(stopped.substatus).toBe('Stopped in Incremental load');
    expect(stopped.availableActions).toEqual(['resume', 'promote', 'delete']);
    expect(stopped.error).toBeNull();

    // Stopped: the slot stays (it keeps the changes for Resume); nothing is applied.
    expect((await replicationObjects(source.client)).slots).toHaveLength(1);
    await expectRefused(client, jobId, 'restart', ['resume', 'promote', 'delete']);
    await expectRefused(client, jobId, 'start', ['resume', 'promote', 'delete']);
    await expectRefused(client, jobId, 'stop', ['resume', 'promote', 'delete']);
    await expectCliRefused(server, jobId, 'restart');

    await workload.waitForCommits(500);
    const markerId = MARKER_KEY_BASE + 1;
    await source.client.query(`INSERT INTO public.accounts (id, owner, balance, updated_at) VALUES ($1, 'written while stopped', 42, now())`, [markerId]);
    await source.client.query(`UPDATE public.documents SET title = 'changed while stopped' WHERE id = (SELECT min(id) FROM public.documents)`);
    await source.client.query(`DELETE FROM inventory.items WHERE id = (SELECT min(id) FROM inventory.items)`);
    await sleep(3_000);
    const notYet = await destination.client.query(`SELECT id FROM public.accounts WHERE id = $1`, [markerId]);
    expect(notYet.rows, 'a stopped job applies nothing').toEqual([]);
    expect((await jobOf(client, jobId)).status).toBe('STOPPED');

    const resumed = await runCliJson<JobView>(['jobs', 'resume', jobId], { server: server.url });
    expect(['RESUMING', 'RUNNING']).toContain(resumed.status);
    await waitForJob(client, jobId, 'Running (Incremental load) after resume', inIncrementalLoad, 60_000);
    await waitFor('the row written while stopped on the destination', async () => {
      const { rows } = await destination.client.query(`SELECT owner FROM public.accounts WHERE id = $1`, [markerId]);
      return rows.length === 1 ? rows[0] : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    await expectRefused(client, jobId, 'resume', ['stop', 'promote', 'delete']);
    await expectCliRefused(server, jobId, 'resume');

    // More writes after resume, then stop again and promote from Stopped.
    await workload.waitForCommits(300);
    const stats = await workload.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    await runCliJson(['jobs', 'stop', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Stopped again', (j) => j.status === 'STOPPED', 60_000);
    await source.client.query(`UPDATE public.accounts SET balance = 43 WHERE id = $1`, [markerId]);
    const promoting = await runCliJson<JobView>(['jobs', 'promote', jobId], { server: server.url });
    expect(promoting.promoteRequested).toBe(true);
    const completed = await waitForJob(client, jobId, 'Completed after promote from Stopped', (j) => j.status === 'COMPLETED', 180_000);
    expect(completed.error).toBeNull();
    expect(completed.availableActions).toEqual(['delete']);

    await expectDestinationStandsAlone(source, destination);
    const tables = WORKLOAD_TABLES.length;
    expect(completed.progress.tablesTotal).toBe(tables);

    const { events } = await client.getOk<{ events: { kind: string; action?: string }[] }>(`/v1/migrationJobs/${jobId}/events`);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'stop', 'resume', 'stop', 'promote']);

    // Delete works on a Completed job and keeps the destination's data.
    const deleted = await runCli(['jobs', 'delete', jobId], { server: server.url });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect((await client.get(`/v1/migrationJobs/${jobId}`)).status).toBe(404);
    const kept = await destination.client.query(`SELECT balance::text FROM public.accounts WHERE id = $1`, [markerId]);
    expect(kept.rows).toEqual([{ balance: '43.00' }]);
  }, 420_000);
});
