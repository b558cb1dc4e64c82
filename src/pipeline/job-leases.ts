/**
 * The job leases this node holds (issue 10: several nodes on one metadata store). A node runs a
 * job only under its lease (`job_leases`): it acquires it (a compare-and-set in the store, epoch
 * + 1), renews every lease it holds every L/3, and gives it up when the job needs no worker any
 * more or the node drains. docs/ARCHITECTURE.md ("Leases") has the protocol.
 *
 * Two clocks: the store decides expiry by its own clock (another node may take a lease once the
 * store's now() passes its expire_time); the holder trusts its lease only until its own
 * monotonic deadline, the start of its last successful renewal request + L, which comes no later
 * than the store's expiry. A lease not renewed (another node took it) or past its local deadline
 * is lost: its JobFence's `lost` signal aborts and `onLost` tells the supervisor to cancel the
 * runner, which then writes nothing more for the job.
 */
import { performance } from 'node:perf_hooks';
import type { MetadataStore, StoredNode } from '../store/metadata-store.js';
import type { JobFence } from './job-fence.js';
import type { Logger } from './logger.js';

/** --lease-seconds default: a lease lasts this long from its last renewal. */
export const DEFAULT_LEASE_SECONDS = 15;

export interface LeaseSettings {
  /** This node's id (--node-id). */
  nodeId: string;
  /** How long a lease lasts from its last renewal (--lease-seconds), in ms. */
  leaseMs: number;
  /** --max-jobs: at most this many jobs on this node; null: no limit. */
  maxJobs: number | null;
  /**
   * True on a PostgreSQL store: runners get their lease as a JobFence (destination fencing).
   * False on the SQLite store: one node per data directory (its pid file guards it), so no
   * stale node can exist and runners write as before.
   */
  fenced: boolean;
  /**
   * True on the SQLite store: this node is the only one, so at start it frees the leases that
   * name another node id (the same data directory served on another port before).
   */
  soleNode: boolean;
}

/** How often the holder renews its leases: L/3, so two renewals can fail before the lease expires. */
export function renewIntervalMs(leaseMs: number): number {
  return Math.max(50, Math.floor(leaseMs / 3));
}

/** How often a node looks for jobs without a live lease: min(L/3, 5 s). Takeover comes within about L + this. */
export function leaseSweepIntervalMs(leaseMs: number): number {
  return Math.min(renewIntervalMs(leaseMs), 5_000);
}

/** One lease this node holds: the JobFence its runner works under. */
export class HeldLease implements JobFence {
  readonly #controller = new AbortController();
  /** performance.now() after which the lease is no longer trusted. */
  #deadline: number;

  constructor(
    readonly jobId: string,
    readonly nodeId: string,
    readonly epoch: number,
    deadline: number,
  ) {
    this.#deadline = deadline;
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  valid(): boolean {
    return !this.#controller.signal.aborted && performance.now() < this.#deadline;
  }

  /** A renewal that started at `startedAt` (monotonic) went through. */
  renewed(startedAt: number, leaseMs: number): void {
    this.#deadline = Math.max(this.#deadline, startedAt + leaseMs);
  }

  /** Past the local deadline (and not renewed since). */
  expired(): boolean {
    return performance.now() >= this.#deadline;
  }

  abandon(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new Error(reason));
  }
}

export class JobLeaseKeeper {
  readonly #held = new Map<string, HeldLease>();
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<void> | null = null;

  constructor(
    private readonly store: MetadataStore,
    private readonly logger: Logger,
    readonly settings: LeaseSettings,
    /** Called once for a lease this node lost (not for one it released): cancel the job's runner, without writing. */
    private readonly onLost: (jobId: string) => void,
  ) {}

  /** Starts renewing (every L/3). On a sole node, first frees the leases of other node ids. */
  async start(): Promise<void> {
    if (this.settings.soleNode) {
      for (const lease of await this.store.listJobLeases()) {
        if (lease.nodeId !== null && lease.nodeId !== this.settings.nodeId) await this.store.releaseJobLease(lease.jobId, lease.nodeId, lease.epoch);
      }
    }
    this.#timer = setInterval(() => this.#tick(), renewIntervalMs(this.settings.leaseMs));
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#renewing;
  }

  get heldCount(): number {
    return this.#held.size;
  }

  heldJobIds(): string[] {
    return [...this.#held.keys()];
  }

  /** The lease on the job while this node holds it (and has not lost it). */
  lease(jobId: string): HeldLease | undefined {
    return this.#held.get(jobId);
  }

  /** Takes the job's lease; null when another node holds it. */
  async acquire(jobId: string): Promise<HeldLease | null> {
    // The local deadline counts from before the request: the store's expiry is later.
    const startedAt = performance.now();
    const stored = await this.store.acquireJobLease(jobId, this.settings.nodeId, this.settings.leaseMs);
    if (stored === null) return null;
    const lease = new HeldLease(jobId, this.settings.nodeId, stored.epoch, startedAt + this.settings.leaseMs);
    this.#held.get(jobId)?.abandon('this node took the lease again with a new epoch');
    this.#held.set(jobId, lease);
    return lease;
  }

  /** Gives the lease up in the store, for another node to take at once. Call once the runner stopped. */
  async release(jobId: string): Promise<void> {
    const lease = this.#held.get(jobId);
    if (lease === undefined) return;
    this.#held.delete(jobId);
    lease.abandon('this node released the lease');
    await this.store.releaseJobLease(jobId, lease.nodeId, lease.epoch);
  }

  /** Drops the lease without a store write (the job was deleted: its lease row went with it). */
  forget(jobId: string): void {
    this.#held.get(jobId)?.abandon('the job was deleted');
    this.#held.delete(jobId);
  }

  #tick(): void {
    for (const lease of [...this.#held.values()]) {
      if (lease.expired()) this.#lose(lease, `its lease (epoch ${lease.epoch}) was not renewed within ${this.settings.leaseMs} ms by this node's clock`);
    }
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = null;
    });
  }

  async #renew(): Promise<void> {
    const leases = [...this.#held.values()];
    if (leases.length === 0) return;
    const startedAt = performance.now();
    let renewed: Set<string>;
    try {
      renewed = new Set(await this.store.renewJobLeases(this.settings.nodeId, leases.map((l) => ({ jobId: l.jobId, epoch: l.epoch })), this.settings.leaseMs));
    } catch (error) {
      // The local deadlines decide: a store that stays unreachable past them loses the leases at a later tick.
      this.logger.warn({ err: String(error), nodeId: this.settings.nodeId, jobs: leases.length }, 'could not renew the job leases of this node; retrying');
      return;
    }
    for (const lease of leases) {
      // Released or lost while the renewal was on its way.
      if (this.#held.get(lease.jobId) !== lease || lease.lost.aborted) continue;
      if (renewed.has(lease.jobId)) lease.renewed(startedAt, this.settings.leaseMs);
      else this.#lose(lease, `the store no longer has this node holding its lease (epoch ${lease.epoch}): another node took the job over`);
    }
  }

  #lose(lease: HeldLease, reason: string): void {
    if (this.#held.get(lease.jobId) !== lease) return;
    this.#held.delete(lease.jobId);
    lease.abandon(reason);
    this.logger.warn({ jobId: lease.jobId, nodeId: this.settings.nodeId, epoch: lease.epoch, reason }, 'lost the lease of a job: its runner stops and writes nothing more');
    this.onLost(lease.jobId);
  }
}

/** How often a node renews its heartbeat: every 5 s, or L/3 when leases are shorter. */
export function nodeHeartbeatIntervalMs(leaseMs: number): number {
  return Math.min(5_000, renewIntervalMs(leaseMs));
}

/** A running node whose heartbeat is older than this is LOST (three missed heartbeats, about one lease). */
export function nodeLostAfterMs(leaseMs: number): number {
  return 3 * nodeHeartbeatIntervalMs(leaseMs);
}

export const NODE_STATES = ['UP', 'LOST', 'STOPPED', 'DRAINING', 'DRAINED'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/**
 * The node's state at `now`, given how many jobs it holds the live lease of: what `GET /v1/nodes`
 * shows and which nodes the supervisor counts as able to take a job (UP).
 */
export function nodeState(node: StoredNode, now: string, heldJobs: number, lostAfterMs = nodeLostAfterMs(DEFAULT_LEASE_SECONDS * 1000)): NodeState {
  if (node.stopTime !== null) return 'STOPPED';
  if (Date.parse(now) - Date.parse(node.heartbeatTime) > lostAfterMs) return 'LOST';
  if (node.drainTime !== null) return heldJobs > 0 ? 'DRAINING' : 'DRAINED';
  return 'UP';
}
