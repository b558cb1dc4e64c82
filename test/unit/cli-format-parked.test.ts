/**
 * How `ferry jobs describe` and `ferry jobs watch` show a parked table: its state, its error,
 * how many changes wait and when they were last tried; and the job's limit of parked changes.
 */
import { describe, expect, it } from 'vitest';
import { renderJobDetails, renderWatchFrame } from '../../src/cli/format.js';
import type { JobObjectView, JobView } from '../../src/service/inputs.js';

const TIME = '2026-03-01T12:00:00.000Z';

const JOB = {
  id: 'cdc', displayName: 'CDC', type: 'continuous', status: 'RUNNING_WITH_ERRORS', statusLabel: 'Running with errors', substatus: 'Incremental load',
  phase: 'INCREMENTAL_LOAD', availableActions: ['stop', 'restart', 'promote'], sourceProfileId: 's', sourceProfileName: null, sourceEngine: 'postgresql',
  destinationProfileId: 'd', destinationProfileName: null, destinationEngine: 'postgresql', connectivityMethod: 'direct', selection: { include: [], exclude: [] },
  dumpParallelism: 4, zeroDatePolicy: 'null', schemaMapping: {}, definerPolicy: 'keep', maxParkedChanges: 250_000, labels: {}, createTime: TIME, updateTime: TIME,
  startTime: TIME, endTime: null, durationSeconds: 60,
  error: { code: 'CONSTRAINT_VIOLATION', message: 'Table parked, the other tables keep replicating. public.gamma: ...', retryable: true, recoverable: true, details: {}, time: TIME },
  progress: { tablesTotal: 2, tablesCompleted: 2, rowsCopied: 10, bytesCopied: 100, estimatedRows: 10, estimatedBytes: 100, percent: 100 },
  replication: null, promoteRequested: false, node: null,
} satisfies JobView;

const base = { rowsCopied: 5, bytesCopied: 50, estimatedRows: 5, estimatedBytes: 50, updateTime: TIME };
const OBJECTS: JobObjectView[] = [
  { ...base, name: 'public.alpha', destination: 'public.alpha', state: 'REPLICATING', error: null, parkedChanges: 0, lastRetryTime: null },
  {
    ...base, name: 'public.gamma', destination: 'public.gamma', state: 'ERROR', parkedChanges: 1234, lastRetryTime: '2026-03-01T12:05:00.000Z',
    error: { code: 'CONSTRAINT_VIOLATION', message: 'new row violates check constraint "c". First failing change: insert id=7.', retryable: true, recoverable: true, details: {}, time: TIME },
  },
];

describe('parked tables in the CLI', () => {
  it('watch shows the parked table, its error, its waiting changes and the last retry', () => {
    const frame = renderWatchFrame(JOB, { objects: OBJECTS, ascii: true });
    expect(frame).toMatch(/public\.gamma\s+ERROR \(parked\)/);
    expect(frame).toMatch(/public\.alpha\s+replicating/);
    expect(frame).toMatch(/public\.gamma: CONSTRAINT_VIOLATION: new row violates check constraint "c"\. First failing change: insert id=7\. \[1,234 changes parked, last retry .+\]/);
    expect(frame).not.toMatch(/public\.alpha: /);
  });

  it('describe shows the limit of parked changes of a continuous job', () => {
    const text = renderJobDetails(JOB, { objects: OBJECTS, ascii: true });
    expect(text).toMatch(/Max parked changes:\s+250,000/);
    expect(text).toContain('1,234 changes parked');
    expect(renderJobDetails({ ...JOB, type: 'one-time' })).not.toContain('Max parked changes');
  });
});
