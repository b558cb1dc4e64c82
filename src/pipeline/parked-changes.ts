/**
 * Parked tables: Running with errors per table during the incremental load.
 *
 * When the destination refuses a table's changes for a reason about that table (a value that
 * does not fit, a constraint the source does not have, a missing column or table, a privilege
 * on the table), the table is parked: it is recorded in the destination's bookkeeping
 * (`_ferry.parked_tables`), and from then on its changes are written, in source order, to
 * `_ferry.parked_changes` in the same destination transactions as the other tables' changes
 * and the source position. Exactly once holds: a restart reads the parked set back from the
 * destination and streams from the position, which covers both.
 *
 * Between batches (no destination transaction open), each parked table whose backoff is due is
 * drained: its oldest parked changes are applied in order, deleted, and committed with the
 * unchanged position. When none is left the table leaves the parked set in that same
 * transaction: it rejoins the stream. On failure the first failing change is found (one by one
 * within the chunk), the prefix that applies is kept, and the error names the change's key.
 *
 * The job object of a parked table is in state ERROR with its error, parked change count and
 * last retry time; the history says when a table is parked and when it rejoins.
 */
import { FerryError, toJobError, type ErrorCode, type JobError } from '../core/errors.js';
import { DEFAULT_MAX_PARKED_CHANGES, type JobObject, type MigrationJob } from '../core/migration-job.js';
import { qualifiedName, type QualifiedName } from '../core/schema.js';
import { destinationTableOf } from '../engines/apply-failure.js';
import type { ChangeApplier, RowChange } from '../engines/engine.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { retryDelayMs, type RetryPolicy } from './retry-policy.js';
import { decodeRowChange, encodeRowChange } from './row-change-codec.js';

/**
 * Errors about one table that park it. Everything else (connection lost, slot or binlog gone,
 * authentication, disk full, locks, server read-only, anything unknown) stops the whole stream
 * as before: retried as a whole, Failed after the retry budget or when not retryable.
 */
export const PARKING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'DATA_ERROR',
  'CONSTRAINT_VIOLATION',
  'SCHEMA_ERROR',
  'SCHEMA_CHANGED',
  'INSUFFICIENT_PRIVILEGE',
  'TABLE_WITHOUT_PRIMARY_KEY',
]);

/** Parked changes applied per destination transaction while draining. */
const DRAIN_CHUNK = 500;
/** Chunks drained per turn before the stream gets its turn again. */
const DRAIN_CHUNKS_PER_TURN = 20;
/** How often parked counts reach the job objects while they only grow. */
const PUBLISH_INTERVAL_MS = 2_000;
/** Share of maxParkedChanges at which the history warns. */
const WARNING_SHARE = 0.8;

/** One job table as the parked set knows it. */
export interface ParkableTable {
  /** Where its changes are applied. */
  destination: QualifiedName;
  /** The job object's name (the source's "schema.table"). */
  source: string;
  /** The primary key columns, to name a failing change; empty when none. */
  keyColumns: string[];
}

/** What is recorded on the destination about a parked table (`note`), and shown. */
interface ParkedNote {
  code: ErrorCode;
  /** The destination's message and what to do. */
  message: string;
  /** The first failing change's key ("id=42"), once known. */
  key: string | null;
  /** When the table was parked. */
  parkedTime: string;
}

interface ParkedTable {
  info: ParkableTable;
  note: ParkedNote;
  /** Committed parked changes. */
  count: number;
  lastSeq: number;
  attempts: number;
  /** Date.now() at which the next drain is due. */
  dueAt: number;
  lastRetryTime: string | null;
}

export interface ParkedTablesDeps {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  retryPolicy: RetryPolicy;
  /** The job's state changed: the error that lists the parked tables, or null when none is left. */
  onChange(error: FerryError | null): Promise<void>;
}

/** A table-scoped failure while applying the stream: the load parks the table and replays from the last committed position. */
export class TableRefused extends Error {
  constructor(
    readonly table: ParkableTable,
    readonly error: FerryError,
  ) {
    super(`table ${table.source} refused: ${error.message}`);
  }
}

const keyOf = (table: QualifiedName) => `${table.schema}\u0000${table.name}`;

export class ParkedTables {
  readonly #job: MigrationJob;
  readonly #deps: ParkedTablesDeps;
  readonly #tables = new Map<string, ParkableTable>();
  readonly #parked = new Map<string, ParkedTable>();
  /** Changes of parked tables received in the open batch, not yet written. */
  #held = new Map<string, RowChange[]>();
  /** Parked changes written in the open batch, by table. */
  #uncommitted = new Map<string, number>();
  #warned = false;
  #lastPublish = 0;

  constructor(job: MigrationJob, tables: ParkableTable[], deps: ParkedTablesDeps) {
    this.#job = job;
    this.#deps = deps;
    for (const table of tables) this.#tables.set(keyOf(table.destination), table);
  }

  get size(): number {
    return this.#parked.size;
  }

  /** Reads the parked set from the destination (committed state); a table not parked before is due for a drain now. */
  async load(applier: ChangeApplier): Promise<void> {
    // Tables parked before keep their backoff; new ones are due now.
    const before = new Map(this.#parked);
    this.#parked.clear();
    this.#held = new Map();
    this.#uncommitted = new Map();
    for (const record of await applier.readParkedTables()) {
      const key = keyOf(record.table);
      const info = this.#tables.get(key) ?? { destination: record.table, source: qualifiedName(record.table), keyColumns: [] };
      const known = before.get(key);
      this.#parked.set(key, {
        info, note: parseNote(record.note, this.#deps.clock.now()), count: record.count, lastSeq: record.lastSeq,
        attempts: known?.attempts ?? 0, dueAt: known?.dueAt ?? 0, lastRetryTime: known?.lastRetryTime ?? null,
      });
    }
    await this.#publish(true);
  }

  /** The table to park for a failure of apply(), or null when the failure is not about one of the job's tables. */
  refusedTable(error: unknown): TableRefused | null {
    const refused = this.#tableScoped(error);
    // A table already parked gets none of the stream's changes: a refusal naming it is not about them.
    return refused === null || this.#parked.has(keyOf(refused.table.destination)) ? null : refused;
  }

  /** A failure about one of the job's tables (PARKING_CODES, naming the table), or null. */
  #tableScoped(error: unknown): TableRefused | null {
    if (!(error instanceof FerryError) || !PARKING_CODES.has(error.code)) return null;
    const table = destinationTableOf(error);
    const info = table === null ? undefined : this.#tables.get(keyOf(table));
    return info === undefined ? null : new TableRefused(info, error);
  }

  /**
   * The part of the change the stream applies, or null. Changes of parked tables are held for
   * writeHeld(); a TRUNCATE naming parked and other tables is split.
   */
  route(change: RowChange): RowChange | null {
    if (this.#parked.size === 0) return change;
    if (change.op !== 'truncate') {
      if (!this.#parked.has(keyOf(change.table))) return change;
      this.#hold(change.table, change);
      return null;
    }
    const kept: QualifiedName[] = [];
    for (const table of change.tables) {
      if (this.#parked.has(keyOf(table))) this.#hold(table, { ...change, tables: [table] });
      else kept.push(table);
    }
    return kept.length === 0 ? null : { ...change, tables: kept };
  }

  #hold(table: QualifiedName, change: RowChange): void {
    const key = keyOf(table);
    const held = this.#held.get(key);
    if (held === undefined) this.#held.set(key, [change]);
    else held.push(change);
  }

  /** Held changes, in case the batch should write them before they pile up. */
  get heldCount(): number {
    let n = 0;
    for (const changes of this.#held.values()) n += changes.length;
    return n;
  }

  /** Writes the held changes into the open destination transaction, in order. */
  async writeHeld(applier: ChangeApplier): Promise<void> {
    for (const [key, changes] of this.#held) {
      const parked = this.#parked.get(key) as ParkedTable;
      const records = changes.map((change) => ({ seq: ++parked.lastSeq, payload: encodeRowChange(change) }));
      await applier.parkChanges(parked.info.destination, records);
      this.#uncommitted.set(key, (this.#uncommitted.get(key) ?? 0) + records.length);
    }
    this.#held = new Map();
  }

  /** The batch that wrote the held changes committed: counts them, warns or fails on maxParkedChanges. */
  async committed(): Promise<void> {
    if (this.#uncommitted.size === 0) return;
    for (const [key, n] of this.#uncommitted) {
      const parked = this.#parked.get(key);
      if (parked !== undefined) parked.count += n;
    }
    this.#uncommitted = new Map();
    await this.checkLimit(true);
    await this.#publish(false);
  }

  /**
   * Parks the table: recorded on the destination with the committed position, so that the
   * replay from that position writes its changes to the parked changes. No batch may be open.
   */
  async park(applier: ChangeApplier, refused: TableRefused, position: string): Promise<void> {
    const { table, error } = refused;
    const note: ParkedNote = { code: error.code, message: withAdvice(error), key: null, parkedTime: this.#deps.clock.now() };
    await applier.setParkedTable(table.destination, JSON.stringify(note));
    await applier.commit(position);
    this.#deps.logger.warn({ table: table.source, code: error.code }, 'table parked');
    await this.load(applier);
    // Its first drain waits a backoff: the replay parks the refused change meanwhile, so the drain has something to try.
    const parked = this.#parked.get(keyOf(table.destination));
    if (parked !== undefined) parked.dueAt = Date.now() + retryDelayMs(this.#deps.retryPolicy, 1);
    await this.#event('error', `Table ${table.source} parked: ${note.message} Its changes wait on the destination (_ferry.parked_changes); the other tables keep replicating.`, { code: 'TABLE_PARKED', table: table.source, errorCode: error.code });
    await this.#deps.onChange(this.jobError());
  }

  /** Milliseconds until the next drain is due, or null when nothing is parked. */
  msUntilDue(now = Date.now()): number | null {
    let soonest: number | null = null;
    for (const parked of this.#parked.values()) soonest = soonest === null ? parked.dueAt : Math.min(soonest, parked.dueAt);
    return soonest === null ? null : Math.max(0, soonest - now);
  }

  /** Drains every parked table whose backoff is due. No batch may be open; the position is committed unchanged. */
  async drainDue(applier: ChangeApplier, position: string): Promise<void> {
    const now = Date.now();
    for (const parked of [...this.#parked.values()]) {
      if (parked.dueAt <= now) await this.#drain(applier, parked, position);
    }
  }

  async #drain(applier: ChangeApplier, parked: ParkedTable, position: string): Promise<void> {
    const table = parked.info.destination;
    parked.lastRetryTime = this.#deps.clock.now();
    for (let turn = 0; turn < DRAIN_CHUNKS_PER_TURN; turn++) {
      const records = await applier.readParkedChanges(table, DRAIN_CHUNK);
      const changes = records.map((r) => decodeRowChange(r.payload));
      // Draining runs between batches: nothing is appended meanwhile, so a short chunk is the last one.
      const last = records.length < DRAIN_CHUNK;
      let applied = changes.length;
      let failure: TableRefused | null = null;
      try {
        await applier.apply(changes);
      } catch (error) {
        failure = this.#refusal(error, parked);
        await applier.rollback();
        // Which change fails: one by one (the transaction is lost with it, so the prefix is applied again after).
        for (applied = 0; applied < changes.length; applied++) {
          try {
            await applier.apply([changes[applied] as RowChange]);
          } catch (inner) {
            failure = this.#refusal(inner, parked);
            await applier.rollback();
            await applier.apply(changes.slice(0, applied));
            break;
          }
        }
        if (applied === changes.length) failure = null;
      }
      if (applied > 0) await applier.deleteParkedChanges(table, (records[applied - 1] as { seq: number }).seq);
      const rejoins = failure === null && last;
      if (rejoins) await applier.setParkedTable(table, null);
      if (applied > 0 || rejoins) await applier.commit(position);
      parked.count = Math.max(0, parked.count - applied);
      if (rejoins) {
        await this.#rejoin(parked);
        return;
      }
      if (failure !== null && applied < changes.length) {
        await this.#retryLater(applier, position, parked, failure.error, describeKey(changes[applied] as RowChange, parked.info.keyColumns));
        return;
      }
    }
    // Progress, and more to drain: due again at once, after the stream's turn.
    parked.attempts = 0;
    parked.dueAt = Date.now();
    await this.#publish(true);
  }

  /** The failure as a refusal of this table; anything else stops the stream as a whole. */
  #refusal(error: unknown, parked: ParkedTable): TableRefused {
    const refused = this.#tableScoped(error);
    if (refused === null) throw error;
    return new TableRefused(parked.info, refused.error);
  }

  async #retryLater(applier: ChangeApplier, position: string, parked: ParkedTable, error: FerryError, key: string): Promise<void> {
    parked.attempts++;
    parked.dueAt = Date.now() + retryDelayMs(this.#deps.retryPolicy, parked.attempts);
    const note: ParkedNote = { code: error.code, message: withAdvice(error), key, parkedTime: parked.note.parkedTime };
    const changed = note.message !== parked.note.message || note.key !== parked.note.key;
    parked.note = note;
    if (changed) {
      // The failing change's key survives a restart with the table's record.
      await applier.setParkedTable(parked.info.destination, JSON.stringify(note));
      await applier.commit(position);
    }
    await this.#publish(true);
    if (changed) await this.#deps.onChange(this.jobError());
  }

  async #rejoin(parked: ParkedTable): Promise<void> {
    this.#parked.delete(keyOf(parked.info.destination));
    this.#deps.logger.info({ table: parked.info.source }, 'parked table rejoined the stream');
    await this.#publish(true);
    await this.#event('errorCleared', `Table ${parked.info.source} rejoined the stream: its parked changes applied in order (the destination accepts them now).`, { code: 'TABLE_REJOINED', table: parked.info.source });
    await this.#deps.onChange(this.jobError());
  }

  /** All parked changes, committed. */
  total(): number {
    let n = 0;
    for (const parked of this.#parked.values()) n += parked.count;
    return n;
  }

  /**
   * Rejects (Failed, recoverable) beyond maxParkedChanges. With `warn` (while the stream parks
   * changes), the history first warns once the parked changes reach 80 % of it, so that the
   * warning precedes the failure even when one batch jumps past both.
   */
  async checkLimit(warn = false): Promise<void> {
    const limit = this.#job.maxParkedChanges ?? DEFAULT_MAX_PARKED_CHANGES;
    const total = this.total();
    const names = [...this.#parked.values()].map((p) => p.info.source).join(', ');
    if (warn && total >= limit * WARNING_SHARE && !this.#warned) {
      this.#warned = true;
      await this.#event('info', `Warning: ${total} changes are parked for ${names}, ${Math.round((total / limit) * 100)} % of this job's limit (maxParkedChanges ${limit}); beyond it the job is Failed. Fix the destination so that they apply, or raise the limit.`, {
        code: 'PARKED_CHANGES_WARNING', parkedChanges: total, maxParkedChanges: limit,
      });
    } else if (total < limit * WARNING_SHARE) {
      this.#warned = false;
    }
    if (total > limit) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `${total} changes are parked for ${names}, more than this job's limit (maxParkedChanges ${limit}). Fix the destination so that they apply (see each table's error), or raise the limit (ferry jobs update ${this.#job.id} --max-parked-changes N); Ferry keeps checking and resumes by itself, applying the parked changes first.`,
        { retryable: false, recoverable: true, details: { parkedChanges: total, maxParkedChanges: limit, tables: [...this.#parked.values()].map((p) => p.info.source) } },
      );
    }
  }

  /** The job's error while tables are parked: every table, its failing change and what to do; null when none is. */
  jobError(): FerryError | null {
    const parked = [...this.#parked.values()].sort((a, b) => a.note.parkedTime.localeCompare(b.note.parkedTime));
    const first = parked[0];
    if (first === undefined) return null;
    const lines = parked.map((p) => `${p.info.source}: ${p.note.message}${p.note.key === null ? '' : ` (first failing change: ${p.note.key})`}`);
    return new FerryError(
      first.note.code,
      `${parked.length === 1 ? 'Table' : `${parked.length} tables`} parked, the other tables keep replicating. ${lines.join(' ')} Ferry retries by itself and the table rejoins the stream once its oldest parked change applies.`,
      { retryable: true, details: { parkedTables: parked.map((p) => ({ table: p.info.source, code: p.note.code, key: p.note.key })) } },
    );
  }

  /** The error shown on a parked table's job object. */
  #objectError(parked: ParkedTable): JobError {
    const message = `${parked.note.message}${parked.note.key === null ? '' : ` First failing change: ${parked.note.key}.`}`;
    return toJobError(new FerryError(parked.note.code, message, { retryable: true }), parked.note.parkedTime);
  }

  /** Brings the job objects up to date (throttled unless `force`); a table no longer parked goes back to REPLICATING. */
  async #publish(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.#lastPublish < PUBLISH_INTERVAL_MS) return;
    this.#lastPublish = now;
    const time = this.#deps.clock.now();
    const bySource = new Map([...this.#parked.values()].map((p) => [p.info.source, p]));
    const updates: JobObject[] = [];
    for (const object of await this.#deps.store.listJobObjects(this.#job.id)) {
      const parked = bySource.get(object.name);
      if (parked !== undefined) {
        updates.push({
          ...object, state: 'ERROR', error: this.#objectError(parked), parkedChanges: parked.count,
          ...(parked.lastRetryTime === null ? {} : { lastRetryTime: parked.lastRetryTime }), updateTime: time,
        });
      } else if (object.state === 'ERROR') {
        const { parkedChanges: _count, lastRetryTime: _time, ...rest } = object;
        updates.push({ ...rest, state: 'REPLICATING', error: null, updateTime: time });
      }
    }
    if (updates.length > 0) await this.#deps.store.upsertJobObjects(updates);
  }

  async #event(kind: 'error' | 'errorCleared' | 'info', message: string, details: Record<string, unknown>): Promise<void> {
    await this.#deps.store.appendJobEvent({ jobId: this.#job.id, time: this.#deps.clock.now(), kind, actor: 'system', message, details });
  }
}

/** The destination's message with what to do, by kind of refusal. */
function withAdvice(error: FerryError): string {
  const advice: Partial<Record<ErrorCode, string>> = {
    DATA_ERROR: 'Widen the column or change its type on the destination so that the value fits.',
    CONSTRAINT_VIOLATION: 'Drop or relax the constraint on the destination (or remove the conflicting row there).',
    SCHEMA_ERROR: 'Make the destination table match the source\'s (columns and types).',
  };
  const tail = advice[error.code];
  return tail === undefined ? error.message : `${error.message} ${tail}`;
}

function parseNote(text: string, now: string): ParkedNote {
  try {
    const note = JSON.parse(text) as Partial<ParkedNote>;
    if (typeof note.code === 'string' && typeof note.message === 'string') {
      return { code: note.code, message: note.message, key: typeof note.key === 'string' ? note.key : null, parkedTime: typeof note.parkedTime === 'string' ? note.parkedTime : now };
    }
  } catch {
    // A note Ferry did not write: shown as it is.
  }
  return { code: 'INTERNAL', message: `The table is parked on the destination (${text.slice(0, 200)}).`, key: null, parkedTime: now };
}

/** The key of a change for messages: "id=42", or the first columns of a table without a key. */
export function describeKey(change: RowChange, keyColumns: string[]): string {
  if (change.op === 'truncate') return `TRUNCATE of ${change.tables.map(qualifiedName).join(', ')}`;
  const pairs = (columns: string[] | null, values: unknown[] | null): Array<[string, unknown]> =>
    columns === null || values === null ? [] : columns.map((c, i) => [c, values[i]]);
  const fresh = change.op === 'delete' ? [] : pairs(change.columns, change.values);
  const old = change.op === 'insert' ? [] : pairs(change.oldColumns, change.oldValues);
  const known = [...old, ...fresh];
  const chosen = keyColumns.length > 0
    ? keyColumns.map((c): [string, unknown] => [c, known.find(([name]) => name === c)?.[1]])
    : (old.length > 0 ? old : fresh).slice(0, 3);
  const shown = chosen.map(([c, v]) => `${c}=${typeof v === 'string' ? (v.length > 60 ? `${v.slice(0, 60)}...` : v) : v === null ? 'NULL' : '?'}`);
  return `${change.op} ${shown.join(', ')}`;
}
