/**
 * Applies captured changes on a MySQL/MariaDB destination, batched: a batch is put in the order
 * of its plan (pipeline/change-batch-plan.ts: grouped by table, collapsed per key), then
 * consecutive changes of one shape (table, operation, columns) become one multi-row statement.
 *
 * Every statement is idempotent, so changes applied again end in the same state as changes
 * applied once:
 * - insert, and update with the whole new row and an unchanged key: upsert on the primary key
 *   (`INSERT ... ON DUPLICATE KEY UPDATE`; `REPLACE` when the table has another unique index,
 *   because an upsert that meets two rows updates only one of them);
 * - update with unchanged values (PostgreSQL TOAST): UPDATE of the sent columns by key;
 * - key change: a row already at the new key is removed, then UPDATE by the old key; when the
 *   old row is missing and the whole new row is known, the new row is upserted;
 * - delete: DELETE by key, many keys per statement (`WHERE (k1, k2) IN ((..), (..))`);
 * - truncate: DELETE of every row (TRUNCATE would commit the open transaction).
 * Tables without a primary key get plain inserts, and updates and deletes of one row that
 * matches every old column (`<=>`, `LIMIT 1`).
 *
 * Values: from a MySQL/MariaDB source (the job's tables carry a `nativeDefinition`) they are
 * MySQL's own text and are written as they are; from a PostgreSQL source they are canonical
 * (docs/type-mapping.md) and converted for the destination column.
 *
 * The job's source position lives in `_ferry.replication_position` (InnoDB) on the
 * destination and is written in the same transaction as the changes it covers; so do the tables
 * the pipeline parked (`_ferry.parked_tables`) and their waiting changes (`_ferry.parked_changes`).
 * DDL commits in MySQL, so these tables are created when the applier opens, never inside a batch.
 *
 * Round trips: the statements of one apply() whose answer is not read go together in one query
 * (sendDeferred), and the position write carries the COMMIT (docs/ARCHITECTURE.md).
 */
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { isMysqlSpatialType } from '../../core/spatial.js';
import type { QualifiedName, TableSchema } from '../../core/schema.js';
import { canonicalToMysqlValue } from '../../core/type-mapping.js';
import { actionReferencedTables } from '../../core/foreign-key-actions.js';
import { describeRowKey } from '../../core/value-policies.js';
import { aboutTable } from '../apply-failure.js';
import { UNCHANGED } from '../engine.js';
import type { ChangeApplier, ChangeApplierOptions, ColumnValue, DestinationFence, ParkedChangeRecord, ParkedTableRecord, PlannedChanges, RowChange } from '../engine.js';
import { checkMysqlFence } from './mysql-job-fence.js';
import { LENIENT_WRITE_SQL_MODE, MAX_ERROR_COUNT, STRICT_WRITE_SQL_MODE, takesEnumErrorValue, unexpectedWarnings, warningsRefused } from './enum-error-values.js';
import { loadSql } from './load-sql.js';
import { connectMysql, endQuietly, errorContext, mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';
import { TransactionGuard } from '../transaction-guard.js';
import { orderedTableGroups, planDescribedBatch, type PlanTable } from '../../pipeline/change-batch-plan.js';

/** The destination database that holds Ferry's replication bookkeeping. */
export const POSITION_DATABASE = '_ferry';
/** One row per continuous job: the source position its last committed batch reached. */
export const POSITION_TABLE = 'replication_position';

/** Rows per multi-row statement. */
const MAX_STATEMENT_ROWS = 1_000;
/** Bytes of values per statement; further bounded by half the server's max_allowed_packet. */
const MAX_STATEMENT_BYTES = 8 * 1024 * 1024;

const POSITION_QUALIFIED = `${quoteIdent(POSITION_DATABASE)}.${quoteIdent(POSITION_TABLE)}`;
const CREATE_POSITION_DATABASE_SQL = `CREATE DATABASE IF NOT EXISTS ${quoteIdent(POSITION_DATABASE)} CHARACTER SET utf8mb4`;
const CREATE_POSITION_TABLE_SQL =
  `CREATE TABLE IF NOT EXISTS ${POSITION_QUALIFIED} (job_id varchar(200) NOT NULL PRIMARY KEY, ` +
  'position varchar(512) NOT NULL, updated_at datetime(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
const PARKED_TABLES = `${quoteIdent(POSITION_DATABASE)}.parked_tables`;
const PARKED_CHANGES = `${quoteIdent(POSITION_DATABASE)}.parked_changes`;
const PARKED_KEY = 'job_id varchar(200) NOT NULL, table_schema varchar(64) NOT NULL, table_name varchar(64) NOT NULL';
const CREATE_PARKED_TABLES_SQL = [
  `CREATE TABLE IF NOT EXISTS ${PARKED_TABLES} (${PARKED_KEY}, note longtext NOT NULL, PRIMARY KEY (job_id, table_schema, table_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  `CREATE TABLE IF NOT EXISTS ${PARKED_CHANGES} (${PARKED_KEY}, seq bigint NOT NULL, payload longtext NOT NULL, PRIMARY KEY (job_id, table_schema, table_name, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
];
const PARKED_WHERE = 'job_id = ? AND table_schema = ? AND table_name = ?';

/**
 * Session settings of the applier. The sql_mode is set whole: strict (a value that does not
 * fit fails the batch instead of being changed), 0 stays 0 in AUTO_INCREMENT columns, zero
 * and invalid dates a MySQL source holds are written as they are, and string literals read
 * the same whatever the server's default. A statement that writes MySQL's ENUM error value ''
 * (a MySQL source's row image) runs in the same mode without strictness, and its warnings
 * must be exactly those values (enum-error-values.ts): the row is applied as it is, as native
 * replication does. Foreign keys are not checked: changes replay
 * states a foreign key could refuse mid-transaction (continuous jobs add them at promote),
 * except for a MySQL source with foreign keys with actions (CASCADE_SESSION_SQL).
 */
export const APPLY_SESSION_SQL = [
  `SET SESSION sql_mode = '${STRICT_WRITE_SQL_MODE}'`,
  `SET SESSION max_error_count = ${MAX_ERROR_COUNT}`,
  'SET SESSION foreign_key_checks = 0',
];
/**
 * From a MySQL source whose tables have foreign keys with actions: those foreign keys exist on
 * the destination during the stream (the others are created at promote), and InnoDB runs their
 * actions only while it checks foreign keys. Changes are applied in source order, so every
 * check sees a state the source passed through.
 */
const CASCADE_SESSION_SQL = 'SET SESSION foreign_key_checks = 1';

/** A value as the driver sends it: text, bytes, or NULL. */
export type MysqlValue = string | Buffer | null;

/** Converts a source value for one destination column. */
export type ValueConverter = (value: string, column: DestinationColumn) => MysqlValue;

/** What the applier needs to know of the server's SQL dialect. */
export interface MysqlDialect {
  mariadb: boolean;
  /** MySQL 8.0.19+: `INSERT ... AS new ON DUPLICATE KEY UPDATE c = new.c` (VALUES() is deprecated from 8.0.20). */
  rowAlias: boolean;
}

/** The dialect of a server from its VERSION() text ("10.11.19-MariaDB-0+deb12u1", "8.0.36"). */
export function dialectOf(version: string): MysqlDialect {
  if (/mariadb/i.test(version)) return { mariadb: true, rowAlias: false };
  const [major = 0, minor = 0, patch = 0] = version.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  return { mariadb: false, rowAlias: major > 8 || (major === 8 && (minor > 0 || patch >= 19)) };
}

export interface DestinationColumn {
  name: string;
  /** `db.table.column`, for messages. */
  qualifiedName: string;
  quoted: string;
  /** The source column's type (the job's TableSchema), or null when the source does not have the column. */
  sourceType: string | null;
  /** The bare type: int, varbinary, datetime, json, ... */
  dataType: string;
  /** The full type: tinyint(1), int(10) unsigned, ... */
  columnType: string;
  generated: boolean;
  /** An enum without the label '': '' written into it is MySQL's error value. */
  takesErrorValue: boolean;
}

interface DestinationTable {
  name: QualifiedName;
  quoted: string;
  columns: Map<string, DestinationColumn>;
  /** Primary key columns in key order, or null when the table has none. */
  primaryKey: DestinationColumn[] | null;
  /** A unique index besides the primary key: upserts become REPLACE. */
  hasOtherUniqueIndex: boolean;
  /** Layouts by change structure, built on first use. */
  layouts: Map<string, Layout>;
}

interface TableEntry {
  source: TableSchema;
  /** Null when the table does not exist on the destination. */
  destination: DestinationTable | null;
}

/** Where one column of a change goes: its index in the change's values. */
interface Slot {
  column: DestinationColumn;
  index: number;
}

/** How changes of one structure (table, operation, columns, unchanged columns, old columns) map onto the table. */
interface Layout {
  table: DestinationTable;
  op: 'insert' | 'update' | 'delete';
  /** keyed: by primary key. row: one row at a time, matched on the old columns. */
  mode: 'keyed' | 'row';
  /** Columns whose new values are written (not generated, not unchanged). */
  written: Slot[];
  /** Every written value is known and every key column is among them. */
  fullRow: boolean;
  /** Key columns with the index of their new value among the change's values and of their old value among the old ones (-1: absent). */
  keys: Array<{ column: DestinationColumn; newIndex: number; oldIndex: number }>;
  /** Old columns to match in row mode. */
  match: Slot[];
}

type PlanKind = 'upsert' | 'insert' | 'update' | 'move' | 'delete' | 'row-update' | 'row-delete';

/** One change ready to run: its kind, its layout and its values, converted. */
interface PlannedRow {
  kind: PlanKind;
  layout: Layout;
  /** upsert / insert: the written values. update: written values. move: written values. */
  values: MysqlValue[];
  /** The key the row has before the change (update, move, delete). */
  oldKey: MysqlValue[];
  /** row-update / row-delete: the old values of the matched columns. */
  match: MysqlValue[];
  bytes: number;
}

class ColumnMismatch {
  constructor(
    readonly table: QualifiedName,
    readonly missing: string[],
  ) {}
}

function tableKey(table: QualifiedName): string {
  return `${table.schema}\u0000${table.name}`;
}

function displayName(table: QualifiedName): string {
  return `${table.schema}.${table.name}`;
}

const STRING_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/**
 * Writes a MySQL source's values (MySQL's own text, as the binlog reader writes it) as they
 * are, except bytes: BINARY, BLOB, BIT and spatial values (MySQL's internal format, SRID +
 * WKB) come as `\x` + hex (BIT also as `b'0101'`) and are sent as bytes.
 */
export const mysqlValue: ValueConverter = (value, column) => {
  const bytes = BINARY_TYPES.has(column.dataType) || column.dataType === 'bit' || isMysqlSpatialType(column.dataType);
  if (bytes && value.startsWith('\\x')) return Buffer.from(value.slice(2), 'hex');
  if (column.dataType === 'bit' && value.startsWith("b'")) return bitBytes(value.slice(2, -1));
  return value;
};

/** `0101...` (most significant bit first) as the bytes of a BIT value. */
export function bitBytes(bits: string): Buffer {
  const padded = bits.padStart(Math.max(8, Math.ceil(bits.length / 8) * 8), '0');
  const bytes = Buffer.alloc(padded.length / 8);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(padded.slice(i * 8, i * 8 + 8), 2);
  return bytes;
}

/**
 * Converts a canonical value (PostgreSQL's text, docs/type-mapping.md) with
 * `canonicalToMysqlValue` for the source column's PostgreSQL type: booleans to 1/0, bytea to
 * bytes, timestamps with a time zone to UTC; NaN, infinity and BC dates refused (DATA_ERROR).
 * A domain or other user type is converted as the type its destination column implies.
 */
export const canonicalValue: ValueConverter = (value, column) => canonicalToMysqlValue(postgresTypeOf(column, value), value, column.qualifiedName);

/** The PostgreSQL type whose text `value` is: the source column's, or for a user type (domain, enum) the one its destination column implies. */
function postgresTypeOf(column: DestinationColumn, value: string): string {
  const source = column.sourceType;
  // Built-in types print unqualified; a domain or enum prints schema-qualified.
  if (source !== null && !/^("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)$/.test(source.trim())) return source;
  if (column.dataType === 'tinyint' && column.columnType.startsWith('tinyint(1)')) return 'boolean';
  if (BINARY_TYPES.has(column.dataType)) return 'bytea';
  if (isMysqlSpatialType(column.dataType)) return 'geometry';
  if (column.dataType === 'datetime' || column.dataType === 'timestamp') {
    return /[+-]\d{2}(:\d{2}){0,2}$/.test(value) ? 'timestamp with time zone' : 'timestamp without time zone';
  }
  return 'text';
}

/**
 * Opens the applier of one job: connects, creates the position table if missing and reads the
 * destination's columns of `tables`. Rejects with a classified FerryError.
 */
export async function openMysqlChangeApplier(params: ConnectionParams, jobId: string, tables: TableSchema[], applierOptions: ChangeApplierOptions = {}): Promise<MysqlChangeApplier> {
  const context = errorContext(params, { operation: 'write' });
  // Several statements per round trip (sendDeferred, the position write with its COMMIT); every
  // value is escaped by the driver as for one statement.
  const connection = await connectMysql(params, { context, connection: { multipleStatements: true } });
  try {
    for (const statement of APPLY_SESSION_SQL) await connection.query(statement);
    const [versionRows] = await connection.query('SELECT VERSION() AS version, @@max_allowed_packet AS max_packet');
    const row = (versionRows as Array<Record<string, unknown>>)[0] ?? {};
    // Tables from a MySQL source carry their SHOW CREATE TABLE; a PostgreSQL source's do not.
    const mysqlSource = tables.length > 0 && tables.every((t) => t.nativeDefinition !== undefined);
    // From a MySQL source the destination has the foreign keys with actions during the stream
    // (the others come at promote): checked, InnoDB repeats the cascades the binlog lacks.
    const cascading = mysqlSource ? actionReferencedTables(tables) : new Set<string>();
    if (cascading.size > 0) await connection.query(CASCADE_SESSION_SQL);
    const applier = new MysqlChangeApplier(connection, jobId, tables, context, {
      cascading,
      dialect: dialectOf(mysqlText(row.version) ?? ''),
      maxStatementBytes: Math.min(MAX_STATEMENT_BYTES, Math.floor(Number(row.max_packet ?? MAX_STATEMENT_BYTES * 2) / 2)),
      convert: mysqlSource ? mysqlValue : canonicalValue,
      ...(applierOptions.fence === undefined ? {} : { fence: applierOptions.fence }),
    });
    await applier.prepare();
    return applier;
  } catch (error) {
    await endQuietly(connection);
    throw classifyMysqlError(error, context);
  }
}

export interface MysqlChangeApplierOptions {
  /**
   * Tables (`schema.table`, destination names) referenced by foreign keys with actions, which
   * the destination repeats (foreign_key_checks = 1 in this session): never written with
   * REPLACE, whose delete would cascade.
   */
  cascading?: Set<string>;
  dialect: MysqlDialect;
  maxStatementBytes: number;
  convert: ValueConverter;
  /** ChangeApplierOptions.fence: every commit checks it. */
  fence?: DestinationFence;
}

export class MysqlChangeApplier implements ChangeApplier {
  private readonly tables = new Map<string, TableEntry>();
  private readonly guard: TransactionGuard;
  /** Tables whose changes keep their relative order (foreign keys with actions exist during the stream). */
  private readonly orderedGroups: QualifiedName[][];
  private positionTableReady = false;
  /** Statements of the open apply() that return nothing to look at, waiting to go in one round trip (sendDeferred). */
  private deferred: Array<{ table: QualifiedName; sql: string }> = [];

  constructor(
    private readonly connection: MysqlConnection,
    private readonly jobId: string,
    tables: TableSchema[],
    private readonly context: MysqlErrorContext,
    private readonly options: MysqlChangeApplierOptions,
  ) {
    for (const table of tables) this.tables.set(tableKey(table), { source: table, destination: null });
    this.orderedGroups = orderedTableGroups(tables);
    const fence = options.fence;
    this.guard = new TransactionGuard({
      begin: () => this.connection.query('START TRANSACTION'),
      commit: () => this.connection.query('COMMIT'),
      rollback: () => this.connection.query('ROLLBACK'),
      classify: (error) => classifyMysqlError(error, this.context),
      ...(fence === undefined ? {} : { checkFence: () => checkMysqlFence(this.connection, fence, 'A batch of changes and its position') }),
    });
  }

  /** Creates the position table if missing and reads the destination tables. Called once by openMysqlChangeApplier. */
  async prepare(): Promise<void> {
    await this.createPositionTable();
    const found = await this.readDestinationTables([...this.tables.values()].map((t) => t.source));
    for (const [key, entry] of this.tables) entry.destination = found.get(key) ?? null;
  }

  async readPosition(): Promise<string | null> {
    return this.guard.run(async () => {
      try {
        const [rows] = await this.connection.query(`SELECT position FROM ${POSITION_QUALIFIED} WHERE job_id = ?`, [this.jobId]);
        return mysqlText((rows as Array<Record<string, unknown>>)[0]?.position);
      } catch (error) {
        if (positionTableMissing(error)) return null;
        throw error;
      }
    });
  }

  async apply(changes: RowChange[]): Promise<void> {
    if (changes.length === 0) return;
    // Its first statements carry the BEGIN (sendDeferred).
    await this.guard.inBatch('apply changes', () => this.applyInOrder(changes), true);
  }

  /**
   * apply(changes) then commit(position), the batch's last statements sent with the position
   * write and the COMMIT: a batch of one chunk is one round trip. Fenced, or with the position
   * table to create, the two calls.
   */
  async applyAndCommit(changes: RowChange[], _planned: PlannedChanges | null, position: string): Promise<void> {
    if (this.options.fence !== undefined || !this.positionTableReady) {
      await this.apply(changes);
      await this.commit(position);
      return;
    }
    if (changes.length > 0) await this.guard.inBatch('apply changes', () => this.applyInOrder(changes, true), true);
    await this.commit(position);
  }

  async readParkedTables(): Promise<ParkedTableRecord[]> {
    return this.guard.run(async () => {
      const [rows] = await this.connection.query(
        `SELECT t.table_schema, t.table_name, t.note, COUNT(c.seq) AS count, COALESCE(MAX(c.seq), 0) AS last_seq FROM ${PARKED_TABLES} t ` +
          `LEFT JOIN ${PARKED_CHANGES} c ON c.job_id = t.job_id AND c.table_schema = t.table_schema AND c.table_name = t.table_name ` +
          'WHERE t.job_id = ? GROUP BY t.table_schema, t.table_name, t.note ORDER BY t.table_schema, t.table_name',
        [this.jobId],
      );
      return (rows as Array<Record<string, unknown>>).map((row) => ({
        table: { schema: mysqlText(row.table_schema) ?? '', name: mysqlText(row.table_name) ?? '' },
        note: mysqlText(row.note) ?? '',
        count: Number(row.count),
        lastSeq: Number(row.last_seq),
      }));
    });
  }

  async setParkedTable(table: QualifiedName, note: string | null): Promise<void> {
    await this.guard.inBatch('record a parked table', async () => {
      if (note === null) await this.connection.query(`DELETE FROM ${PARKED_TABLES} WHERE ${PARKED_WHERE}`, [this.jobId, table.schema, table.name]);
      else await this.connection.query(`REPLACE INTO ${PARKED_TABLES} (job_id, table_schema, table_name, note) VALUES (?, ?, ?, ?)`, [this.jobId, table.schema, table.name, note]);
    });
  }

  async parkChanges(table: QualifiedName, changes: ParkedChangeRecord[]): Promise<void> {
    if (changes.length === 0) return;
    await this.guard.inBatch('park changes', async () => {
      for (let start = 0; start < changes.length; start += MAX_STATEMENT_ROWS) {
        const part = changes.slice(start, start + MAX_STATEMENT_ROWS);
        await this.connection.query(
          `INSERT INTO ${PARKED_CHANGES} (job_id, table_schema, table_name, seq, payload) VALUES ${part.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
          part.flatMap((c) => [this.jobId, table.schema, table.name, c.seq, c.payload]),
        );
      }
    });
  }

  async readParkedChanges(table: QualifiedName, limit: number): Promise<ParkedChangeRecord[]> {
    return this.guard.run(async () => {
      this.guard.refuseAfterFailure('read parked changes');
      const [rows] = await this.connection.query(`SELECT seq, payload FROM ${PARKED_CHANGES} WHERE ${PARKED_WHERE} ORDER BY seq LIMIT ${Math.max(0, Math.floor(limit))}`, [
        this.jobId, table.schema, table.name,
      ]);
      return (rows as Array<Record<string, unknown>>).map((row) => ({ seq: Number(row.seq), payload: mysqlText(row.payload) ?? '' }));
    });
  }

  async deleteParkedChanges(table: QualifiedName, throughSeq: number): Promise<void> {
    await this.guard.inBatch('delete parked changes', async () => {
      await this.connection.query(`DELETE FROM ${PARKED_CHANGES} WHERE ${PARKED_WHERE} AND seq <= ?`, [this.jobId, table.schema, table.name, throughSeq]);
    });
  }

  async commit(position: string): Promise<void> {
    await this.guard.commit(
      position,
      async () => {
        if (!this.positionTableReady) {
          // DDL would commit the open transaction (a batch, or a fenced commit's own).
          if (this.guard.inTransaction) throw positionTableGone(null);
          await this.createPositionTable();
        }
        // Without changes (and without a fence) the position write alone is the transaction (autocommit);
        // in a transaction the COMMIT goes in the same round trip (not run when the write fails),
        // with the statements applyAndCommit held and the BEGIN when it was not sent yet.
        const held = this.deferred;
        this.deferred = [];
        const begin = this.guard.takeBegin() ? 'START TRANSACTION; ' : '';
        if (!this.guard.inTransaction) {
          await this.connection.query(this.writePositionSql(), [this.jobId, position]);
          return false;
        }
        const tail = `${this.connection.format(this.writePositionSql(), [this.jobId, position])}; COMMIT`;
        if (held.length === 0) await this.connection.query(`${begin}${tail}`);
        else await this.runAtSavepoint(begin, held, tail);
        return true;
      },
      (error) => {
        if (error instanceof FerryError) return error;
        const gone = positionTableMissing(error) ? positionTableGone(error) : null;
        if (gone !== null) this.positionTableReady = false;
        return gone ?? classifyMysqlError(error, this.context);
      },
    );
  }

  async rollback(): Promise<void> {
    this.deferred = [];
    await this.guard.rollback();
  }

  async forgetPosition(): Promise<void> {
    await this.guard.run(async () => {
      this.guard.refuseOpenBatch('forget the replication position');
      const [present] = await this.connection.query('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
        POSITION_DATABASE,
        POSITION_TABLE,
      ]);
      if ((present as unknown[]).length > 0) {
        const [parked] = await this.connection.query('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)', [
          POSITION_DATABASE, 'parked_tables', 'parked_changes',
        ]);
        const parkedTables = (parked as Array<Record<string, unknown>>).map((r) => `${quoteIdent(POSITION_DATABASE)}.${quoteIdent(mysqlText(r.TABLE_NAME ?? r.table_name) ?? '')}`);
        // The write lock keeps other jobs from writing a position between the count and the drop.
        await this.connection.query(`LOCK TABLES ${[POSITION_QUALIFIED, ...parkedTables].map((t) => `${t} WRITE`).join(', ')}`);
        try {
          await this.connection.query(`DELETE FROM ${POSITION_QUALIFIED} WHERE job_id = ?`, [this.jobId]);
          for (const table of parkedTables) await this.connection.query(`DELETE FROM ${table} WHERE job_id = ?`, [this.jobId]);
          const [count] = await this.connection.query(`SELECT COUNT(*) AS n FROM ${POSITION_QUALIFIED}`);
          const left = Number((count as Array<Record<string, unknown>>)[0]?.n ?? 0);
          // The destination stands alone once no job replicates into it.
          if (left === 0) await this.connection.query(`DROP TABLE ${[POSITION_QUALIFIED, ...parkedTables].join(', ')}`);
        } finally {
          await this.connection.query('UNLOCK TABLES');
        }
      }
      this.positionTableReady = false;
      const [tables] = await this.connection.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [POSITION_DATABASE]);
      const [databases] = await this.connection.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [POSITION_DATABASE]);
      if ((databases as unknown[]).length > 0 && Number((tables as Array<Record<string, unknown>>)[0]?.n ?? 0) === 0) {
        await this.connection.query(`DROP DATABASE IF EXISTS ${quoteIdent(POSITION_DATABASE)}`);
      }
    });
  }

  async close(): Promise<void> {
    // Ending the session abandons any open transaction.
    if (!this.guard.close()) return;
    await endQuietly(this.connection);
  }

  private writePositionSql(): string {
    const insert = `INSERT INTO ${POSITION_QUALIFIED} (job_id, position, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6))`;
    return this.options.dialect.rowAlias
      ? `${insert} AS new ON DUPLICATE KEY UPDATE position = new.position, updated_at = new.updated_at`
      : `${insert} ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)`;
  }

  private async createPositionTable(): Promise<void> {
    try {
      await this.connection.query(CREATE_POSITION_DATABASE_SQL);
      await this.connection.query(CREATE_POSITION_TABLE_SQL);
      for (const statement of CREATE_PARKED_TABLES_SQL) await this.connection.query(statement);
      this.positionTableReady = true;
    } catch (error) {
      throw classifyMysqlError(error, { ...this.context, operation: 'ddl' });
    }
  }

  private async readDestinationTables(tables: QualifiedName[]): Promise<Map<string, DestinationTable>> {
    const found = new Map<string, DestinationTable>();
    if (tables.length === 0) return found;
    const wanted = new Set(tables.map(tableKey));
    const databases = [...new Set(tables.map((t) => t.schema))];
    const [rows] = await this.connection.query(loadSql('destination-tables.sql'), [databases, databases, databases]);
    const keyed = new Map<string, Array<{ column: DestinationColumn; position: number }>>();
    for (const raw of rows as Array<Record<string, unknown>>) {
      const name: QualifiedName = { schema: mysqlText(raw.table_schema) ?? '', name: mysqlText(raw.table_name) ?? '' };
      const key = tableKey(name);
      if (!wanted.has(key)) continue;
      let table = found.get(key);
      if (table === undefined) {
        table = {
          name,
          quoted: quoteQualified(name),
          columns: new Map(),
          primaryKey: null,
          // REPLACE deletes the row it meets: on a table whose deletes cascade, upserts stay upserts.
          hasOtherUniqueIndex: Number(raw.other_unique) === 1 && this.options.cascading?.has(`${name.schema}.${name.name}`) !== true,
          layouts: new Map(),
        };
        found.set(key, table);
        keyed.set(key, []);
      }
      const columnName = mysqlText(raw.column_name) ?? '';
      const column: DestinationColumn = {
        name: columnName,
        qualifiedName: `${name.schema}.${name.name}.${columnName}`,
        quoted: quoteIdent(columnName),
        sourceType: this.tables.get(key)?.source.columns.find((c) => c.name === columnName)?.nativeType ?? null,
        dataType: (mysqlText(raw.data_type) ?? '').toLowerCase(),
        columnType: (mysqlText(raw.column_type) ?? '').toLowerCase(),
        generated: Number(raw.is_generated) === 1,
        takesErrorValue: false,
      };
      column.takesErrorValue = takesEnumErrorValue(column.dataType, column.columnType);
      table.columns.set(column.name, column);
      if (raw.key_position !== null && raw.key_position !== undefined) keyed.get(key)?.push({ column, position: Number(raw.key_position) });
    }
    for (const [key, table] of found) {
      const keyColumns = (keyed.get(key) ?? []).sort((a, b) => a.position - b.position).map((k) => k.column);
      table.primaryKey = keyColumns.length === 0 ? null : keyColumns;
    }
    return found;
  }

  /** Reads one table again (after DDL on the destination); its layouts are rebuilt. */
  private async refreshTable(entry: TableEntry): Promise<void> {
    const found = await this.readDestinationTables([entry.source]);
    entry.destination = found.get(tableKey(entry.source)) ?? null;
  }

  /** What the batch plan needs of a table: its destination key and whether another unique index orders its changes. */
  private async describeForPlan(table: QualifiedName): Promise<PlanTable> {
    const destination = await aboutTable(table, (error) => classifyMysqlError(error, this.context), () => this.destinationOf(table));
    return {
      keyColumns: destination.primaryKey?.map((c) => c.name) ?? null,
      otherUnique: destination.hasOtherUniqueIndex,
      writableColumns: [...destination.columns.values()].filter((c) => !c.generated).map((c) => c.name),
    };
  }

  /** `hold`: the last statements stay queued for the commit that follows (applyAndCommit). */
  private async applyInOrder(planned: RowChange[], hold = false): Promise<void> {
    try {
      await this.applyDeferring(planned, hold);
    } catch (error) {
      // A failed apply() leaves nothing queued for the next one.
      this.deferred = [];
      throw error;
    } finally {
      if (!hold) this.deferred = [];
    }
  }

  private async applyDeferring(planned: RowChange[], hold: boolean): Promise<void> {
    // Grouped by table and collapsed per key (change-batch-plan.ts), so that runs of one shape are long.
    const changes = await planDescribedBatch(planned, (table) => this.describeForPlan(table), this.orderedGroups);
    let batch: PlannedRow[] = [];
    let bytes = 0;
    const classify = (error: unknown) => classifyMysqlError(error, this.context);
    const flush = async () => {
      const rows = batch;
      if (rows.length > 0) await aboutTable((rows[0] as PlannedRow).layout.table.name, classify, () => this.execute(rows));
      batch = [];
      bytes = 0;
    };
    for (const change of changes) {
      if (change.op === 'truncate') {
        await flush();
        await this.truncate(change);
        continue;
      }
      const planned = await aboutTable(change.table, classify, () => this.plan(change));
      const first = batch[0];
      if (
        first !== undefined &&
        (first.kind !== planned.kind ||
          first.layout !== planned.layout ||
          !batchable(planned.kind) ||
          batch.length >= MAX_STATEMENT_ROWS ||
          bytes + planned.bytes > this.options.maxStatementBytes)
      ) {
        await flush();
      }
      batch.push(planned);
      bytes += planned.bytes;
    }
    await flush();
    await this.sendDeferred(hold);
  }

  private async truncate(change: Extract<RowChange, { op: 'truncate' }>): Promise<void> {
    await this.sendDeferred();
    for (const table of change.tables) {
      await aboutTable(table, (error) => classifyMysqlError(error, this.context), async () => {
        const destination = await this.destinationOf(table);
        // TRUNCATE would commit the batch (DDL); DELETE stays inside it. RESTART IDENTITY has no
        // transactional equivalent: AUTO_INCREMENT counters are set from the source at promote.
        // InnoDB truncates a referenced table only without foreign key checks, and then runs no
        // action: the DELETE must not cascade either.
        if (this.options.cascading?.size) {
          await this.connection.query('SET SESSION foreign_key_checks = 0');
          try {
            await this.connection.query(`DELETE FROM ${destination.quoted}`);
          } finally {
            await this.connection.query(CASCADE_SESSION_SQL);
          }
        } else {
          await this.connection.query(`DELETE FROM ${destination.quoted}`);
        }
      });
    }
  }

  /** The destination table of a change's table; rejects with SCHEMA_CHANGED when the job does not have it or the destination lacks it. */
  private async destinationOf(table: QualifiedName): Promise<DestinationTable> {
    const entry = this.tables.get(tableKey(table));
    if (entry === undefined) {
      throw new FerryError(
        'SCHEMA_CHANGED',
        `Changes arrived for table ${displayName(table)}, which is not one of this job's tables. Restart the job so that its full dump includes it, or stop writing to it on the source; Ferry retries until then.`,
        { retryable: true, details: { table: displayName(table) } },
      );
    }
    if (entry.destination === null) await this.refreshTable(entry);
    if (entry.destination === null) {
      throw new FerryError(
        'SCHEMA_CHANGED',
        `Table ${displayName(table)} does not exist on the destination, so its changes cannot be applied. Create it on the destination with the source's definition (or Restart the job to copy it again); Ferry retries and continues by itself.`,
        { retryable: true, details: { table: displayName(table) } },
      );
    }
    return entry.destination;
  }

  private async plan(change: Exclude<RowChange, { op: 'truncate' }>): Promise<PlannedRow> {
    let table = await this.destinationOf(change.table);
    let layout = layoutOf(table, change);
    if (layout instanceof ColumnMismatch) {
      // The destination may have been fixed since it was read: look again before refusing.
      await this.refreshTable(this.tables.get(tableKey(change.table)) as TableEntry);
      table = await this.destinationOf(change.table);
      layout = layoutOf(table, change);
      if (layout instanceof ColumnMismatch) throw schemaChanged(layout);
    }
    return planRow(layout, change, this.options.convert);
  }

  private async execute(batch: PlannedRow[]): Promise<void> {
    const first = batch[0] as PlannedRow;
    const { layout } = first;
    const table = layout.table;
    const written = layout.written.map((w) => w.column);
    const columnList = written.map((c) => c.quoted).join(', ');
    const rowPlaceholders = `(${written.map(() => '?').join(', ')})`;
    const keyColumns = layout.keys.map((k) => k.column);
    const keyMatch = keyColumns.map((c) => `${c.quoted} = ?`).join(' AND ');

    switch (first.kind) {
      case 'insert':
      case 'upsert': {
        const values = batch.flatMap((r) => r.values);
        const rows = batch.map(() => rowPlaceholders).join(', ');
        if (first.kind === 'insert') {
          await this.write(table.name, `INSERT INTO ${table.quoted} (${columnList}) VALUES ${rows}`, values, written, batch.length);
        } else if (table.hasOtherUniqueIndex) {
          // An upsert that meets two rows (by key and by another unique index) updates one of
          // them and fails on the other; REPLACE removes both and writes the new row.
          await this.write(table.name, `REPLACE INTO ${table.quoted} (${columnList}) VALUES ${rows}`, values, written, batch.length);
        } else {
          await this.write(table.name, `INSERT INTO ${table.quoted} (${columnList}) VALUES ${rows} ${this.upsertTail(written, keyColumns)}`, values, written, batch.length);
        }
        return;
      }
      case 'delete': {
        const placeholders = keyColumns.length === 1 ? '?' : `(${keyColumns.map(() => '?').join(', ')})`;
        const target = keyColumns.length === 1 ? (keyColumns[0] as DestinationColumn).quoted : `(${keyColumns.map((c) => c.quoted).join(', ')})`;
        this.defer(table.name, `DELETE FROM ${table.quoted} WHERE ${target} IN (${batch.map(() => placeholders).join(', ')})`, batch.flatMap((r) => r.oldKey));
        return;
      }
      case 'update': {
        const settable = written.filter((c) => !keyColumns.includes(c));
        if (settable.length === 0) return;
        const sql = `UPDATE ${table.quoted} SET ${settable.map((c) => `${c.quoted} = ?`).join(', ')} WHERE ${keyMatch}`;
        for (const row of batch) {
          await this.write(table.name, sql, [...settable.map((c) => row.values[written.indexOf(c)] ?? null), ...row.oldKey], settable);
        }
        return;
      }
      case 'move':
        for (const row of batch) await this.move(row, written, keyColumns);
        return;
      case 'row-update':
      case 'row-delete':
        for (const row of batch) {
          const conditions = layout.match.map((m) => matchCondition(m.column)).join(' AND ');
          const where = conditions === '' ? '' : ` WHERE ${conditions}`;
          if (first.kind === 'row-delete') {
            this.defer(table.name, `DELETE FROM ${table.quoted}${where} LIMIT 1`, row.match);
          } else if (written.length > 0) {
            await this.write(table.name, `UPDATE ${table.quoted} SET ${written.map((c) => `${c.quoted} = ?`).join(', ')}${where} LIMIT 1`, [...row.values, ...row.match], written);
          }
        }
        return;
    }
  }

  /**
   * A key change. Replayed, the new key may already hold the row (it moved there before) and
   * the old row may be gone: the row at the new key gives way to the moved one, and when the
   * old row is missing the whole new row (when known) is upserted instead.
   */
  private async move(row: PlannedRow, written: DestinationColumn[], keyColumns: DestinationColumn[]): Promise<void> {
    const table = row.layout.table;
    const keyMatch = keyColumns.map((c) => `${c.quoted} = ?`).join(' AND ');
    // The SELECT must see every statement before it.
    await this.sendDeferred();
    const [old] = await this.connection.query(`SELECT 1 AS present FROM ${table.quoted} WHERE ${keyMatch} FOR UPDATE`, row.oldKey);
    if ((old as unknown[]).length === 0) {
      if (row.layout.fullRow) {
        await this.write(
          table.name,
          `${table.hasOtherUniqueIndex ? 'REPLACE' : 'INSERT'} INTO ${table.quoted} (${written.map((c) => c.quoted).join(', ')}) VALUES (${written.map(() => '?').join(', ')})` +
            (table.hasOtherUniqueIndex ? '' : ` ${this.upsertTail(written, keyColumns)}`),
          row.values,
          written,
        );
      }
      return;
    }
    const newKey = row.layout.keys.map((k) => row.values[written.indexOf(k.column)] ?? null);
    this.defer(table.name, `DELETE FROM ${table.quoted} WHERE ${keyMatch}`, newKey);
    await this.write(table.name, `UPDATE ${table.quoted} SET ${written.map((c) => `${c.quoted} = ?`).join(', ')} WHERE ${keyMatch}`, [...row.values, ...row.oldKey], written);
  }

  /**
   * Runs a statement whose values start with `rows` rows of `columns` (INSERT's rows, UPDATE's
   * SET list; the key values after them are not counted). Values '' in enum columns without that
   * label are MySQL's error value: such a statement runs without strictness and must raise
   * exactly one warning 1265 per such value, else it fails (DATA_ERROR) and the batch with it.
   * Any other statement is deferred (sendDeferred): nothing of its answer is read.
   */
  private async write(table: QualifiedName, sql: string, values: MysqlValue[], columns: DestinationColumn[], rows = 1): Promise<void> {
    const expected = new Map<string, number>();
    if (columns.some((c) => c.takesErrorValue)) {
      for (let r = 0; r < rows; r++) {
        columns.forEach((c, i) => {
          if (c.takesErrorValue && values[r * columns.length + i] === '') expected.set(c.name, (expected.get(c.name) ?? 0) + 1);
        });
      }
    }
    if (expected.size === 0) {
      this.defer(table, sql, values);
      return;
    }
    // Its warnings are read from its own answer.
    await this.sendDeferred();
    await this.connection.query(`SET SESSION sql_mode = '${LENIENT_WRITE_SQL_MODE}'`);
    try {
      const [result] = await this.connection.query(sql, values);
      const warnings = Number((result as { warningStatus?: unknown }).warningStatus ?? 0);
      const unexpected = warnings === 0 ? null : await unexpectedWarnings(this.connection, warnings, expected);
      if (unexpected !== null) throw warningsRefused(`A change to ${columns[0]?.qualifiedName.split('.').slice(0, 2).join('.') ?? 'a table'}`, warnings, unexpected);
    } finally {
      await this.connection.query(`SET SESSION sql_mode = '${STRICT_WRITE_SQL_MODE}'`);
    }
  }

  /** Queues a statement whose answer nobody reads, to be sent with the others of this apply() (sendDeferred). */
  private defer(table: QualifiedName, sql: string, values: MysqlValue[]): void {
    this.deferred.push({ table, sql: this.connection.format(sql, values) });
  }

  /**
   * Sends the queued statements, as many per round trip as the byte bound allows, behind a
   * SAVEPOINT. When one fails the server runs none after it: back to the savepoint, they run
   * again one at a time, so that the failure names its table and is classified as that
   * statement's, as if each had been sent alone. The batch fails either way.
   */
  private async sendDeferred(keepLast = false): Promise<void> {
    const queue = this.deferred;
    this.deferred = [];
    // The transaction's BEGIN (a lazy one, TransactionGuard.inBatch) goes with the first statements sent, even with none queued.
    const begin = () => (this.guard.takeBegin() ? 'START TRANSACTION; ' : '');
    const classify = (error: unknown) => classifyMysqlError(error, this.context);
    let start = 0;
    while (start < queue.length) {
      let end = start + 1;
      let bytes = (queue[start] as { sql: string }).sql.length;
      while (end < queue.length && bytes + (queue[end] as { sql: string }).sql.length <= this.options.maxStatementBytes) bytes += (queue[end++] as { sql: string }).sql.length;
      const part = queue.slice(start, end);
      start = end;
      if (keepLast && start === queue.length) {
        // Sent by commit() with the position write and the COMMIT, the BEGIN too when still pending.
        this.deferred = part;
        return;
      }
      const prefix = begin();
      if (part.length === 1 && prefix === '') {
        const only = part[0] as { table: QualifiedName; sql: string };
        await aboutTable(only.table, classify, () => this.connection.query(only.sql));
        continue;
      }
      await this.runAtSavepoint(prefix, part, '');
    }
    // Nothing queued: commit() sends a held BEGIN; else it goes now.
    if (!keepLast && this.guard.takeBegin()) await this.connection.query('START TRANSACTION');
  }

  /**
   * `prefix`, then the statements behind a SAVEPOINT, then `suffix`, in one round trip. When
   * one fails the server runs none after it: back to the savepoint, they run again one at a
   * time, so that the failure names its table and is classified as that statement's, as if each
   * had been sent alone; then `suffix` runs alone (a failure there is its own).
   */
  private async runAtSavepoint(prefix: string, part: Array<{ table: QualifiedName; sql: string }>, suffix: string): Promise<void> {
    const classify = (error: unknown) => classifyMysqlError(error, this.context);
    try {
      await this.connection.query(`${prefix}SAVEPOINT ferry_deferred; ${part.map((d) => d.sql).join('; ')}${suffix === '' ? '' : `; ${suffix}`}`);
    } catch (error) {
      try {
        // Gone when the error ended the transaction (a deadlock) or the BEGIN was not run: nothing to run again.
        await this.connection.query('ROLLBACK TO SAVEPOINT ferry_deferred');
      } catch {
        throw classify(error);
      }
      for (const d of part) await aboutTable(d.table, classify, () => this.connection.query(d.sql));
      if (suffix === '') throw classify(error);
      await this.connection.query(suffix);
    }
  }

  /** `ON DUPLICATE KEY UPDATE` of the non-key columns, in the server's dialect. */
  private upsertTail(written: DestinationColumn[], keyColumns: DestinationColumn[]): string {
    const settable = written.filter((c) => !keyColumns.includes(c));
    // Every column is part of the key: nothing to update, but the duplicate must not fail.
    const targets = settable.length === 0 ? [keyColumns[0] as DestinationColumn] : settable;
    if (this.options.dialect.rowAlias) {
      return `AS new ON DUPLICATE KEY UPDATE ${targets.map((c) => `${c.quoted} = new.${c.quoted}`).join(', ')}`;
    }
    return `ON DUPLICATE KEY UPDATE ${targets.map((c) => `${c.quoted} = VALUES(${c.quoted})`).join(', ')}`;
  }
}

/** Consecutive rows of these kinds go into one statement. */
function batchable(kind: PlanKind): boolean {
  return kind === 'insert' || kind === 'upsert' || kind === 'delete';
}

/**
 * The condition that matches one old value in a table without a key (`<=>` also matches NULL).
 * Strings compare byte for byte (a case-insensitive collation would match another row),
 * FLOAT as FLOAT (its text reads back as a DOUBLE that differs), JSON as JSON (MySQL 8).
 */
function matchCondition(column: DestinationColumn): string {
  if (STRING_TYPES.has(column.dataType)) return `${column.quoted} <=> (? COLLATE utf8mb4_bin)`;
  if (column.dataType === 'float') return `${column.quoted} <=> CAST(? AS FLOAT)`;
  if (column.dataType === 'json') return `${column.quoted} <=> CAST(? AS JSON)`;
  return `${column.quoted} <=> ?`;
}

/** The layout of the change's structure, built once per table and structure. */
function layoutOf(table: DestinationTable, change: Exclude<RowChange, { op: 'truncate' }>): Layout | ColumnMismatch {
  const columns = change.op === 'delete' ? null : change.columns;
  const values = change.op === 'delete' ? null : change.values;
  const oldColumns = change.op === 'insert' ? null : change.oldColumns;
  let unchanged = '';
  if (values !== null) {
    for (let i = 0; i < values.length; i++) if (values[i] === UNCHANGED) unchanged += `${i},`;
  }
  const signature = `${change.op}\u0001${columns === null ? '' : columns.join('\u0000')}\u0001${oldColumns === null ? '-' : oldColumns.join('\u0000')}\u0001${unchanged}`;
  const cached = table.layouts.get(signature);
  if (cached !== undefined) return cached;

  const missing = new Set<string>();
  const written: Slot[] = [];
  if (columns !== null && values !== null) {
    columns.forEach((name, index) => {
      const column = table.columns.get(name);
      if (column === undefined) missing.add(name);
      else if (!column.generated && values[index] !== UNCHANGED) written.push({ column, index });
    });
  }
  const old: Slot[] = [];
  (oldColumns ?? []).forEach((name, index) => {
    const column = table.columns.get(name);
    if (column === undefined) missing.add(name);
    else if (!column.generated) old.push({ column, index });
  });
  if (missing.size > 0) return new ColumnMismatch(table.name, [...missing]);

  const pk = table.primaryKey;
  const oldCoversKey = pk !== null && pk.every((k) => old.some((o) => o.column === k));
  const keyed = pk !== null && (change.op === 'insert' || (change.op === 'update' && (oldColumns === null || oldCoversKey)) || (change.op === 'delete' && oldCoversKey));
  const keys = keyed
    ? pk.map((column) => ({
        column,
        newIndex: written.find((w) => w.column === column)?.index ?? -1,
        oldIndex: old.find((o) => o.column === column)?.index ?? -1,
      }))
    : [];
  const layout: Layout = {
    table,
    op: change.op,
    mode: keyed ? 'keyed' : 'row',
    written,
    fullRow: unchanged === '' && keys.every((k) => k.newIndex >= 0),
    keys,
    match: keyed ? [] : old,
  };
  table.layouts.set(signature, layout);
  return layout;
}

/** An upper bound of the bytes the values take in the statement text (UTF-8, escapes, hex for bytes). */
function valueBytes(values: MysqlValue[]): number {
  let n = 0;
  for (const v of values) if (v !== null) n += typeof v === 'string' ? v.length * 3 + 3 : v.length * 2 + 3;
  return n;
}

/** Turns one change into a planned row with converted values. */
function planRow(layout: Layout, change: Exclude<RowChange, { op: 'truncate' }>, convert: ValueConverter): PlannedRow {
  const values = change.op === 'delete' ? [] : change.values;
  const oldValues = change.op === 'insert' ? null : change.oldValues;
  const table = displayName(layout.table.name);
  // A value MySQL cannot hold (NaN, infinity, BC dates...) is refused naming the row too.
  const rowKey = () =>
    describeRowKey(
      layout.keys.map((k) => k.column.name),
      layout.keys.map((k) => {
        const raw = k.newIndex >= 0 ? values[k.newIndex] : k.oldIndex >= 0 ? oldValues?.[k.oldIndex] : undefined;
        return typeof raw === 'string' ? raw : null;
      }),
    );
  const value = (raw: ColumnValue | undefined, column: DestinationColumn): MysqlValue => {
    if (raw === undefined || raw === null || raw === UNCHANGED) return null;
    try {
      return convert(raw, column);
    } catch (error) {
      if (!(error instanceof FerryError) || error.code !== 'DATA_ERROR') throw error;
      const key = rowKey();
      throw new FerryError('DATA_ERROR', `Table ${table}, row ${key}: ${error.message}`, { details: { ...error.details, table, key } });
    }
  };
  const written = layout.written.map((w) => value(values[w.index], w.column));
  const planned = (kind: PlanKind, oldKey: MysqlValue[] = [], match: MysqlValue[] = []): PlannedRow => ({
    kind,
    layout,
    values: written,
    oldKey,
    match,
    bytes: valueBytes(written) + valueBytes(oldKey) + valueBytes(match),
  });

  if (layout.mode === 'row') {
    if (layout.op === 'insert') return planned('insert');
    if (oldValues === null) {
      throw new FerryError(
        'TABLE_WITHOUT_PRIMARY_KEY',
        `An ${layout.op} of ${table} arrived without the old row, and the table has no primary key on the destination, so the row cannot be found. Give the table a primary key (on the source and the destination), or on a PostgreSQL source run ALTER TABLE ... REPLICA IDENTITY FULL, then Restart the job.`,
        { details: { table } },
      );
    }
    if (layout.match.some((m) => oldValues[m.index] === UNCHANGED)) {
      throw new FerryError(
        'DATA_ERROR',
        `An ${layout.op} of ${table} arrived without some old values, and the table has no primary key, so the row cannot be identified. Give the table a primary key, then Restart the job.`,
        { details: { table } },
      );
    }
    const match = layout.match.map((m) => value(oldValues[m.index], m.column));
    return planned(layout.op === 'update' ? 'row-update' : 'row-delete', [], match);
  }

  const newKey: MysqlValue[] = [];
  const oldKey: MysqlValue[] = [];
  for (const k of layout.keys) {
    const oldValue = k.oldIndex >= 0 && oldValues !== null ? value(oldValues[k.oldIndex], k.column) : null;
    const newValue = k.newIndex >= 0 ? value(values[k.newIndex], k.column) : oldValue;
    if (newValue === null && layout.op !== 'delete') {
      throw new FerryError(
        'DATA_ERROR',
        `A change to ${table} has no value for its key column ${k.column.name}, so the row cannot be identified. Check that the destination's primary key matches the source's.`,
        { details: { table, column: k.column.name } },
      );
    }
    newKey.push(newValue);
    oldKey.push(k.oldIndex >= 0 ? oldValue : newValue);
  }
  if (layout.op === 'delete') {
    if (oldKey.some((v) => v === null)) {
      throw new FerryError('DATA_ERROR', `A delete from ${table} has no value for a key column, so the row cannot be identified. Check that the destination's primary key matches the source's.`, {
        details: { table },
      });
    }
    return planned('delete', oldKey);
  }
  if (layout.op === 'insert') return planned('upsert');
  const moved = newKey.some((v, i) => !sameValue(v, oldKey[i] ?? null));
  if (moved) return planned('move', oldKey);
  if (layout.fullRow) return planned('upsert');
  return planned('update', oldKey);
}

function sameValue(a: MysqlValue, b: MysqlValue): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

/** True for "table doesn't exist" / "unknown database": the position table is missing. */
function positionTableMissing(error: unknown): boolean {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return errno === 1146 || errno === 1049;
}

/**
 * The position table vanished under an open applier (another job's promote dropped `_ferry`
 * while this job had no row yet): retryable, since opening the applier again recreates it.
 */
function positionTableGone(cause: unknown): FerryError {
  return new FerryError(
    'SCHEMA_CHANGED',
    `The position table ${POSITION_DATABASE}.${POSITION_TABLE} is missing on the destination (dropped when another job was promoted, or by hand). Ferry recreates it and applies the batch again.`,
    { retryable: true, cause },
  );
}

function schemaChanged(mismatch: ColumnMismatch): FerryError {
  const table = displayName(mismatch.table);
  const quoted = quoteQualified(mismatch.table);
  const columns = mismatch.missing.join(', ');
  const example = mismatch.missing.map((c) => `ALTER TABLE ${quoted} ADD COLUMN ${quoteIdent(c)} <type as on the source>;`).join(' ');
  return new FerryError(
    'SCHEMA_CHANGED',
    `The source sends column${mismatch.missing.length === 1 ? '' : 's'} ${columns} for table ${table}, which the destination table lacks (DDL on the source). Apply the same change on the destination (e.g. ${example}); Ferry retries and continues by itself.`,
    { retryable: true, details: { table, columns: mismatch.missing } },
  );
}
