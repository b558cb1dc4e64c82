/**
 * The metadata store: profiles, jobs, job objects, job events and checkpoints.
 *
 * Contract for every implementation:
 * - Every method is durable when its promise resolves (SQLite: committed in WAL mode).
 * - Methods are atomic: a rejected promise changed nothing.
 * - `updateJob` is a compare-and-set on `status` when `expectedStatus` is given, so that a
 *   user action and a worker's event cannot both win.
 * - Secrets (passwords, client keys) are stored as given: the service encrypts them before
 *   they reach the store.
 */
import type { ConnectionProfile, SshTunnelSettings } from '../core/connection-profile.js';
import type { JobStatus } from '../core/lifecycle.js';
import type {
  JobHistoryEvent,
  JobListOrder,
  JobObject,
  JobObjectState,
  MigrationJob,
  NewJobHistoryEvent,
} from '../core/migration-job.js';

/** A profile as stored: the public fields plus encrypted secrets. */
export interface StoredProfile extends Omit<ConnectionProfile, 'passwordSet' | 'tls' | 'sshTunnel'> {
  tlsMode: ConnectionProfile['tls']['mode'];
  /** The SSH server to tunnel through (connectivityMethod "ssh-tunnel"), null otherwise. */
  sshTunnel: SshTunnelSettings | null;
  /** The SSH private key, encrypted like the password; null when unset. */
  encryptedSshPrivateKey: string | null;
  /** Encrypted secrets (opaque strings from the service's secret box), null when unset. */
  encryptedPassword: string | null;
  caCertificate: string | null;
  clientCertificate: string | null;
  encryptedClientKey: string | null;
}

/**
 * Every kind of encrypted value the store holds, by owner and field. A new kind of secret
 * (an SSH private key, ...) is one more entry here and one more column in the store's
 * secret-column list: key checks and rotation then cover it.
 */
export type SecretField = 'password' | 'clientKey' | 'sshPrivateKey';

/** One encrypted value, wherever it lives in the store. */
export interface StoredSecret {
  /** What owns it; today every secret belongs to a connection profile. */
  owner: 'connectionProfile';
  ownerId: string;
  field: SecretField;
  /** The encrypted value (opaque string from the service's secret box). */
  value: string;
}

export interface SecretReplacement extends StoredSecret {
  /** The value the secret must still hold, for the replacement to apply. */
  previous: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque token for the next page, null on the last page. */
  nextPageToken: string | null;
  /** How many items match the filters over all pages, when the list counts them (jobs do). */
  totalSize?: number;
}

export interface ListOptions {
  /** 1..1000, default 100. */
  pageSize?: number;
  pageToken?: string | null;
}

export interface JobListOptions extends ListOptions {
  /** Only jobs in one of these statuses; empty or absent: any status. */
  status?: JobStatus[];
  /** Only jobs whose id or display name contains this text, ignoring ASCII case; empty: all. */
  search?: string;
  /** Default 'createTime'. A page token only continues the order it was made for. */
  orderBy?: JobListOrder;
}

/** A job's tables in one state, counted and summed: what the job's progress is computed from. */
export interface JobObjectTotals {
  jobId: string;
  state: JobObjectState;
  /** How many of the job's tables are in this state. */
  tables: number;
  rowsCopied: number;
  bytesCopied: number;
  /** Sum of the estimates that are known (negative estimates, meaning unknown, count as 0). */
  estimatedRows: number;
  estimatedBytes: number;
}

/** An API token as stored: never the secret, only its SHA-256. */
export interface StoredApiToken {
  id: string;
  /** What the token is for, e.g. "ci" or "alice's laptop". */
  name: string;
  /** Hex SHA-256 of the secret; unique. */
  tokenHash: string;
  createTime: string;
  /** When the token last authenticated a request (updated at most about once a minute), null if never. */
  lastUsedTime: string | null;
  /** When it was revoked, null while valid. A revoked token stays listed. */
  revokeTime: string | null;
}

/** A `ferry serve` working on the store (a node), as its heartbeats record it. */
export interface StoredNode {
  /** --node-id; default "<host name>:<port>". */
  id: string;
  /** Where its API listens, e.g. "http://10.0.0.5:8080". */
  address: string;
  /** The Ferry version it runs. */
  version: string;
  startTime: string;
  /** Its last heartbeat. */
  heartbeatTime: string;
  /** When it stopped cleanly; null while it runs or when it died without stopping. */
  stopTime: string | null;
  /** When a drain of the node was asked (`ferry nodes drain`), null when it is not draining. Only setNodeDrain writes it. */
  drainTime: string | null;
  /** Its --max-jobs: at most this many jobs run on it; null: no limit. */
  maxJobs: number | null;
}

/**
 * A job's lease (issue 10): the node that runs the job holds it and renews it. Times are by
 * the store's clock (PostgreSQL now(); SQLite the process clock).
 */
export interface StoredJobLease {
  jobId: string;
  /** The holder; null once it released the lease. */
  nodeId: string | null;
  /** Grows by one at every acquisition, never decreases: the fencing token (src/pipeline/job-fence.ts). */
  epoch: number;
  /** When the lease ends unless renewed (ISO 8601, UTC). */
  expireTime: string;
}

export interface MetadataStore {
  /** Creates or upgrades the schema (versioned migrations, each in its own transaction). */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /**
   * A value that changes whenever a write commits, through this store or any other
   * connection to the same database: while it stays equal, what was read stays true, so a
   * reader may reuse what it derived (the service's jobs list does).
   */
  dataVersion(): Promise<string>;

  insertProfile(profile: StoredProfile): Promise<void>;
  /** Replaces the row; rejects with NOT_FOUND when it does not exist. */
  updateProfile(profile: StoredProfile): Promise<void>;
  getProfile(id: string): Promise<StoredProfile | null>;
  /** The display names of those of these profiles that exist, by id (one read for a page of jobs). */
  getProfileNames(ids: readonly string[]): Promise<Map<string, string>>;
  /** Ordered by createTime, then id. */
  listProfiles(options?: ListOptions): Promise<Page<StoredProfile>>;
  deleteProfile(id: string): Promise<void>;

  /** Every encrypted secret the store holds, of every kind, ordered by owner, ownerId, field. */
  listSecrets(): Promise<StoredSecret[]>;
  /**
   * Replaces secrets in one transaction (key rotation): every one applies, or none. Rejects
   * with FAILED_PRECONDITION, changing nothing, when a secret no longer holds its `previous`
   * value (someone wrote it meanwhile).
   */
  replaceSecrets(replacements: SecretReplacement[]): Promise<void>;

  insertJob(job: MigrationJob): Promise<void>;
  /**
   * Replaces the row. With `expectedStatus`, only when the stored status equals it:
   * resolves false (and changes nothing) otherwise.
   */
  updateJob(job: MigrationJob, expectedStatus?: JobStatus): Promise<boolean>;
  getJob(id: string): Promise<MigrationJob | null>;
  /**
   * One page of jobs matching the filters, in `orderBy` order (then id), with `totalSize`:
   * the number of jobs matching the filters. Pages are keyset pages: a job is listed once
   * across the pages of one walk even while jobs are created or deleted meanwhile (jobs
   * created behind the walk's position are not seen by it). A job whose sort key changes
   * during the walk (updateTime, displayName) may move across the walk's position.
   */
  listJobs(options?: JobListOptions): Promise<Page<MigrationJob>>;
  /** Jobs that use the profile as source or destination. */
  listJobsUsingProfile(profileId: string): Promise<MigrationJob[]>;
  /** Deletes the job with its objects, events and checkpoints. */
  deleteJob(id: string): Promise<void>;

  /** Inserts or replaces by (jobId, name). */
  upsertJobObjects(objects: JobObject[]): Promise<void>;
  /** Ordered by name. */
  listJobObjects(jobId: string): Promise<JobObject[]>;
  /**
   * For each of these jobs, its tables grouped by state (one read for a whole page of jobs).
   * Jobs without tables have no entry. In no particular order.
   */
  totalJobObjects(jobIds: readonly string[]): Promise<JobObjectTotals[]>;
  deleteJobObjects(jobId: string): Promise<void>;

  appendJobEvent(event: NewJobHistoryEvent): Promise<JobHistoryEvent>;
  /** Oldest first; `afterId` returns only newer events. */
  listJobEvents(jobId: string, options?: { afterId?: number; limit?: number }): Promise<JobHistoryEvent[]>;

  /**
   * Checkpoints: small JSON documents a running job keeps (which schema objects it created,
   * which phase steps are done). Keyed by (jobId, key).
   */
  putCheckpoint(jobId: string, key: string, value: unknown): Promise<void>;
  getCheckpoint<T = unknown>(jobId: string, key: string): Promise<T | null>;
  deleteCheckpoints(jobId: string): Promise<void>;

  /** Rejects with ALREADY_EXISTS when the id or the hash is taken. */
  insertApiToken(token: StoredApiToken): Promise<void>;
  /** Every token, revoked ones included, ordered by createTime, then id. */
  listApiTokens(): Promise<StoredApiToken[]>;
  /** The token whose secret has this hex SHA-256, revoked or not; null when none. */
  findApiTokenByHash(tokenHash: string): Promise<StoredApiToken | null>;
  /**
   * Sets revokeTime; once it resolves, findApiTokenByHash reports the token revoked.
   * Revoking a revoked token keeps its first revokeTime. Rejects with NOT_FOUND for an unknown id.
   */
  revokeApiToken(id: string, time: string): Promise<void>;
  /** Records that the token authenticated a request at `time`. Unknown ids are ignored. */
  touchApiToken(id: string, time: string): Promise<void>;

  /** Inserts or replaces the node by id (a start or a heartbeat); an existing drainTime stays as it is. */
  putNode(node: Omit<StoredNode, 'drainTime'>): Promise<void>;
  /** Every node ever recorded, stopped ones included, ordered by id. */
  listNodes(): Promise<StoredNode[]>;
  /** Sets (a time) or clears (null) the node's drainTime. Rejects with NOT_FOUND for an unknown node. */
  setNodeDrain(nodeId: string, drainTime: string | null): Promise<void>;

  /**
   * Takes the job's lease for `nodeId` until the store's clock reaches now + leaseMs, when
   * nobody holds it, its holder released it, it expired, or `nodeId` itself holds it (a node
   * restarted under the same id); the epoch grows by one. One compare-and-set statement: of
   * several nodes racing for one lease, exactly one gets it. Resolves null when another node
   * holds it; rejects with NOT_FOUND when the job does not exist.
   */
  acquireJobLease(jobId: string, nodeId: string, leaseMs: number): Promise<StoredJobLease | null>;
  /**
   * Extends to now + leaseMs (store clock) those of these leases that `nodeId` still holds
   * with the same epoch, expired or not (nobody took them meanwhile), in one statement;
   * resolves with the job ids renewed. A job missing from the answer is lost.
   */
  renewJobLeases(nodeId: string, held: ReadonlyArray<{ jobId: string; epoch: number }>, leaseMs: number): Promise<string[]>;
  /** Gives the lease up (nodeId becomes null) when `nodeId` still holds it with this epoch; the epoch stays. Otherwise does nothing. */
  releaseJobLease(jobId: string, nodeId: string, epoch: number): Promise<void>;
  /** Every lease row, released and expired ones included, ordered by job id. */
  listJobLeases(): Promise<StoredJobLease[]>;
}
