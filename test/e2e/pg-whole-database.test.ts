/**
 * Issue 11, PostgreSQL to PostgreSQL: the whole database, not only its tables. The fixture
 * (test/fixtures/pg-whole-database.sql) holds every object kind of the issue's list: partitioned
 * tables (RANGE with a LIST-sub-partitioned partition, HASH, DEFAULT partitions), inheritance,
 * views, a materialized view, functions, a procedure, a stamp trigger (last_update = now()), an
 * audit trigger, a rule, row-level security, domains, composite/range/enum types, a collation,
 * extensions, comments, owned sequences, function defaults, exclusion and deferrable
 * constraints, an unlogged table, statistics, grants and an event trigger.
 *
 * The oracles, independent of Ferry's code: `pg_dump --schema-only --no-owner` of both sides,
 * normalized (test/helpers/schema-dump.ts), must be equal; compare.ts finds zero differences in
 * the data (every leaf partition, the partitioned parents, inheritance parents with ONLY, the
 * materialized view); the audit and rule-written tables hold exactly the source's rows (no
 * trigger or rule fired on Ferry's writes) and the stamped last_update values are the source's.
 *
 * - verify: a GRANT to a role missing on the destination is a warning naming the role; the job
 *   skips that grant and carries the others;
 * - a one-time job of the fixture;
 * - a continuous job under a concurrent workload (inserts, updates, deletes, rows moving between
 *   partitions, writes that fire the triggers and the rule), with `kill -9` of `ferry serve`
 *   during the dump and during the change stream, then promote. After promote (and after the
 *   one-time job) the triggers and the rule fire on the destination for the application's writes.
 *
 * FERRY_WHOLEDB_SEED changes the workload and the kill moments (default 20261202).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createJob, createProfile, inIncrementalLoad, jobOf, objectsOf, sleep, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, parseJsonOutput, removeDataDir, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';
import { compareSchemas } from '../helpers/schema-dump.js';
import { READER_ROLE, WholeDatabaseWorkload, dropRole, ensureRole, growWholeDatabase, loadWholeDatabase } from '../helpers/whole-database.js';
import { seededRandom } from '../helpers/workload.js';

const SEED = Number(process.env.FERRY_WHOLEDB_SEED ?? 20261202);

interface VerifyReport {
  ok: boolean;
  checks: { code: string; side: string; severity: string; message: string }[];
}

type Pair = Awaited<ReturnType<typeof createDatabasePair>>;

/** The leaf partitions of the fixture (the tables that hold the partitioned tables' rows). */
const LEAF_PARTITIONS = [
  'shop.orders_2023', 'shop.orders_2024_eu', 'shop.orders_2024_us', 'shop.orders_2024_other', 'shop.orders_default',
  'shop.events_p0', 'shop.events_p1', 'shop.events_p2', 'shop.events_p3',
];

async function rowsOf(client: pg.ClientBase, sql: string): Promise<string[]> {
  const { rows } = await client.query<{ r: string }>(sql);
  return rows.map((r) => r.r);
}

/**
 * The three checks of a finished job: the normalized schema dumps are equal, the data is equal
 * (partitions, parents, the materialized view), and nothing fired on Ferry's writes (audit and
 * rule-written rows, stamped last_update values are the source's). Also: nothing of Ferry is left.
 */
async function expectSameDatabase(source: TestDatabase, destination: TestDatabase): Promise<void> {
  const schema = await compareSchemas(source.params, destination.params);
  expect(schema.equal, `pg_dump --schema-only --no-owner, normalized:\n${schema.report}`).toBe(true);

  const differences = await compareDatabases(source.client, destination.client, { materializedViews: true });
  expect(differences, formatDifferences(differences)).toEqual([]);

  const matview = await destination.client
    .query<{ n: string }>(`SELECT count(*)::text AS n FROM shop.monthly_sales`)
    .then((r) => Number(r.rows[0]!.n), (e: Error) => e.message);
  expect(matview, 'the materialized view on the destination is populated and has rows').toBeGreaterThan(0);

  for (const [what, sql] of [
    ['audit rows (the audit trigger must not fire on Ferry\'s writes)', `SELECT count(*)::text AS r FROM shop.audit_log`],
    ['note_log rows (the rule must not fire on Ferry\'s writes)', `SELECT count(*)::text AS r FROM shop.note_log`],
  ] as const) {
    const [a, b] = await Promise.all([rowsOf(source.client, sql), rowsOf(destination.client, sql)]);
    expect(b, what).toEqual(a);
  }
  // The stamped column: the source's values exactly (a BEFORE trigger firing on the destination would stamp its own now()).
  const stamped = `SELECT order_id || ' ' || order_date || ' ' || region || ' ' || to_char(last_update AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS r FROM shop.orders ORDER BY order_id, order_date, region`;
  const [srcStamps, dstStamps] = await Promise.all([rowsOf(source.client, stamped), rowsOf(destination.client, stamped)]);
  expect(dstStamps.length).toBe(srcStamps.length);
  const firstDiff = srcStamps.findIndex((s, i) => s !== dstStamps[i]);
  expect(firstDiff, `last_update differs first at ${srcStamps[firstDiff]} (source) / ${dstStamps[firstDiff]} (destination)`).toBe(-1);

  expect((await destination.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).rows, 'no _ferry schema left on the destination').toEqual([]);
  expect((await source.client.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`)).rows, 'no slot left on the source').toEqual([]);
  expect((await source.client.query(`SELECT pubname FROM pg_publication`)).rows, 'no publication left on the source').toEqual([]);
}

/** The application writes to the destination: the triggers stamp and audit, the rule logs. */
async function expectTriggersFireOnDestination(destination: TestDatabase): Promise<void> {
  const dst = destination.client;
  const lastAudit = (await dst.query<{ m: string }>(`SELECT coalesce(max(audit_id), 0)::text AS m FROM shop.audit_log`)).rows[0]!.m;
  const { rows } = await dst.query<{ order_id: string; last_update: string; ref: string }>(
    `INSERT INTO shop.orders (order_date, region, customer_id, amount, last_update)
     VALUES ('2024-05-05', 'eu', 1, 10, '2000-01-01 00:00:00+00') RETURNING order_id::text, last_update::text, ref`,
  );
  const inserted = rows[0]!;
  const stampedRecently = await dst.query<{ ok: boolean }>(`SELECT $1::timestamptz > now() - interval '1 hour' AS ok`, [inserted.last_update]);
  expect(stampedRecently.rows[0]!.ok, `last_update of a new order on the destination was stamped by the trigger (got ${inserted.last_update})`).toBe(true);
  expect(inserted.ref).toMatch(/^ORD-\d{8}$/);
  const audit = await dst.query(`SELECT operation, order_id::text FROM shop.audit_log WHERE audit_id > $1 ORDER BY audit_id`, [lastAudit]);
  expect(audit.rows, 'the audit trigger wrote one row for the new order on the destination').toEqual([{ operation: 'INSERT', order_id: inserted.order_id }]);
  await dst.query(`INSERT INTO shop.notes (note_id, body) VALUES (999999999, 'after the migration')`);
  const logged = await dst.query(`SELECT logged_by FROM shop.note_log WHERE note_id = 999999999`);
  expect(logged.rows.map((r) => r.logged_by), 'the rule wrote note_log on the destination').toEqual(['rule']);
}

describe('whole PostgreSQL database (issue 11): every schema object, one-time and continuous', () => {
  let dataDir: string;
  let server: FerryServer;
  let client: ApiClient;
  const pairs: Pair[] = [];
  const missingRole = `ferry_src_only_${randomBytes(4).toString('hex')}`;

  const newPair = async (prefix: string) => {
    const pair = await createDatabasePair(prefix);
    pairs.push(pair);
    return pair;
  };

  const restart = async () => {
    server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    client = api(server.url);
  };

  const profilesAndJob = async (pair: Pair, jobId: string, type: 'one-time' | 'continuous'): Promise<void> => {
    await createProfile(server, `${jobId}-src`, pair.source.params);
    await createProfile(server, `${jobId}-dst`, pair.destination.params);
    const job = await createJob(server, jobId, { type, source: `${jobId}-src`, destination: `${jobId}-dst`, include: [], dumpParallelism: 2 });
    expect(job.status).toBe('NOT_STARTED');
  };

  const verify = async (jobId: string): Promise<VerifyReport> => {
    const result = await runCli(['jobs', 'verify', jobId, '--output', 'json'], { server: server.url, timeoutMs: 120_000 });
    return parseJsonOutput<VerifyReport>(result, ['jobs', 'verify', jobId]);
  };

  beforeAll(async () => {
    await ensureRole(PG_SOURCE_PORT, READER_ROLE);
    await ensureRole(PG_DEST_PORT, READER_ROLE);
    dataDir = makeDataDir('ferry-wholedb-');
    await restart();
  }, 60_000);

  afterAll(async () => {
    await stopAllFerryServers();
    for (const pair of pairs) await pair.drop().catch(() => undefined);
    await dropRole(PG_SOURCE_PORT, missingRole).catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 120_000);

  it('verify warns about a GRANT to a role missing on the destination, naming it; the job skips that grant only', async () => {
    const pair = await newPair('ferry_wdbv');
    await ensureRole(PG_SOURCE_PORT, missingRole);
    await pair.source.client.query(`
      CREATE TABLE public.ledger (id integer PRIMARY KEY, amount numeric(10, 2) NOT NULL);
      INSERT INTO public.ledger SELECT g, g * 1.5 FROM generate_series(1, 100) g;
      CREATE VIEW public.ledger_total AS SELECT sum(amount) AS total FROM public.ledger;
      GRANT SELECT ON public.ledger TO ${READER_ROLE};
      GRANT SELECT, UPDATE ON public.ledger TO ${missingRole};
      GRANT SELECT ON public.ledger_total TO ${missingRole}, ${READER_ROLE};`);
    await profilesAndJob(pair, 'wdb-verify', 'one-time');

    const report = await verify('wdb-verify');
    const naming = report.checks.filter((c) => c.message.includes(missingRole));
    expect(naming.length, `a check names the missing role ${missingRole}: ${JSON.stringify(report.checks, null, 2)}`).toBeGreaterThan(0);
    expect(naming.every((c) => c.severity === 'warning'), JSON.stringify(naming)).toBe(true);
    expect(report.checks.filter((c) => c.severity === 'error'), JSON.stringify(report.checks, null, 2)).toEqual([]);
    expect(report.ok).toBe(true);

    await runCliJson(['jobs', 'start', 'wdb-verify'], { server: server.url });
    const done = await waitForJob(() => client, 'wdb-verify', 'Completed', (j) => j.status === 'COMPLETED', 180_000);
    expect(done.error).toBeNull();

    // The grants to the role that exists were carried; those to the missing role are the only difference.
    const schema = await compareSchemas(pair.source.params, pair.destination.params);
    expect(schema.onlyInDestination, schema.report).toEqual([]);
    expect(schema.onlyInSource.sort(), schema.report).toEqual(
      [`GRANT SELECT,UPDATE ON TABLE public.ledger TO ${missingRole};`, `GRANT SELECT ON TABLE public.ledger_total TO ${missingRole};`].sort(),
    );
    const privileges = await pair.destination.client.query<{ ledger: boolean; total: boolean }>(
      `SELECT has_table_privilege($1, 'public.ledger', 'SELECT') AS ledger, has_table_privilege($1, 'public.ledger_total', 'SELECT') AS total`,
      [READER_ROLE],
    );
    expect(privileges.rows[0]).toEqual({ ledger: true, total: true });
    expect(await compareDatabases(pair.source.client, pair.destination.client)).toEqual([]);
  }, 300_000);

  it('one-time job: Completed; the schema dumps, the data, the audit rows and the stamps are the source\'s; then the triggers fire', async () => {
    const pair = await newPair('ferry_wdb1');
    await loadWholeDatabase(pair.source.client);
    await profilesAndJob(pair, 'wdb-once', 'one-time');
    const report = await verify('wdb-once');
    expect(report.checks.filter((c) => c.severity === 'error'), JSON.stringify(report.checks, null, 2)).toEqual([]);
    console.log(`pg-whole-database: verify of the one-time job: ${report.checks.filter((c) => c.severity !== 'info').map((c) => `${c.severity} ${c.code}: ${c.message}`).join(' | ')}`);

    await runCliJson(['jobs', 'start', 'wdb-once'], { server: server.url });
    const done = await waitForJob(() => client, 'wdb-once', 'Completed', (j) => j.status === 'COMPLETED', 300_000);
    expect(done.error).toBeNull();

    const objects = await objectsOf(client, 'wdb-once');
    const names = objects.map((o) => o.name);
    expect(names, `data is copied per leaf partition: ${names.join(', ')}`).toEqual(expect.arrayContaining(LEAF_PARTITIONS));
    expect(objects.filter((o) => o.state !== 'COMPLETED'), JSON.stringify(objects)).toEqual([]);

    await expectSameDatabase(pair.source, pair.destination);
    await expectTriggersFireOnDestination(pair.destination);

    // The whole database is selected: no foreign key references a table left out (those to a
    // partitioned table, and their clones on its partitions, included).
    const falseAlarms = report.checks.filter((c) => c.code === 'FOREIGN_KEY_TO_UNSELECTED_TABLE' && c.severity !== 'ok');
    expect(falseAlarms, 'verify of a whole-database job warns about foreign keys to tables it does select').toEqual([]);
  }, 420_000);

  it('continuous job under a concurrent workload, kill -9 during the dump and the change stream, promote: the same database; then the triggers fire', async () => {
    const rng = seededRandom(SEED);
    const between = (lo: number, hi: number) => Math.round(lo + rng() * (hi - lo));
    const pair = await newPair('ferry_wdbc');
    const { source, destination } = pair;
    await loadWholeDatabase(source.client);
    // A dump of several seconds, so that it can be killed twice.
    await growWholeDatabase(source.client, { events: 500_000, orders: 8_000 });
    await profilesAndJob(pair, 'wdb-cont', 'continuous');
    const report = await verify('wdb-cont');
    expect(report.checks.filter((c) => c.severity === 'error'), JSON.stringify(report.checks, null, 2)).toEqual([]);
    const unlogged = report.checks.filter((c) => c.message.includes('session_cache'));
    expect(unlogged.map((c) => c.severity), `verify warns that the unlogged table's changes do not replicate: ${JSON.stringify(report.checks, null, 2)}`).toContain('warning');

    const workload = new WholeDatabaseWorkload({ connection: source.params, workers: 2, seed: SEED % 100_000, pauseMs: 5 });
    await workload.start();
    const kills: string[] = [];
    let stats: Awaited<ReturnType<WholeDatabaseWorkload['stop']>> | null = null;
    try {
      await runCliJson(['jobs', 'start', 'wdb-cont'], { server: server.url });
      const kill = async (what: string, job: JobView) => {
        const exit = await server.kill('SIGKILL');
        expect(exit.signal).toBe('SIGKILL');
        kills.push(`${what} (${job.status}/${job.phase}/${job.substatus})`);
        await restart();
      };
      const inDump = (j: JobView) => j.status === 'RUNNING' && j.phase !== null && j.phase !== 'INCREMENTAL_LOAD';

      // 1. Early in the dump (while the schema is created or the first tables are copied).
      let job = await waitForJob(() => client, 'wdb-cont', 'the dump to start', (j) => inDump(j) || inIncrementalLoad(j), 120_000);
      await sleep(between(100, 800));
      job = await jobOf(client, 'wdb-cont');
      if (inDump(job)) await kill('early in the dump', job);

      // 2. Once some tables are copied and others are not.
      for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
        job = await jobOf(client, 'wdb-cont');
        if (job.status === 'FAILED') throw new Error(`job failed during the dump: ${JSON.stringify(job.error)}`);
        if (!inDump(job) && job.status !== 'STARTING') break;
        const objects = await objectsOf(client, 'wdb-cont');
        if (inDump(job) && objects.some((o) => o.state === 'DUMPED') && objects.some((o) => o.state === 'DUMPING' || o.state === 'NOT_STARTED')) {
          await kill('mid-dump', job);
          break;
        }
        await sleep(40);
      }
      expect(kills.length, `kills during the dump: ${kills.join('; ')}`).toBeGreaterThanOrEqual(1);

      // 3. During the change stream: three kills at random moments once changes are applied.
      await waitForJob(() => client, 'wdb-cont', 'Incremental load', inIncrementalLoad, 300_000);
      // The applied counter survives restarts: a new server has applied changes once it passes the count at the kill.
      let appliedAtKill = 0;
      for (let k = 0; k < 3; k++) {
        job = await waitForJob(() => client, 'wdb-cont', 'changes applied', (j) => inIncrementalLoad(j) && (j.replication?.changesApplied ?? 0) > appliedAtKill, 120_000);
        await sleep(between(200, 2_500));
        const atKill = await jobOf(client, 'wdb-cont');
        appliedAtKill = atKill.replication?.changesApplied ?? 0;
        await kill(`change stream #${k + 1}`, atKill);
      }
      await waitForJob(() => client, 'wdb-cont', 'changes applied after the last restart', (j) => inIncrementalLoad(j) && (j.replication?.changesApplied ?? 0) > appliedAtKill, 120_000);
      await sleep(1_000);
    } finally {
      stats = await workload.stop();
      console.log(`pg-whole-database: seed ${SEED}; kills: ${kills.join('; ')}; workload ${stats.committed} statements: ${JSON.stringify(stats.ops)}`);
    }
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    expect(stats.committed).toBeGreaterThan(200);
    for (const op of ['insertOrder', 'updateOrder', 'moveOrder', 'changeRegion', 'deleteOrder', 'insertEvent', 'updateEvent', 'moveEvent', 'deleteEvent', 'insertNote', 'insertPageHit', 'insertTruck', 'updateVehicle', 'updateCustomer']) {
      expect(stats.ops[op] ?? 0, `workload op ${op} (ops: ${JSON.stringify(stats.ops)})`).toBeGreaterThan(0);
    }

    // The application's nightly refresh, before the cut-over: the destination refreshes at promote and must hold the same rows.
    await source.client.query(`REFRESH MATERIALIZED VIEW shop.monthly_sales`);
    await runCliJson(['jobs', 'promote', 'wdb-cont'], { server: server.url });
    const final = await waitForJob(() => client, 'wdb-cont', 'Completed after promote', (j) => j.status === 'COMPLETED', 240_000);
    expect(final.error).toBeNull();
    expect(kills.length).toBeGreaterThanOrEqual(4);

    await expectSameDatabase(source, destination);
    await expectTriggersFireOnDestination(destination);
  }, 900_000);
});
