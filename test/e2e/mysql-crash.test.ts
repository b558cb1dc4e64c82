/**
 * Restart safety of a continuous MySQL/MariaDB to PostgreSQL job, end to end: `ferry serve` is
 * killed with SIGKILL (by its PID) during the full dump (each time after a table was newly
 * copied, while others still wait) and at seeded random moments during binlog streaming,
 * while a concurrent workload writes to the source (the typed tables of cross-workload.ts,
 * and inserts, updates and deletes on the large tables while they are being copied). After
 * each kill a new server starts on the same data directory and the job carries on by itself.
 * After promote the destination equals the source value for value (the cross-engine oracle):
 * no change lost, none applied twice; tables copied before a kill were not copied again.
 * Every keyed table's applier is idempotent (a replayed change leaves no trace), so the source
 * also has the oracles of crash-oracles.ts: a keyless insert-only audit log with duplicate rows,
 * compared as a multiset with what was committed (a change applied twice adds a row), and
 * counters updated with x = x + 1.
 *
 * FERRY_CRASH_SEED changes the kill moments (default 20241125).
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { OracleWriter, auditRowCount, mysqlWriter, oracleSchemaSql, waitForStreamedAuditRows } from '../helpers/crash-oracles.js';
import { CrossWorkload, createMysqlSource, seededRng } from '../helpers/cross-workload.js';
import { createJob, createProfile, eventsOf, jobOf, objectsOf, sleep, waitForJob, watchCopiedTables, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams, type MysqlTestDatabase } from '../helpers/mysql.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const SEED = Number(process.env.FERRY_CRASH_SEED ?? 20241125);
const BULK_TABLES = ['bulk_a', 'bulk_b', 'bulk_c', 'bulk_d'];
const BULK_ROWS = 150_000;
const STREAMING_KILLS = 4;
const ORACLES = { counters: 20, auditRows: 20_000 };

/** Inserts, updates and deletes on the large tables (keys above BULK_ROWS for inserts), until stopped. */
class BulkWriter {
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  writes = 0;
  errors: string[] = [];

  constructor(private readonly connection: Connection, private readonly seed: number) {}

  start(): void {
    const r = seededRng(this.seed);
    let next = BULK_ROWS + 1;
    this.loop = (async () => {
      while (this.running) {
        const table = BULK_TABLES[Math.floor(r() * BULK_TABLES.length)] as string;
        const id = 1 + Math.floor(r() * BULK_ROWS);
        const roll = r();
        try {
          if (roll < 0.4) await this.connection.query(`UPDATE ${table} SET n = n + 1, label = CONCAT('changed ', n), at = NOW(3) WHERE id = ?`, [id]);
          else if (roll < 0.7) await this.connection.query(`INSERT INTO ${table} (id, n, label, amount, at, note) VALUES (?, ?, 'inserted', 1.25, NOW(3), REPEAT('x', 50))`, [next++, id]);
          else if (roll < 0.85) await this.connection.query(`DELETE FROM ${table} WHERE id = ?`, [id]);
          else await this.connection.query(`UPDATE ${table} SET id = id + 10000000 WHERE id = ?`, [id]);
          this.writes++;
        } catch (error) {
          // A key moved or deleted twice is fine; anything else is not.
          const e = error as { errno?: number; message: string };
          if (e.errno !== 1062) this.errors.push(e.message);
        }
        await sleep(2);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

describe('kill -9 of ferry serve during a continuous MySQL to PostgreSQL job', () => {
  let source: MysqlTestDatabase;
  let destination: TestDatabase;
  let bulkConnection: Connection;
  let dataDir: string;
  let workload: CrossWorkload | null = null;
  let bulkWriter: BulkWriter | null = null;
  let oracle: OracleWriter | null = null;

  beforeAll(async () => {
    const started = Date.now();
    source = await createMysqlTestDatabase('ferry_mcrash');
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_mcrash');
    await createMysqlSource(source.params, { seed: SEED % 1000 });
    // The large tables are written without binlog: nobody reads these rows from it (the job
    // starts later), and the binlog is shared with every other test file.
    await source.connection.query('SET SESSION sql_log_bin = 0');
    await source.connection.query(oracleSchemaSql('mysql', ORACLES));
    for (const table of BULK_TABLES) {
      await source.connection.query(
        `CREATE TABLE ${table} (id int NOT NULL PRIMARY KEY, n int NOT NULL, label varchar(60), amount decimal(12,2), at datetime(3), note text) ENGINE=InnoDB`,
      );
      await source.connection.query(
        `INSERT INTO ${table} SELECT seq, seq * 7 % 1000, CONCAT('row ', seq, ' of ${table}'), seq / 100, '2024-01-01 00:00:00' + INTERVAL seq SECOND, REPEAT(CHAR(65 + seq % 26), seq % 200) FROM seq_1_to_${BULK_ROWS}`,
      );
    }
    await source.connection.query('SET SESSION sql_log_bin = 1');
    bulkConnection = await connectMysqlAdmin(source.name);
    dataDir = makeDataDir('ferry-mcrash-');
    console.log(`mysql-crash: source built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  afterAll(async () => {
    await workload?.stop().catch(() => undefined);
    await bulkWriter?.stop().catch(() => undefined);
    await oracle?.stop().catch(() => undefined);
    await stopAllFerryServers();
    await bulkConnection?.end().catch(() => undefined);
    await source?.drop().catch(() => undefined);
    await destination?.drop().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 120_000);

  it('survives kills during the dump and during binlog streaming: after promote the destination equals the source', async () => {
    const rng = seededRng(SEED);
    const between = (lo: number, hi: number) => Math.round(lo + rng() * (hi - lo));
    const jobId = 'mcrash';
    let server: FerryServer = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    let client: ApiClient = api(server.url);
    const current = () => client;
    await createProfile(server, 'src', mysqlConnectionParams(null));
    await createProfile(server, 'dst', destination.params);
    // One table at a time: the dump lasts long enough to be killed between tables.
    await createJob(server, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: [source.name], dumpParallelism: 1 });

    workload = new CrossWorkload({ engine: 'mysql', connection: source.params, workers: 2, seed: SEED % 997, pauseMs: 4, truncateEvery: 40 });
    await workload.start();
    bulkWriter = new BulkWriter(bulkConnection, SEED);
    bulkWriter.start();
    oracle = new OracleWriter(await mysqlWriter(source.name), seededRng(SEED + 1), ORACLES);
    oracle.start();
    await runCliJson(['jobs', 'start', jobId], { server: server.url });

    const kills: string[] = [];
    const killAndRestart = async (what: string) => {
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      kills.push(what);
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);
    };

    // 1. Kills during the dump: each once one more table is DUMPED while others still wait.
    const { kept, violations, check: checkKept } = watchCopiedTables();
    const dumpDeadline = Date.now() + 120_000;
    let dumpKills = 0;
    while (dumpKills < 2) {
      const [job, objects] = await Promise.all([jobOf(client, jobId), objectsOf(client, jobId)]);
      if (job.status === 'FAILED') throw new Error(`job failed during the dump: ${JSON.stringify(job.error)}`);
      if (job.phase !== null && job.phase !== 'FULL_DUMP') break;
      checkKept(objects);
      const fresh = objects.filter((o) => o.state === 'DUMPED' && !kept.has(o.name));
      if (fresh.length > 0 && objects.some((o) => o.state === 'DUMPING' || o.state === 'NOT_STARTED')) {
        await sleep(between(0, 300));
        const latest = await objectsOf(client, jobId);
        const dumped = latest.filter((o) => o.state === 'DUMPED');
        if ((await jobOf(client, jobId)).phase !== 'FULL_DUMP') break;
        await killAndRestart(`dump (DUMPED: ${dumped.map((o) => o.name.split('.')[1]).join(', ')})`);
        dumpKills++;
        for (const o of dumped) if (!kept.has(o.name)) kept.set(o.name, o.updateTime);
        const after = await jobOf(client, jobId);
        expect(after.status, JSON.stringify(after)).toBe('RUNNING');
        continue;
      }
      if (Date.now() > dumpDeadline) throw new Error(`the dump made no progress: ${JSON.stringify(objects)}`);
      await sleep(30);
    }
    expect(dumpKills, `kills during the dump (${kills.join('; ')})`).toBeGreaterThanOrEqual(1);

    const incremental = await waitForJob(current, jobId, 'Incremental load after the dump-time kills', (j) => {
      return j.phase === 'INCREMENTAL_LOAD';
    }, 180_000);
    expect(incremental.status).toBe('RUNNING');
    checkKept(await objectsOf(client, jobId));
    expect(violations, violations.join('\n')).toEqual([]);
    workload.enableTruncate();

    // 2. Kills during binlog streaming, at random moments: sometimes right after the restart, sometimes once changes flow.
    // The applied counter survives restarts: a new server has applied changes once it passes the count at the kill.
    // The last kill always waits until the stream applied audit rows (waitForStreamedAuditRows says why).
    let appliedAtKill = 0;
    const destinationSide = { engine: 'postgresql', client: destination.client, schema: source.name } as const;
    let auditAtKill = await auditRowCount(destinationSide);
    for (let k = 0; k < STREAMING_KILLS; k++) {
      if (k < STREAMING_KILLS - 1 && rng() < 0.3) {
        await sleep(between(0, 1_500));
      } else {
        await waitForJob(current, jobId, 'changes applied after the restart', (j) => (j.replication?.changesApplied ?? 0) > appliedAtKill, 60_000);
        if (k === STREAMING_KILLS - 1) await waitForStreamedAuditRows(destinationSide, auditAtKill);
        await sleep(between(200, 2_500));
      }
      auditAtKill = await auditRowCount(destinationSide);
      const job = await jobOf(client, jobId);
      if (job.status === 'FAILED') throw new Error(`job failed during streaming: ${JSON.stringify(job.error)}`);
      expect(job.phase).toBe('INCREMENTAL_LOAD');
      appliedAtKill = job.replication?.changesApplied ?? 0;
      await killAndRestart(`streaming #${k + 1} (${job.replication?.changesApplied ?? 0} changes applied in all, ${auditAtKill} audit rows on the destination)`);
    }

    await waitForJob(current, jobId, 'changes applied under the last server', (j) => (j.replication?.changesApplied ?? 0) > appliedAtKill, 60_000);
    const stats = await workload.stop();
    workload = null;
    await bulkWriter.stop();
    await oracle.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    expect(oracle.errors, oracle.errors.join('\n')).toEqual([]);
    expect(oracle.committed).toBeGreaterThan(0);
    expect(bulkWriter.errors, bulkWriter.errors.join('\n')).toEqual([]);
    for (const op of ['changeAllTypesKey', 'deleteAllTypes', 'multiTableTransaction', 'rolledBackTransaction', 'transfer']) {
      expect(stats.ops[op] ?? 0, op).toBeGreaterThan(0);
    }

    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed: JobView = await waitForJob(current, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 180_000);
    expect(completed.error).toBeNull();
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
    expect(events.filter((e) => e.status === 'FAILED').map((e) => e.message)).toEqual([]);

    // The oracles: no change lost, none applied twice.
    const sourceSide = { engine: 'mysql', connection: source.connection, schema: source.name } as const;
    const oracleDifferences = await oracle.differences(sourceSide, destinationSide);
    expect(oracleDifferences, oracleDifferences.join('\n')).toEqual([]);
    const compared = Date.now();
    const differences = await compareAcrossEngines(
      { engine: 'mysql', connection: source.connection, schema: source.name },
      { engine: 'postgresql', client: destination.client, schema: source.name },
    );
    expect(differences, formatCrossDifferences(differences)).toEqual([]);
    console.log(
      `mysql-crash: seed ${SEED}; ${kills.length} kills: ${kills.join('; ')}; workload committed ${stats.committed}, rolled back ${stats.rolledBack}; ` +
        `${bulkWriter.writes} writes to the large tables; ${oracle.committed} oracle transactions; compared in ${((Date.now() - compared) / 1000).toFixed(1)} s`,
    );
    await server.stop();
  }, 480_000);

  it('a TRUNCATE of a table the dump has not reached yet (its snapshot can no longer read it) neither stops ferry serve nor loses rows', async () => {
    // One dump worker reads every table from one snapshot: the large table first, then `small`,
    // which a TRUNCATE (a new table in InnoDB) made unreadable for that snapshot: MySQL error
    // 1412 "Table definition has changed".
    const db = await createMysqlTestDatabase('ferry_mtrunc');
    const pgDb = await createTestDatabase(PG_DEST_PORT, 'ferry_mtrunc');
    const server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    const client = api(server.url);
    try {
      await db.connection.query(`SET SESSION sql_log_bin = 0;
        CREATE TABLE big (id int PRIMARY KEY, note varchar(100));
        INSERT INTO big SELECT seq, REPEAT('x', 100) FROM seq_1_to_400000;
        SET SESSION sql_log_bin = 1;
        CREATE TABLE small (id int PRIMARY KEY, v varchar(10));
        INSERT INTO small VALUES (1, 'before'), (2, 'before');`);
      await createProfile(server, 'src', mysqlConnectionParams(null));
      await createProfile(server, 'dst', pgDb.params);
      await createJob(server, 'trunc', { type: 'continuous', source: 'src', destination: 'dst', include: [db.name], dumpParallelism: 1 });
      await runCliJson(['jobs', 'start', 'trunc'], { server: server.url });
      for (const deadline = Date.now() + 60_000; ; ) {
        const objects = await objectsOf(client, 'trunc');
        if (objects.find((o) => o.name === `${db.name}.big`)?.state === 'DUMPING') break;
        if (Date.now() > deadline) throw new Error(`big never reached DUMPING: ${JSON.stringify(objects)}`);
        await sleep(10);
      }
      await db.connection.query(`TRUNCATE TABLE small; INSERT INTO small VALUES (3, 'after')`);
      const exitedEarly = Promise.race([server.exited.then((e) => e), sleep(60_000).then(() => null)]);
      const reached = await Promise.race([
        waitForJob(() => client, 'trunc', 'Incremental load', (j) => j.phase === 'INCREMENTAL_LOAD' || j.status === 'FAILED', 60_000),
        exitedEarly.then((exit) => {
          if (exit !== null) throw new Error(`ferry serve exited (${JSON.stringify(exit)}) after the TRUNCATE. Its last output:\n${server.output().slice(-3000)}`);
          return null;
        }),
      ]);
      // null would mean the race ended without the job reaching either state: that is a failure too.
      expect(reached, 'the job reached neither Incremental load nor Failed').not.toBeNull();
      expect(reached?.phase).toBe('INCREMENTAL_LOAD');
      expect(reached?.error ?? null).toBeNull();
      await runCliJson(['jobs', 'promote', 'trunc'], { server: server.url });
      await waitForJob(() => client, 'trunc', 'Completed', (j) => j.status === 'COMPLETED', 60_000);
      const differences = await compareAcrossEngines(
        { engine: 'mysql', connection: db.connection, schema: db.name },
        { engine: 'postgresql', client: pgDb.client, schema: db.name },
      );
      expect(differences, formatCrossDifferences(differences)).toEqual([]);
    } finally {
      await server.stop();
      await db.drop();
      await pgDb.drop();
    }
  }, 180_000);
});
