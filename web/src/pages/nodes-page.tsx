/**
 * Nodes: every `ferry serve` of the metadata store with its state, heartbeat and the jobs it
 * runs, refreshed every 2 s; Drain (confirmed first) moves a node's jobs to the other nodes so
 * that it can be upgraded, Undo drain lets it take jobs again.
 */
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import type { FerryNode } from '../api/types';
import { ErrorAlert } from '../components/alert';
import { ConfirmDialog } from '../components/confirm-dialog';
import { NodeStateBadge } from '../components/node-state-badge';
import { formatDuration, formatTime } from '../lib/format';
import { drainConfirmation } from '../lib/node-actions';
import { Link, paths } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const REFRESH_MILLIS = 2000;

/** The browser's clock, every second: heartbeat ages move between polls that changed nothing. */
function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

function heartbeatAge(node: FerryNode, now: number): string {
  const time = Date.parse(node.heartbeatTime);
  if (Number.isNaN(time)) return '—';
  // Clocks of the browser and the store differ a little: never "in 1 s".
  return `${formatDuration(Math.max(0, (now - time) / 1000))} ago`;
}

type NodeAction = 'drain' | 'undrain';

export function NodesPage() {
  const polled = usePolling((signal) => api.listNodes(signal), REFRESH_MILLIS, []);
  const now = useNow(1000);
  const [pending, setPending] = useState<FerryNode | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const nodes = polled.data ?? [];

  const run = async (node: FerryNode, action: NodeAction) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      if (action === 'drain') {
        await api.drainNode(node.id);
        setNotice(`Drain asked for node ${node.id}: its jobs move to other nodes at their next safe point.`);
      } else {
        await api.undrainNode(node.id);
        setNotice(`Node ${node.id} takes jobs again.`);
      }
    } catch (caught) {
      setError(caught);
    }
    setBusy(false);
    setPending(null);
    polled.reload();
  };

  return (
    <section className="page">
      <header className="page-header">
        <h1>Nodes</h1>
      </header>
      <div className="toolbar">
        <span className="muted small">
          The servers (<code>ferry serve</code>) of the metadata store and the jobs each runs. Refreshes every 2 s.
        </span>
      </div>
      {notice && (
        <div className="alert alert-info" role="status">
          {notice}
        </div>
      )}
      <ErrorAlert error={error} title="The action was refused" />
      <ErrorAlert error={polled.error} title="Could not load the nodes" />

      {polled.data === undefined && polled.error === null ? (
        <p className="muted">Loading…</p>
      ) : nodes.length === 0 ? (
        <div className="empty">
          <p>No nodes.</p>
        </div>
      ) : (
        <table className="table" data-testid="nodes-table">
          <thead>
            <tr>
              <th>Node</th>
              <th>Address</th>
              <th>Version</th>
              <th>State</th>
              <th>Last heartbeat</th>
              <th>Jobs</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {nodes.map((node) => (
              <NodeRow key={node.id} node={node} now={now} busy={busy} onDrain={() => setPending(node)} onUndrain={() => void run(node, 'undrain')} />
            ))}
          </tbody>
        </table>
      )}
      {pending && (
        <ConfirmDialog
          confirmation={drainConfirmation(pending, nodes)}
          busy={busy}
          onConfirm={() => void run(pending, 'drain')}
          onCancel={() => setPending(null)}
        />
      )}
    </section>
  );
}

function NodeRow({ node, now, busy, onDrain, onUndrain }: { node: FerryNode; now: number; busy: boolean; onDrain: () => void; onUndrain: () => void }) {
  // Servers before leases send neither jobs nor drainTime.
  const jobs = node.jobs ?? [];
  const drainAsked = node.drainTime != null;
  return (
    <tr data-node-id={node.id} data-state={node.state}>
      <td>
        <code>{node.id}</code>
      </td>
      <td>
        <code>{node.address}</code>
      </td>
      <td>{node.version}</td>
      <td>
        <NodeStateBadge state={node.state} />
        {drainAsked && <div className="muted small nowrap">drain asked {formatTime(node.drainTime)}</div>}
        {node.stopTime && <div className="muted small nowrap">stopped {formatTime(node.stopTime)}</div>}
      </td>
      <td className="nowrap" data-testid="heartbeat-age" title={formatTime(node.heartbeatTime)}>
        {heartbeatAge(node, now)}
      </td>
      <td>
        {jobs.length === 0 ? (
          <span className="muted" data-testid="node-jobs">
            None
          </span>
        ) : (
          <ul className="plain-list" data-testid="node-jobs">
            {jobs.map((id) => (
              <li key={id}>
                <Link to={paths.job(id)}>
                  <code>{id}</code>
                </Link>
              </li>
            ))}
          </ul>
        )}
        {node.maxJobs != null && (
          <div className="muted small" data-testid="node-max-jobs">
            at most {node.maxJobs} {node.maxJobs === 1 ? 'job' : 'jobs'}
          </div>
        )}
      </td>
      <td className="nowrap">
        {drainAsked ? (
          <button type="button" data-action="undrain" disabled={busy} onClick={onUndrain}>
            Undo drain
          </button>
        ) : node.state === 'UP' ? (
          <button type="button" data-action="drain" disabled={busy} onClick={onDrain}>
            Drain
          </button>
        ) : null}
      </td>
    </tr>
  );
}
