/**
 * Keeps one runner per job that needs a worker (see needsWorker), in this process. On start
 * it picks up every job that was running when the process stopped, so a killed server
 * resumes its jobs from their checkpoints. A periodic sweep catches anything missed.
 */
import { needsWorker } from '../core/lifecycle.js';
import type { MigrationJob } from '../core/migration-job.js';
import { JobRunner, type JobRunnerDeps } from './job-runner.js';
import { ReplicationStats, type ReplicationSnapshot } from './replication-stats.js';

export class JobSupervisor {
  readonly #deps: JobRunnerDeps;
  readonly #runners = new Map<string, JobRunner>();
  /** Live numbers per job, kept across the runners of one job (Stop then Resume keeps the counts). */
  readonly #stats = new Map<string, ReplicationStats>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(deps: JobRunnerDeps, private readonly sweepIntervalMs = 5_000) {
    this.#deps = deps;
  }

  /** Resumes every job that needs a worker and starts the periodic sweep. */
  async start(): Promise<void> {
    await this.sweep();
    this.#sweepTimer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.#deps.logger.error({ err: String(error) }, 'job sweep failed'));
    }, this.sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  async sweep(): Promise<void> {
    let pageToken: string | null = null;
    do {
      const page: { items: MigrationJob[]; nextPageToken: string | null } = await this.#deps.store.listJobs({ pageSize: 500, pageToken });
      for (const job of page.items) {
        if (!this.#runners.has(job.id) && needsWorker(job.status, job.error?.recoverable === true)) this.wake(job.id);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== null);
  }

  /** The job's status changed: its runner re-reads it, or a runner starts. */
  wake(jobId: string): void {
    if (this.#closed) return;
    const existing = this.#runners.get(jobId);
    if (existing !== undefined) {
      existing.interrupt();
      return;
    }
    let stats = this.#stats.get(jobId);
    if (stats === undefined) {
      stats = new ReplicationStats();
      this.#stats.set(jobId, stats);
    }
    const runner = new JobRunner(jobId, this.#deps, stats);
    this.#runners.set(jobId, runner);
    void runner.done
      .catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'job runner crashed'))
      .then(async () => {
        // Cancelled runners were removed by cancel(): nothing to pick up again.
        if (this.#runners.get(jobId) !== runner) return;
        this.#runners.delete(jobId);
        // A wake that arrived while the runner was finishing must not be lost.
        const job = await this.#deps.store.getJob(jobId);
        if (job !== null && !this.#closed && needsWorker(job.status, job.error?.recoverable === true)) this.wake(jobId);
      })
      .catch((error: unknown) => this.#deps.logger.error({ jobId, err: String(error) }, 'job runner restart check failed'));
  }

  /** Stops working on the job, leaving its status as it is; resolves when the runner has let go. */
  async cancel(jobId: string): Promise<void> {
    const runner = this.#runners.get(jobId);
    this.#stats.delete(jobId);
    if (runner === undefined) return;
    this.#runners.delete(jobId);
    await runner.cancel();
  }

  /** The live replication numbers of a job this process runs, or null. */
  replicationStats(jobId: string): ReplicationSnapshot | null {
    const runner = this.#runners.get(jobId);
    return runner === undefined || runner.stats.appliedPosition === null ? null : runner.stats.snapshot();
  }

  isRunning(jobId: string): boolean {
    return this.#runners.has(jobId);
  }

  /** Lets go of every job (their statuses stay, so the next start resumes them). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
    const runners = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.allSettled(runners.map((runner) => runner.cancel()));
  }
}
