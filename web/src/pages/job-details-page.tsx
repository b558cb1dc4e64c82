/**
 * One migration job: every field of the seed's details page, status, substatus and node, the error
 * with what to do, replication lag and throughput charts, per-table progress and the event
 * history, refreshed every 2 s; buttons for exactly the job's availableActions.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError, api } from '../api/client';
import type { Job, JobAction, JobEvent, JobObject } from '../api/types';
import { Alert, ErrorAlert } from '../components/alert';
import { JobActionButtons } from '../components/job-action-buttons';
import { LineChart, type ChartPoint } from '../components/line-chart';
import { NodeName } from '../components/node-name';
import { ProgressBar } from '../components/progress-bar';
import { StatusBadge } from '../components/status-badge';
import { ValidationPanel } from '../components/validation-panel';
import { connectivityName, engineName, formatBytes, formatCount, formatDuration, formatRate, formatTime, objectStateName, typeName } from '../lib/format';
import { ACTION_LABELS, failedTables } from '../lib/job-actions';
import { Link, navigate, paths } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const REFRESH_MILLIS = 2000;
/** Chart history kept while the page is open. */
const SAMPLE_WINDOW_MILLIS = 15 * 60_000;

interface Sample {
  t: number;
  rowsCopied: number;
  bytesCopied: number;
  lagSeconds: number | null;
  lagBytes: number | null;
  changesApplied: number | null;
}

interface Snapshot {
  job: Job;
  objects: JobObject[];
  events: JobEvent[];
  samples: Sample[];
}

/** What the console keeps between polls of one job: chart samples and the event history. */
interface History {
  jobId: string;
  samples: Sample[];
  events: JobEvent[];
}

function rateSeries(samples: Sample[], pick: (s: Sample) => number): ChartPoint[] {
  const points: ChartPoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const previous = samples[i - 1]!;
    const current = samples[i]!;
    const seconds = (current.t - previous.t) / 1000;
    if (seconds <= 0) continue;
    // A restart empties the counters: a drop is no negative throughput.
    points.push({ t: current.t, v: Math.max(0, (pick(current) - pick(previous)) / seconds) });
  }
  return points;
}

/** A table whose copy is finished: what it copied is its total, not an estimate. */
function copyFinished(object: JobObject): boolean {
  return object.state === 'DUMPED' || object.state === 'COMPLETED' || object.state === 'REPLICATING' || object.state === 'ERROR';
}

function objectFraction(object: JobObject): number {
  if (copyFinished(object)) return 1;
  if (object.estimatedRows > 0) return Math.min(1, object.rowsCopied / object.estimatedRows);
  if (object.estimatedBytes > 0) return Math.min(1, object.bytesCopied / object.estimatedBytes);
  return 0;
}

function Fields({ items }: { items: [label: string, value: ReactNode][] }) {
  return (
    <dl className="fields">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function ErrorPanel({ job }: { job: Job }) {
  const error = job.error;
  if (!error) return null;
  let next: string;
  if (job.status === 'RUNNING_WITH_ERRORS') {
    next = 'Ferry retries the failing operation and keeps migrating the data the error does not affect; the error clears by itself once the cause is fixed.';
  } else if (job.status === 'FAILED' && error.recoverable) {
    next = 'Ferry checks regularly whether the cause is gone and resumes the job by itself once it is fixed.';
  } else if (job.status === 'FAILED' && Array.isArray(error.details?.['restartObjects'])) {
    next = 'Fix the cause, then use Restart failed tables: only those tables are copied again.';
  } else if (job.status === 'FAILED') {
    next = 'Fix the cause, then restart the job.';
  } else {
    next = 'The last error the job met.';
  }
  return (
    <Alert tone={job.status === 'FAILED' ? 'error' : 'warning'} title={`Error ${error.code}`}>
      <p className="error-message" data-testid="job-error">
        {error.message}
      </p>
      <p className="small">
        {next} Since {formatTime(error.time)}.
      </p>
    </Alert>
  );
}

function ReplicationPanel({ job, samples }: { job: Job; samples: Sample[] }) {
  const lag = job.replication;
  if (!lag || (lag.lagSeconds == null && lag.lagBytes == null)) {
    return <p className="muted" data-testid="replication-lag">Replication lag appears once the job is in Incremental load.</p>;
  }
  const seconds = samples.filter((s) => s.lagSeconds !== null).map((s) => ({ t: s.t, v: s.lagSeconds! }));
  const bytes = samples.filter((s) => s.lagBytes !== null).map((s) => ({ t: s.t, v: s.lagBytes! }));
  return (
    <div data-testid="replication-lag">
      <div className="stats">
        <div className="stat">
          <span className="stat-value">{lag.lagSeconds == null ? '—' : `${formatCount(lag.lagSeconds)} s`}</span>
          <span className="stat-label">Lag (time)</span>
        </div>
        <div className="stat">
          <span className="stat-value">{lag.lagBytes == null ? '—' : formatBytes(lag.lagBytes)}</span>
          <span className="stat-label">Lag (bytes)</span>
        </div>
        {lag.appliedChangesPerSecond != null && (
          <div className="stat">
            <span className="stat-value">{formatRate(lag.appliedChangesPerSecond, 'changes')}</span>
            <span className="stat-label">Applied on the destination</span>
          </div>
        )}
      </div>
      <div className="two-columns">
        <LineChart
          title="Replication lag in seconds over time"
          series={[{ label: 'Lag (s)', color: 'var(--chart-1)', points: seconds }]}
          formatValue={(v) => `${formatCount(v)} s`}
          yTitle="Lag, seconds behind the source"
          emptyText="The lag chart fills in as the page refreshes."
        />
        <LineChart
          title="Replication lag in bytes over time"
          series={[{ label: 'Lag (bytes)', color: 'var(--chart-2)', points: bytes }]}
          formatValue={formatBytes}
          yTitle="Lag, bytes of log not yet applied"
          emptyText="The lag chart fills in as the page refreshes."
        />
      </div>
    </div>
  );
}

/**
 * The job's pace: rows copied per second during the full dump; changes applied per second
 * once the incremental load has begun (the dump's numbers no longer move then).
 */
function ThroughputPanel({ job, samples }: { job: Job; samples: Sample[] }) {
  const streaming = job.phase === 'INCREMENTAL_LOAD' || job.phase === 'PROMOTE';
  if (streaming) {
    const changes = rateSeries(
      samples.filter((s) => s.changesApplied !== null),
      (s) => s.changesApplied ?? 0,
    );
    const applied = job.replication?.appliedChangesPerSecond ?? changes.at(-1)?.v ?? 0;
    return (
      <div data-testid="throughput">
        <div className="stats">
          <div className="stat">
            <span className="stat-value">{formatRate(applied, 'changes')}</span>
            <span className="stat-label">Changes applied on the destination</span>
          </div>
        </div>
        <LineChart
          title="Changes applied per second over time"
          series={[{ label: 'Changes/s', color: 'var(--chart-1)', points: changes }]}
          formatValue={(v) => formatCount(v)}
          yTitle="Changes applied per second"
          emptyText="Applied changes are measured between refreshes while this page is open."
        />
      </div>
    );
  }
  const rows = rateSeries(samples, (s) => s.rowsCopied);
  const bytes = rateSeries(samples, (s) => s.bytesCopied);
  const lastRows = rows.at(-1)?.v ?? 0;
  const lastBytes = bytes.at(-1)?.v ?? 0;
  return (
    <div data-testid="throughput">
      <div className="stats">
        <div className="stat">
          <span className="stat-value">{formatRate(lastRows, 'rows')}</span>
          <span className="stat-label">Rows copied (last 2 s)</span>
        </div>
        <div className="stat">
          <span className="stat-value">{formatBytes(lastBytes)}/s</span>
          <span className="stat-label">Bytes copied (last 2 s)</span>
        </div>
      </div>
      <LineChart
        title="Throughput in rows per second over time"
        series={[{ label: 'Rows/s', color: 'var(--chart-1)', points: rows }]}
        formatValue={(v) => formatCount(v)}
        yTitle="Rows copied per second"
        emptyText="Throughput is measured between refreshes while this page is open."
      />
    </div>
  );
}

function ObjectsTable({ objects }: { objects: JobObject[] }) {
  if (objects.length === 0) return <p className="muted">The tables are listed once the full dump has read the source schema.</p>;
  return (
    <table className="table" data-testid="objects-table">
      <thead>
        <tr>
          <th>Table</th>
          <th>State</th>
          <th className="wide">Rows copied</th>
          <th>Bytes copied</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {objects.map((object) => (
          <tr key={object.name} data-object={object.name} data-state={object.state}>
            <td>
              <code>{object.name}</code>
            </td>
            <td>{objectStateName(object.state)}</td>
            <td>
              <div className="progress-cell">
                <ProgressBar fraction={objectFraction(object)} label={`${object.name} progress`} />
                <span className="small nowrap">
                  {copyFinished(object)
                    ? `${formatCount(object.rowsCopied)} rows`
                    : `${formatCount(object.rowsCopied)} of ${object.estimatedRows > 0 ? `~${formatCount(object.estimatedRows)} (estimate)` : 'unknown'}`}
                </span>
              </div>
            </td>
            <td className="nowrap">{formatBytes(object.bytesCopied)}</td>
            <td>
              {object.error ? `${object.error.code}: ${object.error.message}` : '—'}
              {object.state === 'ERROR' ? (
                <div className="small muted" data-testid="parked-changes">
                  {formatCount(object.parkedChanges ?? 0)} changes parked · last retry {formatTime(object.lastRetryTime ?? null)} · Ferry retries by itself
                </div>
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const EVENT_KIND_LABELS: Record<string, string> = {
  created: 'Created',
  action: 'Action',
  status: 'Status',
  phase: 'Phase',
  error: 'Error',
  errorCleared: 'Error cleared',
  info: 'Information',
};

function EventHistory({ events }: { events: JobEvent[] }) {
  if (events.length === 0) return <p className="muted">No events yet.</p>;
  return (
    <table className="table compact" data-testid="events-table">
      <thead>
        <tr>
          <th>Time</th>
          <th>Event</th>
          <th>Message</th>
          <th>By</th>
        </tr>
      </thead>
      <tbody>
        {[...events].reverse().map((event) => (
          <tr key={event.id}>
            <td className="nowrap">{formatTime(event.time)}</td>
            <td>{event.action ? ACTION_LABELS[event.action] : (EVENT_KIND_LABELS[event.kind] ?? event.kind)}</td>
            <td>{event.message}</td>
            <td>{event.actor}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function JobDetailsPage({ id }: { id: string }) {
  const history = useRef<History>({ jobId: id, samples: [], events: [] });

  const polled = usePolling(
    async (signal): Promise<Snapshot> => {
      if (history.current.jobId !== id) history.current = { jobId: id, samples: [], events: [] };
      const h = history.current;
      const afterId = h.events.at(-1)?.id ?? 0;
      // The job first: when it does not exist, one request says so instead of three.
      const job = await api.getJob(id, signal);
      const [objects, newEvents] = await Promise.all([api.listJobObjects(id, signal), api.listJobEvents(id, afterId, signal)]);
      const now = Date.now();
      h.events = [...h.events, ...newEvents.filter((e) => e.id > afterId)];
      h.samples = [
        ...h.samples.filter((s) => s.t >= now - SAMPLE_WINDOW_MILLIS),
        {
          t: now,
          rowsCopied: job.progress.rowsCopied,
          bytesCopied: job.progress.bytesCopied,
          lagSeconds: job.replication?.lagSeconds ?? null,
          lagBytes: job.replication?.lagBytes ?? null,
          changesApplied: job.replication?.changesApplied ?? null,
        },
      ];
      return { job, objects, events: h.events, samples: h.samples };
    },
    REFRESH_MILLIS,
    [id],
  );
  const [deleted, setDeleted] = useState(false);
  const notFound = polled.error instanceof ApiError && polled.error.status === 404;
  const { pause } = polled;
  // A job that is gone stays gone: stop asking for it.
  useEffect(() => {
    if (notFound) pause();
  }, [notFound, pause]);

  const onBefore = (action: JobAction) => {
    // Polling a job while it is deleted would end in 404s.
    if (action === 'delete') pause();
  };
  const onDone = (action: JobAction, failed: Job[]) => {
    if (action === 'delete' && failed.length === 0) {
      setDeleted(true);
      navigate(paths.jobs);
      return;
    }
    polled.reload();
  };

  if (notFound || deleted) {
    return (
      <section className="page">
        <p>
          <Link to={paths.jobs}>Migration jobs</Link>
        </p>
        <Alert tone="info" title="This migration job does not exist">
          Migration job <code>{id}</code> was deleted or never existed.
        </Alert>
      </section>
    );
  }
  const snapshot = polled.data;
  if (!snapshot) {
    return (
      <section className="page">
        <p>
          <Link to={paths.jobs}>Migration jobs</Link>
        </p>
        {polled.error ? <ErrorAlert error={polled.error} title="Could not load the migration job" /> : <p className="muted">Loading…</p>}
      </section>
    );
  }
  const { job, objects, events, samples } = snapshot;
  const progress = job.progress;
  const fraction = progress.percent / 100;

  return (
    <section className="page" data-testid="job-details" data-job-id={job.id}>
      <nav className="breadcrumb">
        <Link to={paths.jobs}>Migration jobs</Link> / <span>{job.displayName}</span>
      </nav>
      <header className="page-header">
        <div>
          <h1>{job.displayName}</h1>
          <div className="status-line" data-testid="job-status" data-status={job.status}>
            <StatusBadge status={job.status} label={job.statusLabel} />
            {job.substatus && <span className="substatus">{job.substatus}</span>}
          </div>
        </div>
        <JobActionButtons jobs={[job]} failedTables={failedTables(job, objects)} onBefore={onBefore} onDone={onDone} />
      </header>
      <ErrorAlert error={polled.error} title="Could not refresh (showing the last known state)" />

      <div className="card">
        <h2>Migration job</h2>
        <Fields
          items={[
            ['Display name', job.displayName],
            ['ID', <code key="id">{job.id}</code>],
            ['Migration type', typeName(job.type)],
            ['Source connection profile', <Link key="s" to={paths.profile(job.sourceProfileId)}>{job.sourceProfileName ?? job.sourceProfileId}</Link>],
            ['Source database engine', engineName(job.sourceEngine)],
            [
              'Destination',
              <span key="d">
                <Link to={paths.profile(job.destinationProfileId)}>{job.destinationProfileName ?? job.destinationProfileId}</Link> ({engineName(job.destinationEngine)})
              </span>,
            ],
            ['Connectivity method', connectivityName(job.connectivityMethod)],
            ['Created', formatTime(job.createTime)],
            ['Running duration', formatDuration(job.durationSeconds)],
            ['Started', formatTime(job.startTime)],
            ['Ended', formatTime(job.endTime)],
            ['Dump parallelism', `${job.dumpParallelism} ${job.dumpParallelism === 1 ? 'table' : 'tables'} at a time`],
            [
              'Objects',
              job.selection.include.length === 0 && job.selection.exclude.length === 0
                ? 'Every table'
                : [
                    job.selection.include.length > 0 ? `include ${job.selection.include.join(', ')}` : 'every table',
                    job.selection.exclude.length > 0 ? `exclude ${job.selection.exclude.join(', ')}` : '',
                  ]
                    .filter(Boolean)
                    .join('; '),
            ],
          ]}
        />
      </div>

      <div className="card">
        <h2>Status</h2>
        <Fields
          items={[
            ['Status', <StatusBadge key="st" status={job.status} label={job.statusLabel} />],
            ['Substatus', job.substatus ?? 'None'],
            ['Node', <span key="node" data-testid="job-node"><NodeName node={job.node} /></span>],
          ]}
        />
        <ErrorPanel job={job} />
        {!job.error && <p className="muted small">No current error.</p>}
      </div>

      <div className="card">
        <h2>Progress</h2>
        <div className="progress-summary">
          <ProgressBar fraction={fraction} label="Job progress" />
          <span data-testid="job-percent">{progress.percent.toFixed(0)}%</span>
        </div>
        <div className="stats">
          <div className="stat">
            <span className="stat-value" data-testid="tables-progress">
              {progress.tablesCompleted} of {progress.tablesTotal}
            </span>
            <span className="stat-label">Tables copied</span>
          </div>
          <div className="stat">
            <span className="stat-value">
              {formatCount(progress.rowsCopied)}
              {progress.totalsEstimated && progress.estimatedRows > 0 ? ` of ~${formatCount(progress.estimatedRows)}` : ''}
            </span>
            <span className="stat-label">{progress.totalsEstimated ? 'Rows copied (total estimated)' : 'Rows copied'}</span>
          </div>
          <div className="stat">
            <span className="stat-value">{formatBytes(progress.bytesCopied)}</span>
            <span className="stat-label">Bytes copied</span>
          </div>
        </div>
        <h3>Throughput</h3>
        <ThroughputPanel job={job} samples={samples} />
      </div>

      {job.type === 'continuous' && (
        // A one-time job has no change stream: no lag to show.
        <div className="card">
          <h2>Replication lag</h2>
          <ReplicationPanel job={job} samples={samples} />
        </div>
      )}

      <div className="card">
        <h2>Tables</h2>
        <ObjectsTable objects={objects} />
      </div>

      <div className="card">
        <h2>Data validation</h2>
        <ValidationPanel job={job} />
      </div>

      <div className="card">
        <h2>History</h2>
        <EventHistory events={events} />
      </div>
    </section>
  );
}
