/**
 * A continuous job over a table without a primary key or replica identity: the source keeps
 * accepting its own UPDATEs and DELETEs (the table is published for inserts only), and the
 * inserts made after the dump reach the destination.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
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
import { createDatabasePair, PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER } from '../helpers/postgres.js';

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

const eventRow = (epoch: number, kind: string, n: number) => `${epoch}|${kind}|{"n": ${n}}`;

/** The keyless table as sorted `epoch|kind|payload` strings (a multiset). */
async function eventRows(client: pg.ClientBase): Promise<string[]> {
  const result = await client.query<{ r: string }>(`SELECT extract(epoch FROM at)::bigint || '|' || coalesce(kind, 'NULL') || '|' || coalesce(payload::text, 'NULL') AS r FROM events`);
  return result.rows.map((row) => row.r).sort();
}

describe('continuous job over a table without key or replica identity', () => {
  let store: SqliteMetadataStore;
  let supervisor: JobSupervisor;
  let service: MigrationService;
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;

  beforeAll(async () => {
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    const engines = new EngineRegistry([postgresEngine]);
    supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 500, budgetMs: 30_000, probeIntervalMs: 500 },
      resolveConnection: (id) => service.resolveConnection(id),
    }, 500);
    service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    await supervisor.start();
    dbs = await createDatabasePair('ferry_keyless');
    await dbs.source.client.query(`
      CREATE TABLE events (at timestamptz NOT NULL, kind text, payload jsonb);
      CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL);
      INSERT INTO events SELECT '2026-01-01'::timestamptz + g * interval '1 second', 'boot', jsonb_build_object('n', g) FROM generate_series(1, 1000) g;
      INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 50) g;
    `);
  });

  afterAll(async () => {
    await supervisor?.close();
    await store?.close();
    await dbs?.drop();
  });

  it('replicates inserts, warns that updates and deletes are not, and never blocks the source', async () => {
    await service.createProfile({ id: 'src', displayName: 'src', engine: 'postgresql', host: PG_HOST, port: PG_SOURCE_PORT, database: dbs.source.params.database, username: PG_USER }, 'test');
    await service.createProfile({ id: 'dst', displayName: 'dst', engine: 'postgresql', host: PG_HOST, port: PG_DEST_PORT, database: dbs.destination.params.database, username: PG_USER }, 'test');
    await service.createJob({ id: 'cdc', displayName: 'cdc', type: 'continuous', sourceProfileId: 'src', destinationProfileId: 'dst' }, 'test');

    const verify = await service.verifyJob('cdc');
    const warning = verify.checks.find((c) => c.code === 'TABLE_WITHOUT_PRIMARY_KEY');
    expect(warning?.severity).toBe('warning');
    expect(warning?.message).toContain('public.events');
    expect(warning?.message).toContain('UPDATEs and DELETEs are NOT');

    await service.applyJobAction('cdc', 'start', 'test');
    await waitFor(service, 'cdc', (j) => j.phase === 'INCREMENTAL_LOAD' && j.replication !== null);

    // The source's own UPDATE and DELETE on the keyless table keep working while it is published.
    await dbs.source.client.query(`UPDATE events SET kind = 'changed' WHERE payload->>'n' = '1'`);
    await dbs.source.client.query(`DELETE FROM events WHERE payload->>'n' = '2'`);
    // Late inserts, every tenth row twice (identical rows: the table is a multiset).
    await dbs.source.client.query(`INSERT INTO events SELECT '2026-02-01'::timestamptz + g * interval '1 second', 'late', jsonb_build_object('n', g) FROM generate_series(1, 200) g`);
    await dbs.source.client.query(`INSERT INTO events SELECT '2026-02-01'::timestamptz + g * interval '1 second', 'late', jsonb_build_object('n', g) FROM generate_series(10, 200, 10) g`);
    await dbs.source.client.query(`UPDATE accounts SET balance = balance + 1 WHERE id <= 10`);

    await service.applyJobAction('cdc', 'promote', 'test');
    const done = await waitFor(service, 'cdc', (j) => j.status === 'COMPLETED' || j.status === 'FAILED');
    expect(done.error).toBeNull();
    expect(done.status).toBe('COMPLETED');

    // Row for row, as multisets: the dumped rows as they were (what the warning announced: the
    // update and the delete did not travel), then the late inserts with their duplicates.
    const expectedEvents = [
      ...Array.from({ length: 1000 }, (_, i) => eventRow(Date.UTC(2026, 0, 1) / 1000 + i + 1, 'boot', i + 1)),
      ...Array.from({ length: 200 }, (_, i) => eventRow(Date.UTC(2026, 1, 1) / 1000 + i + 1, 'late', i + 1)),
      ...Array.from({ length: 20 }, (_, i) => eventRow(Date.UTC(2026, 1, 1) / 1000 + (i + 1) * 10, 'late', (i + 1) * 10)),
    ].sort();
    expect(await eventRows(dbs.destination.client)).toEqual(expectedEvents);
    const accounts = await dbs.destination.client.query<{ id: number; balance: string }>(`SELECT id, balance::text AS balance FROM accounts ORDER BY id`);
    expect(accounts.rows.map((r) => [r.id, r.balance])).toEqual(Array.from({ length: 50 }, (_, i) => [i + 1, i < 10 ? '101.00' : '100.00']));
    const publications = await dbs.source.client.query(`SELECT pubname FROM pg_publication`);
    expect(publications.rows).toEqual([]);
  });
});
