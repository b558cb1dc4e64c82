/**
 * A continuous MariaDB to PostgreSQL job follows its source through a failover: the source is a
 * primary with a replica (two private `mariadbd` servers started here, GTID strict mode,
 * log_slave_updates on the replica), a workload writes on the primary, the primary is killed
 * by its PID, the replica is promoted (STOP SLAVE; RESET SLAVE ALL) and the workload goes on
 * there; the job's source profile is pointed at the replica with `ferry profiles update`, as a
 * user would, and the job carries on by itself: its stream resumes by GTID on the replica, the
 * history says the source server changed, and after a stop and resume on the replica (by the
 * replica's own binlog position) and promote, nothing is lost or applied twice.
 *
 * Oracles: an insert-only table without a primary key (each transaction inserts one row with a
 * unique sequence number: a lost change is a missing number, a repeated one a duplicate row)
 * and a counter table incremented by x = x + 1 in the same transaction (its sum equals the
 * number of rows); then the keyed tables compared across engines.
 *
 * A second test points stopped jobs at a server with an unrelated history and at a replica that
 * stopped receiving before the job applied its last change: each job fails with
 * REPLICATION_SLOT_LOST saying what the server lacks, offering Restart, and nothing of that
 * server reaches the destination.
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, jobOf, sleep, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const DATABASE = 'ferry_failover';
const COUNTERS = 10;
const GTID_ARGS = ['--gtid-strict-mode=ON', '--log-slave-updates=ON'];

/** One writer: each transaction inserts row n into `log` and adds 1 to counter n % COUNTERS. */
class FailoverWorkload {
  private connection: Connection | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  /** Transactions whose COMMIT returned. */
  committed = 0;
  /** Errors while writing to a server that was not being failed over. */
  readonly errors: string[] = [];
  private next = 1;
  private tolerateErrors = false;

  async writeTo(server: MariadbInstance): Promise<void> {
    const connection = await server.connect(DATABASE);
    const [[row]] = (await connection.query('SELECT COALESCE(MAX(n), 0) AS n FROM log')) as unknown as [[{ n: string | number }]];
    this.next = Number(row.n) + 1;
    this.connection = connection;
    this.tolerateErrors = false;
    this.running = true;
    this.loop = this.run(connection);
  }

  /** Stops writing (waits for the transaction in flight). */
  async pause(options: { serverDying?: boolean } = {}): Promise<void> {
    this.tolerateErrors = options.serverDying === true;
    this.running = false;
    await this.loop;
    await this.connection?.end().catch(() => undefined);
    this.connection = null;
  }

  async waitForCommits(count: number, timeoutMs = 60_000): Promise<void> {
    const target = this.committed + count;
    const deadline = Date.now() + timeoutMs;
    while (this.committed < target) {
      if (this.errors.length > 0) throw new Error(`workload failed: ${this.errors.join('; ')}`);
      if (Date.now() > deadline) throw new Error(`workload: ${this.committed}/${target} commits after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  private async run(connection: Connection): Promise<void> {
    while (this.running) {
      const n = this.next;
      try {
        await connection.query('BEGIN');
        await connection.query('INSERT INTO log (n, note) VALUES (?, ?)', [n, `row ${n}`]);
        await connection.query('UPDATE counters SET x = x + 1 WHERE id = ?', [n % COUNTERS]);
        await connection.query('COMMIT');
        this.next++;
        this.committed++;
      } catch (error) {
        if (!this.tolerateErrors) this.errors.push(String(error));
        return;
      }
      await sleep(5);
    }
  }
}

async function gtidBinlogPos(connection: Connection): Promise<string> {
  const [[row]] = (await connection.query('SELECT @@GLOBAL.gtid_binlog_pos AS pos')) as unknown as [[{ pos: string }]];
  return row.pos;
}

/** The position the job's applier stored on the destination. */
async function storedPosition(destination: TestDatabase, jobId: string): Promise<string> {
  // Keyed by the job's replication spec (ferry_<id>_<hash>: unique to this job and start), see destinationKeyOf.
  const key = `ferry_${jobId.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 44)}_%`;
  const result = await destination.client.query('SELECT position FROM _ferry.replication_position WHERE job_id LIKE $1', [key]);
  expect(result.rows.length, 'one position row for the job').toBe(1);
  return String(result.rows[0]?.position ?? '');
}

/** Polls until the job is Running in Incremental load with `ready` true; tolerates Running with errors and recoverable failures meanwhile. */
async function waitForRecovery(client: ApiClient, jobId: string, what: string, ready: (job: JobView) => boolean, timeoutMs = 120_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  for (;;) {
    last = await jobOf(client, jobId);
    if (last.status === 'FAILED' && last.error?.recoverable !== true) throw new Error(`job ${jobId} failed for good while waiting for ${what}: ${JSON.stringify(last.error)}`);
    if (ready(last)) return last;
    if (Date.now() > deadline) throw new Error(`job ${jobId}: timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(250);
  }
}

describe('a continuous MariaDB job across a failover to the replica', () => {
  let primary: MariadbInstance | undefined;
  let replica: MariadbInstance;
  let stranger: MariadbInstance | undefined;
  let replicaAdmin: Connection;
  let destination: TestDatabase;
  let strangerDestination: TestDatabase | undefined;
  let server: FerryServer;
  let client: ApiClient;
  const workload = new FailoverWorkload();

  beforeAll(async () => {
    [primary, replica, destination, server] = await Promise.all([
      startMariadbInstance({ serverId: 11, extraArgs: GTID_ARGS }),
      startMariadbInstance({ serverId: 12, extraArgs: GTID_ARGS }),
      createTestDatabase(PG_DEST_PORT, 'ferry_failover'),
      spawnFerryServer({ env: FAST_RETRY_ENV }),
    ]);
    client = api(server.url);
    const admin = await primary.connect();
    await admin.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
    await admin.query(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
    await admin.query(`
      CREATE TABLE ${DATABASE}.log (n int NOT NULL, note varchar(40) NOT NULL) ENGINE=InnoDB;
      CREATE TABLE ${DATABASE}.counters (id int PRIMARY KEY, x int NOT NULL) ENGINE=InnoDB;
      CREATE TABLE ${DATABASE}.items (id int PRIMARY KEY, name varchar(40), price decimal(10,2), seen datetime(3));
    `);
    await admin.query(`INSERT INTO ${DATABASE}.counters VALUES ${Array.from({ length: COUNTERS }, (_, i) => `(${i}, 0)`).join(', ')}`);
    await admin.query(`INSERT INTO ${DATABASE}.items VALUES (1, 'one', 1.50, '2024-01-02 03:04:05.678'), (2, 'two', 2.00, NULL)`);
    await admin.end();
    replicaAdmin = await replica.connect();
    await replicaAdmin.query(`CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${primary.port}, MASTER_USER = 'repl', MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1`);
    await replicaAdmin.query('START SLAVE');
  }, 180_000);

  afterAll(async () => {
    await workload.pause().catch(() => undefined);
    await stopAllFerryServers();
    await replicaAdmin?.end().catch(() => undefined);
    await Promise.all([primary?.stop(), replica?.stop(), stranger?.stop()]);
    await destination?.drop().catch(() => undefined);
    await strangerDestination?.drop().catch(() => undefined);
  }, 120_000);

  /** Waits until the replica has applied everything the primary binlogged. */
  async function replicaCaughtUp(primaryAdmin: Connection): Promise<string> {
    const target = await gtidBinlogPos(primaryAdmin);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [[row]] = (await replicaAdmin.query('SELECT @@GLOBAL.gtid_slave_pos AS pos')) as unknown as [[{ pos: string }]];
      if (row.pos === target) return target;
      if (Date.now() > deadline) throw new Error(`the replica did not catch up with ${target} in 60 s (at ${row.pos}):\n${replica.log().slice(-2000)}`);
      await sleep(100);
    }
  }

  it('moves to the promoted replica by GTID with no change lost or applied twice', async () => {
    const jobId = 'failover';
    const live = primary as MariadbInstance;
    await createProfile(server, 'src', live.params(null));
    await createProfile(server, 'dst', destination.params);
    await createJob(server, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: [DATABASE] });
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(() => client, jobId, 'Incremental load', inIncrementalLoad, 90_000);

    await workload.writeTo(live);
    await workload.waitForCommits(150);
    const beforeFailover = await waitForJob(() => client, jobId, 'changes applied on the primary', (j) => (j.replication?.transactionsApplied ?? 0) >= 50, 60_000);
    const onPrimary = beforeFailover.replication?.appliedPosition ?? '';
    // Positions carry the GTID state and the server (server_id 11) they were read on.
    expect(onPrimary).toMatch(/^mariadb-bin\.\d+:\d+#0-11-\d+@11$/);

    // The failover: the application stops writing, the replica applies what it received, the
    // primary dies (SIGKILL by PID), the replica is promoted and the application writes there.
    await workload.pause();
    const primaryAdmin = await live.connect();
    const handedOver = await replicaCaughtUp(primaryAdmin);
    await primaryAdmin.end();
    process.kill(live.pid, 'SIGKILL');
    await live.stop();
    primary = undefined;
    await replicaAdmin.query('STOP SLAVE');
    await replicaAdmin.query('RESET SLAVE ALL');
    await workload.writeTo(replica);
    await workload.waitForCommits(100);

    // The job lost its source; the user points the profile at the promoted replica.
    await runCliJson(['profiles', 'update', 'src', '--host', replica.host, '--port', String(replica.port)], { server: server.url });
    const moved = await waitForRecovery(client, jobId, 'changes applied from the replica', (j) =>
      j.status === 'RUNNING' && /@12$/.test(j.replication?.appliedPosition ?? ''), 120_000);
    expect(moved.replication?.appliedPosition).toMatch(/#0-12-\d+@12$/);
    const events = await eventsOf(client, jobId);
    const changed = events.filter((e) => /The source server changed/.test(e.message));
    expect(changed, JSON.stringify(events.map((e) => e.message))).toHaveLength(1);
    expect(changed[0]?.message).toContain('MariaDB server_id 12');
    expect(changed[0]?.message).toContain('it read server 11 before');
    expect(changed[0]?.message).toMatch(/resumed by GTID after 0-11-\d+/);
    await workload.waitForCommits(100);

    // Stop and resume on the replica: this time from the replica's own binlog file and offset,
    // which must be the exact point of the GTID state the position carries.
    await runCliJson(['jobs', 'stop', jobId], { server: server.url });
    await waitForJob(() => client, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
    const saved = await storedPosition(destination, jobId);
    const parsed = /^(.+):(\d+)#(.*)@12$/.exec(saved);
    expect(parsed, saved).not.toBeNull();
    const [[exact]] = (await replicaAdmin.query('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [parsed?.[1], Number(parsed?.[2])])) as unknown as [[{ gtid: string | null }]];
    expect(exact.gtid).toBe(parsed?.[3]);
    await workload.waitForCommits(50);
    await runCliJson(['jobs', 'resume', jobId], { server: server.url });
    await waitForJob(() => client, jobId, 'Incremental load after resume', inIncrementalLoad, 60_000);
    await workload.waitForCommits(50);
    await workload.pause();
    expect(workload.errors).toEqual([]);

    await replicaAdmin.query(`UPDATE ${DATABASE}.items SET name = 'uno', seen = NOW(3) WHERE id = 1`);
    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    // One history event for the one switch: the resume on the replica is not another.
    expect((await eventsOf(client, jobId)).filter((e) => /The source server changed/.test(e.message))).toHaveLength(1);

    // The oracles: every row once, and the counters add up to the rows.
    const [[source]] = (await replicaAdmin.query(`SELECT COUNT(*) AS rows_, COUNT(DISTINCT n) AS distinct_, MAX(n) AS max_, (SELECT SUM(x) FROM ${DATABASE}.counters) AS sum_ FROM ${DATABASE}.log`)) as unknown as [[Record<string, string | number>]];
    const target = (await destination.client.query(`SELECT COUNT(*)::int AS rows_, COUNT(DISTINCT n)::int AS distinct_, MAX(n) AS max_, (SELECT SUM(x)::int FROM ${DATABASE}.counters) AS sum_ FROM ${DATABASE}.log`)).rows[0] as Record<string, number>;
    expect(Number(source.rows_)).toBe(Number(source.max_));
    expect(Number(source.sum_)).toBe(Number(source.rows_));
    expect(target).toEqual({ rows_: Number(source.rows_), distinct_: Number(source.rows_), max_: Number(source.max_), sum_: Number(source.rows_) });
    const differences = await compareAcrossEngines(
      { engine: 'mysql', connection: replicaAdmin, schema: DATABASE },
      { engine: 'postgresql', client: destination.client, schema: DATABASE },
      // The log table has no key to match rows by: the counts above (n = 1..max, each once) compare it.
      { tables: ['counters', 'items'] },
    );
    expect(differences, formatCrossDifferences(differences)).toEqual([]);
    console.log(`mariadb-failover: ${source.rows_} transactions; on the primary ${onPrimary}; handed over at ${handedOver}; on the replica ${moved.replication?.appliedPosition}; stopped at ${saved}`);
  }, 400_000);

  it('refuses a server with an unrelated history and a replica behind the job, saying so and offering Restart', async () => {
    await workload.pause();
    let lagging: MariadbInstance | undefined;
    [stranger, lagging, strangerDestination] = await Promise.all([
      startMariadbInstance({ serverId: 13, extraArgs: GTID_ARGS }),
      startMariadbInstance({ serverId: 14, extraArgs: GTID_ARGS }),
      createTestDatabase(PG_DEST_PORT, 'ferry_failover_b'),
    ]);
    try {
      // The same database and table, written by another server: another GTID history.
      const strangerAdmin = await stranger.connect();
      await strangerAdmin.query(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
      await strangerAdmin.query(`CREATE TABLE ${DATABASE}.counters (id int PRIMARY KEY, x int NOT NULL); INSERT INTO ${DATABASE}.counters VALUES (0, 0)`);
      for (let i = 0; i < 20; i++) await strangerAdmin.query(`UPDATE ${DATABASE}.counters SET x = x + 1`);
      await strangerAdmin.end();
      // A replica of the current primary that stops receiving before the jobs apply their last change.
      const laggingAdmin = await lagging.connect();
      await laggingAdmin.query(`CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${replica.port}, MASTER_USER = 'repl', MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1`);
      await laggingAdmin.query('START SLAVE');

      await createProfile(server, 'dst2', strangerDestination.params);
      for (const jobId of ['stranger', 'behind']) {
        await createProfile(server, `src-${jobId}`, replica.params(null));
        await runCliJson(
          ['jobs', 'create', '--id', jobId, '--type', 'continuous', '--source', `src-${jobId}`, '--destination', 'dst2', '--include', `${DATABASE}.counters`, '--map-schema', `${DATABASE}=${jobId}`],
          { server: server.url },
        );
        await runCliJson(['jobs', 'start', jobId], { server: server.url });
      }
      for (const jobId of ['stranger', 'behind']) await waitForJob(() => client, jobId, 'Incremental load', inIncrementalLoad, 90_000);
      const target = await gtidBinlogPos(replicaAdmin);
      for (let deadline = Date.now() + 60_000; ; await sleep(100)) {
        const [[row]] = (await laggingAdmin.query('SELECT @@GLOBAL.gtid_slave_pos AS pos')) as unknown as [[{ pos: string }]];
        if (row.pos === target) break;
        if (Date.now() > deadline) throw new Error(`the lagging replica did not catch up with ${target}: ${row.pos}`);
      }
      await laggingAdmin.query('STOP SLAVE');
      await laggingAdmin.end();
      await replicaAdmin.query(`UPDATE ${DATABASE}.counters SET x = x + 1 WHERE id = 1`);
      const [expected] = (await replicaAdmin.query(`SELECT id, x FROM ${DATABASE}.counters ORDER BY id`)) as unknown as [Array<{ id: number; x: number }>];
      for (const jobId of ['stranger', 'behind']) {
        await waitForJob(() => client, jobId, 'the last change applied', (j) => (j.replication?.changesApplied ?? 0) > 0, 60_000);
        await runCliJson(['jobs', 'stop', jobId], { server: server.url });
        await waitForJob(() => client, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
      }

      const refusals: Record<string, string> = {};
      for (const [jobId, to, serverId, why] of [
        ['stranger', stranger, 13, /no transaction of server 12 in replication domain 0/],
        ['behind', lagging, 14, /only up to 0-12-\d+, but the destination already has 0-12-\d+: the server was promoted before it received every transaction the job applied/],
      ] as const) {
        await runCliJson(['profiles', 'update', `src-${jobId}`, '--port', String(to.port)], { server: server.url });
        await runCliJson(['jobs', 'resume', jobId], { server: server.url });
        const failed = await waitForJob(() => client, jobId, 'Failed', (j) => j.status === 'FAILED', 60_000);
        expect(failed.error?.code, JSON.stringify(failed.error)).toBe('REPLICATION_SLOT_LOST');
        expect(failed.error?.message).toContain(`MariaDB server_id ${serverId}`);
        expect(failed.error?.message).toContain('does not have the history this job applied');
        expect(failed.error?.message).toMatch(why);
        expect(failed.error?.message).toMatch(/Restart/);
        expect(failed.availableActions).toContain('restart');
        // Nothing of the other server reached the destination: it holds what the job applied before.
        const rows = (await strangerDestination.client.query(`SELECT id, x FROM ${jobId}.counters ORDER BY id`)).rows;
        expect(rows).toEqual(expected.map((r) => ({ id: Number(r.id), x: Number(r.x) })));
        refusals[jobId] = failed.error?.message ?? '';
      }
      console.log(`mariadb-failover: refused: ${JSON.stringify(refusals, null, 1)}`);
    } finally {
      await lagging?.stop();
    }
  }, 300_000);
});
