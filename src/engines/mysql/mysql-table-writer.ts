/**
 * Loads table data into MySQL/MariaDB: `LOAD DATA LOCAL INFILE` fed from the interchange
 * stream (PostgreSQL text COPY format) through `mysql2`'s `infileStreamFactory`, inside one
 * transaction that first empties the table, so a load is all or nothing and loading again
 * after a crash is exact. Streams only: memory is bounded by the stream buffers (the driver
 * pauses the feed when the socket is full) whatever the table size.
 *
 * Values: from a MySQL/MariaDB source (`sourceEngine` 'mysql', the default) they are the
 * server's own text and load as they are (bytes raw, escaped). From a PostgreSQL source they are the canonical
 * form of docs/type-mapping.md, converted by the LOAD DATA statement itself (`SET col =
 * expression(@var)`, chosen by the destination column's type, so domains and reused tables
 * are handled alike): booleans `t`/`f` to 1/0, bytea `\x..` to bytes, timestamps with an
 * offset to UTC, PostGIS EWKB hex to MySQL's geometry format (spatialConversionSql).
 * Anything the server cannot store exactly raises a warning, and a load with warnings is
 * rolled back and refused (`LOAD DATA LOCAL` turns errors into warnings), except the warnings
 * of MySQL's ENUM error values ('') that a MySQL source sends: the feed counts them per column
 * and exactly that many are accepted (enum-error-values.ts).
 */
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { isMysqlSpatialType } from '../../core/spatial.js';
import type { TableSchema } from '../../core/schema.js';
import { copiedColumns } from '../../core/type-mapping.js';
import type { LoadOptions, LoadResult, TableWriter } from '../engine.js';
import { MAX_ERROR_COUNT, STRICT_WRITE_SQL_MODE, takesEnumErrorValue, unexpectedWarnings, warningsRefused } from './enum-error-values.js';
import { loadSql } from './load-sql.js';
import { connectMysql, endQuietly, errorContext, mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import { checkMysqlFence } from './mysql-job-fence.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';

type Row = Record<string, unknown>;

/**
 * Session settings of a load connection. Foreign and unique checks are off for the bulk load
 * (the rows come from a source that enforced its own keys; the table was emptied first).
 * The sql_mode is set whole so that the statement's escapes read the same whatever the
 * server's default (NO_BACKSLASH_ESCAPES would change `'\\'`), 0 in an AUTO_INCREMENT column
 * stays 0 (NO_AUTO_VALUE_ON_ZERO, as mysqldump sets), and zero or invalid dates a MySQL source
 * holds load as they are. Notes (trailing spaces trimmed from CHAR values, ...) are not
 * counted: only warnings refuse a load. Every warning is kept (max_error_count), so those of
 * ENUM error values can be told from the others.
 */
export const LOAD_SESSION_SQL = [
  `SET SESSION sql_mode = '${STRICT_WRITE_SQL_MODE}'`,
  `SET SESSION max_error_count = ${MAX_ERROR_COUNT}`,
  'SET SESSION foreign_key_checks = 0',
  'SET SESSION unique_checks = 0',
  'SET SESSION sql_notes = 0',
];

/** The largest slice handed to the driver at once: each becomes one protocol packet (at most 16 MiB). */
const MAX_PACKET_BYTES = 1024 * 1024;
/** Smaller chunks are gathered up to this size before they are handed on. */
const MIN_PACKET_BYTES = 64 * 1024;

/** A destination column as information_schema describes it. */
export interface DestinationColumnType {
  name: string;
  /** The bare type: tinyint, varbinary, datetime, ... */
  dataType: string;
  /** The full type: tinyint(1), int(10) unsigned, ... */
  columnType: string;
}

const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);
const DATETIME_TYPES = new Set(['datetime', 'timestamp']);
/** A UTC offset at the end of a PostgreSQL timestamp with time zone: +HH, +HH:MM or +HH:MM:SS. */
const OFFSET_PATTERN = "'[+-][0-9]{2}(:[0-9]{2}){0,2}$'";

/**
 * The SQL that turns a canonical (PostgreSQL text) value `v` into the value of a destination
 * column of `type`, or null when the text loads as it is.
 */
export function canonicalConversionSql(type: DestinationColumnType, v: string): string | null {
  if (type.dataType === 'tinyint' && /^tinyint\(1\)/.test(type.columnType)) {
    return `CASE ${v} WHEN 't' THEN 1 WHEN 'f' THEN 0 ELSE ${v} END`;
  }
  if (BINARY_TYPES.has(type.dataType)) {
    return `IF(LEFT(${v}, 2) = '\\\\x', UNHEX(SUBSTRING(${v}, 3)), CAST(${v} AS BINARY))`;
  }
  if (isMysqlSpatialType(type.dataType)) return spatialConversionSql(v);
  if (type.dataType === 'float') {
    // PostgreSQL prints the largest real as 3.4028235e+38, which MySQL refuses as out of range
    // (it reads it as a double past the largest float, although it rounds to it).
    return `IF(ABS(${v}) > 3.4028234663852886e38 AND ABS(${v}) < 3.4028235677973366e38, IF(${v} < 0, '-3.4028234663852886e38', '3.4028234663852886e38'), ${v})`;
  }
  if (DATETIME_TYPES.has(type.dataType)) {
    // A PostgreSQL session in UTC prints +00: cut it. Other offsets are subtracted with
    // TIMESTAMPADD, which (unlike CONVERT_TZ) works for every year.
    const offset = `REGEXP_SUBSTR(${v}, ${OFFSET_PATTERN})`;
    const seconds =
      `(IF(LEFT(${offset}, 1) = '-', -1, 1) * (SUBSTRING(${offset}, 2, 2) * 3600 + ` +
      `IFNULL(NULLIF(SUBSTRING(${offset}, 5, 2), ''), 0) * 60 + IFNULL(NULLIF(SUBSTRING(${offset}, 8, 2), ''), 0)))`;
    return (
      `IF(RIGHT(${v}, 3) = '+00', LEFT(${v}, LENGTH(${v}) - 3), ` +
      `IF(${v} REGEXP ${OFFSET_PATTERN}, TIMESTAMPADD(MICROSECOND, -1000000 * ${seconds}, ` +
      `CAST(REGEXP_REPLACE(${v}, ${OFFSET_PATTERN}, '') AS DATETIME(6))), ${v}))`
    );
  }
  return null;
}

/**
 * PostGIS's text of a geometry (EWKB hex, little-endian as PostgreSQL prints it on every
 * common CPU) as MySQL's internal format: the SRID (4 bytes, little-endian; 0 when the EWKB
 * has none) followed by the WKB, i.e. the EWKB with its SRID moved to the front and the SRID
 * flag (0x20 in the type's last byte) cleared. The bytes are rearranged, never parsed, so
 * coordinates stay exact. What MySQL cannot hold (Z or M flags, big-endian EWKB) is left
 * invalid on purpose: the server refuses it with a warning, and a load with warnings is
 * refused (the change applier converts the same values in core/spatial.ts).
 */
export function spatialConversionSql(v: string): string {
  const b = `UNHEX(${v})`;
  const flags = `ASCII(SUBSTRING(${b}, 5, 1))`;
  return (
    `IF(LEFT(${b}, 1) = 0x01 AND (${flags} & 0x20) <> 0, ` +
    `CONCAT(SUBSTRING(${b}, 6, 4), SUBSTRING(${b}, 1, 4), CHAR(${flags} & 0xDF), SUBSTRING(${b}, 10)), ` +
    `CONCAT(0x00000000, ${b}))`
  );
}

/**
 * The LOAD DATA statement for the columns the source sends, in the interchange order
 * (`copiedColumns`: from MySQL, generated columns left out; from another engine, every
 * column). `destination` gives the destination's column types when values need converting
 * (a PostgreSQL source), else null.
 */
export function loadDataSql(table: TableSchema, sourceEngine: EngineKind, destination: Map<string, DestinationColumnType> | null): string {
  const targets: string[] = [];
  const assignments: string[] = [];
  copiedColumns(table, sourceEngine, 'mysql').forEach((column, i) => {
    const type = destination?.get(column.name);
    const variable = `@v${i + 1}`;
    const conversion = type === undefined ? null : canonicalConversionSql(type, variable);
    if (conversion === null) {
      targets.push(quoteIdent(column.name));
    } else {
      targets.push(variable);
      assignments.push(`${quoteIdent(column.name)} = ${conversion}`);
    }
  });
  return (
    `LOAD DATA LOCAL INFILE 'ferry' INTO TABLE ${quoteQualified(table)} CHARACTER SET utf8mb4 ` +
    `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})` +
    (assignments.length === 0 ? '' : ` SET ${assignments.join(', ')}`)
  );
}

const BACKSLASH = 0x5c;
const ESCAPES: Record<number, number> = { 0x66: 0x0c, 0x76: 0x0b }; // \f form feed, \v vertical tab

/**
 * The bytes of the interchange stream as LOAD DATA reads them: counts them, gathers small
 * chunks and cuts large ones into packet-sized slices, and, for PostgreSQL's COPY text,
 * rewrites the two escapes PostgreSQL writes that MySQL does not know (`\f`, `\v`: LOAD DATA
 * would read them as `f` and `v`) into the characters themselves. Every other escape
 * (`\\`, `\t`, `\n`, `\r`, `\b`, `\N`) means the same in both.
 */
export class LoadFeed extends Transform {
  bytes = 0;
  /** Empty fields seen per watched field position (`emptyFieldsOf`): MySQL's ENUM error values. */
  readonly emptyCounts: number[];
  private field = 0;
  private fieldBytes = 0;
  /** A backslash that ended the previous chunk: its escape continues in the next one. */
  private pendingBackslash = false;
  /** Small chunks gathered until they make a packet. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * `watched`: field positions (0-based, in the row) whose empty values are counted; only for
   * MySQL's own text, where a tab or newline byte always ends a field.
   */
  constructor(
    private readonly rewriteEscapes: boolean,
    private readonly watched: boolean[] = [],
  ) {
    super();
    this.emptyCounts = watched.map(() => 0);
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.bytes += data.length;
    if (this.watched.length > 0) this.countEmptyFields(data);
    if (this.rewriteEscapes) data = this.rewrite(data);
    if (data.length >= MIN_PACKET_BYTES) {
      this.pushPending();
      for (let at = 0; at < data.length; at += MAX_PACKET_BYTES) this.push(data.subarray(at, at + MAX_PACKET_BYTES));
    } else if (data.length > 0) {
      // Readers often emit one row per chunk: gathered, they go out as fewer, larger packets.
      this.pending.push(data);
      this.pendingBytes += data.length;
      if (this.pendingBytes >= MIN_PACKET_BYTES) this.pushPending();
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.pendingBackslash) {
      this.pending.push(Buffer.from([BACKSLASH]));
      this.pendingBytes++;
    }
    this.pendingBackslash = false;
    this.pushPending();
    callback();
  }

  private countEmptyFields(data: Buffer): void {
    const { watched, emptyCounts } = this;
    let { field, fieldBytes } = this;
    for (let i = 0; i < data.length; i++) {
      const b = data[i] as number;
      if (b !== 0x09 && b !== 0x0a) {
        fieldBytes++;
        continue;
      }
      if (fieldBytes === 0 && watched[field] === true) emptyCounts[field] = (emptyCounts[field] as number) + 1;
      fieldBytes = 0;
      field = b === 0x09 ? field + 1 : 0;
    }
    this.field = field;
    this.fieldBytes = fieldBytes;
  }

  private pushPending(): void {
    if (this.pending.length === 0) return;
    this.push(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private rewrite(input: Buffer): Buffer {
    let data = input;
    if (this.pendingBackslash) {
      this.pendingBackslash = false;
      data = Buffer.concat([Buffer.from([BACKSLASH]), data]);
    }
    let at = data.indexOf(BACKSLASH);
    if (at === -1) return data;
    let output: Buffer | null = null;
    let written = 0;
    let copied = 0;
    while (at !== -1) {
      if (at + 1 >= data.length) {
        // The escape's second byte is in the next chunk.
        this.pendingBackslash = true;
        break;
      }
      const replacement = ESCAPES[data[at + 1] as number];
      if (replacement !== undefined) {
        output ??= Buffer.allocUnsafe(data.length);
        written += data.copy(output, written, copied, at);
        output[written++] = replacement;
        copied = at + 2;
      }
      at = data.indexOf(BACKSLASH, at + 2);
    }
    const end = this.pendingBackslash ? data.length - 1 : data.length;
    if (output === null) return data.subarray(0, end);
    written += data.copy(output, written, copied, end);
    return output.subarray(0, written);
  }
}

export async function openMysqlTableWriter(params: ConnectionParams): Promise<MysqlTableWriter> {
  const context = errorContext(params, { operation: 'write' });
  const connection = await connectMysql(params, { context });
  try {
    for (const statement of LOAD_SESSION_SQL) await connection.query(statement);
  } catch (error) {
    await endQuietly(connection);
    throw classifyMysqlError(error, context);
  }
  return new MysqlTableWriter(connection, context);
}

export class MysqlTableWriter implements TableWriter {
  /** Set when the connection can no longer be trusted (a rollback failed): later loads refuse. */
  private broken: FerryError | null = null;
  private busy = false;

  constructor(
    private readonly connection: MysqlConnection,
    private readonly context: MysqlErrorContext,
  ) {}

  async replaceTableData(table: TableSchema, rows: Readable, signal: AbortSignal, options: Pick<LoadOptions, 'sourceEngine' | 'fence'> = {}): Promise<LoadResult> {
    if (this.broken !== null) {
      rows.destroy();
      throw this.broken;
    }
    if (this.busy) {
      rows.destroy();
      throw new FerryError('FAILED_PRECONDITION', 'This table writer is already loading a table; load one table at a time per writer.');
    }
    this.busy = true;
    // A source failure, whenever it comes (even before the pipeline below takes the stream),
    // is what the load reports: the driver and the pipeline only see its consequences.
    let sourceError: unknown = rows.errored;
    rows.on('error', (error) => {
      sourceError ??= error;
    });
    const name = `${table.schema}.${table.name}`;
    const sourceEngine = options.sourceEngine ?? 'mysql';
    let feed = new LoadFeed(sourceEngine === 'postgresql');
    let flowing: Promise<void> | null = null;
    try {
      signal.throwIfAborted();
      const destination = await this.readColumns(table, sourceEngine);
      const copied = copiedColumns(table, sourceEngine, 'mysql');
      // A MySQL source's '' in an enum without that label is its error value: counted, so that its warnings are expected.
      const watched = sourceEngine === 'mysql' ? copied.map((c) => { const t = destination.get(c.name); return t !== undefined && takesEnumErrorValue(t.dataType, t.columnType); }) : [];
      if (watched.includes(true)) feed = new LoadFeed(false, watched);
      const sql = loadDataSql(table, sourceEngine, sourceEngine === 'mysql' ? null : destination);
      // TRUNCATE would commit at once in MySQL, so a failed or cancelled load would leave the
      // table empty where it held the previous complete load. DELETE inside the load's own
      // transaction keeps the contract: on rejection or abort nothing of this load is visible
      // (and what was there stays). It costs little: the table is nearly always empty here.
      await this.connection.query('START TRANSACTION');
      try {
        const [present] = await this.connection.query(`SELECT 1 AS present FROM ${quoteQualified(table)} LIMIT 1`);
        if ((present as Row[]).length > 0) await this.connection.query(`DELETE FROM ${quoteQualified(table)}`);
        // The signal destroys both streams: the driver then ends the file early and the query
        // rejects with the abort, and the rollback below removes the rows the server took.
        flowing = pipeline(rows, feed, { signal });
        flowing.catch(() => undefined);
        const [result] = await this.connection.query({
          sql,
          infileStreamFactory: () => (feed.destroyed ? failedStream(signal.reason ?? new Error('the load was cancelled')) : feed),
        });
        await flowing;
        const affected = Number((result as { affectedRows?: unknown }).affectedRows ?? 0);
        const warnings = Number((result as { warningStatus?: unknown }).warningStatus ?? 0);
        if (warnings > 0) {
          const expected = new Map<string, number>();
          feed.emptyCounts.forEach((n, i) => {
            if (n > 0) expected.set((copied[i] as { name: string }).name, n);
          });
          const unexpected = await unexpectedWarnings(this.connection, warnings, expected);
          if (unexpected !== null) throw refusal(table, warnings, unexpected);
        }
        if (options.fence !== undefined) await checkMysqlFence(this.connection, options.fence, `Loading ${name}`);
        await this.connection.query('COMMIT');
        return { rows: affected, bytes: feed.bytes };
      } catch (error) {
        try {
          await this.connection.query('ROLLBACK');
        } catch (rollbackError) {
          this.broken = classifyMysqlError(rollbackError, this.context);
        }
        throw error;
      }
    } catch (error) {
      rows.destroy();
      feed.destroy();
      if (signal.aborted) {
        if (signal.reason instanceof FerryError) throw signal.reason;
        throw new FerryError('FAILED_PRECONDITION', `Loading ${name} was cancelled; nothing of this load was kept.`, {
          cause: error,
          details: { table: name, aborted: true },
        });
      }
      const cause = sourceError ?? error;
      if (cause instanceof FerryError) throw cause;
      throw classifyMysqlError(cause, this.context);
    } finally {
      this.busy = false;
    }
  }

  /** The destination table's columns; SCHEMA_ERROR when the table is missing. */
  private async readColumns(table: TableSchema, sourceEngine: EngineKind): Promise<Map<string, DestinationColumnType>> {
    const [rows] = await this.connection.query(loadSql('destination-columns.sql'), [table.schema, table.name]);
    const columns = new Map<string, DestinationColumnType>();
    for (const row of rows as Row[]) {
      const name = mysqlText(row.column_name) ?? '';
      columns.set(name, { name, dataType: (mysqlText(row.data_type) ?? '').toLowerCase(), columnType: (mysqlText(row.column_type) ?? '').toLowerCase() });
    }
    const qualified = `${table.schema}.${table.name}`;
    if (columns.size === 0) {
      throw new FerryError('SCHEMA_ERROR', `Table ${qualified} does not exist on the destination, so it cannot be loaded. Restart the job so that Ferry creates it, or create it with the source's definition.`, {
        details: { table: qualified },
      });
    }
    const missing = copiedColumns(table, sourceEngine, 'mysql').filter((c) => !columns.has(c.name)).map((c) => c.name);
    if (missing.length > 0) {
      throw new FerryError(
        'DESTINATION_TABLE_MISMATCH',
        `The destination table ${qualified} lacks the column${missing.length === 1 ? '' : 's'} ${missing.join(', ')} that the source sends. Add ${missing.length === 1 ? 'it' : 'them'} on the destination (or drop the table and Restart the job).`,
        { details: { table: qualified, columns: missing } },
      );
    }
    return columns;
  }

  async close(): Promise<void> {
    await endQuietly(this.connection);
  }
}

/** The DATA_ERROR for a load the server stored with warnings (values changed or rows skipped). */
function refusal(table: TableSchema, count: number, messages: string[]): FerryError {
  const name = `${table.schema}.${table.name}`;
  const error = warningsRefused(`Loading ${name}`, count, messages);
  return new FerryError(error.code, error.message, { details: { table: name, ...error.details } });
}

/** A stream that fails at once: the file the driver sends when the load was cancelled before the server asked for it. */
function failedStream(reason: unknown): Readable {
  return new Readable({
    read() {
      this.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    },
  });
}
