/**
 * Loads table data into PostgreSQL: TRUNCATE and COPY FROM STDIN in one transaction, so a
 * load is all or nothing and loading again after a crash is exact. Streams only: memory is
 * bounded by the stream buffers whatever the table size.
 */
import { Transform } from 'node:stream';
import type { Readable, TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { TableSchema } from '../../core/schema.js';
import { copiedColumns } from '../../core/type-mapping.js';
import type { BinaryForm, CopyFormat, LoadOptions, LoadResult, TableWriter } from '../engine.js';
import { readBinaryForm, sameBinaryForm } from './postgres-binary-copy.js';
import { checkPostgresFence, tagPostgresFencedSession } from './postgres-job-fence.js';
import { connectPostgres, endQuietly, errorContext, pgBool, quoteIdent, quoteQualified } from './postgres-connection.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import { POSITION_SCHEMA } from './postgres-change-applier.js';

/**
 * The work items' markers (prepareWorkItems): one row per item of a job's current attempt,
 * done once a load committed it. A load marks its row in its own transaction, so the row lock
 * orders two copies of one item (the second finds it done) and the attempt's replacement
 * (which deletes the rows) after every load that already marked one.
 */
const WORK_ITEMS = `${quoteIdent(POSITION_SCHEMA)}.work_items`;

/** The COPY statement that loads the columns the source sends (copiedColumns: generated columns left out from a PostgreSQL source). */
export function copyInSql(table: TableSchema, sourceEngine: EngineKind = 'postgresql', format: CopyFormat = 'text'): string {
  const columns = copiedColumns(table, sourceEngine, 'postgresql').map((c) => quoteIdent(c.name));
  return `COPY ${quoteQualified(table)}${columns.length === 0 ? '' : ` (${columns.join(', ')})`} FROM STDIN${format === 'binary' ? ' (FORMAT binary)' : ''}`;
}

/**
 * COPY FROM STDIN whose every CopyData message leaves in one socket write. pg-copy-streams
 * writes a message's 5-byte header and its chunk in two writes, and pg's sockets have
 * TCP_NODELAY: each header went out as a segment of its own (the binary COPY's first chunk,
 * which carries its header, included). Corked, both leave in one writev.
 */
function copyFromStdin(sql: string): ReturnType<typeof copyFrom> {
  const copy = copyFrom(sql) as ReturnType<typeof copyFrom> & { flushChunk(chunk: Buffer): boolean; connection: { stream: Writable } | null };
  const flushChunk = copy.flushChunk.bind(copy);
  copy.flushChunk = (chunk) => {
    const socket = copy.connection?.stream;
    if (socket === undefined) return flushChunk(chunk);
    socket.cork();
    try {
      return flushChunk(chunk);
    } finally {
      socket.uncork();
    }
  };
  return copy;
}

/** Counts the bytes that pass through. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    callback(null, chunk);
  }
}

/** A work item's load that must not commit: another copy committed the item, or a newer attempt replaced it. */
function supersededError(table: TableSchema, item: { jobKey: string; itemId: string }, committed: boolean): FerryError {
  return new FerryError(
    'FAILED_PRECONDITION',
    committed
      ? `The copy of ${table.schema}.${table.name} (work item ${item.itemId}) was rolled back: another copy of this item committed first. Nothing of this copy was kept.`
      : `The copy of ${table.schema}.${table.name} (work item ${item.itemId}) was rolled back: a newer attempt of the dump replaced its items. Nothing of this copy was kept.`,
    { details: { superseded: true, alreadyCommitted: committed, jobKey: item.jobKey, itemId: item.itemId } },
  );
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
      if (options.fence !== undefined) await tagPostgresFencedSession(this.client, options.fence);
      await this.client.query('BEGIN');
      try {
        // A copy of an item already committed stops before reading a row (a table with a key
        // would refuse its rows anyway); the check that counts is the marking before COMMIT.
        if (options.workItem !== undefined) await this.checkWorkItem(table, options.workItem);
        // An empty table needs no TRUNCATE, which foreign keys pointing at it would refuse.
        // ONLY: an inheritance parent's children are tables of their own, loaded on their own.
        const current = replace ? await this.client.query(`SELECT EXISTS (SELECT 1 FROM ONLY ${quoteQualified(table)}) AS has_rows`) : null;
        if (current !== null && pgBool((current.rows[0] as { has_rows: unknown }).has_rows)) {
          await this.client.query(`TRUNCATE ONLY ${quoteQualified(table)}`);
        }
        const counter = new ByteCounter();
        const copy = this.client.query(copyFromStdin(copyInSql(table, options.sourceEngine, options.format ?? 'text')));
        // The signal makes pipeline destroy every stream: the COPY sends CopyFail and the
        // server aborts the transaction, which the rollback below ends.
        await pipeline(rows, counter, copy, { signal });
        if (options.fence !== undefined) await checkPostgresFence(this.client, options.fence, `Loading ${table.schema}.${table.name}`);
        if (options.workItem !== undefined) await this.markWorkItem(table, options.workItem);
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

  private async checkWorkItem(table: TableSchema, item: { jobKey: string; itemId: string }): Promise<void> {
    const marker = await this.client.query(`SELECT done FROM ${WORK_ITEMS} WHERE job_id = $1 AND item_id = $2`, [item.jobKey, item.itemId]);
    if (marker.rows.length === 1 && !pgBool((marker.rows[0] as { done: unknown }).done)) return;
    throw supersededError(table, item, marker.rows.length === 1);
  }

  private async markWorkItem(table: TableSchema, item: { jobKey: string; itemId: string }): Promise<void> {
    const marked = await this.client.query(`UPDATE ${WORK_ITEMS} SET done = true WHERE job_id = $1 AND item_id = $2 AND NOT done`, [item.jobKey, item.itemId]);
    if (marked.rowCount === 1) return;
    const marker = await this.client.query(`SELECT done FROM ${WORK_ITEMS} WHERE job_id = $1 AND item_id = $2`, [item.jobKey, item.itemId]);
    throw supersededError(table, item, marker.rows.length === 1 && pgBool((marker.rows[0] as { done: unknown }).done));
  }

  async prepareWorkItems(jobKey: string, itemIds: string[]): Promise<void> {
    await this.inTransaction(async () => {
      await this.client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(POSITION_SCHEMA)}`);
      await this.client.query(`CREATE TABLE IF NOT EXISTS ${WORK_ITEMS} (job_id text NOT NULL, item_id text NOT NULL, done boolean NOT NULL DEFAULT false, PRIMARY KEY (job_id, item_id))`);
      // The DELETE waits for the row locks of loads that marked an earlier item and have not committed yet.
      await this.client.query(`DELETE FROM ${WORK_ITEMS} WHERE job_id = $1`, [jobKey]);
      await this.client.query(`INSERT INTO ${WORK_ITEMS} (job_id, item_id) SELECT $1, unnest($2::text[])`, [jobKey, itemIds]);
    });
  }

  async forgetWorkItems(jobKey: string): Promise<void> {
    await this.inTransaction(async () => {
      const present = await this.client.query(`SELECT to_regclass('${POSITION_SCHEMA}.work_items') IS NOT NULL AS present`);
      if (!pgBool((present.rows[0] as { present: unknown }).present)) return;
      await this.client.query(`DELETE FROM ${WORK_ITEMS} WHERE job_id = $1`, [jobKey]);
      const left = await this.client.query(`SELECT EXISTS (SELECT 1 FROM ${WORK_ITEMS}) AS any`);
      if (pgBool((left.rows[0] as { any: unknown }).any)) return;
      await this.client.query(`DROP TABLE ${WORK_ITEMS}`);
      // The destination stands alone once nothing else of Ferry's is kept there.
      const others = await this.client.query(`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = '${POSITION_SCHEMA}'::regnamespace) AS any`);
      if (!pgBool((others.rows[0] as { any: unknown }).any)) await this.client.query(`DROP SCHEMA ${quoteIdent(POSITION_SCHEMA)}`);
    });
  }

  private async inTransaction(work: () => Promise<void>): Promise<void> {
    if (this.broken !== null) throw this.broken;
    if (this.busy) throw new FerryError('FAILED_PRECONDITION', 'This table writer is loading a table; write work item markers between loads.');
    this.busy = true;
    try {
      await this.client.query('BEGIN');
      await work();
      await this.client.query('COMMIT');
    } catch (error) {
      await this.client.query('ROLLBACK').catch((rollbackError: unknown) => {
        this.broken = classifyPostgresError(rollbackError, this.context);
      });
      throw error instanceof FerryError ? error : classifyPostgresError(error, this.context);
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    await endQuietly(this.client);
  }
}
