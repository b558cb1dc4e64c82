/**
 * Data validation for every engine pair with a MySQL side (MySQL to PostgreSQL, PostgreSQL to
 * MySQL, MySQL to MySQL), through the CLI of a real `ferry serve`:
 * - the sources hold every type of docs/type-mapping.md for their direction (the cross-engine
 *   fixtures of test/helpers/cross-workload.ts: zero dates, tinyint(1), decimals, floats,
 *   JSON, sets, binary, time zones...) plus a table `vt`; after a one-time job the validation is
 *   clean: values are compared in the canonical form, so documented mappings are no difference;
 * - a changed cell, a missing row, an extra row and a NULL turned into '' on the destination's
 *   `vt` are each reported with the key and both values;
 * - continuous jobs of each of these pairs, under a concurrent workload (TRUNCATE included):
 *   validation during the incremental load reports no false difference.
 * MySQL runs as a private MariaDB server started by this file (test/helpers/mariadb-instance.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { CrossWorkload, createMysqlSource, createPostgresSource } from '../helpers/cross-workload.js';
import { createProfile, inIncrementalLoad, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createTestDatabase } from '../helpers/postgres.js';
import { expectClean, expectSeededDifferences, tableOf, validateWithCli } from '../helpers/validation.js';

const SEEDED = { changedId: 10, missingId: 20, extraId: 50_000, nulledId: 30 };
const hex = () => randomBytes(4).toString('hex');

/** Runs SQL on one side of a pair. */
type Run = (sql: string) => Promise<unknown>;

const MYSQL_VT = `
  SET SESSION max_recursive_iterations = 10000;
  CREATE TABLE vt (id int PRIMARY KEY, name varchar(100), amount decimal(10,2), flag tinyint(1), note text, created datetime(6));
  INSERT INTO vt
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
    SELECT i, CONCAT('name ', i), i * 1.10, i % 2 = 0, IF(i % 10 = 0, NULL, CONCAT('note ', i)), TIMESTAMP('2024-01-01') + INTERVAL i MINUTE FROM n`;

const postgresVt = (schema: string) => `
  CREATE TABLE "${schema}".vt (id integer PRIMARY KEY, name text, amount numeric, flag boolean, note text, created timestamptz);
  INSERT INTO "${schema}".vt SELECT i, 'name ' || i, i * 1.10, i % 2 = 0, CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || i END, '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
    FROM generate_series(1, 3000) AS i`;

/** The seeded differences, in the destination's dialect (`vt` qualified by `schema`). */
function differencesSql(engine: 'mysql' | 'postgresql', schema: string): string[] {
  const vt = engine === 'mysql' ? `\`${schema}\`.vt` : `"${schema}".vt`;
  return [
    `UPDATE ${vt} SET name = 'changed on the destination' WHERE id = ${SEEDED.changedId}`,
    `DELETE FROM ${vt} WHERE id = ${SEEDED.missingId}`,
    `INSERT INTO ${vt} (id, name, amount, flag, note) VALUES (${SEEDED.extraId}, 'only on the destination', 1, ${engine === 'mysql' ? 1 : 'true'}, 'x')`,
    `UPDATE ${vt} SET note = '' WHERE id = ${SEEDED.nulledId}`,
  ];
}

describe('data validation across engines', () => {
  let server: FerryServer;
  let client: ApiClient;
  let mariadb: MariadbInstance;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    mariadb = await startMariadbInstance({ serverId: 61 });
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    client = api(server.url);
  }, 120_000);

  afterAll(async () => {
    // The server first: its streams would keep the source's replication slot (and database) in use.
    await stopAllFerryServers();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await mariadb?.stop();
  }, 120_000);

  async function mysqlAdmin(): Promise<Connection> {
    const connection = await mariadb.connect();
    cleanups.push(() => connection.end());
    return connection;
  }

  const mysqlConnectionParams = (database: string | null) => mariadb.params(database);

  /** A new database on the private server, with a connection to it. */
  async function createMysqlTestDatabase(prefix: string): Promise<{ name: string; params: ConnectionParams; connection: Connection; drop(): Promise<unknown> }> {
    const name = `${prefix}_${hex()}`;
    const admin = await mysqlAdmin();
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    const connection = await mariadb.connect(name);
    cleanups.push(() => connection.end());
    return { name, params: mariadb.params(name), connection, drop: () => admin.query(`DROP DATABASE IF EXISTS \`${name}\``) };
  }

  /** A MySQL database Ferry writes into, dropped afterwards. */
  async function mysqlDestination(name: string, create: boolean): Promise<Run> {
    const connection = await mysqlAdmin();
    if (create) await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    cleanups.push(() => connection.query(`DROP DATABASE IF EXISTS \`${name}\``));
    return (sql) => connection.query(sql);
  }

  async function runOneTime(id: string, source: ConnectionParams, destination: ConnectionParams, include: string, mapSchema: string[]): Promise<void> {
    await createProfile(server, `${id}-src`, source);
    await createProfile(server, `${id}-dst`, destination);
    if (destination.engine === 'mysql' && destination.database !== null) {
      const r = await client.patch(`/v1/connectionProfiles/${id}-dst`, { database: destination.database });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await runCliJson(['jobs', 'create', '--id', id, '--type', 'one-time', '--source', `${id}-src`, '--destination', `${id}-dst`, '--include', include, '--dump-parallelism', '3',
      ...mapSchema.flatMap((m) => ['--map-schema', m])], { server: server.url });
    await runCliJson(['jobs', 'start', id], { server: server.url });
    await waitForJob(() => client, id, 'Completed', (job) => job.status === 'COMPLETED', 180_000);
  }

  /** Clean after the copy; then the seeded differences on the destination are each found with the key. */
  async function expectValidationFindsSeeded(id: string, vt: string, destinationRun: Run, destinationEngine: 'mysql' | 'postgresql', destinationSchema: string): Promise<void> {
    const clean = await validateWithCli(server.url, id);
    expectClean(clean.validation, clean.code);
    expect(clean.validation.tables.length).toBeGreaterThan(3);
    for (const sql of differencesSql(destinationEngine, destinationSchema)) await destinationRun(sql);
    const dirty = await validateWithCli(server.url, id);
    expect(dirty.code).toBe(1);
    expectSeededDifferences(tableOf(dirty.validation, vt), SEEDED);
    expect(dirty.validation.tables.filter((t) => t.state !== 'EQUAL').map((t) => t.table)).toEqual([vt]);
  }

  it('MySQL to PostgreSQL: clean with every mapped type, and each seeded difference found', async () => {
    const source = await createMysqlTestDatabase('ferry_valx_mp');
    cleanups.push(() => source.drop());
    await createMysqlSource(source.params, { seed: 3 });
    await source.connection.query(MYSQL_VT);
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_valx_mp');
    cleanups.push(() => destination.drop());
    await runOneTime('valx-mp', mysqlConnectionParams(null), destination.params, source.name, []);
    await expectValidationFindsSeeded('valx-mp', `${source.name}.vt`, (sql) => destination.client.query(sql), 'postgresql', source.name);
  }, 400_000);

  it('PostgreSQL to MySQL: clean with every mapped type, and each seeded difference found', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_valx_pm');
    cleanups.push(() => source.drop());
    const schema = `valx_${hex()}`;
    await createPostgresSource(source.client, schema, { seed: 4 });
    await source.client.query(postgresVt(schema));
    const target = `ferry_valx_pm_${hex()}`;
    const run = await mysqlDestination(target, false);
    await runOneTime('valx-pm', source.params, mysqlConnectionParams(null), schema, [`${schema}=${target}`]);
    await expectValidationFindsSeeded('valx-pm', `${schema}.vt`, run, 'mysql', target);
  }, 400_000);

  it('MySQL to MySQL: clean (zero dates and all) and each seeded difference found', async () => {
    const source = await createMysqlTestDatabase('ferry_valx_mm');
    cleanups.push(() => source.drop());
    await createMysqlSource(source.params, { seed: 5 });
    await source.connection.query(MYSQL_VT);
    const target = `ferry_valx_mm_${hex()}`;
    const run = await mysqlDestination(target, true);
    await runOneTime('valx-mm', mysqlConnectionParams(null), mysqlConnectionParams(target), source.name, []);
    await expectValidationFindsSeeded('valx-mm', `${source.name}.vt`, run, 'mysql', target);
  }, 400_000);

  /**
   * A continuous job reaches Incremental load; under the workload, a validation runs while the
   * source is being written (its position moves during the validation) and reports every table equal.
   */
  async function expectNoFalseDifference(id: string, profiles: { source: ConnectionParams; destination: ConnectionParams }, include: string, mapSchema: string[], workload: CrossWorkload, sourcePosition: () => Promise<string>): Promise<void> {
    await createProfile(server, `${id}-src`, profiles.source);
    await createProfile(server, `${id}-dst`, profiles.destination);
    if (profiles.destination.engine === 'mysql' && profiles.destination.database !== null) {
      const r = await client.patch(`/v1/connectionProfiles/${id}-dst`, { database: profiles.destination.database });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await runCliJson(['jobs', 'create', '--id', id, '--type', 'continuous', '--source', `${id}-src`, '--destination', `${id}-dst`, '--include', include, '--dump-parallelism', '3',
      ...mapSchema.flatMap((m) => ['--map-schema', m])], { server: server.url });
    await runCliJson(['jobs', 'start', id], { server: server.url });
    await waitForJob(() => client, id, 'Incremental load', inIncrementalLoad, 180_000);
    cleanups.push(() => workload.stop());
    await workload.start();
    workload.enableTruncate();
    await workload.waitForCommits(100);
    const positionBefore = await sourcePosition();
    const during = await validateWithCli(server.url, id, 300_000);
    // The source was written while the validation ran.
    expect(await sourcePosition()).not.toBe(positionBefore);
    expect(during.validation.recheckedInFlight).toBe(true);
    expectClean(during.validation, during.code);
    const stats = await workload.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
  }

  const binlogPosition = async () => {
    const admin = await mysqlAdmin();
    return JSON.stringify(((await admin.query('SHOW MASTER STATUS'))[0] as unknown[])[0]);
  };

  it('MySQL to PostgreSQL, continuous: no false difference under a concurrent workload', async () => {
    const source = await createMysqlTestDatabase('ferry_valx_mc');
    cleanups.push(() => source.drop());
    await createMysqlSource(source.params, { seed: 6 });
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_valx_mc');
    cleanups.push(() => destination.drop());
    const workload = new CrossWorkload({ engine: 'mysql', connection: source.params, workers: 3, seed: 16, pauseMs: 5, truncateEvery: 40 });
    await expectNoFalseDifference('valx-mc', { source: mysqlConnectionParams(null), destination: destination.params }, source.name, [], workload, binlogPosition);
  }, 400_000);

  it('PostgreSQL to MySQL, continuous: no false difference under a concurrent workload', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_valx_pc');
    cleanups.push(() => source.drop());
    const schema = `valxc_${hex()}`;
    // No generated column: a continuous job to MySQL refuses them (pgoutput does not carry them).
    await createPostgresSource(source.client, schema, { seed: 7, generated: false });
    const target = `ferry_valx_pc_${hex()}`;
    await mysqlDestination(target, false);
    const workload = new CrossWorkload({ engine: 'postgresql', connection: source.params, schema, workers: 3, seed: 17, pauseMs: 5, truncateEvery: 40 });
    const walPosition = async () => (await source.client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn ?? '';
    await expectNoFalseDifference('valx-pc', { source: source.params, destination: mysqlConnectionParams(null) }, schema, [`${schema}=${target}`], workload, walPosition);
  }, 400_000);

  it('MySQL to MySQL, continuous: no false difference under a concurrent workload', async () => {
    const source = await createMysqlTestDatabase('ferry_valx_mmc');
    cleanups.push(() => source.drop());
    await createMysqlSource(source.params, { seed: 8 });
    const target = `ferry_valx_mmc_${hex()}`;
    await mysqlDestination(target, true);
    const workload = new CrossWorkload({ engine: 'mysql', connection: source.params, workers: 3, seed: 18, pauseMs: 5, truncateEvery: 40 });
    await expectNoFalseDifference('valx-mmc', { source: mysqlConnectionParams(null), destination: mysqlConnectionParams(target) }, source.name, [], workload, binlogPosition);
  }, 400_000);
});
