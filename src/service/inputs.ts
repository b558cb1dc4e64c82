/**
 * The shapes callers send and receive, as zod schemas: the API validates requests with them
 * and builds its OpenAPI document from them; the CLI sends them.
 */
import { z } from 'zod';
import { CONNECTIVITY_METHODS, ENGINE_KINDS, TLS_MODES } from '../core/connection-profile.js';
import { JOB_ACTIONS, JOB_PHASES, JOB_STATUSES } from '../core/lifecycle.js';
import { DEFAULT_MAX_PARKED_CHANGES, ENUM_ERROR_VALUE_POLICIES, JOB_EVENT_KINDS, JOB_LIST_ORDERS, JOB_OBJECT_STATES, NUL_CHARACTER_POLICIES, ZERO_DATE_POLICIES } from '../core/migration-job.js';
import { ERROR_CODES } from '../core/errors.js';
import { TABLE_VALIDATION_STATES, VALIDATION_STATUSES } from '../core/validation.js';
import { NODE_STATES } from './node-heartbeat.js';

/** A name people read: not empty and not only white space. */
const displayName = z.string().min(1).max(200).regex(/\S/, 'must contain a character other than white space');

/** A host name, user or database name: no NUL or other control characters (they cannot reach a server intact). */
const connectionText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain NUL or other control characters');

const labels = z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'label keys are lowercase letters, digits, _ and -'), z.string().max(63));

export const TlsInput = z.strictObject({
  mode: z.enum(TLS_MODES).default('none'),
  caCertificate: z.string().optional(),
  clientCertificate: z.string().optional(),
  clientKey: z.string().optional(),
});

const sshFingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'a host key fingerprint as OpenSSH prints it: SHA256: and 43 base64 characters (ssh-keygen -lf KEY.pub)');

/** The SSH server of connectivityMethod "ssh-tunnel". The private key is write-only. */
export const SshTunnelInput = z.strictObject({
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1).max(128),
  /** OpenSSH or PEM private key, unencrypted. Stored encrypted; never returned. */
  privateKey: z.string().min(1).max(16_384).optional(),
  /** Expected host key; when absent, the first key seen is recorded and a different one later refused. */
  hostKeyFingerprint: sshFingerprint.nullable().optional(),
});

export const UpdateSshTunnelInput = z.strictObject({
  host: z.string().min(1).max(255).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().min(1).max(128).optional(),
  privateKey: z.string().min(1).max(16_384).optional(),
  /** null forgets the recorded key: the next one seen is recorded. */
  hostKeyFingerprint: sshFingerprint.nullable().optional(),
});

export const CreateProfileInput = z.strictObject({
  /** Optional id; generated when absent. */
  id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'ids are lowercase letters, digits and -, starting with a letter').optional(),
  displayName,
  engine: z.enum(ENGINE_KINDS),
  host: connectionText(255),
  port: z.number().int().min(1).max(65535).optional(),
  database: connectionText(63).nullable().optional(),
  username: connectionText(128),
  password: z.string().max(1024).optional(),
  tls: TlsInput.optional(),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS).default('direct'),
  /** Required with connectivityMethod "ssh-tunnel". */
  sshTunnel: SshTunnelInput.optional(),
  labels: labels.default({}),
});
export type CreateProfileInput = z.input<typeof CreateProfileInput>;

export const UpdateProfileInput = z.strictObject({
  displayName: displayName.optional(),
  host: connectionText(255).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: connectionText(63).nullable().optional(),
  username: connectionText(128).optional(),
  /** null clears the password. */
  password: z.string().max(1024).nullable().optional(),
  tls: TlsInput.partial().optional(),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS).optional(),
  /** Fields given replace the stored ones; null removes the SSH settings (with connectivityMethod "direct"). */
  sshTunnel: UpdateSshTunnelInput.nullable().optional(),
  labels: labels.optional(),
});
export type UpdateProfileInput = z.input<typeof UpdateProfileInput>;

export const ObjectSelectionInput = z.strictObject({
  include: z.array(z.string().min(1)).default([]),
  exclude: z.array(z.string().min(1)).default([]),
});

/** The body of :listTables: the include/exclude patterns to try on the source's tables; {} selects every table. */
export const ListTablesInput = ObjectSelectionInput.optional().describe('Send {} (every table selected) or {"include": [...], "exclude": [...]} with "Content-Type: application/json".');
export type ListTablesInput = z.input<typeof ListTablesInput>;

export const CreateJobInput = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'ids are lowercase letters, digits and -, starting with a letter').optional(),
  displayName,
  type: z.enum(['one-time', 'continuous']),
  sourceProfileId: z.string().min(1),
  destinationProfileId: z.string().min(1),
  selection: ObjectSelectionInput.default({ include: [], exclude: [] }),
  dumpParallelism: z.number().int().min(1).max(64).default(4),
  /** MySQL zero dates bound for PostgreSQL: 'null' writes NULL and warns (default); 'refuse' fails the job. */
  zeroDatePolicy: z.enum(ZERO_DATE_POLICIES).default('null'),
  enumErrorValuePolicy: z
    .enum(ENUM_ERROR_VALUE_POLICIES)
    .default('label')
    .describe("MySQL ENUM error values ('', stored by a non-strict sql_mode for an invalid label) bound for PostgreSQL: 'label' adds '' as a label of the mapped enum type and keeps the values (default); 'null' writes NULL and records a warning naming the column. MySQL to MySQL keeps them as they are."),
  nulCharacterPolicy: z
    .enum(NUL_CHARACTER_POLICIES)
    .default('refuse')
    .describe("NUL characters (\\0) in MySQL text bound for PostgreSQL, whose text cannot hold them: 'refuse' fails the job naming the table, column and row key (default); 'strip' removes them and records a warning naming the table and column."),
  /** Source schema (PostgreSQL) or database (MySQL) → its name on the destination, e.g. {"public": "app"}. */
  schemaMapping: z.record(z.string(), z.string()).default({}).describe('Source schema (PostgreSQL) or database (MySQL) -> its name on the destination, e.g. {"public": "app"}. Without it names are kept, except that a MySQL destination profile naming a database receives the one selected source schema.'),
  /**
   * MySQL to MySQL: who the views, routines, triggers and events run as on the destination:
   * 'keep' (default: the source's DEFINER), 'invoker' (SQL SECURITY INVOKER, the destination user
   * as definer) or an account 'user@host'.
   */
  definerPolicy: z
    .string()
    .max(300)
    .regex(/^(keep|invoker|[^@\s]+@[^@\s]+)$/, 'definerPolicy is keep, invoker, or an account as user@host (e.g. app@%)')
    .default('keep'),
  maxParkedChanges: z
    .number()
    .int()
    .min(1)
    .max(1_000_000_000)
    .optional()
    .describe(`Continuous jobs: how many changes may wait for tables the destination refuses (parked tables, Running with errors) before the job is Failed; a warning is recorded at 80 %. Default ${DEFAULT_MAX_PARKED_CHANGES}.`),
  requireValidation: z.boolean().default(false).describe("Promote only after a clean data validation: :promote is refused unless the job's latest validation succeeded with every table equal."),
  labels: labels.default({}),
});
export type CreateJobInput = z.input<typeof CreateJobInput>;

export const UpdateJobInput = z.strictObject({
  displayName: displayName.optional(),
  labels: labels.optional(),
  /** Only while Not started. */
  selection: ObjectSelectionInput.optional(),
  dumpParallelism: z.number().int().min(1).max(64).optional(),
  /** Takes effect when the incremental load next starts (Stop and Resume, or the next retry). */
  maxParkedChanges: z.number().int().min(1).max(1_000_000_000).optional().describe('See the create input; takes effect when the incremental load next (re)starts.'),
  requireValidation: z.boolean().optional().describe('Promote only after a clean data validation.'),
});
export type UpdateJobInput = z.input<typeof UpdateJobInput>;

/** The most tables one restart may name. */
export const MAX_RESTART_OBJECTS = 10_000;

/** The body of `:restart`: nothing (or {}) restarts the whole job; `objects` restarts those tables only. */
export const RestartJobInput = z
  .strictObject({
    objects: z
      .array(z.string().min(1).max(1000).describe('A table of the job as "schema.table", as the source names it (the `name` of its objects list).'))
      .min(1, 'name at least one table, or leave out "objects" to restart the whole job')
      .max(MAX_RESTART_OBJECTS)
      .optional()
      .describe(
        'Restart only these tables (while the job is in Full dump): each is emptied on the destination and copied again from a new snapshot; the tables already copied are kept, and every table not copied yet is copied too. Absent: the whole job is wiped and starts over.',
      ),
  })
  .optional()
  .describe('Send {} (or nothing) to restart the whole job, or {"objects": ["schema.table", ...]} to restart those tables only.');
export type RestartJobInput = z.input<typeof RestartJobInput>;

export const ListQuery = z.strictObject({
  pageSize: z.coerce.number().int().min(1).max(1000).default(100),
  pageToken: z.string().optional(),
});

export const JobListQuery = ListQuery.extend({
  /** Comma-separated statuses, e.g. RUNNING,FAILED */
  status: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      const parts = value.split(',').map((s) => s.trim());
      for (const part of parts) {
        if (!(JOB_STATUSES as readonly string[]).includes(part)) {
          ctx.addIssue({ code: 'custom', message: `unknown status "${part}"; use one of ${JOB_STATUSES.join(', ')}` });
          return z.NEVER;
        }
      }
      return parts as (typeof JOB_STATUSES)[number][];
    }),
  search: z
    .string()
    .max(200)
    .optional()
    .describe('Only jobs whose id or display name contains this text (ASCII letters in any case).'),
  orderBy: z
    .enum(JOB_LIST_ORDERS)
    .default('createTime')
    .describe('The order of the list, then by id. A pageToken continues only the order it came from.'),
});

const errorView = z.object({
  code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
  message: z.string(),
  retryable: z.boolean(),
  recoverable: z.boolean(),
  details: z.record(z.string(), z.unknown()),
  time: z.string(),
});

export const ProfileView = z.object({
  id: z.string(),
  displayName: z.string(),
  engine: z.enum(ENGINE_KINDS),
  host: z.string(),
  port: z.number(),
  database: z.string().nullable(),
  username: z.string(),
  passwordSet: z.boolean(),
  tls: z.object({ mode: z.enum(TLS_MODES), caCertificateSet: z.boolean(), clientCertificateSet: z.boolean() }),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS),
  sshTunnel: z
    .object({ host: z.string(), port: z.number(), username: z.string(), privateKeySet: z.boolean(), hostKeyFingerprint: z.string().nullable() })
    .nullable(),
  labels: z.record(z.string(), z.string()),
  createTime: z.string(),
  updateTime: z.string(),
});
export type ProfileView = z.infer<typeof ProfileView>;

export const ProgressView = z.object({
  tablesTotal: z.number(),
  tablesCompleted: z.number(),
  rowsCopied: z.number(),
  bytesCopied: z.number(),
  /** The rows to copy: what finished tables copied, plus the planner's estimate of the others (at least what they copied). */
  estimatedRows: z.number(),
  /** As estimatedRows, in bytes of the copy stream. */
  estimatedBytes: z.number(),
  /** True while a table is unfinished: the totals include estimates. False: they are exact. */
  totalsEstimated: z.boolean(),
  /** 0..100, from bytes when estimates exist, else from tables. */
  percent: z.number(),
});

export const ReplicationView = z.object({
  appliedPosition: z.string().nullable(),
  sourcePosition: z.string().nullable(),
  /** Source current position minus applied position, in bytes of WAL; null when not yet measured. */
  lagBytes: z.number().nullable(),
  /** Age of the oldest change received and not yet applied; 0 when none waits. */
  lagSeconds: z.number(),
  appliedChangesPerSecond: z.number(),
  changesApplied: z.number(),
  transactionsApplied: z.number(),
  lastAppliedCommitTime: z.string().nullable(),
  tableChanges: z.record(z.string(), z.number()),
  updateTime: z.string(),
});
export type ReplicationView = z.infer<typeof ReplicationView>;

export const JobView = z.object({
  id: z.string(),
  displayName: z.string(),
  type: z.enum(['one-time', 'continuous']),
  status: z.enum(JOB_STATUSES),
  /** The seed's words: "Running with errors". */
  statusLabel: z.string(),
  /** "Full dump in progress", "Failed in Full dump", ... or null. */
  substatus: z.string().nullable(),
  phase: z.enum(JOB_PHASES).nullable(),
  availableActions: z.array(z.enum(JOB_ACTIONS)),
  sourceProfileId: z.string(),
  sourceProfileName: z.string().nullable(),
  sourceEngine: z.enum(ENGINE_KINDS),
  destinationProfileId: z.string(),
  destinationProfileName: z.string().nullable(),
  destinationEngine: z.enum(ENGINE_KINDS),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS),
  selection: z.object({ include: z.array(z.string()), exclude: z.array(z.string()) }),
  dumpParallelism: z.number(),
  zeroDatePolicy: z.enum(ZERO_DATE_POLICIES),
  enumErrorValuePolicy: z.enum(ENUM_ERROR_VALUE_POLICIES),
  nulCharacterPolicy: z.enum(NUL_CHARACTER_POLICIES),
  /** The explicit pairs: source schema or database → destination name ({} keeps every name; verify shows what applies). */
  schemaMapping: z.record(z.string(), z.string()),
  definerPolicy: z.string(),
  /** The limit of parked changes (the default when the job sets none). */
  maxParkedChanges: z.number(),
  requireValidation: z.boolean().describe("Promote is refused unless the job's latest data validation is clean."),
  labels: z.record(z.string(), z.string()),
  createTime: z.string(),
  updateTime: z.string(),
  startTime: z.string().nullable(),
  endTime: z.string().nullable(),
  /** Running time in seconds, summed over runs. */
  durationSeconds: z.number(),
  error: errorView.nullable(),
  progress: ProgressView,
  /** Incremental load numbers while this server runs the job's change stream; null otherwise. */
  replication: ReplicationView.nullable(),
  /** True when Promote was asked and is being carried out. */
  promoteRequested: z.boolean(),
  node: z.string().nullable().describe('The node that runs the job: the holder of its live lease; null when no node holds one.'),
});
export type JobView = z.infer<typeof JobView>;

/** The body of :promote. */
export const PromoteInput = z.strictObject({
  force: z
    .boolean()
    .default(false)
    .describe('Promote even while tables are parked (the destination refuses their changes): the other tables are promoted and the parked ones are reported as not migrated. Without it Promote is refused while a table is parked.'),
  requireValidation: z
    .boolean()
    .optional()
    .describe("Refuse the promote (409 FAILED_PRECONDITION) unless the job's latest validation succeeded with every table equal."),
});
export type PromoteInput = z.input<typeof PromoteInput>;

export const JobObjectView = z.object({
  /** "schema.table" on the source. */
  name: z.string(),
  /** "schema.table" on the destination (differs from name when the schema mapping renames the schema). */
  destination: z.string().describe('"schema.table" on the destination (differs from name when the schema mapping renames the schema)'),
  state: z.enum(JOB_OBJECT_STATES),
  rowsCopied: z.number(),
  bytesCopied: z.number(),
  estimatedRows: z.number(),
  estimatedBytes: z.number(),
  error: errorView.nullable(),
  /** State ERROR: changes of the table waiting (parked) on the destination. */
  parkedChanges: z.number().describe('State ERROR: changes of the table waiting (parked) on the destination; 0 otherwise'),
  /** State ERROR: when applying its parked changes was last tried. */
  lastRetryTime: z.string().nullable().describe('State ERROR: when applying its parked changes was last tried'),
  updateTime: z.string(),
});
export type JobObjectView = z.infer<typeof JobObjectView>;

export const JobEventView = z.object({
  id: z.number(),
  time: z.string(),
  kind: z.enum(JOB_EVENT_KINDS),
  message: z.string(),
  actor: z.string(),
  action: z.enum(JOB_ACTIONS).optional(),
  status: z.enum(JOB_STATUSES).optional(),
  phase: z.enum(JOB_PHASES).nullable().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const NodeView = z.object({
  id: z.string().describe('The node id: `ferry serve --node-id`, by default "<host name>:<port>".'),
  address: z.string().describe('Where its API listens.'),
  version: z.string().describe('The Ferry version it runs.'),
  state: z.enum(NODE_STATES).describe(
    'UP: its heartbeat is recent (within three heartbeats: 15 s by default, about one lease with a shorter --lease-seconds); LOST: no heartbeat for longer (killed, machine gone, paused) without a clean stop; ' +
      'STOPPED: stopped cleanly; DRAINING: up, a drain was asked and it still holds jobs; DRAINED: up, a drain was asked and it holds no job.',
  ),
  startTime: z.string(),
  heartbeatTime: z.string().describe('Its last heartbeat (every 5 s while it runs, or a third of --lease-seconds when shorter).'),
  stopTime: z.string().nullable(),
  jobs: z.array(z.string()).describe('The jobs whose live lease it holds (the jobs it runs), by id.'),
  drainTime: z.string().nullable().describe('When a drain was asked (`ferry nodes drain`); null when it takes jobs. A drain lasts until undrain, across restarts.'),
  maxJobs: z.number().nullable().describe('Its --max-jobs; null: no limit.'),
});
export type NodeView = z.infer<typeof NodeView>;

export const VerifyCheckView = z.object({
  code: z.string(),
  side: z.enum(['source', 'destination']),
  severity: z.enum(['ok', 'warning', 'error']),
  message: z.string(),
  objects: z.array(z.string()).optional(),
  /** The definitions of the objects concerned, by "kind schema.name" (SCHEMA_OBJECTS: the objects left out). */
  definitions: z.record(z.string(), z.string()).optional(),
});

export const VerifyReportView = z.object({
  /** True when no check has severity error. */
  ok: z.boolean(),
  checks: z.array(VerifyCheckView),
});
export type VerifyReportView = z.infer<typeof VerifyReportView>;

export const SchemaObjectPlanView = z.object({
  kind: z.string(),
  schema: z.string().nullable(),
  name: z.string(),
  /** Its definition in the source dialect (a complete CREATE statement), or null. */
  definition: z.string().nullable(),
  /** MySQL: its DEFINER on the source. */
  definer: z.string().optional(),
  /** Tables and views it depends on ("schema.name"), when the source engine knows them. */
  dependsOn: z.array(z.string()).optional(),
  disposition: z.enum(['carried', 'translated', 'left-out']),
  /** When a carried or translated object is created: 'pre-data', 'post-data' or 'promote'; null when left out. */
  phase: z.enum(['pre-data', 'post-data', 'promote']).nullable(),
  /** Why it is translated or left out and what to do; null when carried as is. */
  reason: z.string().nullable(),
});

export const SchemaObjectReportView = z.object({
  /** The source objects beyond tables, in creation order, with what the job does with each. */
  objects: z.array(SchemaObjectPlanView),
});
export type SchemaObjectReportView = z.infer<typeof SchemaObjectReportView>;

export const SourceTableView = z.object({
  schema: z.string().describe('PostgreSQL schema or MySQL database.'),
  name: z.string(),
  /** The planner's estimate; -1 when unknown. */
  estimatedRows: z.number().int().describe("The source's own estimate of the row count; -1 when unknown."),
  selected: z.boolean().describe('True when the include/exclude patterns of the request select this table.'),
});
export type SourceTableView = z.infer<typeof SourceTableView>;

export const SourceTableListView = z.object({
  /** Every table of the source a job can migrate, by schema and name, with whether the patterns select it. */
  tables: z.array(SourceTableView),
});
export type SourceTableListView = z.infer<typeof SourceTableListView>;

export const ConnectionTestView = z.object({
  ok: z.boolean(),
  serverVersion: z.string().nullable(),
  settings: z.record(z.string(), z.string()),
  privileges: z.record(z.string(), z.boolean()),
  checks: z.array(VerifyCheckView),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type ConnectionTestView = z.infer<typeof ConnectionTestView>;

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }),
});

const ValueRecord = z.record(z.string(), z.string().nullable());

export const RowDifferenceView = z.object({
  kind: z.enum(['missing', 'extra', 'changed']).describe('missing: on the source only; extra: on the destination only; changed: on both with other values.'),
  key: ValueRecord.nullable().describe("The row's primary key values; null for a table without a primary key (compared as a multiset of rows)."),
  source: ValueRecord.nullable().describe("The source row's values in the canonical form of docs/type-mapping.md; null when missing there."),
  destination: ValueRecord.nullable().describe("The destination row's values; null when missing there."),
});

export const TableValidationView = z.object({
  table: z.string().describe('"schema.table" on the source.'),
  destinationTable: z.string().describe('"schema.table" on the destination, after the job\'s schema mapping.'),
  state: z.enum(TABLE_VALIDATION_STATES),
  keyed: z.boolean().describe('Rows matched by primary key; false: compared as a multiset of rows.'),
  sourceRows: z.number().int().describe('Rows read on the source (while RUNNING: so far).'),
  destinationRows: z.number().int(),
  sourceChecksum: z.string().nullable().describe('Order-independent checksum of every compared value, hex; null until read.'),
  destinationChecksum: z.string().nullable(),
  estimatedRows: z.number().int().describe("The planner's estimate of the source table's rows, for progress; -1 when unknown."),
  differences: z.array(RowDifferenceView).describe('The differing rows, at most 20.'),
  differencesTruncated: z.boolean().describe('More rows differ than are listed.'),
  message: z.string().nullable(),
});

export const ValidationView = z.object({
  id: z.string(),
  jobId: z.string(),
  status: z.enum(VALIDATION_STATUSES),
  clean: z.boolean().nullable().describe('SUCCEEDED with every table EQUAL; null while RUNNING.'),
  createTime: z.string(),
  endTime: z.string().nullable(),
  actor: z.string(),
  recheckedInFlight: z.boolean().describe("Validated during the incremental load: differing rows were read again once the load had applied the source's changes."),
  summary: z.object({
    tables: z.number().int(),
    tablesEqual: z.number().int(),
    tablesDifferent: z.number().int(),
    tablesFailed: z.number().int(),
    rowsCompared: z.number().int(),
  }),
  tables: z.array(TableValidationView),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type ValidationView = z.infer<typeof ValidationView>;

