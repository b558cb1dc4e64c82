/**
 * MySQL/MariaDB migrations end to end, through the CLI and the REST API of a real
 * `ferry serve`, for each pair with a MySQL side: MySQL to PostgreSQL, MySQL to MySQL (into a
 * private MariaDB server started by this file: the destination keeps the source's database
 * names) and PostgreSQL to MySQL. For each pair:
 * - a one-time job over a schema covering every row of docs/type-mapping.md for its direction
 *   (MySQL to MySQL: every MySQL type; zero dates kept; spatial types have their own file,
 *   test/e2e/spatial.test.ts) ends Completed and the destination equals the source;
 * - a continuous job started under a concurrent workload (inserts, updates of some or every
 *   column, primary key changes, deletes, multi-table transactions, rollbacks, TRUNCATE; parent
 *   key changes and deletes with their child rows) reaches Incremental load, applies changes,
 *   and after Promote the destination equals the source value for value and its counters
 *   (sequences / AUTO_INCREMENT) are past every key.
 * "Equals" is the cross-engine oracle of test/helpers/compare-cross.ts, with the documented
 * mappings; a test shows it reports a single differing value with both values.
 * Also: verify refuses the types a direction cannot carry (PostgreSQL arrays, ranges,
 * interval, time with time zone, composite types to MySQL) with UNSUPPORTED_TYPE naming the
 * columns, and accepts MySQL spatial columns in both directions with a MySQL source; changes made by cascading foreign keys
 * (which MySQL does not write to its binlog) and generated columns of a PostgreSQL source
 * (which pgoutput does not send) reach the destination of a continuous job.
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { canonicalJson, canonicalNumber, compareAcrossEngines, formatCrossDifferences, normalizeValue, type CrossSide } from '../helpers/compare-cross.js';
import { CrossWorkload, createMysqlSource, createPostgresSource, type CrossWorkloadStats } from '../helpers/cross-workload.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, jobOf, objectsOf, sleep, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createTestDatabase } from '../helpers/postgres.js';

type Pair = 'mysql-to-postgres' | 'mysql-to-mysql' | 'postgres-to-mysql';

interface Side {
  /** Profile params (MySQL: no database; the job's selection names it). */
  profile: ConnectionParams;
  /** The oracle's view. */
  oracle: CrossSide;
  drop(): Promise<void>;
}

interface SourceSide extends Side {
  /** The job's include pattern: the MySQL database or the PostgreSQL schema. */
  include: string;
  workload(seed: number): CrossWorkload;
}

const cleanups: Array<() => Promise<void>> = [];

async function mysqlSource(prefix: string, seed: number): Promise<SourceSide> {
  const db = await createMysqlTestDatabase(prefix);
  cleanups.push(() => db.drop());
  await createMysqlSource(db.params, { seed });
  const side: SourceSide = {
    profile: mysqlConnectionParams(null),
    oracle: { engine: 'mysql', connection: db.connection, schema: db.name },
    include: db.name,
    workload: (s) => new CrossWorkload({ engine: 'mysql', connection: db.params, workers: 3, seed: s, pauseMs: 3, truncateEvery: 40 }),
    drop: () => db.drop(),
  };
  return side;
}

async function postgresSource(prefix: string, seed: number, generated = true): Promise<SourceSide> {
  const db = await createTestDatabase(PG_SOURCE_PORT, prefix);
  cleanups.push(() => db.drop());
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  await createPostgresSource(db.client, schema, { seed, generated });
  const side: SourceSide = {
    profile: db.params,
    oracle: { engine: 'postgresql', client: db.client, schema },
    include: schema,
    workload: (s) => new CrossWorkload({ engine: 'postgresql', connection: db.params, schema, workers: 3, seed: s, pauseMs: 3, truncateEvery: 40 }),
    drop: () => db.drop(),
  };
  return side;
}

async function postgresDestination(prefix: string, schema: string): Promise<Side> {
  const db = await createTestDatabase(PG_DEST_PORT, prefix);
  const side: Side = { profile: db.params, oracle: { engine: 'postgresql', client: db.client, schema }, drop: () => db.drop() };
  cleanups.push(side.drop);
  return side;
}

/** A MySQL destination: the main server, or a private one; the database `schema` is Ferry's to create (dropped afterwards). */
async function mysqlDestination(schema: string, instance: MariadbInstance | null): Promise<Side> {
  const connection: Connection = instance === null ? await connectMysqlAdmin() : await instance.connect();
  const side: Side = {
    profile: instance === null ? mysqlConnectionParams(null) : instance.params(null),
    oracle: { engine: 'mysql', connection, schema },
    async drop() {
      await connection.query(`DROP DATABASE IF EXISTS \`${schema}\``).catch(() => undefined);
      await connection.end().catch(() => undefined);
    },
  };
  cleanups.push(side.drop);
  return side;
}

async function expectEqual(source: CrossSide, destination: CrossSide): Promise<void> {
  const differences = await compareAcrossEngines(source, destination);
  expect(differences, formatCrossDifferences(differences)).toEqual([]);
}

/** The tables with an auto-increment key and the next value each side would give. */
async function nextKeys(side: CrossSide): Promise<Map<string, { next: bigint; max: bigint }>> {
  const out = new Map<string, { next: bigint; max: bigint }>();
  if (side.engine === 'mysql') {
    const [rows] = await side.connection.query(
      `SELECT t.TABLE_NAME AS name, t.AUTO_INCREMENT AS next, c.COLUMN_NAME AS col FROM information_schema.TABLES t
         JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.EXTRA LIKE '%auto_increment%'
        WHERE t.TABLE_SCHEMA = ?`,
      [side.schema],
    );
    for (const row of rows as Array<{ name: string; next: string | null; col: string }>) {
      const [maxRows] = await side.connection.query(`SELECT MAX(\`${row.col}\`) AS m FROM \`${side.schema}\`.\`${row.name}\``);
      const max = (maxRows as Array<{ m: string | null }>)[0]?.m;
      out.set(row.name, { next: BigInt(row.next ?? 0), max: BigInt(max ?? 0) });
    }
    return out;
  }
  const { rows } = await side.client.query<{ name: string; col: string; seq: string }>(
    `SELECT c.relname AS name, a.attname AS col, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS seq
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind = 'r' AND pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) IS NOT NULL`,
    [side.schema],
  );
  for (const row of rows) {
    const state = await side.client.query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text, is_called FROM ${row.seq}`);
    const max = await side.client.query<{ m: string | null }>(`SELECT max("${row.col}")::text AS m FROM "${side.schema}"."${row.name}"`);
    const s = state.rows[0]!;
    // Several sequences per table (PostgreSQL serial columns): keep the primary key's (the first found for id).
    if (out.has(row.name) && row.col !== 'id') continue;
    out.set(row.name, { next: BigInt(s.last_value) + (s.is_called ? 1n : 0n), max: BigInt(max.rows[0]?.m ?? 0) });
  }
  return out;
}

/** After promote, each destination counter gives a key past every key of its table (and, MySQL to MySQL, the source's exact counter). */
async function expectCountersPastKeys(pair: Pair, source: CrossSide, destination: CrossSide): Promise<string> {
  const [src, dst] = await Promise.all([nextKeys(source), nextKeys(destination)]);
  const lines: string[] = [];
  expect(dst.size, `auto-increment tables on the destination: ${[...dst.keys()].join(', ')}`).toBeGreaterThan(0);
  for (const [table, s] of src) {
    const d = dst.get(table);
    lines.push(`${table}: source next ${s.next} (max ${s.max}), destination next ${d?.next} (max ${d?.max})`);
    expect(d, `${table} has a counter on the destination`).toBeDefined();
    if (d === undefined) continue;
    if (pair === 'mysql-to-mysql') {
      expect(d.next, `${table}: AUTO_INCREMENT as on the source`).toBe(s.next);
      continue;
    }
    // numeric(20,0) keys above bigint's range: the sequence stops at bigint's maximum (docs/type-mapping.md).
    if (d.max > 9223372036854775807n) continue;
    expect(d.next > d.max, `${table}: the destination counter ${d.next} is past its largest key ${d.max}`).toBe(true);
    expect(d.next >= s.next || s.next > 9223372036854775807n, `${table}: destination next ${d.next} >= source next ${s.next}`).toBe(true);
  }
  return lines.join('; ');
}

function expectWorkloadExercisedEverything(stats: CrossWorkloadStats): void {
  expect(stats.errors, stats.errors.join('\n')).toEqual([]);
  for (const op of ['insertAllTypes', 'updateAllTypes', 'updateAllTypesEveryColumn', 'changeAllTypesKey', 'deleteAllTypes', 'transfer',
    'multiTableTransaction', 'rolledBackTransaction', 'changeAccountKey', 'deleteAccount', 'truncate']) {
    expect(stats.ops[op] ?? 0, `workload operation ${op}: ${JSON.stringify(stats.ops)}`).toBeGreaterThan(0);
  }
}

describe('MySQL/MariaDB migrations through ferry serve', () => {
  let server: FerryServer;
  let client: ApiClient;
  let privateMariadb: MariadbInstance;
  const workloads: CrossWorkload[] = [];
  const summary: string[] = [];

  beforeAll(async () => {
    [server, privateMariadb] = await Promise.all([spawnFerryServer({ env: FAST_RETRY_ENV }), startMariadbInstance({ serverId: 3 })]);
    client = api(server.url);
  });

  afterAll(async () => {
    await Promise.allSettled(workloads.map((w) => w.stop()));
    const exit = await Promise.race([server?.exited, sleep(0).then(() => null)]);
    if (exit) console.log(`ferry serve exited during the tests (${JSON.stringify(exit)}); its last output:\n${server.output().slice(-6000)}`);
    await stopAllFerryServers();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await privateMariadb?.stop();
    if (summary.length > 0) console.log(`mysql-migrations:\n${summary.join('\n')}`);
  }, 120_000);

  async function sides(pair: Pair, tag: string, seed: number): Promise<{ source: SourceSide; destination: Side }> {
    if (pair === 'postgres-to-mysql') {
      // Continuous: without the generated column (a test of its own below).
      const source = await postgresSource(`ferry_p2m${tag}`, seed, tag !== 'c');
      return { source, destination: await mysqlDestination(source.include, null) };
    }
    const source = await mysqlSource(`ferry_${pair === 'mysql-to-mysql' ? 'm2m' : 'm2p'}${tag}`, seed);
    const destination = pair === 'mysql-to-mysql' ? await mysqlDestination(source.include, privateMariadb) : await postgresDestination(`ferry_m2p${tag}`, source.include);
    return { source, destination };
  }

  async function profilesFor(jobId: string, source: SourceSide, destination: Side): Promise<{ src: string; dst: string }> {
    await createProfile(server, `${jobId}-src`, source.profile);
    await createProfile(server, `${jobId}-dst`, destination.profile);
    return { src: `${jobId}-src`, dst: `${jobId}-dst` };
  }

  async function runOneTime(pair: Pair, seed: number): Promise<{ source: SourceSide; destination: Side }> {
    const started = Date.now();
    const { source, destination } = await sides(pair, 'o', seed);
    const jobId = `once-${pair}`;
    const profiles = await profilesFor(jobId, source, destination);
    await createJob(server, jobId, { type: 'one-time', source: profiles.src, destination: profiles.dst, include: [source.include] });
    const verify = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string }> }>(`/v1/migrationJobs/${jobId}:verify`);
    expect(verify.ok, JSON.stringify(verify.checks.filter((c) => c.severity === 'error'))).toBe(true);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    const objects = await objectsOf(client, jobId);
    expect(objects.length).toBeGreaterThanOrEqual(4);
    expect(objects.every((o) => o.state === 'COMPLETED'), JSON.stringify(objects)).toBe(true);
    await expectEqual(source.oracle, destination.oracle);
    summary.push(`${pair} one-time: ${objects.length} tables, ${objects.reduce((n, o) => n + o.rowsCopied, 0)} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { source, destination };
  }

  async function runContinuous(pair: Pair, seed: number): Promise<void> {
    const started = Date.now();
    const { source, destination } = await sides(pair, 'c', seed);
    const jobId = `cont-${pair}`;
    const profiles = await profilesFor(jobId, source, destination);
    await createJob(server, jobId, { type: 'continuous', source: profiles.src, destination: profiles.dst, include: [source.include] });

    const workload = source.workload(seed);
    workloads.push(workload);
    await workload.start();
    await workload.waitForCommits(30);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const running = await waitForJob(() => client, jobId, 'Running (Incremental load)', inIncrementalLoad, 120_000);
    expect(running.error).toBeNull();
    const reachedIncremental = Date.now();
    workload.enableTruncate();

    // The workload keeps writing while changes stream; the job stays Running without errors.
    let last: JobView = running;
    while (Date.now() - reachedIncremental < 8_000) {
      last = await jobOf(client, jobId);
      if (last.error !== null || last.status !== 'RUNNING') throw new Error(`job ${jobId} during incremental load: ${JSON.stringify(last)}`);
      await sleep(500);
    }
    const stats = await workload.stop();
    const stoppedAt = Date.now();
    expectWorkloadExercisedEverything(stats);
    const applied = await waitForJob(() => client, jobId, 'changes applied', (j) => (j.replication?.changesApplied ?? 0) > 0, 30_000);
    expect(applied.replication?.transactionsApplied).toBeGreaterThan(0);

    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
    expect(events.filter((e) => e.status === 'FAILED' || e.status === 'RUNNING_WITH_ERRORS').map((e) => e.message)).toEqual([]);

    const promoted = Date.now();
    await expectEqual(source.oracle, destination.oracle);
    const counters = await expectCountersPastKeys(pair, source.oracle, destination.oracle);
    summary.push(
      `${pair} continuous: ${((Date.now() - started) / 1000).toFixed(1)} s (Incremental load after ${((reachedIncremental - started) / 1000).toFixed(1)} s, ` +
        `promote ${((promoted - stoppedAt) / 1000).toFixed(1)} s after the workload stopped); workload committed ${stats.committed}, rolled back ${stats.rolledBack}, ` +
        `conflicts ${stats.conflicts}; changes applied ${completed.replication?.changesApplied ?? last.replication?.changesApplied}; counters: ${counters}`,
    );
  }

  it('the oracle normalizes per the documented mappings', () => {
    expect(normalizeValue('bool', 'mysql', '5')).toBe(normalizeValue('bool', 'postgresql', 't'));
    expect(normalizeValue('bool', 'mysql', '0')).toBe(normalizeValue('bool', 'postgresql', 'f'));
    expect(normalizeValue('bytes', 'mysql', '00FF5C')).toBe(normalizeValue('bytes', 'postgresql', '\\x00ff5c'));
    expect(normalizeValue('timestamptz', 'mysql', '2038-01-19 03:14:07.120')).toBe(normalizeValue('timestamptz', 'postgresql', '2038-01-19 03:14:07.12+00'));
    expect(normalizeValue('set', 'mysql', 'x,z')).toBe(normalizeValue('set', 'postgresql', '{x,z}'));
    expect(normalizeValue('set', 'mysql', '')).toBe(normalizeValue('set', 'postgresql', '{}'));
    expect(normalizeValue('date', 'mysql', '0000-00-00')).toBeNull();
    expect(normalizeValue('date', 'mysql', '2024-02-31')).toBeNull();
    expect(normalizeValue('date', 'mysql', '0000-03-01')).toBe(normalizeValue('date', 'postgresql', '0001-03-01 BC'));
    expect(normalizeValue('time', 'mysql', '-838:59:59.90')).toBe(normalizeValue('time', 'postgresql', '-838:59:59.9'));
    expect(normalizeValue('char', 'postgresql', 'ab   ')).toBe(normalizeValue('char', 'mysql', 'ab'));
    expect(normalizeValue('float4', 'mysql', '16777216')).toBe(normalizeValue('float4', 'postgresql', '1.6777216e+07'));
    expect(canonicalNumber('1.50')).toBe(canonicalNumber('0001.5'));
    expect(canonicalNumber('-0.000')).toBe(canonicalNumber('0'));
    expect(canonicalJson('{"b": 1,  "a": [1, 2.50], "a": 3}')).toBe(canonicalJson('{"a":3,"b":1}'));
    expect(canonicalJson('{"x": 1e2}')).toBe(canonicalJson('{"x":100}'));
    // Different values stay different.
    expect(normalizeValue('bool', 'mysql', '0')).not.toBe(normalizeValue('bool', 'postgresql', 't'));
    expect(normalizeValue('time', 'mysql', '-01:00:00')).not.toBe(normalizeValue('time', 'postgresql', '01:00:00'));
    expect(canonicalJson('[1, 2]')).not.toBe(canonicalJson('[2, 1]'));
  });

  it('MySQL to PostgreSQL, one-time: every type of the table; the oracle reports a single changed value with both values', async () => {
    const { source, destination } = await runOneTime('mysql-to-postgres', 101);
    // Zero dates became NULL: the job's history says so, naming the column.
    const { events } = await client.getOk<{ events: Array<{ message: string; details?: { code?: string } }> }>('/v1/migrationJobs/once-mysql-to-postgres/events');
    const warnings = events.filter((e) => e.details?.code === 'VALUE_CHANGED').map((e) => e.message);
    expect(warnings.some((w) => /all_types\.dt\b.*zero or invalid date.*NULL/.test(w)), JSON.stringify(warnings)).toBe(true);
    // The oracle fails when one value differs, and names the table, key, column and both values.
    const pg = destination.oracle as Extract<CrossSide, { engine: 'postgresql' }>;
    const { rows } = await pg.client.query<{ id: string; v: string | null }>(`SELECT id::text, v FROM "${pg.schema}".all_types WHERE v IS NOT NULL ORDER BY id LIMIT 1 OFFSET 5`);
    const target = rows[0]!;
    await pg.client.query(`UPDATE "${pg.schema}".all_types SET v = v || '!' WHERE id = $1`, [target.id]);
    const differences = await compareAcrossEngines(source.oracle, destination.oracle);
    expect(differences).toHaveLength(1);
    expect(differences[0]).toMatchObject({ kind: 'value', table: `${pg.schema}.all_types`, key: `id=${target.id}`, column: 'v', source: target.v, destination: `${target.v}!` });
    expect(formatCrossDifferences(differences)).toContain(`source ${JSON.stringify(target.v)}`);
    // A missing row and a row only on the destination are differences too.
    await pg.client.query(`UPDATE "${pg.schema}".all_types SET v = $2 WHERE id = $1`, [target.id, target.v]);
    await pg.client.query(`UPDATE "${pg.schema}".all_types SET id = id + 5000000 WHERE id = $1`, [target.id]);
    const moved = await compareAcrossEngines(source.oracle, destination.oracle);
    expect(moved.map((d) => d.kind).sort()).toEqual(['extra-row', 'missing-row']);
    await pg.client.query(`UPDATE "${pg.schema}".all_types SET id = id - 5000000 WHERE id > 5000000`);
    await expectEqual(source.oracle, destination.oracle);
  });

  it('MySQL to PostgreSQL, continuous under a concurrent workload: after promote the destination equals the source', async () => {
    await runContinuous('mysql-to-postgres', 202);
  }, 240_000);

  it('MySQL to MySQL, one-time: every MySQL type kept exactly, zero dates included', async () => {
    const { destination } = await runOneTime('mysql-to-mysql', 303);
    const mysqlSide = destination.oracle as Extract<CrossSide, { engine: 'mysql' }>;
    const [zero] = await mysqlSide.connection.query(`SELECT COUNT(*) AS n FROM \`${mysqlSide.schema}\`.all_types WHERE dt = '0000-00-00' OR dtm = '0000-00-00 00:00:00'`);
    expect(Number((zero as Array<{ n: string }>)[0]?.n)).toBeGreaterThan(0);
  });

  it('MySQL to MySQL, continuous under a concurrent workload: after promote the destination equals the source', async () => {
    await runContinuous('mysql-to-mysql', 404);
  }, 240_000);

  it('PostgreSQL to MySQL, one-time: every type of the table', async () => {
    await runOneTime('postgres-to-mysql', 505);
  });

  it('PostgreSQL to MySQL, continuous under a concurrent workload: after promote the destination equals the source', async () => {
    await runContinuous('postgres-to-mysql', 606);
  }, 240_000);

  it('MySQL source, continuous: foreign keys with actions (not in the binlog) are carried, and refused only when their referenced table is not copied; one-time jobs copy them', async () => {
    // MySQL writes the rows changed by ON DELETE / ON UPDATE actions to no binlog: Ferry keeps
    // these foreign keys on the destination during the stream (mysql-real-schema-to-*.test.ts
    // prove the cascades), which needs the referenced table in the job.
    const source = await createMysqlTestDatabase('ferry_cascade');
    cleanups.push(() => source.drop());
    await source.connection.query(`
      CREATE TABLE parents (id int PRIMARY KEY, name varchar(20));
      CREATE TABLE children (id int PRIMARY KEY, parent_id int, note varchar(20),
        CONSTRAINT children_parent FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE CASCADE ON UPDATE CASCADE);
      CREATE TABLE orphans (id int PRIMARY KEY, parent_id int,
        CONSTRAINT orphans_parent FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE SET NULL);
      INSERT INTO parents SELECT seq, CONCAT('parent ', seq) FROM seq_1_to_10;
      INSERT INTO children SELECT seq, (seq + 1) DIV 2, 'child' FROM seq_1_to_20;
      INSERT INTO orphans SELECT seq, seq FROM seq_1_to_10;`);
    const pgDestination = await postgresDestination('ferry_cascade', source.name);
    await createProfile(server, 'cascade-src', mysqlConnectionParams(null));
    await createProfile(server, 'cascade-pg', pgDestination.profile);
    type Report = { ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> };
    await createJob(server, 'cascade-m2p', { type: 'continuous', source: 'cascade-src', destination: 'cascade-pg', include: [source.name] });
    const carried = await client.postOk<Report>('/v1/migrationJobs/cascade-m2p:verify');
    const check = carried.checks.find((c) => c.code === 'FOREIGN_KEY_ACTIONS');
    expect(check?.severity).toBe('ok');
    expect(check?.objects?.sort()).toEqual([`${source.name}.children.children_parent`, `${source.name}.orphans.orphans_parent`]);
    expect(carried.checks.find((c) => c.code === 'FOREIGN_KEY_ORPHANS')?.severity).toBe('ok');

    // Without the referenced table, its deletes never reach the destination: refused, naming the key and the fix.
    await createJob(server, 'cascade-child', { type: 'continuous', source: 'cascade-src', destination: 'cascade-pg', include: [`${source.name}.children`] });
    const report = await client.postOk<Report>('/v1/migrationJobs/cascade-child:verify');
    expect(report.ok).toBe(false);
    const refusal = report.checks.find((c) => c.code === 'FOREIGN_KEY_ACTIONS');
    expect(refusal?.severity).toBe('error');
    expect(refusal?.objects).toEqual([`${source.name}.children.children_parent (references ${source.name}.parents)`]);
    expect(refusal?.message).toContain("Add the referenced tables to the job's selection");

    // Rows a foreign key with an action refuses (written with foreign_key_checks=0): named at verify.
    await source.connection.query('SET SESSION foreign_key_checks = 0; INSERT INTO orphans VALUES (99, 77); SET SESSION foreign_key_checks = 1');
    const orphans = await client.postOk<Report>('/v1/migrationJobs/cascade-m2p:verify');
    const named = orphans.checks.find((c) => c.code === 'FOREIGN_KEY_ORPHANS');
    expect(named?.severity).toBe('error');
    expect(named?.objects).toEqual([`${source.name}.orphans.orphans_parent`]);
    expect(named?.message).toContain('parent_id=77');
    await source.connection.query('DELETE FROM orphans WHERE id = 99');
    await runCliJson(['jobs', 'delete', 'cascade-m2p'], { server: server.url });
    await runCliJson(['jobs', 'delete', 'cascade-child'], { server: server.url });

    // The same tables through a one-time job: copied exactly, foreign keys with their actions included.
    await createJob(server, 'cascade-m2p-once', { type: 'one-time', source: 'cascade-src', destination: 'cascade-pg', include: [source.name] });
    await runCliJson(['jobs', 'start', 'cascade-m2p-once'], { server: server.url });
    await waitForJob(() => client, 'cascade-m2p-once', 'Completed', (j) => j.status === 'COMPLETED', 60_000);
    const differences = await compareAcrossEngines({ engine: 'mysql', connection: source.connection, schema: source.name }, pgDestination.oracle);
    expect(formatCrossDifferences(differences)).toBe('no differences');
  }, 120_000);

  it('PostgreSQL to MySQL, continuous: generated columns (which the PostgreSQL change stream does not carry) are refused at verify, naming them', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_gen');
    cleanups.push(() => source.drop());
    const schema = `ferry_gen_${randomBytes(4).toString('hex')}`;
    await source.client.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".items (id int PRIMARY KEY, price numeric(10,2), qty int,
      total numeric(12,2) GENERATED ALWAYS AS (price * qty) STORED); INSERT INTO "${schema}".items SELECT g, g, 2 FROM generate_series(1, 10) g`);
    const destination = await mysqlDestination(schema, null);
    await createProfile(server, 'gen-src', source.params);
    await createProfile(server, 'gen-dst', destination.profile);
    await createJob(server, 'gen-p2m', { type: 'continuous', source: 'gen-src', destination: 'gen-dst', include: [schema] });
    type Report = { ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> };
    const report = await client.postOk<Report>('/v1/migrationJobs/gen-p2m:verify');
    expect(report.ok).toBe(false);
    const refusal = report.checks.find((c) => c.code === 'GENERATED_COLUMNS');
    expect(refusal?.severity).toBe('error');
    expect(refusal?.objects).toEqual([`${schema}.items.total`]);
  }, 120_000);

  it('verify refuses what a direction cannot carry, naming the columns (UNSUPPORTED_TYPE)', async () => {
    const pgSource = await createTestDatabase(PG_SOURCE_PORT, 'ferry_refuse');
    cleanups.push(() => pgSource.drop());
    const schema = `ferry_refuse_${randomBytes(4).toString('hex')}`;
    await pgSource.client.query(`CREATE SCHEMA "${schema}"; CREATE TYPE "${schema}".pair AS (a int, b text);
      CREATE TABLE "${schema}".odd (id int PRIMARY KEY, tags text[], span interval, during int4range, at_tz timetz);
      CREATE TABLE "${schema}".composite (id int PRIMARY KEY, both_parts "${schema}".pair)`);
    const mysqlDb = await createMysqlTestDatabase('ferry_refuse');
    cleanups.push(() => mysqlDb.drop());
    await mysqlDb.connection.query('CREATE TABLE shapes (id int PRIMARY KEY, shape geometry)');
    const pgDestination = await createTestDatabase(PG_DEST_PORT, 'ferry_refuse');
    cleanups.push(() => pgDestination.drop());

    await createProfile(server, 'refuse-pg-src', pgSource.params);
    await createProfile(server, 'refuse-my', mysqlConnectionParams(null));
    await createProfile(server, 'refuse-pg-dst', pgDestination.params);
    await createJob(server, 'refuse-p2m', { type: 'continuous', source: 'refuse-pg-src', destination: 'refuse-my', include: [`${schema}.odd`] });
    await createJob(server, 'refuse-p2m-composite', { type: 'one-time', source: 'refuse-pg-src', destination: 'refuse-my', include: [`${schema}.composite`] });
    await createJob(server, 'refuse-m2p', { type: 'one-time', source: 'refuse-my', destination: 'refuse-pg-dst', include: [mysqlDb.name] });
    await createProfile(server, 'refuse-my-private', privateMariadb.params(null));
    await createJob(server, 'refuse-m2m', { type: 'continuous', source: 'refuse-my', destination: 'refuse-my-private', include: [mysqlDb.name] });
    type Report = { ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> };
    const p2m = await client.postOk<Report>('/v1/migrationJobs/refuse-p2m:verify');
    expect(p2m.ok).toBe(false);
    // One or more UNSUPPORTED_TYPE errors (source side: types no engine takes; destination side: MySQL's), naming every column.
    const refusals = (report: Report) => report.checks.filter((c) => c.code === 'UNSUPPORTED_TYPE' && c.severity === 'error');
    const refusal = (report: Report) => {
      const found = refusals(report);
      return found.length === 0 ? undefined : { message: found.map((c) => c.message).join(' | ') };
    };
    const unsupported = refusal(p2m);
    expect(unsupported, JSON.stringify(p2m.checks)).toBeDefined();
    for (const column of ['tags', 'span', 'during', 'at_tz']) expect(unsupported?.message, unsupported?.message).toContain(`${schema}.odd.${column}`);
    const composite = refusal(await client.postOk<Report>('/v1/migrationJobs/refuse-p2m-composite:verify'));
    expect(composite?.message).toContain(`${schema}.composite.both_parts`);
    // Spatial columns are no longer refused: PostGIS geometry on PostgreSQL (the POSTGIS check), native on MySQL.
    const m2p = await client.postOk<Report>('/v1/migrationJobs/refuse-m2p:verify');
    expect(refusal(m2p), JSON.stringify(m2p.checks)).toBeUndefined();
    expect(m2p.checks.find((c) => c.code === 'POSTGIS')?.objects).toEqual([`${mysqlDb.name}.shapes.shape`]);
    const m2m = await client.postOk<Report>('/v1/migrationJobs/refuse-m2m:verify');
    expect(refusal(m2m), JSON.stringify(m2m.checks)).toBeUndefined();
    // Start refuses too: the job fails before writing anything.
    const started = await client.post<{ error?: { code: string } }>('/v1/migrationJobs/refuse-p2m-composite:start');
    if (started.status < 300) {
      // A wait that times out throws: only a job that really reached Failed passes.
      const failed = await waitForJob(() => client, 'refuse-p2m-composite', 'Failed', (j) => j.status === 'FAILED', 60_000);
      expect(failed.error?.code).toBe('UNSUPPORTED_TYPE');
    } else {
      expect(started.body.error?.code).toBe('UNSUPPORTED_TYPE');
    }
    const admin = await connectMysqlAdmin();
    try {
      const [databases] = await admin.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [schema]);
      expect(databases).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});
