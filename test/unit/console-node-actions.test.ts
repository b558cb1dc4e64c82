/**
 * The console's Drain confirmation (web/src/lib/node-actions.ts): it names the jobs that move
 * and warns when no other node is up to take them.
 */
import { describe, expect, it } from 'vitest';
import type { FerryNode } from '../../web/src/api/types.js';
import { drainConfirmation, takesJobs } from '../../web/src/lib/node-actions.js';

function node(id: string, overrides: Partial<FerryNode> = {}): FerryNode {
  return {
    id,
    address: `http://${id}:8080`,
    version: '0.1.0',
    state: 'UP',
    startTime: '2026-01-01T00:00:00.000Z',
    heartbeatTime: '2026-01-01T00:00:05.000Z',
    stopTime: null,
    jobs: [],
    drainTime: null,
    maxJobs: null,
    ...overrides,
  };
}

describe('console drain confirmation', () => {
  it('names the jobs that move to the other nodes', () => {
    const a = node('a', { jobs: ['shop', 'billing'] });
    const confirmation = drainConfirmation(a, [a, node('b')]);
    expect(confirmation.title).toBe('Drain node "a"?');
    expect(confirmation.paragraphs).toContain('It runs 2 jobs now: shop, billing.');
    expect(confirmation.warning).toBeNull();
    expect(confirmation.confirmLabel).toBe('Drain');
    expect(drainConfirmation(node('c'), [node('c')]).paragraphs).toContain('It runs no job now.');
  });

  it('warns when no other node that is up and not draining can take the jobs', () => {
    const a = node('a', { jobs: ['shop'] });
    const others = [node('b', { state: 'LOST' }), node('c', { state: 'DRAINING', drainTime: '2026-01-01T00:00:00.000Z' }), node('d', { state: 'STOPPED' })];
    expect(others.filter(takesJobs)).toEqual([]);
    expect(drainConfirmation(a, [a, ...others]).warning).toContain('No other node is up to take these jobs');
    // A node without jobs moves nothing: no warning.
    expect(drainConfirmation(node('e'), [node('e'), ...others]).warning).toBeNull();
  });
});
