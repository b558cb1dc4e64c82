/**
 * A continuous job taken over under a write load, at the runner level, against real PostgreSQL
 * servers and the SQLite store: runner A (lease epoch 1) streams; its lease lapses while it keeps
 * running (a paused node that woke up), and runner B (epoch 2) starts: B raises the destination
 * fence, takes the replication slot over from A's walsender, and continues from the position on
 * the destination. A stops by itself (LEASE_LOST) and the destination ends equal to the source:
 * no change lost, none applied twice (a plain-insert table without a key would show a duplicate).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withStatus } from '../../src/core/migration-job.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { systemClock } from '../../src/pipeline/clock.js';
import type { JobFence } from '../../src/pipeline/job-fence.js';
import { JobRunner, replicationSpecFor, type JobRunnerDeps } from '../../src/pipeline/job-runner.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { createDatabasePair, PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER } from '../helpers/postgres.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('a continuous job taken over by another runner under a write load', () => {
  let store: SqliteMetadataStore;
  let service: MigrationService;
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;
  const engines = new EngineRegistry([postgresEngine]);
  const jobId = `takeover-${randomBytes(3).toString('hex')}`;
  const runners: JobRunner[] = [];

  beforeAll(async () => {
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    // Never started, and no action goes through the service: the runners of this file are the only ones.
    const supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 60_000, probeIntervalMs: 300 },
      resolveConnection: (id) => service.resolveConnection(id),
    }, 500);
    service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    dbs = await createDatabasePair('ferry_takeover_job');
    await dbs.source.client.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
      INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 50) g;
      CREATE TABLE journal (n bigint, note text);
      ALTER TABLE journal REPLICA IDENTITY FULL;
    `);
    const source = await service.createProfile({ id: 'src', displayName: 'Source', engine: 'postgresql', host: PG_HOST, port: PG_SOURCE_PORT, database: dbs.source.params.database, username: PG_USER }, 'test');
    const destination = await service.createProfile({ id: 'dst', displayName: 'Destination', engine: 'postgresql', host: PG_HOST, port: PG_DEST_PORT, database: dbs.destination.params.database, username: PG_USER }, 'test');
    await service.createJob({ id: jobId, displayName: 'Takeover', type: 'continuous', sourceProfileId: source.id, destinationProfileId: destination.id }, 'test');
    const job = await store.getJob(jobId);
    if (job === null) throw new Error('the job was not created');
    await store.updateJob(withStatus(job, 'STARTING', null, systemClock.now()));
  }, 60_000);

  afterAll(async () => {
    for (const runner of runners) await runner.cancel().catch(() => undefined);
    const job = await store?.getJob(jobId);
    if (job !== null && job !== undefined) await postgresEngine.dropReplication(dbs.source.params, replicationSpecFor(job)).catch(() => undefined);
    await store?.close();
    await dbs?.drop();
  }, 60_000);

  const deps: () => JobRunnerDeps = () => ({
    store, clock: systemClock, logger: silentLogger, engines,
    resolveConnection: (id) => service.resolveConnection(id),
    retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 60_000, probeIntervalMs: 300 },
  });
  const rows = async (side: 'source' | 'destination') => {
    const client = dbs[side].client;
    const accounts = (await client.query<{ r: string }>('SELECT a::text AS r FROM accounts a ORDER BY id')).rows.map((r) => r.r);
    const journal = (await client.query<{ r: string }>('SELECT j::text AS r FROM journal j ORDER BY n, note')).rows.map((r) => r.r);
    return { accounts, journal };
  };

  it('the new owner continues from the destination position; the old one stops and the data is exact', async () => {
    let aValid = true;
    const lease = (epoch: number, valid: () => boolean): JobFence => ({ nodeId: `node-${epoch}`, epoch, valid, lost: new AbortController().signal });
    const a = new JobRunner(jobId, deps(), undefined, lease(1, () => aValid));
    runners.push(a);
    await until('the incremental load', async () => (await store.getJob(jobId))?.phase === 'INCREMENTAL_LOAD');

    // The write load: transfers between accounts (updates by key) and journal lines (plain inserts).
    let writing = true;
    let n = 0;
    const load = (async () => {
      while (writing) {
        n++;
        await dbs.source.client.query(`BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = ${1 + (n % 50)}; UPDATE accounts SET balance = balance + 1 WHERE id = ${1 + ((n * 7) % 50)}; INSERT INTO journal VALUES (${n}, 'transfer ${n}'); COMMIT;`);
        await sleep(5);
      }
    })();
    await until('A applying changes', async () => Number((await dbs.destination.client.query('SELECT count(*) AS c FROM journal')).rows[0]?.c) > 20);

    // A's lease lapses while A keeps running (a node that was paused and woke up); B holds the next epoch.
    aValid = false;
    const b = new JobRunner(jobId, deps(), undefined, lease(2, () => true));
    runners.push(b);
    await a.done;
    expect(a.leaseLost).toBe(true);
    await until('B applying changes after the takeover', async () => Number((await dbs.destination.client.query('SELECT count(*) AS c FROM journal')).rows[0]?.c) > n - 5);
    writing = false;
    await load;
    const expected = await rows('source');
    await until('B caught up', async () => JSON.stringify(await rows('destination')) === JSON.stringify(expected));
    expect((await rows('destination')).journal.length).toBe(n);
    const fence = await dbs.destination.client.query(`SELECT epoch::int AS epoch, node_id FROM _ferry.job_fence`);
    expect(fence.rows).toEqual([{ epoch: 2, node_id: 'node-2' }]);
    await b.cancel();
  }, 120_000);
});
