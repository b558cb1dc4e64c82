/**
 * A continuous MariaDB to PostgreSQL job whose dump is killed (SIGKILL of `ferry serve`) between
 * two tables linked by ON DELETE / ON UPDATE CASCADE, while parents are deleted and moved on the
 * source. The child was copied before the kill; had the restarted dump copied only the parent,
 * at a later position, the stream would skip the parent's deletes in between (already in the
 * parent's copy) and the child would keep the rows those deletes cascaded away on the source.
 * The group is copied again at one position: the destination equals the source after promote.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { seededRng } from '../helpers/cross-workload.js';
import { createJob, createProfile, objectsOf, sleep, waitForJob, type JobObject } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const DATABASE = 'ferry_fk_resume';
const ACCOUNTS = 300_000;

describe('a dump resumed between the tables of a cascade group copies the group again', () => {
  let source: MariadbInstance;
  let destination: TestDatabase;
  let dataDir: string;

  beforeAll(async () => {
    source = await startMariadbInstance({ serverId: 15 });
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_fkres');
    dataDir = makeDataDir('ferry-fkres-');
    const c = await source.connect();
    try {
      // The child is larger and sorts first: one worker copies it before its parent (largest
      // first, and in schema order within a group).
      await c.query(`CREATE DATABASE ${DATABASE}; USE ${DATABASE};
        CREATE TABLE b_accounts (id int PRIMARY KEY, owner varchar(40) NOT NULL, note varchar(200));
        CREATE TABLE a_entries (id int PRIMARY KEY, account_id int, amount decimal(10,2), memo varchar(300),
          CONSTRAINT entries_account FOREIGN KEY (account_id) REFERENCES b_accounts (id) ON DELETE CASCADE ON UPDATE CASCADE);
        SET SESSION sql_log_bin = 0;
        INSERT INTO b_accounts SELECT seq, CONCAT('owner ', seq), REPEAT('n', 100) FROM seq_1_to_${ACCOUNTS};
        INSERT INTO a_entries SELECT seq, 1 + (seq * 7) % ${ACCOUNTS}, seq / 100, REPEAT('m', 250) FROM seq_1_to_${ACCOUNTS};
        SET SESSION sql_log_bin = 1;`);
    } finally {
      await c.end();
    }
  }, 180_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await source?.stop();
    await destination?.drop().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('kill after the child is copied, while the parent copies: after the restart both are copied again; zero differences after promote', async () => {
    let server: FerryServer = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    let client: ApiClient = api(server.url);
    const current = () => client;
    await createProfile(server, 'src', source.params(null));
    await createProfile(server, 'dst', destination.params);
    await createJob(server, 'fkres', { type: 'continuous', source: 'src', destination: 'dst', include: [DATABASE], dumpParallelism: 1 });

    // Deletes and key moves of parents, cascading into the child on the source only (no binlog row).
    const writer = await source.connect(DATABASE);
    const r = seededRng(15);
    let writing = true;
    let writes = 0;
    const errors: string[] = [];
    const loop = (async () => {
      while (writing) {
        const id = 1 + Math.floor(r() * ACCOUNTS);
        try {
          if (r() < 0.6) await writer.query('DELETE FROM b_accounts WHERE id = ?', [id]);
          else await writer.query('UPDATE b_accounts SET id = id + 1000000 WHERE id = ?', [id]);
          writes++;
        } catch (error) {
          if ((error as { errno?: number }).errno !== 1062) errors.push((error as Error).message);
        }
        await sleep(3);
      }
    })();

    try {
      await runCliJson(['jobs', 'start', 'fkres'], { server: server.url });
      const name = (table: string) => `${DATABASE}.${table}`;
      let before: JobObject | undefined;
      for (const deadline = Date.now() + 120_000; ; ) {
        const objects = await objectsOf(client, 'fkres');
        const child = objects.find((o) => o.name === name('a_entries'));
        const parent = objects.find((o) => o.name === name('b_accounts'));
        if (child?.state === 'DUMPED' && parent?.state === 'DUMPING') {
          before = child;
          break;
        }
        if (parent?.state === 'DUMPED') throw new Error(`the parent was copied before the kill could land: ${JSON.stringify(objects)}`);
        if (Date.now() > deadline) {
          const job = await client.getOk<{ status: string; phase: string | null; error: unknown }>('/v1/migrationJobs/fkres');
          throw new Error(`the dump never reached the child copied, parent copying: ${JSON.stringify(objects)}; job ${job.status} ${job.phase ?? ''} ${JSON.stringify(job.error)}`);
        }
        await sleep(20);
      }
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);

      await waitForJob(current, 'fkres', 'Incremental load', (j) => j.phase === 'INCREMENTAL_LOAD', 180_000).catch((error: Error) => {
        // What the restarted server was doing (a CI run once saw the dump stall after both tables were copied).
        throw new Error(`${error.message}\nferry serve output (last 6000 characters):\n${server.output().slice(-6000)}`);
      });
      const after = (await objectsOf(client, 'fkres')).find((o) => o.name === name('a_entries'));
      // Copied again by the attempt after the kill, with its parent, at one position.
      expect(after?.updateTime).not.toBe(before?.updateTime);
      await waitForJob(current, 'fkres', 'changes applied', (j) => (j.replication?.changesApplied ?? 0) > 0, 60_000);
    } finally {
      writing = false;
      await loop;
      await writer.end();
    }
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(0);

    await runCliJson(['jobs', 'promote', 'fkres'], { server: server.url });
    const done = await waitForJob(current, 'fkres', 'Completed', (j) => j.status === 'COMPLETED', 180_000);
    expect(done.error).toBeNull();
    const oracle = await source.connect(DATABASE);
    try {
      const differences = await compareAcrossEngines({ engine: 'mysql', connection: oracle, schema: DATABASE }, { engine: 'postgresql', client: destination.client, schema: DATABASE });
      expect(differences, formatCrossDifferences(differences)).toEqual([]);
    } finally {
      await oracle.end();
    }
    console.log(`mysql-fk-actions-resume: ${writes} parent deletes and key moves during the job`);
    await server.stop();
  }, 420_000);
});
