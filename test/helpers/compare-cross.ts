/**
 * The cross-engine oracle of the end-to-end tests: compares a source database with its
 * destination, value for value, when the two are on different engines (MySQL/MariaDB and
 * PostgreSQL) or on two MySQL/MariaDB servers, independently of Ferry's own code.
 *
 * For every base table of the source schema (a MySQL database or a PostgreSQL schema):
 * - the table exists on the destination with the same column names in the same order;
 * - both sides are read ordered by the primary key (a page at a time and merged when the key is
 *   one integer column, so memory stays bounded); rows are matched by key: a key present on
 *   one side only is a difference, and so are the row counts;
 * - a table without a primary key (on the source) is compared as a multiset: each row's
 *   normalized values are its key, and a row appearing n times on one side must appear n
 *   times on the other (duplicates allowed, none lost, none applied twice);
 * - each value is normalized per the documented mapping of docs/type-mapping.md, chosen from
 *   the PostgreSQL side's type: `tinyint(1)` 0 is false and any other value true,
 *   `bytea` ↔ blob bytes (hex), `timestamptz` ↔ a UTC `timestamp`/`datetime`, `set` ↔
 *   `text[]`, `time` ↔ `interval`, zero and invalid MySQL dates ↔ NULL, MySQL year 0 ↔ 1 BC,
 *   `char(n)` compared without trailing spaces, `float` as the 32-bit float it stores,
 *   numbers by value (`1.50` = `1.5`), JSON by value (key order, whitespace and number
 *   spelling aside), bits as their n binary digits, PostGIS geometry ↔ MySQL spatial types as
 *   `SRID:WKB hex` (MySQL: ST_SRID and ST_AsBinary; PostGIS: its EWKB text taken apart here);
 * - between two MySQL/MariaDB servers every value is compared as the raw bytes the server
 *   sends (zero dates included): same-engine migrations keep every value exactly.
 *
 * Then the structure (compare-cross-structure.ts): tables the destination has in excess, each
 * column's type, default and nullability through the documented mapping, indexes and foreign
 * keys, in both directions (option `structure: false` leaves it out).
 *
 * Returns the differences (the first `maxDifferences`, default 20), each naming the table,
 * the key, the column and both values (as read and normalized); empty means equal.
 */
import type { Connection } from 'mysql2/promise';
import type pg from 'pg';
import { compareStructure } from './compare-cross-structure.js';

export type CrossSide =
  | { engine: 'postgresql'; client: pg.ClientBase; schema: string }
  | { engine: 'mysql'; connection: Connection; schema: string };

export interface CrossDifference {
  kind:
    | 'missing-table'
    | 'columns'
    | 'row-count'
    | 'missing-row'
    | 'extra-row'
    | 'value'
    // The structure (compare-cross-structure.ts): what the destination has in excess or otherwise.
    | 'extra-table'
    | 'column-type'
    | 'column-default'
    | 'column-nullability'
    | 'index'
    | 'foreign-key'
    // MySQL to MySQL: the schema objects carried with the tables.
    | 'view'
    | 'routine'
    | 'trigger'
    | 'event';
  table: string;
  /** The primary key, as `col=value, ...` (source values); every column for a table without one. */
  key?: string;
  column?: string;
  message: string;
  source?: unknown;
  destination?: unknown;
}

export interface CrossCompareOptions {
  /** Only these tables (names within the schema). Default: every base table of the source schema. */
  tables?: string[];
  /** Stop after this many differences. Default 20. */
  maxDifferences?: number;
  /**
   * The job ran with nulCharacterPolicy 'strip' (MySQL to PostgreSQL): NUL characters of the
   * MySQL side's text are removed before comparing, as the documented mapping does.
   */
  nulStripped?: boolean;
  /**
   * Also compare the structure (default true): extra destination tables, each column's type,
   * default and nullability through the documented mapping, indexes and foreign keys
   * (compare-cross-structure.ts).
   */
  structure?: boolean;
  /** The job's enumErrorValuePolicy, when it was 'null' (MySQL to PostgreSQL: enum columns become nullable, as documented). */
  enumErrorValue?: 'label' | 'null';
}

/** How a column's values are normalized before comparison. */
export type ValueKind =
  | 'raw'
  | 'bool'
  | 'number'
  | 'float4'
  | 'float8'
  | 'bits'
  | 'date'
  | 'datetime'
  | 'timestamptz'
  | 'time'
  | 'char'
  | 'text'
  | 'set'
  | 'bytes'
  | 'json'
  | 'uuid'
  | 'inet'
  | 'geometry';

interface ColumnInfo {
  name: string;
  /** MySQL COLUMN_TYPE, or PostgreSQL format_type of the column (of the base type for a domain; `enum` for an enum type). */
  type: string;
}

interface TableInfo {
  columns: ColumnInfo[];
  primaryKey: string[];
}

type Value = string | null;

const mysqlIdent = (name: string) => `\`${name.replace(/`/g, '``')}\``;
const pgIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function listTables(side: CrossSide): Promise<string[]> {
  if (side.engine === 'mysql') {
    const [rows] = await side.connection.query(
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
      [side.schema],
    );
    return (rows as Array<{ name: string }>).map((r) => r.name);
  }
  const { rows } = await side.client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname COLLATE "C"`,
    [side.schema],
  );
  return rows.map((r) => r.name);
}

async function describeTable(side: CrossSide, table: string): Promise<TableInfo | null> {
  if (side.engine === 'mysql') {
    const [cols] = await side.connection.query(
      `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [side.schema, table],
    );
    const columns = cols as ColumnInfo[];
    if (columns.length === 0) return null;
    const [keys] = await side.connection.query(
      `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
      [side.schema, table],
    );
    return { columns: columns.map((c) => ({ name: c.name, type: String(c.type).toLowerCase() })), primaryKey: (keys as Array<{ name: string }>).map((k) => k.name) };
  }
  const { rows: cols } = await side.client.query<ColumnInfo>(
    `SELECT a.attname AS name,
            CASE WHEN t.typtype = 'e' THEN 'enum'
                 WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
                 ELSE format_type(a.atttypid, a.atttypmod) END AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [side.schema, table],
  );
  if (cols.length === 0) return null;
  const { rows: keys } = await side.client.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE n.nspname = $1 AND c.relname = $2 AND x.indisprimary
      ORDER BY k.ord`,
    [side.schema, table],
  );
  return { columns: cols, primaryKey: keys.map((k) => k.name) };
}

/**
 * The normalization of a column, from its types on both sides. Same engine: raw. Across
 * engines the PostgreSQL type decides (it is the mapped type in either direction).
 */
export function valueKind(source: { engine: 'postgresql' | 'mysql'; type: string }, destination: { engine: 'postgresql' | 'mysql'; type: string }): ValueKind {
  if (source.engine === destination.engine) return 'raw';
  const pgType = source.engine === 'postgresql' ? source.type : destination.type;
  const mysqlType = source.engine === 'mysql' ? source.type : destination.type;
  if (pgType === 'boolean') return 'bool';
  if (/^(smallint|integer|bigint|numeric)\b/.test(pgType)) return 'number';
  if (pgType === 'real') return 'float4';
  if (pgType === 'double precision') return 'float8';
  if (/^bit\b/.test(pgType)) return 'bits';
  if (pgType === 'date') return 'date';
  if (/^timestamp.*with time zone$/.test(pgType)) return 'timestamptz';
  if (/^timestamp/.test(pgType)) return 'datetime';
  if (pgType === 'interval' || /^time\b/.test(pgType)) return 'time';
  if (/^character\(/.test(pgType) || /^char\(/.test(mysqlType)) return 'char';
  if (pgType === 'text[]') return 'set';
  if (pgType === 'bytea') return 'bytes';
  if (pgType === 'json' || pgType === 'jsonb') return 'json';
  if (pgType === 'uuid') return 'uuid';
  if (pgType === 'inet' || pgType === 'cidr') return 'inet';
  if (/^(?:[a-z_][a-z0-9_]*\.)?geometry\b/.test(pgType)) return 'geometry';
  return 'text';
}

/** The MySQL select expression that reads a column for its kind (the raw text where nothing better exists). */
function mysqlSelect(column: ColumnInfo, kind: ValueKind): string {
  const c = mysqlIdent(column.name);
  if (kind === 'float4' && /^float/.test(column.type)) return `CAST(${c} AS DOUBLE)`;
  if (kind === 'bits') {
    const n = /^bit\((\d+)\)/.exec(column.type)?.[1] ?? '1';
    return `LPAD(BIN(${c}), ${n}, '0')`;
  }
  if (kind === 'bytes') return `HEX(${c})`;
  if (kind === 'geometry') return `CONCAT(ST_SRID(${c}), ':', HEX(ST_AsBinary(${c})))`;
  return c;
}

/** Rows after the key `after` (a single integer key; null: from the start), at most `limit`; every row when `limit` is null. */
interface Page {
  after: string | null;
  limit: number | null;
}

async function readMysqlRows(side: Extract<CrossSide, { engine: 'mysql' }>, table: string, info: TableInfo, kinds: ValueKind[], page: Page): Promise<Value[][]> {
  await side.connection.query("SET time_zone = '+00:00'");
  const select = info.columns.map((c, i) => mysqlSelect(c, kinds[i] as ValueKind)).join(', ');
  const key = info.primaryKey.map(mysqlIdent);
  const where = page.after === null ? '' : ` WHERE ${key[0]} > ?`;
  const sql = `SELECT ${select} FROM ${mysqlIdent(side.schema)}.${mysqlIdent(table)}${where} ${key.length === 0 ? '' : ` ORDER BY ${key.join(', ')}`}${page.limit === null ? '' : ` LIMIT ${page.limit}`}`;
  // The text the server sends, unparsed (typeCast: false): mysql2's own parsing of DOUBLE text
  // is off by one unit in the last place for some values (9925751.898718413 reads as ...411).
  const [rows] = await side.connection.query({ sql, values: page.after === null ? [] : [page.after], rowsAsArray: true, typeCast: false });
  if (kinds.every((k) => k === 'raw')) {
    // Same engine: the bytes the server sends, whatever the type (zero dates, binary, geometry):
    // as text when they are printable UTF-8, else as a hex literal.
    return (rows as Array<Array<Buffer | null>>).map((row) => row.map((v) => (v === null ? null : rawText(v))));
  }
  return (rows as Array<Array<Buffer | null>>).map((row) => row.map((v) => (v === null ? null : v.toString('utf8'))));
}

/** Bytes as their UTF-8 text when that decodes back to the same bytes and prints, else `X'..'`. */
function rawText(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) && !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text) ? text : `X'${bytes.toString('hex')}'`;
}

const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

async function readPostgresRows(side: Extract<CrossSide, { engine: 'postgresql' }>, table: string, info: TableInfo, page: Page): Promise<Value[][]> {
  const client = side.client;
  const select = info.columns.map((c) => pgIdent(c.name)).join(', ');
  const key = info.primaryKey.map(pgIdent);
  const where = page.after === null ? '' : ` WHERE ${key[0]} > $1`;
  const text = `SELECT ${select} FROM ${pgIdent(side.schema)}.${pgIdent(table)}${where}${key.length === 0 ? '' : ` ORDER BY ${key.join(', ')}`}${page.limit === null ? '' : ` LIMIT ${page.limit}`}`;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const s of [`SET LOCAL TimeZone = 'UTC'`, `SET LOCAL DateStyle = 'ISO, MDY'`, `SET LOCAL IntervalStyle = 'postgres'`, `SET LOCAL extra_float_digits = 1`, `SET LOCAL bytea_output = 'hex'`]) {
      await client.query(s);
    }
    const result = await client.query<Value[]>({ text, values: page.after === null ? [] : [page.after], rowMode: 'array', types: RAW_TEXT_TYPES });
    return result.rows;
  } finally {
    await client.query('ROLLBACK');
  }
}

/** A number's value as `[-]digits e exponent` without leading or trailing zeros: equal for equal values however spelled. */
export function canonicalNumber(text: string): string {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text);
  if (m === null) return text;
  const sign = m[1] === '-' ? '-' : '';
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  let digits = `${intPart}${fracPart}`;
  let exponent = Number(m[4] ?? 0) - fracPart.length;
  digits = digits.replace(/^0+/, '');
  if (digits === '') return '0';
  const trailing = /0*$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return `${sign}${digits}e${exponent}`;
}

/** JSON text by value: object keys sorted (the last of duplicate keys wins, as in jsonb), numbers by value, no whitespace. */
export function canonicalJson(text: string): string {
  let i = 0;
  const fail = (): never => {
    throw new Error(`not JSON at offset ${i}: ${text.slice(0, 200)}`);
  };
  const skip = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const string = (): string => {
    const re = /"(?:[^"\\]|\\.)*"/y;
    re.lastIndex = i;
    const m = re.exec(text);
    if (m === null) return fail();
    i = re.lastIndex;
    return JSON.parse(m[0]) as string;
  };
  const value = (): string => {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries = new Map<string, string>();
      skip();
      if (text[i] === '}') {
        i++;
        return '{}';
      }
      for (;;) {
        skip();
        const key = string();
        skip();
        if (text[i] !== ':') fail();
        i++;
        entries.set(key, value());
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] !== '}') fail();
        i++;
        break;
      }
      return `{${[...entries.keys()].sort().map((k) => `${JSON.stringify(k)}:${entries.get(k)}`).join(',')}}`;
    }
    if (c === '[') {
      i++;
      const items: string[] = [];
      skip();
      if (text[i] === ']') {
        i++;
        return '[]';
      }
      for (;;) {
        items.push(value());
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] !== ']') fail();
        i++;
        break;
      }
      return `[${items.join(',')}]`;
    }
    if (c === '"') return JSON.stringify(string());
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return literal;
      }
    }
    const re = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    re.lastIndex = i;
    const m = re.exec(text);
    if (m === null) return fail();
    i = re.lastIndex;
    return canonicalNumber(m[0]);
  };
  const result = value();
  skip();
  if (i !== text.length) fail();
  return result;
}

function daysInMonth(year: number, month: number): number {
  // Proleptic Gregorian, year 0 included (a leap year), as MySQL and PostgreSQL count.
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

const trimFraction = (seconds: string) => seconds.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');

/**
 * A MySQL date (or the date part of a datetime) as PostgreSQL holds it: null for zero and
 * invalid dates, `YYYY-MM-DD` with ` BC` for year 0 (PostgreSQL's 1 BC).
 */
function mysqlDate(text: string): { date: string; bc: boolean } | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (m === null) return { date: text, bc: false };
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (year === 0) return { date: `0001-${m[2]}-${m[3]}`, bc: true };
  return { date: text, bc: false };
}

function normalizeDateTime(engine: 'mysql' | 'postgresql', value: string, withTime: boolean): Value {
  let text = value.trim();
  let bc = false;
  if (engine === 'postgresql') {
    if (text.endsWith(' BC')) {
      bc = true;
      text = text.slice(0, -3);
    }
    text = text.replace(/[+-]00(?::00)?$/, '');
  }
  const [datePart = '', timePart] = text.split(' ');
  let date = datePart;
  if (engine === 'mysql') {
    const d = mysqlDate(datePart);
    if (d === null) return null;
    date = d.date;
    bc = d.bc;
  }
  const time = withTime ? ` ${trimFraction(timePart ?? '00:00:00')}` : '';
  return `${date}${time}${bc ? ' BC' : ''}`;
}

function normalizeTime(value: string): string {
  const m = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value.trim());
  if (m === null) return value;
  const hours = String(Number(m[2])).padStart(2, '0');
  const seconds = trimFraction(m[4] as string);
  const sign = m[1] === '-' && !/^0+:00:00$/.test(`${Number(m[2])}:${m[3]}:${seconds}`) ? '-' : '';
  return `${sign}${hours}:${m[3]}:${seconds}`;
}

/** The elements of a one-dimensional PostgreSQL array literal. */
function parsePgArray(text: string): string[] {
  if (!text.startsWith('{') || !text.endsWith('}')) return [text];
  const body = text.slice(1, -1);
  if (body === '') return [];
  const items: string[] = [];
  let i = 0;
  while (i <= body.length) {
    if (body[i] === '"') {
      let item = '';
      i++;
      while (i < body.length && body[i] !== '"') {
        if (body[i] === '\\') i++;
        item += body[i];
        i++;
      }
      i++;
      items.push(item);
    } else {
      const end = body.indexOf(',', i);
      items.push(body.slice(i, end === -1 ? body.length : end));
      i = end === -1 ? body.length : end;
    }
    i++; // the comma
  }
  return items;
}

/** A value as it compares, for its kind and the engine it was read from. */
export function normalizeValue(kind: ValueKind, engine: 'mysql' | 'postgresql', value: Value): Value {
  if (value === null) return null;
  switch (kind) {
    case 'raw':
    case 'text':
    case 'bits':
      return value;
    case 'bool':
      if (engine === 'postgresql') return value === 't' || value === 'true' ? 't' : 'f';
      return Number(value) !== 0 ? 't' : 'f';
    case 'number':
      return canonicalNumber(value);
    case 'float4':
      return String(Math.fround(Number(value)));
    case 'float8':
      return String(Number(value));
    case 'date':
      return normalizeDateTime(engine, value, false);
    case 'datetime':
    case 'timestamptz':
      return normalizeDateTime(engine, value, true);
    case 'time':
      return normalizeTime(value);
    case 'char':
      return value.replace(/ +$/, '');
    case 'set':
      return engine === 'postgresql' ? parsePgArray(value).join(',') : value;
    case 'bytes':
      return engine === 'postgresql' ? value.toLowerCase() : `\\x${value.toLowerCase()}`;
    case 'json':
      try {
        return canonicalJson(value);
      } catch {
        return `not JSON: ${value}`;
      }
    case 'uuid':
      return value.toLowerCase();
    case 'inet':
      return normalizeAddress(value);
    case 'geometry':
      return engine === 'postgresql' ? ewkbAsSridAndWkb(value) : value;
  }
}

/** PostGIS's EWKB hex as `SRID:WKB hex` (upper case): the SRID flag and the SRID taken out of the header. */
function ewkbAsSridAndWkb(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length < 5) return `not EWKB: ${hex}`;
  const little = bytes[0] === 1;
  const type = little ? bytes.readUInt32LE(1) : bytes.readUInt32BE(1);
  if ((type & 0x20000000) === 0) return `0:${hex.toUpperCase()}`;
  const srid = little ? bytes.readUInt32LE(5) : bytes.readUInt32BE(5);
  const header = Buffer.alloc(5);
  header[0] = bytes[0] as number;
  if (little) header.writeUInt32LE((type & ~0x20000000) >>> 0, 1);
  else header.writeUInt32BE((type & ~0x20000000) >>> 0, 1);
  return `${srid}:${Buffer.concat([header, bytes.subarray(9)]).toString('hex').toUpperCase()}`;
}

/**
 * An inet/cidr/inet6 text with its IPv6 address written out in full (eight groups of four
 * digits): `a549::f238:...` (MariaDB compresses a single zero group) and `a549:0:f238:...`
 * (PostgreSQL does not) are the same address. The mask, when written, is kept.
 */
function normalizeAddress(value: string): string {
  const [address = '', mask] = value.toLowerCase().split('/');
  if (!address.includes(':')) return value.toLowerCase();
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const full = groups.map((g) => g.padStart(4, '0')).join(':');
  return mask === undefined ? full : `${full}/${mask}`;
}

function show(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}... (${text.length} characters)` : text);
}

async function readRows(side: CrossSide, table: string, info: TableInfo, kinds: ValueKind[], page: Page): Promise<Value[][]> {
  return side.engine === 'mysql' ? readMysqlRows(side, table, info, kinds, page) : readPostgresRows(side, table, info, page);
}

const INTEGER_TYPE = /^(tinyint|smallint|mediumint|int|integer|bigint)\b|^numeric\(\d+,0\)$/;
const PAGE_ROWS = 20_000;

/** The rows of one side in key order, a page at a time (one page of every row unless the key is a single integer column). */
async function* rowsInKeyOrder(side: CrossSide, table: string, info: TableInfo, kinds: ValueKind[], paged: boolean): AsyncGenerator<Value[]> {
  const keyIndex = info.columns.findIndex((c) => c.name === info.primaryKey[0]);
  let after: string | null = null;
  for (;;) {
    const rows = await readRows(side, table, info, kinds, { after, limit: paged ? PAGE_ROWS : null });
    yield* rows;
    if (!paged || rows.length < PAGE_ROWS) return;
    after = (rows[rows.length - 1] as Value[])[keyIndex] ?? null;
  }
}

/** Compares every table of the source schema with the destination's; see the file comment. */
export async function compareAcrossEngines(source: CrossSide, destination: CrossSide, options: CrossCompareOptions = {}): Promise<CrossDifference[]> {
  const max = options.maxDifferences ?? 20;
  const differences: CrossDifference[] = [];
  const full = () => differences.length >= max;
  const tables = options.tables ?? (await listTables(source));
  if (tables.length === 0) {
    differences.push({ kind: 'missing-table', table: `${source.schema}.*`, message: `the source schema ${source.schema} has no table: nothing to compare` });
    return differences;
  }
  for (const table of tables) {
    if (full()) break;
    const name = `${source.schema}.${table}`;
    const [src, dst] = await Promise.all([describeTable(source, table), describeTable(destination, table)]);
    if (src === null) {
      differences.push({ kind: 'missing-table', table: name, message: `${name} does not exist on the source` });
      continue;
    }
    if (dst === null) {
      differences.push({ kind: 'missing-table', table: name, message: `${name} is missing on the destination (${destination.schema}.${table})` });
      continue;
    }
    const srcNames = src.columns.map((c) => c.name);
    const dstNames = dst.columns.map((c) => c.name);
    if (srcNames.join('\u0000') !== dstNames.join('\u0000')) {
      differences.push({ kind: 'columns', table: name, message: `${name}: the columns differ`, source: srcNames, destination: dstNames });
      continue;
    }
    if (source.engine === destination.engine) {
      // Same engine: every type is kept exactly.
      const srcTypes = src.columns.map((c) => `${c.name} ${c.type}`);
      const dstTypes = dst.columns.map((c) => `${c.name} ${c.type}`);
      if (srcTypes.join('\u0000') !== dstTypes.join('\u0000')) {
        differences.push({ kind: 'columns', table: name, message: `${name}: the column types differ`, source: srcTypes, destination: dstTypes });
        continue;
      }
    }
    const kinds = src.columns.map((c, i) => valueKind({ engine: source.engine, type: c.type }, { engine: destination.engine, type: (dst.columns[i] as ColumnInfo).type }));
    // Without a primary key, the whole row is the key and rows are counted (a multiset).
    const keyIndexes = src.primaryKey.length === 0 ? srcNames.map((_, i) => i) : src.primaryKey.map((k) => srcNames.indexOf(k));
    const stripNul = (engine: 'mysql' | 'postgresql', kind: ValueKind, value: Value) =>
      options.nulStripped === true && engine === 'mysql' && (kind === 'text' || kind === 'char') && value !== null ? value.replaceAll('\u0000', '') : value;
    const normalizeRow = (engine: 'mysql' | 'postgresql', row: Value[]) =>
      row.map((v, i) => normalizeValue(kinds[i] as ValueKind, engine, stripNul(engine, kinds[i] as ValueKind, v)));
    const keyOf = (row: Value[]) => keyIndexes.map((i) => row[i] ?? '\u0002NULL').join('\u0001');
    const describeKey = (row: Value[]) => keyIndexes.map((i) => `${srcNames[i]}=${row[i]}`).join(', ');
    const compareRow = (raw: Value[], normalized: Value[], other: { raw: Value[]; normalized: Value[] }) => {
      for (let i = 0; i < normalized.length; i++) {
        if (normalized[i] === other.normalized[i]) continue;
        const column = srcNames[i] as string;
        differences.push({
          kind: 'value',
          table: name,
          key: describeKey(raw),
          column,
          message:
            `${name} (${describeKey(raw)}) column ${column} [${src.columns[i]?.type} → ${dst.columns[i]?.type}, compared as ${kinds[i]}]: ` +
            `source ${show(raw[i])} (normalized ${show(normalized[i])}) ≠ destination ${show(other.raw[i])} (normalized ${show(other.normalized[i])})`,
          source: raw[i],
          destination: other.raw[i],
        });
        return;
      }
    };
    const missing = (raw: Value[]) =>
      differences.push({ kind: 'missing-row', table: name, key: describeKey(raw), message: `${name}: the row (${describeKey(raw)}) is missing on the destination`, source: raw });
    const extra = (raw: Value[]) =>
      differences.push({ kind: 'extra-row', table: name, key: describeKey(raw), message: `${name}: the row (${describeKey(raw)}) exists only on the destination`, destination: raw });

    // A single integer key: both sides stream in the same order and are merged (bounded memory).
    const keyType = (info: TableInfo) => info.columns.find((c) => c.name === info.primaryKey[0])?.type ?? '';
    const paged = src.primaryKey.length === 1 && INTEGER_TYPE.test(keyType(src)) && INTEGER_TYPE.test(keyType(dst));
    const srcRows = rowsInKeyOrder(source, table, src, kinds, paged);
    const dstRows = rowsInKeyOrder(destination, table, dst, kinds, paged);
    let srcCount = 0;
    let dstCount = 0;
    if (paged) {
      const next = async (rows: AsyncGenerator<Value[]>, engine: 'mysql' | 'postgresql') => {
        const step = await rows.next();
        if (step.done === true) return null;
        return { raw: step.value, normalized: normalizeRow(engine, step.value) };
      };
      let a = await next(srcRows, source.engine);
      let b = await next(dstRows, destination.engine);
      while (a !== null || b !== null) {
        const ka = a === null ? null : BigInt(a.raw[keyIndexes[0] as number] as string);
        const kb = b === null ? null : BigInt(b.raw[keyIndexes[0] as number] as string);
        if (a !== null && (kb === null || (ka as bigint) < kb)) {
          if (!full()) missing(a.raw);
          srcCount++;
          a = await next(srcRows, source.engine);
        } else if (b !== null && (ka === null || (kb as bigint) < (ka as bigint))) {
          if (!full()) extra(b.raw);
          dstCount++;
          b = await next(dstRows, destination.engine);
        } else if (a !== null && b !== null) {
          if (!full()) compareRow(a.raw, a.normalized, b);
          srcCount++;
          dstCount++;
          [a, b] = await Promise.all([next(srcRows, source.engine), next(dstRows, destination.engine)]);
        }
      }
    } else {
      // Several rows per key only without a primary key: each source row takes one of them.
      const destinationByKey = new Map<string, Array<{ raw: Value[]; normalized: Value[] }>>();
      for await (const raw of dstRows) {
        dstCount++;
        const normalized = normalizeRow(destination.engine, raw);
        const key = keyOf(normalized);
        const same = destinationByKey.get(key);
        if (same === undefined) destinationByKey.set(key, [{ raw, normalized }]);
        else same.push({ raw, normalized });
      }
      for await (const raw of srcRows) {
        srcCount++;
        const normalized = normalizeRow(source.engine, raw);
        const key = keyOf(normalized);
        const same = destinationByKey.get(key);
        const other = same?.shift();
        if (same?.length === 0) destinationByKey.delete(key);
        if (full()) continue;
        if (other === undefined) missing(raw);
        else compareRow(raw, normalized, other);
      }
      for (const same of destinationByKey.values()) for (const other of same) if (!full()) extra(other.raw);
    }
    if (srcCount !== dstCount) {
      differences.push({ kind: 'row-count', table: name, message: `${name}: ${srcCount} rows on the source, ${dstCount} on the destination`, source: srcCount, destination: dstCount });
    }
  }
  if (options.structure !== false) {
    await compareStructure(source, destination, tables, { ...(options.tables === undefined ? {} : { tables: options.tables }), ...(options.enumErrorValue === undefined ? {} : { enumErrorValue: options.enumErrorValue }) }, differences, max);
  }
  return differences;
}

/** A readable list of differences for an assertion message. */
export function formatCrossDifferences(differences: CrossDifference[]): string {
  if (differences.length === 0) return 'no differences';
  return differences.map((d, i) => `${i + 1}. [${d.kind}] ${d.message}`).join('\n');
}
