import type { NodeState } from '../api/types';
import { nodeStateName } from '../lib/format';

const TONES: Record<NodeState, string> = {
  UP: 'success',
  LOST: 'danger',
  STOPPED: 'neutral',
  DRAINING: 'progress',
  DRAINED: 'warning',
};

/** A node's state in words, coloured by what it means. */
export function NodeStateBadge({ state }: { state: NodeState }) {
  return (
    <span className={`badge badge-${TONES[state] ?? 'neutral'}`} data-state={state}>
      {nodeStateName(state)}
    </span>
  );
}
