/**
 * The service, the pipeline and the SQLite store against real PostgreSQL servers: one-time
 * jobs through their lifecycle, including failures a user meets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { FerryError } from '../../src/core/errors.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import type { JobView } from '../../src/service/inputs.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { createDatabasePair, PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, type TestDatabase } from '../helpers/postgres.js';

interface Harness {
  store: SqliteMetadataStore;
  supervisor: JobSupervisor;
  service: MigrationService;
}

async function harness(): Promise<Harness> {
  const store = SqliteMetadataStore.open(':memory:');
  await store.migrate();
  const engines = new EngineRegistry([postgresEngine]);
  let service: MigrationService | null = null;
  const supervisor = new JobSupervisor({
    store, clock: systemClock, logger: silentLogger, engines,
    retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 1_500, probeIntervalMs: 300 },
    resolveConnection: (id) => (service as MigrationService).resolveConnection(id),
  }, 500);
  service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
  await supervisor.start();
  return { store, supervisor, service };
}

async function waitFor(service: MigrationService, id: string, accept: (job: JobView) => boolean, timeoutMs = 60_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let job = await service.getJob(id);
  while (!accept(job)) {
    if (Date.now() > deadline) throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify({ status: job.status, substatus: job.substatus, error: job.error })}`);
    await new Promise((r) => setTimeout(r, 100));
    job = await service.getJob(id);
  }
  return job;
}

async function tableText(db: TestDatabase, table: string): Promise<string[]> {
  const result = await db.client.query<{ r: string }>(`SELECT t::text AS r FROM ${table} t ORDER BY 1`);
  return result.rows.map((row) => row.r);
}

/** A table too large to compare as text: its row count and the md5 of its rows in their text form, sorted (a multiset). */
async function tableDigest(db: TestDatabase, table: string): Promise<{ n: number; digest: string }> {
  const result = await db.client.query<{ n: number; digest: string }>(`SELECT count(*)::int AS n, md5(string_agg(md5(t::text), '' ORDER BY t::text)) AS digest FROM ${table} t`);
  return result.rows[0] as { n: number; digest: string };
}

describe('one-time PostgreSQL to PostgreSQL jobs', () => {
  let h: Harness;
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;

  beforeAll(async () => {
    h = await harness();
    dbs = await createDatabasePair('ferry_job');
    await dbs.source.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL UNIQUE, mood mood, joined timestamptz DEFAULT now());
      CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(12,2), note text);
      CREATE INDEX orders_customer ON orders (customer_id);
      INSERT INTO customers (name, mood, joined) SELECT 'customer ' || g, (ARRAY['sad','ok','happy'])[1 + g % 3]::mood, '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 2000) g;
      INSERT INTO orders (customer_id, total, note) SELECT 1 + g % 2000, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'ørder ✓ ' || g END FROM generate_series(1, 20000) g;
    `);
  });

  afterAll(async () => {
    await h?.supervisor.close();
    await h?.store.close();
    await dbs?.drop();
  });

  async function profiles(suffix: string, sourcePort = PG_SOURCE_PORT): Promise<{ source: string; destination: string }> {
    const source = await h.service.createProfile({
      id: `src-${suffix}`, displayName: `Source ${suffix}`, engine: 'postgresql', host: PG_HOST, port: sourcePort,
      database: dbs.source.params.database, username: PG_USER, password: 'not-a-real-secret-123',
    }, 'test');
    const destination = await h.service.createProfile({
      id: `dst-${suffix}`, displayName: `Destination ${suffix}`, engine: 'postgresql', host: PG_HOST, port: PG_DEST_PORT,
      database: dbs.destination.params.database, username: PG_USER,
    }, 'test');
    return { source: source.id, destination: destination.id };
  }

  it('generates readable ids from the display name: move-shop-1, then move-shop-2', async () => {
    const p = await profiles('ids');
    const first = await h.service.createJob({ displayName: 'Move shop!', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination }, 'test');
    const second = await h.service.createJob({ displayName: 'Move  shop', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination }, 'test');
    expect([first.id, second.id]).toEqual(['move-shop-1', 'move-shop-2']);
    const profile = await h.service.createProfile({ displayName: '42 Orders DB', engine: 'postgresql', host: PG_HOST, username: PG_USER }, 'test');
    expect(profile.id).toBe('x-42-orders-db-1');
    await h.service.deleteJob(first.id, 'test');
    await h.service.deleteJob(second.id, 'test');
    await h.service.deleteProfile(profile.id, 'test');
  });

  it('copies schema and data exactly and ends Completed', async () => {
    const p = await profiles('a');
    const created = await h.service.createJob({ id: 'job-a', displayName: 'Job A', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination, dumpParallelism: 2 }, 'test');
    expect(created.status).toBe('NOT_STARTED');
    expect(created.availableActions).toEqual(['start', 'delete']);

    const verify = await h.service.verifyJob('job-a');
    expect(verify.ok).toBe(true);

    await h.service.applyJobAction('job-a', 'start', 'test');
    const done = await waitFor(h.service, 'job-a', (j) => j.status === 'COMPLETED' || j.status === 'FAILED');
    expect(done.error).toBeNull();
    expect(done.status).toBe('COMPLETED');
    expect(done.availableActions).toEqual(['delete']);
    expect(done.progress).toMatchObject({ tablesTotal: 2, tablesCompleted: 2, rowsCopied: 22000, percent: 100 });
    expect(done.endTime).not.toBeNull();

    for (const table of ['customers', 'orders']) {
      expect(await tableText(dbs.destination, table)).toEqual(await tableText(dbs.source, table));
    }
    const objects = await h.service.listJobObjects('job-a');
    expect(objects.map((o) => [o.name, o.state, o.rowsCopied])).toEqual([
      ['public.customers', 'COMPLETED', 2000],
      ['public.orders', 'COMPLETED', 20000],
    ]);
    // Sequences follow the source, so new rows on the promoted destination do not collide.
    const next = await dbs.destination.client.query<{ id: number }>(`INSERT INTO customers (name) VALUES ('new one') RETURNING id`);
    expect(next.rows[0]?.id).toBe(2001);
    await dbs.destination.client.query(`DELETE FROM customers WHERE name = 'new one'`);

    const events = await h.service.listJobEvents('job-a');
    const kinds = events.map((e) => `${e.kind}:${e.status ?? ''}`);
    expect(kinds[0]).toBe('created:NOT_STARTED');
    expect(kinds).toContain('action:STARTING');
    expect(kinds).toContain('status:RUNNING');
    expect(kinds.at(-1)).toBe('status:COMPLETED');
  });

  it('refuses actions the status does not allow, naming the status and the allowed actions', async () => {
    const error = await h.service.applyJobAction('job-a', 'stop', 'test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('ACTION_NOT_ALLOWED');
    expect((error as FerryError).message).toContain('Completed');
    expect((error as FerryError).message).toContain('Allowed now: delete');
  });

  it('fails a start into a destination that holds data, and Restart succeeds once it is emptied', async () => {
    const p = await profiles('b');
    await h.service.createJob({ id: 'job-b', displayName: 'Job B', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination }, 'test');
    const verify = await h.service.verifyJob('job-b');
    expect(verify.ok).toBe(false);
    expect(verify.checks.filter((c) => c.severity === 'error').map((c) => c.code)).toContain('DESTINATION_NOT_EMPTY');

    await h.service.applyJobAction('job-b', 'start', 'test');
    const failed = await waitFor(h.service, 'job-b', (j) => j.status === 'FAILED');
    expect(failed.error?.code).toBe('DESTINATION_NOT_EMPTY');
    expect(failed.substatus).toBe('Failed in Full dump');
    expect(failed.availableActions).toEqual(['restart', 'delete']);

    // The first job's tables are the user's data now: the job must not have touched them.
    for (const table of ['customers', 'orders']) {
      expect(await tableText(dbs.destination, table)).toEqual(await tableText(dbs.source, table));
    }

    await h.service.deleteJob('job-a', 'test');
    await dbs.destination.client.query('DROP TABLE orders, customers; DROP TYPE mood');
    await h.service.applyJobAction('job-b', 'restart', 'test');
    const done = await waitFor(h.service, 'job-b', (j) => j.status === 'COMPLETED' || (j.status === 'FAILED' && j.error?.code !== 'DESTINATION_NOT_EMPTY'));
    expect(done.status).toBe('COMPLETED');
    expect(await tableText(dbs.destination, 'orders')).toEqual(await tableText(dbs.source, 'orders'));
  });

  it('waits in error while the source is unreachable, fails after the budget, and resumes by itself once fixed', async () => {
    await dbs.destination.client.query('DROP TABLE orders, customers; DROP TYPE mood');
    await h.service.deleteJob('job-b', 'test');
    // Nothing listens on this port: connection refused, a retryable error.
    const p = await profiles('c', 1);
    await h.service.createJob({ id: 'job-c', displayName: 'Job C', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination }, 'test');
    await h.service.applyJobAction('job-c', 'start', 'test');

    const degraded = await waitFor(h.service, 'job-c', (j) => j.error !== null);
    expect(degraded.status).toBe('STARTING');
    expect(degraded.error?.code).toBe('CONNECTION_REFUSED');
    expect(degraded.error?.message).toContain('source');

    const failed = await waitFor(h.service, 'job-c', (j) => j.status === 'FAILED');
    expect(failed.error?.recoverable).toBe(true);
    expect(failed.error?.message).toContain('resumes by itself');

    await h.service.updateProfile(p.source, { port: PG_SOURCE_PORT }, 'test');
    const done = await waitFor(h.service, 'job-c', (j) => j.status === 'COMPLETED');
    expect(done.error).toBeNull();
    expect(await tableText(dbs.destination, 'customers')).toEqual(await tableText(dbs.source, 'customers'));
    const kinds = (await h.service.listJobEvents('job-c')).map((e) => e.kind);
    expect(kinds).toContain('error');
    expect(kinds).toContain('errorCleared');
  });

  it('stops a running dump, then Restart wipes and copies again', async () => {
    await h.service.deleteJob('job-c', 'test');
    await dbs.destination.client.query('DROP TABLE orders, customers; DROP TYPE mood');
    await dbs.source.client.query(`CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS filler FROM generate_series(1, 600000) g; ALTER TABLE big ADD PRIMARY KEY (id)`);
    const p = await profiles('d');
    await h.service.createJob({ id: 'job-d', displayName: 'Job D', type: 'one-time', sourceProfileId: p.source, destinationProfileId: p.destination, dumpParallelism: 1, selection: { include: ['public.big'] } }, 'test');
    await h.service.applyJobAction('job-d', 'start', 'test');
    await waitFor(h.service, 'job-d', (j) => j.status === 'RUNNING');
    // Stop while the table is being copied (its destination table exists by then).
    const deadline = Date.now() + 30_000;
    while (!(await h.service.listJobObjects('job-d')).some((o) => o.state === 'DUMPING')) {
      if (Date.now() > deadline) throw new Error('the copy of public.big never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    const stopping = await h.service.applyJobAction('job-d', 'stop', 'test');
    expect(stopping.status).toBe('STOPPING');
    const stopped = await waitFor(h.service, 'job-d', (j) => j.status === 'STOPPED' || j.status === 'COMPLETED');
    expect(stopped.status).toBe('STOPPED');
    expect(stopped.substatus).toBe('Stopped in Full dump');
    expect(stopped.availableActions).toEqual(['restart', 'delete']);
    // The copy in flight was rolled back: nothing half-loaded stays behind.
    expect((await dbs.destination.client.query('SELECT count(*)::int AS n FROM big')).rows[0].n).toBe(0);

    await h.service.applyJobAction('job-d', 'restart', 'test');
    const done = await waitFor(h.service, 'job-d', (j) => j.status === 'COMPLETED' || j.status === 'FAILED', 120_000);
    expect(done.error).toBeNull();
    expect(done.status).toBe('COMPLETED');
    // Content, not a count: a row lost and another copied twice, or two values swapped, differ.
    const [copied, original] = await Promise.all([tableDigest(dbs.destination, 'big'), tableDigest(dbs.source, 'big')]);
    expect(copied).toEqual(original);
    expect(copied.n).toBe(600000);
  });

  it('refuses an ssh-tunnel profile without its SSH server and key, naming what is missing', async () => {
    const error = await h.service.createProfile({ displayName: 'Tunnel', engine: 'postgresql', host: PG_HOST, database: 'x', username: PG_USER, connectivityMethod: 'ssh-tunnel' }, 'test').catch((e: unknown) => e);
    expect((error as FerryError).code).toBe('INVALID_ARGUMENT');
    expect((error as FerryError).message).toContain('sshTunnel: host, username and privateKey are required');
  });

  it('never returns a password', async () => {
    const view = await h.service.getProfile('src-a');
    expect(view.passwordSet).toBe(true);
    expect(JSON.stringify(view)).not.toContain('not-a-real-secret-123');
    const stored = await h.store.getProfile('src-a');
    expect(JSON.stringify(stored)).not.toContain('not-a-real-secret-123');
  });
});
