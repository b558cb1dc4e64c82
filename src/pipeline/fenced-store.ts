/**
 * The metadata store as a fenced runner sees it (docs/ARCHITECTURE.md, Fencing): every write
 * about a job is refused with LEASE_LOST once the runner's lease may have expired by this node's
 * monotonic clock (JobFence.valid()), before it reaches the store. Reads, and writes that are
 * not about one job, pass through.
 */
import { FerryError } from '../core/errors.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { JobFence } from './job-fence.js';

/** The store methods that write a job's state, objects, history or checkpoints. */
const JOB_WRITES: ReadonlySet<string> = new Set<keyof MetadataStore>([
  'insertJob', 'updateJob', 'deleteJob', 'upsertJobObjects', 'deleteJobObjects', 'appendJobEvent', 'putCheckpoint', 'deleteCheckpoints',
]);

/** LEASE_LOST for a store write of a runner whose lease is no longer valid. */
export function leaseLostError(jobId: string, fence: JobFence): FerryError {
  return new FerryError(
    'LEASE_LOST',
    `Node ${fence.nodeId} no longer holds the lease of job ${jobId} (epoch ${fence.epoch}): its lease may have expired or was given up, so another node may run the job. This node stops working on the job and writes nothing more.`,
    { retryable: false, recoverable: false, details: { jobId, nodeId: fence.nodeId, epoch: fence.epoch } },
  );
}

/** `store`, with its job writes refused (LEASE_LOST) while `fence.valid()` is false. */
export function fencedStore(store: MetadataStore, jobId: string, fence: JobFence): MetadataStore {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property !== 'string' || !JOB_WRITES.has(property)) return method.bind(target);
      return (...args: unknown[]) => (fence.valid() ? method.apply(target, args) : Promise.reject(leaseLostError(jobId, fence)));
    },
  });
}
