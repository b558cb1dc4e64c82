/**
 * Moves a job along the lifecycle on behalf of the pipeline, recording each move in the
 * job's history. The store's compare-and-set on status makes a user action (Stop, Delete)
 * and a pipeline event that race resolve cleanly: the loser re-reads and decides again.
 */
import { FerryError, toJobError } from '../core/errors.js';
import { STATUS_LABELS, nextStateForEvent, substatusOf, type JobEvent } from '../core/lifecycle.js';
import { withStatus, type MigrationJob } from '../core/migration-job.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Clock } from './clock.js';

export interface EventOptions {
  /** The error that caused 'degraded' or 'failed'. */
  error?: FerryError;
  /** A sentence for the history; a default is derived from the move. */
  message?: string;
}

/**
 * Applies the event to the job as stored. Resolves with the updated job, or null when the
 * event does not apply to the job's current status (a user action moved it first) or the
 * job is gone.
 */
export async function recordJobEvent(
  store: MetadataStore,
  clock: Clock,
  jobId: string,
  event: JobEvent,
  options: EventOptions = {},
): Promise<MigrationJob | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const job = await store.getJob(jobId);
    if (job === null) return null;
    const next = nextStateForEvent(job, event);
    if (next === null) return null;
    const now = clock.now();
    let updated = withStatus(job, next.status, next.phase, now);
    if (event === 'degraded' || event === 'failed') {
      const error = options.error ?? new FerryError('INTERNAL', 'The job failed without an error; see the logs.');
      // Keep the first-seen time while the same error repeats, so the console shows how long it lasts.
      const time = job.error?.code === error.code && job.error.message === error.message ? job.error.time : now;
      updated = { ...updated, error: toJobError(error, time) };
    } else if (event !== 'stopped') {
      updated = { ...updated, error: null };
    }
    if (event === 'promoted' || event === 'completed') updated = { ...updated, promoteRequested: false };
    if (!(await store.updateJob(updated, job.status))) continue;

    const moved = job.status !== updated.status || job.phase !== updated.phase;
    if (job.error !== null && updated.error === null) {
      await store.appendJobEvent({
        jobId, time: now, kind: 'errorCleared', actor: 'system',
        message: `Error cleared: ${job.error.code}`, details: { code: job.error.code },
      });
    }
    if (updated.error !== null && (job.error?.message !== updated.error.message)) {
      await store.appendJobEvent({
        jobId, time: now, kind: 'error', actor: 'system', status: updated.status, phase: updated.phase,
        message: `${updated.error.code}: ${updated.error.message}`, details: { code: updated.error.code, retryable: updated.error.retryable },
      });
    }
    if (moved) {
      const substatus = substatusOf(updated);
      await store.appendJobEvent({
        jobId, time: now, kind: job.phase !== updated.phase && job.status === updated.status ? 'phase' : 'status',
        actor: 'system', status: updated.status, phase: updated.phase,
        message: options.message ?? `${STATUS_LABELS[updated.status]}${substatus ? ` (${substatus})` : ''}`,
      });
    }
    return updated;
  }
  throw new FerryError('INTERNAL', `Job ${jobId} kept changing while Ferry recorded "${event}"; try the action again.`);
}
