/**
 * MySQL zero dates bound for PostgreSQL: NULL with a warning naming the column (the default),
 * or a failed job that says what to do (zeroDatePolicy "refuse").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import type { JobView } from '../../src/service/inputs.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { createMysqlTestDatabase } from '../helpers/mysql.js';
import { createTestDatabase, PG_DEST_PORT, PG_HOST, PG_USER } from '../helpers/postgres.js';

async function waitFor(service: MigrationService, id: string, accept: (job: JobView) => boolean, timeoutMs = 60_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let job = await service.getJob(id);
  while (!accept(job)) {
    if (Date.now() > deadline) throw new Error(`job ${id} did not reach the expected state; last: ${JSON.stringify({ status: job.status, error: job.error })}`);
    await new Promise((r) => setTimeout(r, 100));
    job = await service.getJob(id);
  }
  return job;
}

describe('zero date policy (MySQL to PostgreSQL)', () => {
  let store: SqliteMetadataStore;
  let supervisor: JobSupervisor;
  let service: MigrationService;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    const engines = new EngineRegistry([postgresEngine, mysqlEngine]);
    supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 500, budgetMs: 5_000, probeIntervalMs: 500 },
      resolveConnection: (id) => service.resolveConnection(id),
    }, 500);
    service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    await supervisor.start();
  });

  afterAll(async () => {
    await supervisor?.close();
    await store?.close();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  async function setUp(policy: 'null' | 'refuse'): Promise<{ jobId: string; destination: Awaited<ReturnType<typeof createTestDatabase>>; database: string }> {
    const source = await createMysqlTestDatabase('ferry_zero');
    cleanups.push(() => source.drop());
    await source.connection.query(`SET SESSION sql_mode = ''`);
    await source.connection.query(`CREATE TABLE events (id int PRIMARY KEY, happened date, logged datetime(3))`);
    await source.connection.query(`INSERT INTO events VALUES (1, '2024-05-01', '2024-05-01 10:00:00.123'), (2, '0000-00-00', '2024-05-02 10:00:00'), (3, '2024-05-03', '0000-00-00 00:00:00')`);
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_zero');
    cleanups.push(() => destination.drop());
    const suffix = randomBytes(3).toString('hex');
    await service.createProfile({ id: `my-${suffix}`, displayName: 'my', engine: 'mysql', host: '127.0.0.1', port: source.params.port, username: source.params.username, database: null }, 'test');
    await service.createProfile({ id: `pg-${suffix}`, displayName: 'pg', engine: 'postgresql', host: PG_HOST, port: PG_DEST_PORT, database: destination.params.database, username: PG_USER }, 'test');
    const job = await service.createJob({ id: `zero-${suffix}`, displayName: 'zero', type: 'one-time', sourceProfileId: `my-${suffix}`, destinationProfileId: `pg-${suffix}`, selection: { include: [source.name], exclude: [] }, zeroDatePolicy: policy }, 'test');
    expect(job.zeroDatePolicy).toBe(policy);
    return { jobId: job.id, destination, database: source.name };
  }

  it('writes NULL and records a warning naming each column (default)', async () => {
    const { jobId, destination, database } = await setUp('null');
    await service.applyJobAction(jobId, 'start', 'test');
    const done = await waitFor(service, jobId, (j) => j.status === 'COMPLETED' || j.status === 'FAILED');
    expect(done.error).toBeNull();
    const rows = await destination.client.query(`SELECT id, happened::text, logged::text FROM "${database}".events ORDER BY id`);
    expect(rows.rows).toEqual([
      { id: 1, happened: '2024-05-01', logged: '2024-05-01 10:00:00.123' },
      { id: 2, happened: null, logged: '2024-05-02 10:00:00' },
      { id: 3, happened: '2024-05-03', logged: null },
    ]);
    const warnings = (await service.listJobEvents(jobId)).filter((e) => e.details?.code === 'VALUE_CHANGED').map((e) => e.message);
    expect(warnings.some((w) => w.includes(`${database}.events.happened: 1 zero or invalid date`))).toBe(true);
    expect(warnings.some((w) => w.includes(`${database}.events.logged: 1 zero or invalid date`))).toBe(true);
  });

  it('fails the job with DATA_ERROR naming the column when the policy is "refuse"', async () => {
    const { jobId } = await setUp('refuse');
    await service.applyJobAction(jobId, 'start', 'test');
    const failed = await waitFor(service, jobId, (j) => j.status === 'FAILED' || j.status === 'COMPLETED');
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.code).toBe('DATA_ERROR');
    expect(failed.error?.message).toMatch(/events\.(happened|logged) holds a zero or invalid date/);
    expect(failed.error?.message).toContain('zeroDatePolicy');
  });
});
