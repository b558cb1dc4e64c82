/**
 * Spatial columns end to end through a real `ferry serve`, in each direction with a MySQL
 * side: MariaDB to MariaDB (the destination keeps the source's database name), MariaDB to PostgreSQL (PostGIS geometry) and PostgreSQL
 * (PostGIS) to MariaDB. For each direction a one-time job, and a continuous job whose stream
 * carries inserts, updates and deletes of spatial rows, end Completed with every geometry
 * equal on both sides as `SRID:WKB` (ST_SRID and ST_AsBinary on each side), and the column
 * types carry their subtype and SRID (PostGIS `geometry(Point,4326)`, MariaDB REF_SYSTEM_ID).
 * Verify refuses, naming the columns and the fix: a PostgreSQL destination without PostGIS
 * whose role cannot create it, and PostGIS columns MySQL cannot hold (geography, Z/M).
 * The MySQL sides are two private MariaDB servers started by this file (row binlog, their own
 * tmpdir), so that the file does not depend on the shared server's state.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, connectionParams, createTestDatabase } from '../helpers/postgres.js';
import { compareSpatialRows, createSpatialTable, insertSpatialRows, readSpatialRows, spatialRng, spatialWorkloadStep, type SpatialSide } from '../helpers/spatial.js';

type Direction = 'm2m' | 'm2p' | 'p2m';
type Check = { code: string; severity: string; message: string; objects?: string[] };

const cleanups: Array<() => Promise<void>> = [];
const summary: string[] = [];

describe('spatial columns through ferry serve', () => {
  let server: FerryServer;
  let client: ApiClient;
  /** The MySQL source (and PostgreSQL to MySQL destination), and the MySQL to MySQL destination. */
  let mariadb: MariadbInstance;
  let mariadbDestination: MariadbInstance;
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-spatial-'));

  beforeAll(async () => {
    const tmp = (name: string) => [`--tmpdir=${mkdtempSync(join(scratch, name))}`];
    [server, mariadb, mariadbDestination] = await Promise.all([
      spawnFerryServer({ env: FAST_RETRY_ENV }),
      startMariadbInstance({ serverId: 12, extraArgs: tmp('source-') }),
      startMariadbInstance({ serverId: 13, extraArgs: tmp('destination-') }),
    ]);
    client = api(server.url);
  }, 120_000);

  afterAll(async () => {
    const exit = await Promise.race([server?.exited, sleep(0).then(() => null)]);
    if (exit) console.log(`ferry serve exited during the tests (${JSON.stringify(exit)}); its last output:\n${server.output().slice(-6000)}`);
    await stopAllFerryServers();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await Promise.allSettled([mariadb?.stop(), mariadbDestination?.stop()]);
    rmSync(scratch, { recursive: true, force: true });
    if (summary.length > 0) console.log(`spatial:\n${summary.join('\n')}`);
  }, 120_000);

  /** Source and destination of a direction, the source table created and filled with `rows` rows. */
  async function sides(direction: Direction, tag: string, rows: number, seed: number): Promise<{ source: SpatialSide; destination: SpatialSide; include: string; srcParams: Parameters<typeof createProfile>[2]; dstParams: Parameters<typeof createProfile>[2] }> {
    const rng = spatialRng(seed);
    if (direction === 'p2m') {
      const db = await createTestDatabase(PG_SOURCE_PORT, `ferry_sp_p2m${tag}`);
      cleanups.push(() => db.drop());
      const schema = `ferry_sp_p2m${tag}_${randomBytes(4).toString('hex')}`;
      await db.client.query(`CREATE EXTENSION postgis; CREATE SCHEMA "${schema}"`);
      const source: SpatialSide = { engine: 'postgresql', client: db.client, schema };
      await createSpatialTable(source);
      await insertSpatialRows(source, 1, rows, rng);
      const connection = await mariadbDestination.connect();
      cleanups.push(() => connection.end());
      return { source, destination: { engine: 'mysql', connection, schema }, include: schema, srcParams: db.params, dstParams: mariadbDestination.params(null) };
    }
    const name = `ferry_sp_${direction}${tag}_${randomBytes(4).toString('hex')}`;
    const connection = await mariadb.connect();
    cleanups.push(() => connection.end());
    await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    const source: SpatialSide = { engine: 'mysql', connection, schema: name };
    await createSpatialTable(source);
    await insertSpatialRows(source, 1, rows, rng);
    if (direction === 'm2m') {
      const destination = await mariadbDestination.connect();
      cleanups.push(() => destination.end());
      return { source, destination: { engine: 'mysql', connection: destination, schema: name }, include: name, srcParams: mariadb.params(null), dstParams: mariadbDestination.params(null) };
    }
    const destination = await createTestDatabase(PG_DEST_PORT, `ferry_sp_m2p${tag}`);
    cleanups.push(() => destination.drop());
    return { source, destination: { engine: 'postgresql', client: destination.client, schema: name }, include: name, srcParams: mariadb.params(null), dstParams: destination.params };
  }

  async function expectSameGeometries(source: SpatialSide, destination: SpatialSide): Promise<number> {
    const differences = await compareSpatialRows(source, destination);
    expect(differences, differences.slice(0, 10).join('\n')).toEqual([]);
    // The cross-engine oracle of the other end-to-end tests agrees (its geometry normalization).
    const oracle = await compareAcrossEngines(source, destination);
    expect(oracle, formatCrossDifferences(oracle)).toEqual([]);
    const rows = await readSpatialRows(destination);
    return rows.size;
  }

  /** The destination's column types: PostGIS format_type, or MySQL COLUMN_TYPE plus the SRID attribute. */
  async function destinationTypes(destination: SpatialSide): Promise<Record<string, string>> {
    if (destination.engine === 'postgresql') {
      const { rows } = await destination.client.query<{ name: string; type: string }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
          WHERE a.attrelid = format('%I.places', $1::text)::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
        [destination.schema],
      );
      return Object.fromEntries(rows.map((r) => [r.name, r.type]));
    }
    const [rows] = await destination.connection.query(
      `SELECT c.COLUMN_NAME AS name, c.COLUMN_TYPE AS type, g.SRID AS srid FROM information_schema.COLUMNS c
         LEFT JOIN information_schema.GEOMETRY_COLUMNS g ON g.G_TABLE_SCHEMA = c.TABLE_SCHEMA AND g.G_TABLE_NAME = c.TABLE_NAME AND g.G_GEOMETRY_COLUMN = c.COLUMN_NAME
        WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = 'places'`,
      [destination.schema],
    );
    return Object.fromEntries((rows as Array<{ name: string; type: string; srid: number | null }>).map((r) => [r.name, r.srid === null || Number(r.srid) === 0 ? r.type : `${r.type} srid ${r.srid}`]));
  }

  function expectTypes(direction: Direction, types: Record<string, string>): void {
    if (direction === 'm2p') {
      expect(types).toMatchObject({ pt: 'geometry(Point,4326)', area: 'geometry(Polygon,3857)', route: 'geometry(LineString)', shape: 'geometry' });
    } else {
      expect(types).toMatchObject({ pt: 'point srid 4326', area: 'polygon srid 3857', route: 'linestring', shape: 'geometry' });
    }
  }

  async function verifyOk(jobId: string): Promise<Check[]> {
    const verify = await client.postOk<{ ok: boolean; checks: Check[] }>(`/v1/migrationJobs/${jobId}:verify`);
    expect(verify.ok, JSON.stringify(verify.checks.filter((c) => c.severity === 'error'))).toBe(true);
    return verify.checks;
  }

  async function runOneTime(direction: Direction, seed: number): Promise<void> {
    const started = Date.now();
    const { source, destination, include, srcParams, dstParams } = await sides(direction, 'o', 60, seed);
    const jobId = `spatial-once-${direction}`;
    await createProfile(server, `${jobId}-src`, srcParams);
    await createProfile(server, `${jobId}-dst`, dstParams);
    await createJob(server, jobId, { type: 'one-time', source: `${jobId}-src`, destination: `${jobId}-dst`, include: [include] });
    const checks = await verifyOk(jobId);
    if (direction === 'm2p') expect(checks.find((c) => c.code === 'POSTGIS')?.message).toMatch(/creates it/);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    expectTypes(direction, await destinationTypes(destination));
    const rows = await expectSameGeometries(source, destination);
    expect(rows).toBe(60);
    // Both comparisons see a change of one coordinate by 1e-9 (PostGIS) or of the SRID alone (MySQL).
    if (destination.engine === 'postgresql') await destination.client.query(`UPDATE "${destination.schema}".places SET pt = ST_Translate(pt, 1e-9, 0) WHERE id = 7`);
    else await destination.connection.query(`UPDATE \`${destination.schema}\`.places SET pt = ST_GeomFromWKB(ST_AsBinary(pt), 3857) WHERE id = 7`);
    expect((await compareSpatialRows(source, destination)).map((d) => d.split(':')[0])).toEqual(['id=7.pt']);
    expect((await compareAcrossEngines(source, destination)).map((d) => `${d.key}.${d.column}`)).toEqual(['id=7.pt']);
    summary.push(`${direction} one-time: ${rows} rows equal as SRID:WKB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  async function runContinuous(direction: Direction, seed: number): Promise<void> {
    const started = Date.now();
    const { source, destination, include, srcParams, dstParams } = await sides(direction, 'c', 20, seed);
    const jobId = `spatial-cont-${direction}`;
    await createProfile(server, `${jobId}-src`, srcParams);
    await createProfile(server, `${jobId}-dst`, dstParams);
    await createJob(server, jobId, { type: 'continuous', source: `${jobId}-src`, destination: `${jobId}-dst`, include: [include] });
    await verifyOk(jobId);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const running = await waitForJob(() => client, jobId, 'Running (Incremental load)', inIncrementalLoad, 120_000);
    expect(running.error).toBeNull();

    // Inserts, updates of every geometry (other SRIDs and types, NULLs) and deletes in the stream.
    const rng = spatialRng(seed + 1);
    const totals = { inserted: 0, updated: 0, deleted: 0 };
    for (let step = 0; step < 30; step++) {
      const done = await spatialWorkloadStep(source, rng);
      totals.inserted += done.inserted;
      totals.updated += done.updated;
      totals.deleted += done.deleted;
    }
    expect(totals.updated).toBe(30);
    expect(totals.deleted).toBe(30);
    const applied = await waitForJob(() => client, jobId, 'the stream applied', (j) => (j.replication?.changesApplied ?? 0) >= 90, 60_000);
    expect(applied.error).toBeNull();

    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.status === 'FAILED' || e.status === 'RUNNING_WITH_ERRORS').map((e) => e.message)).toEqual([]);
    expectTypes(direction, await destinationTypes(destination));
    const rows = await expectSameGeometries(source, destination);
    expect(rows).toBe(20);
    summary.push(`${direction} continuous: ${totals.inserted} inserts, ${totals.updated} updates, ${totals.deleted} deletes streamed; ${rows} rows equal in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  it('MariaDB to MariaDB, one-time: geometries byte for byte, REF_SYSTEM_ID kept', async () => {
    await runOneTime('m2m', 11);
  }, 180_000);

  it('MariaDB to MariaDB, continuous: spatial inserts, updates and deletes in the binlog stream', async () => {
    await runContinuous('m2m', 12);
  }, 240_000);

  it('MariaDB to PostgreSQL, one-time: PostGIS geometry(type,SRID), the job creates the extension', async () => {
    await runOneTime('m2p', 21);
  }, 180_000);

  it('MariaDB to PostgreSQL, continuous: spatial changes from the binlog as EWKB', async () => {
    await runContinuous('m2p', 22);
  }, 240_000);

  it('PostgreSQL (PostGIS) to MariaDB, one-time: MySQL spatial types with REF_SYSTEM_ID', async () => {
    await runOneTime('p2m', 31);
  }, 180_000);

  it('PostgreSQL (PostGIS) to MariaDB, continuous: spatial changes from pgoutput', async () => {
    await runContinuous('p2m', 32);
  }, 240_000);

  it('PostgreSQL to PostgreSQL, one-time: PostGIS columns through pg_dump, the extension created on the destination', async () => {
    const rng = spatialRng(51);
    const db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_sp_p2p');
    cleanups.push(() => db.drop());
    const schema = `ferry_sp_p2p_${randomBytes(4).toString('hex')}`;
    await db.client.query(`CREATE EXTENSION postgis; CREATE SCHEMA "${schema}"`);
    const source: SpatialSide = { engine: 'postgresql', client: db.client, schema };
    await createSpatialTable(source);
    await insertSpatialRows(source, 1, 40, rng);
    const target = await createTestDatabase(PG_DEST_PORT, 'ferry_sp_p2p');
    cleanups.push(() => target.drop());
    const jobId = 'spatial-once-p2p';
    await createProfile(server, `${jobId}-src`, db.params);
    await createProfile(server, `${jobId}-dst`, target.params);
    await createJob(server, jobId, { type: 'one-time', source: `${jobId}-src`, destination: `${jobId}-dst`, include: [schema] });
    await verifyOk(jobId);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const completed = await waitForJob(() => client, jobId, 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    const destination: SpatialSide = { engine: 'postgresql', client: target.client, schema };
    expectTypes('m2p', await destinationTypes(destination));
    expect(await expectSameGeometries(source, destination)).toBe(40);
  }, 180_000);

  it('verify refuses a PostgreSQL destination without PostGIS that the role cannot create, naming the columns and the fix', async () => {
    const { include, srcParams } = await sides('m2p', 'v', 1, 41);
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_sp_nogis');
    cleanups.push(() => destination.drop());
    const role = `ferry_sp_nosuper_${randomBytes(3).toString('hex')}`;
    await destination.client.query(`CREATE ROLE ${role} LOGIN; ALTER DATABASE ${destination.params.database} OWNER TO ${role}`);
    cleanups.push(async () => {
      // The role owns the database: it goes first.
      await destination.drop();
      const admin = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: 'postgres', database: 'postgres' });
      await admin.connect();
      try {
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await admin.end();
      }
    });
    const jobId = 'spatial-no-postgis';
    await createProfile(server, `${jobId}-src`, srcParams);
    await createProfile(server, `${jobId}-dst`, { ...connectionParams(PG_DEST_PORT, destination.params.database ?? ''), username: role });
    await createJob(server, jobId, { type: 'one-time', source: `${jobId}-src`, destination: `${jobId}-dst`, include: [include] });
    const verify = await client.postOk<{ ok: boolean; checks: Check[] }>(`/v1/migrationJobs/${jobId}:verify`);
    expect(verify.ok).toBe(false);
    const postgis = verify.checks.find((c) => c.code === 'POSTGIS');
    expect(postgis?.severity, JSON.stringify(verify.checks)).toBe('error');
    for (const column of ['pt', 'area', 'route', 'shape']) expect(postgis?.objects).toContain(`${include}.places.${column}`);
    expect(postgis?.message).toContain('CREATE EXTENSION postgis');
    expect(postgis?.message).toContain('postgresql-15-postgis-3');
    expect(postgis?.message).toContain('geometry(Point,4326)');
    // Start refuses as verify does: nothing is created on the destination.
    const started = await client.post<{ error?: { code: string } }>(`/v1/migrationJobs/${jobId}:start`);
    if (started.status < 300) await waitForJob(() => client, jobId, 'Failed', (j) => j.status === 'FAILED', 60_000);
    const { rows } = await destination.client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [include]);
    expect(rows).toEqual([]);
  }, 120_000);

  it('verify refuses PostGIS columns MySQL cannot hold (geography, Z and M coordinates), naming each', async () => {
    const db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_sp_refuse');
    cleanups.push(() => db.drop());
    const schema = `ferry_sp_refuse_${randomBytes(4).toString('hex')}`;
    await db.client.query(`CREATE EXTENSION postgis; CREATE SCHEMA "${schema}";
      CREATE TABLE "${schema}".odd (id int PRIMARY KEY, g geography(Point,4326), z geometry(PointZ,4326), m geometry(LineStringM), fine geometry(Point,4326))`);
    const jobId = 'spatial-refuse-p2m';
    await createProfile(server, `${jobId}-src`, db.params);
    await createProfile(server, `${jobId}-dst`, mariadbDestination.params(null));
    await createJob(server, jobId, { type: 'one-time', source: `${jobId}-src`, destination: `${jobId}-dst`, include: [schema] });
    const verify = await client.postOk<{ ok: boolean; checks: Check[] }>(`/v1/migrationJobs/${jobId}:verify`);
    expect(verify.ok).toBe(false);
    const refused = verify.checks.filter((c) => c.code === 'UNSUPPORTED_TYPE' && c.severity === 'error').map((c) => c.message).join(' ');
    for (const column of ['g', 'z', 'm']) expect(refused, JSON.stringify(verify.checks)).toContain(`${schema}.odd.${column}`);
    expect(refused).not.toContain(`${schema}.odd.fine`);
    expect(refused).toContain('geography');
    expect(refused).toContain('ST_Force2D');
  }, 120_000);
});
