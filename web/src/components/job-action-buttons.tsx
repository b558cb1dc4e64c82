import { Fragment, useState } from 'react';
import { api } from '../api/client';
import type { Job, JobAction } from '../api/types';
import { JOB_ACTIONS } from '../api/types';
import { ACTION_LABELS, CONFIRMED_ACTIONS, confirmationFor, restartTablesConfirmation } from '../lib/job-actions';
import { ErrorAlert } from './alert';
import { ConfirmDialog } from './confirm-dialog';

/** Carries out one action on one job through the API. */
export async function runJobAction(job: Job, action: JobAction): Promise<void> {
  if (action === 'delete') await api.deleteJob(job.id);
  else await api.applyJobAction(job.id, action);
}

/** The buttons' own action besides the job actions: restart only the tables whose copy failed. */
const RESTART_TABLES = 'restart-tables';
type ButtonAction = JobAction | typeof RESTART_TABLES;

/**
 * Buttons for exactly the actions every one of `jobs` allows (their availableActions), with a
 * confirmation for Delete, Restart and Promote. One job on the details page, several for the
 * list's bulk actions. With `failedTables` (one job), also "Restart failed tables" next to Restart.
 */
export function JobActionButtons({
  jobs,
  failedTables = [],
  onBefore,
  onDone,
}: {
  jobs: Job[];
  /** Tables whose copy failed, offered by "Restart failed tables" (see lib/job-actions failedTables). */
  failedTables?: string[];
  /** Called once confirmed, before the calls (the details page stops polling before Delete). */
  onBefore?: (action: JobAction) => void;
  /** Called after the calls, with the jobs whose call failed. */
  onDone: (action: JobAction, failed: Job[]) => void;
}) {
  const [pending, setPending] = useState<ButtonAction | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const allowed = JOB_ACTIONS.filter((action) => jobs.length > 0 && jobs.every((job) => job.availableActions.includes(action)));
  const tables = jobs.length === 1 && allowed.includes('restart') ? failedTables : [];

  const run = async (button: ButtonAction) => {
    const action: JobAction = button === RESTART_TABLES ? 'restart' : button;
    setBusy(true);
    setError(null);
    onBefore?.(action);
    const failed: Job[] = [];
    const messages: string[] = [];
    for (const job of jobs) {
      try {
        if (button === RESTART_TABLES) await api.restartJobObjects(job.id, tables);
        else await runJobAction(job, action);
      } catch (caught) {
        failed.push(job);
        messages.push(jobs.length === 1 ? (caught instanceof Error ? caught.message : String(caught)) : `${job.displayName}: ${caught instanceof Error ? caught.message : String(caught)}`);
      }
    }
    setBusy(false);
    setPending(null);
    if (failed.length > 0) setError(new Error(messages.join(' ')));
    onDone(action, failed);
  };

  const click = (action: ButtonAction) => {
    if (action === RESTART_TABLES || CONFIRMED_ACTIONS.has(action)) setPending(action);
    else void run(action);
  };

  const confirmation =
    pending === RESTART_TABLES ? restartTablesConfirmation(jobs[0]!, tables) : pending ? confirmationFor(pending, jobs) : null;
  return (
    <div className="job-actions">
      <div className="button-row" data-testid="job-actions">
        {allowed.map((action) => (
          <Fragment key={action}>
            <button
              type="button"
              data-action={action}
              className={action === 'delete' ? 'danger-outline' : action === 'start' || action === 'resume' || action === 'promote' ? 'primary' : ''}
              disabled={busy}
              onClick={() => click(action)}
            >
              {ACTION_LABELS[action]}
            </button>
            {action === 'restart' && tables.length > 0 && (
              <button type="button" data-testid="restart-failed-tables" disabled={busy} onClick={() => click(RESTART_TABLES)} title={tables.join(', ')}>
                Restart failed tables
              </button>
            )}
          </Fragment>
        ))}
        {allowed.length === 0 && <span className="muted">No action is available in this status.</span>}
      </div>
      <ErrorAlert error={error} title="The action was refused" />
      {pending && confirmation && (
        <ConfirmDialog confirmation={confirmation} busy={busy} onConfirm={() => void run(pending)} onCancel={() => setPending(null)} />
      )}
    </div>
  );
}
