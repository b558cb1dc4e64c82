/**
 * The shapes callers send and receive, as zod schemas: the API validates requests with them
 * and builds its OpenAPI document from them; the CLI sends them.
 */
import { z } from 'zod';
import { CONNECTIVITY_METHODS, ENGINE_KINDS, TLS_MODES } from '../core/connection-profile.js';
import { JOB_ACTIONS, JOB_PHASES, JOB_STATUSES } from '../core/lifecycle.js';
import { JOB_EVENT_KINDS, JOB_OBJECT_STATES, ZERO_DATE_POLICIES } from '../core/migration-job.js';
import { ERROR_CODES } from '../core/errors.js';

const labels = z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'label keys are lowercase letters, digits, _ and -'), z.string().max(63));

export const TlsInput = z.object({
  mode: z.enum(TLS_MODES).default('none'),
  caCertificate: z.string().optional(),
  clientCertificate: z.string().optional(),
  clientKey: z.string().optional(),
});

export const CreateProfileInput = z.object({
  /** Optional id; generated when absent. */
  id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'ids are lowercase letters, digits and -, starting with a letter').optional(),
  displayName: z.string().min(1).max(200),
  engine: z.enum(ENGINE_KINDS),
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().min(1).max(63).nullable().optional(),
  username: z.string().min(1).max(128),
  password: z.string().max(1024).optional(),
  tls: TlsInput.optional(),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS).default('direct'),
  labels: labels.default({}),
});
export type CreateProfileInput = z.input<typeof CreateProfileInput>;

export const UpdateProfileInput = z.object({
  displayName: z.string().min(1).max(200).optional(),
  host: z.string().min(1).max(255).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: z.string().min(1).max(63).nullable().optional(),
  username: z.string().min(1).max(128).optional(),
  /** null clears the password. */
  password: z.string().max(1024).nullable().optional(),
  tls: TlsInput.partial().optional(),
  connectivityMethod: z.enum(CONNECTIVITY_METHODS).optional(),
  labels: labels.optional(),
});
export type UpdateProfileInput = z.input<typeof UpdateProfileInput>;

export const ObjectSelectionInput = z.object({
  include: z.array(z.string().min(1)).default([]),
  exclude: z.array(z.string().min(1)).default([]),
});

export const CreateJobInput = z.object({
  id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'ids are lowercase letters, digits and -, starting with a letter').optional(),
  displayName: z.string().min(1).max(200),
  type: z.enum(['one-time', 'continuous']),
  sourceProfileId: z.string().min(1),
  destinationProfileId: z.string().min(1),
  selection: ObjectSelectionInput.default({ include: [], exclude: [] }),
  dumpParallelism: z.number().int().min(1).max(64).default(4),
  /** MySQL zero dates bound for PostgreSQL: 'null' writes NULL and warns (default); 'refuse' fails the job. */
  zeroDatePolicy: z.enum(ZERO_DATE_POLICIES).default('null'),
  /** Source schema (PostgreSQL) or database (MySQL) → its name on the destination, e.g. {"public": "app"}. */
  schemaMapping: z.record(z.string(), z.string()).default({}).describe('Source schema (PostgreSQL) or database (MySQL) -> its name on the destination, e.g. {"public": "app"}. Without it names are kept, except that a MySQL destination profile naming a database receives the one selected source schema.'),
  labels: labels.default({}),
});
export type CreateJobInput = z.input<typeof CreateJobInput>;

export const UpdateJobInput = z.object({
  displayName: z.string().min(1).max(200).optional(),
  labels: labels.optional(),
  /** Only while Not started. */
  selection: ObjectSelectionInput.optional(),
  dumpParallelism: z.number().int().min(1).max(64).optional(),
});
export type UpdateJobInput = z.input<typeof UpdateJobInput>;

export const ListQuery = z.object({
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
  estimatedRows: z.number(),
  estimatedBytes: z.number(),
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
  /** The explicit pairs: source schema or database → destination name ({} keeps every name; verify shows what applies). */
  schemaMapping: z.record(z.string(), z.string()),
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
});
export type JobView = z.infer<typeof JobView>;

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

export const VerifyCheckView = z.object({
  code: z.string(),
  side: z.enum(['source', 'destination']),
  severity: z.enum(['ok', 'warning', 'error']),
  message: z.string(),
  objects: z.array(z.string()).optional(),
});

export const VerifyReportView = z.object({
  /** True when no check has severity error. */
  ok: z.boolean(),
  checks: z.array(VerifyCheckView),
});
export type VerifyReportView = z.infer<typeof VerifyReportView>;

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
