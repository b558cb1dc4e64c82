/**
 * Live numbers of a job's incremental load: positions, lag, apply rate, per-table change
 * counts. Kept in memory by the runner; the API and /metrics read snapshots of it.
 */

export interface ReplicationSnapshot {
  /** The source position of the last committed destination batch. */
  appliedPosition: string | null;
  /** The source's current position when last asked. */
  sourcePosition: string | null;
  /** sourcePosition - appliedPosition in bytes of log, or null when unknown. */
  lagBytes: number | null;
  /** How old the oldest change received but not yet applied is; 0 when none is waiting. */
  lagSeconds: number;
  /**
   * Changes written to the destination per second over the last 10 seconds, counting those
   * sent into the open destination transaction (a transaction of a million rows is applied in
   * chunks long before it commits, and the rate must not read 0 meanwhile).
   */
  appliedChangesPerSecond: number;
  changesApplied: number;
  transactionsApplied: number;
  /** Source commit time of the last applied transaction. */
  lastAppliedCommitTime: string | null;
  /** Changes applied per table ("schema.table") since the process started the job. */
  tableChanges: Record<string, number>;
  updateTime: string;
}

const RATE_WINDOW_MS = 10_000;

/** What survives a restart of the server: the counts (JSON, a job checkpoint). */
export interface ReplicationCounters {
  changesApplied: number;
  transactionsApplied: number;
  lastAppliedCommitTime: string | null;
  tableChanges: Record<string, number>;
}

/** The destination session changes were applied on: the main one, or the one of a transaction streamed before its commit. */
export type ApplySession = 'main' | 'streamed';

export class ReplicationStats {
  appliedPosition: string | null = null;
  sourcePosition: string | null = null;
  lagBytes: number | null = null;
  changesApplied = 0;
  transactionsApplied = 0;
  lastAppliedCommitTime: string | null = null;
  readonly tableChanges = new Map<string, number>();
  /** Commit time (ms) of the oldest transaction received and not yet committed on the destination. */
  oldestPendingCommitMs: number | null = null;
  /** When the counters were last written to the store (ms since epoch; 0: never). */
  countersSavedAt = 0;
  /** Changes sent into the open destination transaction of each session ('main', 'streamed'), not committed yet. */
  #inFlight = { main: 0, streamed: 0 };
  #samples: Array<{ at: number; changes: number }> = [];

  counters(): ReplicationCounters {
    return {
      changesApplied: this.changesApplied,
      transactionsApplied: this.transactionsApplied,
      lastAppliedCommitTime: this.lastAppliedCommitTime,
      tableChanges: Object.fromEntries(this.tableChanges),
    };
  }

  /** Forgets everything (Restart starts the job over). */
  reset(): void {
    this.appliedPosition = null;
    this.sourcePosition = null;
    this.lagBytes = null;
    this.oldestPendingCommitMs = null;
    this.restore({ changesApplied: 0, transactionsApplied: 0, lastAppliedCommitTime: null, tableChanges: {} });
  }

  /** Takes the counts back after a restart (the rate starts again from them). */
  restore(saved: ReplicationCounters): void {
    this.changesApplied = saved.changesApplied;
    this.transactionsApplied = saved.transactionsApplied;
    this.lastAppliedCommitTime = saved.lastAppliedCommitTime;
    this.tableChanges.clear();
    for (const [table, count] of Object.entries(saved.tableChanges)) this.tableChanges.set(table, count);
    this.#inFlight = { main: 0, streamed: 0 };
    this.#samples = [];
  }

  /** Records a committed destination batch (`session`: the one it was applied on; what the other holds stays in flight). */
  recordBatch(position: string, changes: number, transactions: number, lastCommitTime: string | null, perTable: Map<string, number>, now = Date.now(), session: ApplySession = 'main'): void {
    this.appliedPosition = position;
    this.changesApplied += changes;
    this.transactionsApplied += transactions;
    if (lastCommitTime !== null) this.lastAppliedCommitTime = lastCommitTime;
    for (const [table, count] of perTable) this.tableChanges.set(table, (this.tableChanges.get(table) ?? 0) + count);
    this.oldestPendingCommitMs = null;
    this.#inFlight[session] = 0;
    this.#sample(now);
  }

  /** Records changes sent into the open destination transaction (they count in the rate now, in the counters at commit). */
  recordSent(changes: number, now = Date.now(), session: ApplySession = 'main'): void {
    this.#inFlight[session] += changes;
    this.#sample(now);
  }

  /** The open destination transaction (of `session`, else of both) was rolled back: what it held is not applied. */
  discardInFlight(session?: ApplySession): void {
    if (session === undefined) this.#inFlight = { main: 0, streamed: 0 };
    else this.#inFlight[session] = 0;
    this.#samples = [];
  }

  #sample(now: number): void {
    this.#samples.push({ at: now, changes: this.changesApplied + this.#inFlight.main + this.#inFlight.streamed });
    while (this.#samples.length > 2 && (this.#samples[0] as { at: number }).at < now - RATE_WINDOW_MS) this.#samples.shift();
  }

  snapshot(now = Date.now()): ReplicationSnapshot {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    let rate = 0;
    if (first !== undefined && last !== undefined && now - last.at < RATE_WINDOW_MS) {
      const span = Math.max(1000, now - first.at);
      rate = Math.max(0, ((last.changes - first.changes) * 1000) / span);
    }
    return {
      appliedPosition: this.appliedPosition,
      sourcePosition: this.sourcePosition,
      lagBytes: this.lagBytes,
      lagSeconds: this.oldestPendingCommitMs === null ? 0 : Math.max(0, (now - this.oldestPendingCommitMs) / 1000),
      appliedChangesPerSecond: Math.round(rate * 10) / 10,
      changesApplied: this.changesApplied,
      transactionsApplied: this.transactionsApplied,
      lastAppliedCommitTime: this.lastAppliedCommitTime,
      tableChanges: Object.fromEntries(this.tableChanges),
      updateTime: new Date(now).toISOString(),
    };
  }
}
