/**
 * Spatial columns and values between MySQL/MariaDB and PostgreSQL (PostGIS), as
 * docs/type-mapping.md lays them out. Pure: no I/O.
 *
 * Values. MySQL stores a geometry as its SRID (4 bytes, little-endian) followed by the
 * geometry's WKB (little-endian). PostGIS prints a geometry as EWKB in hex: WKB whose type
 * carries flag 0x20000000 followed by the SRID when the SRID is not 0 (and flags 0x80000000
 * for Z, 0x40000000 for M). The canonical text of a geometry (the interchange format between
 * engines) is PostGIS's: EWKB hex, upper case, little-endian, no SRID part for SRID 0.
 * Between two MySQL servers a geometry travels as its internal bytes (`\x` + hex in a change).
 */
import { FerryError } from './errors.js';

/** MySQL/MariaDB spatial column types (GEOMCOLLECTION is MySQL 8's other name for GEOMETRYCOLLECTION). */
export const MYSQL_SPATIAL_TYPES: ReadonlySet<string> = new Set([
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
]);

/** True for a MySQL spatial type, by its bare name (`point`, `geometry`) or full COLUMN_TYPE. */
export function isMysqlSpatialType(nativeType: string): boolean {
  return MYSQL_SPATIAL_TYPES.has((/^[a-z]+/i.exec(nativeType.trim())?.[0] ?? '').toLowerCase());
}

/** PostGIS geometry subtype names by MySQL type. */
const POSTGIS_SUBTYPES: Record<string, string> = {
  point: 'Point',
  linestring: 'LineString',
  polygon: 'Polygon',
  multipoint: 'MultiPoint',
  multilinestring: 'MultiLineString',
  multipolygon: 'MultiPolygon',
  geometrycollection: 'GeometryCollection',
  geomcollection: 'GeometryCollection',
  geometry: 'Geometry',
};

/** The schema PostGIS is installed in on a PostgreSQL destination (a job creates it there). */
export const POSTGIS_SCHEMA = 'public';

/**
 * The PostGIS type of a MySQL spatial column: `public.geometry(Point,4326)` when the column
 * has an SRID attribute, `public.geometry(Point)` (any SRID, points only) when it has none,
 * plain `public.geometry` for GEOMETRY without an SRID. Qualified: Ferry's sessions resolve
 * names in pg_catalog only.
 */
export function postgisTypeForMysql(nativeType: string, srid: number | null | undefined): string {
  const name = (/^[a-z]+/i.exec(nativeType.trim())?.[0] ?? '').toLowerCase();
  const subtype = POSTGIS_SUBTYPES[name] ?? 'Geometry';
  const withSrid = srid !== null && srid !== undefined && srid !== 0;
  if (withSrid) return `${POSTGIS_SCHEMA}.geometry(${subtype},${srid})`;
  return subtype === 'Geometry' ? `${POSTGIS_SCHEMA}.geometry` : `${POSTGIS_SCHEMA}.geometry(${subtype})`;
}

/** A PostGIS column type, read from its format_type text. */
export interface PostgisType {
  kind: 'geometry' | 'geography';
  /** The subtype in lower case without dimension suffix (`point`, `geometry`). */
  subtype: string;
  /** The typmod's SRID, or 0 when none. */
  srid: number;
  /** `z`, `m` or `zm` when the typmod has more than two dimensions, else ''. */
  dimensions: string;
}

/** `geometry(PointZ,4326)`, `public.geometry`, `geography(Point,4326)`; null for any other type. */
export function parsePostgisType(nativeType: string): PostgisType | null {
  const match = /^(?:(?:"[^"]+"|[a-z_][a-z0-9_]*)\.)?"?(geometry|geography)"?\s*(?:\(\s*([a-z]+?)(zm|z|m)?\s*(?:,\s*(-?\d+)\s*)?\))?$/i.exec(nativeType.trim());
  if (match === null) return null;
  return {
    kind: (match[1] as string).toLowerCase() as 'geometry' | 'geography',
    subtype: (match[2] ?? 'geometry').toLowerCase(),
    srid: match[4] === undefined ? 0 : Number(match[4]),
    dimensions: (match[3] ?? '').toLowerCase(),
  };
}

const MYSQL_TYPE_FOR_SUBTYPE: Record<string, string> = {
  point: 'point',
  linestring: 'linestring',
  polygon: 'polygon',
  multipoint: 'multipoint',
  multilinestring: 'multilinestring',
  multipolygon: 'multipolygon',
  geometrycollection: 'geometrycollection',
  geometry: 'geometry',
};

/**
 * The MySQL column type of a PostGIS column, or the reason MySQL cannot hold it: geography,
 * 3D or measured geometries, curves and surfaces. With an SRID, MariaDB says `REF_SYSTEM_ID=n`
 * and MySQL 8 `SRID n` (the MySQL 8 form is untested here: no MySQL 8 server runs in the tests).
 */
export function mysqlTypeForPostgis(type: PostgisType, flavor: 'mariadb' | 'mysql'): { nativeType: string } | { refused: string } {
  if (type.kind === 'geography') return { refused: 'PostGIS geography has no MySQL equivalent; cast the column to geometry on the source, or exclude the table' };
  if (type.dimensions !== '') return { refused: `a geometry with ${type.dimensions.toUpperCase()} coordinates, which MySQL cannot hold (two dimensions only); drop the extra dimension on the source (ST_Force2D), or exclude the table` };
  const base = MYSQL_TYPE_FOR_SUBTYPE[type.subtype];
  if (base === undefined) return { refused: `the PostGIS subtype ${type.subtype}, which MySQL has no type for` };
  if (type.srid === 0) return { nativeType: base };
  return { nativeType: flavor === 'mariadb' ? `${base} REF_SYSTEM_ID=${type.srid}` : `${base} SRID ${type.srid}` };
}

const SRID_FLAG = 0x20000000;
const Z_FLAG = 0x80000000;
const M_FLAG = 0x40000000;

function spatialError(column: string | undefined, why: string): FerryError {
  const where = column === undefined ? 'A spatial column' : `Column ${column}`;
  return new FerryError('DATA_ERROR', `${where} holds a geometry that cannot be converted: ${why}.`, { details: column === undefined ? {} : { column } });
}

/** MySQL's internal geometry (SRID + WKB) as canonical EWKB hex (PostGIS's own text). */
export function mysqlGeometryToEwkbHex(internal: Buffer, column?: string): string {
  if (internal.length < 9) throw spatialError(column, `${internal.length} bytes is too short for MySQL's geometry format (SRID and WKB)`);
  const srid = internal.readUInt32LE(0);
  const wkb = internal.subarray(4);
  if (srid === 0) return wkb.toString('hex').toUpperCase();
  const littleEndian = wkb[0] === 1;
  const out = Buffer.alloc(wkb.length + 4);
  out[0] = wkb[0] as number;
  const type = littleEndian ? wkb.readUInt32LE(1) : wkb.readUInt32BE(1);
  if (littleEndian) {
    out.writeUInt32LE((type | SRID_FLAG) >>> 0, 1);
    out.writeUInt32LE(srid, 5);
  } else {
    out.writeUInt32BE((type | SRID_FLAG) >>> 0, 1);
    out.writeUInt32BE(srid, 5);
  }
  wkb.copy(out, 9, 5);
  return out.toString('hex').toUpperCase();
}

/** Reads (E)WKB and writes it again little-endian without EWKB flags; refuses Z, M and unknown types. */
class WkbNormalizer {
  private at = 0;
  readonly parts: Buffer[] = [];
  srid = 0;

  constructor(
    private readonly input: Buffer,
    private readonly column: string | undefined,
  ) {}

  run(): Buffer {
    this.geometry(true);
    if (this.at !== this.input.length) throw spatialError(this.column, `${this.input.length - this.at} bytes follow the end of the geometry`);
    return Buffer.concat(this.parts);
  }

  private need(bytes: number): void {
    if (this.at + bytes > this.input.length) throw spatialError(this.column, 'the WKB ends early');
  }

  private geometry(top: boolean): void {
    this.need(5);
    const order = this.input[this.at];
    if (order !== 0 && order !== 1) throw spatialError(this.column, `byte order ${String(order)} is neither 0 nor 1`);
    const little = order === 1;
    const readU32 = () => {
      this.need(4);
      const value = little ? this.input.readUInt32LE(this.at) : this.input.readUInt32BE(this.at);
      this.at += 4;
      return value;
    };
    this.at += 1;
    const rawType = readU32();
    if ((rawType & (Z_FLAG | M_FLAG)) !== 0 || (rawType & 0xffff) >= 1000) {
      throw spatialError(this.column, 'it has Z or M coordinates, and MySQL holds two dimensions only (ST_Force2D on the source)');
    }
    if ((rawType & SRID_FLAG) !== 0) {
      const srid = readU32();
      if (top) this.srid = srid;
    }
    const type = rawType & 0x0fffffff;
    const header = Buffer.alloc(5);
    header[0] = 1;
    header.writeUInt32LE(type, 1);
    this.parts.push(header);
    const count = () => {
      const n = readU32();
      const out = Buffer.alloc(4);
      out.writeUInt32LE(n, 0);
      this.parts.push(out);
      return n;
    };
    const doubles = (n: number) => {
      this.need(8 * n);
      const out = Buffer.alloc(8 * n);
      for (let i = 0; i < n; i++) out.writeDoubleLE(little ? this.input.readDoubleLE(this.at + 8 * i) : this.input.readDoubleBE(this.at + 8 * i), 8 * i);
      this.at += 8 * n;
      this.parts.push(out);
    };
    switch (type) {
      case 1:
        doubles(2);
        return;
      case 2:
        doubles(2 * count());
        return;
      case 3: {
        const rings = count();
        for (let r = 0; r < rings; r++) doubles(2 * count());
        return;
      }
      case 4:
      case 5:
      case 6:
      case 7: {
        const members = count();
        for (let g = 0; g < members; g++) this.geometry(false);
        return;
      }
      default:
        throw spatialError(this.column, `WKB type ${type} (curves, surfaces, TINs) has no MySQL equivalent`);
    }
  }
}

/**
 * Canonical EWKB hex (or plain WKB hex) as MySQL's internal geometry: the SRID (0 when the
 * EWKB has none), then the WKB little-endian. Refuses Z and M coordinates and types MySQL
 * does not have, with DATA_ERROR naming the column.
 */
export function ewkbHexToMysqlGeometry(hex: string, column?: string): Buffer {
  const text = hex.startsWith('\\x') ? hex.slice(2) : hex;
  if (!/^(?:[0-9a-f]{2})+$/i.test(text)) throw spatialError(column, `'${text.slice(0, 40)}' is not EWKB in hex`);
  const normalizer = new WkbNormalizer(Buffer.from(text, 'hex'), column);
  const wkb = normalizer.run();
  const out = Buffer.alloc(4 + wkb.length);
  out.writeUInt32LE(normalizer.srid, 0);
  wkb.copy(out, 4);
  return out;
}
