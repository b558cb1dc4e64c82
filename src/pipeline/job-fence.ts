/**
 * What a job's runner knows of its lease (issue 10: several nodes on one PostgreSQL store).
 *
 * A node runs a job only under a lease it holds in the metadata store (`job_leases`). Every
 * acquisition of a job's lease gives a new, higher `epoch`. The epoch is the fencing token:
 * - on the destination, every transaction that records a position or finishes a table copy
 *   checks, under a share lock on the job's fence row (`_ferry.job_fence`), that the fence still
 *   holds this epoch; a new owner raises the fence (an update, which waits for those share locks)
 *   before it reads where to resume, so a stale node's transaction either committed before the
 *   raise (and the new owner sees it) or fails its check (and commits nothing);
 * - in the metadata store, a runner writes only while `valid()` says its lease has not expired by
 *   the node's own monotonic clock (measured from the start of the last successful renewal, so
 *   it expires no later than the store's record of it).
 *
 * A runner without a fence (the SQLite store: one node per data directory) writes as before.
 */
export interface JobFence {
  /** The node that holds the lease. */
  readonly nodeId: string;
  /** The lease's epoch: higher for every acquisition of this job's lease. */
  readonly epoch: number;
  /** False once the lease may have expired (by this node's monotonic clock) or was lost. */
  valid(): boolean;
  /** Aborted when the node learns it lost the lease (a failed renewal, expiry, drain). */
  readonly lost: AbortSignal;
}
