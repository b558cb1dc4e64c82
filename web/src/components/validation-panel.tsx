/**
 * The job page's data validation: a Validate button (POST :validate) and the latest validation's
 * results, refreshed every 2 s: per table the rows on each side, whether the checksums are
 * equal, and the differing rows with both sides' values. Earlier validations are listed below.
 */
import { useState } from 'react';
import { api } from '../api/client';
import type { Job, RowDifference, TableValidation, Validation } from '../api/types';
import { formatCount, formatTime } from '../lib/format';
import { usePolling } from '../lib/use-polling';
import { Alert, ErrorAlert } from './alert';
import { ProgressBar } from './progress-bar';

const REFRESH_MILLIS = 2000;

/** Statuses in which a job has copied data that can be compared. */
function canValidate(job: Job): boolean {
  if (job.status === 'NOT_STARTED' || job.status === 'STARTING') return false;
  return !(job.phase === 'FULL_DUMP' && job.status !== 'COMPLETED');
}

const STATE_LABELS: Record<TableValidation['state'], string> = {
  PENDING: 'Waiting',
  RUNNING: 'Comparing',
  EQUAL: 'Equal',
  DIFFERENT: 'Different',
  ERROR: 'Not compared',
};

function verdict(v: Validation): { tone: 'success' | 'error' | 'warning' | 'info'; text: string } {
  const s = v.summary;
  if (v.status === 'RUNNING') return { tone: 'info', text: `Validating: ${s.tablesEqual + s.tablesDifferent + s.tablesFailed} of ${s.tables} tables compared.` };
  if (v.status === 'FAILED') return { tone: 'error', text: `The validation failed: ${v.error?.message ?? 'unknown error'}` };
  if (v.clean) return { tone: 'success', text: `Clean: all ${s.tables} tables are equal (${formatCount(s.rowsCompared)} rows compared).` };
  return {
    tone: s.tablesDifferent > 0 ? 'error' : 'warning',
    text: `Not clean: ${s.tablesDifferent} of ${s.tables} tables differ${s.tablesFailed > 0 ? `, ${s.tablesFailed} could not be compared` : ''}.`,
  };
}

const showValue = (value: string | null | undefined) => (value === null || value === undefined ? 'NULL' : JSON.stringify(value));

function keyText(d: RowDifference): string {
  return d.key === null ? 'row without key' : Object.entries(d.key).map(([k, v]) => `${k} = ${showValue(v)}`).join(', ');
}

function DifferenceRows({ table }: { table: TableValidation }) {
  return (
    <ul className="validation-differences" data-testid="validation-differences" data-table={table.table}>
      {table.differences.map((d, i) => {
        const columns = d.kind === 'changed' ? Object.keys(d.source ?? {}).filter((c) => d.source?.[c] !== d.destination?.[c]) : [];
        return (
          <li key={i} data-kind={d.kind}>
            <code>{keyText(d)}</code>{' '}
            {d.kind === 'missing' && 'is missing on the destination'}
            {d.kind === 'extra' && 'exists only on the destination'}
            {d.kind === 'changed' &&
              columns.map((c) => (
                <span key={c} className="small">
                  {' '}
                  <code>{c}</code>: source {showValue(d.source?.[c])}, destination {showValue(d.destination?.[c])};
                </span>
              ))}
          </li>
        );
      })}
      {table.differencesTruncated && <li className="muted small">More rows differ than are listed.</li>}
    </ul>
  );
}

function ValidationTable({ validation }: { validation: Validation }) {
  return (
    <table className="table compact" data-testid="validation-table">
      <thead>
        <tr>
          <th>Table</th>
          <th>Result</th>
          <th>Source rows</th>
          <th>Destination rows</th>
          <th>Checksum</th>
        </tr>
      </thead>
      <tbody>
        {validation.tables.map((t) => (
          <tr key={t.table} data-table={t.table} data-state={t.state}>
            <td>
              <code>{t.table}</code>
              {t.destinationTable !== t.table && <div className="small muted">to {t.destinationTable}</div>}
            </td>
            <td>
              {STATE_LABELS[t.state]}
              {t.state === 'RUNNING' && t.estimatedRows > 0 && <ProgressBar fraction={Math.min(1, t.sourceRows / t.estimatedRows)} label={`${t.table} validation progress`} />}
              {t.message && <div className="small muted">{t.message}</div>}
              {t.differences.length > 0 && <DifferenceRows table={t} />}
            </td>
            <td className="nowrap">{formatCount(t.sourceRows)}</td>
            <td className="nowrap">{formatCount(t.destinationRows)}</td>
            <td>{t.sourceChecksum === null || t.destinationChecksum === null ? '—' : t.sourceChecksum === t.destinationChecksum ? 'Equal' : 'Differs'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ValidationPanel({ job }: { job: Job }) {
  const polled = usePolling((signal) => api.listJobValidations(job.id, signal), REFRESH_MILLIS, [job.id]);
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<unknown>(null);
  const validations = polled.data ?? [];
  const latest = validations[0];
  const running = latest?.status === 'RUNNING';

  const start = async () => {
    setStarting(true);
    setStartError(null);
    try {
      await api.validateJob(job.id);
      polled.reload();
    } catch (error) {
      setStartError(error);
    } finally {
      setStarting(false);
    }
  };

  return (
    <div data-testid="validation-panel">
      <div className="toolbar">
        <button type="button" onClick={() => void start()} disabled={starting || running || !canValidate(job)} data-testid="validate-button">
          {running ? 'Validating…' : 'Validate'}
        </button>
        <span className="muted small">
          Compares row counts, checksums of every value and the differing rows of each table between source and destination.
          {!canValidate(job) && ' Available once the full dump is done.'}
        </span>
      </div>
      <ErrorAlert error={startError} title="Could not start the validation" />
      <ErrorAlert error={polled.error} title="Could not refresh the validations" />
      {latest === undefined ? (
        <p className="muted">No validation yet.</p>
      ) : (
        <div data-testid="validation-result" data-status={latest.status} data-clean={String(latest.clean)}>
          <Alert tone={verdict(latest).tone} title={`Validation ${latest.id}, ${formatTime(latest.createTime)}`}>
            {verdict(latest).text}
            {latest.recheckedInFlight && ' Run during the incremental load: differing rows were read again once the load had applied them.'}
          </Alert>
          <ValidationTable validation={latest} />
        </div>
      )}
      {validations.length > 1 && (
        <details>
          <summary>Earlier validations</summary>
          <ul>
            {validations.slice(1).map((v) => (
              <li key={v.id}>
                {formatTime(v.createTime)}: {verdict(v).text}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
