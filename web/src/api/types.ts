/**
 * The REST API's shapes as the console reads them: a mirror of the OpenAPI document
 * (GET /openapi.json; built from src/api/routes.ts and src/service/inputs.ts). The console
 * imports nothing from the server: it only speaks HTTP.
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

/** The seed's words for each status (the API sends them as statusLabel too). */
export const STATUS_LABELS: Record<JobStatus, string> = {
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

/** The orders the jobs list can be asked for (then by id). */
export const JOB_LIST_ORDERS = ['createTime', 'createTime desc', 'updateTime', 'updateTime desc', 'displayName', 'displayName desc'] as const;
export type JobListOrder = (typeof JOB_LIST_ORDERS)[number];

export const JOB_ACTIONS = ['start', 'stop', 'resume', 'restart', 'promote', 'delete'] as const;
export type JobAction = (typeof JOB_ACTIONS)[number];

export type EngineKind = 'postgresql' | 'mysql';
export type TlsMode = 'none' | 'required' | 'server-only' | 'server-client';
export type ConnectivityMethod = 'direct' | 'ssh-tunnel';
export type JobType = 'one-time' | 'continuous';

export interface JobError {
  code: string;
  message: string;
  retryable: boolean;
  recoverable: boolean;
  details: Record<string, unknown>;
  time: string;
}

export interface Progress {
  tablesTotal: number;
  tablesCompleted: number;
  rowsCopied: number;
  bytesCopied: number;
  estimatedRows: number;
  estimatedBytes: number;
  /** True while a table is unfinished: the totals include estimates. */
  totalsEstimated: boolean;
  percent: number;
}

/**
 * Replication lag of a continuous job in Incremental load. Not every server sends it yet:
 * the console shows it when present.
 */
export interface Replication {
  lagSeconds?: number | null;
  lagBytes?: number | null;
  appliedChangesPerSecond?: number | null;
  /** Changes applied since the incremental load began. */
  changesApplied?: number | null;
}

export interface Job {
  id: string;
  displayName: string;
  type: JobType;
  status: JobStatus;
  statusLabel: string;
  substatus: string | null;
  phase: 'FULL_DUMP' | 'INCREMENTAL_LOAD' | 'PROMOTE' | null;
  availableActions: JobAction[];
  sourceProfileId: string;
  sourceProfileName: string | null;
  sourceEngine: EngineKind;
  destinationProfileId: string;
  destinationProfileName: string | null;
  destinationEngine: EngineKind;
  connectivityMethod: ConnectivityMethod;
  selection: { include: string[]; exclude: string[] };
  dumpParallelism: number;
  /** The limit of parked changes (the default when the job sets none). */
  maxParkedChanges: number;
  /** Promote is refused unless the latest data validation is clean. */
  requireValidation?: boolean;
  labels: Record<string, string>;
  createTime: string;
  updateTime: string;
  startTime: string | null;
  endTime: string | null;
  durationSeconds: number;
  error: JobError | null;
  progress: Progress;
  replication?: Replication | null;
  /** True when Promote was asked and is being carried out. */
  promoteRequested?: boolean;
  /** The id of the node that runs the job (holds its live lease), or null when no node runs it. */
  node: string | null;
}

/**
 * UP: heartbeat within the last 15 s; LOST: no heartbeat for longer without a clean stop;
 * STOPPED: stopped cleanly; DRAINING: drain asked, jobs still held; DRAINED: drain asked, no job held.
 */
export const NODE_STATES = ['UP', 'LOST', 'STOPPED', 'DRAINING', 'DRAINED'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** A `ferry serve` of the metadata store (GET /v1/nodes; "Node" in the OpenAPI document, renamed here to keep the DOM's Node). */
export interface FerryNode {
  id: string;
  /** Where its API listens. */
  address: string;
  version: string;
  state: NodeState;
  startTime: string;
  heartbeatTime: string;
  stopTime: string | null;
  /** The ids of the jobs it runs (holds a live lease of). */
  jobs: string[];
  /** When a drain was asked, or null. */
  drainTime: string | null;
  /** Its --max-jobs, or null for no limit. */
  maxJobs: number | null;
}

export type JobObjectState = 'NOT_STARTED' | 'DUMPING' | 'DUMPED' | 'REPLICATING' | 'FAILED' | 'COMPLETED' | 'ERROR';

export interface JobObject {
  name: string;
  state: JobObjectState;
  rowsCopied: number;
  bytesCopied: number;
  estimatedRows: number;
  estimatedBytes: number;
  error: JobError | null;
  /** State ERROR: changes waiting (parked) on the destination; 0 otherwise. */
  parkedChanges: number;
  /** State ERROR: when applying its parked changes was last tried. */
  lastRetryTime: string | null;
  updateTime: string;
}

export interface JobEvent {
  id: number;
  time: string;
  kind: string;
  message: string;
  actor: string;
  action?: JobAction;
  status?: JobStatus;
  phase?: string | null;
  details?: Record<string, unknown>;
}

export interface Profile {
  id: string;
  displayName: string;
  engine: EngineKind;
  host: string;
  port: number;
  database: string | null;
  username: string;
  passwordSet: boolean;
  tls: { mode: TlsMode; caCertificateSet: boolean; clientCertificateSet: boolean };
  connectivityMethod: ConnectivityMethod;
  sshTunnel: { host: string; port: number; username: string; privateKeySet: boolean; hostKeyFingerprint: string | null } | null;
  labels: Record<string, string>;
  createTime: string;
  updateTime: string;
}

export interface TlsInput {
  mode?: TlsMode;
  caCertificate?: string;
  clientCertificate?: string;
  clientKey?: string;
}

export interface CreateProfileInput {
  id?: string;
  displayName: string;
  engine: EngineKind;
  host: string;
  port?: number;
  database?: string | null;
  username: string;
  password?: string;
  tls?: TlsInput;
  connectivityMethod?: ConnectivityMethod;
  sshTunnel?: SshTunnelInput;
}

export interface SshTunnelInput {
  host?: string;
  port?: number;
  username?: string;
  /** Write-only. */
  privateKey?: string;
  hostKeyFingerprint?: string | null;
}

export interface UpdateProfileInput {
  displayName?: string;
  host?: string;
  port?: number;
  database?: string | null;
  username?: string;
  /** null removes the stored password. */
  password?: string | null;
  tls?: TlsInput;
  connectivityMethod?: ConnectivityMethod;
  sshTunnel?: SshTunnelInput;
}

export interface CreateJobInput {
  id?: string;
  displayName: string;
  type: JobType;
  sourceProfileId: string;
  destinationProfileId: string;
  selection?: { include: string[]; exclude: string[] };
  dumpParallelism?: number;
  /** Continuous jobs: changes that may wait for tables the destination refuses before the job is Failed. */
  maxParkedChanges?: number;
  /** MySQL to PostgreSQL: MySQL's ENUM error value '' kept as a label (default) or written as NULL. */
  enumErrorValuePolicy?: 'label' | 'null';
  /** MySQL to PostgreSQL: NUL characters in text refuse the job (default) or are removed. */
  nulCharacterPolicy?: 'refuse' | 'strip';
}

export interface UpdateJobInput {
  displayName?: string;
  selection?: { include: string[]; exclude: string[] };
  dumpParallelism?: number;
  maxParkedChanges?: number;
}

export interface VerifyCheck {
  code: string;
  side: 'source' | 'destination';
  severity: 'ok' | 'warning' | 'error';
  message: string;
  objects?: string[];
}

export interface VerifyReport {
  ok: boolean;
  checks: VerifyCheck[];
}

/** The include/exclude patterns of a job: "schema" or "schema.table", "*" any run of characters. */
export interface ObjectSelection {
  include: string[];
  exclude: string[];
}

/** A table of a source profile's database, and whether the patterns asked about select it. */
export interface SourceTable {
  schema: string;
  name: string;
  /** The source's estimate; -1 when unknown. */
  estimatedRows: number;
  selected: boolean;
}

export interface ConnectionTest {
  ok: boolean;
  serverVersion: string | null;
  settings: Record<string, string>;
  privileges: Record<string, boolean>;
  checks: VerifyCheck[];
  error: { code: string; message: string } | null;
}

/** A row that differs between source and destination (values in the canonical form, null for NULL). */
export interface RowDifference {
  kind: 'missing' | 'extra' | 'changed';
  key: Record<string, string | null> | null;
  source: Record<string, string | null> | null;
  destination: Record<string, string | null> | null;
}

export interface TableValidation {
  table: string;
  destinationTable: string;
  state: 'PENDING' | 'RUNNING' | 'EQUAL' | 'DIFFERENT' | 'ERROR';
  keyed: boolean;
  sourceRows: number;
  destinationRows: number;
  sourceChecksum: string | null;
  destinationChecksum: string | null;
  estimatedRows: number;
  differences: RowDifference[];
  differencesTruncated: boolean;
  message: string | null;
}

/** A data validation of a job (GET /v1/migrationJobs/{id}/validations/{validationId}). */
export interface Validation {
  id: string;
  jobId: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  clean: boolean | null;
  createTime: string;
  endTime: string | null;
  actor: string;
  recheckedInFlight: boolean;
  summary: { tables: number; tablesEqual: number; tablesDifferent: number; tablesFailed: number; rowsCompared: number };
  tables: TableValidation[];
  error: { code: string; message: string } | null;
}
