import { describe, expect, it } from 'vitest';
import {
  ACTION_TABLE,
  EVENT_TABLE,
  JOB_ACTIONS,
  JOB_EVENTS,
  JOB_PHASES,
  JOB_STATUSES,
  availableActions,
  nextStateForEvent,
  nextStatusForAction,
  substatusOf,
  type JobAction,
  type JobPhase,
  type JobStatus,
} from '../../src/core/lifecycle.js';
import { withStatus, runningMillisAt, type MigrationJob } from '../../src/core/migration-job.js';

/**
 * SPEC.md section 3, written out by hand as the oracle: for each status (and phase where it
 * matters) the exact list of actions a user may take.
 */
const EXPECTED: Array<{ status: JobStatus; phase: JobPhase | null; actions: JobAction[] }> = [
  { status: 'NOT_STARTED', phase: null, actions: ['start', 'delete'] },
  { status: 'STARTING', phase: null, actions: ['delete'] },
  { status: 'STARTING', phase: 'FULL_DUMP', actions: ['delete'] },
  { status: 'RUNNING', phase: 'FULL_DUMP', actions: ['stop', 'delete'] },
  { status: 'RUNNING', phase: 'INCREMENTAL_LOAD', actions: ['stop', 'promote', 'delete'] },
  { status: 'RUNNING', phase: 'PROMOTE', actions: ['stop', 'delete'] },
  { status: 'RUNNING_WITH_ERRORS', phase: 'FULL_DUMP', actions: ['stop', 'restart'] },
  { status: 'RUNNING_WITH_ERRORS', phase: 'INCREMENTAL_LOAD', actions: ['stop', 'restart', 'promote'] },
  { status: 'COMPLETED', phase: 'FULL_DUMP', actions: ['delete'] },
  { status: 'COMPLETED', phase: 'PROMOTE', actions: ['delete'] },
  { status: 'FAILED', phase: 'FULL_DUMP', actions: ['restart', 'delete'] },
  { status: 'FAILED', phase: 'INCREMENTAL_LOAD', actions: ['restart', 'delete'] },
  { status: 'RESTARTING', phase: 'FULL_DUMP', actions: ['delete'] },
  { status: 'STOPPED', phase: 'FULL_DUMP', actions: ['restart', 'delete'] },
  { status: 'STOPPED', phase: 'INCREMENTAL_LOAD', actions: ['resume', 'promote', 'delete'] },
  { status: 'STOPPED', phase: 'PROMOTE', actions: ['resume', 'promote', 'delete'] },
  { status: 'RESUMING', phase: 'INCREMENTAL_LOAD', actions: ['delete'] },
  { status: 'STOPPING', phase: 'FULL_DUMP', actions: ['delete'] },
  { status: 'STOPPING', phase: 'INCREMENTAL_LOAD', actions: ['delete'] },
];

describe('user actions (SPEC.md section 3)', () => {
  it.each(EXPECTED)('$status in $phase allows exactly $actions', ({ status, phase, actions }) => {
    expect(availableActions({ status, phase })).toEqual(actions);
  });

  // Every cell of the table, generated: an action is allowed exactly when availableActions lists it.
  const cells = JOB_STATUSES.flatMap((status) =>
    [null, ...JOB_PHASES].flatMap((phase) => JOB_ACTIONS.map((action) => ({ status, phase, action }))),
  );
  it.each(cells)('$status/$phase x $action agrees with availableActions', ({ status, phase, action }) => {
    const target = nextStatusForAction({ status, phase }, action);
    expect(availableActions({ status, phase }).includes(action)).toBe(target !== null);
  });

  it('fills every status x action cell (no missing entries)', () => {
    for (const status of JOB_STATUSES) {
      expect(Object.keys(ACTION_TABLE[status]).sort()).toEqual([...JOB_ACTIONS].sort());
    }
  });

  it('delete leads to deletion wherever it is allowed; start only from Not started', () => {
    for (const status of JOB_STATUSES) {
      for (const phase of [null, ...JOB_PHASES]) {
        const del = nextStatusForAction({ status, phase }, 'delete');
        if (del !== null) expect(del).toBe('deleted');
        const start = nextStatusForAction({ status, phase }, 'start');
        expect(start === null).toBe(status !== 'NOT_STARTED');
      }
    }
  });

  it('stop leads to Stopping; restart to Restarting; resume to Resuming', () => {
    expect(nextStatusForAction({ status: 'RUNNING', phase: 'FULL_DUMP' }, 'stop')).toBe('STOPPING');
    expect(nextStatusForAction({ status: 'FAILED', phase: 'FULL_DUMP' }, 'restart')).toBe('RESTARTING');
    expect(nextStatusForAction({ status: 'STOPPED', phase: 'INCREMENTAL_LOAD' }, 'resume')).toBe('RESUMING');
  });
});

describe('substatus', () => {
  it('follows the seed wording', () => {
    expect(substatusOf({ status: 'RUNNING', phase: 'FULL_DUMP' })).toBe('Full dump in progress');
    expect(substatusOf({ status: 'RUNNING', phase: 'INCREMENTAL_LOAD' })).toBe('Incremental load');
    expect(substatusOf({ status: 'RUNNING', phase: 'PROMOTE' })).toBe('Promote in progress');
    expect(substatusOf({ status: 'RUNNING_WITH_ERRORS', phase: 'INCREMENTAL_LOAD' })).toBe('Incremental load');
    expect(substatusOf({ status: 'FAILED', phase: 'INCREMENTAL_LOAD' })).toBe('Failed in Incremental load');
    expect(substatusOf({ status: 'FAILED', phase: 'FULL_DUMP' })).toBe('Failed in Full dump');
    expect(substatusOf({ status: 'STOPPED', phase: 'INCREMENTAL_LOAD' })).toBe('Stopped in Incremental load');
    for (const status of ['NOT_STARTED', 'STARTING', 'COMPLETED', 'RESTARTING', 'RESUMING', 'STOPPING'] as const) {
      expect(substatusOf({ status, phase: 'FULL_DUMP' })).toBeNull();
    }
  });
});

describe('system events', () => {
  it('fills every status x event cell', () => {
    for (const status of JOB_STATUSES) {
      expect(Object.keys(EVENT_TABLE[status]).sort()).toEqual([...JOB_EVENTS].sort());
    }
  });

  it('walks a one-time job from Starting to Completed', () => {
    let state = { status: 'STARTING' as JobStatus, phase: null as JobPhase | null };
    state = nextStateForEvent(state, 'started')!;
    expect(state).toEqual({ status: 'RUNNING', phase: 'FULL_DUMP' });
    state = nextStateForEvent(state, 'degraded')!;
    expect(state).toEqual({ status: 'RUNNING_WITH_ERRORS', phase: 'FULL_DUMP' });
    state = nextStateForEvent(state, 'recovered')!;
    expect(state).toEqual({ status: 'RUNNING', phase: 'FULL_DUMP' });
    state = nextStateForEvent(state, 'completed')!;
    expect(state).toEqual({ status: 'COMPLETED', phase: 'FULL_DUMP' });
  });

  it('walks a continuous job through incremental load and promote', () => {
    let state = nextStateForEvent({ status: 'STARTING', phase: null }, 'started')!;
    state = nextStateForEvent(state, 'dumpCompleted')!;
    expect(state).toEqual({ status: 'RUNNING', phase: 'INCREMENTAL_LOAD' });
    state = nextStateForEvent(state, 'promoteBegan')!;
    expect(state).toEqual({ status: 'RUNNING', phase: 'PROMOTE' });
    state = nextStateForEvent(state, 'promoted')!;
    expect(state.status).toBe('COMPLETED');
  });

  it('keeps the phase when failing and stopping, so the substatus names it', () => {
    const failed = nextStateForEvent({ status: 'RUNNING', phase: 'INCREMENTAL_LOAD' }, 'failed')!;
    expect(substatusOf(failed)).toBe('Failed in Incremental load');
    const stopped = nextStateForEvent({ status: 'STOPPING', phase: 'FULL_DUMP' }, 'stopped')!;
    expect(substatusOf(stopped)).toBe('Stopped in Full dump');
  });

  it('refuses events that cannot happen', () => {
    expect(nextStateForEvent({ status: 'COMPLETED', phase: 'FULL_DUMP' }, 'started')).toBeNull();
    expect(nextStateForEvent({ status: 'NOT_STARTED', phase: null }, 'completed')).toBeNull();
    expect(nextStateForEvent({ status: 'STOPPED', phase: 'FULL_DUMP' }, 'degraded')).toBeNull();
  });
});

describe('running time', () => {
  const base: MigrationJob = {
    id: 'j', displayName: 'j', type: 'one-time', sourceProfileId: 's', destinationProfileId: 'd',
    sourceEngine: 'postgresql', destinationEngine: 'postgresql', connectivityMethod: 'direct',
    selection: { include: [], exclude: [] }, dumpParallelism: 2, labels: {}, status: 'NOT_STARTED', phase: null,
    error: null, promoteRequested: false, createTime: '2026-01-01T00:00:00.000Z', updateTime: '2026-01-01T00:00:00.000Z',
    startTime: null, endTime: null, runningMillis: 0, runStartTime: null,
  };

  it('counts only the time spent in running statuses', () => {
    let job = withStatus(base, 'STARTING', null, '2026-01-01T00:00:10.000Z');
    expect(job.startTime).toBe('2026-01-01T00:00:10.000Z');
    job = withStatus(job, 'RUNNING', 'FULL_DUMP', '2026-01-01T00:00:20.000Z');
    job = withStatus(job, 'STOPPED', 'FULL_DUMP', '2026-01-01T00:00:40.000Z');
    expect(job.runningMillis).toBe(30_000);
    expect(runningMillisAt(job, '2026-01-01T01:00:00.000Z')).toBe(30_000);
    job = withStatus(job, 'RESTARTING', 'FULL_DUMP', '2026-01-01T00:01:00.000Z');
    expect(runningMillisAt(job, '2026-01-01T00:01:05.000Z')).toBe(35_000);
    job = withStatus(job, 'COMPLETED', 'FULL_DUMP', '2026-01-01T00:01:10.000Z');
    expect(job.runningMillis).toBe(40_000);
    expect(job.endTime).toBe('2026-01-01T00:01:10.000Z');
    expect(job.startTime).toBe('2026-01-01T00:00:10.000Z');
  });
});
