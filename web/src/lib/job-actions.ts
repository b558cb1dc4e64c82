/** What each job action is called and what its confirmation says will happen. */
import type { Job, JobAction, JobObject } from '../api/types';
import { formatBytes, formatCount } from './format';

export const ACTION_LABELS: Record<JobAction, string> = {
  start: 'Start',
  stop: 'Stop',
  resume: 'Resume',
  restart: 'Restart',
  promote: 'Promote',
  delete: 'Delete',
};

/** Actions that ask for confirmation first: they cannot be taken back. */
export const CONFIRMED_ACTIONS: ReadonlySet<JobAction> = new Set<JobAction>(['delete', 'restart', 'promote']);

export interface Confirmation {
  title: string;
  /** What will happen, one paragraph each. */
  paragraphs: string[];
  /** A warning shown above the buttons, or null. */
  warning: string | null;
  confirmLabel: string;
  danger: boolean;
}

function jobsPhrase(jobs: Job[]): string {
  return jobs.length === 1 ? `migration job "${jobs[0]!.displayName}"` : `${jobs.length} migration jobs`;
}

/** The replication lag as text, or null when the job does not report it. */
export function lagText(job: Job): string | null {
  const lag = job.replication;
  if (!lag || (lag.lagSeconds == null && lag.lagBytes == null)) return null;
  const parts: string[] = [];
  if (lag.lagSeconds != null) parts.push(`${formatCount(lag.lagSeconds)} s`);
  if (lag.lagBytes != null) parts.push(formatBytes(lag.lagBytes));
  return parts.join(', ');
}

function lagIsZero(job: Job): boolean | null {
  const lag = job.replication;
  if (!lag || (lag.lagSeconds == null && lag.lagBytes == null)) return null;
  return (lag.lagSeconds ?? 0) === 0 && (lag.lagBytes ?? 0) === 0;
}

export function confirmationFor(action: JobAction, jobs: Job[]): Confirmation | null {
  const what = jobsPhrase(jobs);
  switch (action) {
    case 'delete':
      return {
        title: `Delete ${what}?`,
        paragraphs: [
          'Ferry stops the job if it is running and removes the replication objects it created on the source (replication slot, publication).',
          'The data already copied to the destination is kept. The job and its history are removed; this cannot be undone.',
        ],
        warning: null,
        confirmLabel: 'Delete',
        danger: true,
      };
    case 'restart':
      return {
        title: `Restart ${what}?`,
        paragraphs: [
          'Ferry removes everything the job wrote on the destination (the tables it created and the rows it loaded), then starts over with a full dump from a new snapshot of the source.',
          'Tables already copied are copied again.',
        ],
        warning: null,
        confirmLabel: 'Restart',
        danger: true,
      };
    case 'promote': {
      const lags = jobs.map((job) => ({ job, text: lagText(job), zero: lagIsZero(job) }));
      const lagLines = lags.map(({ job, text }) =>
        `${jobs.length === 1 ? 'Current replication lag' : `Replication lag of "${job.displayName}"`}: ${text ?? 'not reported yet'}.`,
      );
      const behind = lags.filter((l) => l.zero === false);
      const unknown = lags.filter((l) => l.zero === null);
      let warning: string | null = null;
      if (behind.length > 0) {
        warning =
          'The destination is behind the source: promote waits until it has applied every change (lag 0). Stop the applications writing to the source first, or their writes after the cutover are lost.';
      } else if (unknown.length > 0) {
        warning = 'The replication lag is not known: make sure the applications no longer write to the source before promoting.';
      }
      return {
        title: `Promote ${what}?`,
        paragraphs: [
          'Ferry waits until the destination has applied every change from the source, syncs sequences and auto-increment counters, and removes the replication objects on the source. The destination becomes a standalone database and the job ends Completed.',
          ...lagLines,
        ],
        warning,
        confirmLabel: 'Promote',
        danger: false,
      };
    }
    default:
      return null;
  }
}

/**
 * The tables "Restart failed tables" offers for one job: those whose copy failed, while the
 * job may be restarted and is in Full dump (later, tables cannot be restarted one by one).
 */
export function failedTables(job: Job, objects: JobObject[]): string[] {
  if (!job.availableActions.includes('restart') || (job.phase !== 'FULL_DUMP' && job.phase !== null)) return [];
  return objects.filter((o) => o.state === 'FAILED').map((o) => o.name);
}

export function restartTablesConfirmation(job: Job, tables: string[]): Confirmation {
  const which = tables.length === 1 ? `table ${tables[0]}` : `${tables.length} failed tables`;
  return {
    title: `Restart ${which} of migration job "${job.displayName}"?`,
    paragraphs: [
      `Ferry empties ${tables.length === 1 ? 'this table' : 'these tables'} on the destination and copies ${tables.length === 1 ? 'it' : 'them'} again from a new snapshot of the source${tables.length === 1 ? '' : `: ${tables.join(', ')}`}.`,
      'The tables already copied are kept and are not copied again. Fix the cause first (the data on the source or the table on the destination), or the copy fails again.',
    ],
    warning: null,
    confirmLabel: 'Restart failed tables',
    danger: true,
  };
}
