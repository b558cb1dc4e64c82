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
import { Transform, type TransformCallback } from 'node:stream';
import { FerryError, toJobError } from '../core/errors.js';
import type { ConnectionParams } from '../core/connection-profile.js';
import type { JobObject, MigrationJob } from '../core/migration-job.js';
import { qualifiedName, type DatabaseSchema, type TableSchema } from '../core/schema.js';
import type { CreatedObject, Engine, SchemaObjectOptions, SourceSnapshot, TableReader, TableWriter } from '../engines/engine.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { SOURCE_SCHEMA_CHECKPOINT, tablePositionCheckpoint } from './incremental-load.js';
import { mapDatabaseSchema, mapQualifiedName, type SchemaMapping } from '../core/schema-mapping.js';
import { fixSchemaMapping } from './destination-names.js';
import { failpoint } from './failpoints.js';
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

/** Counts bytes and rows (one per newline in the interchange format) as they pass. */
class CopyProgress extends Transform {
  bytes = 0;
  rows = 0;
  #lastReport = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly report: (rows: number, bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    let at = chunk.indexOf(10);
    while (at !== -1) {
      this.rows++;
      at = chunk.indexOf(10, at + 1);
    }
    const now = Date.now();
    if (now - this.#lastReport >= this.intervalMs) {
      this.#lastReport = now;
      this.report(this.rows, this.bytes);
    }
    callback(null, chunk);
  }
}

/** Runs one attempt. Resolves with the failures (empty when the dump is complete). Rejects only when aborted. */
export async function runFullDumpAttempt(job: MigrationJob, deps: FullDumpDeps, signal: AbortSignal): Promise<DumpFailure[]> {
  const { store, clock, logger, source, destination } = deps;
  const log = logger.child({ jobId: job.id, phase: 'FULL_DUMP' });
  let snapshot: SourceSnapshot | null = null;
  const failures: DumpFailure[] = [];
  try {
    const continuous = job.type === 'continuous';
    // A continuous job's snapshot must say where it meets the change stream.
    snapshot = await source.openSnapshot(deps.sourceParams, { alignedWithChanges: continuous });
    signal.throwIfAborted();
    const schema = await snapshot.readSchema(job.selection, { destinationEngine: destination.kind });
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
    const objects = await syncJobObjects(store, clock, job.id, schema, mapping);
    if (continuous) await store.putCheckpoint(job.id, SOURCE_SCHEMA_CHECKPOINT, schema);
    log.info({ snapshot: snapshot.id, tables: schema.tables.length }, 'snapshot opened');

    const schemaWriter = await destination.openSchemaWriter(deps.destinationParams, schemaObjectOptions(job));
    try {
      // Within one engine the source's own tool writes the schema (PostgreSQL: pg_dump at this
      // snapshot): every object it knows, not only tables. Across engines, the mapped model.
      const applyScript = source.kind === destination.kind ? schemaWriter.applySchemaScript?.bind(schemaWriter) : undefined;
      const script = applyScript !== undefined && snapshot.readSchemaScript !== undefined
        ? await snapshot.readSchemaScript(job.selection, schema)
        : null;
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

      // A continuous job from MySQL keeps the foreign keys with actions on the destination during
      // the stream: the tables they link are copied by one reader, at one snapshot position.
      const carriesActions = carriesForeignKeyActions(source.kind, job.type);
      const units = carriesActions ? await copyUnits(store, job.id, schema.tables, objects) : schema.tables.filter((t) => objects.get(qualifiedName(t))?.state !== 'DUMPED').map((t) => [t]);
      await copyTables(job, deps, snapshot, units, objects, failures, signal, log, (t) => destinationTables.get(t) ?? t);
      if (failures.length > 0) return failures;

      // Indexes and foreign keys are built once the data is in: faster, and FKs cannot fail on load order.
      // A continuous job adds its foreign keys at promote: replayed changes may pass through states they refuse.
      if (script !== null && applyScript !== undefined) {
        await applyScript(script, 'post-data', { refreshMaterializedViews: true, schemaMapping: mapping });
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
    } finally {
      await schemaWriter.close().catch((error: unknown) => log.warn({ err: String(error) }, 'closing the schema writer failed'));
    }
    return [];
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    const classified = error instanceof FerryError ? error : (deps.source.classifyError(error));
    return [...failures, { table: null, error: classified }];
  } finally {
    await snapshot?.close().catch((error: unknown) => log.warn({ err: String(error) }, 'closing the snapshot failed'));
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

/** Copies the tables with up to `dumpParallelism` workers; appends a failure per table that failed. */
async function copyTables(
  job: MigrationJob,
  deps: FullDumpDeps,
  snapshot: SourceSnapshot,
  units: TableSchema[][],
  objects: Map<string, JobObject>,
  failures: DumpFailure[],
  signal: AbortSignal,
  log: Logger,
  toDestination: (table: TableSchema) => TableSchema,
): Promise<void> {
  // Largest first: the longest copies start early and the tail of the dump stays short.
  const size = (unit: TableSchema[]) => unit.reduce((n, t) => n + Math.max(0, t.estimatedBytes), 0);
  const queue = [...units].sort((a, b) => size(b) - size(a));
  const workerCount = Math.max(1, Math.min(job.dumpParallelism, queue.length));

  const worker = async (index: number): Promise<void> => {
    let reader: TableReader | null = null;
    let writer: TableWriter | null = null;
    try {
      reader = await snapshot.openTableReader();
      writer = await deps.destination.openTableWriter(deps.destinationParams);
      for (let unit = queue.shift(); unit !== undefined; unit = queue.shift()) {
        let ok = true;
        // The tables of a unit share this reader's snapshot; after a failure the rest of the unit
        // waits for the next attempt, which copies the whole unit again (copyUnits).
        for (const table of unit) {
          signal.throwIfAborted();
          ok = await copyTable(deps, job.id, table, toDestination(table), reader, writer, objects, failures, signal, snapshot.position, job);
          if (!ok) break;
        }
        // A failed table may have left this worker's connections unusable: take fresh ones.
        if (!ok && queue.length > 0) {
          await Promise.allSettled([reader.close(), writer.close()]);
          reader = null;
          writer = null;
          reader = await snapshot.openTableReader();
          writer = await deps.destination.openTableWriter(deps.destinationParams);
        }
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const side = reader === null ? deps.source : deps.destination;
      failures.push({ table: null, error: error instanceof FerryError ? error : side.classifyError(error) });
      log.warn({ worker: index, err: String(error) }, 'dump worker stopped');
    } finally {
      await Promise.allSettled([reader?.close(), writer?.close()]);
    }
  };
  const results = await Promise.allSettled(Array.from({ length: workerCount }, (_, i) => worker(i)));
  signal.throwIfAborted();
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

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
): Promise<boolean> {
  const { store, clock } = deps;
  const name = qualifiedName(table);
  const base = objects.get(name) as JobObject;
  let writes: Promise<void> = Promise.resolve();
  // Progress writes are queued one after another, so a late one never overwrites the final state.
  const save = (patch: Partial<JobObject>) => {
    const next: JobObject = { ...base, ...patch, updateTime: clock.now() };
    objects.set(name, next);
    writes = writes.then(() => store.upsertJobObjects([next]));
    return writes;
  };

  await save({ state: 'DUMPING', rowsCopied: 0, bytesCopied: 0, error: null });
  let sourceError: FerryError | null = null;
  const progress = new CopyProgress(deps.progressIntervalMs ?? 1000, (rows, bytes) => {
    void save({ state: 'DUMPING', rowsCopied: rows, bytesCopied: bytes, error: null }).catch(() => undefined);
  });
  try {
    const rows = reader.copyOut(table, {
      destinationEngine: deps.destination.kind,
      zeroDatePolicy: policies.zeroDatePolicy ?? 'null',
      enumErrorValuePolicy: policies.enumErrorValuePolicy ?? 'label',
      nulCharacterPolicy: policies.nulCharacterPolicy ?? 'refuse',
    });
    // Source errors are classified by the source engine before they reach the destination's load.
    rows.on('error', (error) => {
      sourceError = deps.source.classifyError(error);
      progress.destroy(sourceError);
    });
    // The writer may not be reading yet (it opens its transaction first): an early source error
    // must reach it through the destroyed stream, never as an unhandled 'error' event.
    progress.on('error', () => undefined);
    const result = await writer.replaceTableData(destinationTable, rows.pipe(progress), signal, { sourceEngine: deps.source.kind });
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
    failures.push({ table: name, error: classified });
    await save({ state: 'FAILED', rowsCopied: 0, bytesCopied: 0, error: toJobError(classified, clock.now()) });
    return false;
  }
}
