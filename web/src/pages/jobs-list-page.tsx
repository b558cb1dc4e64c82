/**
 * Migration jobs: one page of jobs at a time, each with the node that runs it, filtered,
 * searched and ordered by the server, and only that page refreshed every 2 s; act on several
 * jobs at once when they share a status. The search box asks the server once typing pauses.
 */
import { memo, useCallback, useEffect, useState } from 'react';
import { api } from '../api/client';
import type { Job, JobListOrder, JobStatus } from '../api/types';
import { JOB_LIST_ORDERS, JOB_STATUSES, STATUS_LABELS } from '../api/types';
import { ErrorAlert } from '../components/alert';
import { JobActionButtons } from '../components/job-action-buttons';
import { NodeName } from '../components/node-name';
import { StatusBadge } from '../components/status-badge';
import { engineName, formatDuration, formatTime, typeName } from '../lib/format';
import { Link, navigate, paths, useLocation } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const REFRESH_MILLIS = 2000;
const PAGE_SIZE = 50;
/** How long typing must pause before the search goes to the server. */
const SEARCH_DEBOUNCE_MILLIS = 300;

const ORDER_LABELS: Record<JobListOrder, string> = {
  createTime: 'Oldest first',
  'createTime desc': 'Newest first',
  updateTime: 'Least recently updated',
  'updateTime desc': 'Recently updated',
  displayName: 'Name (A to Z)',
  'displayName desc': 'Name (Z to A)',
};

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
  const orderBy = (JOB_LIST_ORDERS as readonly string[]).includes(params.get('order') ?? '') ? (params.get('order') as JobListOrder) : 'createTime';
  const query = params.get('q') ?? '';

  // What the box shows follows every keystroke; the URL (and so the server) once typing pauses.
  const [searchText, setSearchText] = useState(query);
  useEffect(() => setSearchText(query), [query]);
  useEffect(() => {
    if (searchText === query) return;
    const timer = setTimeout(() => navigate(setQueryParam(window.location.search, 'q', searchText), { replace: true }), SEARCH_DEBOUNCE_MILLIS);
    return () => clearTimeout(timer);
  }, [searchText, query]);

  // The tokens of the pages walked so far: tokens[i] opens page i (undefined: the first).
  // They belong to one filter and order: another filter starts again on page 1.
  const filterKey = `${status ?? ''}|${query.trim()}|${orderBy}`;
  const [paging, setPaging] = useState<{ filterKey: string; tokens: Array<string | undefined> }>({ filterKey, tokens: [undefined] });
  const pageTokens = paging.filterKey === filterKey ? paging.tokens : [undefined];
  const setPageTokens = (change: (tokens: Array<string | undefined>) => Array<string | undefined>) =>
    setPaging({ filterKey, tokens: change(pageTokens) });
  const pageIndex = pageTokens.length - 1;
  const pageToken = pageTokens[pageIndex];

  const polled = usePolling(
    (signal) => api.listJobPage({ pageSize: PAGE_SIZE, pageToken, status: status ? [status] : [], search: query, orderBy }, signal),
    REFRESH_MILLIS,
    [filterKey, pageToken],
  );
  const [selectedIds, setSelectedIds] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<string | null>(null);

  const jobs = polled.data?.jobs ?? [];
  const totalSize = polled.data?.totalSize ?? 0;
  const nextPageToken = polled.data?.nextPageToken ?? null;
  // Selected jobs that are still listed (a refresh may have removed some).
  const selected = jobs.filter((job) => selectedIds.has(job.id));
  const sharedStatus = selected.length > 0 && selected.every((job) => job.status === selected[0]!.status) ? selected[0]!.status : null;

  // Stable, so that memoized rows are not rendered again for a new function.
  const toggle = useCallback((id: string, on: boolean) => {
    setSelectedIds((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }, []);
  const allVisibleSelected = jobs.length > 0 && jobs.every((job) => selectedIds.has(job.id));

  const onBulkDone = (action: string, failed: Job[]) => {
    const succeeded = selected.length - failed.length;
    setNotice(succeeded > 0 ? `${action[0]!.toUpperCase()}${action.slice(1)} requested for ${succeeded} ${succeeded === 1 ? 'job' : 'jobs'}.` : null);
    setSelectedIds(new Set(failed.map((job) => job.id)));
    polled.reload();
  };

  const first = pageIndex * PAGE_SIZE + 1;
  const pager = (
    <nav className="pager" aria-label="Pages of jobs" data-testid="jobs-pager">
      <button type="button" className="button" disabled={pageIndex === 0} onClick={() => setPageTokens((tokens) => tokens.slice(0, -1))}>
        Previous
      </button>
      <span className="muted small" data-testid="jobs-range">
        {jobs.length === 0 ? `0 of ${totalSize}` : `${first}–${first + jobs.length - 1} of ${totalSize}`}
      </span>
      <button
        type="button"
        className="button"
        disabled={nextPageToken === null}
        onClick={() => nextPageToken !== null && setPageTokens((tokens) => [...tokens, nextPageToken])}
      >
        Next
      </button>
    </nav>
  );

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
            aria-label="Search by name or id"
            placeholder="Job name or id"
            value={searchText}
            onChange={(e) => setSearchText(e.target.value)}
          />
        </label>
        <label className="inline-field">
          Order
          <select aria-label="Order" value={orderBy} onChange={(e) => navigate(setQueryParam(search, 'order', e.target.value === 'createTime' ? '' : e.target.value), { replace: true })}>
            {JOB_LIST_ORDERS.map((order) => (
              <option key={order} value={order}>
                {ORDER_LABELS[order]}
              </option>
            ))}
          </select>
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
          {status || query || pageIndex > 0 ? (
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
              <th>Node</th>
              <th>Type</th>
              <th>Source</th>
              <th>Destination</th>
              <th>Created</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <JobRow key={job.id} job={job} selected={selectedIds.has(job.id)} onToggle={toggle} />
            ))}
          </tbody>
        </table>
      )}
      {polled.data !== undefined && (pageIndex > 0 || nextPageToken !== null || jobs.length > 0) && pager}
    </section>
  );
}

/** One job's row; memoized: a refresh that changed nothing in this job does not render it. */
const JobRow = memo(function JobRow({ job, selected, onToggle }: { job: Job; selected: boolean; onToggle: (id: string, on: boolean) => void }) {
  return (
    <tr data-job-id={job.id} className={selected ? 'selected' : undefined}>
      <td className="select-cell">
        <input type="checkbox" aria-label={`Select ${job.displayName}`} checked={selected} onChange={(e) => onToggle(job.id, e.target.checked)} />
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
      <td data-testid="job-node">
        <NodeName node={job.node} />
      </td>
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
  );
});
