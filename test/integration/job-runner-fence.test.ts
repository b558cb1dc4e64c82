/**
 * A JobRunner under a lease (JobFence) against real PostgreSQL servers and the SQLite store:
 * - with a lease that is no longer valid (from the start, or from right after its raise), it
 *   writes nothing to the store nor the destination tables and stops (leaseLost);
 * - with a valid lease whose epoch the destination fence already passed (another node took
 *   the job over), it stops at the raise and writes nothing;
 * - with a valid, newest lease it runs the one-time job to Completed and removes its fence
 *   (`_ferry` is gone from the destination).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withStatus } from '../../src/core/migration-job.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { systemClock } from '../../src/pipeline/clock.js';
import type { JobFence } from '../../src/pipeline/job-fence.js';
import { JobRunner, fenceKeyOf, type JobRunnerDeps } from '../../src/pipeline/job-runner.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import type { MetadataStore } from '../../src/store/metadata-store.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { createDatabasePair, PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER } from '../helpers/postgres.js';

/** The real store, with the name of every write call that reaches it recorded. */
function recordingStore(store: MetadataStore): { store: MetadataStore; writes: string[] } {
  const writes: string[] = [];
  const recorded = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (typeof property === 'string' && /^(insert|update|upsert|delete|append|put|replace)/.test(property)) writes.push(property);
        return method.apply(target, args);
      };
    },
  });
  return { store: recorded, writes };
}

function fence(epoch: number, valid: () => boolean): JobFence {
  return { nodeId: `node-${epoch}`, epoch, valid, lost: new AbortController().signal };
}

async function finished(runner: JobRunner, ms = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([runner.done, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the runner did not stop')), ms); })]);
  clearTimeout(timer);
}

describe('a JobRunner under a lease', () => {
  let store: SqliteMetadataStore;
  let service: MigrationService;
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;
  const engines = new EngineRegistry([postgresEngine]);
  const jobId = 'fenced-copy';

  beforeAll(async () => {
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    // Never started: the runners of this file are the only ones.
    const supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 1_500, probeIntervalMs: 300 },
      resolveConnection: (id) => service.resolveConnection(id),
    }, 500);
    service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    dbs = await createDatabasePair('ferry_fence_runner');
    await dbs.source.client.query(`CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g`);
    const source = await service.createProfile({ id: 'src', displayName: 'Source', engine: 'postgresql', host: PG_HOST, port: PG_SOURCE_PORT, database: dbs.source.params.database, username: PG_USER }, 'test');
    const destination = await service.createProfile({ id: 'dst', displayName: 'Destination', engine: 'postgresql', host: PG_HOST, port: PG_DEST_PORT, database: dbs.destination.params.database, username: PG_USER }, 'test');
    await service.createJob({ id: jobId, displayName: 'Fenced copy', type: 'one-time', sourceProfileId: source.id, destinationProfileId: destination.id }, 'test');
    // As after its start's checks: the full dump is next.
    const job = await store.getJob(jobId);
    if (job === null) throw new Error('the job was not created');
    await store.updateJob(withStatus(job, 'RUNNING', 'FULL_DUMP', systemClock.now()));
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await dbs?.drop();
  });

  const deps = (recorded: MetadataStore): JobRunnerDeps => ({
    store: recorded, clock: systemClock, logger: silentLogger, engines,
    resolveConnection: (id) => service.resolveConnection(id),
    retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 1_500, probeIntervalMs: 300 },
  });
  const destinationHas = async (relation: string) => ((await dbs.destination.client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [relation])).rows[0] as { present: boolean }).present;
  const ferrySchema = async () => (await dbs.destination.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).rows.length > 0;

  it('writes nothing to the store nor the destination once its lease is no longer valid, and stops', async () => {
    const events = (await store.listJobEvents(jobId)).length;
    const recorder = recordingStore(store);
    const runner = new JobRunner(jobId, deps(recorder.store), undefined, fence(1, () => false));
    await finished(runner);
    expect(runner.leaseLost).toBe(true);
    expect(recorder.writes).toEqual([]);
    expect((await store.getJob(jobId))?.status).toBe('RUNNING');
    expect((await store.listJobEvents(jobId)).length).toBe(events);
    expect(await store.listJobObjects(jobId)).toEqual([]);
    expect(await destinationHas('public.items')).toBe(false);
    expect(await ferrySchema(), 'no fence raised for a lease that is not valid').toBe(false);
  });

  it('stops at its first store write once the lease lapses after the raise, writing nothing', async () => {
    const events = (await store.listJobEvents(jobId)).length;
    const recorder = recordingStore(store);
    // Valid for the raise only: the lease lapses as the dump begins.
    let checks = 0;
    const runner = new JobRunner(jobId, deps(recorder.store), undefined, fence(1, () => checks++ === 0));
    await finished(runner);
    expect(runner.leaseLost).toBe(true);
    expect(checks).toBeGreaterThan(1);
    expect(recorder.writes).toEqual([]);
    expect((await store.listJobEvents(jobId)).length).toBe(events);
    expect(await store.listJobObjects(jobId)).toEqual([]);
    expect(await destinationHas('public.items')).toBe(false);
    expect(await destinationHas('_ferry.job_fence')).toBe(true);
  });

  it('stops at the raise, writing nothing, when another node raised the destination fence to a newer epoch', async () => {
    const job = await store.getJob(jobId);
    if (job === null) throw new Error('the job is gone');
    await postgresEngine.raiseFence(dbs.destination.params, { key: fenceKeyOf(job, null), epoch: 2, nodeId: 'node-2' });
    const recorder = recordingStore(store);
    const runner = new JobRunner(jobId, deps(recorder.store), undefined, fence(1, () => true));
    await finished(runner);
    expect(runner.leaseLost).toBe(true);
    expect(recorder.writes).toEqual([]);
    expect(await store.listJobObjects(jobId)).toEqual([]);
    expect(await destinationHas('public.items')).toBe(false);
  });

  it('with the newest valid lease, copies the job to Completed and removes its fence and `_ferry`', async () => {
    const runner = new JobRunner(jobId, deps(store), undefined, fence(3, () => true));
    await finished(runner);
    expect(runner.leaseLost).toBe(false);
    expect((await store.getJob(jobId))?.status).toBe('COMPLETED');
    expect(Number((await dbs.destination.client.query('SELECT count(*) AS n FROM items')).rows[0]?.n)).toBe(100);
    expect(await ferrySchema()).toBe(false);
  });
});
