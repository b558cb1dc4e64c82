/**
 * The MySQL/MariaDB engine: connection test, source and destination checks, and the factory
 * of the parts that move a MySQL or MariaDB database (introspector, snapshot reader, schema
 * writer, table writer, binlog change reader, change applier, error classifier).
 */
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { JobType } from '../../core/lifecycle.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../core/schema.js';
import type { ChangeApplier, ChangeApplierOptions, ChangeReader, ConnectionReport, CopyOptions, DestinationFence, Engine, ReplicationSpec, SchemaObjectInfo, SchemaObjectOptions, SchemaWriter, SourceSnapshot, SourceVerifyOptions, TableWriter, VerifyCheck } from '../engine.js';
import { BinlogPosition } from './binlog-position.js';
import { dropMysqlFence, raiseMysqlFence } from './mysql-job-fence.js';
import { openMysqlChangeApplier } from './mysql-change-applier.js';
import { openMysqlChangeReader, readBinlogPosition, requireRowBinlog } from './mysql-change-reader.js';
import { connectMysql, endQuietly, errorContext } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import { MysqlIntrospector } from './mysql-introspector.js';
import { openMysqlSchemaWriter } from './mysql-schema-writer.js';
import { openMysqlSnapshot } from './mysql-snapshot-reader.js';
import { openMysqlTableWriter } from './mysql-table-writer.js';
import { testMysqlConnection, verifyMysqlDestination, verifyMysqlSource } from './mysql-verifier.js';

export class MysqlEngine implements Engine {
  readonly kind = 'mysql' as const;

  testConnection(params: ConnectionParams): Promise<ConnectionReport> {
    return testMysqlConnection(params);
  }

  verifySource(params: ConnectionParams, selection: ObjectSelection, jobType: JobType, options?: SourceVerifyOptions): Promise<VerifyCheck[]> {
    return verifyMysqlSource(params, selection, jobType, options);
  }

  verifyDestination(params: ConnectionParams, schema: DatabaseSchema, options?: SchemaObjectOptions): Promise<VerifyCheck[]> {
    return verifyMysqlDestination(params, schema, options);
  }

  /**
   * The coordinator's consistent snapshot; every table reader opens its own and reports its
   * own binlog position (MariaDB: always when the binlog is on, lock-free; MySQL: only when
   * aligned with changes, under a brief global read lock).
   */
  openSnapshot(params: ConnectionParams, options?: { alignedWithChanges?: boolean }): Promise<SourceSnapshot> {
    return openMysqlSnapshot(params, options);
  }

  async readSchema(params: ConnectionParams, selection: ObjectSelection): Promise<DatabaseSchema> {
    const context = errorContext(params, { operation: 'read' });
    const connection = await connectMysql(params, { context });
    try {
      const flavor = await MysqlIntrospector.flavorOf(connection);
      return await new MysqlIntrospector(connection, flavor, params.database).readSchema(selection);
    } catch (error) {
      throw classifyMysqlError(error, context);
    } finally {
      await endQuietly(connection);
    }
  }

  /** The views, routines, triggers, events and partitioned tables of the selection (readSchema reads them too, as `objects`). */
  async listSchemaObjects(params: ConnectionParams, selection: ObjectSelection): Promise<SchemaObjectInfo[]> {
    return (await this.readSchema(params, selection)).objects ?? [];
  }

  openSchemaWriter(params: ConnectionParams, options?: SchemaObjectOptions): Promise<SchemaWriter> {
    return openMysqlSchemaWriter(params, options);
  }

  openTableWriter(params: ConnectionParams): Promise<TableWriter> {
    return openMysqlTableWriter(params);
  }

  openChangeApplier(params: ConnectionParams, jobId: string, tables: TableSchema[], options?: ChangeApplierOptions): Promise<ChangeApplier> {
    return openMysqlChangeApplier(params, jobId, tables, options);
  }

  raiseFence(params: ConnectionParams, fence: DestinationFence & { nodeId: string }): Promise<void> {
    return raiseMysqlFence(params, fence);
  }

  dropFence(params: ConnectionParams, fence: DestinationFence): Promise<void> {
    return dropMysqlFence(params, fence);
  }

  /**
   * MySQL keeps no per-replica objects: binlogs stay for binlog_expire_logs_seconds whoever
   * reads them. Checks that the binlog can feed change capture (on, ROW, FULL images) and
   * resolves with the position the server writes next, with its GTID state when readable.
   */
  async createReplication(params: ConnectionParams, _spec: ReplicationSpec, _tables: QualifiedName[]): Promise<{ startPosition: string }> {
    return this.withBinlogConnection(params, async (connection) => {
      await requireRowBinlog(connection);
      return { startPosition: (await readBinlogPosition(connection, { gtid: true })).format() };
    });
  }

  /** Nothing to drop: a MySQL server keeps no state for a binlog reader once it disconnects. */
  async dropReplication(_params: ConnectionParams, _spec: ReplicationSpec): Promise<void> {}

  /**
   * Streams the binlog from `startPosition`. `options.tables` limits the stream to the job's
   * tables (and gives their column types); `options.destinationEngine` picks the value form.
   * `takeOverSlot` changes nothing: a binlog reader of a node that lost the lease only reads.
   */
  openChangeReader(
    params: ConnectionParams,
    _spec: ReplicationSpec,
    startPosition: string,
    options: CopyOptions & { tables?: TableSchema[]; takeOverSlot?: boolean } = {},
  ): Promise<ChangeReader> {
    return openMysqlChangeReader(params, startPosition, options);
  }

  /** SHOW MASTER STATUS as `file:offset@server` (no GTID: this is polled for lag). */
  currentPosition(params: ConnectionParams): Promise<string> {
    return this.withBinlogConnection(params, async (connection) => (await readBinlogPosition(connection)).format());
  }

  /**
   * MySQL has no logical messages, and writing a marker row would need write access to the
   * source. The current position serves instead: the change reader reaches it either with a
   * commit there or with a heartbeat at or beyond it (the server sends heartbeats while the
   * binlog is idle), so promote sees everything written before this call. `content` is not
   * carried.
   */
  emitMarker(params: ConnectionParams, _content: string): Promise<string> {
    // With the GTID state: the applied position may be another server's (a failover), ordered by GTID.
    return this.withBinlogConnection(params, async (connection) => (await readBinlogPosition(connection, { gtid: true })).format());
  }

  /** Within one server by file and offset; positions of two servers (a failover) by GTID (BinlogPosition.compare). */
  comparePositions(a: string, b: string): number {
    return BinlogPosition.parse(a).compare(BinlogPosition.parse(b));
  }

  /**
   * Bytes of binlog from a to b when both are in the same file of the same server; null
   * across files, whose sizes only SHOW BINARY LOGS on the server could tell, and servers.
   */
  positionDistance(a: string, b: string): number | null {
    return BinlogPosition.parse(a).distanceTo(BinlogPosition.parse(b));
  }

  private async withBinlogConnection<T>(params: ConnectionParams, use: (connection: MysqlConnection) => Promise<T>): Promise<T> {
    const context = errorContext(params, { operation: 'replication' });
    const connection = await connectMysql(params, { context });
    try {
      return await use(connection);
    } catch (error) {
      throw classifyMysqlError(error, context);
    } finally {
      await endQuietly(connection);
    }
  }

  classifyError(error: unknown): FerryError {
    return classifyMysqlError(error);
  }
}

export const mysqlEngine = new MysqlEngine();
