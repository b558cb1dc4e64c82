/**
 * Data validation of a job: per table, row counts and an order-independent checksum of every
 * compared value on both sides, then, where they differ, the keys of the differing rows
 * (docs/validation.md).
 *
 * Both sides are read through their engine's TableReader.copyOut, which writes every value in
 * the canonical form of docs/type-mapping.md across engines, and hashed here (one MD5 per row
 * of the normalized values); every row crosses the wire once per pass, but memory stays bounded:
 * a pass keeps per side a fixed array of bucket sums (rows hashed into buckets by key), and only
 * the narrowing pass holds rows, those of the differing buckets (at most MAX_HELD_ROWS).
 *
 * Passes, per table:
 * 1. count and checksum per key bucket on both sides; equal -> EQUAL;
 * 2. read again the rows of the differing buckets, match them by key (a table without a primary
 *    key: as a multiset of rows) -> the differing rows;
 * 3. during a continuous job's incremental load, differing rows are read again, up to
 *    RECHECK_ROUNDS times, each time after the load has applied everything the source had
 *    committed when its side was read: a row that was only in flight matches and is dropped.
 * Every pass reads the source first and the destination only once the job's applied position
 * is past the source position taken after the source snapshot (continuous jobs in their
 * incremental load), so the destination holds at least what the source side saw.
 */
import type { Readable } from 'node:stream';
import type { ConnectionParams, EngineKind } from '../core/connection-profile.js';
import { escapeCopyText, parseCopyLine } from '../core/copy-text.js';
import { FerryError } from '../core/errors.js';
import type { MigrationJob } from '../core/migration-job.js';
import { mapQualifiedName } from '../core/schema-mapping.js';
import type { ColumnSchema, TableSchema } from '../core/schema.js';
import { copiedColumns } from '../core/type-mapping.js';
import {
  comparisonNormalizer,
  MAX_REPORTED_DIFFERENCES,
  murmurHash32,
  summarizeValidation,
  type RowDifference,
  type TableValidation,
  type Validation,
} from '../core/validation.js';
import type { Engine, TableReader } from '../engines/engine.js';
import type { EngineRegistry } from '../engines/engine-registry.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import { recordedSchemaMapping } from './destination-names.js';
import type { Logger } from './logger.js';

export interface DataValidationDeps {
  store: MetadataStore;
  engines: EngineRegistry;
  clock: Clock;
  logger: Logger;
  resolveConnection(profileId: string): Promise<ConnectionParams>;
  /** The source position the job's incremental load has applied, when it runs in this process; else null. */
  appliedPosition(jobId: string): string | null;
}

/** Rows of the differing buckets held in memory by the narrowing pass, per table. */
const MAX_HELD_ROWS = 200_000;
/** Differing rows carried from the narrowing pass into the re-checks. */
const MAX_CANDIDATES = 200;
/** Re-checks of differing rows during an incremental load. */
const RECHECK_ROUNDS = 5;
/** Reads of a table started again after a retryable failure during the incremental load. */
const RETRIED_READS = 6;
/** How long a pass waits for the incremental load to reach the source position. */
const APPLIED_WAIT_MS = 60_000;
const PROGRESS_INTERVAL_MS = 1_000;

/** True when the job's incremental load is applying changes: the destination moves while it is read. */
export function isInFlight(job: MigrationJob): boolean {
  return job.type === 'continuous' && job.phase === 'INCREMENTAL_LOAD' && (job.status === 'RUNNING' || job.status === 'RUNNING_WITH_ERRORS');
}

/**
 * Validates every table of the job (its job objects), `job.dumpParallelism` tables at a time.
 * `validation` arrives RUNNING with no tables; `report` is called with it as tables progress (at
 * most once a second) and resolves with it SUCCEEDED or FAILED. Rejects only when `signal` aborts.
 */
export async function runDataValidation(
  job: MigrationJob,
  validation: Validation,
  deps: DataValidationDeps,
  signal: AbortSignal,
  report: (validation: Validation) => Promise<void>,
): Promise<Validation> {
  const source = deps.engines.get(job.sourceEngine);
  const destination = deps.engines.get(job.destinationEngine);
  let current = validation;
  // Progress writes are chained, so the final record is written last.
  let written: Promise<void> = Promise.resolve();
  // The live entries the table workers update; each write copies them.
  let entries: TableValidation[] = [];
  const publish = async () => {
    const tables = entries.map((t) => ({ ...t, differences: [...t.differences] }));
    current = { ...current, tables, summary: summarizeValidation(tables) };
    await report(current);
  };
  try {
    const [sourceParams, destinationParams] = await Promise.all([deps.resolveConnection(job.sourceProfileId), deps.resolveConnection(job.destinationProfileId)]);
    const pairs = await readTablePairs(job, deps, source, destination, sourceParams, destinationParams);
    entries = pairs.map((p) => p.entry);
    current = { ...current, recheckedInFlight: isInFlight(job) };
    await publish();
    const timer = setInterval(() => {
      written = written.then(publish).catch((error: unknown) => deps.logger.warn({ err: String(error) }, 'recording validation progress failed'));
    }, PROGRESS_INTERVAL_MS);
    try {
      const queue = [...pairs];
      const worker = async () => {
        for (let pair = queue.shift(); pair !== undefined; pair = queue.shift()) {
          signal.throwIfAborted();
          const context: TableContext = { job, deps, source, destination, sourceParams, destinationParams, signal };
          try {
            await validateTable(context, pair);
          } catch (error) {
            if (signal.aborted) throw error;
            const classified = error instanceof FerryError ? error : (pair.failedSide === 'destination' ? destination : source).classifyError(error);
            pair.entry.state = 'ERROR';
            pair.entry.message = classified.message;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(job.dumpParallelism, pairs.length)) }, worker));
    } finally {
      clearInterval(timer);
    }
    const failed = entries.filter((t) => t.state === 'ERROR');
    current = {
      ...current,
      status: 'SUCCEEDED',
      clean: entries.every((t) => t.state === 'EQUAL'),
      endTime: deps.clock.now(),
      error: failed.length === 0 ? null : { code: 'TABLES_NOT_COMPARED', message: `${failed.length} table(s) could not be compared: ${failed.map((t) => `${t.table} (${t.message ?? ''})`).join('; ')}` },
    };
  } catch (error) {
    if (signal.aborted) throw error;
    const classified = error instanceof FerryError ? error : source.classifyError(error);
    current = { ...current, status: 'FAILED', clean: false, endTime: deps.clock.now(), error: { code: classified.code, message: classified.message } };
  }
  await written;
  await publish();
  return current;
}

interface TablePair {
  source: TableSchema;
  destination: TableSchema;
  entry: TableValidation;
  failedSide: 'source' | 'destination';
}

interface TableContext {
  job: MigrationJob;
  deps: DataValidationDeps;
  source: Engine;
  destination: Engine;
  sourceParams: ConnectionParams;
  destinationParams: ConnectionParams;
  signal: AbortSignal;
}

const qualified = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

/** The job's tables (its job objects) with their schemas on both sides, in the job's schema mapping. */
async function readTablePairs(job: MigrationJob, deps: DataValidationDeps, source: Engine, destination: Engine, sourceParams: ConnectionParams, destinationParams: ConnectionParams): Promise<TablePair[]> {
  const objects = await deps.store.listJobObjects(job.id);
  if (objects.length === 0) {
    throw new FerryError('FAILED_PRECONDITION', `Job "${job.id}" has not copied any table yet; start it and validate once its full dump is done.`);
  }
  const mapping = await recordedSchemaMapping(deps.store, job.id);
  const sourceSchema = await source.readSchema(sourceParams, job.selection, { destinationEngine: job.destinationEngine });
  const wanted = new Set(objects.map((o) => o.name));
  const sourceTables = sourceSchema.tables.filter((t) => wanted.has(qualified(t)));
  const destinationNames = sourceTables.map((t) => mapQualifiedName(mapping, { schema: t.schema, name: t.name }));
  const destinationSchema = await destination.readSchema(
    destinationParams,
    { include: [...new Set(destinationNames.map(qualified))], exclude: [] },
    { destinationEngine: job.sourceEngine },
  );
  const byName = new Map(destinationSchema.tables.map((t) => [qualified(t), t]));
  const pairs: TablePair[] = [];
  for (const [i, table] of sourceTables.entries()) {
    const destinationName = qualified(destinationNames[i] as { schema: string; name: string });
    const entry: TableValidation = {
      table: qualified(table),
      destinationTable: destinationName,
      state: 'PENDING',
      keyed: table.primaryKey !== null && table.primaryKey.columns.length > 0,
      sourceRows: 0,
      destinationRows: 0,
      sourceChecksum: null,
      destinationChecksum: null,
      estimatedRows: table.estimatedRows,
      differences: [],
      differencesTruncated: false,
      message: null,
    };
    const destinationTable = byName.get(destinationName);
    if (destinationTable === undefined) {
      entry.state = 'ERROR';
      entry.message = `The destination has no table ${destinationName}; restart the job to copy it again.`;
      // Kept in the list (state ERROR) without a destination schema to read.
      pairs.push({ source: table, destination: table, entry, failedSide: 'destination' });
      continue;
    }
    pairs.push({ source: table, destination: destinationTable, entry, failedSide: 'source' });
  }
  return pairs;
}

/** How one side's rows are read and put in comparable form. */
interface SidePlan {
  engine: Engine;
  params: ConnectionParams;
  table: TableSchema;
  /** The engine copyOut writes for: the same engine within one, else the other side's. */
  copyFor: EngineKind;
  /** Per compared column, its field index in that side's copyOut. */
  fields: number[];
}

interface ComparePlan {
  columns: string[];
  /** Same engine and the same columns in the same order on both sides: rows are hashed as the bytes copyOut wrote. */
  raw: boolean;
  keyIndexes: number[];
  normalizers: Array<(text: string) => string>;
  source: SidePlan;
  destination: SidePlan;
  buckets: number;
}

const HASH_SEEDS = [0x9747b28c, 0x5bd1e995] as const;
const KEY_SEED = 0x2f6b3c1d;
const TAB = 0x09;

/**
 * One row as read from one side: its 64-bit hash (two 32-bit words) and key bucket, computed
 * while streaming; its values and key text only when asked (the narrowing passes), so that the
 * first pass allocates little per row.
 */
class RowImage {
  #line: Buffer | null;
  #parsed: { shown: Array<string | null>; values: Array<string | null>; keyText: string } | null;

  constructor(
    line: Buffer | null,
    private readonly side: SidePlan,
    private readonly plan: ComparePlan,
    readonly h1: number,
    readonly h2: number,
    readonly bucket: number,
    parsed: { shown: Array<string | null>; values: Array<string | null>; keyText: string } | null,
    /** Raw mode: the key's bytes as latin1 text (the same bytes on both sides for the same key). */
    private readonly rawKey: string | null,
  ) {
    this.#line = line;
    this.#parsed = parsed;
  }

  get hash(): string {
    return `${this.h1.toString(16).padStart(8, '0')}${this.h2.toString(16).padStart(8, '0')}`;
  }

  get keyText(): string {
    return this.rawKey ?? this.#parse().keyText;
  }

  /** The values as the side's copyOut wrote them (shown in reports). */
  get shown(): Array<string | null> {
    return this.#parse().shown;
  }

  /** Parses the values now and lets go of the line (and the chunk it points into): for rows kept in memory. */
  detach(): this {
    this.#parse();
    this.#line = null;
    return this;
  }

  #parse(): { shown: Array<string | null>; values: Array<string | null>; keyText: string } {
    if (this.#parsed === null) this.#parsed = parseRow(this.#line as Buffer, this.side, this.plan);
    return this.#parsed;
  }
}

const formatField = (value: string | null) => (value === null ? '\\N' : escapeCopyText(value));

/** The compared values of one copyOut line: as written, and normalized; the key's normalized text (the whole row without a key). */
function parseRow(line: Buffer, side: SidePlan, plan: ComparePlan): { shown: Array<string | null>; values: Array<string | null>; keyText: string; rowText: string } {
  const raw = parseCopyLine(line);
  const shown = side.fields.map((f) => {
    const field = raw[f];
    return field === null || field === undefined ? null : field.toString('utf8');
  });
  const values = shown.map((text, i) => (text === null ? null : (plan.normalizers[i] as (t: string) => string)(text)));
  const rowText = values.map(formatField).join('\t');
  const keyText = plan.keyIndexes.length === 0 ? rowText : plan.keyIndexes.map((i) => formatField(values[i] ?? null)).join('\t');
  return { shown, values, keyText, rowText };
}

/** Raw mode: the bytes of the key fields of a line (the whole line without a key), found by their tabs. */
function rawKeyRange(line: Buffer, keyIndexes: number[]): Buffer {
  if (keyIndexes.length === 0) return line;
  const parts: Buffer[] = [];
  let field = 0;
  let start = 0;
  const wanted = new Set(keyIndexes);
  const last = Math.max(...keyIndexes);
  for (let i = 0; i <= line.length && field <= last; i++) {
    // A tab inside a value is written as \t, so every tab byte separates fields.
    if (i === line.length || line[i] === TAB) {
      if (wanted.has(field)) parts.push(line.subarray(start, i));
      field++;
      start = i + 1;
    }
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from([TAB]), p])));
}

function planComparison(context: TableContext, pair: TablePair): ComparePlan {
  const sourceKind = context.source.kind;
  const destinationKind = context.destination.kind;
  const sourceColumns = copiedColumns(pair.source, sourceKind, destinationKind);
  const destinationColumns = copiedColumns(pair.destination, destinationKind, sourceKind);
  const missing = sourceColumns.filter((c) => !destinationColumns.some((d) => d.name === c.name)).map((c) => c.name);
  if (missing.length > 0) {
    throw new FerryError('FAILED_PRECONDITION', `The destination table ${pair.entry.destinationTable} lacks column(s) ${missing.join(', ')}; restart the job to create it again.`);
  }
  const destinationByName = new Map(destinationColumns.map((c, i) => [c.name, { column: c, index: i }]));
  const sameEngine = sourceKind === destinationKind;
  const normalizers = sourceColumns.map((c) => {
    const other = (destinationByName.get(c.name) as { column: ColumnSchema }).column;
    return comparisonNormalizer(sameEngine, sourceKind === 'postgresql' ? c.nativeType : other.nativeType);
  });
  const columns = sourceColumns.map((c) => c.name);
  const keyIndexes = pair.entry.keyed ? (pair.source.primaryKey?.columns ?? []).map((k) => columns.indexOf(k)) : [];
  if (keyIndexes.some((i) => i < 0)) throw new FerryError('FAILED_PRECONDITION', `A primary key column of ${pair.entry.table} is not copied; it cannot be validated by key.`);
  const estimate = Math.max(pair.source.estimatedRows, 0);
  const destinationFields = columns.map((name) => (destinationByName.get(name) as { index: number }).index);
  return {
    columns,
    raw: sameEngine && destinationColumns.length === columns.length && destinationFields.every((f, i) => f === i),
    keyIndexes,
    normalizers,
    source: { engine: context.source, params: context.sourceParams, table: pair.source, copyFor: destinationKind, fields: sourceColumns.map((_, i) => i) },
    destination: {
      engine: context.destination,
      params: context.destinationParams,
      table: pair.destination,
      copyFor: sourceKind,
      fields: destinationFields,
    },
    // About 32 rows per bucket, between 256 and 65,536 buckets: few rows to hold per differing bucket.
    buckets: Math.min(65_536, Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, estimate / 32))))),
  };
}

/** Streams one side's rows as RowImages; `visit` runs synchronously (back-pressure holds the source). */
async function readSide(reader: TableReader, side: SidePlan, plan: ComparePlan, signal: AbortSignal, visit: (row: RowImage) => void): Promise<void> {
  signal.throwIfAborted();
  const stream: Readable = reader.copyOut(side.table, { destinationEngine: side.copyFor });
  // Stopping (server shutdown, job deleted) ends the read in flight, not only the next one.
  const stop = () => stream.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
  signal.addEventListener('abort', stop, { once: true });
  try {
    await readLines(stream, side, plan, visit);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

async function readLines(stream: Readable, side: SidePlan, plan: ComparePlan, visit: (row: RowImage) => void): Promise<void> {
  let rest: Buffer | null = null;
  const onLine = (line: Buffer) => {
    if (plan.raw) {
      // Same engine, same columns in the same order: equal rows are equal bytes.
      const key = rawKeyRange(line, plan.keyIndexes);
      const bucket = murmurHash32(key, 0, key.length, KEY_SEED) % plan.buckets;
      visit(new RowImage(line, side, plan, murmurHash32(line, 0, line.length, HASH_SEEDS[0]), murmurHash32(line, 0, line.length, HASH_SEEDS[1]), bucket, null, key.toString('latin1')));
      return;
    }
    const parsed = parseRow(line, side, plan);
    const text = Buffer.from(parsed.rowText, 'utf8');
    const key = Buffer.from(parsed.keyText, 'utf8');
    visit(new RowImage(null, side, plan, murmurHash32(text, 0, text.length, HASH_SEEDS[0]), murmurHash32(text, 0, text.length, HASH_SEEDS[1]), murmurHash32(key, 0, key.length, KEY_SEED) % plan.buckets, parsed, null));
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let data: Buffer = rest === null ? chunk : Buffer.concat([rest, chunk]);
    let start = 0;
    for (let end = data.indexOf(0x0a, start); end !== -1; end = data.indexOf(0x0a, start)) {
      onLine(data.subarray(start, end));
      start = end + 1;
    }
    rest = start < data.length ? Buffer.from(data.subarray(start)) : null;
    data = Buffer.alloc(0);
  }
  if (rest !== null && rest.length > 0) onLine(rest);
}

/**
 * Reads both sides once: the source from a new snapshot, at once; meanwhile (incremental load
 * running) waits until the job has applied everything the source had committed when its
 * snapshot was taken, then reads the destination.
 */
async function readBothSides(
  context: TableContext,
  plan: ComparePlan,
  visit: (side: 'source' | 'destination', row: RowImage) => void,
  /** Re-checks: the source read once more after the destination, from a new snapshot. */
  visitSourceAfter?: (row: RowImage) => void,
): Promise<void> {
  const readers: TableReader[] = [];
  try {
    const sourceSnapshot = await context.source.openSnapshot(context.sourceParams);
    let sourceReader: TableReader;
    try {
      sourceReader = await sourceSnapshot.openTableReader();
      readers.push(sourceReader);
    } finally {
      await sourceSnapshot.close();
    }
    const position = isInFlight(context.job) ? await context.source.currentPosition(context.sourceParams) : null;
    // The source is read right away: a snapshot that waits may meet a TRUNCATE (MySQL: DDL) it cannot read past.
    const sourceRead = readThenClose(sourceReader, plan.source, plan, context.signal, (row) => visit('source', row));
    const destinationRead = (async () => {
      if (position !== null) await waitUntilApplied(context, position);
      const destinationSnapshot = await context.destination.openSnapshot(context.destinationParams);
      let destinationReader: TableReader;
      try {
        destinationReader = await destinationSnapshot.openTableReader();
        readers.push(destinationReader);
      } finally {
        await destinationSnapshot.close();
      }
      await readThenClose(destinationReader, plan.destination, plan, context.signal, (row) => visit('destination', row));
    })();
    const [source, destination] = await Promise.allSettled([sourceRead, destinationRead]);
    if (source.status === 'rejected') throw source.reason;
    if (destination.status === 'rejected') throw destination.reason;
    if (visitSourceAfter !== undefined) {
      const again = await context.source.openSnapshot(context.sourceParams);
      let reader: TableReader;
      try {
        reader = await again.openTableReader();
        readers.push(reader);
      } finally {
        await again.close();
      }
      await readThenClose(reader, plan.source, plan, context.signal, visitSourceAfter);
    }
  } finally {
    await Promise.allSettled(readers.map((r) => r.close()));
  }
}

/**
 * Reads one side, then ends its snapshot at once: a snapshot held open keeps its locks (the
 * table's ACCESS SHARE lock on PostgreSQL, its metadata lock on MySQL), so a TRUNCATE of the
 * workload would queue behind it and the re-check's read of the same table behind the TRUNCATE:
 * a wait no server sees as a deadlock. (The caller's finally closes it again on failure: close() is idempotent.)
 */
async function readThenClose(reader: TableReader, side: SidePlan, plan: ComparePlan, signal: AbortSignal, visit: (row: RowImage) => void): Promise<void> {
  await readSide(reader, side, plan, signal, visit);
  await reader.close();
}

/** Resolves once the job's incremental load has applied the source up to `position`; rejects after APPLIED_WAIT_MS. */
async function waitUntilApplied(context: TableContext, position: string): Promise<void> {
  const deadline = Date.now() + APPLIED_WAIT_MS;
  for (;;) {
    context.signal.throwIfAborted();
    const applied = context.deps.appliedPosition(context.job.id);
    if (applied !== null && context.source.comparePositions(applied, position) >= 0) return;
    if (Date.now() > deadline) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `The incremental load did not reach source position ${position} within ${APPLIED_WAIT_MS / 1000} s (applied: ${applied ?? 'unknown'}), so the destination could not be compared at a consistent point; validate again once the replication lag is low.`,
        { retryable: true },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Per bucket: row count and two 32-bit sums of the row hash words (order-independent, a multiset's). */
class BucketSums {
  readonly sums: Uint32Array;
  rows = 0;
  constructor(readonly buckets: number) {
    this.sums = new Uint32Array(buckets * 3);
  }
  add(row: RowImage): void {
    const at = row.bucket * 3;
    const s = this.sums;
    s[at] = ((s[at] as number) + 1) >>> 0;
    s[at + 1] = ((s[at + 1] as number) + row.h1) >>> 0;
    s[at + 2] = ((s[at + 2] as number) + row.h2) >>> 0;
    this.rows++;
  }
  /** The table's checksum: the two sums over every bucket, hex. */
  checksum(): string {
    const total = new Uint32Array(2);
    for (let b = 0; b < this.buckets; b++) for (let w = 0; w < 2; w++) total[w] = ((total[w] as number) + (this.sums[b * 3 + 1 + w] as number)) >>> 0;
    return [...total].map((v) => v.toString(16).padStart(8, '0')).join('');
  }
  differingBuckets(other: BucketSums): Set<number> {
    const out = new Set<number>();
    for (let b = 0; b < this.buckets; b++) {
      for (let k = 0; k < 3; k++) {
        if (this.sums[b * 3 + k] !== other.sums[b * 3 + k]) {
          out.add(b);
          break;
        }
      }
    }
    return out;
  }
}

const hashHex = (row: RowImage) => row.hash;

async function validateTable(context: TableContext, pair: TablePair): Promise<void> {
  const entry = pair.entry;
  if (entry.state === 'ERROR') return;
  entry.state = 'RUNNING';
  const plan = planComparison(context, pair);

  const inFlight = isInFlight(context.job);
  // During the incremental load a whole pass runs again when too many rows differed to re-check them one by one (a TRUNCATE in flight).
  for (let attempt = 0; ; attempt++) {
    try {
      if (await compareOnce(context, plan, entry, inFlight, attempt)) return;
    } catch (error) {
      // A snapshot that cannot read a table truncated meanwhile (MySQL: TRUNCATE is DDL) is read again.
      if (inFlight && error instanceof FerryError && error.retryable && attempt < RETRIED_READS) continue;
      throw error;
    }
  }
}

/**
 * One comparison of the table (passes 1 to 3); resolves true once `entry` holds the result, false
 * when it should run again (during the incremental load, too many rows differed to re-check).
 */
async function compareOnce(context: TableContext, plan: ComparePlan, entry: TableValidation, inFlight: boolean, attempt: number): Promise<boolean> {
  const record = (row: RowImage) => Object.fromEntries(plan.columns.map((c, i) => [c, row.shown[i] ?? null]));
  const keyOf = (row: RowImage) => (plan.keyIndexes.length === 0 ? null : Object.fromEntries(plan.keyIndexes.map((i) => [plan.columns[i] as string, row.shown[i] ?? null])));
  // Pass 1: counts and checksums per bucket.
  const sums = { source: new BucketSums(plan.buckets), destination: new BucketSums(plan.buckets) };
  await readBothSides(context, plan, (side, row) => {
    sums[side].add(row);
    if (side === 'source') entry.sourceRows = sums.source.rows;
    else entry.destinationRows = sums.destination.rows;
  });
  entry.sourceChecksum = sums.source.checksum();
  entry.destinationChecksum = sums.destination.checksum();
  const differing = sums.source.differingBuckets(sums.destination);
  if (differing.size === 0) {
    entry.state = 'EQUAL';
    entry.message = attempt === 0 ? null : 'Rows differed while changes were in flight; the table matched once the incremental load had applied them.';
    return true;
  }
  // Pass 2: the rows of the differing buckets, matched by key (or as a multiset of rows).
  const narrowed = await narrowDown(context, plan, differing, record, keyOf);
  let candidates = narrowed.candidates;
  // Pass 3: during the incremental load, rows that differed only because changes were in flight settle.
  for (let round = 0; inFlight && !narrowed.truncated && candidates.length > 0 && round < RECHECK_ROUNDS; round++) {
    candidates = await recheck(context, plan, candidates, record, keyOf);
  }
  if (inFlight && narrowed.truncated && attempt < RECHECK_ROUNDS) return false;
  if (candidates.length === 0 && inFlight) {
    entry.state = 'EQUAL';
    entry.message = `${narrowed.candidates.length} row(s) differed while changes were in flight; each matched once the incremental load had applied them.`;
    return true;
  }
  entry.state = 'DIFFERENT';
  if (candidates.length === 0) {
    entry.message = 'The checksums differed, but no differing row was found when reading again: the data changed while it was validated. Validate again.';
    return true;
  }
  entry.differencesTruncated = narrowed.truncated || candidates.length > MAX_REPORTED_DIFFERENCES;
  entry.differences = candidates.slice(0, MAX_REPORTED_DIFFERENCES).map((c) => c.difference);
  return true;
}

interface Candidate {
  keyText: string;
  bucket: number;
  difference: RowDifference;
}

async function narrowDown(
  context: TableContext,
  plan: ComparePlan,
  buckets: Set<number>,
  record: (row: RowImage) => Record<string, string | null>,
  keyOf: (row: RowImage) => Record<string, string | null> | null,
): Promise<{ candidates: Candidate[]; truncated: boolean }> {
  // Source rows of the differing buckets by key text (multiset: with a count), then destination rows cancel them.
  const held = new Map<string, { hash: string; row: RowImage; count: number }>();
  const extra: Candidate[] = [];
  const changed: Candidate[] = [];
  const pendingDestination: RowImage[] = [];
  let overflow = false;
  await readBothSides(context, plan, (side, row) => {
    if (!buckets.has(row.bucket)) return;
    if (side === 'source') {
      const seen = held.get(row.keyText);
      if (seen !== undefined) seen.count++;
      else if (held.size < MAX_HELD_ROWS) held.set(row.keyText, { hash: hashHex(row), row: row.detach(), count: 1 });
      else overflow = true;
    } else {
      // Both sides stream at once: destination rows wait until the source side is complete.
      if (pendingDestination.length < MAX_HELD_ROWS) pendingDestination.push(row.detach());
      else overflow = true;
    }
  });
  for (const row of pendingDestination) {
    const seen = held.get(row.keyText);
    if (seen !== undefined && seen.hash === hashHex(row)) {
      if (--seen.count === 0) held.delete(row.keyText);
    } else if (seen !== undefined) {
      held.delete(row.keyText);
      changed.push({ keyText: row.keyText, bucket: row.bucket, difference: { kind: 'changed', key: keyOf(seen.row), source: record(seen.row), destination: record(row) } });
    } else if (extra.length <= MAX_CANDIDATES) {
      extra.push({ keyText: row.keyText, bucket: row.bucket, difference: { kind: 'extra', key: keyOf(row), source: null, destination: record(row) } });
    }
  }
  const missing: Candidate[] = [];
  for (const [keyText, { row, count }] of held) {
    for (let i = 0; i < count && missing.length <= MAX_CANDIDATES; i++) {
      missing.push({ keyText, bucket: row.bucket, difference: { kind: 'missing', key: keyOf(row), source: record(row), destination: null } });
    }
  }
  const all = [...changed, ...missing, ...extra].sort((a, b) => (a.keyText < b.keyText ? -1 : a.keyText > b.keyText ? 1 : 0));
  return { candidates: all.slice(0, MAX_CANDIDATES), truncated: overflow || all.length > MAX_CANDIDATES };
}

/** Reads the candidates' rows again on both sides; keeps those that still differ, with their new values. */
async function recheck(
  context: TableContext,
  plan: ComparePlan,
  candidates: Candidate[],
  record: (row: RowImage) => Record<string, string | null>,
  keyOf: (row: RowImage) => Record<string, string | null> | null,
): Promise<Candidate[]> {
  const buckets = new Set(candidates.map((c) => c.bucket));
  const keys = new Set(candidates.map((c) => c.keyText));
  const rows = { source: new Map<string, RowImage[]>(), destination: new Map<string, RowImage[]>(), sourceAfter: new Map<string, RowImage[]>() };
  const keep = (side: keyof typeof rows) => (row: RowImage) => {
    if (!buckets.has(row.bucket) || !keys.has(row.keyText)) return;
    const list = rows[side].get(row.keyText) ?? [];
    list.push(row.detach());
    rows[side].set(row.keyText, list);
  };
  // The destination is read once the load applied what the source held at the first read, so it
  // holds the source's rows at some later position: a row still changing may match the second read.
  await readBothSides(context, plan, (side, row) => keep(side)(row), keep('sourceAfter'));
  const sameRows = (a: RowImage[], b: RowImage[]) => {
    const hashes = (list: RowImage[]) => list.map(hashHex).sort().join(',');
    return hashes(a) === hashes(b);
  };
  const still: Candidate[] = [];
  for (const keyText of keys) {
    const sourceRows = rows.source.get(keyText) ?? [];
    const destinationRows = rows.destination.get(keyText) ?? [];
    const bucket = (candidates.find((c) => c.keyText === keyText) as Candidate).bucket;
    const s = sourceRows[0];
    const d = destinationRows[0];
    if (sameRows(sourceRows, destinationRows) || sameRows(rows.sourceAfter.get(keyText) ?? [], destinationRows)) continue;
    if (s !== undefined && d !== undefined) still.push({ keyText, bucket, difference: { kind: 'changed', key: keyOf(s), source: record(s), destination: record(d) } });
    else if (s !== undefined) still.push({ keyText, bucket, difference: { kind: 'missing', key: keyOf(s), source: record(s), destination: null } });
    else if (d !== undefined) still.push({ keyText, bucket, difference: { kind: 'extra', key: keyOf(d), source: null, destination: record(d) } });
  }
  return still;
}
