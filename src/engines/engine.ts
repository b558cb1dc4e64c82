/**
 * The engine contract. An engine is a small factory of its parts: a connection tester, a
 * verifier, an introspector, a snapshot reader, a schema writer, a table writer and an
 * error classifier. The pipeline drives them; it never touches a driver.
 *
 * Data moves between engines in one interchange format: PostgreSQL's text COPY format
 * (one row per line, columns separated by a tab, `\N` for NULL, backslash escapes).
 * Every source produces it and every destination loads it.
 */
import type { Readable } from 'node:stream';
import type { ConnectionParams, EngineKind } from '../core/connection-profile.js';
import type { FerryError } from '../core/errors.js';
import type { ObjectSelection } from '../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../core/schema.js';
import type { JobType } from '../core/lifecycle.js';

/** One result of a check. `error` blocks a start; `warning` does not. */
export interface VerifyCheck {
  /** Stable code, e.g. CONNECTIVITY, PRIVILEGES, WAL_LEVEL, TABLE_WITHOUT_PRIMARY_KEY, DESTINATION_NOT_EMPTY. */
  code: string;
  /** Which side the check is about. */
  side: 'source' | 'destination';
  severity: 'ok' | 'warning' | 'error';
  /** What was found and, when not ok, what to do. */
  message: string;
  /** The objects concerned (tables, settings), when any. */
  objects?: string[];
}

export interface ConnectionReport {
  ok: boolean;
  /** e.g. "PostgreSQL 15.20" */
  serverVersion: string | null;
  /** Settings that matter for migration, as the server reports them (wal_level, max_replication_slots, ...). */
  settings: Record<string, string>;
  /** Privileges that matter, e.g. { superuser: false, replication: true, createdb: false }. */
  privileges: Record<string, boolean>;
  /** Problems found, each as a check with severity warning or error. */
  checks: VerifyCheck[];
  /** The connection failure, classified, when the server could not be used at all. */
  error: FerryError | null;
}

/** The live connection to a consistent snapshot of the source that every table reader shares. */
export interface SourceSnapshot {
  /** Engine-specific identifier of the snapshot (PostgreSQL: the exported snapshot name). */
  readonly id: string;
  /**
   * Reads the schema of the selected tables as it is in the snapshot.
   * Tables are ordered by schema then name.
   */
  readSchema(selection: ObjectSelection): Promise<DatabaseSchema>;
  /**
   * Opens a reader bound to the snapshot. Each reader holds one connection; readers work in
   * parallel. Cancellation: close() ends any copy in flight.
   */
  openTableReader(): Promise<TableReader>;
  /** Releases the snapshot. Readers already open keep reading from it. Idempotent. */
  close(): Promise<void>;
}

export interface TableReader {
  /**
   * Streams every row of the table, in the interchange format, for the columns the
   * destination loads (generated columns left out). Back-pressure bounds memory: the
   * source is read only as fast as the stream is consumed.
   */
  copyOut(table: TableSchema): Readable;
  close(): Promise<void>;
}

/** Summary of what a load wrote. */
export interface LoadResult {
  rows: number;
  bytes: number;
}

/** Writes table data on the destination. Each writer holds one connection. */
export interface TableWriter {
  /**
   * Replaces the table's contents with the rows of `rows`, in one destination transaction:
   * the table is emptied first, so loading a table again after a crash is exact. Durable when
   * it resolves. On rejection or abort nothing of this load is visible.
   */
  replaceTableData(table: TableSchema, rows: Readable, signal: AbortSignal): Promise<LoadResult>;
  close(): Promise<void>;
}

/** An object a job created on the destination, so that Restart can remove exactly those. */
export interface CreatedObject {
  kind: 'schema' | 'type' | 'domain' | 'sequence' | 'table' | 'extension';
  schema: string | null;
  name: string;
}

/** The state of one destination table before a load. */
export interface DestinationTableState {
  table: QualifiedName;
  exists: boolean;
  /** True when it holds at least one row. */
  hasRows: boolean;
  /** Column names, in order, when it exists. */
  columns: string[];
}

export interface SchemaWriter {
  /** Existence, emptiness and columns of the destination tables that the schema would create. */
  inspectTables(tables: QualifiedName[]): Promise<DestinationTableState[]>;
  /**
   * Creates what the data needs before loading: schemas, extensions, enums, domains,
   * sequences, tables with columns, defaults, identity, primary keys, unique and check
   * constraints. Objects that already exist are kept (an empty table with matching
   * columns is reused). Resolves with the objects it created. Idempotent.
   */
  createPreDataObjects(schema: DatabaseSchema): Promise<CreatedObject[]>;
  /**
   * Creates what is better built after the data: secondary indexes, then foreign keys.
   * Idempotent: objects that exist already are skipped.
   */
  createPostDataObjects(schema: DatabaseSchema): Promise<void>;
  /** Sets every sequence (and identity) to the source's value, so new rows do not collide. */
  syncSequences(schema: DatabaseSchema): Promise<void>;
  /** Empties the tables (tables the job loaded but did not create). Missing ones are skipped. */
  truncateTables(tables: QualifiedName[]): Promise<void>;
  /** Drops the objects, newest first (tables with CASCADE). Missing ones are skipped. */
  dropObjects(objects: CreatedObject[]): Promise<void>;
  close(): Promise<void>;
}

export interface Engine {
  readonly kind: EngineKind;
  /**
   * Connects and reports the server version and the settings and privileges that matter
   * for migration. Never rejects for a server problem: `ok` is false and `error` says why.
   */
  testConnection(params: ConnectionParams): Promise<ConnectionReport>;
  /** Checks this server as the source of a job of `jobType` over the selection. Never rejects for a server problem. */
  verifySource(params: ConnectionParams, selection: ObjectSelection, jobType: JobType): Promise<VerifyCheck[]>;
  /** Checks this server as the destination of `schema`. Never rejects for a server problem. */
  verifyDestination(params: ConnectionParams, schema: DatabaseSchema): Promise<VerifyCheck[]>;
  /** Opens a consistent snapshot of the source. Rejects with a classified FerryError. */
  openSnapshot(params: ConnectionParams): Promise<SourceSnapshot>;
  /** Reads the selected schema outside any snapshot (for verify). */
  readSchema(params: ConnectionParams, selection: ObjectSelection): Promise<DatabaseSchema>;
  openSchemaWriter(params: ConnectionParams): Promise<SchemaWriter>;
  openTableWriter(params: ConnectionParams): Promise<TableWriter>;
  /** Turns anything a driver throws into a FerryError with a code, retryability and a message that says what to do. */
  classifyError(error: unknown): FerryError;
}
