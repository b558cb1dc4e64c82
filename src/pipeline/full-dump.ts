/**
 * One attempt at the full dump: open a consistent snapshot of the source, create the
 * destination schema, copy every table not yet copied (several at a time, each through its
 * own pair of connections, streaming), then build indexes and foreign keys and set
 * sequences.
 *
 * What survives a crash: a table's rows are replaced in one destination transaction and the
 * table is marked DUMPED only after that commits, so a table is either copied whole or copied
 * again. Tables already DUMPED are kept by the next attempt.
 */
import { randomUUID } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { ERROR_CODES, FerryError, toJobError, type JobError } from '../core/errors.js';
import type { ConnectionParams } from '../core/connection-profile.js';
import type { JobObject, MigrationJob } from '../core/migration-job.js';
import { qualifiedName, type DatabaseSchema, type TableSchema } from '../core/schema.js';
import { countsRows } from '../engines/engine.js';
import type { CopyFormat, CreatedObject, DestinationFence, Engine, RowCounting, SchemaObjectOptions, SourceSnapshot, TableRange, TableReader, TableWriter } from '../engines/engine.js';
import type { MetadataStore, StoredWorkItem } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { SOURCE_SCHEMA_CHECKPOINT, tablePositionCheckpoint } from './incremental-load.js';
import { mapDatabaseSchema, mapQualifiedName, type SchemaMapping } from '../core/schema-mapping.js';
import { fixSchemaMapping } from './destination-names.js';
import { failpoint } from './failpoints.js';
import { sleep } from './retry-policy.js';
import { DumpPrelude } from './dump-prelude.js';
import { actionForeignKeyGroups, carriesForeignKeyActions } from '../core/foreign-key-actions.js';

export interface FullDumpDeps {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  source: Engine;
  destination: Engine;
  sourceParams: ConnectionParams;
  destinationParams: ConnectionParams;
  /** How often a table's progress is written to the store while it copies. */
  progressIntervalMs?: number;
  /**
   * Same-table concurrency: a table is cut into ranges of at least this many bytes, as many as
   * the job's dumpParallelism allows (default: FERRY_DUMP_SPLIT_PART_BYTES, else 48 MiB; a table
   * under twice this size is copied whole).
   */
  splitPartBytes?: number;
  /** Every table or range load commits only while the destination fence holds this epoch (LEASE_LOST otherwise). */
  fence?: DestinationFence;
  /**
   * A store shared by several nodes: a one-time job from a source whose snapshot other sessions
   * can import publishes its tables and ranges as work items that every node copies (see
   * copyAsWorkItems). Absent: this process copies everything.
   */
  workSpread?: WorkSpread;
}

/** What the dump needs to know of the nodes that copy work items. */
export interface WorkSpread {
  /** How many nodes copy items now (a large table is cut into dumpParallelism parts per node). */
  liveNodes(): Promise<number>;
}

/** What a work item copies (its `spec` in the store): a table, or one block range of it. */
export interface WorkItemSpec {
  /** The source table, and the same table under its destination names. */
  table: TableSchema;
  destinationTable: TableSchema;
  /** Null: the whole table (replaced); else this range (appended to the table the owner emptied). */
  range: TableRange | null;
  /** The destination fence the item's load checks (the owner's lease epoch), when the job runs under a lease. */
  fence: DestinationFence | null;
}

const DEFAULT_SPLIT_PART_BYTES = 48 * 2 ** 20;

function splitPartBytes(deps: FullDumpDeps): number {
  const fromEnvironment = Number(process.env.FERRY_DUMP_SPLIT_PART_BYTES);
  return deps.splitPartBytes ?? (Number.isSafeInteger(fromEnvironment) && fromEnvironment > 0 ? fromEnvironment : DEFAULT_SPLIT_PART_BYTES);
}

/** A table (or, with table null, a step of the whole dump) that failed in this attempt. */
export interface DumpFailure {
  table: string | null;
  error: FerryError;
}

export const CREATED_OBJECTS_CHECKPOINT = 'createdObjects';
/** The source's schema script (pg_dump), kept for the phases that come later (post-data, promote). */
export const SCHEMA_SCRIPT_CHECKPOINT = 'schemaScript';
export const POST_DATA_CHECKPOINT = 'postDataDone';

/**
 * Counts bytes and rows as they pass: one row per newline in the interchange (text) format,
 * one per tuple in PostgreSQL's binary COPY format (walked by its field lengths, never
 * buffered: at most four bytes of a length are held across chunks). A source stream that
 * counts its own rows (RowCounting, given to countRowsOf) saves the scan: its count is read.
 */
export class CopyProgress extends Transform {
  bytes = 0;
  rows = 0;
  #lastReport = 0;
  #binary: BinaryTupleCounter | null;
  #counted: RowCounting | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly report: (rows: number, bytes: number) => void,
    format: CopyFormat = 'text',
  ) {
    super();
    this.#binary = format === 'binary' ? new BinaryTupleCounter() : null;
  }

  /** Rows are taken from `source`'s own count from now on. */
  countRowsOf(source: RowCounting): void {
    this.#counted = source;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#counted !== null) {
      this.rows = this.#counted.rows;
    } else if (this.#binary !== null) {
      this.rows += this.#binary.count(chunk);
    } else {
      let at = chunk.indexOf(10);
      while (at !== -1) {
        this.rows++;
        at = chunk.indexOf(10, at + 1);
      }
    }
    const now = Date.now();
    if (now - this.#lastReport >= this.intervalMs) {
      this.#lastReport = now;
      this.report(this.rows, this.bytes);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#counted !== null) this.rows = this.#counted.rows;
    callback();
  }
}

/**
 * Walks PostgreSQL's binary COPY stream: an 11-byte signature, flags (int32), a header
 * extension (int32 length, then that many bytes), then tuples, each an int16 field count
 * (-1 ends the stream) and per field an int32 length (-1 for NULL) and that many bytes.
 */
export class BinaryTupleCounter {
  #state: 'signature' | 'extensionLength' | 'extension' | 'fieldCount' | 'fieldLength' | 'fieldData' | 'done' = 'signature';
  /** Bytes still to skip in the signature, extension or field data. */
  #skip = 15;
  #int = 0;
  #intBytes = 0;
  #fieldsLeft = 0;

  /** Tuples that start in this chunk. */
  count(chunk: Buffer): number {
    let tuples = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n && this.#state !== 'done') {
      // Fast path: whole tuples inside this chunk, walked with plain reads. The tuple that
      // runs past the chunk's end goes through the state machine below.
      if (this.#state === 'fieldCount' && this.#intBytes === 0) {
        for (;;) {
          if (i + 2 > n) break;
          const fields = chunk.readInt16BE(i);
          if (fields === -1) break;
          let j = i + 2;
          let f = 0;
          while (f < fields && j + 4 <= n) {
            const length = chunk.readInt32BE(j);
            j += 4 + (length > 0 ? length : 0);
            f++;
          }
          if (f < fields || j > n) break;
          tuples++;
          i = j;
        }
        if (i >= n) break;
      }
      switch (this.#state) {
        case 'signature':
        case 'extension':
        case 'fieldData': {
          const step = Math.min(this.#skip, n - i);
          i += step;
          this.#skip -= step;
          if (this.#skip === 0) {
            if (this.#state === 'signature') this.#state = 'extensionLength';
            else if (this.#state === 'extension') this.#state = 'fieldCount';
            else this.#nextField();
          }
          break;
        }
        case 'extensionLength':
        case 'fieldLength':
        case 'fieldCount': {
          const width = this.#state === 'fieldCount' ? 2 : 4;
          this.#int = ((this.#int << 8) | (chunk[i] as number)) >>> 0;
          this.#intBytes++;
          i++;
          if (this.#intBytes < width) break;
          const value = width === 2 ? (this.#int << 16) >> 16 : this.#int | 0;
          this.#int = 0;
          this.#intBytes = 0;
          if (this.#state === 'extensionLength') {
            this.#skip = value;
            this.#state = value > 0 ? 'extension' : 'fieldCount';
          } else if (this.#state === 'fieldCount') {
            if (value === -1) {
              this.#state = 'done';
            } else {
              tuples++;
              this.#fieldsLeft = value;
              this.#state = value > 0 ? 'fieldLength' : 'fieldCount';
            }
          } else if (value > 0) {
            this.#skip = value;
            this.#state = 'fieldData';
          } else {
            this.#nextField();
          }
          break;
        }
      }
    }
    return tuples;
  }

  #nextField(): void {
    this.#fieldsLeft--;
    this.#state = this.#fieldsLeft > 0 ? 'fieldLength' : 'fieldCount';
  }
}

/**
 * Runs one attempt. Resolves with the failures (empty when the dump is complete). Rejects only
 * when aborted. `prelude`: the source reads already under way (a one-time job's start opens it);
 * the attempt takes it over and closes it. Without one the attempt opens its own.
 */
export async function runFullDumpAttempt(job: MigrationJob, deps: FullDumpDeps, signal: AbortSignal, prelude?: DumpPrelude): Promise<DumpFailure[]> {
  const { store, clock, logger, source, destination } = deps;
  const log = logger.child({ jobId: job.id, phase: 'FULL_DUMP' });
  const reads = prelude ?? DumpPrelude.open(job, source, deps.sourceParams, destination.kind);
  const failures: DumpFailure[] = [];
  let workers: Array<Promise<WorkerConnections>> = [];
  let snapshotClosed: Promise<void> | null = null;
  try {
    const continuous = job.type === 'continuous';
    const snapshot = await reads.snapshot;
    signal.throwIfAborted();
    const schema = await reads.schema;
    if (schema.tables.length === 0) {
      return [{
        table: null,
        error: new FerryError('NO_TABLES_SELECTED', 'No table of the source matches the job\'s selection; change the include/exclude lists (or the source database) and Restart.'),
      }];
    }
    // The destination's names: the source schema model renamed by the job's schema mapping (tables[i] ↔ tables[i]).
    const mapping = await fixSchemaMapping(store, job, schema, destination.kind, deps.destinationParams);
    const target = mapDatabaseSchema(schema, mapping);
    const destinationTables = new Map(schema.tables.map((t, i) => [t, target.tables[i] as TableSchema]));
    const toDestination = (t: TableSchema) => destinationTables.get(t) ?? t;
    const objects = await syncJobObjects(store, clock, job.id, schema, mapping);
    if (continuous) await store.putCheckpoint(job.id, SOURCE_SCHEMA_CHECKPOINT, schema);
    log.info({ snapshot: snapshot.id, tables: schema.tables.length }, 'snapshot opened');

    // A continuous job from MySQL keeps the foreign keys with actions on the destination during
    // the stream: the tables they link are copied by one reader, at one snapshot position.
    const carriesActions = carriesForeignKeyActions(source.kind, job.type);
    const units = carriesActions ? await copyUnits(store, job.id, schema.tables, objects) : schema.tables.filter((t) => objects.get(qualifiedName(t))?.state !== 'DUMPED').map((t) => [t]);
    // A one-time job on a shared store is copied by every node as work items (copyAsWorkItems),
    // which cut and open what they need: the local plan and workers only when it is not spread.
    const spreading = deps.workSpread !== undefined && !continuous && !carriesActions && source.openSnapshotReader !== undefined;
    const startPlan = () => planCopy(job, deps, snapshot, units, objects, log, toDestination).then((p) => {
      workers = Array.from({ length: p.workerCount }, () => openWorkerConnections(deps, snapshot));
      return p;
    });
    // The source reads the copy needs (its plan, its workers' connections) go on while the
    // schema script is read and the pre-data objects are created: none of them writes.
    const [opened, planned] = await Promise.allSettled([
      destination.openSchemaWriter(deps.destinationParams, schemaObjectOptions(job)),
      spreading ? null : startPlan(),
    ]);
    if (planned.status === 'rejected') {
      if (opened.status === 'fulfilled') await opened.value.close().catch(() => undefined);
      throw planned.reason;
    }
    if (opened.status === 'rejected') throw opened.reason;
    const schemaWriter = opened.value;
    try {
      const applyScript = schemaWriter.applySchemaScript?.bind(schemaWriter);
      const script = applyScript !== undefined ? await reads.script : null;
      signal.throwIfAborted();
      if (script !== null && applyScript !== undefined) {
        await store.putCheckpoint(job.id, SCHEMA_SCRIPT_CHECKPOINT, script);
        const result = await applyScript(script, 'pre-data', { schemaMapping: mapping });
        await recordCreatedObjects(store, job.id, result.created);
        await warnMissingRoles(deps, job.id, result.missingRoles);
      } else {
        await recordCreatedObjects(store, job.id, await schemaWriter.createPreDataObjects(target));
      }
      signal.throwIfAborted();

      const copyStarted = Date.now();
      const spread = spreading && deps.workSpread !== undefined
        ? await copyAsWorkItems(job, deps, deps.workSpread, snapshot, units.flat(), objects, failures, signal, log, toDestination)
        : false;
      if (!spread) {
        // Not spread after all (nothing to copy, or a destination without work items): copied here.
        const plan = planned.value ?? await startPlan();
        await copyTables(job, deps, snapshot, plan, workers, objects, failures, signal, log, toDestination);
        workers = [];
      }
      if (failures.length > 0) return failures;
      // Every reader is done: the snapshot (and a split table's lock) goes while the indexes are built.
      snapshotClosed = reads.close();
      log.info({ tables: units.flat().length, seconds: (Date.now() - copyStarted) / 1000 }, 'tables copied');
      const postDataStarted = Date.now();

      // Indexes and foreign keys are built once the data is in: faster, and FKs cannot fail on load order.
      // A continuous job adds its foreign keys at promote: replayed changes may pass through states they refuse.
      if (script !== null && applyScript !== undefined) {
        await applyScript(script, 'post-data', { refreshMaterializedViews: true, schemaMapping: mapping, indexJobs: job.dumpParallelism });
        // Triggers, rules, policies and foreign keys: now for a one-time job, at promote for a
        // continuous one (they would fire on, or refuse, the changes applied until then).
        if (!continuous) await applyScript(script, 'promote', { schemaMapping: mapping });
      } else {
        // Triggers and events too: the change stream already holds the rows a source trigger wrote.
        // Foreign keys with actions from a MySQL source now, so the destination repeats the
        // cascades that the binlog does not hold (the others at promote).
        const foreignKeys = !continuous ? true : carriesActions ? 'actions' : false;
        const postData = await schemaWriter.createPostDataObjects(target, { foreignKeys, triggers: !continuous });
        await recordCreatedObjects(store, job.id, postData ?? []);
      }
      await failpoint('between-post-data-steps');
      await schemaWriter.syncSequences(target);
      await store.putCheckpoint(job.id, POST_DATA_CHECKPOINT, true);
      log.info({ seconds: (Date.now() - postDataStarted) / 1000 }, 'post-data objects created');
    } finally {
      await schemaWriter.close().catch((error: unknown) => log.warn({ err: String(error) }, 'closing the schema writer failed'));
    }
    return [];
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    const classified = error instanceof FerryError ? error : (deps.source.classifyError(error));
    return [...failures, { table: null, error: classified }];
  } finally {
    // Connections opened for a copy that never began (the pre-data failed, or the attempt was stopped).
    await closeWorkerConnections(workers);
    await (snapshotClosed ?? reads.close()).catch((error: unknown) => log.warn({ err: String(error) }, 'closing the snapshot failed'));
  }
}

/** Makes the job's objects match the snapshot's tables, keeping what earlier attempts copied. */
async function syncJobObjects(store: MetadataStore, clock: Clock, jobId: string, schema: DatabaseSchema, mapping: SchemaMapping): Promise<Map<string, JobObject>> {
  const existing = new Map((await store.listJobObjects(jobId)).map((o) => [o.name, o]));
  const now = clock.now();
  const objects = schema.tables.map((table): JobObject => {
    const name = qualifiedName(table);
    const destinationName = qualifiedName(mapQualifiedName(mapping, table));
    const renamed = destinationName === name ? {} : { destinationName };
    const previous = existing.get(name);
    if (previous?.state === 'DUMPED') return { ...previous, ...renamed, estimatedRows: table.estimatedRows, estimatedBytes: table.estimatedBytes };
    return {
      jobId, name, ...renamed, state: 'NOT_STARTED', rowsCopied: 0, bytesCopied: 0,
      estimatedRows: table.estimatedRows, estimatedBytes: table.estimatedBytes,
      error: previous?.error ?? null, updateTime: now,
    };
  });
  if (existing.size !== objects.length || objects.some((o) => !existing.has(o.name))) await store.deleteJobObjects(jobId);
  await store.upsertJobObjects(objects);
  return new Map(objects.map((o) => [o.name, o]));
}

/** Grants to roles the destination lacks are left out; the history says which. */
async function warnMissingRoles(deps: FullDumpDeps, jobId: string, roles: string[]): Promise<void> {
  if (roles.length === 0) return;
  await deps.store.appendJobEvent({
    jobId, time: deps.clock.now(), kind: 'info', actor: 'system',
    message: `Warning: the source grants privileges to roles that do not exist on the destination (${roles.join(', ')}); those GRANTs were left out. Create the roles on the destination and re-run the GRANTs, if they are needed.`,
    details: { code: 'MISSING_ROLES', roles },
  });
}

/** How the job's destination creates schema objects. */
export function schemaObjectOptions(job: MigrationJob): SchemaObjectOptions {
  return { ...(job.definerPolicy === undefined ? {} : { definerPolicy: job.definerPolicy }), enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label' };
}

/** Adds objects to the job's record of what it created on the destination (Restart drops them). */
export async function recordCreatedObjects(store: MetadataStore, jobId: string, created: CreatedObject[]): Promise<void> {
  if (created.length === 0) return;
  const known = (await store.getCheckpoint<CreatedObject[]>(jobId, CREATED_OBJECTS_CHECKPOINT)) ?? [];
  const key = (o: CreatedObject) => `${o.kind}:${o.schema ?? ''}:${o.name}`;
  const seen = new Set(known.map(key));
  await store.putCheckpoint(jobId, CREATED_OBJECTS_CHECKPOINT, [...known, ...created.filter((o) => !seen.has(key(o)))]);
}

/**
 * A table split into ranges (SourceSnapshot.splitTable) that several workers copy at once,
 * each range in a destination transaction of its own, after one empty replaceTableData emptied
 * the table. The table is DUMPED only once every range committed; an attempt that stops before
 * (crash, failed range) leaves it not DUMPED, and the next attempt empties it and copies every
 * range again: never a duplicate row, but no range-level resume.
 */
interface SplitCopy {
  table: TableSchema;
  destinationTable: TableSchema;
  ranges: TableRange[];
  /** Started by the first worker that takes a range: marks the table DUMPING, empties it, picks the format. */
  prepared: Promise<CopyFormat> | null;
  remaining: number;
  failed: boolean;
  /** Rows and bytes of each range so far, summed for the table's progress. */
  rows: number[];
  bytes: number[];
  /** When the table's progress was last written (ms): once per interval for all its ranges. */
  savedAt: number;
  save: (patch: Partial<JobObject>) => Promise<void>;
}

type CopyTask = { unit: TableSchema[] } | { split: SplitCopy; index: number };

/** What the workers copy, largest first, and how many workers copy it. */
interface CopyPlan {
  queue: CopyTask[];
  workerCount: number;
}

/** A worker's pair of connections: a reader bound to the snapshot and a destination writer. */
interface WorkerConnections {
  reader: TableReader;
  writer: TableWriter;
}

/** Cuts the units into the workers' tasks (a large table alone in its unit into ranges); reads only the source. */
async function planCopy(
  job: MigrationJob,
  deps: FullDumpDeps,
  snapshot: SourceSnapshot,
  units: TableSchema[][],
  objects: Map<string, JobObject>,
  log: Logger,
  toDestination: (table: TableSchema) => TableSchema,
): Promise<CopyPlan> {
  // Largest first: the longest copies start early and the tail of the dump stays short.
  const size = (unit: TableSchema[]) => unit.reduce((n, t) => n + Math.max(0, t.estimatedBytes), 0);
  const sorted = [...units].sort((a, b) => size(b) - size(a));
  const parallelism = Math.max(1, job.dumpParallelism);
  const queue: CopyTask[] = [];
  // Same-table concurrency: a large table alone in its unit is cut into ranges that the workers
  // copy side by side, when the source can cut it and the destination can add rows to a table.
  const canSplit = parallelism > 1 && snapshot.splitTable !== undefined && deps.destination.kind === 'postgresql';
  const partBytes = splitPartBytes(deps);
  for (const unit of sorted) {
    const table = unit[0] as TableSchema;
    // Offered from twice the part size on (by the estimate); the snapshot decides how many parts, if any.
    const ranges = canSplit && unit.length === 1 && table.estimatedBytes >= 2 * partBytes ? await snapshot.splitTable?.(table, parallelism, partBytes) ?? null : null;
    if (ranges === null || ranges.length < 2) {
      queue.push({ unit });
      continue;
    }
    log.info({ table: qualifiedName(table), ranges: ranges.map((r) => r.label) }, 'table split into ranges');
    const split: SplitCopy = {
      table, destinationTable: toDestination(table), ranges, prepared: null, remaining: ranges.length, failed: false,
      rows: ranges.map(() => 0), bytes: ranges.map(() => 0), savedAt: 0, save: progressSaver(deps, qualifiedName(table), objects),
    };
    for (const index of ranges.keys()) queue.push({ split, index });
  }
  return { queue, workerCount: Math.min(parallelism, queue.length) };
}

/** Opens a worker's reader and writer side by side; a failure closes the other one. */
async function openWorkerConnections(deps: FullDumpDeps, snapshot: SourceSnapshot): Promise<WorkerConnections> {
  const [reader, writer] = await Promise.allSettled([snapshot.openTableReader(), deps.destination.openTableWriter(deps.destinationParams)]);
  if (reader.status === 'fulfilled' && writer.status === 'fulfilled') return { reader: reader.value, writer: writer.value };
  await Promise.allSettled([reader.status === 'fulfilled' ? reader.value.close() : null, writer.status === 'fulfilled' ? writer.value.close() : null]);
  if (reader.status === 'rejected') throw toFerryError(deps.source, reader.reason);
  throw toFerryError(deps.destination, (writer as PromiseRejectedResult).reason);
}

/** Closes the connections of workers that never ran (or never took them over). */
async function closeWorkerConnections(workers: Array<Promise<WorkerConnections>>): Promise<void> {
  await Promise.allSettled(workers.map(async (opening) => {
    const { reader, writer } = await opening;
    await Promise.allSettled([reader.close(), writer.close()]);
  }));
}

const toFerryError = (engine: Engine, error: unknown): FerryError => (error instanceof FerryError ? error : engine.classifyError(error));

/**
 * Copies the plan's tasks, one worker per connection pair of `connections` (opened by
 * openWorkerConnections, taken over: each worker closes its own); appends a failure per table
 * that failed.
 */
async function copyTables(
  job: MigrationJob,
  deps: FullDumpDeps,
  snapshot: SourceSnapshot,
  { queue }: CopyPlan,
  connections: Array<Promise<WorkerConnections>>,
  objects: Map<string, JobObject>,
  failures: DumpFailure[],
  signal: AbortSignal,
  log: Logger,
  toDestination: (table: TableSchema) => TableSchema,
): Promise<void> {
  const worker = async (index: number): Promise<void> => {
    let reader: TableReader | null = null;
    let writer: TableWriter | null = null;
    try {
      ({ reader, writer } = await (connections[index] as Promise<WorkerConnections>));
      for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
        let ok = true;
        if ('split' in task) {
          signal.throwIfAborted();
          ok = await copyRange(deps, job, task.split, task.index, reader, writer, failures, signal, snapshot.position, log);
        } else {
          // The tables of a unit share this reader's snapshot; after a failure the rest of the unit
          // waits for the next attempt, which copies the whole unit again (copyUnits).
          for (const table of task.unit) {
            signal.throwIfAborted();
            ok = await copyTable(deps, job.id, table, toDestination(table), reader, writer, objects, failures, signal, snapshot.position, job, log);
            if (!ok) break;
          }
        }
        // A failed table may have left this worker's connections unusable: take fresh ones.
        if (!ok && queue.length > 0) {
          await Promise.allSettled([reader.close(), writer.close()]);
          reader = null;
          writer = null;
          ({ reader, writer } = await openWorkerConnections(deps, snapshot));
        }
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const side = reader === null ? deps.source : deps.destination;
      failures.push({ table: null, error: toFerryError(side, error) });
      log.warn({ worker: index, err: String(error) }, 'dump worker stopped');
    } finally {
      await Promise.allSettled([reader?.close(), writer?.close()]);
    }
  };
  const results = await Promise.allSettled(connections.map((_, i) => worker(i)));
  signal.throwIfAborted();
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

/** Writes a table's job object, one write after another, so a late progress write never overwrites the final state. */
function progressSaver(deps: FullDumpDeps, name: string, objects: Map<string, JobObject>): (patch: Partial<JobObject>) => Promise<void> {
  const base = objects.get(name) as JobObject;
  let writes: Promise<void> = Promise.resolve();
  return (patch) => {
    const next: JobObject = { ...base, ...patch, updateTime: deps.clock.now() };
    objects.set(name, next);
    writes = writes.then(() => deps.store.upsertJobObjects([next]));
    return writes;
  };
}

/**
 * PostgreSQL's binary COPY format when both sides are of one engine and agree on every
 * column's binary form (same major version, same built-in types); the text format otherwise.
 */
export async function chooseFormat(deps: Pick<FullDumpDeps, 'source' | 'destination'>, reader: TableReader, writer: TableWriter, table: TableSchema, destinationTable: TableSchema): Promise<CopyFormat> {
  if (deps.source.kind !== deps.destination.kind || reader.binaryForm === undefined || writer.acceptsBinary === undefined) return 'text';
  const form = await reader.binaryForm(table);
  return form !== null && (await writer.acceptsBinary(destinationTable, form)) ? 'binary' : 'text';
}

/** The source rows of a table (or of one range of it), with source errors classified by the source engine. */
function sourceRows(
  deps: Pick<FullDumpDeps, 'source' | 'destination'>,
  reader: TableReader,
  table: TableSchema,
  policies: Pick<MigrationJob, 'zeroDatePolicy' | 'enumErrorValuePolicy' | 'nulCharacterPolicy'>,
  format: CopyFormat,
  progress: CopyProgress,
  onSourceError: (error: FerryError) => void,
  range?: TableRange,
): Readable {
  const rows = reader.copyOut(table, {
    destinationEngine: deps.destination.kind,
    zeroDatePolicy: policies.zeroDatePolicy ?? 'null',
    enumErrorValuePolicy: policies.enumErrorValuePolicy ?? 'label',
    nulCharacterPolicy: policies.nulCharacterPolicy ?? 'refuse',
    format,
    ...(range === undefined ? {} : { range }),
  });
  if (countsRows(rows)) progress.countRowsOf(rows);
  rows.on('error', (error) => {
    const classified = deps.source.classifyError(error);
    onSourceError(classified);
    progress.destroy(classified);
  });
  // The writer may not be reading yet (it opens its transaction first): an early source error
  // must reach it through the destroyed stream, never as an unhandled 'error' event.
  progress.on('error', () => undefined);
  return rows.pipe(progress);
}

/** Copies one range of a split table; resolves false (with the failure recorded) when it failed. */
async function copyRange(
  deps: FullDumpDeps,
  job: MigrationJob,
  split: SplitCopy,
  index: number,
  reader: TableReader,
  writer: TableWriter,
  failures: DumpFailure[],
  signal: AbortSignal,
  snapshotPosition: string | null,
  log: Logger,
): Promise<boolean> {
  const name = qualifiedName(split.table);
  const range = split.ranges[index] as TableRange;
  if (split.failed) return true;
  let sourceError: FerryError | null = null;
  try {
    split.prepared ??= (async () => {
      // Committed before any range: the ranges only add rows, and a table copied again starts empty.
      const [, format] = await Promise.all([
        split.save({ state: 'DUMPING', rowsCopied: 0, bytesCopied: 0, error: null }),
        writer.replaceTableData(split.destinationTable, Readable.from([]), signal, { sourceEngine: deps.source.kind, ...fenced(deps) })
          .then(() => chooseFormat(deps, reader, writer, split.table, split.destinationTable)),
      ]);
      log.info({ table: name, format, ranges: split.ranges.length }, 'copying table');
      await deps.store.appendJobEvent({
        jobId: job.id, time: deps.clock.now(), kind: 'info', actor: 'system',
        message: `Copying ${name} in ${split.ranges.length} parts side by side (${format === 'binary' ? 'binary' : 'text'} COPY)`,
        details: { code: 'TABLE_SPLIT', table: name, parts: split.ranges.length, format },
      });
      return format;
    })();
    const format = await split.prepared;
    if (split.failed) return true;
    const interval = deps.progressIntervalMs ?? 1000;
    const progress = new CopyProgress(interval, (rows, bytes) => {
      split.rows[index] = rows;
      split.bytes[index] = bytes;
      // A store write blocks the process for its sync: one per table and interval, not one per range.
      const now = Date.now();
      if (now - split.savedAt < interval) return;
      split.savedAt = now;
      if (!split.failed && split.remaining > 0) void split.save({ state: 'DUMPING', rowsCopied: sum(split.rows), bytesCopied: sum(split.bytes), error: null }).catch(() => undefined);
    }, format);
    const rows = sourceRows(deps, reader, split.table, job, format, progress, (e) => (sourceError = e), range);
    const append = writer.appendTableData?.bind(writer);
    if (append === undefined) throw new FerryError('INTERNAL', `The ${deps.destination.kind} destination cannot add rows to a table split into ranges.`);
    const result = await append(split.destinationTable, rows, signal, { sourceEngine: deps.source.kind, format, ...fenced(deps) });
    // This range is committed, the table not DUMPED: a crash here makes the next attempt copy the whole table again.
    await failpoint('after-range-copy');
    split.rows[index] = result.rows;
    split.bytes[index] = progress.bytes;
    split.remaining--;
    if (split.remaining === 0 && !split.failed) {
      await failpoint('after-table-copy');
      const position = reader.position ?? snapshotPosition;
      if (position !== null) await deps.store.putCheckpoint(job.id, tablePositionCheckpoint(name), position);
      await split.save({ state: 'DUMPED', rowsCopied: sum(split.rows), bytesCopied: sum(split.bytes), error: null });
    }
    return true;
  } catch (error) {
    if (signal.aborted) {
      await split.save({ state: 'NOT_STARTED', rowsCopied: 0, bytesCopied: 0, error: null }).catch(() => undefined);
      throw signal.reason;
    }
    const classified = sourceError ?? (error instanceof FerryError ? error : deps.destination.classifyError(error));
    // Another node holds the job: nothing more is written for it, not even this failure.
    if (classified.code === 'LEASE_LOST') throw classified;
    if (!split.failed) {
      // The ranges already committed stay until the next attempt empties the table again.
      split.failed = true;
      failures.push({ table: name, error: classified });
      await split.save({ state: 'FAILED', rowsCopied: 0, bytesCopied: 0, error: toJobError(classified, deps.clock.now()) });
    }
    log.warn({ table: name, range: range.label, err: String(error) }, 'copying a range failed');
    return false;
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The load options that fence a table or range load, when the dump runs under a lease. */
const fenced = (deps: FullDumpDeps): { fence?: DestinationFence } => (deps.fence === undefined ? {} : { fence: deps.fence });

/**
 * What this attempt copies, in units that each share one reader (one snapshot position): a
 * group of tables linked by foreign keys with actions is one unit, copied whole again unless
 * every table of it is DUMPED at one position (a dump resumed after a crash would otherwise
 * hold a parent copied later than its children and skip the parent's earlier deletes and key
 * updates, whose cascades the children's copy still lacks); any other table not DUMPED is a
 * unit of its own.
 */
async function copyUnits(store: MetadataStore, jobId: string, tables: TableSchema[], objects: Map<string, JobObject>): Promise<TableSchema[][]> {
  const dumped = (t: TableSchema) => objects.get(qualifiedName(t))?.state === 'DUMPED';
  const groups = actionForeignKeyGroups(tables);
  const grouped = new Set(groups.flat());
  const units: TableSchema[][] = [];
  for (const group of groups) {
    const positions = new Set<string | null>();
    for (const table of group) positions.add(await store.getCheckpoint<string>(jobId, tablePositionCheckpoint(qualifiedName(table))));
    if (group.every(dumped) && positions.size === 1) continue;
    units.push(group);
  }
  for (const table of tables) if (!grouped.has(table) && !dumped(table)) units.push([table]);
  return units;
}

/** Copies one table; resolves false (with the failure recorded) when it failed. */
async function copyTable(
  deps: FullDumpDeps,
  jobId: string,
  table: TableSchema,
  destinationTable: TableSchema,
  reader: TableReader,
  writer: TableWriter,
  objects: Map<string, JobObject>,
  failures: DumpFailure[],
  signal: AbortSignal,
  snapshotPosition: string | null,
  policies: Pick<MigrationJob, 'zeroDatePolicy' | 'enumErrorValuePolicy' | 'nulCharacterPolicy'>,
  log: Logger,
): Promise<boolean> {
  const { store, clock } = deps;
  const name = qualifiedName(table);
  const save = progressSaver(deps, name, objects);

  await save({ state: 'DUMPING', rowsCopied: 0, bytesCopied: 0, error: null });
  let sourceError: FerryError | null = null;
  let progress: CopyProgress | null = null;
  try {
    const format = await chooseFormat(deps, reader, writer, table, destinationTable);
    log.debug({ table: name, format }, 'copying table');
    progress = new CopyProgress(deps.progressIntervalMs ?? 1000, (rows, bytes) => {
      void save({ state: 'DUMPING', rowsCopied: rows, bytesCopied: bytes, error: null }).catch(() => undefined);
    }, format);
    const rows = sourceRows(deps, reader, table, policies, format, progress, (e) => (sourceError = e));
    const result = await writer.replaceTableData(destinationTable, rows, signal, { sourceEngine: deps.source.kind, format, ...fenced(deps) });
    // The table's changes are applied from the position it was read at; recorded before DUMPED so a DUMPED table always has one.
    await failpoint('after-table-copy');
    const position = reader.position ?? snapshotPosition;
    if (position !== null) await store.putCheckpoint(jobId, tablePositionCheckpoint(name), position);
    await save({ state: 'DUMPED', rowsCopied: result.rows, bytesCopied: progress.bytes, error: null });
    for (const warning of reader.takeWarnings?.() ?? []) {
      await store.appendJobEvent({ jobId, time: clock.now(), kind: 'info', actor: 'system', message: `Warning: ${warning}`, details: { code: 'VALUE_CHANGED', table: name } });
    }
    return true;
  } catch (error) {
    if (signal.aborted) {
      await save({ state: 'NOT_STARTED', rowsCopied: 0, bytesCopied: 0, error: null }).catch(() => undefined);
      throw signal.reason;
    }
    const classified = sourceError ?? (error instanceof FerryError ? error : deps.destination.classifyError(error));
    // Another node holds the job: nothing more is written for it, not even this failure.
    if (classified.code === 'LEASE_LOST') throw classified;
    failures.push({ table: name, error: classified });
    await save({ state: 'FAILED', rowsCopied: 0, bytesCopied: 0, error: toJobError(classified, clock.now()) });
    return false;
  }
}

/** How often the job's owner reads its work items back while nodes copy them. */
const WORK_ITEMS_POLL_MS = 1_000;

/**
 * Work spread: the tables not DUMPED, and the block ranges of the large ones, become work items
 * that every node's item worker (work-items.ts, this node's too) claims from the store, copies
 * from this snapshot (importing it) and finishes. In order, each step before the next:
 * 1. the destination's item markers are replaced (after that, no load of an earlier attempt or
 *    an earlier owner can commit: its marker is gone);
 * 2. split tables are emptied (their ranges only add rows);
 * 3. the items are published in the store (replacing an earlier attempt's).
 * Then the owner reads the items back every second: a table is DUMPED once all its items are
 * DONE, FAILED (with the item's error) once one of them failed. A node that dies mid-item
 * leaves a claim that expires: another node claims the item again, and its load either commits
 * (the dead node's transaction died with its connection) or finds the marker done (the dead
 * node committed before dying) and records the item DONE. The snapshot stays open until every
 * item is settled. Resolves false (nothing done) when the destination has no item markers.
 */
async function copyAsWorkItems(
  job: MigrationJob,
  deps: FullDumpDeps,
  spread: WorkSpread,
  snapshot: SourceSnapshot,
  tables: TableSchema[],
  objects: Map<string, JobObject>,
  failures: DumpFailure[],
  signal: AbortSignal,
  log: Logger,
  toDestination: (table: TableSchema) => TableSchema,
): Promise<boolean> {
  const writer = await deps.destination.openTableWriter(deps.destinationParams);
  let published = false;
  let settledAll = false;
  try {
    if (tables.length === 0 || writer.prepareWorkItems === undefined || writer.forgetWorkItems === undefined || writer.appendTableData === undefined) return false;
    const nodes = Math.max(1, await spread.liveNodes());
    const parallelism = Math.max(1, job.dumpParallelism);
    const partBytes = splitPartBytes(deps);
    const attempt = randomUUID().slice(0, 8);
    const sorted = [...tables].sort((a, b) => Math.max(0, b.estimatedBytes) - Math.max(0, a.estimatedBytes));
    const specs: WorkItemSpec[] = [];
    const split: Array<{ table: TableSchema; parts: number }> = [];
    const fence = deps.fence ?? null;
    for (const table of sorted) {
      const destinationTable = toDestination(table);
      const ranges = table.estimatedBytes >= 2 * partBytes ? await snapshot.splitTable?.(table, parallelism * nodes, partBytes) ?? null : null;
      if (ranges === null || ranges.length < 2) {
        specs.push({ table, destinationTable, range: null, fence });
        continue;
      }
      split.push({ table, parts: ranges.length });
      for (const range of ranges) specs.push({ table, destinationTable, range, fence });
    }
    const items = specs.map((spec, position) => ({
      jobId: job.id, itemId: `${attempt}-${position}`, position, kind: spec.range === null ? 'table' as const : 'range' as const,
      spec, snapshot: snapshot.id, epoch: fence?.epoch ?? 0,
    }));
    await writer.prepareWorkItems(job.id, items.map((i) => i.itemId));
    const saves = new Map(tables.map((t) => [qualifiedName(t), progressSaver(deps, qualifiedName(t), objects)]));
    for (const { table, parts } of split) {
      // Committed before any range is published: the ranges only add rows.
      await writer.replaceTableData(toDestination(table), Readable.from([]), signal, { sourceEngine: deps.source.kind, ...fenced(deps) });
      await deps.store.appendJobEvent({
        jobId: job.id, time: deps.clock.now(), kind: 'info', actor: 'system',
        message: `Copying ${qualifiedName(table)} in ${parts} parts that the nodes copy side by side`,
        details: { code: 'TABLE_SPLIT', table: qualifiedName(table), parts },
      });
    }
    for (const save of saves.values()) await save({ state: 'DUMPING', rowsCopied: 0, bytesCopied: 0, error: null });
    await deps.store.publishWorkItems(job.id, items);
    published = true;
    await deps.store.appendJobEvent({
      jobId: job.id, time: deps.clock.now(), kind: 'info', actor: 'system',
      message: `${tables.length} tables published as ${items.length} work items that every node copies from snapshot ${snapshot.id} (${nodes} nodes up)`,
      details: { code: 'WORK_ITEMS_PUBLISHED', tables: tables.length, items: items.length, snapshot: snapshot.id, nodes },
    });
    log.info({ items: items.length, tables: tables.length, nodes }, 'work items published');

    const settled = new Set<string>();
    let latest: StoredWorkItem[] = [];
    while (settled.size < tables.length) {
      await sleep(WORK_ITEMS_POLL_MS, signal);
      latest = await deps.store.listWorkItems(job.id);
      if (!latest.some((i) => i.itemId.startsWith(`${attempt}-`))) {
        throw new FerryError('FAILED_PRECONDITION', 'The work items of this dump attempt are gone from the store (another attempt replaced them); this attempt stops.', { retryable: true });
      }
      for (const table of tables) {
        const name = qualifiedName(table);
        if (settled.has(name)) continue;
        const own = latest.filter((i) => qualifiedName((i.spec as WorkItemSpec).table) === name);
        const save = saves.get(name) as (patch: Partial<JobObject>) => Promise<void>;
        const rowsCopied = sum(own.map((i) => i.rows));
        const bytesCopied = sum(own.map((i) => i.bytes));
        const failed = own.find((i) => i.state === 'FAILED');
        if (failed !== undefined) {
          const error = workItemError(failed);
          failures.push({ table: name, error });
          await save({ state: 'FAILED', rowsCopied: 0, bytesCopied: 0, error: toJobError(error, deps.clock.now()) });
          settled.add(name);
        } else if (own.every((i) => i.state === 'DONE')) {
          await save({ state: 'DUMPED', rowsCopied, bytesCopied, error: null });
          settled.add(name);
        } else {
          const previous = objects.get(name);
          if (previous?.rowsCopied !== rowsCopied) await save({ state: 'DUMPING', rowsCopied, bytesCopied, error: null });
        }
      }
    }
    settledAll = true;
    const byNode = new Map<string, { items: number; rows: number }>();
    for (const item of latest) {
      if (item.state !== 'DONE' || item.nodeId === null) continue;
      const entry = byNode.get(item.nodeId) ?? { items: 0, rows: 0 };
      byNode.set(item.nodeId, { items: entry.items + 1, rows: entry.rows + item.rows });
    }
    const nodesCopied = Object.fromEntries([...byNode.entries()].sort(([a], [b]) => a.localeCompare(b)));
    await deps.store.appendJobEvent({
      jobId: job.id, time: deps.clock.now(), kind: 'info', actor: 'system',
      message: `Work items copied by ${byNode.size} ${byNode.size === 1 ? 'node' : 'nodes'}: ${Object.entries(nodesCopied).map(([node, n]) => `${node} (${n.items} items, ${n.rows} rows)`).join(', ')}`,
      details: { code: 'WORK_ITEMS_COPIED', nodes: nodesCopied },
    });
    if (failures.length === 0) await writer.forgetWorkItems(job.id);
    await deps.store.deleteWorkItems(job.id);
    return true;
  } finally {
    // Stopped or failed before every item settled: no node may go on claiming this attempt's
    // items (a later attempt or owner replaces the destination markers anyway).
    if (published && !settledAll) await deps.store.deleteWorkItems(job.id).catch((error: unknown) => log.warn({ err: String(error) }, 'removing the work items of a stopped dump attempt failed'));
    await writer.close().catch((error: unknown) => log.warn({ err: String(error) }, 'closing the work item writer failed'));
  }
}

/** The error a node recorded for a FAILED item, as a FerryError. */
function workItemError(item: StoredWorkItem): FerryError {
  const recorded = (item.error ?? {}) as Partial<JobError>;
  const code = typeof recorded.code === 'string' && Object.hasOwn(ERROR_CODES, recorded.code) ? recorded.code : 'INTERNAL';
  return new FerryError(code, `${recorded.message ?? 'A work item failed without saying why.'} (work item ${item.itemId}, node ${item.nodeId ?? 'unknown'})`, {
    retryable: recorded.retryable ?? true,
    recoverable: recorded.recoverable ?? false,
    details: { ...(recorded.details ?? {}), itemId: item.itemId, nodeId: item.nodeId },
  });
}

/**
 * Copies one claimed work item with this reader (bound to the item's snapshot) and writer:
 * the whole table replaced, or the range appended, in one destination transaction that also
 * marks the item's destination marker (LoadOptions.workItem) and checks the owner's fence.
 * `onProgress` hears rows and bytes as they pass. Resolves with the load's result; rejects with
 * a classified FerryError (FAILED_PRECONDITION with details.superseded when another copy of the
 * item, or a newer attempt, came first).
 */
export async function copyWorkItem(
  deps: Pick<FullDumpDeps, 'source' | 'destination' | 'progressIntervalMs'>,
  job: MigrationJob,
  itemId: string,
  spec: WorkItemSpec,
  reader: TableReader,
  writer: TableWriter,
  signal: AbortSignal,
  onProgress: (rows: number, bytes: number) => void,
): Promise<{ rows: number; bytes: number }> {
  let sourceError: FerryError | null = null;
  try {
    const format = await chooseFormat(deps, reader, writer, spec.table, spec.destinationTable);
    const progress = new CopyProgress(deps.progressIntervalMs ?? 1000, onProgress, format);
    const rows = sourceRows(deps, reader, spec.table, job, format, progress, (e) => (sourceError = e), spec.range ?? undefined);
    const options = {
      sourceEngine: deps.source.kind, format, workItem: { jobKey: job.id, itemId },
      ...(spec.fence === null ? {} : { fence: spec.fence }),
    };
    let result;
    if (spec.range === null) {
      result = await writer.replaceTableData(spec.destinationTable, rows, signal, options);
    } else {
      if (writer.appendTableData === undefined) throw new FerryError('INTERNAL', `The ${deps.destination.kind} destination cannot add rows to a table split into ranges.`);
      result = await writer.appendTableData(spec.destinationTable, rows, signal, options);
    }
    return { rows: result.rows, bytes: progress.bytes };
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw sourceError ?? (error instanceof FerryError ? error : deps.destination.classifyError(error));
  }
}
