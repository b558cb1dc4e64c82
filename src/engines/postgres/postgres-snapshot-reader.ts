/**
 * A consistent snapshot of a PostgreSQL source. A coordinator connection opens a
 * REPEATABLE READ READ ONLY transaction and exports its snapshot; each table reader opens
 * its own connection and imports it, so every table is read as of the same instant.
 *
 * The exported snapshot stays importable only while the coordinator transaction is open:
 * keep the snapshot open until every reader has been opened. Readers already open keep
 * their snapshot after close().
 */
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { isTableSelected } from '../../core/object-selection.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../core/schema.js';
import { copiedColumns } from '../../core/type-mapping.js';
import type { BinaryForm, CopyFormat, CopyOptions, RowCounting, SchemaReadOptions, SchemaScript, SourceSnapshot, TableRange, TableReader } from '../engine.js';
import { CopyOutStream } from './copy-out-stream.js';
import { readBinaryForm } from './postgres-binary-copy.js';
import { connectPostgres, endQuietly, errorContext, quoteIdent, quoteLiteral, quoteQualified } from './postgres-connection.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import { PostgresIntrospector } from './postgres-introspector.js';
import type { IntrospectOptions } from './postgres-introspector.js';
import { dumpPostgresSchema } from './postgres-schema-script.js';

const BEGIN_SNAPSHOT_SQL = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/**
 * The COPY statement that streams the columns a destination of `destinationEngine` loads
 * (copiedColumns), in text format unless `format` says binary. Another engine also gets the
 * generated columns' values, which COPY reads only through a query; so does one range of a
 * split table (its rows by ctid, the table alone without its inheritance children).
 */
export function copyOutSql(table: TableSchema, destinationEngine: EngineKind = 'postgresql', options: { format?: CopyFormat; range?: TableRange } = {}): string {
  const copied = copiedColumns(table, 'postgresql', destinationEngine);
  const columns = copied.map((c) => quoteIdent(c.name));
  const format = options.format === 'binary' ? ' (FORMAT binary)' : '';
  if (options.range !== undefined) {
    const { lower, upper } = options.range;
    const bounds = [
      ...(lower === null ? [] : [`ctid >= ${quoteLiteral(`(${blockNumber(lower)},0)`)}::tid`]),
      ...(upper === null ? [] : [`ctid < ${quoteLiteral(`(${blockNumber(upper)},0)`)}::tid`]),
    ];
    const where = bounds.length === 0 ? '' : ` WHERE ${bounds.join(' AND ')}`;
    return `COPY (SELECT ${columns.length === 0 ? '' : columns.join(', ')} FROM ONLY ${quoteQualified(table)}${where}) TO STDOUT${format}`;
  }
  // A partitioned table seen whole is read through a query over all its partitions.
  if (copied.some((c) => c.generatedExpression !== null) || table.partitioned === true) return `COPY (SELECT ${columns.join(', ')} FROM ${quoteQualified(table)}) TO STDOUT${format}`;
  return `COPY ${quoteQualified(table)}${columns.length === 0 ? '' : ` (${columns.join(', ')})`} TO STDOUT${format}`;
}

/** A range bound is a heap block number, written by splitTable. */
function blockNumber(bound: string): number {
  const block = Number(bound);
  if (!Number.isSafeInteger(block) || block < 0) throw new FerryError('INTERNAL', `A table range bound must be a block number, got ${JSON.stringify(bound)}.`);
  return block;
}

/** Partitions as leaves for a PostgreSQL destination, as whole tables for another engine. */
export function introspectOptionsFor(options: SchemaReadOptions): IntrospectOptions {
  const destinationEngine = options.destinationEngine ?? 'postgresql';
  return { destinationEngine, partitions: destinationEngine === 'postgresql' ? 'leaves' : 'roots' };
}

/** Opens a snapshot of the source: connects, begins the transaction, exports the snapshot. */
export async function openPostgresSnapshot(params: ConnectionParams): Promise<PostgresSnapshotReader> {
  const client = await connectPostgres(params, { operation: 'read' });
  try {
    await client.query(BEGIN_SNAPSHOT_SQL);
    const result = await client.query('SELECT pg_export_snapshot() AS id');
    const id = String((result.rows[0] as { id: unknown }).id);
    return new PostgresSnapshotReader(params, client, id);
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, errorContext(params, { operation: 'read' }));
  }
}

/**
 * A table reader on a snapshot exported by another session (this process's coordinator, or
 * another node's): its own connection, in a REPEATABLE READ transaction that imports the
 * snapshot. The exporting transaction must still be open: PostgreSQL refuses the import
 * otherwise ("invalid snapshot identifier"), classified SNAPSHOT_LOST.
 */
export async function openSnapshotTableReader(params: ConnectionParams, snapshotId: string): Promise<PostgresTableReader> {
  const context = errorContext(params, { operation: 'read', snapshotId });
  const client = await connectPostgres(params, context);
  try {
    await client.query(BEGIN_SNAPSHOT_SQL);
    await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotId)}`);
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, context);
  }
  return new PostgresTableReader(client, context);
}

export class PostgresSnapshotReader implements SourceSnapshot {
  private closing: Promise<void> | null = null;
  /** splitTable's statements on the coordinator run one call at a time (they use a savepoint). */
  private splitting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly params: ConnectionParams,
    private readonly coordinator: pg.Client,
    readonly id: string,
    readonly position: string | null = null,
  ) {}

  async readSchema(selection: ObjectSelection, options: SchemaReadOptions = {}): Promise<DatabaseSchema> {
    if (this.closing !== null) {
      throw new FerryError('FAILED_PRECONDITION', 'The source snapshot is closed; open a new one to read the schema.');
    }
    try {
      return await new PostgresIntrospector(this.coordinator).readSchema(selection, introspectOptionsFor(options));
    } catch (error) {
      throw classifyPostgresError(error, errorContext(this.params, { operation: 'read', snapshotId: this.id }));
    }
  }

  /** pg_dump --schema-only of the selection, at this snapshot. */
  async readSchemaScript(selection: ObjectSelection, schema: DatabaseSchema): Promise<SchemaScript> {
    if (this.closing !== null) {
      throw new FerryError('FAILED_PRECONDITION', 'The source snapshot is closed; open a new one to read the schema.');
    }
    let versionNum: number;
    let excludedTables: QualifiedName[];
    try {
      versionNum = Number(((await this.coordinator.query('SHOW server_version_num')).rows[0] as { server_version_num: unknown }).server_version_num);
      excludedTables = (await new PostgresIntrospector(this.coordinator).listTables())
        .filter((t) => !isTableSelected(selection, t.schema, t.name))
        .map(({ schema: s, name }) => ({ schema: s, name }));
    } catch (error) {
      throw classifyPostgresError(error, errorContext(this.params, { operation: 'read', snapshotId: this.id }));
    }
    return dumpPostgresSchema(this.params, { snapshotId: this.id, selection, tables: schema.tables, excludedTables, serverVersionNum: versionNum, extensions: schema.extensions });
  }

  async openTableReader(): Promise<TableReader> {
    if (this.closing !== null) {
      throw new FerryError(
        'SNAPSHOT_LOST',
        `The source snapshot ${this.id} was released before this reader was opened. Ferry starts the copy again from a new snapshot.`,
        { retryable: true, details: { snapshotId: this.id } },
      );
    }
    return openSnapshotTableReader(this.params, this.id);
  }

  /**
   * Block ranges of the table's heap (PostgreSQL 14 or later reads them with a TID range scan),
   * the last one open-ended. The coordinator takes ACCESS SHARE on the table first and holds it
   * until the snapshot closes: no VACUUM FULL or CLUSTER can move rows between ranges while
   * they are read (other DDL on the table waits too, as it would for pg_dump). A lock not
   * granted within 2 s means the table is copied whole instead.
   */
  splitTable(table: TableSchema, parts: number, minPartBytes: number): Promise<TableRange[] | null> {
    const run = this.splitting.then(() => this.splitNow(table, parts, minPartBytes));
    this.splitting = run.catch(() => undefined);
    return run;
  }

  private async splitNow(table: TableSchema, parts: number, minPartBytes: number): Promise<TableRange[] | null> {
    if (this.closing !== null || parts < 2 || table.partitioned === true) return null;
    const client = this.coordinator;
    try {
      const info = await client.query(
        `SELECT c.relkind::text AS kind, pg_catalog.pg_relation_size(c.oid) AS bytes, current_setting('block_size')::integer AS block_size,
                current_setting('server_version_num')::integer AS version
           FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass`,
        [quoteQualified(table)],
      );
      const row = info.rows[0] as { kind: string; bytes: string; block_size: number; version: number } | undefined;
      if (row === undefined || row.kind !== 'r' || row.version < 140000) return null;
      const bytes = Number(row.bytes);
      const count = Math.min(parts, Math.floor(bytes / Math.max(1, minPartBytes)));
      if (count < 2) return null;
      await client.query('SAVEPOINT ferry_split');
      try {
        await client.query("SET LOCAL lock_timeout = '2s'");
        await client.query(`LOCK TABLE ONLY ${quoteQualified(table)} IN ACCESS SHARE MODE`);
        await client.query('RELEASE SAVEPOINT ferry_split');
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT ferry_split');
        await client.query('RELEASE SAVEPOINT ferry_split');
        return null;
      } finally {
        await client.query('SET LOCAL lock_timeout TO DEFAULT');
      }
      const blocks = Math.ceil(bytes / row.block_size);
      const step = Math.ceil(blocks / count);
      return Array.from({ length: count }, (_, i): TableRange => {
        const lower = i === 0 ? null : i * step;
        const upper = i === count - 1 ? null : (i + 1) * step;
        return { label: `blocks ${lower ?? 0}-${upper === null ? 'end' : upper - 1}`, lower: lower === null ? null : String(lower), upper: upper === null ? null : String(upper) };
      });
    } catch (error) {
      throw classifyPostgresError(error, errorContext(this.params, { operation: 'read', snapshotId: this.id }));
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

/** What copyOut returns: the COPY's bytes, and its rows as the COPY counts them. */
class CopyOutput extends PassThrough implements RowCounting {
  source: RowCounting | null = null;

  get rows(): number {
    return this.source?.rows ?? 0;
  }
}

/** Streams tables in COPY text format from one connection bound to the snapshot. */
export class PostgresTableReader implements TableReader {
  /** Every PostgreSQL reader imports the shared snapshot: its position is the snapshot's. */
  readonly position = null;
  private active: { source: Readable; output: PassThrough } | null = null;
  private broken: FerryError | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly client: pg.Client,
    private readonly context: ReturnType<typeof errorContext>,
  ) {}

  async binaryForm(table: TableSchema): Promise<BinaryForm | null> {
    try {
      return await readBinaryForm(this.client, table, copiedColumns(table, 'postgresql', 'postgresql'));
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  copyOut(table: TableSchema, options: CopyOptions = {}): Readable {
    const output = new CopyOutput();
    const refusal =
      this.closing !== null
        ? new FerryError('FAILED_PRECONDITION', 'This table reader is closed; open another one from the snapshot.')
        : this.broken ?? (this.active !== null ? new FerryError('FAILED_PRECONDITION', 'This table reader is already copying a table; read one table at a time per reader.') : null);
    if (refusal !== null) {
      process.nextTick(() => output.destroy(refusal));
      return output;
    }

    const format = options.format === 'binary' && (options.destinationEngine ?? 'postgresql') === 'postgresql' ? 'binary' : 'text';
    const source = this.client.query(new CopyOutStream(copyOutSql(table, options.destinationEngine, { format, ...(options.range === undefined ? {} : { range: options.range }) })));
    output.source = source;
    const copy = { source, output };
    this.active = copy;
    source.on('error', (error: unknown) => {
      const classified = classifyPostgresError(error, this.context);
      this.broken ??= classified;
      output.destroy(classified);
    });
    source.on('end', () => {
      if (this.active === copy) this.active = null;
    });
    output.on('close', () => {
      if (this.active !== copy) return;
      this.active = null;
      if (!source.readableEnded) {
        // The consumer stopped mid-table: the connection is still inside the COPY and cannot be
        // reused, so it is dropped.
        this.broken ??= new FerryError('CONNECTION_LOST', 'The copy was stopped before the end of the table; open another reader.', {
          retryable: true,
        });
        source.unpipe(output);
        void this.close();
      }
    });
    source.pipe(output);
    return output;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const copy = this.active;
      this.active = null;
      if (copy !== null && !copy.output.destroyed) {
        copy.output.destroy(new FerryError('FAILED_PRECONDITION', 'The table reader was closed while copying a table.'));
      }
      // A copy in flight cannot be committed; ending the connection (pg destroys the socket when a
      // query is active) ends it on the server too.
      if (copy === null) {
        try {
          await this.client.query('COMMIT');
        } catch {
          // Read-only transaction: nothing to lose.
        }
      }
      await endQuietly(this.client);
    })();
    return this.closing;
  }
}
