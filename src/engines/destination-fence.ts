/**
 * What both destination engines say when a fence check or raise finds another epoch than the
 * writer's (docs/ARCHITECTURE.md, Fencing): the writer's node no longer holds the job's lease.
 */
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
