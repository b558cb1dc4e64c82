import type { JobStatus } from '../api/types';
import { STATUS_LABELS } from '../api/types';

const TONES: Record<JobStatus, string> = {
  NOT_STARTED: 'neutral',
  STARTING: 'progress',
  RUNNING: 'progress',
  RUNNING_WITH_ERRORS: 'warning',
  COMPLETED: 'success',
  FAILED: 'danger',
  RESTARTING: 'progress',
  STOPPED: 'neutral',
  RESUMING: 'progress',
  STOPPING: 'progress',
};

/** A job's status in the seed's words, coloured by what it means. */
export function StatusBadge({ status, label }: { status: JobStatus; label?: string }) {
  return (
    <span className={`badge badge-${TONES[status] ?? 'neutral'}`} data-status={status}>
      {label ?? STATUS_LABELS[status] ?? status}
    </span>
  );
}
