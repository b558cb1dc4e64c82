/**
 * Loads table data into PostgreSQL: TRUNCATE and COPY FROM STDIN in one transaction, so a
 * load is all or nothing and loading again after a crash is exact. Streams only: memory is
 * bounded by the stream buffers whatever the table size.
 */
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { TableSchema } from '../../core/schema.js';
import { copiedColumns } from '../../core/type-mapping.js';
import type { BinaryForm, CopyFormat, LoadOptions, LoadResult, TableWriter } from '../engine.js';
import { readBinaryForm, sameBinaryForm } from './postgres-binary-copy.js';
import { checkPostgresFence } from './postgres-job-fence.js';
import { connectPostgres, endQuietly, errorContext, pgBool, quoteIdent, quoteQualified } from './postgres-connection.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';
import { classifyPostgresError } from './postgres-error-classifier.js';

/** The COPY statement that loads the columns the source sends (copiedColumns: generated columns left out from a PostgreSQL source). */
export function copyInSql(table: TableSchema, sourceEngine: EngineKind = 'postgresql', format: CopyFormat = 'text'): string {
  const columns = copiedColumns(table, sourceEngine, 'postgresql').map((c) => quoteIdent(c.name));
  return `COPY ${quoteQualified(table)}${columns.length === 0 ? '' : ` (${columns.join(', ')})`} FROM STDIN${format === 'binary' ? ' (FORMAT binary)' : ''}`;
}

/** Counts the bytes that pass through. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    callback(null, chunk);
  }
}

export async function openPostgresTableWriter(params: ConnectionParams): Promise<PostgresTableWriter> {
  const context = errorContext(params, { operation: 'write' });
  return new PostgresTableWriter(await connectPostgres(params, context), context);
}

export class PostgresTableWriter implements TableWriter {
  /** Set when the connection can no longer be trusted (a rollback failed): later loads refuse. */
  private broken: FerryError | null = null;
  private busy = false;

  constructor(
    private readonly client: pg.Client,
    private readonly context: PostgresErrorContext,
  ) {}

  replaceTableData(table: TableSchema, rows: Readable, signal: AbortSignal, options: LoadOptions = {}): Promise<LoadResult> {
    return this.load(table, rows, signal, options, true);
  }

  /** One COPY in a transaction of its own, without emptying the table (one range of a split table). */
  appendTableData(table: TableSchema, rows: Readable, signal: AbortSignal, options: LoadOptions = {}): Promise<LoadResult> {
    return this.load(table, rows, signal, options, false);
  }

  async acceptsBinary(table: TableSchema, form: BinaryForm): Promise<boolean> {
    if (form.engine !== 'postgresql') return false;
    try {
      const own = await readBinaryForm(this.client, table, copiedColumns(table, 'postgresql', 'postgresql'));
      return own !== null && sameBinaryForm(form, own);
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  private async load(table: TableSchema, rows: Readable, signal: AbortSignal, options: LoadOptions, replace: boolean): Promise<LoadResult> {
    if (this.broken !== null) {
      rows.destroy();
      throw this.broken;
    }
    if (this.busy) {
      rows.destroy();
      throw new FerryError('FAILED_PRECONDITION', 'This table writer is already loading a table; load one table at a time per writer.');
    }
    this.busy = true;
    try {
      signal.throwIfAborted();
      await this.client.query('BEGIN');
      try {
        // An empty table needs no TRUNCATE, which foreign keys pointing at it would refuse.
        // ONLY: an inheritance parent's children are tables of their own, loaded on their own.
        const current = replace ? await this.client.query(`SELECT EXISTS (SELECT 1 FROM ONLY ${quoteQualified(table)}) AS has_rows`) : null;
        if (current !== null && pgBool((current.rows[0] as { has_rows: unknown }).has_rows)) {
          await this.client.query(`TRUNCATE ONLY ${quoteQualified(table)}`);
        }
        const counter = new ByteCounter();
        const copy = this.client.query(copyFrom(copyInSql(table, options.sourceEngine, options.format ?? 'text')));
        // The signal makes pipeline destroy every stream: the COPY sends CopyFail and the
        // server aborts the transaction, which the rollback below ends.
        await pipeline(rows, counter, copy, { signal });
        if (options.fence !== undefined) await checkPostgresFence(this.client, options.fence, `Loading ${table.schema}.${table.name}`);
        await this.client.query('COMMIT');
        return { rows: copy.rowCount, bytes: counter.bytes };
      } catch (error) {
        try {
          await this.client.query('ROLLBACK');
        } catch (rollbackError) {
          this.broken = classifyPostgresError(rollbackError, this.context);
        }
        throw error;
      }
    } catch (error) {
      rows.destroy();
      if (signal.aborted) {
        // The caller's reason says why it stopped the load; keep it when it is already classified.
        if (signal.reason instanceof FerryError) throw signal.reason;
        throw new FerryError('FAILED_PRECONDITION', `Loading ${table.schema}.${table.name} was cancelled; nothing of this load was kept.`, {
          cause: error,
          details: { table: `${table.schema}.${table.name}`, aborted: true },
        });
      }
      throw classifyPostgresError(error, this.context);
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    await endQuietly(this.client);
  }
}
