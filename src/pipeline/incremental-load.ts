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
 *
 * A table whose changes the destination refuses is parked (parked-changes.ts): the batch is
 * rolled back, the table recorded as parked at the last committed position, and the stream
 * opened again from there (at most one batch is read twice); its changes then wait on the
 * destination while the other tables go on.
 */
import { FerryError } from '../core/errors.js';
import type { ConnectionParams } from '../core/connection-profile.js';
import type { MigrationJob } from '../core/migration-job.js';
import { qualifiedName, sharedQualifiedName, type DatabaseSchema, type QualifiedName } from '../core/schema.js';
import { copiedColumns } from '../core/type-mapping.js';
import type { ChangeApplier, ChangeReader, ChangeStreamOrigin, DestinationFence, Engine, ReplicationSpec, RowChange } from '../engines/engine.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { ReplicationCounters, ReplicationStats } from './replication-stats.js';
import { mapDatabaseSchema, mapQualifiedName } from '../core/schema-mapping.js';
import { mapRowChange, recordedSchemaMapping } from './destination-names.js';
import { ParkedTables, TableRefused } from './parked-changes.js';
import { sleep, type RetryPolicy } from './retry-policy.js';
import { failpoint } from './failpoints.js';
import type { JobFence } from './job-fence.js';
import { leaseLostError } from './fenced-store.js';

export const REPLICATION_CHECKPOINT = 'replication';
export const SOURCE_SCHEMA_CHECKPOINT = 'sourceSchema';
export const tablePositionCheckpoint = (table: string): string => `tablePosition:${table}`;
/** True once the applied position passed every table's copy position: they are not read again. */
export const TABLE_POSITIONS_PASSED_CHECKPOINT = 'tablePositionsPassed';
/** The identity of the source server the change stream last read (ChangeStreamOrigin.server). */
export const SOURCE_SERVER_CHECKPOINT = 'sourceServer';
/** The applied-change counters (ReplicationCounters), so that a restarted server goes on counting. */
export const REPLICATION_COUNTERS_CHECKPOINT = 'replicationCounters';
/** How often the counters are written to the store at most. */
const COUNTERS_SAVE_MS = 5_000;

/** Writes the job's counters to the store, at most every COUNTERS_SAVE_MS. */
async function saveCounters(store: MetadataStore, jobId: string, stats: ReplicationStats, force = false): Promise<void> {
  const now = Date.now();
  if (!force && now - stats.countersSavedAt < COUNTERS_SAVE_MS) return;
  stats.countersSavedAt = now;
  await store.putCheckpoint(jobId, REPLICATION_COUNTERS_CHECKPOINT, stats.counters());
}

/** What a continuous job keeps about its replication objects. */
export interface ReplicationCheckpoint {
  spec: ReplicationSpec;
  /** Where the slot started: the position every table's changes are applied from, unless the table has its own. */
  startPosition: string;
  /**
   * The key of this job's bookkeeping on the destination (`_ferry` position and parked
   * changes): unique to this job and this start (the slot's name), so that a job of the same
   * id elsewhere, or an earlier run whose bookkeeping outlived it, is never read. Absent in
   * checkpoints written before it existed: those jobs keep their id.
   */
  destinationKey?: string;
}

/** The key of the job's position and parked changes on the destination. */
export function destinationKeyOf(job: Pick<MigrationJob, 'id'>, replication: ReplicationCheckpoint | null): string {
  return replication?.destinationKey ?? job.id;
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
  /** When parked tables are retried (parked-changes.ts). */
  retryPolicy: RetryPolicy;
  /**
   * Called once per attempt after the first batch (or heartbeat) is durably applied, and again
   * whenever the parked set changes: `parked` is the error that lists the parked tables, or
   * null when every table replicates.
   */
  onHealthy(parked: FerryError | null): Promise<void>;
  /**
   * Under a lease: every destination commit checks this fence (LEASE_LOST once another node
   * raised it), the stream opens only while `lease.valid()`, and takes the slot over from a
   * stale reader (Engine.openChangeReader's takeOverSlot).
   */
  fence?: { destination: DestinationFence; lease: JobFence };
}

/**
 * Batching: a destination commit at a source transaction boundary once either limit is reached,
 * and at the last commit of every chunk the reader hands over (what queued while the previous
 * batch applied), so that a steady stream is committed as it comes, in batches that grow with the load.
 */
const MAX_BATCH_CHANGES = 5_000;
const MAX_BATCH_MS = 500;
/** Changes buffered before they are sent to the open destination transaction. */
const APPLY_CHUNK = 2_000;
/** How often an idle stream writes its heartbeat position on the destination. */
const HEARTBEAT_WRITE_MS = 10_000;
const LAG_POLL_MS = 2_000;
/** Attempts to reopen the stream after a table was parked (the source may still hold the previous reader's slot). */
const REOPEN_ATTEMPTS = 20;
const REOPEN_WAIT_MS = 250;

const TICK = Symbol('tick');

/**
 * The stream cannot go on being applied as the source streams it (more streamed transactions
 * open at once than MAX_STREAMED, a subtransaction's abort): what was not committed is rolled
 * back and the stream is read again from the applied position without streaming.
 */
class StreamingFallback extends Error {
  constructor(
    message: string,
    /** The transaction the stream met (besides those open then): streaming resumes once they all ended and their end is applied. */
    readonly xid: number,
  ) {
    super(message);
  }
}

/** At an idle point after a fallback, once the transactions it met ended and their end is applied: the stream is opened again with streaming. */
class StreamingResumes extends Error {}

/**
 * After the n-th fallback of a run, streaming is not asked for again before FALLBACK_PAUSE_MS x 2^(n-1)
 * (at most FALLBACK_PAUSE_MAX_MS): a source that keeps causing fallbacks is not re-read over and over.
 */
const FALLBACK_PAUSE_MS = 5_000;
const FALLBACK_PAUSE_MAX_MS = 600_000;
/** How often, after a fallback, the source is asked whether the transactions it met ended. */
const FALLBACK_CHECK_MS = 2_000;

/** A destination session the pipeline applies on, with the changes waiting for it and the chunk it is running. */
interface ApplyLane {
  applier: ChangeApplier;
  pending: RowChange[];
  /**
   * A chunk sent ahead mid-transaction (see applyPending): the destination runs it while the
   * loop reads and maps the next chunk. Every later use of the applier awaits it first.
   */
  inFlight: Promise<void> | null;
}

/**
 * Source transactions streamed before their commit that are applied at once, each on a
 * destination session of its own (besides the main one). Each session holds up to two apply
 * chunks (docs/ARCHITECTURE.md, the memory bound): two keep ferry serve under 200 MiB.
 */
const MAX_STREAMED = 2;

/** A source transaction streamed before its commit (protocol 2), applied on a session of its own. */
interface StreamedTransaction {
  lane: ApplyLane;
  changes: number;
  perTable: Map<string, number>;
}

/**
 * Applies changes until the signal aborts (rejects with its reason) or, with `untilPosition`,
 * until everything up to that source position is applied (resolves). With `untilPosition`,
 * parked tables hold the load until they rejoin unless `leaveParked` (Promote with force).
 */
export async function runIncrementalLoad(
  job: MigrationJob,
  deps: IncrementalLoadDeps,
  signal: AbortSignal,
  untilPosition: string | null = null,
  leaveParked = false,
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
  const positionsPassed = (await store.getCheckpoint<boolean>(job.id, TABLE_POSITIONS_PASSED_CHECKPOINT)) === true;
  for (const table of positionsPassed ? [] : schema.tables) {
    const name = qualifiedName(table);
    tablePositions.set(name, (await store.getCheckpoint<string>(job.id, tablePositionCheckpoint(name))) ?? replication.startPosition);
  }
  const knownColumns = new Map(schema.tables.map((t) => [qualifiedName(t), copiedColumns(t, source.kind, destination.kind).map((c) => c.name)]));

  // Changes arrive with the source's names; the applier knows the tables by their destination names.
  const mapping = await recordedSchemaMapping(store, job.id);
  const fence = deps.fence;
  const openApplier = () => destination.openChangeApplier(deps.destinationParams, destinationKeyOf(job, replication), mapDatabaseSchema(schema, mapping).tables, fence === undefined ? {} : { fence: fence.destination });
  const applier: ChangeApplier = await openApplier();
  /**
   * Destination sessions for transactions the source streams before their commit (opened as
   * needed, at most MAX_STREAMED, kept for the run; the ones no open streamed transaction uses
   * are free). A streamed transaction's changes are applied on its session as they arrive, in a
   * destination transaction that commits with the transaction's position once the source
   * commits it, after the main session committed every transaction that committed before it.
   */
  const streamAppliers: ChangeApplier[] = [];
  /**
   * Streaming is asked for with a PostgreSQL destination only, and a streamed transaction is
   * applied as it streams only while no table is parked and no table filters by a copy position
   * after it (otherwise the stream is read again without streaming). The sessions run at once:
   * on the source, a transaction that committed while a streamed one was open cannot have
   * touched its rows (they were locked), so no session waits for another on the destination
   * (docs/ARCHITECTURE.md, "Streamed transactions"). MySQL's gap locks break that argument; so
   * do the parked-change bookkeeping's shared rows.
   */
  let streamingAllowed = destination.kind === 'postgresql' && process.env.FERRY_STREAM_IN_PROGRESS !== '0';
  /**
   * After a fallback: the source transactions that were streaming, when the fallback happened,
   * when they were last asked about, and the source position once they all ended. Once the
   * applied position reaches it (every change they made is behind), streaming is asked for again
   * at the next idle point: the slot then never sends them again, so they cannot cause the same
   * fallback twice.
   */
  let fallback: { xids: number[]; at: number; checkedAt: number; endedAt: string | null } | null = null;
  let fallbackCount = 0;
  let healthy = false;
  const parked = new ParkedTables(job, schema.tables.map((t) => ({
    destination: mapQualifiedName(mapping, { schema: t.schema, name: t.name }),
    source: qualifiedName(t),
    keyColumns: t.primaryKey?.columns ?? [],
  })), {
    store, clock: deps.clock, logger: log, retryPolicy: deps.retryPolicy,
    onChange: async (error) => {
      if (healthy) await deps.onHealthy(error);
    },
  });
  let reader: ChangeReader | null = null;
  let lagTimer: NodeJS.Timeout | null = null;
  let leaseLost = false;
  const onAbort = () => {
    void reader?.close().catch(() => undefined);
  };
  try {
    let applied = (await applier.readPosition()) ?? replication.startPosition;
    stats.appliedPosition = applied;
    // A server started again (or a new runner after Resume) goes on from the counts it had.
    if (stats.changesApplied === 0) {
      const saved = await store.getCheckpoint<ReplicationCounters>(job.id, REPLICATION_COUNTERS_CHECKPOINT);
      if (saved !== null) stats.restore(saved);
    }
    await parked.load(applier);
    // Parked tables first: a fixed destination drains them before the limit is judged.
    await parked.drainDue(applier, applied);
    await parked.checkLimit();
    const caughtUp = () => untilPosition !== null && compare(applied, untilPosition) >= 0 && (leaveParked || parked.size === 0);
    if (caughtUp()) return;
    // A table copied at or before the applied position wants every change from here on: only
    // later copies filter. Once none is left this is recorded, so that a stream from another
    // server (a failover) never compares its positions with snapshot positions of the old one.
    if (!positionsPassed) {
      for (const [name, position] of tablePositions) {
        if (compare(position, applied) <= 0) tablePositions.delete(name);
      }
      if (tablePositions.size === 0) await store.putCheckpoint(job.id, TABLE_POSITIONS_PASSED_CHECKPOINT, true);
    }
    signal.throwIfAborted();
    signal.addEventListener('abort', onAbort, { once: true });
    lagTimer = setInterval(() => {
      source.currentPosition(deps.sourceParams).then((current) => {
        const distance = stats.appliedPosition === null ? null : source.positionDistance(stats.appliedPosition, current);
        // A batch committed after the source was asked is not ahead of the source: shown as caught up.
        stats.sourcePosition = distance !== null && distance < 0 ? stats.appliedPosition : current;
        stats.lagBytes = distance === null ? null : Math.max(0, distance);
      }, (error: unknown) => log.debug({ err: String(error) }, 'reading the source position failed'));
    }, LAG_POLL_MS);
    lagTimer.unref();

    const markHealthy = async () => {
      if (healthy) return;
      healthy = true;
      await deps.onHealthy(parked.jobError());
    };
    const wanted = (table: QualifiedName, at: string) => {
      if (tablePositions.size === 0) return true;
      const copiedAt = tablePositions.get(sharedQualifiedName(table));
      return copiedAt === undefined || compare(at, copiedAt) >= 0;
    };
    const openReader = () => {
      // Taking the slot over is for the lease holder only: a node whose lease lapsed must not end the new owner's stream.
      if (fence !== undefined && !fence.lease.valid()) throw leaseLostError(job.id, fence.lease);
      return source.openChangeReader(deps.sourceParams, replication.spec, applied, {
        destinationEngine: destination.kind, zeroDatePolicy: job.zeroDatePolicy ?? 'null', enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label', nulCharacterPolicy: job.nulCharacterPolicy ?? 'refuse',
        tables: schema.tables, ...(fence === undefined ? {} : { takeOverSlot: true }),
        streamInProgress: streamingAllowed,
      });
    };

    // One pass per stream opening: a table refused mid-batch is parked and the stream replays from the last commit.
    for (let opening = 0; ; opening++) {
      reader = opening === 0 ? await openReader() : await reopen(openReader, signal);
      if (reader.origin !== undefined) await recordSourceServer(deps, job.id, reader.origin, log);
      const current: ChangeReader = reader;
      let inTransaction = false;
      let commitPosition = applied;
      const main: ApplyLane = { applier, pending: [], inFlight: null };
      const streams = new Map<number, StreamedTransaction>();
      let batchTransactions = 0;
      let batchChanges = 0;
      let batchStarted = 0;
      let lastCommit: string | null = null;
      let lastCommitTime: string | null = null;
      let lastHeartbeatWrite = 0;
      let perTable = new Map<string, number>();
      const warned = new Set<string>();

      const settle = async (lane: ApplyLane = main) => {
        const running = lane.inFlight;
        lane.inFlight = null;
        if (running !== null) await running;
      };
      /**
       * Sends the lane's pending changes into its open destination transaction. `ahead`
       * (mid-transaction, no table parked): returns once they are sent, so that the loop prepares
       * the next chunk while the destination applies this one; one chunk at most is in flight
       * per session, statements keep their order on it, and its failure surfaces at the lane's
       * next applier call.
       */
      const applyPending = async (ahead = false, lane: ApplyLane = main) => {
        const sent = lane.pending;
        lane.pending = [];
        const target = lane.applier;
        // Planned (CPU only) while the previous chunk still runs on the destination.
        const planned = sent.length > 0 && target.applyPlanned !== undefined ? (target.planAhead?.(sent) ?? null) : null;
        await settle(lane);
        const send = async () => {
          try {
            if (planned !== null) await target.applyPlanned?.(planned);
            else if (sent.length > 0) await target.apply(sent);
          } catch (error) {
            throw parked.refusedTable(error) ?? error;
          }
          stats.recordSent(sent.length, Date.now(), lane === main ? 'main' : 'streamed');
          if (lane === main) await parked.writeHeld(target);
        };
        if (!ahead || parked.size > 0) return send();
        const running = send();
        lane.inFlight = running;
        // Awaited by the next settle(); until then its failure is not unhandled.
        running.catch(() => undefined);
      };
      /** Both sessions' chunks in flight end (the first failure is the one that counts). */
      const settleAll = async () => {
        const results = await Promise.allSettled([settle(main), ...[...streams.values()].map((open) => settle(open.lane))]);
        for (const result of results) if (result.status === 'rejected') throw result.reason;
      };
      /**
       * The batch's last changes, its position and the COMMIT in one call (ChangeApplier.applyAndCommit:
       * one round trip for a batch of one chunk), unless a table is parked (its held changes are
       * written in between).
       */
      const applyAndCommit = async (position: string) => {
        const sent = main.pending;
        main.pending = [];
        const planned = sent.length > 0 && applier.applyPlanned !== undefined ? (applier.planAhead?.(sent) ?? null) : null;
        await settle(main);
        await failpoint('before-destination-commit');
        try {
          await applier.applyAndCommit?.(sent, planned, position);
        } catch (error) {
          throw parked.refusedTable(error) ?? error;
        }
        stats.recordSent(sent.length, Date.now(), 'main');
      };
      const flush = async () => {
        const started = Date.now();
        const position = lastCommit as string;
        const combined = applier.applyAndCommit !== undefined && parked.size === 0 && parked.heldCount === 0;
        if (combined) await applyAndCommit(position);
        else await applyPending();
        const sent = Date.now();
        if (!combined) {
          await failpoint('before-destination-commit');
          await applier.commit(position);
        }
        // Where a batch's time goes (FERRY_LOG_LEVEL=debug): sending its last changes, then its commit with the position
        // (combined: both in applyMs, one round trip).
        log.debug({ changes: batchChanges, transactions: batchTransactions, applyMs: sent - started, commitMs: Date.now() - sent, combined, sourceCommitTime: lastCommitTime }, 'batch committed');
        await failpoint('after-destination-commit');
        // Only now is the batch durable on the destination: the source may free its WAL.
        current.acknowledge(position);
        applied = position;
        stats.recordBatch(position, batchChanges, batchTransactions, lastCommitTime, perTable);
        await saveCounters(store, job.id, stats);
        for (const warning of current.takeWarnings?.() ?? []) {
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
        await parked.committed();
        await markHealthy();
      };
      const advanceIdle = async (position: string) => {
        await applier.commit(position);
        current.acknowledge(position);
        applied = position;
        stats.appliedPosition = position;
        lastHeartbeatWrite = Date.now();
        await markHealthy();
      };
      /** A heartbeat seen while a batch was open, with no transaction after it: handled once the batch is committed. */
      let deferredHeartbeat: string | null = null;
      const heartbeat = async (position: string) => {
        if (compare(position, applied) <= 0) return;
        if (untilPosition !== null || Date.now() - lastHeartbeatWrite >= HEARTBEAT_WRITE_MS) {
          await advanceIdle(position);
        } else {
          // Every transaction before the heartbeat is committed on the destination, so the
          // source may free WAL up to it (and a shutting-down source stops waiting for us).
          // A restart from the older position stored on the destination finds nothing in between.
          current.acknowledge(position);
          // Shown as applied too: nothing before it waits, so the lag in bytes can reach 0.
          stats.appliedPosition = position;
        }
      };
      // Parked tables are retried only between batches, in turn with the stream, so that order holds.
      const idle = () => !inTransaction && lastCommit === null;
      /** After a fallback, at an idle point: true once streaming may be asked for again (see `fallback`). */
      const streamingMayResume = async (): Promise<boolean> => {
        if (fallback === null || source.transactionsEndedAt === undefined || !idle() || streams.size > 0 || parked.size > 0) return false;
        const now = Date.now();
        if (now - fallback.at < Math.min(FALLBACK_PAUSE_MAX_MS, FALLBACK_PAUSE_MS * 2 ** (fallbackCount - 1)) || now - fallback.checkedAt < FALLBACK_CHECK_MS) return false;
        fallback.checkedAt = now;
        try {
          fallback.endedAt ??= await source.transactionsEndedAt(deps.sourceParams, fallback.xids);
        } catch (error) {
          log.debug({ err: String(error) }, 'asking the source whether the transactions of a fallback ended failed');
          return false;
        }
        return fallback.endedAt !== null && stats.appliedPosition !== null && compare(stats.appliedPosition, fallback.endedAt) >= 0;
      };
      const drainIfIdle = async () => {
        if (idle() && parked.size > 0) await parked.drainDue(applier, applied);
      };

      try {
        const events = current.events()[Symbol.asyncIterator]();
        // A chunk may still be awaited when the loop leaves (a parked table, an abort): its failure is not unhandled.
        const pull = () => {
          const promise = events.next();
          promise.catch(() => undefined);
          return promise;
        };
        let next = pull();
        for (;;) {
          // Mid-transaction nothing can be drained: only the stream can move on.
          const wait = idle() ? parked.msUntilDue() : null;
          const result = wait === null ? await next : await raceTimer(next, wait);
          signal.throwIfAborted();
          if (result === TICK) {
            await drainIfIdle();
            if (caughtUp()) return;
            continue;
          }
          if (result.done === true) break;
          next = pull();
          // The chunk's last commit ends a batch: batches then grow with what arrived while the
          // previous one was applied (its trailing partial transaction waits for the next chunk).
          let lastCommitIndex = -1;
          for (let i = result.value.length - 1; i >= 0; i--) {
            if (result.value[i]?.kind === 'commit') {
              lastCommitIndex = i;
              break;
            }
          }
          for (let index = 0; index < result.value.length; index++) {
            const event = result.value[index] as (typeof result.value)[number];
            switch (event.kind) {
              case 'begin':
                inTransaction = true;
                deferredHeartbeat = null;
                commitPosition = event.commitPosition;
                if (batchTransactions === 0 && main.pending.length === 0) batchStarted = Date.now();
                stats.oldestPendingCommitMs ??= Date.parse(event.commitTime);
                break;
              case 'change': {
                const change = filterChange(event.change, commitPosition, wanted);
                if (change === null) break;
                const applying = parked.route(mapRowChange(change, mapping));
                if (applying !== null) main.pending.push(applying);
                batchChanges++;
                countTable(perTable, change);
                if (main.pending.length >= APPLY_CHUNK || parked.heldCount >= APPLY_CHUNK) await applyPending(true);
                break;
              }
              case 'streamStart': {
                // What the main session holds uncommitted (transactions that committed before this block's changes) is
                // committed first: the block may write the rows it wrote, and would wait for its commit, which waits for the block.
                if (lastCommit !== null) await flush();
                if (streams.has(event.xid)) break;
                // A transaction met in the middle, or one more than the sessions allowed: read the stream again without streaming.
                if (!event.first) throw new StreamingFallback('a streamed transaction whose first block was not seen', event.xid);
                if (streams.size >= MAX_STREAMED) throw new StreamingFallback(`more than ${MAX_STREAMED} transactions streamed at once`, event.xid);
                // A parked table's changes wait in bookkeeping the main session writes; a table copied after the transaction began wants only some of its changes.
                if (parked.size > 0) throw new StreamingFallback('a transaction streamed while a table is parked', event.xid);
                for (const copiedAt of tablePositions.values()) {
                  if (compare(copiedAt, event.position) > 0) throw new StreamingFallback('a transaction streamed that may have committed before a table was copied', event.xid);
                }
                const inUse = new Set([...streams.values()].map((open) => open.lane.applier));
                let sessionApplier = streamAppliers.find((candidate) => !inUse.has(candidate));
                if (sessionApplier === undefined) {
                  sessionApplier = await openApplier();
                  streamAppliers.push(sessionApplier);
                }
                streams.set(event.xid, { lane: { applier: sessionApplier, pending: [], inFlight: null }, changes: 0, perTable: new Map() });
                log.debug({ xid: event.xid, open: streams.size }, 'applying a streamed transaction');
                break;
              }
              case 'streamChange': {
                const open = streams.get(event.xid);
                if (open === undefined) throw new StreamingFallback('a change of a streamed transaction that is not being applied', event.xid);
                const change = event.change;
                open.lane.pending.push(mapRowChange(change, mapping));
                open.changes++;
                countTable(open.perTable, change);
                if (open.lane.pending.length >= APPLY_CHUNK) await applyPending(true, open.lane);
                break;
              }
              case 'streamCommit': {
                const open = streams.get(event.xid);
                if (open === undefined) throw new StreamingFallback('the commit of a streamed transaction that was not applied', event.xid);
                // Every transaction that committed before it is committed first, on the main session.
                if (lastCommit !== null) await flush();
                const started = Date.now();
                await applyPending(false, open.lane);
                const sent = Date.now();
                await failpoint('before-destination-commit');
                await open.lane.applier.commit(event.position);
                log.debug({ changes: open.changes, transactions: 1, applyMs: sent - started, commitMs: Date.now() - sent, sourceCommitTime: event.commitTime, streamed: true }, 'batch committed');
                await failpoint('after-destination-commit');
                current.acknowledge(event.position);
                applied = event.position;
                stats.recordBatch(event.position, open.changes, 1, event.commitTime, open.perTable, Date.now(), 'streamed');
                streams.delete(event.xid);
                await saveCounters(store, job.id, stats);
                await markHealthy();
                break;
              }
              case 'streamAbort': {
                // Nothing of a transaction not being applied here was applied.
                const open = streams.get(event.xid);
                if (open === undefined) break;
                // Rolling back to a savepoint per subtransaction is not done: the stream is read again without streaming.
                if (event.subxid !== event.xid) throw new StreamingFallback('a subtransaction of a streamed transaction rolled back', event.xid);
                open.lane.pending = [];
                await settle(open.lane);
                await open.lane.applier.rollback();
                stats.discardInFlight('streamed');
                streams.delete(event.xid);
                break;
              }
              case 'commit':
                inTransaction = false;
                batchTransactions++;
                lastCommit = event.position;
                lastCommitTime = event.commitTime;
                if (index === lastCommitIndex || batchChanges >= MAX_BATCH_CHANGES || Date.now() - batchStarted >= MAX_BATCH_MS) await flush();
                break;
              case 'heartbeat':
                if (inTransaction) break;
                // Mid-chunk, a heartbeat does not cut the batch: it counts once the chunk's batch is committed.
                if (lastCommit !== null) {
                  deferredHeartbeat = event.position;
                  break;
                }
                await heartbeat(event.position);
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
          if (deferredHeartbeat !== null && idle()) await heartbeat(deferredHeartbeat);
          deferredHeartbeat = null;
          await drainIfIdle();
          if (caughtUp()) return;
          if (await streamingMayResume()) throw new StreamingResumes();
        }
      } catch (error) {
        // A chunk still in flight ends before the applier is used again (its own failure is the same batch's).
        const reopens = (e: unknown) => e instanceof TableRefused || e instanceof StreamingFallback || e instanceof StreamingResumes;
        const failure = await settleAll().then(() => error, (sentFailure: unknown) => (reopens(error) ? error : sentFailure));
        if (!reopens(failure) || signal.aborted) throw failure;
        // The batch (and the streamed transaction) is abandoned; the stream replays from the last committed position.
        await applier.rollback();
        for (const sessionApplier of streamAppliers) await sessionApplier.rollback();
        stats.oldestPendingCommitMs = null;
        stats.discardInFlight();
        await current.close().catch(() => undefined);
        if (failure instanceof StreamingFallback) {
          log.info({ reason: failure.message, position: applied }, 'reading the change stream again without streaming in-progress transactions');
          streamingAllowed = false;
          fallbackCount++;
          fallback = { xids: [...streams.keys(), failure.xid], at: Date.now(), checkedAt: 0, endedAt: null };
          continue;
        }
        if (failure instanceof StreamingResumes) {
          log.info({ position: applied, endedAt: fallback?.endedAt }, 'streaming in-progress transactions again: the transactions of the fallback ended and are applied');
          streamingAllowed = true;
          fallback = null;
          continue;
        }
        // The table is parked at the last committed position.
        await parked.park(applier, failure, applied);
        continue;
      } finally {
        // Leaving the stream (caught up, ended) with a chunk in flight: it ends before the applier is rolled back or closed.
        await settleAll().catch(() => undefined);
      }
      signal.throwIfAborted();
      throw new FerryError('CONNECTION_LOST', 'The source ended the change stream; Ferry reconnects and continues from the last applied position.', { retryable: true });
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    // Another node holds the job: not even the counters are written for it.
    leaseLost = error instanceof FerryError && error.code === 'LEASE_LOST';
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (lagTimer !== null) clearInterval(lagTimer);
    stats.oldestPendingCommitMs = null;
    stats.discardInFlight();
    if (stats.changesApplied > 0 && !leaseLost) await saveCounters(store, job.id, stats, true).catch(() => undefined);
    await reader?.close().catch(() => undefined);
    await applier.rollback().catch(() => undefined);
    await applier.close().catch(() => undefined);
    for (const sessionApplier of streamAppliers) {
      await sessionApplier.rollback().catch(() => undefined);
      await sessionApplier.close().catch(() => undefined);
    }
  }
}

/** The next chunk of the stream, or TICK when `ms` pass first (the pending chunk stays for the next call). */
async function raceTimer<T>(next: Promise<T>, ms: number): Promise<T | typeof TICK> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([next, new Promise<typeof TICK>((resolve) => { timer = setTimeout(() => resolve(TICK), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens the stream again, waiting briefly while the source still holds the previous reader (a busy slot). */
async function reopen(open: () => Promise<ChangeReader>, signal: AbortSignal): Promise<ChangeReader> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= REOPEN_ATTEMPTS || !(error instanceof FerryError) || !error.retryable) throw error;
      await sleep(REOPEN_WAIT_MS, signal);
    }
  }
}

/**
 * Remembers which source server the stream reads (checkpoint `sourceServer`) and, when it is
 * another than before (the job follows a failover: the profile now points at a promoted
 * replica), says so in the job's history once, with how the stream found its place.
 */
async function recordSourceServer(deps: IncrementalLoadDeps, jobId: string, origin: ChangeStreamOrigin, log: Logger): Promise<void> {
  log.info({ server: origin.server, resumedBy: origin.resumedBy, gtid: origin.gtid }, 'change stream opened');
  const recorded = await deps.store.getCheckpoint<string>(jobId, SOURCE_SERVER_CHECKPOINT);
  const previous = recorded ?? origin.positionServer;
  if (previous !== null && previous !== origin.server) {
    const message = `The source server changed: the change stream now reads ${origin.description} (it read server ${previous} before)` +
      (origin.resumedBy === 'gtid' ? `, and resumed by GTID after ${origin.gtid === '' ? 'the start of the history' : origin.gtid}: the changes the destination holds are not applied again and none after them is skipped.` : '.');
    log.warn({ previous, server: origin.server, resumedBy: origin.resumedBy, gtid: origin.gtid }, 'source server changed');
    await deps.store.appendJobEvent({
      jobId, time: deps.clock.now(), kind: 'info', actor: 'system', message,
      details: { code: 'SOURCE_SERVER_CHANGED', previousServer: previous, server: origin.server, resumedBy: origin.resumedBy, gtid: origin.gtid },
    });
  }
  if (recorded !== origin.server) await deps.store.putCheckpoint(jobId, SOURCE_SERVER_CHECKPOINT, origin.server);
}

/** Counts the change in `perTable` (by shared table name; every TRUNCATE as 'truncate'). */
function countTable(perTable: Map<string, number>, change: RowChange): void {
  const name = change.op === 'truncate' ? 'truncate' : sharedQualifiedName(change.table);
  perTable.set(name, (perTable.get(name) ?? 0) + 1);
}

/**
 * The change (committed at `at`) without the tables whose copy already contains it, or null when
 * nothing is left. `wanted` takes the position itself: no closure is made per change.
 */
function filterChange(change: RowChange, at: string, wanted: (table: QualifiedName, at: string) => boolean): RowChange | null {
  if (change.op === 'truncate') {
    const tables = change.tables.filter((table) => wanted(table, at));
    return tables.length === 0 ? null : { ...change, tables };
  }
  return wanted(change.table, at) ? change : null;
}

/**
 * DDL on the source shows as a table described with other columns. A column the destination
 * lacks makes the applier refuse the table's changes (the table is parked: Running with errors,
 * saying what to do); anything else is recorded in the history so that it is never silent.
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
  ].filter(Boolean).join(', ')}. Apply the same change on the destination table; until then, once a row carries a new column, the table is parked (its changes wait on the destination, the other tables go on) and the job shows Running with errors.`;
  log.warn({ table: name, added, dropped }, 'source schema changed');
  await deps.store.appendJobEvent({ jobId, time: deps.clock.now(), kind: 'info', actor: 'system', message, details: { code: 'SCHEMA_CHANGED', table: name, added, dropped } });
}
