/**
 * Migration jobs: every job with its status, refreshed every 2 s; filter by status, search by
 * name, and act on several jobs at once when they share a status.
 */
import { useMemo, useState } from 'react';
import { api } from '../api/client';
import type { Job, JobStatus } from '../api/types';
import { JOB_STATUSES, STATUS_LABELS } from '../api/types';
import { ErrorAlert } from '../components/alert';
import { JobActionButtons } from '../components/job-action-buttons';
import { StatusBadge } from '../components/status-badge';
import { engineName, formatDuration, formatTime, typeName } from '../lib/format';
import { Link, navigate, paths, useLocation } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const REFRESH_MILLIS = 2000;

function setQueryParam(search: string, key: string, value: string): string {
  const params = new URLSearchParams(search);
  if (value === '') params.delete(key);
  else params.set(key, value);
  const text = params.toString();
  return `${paths.jobs}${text ? `?${text}` : ''}`;
}

export function JobsListPage() {
  const { search } = useLocation();
  const params = new URLSearchParams(search);
  const status = (JOB_STATUSES as readonly string[]).includes(params.get('status') ?? '') ? (params.get('status') as JobStatus) : null;
  const query = params.get('q') ?? '';

  const polled = usePolling((signal) => api.listJobs(status ? [status] : [], signal), REFRESH_MILLIS, [status]);
  const [selectedIds, setSelectedIds] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<string | null>(null);

  const jobs = useMemo(() => {
    const needle = query.trim().toLowerCase();
    const all = polled.data ?? [];
    return needle === '' ? all : all.filter((job) => job.displayName.toLowerCase().includes(needle) || job.id.includes(needle));
  }, [polled.data, query]);
  // Selected jobs that are still listed (a refresh may have removed some).
  const selected = jobs.filter((job) => selectedIds.has(job.id));
  const sharedStatus = selected.length > 0 && selected.every((job) => job.status === selected[0]!.status) ? selected[0]!.status : null;

  const toggle = (id: string, on: boolean) => {
    setSelectedIds((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  };
  const allVisibleSelected = jobs.length > 0 && jobs.every((job) => selectedIds.has(job.id));

  const onBulkDone = (action: string, failed: Job[]) => {
    const succeeded = selected.length - failed.length;
    setNotice(succeeded > 0 ? `${action[0]!.toUpperCase()}${action.slice(1)} requested for ${succeeded} ${succeeded === 1 ? 'job' : 'jobs'}.` : null);
    setSelectedIds(new Set(failed.map((job) => job.id)));
    polled.reload();
  };

  return (
    <section className="page">
      <header className="page-header">
        <h1>Migration jobs</h1>
        <Link to={paths.createJob} className="button primary">
          Create migration job
        </Link>
      </header>

      <div className="toolbar">
        <label className="inline-field">
          Status
          <select
            aria-label="Filter by status"
            value={status ?? ''}
            onChange={(e) => navigate(setQueryParam(search, 'status', e.target.value), { replace: true })}
          >
            <option value="">All statuses</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABELS[s]}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field grow">
          Search
          <input
            type="search"
            aria-label="Search by name"
            placeholder="Job name"
            value={query}
            onChange={(e) => navigate(setQueryParam(search, 'q', e.target.value), { replace: true })}
          />
        </label>
        <span className="muted small">Refreshes every 2 s</span>
      </div>

      {selected.length > 0 && (
        <div className="bulk-bar" data-testid="bulk-actions">
          <span>
            {selected.length} selected{sharedStatus ? ` (${STATUS_LABELS[sharedStatus]})` : ''}
          </span>
          {sharedStatus ? (
            <JobActionButtons jobs={selected} onDone={onBulkDone} />
          ) : (
            <span className="muted">The selected jobs have different statuses: select jobs that share a status to act on them together.</span>
          )}
          <button type="button" className="link-button" onClick={() => setSelectedIds(new Set())}>
            Clear selection
          </button>
        </div>
      )}
      {notice && <div className="alert alert-info" role="status">{notice}</div>}
      <ErrorAlert error={polled.error} title="Could not load the migration jobs" />

      {polled.data === undefined && polled.error === null ? (
        <p className="muted">Loading…</p>
      ) : jobs.length === 0 ? (
        <div className="empty">
          {(polled.data?.length ?? 0) > 0 || status || query ? (
            <p>No migration job matches the filter.</p>
          ) : (
            <>
              <p>No migration jobs yet.</p>
              <p>
                <Link to={paths.createJob}>Create a migration job</Link> to move a database from a source to a destination.
              </p>
            </>
          )}
        </div>
      ) : (
        <table className="table" data-testid="jobs-table">
          <thead>
            <tr>
              <th className="select-cell">
                <input
                  type="checkbox"
                  aria-label="Select all jobs"
                  checked={allVisibleSelected}
                  onChange={(e) => setSelectedIds(e.target.checked ? new Set(jobs.map((job) => job.id)) : new Set())}
                />
              </th>
              <th>Name</th>
              <th>ID</th>
              <th>Status</th>
              <th>Substatus</th>
              <th>Type</th>
              <th>Source</th>
              <th>Destination</th>
              <th>Created</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <tr key={job.id} data-job-id={job.id} className={selectedIds.has(job.id) ? 'selected' : undefined}>
                <td className="select-cell">
                  <input
                    type="checkbox"
                    aria-label={`Select ${job.displayName}`}
                    checked={selectedIds.has(job.id)}
                    onChange={(e) => toggle(job.id, e.target.checked)}
                  />
                </td>
                <td>
                  <Link to={paths.job(job.id)}>{job.displayName}</Link>
                </td>
                <td>
                  <code>{job.id}</code>
                </td>
                <td>
                  <StatusBadge status={job.status} label={job.statusLabel} />
                </td>
                <td>{job.substatus ?? '—'}</td>
                <td>{typeName(job.type)}</td>
                <td>
                  {job.sourceProfileName ?? job.sourceProfileId}
                  <div className="muted small">{engineName(job.sourceEngine)}</div>
                </td>
                <td>
                  {job.destinationProfileName ?? job.destinationProfileId}
                  <div className="muted small">{engineName(job.destinationEngine)}</div>
                </td>
                <td className="nowrap">{formatTime(job.createTime)}</td>
                <td className="nowrap">{formatDuration(job.durationSeconds)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
