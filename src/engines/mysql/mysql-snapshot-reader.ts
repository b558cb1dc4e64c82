/**
 * A consistent snapshot of a MySQL/MariaDB source, and the table readers that stream rows
 * from it in the interchange format.
 *
 * Snapshots. The coordinator connection runs `START TRANSACTION WITH CONSISTENT SNAPSHOT,
 * READ ONLY` (REPEATABLE READ) and reads the schema in it. InnoDB cannot share a snapshot
 * between connections, so every table reader opens its own consistent snapshot and has its
 * own binlog `position`: on MariaDB, `SHOW STATUS LIKE 'binlog_snapshot_%'` gives the exact
 * binlog file and offset of the session's snapshot without any lock. MySQL has no such
 * status: when the snapshot must line up with the change stream (`alignedWithChanges`),
 * the snapshot is started under a brief `FLUSH TABLES WITH READ LOCK` and the position read
 * with SHOW BINARY LOG STATUS (SHOW MASTER STATUS before 8.2), GTID set included. Positions
 * are `file:offset[#gtid]@server` (BinlogPosition), null when the binary log is off. The pipeline
 * applies each table's changes from the position of the reader that copied it.
 *
 * Rows are read with a streaming query (`mysql2` `.stream()`): the socket is paused while the
 * consumer is behind, so memory stays bounded whatever the table size. Every value arrives as
 * the raw bytes of the server's text protocol (`typeCast: false`) and is written out as is
 * or converted, never parsed into a JavaScript value that could lose it.
 *
 * Output format: PostgreSQL's text COPY format, one row per line ending in `\n`, fields
 * separated by a tab, `\N` for NULL, and the four bytes backslash, tab, newline and carriage
 * return written `\\`, `\t`, `\n`, `\r` (nothing else is escaped; the bytes between are
 * passed on unchanged). The MySQL table writer loads it with `LOAD DATA LOCAL INFILE ...
 * CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`.
 *
 * Values for a MySQL/MariaDB destination (`destinationEngine` 'mysql' or unset): the
 * server's own text (session in UTC, utf8mb4), generated columns left out:
 * - text, enum, set, json, decimal, integers, year, date, datetime, timestamp (UTC), time:
 *   as the server prints them, zero dates included (`0000-00-00`);
 * - binary, varbinary, blobs and bit(n): the raw bytes (bit(n) big-endian, as MySQL sends
 *   them), escaped as above; LOAD DATA stores the bytes as they are;
 * - float: the shortest decimal that reads back as the same 4-byte float (the server's own
 *   text keeps only 6 digits), or, where that text reads past the largest float (which MySQL
 *   refuses), the float's exact double text; double: the shortest decimal that reads back the same.
 *
 * Values for a PostgreSQL destination: the canonical form of docs/type-mapping.md, every
 * column included (generated columns too: the destination stores their values), through
 * the converters of src/core/type-mapping.ts:
 * - `tinyint(1)`: `t` / `f`; bit(n): n binary digits; binary types: `\\x` + hex (`\x` once
 *   unescaped); set: a text[] literal (`{a,b}`, `{}`); float and double as above;
 * - date, datetime, timestamp (here): zero and invalid dates (`0000-00-00`, `2024-00-10`,
 *   `2024-02-31` under ALLOW_INVALID_DATES) become `\N`, counted per column in
 *   `nulledZeroDates`; year 0 (`0000-03-01`) is 1 BC in PostgreSQL: `0001-03-01 BC`;
 *   timestamp gets `+00`;
 * - enum: the label; MySQL's error value '' (stored by a non-strict sql_mode for an invalid
 *   label) is written as '' (enumErrorValuePolicy 'label': the mapped enum type has that label)
 *   or as `\N`, counted per column (policy 'null');
 * - char, varchar and the text types: a NUL character, which PostgreSQL text cannot hold,
 *   refuses the table naming the column and the row's key (nulCharacterPolicy 'refuse'), or is
 *   removed and counted per column (policy 'strip');
 * - spatial types: MySQL's internal value (SRID + WKB) as EWKB hex, PostGIS's own text
 *   (src/core/spatial.ts); to another MySQL server they pass as their raw bytes like blobs;
 * - everything else (integers, decimal, year, time, json) is already canonical and passed on
 *   as bytes.
 */
import { zeroDateRefused } from '../../core/type-mapping.js';
import { ChangedValues, NulCharacterFound, describeRowKey, hasNulByte, keyColumnsOf, nulCharacterRefused, stripNulBytes, valuePoliciesOf } from '../../core/value-policies.js';
import type { ValuePolicies } from '../../core/value-policies.js';
import type { CopyOptions } from '../engine.js';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { ColumnSchema, DatabaseSchema, TableSchema } from '../../core/schema.js';
import { copiedColumns as columnsCopied, createMysqlValueConverter, mysqlFloatText, shortestDouble, shortestFloat32 } from '../../core/type-mapping.js';
import type { SourceSnapshot, TableReader } from '../engine.js';
import { BinlogPosition } from './binlog-position.js';
import { readServerIdentity } from './binlog-resume.js';
import { connectMysql, coreConnection, destroyQuietly, endQuietly, errorContext, mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';
import { isMysqlSpatialType } from '../../core/spatial.js';
import { MysqlIntrospector } from './mysql-introspector.js';
import type { MysqlFlavor } from './mysql-introspector.js';

type Row = Record<string, unknown>;

const BEGIN_SNAPSHOT_SQL = ['SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY'];
/** Rows buffered by the driver's stream before it pauses the socket. */
const ROW_HIGH_WATER_MARK = 256;
/** Bytes gathered into one output chunk. */
const CHUNK_BYTES = 64 * 1024;

const BACKSLASH = 0x5c;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const NULL_FIELD = Buffer.from('\\N');
const TAB_BYTE = Buffer.from('\t');
const LF_BYTE = Buffer.from('\n');

/**
 * How a column's raw text becomes its output field: as is (escaped), a float or double
 * rewritten to its shortest exact text, a date checked for zero and invalid dates, through
 * the canonical value converter of src/core/type-mapping.ts, or refused.
 */
export type MysqlValueKind = 'raw' | 'float' | 'double' | 'date' | 'datetime' | 'timestamp' | 'converted' | 'text' | 'enum';

/** Text types whose values may hold a NUL character, which PostgreSQL text cannot. */
export const NUL_CAPABLE_DATA_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);

const BINARY_DATA_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);
/**
 * Types whose canonical text differs from MySQL's (`tinyint(1)`, bits, bytes, sets): converted
 * as type-mapping.ts says. Every other type's text is already canonical and passes as bytes.
 */
const CONVERTED_DATA_TYPES = new Set(['tinyint', 'bool', 'boolean', 'bit', 'set', ...BINARY_DATA_TYPES]);
const TRUE_FIELD = Buffer.from('t');
const FALSE_FIELD = Buffer.from('f');

/** The bare type of a COLUMN_TYPE: `int(10) unsigned` → `int`. */
function dataTypeOf(nativeType: string): string {
  return (/^[a-z]+/i.exec(nativeType)?.[0] ?? nativeType).toLowerCase();
}

/** How a column of `nativeType` is written for a destination of the same engine (`sameEngine`) or another. */
export function valueKind(nativeType: string, sameEngine: boolean): MysqlValueKind {
  const dataType = dataTypeOf(nativeType);
  if (dataType === 'float') return 'float';
  if (dataType === 'double' || dataType === 'real') return 'double';
  if (sameEngine) return 'raw';
  if (isMysqlSpatialType(dataType)) return 'converted';
  if (dataType === 'date') return 'date';
  if (dataType === 'datetime') return 'datetime';
  if (dataType === 'timestamp') return 'timestamp';
  if (dataType === 'tinyint') return /^tinyint\(1\)$/i.test(nativeType.trim()) ? 'converted' : 'raw';
  if (CONVERTED_DATA_TYPES.has(dataType)) return 'converted';
  if (NUL_CAPABLE_DATA_TYPES.has(dataType)) return 'text';
  if (dataType === 'enum') return 'enum';
  return 'raw';
}

/** True when '' is one of the labels of an `enum(...)` COLUMN_TYPE (then it is no error value). */
export function enumHasEmptyLabel(nativeType: string): boolean {
  return /\(\s*''\s*[,)]|,\s*''\s*[,)]/.test(nativeType);
}

/** The columns copyOut writes, in order: generated columns only for another engine. */
export function copiedColumns(table: TableSchema, destinationEngine: EngineKind = 'mysql'): ColumnSchema[] {
  return columnsCopied(table, 'mysql', destinationEngine);
}

/** The SELECT that streams a table: FLOAT read as DOUBLE, since the text protocol keeps only 6 digits of it. */
export function copyOutSql(table: TableSchema, destinationEngine: EngineKind = 'mysql'): string {
  const list = copiedColumns(table, destinationEngine).map((c) =>
    dataTypeOf(c.nativeType) === 'float' ? `CAST(${quoteIdent(c.name)} AS DOUBLE)` : quoteIdent(c.name),
  );
  return `SELECT ${list.length === 0 ? '1' : list.join(', ')} FROM ${quoteQualified(table)}`;
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * A MySQL DATE / DATETIME text in PostgreSQL's syntax, or null for a zero or invalid date.
 * MySQL's year 0 is PostgreSQL's 1 BC.
 */
export function canonicalDateTime(text: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})(.*)$/.exec(text);
  if (match === null) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (year === 0) return `0001-${match[2]}-${match[3]}${match[4]} BC`;
  return text;
}

const UTC_SUFFIX = Buffer.from('+00');

function digit(bytes: Buffer, at: number): number {
  return (bytes[at] as number) - 0x30;
}

/** True for `YYYY-MM-DD...` with a year from 1 and a day that exists in its month: canonical as it is. */
function isPlainDate(raw: Buffer): boolean {
  if (raw.length < 10 || raw[4] !== 0x2d || raw[7] !== 0x2d) return false;
  const year = digit(raw, 0) * 1000 + digit(raw, 1) * 100 + digit(raw, 2) * 10 + digit(raw, 3);
  const month = digit(raw, 5) * 10 + digit(raw, 6);
  const day = digit(raw, 8) * 10 + digit(raw, 9);
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && (day <= 28 || day <= daysInMonth(year, month));
}

/** Escapes the bytes of one field for the COPY text format; returns the input when nothing needs it. */
export function escapeCopyBytes(value: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i];
    if (b === BACKSLASH || b === TAB || b === LF || b === CR) extra++;
  }
  if (extra === 0) return value;
  const out = Buffer.allocUnsafe(value.length + extra);
  let o = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i] as number;
    if (b === BACKSLASH || b === TAB || b === LF || b === CR) {
      out[o++] = BACKSLASH;
      out[o++] = b === BACKSLASH ? BACKSLASH : b === TAB ? 0x74 : b === LF ? 0x6e : 0x72;
    } else {
      out[o++] = b;
    }
  }
  return out;
}

type FieldEncoder = (raw: Buffer) => Buffer | null;

/** What an encoder does with the values the destination cannot hold as they are. */
interface EncoderHooks {
  policies: ValuePolicies;
  /** A zero or invalid date: throws when refused, else counts it (it is written as NULL). */
  onZeroDate(): void;
  /** Counts a value changed under a policy. */
  changed(kind: 'enum-error-value' | 'nul-character'): void;
}

/** Builds the encoder of one column. */
function fieldEncoder(table: TableSchema, column: ColumnSchema, sameEngine: boolean, hooks: EncoderHooks): FieldEncoder {
  const ascii = (text: string) => Buffer.from(text, 'latin1');
  const onZeroDate = () => hooks.onZeroDate();
  switch (valueKind(column.nativeType, sameEngine)) {
    case 'raw':
      return escapeCopyBytes;
    case 'text': {
      const strip = hooks.policies.nulCharacter === 'strip';
      return (raw) => {
        if (!hasNulByte(raw)) return escapeCopyBytes(raw);
        if (!strip) throw new NulCharacterFound(column.name);
        hooks.changed('nul-character');
        return escapeCopyBytes(stripNulBytes(raw));
      };
    }
    case 'enum': {
      if (hooks.policies.enumErrorValue === 'label' || enumHasEmptyLabel(column.nativeType)) return escapeCopyBytes;
      return (raw) => {
        if (raw.length > 0) return escapeCopyBytes(raw);
        hooks.changed('enum-error-value');
        return null;
      };
    }
    case 'float':
      return sameEngine ? (raw) => ascii(mysqlFloatText(Number(raw.toString('latin1')))) : (raw) => ascii(shortestFloat32(Number(raw.toString('latin1'))));
    case 'double':
      return (raw) => ascii(shortestDouble(Number(raw.toString('latin1'))));
    case 'converted': {
      // The two most common conversions, on bytes; they write what type-mapping.ts would.
      const dataType = dataTypeOf(column.nativeType);
      if (BINARY_DATA_TYPES.has(dataType)) return (raw) => Buffer.from(`\\\\x${raw.toString('hex')}`, 'latin1');
      if (dataType === 'tinyint') return (raw) => (raw.length === 1 && raw[0] === 0x30 ? FALSE_FIELD : TRUE_FIELD);
      const convert = createMysqlValueConverter(column.nativeType, { column: `${table.schema}.${table.name}.${column.name}` });
      return (raw) => {
        const text = convert(raw);
        return text === null ? null : escapeCopyBytes(Buffer.from(text, 'utf8'));
      };
    }
    case 'date':
    case 'datetime':
    case 'timestamp': {
      const suffix = valueKind(column.nativeType, sameEngine) === 'timestamp' ? UTC_SUFFIX : null;
      return (raw) => {
        // Valid dates of years 1 to 9999 (nearly all) pass as their bytes.
        if (isPlainDate(raw)) return suffix === null ? raw : Buffer.concat([raw, suffix]);
        const text = canonicalDateTime(raw.toString('latin1'));
        if (text === null) onZeroDate();
        return text === null ? null : ascii(suffix === null ? text : `${text}+00`);
      };
    }
  }
}

/** Turns driver rows (arrays of raw Buffers) into COPY text chunks. */
class RowEncoder extends Transform {
  private parts: Buffer[] = [];
  private size = 0;
  /** Names the row whose value an encoder refused (the table's key columns, by copied position). */
  describeKey: ((row: Array<Buffer | null>) => string) | null = null;

  constructor(private readonly encoders: FieldEncoder[]) {
    super({ writableObjectMode: true, writableHighWaterMark: ROW_HIGH_WATER_MARK, readableHighWaterMark: CHUNK_BYTES * 4 });
  }

  override _transform(row: Array<Buffer | null>, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const { encoders, parts } = this;
      for (let i = 0; i < encoders.length; i++) {
        if (i > 0) parts.push(TAB_BYTE);
        const raw = row[i];
        const field = raw === null || raw === undefined ? null : (encoders[i] as FieldEncoder)(raw);
        const bytes = field ?? NULL_FIELD;
        parts.push(bytes);
        this.size += bytes.length + 1;
      }
      parts.push(LF_BYTE);
      this.size += 1;
      if (this.size >= CHUNK_BYTES) this.pushChunk();
      callback();
    } catch (error) {
      if (error instanceof NulCharacterFound && this.describeKey !== null) {
        callback(this.refuseNul(error, row));
        return;
      }
      callback(error as Error);
    }
  }

  /** Set by copyOut: the qualified table name for refusals. */
  table = '';

  private refuseNul(error: NulCharacterFound, row: Array<Buffer | null>): FerryError {
    return nulCharacterRefused(this.table, error.column, (this.describeKey as (row: Array<Buffer | null>) => string)(row));
  }

  override _flush(callback: TransformCallback): void {
    if (this.size > 0) this.pushChunk();
    callback();
  }

  private pushChunk(): void {
    this.push(Buffer.concat(this.parts));
    this.parts = [];
    this.size = 0;
  }
}

/**
 * Starts a consistent snapshot on `connection` and resolves with its binlog position
 * (null when the binary log is off, or on MySQL when no position was asked for).
 */
async function beginConsistentSnapshot(connection: MysqlConnection, flavor: MysqlFlavor, withPosition: boolean): Promise<string | null> {
  await connection.query(BEGIN_SNAPSHOT_SQL[0] as string);
  if (flavor === 'mariadb') {
    await connection.query(BEGIN_SNAPSHOT_SQL[1] as string);
    const [rows] = await connection.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const status = new Map((rows as Row[]).map((r) => [String(r.Variable_name).toLowerCase(), mysqlText(r.Value) ?? '']));
    const file = status.get('binlog_snapshot_file') ?? '';
    const offset = status.get('binlog_snapshot_position') ?? '';
    // No GTID state (BINLOG_GTID_POS would read the binlog file up to the offset for every table): a
    // table position is compared with changes of the same server, or passed before a failover.
    return file === '' || offset === '' ? null : new BinlogPosition(file, Number(offset), null, (await readServerIdentity(connection)).id).format();
  }
  if (!withPosition) {
    await connection.query(BEGIN_SNAPSHOT_SQL[1] as string);
    return null;
  }
  // MySQL: no write can commit while the global read lock is held, so the snapshot and the
  // binlog position read under it match exactly. The lock is held for milliseconds.
  await connection.query('FLUSH TABLES WITH READ LOCK');
  try {
    await connection.query(BEGIN_SNAPSHOT_SQL[1] as string);
    let rows: Row[];
    try {
      [rows] = (await connection.query('SHOW BINARY LOG STATUS')) as unknown as [Row[]];
    } catch {
      [rows] = (await connection.query('SHOW MASTER STATUS')) as unknown as [Row[]];
    }
    const row = rows[0];
    if (row === undefined) return null;
    const gtid = (mysqlText(row.Executed_Gtid_Set) ?? '').replace(/\s+/g, '');
    return new BinlogPosition(String(row.File), Number(row.Position), gtid === '' ? null : gtid, (await readServerIdentity(connection)).id).format();
  } finally {
    await connection.query('UNLOCK TABLES');
  }
}

/** Opens a snapshot of the source: connects, starts the coordinator's consistent snapshot. */
export async function openMysqlSnapshot(params: ConnectionParams, options: { alignedWithChanges?: boolean } = {}): Promise<MysqlSnapshotReader> {
  const context = errorContext(params, { operation: 'read' });
  const connection = await connectMysql(params, { context });
  try {
    const flavor = await MysqlIntrospector.flavorOf(connection);
    const aligned = options.alignedWithChanges === true;
    const position = await beginConsistentSnapshot(connection, flavor, aligned);
    return new MysqlSnapshotReader(params, connection, flavor, aligned, `mysql-snapshot-${connection.threadId}`, position);
  } catch (error) {
    destroyQuietly(connection);
    throw classifyMysqlError(error, context);
  }
}

export class MysqlSnapshotReader implements SourceSnapshot {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly params: ConnectionParams,
    private readonly coordinator: MysqlConnection,
    private readonly flavor: MysqlFlavor,
    private readonly aligned: boolean,
    readonly id: string,
    /** The coordinator's binlog position; each reader has its own (see TableReader.position). */
    readonly position: string | null,
  ) {}

  async readSchema(selection: ObjectSelection): Promise<DatabaseSchema> {
    if (this.closing !== null) {
      throw new FerryError('FAILED_PRECONDITION', 'The source snapshot is closed; open a new one to read the schema.');
    }
    try {
      return await new MysqlIntrospector(this.coordinator, this.flavor, this.params.database).readSchema(selection);
    } catch (error) {
      throw classifyMysqlError(error, errorContext(this.params, { operation: 'read' }));
    }
  }

  async openTableReader(): Promise<TableReader> {
    if (this.closing !== null) {
      throw new FerryError('SNAPSHOT_LOST', `The source snapshot ${this.id} was closed before this reader was opened. Ferry starts the copy again from a new snapshot.`, {
        retryable: true,
        details: { snapshotId: this.id },
      });
    }
    const context = errorContext(this.params, { operation: 'read' });
    const connection = await connectMysql(this.params, { context });
    try {
      const position = await beginConsistentSnapshot(connection, this.flavor, this.aligned);
      return new MysqlTableReader(connection, context, position);
    } catch (error) {
      destroyQuietly(connection);
      throw classifyMysqlError(error, context);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.coordinator.query('COMMIT');
      } catch {
        // The transaction only read: whether it commits or dies with the connection is the same.
      } finally {
        await endQuietly(this.coordinator);
      }
    })();
    return this.closing;
  }
}

/** Streams tables in COPY text format from one connection with its own consistent snapshot. */
export class MysqlTableReader implements TableReader {
  /** Values changed for a PostgreSQL destination (zero dates, ENUM error values, NUL characters), per `db.table.column`, since this reader opened. */
  readonly changedValues = new ChangedValues();

  /** Zero or invalid dates written as NULL, per `db.table.column`, since the last takeWarnings. */
  get nulledZeroDates(): Map<string, number> {
    return this.changedValues.countsOf('zero-date');
  }

  takeWarnings(): string[] {
    return this.changedValues.take();
  }
  private active: { rows: Readable; output: RowEncoder } | null = null;
  private broken: FerryError | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly connection: MysqlConnection,
    private readonly context: MysqlErrorContext,
    /** The binlog position of this reader's own snapshot (null when the binary log is off). */
    readonly position: string | null,
  ) {}

  copyOut(table: TableSchema, options: CopyOptions = {}): Readable {
    const destinationEngine = options.destinationEngine ?? 'mysql';
    const sameEngine = destinationEngine === 'mysql';
    const columns = copiedColumns(table, destinationEngine);
    let encoders: FieldEncoder[] = [];
    let refusal =
      this.closing !== null
        ? new FerryError('FAILED_PRECONDITION', 'This table reader is closed; open another one from the snapshot.')
        : (this.broken ?? (this.active !== null ? new FerryError('FAILED_PRECONDITION', 'This table reader is already copying a table; read one table at a time per reader.') : null));
    if (refusal === null) {
      try {
        const policies = valuePoliciesOf(options);
        encoders = columns.map((column) => {
          const name = `${table.schema}.${table.name}.${column.name}`;
          return fieldEncoder(table, column, sameEngine, {
            policies,
            onZeroDate: () => {
              if (policies.zeroDates === 'refuse') throw zeroDateRefused(name);
              this.changedValues.add(name, 'zero-date');
            },
            changed: (kind) => this.changedValues.add(name, kind),
          });
        });
      } catch (error) {
        refusal = error as FerryError;
      }
    }
    const output = new RowEncoder(encoders);
    output.table = `${table.schema}.${table.name}`;
    const keyColumns = keyColumnsOf(table);
    const keyPositions = keyColumns.map((name) => columns.findIndex((c) => c.name === name));
    output.describeKey = (row) => describeRowKey(keyColumns, keyPositions.map((i) => (i < 0 ? null : (row[i]?.toString('utf8') ?? null))));
    if (refusal !== null) {
      const reason = refusal;
      process.nextTick(() => output.destroy(reason));
      return output;
    }

    const rows = coreConnection(this.connection)
      .query({ sql: copyOutSql(table, destinationEngine), typeCast: false, rowsAsArray: true })
      .stream({ highWaterMark: ROW_HIGH_WATER_MARK });
    const copy = { rows, output };
    this.active = copy;
    let ended = false;
    rows.on('error', (error: unknown) => {
      const classified = classifyMysqlError(error, this.context);
      this.broken ??= classified;
      rows.unpipe(output);
      output.destroy(classified);
    });
    rows.on('end', () => {
      ended = true;
      if (this.active === copy) this.active = null;
    });
    output.on('error', () => {
      // An encoder failure: the connection is still inside the result set.
      if (!ended) rows.unpipe(output);
    });
    output.on('close', () => {
      if (this.active !== copy) return;
      this.active = null;
      if (!ended) {
        // The consumer stopped mid-table: the connection is still reading the result set
        // and cannot be reused, so it is dropped.
        this.broken ??= new FerryError('CONNECTION_LOST', 'The copy was stopped before the end of the table; open another reader.', { retryable: true });
        rows.unpipe(output);
        void this.close();
      }
    });
    rows.pipe(output);
    return output;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const copy = this.active;
      this.active = null;
      if (copy !== null && !copy.output.destroyed) {
        copy.output.destroy(new FerryError('FAILED_PRECONDITION', 'The table reader was closed while copying a table.'));
      }
      if (copy !== null || this.broken !== null) {
        // A result set in flight cannot be abandoned politely: drop the socket (the
        // read-only transaction has nothing to lose).
        destroyQuietly(this.connection);
        return;
      }
      try {
        await this.connection.query('COMMIT');
      } catch {
        // Read-only transaction: nothing to lose.
      }
      await endQuietly(this.connection);
    })();
    return this.closing;
  }
}
