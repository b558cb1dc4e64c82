/**
 * Values one engine accepts and the other does not, through real jobs on the real servers
 * (an in-process MigrationService and JobSupervisor, as a `ferry serve` runs them), in the dump
 * and in the change stream:
 * - MySQL's ENUM error value '', zero dates and invalid dates (ALLOW_INVALID_DATES), NUL
 *   characters in text and an AUTO_INCREMENT key holding 0, MySQL to MySQL (a second database of
 *   the local MariaDB, through a schema mapping): every value arrives as it is;
 * - the same to PostgreSQL under each policy: enumErrorValuePolicy 'label' (the '' label) and
 *   'null' (NULL and a warning naming the column); nulCharacterPolicy 'refuse' (the job fails
 *   naming the table, column and key) and 'strip' (removed, with a warning);
 * - PostgreSQL serial and identity keys holding 0 to MySQL (NO_AUTO_VALUE_ON_ZERO);
 * - verify's warnings about such values found by sampling the source.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import type { CreateJobInput, JobView } from '../../src/service/inputs.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { LENIENT_SQL_MODE, createAwkwardMysqlTable, createPostgresZeroKeyTables, writeAwkwardMysqlRows, writePostgresZeroKeys } from '../helpers/awkward-values.js';
import { MYSQL_PORT, connectMysqlAdmin, createMysqlTestDatabase, type MysqlTestDatabase } from '../helpers/mysql.js';
import { createTestDatabase, PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER } from '../helpers/postgres.js';
import { createProfile } from '../helpers/e2e-jobs.js';
import { api, runCliJson, spawnFerryServer, stopAllFerryServers } from '../helpers/ferry-server.js';
import { mysqlConnectionParams } from '../helpers/mysql.js';

type Policies = Pick<CreateJobInput, 'enumErrorValuePolicy' | 'nulCharacterPolicy'>;

let store: SqliteMetadataStore;
let supervisor: JobSupervisor;
let service: MigrationService;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  store = SqliteMetadataStore.open(':memory:');
  await store.migrate();
  const engines = new EngineRegistry([postgresEngine, mysqlEngine]);
  supervisor = new JobSupervisor(
    {
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 500, budgetMs: 5_000, probeIntervalMs: 500 },
      resolveConnection: (id) => service.resolveConnection(id),
    },
    500,
  );
  service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
  await supervisor.start();
});

afterAll(async () => {
  await stopAllFerryServers();
  await supervisor?.close();
  await store?.close();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function waitForJob(id: string, accept: (job: JobView) => boolean, what: string, timeoutMs = 90_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let job = await service.getJob(id);
  while (!accept(job)) {
    if (Date.now() > deadline) throw new Error(`job ${id} did not reach ${what}; last: ${JSON.stringify({ status: job.status, substatus: job.substatus, error: job.error })}`);
    await new Promise((r) => setTimeout(r, 150));
    job = await service.getJob(id);
  }
  return job;
}

/** Polls `read` until it returns a value `accept` takes (bounded), and returns it. */
async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what} not reached; last: ${JSON.stringify(value).slice(0, 600)}`);
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}

const ended = (j: JobView) => j.status === 'COMPLETED' || j.status === 'FAILED';
const streaming = (j: JobView) => j.status === 'FAILED' || (j.status === 'RUNNING' && j.substatus === 'Incremental load');

async function valueWarnings(id: string): Promise<string[]> {
  return (await service.listJobEvents(id)).filter((e) => e.details?.code === 'VALUE_CHANGED').map((e) => e.message);
}

let profileCount = 0;
async function profile(engine: 'mysql' | 'postgresql', port: number, database: string | null): Promise<string> {
  const id = `p${++profileCount}-${randomBytes(3).toString('hex')}`;
  if (engine === 'mysql') {
    await service.createProfile({ id, displayName: id, engine, host: '127.0.0.1', port, username: 'root', database: null }, 'test');
  } else {
    await service.createProfile({ id, displayName: id, engine, host: PG_HOST, port, database: database as string, username: PG_USER }, 'test');
  }
  return id;
}

async function mysqlSource(nul: boolean): Promise<MysqlTestDatabase> {
  const db = await createMysqlTestDatabase('ferry_awk');
  cleanups.push(() => db.drop());
  await createAwkwardMysqlTable(db.connection, { nul });
  return db;
}

async function pgDestination() {
  const db = await createTestDatabase(PG_DEST_PORT, 'ferry_awk');
  cleanups.push(() => db.drop());
  return db;
}

async function job(type: 'one-time' | 'continuous', source: string, destination: string, include: string, extra: Partial<CreateJobInput> = {}): Promise<string> {
  const created = await service.createJob({ displayName: 'awkward', type, sourceProfileId: source, destinationProfileId: destination, selection: { include: [include], exclude: [] }, ...extra }, 'test');
  return created.id;
}

async function pgRows(client: { query: (sql: string) => Promise<{ rows: unknown[] }> }, schema: string): Promise<unknown[]> {
  const result = await client.query(`SELECT id, status::text AS status, tags::text AS tags, note, body, due::text AS due, seen::text AS seen FROM "${schema}".awkward ORDER BY id`);
  return result.rows;
}

describe('MySQL to PostgreSQL', () => {
  async function mysqlToPostgres(type: 'one-time' | 'continuous', policies: Policies, nul: boolean) {
    const source = await mysqlSource(nul);
    const destination = await pgDestination();
    const id = await job(type, await profile('mysql', source.params.port, null), await profile('postgresql', PG_DEST_PORT, destination.params.database), source.name, policies);
    return { source, destination, id };
  }

  it("keeps the ENUM error value as the enum label '' in the dump and the stream (default policy); zero and invalid dates become NULL", async () => {
    const { source, destination, id } = await mysqlToPostgres('continuous', {}, false);
    expect((await service.getJob(id)).enumErrorValuePolicy).toBe('label');
    await service.applyJobAction(id, 'start', 'test');
    const job = await waitForJob(id, streaming, 'Incremental load');
    expect(job.error).toBeNull();
    const labels = await destination.client.query(`SELECT enum_range(NULL::"${source.name}".awkward_status)::text AS r`);
    expect(labels.rows[0].r).toBe('{"",new,paid,void}');
    expect(await pgRows(destination.client, source.name)).toEqual([
      { id: 0, status: 'new', tags: '{a}', note: 'key zero', body: 'b0', due: '2024-01-01', seen: '2024-01-01 00:00:00' },
      { id: 1, status: '', tags: '{}', note: 'error value', body: 'b1', due: null, seen: null },
      { id: 2, status: 'paid', tags: '{a,c}', note: 'plain', body: 'b2', due: null, seen: null },
    ]);
    const inserted = await writeAwkwardMysqlRows(source.connection, 1);
    const rows = (await eventually(() => pgRows(destination.client, source.name), (r) => r.length === 4 && (r[2] as { status: string }).status === '', 'the stream')) as Array<Record<string, unknown>>;
    expect(rows[3]).toEqual({ id: inserted, status: '', tags: '{}', note: 'step 1', body: 'body 1', due: null, seen: null });
    expect(rows[2]).toMatchObject({ id: 2, status: '', due: null });
    expect((await service.getJob(id)).status).toBe('RUNNING');
    const warnings = await valueWarnings(id);
    expect(warnings.some((w) => w.startsWith(`Warning: ${source.name}.awkward.due: `) && w.includes('zero or invalid date'))).toBe(true);
    expect(warnings.some((w) => w.includes('ENUM error value'))).toBe(false);
    await service.applyJobAction(id, 'promote', 'test');
    expect((await waitForJob(id, ended, 'Completed')).status).toBe('COMPLETED');
  });

  it("writes NULL for the ENUM error value with a warning naming the column (enumErrorValuePolicy 'null'), dump and stream", async () => {
    const { source, destination, id } = await mysqlToPostgres('continuous', { enumErrorValuePolicy: 'null' }, false);
    await service.applyJobAction(id, 'start', 'test');
    expect((await waitForJob(id, streaming, 'Incremental load')).error).toBeNull();
    const labels = await destination.client.query(`SELECT enum_range(NULL::"${source.name}".awkward_status)::text AS r`);
    expect(labels.rows[0].r).toBe('{new,paid,void}');
    expect(((await pgRows(destination.client, source.name)) as Array<Record<string, unknown>>).map((r) => r.status)).toEqual(['new', null, 'paid']);
    const dumpWarnings = await valueWarnings(id);
    expect(dumpWarnings.some((w) => w.startsWith(`Warning: ${source.name}.awkward.status: 1 ENUM error value`) && w.includes('enumErrorValuePolicy'))).toBe(true);
    await writeAwkwardMysqlRows(source.connection, 2);
    const rows = (await eventually(() => pgRows(destination.client, source.name), (r) => r.length === 4 && (r[2] as { status: string | null }).status === null, 'the stream')) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.status)).toEqual(['new', null, null, null]);
    await eventually(() => valueWarnings(id), (w) => w.some((m) => m.startsWith(`Warning: ${source.name}.awkward.status: `) && m.includes('ENUM error value') && m.includes('not repeated')), 'the stream warning');
    await service.applyJobAction(id, 'promote', 'test');
    expect((await waitForJob(id, ended, 'Completed')).status).toBe('COMPLETED');
  });

  it("adds the label '' to an enum type the destination already has", async () => {
    const { source, destination, id } = await mysqlToPostgres('one-time', {}, false);
    await destination.client.query(`CREATE SCHEMA "${source.name}"`);
    await destination.client.query(`CREATE TYPE "${source.name}".awkward_status AS ENUM ('new', 'paid', 'void')`);
    await service.applyJobAction(id, 'start', 'test');
    const done = await waitForJob(id, ended, 'Completed');
    expect(done.error).toBeNull();
    const labels = await destination.client.query(`SELECT enum_range(NULL::"${source.name}".awkward_status)::text AS r`);
    expect(labels.rows[0].r).toBe('{"",new,paid,void}');
    expect(((await pgRows(destination.client, source.name)) as Array<Record<string, unknown>>).map((r) => r.status)).toEqual(['new', '', 'paid']);
  });

  it('refuses a NUL character in the dump naming the table, the column and the key (default nulCharacterPolicy)', async () => {
    const { source, id } = await mysqlToPostgres('one-time', {}, true);
    await service.applyJobAction(id, 'start', 'test');
    const failed = await waitForJob(id, ended, 'Failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.code).toBe('DATA_ERROR');
    expect(failed.error?.message).toContain(`Table ${source.name}.awkward, column note, row id=1`);
    expect(failed.error?.message).toContain('nulCharacterPolicy');
  });

  it('refuses a NUL character in the stream naming the table, the column and the key', async () => {
    const { source, id } = await mysqlToPostgres('continuous', {}, false);
    await service.applyJobAction(id, 'start', 'test');
    expect((await waitForJob(id, streaming, 'Incremental load')).error).toBeNull();
    const inserted = await writeAwkwardMysqlRows(source.connection, 3, { nul: true });
    const failed = await waitForJob(id, (j) => j.status === 'FAILED', 'Failed');
    expect(failed.error?.code).toBe('DATA_ERROR');
    expect(failed.error?.message).toContain(`Table ${source.name}.awkward, column body, row id=${inserted}`);
  });

  it("removes NUL characters with a warning naming the column (nulCharacterPolicy 'strip'), dump and stream", async () => {
    const { source, destination, id } = await mysqlToPostgres('continuous', { nulCharacterPolicy: 'strip' }, true);
    await service.applyJobAction(id, 'start', 'test');
    expect((await waitForJob(id, streaming, 'Incremental load')).error).toBeNull();
    expect(((await pgRows(destination.client, source.name)) as Array<Record<string, unknown>>)[1]?.note).toBe('ab');
    expect((await valueWarnings(id)).some((w) => w.startsWith(`Warning: ${source.name}.awkward.note: NUL characters removed from 1 value`))).toBe(true);
    await writeAwkwardMysqlRows(source.connection, 4, { nul: true });
    const rows = (await eventually(() => pgRows(destination.client, source.name), (r) => r.length === 4, 'the stream')) as Array<Record<string, unknown>>;
    expect(rows[3]?.body).toBe('nul4');
    await eventually(() => valueWarnings(id), (w) => w.some((m) => m.startsWith(`Warning: ${source.name}.awkward.body: NUL characters removed from 1 value`)), 'the stream warning');
    await service.applyJobAction(id, 'promote', 'test');
    expect((await waitForJob(id, ended, 'Completed')).status).toBe('COMPLETED');
  });
});

describe('MySQL to MySQL', () => {
  /** Every value exactly as MySQL holds it (the enum's index shows the error value). */
  async function mysqlRows(connection: MysqlTestDatabase['connection'], database: string): Promise<unknown[]> {
    const [rows] = await connection.query(`SELECT id, status, status + 0 AS idx, tags, HEX(note) AS note, HEX(body) AS body, CAST(due AS char) AS due, CAST(seen AS char) AS seen FROM \`${database}\`.awkward ORDER BY id`);
    return rows as unknown[];
  }

  it('carries the ENUM error value, zero and invalid dates, NUL characters and the key 0 as they are, dump and stream', async () => {
    const source = await mysqlSource(true);
    const target = `${source.name}_dst`;
    const admin = await connectMysqlAdmin();
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${target}\``);
      await admin.end();
    });
    // More error values than a session keeps warnings by default (64), in the dump and in one statement of the stream.
    const manyErrorValues = async (from: number) => {
      await source.connection.query(`SET SESSION sql_mode = '${LENIENT_SQL_MODE}'`);
      await source.connection.query(`INSERT INTO awkward (id, status, note) SELECT seq, 'bogus', 'many' FROM seq_${from}_to_${from + 79}`);
      await source.connection.query("SET SESSION sql_mode = DEFAULT");
    };
    await manyErrorValues(1000);
    const id = await job('continuous', await profile('mysql', source.params.port, null), await profile('mysql', source.params.port, null), source.name, { schemaMapping: { [source.name]: target } });
    await service.applyJobAction(id, 'start', 'test');
    const streamingJob = await waitForJob(id, streaming, 'Incremental load');
    expect(streamingJob.error).toBeNull();
    const expected = await mysqlRows(source.connection, source.name);
    expect((expected as Array<{ idx: string }>).slice(0, 3).map((r) => String(r.idx))).toEqual(['1', '0', '2']);
    expect(expected).toHaveLength(83);
    expect(await mysqlRows(admin, target)).toEqual(expected);
    await writeAwkwardMysqlRows(source.connection, 5, { nul: true });
    await writeAwkwardMysqlRows(source.connection, 6, { nul: true });
    await manyErrorValues(2000);
    const streamed = await mysqlRows(source.connection, source.name);
    await eventually(() => mysqlRows(admin, target), (r) => JSON.stringify(r) === JSON.stringify(streamed), 'the stream');
    expect((await service.getJob(id)).status).toBe('RUNNING');
    await service.applyJobAction(id, 'promote', 'test');
    expect((await waitForJob(id, ended, 'Completed')).status).toBe('COMPLETED');
    expect(await mysqlRows(admin, target)).toEqual(streamed);
  });
});

describe('PostgreSQL to MySQL', () => {
  it('keeps serial and identity keys holding 0 (NO_AUTO_VALUE_ON_ZERO), dump and stream', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_awk');
    cleanups.push(() => source.drop());
    const schema = `zk_${randomBytes(4).toString('hex')}`;
    await source.client.query(`CREATE SCHEMA "${schema}"`);
    await createPostgresZeroKeyTables(source.client, schema);
    const admin = await connectMysqlAdmin();
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${schema}\``);
      await admin.end();
    });
    const id = await job('continuous', await profile('postgresql', PG_SOURCE_PORT, source.params.database), await profile('mysql', MYSQL_PORT, null), schema);
    await service.applyJobAction(id, 'start', 'test');
    const streamingJob = await waitForJob(id, streaming, 'Incremental load');
    expect(streamingJob.error).toBeNull();
    const read = async () => {
      const [keys] = await admin.query(`SELECT id, label FROM \`${schema}\`.zero_keys ORDER BY id`);
      const [identity] = await admin.query(`SELECT id, label FROM \`${schema}\`.zero_identity ORDER BY id`);
      return { keys, identity } as { keys: Array<{ id: number | string; label: string }>; identity: Array<{ id: number | string; label: string }> };
    };
    const dumped = await read();
    expect(dumped.keys.map((r) => [String(r.id), r.label])).toEqual([['0', 'none'], ['1', 'first']]);
    expect(dumped.identity.map((r) => [String(r.id), r.label])).toEqual([['0', 'default'], ['1', 'one']]);
    await writePostgresZeroKeys(source.client, schema, 7);
    const streamed = await eventually(read, (r) => r.keys[0]?.label === 'none 7' && r.identity[0]?.label === 'default 7', 'the stream');
    expect(streamed.identity.map((r) => [String(r.id), r.label])).toEqual([['0', 'default 7'], ['1', 'one']]);
    await service.applyJobAction(id, 'promote', 'test');
    expect((await waitForJob(id, ended, 'Completed')).status).toBe('COMPLETED');
  });
});

describe('PostgreSQL values MySQL cannot hold', () => {
  it('refuses them naming the table, the column and the row (dump: its place in the copy; stream: the parked table, its key and the value)', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_awk');
    cleanups.push(() => source.drop());
    const schema = `inf_${randomBytes(4).toString('hex')}`;
    await source.client.query(`CREATE SCHEMA "${schema}"`);
    await source.client.query(`CREATE TABLE "${schema}".events (id int PRIMARY KEY, at timestamp, amount double precision)`);
    await source.client.query(`INSERT INTO "${schema}".events VALUES (1, '2024-01-01 10:00', 1.5)`);
    const admin = await connectMysqlAdmin();
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${schema}\``);
      await admin.end();
    });
    const id = await job('continuous', await profile('postgresql', PG_SOURCE_PORT, source.params.database), await profile('mysql', MYSQL_PORT, null), schema);
    await service.applyJobAction(id, 'start', 'test');
    expect((await waitForJob(id, streaming, 'Incremental load')).error).toBeNull();
    await source.client.query(`INSERT INTO "${schema}".events VALUES (5, 'infinity', 2)`);
    // A value the destination cannot hold parks that table (Running with errors): the other tables go on.
    const parked = await waitForJob(id, (j) => j.status === 'RUNNING_WITH_ERRORS' && j.error !== null, 'Running with errors');
    expect(parked.error?.code).toBe('DATA_ERROR');
    expect(parked.error?.message).toContain(`${schema}.events`);
    expect(parked.error?.message).toContain(`${schema}.events.at holds infinity`);
    expect(parked.error?.message).toContain('id=5');
    await service.applyJobAction(id, 'stop', 'test');

    const oneTime = await job('one-time', await profile('postgresql', PG_SOURCE_PORT, source.params.database), await profile('mysql', MYSQL_PORT, null), schema, { schemaMapping: { [schema]: `${schema}_b` } });
    cleanups.push(async () => {
      const a = await connectMysqlAdmin();
      await a.query(`DROP DATABASE IF EXISTS \`${schema}_b\``);
      await a.end();
    });
    await service.applyJobAction(oneTime, 'start', 'test');
    const refused = await waitForJob(oneTime, ended, 'Failed');
    expect(refused.status).toBe('FAILED');
    expect(refused.error?.code).toBe('DATA_ERROR');
    expect(refused.error?.message).toMatch(/events/);
    // The load names the column and the row's place in the copy (the server converts the values).
    expect(refused.error?.message).toContain(`Loading ${schema}_b.events would not keep every value exactly`);
    expect(refused.error?.message).toContain("column 'at' at row 2");
  });
});

describe('verify', () => {
  async function valueChecks(policies: Policies, destinationEngine: 'postgresql' | 'mysql') {
    const source = await mysqlSource(true);
    const destination = destinationEngine === 'postgresql' ? await profile('postgresql', PG_DEST_PORT, (await pgDestination()).params.database) : await profile('mysql', MYSQL_PORT, null);
    const extra = destinationEngine === 'mysql' ? { schemaMapping: { [source.name]: `${source.name}_v` } } : {};
    const id = await job('one-time', await profile('mysql', source.params.port, null), destination, source.name, { ...policies, ...extra });
    const report = await service.verifyJob(id);
    return { source, checks: report.checks.filter((c) => c.code === 'VALUE_POLICIES') };
  }

  it('samples the source and warns, naming each column and the policy that will apply (default policies)', async () => {
    const { source, checks } = await valueChecks({}, 'postgresql');
    expect(checks.every((c) => c.severity === 'warning')).toBe(true);
    const about = (column: string) => checks.find((c) => c.objects?.includes(`${source.name}.awkward.${column}`));
    expect(about('status')?.message).toContain(`${source.name}.awkward.status (1 of the first`);
    expect(about('status')?.message).toContain('enumErrorValuePolicy "label" adds the label');
    expect(about('note')?.message).toContain('nulCharacterPolicy "refuse" will fail the job');
    expect(about('body')).toBeUndefined();
    expect(about('due')?.message).toContain(`${source.name}.awkward.due (2 of the first`);
    expect(about('due')?.message).toContain('zeroDatePolicy "null" writes NULL');
    expect(about('seen')?.objects).toEqual([`${source.name}.awkward.due`, `${source.name}.awkward.seen`]);
  });

  it('names the other policies when the job has them', async () => {
    const { source, checks } = await valueChecks({ enumErrorValuePolicy: 'null', nulCharacterPolicy: 'strip' }, 'postgresql');
    const about = (column: string) => checks.find((c) => c.objects?.includes(`${source.name}.awkward.${column}`));
    expect(about('status')?.message).toContain('enumErrorValuePolicy "null" writes NULL');
    expect(about('note')?.message).toContain('nulCharacterPolicy "strip" removes them');
  });

  it('says nothing of these values for a MySQL destination, which holds them as they are', async () => {
    const { checks } = await valueChecks({}, 'mysql');
    expect(checks).toEqual([]);
  });
});

describe('the policies through the CLI and the REST API of ferry serve', () => {
  it('creates a job with each policy, shows them, and refuses an unknown one naming the field', async () => {
    const server = await spawnFerryServer();
    const destination = await pgDestination();
    await createProfile(server, 'cli-my', mysqlConnectionParams(null));
    await createProfile(server, 'cli-pg', destination.params);
    const job = await runCliJson<JobView>(
      ['jobs', 'create', '--id', 'cli-policies', '--type', 'one-time', '--source', 'cli-my', '--destination', 'cli-pg', '--enum-error-value-policy', 'null', '--nul-character-policy', 'strip'],
      { server: server.url },
    );
    expect([job.enumErrorValuePolicy, job.nulCharacterPolicy]).toEqual(['null', 'strip']);
    const defaults = await runCliJson<JobView>(['jobs', 'create', '--id', 'cli-defaults', '--type', 'one-time', '--source', 'cli-my', '--destination', 'cli-pg'], { server: server.url });
    expect([defaults.enumErrorValuePolicy, defaults.nulCharacterPolicy]).toEqual(['label', 'refuse']);
    const refused = await api(server.url).post<{ error: { code: string; message: string } }>('/v1/migrationJobs', {
      displayName: 'bad', type: 'one-time', sourceProfileId: 'cli-my', destinationProfileId: 'cli-pg', nulCharacterPolicy: 'drop',
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('nulCharacterPolicy');
  });
});
