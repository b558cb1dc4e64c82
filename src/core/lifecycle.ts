/**
 * The migration job lifecycle, as defined by the seed page (Database Migration Service's
 * "Review a migration job"): ten statuses, three phases, six user actions.
 *
 * Two exhaustive tables drive everything:
 * - ACTION_TABLE: status x user action -> refused, or the next status. The compiler checks
 *   that every cell is filled (no Partial).
 * - EVENT_TABLE: status x system event -> ignored-is-an-error, or the next status.
 * Pure: no I/O, no clock.
 */

export const JOB_STATUSES = [
  'NOT_STARTED',
  'STARTING',
  'RUNNING',
  'RUNNING_WITH_ERRORS',
  'COMPLETED',
  'FAILED',
  'RESTARTING',
  'STOPPED',
  'RESUMING',
  'STOPPING',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** The words the seed and the console use for each status. */
export const STATUS_LABELS: { [S in JobStatus]: string } = {
  NOT_STARTED: 'Not started',
  STARTING: 'Starting...',
  RUNNING: 'Running',
  RUNNING_WITH_ERRORS: 'Running with errors',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  RESTARTING: 'Restarting',
  STOPPED: 'Stopped',
  RESUMING: 'Resuming',
  STOPPING: 'Stopping...',
};

export const JOB_PHASES = ['FULL_DUMP', 'INCREMENTAL_LOAD', 'PROMOTE'] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export const PHASE_LABELS: { [P in JobPhase]: string } = {
  FULL_DUMP: 'Full dump in progress',
  INCREMENTAL_LOAD: 'Incremental load',
  PROMOTE: 'Promote in progress',
};

/** Phase names as they read after "Failed in" / "Stopped in". */
const PHASE_NAMES: { [P in JobPhase]: string } = {
  FULL_DUMP: 'Full dump',
  INCREMENTAL_LOAD: 'Incremental load',
  PROMOTE: 'Promote',
};

export const JOB_ACTIONS = ['start', 'stop', 'resume', 'restart', 'promote', 'delete'] as const;
export type JobAction = (typeof JOB_ACTIONS)[number];

export type JobType = 'one-time' | 'continuous';

/** What the lifecycle needs to know of a job. */
export interface LifecycleState {
  status: JobStatus;
  /** The phase the job is in, or was in when it stopped or failed. Null before the first start. */
  phase: JobPhase | null;
}

/** Where an action leads: a status, or 'deleted' (the job record goes away). */
export type ActionTarget = JobStatus | 'deleted';

/** A cell: refused (null), or where the action leads. A function when the answer depends on the phase. */
type Cell = null | ActionTarget | ((phase: JobPhase | null) => ActionTarget | null);

const inIncrementalLoad = (to: ActionTarget) => (phase: JobPhase | null) =>
  phase === 'INCREMENTAL_LOAD' || phase === 'PROMOTE' ? to : null;
const inFullDump = (to: ActionTarget) => (phase: JobPhase | null) =>
  phase === 'FULL_DUMP' || phase === null ? to : null;
const whilePhase = (want: JobPhase, to: ActionTarget) => (phase: JobPhase | null) =>
  phase === want ? to : null;

/**
 * Status x action. SPEC.md section 3, exactly:
 * - Running: Stop, Delete; Promote only in Incremental load.
 * - Running with errors: Stop, Restart, Promote (Promote only in Incremental load: there is
 *   nothing to promote during a full dump). No Delete: the seed lists none; stop first.
 * - Stopped: in Incremental load Resume, Promote, Delete; in Full dump Restart, Delete.
 */
export const ACTION_TABLE: { [S in JobStatus]: { [A in JobAction]: Cell } } = {
  NOT_STARTED: { start: 'STARTING', stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
  STARTING: { start: null, stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
  RUNNING: {
    start: null,
    stop: 'STOPPING',
    resume: null,
    restart: null,
    promote: whilePhase('INCREMENTAL_LOAD', 'RUNNING'),
    delete: 'deleted',
  },
  RUNNING_WITH_ERRORS: {
    start: null,
    stop: 'STOPPING',
    resume: null,
    restart: 'RESTARTING',
    promote: whilePhase('INCREMENTAL_LOAD', 'RUNNING_WITH_ERRORS'),
    delete: null,
  },
  COMPLETED: { start: null, stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
  FAILED: { start: null, stop: null, resume: null, restart: 'RESTARTING', promote: null, delete: 'deleted' },
  RESTARTING: { start: null, stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
  STOPPED: {
    start: null,
    stop: null,
    resume: inIncrementalLoad('RESUMING'),
    restart: inFullDump('RESTARTING'),
    promote: inIncrementalLoad('RESUMING'),
    delete: 'deleted',
  },
  RESUMING: { start: null, stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
  STOPPING: { start: null, stop: null, resume: null, restart: null, promote: null, delete: 'deleted' },
};

/** The status an action leads to, or null when the action is not allowed now. */
export function nextStatusForAction(state: LifecycleState, action: JobAction): ActionTarget | null {
  const cell = ACTION_TABLE[state.status][action];
  if (cell === null) return null;
  if (typeof cell === 'function') return cell(state.phase);
  return cell;
}

/** The actions a user may take now, in the order of JOB_ACTIONS. */
export function availableActions(state: LifecycleState): JobAction[] {
  return JOB_ACTIONS.filter((action) => nextStatusForAction(state, action) !== null);
}

/** The substatus shown beside the status, or null where the seed shows none. */
export function substatusOf(state: LifecycleState): string | null {
  const phase = state.phase;
  switch (state.status) {
    case 'RUNNING':
    case 'RUNNING_WITH_ERRORS':
      return phase ? PHASE_LABELS[phase] : null;
    case 'FAILED':
      return phase ? `Failed in ${PHASE_NAMES[phase]}` : null;
    case 'STOPPED':
      return phase ? `Stopped in ${PHASE_NAMES[phase]}` : null;
    case 'NOT_STARTED':
    case 'STARTING':
    case 'COMPLETED':
    case 'RESTARTING':
    case 'RESUMING':
    case 'STOPPING':
      return null;
  }
}

/** Events the pipeline reports. Each moves the job along, or is illegal in the status. */
export const JOB_EVENTS = [
  /** Prerequisites checked, replication objects and schema ready: data starts to move. */
  'started',
  /** The full dump of a continuous job finished: change capture takes over. */
  'dumpCompleted',
  /** The full dump of a one-time job finished: the job is done. */
  'completed',
  /** Promote finished: the destination stands alone. */
  'promoted',
  /** A retryable error: some work is failing and being retried. */
  'degraded',
  /** Every failing operation succeeded again. */
  'recovered',
  /** An error that stops the job. */
  'failed',
  /** The job stopped after a user's Stop. */
  'stopped',
  /** Restart wiped the destination; the job starts over. */
  'restarted',
  /** Resume (or an automatic recovery from Failed) picked up the checkpoint. */
  'resumed',
  /** A promote request begins (the job is in Incremental load and Running). */
  'promoteBegan',
] as const;
export type JobEvent = (typeof JOB_EVENTS)[number];

type EventCell = null | { status: JobStatus; phase?: JobPhase | 'keep' };

const ACTIVE_ERROR_CELLS = {
  degraded: { status: 'RUNNING_WITH_ERRORS', phase: 'keep' },
  failed: { status: 'FAILED', phase: 'keep' },
} as const satisfies Record<string, EventCell>;

/** Status x event. Null means the event cannot happen in that status (a pipeline bug). */
export const EVENT_TABLE: { [S in JobStatus]: { [E in JobEvent]: EventCell } } = {
  NOT_STARTED: {
    started: null, dumpCompleted: null, completed: null, promoted: null, degraded: null, recovered: null,
    failed: null, stopped: null, restarted: null, resumed: null, promoteBegan: null,
  },
  STARTING: {
    started: { status: 'RUNNING', phase: 'FULL_DUMP' },
    dumpCompleted: null, completed: null, promoted: null,
    degraded: { status: 'STARTING', phase: 'keep' },
    recovered: { status: 'STARTING', phase: 'keep' },
    failed: { status: 'FAILED', phase: 'FULL_DUMP' },
    stopped: null, restarted: null, resumed: null, promoteBegan: null,
  },
  RUNNING: {
    started: null,
    dumpCompleted: { status: 'RUNNING', phase: 'INCREMENTAL_LOAD' },
    completed: { status: 'COMPLETED', phase: 'keep' },
    promoted: { status: 'COMPLETED', phase: 'keep' },
    ...ACTIVE_ERROR_CELLS,
    recovered: { status: 'RUNNING', phase: 'keep' },
    stopped: null, restarted: null, resumed: null,
    promoteBegan: { status: 'RUNNING', phase: 'PROMOTE' },
  },
  RUNNING_WITH_ERRORS: {
    started: null,
    dumpCompleted: { status: 'RUNNING_WITH_ERRORS', phase: 'INCREMENTAL_LOAD' },
    completed: { status: 'COMPLETED', phase: 'keep' },
    promoted: { status: 'COMPLETED', phase: 'keep' },
    ...ACTIVE_ERROR_CELLS,
    recovered: { status: 'RUNNING', phase: 'keep' },
    stopped: null, restarted: null, resumed: null,
    promoteBegan: { status: 'RUNNING_WITH_ERRORS', phase: 'PROMOTE' },
  },
  COMPLETED: {
    started: null, dumpCompleted: null, completed: null, promoted: null, degraded: null, recovered: null,
    failed: null, stopped: null, restarted: null, resumed: null, promoteBegan: null,
  },
  FAILED: {
    started: null, dumpCompleted: null, completed: null, promoted: null, degraded: null, recovered: null,
    failed: { status: 'FAILED', phase: 'keep' },
    stopped: null, restarted: null,
    resumed: { status: 'RESUMING', phase: 'keep' },
    promoteBegan: null,
  },
  RESTARTING: {
    started: null, dumpCompleted: null, completed: null, promoted: null,
    degraded: { status: 'RESTARTING', phase: 'keep' },
    recovered: { status: 'RESTARTING', phase: 'keep' },
    failed: { status: 'FAILED', phase: 'FULL_DUMP' },
    stopped: null,
    restarted: { status: 'STARTING', phase: 'FULL_DUMP' },
    resumed: null, promoteBegan: null,
  },
  STOPPED: {
    started: null, dumpCompleted: null, completed: null, promoted: null, degraded: null, recovered: null,
    failed: null, stopped: null, restarted: null, resumed: null, promoteBegan: null,
  },
  RESUMING: {
    started: null, dumpCompleted: null, completed: null, promoted: null,
    degraded: { status: 'RESUMING', phase: 'keep' },
    recovered: { status: 'RESUMING', phase: 'keep' },
    failed: { status: 'FAILED', phase: 'keep' },
    stopped: null, restarted: null,
    resumed: { status: 'RUNNING', phase: 'keep' },
    promoteBegan: null,
  },
  STOPPING: {
    started: null, dumpCompleted: null, completed: { status: 'COMPLETED', phase: 'keep' }, promoted: null,
    degraded: { status: 'STOPPING', phase: 'keep' },
    recovered: { status: 'STOPPING', phase: 'keep' },
    failed: { status: 'FAILED', phase: 'keep' },
    stopped: { status: 'STOPPED', phase: 'keep' },
    restarted: null, resumed: null, promoteBegan: null,
  },
};

/** The state after an event, or null when the event is illegal in the status. */
export function nextStateForEvent(state: LifecycleState, event: JobEvent): LifecycleState | null {
  const cell = EVENT_TABLE[state.status][event];
  if (cell === null) return null;
  const phase = cell.phase === undefined || cell.phase === 'keep' ? state.phase : (cell.phase as JobPhase);
  return { status: cell.status, phase };
}

/** Statuses in which a worker must be running the job. */
export const ACTIVE_STATUSES: readonly JobStatus[] = [
  'STARTING',
  'RUNNING',
  'RUNNING_WITH_ERRORS',
  'RESTARTING',
  'RESUMING',
  'STOPPING',
];

/** Failed jobs whose error is recoverable are also driven by a worker: it probes and resumes. */
export function needsWorker(status: JobStatus, errorRecoverable: boolean): boolean {
  return ACTIVE_STATUSES.includes(status) || (status === 'FAILED' && errorRecoverable);
}

export function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

export function isJobAction(value: string): value is JobAction {
  return (JOB_ACTIONS as readonly string[]).includes(value);
}
