/**
 * What both metadata stores (SQLite and PostgreSQL) share: the row shape of each table (the
 * same columns in both dialects, src/store/schema-migrations.ts), the mapping between rows
 * and domain objects, page tokens and the errors the contract names.
 */
import type { ConnectivityMethod, EngineKind, SshTunnelSettings, TlsMode } from '../core/connection-profile.js';
import { FerryError } from '../core/errors.js';
import type { JobError } from '../core/errors.js';
import type { JobAction, JobPhase, JobStatus, JobType } from '../core/lifecycle.js';
import { JOB_LIST_ORDERS } from '../core/migration-job.js';
import type {
  JobEventKind,
  JobHistoryEvent,
  JobListOrder,
  JobObject,
  JobObjectState,
  MigrationJob,
  NewJobHistoryEvent,
} from '../core/migration-job.js';
import type { ObjectSelection } from '../core/object-selection.js';
import type { SchemaMapping } from '../core/schema-mapping.js';
import type { JobListOptions, JobObjectTotals, SecretField, StoredApiToken, StoredJobLease, StoredNode, StoredProfile, StoredSecret } from './metadata-store.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
export const BUSY_TIMEOUT_MILLIS = 5000;
export const INVALID_PAGE_TOKEN = 'pageToken is not valid; pass the nextPageToken of a previous response';
export const MAX_SEARCH_LENGTH = 200;

/** How each job list order sorts: the row key it pages on and the direction (each store says how its SQL sorts the key). */
export const JOB_ORDER_KEYS: { [O in JobListOrder]: { key: keyof JobRow; descending: boolean } } = {
  createTime: { key: 'create_time', descending: false },
  'createTime desc': { key: 'create_time', descending: true },
  updateTime: { key: 'update_time', descending: false },
  'updateTime desc': { key: 'update_time', descending: true },
  displayName: { key: 'display_name', descending: false },
  'displayName desc': { key: 'display_name', descending: true },
};

/** The search text and order of a jobs list, checked: INVALID_ARGUMENT for a search too long or an unknown order. */
export function checkJobListOptions(options: JobListOptions): { search: string; orderBy: JobListOrder } {
  const search = options.search?.trim() ?? '';
  if (search.length > MAX_SEARCH_LENGTH) {
    throw new FerryError('INVALID_ARGUMENT', `search is ${search.length} characters long; search with at most ${MAX_SEARCH_LENGTH}`);
  }
  const orderBy = options.orderBy ?? 'createTime';
  if (!(JOB_LIST_ORDERS as readonly string[]).includes(orderBy)) {
    throw new FerryError('INVALID_ARGUMENT', `orderBy "${String(orderBy)}" is not valid; use one of ${JOB_LIST_ORDERS.map((o) => `"${o}"`).join(', ')}`);
  }
  return { search, orderBy };
}

/** A LIKE pattern matching the text anywhere, with %, _ and \\ as plain characters (ESCAPE '\\'). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export interface ProfileRow {
  id: string;
  display_name: string;
  engine: string;
  host: string;
  port: number;
  database: string | null;
  username: string;
  tls_mode: string;
  connectivity_method: string;
  labels: string;
  encrypted_password: string | null;
  ca_certificate: string | null;
  client_certificate: string | null;
  encrypted_client_key: string | null;
  create_time: string;
  update_time: string;
  ssh_tunnel: string | null;
  encrypted_ssh_private_key: string | null;
}

export interface JobRow {
  id: string;
  display_name: string;
  type: string;
  source_profile_id: string;
  destination_profile_id: string;
  source_engine: string;
  destination_engine: string;
  connectivity_method: string;
  selection: string;
  dump_parallelism: number;
  zero_date_policy: string;
  enum_error_value_policy: string;
  nul_character_policy: string;
  schema_mapping: string;
  definer_policy: string;
  max_parked_changes: number | null;
  require_validation: number;
  labels: string;
  status: string;
  phase: string | null;
  error: string | null;
  promote_requested: number;
  create_time: string;
  update_time: string;
  start_time: string | null;
  end_time: string | null;
  running_millis: number;
  run_start_time: string | null;
}

export interface JobObjectRow {
  job_id: string;
  name: string;
  state: string;
  rows_copied: number;
  bytes_copied: number;
  estimated_rows: number;
  estimated_bytes: number;
  error: string | null;
  update_time: string;
  destination_name: string | null;
  parked_changes: number;
  last_retry_time: string | null;
}

export interface JobEventRow {
  id: number;
  job_id: string;
  time: string;
  kind: string;
  message: string;
  actor: string;
  action: string | null;
  status: string | null;
  phase: string | null;
  has_phase: number;
  details: string | null;
}

export interface ApiTokenRow {
  id: string;
  name: string;
  token_hash: string;
  create_time: string;
  last_used_time: string | null;
  revoke_time: string | null;
}

export const PROFILE_COLUMNS = [
  'id', 'display_name', 'engine', 'host', 'port', 'database', 'username', 'tls_mode', 'connectivity_method',
  'labels', 'encrypted_password', 'ca_certificate', 'client_certificate', 'encrypted_client_key',
  'create_time', 'update_time', 'ssh_tunnel', 'encrypted_ssh_private_key',
] as const satisfies readonly (keyof ProfileRow)[];

export const JOB_COLUMNS = [
  'id', 'display_name', 'type', 'source_profile_id', 'destination_profile_id', 'source_engine',
  'destination_engine', 'connectivity_method', 'selection', 'dump_parallelism', 'zero_date_policy', 'enum_error_value_policy', 'nul_character_policy', 'schema_mapping', 'definer_policy', 'max_parked_changes', 'require_validation', 'labels', 'status', 'phase',
  'error', 'promote_requested', 'create_time', 'update_time', 'start_time', 'end_time', 'running_millis',
  'run_start_time',
] as const satisfies readonly (keyof JobRow)[];

export const JOB_OBJECT_COLUMNS = [
  'job_id', 'name', 'state', 'rows_copied', 'bytes_copied', 'estimated_rows', 'estimated_bytes', 'error',
  'update_time', 'destination_name', 'parked_changes', 'last_retry_time',
] as const satisfies readonly (keyof JobObjectRow)[];

export const JOB_EVENT_COLUMNS = [
  'job_id', 'time', 'kind', 'message', 'actor', 'action', 'status', 'phase', 'has_phase', 'details',
] as const satisfies readonly (keyof JobEventRow)[];

export const API_TOKEN_COLUMNS = [
  'id', 'name', 'token_hash', 'create_time', 'last_used_time', 'revoke_time',
] as const satisfies readonly (keyof ApiTokenRow)[];

/** Where each kind of secret lives (see StoredSecret): listSecrets and replaceSecrets cover every entry. */
export const SECRET_COLUMNS: ReadonlyArray<{ owner: StoredSecret['owner']; field: SecretField; table: string; column: string }> = [
  { owner: 'connectionProfile', field: 'password', table: 'connection_profiles', column: 'encrypted_password' },
  { owner: 'connectionProfile', field: 'clientKey', table: 'connection_profiles', column: 'encrypted_client_key' },
  { owner: 'connectionProfile', field: 'sshPrivateKey', table: 'connection_profiles', column: 'encrypted_ssh_private_key' },
];

/** The order of listSecrets: by owner id, then field. */
export function compareSecrets(a: StoredSecret, b: StoredSecret): number {
  return a.ownerId < b.ownerId ? -1 : a.ownerId > b.ownerId ? 1 : a.field < b.field ? -1 : a.field > b.field ? 1 : 0;
}

export function profileNotFound(id: string): FerryError {
  return new FerryError('NOT_FOUND', `Connection profile "${id}" does not exist; list profiles to find the right id`, {
    details: { profileId: id },
  });
}

export function jobNotFound(id: string): FerryError {
  return new FerryError('NOT_FOUND', `Migration job "${id}" does not exist; list jobs to find the right id`, {
    details: { jobId: id },
  });
}

export function nodeNotFound(id: string): FerryError {
  return new FerryError('NOT_FOUND', `Node "${id}" is not known to the metadata store; list nodes (\`ferry nodes list\`) to find the right id`, {
    details: { nodeId: id },
  });
}

export function resolvePageSize(pageSize: number | undefined): number {
  if (pageSize === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new FerryError('INVALID_ARGUMENT', `pageSize ${pageSize} is not valid; pass a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/** [key, id] for the default order (as tokens always were), [key, id, order] for the others. */
export function encodePageToken(key: string, id: string, orderBy: JobListOrder): string {
  const parts = orderBy === 'createTime' ? [key, id] : [key, id, orderBy];
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

export function decodePageToken(token: string, orderBy: JobListOrder): [string, string] {
  // Buffer's decoder skips characters it does not know: check the alphabet first.
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new FerryError('INVALID_ARGUMENT', INVALID_PAGE_TOKEN);
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', INVALID_PAGE_TOKEN, { cause: error });
  }
  if (
    !Array.isArray(decoded) ||
    (decoded.length !== 2 && decoded.length !== 3) ||
    typeof decoded[0] !== 'string' ||
    typeof decoded[1] !== 'string' ||
    (decoded.length === 3 && !(JOB_LIST_ORDERS as readonly unknown[]).includes(decoded[2]))
  ) {
    throw new FerryError('INVALID_ARGUMENT', INVALID_PAGE_TOKEN);
  }
  const tokenOrder = (decoded[2] as JobListOrder | undefined) ?? 'createTime';
  if (tokenOrder !== orderBy) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      `pageToken continues a list ordered by "${tokenOrder}", not by "${orderBy}"; pass the same orderBy as the request that returned it, or start again without pageToken`,
    );
  }
  return [decoded[0], decoded[1]];
}

export function checkpointJson(jobId: string, key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      `Checkpoint "${key}" of job "${jobId}" cannot be stored as JSON (${error instanceof Error ? error.message : String(error)}); store plain data`,
      { cause: error },
    );
  }
  if (text === undefined) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      `Checkpoint "${key}" of job "${jobId}" has no JSON form (${typeof value}); store plain data, or null`,
    );
  }
  return text;
}

export function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function parseOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function profileToRow(profile: StoredProfile): ProfileRow {
  return {
    id: profile.id,
    display_name: profile.displayName,
    engine: profile.engine,
    host: profile.host,
    port: profile.port,
    database: profile.database,
    username: profile.username,
    tls_mode: profile.tlsMode,
    connectivity_method: profile.connectivityMethod,
    labels: JSON.stringify(profile.labels),
    encrypted_password: profile.encryptedPassword,
    ca_certificate: profile.caCertificate,
    client_certificate: profile.clientCertificate,
    encrypted_client_key: profile.encryptedClientKey,
    ssh_tunnel: jsonOrNull(profile.sshTunnel),
    encrypted_ssh_private_key: profile.encryptedSshPrivateKey,
    create_time: profile.createTime,
    update_time: profile.updateTime,
  };
}

export function rowToProfile(row: ProfileRow): StoredProfile {
  return {
    id: row.id,
    displayName: row.display_name,
    engine: row.engine as EngineKind,
    host: row.host,
    port: row.port,
    database: row.database,
    username: row.username,
    tlsMode: row.tls_mode as TlsMode,
    connectivityMethod: row.connectivity_method as ConnectivityMethod,
    labels: JSON.parse(row.labels) as Record<string, string>,
    encryptedPassword: row.encrypted_password,
    caCertificate: row.ca_certificate,
    clientCertificate: row.client_certificate,
    encryptedClientKey: row.encrypted_client_key,
    sshTunnel: parseOrNull<SshTunnelSettings>(row.ssh_tunnel),
    encryptedSshPrivateKey: row.encrypted_ssh_private_key,
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}

export function apiTokenToRow(token: StoredApiToken): ApiTokenRow {
  return {
    id: token.id,
    name: token.name,
    token_hash: token.tokenHash,
    create_time: token.createTime,
    last_used_time: token.lastUsedTime,
    revoke_time: token.revokeTime,
  };
}

export function rowToApiToken(row: ApiTokenRow): StoredApiToken {
  return {
    id: row.id,
    name: row.name,
    tokenHash: row.token_hash,
    createTime: row.create_time,
    lastUsedTime: row.last_used_time,
    revokeTime: row.revoke_time,
  };
}

export function jobToRow(job: MigrationJob): JobRow {
  return {
    id: job.id,
    display_name: job.displayName,
    type: job.type,
    source_profile_id: job.sourceProfileId,
    destination_profile_id: job.destinationProfileId,
    source_engine: job.sourceEngine,
    destination_engine: job.destinationEngine,
    connectivity_method: job.connectivityMethod,
    selection: JSON.stringify(job.selection),
    dump_parallelism: job.dumpParallelism,
    zero_date_policy: job.zeroDatePolicy ?? 'null',
    enum_error_value_policy: job.enumErrorValuePolicy ?? 'label',
    nul_character_policy: job.nulCharacterPolicy ?? 'refuse',
    schema_mapping: JSON.stringify(job.schemaMapping ?? {}),
    definer_policy: job.definerPolicy ?? 'keep',
    max_parked_changes: job.maxParkedChanges ?? null,
    require_validation: job.requireValidation === true ? 1 : 0,
    labels: JSON.stringify(job.labels),
    status: job.status,
    phase: job.phase,
    error: jsonOrNull(job.error),
    promote_requested: job.promoteRequested ? 1 : 0,
    create_time: job.createTime,
    update_time: job.updateTime,
    start_time: job.startTime,
    end_time: job.endTime,
    running_millis: job.runningMillis,
    run_start_time: job.runStartTime,
  };
}

export function rowToJob(row: JobRow): MigrationJob {
  return {
    id: row.id,
    displayName: row.display_name,
    type: row.type as JobType,
    sourceProfileId: row.source_profile_id,
    destinationProfileId: row.destination_profile_id,
    sourceEngine: row.source_engine as EngineKind,
    destinationEngine: row.destination_engine as EngineKind,
    connectivityMethod: row.connectivity_method as ConnectivityMethod,
    selection: JSON.parse(row.selection) as ObjectSelection,
    dumpParallelism: row.dump_parallelism,
    // The default stays implicit, so jobs written before the policy existed read back unchanged.
    ...(row.zero_date_policy === 'refuse' ? { zeroDatePolicy: 'refuse' as const } : {}),
    ...(row.enum_error_value_policy === 'null' ? { enumErrorValuePolicy: 'null' as const } : {}),
    ...(row.nul_character_policy === 'strip' ? { nulCharacterPolicy: 'strip' as const } : {}),
    ...(row.schema_mapping === '{}' ? {} : { schemaMapping: JSON.parse(row.schema_mapping) as SchemaMapping }),
    ...(row.definer_policy !== 'keep' ? { definerPolicy: row.definer_policy } : {}),
    ...(row.max_parked_changes === null ? {} : { maxParkedChanges: row.max_parked_changes }),
    ...(row.require_validation === 1 ? { requireValidation: true } : {}),
    labels: JSON.parse(row.labels) as Record<string, string>,
    status: row.status as JobStatus,
    phase: row.phase as JobPhase | null,
    error: parseOrNull<JobError>(row.error),
    promoteRequested: row.promote_requested !== 0,
    createTime: row.create_time,
    updateTime: row.update_time,
    startTime: row.start_time,
    endTime: row.end_time,
    runningMillis: row.running_millis,
    runStartTime: row.run_start_time,
  };
}

export function jobObjectToRow(object: JobObject): JobObjectRow {
  return {
    job_id: object.jobId,
    name: object.name,
    state: object.state,
    rows_copied: object.rowsCopied,
    bytes_copied: object.bytesCopied,
    estimated_rows: object.estimatedRows,
    estimated_bytes: object.estimatedBytes,
    error: jsonOrNull(object.error),
    update_time: object.updateTime,
    destination_name: object.destinationName ?? null,
    parked_changes: object.parkedChanges ?? 0,
    last_retry_time: object.lastRetryTime ?? null,
  };
}

export function rowToJobObject(row: JobObjectRow): JobObject {
  return {
    jobId: row.job_id,
    name: row.name,
    state: row.state as JobObjectState,
    rowsCopied: row.rows_copied,
    bytesCopied: row.bytes_copied,
    estimatedRows: row.estimated_rows,
    estimatedBytes: row.estimated_bytes,
    error: parseOrNull<JobError>(row.error),
    updateTime: row.update_time,
    ...(row.destination_name === null ? {} : { destinationName: row.destination_name }),
    ...(row.parked_changes === 0 ? {} : { parkedChanges: row.parked_changes }),
    ...(row.last_retry_time === null ? {} : { lastRetryTime: row.last_retry_time }),
  };
}

export function jobEventToRow(event: NewJobHistoryEvent): Omit<JobEventRow, 'id'> {
  return {
    job_id: event.jobId,
    time: event.time,
    kind: event.kind,
    message: event.message,
    actor: event.actor,
    action: event.action ?? null,
    status: event.status ?? null,
    // phase has three states (absent, null, a phase): has_phase tells absent from null.
    phase: event.phase ?? null,
    has_phase: event.phase === undefined ? 0 : 1,
    details: jsonOrNull(event.details),
  };
}

export function rowToJobEvent(row: JobEventRow): JobHistoryEvent {
  const event: JobHistoryEvent = {
    id: row.id,
    jobId: row.job_id,
    time: row.time,
    kind: row.kind as JobEventKind,
    message: row.message,
    actor: row.actor,
  };
  if (row.action !== null) event.action = row.action as JobAction;
  if (row.status !== null) event.status = row.status as JobStatus;
  if (row.has_phase !== 0) event.phase = row.phase as JobPhase | null;
  if (row.details !== null) event.details = JSON.parse(row.details) as Record<string, unknown>;
  return event;
}

/** One row of a job's tables grouped by state (both stores' totalJobObjects query). */
export interface JobObjectTotalsRow {
  job_id: string;
  state: string;
  tables: number;
  rows_copied: number;
  bytes_copied: number;
  estimated_rows: number;
  estimated_bytes: number;
}

export function rowToJobObjectTotals(row: JobObjectTotalsRow): JobObjectTotals {
  return {
    jobId: row.job_id,
    state: row.state as JobObjectState,
    tables: row.tables,
    rowsCopied: row.rows_copied,
    bytesCopied: row.bytes_copied,
    estimatedRows: row.estimated_rows,
    estimatedBytes: row.estimated_bytes,
  };
}

export interface NodeRow {
  id: string;
  address: string;
  version: string;
  start_time: string;
  heartbeat_time: string;
  stop_time: string | null;
  drain_time: string | null;
  max_jobs: number | null;
}

/** The columns a start or a heartbeat writes (drain_time is written by setNodeDrain only). */
export const NODE_COLUMNS = ['id', 'address', 'version', 'start_time', 'heartbeat_time', 'stop_time', 'max_jobs'] as const satisfies readonly (keyof NodeRow)[];

export function nodeToRow(node: Omit<StoredNode, 'drainTime'>): Omit<NodeRow, 'drain_time'> {
  return {
    id: node.id, address: node.address, version: node.version, start_time: node.startTime, heartbeat_time: node.heartbeatTime, stop_time: node.stopTime,
    max_jobs: node.maxJobs,
  };
}

export function rowToNode(row: NodeRow): StoredNode {
  return {
    id: row.id, address: row.address, version: row.version, startTime: row.start_time, heartbeatTime: row.heartbeat_time, stopTime: row.stop_time,
    drainTime: row.drain_time, maxJobs: row.max_jobs,
  };
}

export interface JobLeaseRow {
  job_id: string;
  node_id: string | null;
  epoch: number;
  /** ISO text (SQLite) or a Date (PostgreSQL timestamptz). */
  expire_time: string | Date;
}

export function rowToJobLease(row: JobLeaseRow): StoredJobLease {
  const expireTime = row.expire_time instanceof Date ? row.expire_time.toISOString() : row.expire_time;
  return { jobId: row.job_id, nodeId: row.node_id, epoch: Number(row.epoch), expireTime };
}

/** Rejects a lease duration that is not a positive whole number of milliseconds. */
export function checkLeaseMs(leaseMs: number): void {
  if (!(Number.isSafeInteger(leaseMs) && leaseMs > 0)) {
    throw new FerryError('INVALID_ARGUMENT', `A lease of ${leaseMs} ms is not valid; pass a whole number of milliseconds above 0`);
  }
}
