/**
 * Runs one job: reads its status from the store and does what the status asks (start,
 * dump, wipe for restart, stop, probe while failed), reporting each move as a lifecycle
 * event. The store is the source of truth: after any interruption the runner re-reads the
 * job and decides again, which is also how it resumes after a crash.
 *
 * Errors: a retryable error puts the job in Running with errors and the step is retried
 * with backoff; once the retry budget is spent, or for an error that needs the user, the
 * job is Failed. A Failed job whose error is recoverable keeps probing and resumes by itself.
 */
import { createHash } from 'node:crypto';
import type { ConnectionParams } from '../core/connection-profile.js';
import { ERROR_CODES, FerryError, toJobError, type ErrorCode } from '../core/errors.js';
import type { JobEvent, JobStatus } from '../core/lifecycle.js';
import type { JobObject, MigrationJob } from '../core/migration-job.js';
import type { QualifiedName } from '../core/schema.js';
import type { CreatedObject, DestinationFence, Engine, ReplicationSpec, SchemaScript, VerifyCheck } from '../engines/engine.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import { pairChecks } from '../core/job-checks.js';
import { mapDatabaseSchema, mapQualifiedName, resolveSchemaMapping } from '../core/schema-mapping.js';
import { recordedSchemaMapping } from './destination-names.js';
import { REPLICATION_CHECKPOINT, SOURCE_SCHEMA_CHECKPOINT, destinationKeyOf, runIncrementalLoad, tablePositionCheckpoint, type ReplicationCheckpoint } from './incremental-load.js';
import { ReplicationStats } from './replication-stats.js';
import type { EngineRegistry } from '../engines/engine-registry.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import { CREATED_OBJECTS_CHECKPOINT, SCHEMA_SCRIPT_CHECKPOINT, recordCreatedObjects, runFullDumpAttempt, schemaObjectOptions, type DumpFailure, type WorkSpread } from './full-dump.js';
import { recordJobEvent, type EventOptions } from './job-transitions.js';
import type { Logger } from './logger.js';
import { failpoint } from './failpoints.js';
import { DumpPrelude } from './dump-prelude.js';
import { retryDelayMs, sleep, type RetryPolicy } from './retry-policy.js';
import type { JobFence } from './job-fence.js';
import { fencedStore, leaseLostError } from './fenced-store.js';

export interface JobRunnerDeps {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  engines: EngineRegistry;
  /** The profile's connection parameters with secrets decrypted; re-read on every use so a fixed password takes effect. */
  resolveConnection(profileId: string): Promise<ConnectionParams>;
  retryPolicy: RetryPolicy;
  /** Set on a store shared by several nodes: a one-time job's dump is copied by every node (FullDumpDeps.workSpread). */
  workSpread?: WorkSpread;
}

class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Errors that stay Running with errors however long they last: the user fixes them on a live job. */
const WAITS_FOR_USER_FIX = new Set<string>(['SCHEMA_CHANGED']);

const PROMOTE_CAUGHT_UP_CHECKPOINT = 'promoteCaughtUp';
/** Set by Promote with force: parked tables do not hold the promote; they end not migrated. */
export const PROMOTE_FORCE_CHECKPOINT = 'promoteForce';
/**
 * Restart of chosen tables (source names): written by the service with the move to
 * Restarting, read by the wipe (which empties only those tables) and by the start that
 * follows (which keeps the job's checks, slot and other tables); cleared (null) once the job
 * is Running again. A crash in between resumes the partial restart, never a whole one.
 */
export const RESTART_OBJECTS_CHECKPOINT = 'restartObjects';
/**
 * True from the beginning of the start's checks until they passed. A job that failed while
 * Starting (a secret that cannot be read, a password refused) and then resumed by itself
 * lands in Running (Full dump): the checks and, for a continuous job, the replication slot
 * are done there first.
 */
const START_PENDING_CHECKPOINT = 'startPending';

/** The statuses whose steps write on the destination: a fenced runner raises the fence before the first of them. */
const WRITES_DESTINATION: ReadonlySet<JobStatus> = new Set<JobStatus>(['RESTARTING', 'RUNNING', 'RUNNING_WITH_ERRORS']);

/**
 * The key of a job's fence on the destination (`_ferry.job_fence`): its destination key once it
 * has a replication checkpoint, else the name its slot has or would have (unique to the job's
 * id and creation time, so that a deleted job's fence never stands in the way of a new job of
 * the same id). The same for every run of the job, one-time jobs included.
 */
export function fenceKeyOf(job: Pick<MigrationJob, 'id' | 'createTime'>, replication: ReplicationCheckpoint | null): string {
  return replication !== null ? destinationKeyOf(job, replication) : replicationSpecFor(job).slotName;
}

function isLeaseLost(error: unknown): error is FerryError {
  return error instanceof FerryError && error.code === 'LEASE_LOST';
}

/**
 * The names of a job's replication objects on the source (63 characters at most). Slots are
 * per server, not per database: a short hash of the job's id and creation time keeps two
 * Ferry installations (or a deleted job and a new one of the same id) apart.
 */
export function replicationSpecFor(job: Pick<MigrationJob, 'id' | 'createTime'>): ReplicationSpec {
  const hash = createHash('sha256').update(`${job.id}\n${job.createTime}`).digest('hex').slice(0, 8);
  const name = `ferry_${job.id.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 44)}_${hash}`;
  return { slotName: name, publicationName: name };
}

export class JobRunner {
  readonly jobId: string;
  /** Live numbers of the incremental load (in memory; the API reads them through the supervisor). */
  readonly stats: ReplicationStats;
  readonly done: Promise<void>;
  readonly #deps: JobRunnerDeps;
  readonly #log: Logger;
  #controller = new AbortController();
  #cancelled = false;
  /** When the current run of consecutive failures began (ms since epoch), and how many. */
  #failingSince: number | null = null;
  #failures = 0;
  /** The lease this runner works under (several nodes on one store), or null (one node: no fencing). */
  readonly #fence: JobFence | null;
  /** The destination fence this runner raised, once it raised it. */
  #raised: DestinationFence | null = null;
  #leaseLost = false;
  /** A one-time job's dump reads, begun by its start beside the checks (see #prepareStart); taken by the full dump. */
  #prelude: DumpPrelude | null = null;

  /**
   * With `fence`, the runner works under that lease: its job writes to the store are refused
   * once `fence.valid()` is false, it raises the job's destination fence to `fence.epoch`
   * before its first step that reads or writes the destination, every destination commit
   * checks that fence, and LEASE_LOST (or `fence.lost`) ends the runner without another write.
   */
  constructor(jobId: string, deps: JobRunnerDeps, stats = new ReplicationStats(), fence?: JobFence) {
    this.stats = stats;
    this.jobId = jobId;
    this.#fence = fence ?? null;
    this.#deps = fence === undefined ? deps : { ...deps, store: fencedStore(deps.store, jobId, fence) };
    this.#log = deps.logger.child({ jobId });
    const onLost = () => {
      this.#leaseLost = true;
      this.#cancelled = true;
      this.#controller.abort(new Interrupted());
    };
    if (fence?.lost.aborted === true) onLost();
    else fence?.lost.addEventListener('abort', onLost, { once: true });
    this.done = this.#run();
  }

  /** True once the runner stopped because another node holds the job (LEASE_LOST, or the lease's `lost` signal). */
  get leaseLost(): boolean {
    return this.#leaseLost;
  }

  /** The job's status changed under the runner (Stop, Restart): abandon the step and re-read. */
  interrupt(): void {
    this.#controller.abort(new Interrupted());
  }

  /** Stops working on the job without changing its status (Delete, server shutdown). */
  cancel(): Promise<void> {
    this.#cancelled = true;
    this.#controller.abort(new Interrupted());
    return this.done;
  }

  /** Releases the start's source reads when no full dump took them over. */
  async #closePrelude(): Promise<void> {
    const prelude = this.#prelude;
    this.#prelude = null;
    await prelude?.close().catch((error: unknown) => this.#log.warn({ err: String(error) }, 'closing the dump\'s snapshot failed'));
  }

  async #run(): Promise<void> {
    try {
      while (!this.#cancelled) {
        if (this.#controller.signal.aborted) this.#controller = new AbortController();
        const signal = this.#controller.signal;
        const job = await this.#deps.store.getJob(this.jobId);
        if (job === null) return;
        try {
          if (this.#fence !== null && this.#raised === null && WRITES_DESTINATION.has(job.status)) await this.#raiseFence(job, this.#fence);
          if (!(await this.#step(job, signal))) return;
        } catch (error) {
          if (isLeaseLost(error)) return this.#stopForLostLease(error);
          if (signal.aborted || this.#cancelled) continue;
          try {
            await this.#handleFailure(job, error, signal);
          } catch (inner) {
            if (isLeaseLost(inner)) return this.#stopForLostLease(inner);
            if (!signal.aborted) this.#log.error({ err: String(inner) }, 'recording a failure failed');
          }
        }
      }
    } finally {
      await this.#closePrelude();
    }
  }

  /**
   * Raises the job's destination fence to this lease's epoch: from now on every commit of an
   * older epoch fails, and every one that got its check in before has committed, so what the
   * steps read next (position, parked tables; DUMPED tables were written under the store's
   * lease) is final. LEASE_LOST when a newer epoch raised it already.
   */
  async #raiseFence(job: MigrationJob, fence: JobFence): Promise<void> {
    this.#requireLease(job);
    const replication = await this.#deps.store.getCheckpoint<ReplicationCheckpoint>(job.id, REPLICATION_CHECKPOINT);
    const raised: DestinationFence = { key: fenceKeyOf(job, replication), epoch: fence.epoch };
    const { destination } = this.#engines(job);
    await destination.raiseFence(await this.#deps.resolveConnection(job.destinationProfileId), { ...raised, nodeId: fence.nodeId });
    this.#raised = raised;
    this.#log.info({ fenceKey: raised.key, epoch: raised.epoch, nodeId: fence.nodeId }, 'destination fence raised');
  }

  /** Removes the job's destination fence row (the job is done with the destination). */
  async #dropFence(job: MigrationJob, destinationParams: ConnectionParams): Promise<void> {
    if (this.#raised === null) return;
    await this.#engines(job).destination.dropFence(destinationParams, this.#raised);
  }

  /**
   * Before destination writes that no fence check covers (Restart's emptying and dropping: DDL,
   * and TRUNCATE commits at once in MySQL): LEASE_LOST once the lease may have expired.
   */
  #requireLease(job: MigrationJob): void {
    if (this.#fence !== null && !this.#fence.valid()) throw leaseLostError(job.id, this.#fence);
  }

  #stopForLostLease(error: FerryError): void {
    this.#leaseLost = true;
    this.#log.warn({ code: error.code, msg: error.message }, 'lease lost: this node stops working on the job');
  }

  /** Does what the status asks. Resolves false when nothing is left to do for this job. */
  async #step(job: MigrationJob, signal: AbortSignal): Promise<boolean> {
    // The start's source reads serve only the full dump right after it (stopped meanwhile: released).
    if (this.#prelude !== null && !((job.status === 'RUNNING' || job.status === 'RUNNING_WITH_ERRORS') && (job.phase === 'FULL_DUMP' || job.phase === null))) await this.#closePrelude();
    switch (job.status) {
      case 'STARTING':
        await this.#start(job, signal);
        return true;
      case 'RESTARTING': {
        const objects = await this.#restartObjects(job.id);
        if (objects !== null) {
          await this.#wipeObjects(job, objects, signal);
          await this.#event('restarted', {
            message: `Restart emptied ${objects.length === 1 ? 'table' : 'tables'} ${objects.join(', ')} on the destination; the full dump copies ${objects.length === 1 ? 'it' : 'them'} again from a new snapshot and keeps the tables already copied`,
          });
          return true;
        }
        await this.#wipe(job, signal);
        await this.#event('restarted', { message: 'Restart removed what the job wrote on the destination; starting over with a full dump' });
        return true;
      }
      case 'RUNNING':
      case 'RUNNING_WITH_ERRORS':
        switch (job.phase) {
          case 'INCREMENTAL_LOAD':
            if (job.promoteRequested) await this.#event('promoteBegan', { message: 'Promote: applying every change up to the source\'s current position' });
            else await this.#incrementalLoad(job, signal, null);
            return true;
          case 'PROMOTE':
            await this.#promote(job, signal);
            return true;
          case 'FULL_DUMP':
          case null:
            if ((await this.#deps.store.getCheckpoint<boolean>(job.id, START_PENDING_CHECKPOINT)) === true) {
              await this.#prepareStart(job, signal);
              await this.#deps.store.putCheckpoint(job.id, START_PENDING_CHECKPOINT, false);
            }
            await this.#fullDump(job, signal);
            return true;
        }
        return true;
      case 'RESUMING':
        await this.#event('resumed', { message: 'Resumed from the last checkpoint' });
        return true;
      case 'STOPPING':
        await this.#event('stopped', { message: 'Stopped: the in-flight work was rolled back; the checkpoint is saved' });
        return false;
      case 'FAILED':
        if (job.error?.recoverable !== true) return false;
        await this.#probe(job, signal);
        return true;
      case 'NOT_STARTED':
      case 'COMPLETED':
      case 'STOPPED':
        return false;
    }
  }

  #engines(job: MigrationJob): { source: Engine; destination: Engine } {
    return { source: this.#deps.engines.get(job.sourceEngine), destination: this.#deps.engines.get(job.destinationEngine) };
  }

  async #connections(job: MigrationJob): Promise<{ sourceParams: ConnectionParams; destinationParams: ConnectionParams }> {
    const [sourceParams, destinationParams] = await Promise.all([
      this.#deps.resolveConnection(job.sourceProfileId),
      this.#deps.resolveConnection(job.destinationProfileId),
    ]);
    return { sourceParams, destinationParams };
  }

  /** Verifies prerequisites; on success the job is Running (Full dump in progress). */
  async #start(job: MigrationJob, signal: AbortSignal): Promise<void> {
    const objects = await this.#restartObjects(job.id);
    if (objects !== null) {
      // A restart of chosen tables: the job's checks passed at its first start and its slot,
      // publication and copied tables stay (verify would call the destination not empty).
      const { source, destination } = this.#engines(job);
      const { sourceParams, destinationParams } = await this.#connections(job);
      await this.#requireReachable(source, sourceParams, destination, destinationParams);
      this.#succeeded();
      await this.#event('started', { message: `Full dump in progress: copying ${objects.join(', ')} again and every other table not copied yet` });
      await this.#deps.store.putCheckpoint(job.id, RESTART_OBJECTS_CHECKPOINT, null);
      return;
    }
    await this.#deps.store.putCheckpoint(job.id, START_PENDING_CHECKPOINT, true);
    await this.#prepareStart(job, signal);
    // Cleared before the move: a crash in between leaves the job Starting, which checks again anyway.
    await this.#deps.store.putCheckpoint(job.id, START_PENDING_CHECKPOINT, false);
    this.#succeeded();
    await this.#event('started', { message: 'Prerequisites verified; full dump in progress' });
  }

  /**
   * The start's checks, and for a continuous job its slot and publication; throws what blocks
   * the start. A one-time job's dump begins its source reads (DumpPrelude) beside the checks,
   * which then verify the schema it reads at its snapshot; the full dump that follows takes
   * it over. (A continuous job's snapshot must wait for its slot.)
   */
  async #prepareStart(job: MigrationJob, signal: AbortSignal): Promise<void> {
    await this.#closePrelude();
    const { sourceParams, destinationParams } = await this.#connections(job);
    if (job.type === 'one-time') this.#prelude = DumpPrelude.open(job, this.#engines(job).source, sourceParams, job.destinationEngine);
    try {
      await this.#checkAndPrepare(job, signal, sourceParams, destinationParams);
    } catch (error) {
      await this.#closePrelude();
      throw error;
    }
  }

  async #checkAndPrepare(job: MigrationJob, signal: AbortSignal, sourceParams: ConnectionParams, destinationParams: ConnectionParams): Promise<void> {
    const { source, destination } = this.#engines(job);
    // The checks of both sides run side by side; a server that cannot be reached is the first thing said.
    const [reachable, sourceChecks, sourceSchema] = await Promise.allSettled([
      this.#requireReachable(source, sourceParams, destination, destinationParams),
      source.verifySource(sourceParams, job.selection, job.type, { destinationEngine: job.destinationEngine, zeroDatePolicy: job.zeroDatePolicy ?? 'null', enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label', nulCharacterPolicy: job.nulCharacterPolicy ?? 'refuse' }),
      this.#prelude?.schema ?? source.readSchema(sourceParams, job.selection, { destinationEngine: job.destinationEngine }),
    ]);
    if (reachable.status === 'rejected') throw reachable.reason;
    signal.throwIfAborted();
    if (sourceChecks.status === 'rejected') throw sourceChecks.reason;
    const checks: VerifyCheck[] = sourceChecks.value;
    let schema: DatabaseSchema | null = null;
    if (!checks.some((c) => c.severity === 'error')) {
      if (sourceSchema.status === 'rejected') throw sourceSchema.reason;
      schema = sourceSchema.value;
      checks.push(...pairChecks(schema, job.sourceEngine, job.destinationEngine, job.type));
      const mapping = resolveSchemaMapping({ explicit: job.schemaMapping ?? {}, sourceSchemas: schema.schemas, destinationEngine: job.destinationEngine, destinationDatabase: destinationParams.database });
      checks.push(...mapping.checks.filter((c) => c.severity !== 'ok'));
      if (!mapping.checks.some((c) => c.severity === 'error')) checks.push(...(await destination.verifyDestination(destinationParams, mapDatabaseSchema(schema, mapping.mapping), schemaObjectOptions(job))));
    }
    signal.throwIfAborted();
    const blocking = checks.filter((c) => c.severity === 'error');
    if (blocking.length > 0) throw checksToError(blocking);
    if (job.type === 'continuous' && schema !== null) {
      // The slot must exist before the dump's snapshot, so that every change after the snapshot is kept.
      // A table without a key or replica identity would make the source refuse its own UPDATEs and
      // DELETEs once fully published: it is published for INSERT and TRUNCATE only (verify warns).
      const engine = schema.engine;
      const describable = (t: TableSchema) =>
        t.primaryKey !== null || t.replicaIdentity === 'full' || t.replicaIdentity === 'index' || engine !== 'postgresql';
      const name = (t: { schema: string; name: string }) => ({ schema: t.schema, name: t.name });
      const spec = replicationSpecFor(job);
      // An unlogged table writes no WAL: no publication may list it (verify warns that its changes do not replicate).
      const logged = schema.tables.filter((t) => t.unlogged !== true);
      const { startPosition } = await source.createReplication(sourceParams, spec, logged.filter(describable).map(name), {
        insertOnlyTables: logged.filter((t) => !describable(t)).map(name),
      });
      await failpoint('in-create-replication');
      const checkpoint: ReplicationCheckpoint = { spec, startPosition, destinationKey: spec.slotName };
      await this.#deps.store.putCheckpoint(job.id, REPLICATION_CHECKPOINT, checkpoint);
      this.#log.info({ slot: spec.slotName, startPosition }, 'replication slot and publication ready');
    }
    for (const warning of checks.filter((c) => c.severity === 'warning')) {
      await this.#deps.store.appendJobEvent({
        jobId: job.id, time: this.#deps.clock.now(), kind: 'info', actor: 'system',
        message: `Warning ${warning.code}: ${warning.message}`, details: { code: warning.code, objects: warning.objects ?? [] },
      });
    }
  }

  async #requireReachable(source: Engine, sourceParams: ConnectionParams, destination: Engine, destinationParams: ConnectionParams): Promise<void> {
    const [sourceReport, destinationReport] = await Promise.all([
      source.testConnection(sourceParams),
      destination.testConnection(destinationParams),
    ]);
    for (const [side, report] of [['source', sourceReport], ['destination', destinationReport]] as const) {
      if (!report.ok) {
        const cause = report.error ?? new FerryError('INTERNAL', `The ${side} could not be used; test its connection profile.`);
        throw new FerryError(cause.code, `The ${side} database: ${cause.message}`, {
          retryable: cause.retryable, recoverable: cause.recoverable, details: { ...cause.details, side }, cause,
        });
      }
    }
  }

  async #fullDump(job: MigrationJob, signal: AbortSignal): Promise<void> {
    const { source, destination } = this.#engines(job);
    // The start's source reads, if they are this attempt's: the dump closes them.
    const prelude = this.#prelude ?? undefined;
    this.#prelude = null;
    let sourceParams: ConnectionParams;
    let destinationParams: ConnectionParams;
    try {
      ({ sourceParams, destinationParams } = await this.#connections(job));
    } catch (error) {
      await prelude?.close().catch(() => undefined);
      throw error;
    }
    const failures = await runFullDumpAttempt(job, {
      store: this.#deps.store, clock: this.#deps.clock, logger: this.#deps.logger,
      source, destination, sourceParams, destinationParams, ...(this.#raised === null ? {} : { fence: this.#raised }),
      ...(this.#deps.workSpread === undefined ? {} : { workSpread: this.#deps.workSpread }),
    }, signal, prelude);
    const lost = failures.find((f) => f.error.code === 'LEASE_LOST');
    if (lost !== undefined) throw lost.error;
    if (failures.length > 0) throw failuresToError(failures, job.id);
    this.#succeeded();
    if (job.type === 'one-time') {
      // A one-time job is done with the destination: its fence row goes (and `_ferry` with it when empty).
      await this.#dropFence(job, destinationParams);
      await this.#markObjects(job.id, 'COMPLETED');
      await this.#event('completed', { message: 'Full dump completed: the destination holds the source\'s data' });
    } else {
      await this.#markObjects(job.id, 'REPLICATING');
      await this.#event('dumpCompleted', { message: 'Full dump completed; incremental load begins' });
    }
  }

  async #incrementalLoad(job: MigrationJob, signal: AbortSignal, untilPosition: string | null, leaveParked = false): Promise<void> {
    const { source, destination } = this.#engines(job);
    const { sourceParams, destinationParams } = await this.#connections(job);
    await runIncrementalLoad(job, {
      store: this.#deps.store, clock: this.#deps.clock, logger: this.#deps.logger,
      source, destination, sourceParams, destinationParams, stats: this.stats, retryPolicy: this.#deps.retryPolicy,
      ...(this.#raised === null || this.#fence === null ? {} : { fence: { destination: this.#raised, lease: this.#fence } }),
      onHealthy: async (parked) => {
        // The stream flows: the retry budget starts afresh. Parked tables keep the job Running with errors.
        this.#succeeded();
        const current = await this.#deps.store.getJob(job.id);
        if (parked !== null) {
          if (current?.status !== 'RUNNING_WITH_ERRORS' || current.error?.message !== parked.message) await this.#event('degraded', { error: parked });
        } else if (current?.status === 'RUNNING_WITH_ERRORS') {
          await this.#event('recovered', { message: 'Changes apply again; the error cleared' });
        }
      },
    }, signal, untilPosition, leaveParked);
  }

  /**
   * Promote: applies every change up to a marker written now on the source, then adds the
   * foreign keys, sets sequences to the source's values, and removes the replication objects
   * and the position record. A crash after catching up resumes after that step.
   */
  async #promote(job: MigrationJob, signal: AbortSignal): Promise<void> {
    const { source, destination } = this.#engines(job);
    const { sourceParams, destinationParams } = await this.#connections(job);
    const caughtUp = (await this.#deps.store.getCheckpoint<boolean>(job.id, PROMOTE_CAUGHT_UP_CHECKPOINT)) === true;
    const forced = (await this.#deps.store.getCheckpoint<boolean>(job.id, PROMOTE_FORCE_CHECKPOINT)) === true;
    if (!caughtUp) {
      const target = await source.emitMarker(sourceParams, `promote ${job.id}`);
      // Without force, tables parked meanwhile hold the promote until they rejoin (or the user stops it).
      await this.#incrementalLoad(job, signal, target, forced);
      await this.#deps.store.putCheckpoint(job.id, PROMOTE_CAUGHT_UP_CHECKPOINT, true);
    }
    signal.throwIfAborted();
    const dumped = await this.#deps.store.getCheckpoint<DatabaseSchema>(job.id, SOURCE_SCHEMA_CHECKPOINT);
    // Sequence values as the source has them now, not as the snapshot saw them.
    const current = await source.readSchema(sourceParams, job.selection, { destinationEngine: job.destinationEngine });
    const mapping = await recordedSchemaMapping(this.#deps.store, job.id);
    const script = await this.#deps.store.getCheckpoint<SchemaScript>(job.id, SCHEMA_SCRIPT_CHECKPOINT);
    const writer = await destination.openSchemaWriter(destinationParams, schemaObjectOptions(job));
    try {
      if (script !== null && writer.applySchemaScript !== undefined) {
        // Foreign keys, triggers, rules and policies wait until no change is applied any more.
        await writer.applySchemaScript(script, 'promote', { refreshMaterializedViews: true, schemaMapping: mapping });
      } else {
        // Foreign keys, then the triggers and events held back during the stream (PostDataOptions.triggers).
        const created = await writer.createPostDataObjects(mapDatabaseSchema(dumped ?? current, mapping));
        await recordCreatedObjects(this.#deps.store, job.id, created ?? []);
      }
      await writer.syncSequences(mapDatabaseSchema(current, mapping));
    } finally {
      await writer.close();
    }
    await failpoint('promote-after-catch-up');
    const replication = await this.#deps.store.getCheckpoint<ReplicationCheckpoint>(job.id, REPLICATION_CHECKPOINT);
    if (replication !== null) await source.dropReplication(sourceParams, replication.spec);
    const applier = await destination.openChangeApplier(destinationParams, destinationKeyOf(job, replication), []);
    try {
      await applier.forgetPosition();
    } finally {
      await applier.close();
    }
    await this.#dropFence(job, destinationParams);
    const notMigrated = await this.#markPromotedObjects(job.id);
    this.#succeeded();
    if (notMigrated.length > 0) {
      await this.#deps.store.appendJobEvent({
        jobId: job.id, time: this.#deps.clock.now(), kind: 'error', actor: 'system',
        message: `Promoted with force: ${notMigrated.length === 1 ? 'table' : 'tables'} ${notMigrated.join(', ')} ${notMigrated.length === 1 ? 'was' : 'were'} not migrated (the destination refused their changes; the parked changes were dropped with the job's bookkeeping). Copy ${notMigrated.length === 1 ? 'it' : 'them'} again with a new job once the destination accepts the data.`,
        details: { code: 'NOT_MIGRATED', tables: notMigrated },
      });
    }
    await this.#event('promoted', { message: 'Promoted: every change is applied, sequences are set, the source\'s replication objects are removed; the destination stands alone' });
  }

  /**
   * After promote: every table COMPLETED except those still parked (Promote with force), which
   * stay in state ERROR saying they were not migrated. Resolves with their names.
   */
  async #markPromotedObjects(jobId: string): Promise<string[]> {
    const now = this.#deps.clock.now();
    const objects = await this.#deps.store.listJobObjects(jobId);
    const notMigrated = objects.filter((o) => o.state === 'ERROR');
    await this.#deps.store.upsertJobObjects(objects.map((o): JobObject => {
      if (o.state !== 'ERROR') return { ...o, state: 'COMPLETED', updateTime: now };
      const cause = o.error?.message ?? 'the destination refused its changes';
      const error = new FerryError(o.error?.code ?? 'FAILED_PRECONDITION', `Not migrated: promoted with force while the table was parked; ${o.parkedChanges ?? 0} changes were not applied. Cause: ${cause}`);
      return { ...o, error: toJobError(error, now), updateTime: now };
    }));
    return notMigrated.map((o) => o.name);
  }

  async #markObjects(jobId: string, state: 'COMPLETED' | 'REPLICATING'): Promise<void> {
    const now = this.#deps.clock.now();
    const objects = await this.#deps.store.listJobObjects(jobId);
    await this.#deps.store.upsertJobObjects(objects.map((o) => ({ ...o, state, updateTime: now })));
  }

  /** Restart: removes what the job created on the destination and empties tables it loaded but found. */
  async #wipe(job: MigrationJob, signal: AbortSignal): Promise<void> {
    const { destination } = this.#engines(job);
    const { destinationParams } = await this.#connections(job);
    const created = (await this.#deps.store.getCheckpoint<CreatedObject[]>(job.id, CREATED_OBJECTS_CHECKPOINT)) ?? [];
    // Job objects carry source names; the tables it loaded are under the destination's.
    const mapping = await recordedSchemaMapping(this.#deps.store, job.id);
    const createdTables = new Set(created.filter((o) => o.kind === 'table').map((o) => `${o.schema ?? ''}.${o.name}`));
    const loadedTables: QualifiedName[] = (await this.#deps.store.listJobObjects(job.id))
      .filter((o) => o.state !== 'NOT_STARTED')
      .map((o) => mapQualifiedName(mapping, splitQualifiedName(o.name)))
      .filter((t) => !createdTables.has(`${t.schema}.${t.name}`));
    signal.throwIfAborted();
    const replication = await this.#deps.store.getCheckpoint<ReplicationCheckpoint>(job.id, REPLICATION_CHECKPOINT);
    this.#requireLease(job);
    if (replication !== null) {
      const { source } = this.#engines(job);
      await source.dropReplication(await this.#deps.resolveConnection(job.sourceProfileId), replication.spec);
      const applier = await destination.openChangeApplier(destinationParams, destinationKeyOf(job, replication), []);
      try {
        await applier.forgetPosition();
      } finally {
        await applier.close();
      }
    }
    await failpoint('during-restart-wipe');
    const writer = await destination.openSchemaWriter(destinationParams);
    try {
      await writer.truncateTables(loadedTables);
      await writer.dropObjects(created);
    } finally {
      await writer.close();
    }
    await this.#deps.store.deleteJobObjects(job.id);
    await this.#deps.store.deleteCheckpoints(job.id);
    this.stats.reset();
    this.#succeeded();
  }

  /** The tables a restart of chosen tables copies again, or null for a whole restart. */
  async #restartObjects(jobId: string): Promise<string[] | null> {
    const objects = await this.#deps.store.getCheckpoint<string[]>(jobId, RESTART_OBJECTS_CHECKPOINT);
    return objects !== null && objects.length > 0 ? objects : null;
  }

  /**
   * Restart of chosen tables: empties those tables on the destination and makes them pending
   * again (their own snapshot position forgotten). The other tables, the schema, the slot and
   * the checkpoints stay, so the full dump that follows copies only what is not DUMPED.
   */
  async #wipeObjects(job: MigrationJob, names: string[], signal: AbortSignal): Promise<void> {
    const { destination } = this.#engines(job);
    const { destinationParams } = await this.#connections(job);
    const mapping = await recordedSchemaMapping(this.#deps.store, job.id);
    const chosen = new Set(names);
    const objects = (await this.#deps.store.listJobObjects(job.id)).filter((o) => chosen.has(o.name));
    signal.throwIfAborted();
    this.#requireLease(job);
    const writer = await destination.openSchemaWriter(destinationParams);
    try {
      await writer.truncateTables(objects.map((o) => mapQualifiedName(mapping, splitQualifiedName(o.name))));
    } finally {
      await writer.close();
    }
    for (const object of objects) await this.#deps.store.putCheckpoint(job.id, tablePositionCheckpoint(object.name), null);
    const now = this.#deps.clock.now();
    await this.#deps.store.upsertJobObjects(objects.map((o) => ({ ...o, state: 'NOT_STARTED' as const, rowsCopied: 0, bytesCopied: 0, error: null, updateTime: now })));
    this.#succeeded();
  }

  /** Failed with a recoverable error: waits, tests both servers, resumes when both answer. */
  async #probe(job: MigrationJob, signal: AbortSignal): Promise<void> {
    await sleep(this.#deps.retryPolicy.probeIntervalMs, signal);
    const { source, destination } = this.#engines(job);
    const { sourceParams, destinationParams } = await this.#connections(job);
    const [a, b] = await Promise.all([source.testConnection(sourceParams), destination.testConnection(destinationParams)]);
    signal.throwIfAborted();
    if (a.ok && b.ok) {
      this.#succeeded();
      await this.#event('resumed', { message: `The cause of ${job.error?.code ?? 'the failure'} is gone; resuming from the last checkpoint` });
    } else {
      this.#log.info({ source: a.error?.code ?? 'ok', destination: b.error?.code ?? 'ok' }, 'probe: still failing');
    }
  }

  #succeeded(): void {
    this.#failingSince = null;
    this.#failures = 0;
  }

  async #handleFailure(job: MigrationJob, raw: unknown, signal: AbortSignal): Promise<void> {
    const error = raw instanceof FerryError ? raw : this.#classify(job, raw);
    this.#log.warn({ code: error.code, retryable: error.retryable, status: job.status, msg: error.message }, 'job step failed');
    if (!error.retryable) {
      await this.#event('failed', { error });
      return;
    }
    const now = Date.now();
    this.#failingSince ??= now;
    this.#failures++;
    if (now - this.#failingSince >= this.#deps.retryPolicy.budgetMs && !WAITS_FOR_USER_FIX.has(error.code)) {
      const budgetSeconds = Math.round(this.#deps.retryPolicy.budgetMs / 1000);
      await this.#event('failed', {
        error: new FerryError(error.code, `${error.message} (still failing after ${budgetSeconds} s of retries; Ferry keeps checking and resumes by itself once the cause is fixed)`, {
          retryable: false, recoverable: true, details: error.details, cause: error,
        }),
      });
      return;
    }
    await this.#event('degraded', { error });
    await sleep(retryDelayMs(this.#deps.retryPolicy, this.#failures), signal);
  }

  #classify(job: MigrationJob, raw: unknown): FerryError {
    try {
      return this.#deps.engines.get(job.sourceEngine).classifyError(raw);
    } catch {
      return new FerryError('INTERNAL', `Unexpected error: ${raw instanceof Error ? raw.message : String(raw)}`, { cause: raw });
    }
  }

  async #event(event: JobEvent, options: EventOptions = {}): Promise<void> {
    await recordJobEvent(this.#deps.store, this.#deps.clock, this.jobId, event, options);
  }
}

function splitQualifiedName(name: string): QualifiedName {
  const dot = name.indexOf('.');
  return { schema: name.slice(0, dot), name: name.slice(dot + 1) };
}

/** Blocking verify checks become one error that lists every problem and what to do. */
export function checksToError(checks: VerifyCheck[]): FerryError {
  const first = checks[0] as VerifyCheck;
  const code = isErrorCode(first.code) ? first.code : 'FAILED_PRECONDITION';
  const message = checks.length === 1
    ? first.message
    : `${checks.length} problems block the start: ${checks.map((c, i) => `(${i + 1}) ${c.message}`).join(' ')}`;
  return new FerryError(code, message, { details: { checks } });
}

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * The dump's failures become one error: the first permanent one wins, tables are named. When
 * tables failed for good (a value or a constraint the destination refuses) and nothing else
 * did, the other tables are copied: the message says to fix the cause and restart only those
 * tables, with the command.
 */
export function failuresToError(failures: DumpFailure[], jobId: string): FerryError {
  const primary = failures.find((f) => !f.error.retryable) ?? (failures[0] as DumpFailure);
  const tables = failures.map((f) => f.table).filter((t): t is string => t !== null);
  const where = primary.table === null ? '' : `Copying table ${primary.table} failed: `;
  const more = tables.length > 1 ? ` (${tables.length} tables failed: ${tables.slice(0, 10).join(', ')}${tables.length > 10 ? ', ...' : ''})` : '';
  const onlyTables = !primary.error.retryable && failures.every((f) => f.table !== null);
  const restart = onlyTables
    ? ` The other tables were copied. Fix the data on the source or the table on the destination, then restart only the failed ${tables.length === 1 ? 'table' : 'tables'}: ferry jobs restart ${jobId} --objects ${tables.join(',')} (API: POST /v1/migrationJobs/${jobId}:restart with {"objects": ${JSON.stringify(tables)}}).`
    : '';
  return new FerryError(primary.error.code, `${where}${primary.error.message}${more}${restart}`, {
    retryable: primary.error.retryable,
    recoverable: primary.error.recoverable,
    details: { ...primary.error.details, tables, ...(onlyTables ? { restartObjects: tables } : {}) },
    cause: primary.error,
  });
}
