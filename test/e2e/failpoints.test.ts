/**
 * Exactly once at the dangerous moments, PostgreSQL→PostgreSQL and MySQL/MariaDB→PostgreSQL:
 * `ferry serve` runs with a failpoint armed (FERRY_FAILPOINTS, src/pipeline/failpoints.ts),
 * kills itself with SIGKILL exactly there, and a new server on the same data directory
 * carries on (the next life armed with the next failpoint). Every failpoint fires once per
 * pair: during slot/binlog-position creation, after a table's copy (pause: the test stops
 * the job and kills it), during Restart's wipe, after a table's copy again, between post-data
 * steps, between a destination commit and the acknowledgement, before a destination commit,
 * in the middle of promote.
 *
 * The oracles see double application and loss: an insert-only audit log without a primary key
 * (duplicates allowed: compared as sorted lists, with the source and with what the workload
 * committed) and counters updated with x = x + 1 (each equals the increments committed); a
 * keyed table with key changes and TRUNCATEs compared row for row with the source.
 */
import type { Connection } from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { createJob, createProfile, jobOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const COUNTERS = 5;

/** A source the workload writes to, whatever its engine. */
interface SourceSide {
  run(sql: string): Promise<void>;
  /** The audit log as sorted `event|counter_id` strings. */
  audit(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * One transaction after another: an audit row (every tenth twice: duplicates are allowed), a
 * counter incremented, sometimes an item inserted or its key changed, now and then a
 * TRUNCATE of the items. Counts only what committed.
 */
class OracleWorkload {
  readonly audit: string[] = [];
  readonly increments = new Array<number>(COUNTERS + 1).fill(0);
  readonly errors: string[] = [];
  committed = 0;
  #running = true;
  #loop: Promise<void> = Promise.resolve();

  constructor(private readonly side: SourceSide) {}

  start(): void {
    this.#loop = (async () => {
      for (let i = 1; this.#running; i++) {
        const counter = 1 + (i % COUNTERS);
        const rows = i % 10 === 0 ? 2 : 1;
        try {
          await this.side.run('BEGIN');
          for (let r = 0; r < rows; r++) await this.side.run(`INSERT INTO audit_log (event, counter_id) VALUES ('e${i}', ${counter})`);
          await this.side.run(`UPDATE counters SET x = x + 1 WHERE id = ${counter}`);
          if (i % 3 === 0) await this.side.run(`INSERT INTO items (id, v) VALUES (${i}, 'item ${i}')`);
          if (i % 7 === 0) await this.side.run(`UPDATE items SET id = id + 1000000, v = 'moved' WHERE id = ${i - 6}`);
          await this.side.run('COMMIT');
          for (let r = 0; r < rows; r++) this.audit.push(`e${i}|${counter}`);
          this.increments[counter]!++;
          this.committed++;
          if (i % 120 === 0) await this.side.run('TRUNCATE TABLE items');
        } catch (error) {
          this.errors.push((error as Error).message);
          await this.side.run('ROLLBACK').catch(() => undefined);
        }
        await sleep(3);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

const SCHEMA = (keylessSuffix: string) => [
  `CREATE TABLE audit_log (event varchar(20) NOT NULL, counter_id int NOT NULL)${keylessSuffix}`,
  'CREATE TABLE counters (id int PRIMARY KEY, x int NOT NULL)',
  'CREATE TABLE items (id int PRIMARY KEY, v varchar(40) NOT NULL)',
  `INSERT INTO counters (id, x) VALUES ${Array.from({ length: COUNTERS }, (_, i) => `(${i + 1}, 0)`).join(', ')}`,
  `INSERT INTO audit_log (event, counter_id) VALUES ('seed', 1), ('seed', 1), ('seed', 2)`,
  `INSERT INTO items (id, v) VALUES (0, 'seed')`,
];

interface Pair {
  name: string;
  prefix: string;
  setup(): Promise<{
    side: SourceSide; profile: Parameters<typeof createProfile>[2]; include: string[]; destination: TestDatabase;
    /** PostgreSQL: the position the source's slot holds as confirmed by Ferry. */
    confirmedPosition?: () => Promise<string | null>;
    compare(): Promise<string>; drop(): Promise<void>;
  }>;
}

const pgAudit = async (client: pg.ClientBase, schema: string) =>
  (await client.query<{ r: string }>(`SELECT event || '|' || counter_id AS r FROM ${schema}.audit_log`)).rows.map((r) => r.r).sort();

const PAIRS: Pair[] = [
  {
    name: 'PostgreSQL to PostgreSQL',
    prefix: 'ferry_fpp',
    async setup() {
      const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_fpp');
      const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_fpp');
      for (const sql of SCHEMA('')) await source.client.query(sql);
      await source.client.query('ALTER TABLE audit_log REPLICA IDENTITY FULL');
      const writer = new pg.Client({ ...pgClientConfig(source) });
      await writer.connect();
      return {
        side: { run: async (sql) => void (await writer.query(sql)), audit: () => pgAudit(source.client, 'public'), close: () => writer.end() },
        profile: source.params,
        include: [],
        destination,
        confirmedPosition: async () => (await source.client.query<{ p: string | null }>(`SELECT confirmed_flush_lsn::text AS p FROM pg_replication_slots WHERE database = current_database()`)).rows[0]?.p ?? null,
        async compare() {
          const differences = await compareDatabases(source.client, destination.client);
          return differences.length === 0 ? '' : formatDifferences(differences);
        },
        async drop() {
          await source.drop();
          await destination.drop();
        },
      };
    },
  },
  {
    name: 'MySQL (MariaDB) to PostgreSQL',
    prefix: 'ferry_fpm',
    async setup() {
      const source = await createMysqlTestDatabase('ferry_fpm');
      const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_fpm');
      for (const sql of SCHEMA(' ENGINE=InnoDB')) await source.connection.query(sql);
      const writer: Connection = await connectMysqlAdmin(source.name);
      return {
        side: {
          run: async (sql) => void (await writer.query(sql)),
          audit: async () => {
            const [rows] = await source.connection.query(`SELECT CONCAT(event, '|', counter_id) AS r FROM audit_log`);
            return (rows as Array<{ r: string }>).map((r) => r.r).sort();
          },
          close: () => writer.end(),
        },
        profile: mysqlConnectionParams(null),
        include: [source.name],
        destination,
        async compare() {
          // Tables with a key, row for row (the cross-engine oracle matches rows by key); the audit log below.
          const differences = await compareAcrossEngines(
            { engine: 'mysql', connection: source.connection, schema: source.name },
            { engine: 'postgresql', client: destination.client, schema: source.name },
            { tables: ['counters', 'items'] },
          );
          return differences.length === 0 ? '' : formatCrossDifferences(differences);
        },
        async drop() {
          await source.drop();
          await destination.drop();
        },
      };
    },
  },
];

function pgClientConfig(db: TestDatabase): pg.ClientConfig {
  const p = db.params;
  return { host: p.host, port: p.port, user: p.username, database: p.database as string };
}

/** Waits (at most 60 s) until the server wrote `text`. */
async function waitForOutput(server: FerryServer, text: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; !server.output().includes(text);) {
    if (Date.now() > deadline) throw new Error(`ferry serve did not write "${text}" within 60 s; output:\n${server.output().slice(-3000)}`);
    await sleep(50);
  }
}

afterAll(async () => {
  await stopAllFerryServers();
}, 60_000);

describe.each(PAIRS)('failpoints: $name', (pair) => {
  it('a kill at every failpoint neither loses nor repeats a change: exact audit log and counters after promote', async () => {
    const started = Date.now();
    const env = await pair.setup();
    const dataDir = makeDataDir('ferry-fp-');
    const workload = new OracleWorkload(env.side);
    let server: FerryServer | null = null;
    const lives: string[] = [];
    try {
      let client: ApiClient;
      const live = async (failpoints: string | null) => {
        server = await spawnFerryServer({ dataDir, env: { ...FAST_RETRY_ENV, ...(failpoints === null ? {} : { FERRY_FAILPOINTS: failpoints }) } });
        client = api(server.url);
        lives.push(failpoints ?? 'none');
        return server;
      };
      const current = () => client;
      /** Waits (bounded) until the server killed itself at `point`. */
      const diesAt = async (s: FerryServer, point: string) => {
        const exit = await Promise.race([s.exited, sleep(60_000).then(() => null)]);
        expect(exit, `ferry serve did not die at failpoint ${point} within 60 s; output:\n${s.output().slice(-3000)}`).not.toBeNull();
        expect(exit?.signal).toBe('SIGKILL');
        expect(s.output()).toContain(`failpoint ${point} fired: kill`);
      };
      const jobId = 'fp';
      const run = (args: string[]) => runCliJson(args, { server: (server as FerryServer).url });

      // 1. Killed while the slot (binlog position) is being created, before it is recorded.
      let s = await live('in-create-replication=kill');
      await createProfile(s, 'src', env.profile);
      await createProfile(s, 'dst', env.destination.params);
      await createJob(s, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: env.include, dumpParallelism: 1 });
      workload.start();
      await run(['jobs', 'start', jobId]);
      await diesAt(s, 'in-create-replication');

      // 2. Paused after a table's copy committed, before its state is stored: stopped there, then killed by the test.
      s = await live('after-table-copy=pause');
      await waitForOutput(s, 'failpoint after-table-copy fired: pause');
      await run(['jobs', 'stop', jobId]);
      expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');

      // 3. Stopped in the full dump; killed during Restart's wipe.
      s = await live('during-restart-wipe=kill');
      await waitForJob(current, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
      await run(['jobs', 'restart', jobId]);
      await diesAt(s, 'during-restart-wipe');

      // 4. The wipe resumes and the dump starts over: killed after the second table's copy.
      s = await live('after-table-copy=kill@2');
      await diesAt(s, 'after-table-copy');

      // 5. Killed between post-data steps (indexes done, sequences not set).
      s = await live('between-post-data-steps=kill');
      await diesAt(s, 'between-post-data-steps');

      // 6. Killed between a destination commit and the acknowledgement to the source.
      s = await live('after-destination-commit=kill@3');
      await diesAt(s, 'after-destination-commit');

      // 6b. Killed with a batch applied on the destination but not committed (nor acknowledged).
      // PostgreSQL: paused there first, until the slot hears a newer confirmed position or about
      // 12 s pass (Ferry's status interval is 10 s), so that an acknowledgement sent too early
      // reaches the source before the kill; MySQL is acknowledged to nobody.
      if (env.confirmedPosition === undefined) {
        s = await live('before-destination-commit=kill@4');
        await diesAt(s, 'before-destination-commit');
      } else {
        s = await live('before-destination-commit=pause@4');
        await waitForOutput(s, 'failpoint before-destination-commit fired: pause');
        const atPause = await env.confirmedPosition();
        for (const deadline = Date.now() + 12_000; Date.now() < deadline && (await env.confirmedPosition()) === atPause;) await sleep(200);
        expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');
      }

      // 7. Killed in the middle of promote: caught up to the marker, the slot not dropped yet.
      s = await live('promote-after-catch-up=kill');
      await waitForJob(current, jobId, 'changes applied', (j) => j.phase === 'INCREMENTAL_LOAD' && (j.replication?.changesApplied ?? 0) > 0, 60_000);
      await workload.stop();
      expect(workload.errors, workload.errors.join('\n')).toEqual([]);
      await run(['jobs', 'promote', jobId]);
      await diesAt(s, 'promote-after-catch-up');

      // 8. No failpoint: the promote finishes.
      s = await live(null);
      const done = await waitForJob(current, jobId, 'Completed', (j) => j.status === 'COMPLETED', 90_000);
      expect(done.error).toBeNull();

      // The keyless audit log: the same multiset on both sides, and exactly what the workload committed.
      const committedAudit = [...['seed|1', 'seed|1', 'seed|2'], ...workload.audit].sort();
      const sourceAudit = await env.side.audit();
      const schema = env.include[0] ?? 'public';
      const destinationAudit = await pgAudit(env.destination.client, `"${schema}"`);
      expect(sourceAudit).toEqual(committedAudit);
      expect(destinationAudit.length, 'audit rows on the destination (more: a change applied twice; fewer: one lost)').toBe(committedAudit.length);
      expect(destinationAudit).toEqual(committedAudit);
      // The counters: each equals the increments committed.
      const { rows } = await env.destination.client.query<{ id: number; x: number }>(`SELECT id, x FROM "${schema}".counters ORDER BY id`);
      expect(rows.map((r) => [r.id, r.x])).toEqual(Array.from({ length: COUNTERS }, (_, i) => [i + 1, workload.increments[i + 1]]));
      // The keyed tables (key changes, TRUNCATEs) row for row, and for PostgreSQL everything else.
      expect(await env.compare()).toBe('');
      expect(workload.committed).toBeGreaterThan(50);
      console.log(`failpoints ${pair.name}: lives ${lives.join(' → ')}; ${workload.committed} transactions committed, ${committedAudit.length} audit rows; ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      await workload.stop().catch(() => undefined);
      await (server as FerryServer | null)?.stop().catch(() => undefined);
      await env.side.close().catch(() => undefined);
      await env.drop().catch(() => undefined);
      removeDataDir(dataDir);
    }
  }, 240_000);
});
