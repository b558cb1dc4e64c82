/** What draining a node does, said before it is done. */
import type { FerryNode } from '../api/types';
import type { Confirmation } from './job-actions';

/** A node that may take jobs: up and not draining. */
export function takesJobs(node: FerryNode): boolean {
  return node.state === 'UP' && node.drainTime == null;
}

/** The confirmation of Drain for `node`, among every node of the store. */
export function drainConfirmation(node: FerryNode, nodes: FerryNode[]): Confirmation {
  const jobs = node.jobs ?? [];
  const others = nodes.filter((other) => other.id !== node.id && takesJobs(other));
  return {
    title: `Drain node "${node.id}"?`,
    paragraphs: [
      'The node takes no new job. Each job it runs stops at its next safe point and another node takes it over, resuming from the last checkpoint: no job is stopped.',
      jobs.length === 0 ? 'It runs no job now.' : `It runs ${jobs.length} ${jobs.length === 1 ? 'job' : 'jobs'} now: ${jobs.join(', ')}.`,
      'Once the node shows Drained it holds no job and can be stopped or upgraded. Undo drain lets it take jobs again.',
    ],
    warning:
      others.length === 0 && jobs.length > 0
        ? 'No other node is up to take these jobs: they wait, run by no node, until another node starts or the drain is undone.'
        : null,
    confirmLabel: 'Drain',
    danger: false,
  };
}
