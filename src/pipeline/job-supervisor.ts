/**
 * Keeps one runner per job that needs a worker (see needsWorker), in this process. On start
 * it picks up every job that was running when the process stopped, so a killed server
 * resumes its jobs from their checkpoints. A periodic sweep catches anything missed.
 *
 * With leases (every `ferry serve`; issue 10), a runner runs only under the job's lease, held
 * by this node's JobLeaseKeeper: the sweep (every min(L/3, 5 s)) acquires the leases of jobs
 * that need a worker and have no live lease, when this node is among the least loaded nodes,
 * not draining and below --max-jobs; a lost lease cancels the runner; a runner that ends gives
 * its lease back. Actions taken on another node reach the runner here through the store: every
 * second this node reads the status of the jobs it runs and interrupts a runner whose job
 * changed under it (or cancels it when the job is gone). A draining node cancels its runners
 * and releases their leases, so that other nodes take the jobs at once.
 */
import { needsWorker } from '../core/lifecycle.js';
import type { MigrationJob } from '../core/migration-job.js';
import type { MetadataStore, StoredJobLease, StoredNode } from '../store/metadata-store.js';
import { JobLeaseKeeper, leaseSweepIntervalMs, nodeLostAfterMs, nodeState, type HeldLease, type LeaseSettings } from './job-leases.js';
import { JobRunner, type JobRunnerDeps } from './job-runner.js';
import { ReplicationStats, type ReplicationSnapshot } from './replication-stats.js';

/** How often the node reads the status of the jobs it runs (actions taken on other nodes). */
const STATUS_POLL_MS = 1_000;

/** What a user action changes on a job row (the runner re-reads the job when either moves), and when the row was written. */
interface SeenJob {
  key: string;
  updateTime: string;
}

function seenOf(job: MigrationJob): SeenJob {
  return { key: `${job.status}|${job.promoteRequested}`, updateTime: job.updateTime };
}

export class JobSupervisor {
  readonly #deps: JobRunnerDeps;
  readonly #runners = new Map<string, JobRunner>();
  /** Live numbers per job, kept across the runners of one job (Stop then Resume keeps the counts). */
  readonly #stats = new Map<string, ReplicationStats>();
  #leases: JobLeaseKeeper | null = null;
  /** Per job this node runs: the status and promote flag it last saw or wrote itself. */
  readonly #seen = new Map<string, SeenJob>();
  /** Jobs whose lease this node is acquiring now (a sweep and a wake at once try once). */
  readonly #claiming = new Set<string>();
  /** Jobs without a live lease, since when this node saw them so (ms since epoch): the balance rule yields after a while. */
  readonly #waiting = new Map<string, number>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #polling = false;
  #sweeping = false;
  #draining = false;
  #closed = false;
  #takeovers = 0;

  constructor(deps: JobRunnerDeps, private sweepIntervalMs = 5_000) {
    // The runners' own updates of their job are remembered, so that the status poll tells them apart from user actions.
    this.#deps = { ...deps, store: this.#remembering(deps.store) };
  }

  /**
   * Resumes every job that needs a worker and starts the periodic sweep. With `leases` (every
   * `ferry serve`), runners run only under their job's lease, and the sweep runs every min(L/3, 5 s).
   */
  async start(leases?: LeaseSettings): Promise<void> {
    if (leases !== undefined) {
      this.#leases = new JobLeaseKeeper(this.#deps.store, this.#deps.logger, leases, (jobId) => this.#onLeaseLost(jobId));
      this.sweepIntervalMs = Math.min(this.sweepIntervalMs, leaseSweepIntervalMs(leases.leaseMs));
      await this.#leases.start();
    }
    await this.sweep();
    this.#sweepTimer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.#deps.logger.error({ err: String(error) }, 'job sweep failed'));
    }, this.sweepIntervalMs);
    this.#sweepTimer.unref();
    if (this.#leases !== null) {
      this.#pollTimer = setInterval(() => void this.#pollStatuses(), STATUS_POLL_MS);
      this.#pollTimer.unref();
    }
  }

  async sweep(): Promise<void> {
    // One sweep at a time: on a slow store the timer must not pile them up.
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      await this.#sweepOnce();
    } finally {
      this.#sweeping = false;
    }
  }

  async #sweepOnce(): Promise<void> {
    const candidates: MigrationJob[] = [];
    let pageToken: string | null = null;
    do {
      const page: { items: MigrationJob[]; nextPageToken: string | null } = await this.#deps.store.listJobs({ pageSize: 500, pageToken });
      for (const job of page.items) {
        if (!this.#runners.has(job.id) && needsWorker(job.status, job.error?.recoverable === true)) candidates.push(job);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== null);
    if (this.#leases === null) {
      for (const job of candidates) this.wake(job.id);
      return;
    }
    const [leases, nodes] = await Promise.all([this.#deps.store.listJobLeases(), this.#deps.store.listNodes()]);
    const self = nodes.find((node) => node.id === this.#leases?.settings.nodeId);
    const draining = self !== undefined && self.drainTime !== null;
    if (draining !== this.#draining) {
      this.#draining = draining;
      this.#deps.logger.info({ nodeId: self?.id }, draining ? 'this node drains: its jobs move to other nodes' : 'this node takes jobs again');
    }
    if (draining) {
      await this.#letGoOfEveryJob();
      return;
    }
    const byJob = new Map(leases.map((lease) => [lease.jobId, lease]));
    const candidateIds = new Set(candidates.map((job) => job.id));
    for (const id of this.#waiting.keys()) if (!candidateIds.has(id)) this.#waiting.delete(id);
    for (const job of candidates) {
      if (this.#closed || this.#draining) return;
      await this.#claim(job, byJob.get(job.id), leases, nodes);
    }
  }

  /** The job's status changed: its runner re-reads it, or a runner starts (under the job's lease, when this node gets it). */
  wake(jobId: string): void {
    if (this.#closed) return;
    const existing = this.#runners.get(jobId);
    if (existing !== undefined) {
      // Acted on here: the status poll need not interrupt it again.
      this.#seen.delete(jobId);
      existing.interrupt();
      return;
    }
    if (this.#leases === null) {
      this.#startRunner(jobId, undefined);
      return;
    }
    void this.#claimNow(jobId).catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'could not take the lease of a job'));
  }

  /**
   * Stops working on the job, leaving its status as it is; resolves when the runner has let
   * go. With leases, the job is let go on every node: the lease is released here, or taken
   * from the node that holds it (which loses it at its next renewal and stops its runner), so
   * that nobody resumes the job while it is deleted.
   */
  async cancel(jobId: string): Promise<void> {
    const runner = this.#runners.get(jobId);
    this.#stats.delete(jobId);
    if (runner !== undefined) {
      this.#runners.delete(jobId);
      await runner.cancel();
    }
    if (this.#leases === null) return;
    if (this.#leases.lease(jobId) !== undefined) {
      await this.#leases.release(jobId);
      return;
    }
    await this.#takeFromHolder(jobId);
  }

  /** The live replication numbers of a job this process runs, or null. */
  replicationStats(jobId: string): ReplicationSnapshot | null {
    const runner = this.#runners.get(jobId);
    return runner === undefined || runner.stats.appliedPosition === null ? null : runner.stats.snapshot();
  }

  isRunning(jobId: string): boolean {
    return this.#runners.has(jobId);
  }

  /** Jobs this node took over from another node since it started (`ferry_job_takeovers_total`). */
  get takeovers(): number {
    return this.#takeovers;
  }

  /** Lets go of every job (their statuses stay, so the next start resumes them; their leases are released for other nodes). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
    if (this.#pollTimer !== null) clearInterval(this.#pollTimer);
    const runners = [...this.#runners.entries()];
    this.#runners.clear();
    await Promise.allSettled(runners.map(([, runner]) => runner.cancel()));
    if (this.#leases !== null) {
      await this.#leases.stop();
      await Promise.allSettled(this.#leases.heldJobIds().map((jobId) => this.#leases!.release(jobId)));
    }
  }

  #startRunner(jobId: string, lease: HeldLease | undefined): void {
    let stats = this.#stats.get(jobId);
    if (stats === undefined) {
      stats = new ReplicationStats();
      this.#stats.set(jobId, stats);
    }
    // On the SQLite store the lease guards nothing a runner writes: it runs without a fence.
    const fence = lease !== undefined && this.#leases?.settings.fenced === true ? lease : undefined;
    const runner = new JobRunner(jobId, this.#deps, stats, fence);
    this.#runners.set(jobId, runner);
    void runner.done
      .catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'job runner crashed'))
      .then(async () => {
        // Cancelled runners were removed by cancel(): nothing to pick up again.
        if (this.#runners.get(jobId) !== runner) return;
        this.#runners.delete(jobId);
        const job = await this.#deps.store.getJob(jobId);
        const again = job !== null && !this.#closed && !this.#draining && needsWorker(job.status, job.error?.recoverable === true);
        if (this.#leases === null) {
          // A wake that arrived while the runner was finishing must not be lost.
          if (again) this.wake(jobId);
          return;
        }
        const held = this.#leases.lease(jobId);
        if (held === undefined || !held.valid()) return;
        if (again) this.#startRunner(jobId, held);
        else {
          this.#seen.delete(jobId);
          if (job === null) this.#leases.forget(jobId);
          else await this.#leases.release(jobId);
        }
      })
      .catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'job runner restart check failed'));
  }

  /** A wake for a job this node does not run: take its lease when the balance lets this node. */
  async #claimNow(jobId: string): Promise<void> {
    const job = await this.#deps.store.getJob(jobId);
    if (job === null || !needsWorker(job.status, job.error?.recoverable === true)) return;
    const [leases, nodes] = await Promise.all([this.#deps.store.listJobLeases(), this.#deps.store.listNodes()]);
    await this.#claim(job, leases.find((lease) => lease.jobId === jobId), leases, nodes);
  }

  /**
   * Takes the job's lease and starts its runner, when nobody holds a live lease on it and this
   * node may take one more job: not draining, below --max-jobs, and no UP node that could take
   * it runs fewer jobs (a job that waited two sweeps goes to any node that may take it, so a
   * dead node that still looks UP holds nothing up for long).
   */
  async #claim(job: MigrationJob, current: StoredJobLease | undefined, leases: StoredJobLease[], nodes: StoredNode[]): Promise<void> {
    const keeper = this.#leases!;
    const { nodeId, maxJobs } = keeper.settings;
    if (this.#closed || this.#draining || this.#runners.has(job.id) || this.#claiming.has(job.id)) return;
    const now = Date.now();
    if (current !== undefined && current.nodeId !== null && current.nodeId !== nodeId && Date.parse(current.expireTime) > now) {
      this.#waiting.delete(job.id);
      return;
    }
    if (maxJobs !== null && keeper.heldCount >= maxJobs) return;
    const waitingSince = this.#waiting.get(job.id) ?? now;
    this.#waiting.set(job.id, waitingSince);
    // The sole node of a SQLite store balances with nobody (rows of its earlier runs may still look UP).
    const balanced = keeper.settings.soleNode || now - waitingSince >= 2 * this.sweepIntervalMs || keeper.heldCount <= this.#leastLoad(leases, nodes, now);
    if (!balanced) return;
    this.#claiming.add(job.id);
    try {
      const lease = await keeper.acquire(job.id);
      if (lease === null) return;
      this.#waiting.delete(job.id);
      // A takeover when the row this acquisition replaced (the next epoch) named another node;
      // `current` may be older than that (a slow sweep) and then says nothing.
      const from = current !== undefined && current.epoch + 1 === lease.epoch ? current.nodeId : null;
      if (from !== null && from !== nodeId) {
        this.#takeovers += 1;
        this.#deps.logger.info({ jobId: job.id, fromNode: from, toNode: nodeId, epoch: lease.epoch }, 'took a job over from a node that stopped renewing its lease');
        await this.#deps.store.appendJobEvent({
          jobId: job.id, time: this.#deps.clock.now(), kind: 'info', actor: 'system',
          message: `Node ${nodeId} took the job over from node ${from}, whose lease expired (lease epoch ${lease.epoch})`,
          details: { code: 'TAKEN_OVER', fromNode: from, toNode: nodeId, epoch: lease.epoch },
        });
      }
      this.#seen.set(job.id, seenOf(job));
      if (!this.#closed && !this.#draining) this.#startRunner(job.id, lease);
      else await keeper.release(job.id);
    } finally {
      this.#claiming.delete(job.id);
    }
  }

  /** The fewest live leases held by any UP node that may take a job (this one included). */
  #leastLoad(leases: StoredJobLease[], nodes: StoredNode[], now: number): number {
    const keeper = this.#leases!;
    const load = new Map<string, number>();
    for (const lease of leases) {
      if (lease.nodeId !== null && Date.parse(lease.expireTime) > now) load.set(lease.nodeId, (load.get(lease.nodeId) ?? 0) + 1);
    }
    let least = keeper.heldCount;
    const lostAfter = nodeLostAfterMs(keeper.settings.leaseMs);
    const at = new Date(now).toISOString();
    for (const node of nodes) {
      // Not running, lost or draining: it takes no job.
      if (node.id === keeper.settings.nodeId || nodeState(node, at, 0, lostAfter) !== 'UP') continue;
      const count = load.get(node.id) ?? 0;
      if (node.maxJobs !== null && count >= node.maxJobs) continue;
      least = Math.min(least, count);
    }
    return least;
  }

  /** Draining: every runner stops at its next safe point and its lease goes back to the store for another node. */
  async #letGoOfEveryJob(): Promise<void> {
    const keeper = this.#leases!;
    for (const [jobId, runner] of [...this.#runners.entries()]) {
      this.#runners.delete(jobId);
      await runner.cancel();
      const lease = keeper.lease(jobId);
      if (lease === undefined || !lease.valid()) continue;
      await this.#deps.store.appendJobEvent({
        jobId, time: this.#deps.clock.now(), kind: 'info', actor: 'system',
        message: `Node ${keeper.settings.nodeId} drains: it stopped running the job and released its lease for another node to take`,
        details: { code: 'RELEASED', node: keeper.settings.nodeId, epoch: lease.epoch },
      }).catch((error: unknown) => this.#deps.logger.warn({ jobId, err: String(error) }, 'could not record the release of a job in its history'));
      this.#seen.delete(jobId);
      await keeper.release(jobId);
    }
  }

  /** For cancel() of a job another node runs (delete): take its lease, then give the holder time to notice. */
  async #takeFromHolder(jobId: string): Promise<void> {
    const keeper = this.#leases!;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const current = (await this.#deps.store.listJobLeases()).find((lease) => lease.jobId === jobId);
      if (current === undefined) return;
      if (current.nodeId !== null && current.nodeId !== keeper.settings.nodeId) {
        await this.#deps.store.releaseJobLease(jobId, current.nodeId, current.epoch);
      }
      const taken = await keeper.acquire(jobId);
      if (taken === null) continue;
      if (current.nodeId !== null && current.nodeId !== keeper.settings.nodeId) {
        // The holder loses the lease at its next renewal (within L/3) and cancels its runner.
        this.#deps.logger.info({ jobId, fromNode: current.nodeId }, 'took the lease of a job from the node running it, so that it lets go');
        await new Promise((resolve) => setTimeout(resolve, Math.floor(keeper.settings.leaseMs / 3) + 1_000));
      }
      keeper.forget(jobId);
      return;
    }
  }

  #onLeaseLost(jobId: string): void {
    const runner = this.#runners.get(jobId);
    this.#seen.delete(jobId);
    if (runner === undefined) return;
    this.#runners.delete(jobId);
    void runner.cancel().catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'job runner crashed while stopping after its lease was lost'));
  }

  /** Actions taken on other nodes: a job this node runs changed status (interrupt its runner) or is gone (cancel it). */
  async #pollStatuses(): Promise<void> {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    try {
      await Promise.all([...this.#runners.keys()].map(async (jobId) => {
        const job = await this.#deps.store.getJob(jobId);
        const runner = this.#runners.get(jobId);
        if (runner === undefined) return;
        if (job === null) {
          this.#runners.delete(jobId);
          this.#seen.delete(jobId);
          await runner.cancel();
          this.#leases?.forget(jobId);
          return;
        }
        const seen = this.#seen.get(jobId);
        // A read older than the runner's own last write says nothing new.
        if (seen !== undefined && job.updateTime < seen.updateTime) return;
        const now = seenOf(job);
        this.#seen.set(jobId, now);
        if (seen !== undefined && seen.key !== now.key) runner.interrupt();
      }));
    } catch (error) {
      this.#deps.logger.warn({ err: String(error) }, 'could not read the status of the jobs this node runs');
    } finally {
      this.#polling = false;
    }
  }

  /** The store the runners use: their own job updates are remembered as seen. */
  #remembering(store: MetadataStore): MetadataStore {
    return new Proxy(store, {
      get: (target, property, receiver) => {
        if (property === 'updateJob') {
          return async (job: MigrationJob, expectedStatus?: MigrationJob['status']) => {
            const updated = await target.updateJob(job, expectedStatus);
            if (updated && this.#runners.has(job.id)) this.#seen.set(job.id, seenOf(job));
            return updated;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}
