/**
 * The engine contract. An engine is a small factory of its parts: a connection tester, a
 * verifier, an introspector, a snapshot reader, a schema writer, a table writer and an
 * error classifier. The pipeline drives them; it never touches a driver.
 *
 * Data moves between engines in one interchange format: PostgreSQL's text COPY format
 * (one row per line, columns separated by a tab, `\N` for NULL, backslash escapes).
 * Every source produces it and every destination loads it. One exception, between two
 * servers of the same engine that agree on it (TableReader.binaryForm and
 * TableWriter.acceptsBinary): PostgreSQL's binary COPY format, which skips the text output and
 * input functions on both sides.
 */
import type { Readable } from 'node:stream';
import type { ConnectionParams, EngineKind } from '../core/connection-profile.js';
import type { FerryError } from '../core/errors.js';
import type { ObjectSelection } from '../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../core/schema.js';
import type { SchemaObjectInfo, SchemaObjectPhase } from '../core/schema.js';

// The schema object model lives in core (the object planner and DatabaseSchema.objects use it); engines speak it.
export type { SchemaObjectDisposition, SchemaObjectInfo, SchemaObjectPhase, SchemaObjectPlan } from '../core/schema.js';
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
   * The source position the snapshot matches when it was opened for change capture
   * (`openSnapshot(params, { alignedWithChanges: true })`): every transaction that commits at
   * or after it is in the change stream and not in the snapshot. Null otherwise.
   */
  readonly position: string | null;
  /**
   * Reads the schema of the selected tables as it is in the snapshot.
   * Tables are ordered by schema then name.
   */
  readSchema(selection: ObjectSelection, options?: SchemaReadOptions): Promise<DatabaseSchema>;
  /**
   * The source's own script of every schema object of the selection (PostgreSQL:
   * `pg_dump --schema-only` at this snapshot), for a destination of the same engine, whose
   * SchemaWriter.applySchemaScript creates it phase by phase. Optional: an engine without one
   * leaves it out and the pipeline creates the schema from the DatabaseSchema.
   */
  readSchemaScript?(selection: ObjectSelection, schema: DatabaseSchema): Promise<SchemaScript>;
  /**
   * Opens a reader bound to the snapshot. Each reader holds one connection; readers work in
   * parallel. Cancellation: close() ends any copy in flight.
   */
  openTableReader(): Promise<TableReader>;
  /**
   * Cuts a large table into at most `parts` ranges of about `minPartBytes` or more that table readers of this snapshot copy in
   * parallel (each row in exactly one range), and keeps the table from being rewritten until
   * the snapshot is closed. Null when the table cannot be split (too small, or a kind of table
   * the engine cannot cut). Optional: engines whose readers do not share one snapshot leave it out.
   */
  splitTable?(table: TableSchema, parts: number, minPartBytes: number): Promise<TableRange[] | null>;
  /** Releases the snapshot. Readers already open keep reading from it. Idempotent. */
  close(): Promise<void>;
}

/** What reading a schema should know of the job. */
export interface SchemaReadOptions {
  /**
   * The destination's engine (default: the source's own). A PostgreSQL source lists leaf
   * partitions as tables for a PostgreSQL destination, and each partitioned table whole
   * (`TableSchema.partitioned`) for another engine.
   */
  destinationEngine?: EngineKind;
}

/** One statement group of a SchemaScript: one object's DDL, and the phase that creates it. */
export interface SchemaScriptEntry {
  /** The source tool's object type (PostgreSQL: pg_dump's, e.g. 'TABLE', 'FK CONSTRAINT', 'ACL'). */
  type: string;
  schema: string | null;
  name: string;
  phase: SchemaObjectPhase;
  sql: string;
}

/** A source's own schema DDL, split into entries with phases; stored as a job checkpoint (JSON). */
export interface SchemaScript {
  engine: EngineKind;
  /** The program that wrote it, e.g. "pg_dump (PostgreSQL) 15.20". */
  tool: string;
  /** Session settings to run before any entry. */
  prologue: string;
  entries: SchemaScriptEntry[];
}

export interface SchemaScriptOptions {
  /** Fill every materialized view of the script at the end (after the data; again at promote). */
  refreshMaterializedViews?: boolean;
  /** Source schema -> destination schema, for the schemas that land under another name. */
  schemaMapping?: Record<string, string>;
  /**
   * Post-data: build the indexes and index-backed constraints on up to this many connections
   * at once (the indexes of one table side by side), before the rest of the phase. Default 1.
   */
  indexJobs?: number;
}

/** What applying one phase of a SchemaScript did. */
export interface SchemaScriptResult {
  /** Objects it created (Restart drops them). */
  created: CreatedObject[];
  /** Entries skipped because their object already existed on the destination. */
  skipped: number;
  /** Roles named by the source's grants that the destination lacks: those grants were left out. */
  missingRoles: string[];
}

/** How a source writes values for a destination. */
export interface CopyOptions {
  destinationEngine?: EngineKind;
  /** MySQL zero dates bound for an engine without them: 'null' (default, counted for takeWarnings) or 'refuse' (DATA_ERROR). */
  zeroDatePolicy?: 'null' | 'refuse';
  /** MySQL's ENUM error value '' bound for another engine: 'label' (default) writes '' (the mapped enum has that label), 'null' writes NULL (counted for takeWarnings). */
  enumErrorValuePolicy?: 'label' | 'null';
  /** NUL characters in text bound for an engine whose text cannot hold them: 'refuse' (default: DATA_ERROR naming table, column and key) or 'strip' (counted for takeWarnings). */
  nulCharacterPolicy?: 'refuse' | 'strip';
  /**
   * 'binary': PostgreSQL's binary COPY format, only after the writer accepted this reader's
   * binaryForm of the table. Default 'text' (the interchange format).
   */
  format?: CopyFormat;
  /** Only the rows of this part of the table (SourceSnapshot.splitTable). */
  range?: TableRange;
}

export type CopyFormat = 'text' | 'binary';

/**
 * One part of a table, as SourceSnapshot.splitTable cut it: the parts of one split cover every
 * row of the table in the snapshot exactly once. Opaque to the pipeline (PostgreSQL: a block
 * range of the heap, read by ctid, the last part open-ended).
 */
export interface TableRange {
  /** A readable label for logs, e.g. "blocks 0-11999". */
  label: string;
  /** Engine-specific bounds. */
  lower: string | null;
  upper: string | null;
}

/**
 * What a source says of a table's columns for a binary copy: a destination accepts the binary
 * form only when every column has the same type (same binary representation) on its side.
 */
export interface BinaryForm {
  engine: EngineKind;
  /** The server's major version (binary forms are only compared within one). */
  serverMajor: number;
  /** The database's encoding: binary COPY converts no text between encodings. */
  encoding: string;
  /** The copied columns, in copy order, with the type as the server names it (e.g. "numeric(14,2)"). */
  columns: Array<{ name: string; type: string }>;
}

/** A copyOut stream that counts its rows itself, without scanning the bytes (from the wire protocol). */
export interface RowCounting {
  /** Rows read from the source so far: those handed on, and at most a stream buffer more. */
  readonly rows: number;
}

/** True when `stream` counts its own rows (RowCounting). */
export function countsRows(stream: object): stream is RowCounting {
  return typeof (stream as Partial<RowCounting>).rows === 'number';
}

export interface TableReader {
  /**
   * The source position of this reader's own snapshot, when it has one (MySQL/MariaDB: each
   * connection's consistent snapshot has its binlog position); null when the reader shares
   * the SourceSnapshot's. A table's changes are applied from the position it was read at.
   */
  readonly position: string | null;
  /**
   * Streams every row of the table, in the interchange format, for the columns the
   * destination loads: `copiedColumns(table, source engine, destinationEngine)` of
   * core/type-mapping.ts (generated columns left out within one engine, included across
   * engines, where they become ordinary columns). Back-pressure bounds memory: the
   * source is read only as fast as the stream is consumed. Values are written in the
   * source engine's own text form when `destinationEngine` is the same engine, and in the
   * canonical form of docs/type-mapping.md (PostgreSQL's text input syntax for the mapped
   * type) when it is another.
   *
   * The stream may implement RowCounting (PostgreSQL's counts the COPY's messages): the dump's
   * progress then reads its count instead of scanning the bytes for rows.
   */
  copyOut(table: TableSchema, options?: CopyOptions): Readable;
  /**
   * The table's binary form, or null when some copied column has no binary form a destination
   * could share (a type outside the server's built-in catalog: user-defined, extension, enum,
   * composite, domain; or without binary I/O). Optional: engines without a binary format leave it out.
   */
  binaryForm?(table: TableSchema): Promise<BinaryForm | null>;
  /**
   * Values the reader had to change to fit the destination since the last call (MySQL zero
   * dates written as NULL), as sentences naming the column; the pipeline records them in the
   * job's history. Optional: engines that never change a value leave it out.
   */
  takeWarnings?(): string[];
  close(): Promise<void>;
}

/**
 * A job's fence on the destination (`_ferry.job_fence`, one row per key): the epoch of the lease
 * whose holder may commit there (docs/ARCHITECTURE.md, Fencing). A fenced writer reads the row
 * under a share lock right before each COMMIT that records a position or finishes a copy, and
 * rolls back with LEASE_LOST when it holds another epoch (or is gone); Engine.raiseFence takes
 * the row's exclusive lock, so it waits for those commits in flight.
 */
export interface DestinationFence {
  /** The job's key on the destination (pipeline: fenceKeyOf). */
  key: string;
  /** The lease epoch this writer holds. */
  epoch: number;
}

/** How a load reads its rows. */
export interface LoadOptions {
  /** The engine that wrote the rows (default: this engine). */
  sourceEngine?: EngineKind;
  /** 'binary' only after acceptsBinary said yes for the rows' binaryForm. Default 'text'. */
  format?: CopyFormat;
  /** Commit only while the destination fence holds this epoch (else roll back, LEASE_LOST). */
  fence?: DestinationFence;
  /**
   * The load is this work item's one copy (TableWriter.prepareWorkItems): in its own
   * transaction, right before COMMIT, it marks the item's marker done; when the marker is gone
   * (a later attempt replaced the job's markers) or already done (another node committed the
   * item), it rolls back and rejects with FAILED_PRECONDITION (details.superseded true;
   * details.alreadyCommitted true when another copy of the item committed).
   */
  workItem?: { jobKey: string; itemId: string };
}

/** How a change applier writes. */
export interface ChangeApplierOptions {
  /**
   * Every commit() checks the fence, in the transaction that writes the position (a position
   * written alone gets a transaction of its own): another epoch, or no fence row, rolls the
   * batch back with LEASE_LOST.
   */
  fence?: DestinationFence;
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
   * it resolves. On rejection or abort nothing of this load is visible. `rows` holds the
   * columns `copiedColumns(table, sourceEngine, this engine)` lists (`sourceEngine` defaults
   * to this engine).
   */
  replaceTableData(table: TableSchema, rows: Readable, signal: AbortSignal, options?: LoadOptions): Promise<LoadResult>;
  /**
   * Adds the rows to the table, in one destination transaction of their own (one part of a
   * table split by SourceSnapshot.splitTable, several at once on several writers, after a
   * replaceTableData with no rows emptied it). Optional: a destination without it gets whole tables.
   */
  appendTableData?(table: TableSchema, rows: Readable, signal: AbortSignal, options?: LoadOptions): Promise<LoadResult>;
  /**
   * True when this destination loads `form` (a binaryForm of a source table) into `table` as is:
   * same engine, same server major version, same database encoding, and every copied column of the same type. When in
   * doubt, false (the text format). Optional: engines without a binary format leave it out.
   */
  acceptsBinary?(table: TableSchema, form: BinaryForm): Promise<boolean>;
  /**
   * Work items (a dump that several nodes copy): replaces the job's item markers on the
   * destination with one not-done marker per item, in one transaction. It waits for loads that
   * are marking an earlier item of the job; once it resolves, no load of an earlier attempt can
   * commit (its marker is gone). Optional, with forgetWorkItems: a destination without them
   * gets no work items.
   */
  prepareWorkItems?(jobKey: string, itemIds: string[]): Promise<void>;
  /** Removes the job's item markers (and the bookkeeping that holds them once no job has any). */
  forgetWorkItems?(jobKey: string): Promise<void>;
  close(): Promise<void>;
}

/** An object a job created on the destination, so that Restart can remove exactly those. */
export interface CreatedObject {
  kind:
    | 'schema' | 'type' | 'domain' | 'sequence' | 'table' | 'extension'
    | 'view' | 'materialized view' | 'function' | 'procedure' | 'aggregate' | 'collation' | 'event trigger'
    | 'trigger' | 'event';
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

export interface PostDataOptions {
  /**
   * Default true: every foreign key. false: none (a continuous job from PostgreSQL, whose change
   * stream holds the rows its actions changed, adds them at promote). 'actions': only those with
   * an ON DELETE / ON UPDATE action (CASCADE, SET NULL, SET DEFAULT), for a continuous job from
   * MySQL, whose binlog holds none of the rows its actions change: they exist on the destination
   * while the changes are applied, so the destination repeats the actions. Before creating one,
   * the writer looks for referencing rows without their referenced row (written on the source
   * with foreign_key_checks=0) and rejects with CONSTRAINT_VIOLATION naming the constraint, the
   * table and a key. A PostgreSQL destination creates them DEFERRABLE INITIALLY DEFERRED (its
   * actions still run at once; only the existence check waits for the batch's commit), and a
   * later call with `true` (promote) makes them NOT DEFERRABLE, as on the source.
   */
  foreignKeys?: boolean | 'actions';
  /**
   * Default true: also create the objects that act on writes (MySQL triggers and events, the
   * objects of `DatabaseSchema.objects` that the plan puts in the 'promote' phase of a continuous
   * job). Continuous jobs pass false after the dump and create them at promote (a later call with
   * the default): the change stream already holds the rows a source trigger wrote, so a
   * destination trigger firing on Ferry's writes would write them twice, and an event running on
   * the destination during the migration would write data of its own.
   */
  triggers?: boolean;
}

/**
 * What verifySource knows of the job: the destination's engine and the value policies (a
 * MySQL source bound for another engine samples its data and warns, check VALUE_POLICIES,
 * about values those policies will change or refuse).
 */
export interface SourceVerifyOptions {
  destinationEngine?: EngineKind;
  zeroDatePolicy?: 'null' | 'refuse';
  enumErrorValuePolicy?: 'label' | 'null';
  nulCharacterPolicy?: 'refuse' | 'strip';
}

/** How a job creates schema objects on the destination (openSchemaWriter, verifyDestination). */
export interface SchemaObjectOptions {
  /**
   * MySQL/MariaDB: who views, routines, triggers and events run as on the destination.
   * 'keep' (default): the source's DEFINER as is (verify names the definers the destination lacks);
   * 'invoker': views and routines become SQL SECURITY INVOKER and every DEFINER clause is removed,
   * so the destination user that creates them becomes their definer; 'user@host': that account
   * becomes the definer of every object.
   */
  definerPolicy?: string;
  /**
   * A MySQL/MariaDB schema created on PostgreSQL: 'label' (the default) gives each mapped enum
   * type the label '' first, for MySQL's ENUM error value; 'null' creates the labels only.
   */
  enumErrorValuePolicy?: 'label' | 'null';
}

export interface SchemaWriter {
  /** Existence, emptiness and columns of the destination tables that the schema would create. */
  inspectTables(tables: QualifiedName[]): Promise<DestinationTableState[]>;
  /**
   * Creates what the data needs before loading: schemas, extensions, enums, domains,
   * sequences, tables with columns, defaults, identity, primary keys, unique and check
   * constraints; then the objects of `schema.objects` whose plan phase is 'pre-data' (MySQL:
   * routines, then views in dependency order). Objects that already exist are kept (an empty
   * table with matching columns is reused). Resolves with the objects it created. Idempotent.
   */
  createPreDataObjects(schema: DatabaseSchema): Promise<CreatedObject[]>;
  /**
   * Creates what is better built after the data: secondary indexes, then foreign keys
   * (as `foreignKeys` says: continuous jobs add most of them at promote, because change
   * replay may pass through states a foreign key would refuse), then the objects of
   * `schema.objects` planned for 'post-data' or 'promote' (unless `triggers` is false).
   * Idempotent: objects that exist already are skipped. Resolves with the objects it created
   * that Restart must drop (an engine that creates none may resolve with nothing).
   */
  createPostDataObjects(schema: DatabaseSchema, options?: PostDataOptions): Promise<CreatedObject[] | void>;
  /**
   * Creates the entries of `phase` of a script from a source of the same engine, in one
   * destination transaction; objects that exist already are skipped, so a phase can run again
   * after a crash. Optional: engines without scripts leave it out.
   */
  applySchemaScript?(script: SchemaScript, phase: SchemaObjectPhase, options?: SchemaScriptOptions): Promise<SchemaScriptResult>;
  /** Sets every sequence (and identity) to the source's value, so new rows do not collide. */
  syncSequences(schema: DatabaseSchema): Promise<void>;
  /** Empties the tables (tables the job loaded but did not create). Missing ones are skipped. */
  truncateTables(tables: QualifiedName[]): Promise<void>;
  /** Drops the objects, newest first (tables with CASCADE). Missing ones are skipped. */
  dropObjects(objects: CreatedObject[]): Promise<void>;
  close(): Promise<void>;
}

/** Names of the replication objects a continuous job owns on the source. */
export interface ReplicationSpec {
  /** PostgreSQL: the logical replication slot. */
  slotName: string;
  /** PostgreSQL: the publication listing the job's tables. */
  publicationName: string;
}

/** Marks a column value that the source did not send because it did not change (a TOASTed value). Keep the destination's value. */
export const UNCHANGED = Symbol('unchanged');
export type ColumnValue = string | null | typeof UNCHANGED;

/**
 * One row change, with values as text in the source engine's output format (PostgreSQL:
 * the type's text output, as COPY text writes it before escaping).
 */
export type RowChange =
  | { op: 'insert'; table: QualifiedName; columns: string[]; values: ColumnValue[] }
  | {
      op: 'update';
      table: QualifiedName;
      columns: string[];
      values: ColumnValue[];
      /** The old key (or whole old row with REPLICA IDENTITY FULL) when the source sent it, else null (key unchanged). */
      oldColumns: string[] | null;
      oldValues: ColumnValue[] | null;
    }
  | { op: 'delete'; table: QualifiedName; oldColumns: string[]; oldValues: ColumnValue[] }
  | { op: 'truncate'; tables: QualifiedName[]; cascade: boolean; restartIdentity: boolean };

/** What the change stream delivers, in source commit order. */
export type ChangeEvent =
  /**
   * `commitPosition` orders the transaction against snapshot positions: PostgreSQL its commit
   * LSN, MySQL where it starts in the binlog. A transaction that a snapshot at S does not hold
   * has `commitPosition >= S`.
   */
  | { kind: 'begin'; commitPosition: string; commitTime: string }
  | { kind: 'change'; change: RowChange }
  /** The transaction ends; `position` is where a restart resumes after it (PostgreSQL: the commit's end LSN). */
  | { kind: 'commit'; position: string; commitTime: string }
  /** Everything before `position` has been delivered; safe to acknowledge once prior commits are applied. */
  | { kind: 'heartbeat'; position: string }
  /**
   * The source (re)described a table. PostgreSQL: before a table's first change and after DDL.
   * MySQL: after ALTER/CREATE/DROP/RENAME TABLE only; no columns when the table was dropped.
   */
  | { kind: 'relation'; table: QualifiedName; columns: Array<{ name: string; nativeType: string; key: boolean }> }
  /** A marker the pipeline emitted on the source (emitMarker), seen at `position` in the stream. */
  | { kind: 'marker'; position: string; content: string }
  /**
   * Streaming of in-progress transactions (PostgreSQL, when the reader was opened with
   * `streamInProgress`): a block of transaction `xid`'s changes begins (`first`: its first
   * block). Its changes arrive as `streamChange`, in blocks between which other transactions
   * (whole, from begin to commit, each committed before it) and blocks of other streamed
   * transactions may arrive; it ends with `streamCommit` (at its place in commit order) or
   * `streamAbort`. `position`: where the block's first change is in the log, before the
   * transaction's commit (its commitPosition is after it).
   */
  | { kind: 'streamStart'; xid: number; first: boolean; position: string }
  /** A change of streamed transaction `xid` (or of one of its subtransactions). */
  | { kind: 'streamChange'; xid: number; change: RowChange }
  /** The streamed transaction `xid` committed; `position` as for `commit`. */
  | { kind: 'streamCommit'; xid: number; position: string; commitTime: string }
  /** The streamed transaction `xid` aborted (`subxid === xid`), or only its subtransaction `subxid`: its changes are void. */
  | { kind: 'streamAbort'; xid: number; subxid: number };

/**
 * Which source server a change stream reads, and how it found where to start. A source that
 * can fail over to another server of the same history (MySQL/MariaDB by GTID) reports it, so
 * the pipeline notices a new server and records it in the job's history.
 */
export interface ChangeStreamOrigin {
  /** The server's identity as the engine's positions record it (MariaDB: server_id; MySQL: server_uuid). */
  server: string;
  /** A readable name, e.g. "MariaDB server_id 2 at 10.0.0.7:3306". */
  description: string;
  /** With resumedBy 'gtid': the server the start position was read from, when the position says. */
  positionServer: string | null;
  /** 'position': at the stored log position of this server; 'gtid': found by the stored GTID state (another server, or a missing file). */
  resumedBy: 'position' | 'gtid';
  /** The GTID state the stream starts after, when known. */
  gtid: string | null;
}

export interface ChangeReader {
  /** Optional: the server streamed and how the start was found (see ChangeStreamOrigin). */
  readonly origin?: ChangeStreamOrigin;
  /**
   * Events in source commit order, in chunks (a chunk never splits a decode but may split a
   * transaction). Iteration ends when close() is called; it throws a classified FerryError
   * when the stream fails.
   */
  events(): AsyncIterable<ChangeEvent[]>;
  /**
   * Tells the source that everything up to `position` is durably applied, so it may free WAL
   * or binlog. Call only after the destination committed it.
   */
  acknowledge(position: string): void;
  /** As TableReader.takeWarnings, for the changes read since the last call. */
  takeWarnings?(): string[];
  close(): Promise<void>;
}

/**
 * A table of the job whose changes the destination refused: its changes wait (are parked) in
 * the destination's bookkeeping (`_ferry`), written in the same transactions as the position.
 */
export interface ParkedTableRecord {
  /** The destination table. */
  table: QualifiedName;
  /** What the pipeline recorded when it parked the table (its error, as JSON), returned as is. */
  note: string;
  /** Changes of the table waiting to apply. */
  count: number;
  /** The highest sequence number among them; 0 when none wait. */
  lastSeq: number;
}

/** One parked change: its order within its table and the change, serialized by the pipeline. */
export interface ParkedChangeRecord {
  seq: number;
  payload: string;
}

/** Applies changes on the destination in transactions that also record the source position. */
/** A batch of changes a ChangeApplier planned ahead (planAhead); only that applier's applyPlanned takes it. */
export interface PlannedChanges {
  /** How many changes it was planned from. */
  readonly changes: number;
}

export interface ChangeApplier {
  /** The position recorded by the last committed batch of this job, or null before the first. */
  readPosition(): Promise<string | null>;
  /**
   * Applies the changes inside the open destination transaction (opening one if needed), ending
   * in the state they reach in order: the call may regroup and collapse them as
   * pipeline/change-batch-plan.ts plans (every key's changes in order, TRUNCATE a barrier).
   * When a statement about one table fails (a value, a constraint, a missing column or table, a
   * privilege, a change that cannot identify its row), the rejection is a FerryError whose
   * `details.destinationTable` ({schema, name}) names that destination table (apply-failure.ts),
   * so that the pipeline can park that table alone.
   */
  apply(changes: RowChange[]): Promise<void>;
  /**
   * Optional: plans `changes` as apply() would, without the destination (grouping, collapsing,
   * statement parameters: CPU only), so that the pipeline prepares a chunk while the destination
   * still applies the previous one. Null when planning needs the destination (a table not read
   * yet, a change it would refuse): apply() then does it all, and says what is wrong.
   */
  planAhead?(changes: RowChange[]): PlannedChanges | null;
  /** Applies what this applier's planAhead() returned, once, exactly as apply() would have applied those changes. */
  applyPlanned?(planned: PlannedChanges): Promise<void>;
  /** The tables this job has parked, as committed on the destination, with their waiting changes. */
  readParkedTables(): Promise<ParkedTableRecord[]>;
  /**
   * Records the table as parked with `note` (or, with null, removes it from the parked set)
   * inside the open transaction (opening one); durable with the next commit().
   */
  setParkedTable(table: QualifiedName, note: string | null): Promise<void>;
  /** Appends parked changes of the table inside the open transaction (opening one); durable with the next commit(). */
  parkChanges(table: QualifiedName, changes: ParkedChangeRecord[]): Promise<void>;
  /** The table's oldest `limit` parked changes, in `seq` order (inside the open transaction when there is one). */
  readParkedChanges(table: QualifiedName, limit: number): Promise<ParkedChangeRecord[]>;
  /** Deletes the table's parked changes up to `throughSeq` inside the open transaction (opening one). */
  deleteParkedChanges(table: QualifiedName, throughSeq: number): Promise<void>;
  /** Records `position` in the same transaction and commits. Durable when it resolves. */
  commit(position: string): Promise<void>;
  /**
   * Optional: apply(changes) (applyPlanned(planned) when planned is not null: what planAhead
   * returned for those changes) then commit(position), in fewer round trips (the last
   * statements, the position write and the COMMIT together). Succeeds and fails as the two calls
   * would: a statement's failure names its table, and nothing of the batch is committed.
   */
  applyAndCommit?(changes: RowChange[], planned: PlannedChanges | null, position: string): Promise<void>;
  /** Abandons the open transaction, if any. */
  rollback(): Promise<void>;
  /** Removes the position record and the job's parked tables and changes (after promote: the destination stands alone). */
  forgetPosition(): Promise<void>;
  close(): Promise<void>;
}

export interface Engine {
  readonly kind: EngineKind;
  /**
   * Connects and reports the server version and the settings and privileges that matter
   * for migration. Never rejects for a server problem: `ok` is false and `error` says why.
   */
  testConnection(params: ConnectionParams): Promise<ConnectionReport>;
  /**
   * Checks this server as the source of a job of `jobType` over the selection. Never rejects for
   * a server problem. `destinationEngine`, when given, adds the checks that only a job to that
   * engine needs (PostgreSQL to PostgreSQL: a local pg_dump able to read this server); callers
   * that run a job always pass it.
   */
  verifySource(
    params: ConnectionParams,
    selection: ObjectSelection,
    jobType: JobType,
    options?: SourceVerifyOptions,
  ): Promise<VerifyCheck[]>;
  /**
   * Checks this server as the destination of `schema` (and of its `objects` under `options`:
   * MySQL names the definers it lacks and what the definer policy does). Never rejects for a
   * server problem.
   */
  verifyDestination(params: ConnectionParams, schema: DatabaseSchema, options?: SchemaObjectOptions): Promise<VerifyCheck[]>;
  /**
   * Opens a consistent snapshot of the source. With `alignedWithChanges`, the snapshot's
   * `position` tells where it meets the change stream (PostgreSQL: a temporary slot's
   * exported snapshot). Rejects with a classified FerryError.
   */
  openSnapshot(params: ConnectionParams, options?: { alignedWithChanges?: boolean }): Promise<SourceSnapshot>;
  /**
   * A table reader bound to a snapshot that another session opened and still holds open
   * (`SourceSnapshot.id`, from this process or another node): every reader of one snapshot id
   * reads the same instant. Rejects with SNAPSHOT_LOST (retryable) once the snapshot is closed.
   * Optional: an engine whose snapshots cannot be shared between sessions leaves it out.
   */
  openSnapshotReader?(params: ConnectionParams, snapshotId: string): Promise<TableReader>;
  /**
   * Creates the job's replication objects on the source (publication over `tables`, slot)
   * if missing. Resolves with the slot's start position. Idempotent. `insertOnlyTables`
   * (tables whose UPDATE and DELETE the source cannot describe: no key, no replica identity)
   * are published for INSERT and TRUNCATE only, so the source's own UPDATEs keep working.
   */
  createReplication(
    params: ConnectionParams,
    spec: ReplicationSpec,
    tables: QualifiedName[],
    options?: { insertOnlyTables?: QualifiedName[] },
  ): Promise<{ startPosition: string }>;
  /** Drops the job's replication objects on the source; missing ones are skipped. Waits for an active slot to be released. */
  dropReplication(params: ConnectionParams, spec: ReplicationSpec): Promise<void>;
  /**
   * Streams changes from `startPosition` (exclusive of transactions that ended at or before it).
   * `tables` limits the stream to the job's tables and gives their columns (MySQL filters the
   * binlog by them); `destinationEngine` picks the value form as for copyOut. `takeOverSlot`
   * (a node that holds the job's lease and raised its fence): a slot still held by another
   * connection (the walsender of a node that lost the lease) is taken over by terminating that
   * backend, a bounded number of times; engines without slots ignore it. `streamInProgress`:
   * the source may send a large transaction's changes before its commit (ChangeEvent
   * `streamStart` .. `streamCommit`); engines that cannot (MySQL: the binlog holds a
   * transaction only once it committed) ignore it.
   */
  openChangeReader(
    params: ConnectionParams,
    spec: ReplicationSpec,
    startPosition: string,
    options?: CopyOptions & { tables?: TableSchema[]; takeOverSlot?: boolean; streamInProgress?: boolean },
  ): Promise<ChangeReader>;
  /** The applier for one job on the destination (`jobId`: the job's destination key). */
  openChangeApplier(params: ConnectionParams, jobId: string, tables: TableSchema[], options?: ChangeApplierOptions): Promise<ChangeApplier>;
  /**
   * Raises the job's destination fence to `fence.epoch` for `fence.nodeId` (creating `_ferry`
   * and its row when missing): an update of the row, so it waits for every transaction of an
   * older epoch that holds the row's share lock (those commit first; the caller reads what they
   * wrote), and every later check of an older epoch fails. Idempotent for the same epoch.
   * LEASE_LOST when the fence already holds a higher epoch. Durable when it resolves.
   */
  raiseFence(params: ConnectionParams, fence: DestinationFence & { nodeId: string }): Promise<void>;
  /**
   * Removes the job's fence row when it holds `fence.epoch` (a job done with the destination),
   * then `_ferry` when nothing is left in it. Nothing to do when the row is gone. LEASE_LOST
   * when it holds another epoch.
   */
  dropFence(params: ConnectionParams, fence: DestinationFence): Promise<void>;
  /** The source's current position (PostgreSQL: pg_current_wal_lsn()). */
  currentPosition(params: ConnectionParams): Promise<string>;
  /**
   * Optional (sources that stream in-progress transactions): null while any of these source
   * transactions (the ids the change stream gives them) is in progress; once none is, the
   * current position, read after that.
   */
  transactionsEndedAt?(params: ConnectionParams, xids: number[]): Promise<string | null>;
  /**
   * Writes a marker into the change stream and resolves with its position (promote waits for
   * it). An engine without logical messages (MySQL) returns the current position and writes
   * nothing; the stream reaches it with a commit or a heartbeat rather than a `marker`.
   */
  emitMarker(params: ConnectionParams, content: string): Promise<string>;
  /** Negative, zero or positive as a is before, at or after b. */
  comparePositions(a: string, b: string): number;
  /** How far apart two positions are, in bytes of log (b - a), or null when the engine cannot tell (MySQL: across binlog files). */
  positionDistance(a: string, b: string): number | null;
  /**
   * Lists the schema objects of the selection beyond table columns (views, routines,
   * triggers, partitions, indexes, ...), outside any snapshot, for verify and the job's object
   * report. Optional while an engine cannot list them.
   */
  listSchemaObjects?(params: ConnectionParams, selection: ObjectSelection): Promise<SchemaObjectInfo[]>;
  /** Reads the selected schema outside any snapshot (for verify). */
  readSchema(params: ConnectionParams, selection: ObjectSelection, options?: SchemaReadOptions): Promise<DatabaseSchema>;
  /** A schema writer; `options` say how it creates schema objects (the job's definer policy). */
  openSchemaWriter(params: ConnectionParams, options?: SchemaObjectOptions): Promise<SchemaWriter>;
  openTableWriter(params: ConnectionParams): Promise<TableWriter>;
  /** Turns anything a driver throws into a FerryError with a code, retryability and a message that says what to do. */
  classifyError(error: unknown): FerryError;
}
