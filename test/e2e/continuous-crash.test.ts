/**
 * Restart safety of a continuous job, end to end: `ferry serve` is killed with SIGKILL (by its
 * PID) at least ten times at seeded random moments, during the full dump of a continuous job
 * and during its incremental load, while a concurrent workload writes to the source; after
 * each kill a new server starts on the same data directory and the job carries on by itself.
 * At the end the workload stops, the job is promoted (one more kill during the promote) and
 * the destination must equal the source: no change lost, none applied twice.
 *
 * A kill during the dump must not start the dump over: the tables DUMPED before the kill keep
 * their state and updateTime in the store and their physical copy on the destination
 * (relfilenode: a reload truncates the table).
 *
 * FERRY_CRASH_SEED changes the kill moments (default 20240611).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { compareDatabases, formatDifferences, quoteIdent } from '../helpers/compare.js';
import {
  FAST_RETRY_ENV,
  api,
  makeDataDir,
  removeDataDir,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';
import { WORKLOAD_TABLES, Workload, createWorkloadSchema, seededRandom } from '../helpers/workload.js';

const SEED = Number(process.env.FERRY_CRASH_SEED ?? 20240611);
const MIN_KILLS = 10;
/** Kills aimed for before the promote (the dump's, then the incremental load's); one more during the promote. */
const TARGET_KILLS = 14;
/** Kills during the full dump (each after a newly DUMPED table), when the dump lasts long enough. */
const DUMP_KILLS = 3;

interface JobView {
  id: string;
  status: string;
  substatus: string | null;
  phase: string | null;
  availableActions: string[];
  error: { code: string; message: string } | null;
  replication: { changesApplied: number; appliedPosition: string | null } | null;
  promoteRequested: boolean;
}

interface JobObject {
  name: string;
  state: string;
  rowsCopied: number;
  updateTime: string;
}

interface Kill {
  n: number;
  phase: string;
  status: string;
  afterMs: number;
  dumped?: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function jobOf(client: ApiClient, id: string): Promise<JobView> {
  return client.getOk<JobView>(`/v1/migrationJobs/${id}`);
}

async function objectsOf(client: ApiClient, id: string): Promise<JobObject[]> {
  return (await client.getOk<{ objects: JobObject[] }>(`/v1/migrationJobs/${id}/objects`)).objects;
}

async function relfilenode(client: pg.ClientBase, qualified: string): Promise<string> {
  const [schema, name] = qualified.split('.') as [string, string];
  const { rows } = await client.query<{ f: string }>(`SELECT relfilenode::text AS f FROM pg_class WHERE oid = $1::regclass`, [`${quoteIdent(schema)}.${quoteIdent(name)}`]);
  return rows[0]!.f;
}

describe('kill -9 of ferry serve during a continuous job under a concurrent workload', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let drop: () => Promise<void>;
  let dataDir: string;
  let workload: Workload | null = null;

  beforeAll(async () => {
    const pair = await createDatabasePair('ferry_ccrash');
    ({ source, destination } = pair);
    drop = () => pair.drop();
    // About 1.5 million rows (and 35 MB of TOASTed text): a dump of several seconds.
    const started = Date.now();
    await createWorkloadSchema(source.client, { accounts: 550_000, documents: 3_000, parents: 120_000, childrenPerParent: 2, auditRows: 250_000, items: 250_000 });
    console.log(`continuous-crash: source built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    dataDir = makeDataDir('ferry-ccrash-');
  }, 300_000);

  afterAll(async () => {
    await workload?.stop().catch(() => undefined);
    await stopAllFerryServers();
    await drop?.().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 120_000);

  it(`survives at least ${MIN_KILLS} kills (full dump, incremental load, promote): the destination equals the source`, async () => {
    const rng = seededRandom(SEED);
    const between = (lo: number, hi: number) => Math.round(lo + rng() * (hi - lo));
    const testStarted = Date.now();
    const jobId = 'ccrash';
    let server: FerryServer = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    let client = api(server.url);
    const opts = () => ({ server: server.url });
    for (const [id, port, db] of [['src', PG_SOURCE_PORT, source], ['dst', PG_DEST_PORT, destination]] as const) {
      await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(port),
        '--database', db.params.database as string, '--username', PG_USER], opts());
    }
    await runCliJson(['jobs', 'create', '--id', jobId, '--type', 'continuous', '--source', 'src', '--destination', 'dst', '--dump-parallelism', '2'], opts());

    workload = new Workload({ connection: source.params, workers: 3, seed: SEED % 100_000, pauseMs: 4, truncateEvery: 80 });
    await workload.start();
    await runCliJson(['jobs', 'start', jobId], opts());

    const kills: Kill[] = [];
    const restart = async () => {
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);
    };
    const kill = async (job: JobView, sinceStartMs: number, dumped?: string[]) => {
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      kills.push({ n: kills.length + 1, phase: job.phase ?? 'none', status: job.status, afterMs: sinceStartMs, ...(dumped ? { dumped } : {}) });
    };

    // 1. Kills during the full dump: each once a table was newly copied (so that the dump progresses), a little later.
    /** Tables DUMPED before a kill: their object's updateTime and their destination relfilenode then. */
    const kept = new Map<string, { updateTime: string; relfilenode: string }>();
    const violations: string[] = [];
    const checkKept = (objects: JobObject[]) => {
      for (const o of objects) {
        const before = kept.get(o.name);
        if (before === undefined || o.state === 'REPLICATING' || o.state === 'COMPLETED') continue;
        if (o.state !== 'DUMPED') violations.push(`${o.name} went back to ${o.state} after a kill`);
        else if (o.updateTime !== before.updateTime) violations.push(`${o.name} was written again at ${o.updateTime} (DUMPED at ${before.updateTime})`);
      }
    };
    let dumpOver = false;
    while (kills.length < DUMP_KILLS && !dumpOver) {
      const up = Date.now();
      for (;;) {
        const [job, objects] = await Promise.all([jobOf(client, jobId), objectsOf(client, jobId)]);
        checkKept(objects);
        if (job.status === 'FAILED') throw new Error(`job failed during the dump: ${JSON.stringify(job.error)}`);
        if (job.phase !== null && job.phase !== 'FULL_DUMP') {
          dumpOver = true;
          break;
        }
        const fresh = objects.filter((o) => o.state === 'DUMPED' && !kept.has(o.name));
        if (fresh.length > 0 && objects.some((o) => o.state === 'DUMPING' || o.state === 'NOT_STARTED')) {
          await sleep(between(0, 400));
          const latest = await objectsOf(client, jobId);
          const dumped = latest.filter((o) => o.state === 'DUMPED');
          const current = await jobOf(client, jobId);
          if (current.phase !== 'FULL_DUMP') {
            dumpOver = true;
            break;
          }
          await kill(current, Date.now() - up, dumped.map((o) => o.name));
          for (const o of dumped) {
            if (!kept.has(o.name)) kept.set(o.name, { updateTime: o.updateTime, relfilenode: await relfilenode(destination.client, o.name) });
          }
          await restart();
          const after = await jobOf(client, jobId);
          expect(after.status, JSON.stringify(after)).toBe('RUNNING');
          expect(after.substatus).toBe('Full dump in progress');
          checkKept(await objectsOf(client, jobId));
          break;
        }
        if (Date.now() - up > 180_000) throw new Error(`the dump made no progress in 180 s: ${JSON.stringify(objects)}`);
        await sleep(40);
      }
    }
    const dumpKills = kills.length;
    expect(dumpKills, `kills during the full dump (the dump must last long enough to be killed; kills: ${JSON.stringify(kills)})`).toBeGreaterThanOrEqual(2);

    // Until the dump is over, tables DUMPED before a kill stay DUMPED and are not written again.
    let reachedIncremental: JobView | null = null;
    for (const deadline = Date.now() + 240_000; Date.now() < deadline;) {
      const [job, objects] = await Promise.all([jobOf(client, jobId), objectsOf(client, jobId)]);
      if (job.status === 'FAILED') throw new Error(`job failed: ${JSON.stringify(job.error)}`);
      if (job.phase === 'INCREMENTAL_LOAD') {
        reachedIncremental = job;
        break;
      }
      checkKept(objects);
      await sleep(100);
    }
    expect(reachedIncremental, 'the job reaches Incremental load after the dump-time kills').not.toBeNull();
    expect(violations, violations.join('\n')).toEqual([]);
    // The physical copies made before the kills were not reloaded (lookup_codes is truncated by the workload's changes).
    for (const [name, before] of kept) {
      if (name === 'public.lookup_codes') continue;
      expect(await relfilenode(destination.client, name), `${name} was reloaded although it was DUMPED before a kill`).toBe(before.relfilenode);
    }

    // 2. Kills during the incremental load, at random moments: sometimes right after the restart, sometimes once changes flow.
    let progressed = 0;
    // The applied counter survives restarts: a new server has applied changes once it passes the count at the kill.
    let appliedAtKill = 0;
    while (kills.length < TARGET_KILLS) {
      const up = Date.now();
      let job = await jobOf(client, jobId);
      if (rng() < 0.3) {
        await sleep(between(0, 1_500));
      } else {
        const deadline = Date.now() + 60_000;
        while (job.replication === null || job.replication.changesApplied <= appliedAtKill) {
          if (job.status === 'FAILED') throw new Error(`job failed during the incremental load: ${JSON.stringify(job.error)}`);
          if (Date.now() > deadline) throw new Error(`no change applied within 60 s after restart: ${JSON.stringify(job)}`);
          await sleep(100);
          job = await jobOf(client, jobId);
        }
        progressed++;
        await sleep(between(100, 3_000));
      }
      job = await jobOf(client, jobId);
      if (job.status === 'FAILED') throw new Error(`job failed during the incremental load: ${JSON.stringify(job.error)}`);
      expect(job.phase).toBe('INCREMENTAL_LOAD');
      appliedAtKill = job.replication?.changesApplied ?? 0;
      await kill(job, Date.now() - up);
      await restart();
    }
    expect(progressed, 'changes were applied between some of the kills').toBeGreaterThan(0);

    // Let it catch up a little under this last server, then stop the workload.
    const settled = await waitForJobState(client, jobId, (j) => j.replication !== null && j.replication.changesApplied > appliedAtKill, 90_000);
    expect(settled.status).toBe('RUNNING');
    const stats = await workload.stop();
    workload = null;
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    expect(stats.committed).toBeGreaterThan(1_000);
    for (const op of ['changeAccountKey', 'updateDocumentKeepBody', 'updateDocumentBody', 'deleteParent', 'updateOneAudit', 'truncate', 'rolledBackTransaction', 'multiTableTransaction']) {
      expect(stats.ops[op] ?? 0, op).toBeGreaterThan(0);
    }

    // 3. Promote, with one more kill while it is in progress.
    await runCliJson(['jobs', 'promote', jobId], opts());
    // A promote with little lag is quick: kill within 100 ms of the request.
    await sleep(between(0, 100));
    const promoting = await jobOf(client, jobId);
    let promoteKilled = false;
    if (promoting.status !== 'COMPLETED') {
      await kill(promoting, 0);
      promoteKilled = true;
      await restart();
    }
    const final = await waitForJobState(client, jobId, (j) => j.status === 'COMPLETED', 180_000);
    expect(final.error).toBeNull();
    expect(final.availableActions).toEqual(['delete']);

    // Nobody acted but the test's start and promote; the job never failed.
    const { events } = await client.getOk<{ events: { kind: string; action?: string; status?: string; message: string }[] }>(`/v1/migrationJobs/${jobId}/events`);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
    expect(events.filter((e) => e.status === 'FAILED').map((e) => e.message)).toEqual([]);

    const objects = await objectsOf(client, jobId);
    expect(objects.map((o) => o.name).sort()).toEqual([...WORKLOAD_TABLES].sort());
    expect(objects.every((o) => o.state === 'COMPLETED'), JSON.stringify(objects)).toBe(true);

    // The oracle: the same rows (no change lost, none applied twice), columns, indexes, constraints, sequences.
    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);
    const slots = await source.client.query(`SELECT slot_name, temporary FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots.rows, 'no slot (permanent or temporary) is left on the source').toEqual([]);
    expect((await source.client.query(`SELECT pubname FROM pg_publication`)).rows).toEqual([]);
    expect((await destination.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).rows).toEqual([]);

    expect(kills.length).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(kills.filter((k) => k.phase === 'INCREMENTAL_LOAD').length).toBeGreaterThanOrEqual(MIN_KILLS - DUMP_KILLS);
    console.log(`continuous-crash: seed ${SEED}, ${kills.length} kills (${promoteKilled ? 'the last one during the promote' : 'the promote was over before its kill'}) in ${((Date.now() - testStarted) / 1000).toFixed(0)} s: ${kills.map((k) => `#${k.n} ${k.status}/${k.phase} +${k.afterMs}ms${k.dumped ? ` [DUMPED: ${k.dumped.join(', ')}]` : ''}`).join('; ')}; workload committed ${stats.committed}, rolled back ${stats.rolledBack}`);
    await server.stop();
  }, 600_000);
});

async function waitForJobState(client: ApiClient, id: string, ready: (job: JobView) => boolean, timeoutMs: number): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  for (;;) {
    last = await jobOf(client, id);
    if (ready(last)) return last;
    if (last.status === 'FAILED') throw new Error(`job ${id} failed: ${JSON.stringify(last.error)}`);
    if (Date.now() > deadline) throw new Error(`job ${id}: timed out after ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await sleep(250);
  }
}
