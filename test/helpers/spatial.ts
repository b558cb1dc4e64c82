/**
 * Spatial tables and rows for end-to-end tests, on a MySQL/MariaDB or a PostgreSQL (PostGIS)
 * side: create a table with spatial columns of several types and SRIDs, write rows in steps
 * (insert, update of the geometries, delete), and read every geometry as `SRID:WKB hex`
 * (ST_SRID and ST_AsBinary, little-endian) so that two sides of any engines compare exactly.
 *
 * The table (`places` unless named): `id` int primary key, `pt` point with SRID 4326 (NOT
 * NULL, spatially indexed), `area` polygon, `route` linestring, `shape` any geometry
 * (points, multi-geometries and collections of several SRIDs).
 */
import { seededRng } from './cross-workload.js';
import type pg from 'pg';
import type { Connection } from 'mysql2/promise';

/** A side to write to or read from: a MySQL connection (database `schema`) or a PostgreSQL client (schema `schema`). */
export type SpatialSide = { engine: 'mysql'; connection: Connection; schema: string } | { engine: 'postgresql'; client: pg.ClientBase; schema: string };

export const SPATIAL_COLUMNS = ['pt', 'area', 'route', 'shape'] as const;

function qualified(side: SpatialSide, table: string): string {
  return side.engine === 'mysql' ? `\`${side.schema}\`.\`${table}\`` : `"${side.schema}"."${table}"`;
}

/**
 * Creates the spatial table. PostgreSQL: PostGIS must exist in the database (the test creates
 * it: CREATE EXTENSION postgis). MariaDB keeps the SRID as REF_SYSTEM_ID, MySQL 8 as SRID.
 */
export async function createSpatialTable(side: SpatialSide, table = 'places'): Promise<void> {
  if (side.engine === 'mysql') {
    const [version] = await side.connection.query('SELECT VERSION() AS v');
    const mariadb = /mariadb/i.test(String((version as Array<{ v: string }>)[0]?.v));
    const srid = (n: number) => (mariadb ? `REF_SYSTEM_ID=${n}` : `SRID ${n}`);
    await side.connection.query(
      `CREATE TABLE ${qualified(side, table)} (id int NOT NULL PRIMARY KEY, pt point ${srid(4326)} NOT NULL, area polygon ${srid(3857)}, route linestring, shape geometry, SPATIAL INDEX pt_idx (pt)) ENGINE=InnoDB`,
    );
    return;
  }
  await side.client.query(
    `CREATE TABLE ${qualified(side, table)} (id int PRIMARY KEY, pt geometry(Point,4326) NOT NULL, area geometry(Polygon,3857), route geometry(LineString), shape geometry);
     CREATE INDEX ${table}_pt_idx ON ${qualified(side, table)} USING gist (pt)`,
  );
}

/** A deterministic generator (mulberry32, the workloads' own). */
export const spatialRng = seededRng;

/** The four geometries of a row as WKT with their SRIDs (null for a NULL value). */
function geometriesFor(id: number, rng: () => number): Array<{ wkt: string; srid: number } | null> {
  // Coordinates with many digits and negative values: exact doubles must survive.
  const c = () => (rng() * 360 - 180).toPrecision(17);
  const lat = () => (rng() * 180 - 90).toPrecision(17);
  const x = Number(c());
  const y = Number(lat());
  const shapes = [
    `MULTIPOINT((${c()} ${lat()}),(${c()} ${lat()}))`,
    `GEOMETRYCOLLECTION(POINT(${c()} ${lat()}),LINESTRING(${c()} ${lat()},${c()} ${lat()}))`,
    `MULTIPOLYGON(((0 0,${id} 0,${id} ${id},0 0)),((10 10,11 10,11 11,10 10)))`,
    `MULTILINESTRING((${c()} ${lat()},${c()} ${lat()}),(1 1,2 2,3 3))`,
    `POINT(${c()} ${lat()})`,
  ];
  return [
    { wkt: `POINT(${x} ${y})`, srid: 4326 },
    rng() < 0.2 ? null : { wkt: `POLYGON((0 0,${x} 0,${x} ${y},0 0),(0.1 0.01,0.2 0.01,0.2 0.02,0.1 0.01))`, srid: 3857 },
    rng() < 0.2 ? null : { wkt: `LINESTRING(${c()} ${lat()},${c()} ${lat()},${c()} ${lat()})`, srid: 0 },
    rng() < 0.1 ? null : { wkt: shapes[Math.floor(rng() * shapes.length)] as string, srid: rng() < 0.5 ? 0 : 4326 },
  ];
}

/** SQL for one geometry from WKT (MySQL 8 would read SRID 4326 as lat-long; MariaDB has no axis order). */
function geometrySql(side: SpatialSide, value: { wkt: string; srid: number } | null, params: unknown[]): string {
  if (value === null) return 'NULL';
  params.push(value.wkt, value.srid);
  return side.engine === 'mysql' ? 'ST_GeomFromText(?, ?)' : `ST_GeomFromText($${params.length - 1}, $${params.length})`;
}

/** Inserts `count` rows with ids from `firstId`. */
export async function insertSpatialRows(side: SpatialSide, firstId: number, count: number, rng: () => number, table = 'places'): Promise<void> {
  for (let id = firstId; id < firstId + count; id++) {
    const params: unknown[] = [];
    const values = geometriesFor(id, rng).map((g) => geometrySql(side, g, params));
    params.push(id);
    const idParam = side.engine === 'mysql' ? '?' : `$${params.length}`;
    const sql = `INSERT INTO ${qualified(side, table)} (pt, area, route, shape, id) VALUES (${values.join(', ')}, ${idParam})`;
    if (side.engine === 'mysql') await side.connection.query(sql, params);
    else await side.client.query(sql, params);
  }
}

async function ids(side: SpatialSide, table: string): Promise<number[]> {
  const sql = `SELECT id FROM ${qualified(side, table)} ORDER BY id`;
  const rows = side.engine === 'mysql' ? ((await side.connection.query(sql))[0] as Array<{ id: number }>) : (await side.client.query<{ id: number }>(sql)).rows;
  return rows.map((r) => Number(r.id));
}

export interface SpatialStepStats {
  inserted: number;
  updated: number;
  deleted: number;
}

/**
 * One workload step on the spatial table: inserts a row (next id), updates every geometry of
 * an existing row (new SRIDs and types included), and deletes another row. Returns the counts.
 */
export async function spatialWorkloadStep(side: SpatialSide, rng: () => number, table = 'places'): Promise<SpatialStepStats> {
  const present = await ids(side, table);
  const next = (present.at(-1) ?? 0) + 1;
  await insertSpatialRows(side, next, 1, rng, table);
  let updated = 0;
  let deleted = 0;
  if (present.length > 0) {
    const id = present[Math.floor(rng() * present.length)] as number;
    const params: unknown[] = [];
    const [pt, area, route, shape] = geometriesFor(id, rng).map((g) => geometrySql(side, g, params));
    params.push(id);
    const idParam = side.engine === 'mysql' ? '?' : `$${params.length}`;
    const sql = `UPDATE ${qualified(side, table)} SET pt = ${pt}, area = ${area}, route = ${route}, shape = ${shape} WHERE id = ${idParam}`;
    if (side.engine === 'mysql') await side.connection.query(sql, params);
    else await side.client.query(sql, params);
    updated = 1;
  }
  if (present.length > 2) {
    const id = present[Math.floor(rng() * (present.length - 1))] as number;
    const sql = `DELETE FROM ${qualified(side, table)} WHERE id = ${side.engine === 'mysql' ? '?' : '$1'}`;
    if (side.engine === 'mysql') await side.connection.query(sql, [id]);
    else await side.client.query(sql, [id]);
    deleted = 1;
  }
  return { inserted: 1, updated, deleted };
}

/** Every row as id → `SRID:WKB hex` per spatial column (null for NULL), read with ST_SRID and ST_AsBinary. */
export async function readSpatialRows(side: SpatialSide, table = 'places'): Promise<Map<number, Record<string, string | null>>> {
  const out = new Map<number, Record<string, string | null>>();
  if (side.engine === 'mysql') {
    const list = SPATIAL_COLUMNS.map((c) => `IF(${c} IS NULL, NULL, CONCAT(ST_SRID(${c}), ':', HEX(ST_AsBinary(${c})))) AS ${c}`).join(', ');
    const [rows] = await side.connection.query(`SELECT id, ${list} FROM ${qualified(side, table)} ORDER BY id`);
    for (const row of rows as Array<Record<string, unknown>>) out.set(Number(row.id), Object.fromEntries(SPATIAL_COLUMNS.map((c) => [c, row[c] === null ? null : String(row[c])])));
    return out;
  }
  const list = SPATIAL_COLUMNS.map((c) => `CASE WHEN ${c} IS NULL THEN NULL ELSE ST_SRID(${c}) || ':' || upper(encode(ST_AsBinary(${c}, 'NDR'), 'hex')) END AS ${c}`).join(', ');
  const { rows } = await side.client.query(`SELECT id, ${list} FROM ${qualified(side, table)} ORDER BY id`);
  for (const row of rows as Array<Record<string, unknown>>) out.set(Number(row.id), Object.fromEntries(SPATIAL_COLUMNS.map((c) => [c, row[c] === null ? null : String(row[c])])));
  return out;
}

/** The differences between two sides' spatial rows, one line each (empty when equal). */
export async function compareSpatialRows(source: SpatialSide, destination: SpatialSide, table = 'places'): Promise<string[]> {
  const [a, b] = await Promise.all([readSpatialRows(source, table), readSpatialRows(destination, table)]);
  const differences: string[] = [];
  for (const [id, row] of a) {
    const other = b.get(id);
    if (other === undefined) {
      differences.push(`id=${id}: missing on the destination`);
      continue;
    }
    for (const c of SPATIAL_COLUMNS) if (row[c] !== other[c]) differences.push(`id=${id}.${c}: source ${row[c]} destination ${other[c]}`);
  }
  for (const id of b.keys()) if (!a.has(id)) differences.push(`id=${id}: only on the destination`);
  return differences;
}
