/**
 * Reads a MySQL/MariaDB source's changes from its row-based binary log: @vlasky/zongji
 * streams the binlog over a replica connection (COM_BINLOG_DUMP from a file and offset) and
 * MysqlChangeReader turns its events into ChangeEvents.
 *
 * Transactions: a transaction's 'begin' is sent at its first row change of a selected table
 * (transactions that touch no selected table are not sent at all); its `commitPosition` is
 * where the transaction starts in the binlog, so that comparing it with a snapshot position
 * (the binlog position after the snapshot's last transaction) says exactly whether the
 * snapshot holds it. Its 'commit' comes at the XID (or COMMIT) event, with the binlog
 * position after that event: the point a restart resumes from. Statements that commit
 * implicitly (TRUNCATE, DDL) are transactions of their own: TRUNCATE of a selected table is
 * a begin/truncate/commit; ALTER, CREATE, DROP and RENAME TABLE on a selected database send
 * a 'relation' with the table's columns as they are now (no columns: the table is gone).
 *
 * Positions (`file:offset#gtid@server`, BinlogPosition) carry the GTID state after each
 * event group (MariaDB's domain-server-sequence list or MySQL's executed GTID set, advanced at
 * each GTID event's group end; left out when longer than MAX_GTID_TEXT) and the identity of
 * the server they are in. Opening decides how to start (binlog-resume.ts): at the stored file
 * and offset when they are this server's, or by GTID (zongji's start({ gtidSet }): MariaDB's
 * `@slave_connect_state`, MySQL's COM_BINLOG_DUMP_GTID) when the source is another server of
 * the same history, e.g. a replica promoted after a failover; `origin` tells which.
 *
 * Heartbeats: the server is asked to send its own heartbeat every `heartbeatIntervalMs`
 * while the binlog is idle (`@master_heartbeat_period`); each one, each binlog rotation, and
 * (at most every `heartbeatIntervalMs`) the end of a transaction that touched no selected
 * table, becomes a 'heartbeat' at the position after everything read so far, never inside a
 * transaction. So the applied position keeps moving on an idle or unrelated source, and a
 * position returned by currentPosition() is reached within one heartbeat interval.
 *
 * Acknowledgement: a MySQL server keeps binlogs by age (binlog_expire_logs_seconds), not by
 * what replicas confirmed, so acknowledge() only records the position.
 *
 * Memory: events wait in a queue until events() hands them out; past `highWaterEvents`, or
 * `highWaterBytes` of estimated heap bytes (changeEventBytes()), the binlog connection is paused (mysql2 queues nothing more than the read in flight), and it
 * resumes when the consumer takes the queue.
 */
import { zeroDateRefused } from '../../core/type-mapping.js';
import { ChangedValues, NulCharacterFound, describeRowKey, keyColumnsOf, nulCharacterRefused, valuePoliciesOf } from '../../core/value-policies.js';
import type { ValuePolicies } from '../../core/value-policies.js';
import ZongJi, { GtidSet, MariadbGtidPosition } from '@vlasky/zongji';
import type { AnyBinlogEvent, BinlogEventByName, TableMapEntry } from '@vlasky/zongji';
import type { Connection } from 'mysql2';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { isMysqlSpatialType } from '../../core/spatial.js';
import type { QualifiedName, TableSchema } from '../../core/schema.js';
import type { ChangeEvent, ChangeReader, ChangeStreamOrigin, ColumnValue, RowChange } from '../engine.js';
import { createMysqlValueConverter, mysqlFloatText, parseMysqlStringList, shortestDouble, shortestFloat32 } from '../../core/type-mapping.js';
import type { MysqlValue } from '../../core/type-mapping.js';
import { BinlogPosition } from './binlog-position.js';
import { readServerIdentity, resolveStreamStart, type StreamStart } from './binlog-resume.js';
import { loadSql } from './load-sql.js';
import { buildConnectionOptions, connectMysql, endQuietly, errorContext, verifyServerAddress } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import { canonicalDateTime, enumHasEmptyLabel, valueKind } from './mysql-snapshot-reader.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';

/** Databases that are never a job's: their changes are not read. */
export const SYSTEM_DATABASES = ['mysql', 'sys', 'information_schema', 'performance_schema'] as const;

const HEARTBEAT_INTERVAL_MS = 2_000;
const HIGH_WATER_EVENTS = 10_000;
/** Estimated bytes of queued events beyond which the binlog connection is paused. */
// 1 MiB, not more: a deeper queue is not faster, its events only live long enough to be promoted
// to V8's old generation (docs/ARCHITECTURE.md, "Memory of ferry serve").
export const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * An upper estimate of the heap bytes of an event: a fixed part for its objects and arrays,
 * and per value a string header and array slot (24 bytes) plus 2 bytes per character (a
 * string with a character beyond Latin-1 takes two bytes for each).
 */
export function changeEventBytes(event: ChangeEvent): number {
  if (event.kind !== 'change') return 256;
  const change = event.change;
  let bytes = 256;
  const add = (values: ColumnValue[] | null) => {
    for (const value of values ?? []) bytes += typeof value === 'string' ? 24 + 2 * value.length : 8;
  };
  if (change.op === 'insert' || change.op === 'update') add(change.values);
  if (change.op === 'update' || change.op === 'delete') add(change.oldValues);
  return bytes;
}
/** How long close() waits for zongji to end the stream before giving up on it. */
const STOP_TIMEOUT_MS = 5_000;
/**
 * The longest GTID state a position carries. Positions are stored in the destination's
 * position table (MySQL: varchar(512)); a MySQL GTID set of many servers can be longer, and
 * resuming needs only the file and offset.
 */
const MAX_GTID_TEXT = 256;
/** How long opening waits for the server's first event (it sends one as soon as the dump starts). */
const START_TIMEOUT_MS = 30_000;

const INCLUDED_EVENTS = ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows', 'query', 'xid', 'gtid', 'mariadbgtid', 'mariadbgtidlist', 'heartbeat', 'xaprepare'];

export interface MysqlChangeReaderOptions {
  /** 'refuse': a zero date bound for another engine fails the stream (DATA_ERROR) instead of becoming NULL. */
  zeroDatePolicy?: 'null' | 'refuse';
  /** ENUM error values ('') bound for another engine: 'label' (default) sends '', 'null' sends NULL and counts it. */
  enumErrorValuePolicy?: 'label' | 'null';
  /** NUL characters in text bound for another engine: 'refuse' (default) fails the stream naming table, column and key; 'strip' removes them and counts them. */
  nulCharacterPolicy?: 'refuse' | 'strip';
  /**
   * The destination's engine. Values are MySQL's own text form for a MySQL destination (the
   * default), and the canonical form of docs/type-mapping.md for any other.
   */
  destinationEngine?: EngineKind;
  /**
   * The job's tables: only their changes are delivered, and their column types decide value
   * conversion. Without it, every table of `params.database`, or of every non-system
   * database when the profile names none.
   */
  tables?: ReadonlyArray<QualifiedName | TableSchema>;
  /** The server heartbeat period and the longest gap between heartbeats on a busy binlog. */
  heartbeatIntervalMs?: number;
  highWaterEvents?: number;
  highWaterBytes?: number;
  /** The replica server id this reader announces; unique per reader (random by default). */
  serverId?: number;
}

/**
 * Opens a reader of the binlog from `startPosition` (a transaction boundary: a commit
 * position, a heartbeat position or a snapshot's position): connects, starts the dump and
 * resolves once the server streams. Rejects with a classified FerryError: a start position
 * whose binlog file was purged (or never existed) is REPLICATION_SLOT_LOST.
 */
export async function openMysqlChangeReader(params: ConnectionParams, startPosition: string, options: MysqlChangeReaderOptions = {}): Promise<MysqlChangeReader> {
  const stored = BinlogPosition.parse(startPosition);
  const context = errorContext(params, { operation: 'replication' });
  const connection = await connectMysql(params, { context });
  let start: StreamStart;
  try {
    start = await resolveStreamStart(connection, stored);
  } catch (error) {
    throw error instanceof FerryError ? error : classifyMysqlError(error, context);
  } finally {
    await endQuietly(connection);
  }
  const reader = new MysqlChangeReader(params, start, options);
  await reader.start();
  return reader;
}

/** How the rows of one binlog table map are turned into changes. */
interface TableDecoder {
  generation: number;
  /** The columns (names and types) of the table map it was built for. */
  signature: string;
  table: QualifiedName;
  names: string[];
  converters: Array<(value: unknown) => string | null>;
  /** Column-name arrays by columns-present bitmap, shared by every change of that shape. */
  shapes: Map<string, { columns: string[]; present: boolean[] }>;
  /** Names a row (its key columns) in refusals. */
  describeKey: (row: Record<string, unknown>) => string;
}

type GroupKind = 'none' | 'transaction' | 'standalone';

export class MysqlChangeReader implements ChangeReader {
  /** Values changed for another engine (zero dates, ENUM error values, NUL characters), per `db.table.column`. */
  readonly changedValues = new ChangedValues();

  /** Zero or invalid dates sent as NULL, per `db.table.column`, since the last takeWarnings. */
  get nulledZeroDates(): Map<string, number> {
    return this.changedValues.countsOf('zero-date');
  }

  takeWarnings(): string[] {
    return this.changedValues.take();
  }
  private readonly zongji: ZongJi;
  private readonly serverId: number;
  private readonly heartbeatMs: number;
  private readonly highWater: number;
  private readonly highWaterBytes: number;
  /** changeEventBytes() of what `pending` holds. */
  private pendingBytes = 0;
  private readonly canonical: boolean;
  private readonly policies: ValuePolicies;
  /** Key columns by "db\u0000table", naming the row in refusals. */
  private readonly keyColumns = new Map<string, string[]>();
  private readonly context: MysqlErrorContext;
  /** Selected tables by "db\u0000table"; null when whole databases are selected. */
  private readonly tables: Map<string, QualifiedName> | null;
  /** Selected databases; null means every non-system database. */
  private readonly databases: Set<string> | null;
  private readonly decoders = new WeakMap<TableMapEntry, TableDecoder>();
  /**
   * The last decoder of each table by "db\u0000table". zongji builds a new table map entry at
   * every table map event when the binlog describes its columns itself (binlog_row_metadata =
   * FULL), i.e. once per transaction: the decoder is reused while the columns are the same.
   */
  private readonly decodersByTable = new Map<string, TableDecoder>();
  /** nativeType by column name per table, when known (the job's schema, or a re-read after DDL). */
  private readonly typesByTable = new Map<string, Map<string, string>>();

  private pending: ChangeEvent[] = [];
  private wakeConsumer: (() => void) | null = null;
  private failure: FerryError | null = null;
  private closing: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private iterating = false;
  /** Bumped when DDL re-reads a table's column types: decoders built before are rebuilt. */
  private typesGeneration = 0;
  private started = false;
  /** Pauses of the binlog connection that are ours: the consumer is behind, or a DDL re-read is running. */
  private backPressured = false;
  private ddlInFlight = 0;
  /** zongji pauses the connection itself while it fetches a table's columns; never resume under it. */
  private zongjiFetching = false;
  /**
   * The job's tables' columns, read in one query when the stream starts (zongji's column query
   * form), so that the first row event of each table does not pause the stream for a query of
   * its own. An entry is used once, and dropped when the stream shows DDL on its table; zongji
   * queries the server for anything else.
   */
  private prefetched: Promise<Map<string, Array<Record<string, unknown>>>> | null = null;

  private file: string;
  private group: GroupKind = 'none';
  private groupStart: BinlogPosition;
  private transactionOpen = false;
  private groupGtid: { domainId: number; serverId: number; seqNo: number | string } | string | null = null;
  private gtidState: MariadbGtidPosition | GtidSet | null;
  /** The server streamed, as positions record it. */
  private readonly server: string;
  private readonly byGtid: boolean;
  readonly origin: ChangeStreamOrigin;
  /** The position after the last complete event group read: everything before it is handled. */
  private boundary: BinlogPosition;
  /** The furthest commit or heartbeat handed out: a heartbeat must go beyond it. */
  private delivered: BinlogPosition;
  private lastHeartbeatAt = 0;
  private acknowledgedPosition: BinlogPosition | null = null;

  private readonly startPosition: BinlogPosition;

  /** Use openMysqlChangeReader. */
  constructor(
    private readonly params: ConnectionParams,
    start: StreamStart,
    options: MysqlChangeReaderOptions = {},
  ) {
    const startPosition = start.position;
    this.startPosition = startPosition;
    this.server = start.identity.id;
    this.byGtid = start.mode === 'gtid';
    this.origin = {
      server: start.identity.id,
      description: `${start.identity.description} at ${params.host}:${params.port}`,
      positionServer: start.mode === 'gtid' ? startPosition.server : null,
      resumedBy: start.mode,
      gtid: startPosition.gtid,
    };
    this.serverId = options.serverId ?? 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
    this.heartbeatMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.highWater = options.highWaterEvents ?? HIGH_WATER_EVENTS;
    this.highWaterBytes = options.highWaterBytes ?? HIGH_WATER_BYTES;
    this.canonical = options.destinationEngine !== undefined && options.destinationEngine !== 'mysql';
    this.policies = valuePoliciesOf(options);
    this.context = errorContext(params, { operation: 'replication' });
    if (options.tables !== undefined) {
      this.tables = new Map();
      this.databases = new Set();
      for (const table of options.tables) {
        const key = tableKey(table.schema, table.name);
        if ('columns' in table) {
          this.typesByTable.set(key, new Map(table.columns.map((c) => [c.name, c.nativeType])));
          this.keyColumns.set(key, keyColumnsOf(table));
        }
        this.tables.set(key, { schema: table.schema, name: table.name });
        this.databases.add(table.schema);
      }
    } else {
      this.tables = null;
      this.databases = params.database !== null ? new Set([params.database]) : null;
    }
    this.file = startPosition.file;
    this.groupStart = startPosition;
    this.boundary = startPosition;
    this.delivered = startPosition;
    this.gtidState = parseGtidState(startPosition.gtid, start.identity.flavor);
    this.zongji = new ZongJi(buildConnectionOptions(params));
  }

  /** The last position acknowledge() was given (nothing is sent to the server). */
  get acknowledged(): string | null {
    return this.acknowledgedPosition?.format() ?? null;
  }

  /** Starts the dump; resolves at the first event the server sends, rejects with a classified error. */
  start(): Promise<void> {
    if (this.started) return Promise.reject(new FerryError('FAILED_PRECONDITION', 'This change reader has already started; open another reader.'));
    this.started = true;
    const zongji = this.zongji;
    return new Promise<void>((resolve, reject) => {
      let streaming = false;
      const timer = setTimeout(() => onError(new FerryError('CONNECTION_TIMEOUT', `The source did not start streaming its binlog within ${START_TIMEOUT_MS / 1000} s; Ferry retries.`, { retryable: true })), START_TIMEOUT_MS);
      const onError = (error: unknown) => {
        clearTimeout(timer);
        const classified = this.byGtid && !streaming ? this.gtidStartError(classifyMysqlError(error, this.context)) : classifyMysqlError(error, this.context);
        if (!streaming) {
          streaming = true;
          this.failure = classified;
          void this.stopZongji().finally(() => reject(classified));
          return;
        }
        this.fail(classified);
      };
      zongji.on('error', onError);
      zongji.on('ready', () => {
        try {
          for (const connection of [zongji.ctrlConnection, zongji.connection]) {
            if (connection !== null) verifyServerAddress(connection as unknown as Parameters<typeof verifyServerAddress>[0], this.params);
          }
        } catch (error) {
          onError(error);
          return;
        }
        // Queued before zongji's dump command on the same connection, so the server knows
        // the period when the dump starts (nanoseconds; MySQL 8.0.26+ reads the source_ name).
        this.prefetchColumns();
        const nanoseconds = BigInt(this.heartbeatMs) * 1_000_000n;
        const connection = zongji.connection;
        connection?.query(`SET @master_heartbeat_period = ${nanoseconds}, @source_heartbeat_period = ${nanoseconds}`, (error: unknown) => {
          if (error) onError(error);
        });
      });
      zongji.on('binlog', (event: AnyBinlogEvent) => {
        if (!streaming) {
          streaming = true;
          clearTimeout(timer);
          resolve();
        }
        if (this.closing !== null || this.failure !== null) return;
        try {
          this.handle(event);
        } catch (error) {
          this.fail(error instanceof FerryError ? error : classifyMysqlError(error, this.context));
        }
      });
      this.watchTableInfoFetches();
      zongji.start({
        serverId: this.serverId,
        // By GTID the server finds the start itself (and skips what the state holds).
        ...(this.byGtid ? { gtidSet: this.startPosition.gtid ?? '' } : { filename: this.startPosition.file, position: this.startPosition.offset }),
        includeEvents: INCLUDED_EVENTS,
        ...this.schemaFilter(),
      });
    });
  }

  /**
   * The server refused a dump by GTID for a reason the check before it could not see (e.g. a
   * hole in the sequence under gtid_strict_mode): say what was asked of which server.
   */
  private gtidStartError(error: FerryError): FerryError {
    const cause = error.cause instanceof Error ? error.cause.message : error.message;
    // "Could not find GTID state requested by slave in any binlog files ... purged": the classifier says it.
    if (error.code !== 'REPLICATION_SLOT_LOST' || /purged/i.test(cause)) return error;
    return new FerryError(
      'REPLICATION_SLOT_LOST',
      `The source (${this.origin.description}) refused to stream its binlog after GTID ${this.startPosition.gtid} (the job's position, read from server ${this.startPosition.server ?? 'unknown'}): ${cause}. This server does not have the history the job applied, so the job cannot resume exactly from it: Restart the job to take a new full dump from this server.`,
      { details: { ...error.details, reason: 'history' }, cause: error },
    );
  }

  events(): AsyncIterable<ChangeEvent[]> {
    if (this.iterating) {
      throw new FerryError('FAILED_PRECONDITION', 'The events of a change reader can be iterated only once; open another reader.');
    }
    this.iterating = true;
    return this.iterate();
  }

  acknowledge(position: string): void {
    const parsed = BinlogPosition.parse(position);
    if (this.acknowledgedPosition === null || parsed.compare(this.acknowledgedPosition) > 0) this.acknowledgedPosition = parsed;
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async *iterate(): AsyncGenerator<ChangeEvent[]> {
    for (;;) {
      if (this.closing !== null) return;
      if (this.pending.length > 0) {
        const chunk = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        if (this.backPressured) {
          this.backPressured = false;
          this.resumeIfAllowed();
        }
        yield chunk;
        continue;
      }
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => {
        this.wakeConsumer = resolve;
      });
    }
  }

  private wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = null;
    wake?.();
  }

  private push(event: ChangeEvent): void {
    this.pending.push(event);
    this.pendingBytes += changeEventBytes(event);
    if (this.pending.length >= this.highWater || this.pendingBytes >= this.highWaterBytes) {
      // Also when already back-pressured: zongji resumes the connection after its own column
      // fetches, and the next event pauses it again.
      this.backPressured = true;
      this.zongji.connection?.pause();
    }
    this.wake();
  }

  private resumeIfAllowed(): void {
    if (this.backPressured || this.ddlInFlight > 0 || this.zongjiFetching || this.closing !== null || this.failure !== null) return;
    this.zongji.connection?.resume();
  }

  /**
   * zongji pauses the binlog connection while it reads a table's columns and resumes it once
   * they are in its table map; resuming under it would decode rows without their columns.
   * Its enum and set labels are fixed here too (see fillEnumSetLabels).
   */
  private watchTableInfoFetches(): void {
    const zongji = this.zongji as unknown as ZongjiTableInfo;
    const fetch = zongji._fetchTableInfo;
    if (typeof fetch !== 'function') return;
    zongji._fetchTableInfo = (event: { tableId: number; schemaName: string; tableName: string; columnCount: number }, next: () => void) => {
      this.zongjiFetching = true;
      const done = () => {
        this.zongjiFetching = false;
        fillEnumSetLabels(zongji.tableMap?.[event.tableId]);
        next();
      };
      const prefetched = this.prefetched;
      if (prefetched === null) {
        fetch.call(this.zongji, event, done);
        return;
      }
      void prefetched.then((columns) => {
        const key = tableKey(event.schemaName, event.tableName);
        const rows = columns.get(key);
        columns.delete(key);
        if (rows === undefined || rows.length !== event.columnCount || zongji.tableMap === undefined) {
          fetch.call(this.zongji, event, done);
          return;
        }
        zongji.tableMap[event.tableId] = { columnSchemas: rows as Array<{ COLUMN_TYPE: string }>, parentSchema: event.schemaName, tableName: event.tableName };
        done();
      });
    };
  }

  /** Reads the columns of every table of the job in one query (see `prefetched`); a failure leaves each table to zongji's own query. */
  private prefetchColumns(): void {
    const control = this.zongji.ctrlConnection;
    if (this.tables === null || this.tables.size === 0 || control === null) return;
    const tables = [...this.tables.values()];
    const sql = `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLLATION_NAME, CHARACTER_SET_NAME, COLUMN_COMMENT, COLUMN_TYPE
      FROM INFORMATION_SCHEMA.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN (${tables.map(() => '(?, ?)').join(', ')})
      ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`;
    this.prefetched = queryRows(control, sql, tables.flatMap((t) => [t.schema, t.name])).then(
      (rows) => {
        const columns = new Map<string, Array<Record<string, unknown>>>();
        for (const { TABLE_SCHEMA: schema, TABLE_NAME: name, ...column } of rows) {
          const key = tableKey(String(schema), String(name));
          let list = columns.get(key);
          if (list === undefined) columns.set(key, (list = []));
          list.push(column);
        }
        return columns;
      },
      () => new Map(),
    );
  }

  private schemaFilter(): { includeSchema?: Record<string, string[] | true>; excludeSchema?: Record<string, string[] | true> } {
    if (this.tables !== null) {
      const includeSchema: Record<string, string[]> = {};
      for (const table of this.tables.values()) (includeSchema[table.schema] ??= []).push(table.name);
      return { includeSchema };
    }
    if (this.databases !== null) return { includeSchema: Object.fromEntries([...this.databases].map((d) => [d, true as const])) };
    return { excludeSchema: Object.fromEntries(SYSTEM_DATABASES.map((d) => [d, true as const])) };
  }

  private isSelectedTable(schema: string, name: string): boolean {
    if (this.tables !== null) return this.tables.has(tableKey(schema, name));
    return this.isSelectedDatabase(schema);
  }

  private isSelectedDatabase(schema: string): boolean {
    if (this.databases !== null) return this.databases.has(schema);
    return !(SYSTEM_DATABASES as readonly string[]).includes(schema);
  }

  private handle(event: AnyBinlogEvent): void {
    switch (event.getEventName()) {
      case 'rotate': {
        const rotate = event as BinlogEventByName<'rotate'>;
        this.file = rotate.binlogName;
        // A stream started by GTID begins with an artificial rotate to the start of a file whose
        // first groups the server skips: that is no position to resume from.
        if (this.group === 'none' && !(this.byGtid && rotate.nextPosition === 0)) {
          this.boundary = this.at(rotate.binlogName, rotate.position);
          this.heartbeat(true);
        }
        break;
      }
      case 'heartbeat': {
        const beat = event as BinlogEventByName<'heartbeat'>;
        // The server beats only when it has sent everything it has: the stream is at a boundary.
        if (this.group !== 'none') break;
        const offset = beat.nextPosition > 0 ? beat.nextPosition : Number(beat.position ?? 0);
        if (offset > 0) {
          this.file = beat.binlogName;
          const at = this.at(beat.binlogName, offset);
          if (at.compare(this.boundary) > 0) this.boundary = at;
        }
        this.heartbeat(true);
        break;
      }
      case 'mariadbgtid': {
        const gtid = event as BinlogEventByName<'mariadbgtid'>;
        this.openGroup(gtid.standalone ? 'standalone' : 'transaction');
        this.groupGtid = { domainId: gtid.domainId, serverId: gtid.serverId, seqNo: gtid.seqNo };
        break;
      }
      case 'gtid': {
        // MySQL: a BEGIN query follows for a transaction; a DDL statement follows alone.
        this.openGroup('standalone');
        this.groupGtid = (event as BinlogEventByName<'gtid'>).gtid;
        break;
      }
      case 'mariadbgtidlist': {
        // At the start of a binlog file: the exact GTID state there, when we had none.
        const list = event as BinlogEventByName<'mariadbgtidlist'>;
        if (this.gtidState === null && this.group === 'none' && list.nextPosition > 0) {
          this.gtidState = MariadbGtidPosition.fromGtidList(list.gtids);
        }
        break;
      }
      case 'query':
        this.handleQuery(event as BinlogEventByName<'query'>);
        break;
      case 'tablemap': {
        if (this.group === 'none') this.openGroup('transaction');
        const tableMap = event as unknown as { tableId: number; tableMap: Record<number, ZongjiColumns | undefined> };
        readSpatialAsBytes(tableMap.tableMap[tableMap.tableId]);
        break;
      }
      case 'writerows':
      case 'updaterows':
      case 'deleterows':
        this.handleRows(event as BinlogEventByName<'writerows' | 'updaterows' | 'deleterows'>);
        break;
      case 'xid':
        this.closeGroup(event.nextPosition, event.timestamp);
        break;
      case 'xaprepare':
        throw new FerryError(
          'DATA_ERROR',
          `The source's binlog holds an XA transaction (XA PREPARE at ${this.file}:${event.nextPosition}), which Ferry cannot replicate: its changes would be applied before the source decides to commit them. Stop using XA transactions on the selected tables, then Restart the job.`,
          { details: { position: `${this.file}:${event.nextPosition}` } },
        );
      default:
        break;
    }
  }

  private openGroup(kind: GroupKind): void {
    this.group = kind;
    this.groupStart = this.boundary;
    this.transactionOpen = false;
    this.groupGtid = null;
  }

  /** The end of an event group at `offset` of the current file: commit what was sent, or beat. */
  private closeGroup(offset: number, timestampMs: number, beat = true): void {
    this.advanceGtid();
    this.group = 'none';
    if (offset > 0) this.boundary = this.at(this.file, offset);
    if (this.transactionOpen) {
      this.transactionOpen = false;
      this.delivered = this.boundary;
      this.push({ kind: 'commit', position: this.boundary.format(), commitTime: isoTime(timestampMs) });
    } else if (beat) {
      this.heartbeat(false);
    }
  }

  private advanceGtid(): void {
    const gtid = this.groupGtid;
    this.groupGtid = null;
    if (gtid === null || this.gtidState === null) return;
    try {
      if (typeof gtid === 'string') {
        if (this.gtidState instanceof GtidSet) this.gtidState.add(gtid);
      } else if (this.gtidState instanceof MariadbGtidPosition) {
        this.gtidState.add(gtid);
      }
    } catch {
      // A GTID the model cannot hold makes the state unknown from here on, not wrong.
      this.gtidState = null;
    }
  }

  /** A position in this server's binlog, with the GTID state after everything read so far. */
  private at(file: string, offset: number): BinlogPosition {
    return new BinlogPosition(file, offset, carriedGtid(this.gtidState?.toString() ?? null), this.server);
  }

  /** A heartbeat at the boundary, when nothing is open and it moves past what was sent. */
  private heartbeat(now: boolean): void {
    if (this.group !== 'none' || this.boundary.compare(this.delivered) <= 0) return;
    const time = Date.now();
    if (!now && time - this.lastHeartbeatAt < this.heartbeatMs) return;
    this.lastHeartbeatAt = time;
    this.delivered = this.boundary;
    this.push({ kind: 'heartbeat', position: this.boundary.format() });
  }

  private beginIfNeeded(timestampMs: number): void {
    if (this.transactionOpen) return;
    this.transactionOpen = true;
    // The group's start with the GTID state before it: ordered against snapshot positions of this server by offset, of another by GTID.
    this.push({ kind: 'begin', commitPosition: this.groupStart.format(), commitTime: isoTime(timestampMs) });
  }

  private handleQuery(event: BinlogEventByName<'query'>): void {
    const statement = stripComments(event.query).trim();
    const upper = statement.toUpperCase();
    if (upper === 'BEGIN' || upper.startsWith('XA START')) {
      if (this.group !== 'transaction') {
        // MySQL: BEGIN after the transaction's GTID event, which opened the group already.
        const gtid = this.groupGtid;
        this.openGroup('transaction');
        this.groupGtid = gtid;
      }
      return;
    }
    // A COMMIT event ends transactions on non-transactional tables; after a ROLLBACK their
    // changes stay too (only a statement's transactional part is undone, and that part never
    // reaches the binlog).
    if (upper === 'COMMIT' || upper === 'ROLLBACK') {
      this.closeGroup(event.nextPosition, event.timestamp);
      return;
    }
    const described = parseTableDdl(statement, event.schema).filter((t) => this.isSelectedDatabase(t.schema));
    if (this.group === 'transaction') {
      // CREATE TABLE ... SELECT: the statement, then the rows it inserted, then the commit.
      if (described.length > 0) this.describeTables(described);
      else this.refuseStatementDml(statement, event.schema);
      return;
    }
    // A statement that commits on its own (DDL, TRUNCATE): its own event group.
    if (this.group === 'none') this.openGroup('standalone');
    const truncated = parseTruncate(statement, event.schema);
    if (truncated !== null && this.isSelectedTable(truncated.schema, truncated.name)) {
      this.beginIfNeeded(event.timestamp);
      this.push({ kind: 'change', change: { op: 'truncate', tables: [truncated], cascade: false, restartIdentity: false } });
      this.closeGroup(event.nextPosition, event.timestamp);
      return;
    }
    this.refuseStatementDml(statement, event.schema);
    // No heartbeat past a DDL before its relation is out: a restart from there would never report it.
    this.closeGroup(event.nextPosition, event.timestamp, described.length === 0);
    if (described.length > 0) this.describeTables(described);
  }

  /**
   * Statement-based DML (a session with binlog_format STATEMENT or MIXED) carries no row
   * images: on a selected database its changes would be lost silently, so the stream fails.
   */
  private refuseStatementDml(statement: string, defaultSchema: string): void {
    if (!/^(INSERT|UPDATE|DELETE|REPLACE|LOAD\s+DATA)\b/i.test(statement)) return;
    const schemas = new Set<string>();
    if (defaultSchema !== '') schemas.add(defaultSchema);
    for (const match of statement.matchAll(/(`(?:[^`]|``)+`|[\w$]+)\s*\.\s*(?:`(?:[^`]|``)+`|[\w$]+)/g)) schemas.add(unquoteIdentifier(match[1] as string));
    const hit = [...schemas].find((s) => this.isSelectedDatabase(s));
    if (hit === undefined) return;
    throw new FerryError(
      'DATA_ERROR',
      `The source's binlog holds a statement-based change on database ${hit} (at ${this.file}), which carries no row values Ferry could apply: "${statement.slice(0, 120)}". Set binlog_format = ROW globally and for every session (SET GLOBAL binlog_format = 'ROW'; sessions that set STATEMENT or MIXED themselves must stop), then Restart the job.`,
      { details: { database: hit, statement: statement.slice(0, 500) } },
    );
  }

  /**
   * Sends a 'relation' for each table with its columns as the server has them now. The binlog
   * connection pauses meanwhile, so the relation stays in stream order.
   */
  private describeTables(tables: QualifiedName[]): void {
    const control = this.zongji.ctrlConnection;
    if (control === null) throw new FerryError('CONNECTION_LOST', 'The control connection to the source is gone; Ferry reconnects and continues from the last applied position.', { retryable: true });
    // What was read of these tables before their DDL no longer describes their rows.
    void this.prefetched?.then((columns) => {
      for (const table of tables) columns.delete(tableKey(table.schema, table.name));
    });
    this.ddlInFlight++;
    this.zongji.connection?.pause();
    void (async () => {
      try {
        for (const table of tables) {
          const rows = await queryRows(control, loadSql('binlog-table-columns.sql'), [table.schema, table.name]);
          const types = new Map(rows.map((r) => [String(r.name), String(r.type)]));
          const key = tableKey(table.schema, table.name);
          if (rows.length > 0) this.typesByTable.set(key, types);
          else this.typesByTable.delete(key);
          this.typesGeneration++;
          if (this.closing !== null || this.failure !== null) return;
          this.push({
            kind: 'relation',
            table,
            // Generated columns are computed on the destination, as in the dumped schema.
            columns: rows
              .filter((r) => !/GENERATED|VIRTUAL|PERSISTENT|STORED/i.test(String(r.extra ?? '')))
              .map((r) => ({ name: String(r.name), nativeType: String(r.type), key: String(r.key) === 'PRI' })),
          });
        }
      } catch (error) {
        this.fail(classifyMysqlError(error, this.context));
      } finally {
        this.ddlInFlight--;
        this.resumeIfAllowed();
      }
    })();
  }

  private handleRows(event: BinlogEventByName<'writerows' | 'updaterows' | 'deleterows'>): void {
    const entry = event.tableMap[event.tableId];
    if (entry === undefined || !this.isSelectedTable(entry.parentSchema, entry.tableName)) return;
    if (this.group === 'none') this.openGroup('transaction');
    const decoder = this.decoderFor(entry);
    const raw = event as unknown as { columns_present_bitmap?: Buffer; columns_present_bitmap2?: Buffer };
    this.beginIfNeeded(event.timestamp);
    const name = event.getEventName();
    if (name === 'writerows') {
      const shape = shapeOf(decoder, raw.columns_present_bitmap);
      for (const row of (event as BinlogEventByName<'writerows'>).rows) {
        this.push({ kind: 'change', change: { op: 'insert', table: decoder.table, columns: shape.columns, values: rowValues(decoder, shape.present, row) } });
      }
    } else if (name === 'deleterows') {
      const shape = shapeOf(decoder, raw.columns_present_bitmap);
      for (const row of (event as BinlogEventByName<'deleterows'>).rows) {
        this.push({ kind: 'change', change: { op: 'delete', table: decoder.table, oldColumns: shape.columns, oldValues: rowValues(decoder, shape.present, row) } });
      }
    } else {
      const before = shapeOf(decoder, raw.columns_present_bitmap);
      const after = shapeOf(decoder, raw.columns_present_bitmap2 ?? raw.columns_present_bitmap);
      for (const row of (event as BinlogEventByName<'updaterows'>).rows) {
        const change: RowChange = {
          op: 'update',
          table: decoder.table,
          columns: after.columns,
          values: rowValues(decoder, after.present, row.after),
          // The binlog sends the whole old row (binlog_row_image = FULL): the applier finds the
          // row by its key in it, or by all of it for a table without a key.
          oldColumns: before.columns,
          oldValues: rowValues(decoder, before.present, row.before),
        };
        this.push({ kind: 'change', change });
      }
    }
  }

  private decoderFor(entry: TableMapEntry): TableDecoder {
    let decoder = this.decoders.get(entry);
    if (decoder !== undefined && decoder.generation === this.typesGeneration) return decoder;
    const key = tableKey(entry.parentSchema, entry.tableName);
    const signature = entry.columnSchemas.map((c) => `${c.COLUMN_NAME}\u0000${c.COLUMN_TYPE}`).join('\u0001');
    const last = this.decodersByTable.get(key);
    if (last !== undefined && last.generation === this.typesGeneration && last.signature === signature) {
      this.decoders.set(entry, last);
      return last;
    }
    const known = this.typesByTable.get(key);
    const names = entry.columnSchemas.map((c) => c.COLUMN_NAME);
    const converters = entry.columnSchemas.map((c) => {
      const nativeType = known?.get(c.COLUMN_NAME) ?? c.COLUMN_TYPE;
      if (!this.canonical) return mysqlTextConverter(nativeType);
      const column = `${entry.parentSchema}.${entry.tableName}.${c.COLUMN_NAME}`;
      return canonicalConverter(nativeType, column, {
        policies: this.policies,
        onZeroDate: () => {
          if (this.policies.zeroDates === 'refuse') throw zeroDateRefused(column);
          this.changedValues.add(column, 'zero-date');
        },
        changed: (kind) => this.changedValues.add(column, kind),
      });
    });
    const table = this.tables?.get(key) ?? { schema: entry.parentSchema, name: entry.tableName };
    const keyColumns = this.keyColumns.get(key) ?? [];
    const keyIndexes = keyColumns.map((c) => names.indexOf(c));
    const describeKey = (row: Record<string, unknown>) =>
      describeRowKey(keyColumns, keyIndexes.map((i) => (i < 0 ? null : plainText(row[names[i] as string]))));
    decoder = { generation: this.typesGeneration, signature, table, names, converters, shapes: new Map(), describeKey };
    this.decoders.set(entry, decoder);
    this.decodersByTable.set(key, decoder);
    return decoder;
  }

  private fail(error: FerryError): void {
    if (this.failure !== null || this.closing !== null) return;
    this.failure = error;
    this.wake();
    void this.stopZongji();
  }

  private stopZongji(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const zongji = this.zongji;
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      zongji.once('stopped', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        zongji.stop();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    this.wake();
    await this.stopZongji();
    this.zongji.removeAllListeners('binlog');
    // Late errors of connections being torn down are noise now.
    this.zongji.removeAllListeners('error');
    this.zongji.on('error', () => undefined);
  }
}

function tableKey(schema: string, name: string): string {
  return `${schema}\u0000${name}`;
}

/**
 * When a transaction whose binlog event carries `timestampMs` committed, as precisely as this
 * reader can tell, for the lag (ReplicationStats): binlog timestamps are whole seconds, so taken
 * as they are the lag would read up to a second too high. The event was written at the commit
 * and received at `receivedMs`: received within the second it names, the reader is caught up and
 * the commit was (almost) at the receipt; received later, the reader reads a backlog and the
 * middle of that second is off by half a second at most.
 */
export function binlogTime(timestampMs: number, receivedMs: number): number {
  if (timestampMs <= 0) return receivedMs;
  return receivedMs < timestampMs + 1000 ? receivedMs : timestampMs + 500;
}

/** The last time isoTime formatted: every transaction of one backlog second shares it. */
let lastIsoMs = -1;
let lastIso = '';

function isoTime(timestampMs: number): string {
  const time = binlogTime(timestampMs, Date.now());
  if (time !== lastIsoMs) {
    lastIso = new Date(time).toISOString();
    lastIsoMs = time;
  }
  return lastIso;
}

function parseGtidState(text: string | null, flavor: 'mariadb' | 'mysql'): MariadbGtidPosition | GtidSet | null {
  if (text === null) return null;
  try {
    if (text === '') return flavor === 'mariadb' ? new MariadbGtidPosition() : null;
    return text.includes(':') ? GtidSet.parse(text.replace(/\s/g, '')) : MariadbGtidPosition.parse(text);
  } catch {
    return null;
  }
}

function shapeOf(decoder: TableDecoder, bitmap: Buffer | undefined): { columns: string[]; present: boolean[] } {
  const signature = bitmap === undefined ? '' : bitmap.toString('hex');
  let shape = decoder.shapes.get(signature);
  if (shape === undefined) {
    const present = decoder.names.map((_, i) => bitmap === undefined || ((bitmap[i >> 3] ?? 0) & (1 << (i & 7))) !== 0);
    shape = { columns: decoder.names.filter((_, i) => present[i]), present };
    decoder.shapes.set(signature, shape);
  }
  return shape;
}

function rowValues(decoder: TableDecoder, present: boolean[], row: Record<string, unknown>): ColumnValue[] {
  const values: ColumnValue[] = [];
  const { names, converters } = decoder;
  try {
    for (let i = 0; i < names.length; i++) {
      if (!present[i]) continue;
      values.push((converters[i] as (value: unknown) => string | null)(row[names[i] as string]));
    }
  } catch (error) {
    if (error instanceof NulCharacterFound) throw nulCharacterRefused(`${decoder.table.schema}.${decoder.table.name}`, error.column, decoder.describeKey(row));
    throw error;
  }
  return values;
}

/** Rows from a query on a mysql2 callback connection. */
function queryRows(connection: Connection, sql: string, values: unknown[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    connection.query(sql, values, (error, rows) => {
      if (error) reject(error);
      else resolve(rows as Array<Record<string, unknown>>);
    });
  });
}

function stripComments(sql: string): string {
  return sql.replace(/\/\*!\d*\s?([\s\S]*?)\*\//g, '$1').replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|\n)\s*(--\s|#)[^\n]*/g, '$1');
}

function unquoteIdentifier(text: string): string {
  return text.startsWith('`') ? text.slice(1, -1).replace(/``/g, '`') : text;
}

const IDENTIFIER = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[\w$\u0080-\uffff]+)`;
const TABLE_NAME = String.raw`(${IDENTIFIER})(?:\s*\.\s*(${IDENTIFIER}))?`;

function qualify(first: string, second: string | undefined, defaultSchema: string): QualifiedName | null {
  if (second !== undefined) return { schema: unquoteIdentifier(first), name: unquoteIdentifier(second) };
  if (defaultSchema === '') return null;
  return { schema: defaultSchema, name: unquoteIdentifier(first) };
}

/** `TRUNCATE [TABLE] [db.]t` as the binlog has it, or null for any other statement. */
export function parseTruncate(statement: string, defaultSchema: string): QualifiedName | null {
  const match = new RegExp(String.raw`^\s*TRUNCATE\s+(?:TABLE\s+)?${TABLE_NAME}\s*;?\s*$`, 'i').exec(stripComments(statement));
  return match === null ? null : qualify(match[1] as string, match[2], defaultSchema);
}

/** The tables whose columns an ALTER, CREATE, DROP or RENAME TABLE statement changes; empty for any other statement. */
export function parseTableDdl(statement: string, defaultSchema: string): QualifiedName[] {
  const sql = stripComments(statement).trim();
  const single = [
    String.raw`^ALTER\s+(?:ONLINE\s+|OFFLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?${TABLE_NAME}`,
    String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${TABLE_NAME}`,
  ];
  for (const pattern of single) {
    const match = new RegExp(pattern, 'i').exec(sql);
    if (match !== null) {
      const table = qualify(match[1] as string, match[2], defaultSchema);
      return table === null ? [] : [table];
    }
  }
  const drop = /^DROP\s+TABLES?\s+(?:IF\s+EXISTS\s+)?([\s\S]*)$/i.exec(sql);
  if (drop !== null) return listOfTables(drop[1] as string, defaultSchema);
  const rename = /^RENAME\s+TABLES?\s+([\s\S]*)$/i.exec(sql);
  if (rename !== null) {
    return listOfTables((rename[1] as string).replace(/\s+TO\s+/gi, ','), defaultSchema);
  }
  return [];
}

function listOfTables(text: string, defaultSchema: string): QualifiedName[] {
  const tables: QualifiedName[] = [];
  const pattern = new RegExp(String.raw`\s*${TABLE_NAME}\s*(?:,|$|\s+(?:RESTRICT|CASCADE|WAIT\s+\d+|NOWAIT))`, 'giy');
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null) {
    const table = qualify(match[1] as string, match[2], defaultSchema);
    if (table !== null) tables.push(table);
    if (pattern.lastIndex >= text.length) break;
  }
  return tables;
}

type Converter = (value: unknown) => string | null;

/** The zongji internals watchTableInfoFetches wraps: its column fetch and the table map it fills. */
interface ZongjiTableInfo {
  _fetchTableInfo?: (event: { tableId: number; schemaName: string; tableName: string; columnCount: number }, next: () => void) => void;
  tableMap?: Record<number, { columnSchemas?: Array<{ COLUMN_TYPE: string; ENUM_VALUES?: string[]; SET_VALUES?: string[] }>; parentSchema?: string; tableName?: string } | undefined>;
}

/**
 * zongji takes an ENUM / SET value's label from the column's COLUMN_TYPE split on commas,
 * without unescaping: `enum('b''q','c\\d')` gives it the labels `b''q` and `c\\d`. It uses
 * ENUM_VALUES / SET_VALUES instead when present (binlog_row_metadata = FULL fills them): give
 * it the labels as MySQL reads them.
 */
function fillEnumSetLabels(entry: { columnSchemas?: Array<{ COLUMN_TYPE: string; ENUM_VALUES?: string[]; SET_VALUES?: string[] }> } | undefined): void {
  for (const column of entry?.columnSchemas ?? []) {
    const definition = /^(enum|set)\((.*)\)$/is.exec(String(column.COLUMN_TYPE));
    if (definition === null) continue;
    const labels = parseMysqlStringList(definition[2] as string);
    if ((definition[1] as string).toLowerCase() === 'enum') column.ENUM_VALUES ??= labels;
    else column.SET_VALUES ??= labels;
  }
}

/** zongji's decoded columns of a table map entry: the type code and charset it reads each value by. */
interface ZongjiColumns {
  columns?: Array<{ type: number; charset: string | null }>;
}

/** MySQL's column type codes (binlog): GEOMETRY, and BLOB, which zongji hands over as its bytes. */
const GEOMETRY_TYPE_CODE = 255;
const BLOB_TYPE_CODE = 252;

/**
 * zongji decodes a GEOMETRY value into points without its SRID (and nothing for a collection
 * of collections). A geometry is stored like a BLOB (a length, then MySQL's internal format:
 * SRID + WKB): reading the column as a BLOB gives its exact bytes. Called on every table map
 * event, before the row events that use it are decoded.
 */
function readSpatialAsBytes(entry: ZongjiColumns | undefined): void {
  for (const column of entry?.columns ?? []) {
    if (column.type !== GEOMETRY_TYPE_CODE) continue;
    column.type = BLOB_TYPE_CODE;
    column.charset = null;
  }
}

/** zongji decodes YEAR as 1900 + the stored byte, so the zero year 0000 arrives as 1900 (outside YEAR's 1901-2155). */
const ZERO_YEAR = 1900;

const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

function baseType(nativeType: string): string {
  return (/^[a-z]+/i.exec(nativeType.trim())?.[0] ?? nativeType).toLowerCase();
}

/**
 * A binlog value as the server's text protocol would print it (what the snapshot reads),
 * where zongji differs: the zero year, the invalid ENUM value '' (index 0), and negative
 * TIME values without a fraction (see negativeTime).
 */
function serverValue(base: string): (value: unknown) => unknown {
  if (base === 'year') return (v) => (v === ZERO_YEAR ? '0000' : v);
  if (base === 'enum') return (v) => (v === undefined ? '' : v);
  if (base === 'time') return negativeTime;
  return (v) => v;
}

/**
 * zongji decodes a negative TIME (TIME2 format) whose fraction is zero from the packed
 * hour/minute/second fields of the value minus one, then adds the one back to the seconds
 * field alone: `-01:00:00` arrives as `-00:63:64`, `-12:30:05` correctly. Adds it back across
 * the fields instead (hour << 12 | minute << 6 | second).
 */
function negativeTime(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const parts = /^-(\d+):(\d{2}):(\d{2})((?:\.0*)?)$/.exec(value);
  if (parts === null) return value;
  const packed = ((Number(parts[1]) << 12) | (Number(parts[2]) << 6) | (Number(parts[3]) - 1)) + 1;
  const hour = packed >> 12;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `-${pad(hour)}:${pad((packed >> 6) & 63)}:${pad(packed & 63)}${parts[4] ?? ''}`;
}

function plainText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

function hexBytes(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
  return `\\x${bytes.toString('hex')}`;
}

function floatText(value: unknown): string | null {
  return value === null || value === undefined ? null : shortestFloat32(Number(value));
}

function doubleText(value: unknown): string | null {
  return value === null || value === undefined ? null : shortestDouble(Number(value));
}

/**
 * MySQL's own text form of a binlog value, for a MySQL destination: the server's text, as the
 * snapshot copies it, except that bytes (BINARY, VARBINARY, BLOB, BIT, and spatial values in
 * MySQL's internal format: SRID + WKB) are `\x` + hex, since
 * a change carries text (the snapshot passes the raw bytes). FLOAT and DOUBLE are the
 * shortest text that reads back the same value (FLOAT: one MySQL accepts, see mysqlFloatText).
 */
export function mysqlTextConverter(nativeType: string): Converter {
  const base = baseType(nativeType);
  if (base === 'float') return (v) => (v === null || v === undefined ? null : mysqlFloatText(Number(v)));
  if (base === 'double' || base === 'real') return doubleText;
  if (base === 'bit' || BINARY_TYPES.has(base) || isMysqlSpatialType(base)) return hexBytes;
  const server = serverValue(base);
  return (v) => plainText(server(v));
}

/** What a canonical converter does with values the destination cannot hold as they are. */
export interface ConverterHooks {
  policies: ValuePolicies;
  /** A zero or invalid date: throws when refused, else counts it (it is sent as NULL). */
  onZeroDate(): void;
  /** Counts a value changed under a policy. */
  changed(kind: 'enum-error-value' | 'nul-character'): void;
}

/**
 * The canonical form of docs/type-mapping.md, exactly as the snapshot reader writes it for
 * another engine (the same type kinds and converters): zero and invalid dates become null
 * and are counted through `onZeroDate`; spatial values (raw bytes, see rawSpatialColumns)
 * become EWKB hex.
 */
export function canonicalConverter(nativeType: string, column = 'a column', hooks: Partial<ConverterHooks> = {}): Converter {
  const base = baseType(nativeType);
  const server = serverValue(base);
  const policies = hooks.policies ?? valuePoliciesOf({});
  const onZeroDate = hooks.onZeroDate ?? (() => undefined);
  const changed = hooks.changed ?? (() => undefined);
  switch (valueKind(nativeType, false)) {
    case 'raw':
      return (v) => plainText(server(v));
    case 'text': {
      const strip = policies.nulCharacter === 'strip';
      const name = column.slice(column.lastIndexOf('.') + 1);
      return (v) => {
        if (v === null || v === undefined) return null;
        const text = plainText(server(v)) as string;
        if (!text.includes('\u0000')) return text;
        if (!strip) throw new NulCharacterFound(name);
        changed('nul-character');
        return text.replace(/\u0000/g, '');
      };
    }
    case 'enum': {
      const keep = policies.enumErrorValue === 'label' || enumHasEmptyLabel(nativeType);
      return (v) => {
        const text = plainText(server(v));
        if (text !== '' || keep) return text;
        changed('enum-error-value');
        return null;
      };
    }
    case 'float':
      return floatText;
    case 'double':
      return doubleText;
    case 'converted': {
      const convert = createMysqlValueConverter(nativeType, { column });
      return (v) => (v === null || v === undefined ? null : convert(server(v) as MysqlValue));
    }
    case 'date':
    case 'datetime':
    case 'timestamp': {
      const suffix = base === 'timestamp' ? '+00' : '';
      return (v) => {
        const text = plainText(v);
        if (text === null) return null;
        const canonical = canonicalDateTime(text);
        if (canonical === null) {
          onZeroDate();
          return null;
        }
        return `${canonical}${suffix}`;
      };
    }
  }
}

/**
 * Refuses a server whose binlog cannot feed change capture: binlog off, not row-based, or
 * row images without every column. Rejects with REPLICATION_NOT_CONFIGURED saying what to set.
 */
export async function requireRowBinlog(connection: MysqlConnection): Promise<void> {
  const [rows] = await connection.query(loadSql('server-settings.sql'));
  const settings = new Map((rows as Array<Record<string, unknown>>).map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value ?? '')]));
  const problems: string[] = [];
  if ((settings.get('log_bin') ?? 'OFF').toUpperCase() !== 'ON') problems.push('the binary log is off (log_bin): set log_bin (and server_id) in the server configuration and restart it');
  const format = (settings.get('binlog_format') ?? '').toUpperCase();
  if (format !== 'ROW') problems.push(`binlog_format is ${format || 'unknown'}: SET GLOBAL binlog_format = 'ROW' and set it in the configuration`);
  const image = (settings.get('binlog_row_image') ?? 'FULL').toUpperCase();
  if (image !== 'FULL') problems.push(`binlog_row_image is ${image}: SET GLOBAL binlog_row_image = 'FULL' and set it in the configuration`);
  if (problems.length > 0) {
    throw new FerryError('REPLICATION_NOT_CONFIGURED', `The source cannot feed change capture: ${problems.join('; ')}. Then start the job again.`, {
      details: { settings: Object.fromEntries(settings) },
    });
  }
}

/**
 * Where the server writes next in its binlog (SHOW MASTER STATUS, or SHOW BINARY LOG STATUS
 * on MySQL 8.4+), with the server's identity. With `gtid`, the GTID state at that position
 * when it can be read consistently: MySQL reports its executed GTID set in the same row (kept
 * when not empty); on MariaDB @@gtid_binlog_pos is read before and after, and kept when no
 * transaction came between ('' when the server has written no GTID yet); on a server that keeps
 * writing, BINLOG_GTID_POS(file, offset) gives it (a read of the binlog file up to the offset).
 */
export async function readBinlogPosition(connection: MysqlConnection, options: { gtid?: boolean } = {}): Promise<BinlogPosition> {
  const identity = await readServerIdentity(connection);
  const mariadb = identity.flavor === 'mariadb';
  for (let attempt = 0; ; attempt++) {
    const before = options.gtid === true && mariadb ? await readMariadbGtidPosition(connection) : null;
    const status = await readBinlogStatus(connection);
    const file = String(status.File ?? '');
    const offset = Number(status.Position);
    if (before !== null) {
      const after = await readMariadbGtidPosition(connection);
      if (before === after) return new BinlogPosition(file, offset, carriedGtid(before), identity.id);
      if (attempt >= 2) {
        // A busy server kept writing between the reads: the state at this exact position, from the binlog.
        const [rows] = await connection.query('SELECT BINLOG_GTID_POS(?, ?) AS state', [file, offset]);
        const state = (rows as Array<{ state: unknown }>)[0]?.state;
        return new BinlogPosition(file, offset, typeof state === 'string' ? carriedGtid(state) : null, identity.id);
      }
      continue;
    }
    const executed = options.gtid === true ? String(status.Executed_Gtid_Set ?? '').replace(/\s/g, '') : '';
    return new BinlogPosition(file, offset, executed === '' ? null : carriedGtid(executed), identity.id);
  }
}

function carriedGtid(text: string | null): string | null {
  return text === null || text.length > MAX_GTID_TEXT ? null : text;
}

async function readBinlogStatus(connection: MysqlConnection): Promise<Record<string, unknown>> {
  let rows: unknown;
  try {
    [rows] = await connection.query('SHOW MASTER STATUS');
  } catch (error) {
    // MySQL 8.4 removed SHOW MASTER STATUS; 8.2 introduced its successor.
    if ((error as { errno?: unknown }).errno !== 1064) throw error;
    [rows] = await connection.query('SHOW BINARY LOG STATUS');
  }
  const row = (rows as Array<Record<string, unknown>>)[0];
  if (row === undefined || row.File === undefined || row.File === null) {
    throw new FerryError('REPLICATION_NOT_CONFIGURED', 'The source has no binary log (SHOW MASTER STATUS is empty): set log_bin and server_id in its configuration, binlog_format = ROW and binlog_row_image = FULL, and restart it.');
  }
  return row;
}

/** MariaDB's @@gtid_binlog_pos. */
async function readMariadbGtidPosition(connection: MysqlConnection): Promise<string> {
  const [rows] = await connection.query('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
  return String((rows as Array<Record<string, unknown>>)[0]?.pos ?? '');
}
