/**
 * Restart of chosen tables at the service, with the real SQLite store and lifecycle: what it
 * refuses (outside Full dump, before the job has tables, on another action) and what it
 * records (the checkpoint the runner resumes from, the history event naming the tables).
 * Jobs are put in the statuses under test through the store; no worker runs them (the
 * supervisor is closed), so the test sees exactly what the service wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { FerryError } from '../../src/core/errors.js';
import type { JobPhase, JobStatus } from '../../src/core/lifecycle.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { RESTART_OBJECTS_CHECKPOINT } from '../../src/pipeline/job-runner.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER } from '../helpers/postgres.js';

const TABLES = ['shop.customers', 'shop.items', 'shop.orders'];

describe('restart of chosen tables (service)', () => {
  let store: SqliteMetadataStore;
  let supervisor: JobSupervisor;
  let service: MigrationService;

  beforeAll(async () => {
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    const engines = new EngineRegistry([postgresEngine]);
    supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 1_500, probeIntervalMs: 300 },
      resolveConnection: (id) => service.resolveConnection(id),
    }, 500);
    // Closed: actions are recorded, and no worker acts on them.
    await supervisor.close();
    service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    for (const [id, port] of [['src', PG_SOURCE_PORT], ['dst', PG_DEST_PORT]] as const) {
      await service.createProfile({ id, displayName: id, engine: 'postgresql', host: PG_HOST, port, database: 'postgres', username: PG_USER }, 'test');
    }
  });

  afterAll(async () => {
    await store?.close();
  });

  /** A job in `status`/`phase`, with the given tables (states as a failed dump leaves them). */
  async function jobIn(id: string, status: JobStatus, phase: JobPhase | null, tables: string[]): Promise<void> {
    await service.createJob({ id, displayName: id, type: 'continuous', sourceProfileId: 'src', destinationProfileId: 'dst' }, 'test');
    const job = await store.getJob(id);
    await store.updateJob({ ...job!, status, phase });
    const now = systemClock.now();
    await store.upsertJobObjects(tables.map((name, i) => ({
      jobId: id, name, state: i === 1 ? 'FAILED' as const : 'DUMPED' as const, rowsCopied: 0, bytesCopied: 0, estimatedRows: 0, estimatedBytes: 0, error: null, updateTime: now,
    })));
  }

  async function refusal(promise: Promise<unknown>): Promise<FerryError> {
    const error = await promise.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }

  it('records the tables as the checkpoint the runner resumes from, and names them in the history', async () => {
    await jobIn('failed-dump', 'FAILED', 'FULL_DUMP', TABLES);
    const view = await service.applyJobAction('failed-dump', 'restart', 'cli', { objects: ['shop.items', 'shop.customers', 'shop.items'] });
    expect(view.status).toBe('RESTARTING');
    expect(await store.getCheckpoint('failed-dump', RESTART_OBJECTS_CHECKPOINT)).toEqual(['shop.items', 'shop.customers']);
    const event = (await service.listJobEvents('failed-dump')).find((e) => e.kind === 'action');
    expect(event?.message).toBe('Restart of tables shop.items, shop.customers requested by cli');
    expect(event?.details).toEqual({ objects: ['shop.items', 'shop.customers'] });
    // Job objects are the runner's to reset: the service changed none.
    expect((await service.listJobObjects('failed-dump')).map((o) => o.state)).toEqual(['DUMPED', 'FAILED', 'DUMPED']);

    // A whole Restart later forgets the choice.
    await store.updateJob({ ...(await store.getJob('failed-dump'))!, status: 'FAILED', phase: 'FULL_DUMP' });
    await service.applyJobAction('failed-dump', 'restart', 'cli');
    expect(await store.getCheckpoint('failed-dump', RESTART_OBJECTS_CHECKPOINT)).toBeNull();
  });

  it('is allowed while Running with errors or Stopped in Full dump', async () => {
    for (const [id, status] of [['rwe-dump', 'RUNNING_WITH_ERRORS'], ['stopped-dump', 'STOPPED']] as const) {
      await jobIn(id, status, 'FULL_DUMP', TABLES);
      expect((await service.applyJobAction(id, 'restart', 'test', { objects: ['shop.orders'] })).status).toBe('RESTARTING');
    }
  });

  it('refuses outside Full dump, saying to restart the whole job', async () => {
    for (const [id, status, phase] of [['failed-il', 'FAILED', 'INCREMENTAL_LOAD'], ['rwe-promote', 'RUNNING_WITH_ERRORS', 'PROMOTE']] as const) {
      await jobIn(id, status, phase, TABLES);
      const error = await refusal(service.applyJobAction(id, 'restart', 'test', { objects: ['shop.items'] }));
      expect(error.code).toBe('ACTION_NOT_ALLOWED');
      expect(error.message).toContain('only while the job is in Full dump');
      expect(error.message).toContain(`ferry jobs restart ${id}`);
      expect((await store.getJob(id))?.status).toBe(status);
      expect(await store.getCheckpoint(id, RESTART_OBJECTS_CHECKPOINT)).toBeNull();
    }
    // Stopped in Incremental load has no Restart at all.
    await jobIn('stopped-il', 'STOPPED', 'INCREMENTAL_LOAD', TABLES);
    const stopped = await refusal(service.applyJobAction('stopped-il', 'restart', 'test', { objects: ['shop.items'] }));
    expect(stopped.code).toBe('ACTION_NOT_ALLOWED');
    expect(stopped.details.availableActions).toEqual(['resume', 'promote', 'delete']);
  });

  it('refuses names that are not tables of the job, listing them, and a job without tables yet', async () => {
    await jobIn('unknown', 'FAILED', 'FULL_DUMP', TABLES);
    const unknown = await refusal(service.applyJobAction('unknown', 'restart', 'test', { objects: ['shop.items', 'items', 'shop.Items'] }));
    expect(unknown.code).toBe('INVALID_ARGUMENT');
    expect(unknown.httpStatus).toBe(400);
    expect(unknown.message).toContain('"items", "shop.Items" are not tables of migration job "unknown"');
    expect(unknown.message).toContain('The job\'s tables: shop.customers, shop.items, shop.orders.');
    expect(unknown.details.unknown).toEqual(['items', 'shop.Items']);
    expect((await store.getJob('unknown'))?.status).toBe('FAILED');

    const empty = await refusal(service.applyJobAction('unknown', 'restart', 'test', { objects: [] }));
    expect(empty.code).toBe('INVALID_ARGUMENT');

    await jobIn('no-tables', 'FAILED', 'FULL_DUMP', []);
    const none = await refusal(service.applyJobAction('no-tables', 'restart', 'test', { objects: ['shop.items'] }));
    expect(none.code).toBe('FAILED_PRECONDITION');
    expect(none.message).toContain('restart the whole job (ferry jobs restart no-tables)');
  });

  it('takes tables for restart only', async () => {
    await jobIn('other-action', 'STOPPED', 'INCREMENTAL_LOAD', TABLES);
    const error = await refusal(service.applyJobAction('other-action', 'resume', 'test', { objects: ['shop.items'] }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('Only restart takes a list of tables');
    expect((await store.getJob('other-action'))?.status).toBe('STOPPED');
  });
});
