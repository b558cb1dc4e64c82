/**
 * Restart safety of continuous jobs to a MySQL/MariaDB destination, end to end, for
 * PostgreSQL to MariaDB and MariaDB to MariaDB: `ferry serve` is killed with SIGKILL (by its
 * PID) twice during the full dump (each time after a table was newly copied, while others
 * still wait) and once more while the table without a primary key is being copied, twice at seeded random moments while changes stream, and once right after the
 * promote request, while a concurrent workload writes to the source; after each kill a new
 * server starts on the same data directory and the job carries on by itself.
 *
 * Besides the typed tables of cross-workload.ts (whose appliers are idempotent, so a replayed
 * change leaves no trace there), the source has two oracles that do see double application:
 * - `audit_log`, insert-only and without a primary key, with identical rows on purpose: a
 *   replayed insert adds a row, a lost one misses one (compared as a multiset);
 * - `counters`, updated with `x = x + 1`: each counter's final value must equal the increments
 *   the workload committed; a replayed update shows as a larger value even though the row's
 *   key is the same.
 * After promote the destination equals the source (the cross-engine comparer, or its raw
 * byte comparison between two MariaDB servers), and both oracles equal what was committed.
 *
 * FERRY_CRASH_SEED changes the kill moments (default 20261202).
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { compareAcrossEngines, formatCrossDifferences, type CrossSide } from '../helpers/compare-cross.js';
import { OracleWriter, auditRowCount, mysqlWriter, oracleSchemaSql, postgresWriter, waitForStreamedAuditRows, type SourceWriter } from '../helpers/crash-oracles.js';
import { CrossWorkload, createMysqlSource, createPostgresSource, seededRng } from '../helpers/cross-workload.js';
import { createJob, createProfile, eventsOf, jobOf, objectsOf, sleep, waitForJob, watchCopiedTables, type JobObject, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import { PG_SOURCE_PORT, createTestDatabase } from '../helpers/postgres.js';

const SEED = Number(process.env.FERRY_CRASH_SEED ?? 20261202);
const BULK_TABLES = ['bulk_a', 'bulk_b', 'bulk_c'];
const BULK_ROWS = 80_000;
/** Rows of audit_log before the job starts (so that its own copy takes a moment). */
const AUDIT_ROWS = 200_000;
const ORACLES = { counters: 20, auditRows: AUDIT_ROWS };
const DUMP_KILLS = 2;
const STREAMING_KILLS = 2;

interface Scenario {
  name: string;
  jobId: string;
  sourceProfile: ConnectionParams;
  destinationProfile: ConnectionParams;
  include: string;
  source: CrossSide;
  destination: CrossSide;
  workload: CrossWorkload;
  oracleWriter: () => Promise<SourceWriter>;
  /** No other job replicates into the destination server: Ferry's `_ferry` database must be gone after promote. */
  destinationAlone: boolean;
  /** Checks after Completed that are particular to the source engine (slots, publications). */
  afterCompleted?: () => Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
const summary: string[] = [];

/** Kills during the dump, the stream and the promote; then the comparisons. See the file comment. */
async function runKills(s: Scenario): Promise<void> {
  const started = Date.now();
  const rng = seededRng(SEED);
  const between = (lo: number, hi: number) => Math.round(lo + rng() * (hi - lo));
  const dataDir = makeDataDir(`ferry-${s.jobId}-`);
  cleanups.push(async () => removeDataDir(dataDir));
  let server: FerryServer = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
  let client: ApiClient = api(server.url);
  const current = () => client;
  await createProfile(server, 'src', s.sourceProfile);
  await createProfile(server, 'dst', s.destinationProfile);
  // One table at a time: the dump lasts long enough to be killed between tables.
  await createJob(server, s.jobId, { type: 'continuous', source: 'src', destination: 'dst', include: [s.include], dumpParallelism: 1 });

  const oracle = new OracleWriter(await s.oracleWriter(), seededRng(SEED + 1), ORACLES);
  let stopped = false;
  const stopWriters = async () => {
    if (stopped) return null;
    stopped = true;
    const [stats] = await Promise.all([s.workload.stop(), oracle.stop()]);
    return stats;
  };
  cleanups.push(async () => void (await stopWriters()));
  await s.workload.start();
  oracle.start();
  await runCliJson(['jobs', 'start', s.jobId], { server: server.url });

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
  /** One more kill while the keyless audit_log is being copied: its copy must start over, not add to the rows already in. */
  let auditKilled = false;
  const shortName = (o: JobObject) => o.name.split('.')[1];
  while (dumpKills < DUMP_KILLS || !auditKilled) {
    const [job, objects] = await Promise.all([jobOf(client, s.jobId), objectsOf(client, s.jobId)]);
    if (job.status === 'FAILED') throw new Error(`job failed during the dump: ${JSON.stringify(job.error)}`);
    if (job.phase !== null && job.phase !== 'FULL_DUMP') break;
    checkKept(objects);
    const fresh = objects.filter((o) => o.state === 'DUMPED' && !kept.has(o.name));
    const betweenTables = dumpKills < DUMP_KILLS && fresh.length > 0 && objects.some((o) => o.state === 'DUMPING' || o.state === 'NOT_STARTED');
    const auditCopying = !auditKilled && objects.some((o) => shortName(o) === 'audit_log' && o.state === 'DUMPING');
    if (betweenTables || auditCopying) {
      await sleep(betweenTables ? between(0, 200) : between(0, 50));
      const latest = await objectsOf(client, s.jobId);
      const dumped = latest.filter((o) => o.state === 'DUMPED');
      if ((await jobOf(client, s.jobId)).phase !== 'FULL_DUMP') break;
      const dumping = latest.filter((o) => o.state === 'DUMPING').map(shortName);
      await killAndRestart(`dump (DUMPED: ${dumped.map(shortName).join(', ')}; DUMPING: ${dumping.join(', ') || 'none'})`);
      if (betweenTables) dumpKills++;
      if (dumping.includes('audit_log')) auditKilled = true;
      for (const o of dumped) if (!kept.has(o.name)) kept.set(o.name, o.updateTime);
      // The new server took the job back up. A retryable error of the servers themselves (seen: the
      // shared MariaDB losing one of its temporary files in /tmp) shows as Running with errors while Ferry retries.
      const after = await jobOf(client, s.jobId);
      expect(after.status === 'RUNNING' || (after.status === 'RUNNING_WITH_ERRORS' && after.error?.retryable === true), JSON.stringify(after)).toBe(true);
      continue;
    }
    if (Date.now() > dumpDeadline) throw new Error(`the dump made no progress: ${JSON.stringify(objects)}`);
    await sleep(20);
  }
  expect(dumpKills, `kills between tables during the dump (${kills.join('; ')})`).toBe(DUMP_KILLS);
  expect(auditKilled, `a kill while audit_log (no primary key) was being copied (${kills.join('; ')})`).toBe(true);

  const incremental = await waitForJob(current, s.jobId, 'Incremental load after the dump-time kills', (j) => j.phase === 'INCREMENTAL_LOAD', 180_000);
  expect(incremental.status).toBe('RUNNING');
  checkKept(await objectsOf(client, s.jobId));
  expect(violations, violations.join('\n')).toEqual([]);
  s.workload.enableTruncate();

  // 2. Kills while changes stream, at random moments: sometimes right after the restart, sometimes once changes flow.
  // The last kill always waits until the stream applied audit rows (waitForStreamedAuditRows says why).
  let auditAtKill = await auditRowCount(s.destination);
  for (let k = 0; k < STREAMING_KILLS; k++) {
    if (k < STREAMING_KILLS - 1 && rng() < 0.3) {
      await sleep(between(0, 1_500));
    } else {
      await waitForJob(current, s.jobId, 'changes applied after the restart', (j) => (j.replication?.changesApplied ?? 0) > 0, 60_000);
      if (k === STREAMING_KILLS - 1) await waitForStreamedAuditRows(s.destination, auditAtKill);
      await sleep(between(200, 2_500));
    }
    auditAtKill = await auditRowCount(s.destination);
    const job = await jobOf(client, s.jobId);
    if (job.status === 'FAILED') throw new Error(`job failed during streaming: ${JSON.stringify(job.error)}`);
    expect(job.phase).toBe('INCREMENTAL_LOAD');
    await killAndRestart(`streaming #${k + 1} (${job.replication?.changesApplied ?? 0} changes applied by that server)`);
  }

  await waitForJob(current, s.jobId, 'changes applied under the last server', (j) => (j.replication?.changesApplied ?? 0) > 0, 60_000);
  const stats = await stopWriters();
  expect(stats?.errors, stats?.errors.join('\n')).toEqual([]);
  expect(oracle.errors, oracle.errors.join('\n')).toEqual([]);
  expect(oracle.committed).toBeGreaterThan(0);
  for (const op of ['changeAllTypesKey', 'deleteAllTypes', 'multiTableTransaction', 'rolledBackTransaction', 'transfer', 'changeAccountKey', 'truncate']) {
    expect(stats?.ops[op] ?? 0, op).toBeGreaterThan(0);
  }

  // 3. Promote, killed right after the request.
  await runCliJson(['jobs', 'promote', s.jobId], { server: server.url });
  const promoting: JobView = await jobOf(client, s.jobId);
  await killAndRestart(`promote (${promoting.status}, promoteRequested ${promoting.promoteRequested})`);
  const completed = await waitForJob(current, s.jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
  expect(completed.error).toBeNull();
  const events = await eventsOf(client, s.jobId);
  expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
  expect(events.filter((e) => e.status === 'FAILED').map((e) => e.message)).toEqual([]);
  const objects = await objectsOf(client, s.jobId);
  expect(objects.every((o) => o.state === 'COMPLETED'), JSON.stringify(objects)).toBe(true);
  await s.afterCompleted?.();
  if (s.destination.engine === 'mysql') {
    // The job's bookkeeping on the destination (position, parked tables) is gone; the whole `_ferry` database when no other job uses the server.
    const [databases] = await s.destination.connection.query(`SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_ferry'`);
    if (s.destinationAlone) expect(databases, 'the _ferry database is dropped from a destination no job replicates into').toEqual([]);
    const [tables] = await s.destination.connection.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ferry'`);
    for (const { name } of tables as Array<{ name: string }>) {
      const [rows] = await s.destination.connection.query(`SELECT * FROM \`_ferry\`.\`${name}\` WHERE job_id = ?`, [s.jobId]);
      expect(rows, `_ferry.${name} keeps nothing of the promoted job`).toEqual([]);
    }
  }

  // The oracles: no change lost, none applied twice.
  const differences = await oracle.differences(s.source, s.destination);
  expect(differences, differences.join('\n')).toEqual([]);
  const compared = Date.now();
  const crossDifferences = await compareAcrossEngines(s.source, s.destination);
  expect(crossDifferences, formatCrossDifferences(crossDifferences)).toEqual([]);
  summary.push(
    `${s.name}: seed ${SEED}; ${kills.length} kills: ${kills.join('; ')}; workload committed ${stats?.committed}, rolled back ${stats?.rolledBack}; ` +
      `oracle transactions ${oracle.committed}; compared in ${((Date.now() - compared) / 1000).toFixed(1)} s; ${((Date.now() - started) / 1000).toFixed(0)} s in all`,
  );
  await server.stop();
}

describe('kill -9 of ferry serve during continuous jobs to MariaDB (dump, stream, promote)', () => {
  let privateMariadb: MariadbInstance;

  beforeAll(async () => {
    privateMariadb = await startMariadbInstance({ serverId: 7 });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await privateMariadb?.stop();
    if (summary.length > 0) console.log(`mysql-destination-crash:\n${summary.join('\n')}`);
  }, 120_000);

  it('the cross-engine comparer compares a table without a primary key as a multiset: a duplicated or a missing row is a difference', async () => {
    const a = await createMysqlTestDatabase('ferry_mdkms');
    const b = await createMysqlTestDatabase('ferry_mdkms');
    cleanups.push(() => a.drop(), () => b.drop());
    for (const db of [a, b]) await db.connection.query(`CREATE TABLE log (n int, note varchar(10)); INSERT INTO log VALUES (1, 'x'), (1, 'x'), (2, NULL)`);
    const side = (db: typeof a): CrossSide => ({ engine: 'mysql', connection: db.connection, schema: db.name });
    expect(await compareAcrossEngines(side(a), side(b), { tables: ['log'] })).toEqual([]);
    await b.connection.query(`INSERT INTO log VALUES (1, 'x')`);
    const extra = await compareAcrossEngines(side(a), side(b), { tables: ['log'] });
    expect(extra.map((d) => d.kind).sort(), formatCrossDifferences(extra)).toEqual(['extra-row', 'row-count']);
    await b.connection.query(`DELETE FROM log WHERE n = 1 LIMIT 2; INSERT INTO log VALUES (2, NULL)`);
    const swapped = await compareAcrossEngines(side(a), side(b), { tables: ['log'] });
    expect(swapped.map((d) => d.kind).sort(), formatCrossDifferences(swapped)).toEqual(['extra-row', 'missing-row']);
  });

  it('PostgreSQL to MariaDB: kills during the dump, the stream and the promote; nothing lost, nothing applied twice', async () => {
    const db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_p2mkill');
    cleanups.push(() => db.drop());
    const schema = `ferry_p2mkill_${randomBytes(4).toString('hex')}`;
    // Without the generated column: the PostgreSQL change stream does not carry it (a test of its own in mysql-migrations).
    await createPostgresSource(db.client, schema, { seed: SEED % 1000, generated: false });
    await db.client.query(`SET search_path = "${schema}"; ${oracleSchemaSql('postgresql', ORACLES)}`);
    for (const table of BULK_TABLES) {
      await db.client.query(
        `CREATE TABLE "${schema}".${table} (id int PRIMARY KEY, n int NOT NULL, label varchar(60), amount numeric(12,2), at timestamp(3), note text);
         INSERT INTO "${schema}".${table} SELECT g, g * 7 % 1000, 'row ' || g || ' of ${table}', g / 100.0, timestamp '2024-01-01' + g * interval '1 second', repeat(chr(65 + g % 26), g % 200)
           FROM generate_series(1, ${BULK_ROWS}) g`,
      );
    }
    await db.client.query('RESET search_path');
    const mysqlAdmin: Connection = await connectMysqlAdmin();
    cleanups.push(async () => {
      await mysqlAdmin.query(`DROP DATABASE IF EXISTS \`${schema}\``).catch(() => undefined);
      await mysqlAdmin.end().catch(() => undefined);
    });
    await runKills({
      name: 'postgres-to-mariadb',
      jobId: 'p2mkill',
      sourceProfile: db.params,
      destinationProfile: mysqlConnectionParams(null),
      include: schema,
      source: { engine: 'postgresql', client: db.client, schema },
      destination: { engine: 'mysql', connection: mysqlAdmin, schema },
      workload: new CrossWorkload({ engine: 'postgresql', connection: db.params, schema, workers: 2, seed: SEED % 997, pauseMs: 4, truncateEvery: 40 }),
      oracleWriter: () => postgresWriter(db.params, schema),
      // Other test files' jobs replicate into the shared server.
      destinationAlone: false,
      afterCompleted: async () => {
        const slots = await db.client.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
        expect(slots.rows, 'no slot is left on the source').toEqual([]);
        expect((await db.client.query(`SELECT pubname FROM pg_publication`)).rows, 'no publication is left on the source').toEqual([]);
      },
    });
  }, 420_000);

  it('MariaDB to MariaDB: kills during the dump, the stream and the promote; nothing lost, nothing applied twice', async () => {
    const source = await createMysqlTestDatabase('ferry_m2mkill');
    cleanups.push(() => source.drop());
    await createMysqlSource(source.params, { seed: SEED % 1000 });
    // The large tables and the initial audit rows are written without binlog: nobody reads
    // these rows from it (the job starts later), and the binlog is shared with every other test file.
    await source.connection.query(`SET SESSION sql_log_bin = 0; ${oracleSchemaSql('mysql', ORACLES)}`);
    for (const table of BULK_TABLES) {
      await source.connection.query(
        `CREATE TABLE ${table} (id int NOT NULL PRIMARY KEY, n int NOT NULL, label varchar(60), amount decimal(12,2), at datetime(3), note text) ENGINE=InnoDB;
         INSERT INTO ${table} SELECT seq, seq * 7 % 1000, CONCAT('row ', seq, ' of ${table}'), seq / 100, '2024-01-01 00:00:00' + INTERVAL seq SECOND, REPEAT(CHAR(65 + seq % 26), seq % 200) FROM seq_1_to_${BULK_ROWS}`,
      );
    }
    await source.connection.query('SET SESSION sql_log_bin = 1');
    const destination = await privateMariadb.connect();
    cleanups.push(() => destination.end());
    await runKills({
      name: 'mariadb-to-mariadb',
      jobId: 'm2mkill',
      sourceProfile: mysqlConnectionParams(null),
      destinationProfile: privateMariadb.params(null),
      include: source.name,
      source: { engine: 'mysql', connection: source.connection, schema: source.name },
      destination: { engine: 'mysql', connection: destination, schema: source.name },
      workload: new CrossWorkload({ engine: 'mysql', connection: source.params, workers: 2, seed: SEED % 997, pauseMs: 4, truncateEvery: 40 }),
      oracleWriter: () => mysqlWriter(source.name),
      destinationAlone: true,
    });
  }, 420_000);
});
