/**
 * What both destination engines share of the job fence (docs/ARCHITECTURE.md, Fencing): the
 * LEASE_LOST of a check or raise that finds another epoch than the writer's, and how a raise
 * ends the transactions of older epochs stuck while they hold the fence row's share lock.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { FerryError } from '../core/errors.js';
import type { DestinationFence } from './engine.js';

/** LEASE_LOST for a writer of `fence` that found `found` (null: no fence row) on the destination. */
export function fenceLost(fence: DestinationFence, found: number | null, what: string): FerryError {
  const holder = found === null
    ? 'the job no longer has a fence there (it was completed, promoted or removed)'
    : `the fence holds epoch ${found}: another node took the job over`;
  return new FerryError(
    'LEASE_LOST',
    `${what} was rolled back: this node holds epoch ${fence.epoch} of the job's lease and ${holder}. This node stops working on the job and writes nothing more; the node that holds the lease continues it.`,
    { retryable: false, recoverable: false, details: { fenceKey: fence.key, epoch: fence.epoch, fenceEpoch: found } },
  );
}

/**
 * How long a raise waits for the transactions of older epochs that hold the fence row's share
 * lock before it ends them: a check is followed at once by the position write and the COMMIT, so
 * a holder past this is stuck (its node paused or cut off, its session open until TCP gives up).
 * Ending such a transaction rolls it back, which is always safe: its epoch is over.
 */
export const FENCE_HOLDER_GRACE_MS = 2_000;
const FENCE_HOLDER_POLL_MS = 1_000;

/**
 * While a raise waits: after FENCE_HOLDER_GRACE_MS, and then every second, `endHolders()` ends
 * the sessions that keep it waiting on the fence row (engine SQL, on a session of its own, which
 * `release()` closes). A failure (no right to end other sessions) stops the watch: the raise then
 * waits for them as it would anyway. Returns the function that stops the watch.
 */
export function endStuckFenceHolders(endHolders: () => Promise<void>, release: () => Promise<void>): () => Promise<void> {
  const stop = new AbortController();
  const watching = (async () => {
    try {
      await delay(FENCE_HOLDER_GRACE_MS, undefined, { signal: stop.signal });
      for (;;) {
        await endHolders();
        await delay(FENCE_HOLDER_POLL_MS, undefined, { signal: stop.signal });
      }
    } catch {
      // Stopped (the raise returned), or not allowed: the raise itself reports what matters.
    }
  })();
  return async () => {
    stop.abort();
    await watching;
    await release().catch(() => undefined);
  };
}
