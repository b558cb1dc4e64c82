/**
 * A continuous MySQL/MariaDB to PostgreSQL job whose saved binlog position was purged: the job
 * is stopped in Incremental load, the source rotates and purges its binlogs (FLUSH BINARY
 * LOGS, PURGE BINARY LOGS BEFORE NOW()), and Resume ends in Failed with REPLICATION_SLOT_LOST
 * and a message that says to Restart; Restart copies everything again and, after promote,
 * the destination equals the source.
 *
 * The purge runs on a private MariaDB server started by this file: the main test server's
 * binlog is shared by every test file running in parallel, whose continuous jobs would lose
 * their own positions.
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { CrossWorkload, createMysqlSource } from '../helpers/cross-workload.js';
import { createJob, createProfile, inIncrementalLoad, jobOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const DATABASE = 'ferry_purge';

describe('purged binlogs under a stopped continuous job', () => {
  let mariadb: MariadbInstance;
  let admin: Connection;
  let destination: TestDatabase;
  let server: FerryServer;
  let client: ApiClient;

  beforeAll(async () => {
    [mariadb, destination, server] = await Promise.all([
      startMariadbInstance({ serverId: 7 }),
      createTestDatabase(PG_DEST_PORT, 'ferry_purge'),
      spawnFerryServer({ env: FAST_RETRY_ENV }),
    ]);
    client = api(server.url);
    admin = await mariadb.connect();
    await admin.query(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
    await createMysqlSource(mariadb.params(DATABASE), { seed: 5, allTypes: 100, accounts: 100 });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await admin?.end().catch(() => undefined);
    await mariadb?.stop();
    await destination?.drop().catch(() => undefined);
  }, 120_000);

  it('Resume after the position was purged fails with REPLICATION_SLOT_LOST saying to Restart; Restart recovers', async () => {
    const jobId = 'purge';
    await createProfile(server, 'src', mariadb.params(null));
    await createProfile(server, 'dst', destination.params);
    await createJob(server, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: [DATABASE] });
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(() => client, jobId, 'Incremental load', inIncrementalLoad, 60_000);

    const workload = new CrossWorkload({ engine: 'mysql', connection: mariadb.params(DATABASE), workers: 2, seed: 9, pauseMs: 5, truncateEvery: 30 });
    await workload.start();
    workload.enableTruncate();
    await workload.waitForCommits(200);
    const applying = await waitForJob(() => client, jobId, 'changes applied', (j) => (j.replication?.changesApplied ?? 0) > 0 && j.replication?.appliedPosition != null, 30_000);
    await runCliJson(['jobs', 'stop', jobId], { server: server.url });
    const stopped = await waitForJob(() => client, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
    expect(stopped.substatus).toBe('Stopped in Incremental load');
    // The position the job resumes from is at or after this one, in this file or a later one that the rotations below leave behind.
    const saved = applying.replication?.appliedPosition ?? '';
    expect(saved).toMatch(/^mariadb-bin\.\d+:\d+/);

    // Changes while stopped, then the binlog file of the saved position goes away.
    await sleep(1_000);
    const stats = await workload.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    await admin.query(`INSERT INTO ${DATABASE}.lookup VALUES ('stopped', 'written while stopped')`);
    await admin.query('FLUSH BINARY LOGS');
    await admin.query(`INSERT INTO ${DATABASE}.lookup VALUES ('rotated', 'written after a rotation')`);
    await admin.query('FLUSH BINARY LOGS');
    await sleep(1_100);
    await admin.query('PURGE BINARY LOGS BEFORE NOW()');
    const [logs] = await admin.query('SHOW BINARY LOGS');
    const files = (logs as Array<{ Log_name: string }>).map((l) => l.Log_name);
    const savedFile = saved.split(':')[0] as string;
    expect(files, `binlogs left: ${files.join(', ')}`).not.toContain(savedFile);
    expect(files, 'only the file written since the last rotation is left').toHaveLength(1);

    await runCliJson(['jobs', 'resume', jobId], { server: server.url });
    const failed = await waitForJob(() => client, jobId, 'Failed', (j) => j.status === 'FAILED', 60_000);
    expect(failed.error?.code, JSON.stringify(failed.error)).toBe('REPLICATION_SLOT_LOST');
    expect(failed.error?.message).toMatch(/Restart/);
    expect(failed.error?.message).toMatch(/purged/);
    expect(failed.availableActions).toContain('restart');
    expect(failed.substatus).toBe('Failed in Incremental load');

    // The advice works: Restart copies everything again from a new snapshot.
    await admin.query(`INSERT INTO ${DATABASE}.lookup VALUES ('failed', 'written while failed')`);
    await runCliJson(['jobs', 'restart', jobId], { server: server.url });
    await waitForJob(() => client, jobId, 'Incremental load after Restart', inIncrementalLoad, 120_000);
    await admin.query(`UPDATE ${DATABASE}.lookup SET label = 'after restart' WHERE code = 'failed'`);
    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    const differences = await compareAcrossEngines(
      { engine: 'mysql', connection: admin, schema: DATABASE },
      { engine: 'postgresql', client: destination.client, schema: DATABASE },
    );
    expect(differences, formatCrossDifferences(differences)).toEqual([]);
    console.log(`mysql-binlog-purge: saved position ${saved}; binlogs after the purge: ${files.join(', ')}; error: ${failed.error?.message}; final ${JSON.stringify((await jobOf(client, jobId)).status)}`);
  }, 240_000);
});
