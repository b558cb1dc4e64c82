/**
 * Schemas and a concurrent write workload for the MySQL/MariaDB end-to-end tests, on either
 * source engine:
 * - `all_types`: one column per row of docs/type-mapping.md for the source's direction (a
 *   MySQL source: every MySQL/MariaDB type of the "MySQL / MariaDB to PostgreSQL" table, zero
 *   and invalid dates, year 0, generated columns; a PostgreSQL source: every type of the
 *   "PostgreSQL to MySQL / MariaDB" table, enum and domain types, two auto columns);
 * - `accounts` and `ledger` (a foreign key; ON UPDATE / ON DELETE CASCADE on PostgreSQL) for
 *   multi-table transactions, `lookup` (truncated and refilled), `big_ids` / `big_children`
 *   (MySQL: `bigint unsigned AUTO_INCREMENT` near its maximum, a foreign key to it).
 *
 * The workload: several workers, each with its own connection and seeded random generator,
 * run until stopped: inserts of random typed rows, updates of some or all columns, primary
 * key changes, deletes, transfers between accounts (multi-table transactions), transactions
 * rolled back, key changes and deletes of parents that cascade, and (worker 0) a TRUNCATE of
 * `lookup` followed by its refill. Workers own disjoint rows (the rows they inserted, the
 * initial rows of their residue), so they never wait on each other's row locks for long.
 * A deadlock or lock timeout is counted as a conflict (the server rolled the transaction
 * back); any other error is recorded in `stats.errors`, which tests expect to be empty.
 */
import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import pg from 'pg';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

export type Rng = () => number;

/** mulberry32: a small deterministic generator. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const chance = (r: Rng, p: number) => r() < p;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const bigRandom = (r: Rng, bits: number): bigint => {
  let v = 0n;
  for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(int(r, 0, 0xffff));
  return v & ((1n << BigInt(bits)) - 1n);
};
const digits = (r: Rng, n: number) => Array.from({ length: n }, () => int(r, 0, 9)).join('');
const bytes = (r: Rng, max: number) => Buffer.from(Array.from({ length: int(r, 0, max) }, () => pick(r, [0, 0x5c, 0x0a, 0x09, 0x0d, 0x4e, 0xff, int(r, 0, 255), int(r, 0, 255)])));

const TEXT_PIECES = ['a', 'b', 'Z', ' ', 'é', 'ü', '😀', '\t', '\n', '\r', '\\', "'", '"', '\\N', ',', '{', '}', 'x', '0', 'ß', '中'];
function text(r: Rng, maxLength: number, pieces: readonly string[] = TEXT_PIECES): string {
  const n = int(r, 0, maxLength);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(r, pieces);
  // Characters, not UTF-16 units, are what the column length counts.
  return [...s].slice(0, maxLength).join('');
}

/** A JSON document: nested values, big and decimal numbers, escapes, emoji. */
function jsonText(r: Rng, depth = 0): string {
  const scalar = () =>
    pick(r, [
      '12345678901234567890',
      '2.50',
      '-0',
      '1e2',
      String(int(r, -1000, 1000)),
      'true',
      'false',
      'null',
      JSON.stringify(text(r, 8)),
      '"\\u00e9\\n😀"',
    ]);
  if (depth >= 2 || chance(r, 0.3)) return scalar();
  if (chance(r, 0.5)) return `[${Array.from({ length: int(r, 0, 3) }, () => jsonText(r, depth + 1)).join(', ')}]`;
  const keys = Array.from({ length: int(r, 0, 3) }, () => pick(r, ['a', 'b', 'key', 'é', '😀', 'long key']));
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonText(r, depth + 1)}`).join(', ')}}`;
}

function ipv4(r: Rng): string {
  return Array.from({ length: 4 }, () => int(r, 0, 255)).join('.');
}

function ipv6(r: Rng): string {
  if (chance(r, 0.2)) return `::ffff:${ipv4(r)}`;
  const groups = Array.from({ length: 8 }, () => (chance(r, 0.3) ? '0' : int(r, 0, 0xffff).toString(16)));
  return groups.join(':');
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB source

/**
 * The MySQL source tables (in the test's database). The foreign keys have no actions: MySQL does not
 * write the changes of ON DELETE / ON UPDATE CASCADE to the binlog, so the workload deletes
 * and moves child rows itself (test/e2e/mysql-migrations.test.ts has a test of its own for
 * cascades).
 */
export function mysqlSourceSchemaSql(): string {
  return String.raw`
CREATE TABLE all_types (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  b tinyint(1), bo boolean, bu tinyint(1) unsigned,
  ti tinyint, tu tinyint unsigned, tz tinyint(3) unsigned zerofill, si smallint,
  su smallint unsigned, mi mediumint, mu mediumint unsigned, i int,
  iu int unsigned, bi bigint,
  bgu bigint unsigned,
  d decimal(10,2), dmax decimal(65,30),
  f float, db double,
  bt bit(5), bt64 bit(64),
  y year,
  dt date,
  dtm datetime(6), dt0 datetime,
  ts timestamp(3) NULL DEFAULT NULL, ts0 timestamp NULL DEFAULT NULL,
  tm time(2), tm0 time,
  c char(4), v varchar(100),
  tt tinytext, tx text, mt mediumtext, lt longtext,
  bn binary(4), vb varbinary(10), tb tinyblob, bl blob, mb mediumblob, lb longblob,
  e enum('a','b''q','c\\d',' sp'),
  s set('x','y','z'),
  j json,
  u uuid, i4 inet4, i6 inet6,
  g int AS (ti * 2) STORED, gv int AS (ti + 1) VIRTUAL,
  KEY all_types_si (si)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=1000000;
CREATE TABLE accounts (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner varchar(40) NOT NULL,
  balance decimal(14,2) NOT NULL DEFAULT 0,
  version int NOT NULL DEFAULT 0,
  updated_at datetime(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=1000000;
CREATE TABLE ledger (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id bigint NOT NULL,
  amount decimal(14,2) NOT NULL,
  at timestamp(6) NULL DEFAULT NULL,
  note text,
  CONSTRAINT ledger_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE lookup (code varchar(10) NOT NULL PRIMARY KEY, label varchar(40)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE big_ids (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, note varchar(40)) ENGINE=InnoDB AUTO_INCREMENT=18446744073709550000;
CREATE TABLE big_children (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  big_id bigint unsigned,
  CONSTRAINT big_children_parent FOREIGN KEY (big_id) REFERENCES big_ids (id)
) ENGINE=InnoDB;
`;
}

/** The all_types columns a writer sets (every column but the generated ones). */
export const MYSQL_ALL_TYPES_COLUMNS = [
  'b', 'bo', 'bu', 'ti', 'tu', 'tz', 'si', 'su', 'mi', 'mu', 'i', 'iu', 'bi', 'bgu', 'd', 'dmax', 'f', 'db', 'bt', 'bt64', 'y', 'dt',
  'dtm', 'dt0', 'ts', 'ts0', 'tm', 'tm0', 'c', 'v', 'tt', 'tx', 'mt', 'lt', 'bn', 'vb', 'tb', 'bl', 'mb', 'lb', 'e', 's', 'j', 'u', 'i4', 'i6',
] as const;

type MysqlParam = string | Buffer | null;

/** The session time zone of the MySQL writers: timestamps are written in +02:00 and must arrive in UTC. */
const MYSQL_WRITER_OFFSET_HOURS = 2;

function mysqlDate(r: Rng): string {
  if (chance(r, 0.15)) return pick(r, ['0000-00-00', '2024-00-10', '2024-05-00', '0000-03-01', '0000-02-29', '2024-02-31', '1000-01-01', '9999-12-31']);
  const year = int(r, 1000, 9999);
  const month = int(r, 1, 12);
  return `${year}-${pad(month)}-${pad(int(r, 1, 28))}`;
}

function mysqlTimestamp(r: Rng, fraction: number): string {
  if (chance(r, 0.05)) return '0000-00-00 00:00:00';
  // The TIMESTAMP range, as written in the writers' +02:00 session.
  const epoch = int(r, 1, 2 ** 31 - 2) + MYSQL_WRITER_OFFSET_HOURS * 3600;
  const d = new Date(epoch * 1000);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return fraction > 0 ? `${base}.${digits(r, fraction)}` : base;
}

function mysqlTime(r: Rng, fraction: number): string {
  if (chance(r, 0.1)) return pick(r, ['-838:59:59', '838:59:59', '00:00:00', '-00:00:01']);
  const base = `${chance(r, 0.3) ? '-' : ''}${int(r, 0, 838)}:${pad(int(r, 0, 59))}:${pad(int(r, 0, 59))}`;
  return fraction > 0 ? `${base}.${digits(r, fraction)}` : base;
}

/** A random value for each writable all_types column (about one in ten NULL). */
export function mysqlAllTypesValues(r: Rng): Record<(typeof MYSQL_ALL_TYPES_COLUMNS)[number], MysqlParam> {
  const n = <T extends MysqlParam>(v: () => T): T | null => (chance(r, 0.08) ? null : v());
  return {
    b: n(() => pick(r, ['0', '1', '5', '-1', '127'])),
    bo: n(() => pick(r, ['0', '1'])),
    bu: n(() => String(int(r, 0, 255))),
    ti: n(() => String(int(r, -128, 127))),
    tu: n(() => String(int(r, 0, 255))),
    tz: n(() => String(int(r, 0, 255))),
    si: n(() => String(int(r, -32768, 32767))),
    su: n(() => String(int(r, 0, 65535))),
    mi: n(() => String(int(r, -8388608, 8388607))),
    mu: n(() => String(int(r, 0, 16777215))),
    i: n(() => String(int(r, -2147483648, 2147483647))),
    iu: n(() => pick(r, ['4294967295', '0', String(int(r, 0, 4294967295))])),
    bi: n(() => pick(r, ['-9223372036854775808', '9223372036854775807', String(bigRandom(r, 64) - 2n ** 63n)])),
    bgu: n(() => pick(r, ['18446744073709551615', '0', String(bigRandom(r, 64))])),
    d: n(() => `${chance(r, 0.5) ? '-' : ''}${int(r, 0, 99999999)}.${digits(r, 2)}`),
    dmax: n(() => `${chance(r, 0.5) ? '-' : ''}${digits(r, int(r, 1, 35))}.${digits(r, int(r, 0, 30))}`),
    f: n(() => pick(r, ['0', '-0', '16777217', '3.4028234e38', '1.17549435e-38', String((r() * 2 - 1) * 10 ** int(r, -20, 30))])),
    db: n(() => pick(r, ['0.30000000000000004', '1e300', '-2.2250738585072014e-308', '5e-324', String((r() * 2 - 1) * 10 ** int(r, -100, 100))])),
    bt: n(() => Buffer.from([int(r, 0, 31)])),
    bt64: n(() => Buffer.from(Array.from({ length: 8 }, () => int(r, 0, 255)))),
    y: n(() => pick(r, ['0', '1901', '2155', String(int(r, 1901, 2155))])),
    dt: n(() => mysqlDate(r)),
    dtm: n(() => (chance(r, 0.1) ? pick(r, ['0000-00-00 00:00:00', '0000-01-01 10:20:30.000001', '2024-00-00 00:00:00']) : `${mysqlDate(r)} ${pad(int(r, 0, 23))}:${pad(int(r, 0, 59))}:${pad(int(r, 0, 59))}.${digits(r, 6)}`)),
    dt0: n(() => `${mysqlDate(r)} ${pad(int(r, 0, 23))}:${pad(int(r, 0, 59))}:${pad(int(r, 0, 59))}`),
    ts: n(() => mysqlTimestamp(r, 3)),
    ts0: n(() => mysqlTimestamp(r, 0)),
    tm: n(() => mysqlTime(r, 2)),
    tm0: n(() => mysqlTime(r, 0)),
    c: n(() => text(r, 4)),
    v: n(() => text(r, 100)),
    tt: n(() => text(r, 60)),
    tx: n(() => text(r, 300)),
    mt: n(() => text(r, 1000)),
    lt: n(() => (chance(r, 0.05) ? 'long text '.repeat(int(r, 1000, 8000)) : text(r, 2000))),
    bn: n(() => bytes(r, 4)),
    vb: n(() => bytes(r, 10)),
    tb: n(() => bytes(r, 100)),
    bl: n(() => bytes(r, 500)),
    mb: n(() => bytes(r, 2000)),
    lb: n(() => (chance(r, 0.05) ? Buffer.alloc(int(r, 20_000, 120_000), int(r, 0, 255)) : bytes(r, 2000))),
    e: n(() => pick(r, ['a', "b'q", 'c\\d', ' sp'])),
    s: n(() => ['z', 'x', 'y'].filter(() => chance(r, 0.5)).join(',')),
    j: n(() => jsonText(r)),
    u: n(() => randomUUID()),
    i4: n(() => ipv4(r)),
    i6: n(() => ipv6(r)),
  };
}

/** Options of mysql2 connections the workload and setup use: exact values, writers' session settings. */
async function connectMysqlWriter(params: ConnectionParams): Promise<Connection> {
  const connection = await mysql.createConnection({
    host: params.host,
    port: params.port,
    user: params.username,
    password: params.password ?? undefined,
    database: params.database ?? undefined,
    charset: 'utf8mb4_general_ci',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    multipleStatements: true,
  });
  connection.on('error', () => undefined);
  // Zero and invalid dates are what the test is about; timestamps are written in +02:00.
  await connection.query(`SET SESSION sql_mode = 'ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION', time_zone = '+0${MYSQL_WRITER_OFFSET_HOURS}:00'`);
  return connection;
}

export interface MysqlSeedOptions {
  allTypes?: number;
  accounts?: number;
  ledgerPerAccount?: number;
  bigIds?: number;
  seed?: number;
}

/** Creates the MySQL source tables in `params.database` and fills them (deterministic for a seed). */
export async function createMysqlSource(params: ConnectionParams, options: MysqlSeedOptions = {}): Promise<void> {
  const r = seededRng(options.seed ?? 1);
  const connection = await connectMysqlWriter(params);
  try {
    await connection.query(mysqlSourceSchemaSql());
    const columns = MYSQL_ALL_TYPES_COLUMNS.join(', ');
    const placeholders = `(${MYSQL_ALL_TYPES_COLUMNS.map(() => '?').join(', ')})`;
    // Edge rows first: every column NULL, then extremes.
    await connection.query(`INSERT INTO all_types (id) VALUES (1000000)`);
    await connection.query(
      String.raw`INSERT INTO all_types (${columns}) VALUES (5, 1, 200, -128, 255, 42, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
        -9223372036854775808, 18446744073709551615, -12.34, 12345678901234567890123456789012345.123456789012345678901234567890, 16777217,
        0.30000000000000004, b'00011', b'1111111111111111111111111111111111111111111111111111111111111111', 0, '0000-03-01',
        '2024-01-02 03:04:05.123456', '9999-12-31 23:59:59', '2038-01-19 05:14:07.123', '1970-01-01 02:00:01', '-838:59:59.99', '838:59:59',
        'ab', '😀 emoji\ttab \\ backslash\nnewline\rCR', 'tiny', 'text ünïcödé', 'medium', REPEAT('long', 1000),
        x'0001', x'ff', x'', x'00ff10', x'5c0a09', x'00', 'b''q', 'x,z', '{"a": 12345678901234567890, "b": [1, "😀"]}',
        '123e4567-e89b-12d3-a456-426614174000', '1.2.3.4', '::ffff:1.2.3.4')`,
    );
    await connection.query(
      `INSERT INTO all_types (b, dt, dtm, dt0, ts, ts0, s, e, tm, j, bt) VALUES (0, '0000-00-00', '0000-00-00 00:00:00', '2024-02-31 10:00:00', '0000-00-00 00:00:00', NULL, '', 'c\\\\d', '00:00:00', '[]', b'0')`,
    );
    const total = options.allTypes ?? 300;
    for (let done = 0; done < total; ) {
      const n = Math.min(50, total - done);
      const rows = Array.from({ length: n }, () => Object.values(mysqlAllTypesValues(r)));
      await connection.query(`INSERT INTO all_types (${columns}) VALUES ${rows.map(() => placeholders).join(', ')}`, rows.flat());
      done += n;
    }
    const accounts = options.accounts ?? 400;
    const accountRows = Array.from({ length: accounts }, (_, i) => [`owner ${i} ${text(r, 10)}`, `${int(r, 0, 100000)}.${digits(r, 2)}`, `2024-01-01 00:00:00.${digits(r, 6)}`]);
    await connection.query('INSERT INTO accounts (owner, balance, updated_at) VALUES ?', [accountRows]);
    const ledgerRows = [];
    for (let a = 0; a < accounts; a++) {
      for (let k = 0; k < (options.ledgerPerAccount ?? 2); k++) ledgerRows.push([1_000_000 + a, `${int(r, -500, 500)}.${digits(r, 2)}`, mysqlTimestamp(r, 6), text(r, 30)]);
    }
    if (ledgerRows.length > 0) await connection.query('INSERT INTO ledger (account_id, amount, at, note) VALUES ?', [ledgerRows]);
    await connection.query(`INSERT INTO lookup VALUES ${Array.from({ length: 20 }, (_, i) => `('code${i}', 'label ${i}')`).join(', ')}`);
    for (let i = 0; i < (options.bigIds ?? 20); i++) {
      // LAST_INSERT_ID(): insertId is a JavaScript number, and these keys are past 2^53.
      await connection.query('INSERT INTO big_ids (note) VALUES (?)', [`big ${i}`]);
      await connection.query('INSERT INTO big_children (big_id) VALUES (LAST_INSERT_ID()), (LAST_INSERT_ID())');
    }
  } finally {
    await connection.end();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL source

/**
 * The PostgreSQL source schema `schema` (its name becomes the MySQL database's). `generated`
 * (default true) adds a stored generated column to all_types; pgoutput on PostgreSQL 15 does
 * not send generated columns, so continuous jobs to another engine are tested with it apart.
 */
export function postgresSourceSchemaSql(schema: string, options: { generated?: boolean } = {}): string {
  const s = `"${schema}"`;
  return `
CREATE SCHEMA ${s};
CREATE TYPE ${s}.mood AS ENUM ('sad', 'ok', 'It''s \\ fine', 'emoji 😀');
CREATE DOMAIN ${s}.positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE ${s}.all_types (
  id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000000) PRIMARY KEY,
  s smallint, i integer, b bigint, ser serial,
  num numeric(12,3), unum numeric, r real, d double precision, flag boolean,
  ch character(5), bigch character(300), vc character varying(20), vcu character varying, bigvc character varying(20000), t text,
  by bytea, dt date, ts3 timestamp(3) without time zone, ts timestamp without time zone, tstz timestamp with time zone, tstz0 timestamp(0) with time zone,
  tm time(6) without time zone, tm0 time without time zone,
  u uuid, j json, jb jsonb, mood ${s}.mood, dom ${s}.positive_int, ip inet, net cidr${options.generated === false ? '' : `,
  half integer GENERATED ALWAYS AS (i / 2) STORED`}
);
CREATE INDEX all_types_vc ON ${s}.all_types (vc);
CREATE TABLE ${s}.accounts (
  id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000000) PRIMARY KEY,
  owner text NOT NULL,
  balance numeric(14,2) NOT NULL DEFAULT 0,
  version integer NOT NULL DEFAULT 0,
  updated_at timestamp with time zone
);
CREATE TABLE ${s}.ledger (
  id bigserial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES ${s}.accounts (id) ON UPDATE CASCADE ON DELETE CASCADE,
  amount numeric(14,2) NOT NULL,
  at timestamp(6) without time zone,
  note text
);
CREATE TABLE ${s}.lookup (code character varying(10) PRIMARY KEY, label text);
`;
}

export const PG_ALL_TYPES_COLUMNS = [
  's', 'i', 'b', 'num', 'unum', 'r', 'd', 'flag', 'ch', 'bigch', 'vc', 'vcu', 'bigvc', 't', 'by', 'dt', 'ts3', 'ts', 'tstz', 'tstz0', 'tm', 'tm0',
  'u', 'j', 'jb', 'mood', 'dom', 'ip', 'net',
] as const;

const PG_TEXT_PIECES = [...TEXT_PIECES, '\f', '\v', '\b'];

function pgDate(r: Rng): string {
  if (chance(r, 0.1)) return pick(r, ['0001-01-01', '9999-12-31', '2024-02-29', '1000-01-01']);
  return `${pad(int(r, 1, 9999), 4)}-${pad(int(r, 1, 12))}-${pad(int(r, 1, 28))}`;
}

function pgTime(r: Rng, fraction: number): string {
  // (Edge values with no more digits than the column keeps: 23:59:59.999999 in a timestamp(3) rounds to the next day.)
  if (chance(r, 0.05)) return pick(r, ['00:00:00', `23:59:59${fraction > 0 ? `.${'9'.repeat(fraction)}` : ''}`, '24:00:00']);
  const base = `${pad(int(r, 0, 23))}:${pad(int(r, 0, 59))}:${pad(int(r, 0, 59))}`;
  return fraction > 0 ? `${base}.${digits(r, fraction)}` : base;
}

/** A random value (PostgreSQL input text) for each writable all_types column. */
export function postgresAllTypesValues(r: Rng): Record<(typeof PG_ALL_TYPES_COLUMNS)[number], string | null> {
  const n = (v: () => string): string | null => (chance(r, 0.08) ? null : v());
  return {
    s: n(() => String(int(r, -32768, 32767))),
    i: n(() => String(int(r, -2147483648, 2147483647))),
    b: n(() => pick(r, ['-9223372036854775808', '9223372036854775807', String(bigRandom(r, 64) - 2n ** 63n)])),
    num: n(() => `${chance(r, 0.5) ? '-' : ''}${int(r, 0, 999999999)}.${digits(r, int(r, 0, 3))}`),
    unum: n(() => `${chance(r, 0.5) ? '-' : ''}${digits(r, int(r, 1, 35))}.${digits(r, int(r, 0, 30))}`),
    r: n(() => pick(r, ['0', '-0', '1.5', '3.4028235e38', '1e-45', String(Math.fround((r() * 2 - 1) * 10 ** int(r, -30, 30)))])),
    d: n(() => pick(r, ['0.1', '1e300', '-2.2250738585072014e-308', '5e-324', String((r() * 2 - 1) * 10 ** int(r, -100, 100))])),
    flag: n(() => pick(r, ['t', 'f'])),
    ch: n(() => text(r, 5, PG_TEXT_PIECES)),
    bigch: n(() => text(r, 300, PG_TEXT_PIECES)),
    vc: n(() => pick(r, ['a ', 'a', 'A', 'á', text(r, 20, PG_TEXT_PIECES)])),
    vcu: n(() => text(r, 200, PG_TEXT_PIECES)),
    bigvc: n(() => (chance(r, 0.1) ? 'x'.repeat(int(r, 16000, 20000)) : text(r, 500, PG_TEXT_PIECES))),
    t: n(() => (chance(r, 0.05) ? 'long text '.repeat(int(r, 1000, 8000)) : text(r, 1000, PG_TEXT_PIECES))),
    by: n(() => `\\x${bytes(r, chance(r, 0.05) ? 50_000 : 500).toString('hex')}`),
    dt: n(() => pgDate(r)),
    ts3: n(() => `${pgDate(r)} ${pgTime(r, 3)}`.replace(' 24:00:00', ' 23:00:00')),
    ts: n(() => `${pgDate(r)} ${pgTime(r, 6)}`.replace(' 24:00:00', ' 23:00:00')),
    // Keep the UTC value within years 1..9999 whatever the offset.
    tstz: n(() => `${pad(int(r, 2, 9998), 4)}-${pad(int(r, 1, 12))}-${pad(int(r, 1, 28))} ${pgTime(r, 6).replace('24:00:00', '12:00:00')}${pick(r, ['+00', '+05:30', '-08', '+14', '-03:30'])}`),
    tstz0: n(() => `${pad(int(r, 1971, 2100), 4)}-${pad(int(r, 1, 12))}-${pad(int(r, 1, 28))} ${pgTime(r, 0).replace('24:00:00', '12:00:00')}${pick(r, ['+00', '+01', '-07'])}`),
    tm: n(() => pgTime(r, 6)),
    tm0: n(() => pgTime(r, chance(r, 0.5) ? 6 : 0)),
    u: n(() => randomUUID()),
    j: n(() => jsonText(r)),
    jb: n(() => jsonText(r)),
    mood: n(() => pick(r, ['sad', 'ok', "It's \\ fine", 'emoji 😀'])),
    dom: n(() => String(int(r, 1, 2147483647))),
    ip: n(() => pick(r, [ipv4(r), `${ipv4(r)}/${int(r, 8, 32)}`, ipv6(r), '::1', '2001:db8::1/64'])),
    net: n(() => pick(r, ['10.0.0.0/8', '192.168.1.0/24', '10.1.2.3/32', '2001:db8::/32', '0.0.0.0/0'])),
  };
}

export interface PostgresSeedOptions {
  /** A stored generated column in all_types (default true). */
  generated?: boolean;
  allTypes?: number;
  accounts?: number;
  ledgerPerAccount?: number;
  seed?: number;
}

/** Creates the PostgreSQL source schema `schema` and fills it (deterministic for a seed). */
export async function createPostgresSource(client: pg.ClientBase, schema: string, options: PostgresSeedOptions = {}): Promise<void> {
  const r = seededRng(options.seed ?? 1);
  const s = `"${schema}"`;
  await client.query(postgresSourceSchemaSql(schema, { generated: options.generated }));
  // Edge rows: every column NULL, then extremes.
  await client.query(`INSERT INTO ${s}.all_types DEFAULT VALUES`);
  await client.query(
    `INSERT INTO ${s}.all_types (s, i, b, num, unum, r, d, flag, ch, bigch, vc, vcu, bigvc, t, by, dt, ts3, ts, tstz, tstz0, tm, tm0, u, j, jb, mood, dom, ip, net) VALUES
      (-32768, 2147483647, 9223372036854775807, 123456789.123, 123.456, 1.5, 0.1, true, 'ab', 'padded', 'héllo 😀', 'a ', repeat('x', 17000),
       E'tab\\there\\nnew\\rline \\\\ back \\f form \\x0b vtab \\b bs ''q'' "dq" 😀', '\\x00ff5c0a090d'::bytea,
       '0001-01-01', '2024-02-29 23:59:59.999', '1000-01-01 00:00:00.000001', '2024-01-01 10:00:00.123456+05:30', '1969-12-31 23:59:59-08',
       '23:59:59.999999', '24:00:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2.50], "a": 3}', '{"b": 1,  "a": [1, 2.50]}',
       'It''s \\ fine', 7, '192.168.0.1/24', '10.0.0.0/8')`,
  );
  const columns = PG_ALL_TYPES_COLUMNS.map((c) => `"${c}"`).join(', ');
  const total = options.allTypes ?? 300;
  for (let done = 0; done < total; ) {
    const n = Math.min(50, total - done);
    const values: Array<string | null> = [];
    const tuples: string[] = [];
    for (let k = 0; k < n; k++) {
      const row = Object.values(postgresAllTypesValues(r));
      tuples.push(`(${row.map((_, i) => `$${values.length + i + 1}`).join(', ')})`);
      values.push(...row);
    }
    await client.query(`INSERT INTO ${s}.all_types (${columns}) VALUES ${tuples.join(', ')}`, values);
    done += n;
  }
  await client.query(
    `INSERT INTO ${s}.accounts (owner, balance, updated_at)
       SELECT 'owner ' || g, (g * 37 % 100000) + 0.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, $1) g`,
    [options.accounts ?? 400],
  );
  await client.query(
    `INSERT INTO ${s}.ledger (account_id, amount, at, note)
       SELECT a.id, (k * 3 - 250) / 10.0, timestamp '2024-01-01' + k * interval '1 minute', 'note ' || k
         FROM ${s}.accounts a CROSS JOIN generate_series(1, $1) k`,
    [options.ledgerPerAccount ?? 2],
  );
  await client.query(`INSERT INTO ${s}.lookup SELECT 'code' || g, 'label ' || g FROM generate_series(0, 19) g`);
}

// ---------------------------------------------------------------------------------------------
// The workload

export interface CrossWorkloadOptions {
  engine: 'mysql' | 'postgresql';
  /** Connection to the source; for PostgreSQL, `schema` names the schema. */
  connection: ConnectionParams;
  /** PostgreSQL: the schema of the tables. */
  schema?: string;
  workers?: number;
  seed?: number;
  /** Pause between operations of a worker. */
  pauseMs?: number;
  /** Worker 0 truncates and refills `lookup` every this many operations (0: never), once enableTruncate() was called. */
  truncateEvery?: number;
  /** MySQL: the tables include big_ids / big_children (not in the crash test's schema). */
  bigIds?: boolean;
}

export interface CrossWorkloadStats {
  committed: number;
  rolledBack: number;
  conflicts: number;
  ops: Record<string, number>;
  errors: string[];
}

/** Keys moved by primary-key changes land below the AUTO_INCREMENT / identity start (1,000,000), in a range per worker. */
const MOVED_KEY_BASE = 1;
const MOVED_KEYS_PER_WORKER = 100_000;

interface Db {
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; insertId: number | string | null; affected: number }>;
  close(): Promise<void>;
}

async function openDb(options: CrossWorkloadOptions): Promise<Db> {
  if (options.engine === 'mysql') {
    const connection = await connectMysqlWriter(options.connection);
    return {
      async query(sql, params = []) {
        const [result] = await connection.query(sql, params);
        if (Array.isArray(result)) return { rows: result as Array<Record<string, unknown>>, insertId: null, affected: 0 };
        const header = result as mysql.ResultSetHeader;
        return { rows: [], insertId: header.insertId, affected: header.affectedRows };
      },
      close: () => connection.end(),
    };
  }
  const client = new pg.Client({
    host: options.connection.host,
    port: options.connection.port,
    user: options.connection.username,
    password: options.connection.password ?? undefined,
    database: options.connection.database ?? undefined,
  });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`SET search_path = "${options.schema}"; SET TimeZone = 'America/New_York'`);
  return {
    async query(sql, params = []) {
      // The workload writes MySQL placeholders; PostgreSQL numbers them.
      let k = 0;
      const text = sql.replace(/\?/g, () => `$${++k}`);
      const result = await client.query(text, params);
      const first = result.rows[0] as Record<string, unknown> | undefined;
      return { rows: result.rows as Array<Record<string, unknown>>, insertId: first?.id === undefined ? null : (first.id as string), affected: result.rowCount ?? 0 };
    },
    close: () => client.end(),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isConflict(error: unknown): boolean {
  const e = error as { code?: string; errno?: number };
  return e.errno === 1213 || e.errno === 1205 || e.code === '40P01' || e.code === '40001';
}

/** The concurrent writers; see the file comment. */
export class CrossWorkload {
  private readonly options: Required<Omit<CrossWorkloadOptions, 'schema'>> & { schema?: string };
  private running = false;
  private truncates = false;
  private loops: Promise<void>[] = [];
  private readonly stats: CrossWorkloadStats = { committed: 0, rolledBack: 0, conflicts: 0, ops: {}, errors: [] };

  constructor(options: CrossWorkloadOptions) {
    this.options = { workers: 3, seed: 7, pauseMs: 5, truncateEvery: 50, bigIds: options.engine === 'mysql', ...options };
  }

  /** Opens the workers' connections and starts writing. */
  async start(): Promise<void> {
    const workers = this.options.workers;
    const dbs = await Promise.all(Array.from({ length: workers }, () => openDb(this.options)));
    // Each worker's rows: the initial rows of its residue.
    const initial = await dbs[0]!.query('SELECT id FROM all_types');
    const accounts = await dbs[0]!.query('SELECT id FROM accounts');
    this.running = true;
    this.loops = dbs.map((db, w) => {
      const own = (rows: Array<Record<string, unknown>>) => rows.map((r) => String(r.id)).filter((id) => BigInt(id) % BigInt(workers) === BigInt(w));
      return this.run(db, w, own(initial.rows), own(accounts.rows));
    });
  }

  /**
   * Lets worker 0 truncate `lookup` from now on. Tests enable it once the job streams changes:
   * a TRUNCATE during the dump recreates the table under the snapshot (MySQL: "Table definition
   * has changed"), a case of its own.
   */
  enableTruncate(): void {
    this.truncates = true;
  }

  /** Resolves once at least `n` transactions committed since the start. */
  async waitForCommits(n: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.stats.committed < n) {
      if (this.stats.errors.length > 0) throw new Error(`workload errors: ${this.stats.errors.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`workload: only ${this.stats.committed} commits after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Stops the writers after their current operation; resolves with the counts. */
  async stop(): Promise<CrossWorkloadStats> {
    this.running = false;
    await Promise.allSettled(this.loops);
    this.loops = [];
    return { ...this.stats, ops: { ...this.stats.ops }, errors: [...this.stats.errors] };
  }

  private count(op: string): void {
    this.stats.ops[op] = (this.stats.ops[op] ?? 0) + 1;
  }

  private async run(db: Db, w: number, allTypes: string[], accounts: string[]): Promise<void> {
    const r = seededRng(this.options.seed * 1000 + w);
    const mysqlSource = this.options.engine === 'mysql';
    const columns = mysqlSource ? MYSQL_ALL_TYPES_COLUMNS : PG_ALL_TYPES_COLUMNS;
    const values = () => (mysqlSource ? Object.values(mysqlAllTypesValues(r)) : Object.values(postgresAllTypesValues(r)));
    const quoted = columns.map((c) => (mysqlSource ? `\`${c}\`` : `"${c}"`));
    let movedKeys = 0;
    const movedKey = () => String(MOVED_KEY_BASE + w * MOVED_KEYS_PER_WORKER + movedKeys++);
    const returning = mysqlSource ? '' : ' RETURNING id';
    const insertAllTypes = async (): Promise<string> => {
      const result = await db.query(`INSERT INTO all_types (${quoted.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})${returning}`, values());
      return String(result.insertId);
    };
    const someColumns = () => {
      const all = values();
      const chosen = columns.map((_, i) => i).filter(() => chance(r, 0.2));
      if (chosen.length === 0) chosen.push(int(r, 0, columns.length - 1));
      return { set: chosen.map((i) => `${quoted[i]} = ?`).join(', '), params: chosen.map((i) => all[i]) };
    };
    const takeRandom = (list: string[]): string | undefined => (list.length === 0 ? undefined : list.splice(int(r, 0, list.length - 1), 1)[0]);
    const randomOf = (list: string[]): string | undefined => (list.length === 0 ? undefined : list[int(r, 0, list.length - 1)]);
    const now = mysqlSource ? 'NOW(6)' : 'now()';
    let ops = 0;

    const transaction = async (body: () => Promise<void>, commit = true): Promise<void> => {
      await db.query(mysqlSource ? 'START TRANSACTION' : 'BEGIN');
      try {
        await body();
      } catch (error) {
        await db.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      await db.query(commit ? 'COMMIT' : 'ROLLBACK');
    };

    while (this.running) {
      ops++;
      const roll = r();
      // Rows a failed (conflicting) operation would have changed are restored to the lists below.
      const allTypesBefore = [...allTypes];
      const accountsBefore = [...accounts];
      try {
        if (w === 0 && this.truncates && this.options.truncateEvery > 0 && ops % this.options.truncateEvery === 0) {
          if (mysqlSource) {
            // TRUNCATE commits by itself in MySQL: its own binlog event, then the refill.
            await db.query('TRUNCATE TABLE lookup');
            await db.query(`INSERT INTO lookup VALUES ${Array.from({ length: 20 }, (_, i) => `('code${i}', 'after truncate ${ops}')`).join(', ')}`);
          } else {
            await transaction(async () => {
              await db.query('TRUNCATE TABLE lookup');
              await db.query(`INSERT INTO lookup SELECT 'code' || g, 'after truncate ${ops}' FROM generate_series(0, 19) g`);
            });
          }
          this.count('truncate');
        } else if (roll < 0.2) {
          allTypes.push(await insertAllTypes());
          this.count('insertAllTypes');
        } else if (roll < 0.35) {
          const id = randomOf(allTypes);
          if (id !== undefined) {
            const { set, params } = someColumns();
            await db.query(`UPDATE all_types SET ${set} WHERE id = ?`, [...params, id]);
            this.count('updateAllTypes');
          }
        } else if (roll < 0.42) {
          const id = randomOf(allTypes);
          if (id !== undefined) {
            await db.query(`UPDATE all_types SET ${quoted.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`, [...values(), id]);
            this.count('updateAllTypesEveryColumn');
          }
        } else if (roll < 0.5) {
          const id = takeRandom(allTypes);
          if (id !== undefined) {
            const to = movedKey();
            const { set, params } = someColumns();
            await db.query(`UPDATE all_types SET id = ?, ${set} WHERE id = ?`, [to, ...params, id]);
            allTypes.push(to);
            this.count('changeAllTypesKey');
          }
        } else if (roll < 0.56) {
          const id = takeRandom(allTypes);
          if (id !== undefined) {
            await db.query('DELETE FROM all_types WHERE id = ?', [id]);
            this.count('deleteAllTypes');
          }
        } else if (roll < 0.7) {
          const from = randomOf(accounts);
          const to = randomOf(accounts);
          if (from !== undefined && to !== undefined) {
            const amount = `${int(r, 1, 500)}.${pad(int(r, 0, 99))}`;
            await transaction(async () => {
              await db.query(`UPDATE accounts SET balance = balance - ?, version = version + 1, updated_at = ${now} WHERE id = ?`, [amount, from]);
              await db.query(`UPDATE accounts SET balance = balance + ?, version = version + 1, updated_at = ${now} WHERE id = ?`, [amount, to]);
              await db.query(`INSERT INTO ledger (account_id, amount, at, note) VALUES (?, ?, ${now}, ?)`, [from, `-${amount}`, `transfer to ${to}`]);
              await db.query(`INSERT INTO ledger (account_id, amount, at, note) VALUES (?, ?, ${now}, ?)`, [to, amount, `transfer from ${from}`]);
            });
            this.count('transfer');
          }
        } else if (roll < 0.78) {
          // Several tables in one transaction, a key change included.
          await transaction(async () => {
            const inserted = await insertAllTypes();
            allTypes.push(inserted);
            const account = randomOf(accounts);
            if (account !== undefined) {
              await db.query(`UPDATE accounts SET owner = ?, updated_at = ${now} WHERE id = ?`, [`multi ${ops}`, account]);
              await db.query(`INSERT INTO ledger (account_id, amount, at, note) VALUES (?, 0, ${now}, 'multi')`, [account]);
            }
            const victim = takeRandom(allTypes.filter((id) => id !== inserted));
            if (victim !== undefined) {
              allTypes.splice(allTypes.indexOf(victim), 1);
              await db.query('DELETE FROM all_types WHERE id = ?', [victim]);
            }
            const moved = randomOf(allTypes);
            if (moved !== undefined) {
              const to = movedKey();
              await db.query('UPDATE all_types SET id = ? WHERE id = ?', [to, moved]);
              allTypes.splice(allTypes.indexOf(moved), 1, to);
            }
          });
          this.count('multiTableTransaction');
        } else if (roll < 0.84) {
          // Rolled back: none of it may reach the destination.
          await transaction(async () => {
            await insertAllTypes();
            const id = randomOf(allTypes);
            if (id !== undefined) {
              const { set, params } = someColumns();
              await db.query(`UPDATE all_types SET ${set} WHERE id = ?`, [...params, id]);
              await db.query('DELETE FROM all_types WHERE id = ?', [id]);
            }
            const account = randomOf(accounts);
            if (account !== undefined) await db.query('UPDATE accounts SET balance = balance + 1000000 WHERE id = ?', [account]);
            await db.query('DELETE FROM lookup WHERE code = ?', ['code1']);
          }, false);
          this.stats.rolledBack++;
          this.count('rolledBackTransaction');
          allTypes.splice(0, allTypes.length, ...allTypesBefore);
          accounts.splice(0, accounts.length, ...accountsBefore);
          if (this.options.pauseMs > 0) await sleep(this.options.pauseMs);
          continue;
        } else if (roll < 0.88) {
          // A parent key change: PostgreSQL cascades it to the ledger rows (and logs each); on
          // MySQL (no cascade) the transaction moves them itself.
          const id = takeRandom(accounts);
          if (id !== undefined) {
            const to = movedKey();
            if (mysqlSource) {
              await transaction(async () => {
                await db.query('INSERT INTO accounts (id, owner, balance, version, updated_at) SELECT ?, owner, balance, version + 1, updated_at FROM accounts WHERE id = ?', [to, id]);
                await db.query('UPDATE ledger SET account_id = ? WHERE account_id = ?', [to, id]);
                await db.query('DELETE FROM accounts WHERE id = ?', [id]);
              });
            } else {
              await db.query('UPDATE accounts SET id = ?, version = version + 1 WHERE id = ?', [to, id]);
            }
            accounts.push(to);
            this.count('changeAccountKey');
          }
        } else if (roll < 0.91) {
          // A parent delete (PostgreSQL: cascading to its ledger rows; MySQL: with them); a new account takes its place.
          const id = takeRandom(accounts);
          if (id !== undefined) {
            if (mysqlSource) {
              await transaction(async () => {
                await db.query('DELETE FROM ledger WHERE account_id = ?', [id]);
                await db.query('DELETE FROM accounts WHERE id = ?', [id]);
              });
            } else {
              await db.query('DELETE FROM accounts WHERE id = ?', [id]);
            }
            this.count('deleteAccount');
          }
          const created = await db.query(`INSERT INTO accounts (owner, balance, updated_at) VALUES (?, 100, ${now})${returning}`, [`new ${w}.${ops}`]);
          const newId = String(created.insertId);
          if (BigInt(newId) % BigInt(this.options.workers) === BigInt(w)) accounts.push(newId);
          this.count('insertAccount');
        } else if (roll < 0.95 && this.options.bigIds && mysqlSource) {
          await transaction(async () => {
            await db.query('INSERT INTO big_ids (note) VALUES (?)', [`w${w} op${ops}`]);
            // LAST_INSERT_ID(): insertId is a JavaScript number, and these keys are past 2^53.
            await db.query('SET @big = LAST_INSERT_ID()');
            await db.query('INSERT INTO big_children (big_id) VALUES (@big)');
            if (chance(r, 0.3)) {
              await db.query('DELETE FROM big_children WHERE big_id = @big');
              await db.query('DELETE FROM big_ids WHERE id = @big');
            }
          });
          this.count('bigIds');
        } else if (w === 0) {
          await db.query('UPDATE lookup SET label = ? WHERE code = ?', [`label ${ops} 😀`, `code${int(r, 0, 19)}`]);
          this.count('updateLookup');
        } else {
          const id = randomOf(allTypes);
          if (id !== undefined) {
            await db.query(`UPDATE all_types SET ${quoted[0]} = NULL WHERE id = ?`, [id]);
            this.count('setNull');
          }
        }
        this.stats.committed++;
      } catch (error) {
        allTypes.splice(0, allTypes.length, ...allTypesBefore);
        accounts.splice(0, accounts.length, ...accountsBefore);
        if (isConflict(error)) {
          this.stats.conflicts++;
        } else if (this.running || this.stats.errors.length < 20) {
          this.stats.errors.push(`worker ${w}: ${(error as Error).message}`);
          if (this.stats.errors.length >= 20) break;
        }
      }
      if (this.options.pauseMs > 0) await sleep(this.options.pauseMs);
    }
    await db.close().catch(() => undefined);
  }
}
