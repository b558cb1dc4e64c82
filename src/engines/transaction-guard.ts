/**
 * The transaction discipline every change applier (ChangeApplier) keeps on its one destination
 * session, shared by the engines:
 * - one call at a time (a second call while one runs is refused, not interleaved);
 * - a batch is one destination transaction, opened by the first statement that needs it (with
 *   `lazyBegin`, its BEGIN goes in the same round trip as that statement: takeBegin());
 * - a statement that fails abandons the batch (rolled back) and every later apply or commit is
 *   refused until rollback(), so that nothing is ever committed as if the batch were whole;
 * - a failed rollback, or a closed applier, refuses every later call;
 * - a fenced applier (TransactionSession.checkFence) checks the job's fence in every transaction
 *   that commits a position, under a share lock held until the COMMIT.
 * The engine supplies its statements (BEGIN, COMMIT, ROLLBACK) and its error classifier.
 */
import { FerryError } from '../core/errors.js';

export interface TransactionSession {
  begin(): Promise<unknown>;
  commit(): Promise<unknown>;
  rollback(): Promise<unknown>;
  /** The engine's classification of a driver error. */
  classify(error: unknown): FerryError;
  /**
   * A fenced applier's check (throws LEASE_LOST when the fence holds another epoch), run inside
   * the transaction that commits a position, before the position write and the COMMIT. With it,
   * a position written outside any batch gets a transaction of its own, so that no position is
   * ever committed unchecked.
   */
  checkFence?(): Promise<void>;
}

export class TransactionGuard {
  #inTransaction = false;
  /** The open transaction's BEGIN is not sent yet: the engine sends it with its next statement (takeBegin). */
  #beginPending = false;
  /** Set when a statement of the open transaction failed: apply and commit refuse until rollback(). */
  #failure: FerryError | null = null;
  /** Set when the connection can no longer be trusted: every later call refuses. */
  #broken: FerryError | null = null;
  #busy = false;
  #closed = false;

  constructor(private readonly session: TransactionSession) {}

  get inTransaction(): boolean {
    return this.#inTransaction;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs one call: refuses when closed, broken or already busy, and classifies what it throws. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new FerryError('FAILED_PRECONDITION', 'This change applier is closed; open a new one.');
    if (this.#broken !== null) throw this.#broken;
    if (this.#busy) throw new FerryError('FAILED_PRECONDITION', 'This change applier is already running a call; wait for it before the next one.');
    this.#busy = true;
    try {
      return await call();
    } catch (error) {
      throw this.session.classify(error);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * True once per transaction opened with a lazy BEGIN that is not sent yet: the caller sends
   * the BEGIN in front of the statement it is about to send.
   */
  takeBegin(): boolean {
    const pending = this.#beginPending;
    this.#beginPending = false;
    return pending;
  }

  /** Refuses when a statement of the open batch failed. */
  refuseAfterFailure(what: string): void {
    if (this.#failure !== null) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `Cannot ${what}: a statement of this batch failed (${this.#failure.message}), so the batch was abandoned. Call rollback(), then apply the changes again from the last committed position.`,
        { cause: this.#failure },
      );
    }
  }

  /**
   * Runs statements inside the open transaction (opening one); a failure abandons the batch.
   * With `lazyBegin`, a transaction opened here is open for the guard without its BEGIN: every
   * statement the engine then sends must carry the BEGIN when takeBegin() says so (one round trip
   * less per batch). Without it, a BEGIN still pending is sent first.
   */
  async inBatch(what: string, statements: () => Promise<void>, lazyBegin = false): Promise<void> {
    await this.run(async () => {
      this.refuseAfterFailure(what);
      if (!this.#inTransaction) {
        if (lazyBegin) this.#beginPending = true;
        else await this.session.begin();
        this.#inTransaction = true;
      } else if (!lazyBegin && this.#beginPending) {
        this.#beginPending = false;
        await this.session.begin();
      }
      try {
        await statements();
      } catch (error) {
        const classified = this.session.classify(error);
        await this.#abandon();
        this.#failure = classified;
        throw classified;
      }
    });
  }

  /**
   * Ends the batch: `writePosition` writes the position (inside the open transaction, or alone
   * when no batch is open), then the transaction commits; `writePosition` resolves true when it
   * sent the COMMIT itself (in the position write's round trip). `classify` may give a failure
   * of its own meaning (a position table that vanished). A failed commit abandons the batch.
   */
  async commit(
    position: string,
    writePosition: (hadBatch: boolean) => Promise<boolean | void>,
    classify: (error: unknown) => FerryError = (e) => this.session.classify(e),
  ): Promise<void> {
    await this.run(async () => {
      this.refuseAfterFailure('commit');
      if (position === '') throw new FerryError('INVALID_ARGUMENT', 'commit() needs the source position the batch reaches; got an empty string.');
      const hadBatch = this.#inTransaction;
      try {
        if (!hadBatch && this.session.checkFence !== undefined) {
          await this.session.begin();
          this.#inTransaction = true;
        } else if (this.#beginPending && this.session.checkFence !== undefined) {
          this.#beginPending = false;
          await this.session.begin();
        }
        // The fence's share lock, once taken, is held until the COMMIT below.
        await this.session.checkFence?.();
        const committed = await writePosition(hadBatch);
        if (this.#inTransaction) {
          this.#inTransaction = false;
          // A BEGIN writePosition did not take: nothing was sent in this transaction but its position, in autocommit.
          if (this.#beginPending) this.#beginPending = false;
          else if (committed !== true) await this.session.commit();
        }
      } catch (error) {
        const classified = classify(error);
        if (this.#inTransaction) await this.#abandon();
        // The batch is gone with its transaction (or its fate is unknown): refuse to go on as if it were applied.
        if (hadBatch) this.#failure = classified;
        throw classified;
      }
    });
  }

  /** Abandons the open batch, if any, and clears its failure. */
  async rollback(): Promise<void> {
    await this.run(async () => {
      this.#failure = null;
      if (!this.#inTransaction) return;
      this.#inTransaction = false;
      // Nothing was sent in it.
      if (this.takeBegin()) return;
      try {
        await this.session.rollback();
      } catch (error) {
        this.#broken = this.session.classify(error);
        throw this.#broken;
      }
    });
  }

  /**
   * Runs `statements` in a transaction of their own, outside any batch (none may be open),
   * committed at the end; `classify` names a failure.
   */
  async standalone(what: string, statements: () => Promise<void>, classify: (error: unknown) => FerryError): Promise<void> {
    this.refuseOpenBatch(what);
    await this.session.begin();
    this.#inTransaction = true;
    try {
      await statements();
      this.#inTransaction = false;
      await this.session.commit();
    } catch (error) {
      const classified = classify(error);
      if (this.#inTransaction) await this.#abandon();
      throw classified;
    }
  }

  /** Refuses while a batch is open (for work that must not join it). */
  refuseOpenBatch(what: string): void {
    if (this.#inTransaction) throw new FerryError('FAILED_PRECONDITION', `Cannot ${what} while a batch is open; commit or roll it back first.`);
  }

  /** Marks the applier closed (ending the session abandons any open transaction); false when it already was. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#inTransaction = false;
    this.#beginPending = false;
    return true;
  }

  /** Rolls back after a failure, keeping the failure; a failed rollback marks the connection broken. */
  async #abandon(): Promise<void> {
    this.#inTransaction = false;
    if (this.takeBegin()) return;
    try {
      await this.session.rollback();
    } catch (error) {
      this.#broken = this.session.classify(error);
    }
  }
}
