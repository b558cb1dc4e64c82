/**
 * Incremental load: streams the source's changes from the job's replication slot and applies
 * them on the destination in source commit order, many source transactions per destination
 * transaction.
 *
 * Exactly once: each destination batch records the source position it reaches in the same
 * transaction (the applier's position table), and the source is acknowledged only after that
 * commit. A restart reads the position from the destination and streams from there, so a
 * crash at any point neither loses nor repeats a transaction.
 *
 * Tables copied by a later snapshot than the slot's start (a full dump resumed after a
 * crash) carry their own snapshot position: changes that committed before it are already in
 * the copy and are skipped for that table.
 */
import { FerryError } from '../core/errors.js';
import type { ConnectionParams } from '../core/connection-profile.js';
import type { MigrationJob } from '../core/migration-job.js';
import { qualifiedName, type DatabaseSchema, type QualifiedName } from '../core/schema.js';
import { copiedColumns } from '../core/type-mapping.js';
import type { ChangeApplier, ChangeReader, Engine, ReplicationSpec, RowChange } from '../engines/engine.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { ReplicationStats } from './replication-stats.js';
import { mapDatabaseSchema } from '../core/schema-mapping.js';
import { mapRowChange, recordedSchemaMapping } from './destination-names.js';

export const REPLICATION_CHECKPOINT = 'replication';
export const SOURCE_SCHEMA_CHECKPOINT = 'sourceSchema';
export const tablePositionCheckpoint = (table: string): string => `tablePosition:${table}`;

/** What a continuous job keeps about its replication objects. */
export interface ReplicationCheckpoint {
  spec: ReplicationSpec;
  /** Where the slot started: the position every table's changes are applied from, unless the table has its own. */
  startPosition: string;
}

export interface IncrementalLoadDeps {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  source: Engine;
  destination: Engine;
  sourceParams: ConnectionParams;
  destinationParams: ConnectionParams;
  stats: ReplicationStats;
  /** Called once per attempt, after the first batch (or heartbeat) is durably applied. */
  onHealthy(): Promise<void>;
}

/** Batching: a destination commit at a source transaction boundary once either limit is reached. */
const MAX_BATCH_CHANGES = 5_000;
const MAX_BATCH_MS = 500;
/** Changes buffered before they are sent to the open destination transaction. */
const APPLY_CHUNK = 2_000;
/** How often an idle stream writes its heartbeat position on the destination. */
const HEARTBEAT_WRITE_MS = 10_000;
const LAG_POLL_MS = 2_000;

/**
 * Applies changes until the signal aborts (rejects with its reason) or, with `untilPosition`,
 * until everything up to that source position is applied (resolves).
 */
export async function runIncrementalLoad(
  job: MigrationJob,
  deps: IncrementalLoadDeps,
  signal: AbortSignal,
  untilPosition: string | null = null,
): Promise<void> {
  const { store, source, destination, stats } = deps;
  const log = deps.logger.child({ jobId: job.id, phase: 'INCREMENTAL_LOAD' });
  const replication = await store.getCheckpoint<ReplicationCheckpoint>(job.id, REPLICATION_CHECKPOINT);
  const schema = await store.getCheckpoint<DatabaseSchema>(job.id, SOURCE_SCHEMA_CHECKPOINT);
  if (replication === null || schema === null) {
    throw new FerryError('FAILED_PRECONDITION', 'This job has no replication checkpoint (its full dump did not record one); Restart the job to take a new full dump.');
  }
  const compare = (a: string, b: string) => source.comparePositions(a, b);
  const tablePositions = new Map<string, string>();
  for (const table of schema.tables) {
    const name = qualifiedName(table);
    tablePositions.set(name, (await store.getCheckpoint<string>(job.id, tablePositionCheckpoint(name))) ?? replication.startPosition);
  }
  const knownColumns = new Map(schema.tables.map((t) => [qualifiedName(t), copiedColumns(t, source.kind, destination.kind).map((c) => c.name)]));

  // Changes arrive with the source's names; the applier knows the tables by their destination names.
  const mapping = await recordedSchemaMapping(store, job.id);
  const applier: ChangeApplier = await destination.openChangeApplier(deps.destinationParams, job.id, mapDatabaseSchema(schema, mapping).tables);
  let reader: ChangeReader | null = null;
  let lagTimer: NodeJS.Timeout | null = null;
  const onAbort = () => {
    void reader?.close().catch(() => undefined);
  };
  try {
    let applied = (await applier.readPosition()) ?? replication.startPosition;
    stats.appliedPosition = applied;
    if (untilPosition !== null && compare(applied, untilPosition) >= 0) return;
    signal.throwIfAborted();
    reader = await source.openChangeReader(deps.sourceParams, replication.spec, applied, { destinationEngine: destination.kind, zeroDatePolicy: job.zeroDatePolicy ?? 'null', enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label', nulCharacterPolicy: job.nulCharacterPolicy ?? 'refuse', tables: schema.tables });
    signal.addEventListener('abort', onAbort, { once: true });
    lagTimer = setInterval(() => {
      source.currentPosition(deps.sourceParams).then((current) => {
        stats.sourcePosition = current;
        const distance = stats.appliedPosition === null ? null : source.positionDistance(stats.appliedPosition, current);
        stats.lagBytes = distance === null ? null : Math.max(0, distance);
      }, (error: unknown) => log.debug({ err: String(error) }, 'reading the source position failed'));
    }, LAG_POLL_MS);
    lagTimer.unref();

    let healthy = false;
    let inTransaction = false;
    let commitPosition = applied;
    let pending: RowChange[] = [];
    let batchTransactions = 0;
    let batchChanges = 0;
    let batchStarted = 0;
    let lastCommit: string | null = null;
    let lastCommitTime: string | null = null;
    let lastHeartbeatWrite = 0;
    let perTable = new Map<string, number>();
    const warned = new Set<string>();

    const markHealthy = async () => {
      if (healthy) return;
      healthy = true;
      await deps.onHealthy();
    };
    const flush = async () => {
      if (pending.length > 0) await applier.apply(pending);
      pending = [];
      const position = lastCommit as string;
      await applier.commit(position);
      // Only now is the batch durable on the destination: the source may free its WAL.
      (reader as ChangeReader).acknowledge(position);
      applied = position;
      stats.recordBatch(position, batchChanges, batchTransactions, lastCommitTime, perTable);
      for (const warning of (reader as ChangeReader).takeWarnings?.() ?? []) {
        // Once per column and run: a stream of such values must not flood the history.
        const subject = warning.replace(/\d+/g, 'n');
        if (warned.has(subject)) continue;
        warned.add(subject);
        await store.appendJobEvent({ jobId: job.id, time: deps.clock.now(), kind: 'info', actor: 'system', message: `Warning: ${warning} (later ones in this column are not repeated here)`, details: { code: 'VALUE_CHANGED' } });
      }
      batchTransactions = 0;
      batchChanges = 0;
      perTable = new Map();
      lastCommit = null;
      await markHealthy();
    };
    const advanceIdle = async (position: string) => {
      await applier.commit(position);
      (reader as ChangeReader).acknowledge(position);
      applied = position;
      stats.appliedPosition = position;
      lastHeartbeatWrite = Date.now();
      await markHealthy();
    };
    const wanted = (table: QualifiedName) => compare(commitPosition, tablePositions.get(qualifiedName(table)) ?? replication.startPosition) >= 0;

    for await (const chunk of reader.events()) {
      signal.throwIfAborted();
      for (const event of chunk) {
        switch (event.kind) {
          case 'begin':
            inTransaction = true;
            commitPosition = event.commitPosition;
            if (batchTransactions === 0 && pending.length === 0) batchStarted = Date.now();
            stats.oldestPendingCommitMs ??= Date.parse(event.commitTime);
            break;
          case 'change': {
            const change = filterChange(event.change, wanted);
            if (change === null) break;
            pending.push(mapRowChange(change, mapping));
            batchChanges++;
            const name = change.op === 'truncate' ? 'truncate' : qualifiedName(change.table);
            perTable.set(name, (perTable.get(name) ?? 0) + 1);
            if (pending.length >= APPLY_CHUNK) {
              await applier.apply(pending);
              pending = [];
            }
            break;
          }
          case 'commit':
            inTransaction = false;
            batchTransactions++;
            lastCommit = event.position;
            lastCommitTime = event.commitTime;
            if (batchChanges >= MAX_BATCH_CHANGES || Date.now() - batchStarted >= MAX_BATCH_MS) await flush();
            break;
          case 'heartbeat':
            if (inTransaction) break;
            if (lastCommit !== null) await flush();
            if (compare(event.position, applied) <= 0) break;
            if (untilPosition !== null || Date.now() - lastHeartbeatWrite >= HEARTBEAT_WRITE_MS) {
              await advanceIdle(event.position);
            } else {
              // Every transaction before the heartbeat is committed on the destination, so the
              // source may free WAL up to it (and a shutting-down source stops waiting for us).
              // A restart from the older position stored on the destination finds nothing in between.
              (reader as ChangeReader).acknowledge(event.position);
            }
            break;
          case 'marker':
            if (inTransaction) break;
            if (lastCommit !== null) await flush();
            if (untilPosition !== null && compare(event.position, untilPosition) >= 0) {
              await advanceIdle(event.position);
            }
            break;
          case 'relation':
            await reportSchemaChange(deps, job.id, event.table, event.columns.map((c) => c.name), knownColumns, log);
            break;
        }
      }
      // Do not sit on committed work when the stream pauses.
      if (!inTransaction && lastCommit !== null) await flush();
      if (untilPosition !== null && compare(applied, untilPosition) >= 0) return;
    }
    signal.throwIfAborted();
    throw new FerryError('CONNECTION_LOST', 'The source ended the change stream; Ferry reconnects and continues from the last applied position.', { retryable: true });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (lagTimer !== null) clearInterval(lagTimer);
    stats.oldestPendingCommitMs = null;
    await reader?.close().catch(() => undefined);
    await applier.rollback().catch(() => undefined);
    await applier.close().catch(() => undefined);
  }
}

/** The change without the tables whose copy already contains it, or null when nothing is left. */
function filterChange(change: RowChange, wanted: (table: QualifiedName) => boolean): RowChange | null {
  if (change.op === 'truncate') {
    const tables = change.tables.filter(wanted);
    return tables.length === 0 ? null : { ...change, tables };
  }
  return wanted(change.table) ? change : null;
}

/**
 * DDL on the source shows as a table described with other columns. A column the destination
 * lacks makes the applier refuse (Running with errors, saying what to do); anything else is
 * recorded in the history so that it is never silent.
 */
async function reportSchemaChange(
  deps: IncrementalLoadDeps,
  jobId: string,
  table: QualifiedName,
  columns: string[],
  known: Map<string, string[]>,
  log: Logger,
): Promise<void> {
  const name = qualifiedName(table);
  const before = known.get(name);
  if (before === undefined || (before.length === columns.length && before.every((c, i) => c === columns[i]))) return;
  known.set(name, columns);
  const added = columns.filter((c) => !before.includes(c));
  const dropped = before.filter((c) => !columns.includes(c));
  const message = `DDL detected on source table ${name}: ${[
    added.length > 0 ? `columns added (${added.join(', ')})` : '',
    dropped.length > 0 ? `columns dropped (${dropped.join(', ')})` : '',
    added.length === 0 && dropped.length === 0 ? 'columns reordered or retyped' : '',
  ].filter(Boolean).join(', ')}. Apply the same change on the destination table; until then rows that carry new columns cannot be applied and the job shows Running with errors.`;
  log.warn({ table: name, added, dropped }, 'source schema changed');
  await deps.store.appendJobEvent({ jobId, time: deps.clock.now(), kind: 'info', actor: 'system', message, details: { code: 'SCHEMA_CHANGED', table: name, added, dropped } });
}
