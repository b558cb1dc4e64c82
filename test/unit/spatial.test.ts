/**
 * Spatial values and types between MySQL/MariaDB and PostGIS (src/core/spatial.ts): MySQL's
 * internal format (SRID + WKB) to EWKB hex and back, exact to the byte; the PostGIS types a
 * MySQL column gets and the MySQL types a PostGIS column gets, and what MySQL cannot hold.
 * The byte strings are what MariaDB 10.11 (`HEX(col)`) and PostGIS 3.3 (`col::text`) print.
 */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { ewkbHexToMysqlGeometry, mysqlGeometryToEwkbHex, mysqlTypeForPostgis, parsePostgisType, postgisTypeForMysql } from '../../src/core/spatial.js';
import { canonicalToMysqlValue, createMysqlValueConverter, mapPostgresColumnToMysql, isRefused } from '../../src/core/type-mapping.js';
import { spatialConversionSql } from '../../src/engines/mysql/mysql-table-writer.js';

// POINT(1 2) with SRID 4326: MariaDB's HEX(col), and PostGIS's text of the same value.
const MYSQL_POINT_4326 = 'E61000000101000000000000000000F03F0000000000000040';
const EWKB_POINT_4326 = '0101000020E6100000000000000000F03F0000000000000040';
// POLYGON((0 0,1 0,1 1,0 0)) with SRID 0.
const MYSQL_POLYGON_0 = '000000000103000000010000000400000000000000000000000000000000000000000000000000F03F0000000000000000000000000000F03F000000000000F03F00000000000000000000000000000000';
// GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1)) with SRID 4326, as PostGIS prints it (little-endian) and big-endian (ST_AsEWKB(g, 'XDR')).
const EWKB_COLLECTION_4326 = '0107000020E6100000020000000101000000000000000000F03F000000000000004001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F';
const EWKB_COLLECTION_4326_XDR =
  '0020000007000010e60000000200000000013ff00000000000004000000000000000000000000200000002000000000000000000000000000000003ff00000000000003ff0000000000000';

describe('MySQL geometry ↔ EWKB hex', () => {
  it('moves the SRID between the front (MySQL) and the type flag (EWKB), byte for byte', () => {
    expect(mysqlGeometryToEwkbHex(Buffer.from(MYSQL_POINT_4326, 'hex'))).toBe(EWKB_POINT_4326);
    expect(ewkbHexToMysqlGeometry(EWKB_POINT_4326).toString('hex').toUpperCase()).toBe(MYSQL_POINT_4326);
  });

  it('writes no SRID part for SRID 0, as PostGIS prints it', () => {
    expect(mysqlGeometryToEwkbHex(Buffer.from(MYSQL_POLYGON_0, 'hex'))).toBe(MYSQL_POLYGON_0.slice(8));
    expect(ewkbHexToMysqlGeometry(MYSQL_POLYGON_0.slice(8)).toString('hex').toUpperCase()).toBe(MYSQL_POLYGON_0);
  });

  it('round-trips a collection, and reads big-endian EWKB into little-endian WKB', () => {
    const internal = ewkbHexToMysqlGeometry(EWKB_COLLECTION_4326);
    expect(internal.readUInt32LE(0)).toBe(4326);
    expect(mysqlGeometryToEwkbHex(internal)).toBe(EWKB_COLLECTION_4326);
    expect(ewkbHexToMysqlGeometry(EWKB_COLLECTION_4326_XDR).equals(internal)).toBe(true);
    expect(ewkbHexToMysqlGeometry(`\\x${EWKB_COLLECTION_4326.toLowerCase()}`).equals(internal)).toBe(true);
  });

  it('keeps coordinates exact (negative zero, the smallest subnormal, large values)', () => {
    const wkb = Buffer.alloc(21);
    wkb[0] = 1;
    wkb.writeUInt32LE(1, 1);
    wkb.writeDoubleLE(-0, 5);
    wkb.writeDoubleLE(5e-324, 13);
    const internal = Buffer.concat([Buffer.from([0x11, 0x0f, 0, 0]), wkb]);
    const back = ewkbHexToMysqlGeometry(mysqlGeometryToEwkbHex(internal));
    expect(back.equals(internal)).toBe(true);
    expect(Object.is(back.readDoubleLE(9), -0)).toBe(true);
  });

  it('refuses Z and M coordinates, unknown types, trailing bytes and non-hex text as DATA_ERROR naming the column', () => {
    // POINT Z (1 2 3), EWKB with the Z flag.
    const pointZ = '0101000080000000000000F03F00000000000000400000000000000840';
    for (const bad of [pointZ, '01E9030000000000000000F03F00000000000000400000000000000840', `${EWKB_POINT_4326}00`, 'zz', '0109000000']) {
      let error: unknown;
      try {
        ewkbHexToMysqlGeometry(bad, 'db.t.shape');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('DATA_ERROR');
      expect((error as FerryError).message).toContain('db.t.shape');
    }
    expect(() => mysqlGeometryToEwkbHex(Buffer.from('0000', 'hex'), 'db.t.shape')).toThrow(/db\.t\.shape/);
  });

  it('converts values of spatial columns through the type mapping, both ways', () => {
    expect(createMysqlValueConverter('point')(Buffer.from(MYSQL_POINT_4326, 'hex'))).toBe(EWKB_POINT_4326);
    expect(createMysqlValueConverter('geometry')(null)).toBeNull();
    const stored = canonicalToMysqlValue('public.geometry(Point,4326)', EWKB_POINT_4326, 'db.t.p');
    expect(Buffer.isBuffer(stored) && stored.toString('hex').toUpperCase()).toBe(MYSQL_POINT_4326);
    expect(canonicalToMysqlValue('geometry', null)).toBeNull();
  });

  it('the LOAD DATA conversion moves the SRID in SQL (checked against MariaDB in test/e2e/spatial.test.ts)', () => {
    const sql = spatialConversionSql('@v1');
    expect(sql).toContain('UNHEX(@v1)');
    expect(sql).toContain('& 0xDF');
  });
});

describe('spatial column types', () => {
  it('MySQL → PostGIS: subtype, and SRID when the column has one', () => {
    expect(postgisTypeForMysql('point', 4326)).toBe('public.geometry(Point,4326)');
    expect(postgisTypeForMysql('point', null)).toBe('public.geometry(Point)');
    expect(postgisTypeForMysql('geometry', 0)).toBe('public.geometry');
    expect(postgisTypeForMysql('geometrycollection', 3857)).toBe('public.geometry(GeometryCollection,3857)');
  });

  it('reads PostGIS types as format_type prints them, qualified or not', () => {
    expect(parsePostgisType('public.geometry(Point,4326)')).toEqual({ kind: 'geometry', subtype: 'point', srid: 4326, dimensions: '' });
    expect(parsePostgisType('geometry(PointZ,4326)')).toEqual({ kind: 'geometry', subtype: 'point', srid: 4326, dimensions: 'z' });
    expect(parsePostgisType('geometry(MultiPolygonZM)')).toEqual({ kind: 'geometry', subtype: 'multipolygon', srid: 0, dimensions: 'zm' });
    expect(parsePostgisType('"gis".geography(Point,4326)')).toMatchObject({ kind: 'geography' });
    expect(parsePostgisType('geometry')).toEqual({ kind: 'geometry', subtype: 'geometry', srid: 0, dimensions: '' });
    expect(parsePostgisType('text')).toBeNull();
    expect(parsePostgisType('public.geometry_dump')).toBeNull();
  });

  it('PostGIS → MySQL: REF_SYSTEM_ID on MariaDB, SRID on MySQL 8; geography and 3D/M refused naming the column', () => {
    const type = (t: string) => parsePostgisType(t) ?? (() => { throw new Error(t); })();
    expect(mysqlTypeForPostgis(type('geometry(Point,4326)'), 'mariadb')).toEqual({ nativeType: 'point REF_SYSTEM_ID=4326' });
    expect(mysqlTypeForPostgis(type('geometry(Point,4326)'), 'mysql')).toEqual({ nativeType: 'point SRID 4326' });
    expect(mysqlTypeForPostgis(type('geometry'), 'mariadb')).toEqual({ nativeType: 'geometry' });
    expect(mysqlTypeForPostgis(type('geometry(LineString)'), 'mariadb')).toEqual({ nativeType: 'linestring' });
    const table = { schema: 'public', name: 'places' };
    const column = (name: string, nativeType: string) => ({ name, nativeType, nullable: true, defaultExpression: null, identity: null, generatedExpression: null, collation: null });
    for (const nativeType of ['public.geography(Point,4326)', 'public.geometry(PointZ,4326)', 'public.geometry(PointM)', 'public.geometry(CircularString)']) {
      const mapped = mapPostgresColumnToMysql(table, column('shape', nativeType));
      expect(isRefused(mapped), nativeType).toBe(true);
      if (isRefused(mapped)) expect(mapped.unsupported).toContain('public.places.shape');
    }
    const mapped = mapPostgresColumnToMysql(table, column('shape', 'public.geometry(Polygon,3857)'));
    expect(isRefused(mapped) ? mapped.unsupported : mapped.nativeType).toBe('polygon REF_SYSTEM_ID=3857');
  });
});
