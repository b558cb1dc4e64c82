/** Migration jobs, their tables (job objects) and their event history. */
import type { EngineKind, ConnectivityMethod } from './connection-profile.js';
import type { JobAction, JobPhase, JobStatus, JobType } from './lifecycle.js';
import type { JobError } from './errors.js';
import type { ObjectSelection } from './object-selection.js';
import type { SchemaMapping } from './schema-mapping.js';

export const ZERO_DATE_POLICIES = ['null', 'refuse'] as const;
export type ZeroDatePolicy = (typeof ZERO_DATE_POLICIES)[number];

/**
 * MySQL's ENUM error value '' (what a non-strict sql_mode stores for an invalid label) bound for
 * PostgreSQL: 'label' adds '' as the first label of the mapped enum type, so the value is kept
 * (the default: lossless); 'null' writes NULL and records a warning naming the column.
 */
export const ENUM_ERROR_VALUE_POLICIES = ['label', 'null'] as const;
export type EnumErrorValuePolicy = (typeof ENUM_ERROR_VALUE_POLICIES)[number];

/**
 * A NUL character (\0) in MySQL text bound for PostgreSQL, whose text cannot hold it: 'refuse'
 * fails the job naming the table, the column and the row's key (the default); 'strip' removes
 * it and records a warning naming the table and column.
 */
export const NUL_CHARACTER_POLICIES = ['refuse', 'strip'] as const;
export type NulCharacterPolicy = (typeof NUL_CHARACTER_POLICIES)[number];

/** The default of MigrationJob.maxParkedChanges. */
export const DEFAULT_MAX_PARKED_CHANGES = 1_000_000;

export interface MigrationJob {
  id: string;
  displayName: string;
  type: JobType;
  sourceProfileId: string;
  destinationProfileId: string;
  sourceEngine: EngineKind;
  destinationEngine: EngineKind;
  connectivityMethod: ConnectivityMethod;
  selection: ObjectSelection;
  dumpParallelism: number;
  /**
   * What to do with MySQL zero dates ('0000-00-00') going to an engine that has none:
   * write NULL and warn (absent or 'null', the default), or fail the job ('refuse').
   */
  zeroDatePolicy?: ZeroDatePolicy;
  /** MySQL ENUM error values ('') bound for PostgreSQL: absent or 'label' keeps them, 'null' writes NULL and warns. */
  enumErrorValuePolicy?: EnumErrorValuePolicy;
  /** NUL characters in MySQL text bound for PostgreSQL: absent or 'refuse' fails the job, 'strip' removes them and warns. */
  nulCharacterPolicy?: NulCharacterPolicy;
  /**
   * Source schema (PostgreSQL) or database (MySQL) → the name it gets on the destination
   * (core/schema-mapping.ts). Absent or empty: names are kept (a MySQL destination profile's
   * database still receives a single selected schema).
   */
  schemaMapping?: SchemaMapping;
  /**
   * MySQL to MySQL: who the carried views, routines, triggers and events run as on the
   * destination: 'keep' (absent: the source's DEFINER), 'invoker' (SQL SECURITY INVOKER, the
   * destination user as definer) or an account 'user@host'. See SchemaObjectOptions.
   */
  definerPolicy?: string;
  /**
   * Continuous jobs: how many changes may wait for tables the destination refuses (parked
   * tables, Running with errors) before the job is Failed. Absent: DEFAULT_MAX_PARKED_CHANGES.
   * A warning is recorded at 80 %.
   */
  maxParkedChanges?: number;
  /** Promote only after a clean data validation (the latest validation succeeded with every table equal). Absent: false. */
  requireValidation?: boolean;
  labels: Record<string, string>;
  status: JobStatus;
  /** The phase the job is in, or was in when it stopped or failed; null before the first start. */
  phase: JobPhase | null;
  error: JobError | null;
  /** Set by Promote while the job is Stopped: Resume then promotes. */
  promoteRequested: boolean;
  createTime: string;
  updateTime: string;
  /** When the job was first started (null before). */
  startTime: string | null;
  /** When the job reached Completed. */
  endTime: string | null;
  /** Milliseconds spent running, summed over every run; the current run adds to it live. */
  runningMillis: number;
  /** When the current run began (null while not running). */
  runStartTime: string | null;
}

/**
 * The orders a job list can have: a field, ascending unless followed by " desc". Ties are
 * broken by id in the same direction, so every order is total and pages never overlap.
 */
export const JOB_LIST_ORDERS = ['createTime', 'createTime desc', 'updateTime', 'updateTime desc', 'displayName', 'displayName desc'] as const;
export type JobListOrder = (typeof JOB_LIST_ORDERS)[number];

/**
 * FAILED: the table's copy failed during the full dump (Restart with `objects` copies it again).
 * ERROR: during the incremental load the destination refuses the table's changes; they are
 * parked on the destination, retried with backoff, and the table rejoins the stream by itself.
 */
export const JOB_OBJECT_STATES = ['NOT_STARTED', 'DUMPING', 'DUMPED', 'REPLICATING', 'FAILED', 'COMPLETED', 'ERROR'] as const;
export type JobObjectState = (typeof JOB_OBJECT_STATES)[number];

/** One migrated table. */
export interface JobObject {
  jobId: string;
  /** "schema.table", as on the source. */
  name: string;
  /** "schema.table" on the destination when the job's schema mapping renames it; absent when it is `name`. */
  destinationName?: string;
  state: JobObjectState;
  rowsCopied: number;
  bytesCopied: number;
  estimatedRows: number;
  estimatedBytes: number;
  error: JobError | null;
  /** State ERROR: changes of the table kept (parked) on the destination, waiting to apply. Absent: 0. */
  parkedChanges?: number;
  /** State ERROR: when applying the parked changes was last tried. */
  lastRetryTime?: string;
  updateTime: string;
}

export const JOB_EVENT_KINDS = ['created', 'action', 'status', 'phase', 'error', 'errorCleared', 'info'] as const;
export type JobEventKind = (typeof JOB_EVENT_KINDS)[number];

/** One line of a job's history. */
export interface JobHistoryEvent {
  id: number;
  jobId: string;
  time: string;
  kind: JobEventKind;
  message: string;
  /** Who caused it: 'system', or the actor of a user action (e.g. 'api', 'cli'). */
  actor: string;
  action?: JobAction;
  status?: JobStatus;
  phase?: JobPhase | null;
  details?: Record<string, unknown>;
}

export type NewJobHistoryEvent = Omit<JobHistoryEvent, 'id'>;

/** Statuses during which the job's running time grows. */
const TIMED_STATUSES: readonly JobStatus[] = ['STARTING', 'RUNNING', 'RUNNING_WITH_ERRORS', 'RESTARTING', 'RESUMING', 'STOPPING'];

/**
 * The job after moving to `status`/`phase` at `now` (ISO time): keeps running time,
 * start and end times consistent. Pure.
 */
export function withStatus(job: MigrationJob, status: JobStatus, phase: JobPhase | null, now: string): MigrationJob {
  const wasTimed = TIMED_STATUSES.includes(job.status) && job.runStartTime !== null;
  const isTimed = TIMED_STATUSES.includes(status);
  let runningMillis = job.runningMillis;
  let runStartTime = job.runStartTime;
  if (wasTimed && !isTimed) {
    runningMillis += Math.max(0, Date.parse(now) - Date.parse(job.runStartTime as string));
    runStartTime = null;
  } else if (!wasTimed && isTimed) {
    runStartTime = now;
  }
  return {
    ...job,
    status,
    phase,
    runningMillis,
    runStartTime,
    startTime: job.startTime ?? (isTimed ? now : null),
    endTime: status === 'COMPLETED' ? now : job.endTime,
    updateTime: now,
  };
}

/** Running time in milliseconds at `now`, including the current run. */
export function runningMillisAt(job: MigrationJob, now: string): number {
  if (job.runStartTime === null) return job.runningMillis;
  return job.runningMillis + Math.max(0, Date.parse(now) - Date.parse(job.runStartTime));
}
