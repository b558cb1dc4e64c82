import Database from 'better-sqlite3';
import type { ConnectivityMethod, EngineKind, SshTunnelSettings, TlsMode } from '../../core/connection-profile.js';
import { FerryError, toFerryError } from '../../core/errors.js';
import type { JobError } from '../../core/errors.js';
import type { JobAction, JobPhase, JobStatus, JobType } from '../../core/lifecycle.js';
import { JOB_LIST_ORDERS } from '../../core/migration-job.js';
import type {
  JobEventKind,
  JobHistoryEvent,
  JobListOrder,
  JobObject,
  JobObjectState,
  MigrationJob,
  NewJobHistoryEvent,
} from '../../core/migration-job.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { SchemaMapping } from '../../core/schema-mapping.js';
import type {
  JobListOptions, JobObjectTotals, ListOptions, MetadataStore, Page, SecretField, SecretReplacement, StoredApiToken, StoredProfile, StoredSecret,
} from '../metadata-store.js';
import { migrate } from './migrations.js';

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
const BUSY_TIMEOUT_MILLIS = 5000;
const INVALID_PAGE_TOKEN = 'pageToken is not valid; pass the nextPageToken of a previous response';
const MAX_SEARCH_LENGTH = 200;

/** How each job list order sorts, in SQL: the key column (with its collation) and the direction. */
const JOB_ORDER_SQL: { [O in JobListOrder]: { column: string; key: keyof JobRow; descending: boolean } } = {
  createTime: { column: 'create_time', key: 'create_time', descending: false },
  'createTime desc': { column: 'create_time', key: 'create_time', descending: true },
  updateTime: { column: 'update_time', key: 'update_time', descending: false },
  'updateTime desc': { column: 'update_time', key: 'update_time', descending: true },
  // NOCASE: "alpha", "Beta", "gamma" in that order. Indexed with the same collation (migration 4).
  displayName: { column: 'display_name COLLATE NOCASE', key: 'display_name', descending: false },
  'displayName desc': { column: 'display_name COLLATE NOCASE', key: 'display_name', descending: true },
};

interface ProfileRow {
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

interface JobRow {
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

interface JobObjectRow {
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

interface JobEventRow {
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

interface ApiTokenRow {
  id: string;
  name: string;
  token_hash: string;
  create_time: string;
  last_used_time: string | null;
  revoke_time: string | null;
}

const PROFILE_COLUMNS = [
  'id', 'display_name', 'engine', 'host', 'port', 'database', 'username', 'tls_mode', 'connectivity_method',
  'labels', 'encrypted_password', 'ca_certificate', 'client_certificate', 'encrypted_client_key',
  'create_time', 'update_time', 'ssh_tunnel', 'encrypted_ssh_private_key',
] as const satisfies readonly (keyof ProfileRow)[];

const JOB_COLUMNS = [
  'id', 'display_name', 'type', 'source_profile_id', 'destination_profile_id', 'source_engine',
  'destination_engine', 'connectivity_method', 'selection', 'dump_parallelism', 'zero_date_policy', 'enum_error_value_policy', 'nul_character_policy', 'schema_mapping', 'definer_policy', 'max_parked_changes', 'require_validation', 'labels', 'status', 'phase',
  'error', 'promote_requested', 'create_time', 'update_time', 'start_time', 'end_time', 'running_millis',
  'run_start_time',
] as const satisfies readonly (keyof JobRow)[];

const JOB_OBJECT_COLUMNS = [
  'job_id', 'name', 'state', 'rows_copied', 'bytes_copied', 'estimated_rows', 'estimated_bytes', 'error',
  'update_time', 'destination_name', 'parked_changes', 'last_retry_time',
] as const satisfies readonly (keyof JobObjectRow)[];

const JOB_EVENT_COLUMNS = [
  'job_id', 'time', 'kind', 'message', 'actor', 'action', 'status', 'phase', 'has_phase', 'details',
] as const satisfies readonly (keyof JobEventRow)[];

function insertSql(table: string, columns: readonly string[], verb = 'INSERT'): string {
  return `${verb} INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`;
}

function updateSql(table: string, columns: readonly string[]): string {
  const assignments = columns.filter((c) => c !== 'id').map((c) => `${c} = @${c}`);
  return `UPDATE ${table} SET ${assignments.join(', ')} WHERE id = @id`;
}

const SQL = {
  insertProfile: insertSql('connection_profiles', PROFILE_COLUMNS),
  updateProfile: updateSql('connection_profiles', PROFILE_COLUMNS),
  insertJob: insertSql('migration_jobs', JOB_COLUMNS),
  updateJob: updateSql('migration_jobs', JOB_COLUMNS),
  upsertJobObject: insertSql('job_objects', JOB_OBJECT_COLUMNS, 'INSERT OR REPLACE'),
  insertJobEvent: insertSql('job_events', JOB_EVENT_COLUMNS),
};

export class SqliteMetadataStore implements MetadataStore {
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens (creating when missing) the database file, or an in-memory database for ':memory:'.
   * Call `migrate()` before anything else.
   */
  static open(path: string): SqliteMetadataStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      const journalMode = db.pragma('journal_mode = WAL', { simple: true });
      if (journalMode !== 'wal' && !db.memory) {
        throw new Error(`the file system refused write-ahead logging (journal mode is ${String(journalMode)})`);
      }
      // FULL: in WAL mode NORMAL may lose the last commits on power loss; the contract is that
      // a resolved write survives.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MILLIS}`);
      db.pragma('foreign_keys = ON');
      return new SqliteMetadataStore(db);
    } catch (error) {
      db?.close();
      const reason = error instanceof Error ? error.message : String(error);
      throw new FerryError(
        'FAILED_PRECONDITION',
        `Cannot open the metadata database ${path}: ${reason}; check that the directory exists, is writable and holds a Ferry database (or nothing)`,
        { cause: error },
      );
    }
  }

  async migrate(): Promise<void> {
    this.guard(() => migrate(this.db));
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.statements.clear();
    this.db.close();
  }

  async dataVersion(): Promise<string> {
    return this.guard(() => {
      // total_changes(): rows this connection changed since it opened; data_version: changes
      // when another connection commits. Together they change with every write.
      const [changes, version] = this.statement(
        'SELECT total_changes(), (SELECT data_version FROM pragma_data_version)',
      ).raw().get() as [number, number];
      return `${changes}.${version}`;
    });
  }

  async insertProfile(profile: StoredProfile): Promise<void> {
    this.guard(() => {
      try {
        this.statement(SQL.insertProfile).run(profileToRow(profile));
      } catch (error) {
        if (sqliteCode(error) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new FerryError(
            'ALREADY_EXISTS',
            `Connection profile "${profile.id}" already exists; choose another id or update the existing profile`,
            { details: { profileId: profile.id } },
          );
        }
        throw error;
      }
    });
  }

  async updateProfile(profile: StoredProfile): Promise<void> {
    this.guard(() => {
      const result = this.statement(SQL.updateProfile).run(profileToRow(profile));
      if (result.changes === 0) throw profileNotFound(profile.id);
    });
  }

  async getProfile(id: string): Promise<StoredProfile | null> {
    return this.guard(() => {
      const row = this.statement('SELECT * FROM connection_profiles WHERE id = ?').get(id) as ProfileRow | undefined;
      return row === undefined ? null : rowToProfile(row);
    });
  }

  async getProfileNames(ids: readonly string[]): Promise<Map<string, string>> {
    return this.guard(() => {
      if (ids.length === 0) return new Map<string, string>();
      // One statement for any number of ids: the ids travel as one JSON array.
      const rows = this.statement(
        'SELECT id, display_name FROM connection_profiles WHERE id IN (SELECT value FROM json_each(?))',
      ).all(JSON.stringify(ids)) as Array<{ id: string; display_name: string }>;
      return new Map(rows.map((row) => [row.id, row.display_name]));
    });
  }

  async listProfiles(options: ListOptions = {}): Promise<Page<StoredProfile>> {
    return this.guard(() => this.page('connection_profiles', [], [], options, rowToProfile));
  }

  async deleteProfile(id: string): Promise<void> {
    this.guard(() => {
      const result = this.statement('DELETE FROM connection_profiles WHERE id = ?').run(id);
      if (result.changes === 0) throw profileNotFound(id);
    });
  }

  async listSecrets(): Promise<StoredSecret[]> {
    return this.guard(() =>
      SECRET_COLUMNS.flatMap(({ owner, table, column, field }) =>
        (this.statement(`SELECT id, ${column} AS value FROM ${table} WHERE ${column} IS NOT NULL ORDER BY id`).all() as { id: string; value: string }[])
          .map((row): StoredSecret => ({ owner, ownerId: row.id, field, value: row.value })),
      ).sort((a, b) => (a.ownerId < b.ownerId ? -1 : a.ownerId > b.ownerId ? 1 : a.field < b.field ? -1 : a.field > b.field ? 1 : 0)),
    );
  }

  async replaceSecrets(replacements: SecretReplacement[]): Promise<void> {
    this.guard(() =>
      this.db
        .transaction(() => {
          for (const r of replacements) {
            const place = SECRET_COLUMNS.find((c) => c.owner === r.owner && c.field === r.field);
            if (place === undefined) throw new FerryError('INTERNAL', `No store column holds the ${r.field} of a ${r.owner}; add it to SECRET_COLUMNS`);
            const result = this.statement(`UPDATE ${place.table} SET ${place.column} = ? WHERE id = ? AND ${place.column} = ?`).run(r.value, r.ownerId, r.previous);
            if (result.changes !== 1) {
              throw new FerryError('FAILED_PRECONDITION', `The ${r.field} of ${r.owner} "${r.ownerId}" changed or vanished while secrets were being replaced; nothing was changed, run the command again`, {
                details: { owner: r.owner, ownerId: r.ownerId, field: r.field },
              });
            }
          }
        })
        .immediate(),
    );
  }

  async insertJob(job: MigrationJob): Promise<void> {
    this.guard(() => {
      try {
        this.statement(SQL.insertJob).run(jobToRow(job));
      } catch (error) {
        if (sqliteCode(error) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new FerryError(
            'ALREADY_EXISTS',
            `Migration job "${job.id}" already exists; choose another id or update the existing job`,
            { details: { jobId: job.id } },
          );
        }
        throw error;
      }
    });
  }

  async updateJob(job: MigrationJob, expectedStatus?: JobStatus): Promise<boolean> {
    return this.guard(() =>
      // IMMEDIATE takes the write lock before the status is read: another process cannot
      // change the status between the compare and the set.
      this.db
        .transaction((): boolean => {
          const current = this.statement('SELECT status FROM migration_jobs WHERE id = ?', true).get(job.id) as
            | string
            | undefined;
          if (current === undefined) throw jobNotFound(job.id);
          if (expectedStatus !== undefined && current !== expectedStatus) return false;
          this.statement(SQL.updateJob).run(jobToRow(job));
          return true;
        })
        .immediate(),
    );
  }

  async getJob(id: string): Promise<MigrationJob | null> {
    return this.guard(() => {
      const row = this.statement('SELECT * FROM migration_jobs WHERE id = ?').get(id) as JobRow | undefined;
      return row === undefined ? null : rowToJob(row);
    });
  }

  async listJobs(options: JobListOptions = {}): Promise<Page<MigrationJob>> {
    return this.guard(() => {
      const filters: string[] = [];
      const params: unknown[] = [];
      const statuses = options.status ?? [];
      if (statuses.length > 0) {
        filters.push('status IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(statuses));
      }
      const search = options.search?.trim() ?? '';
      if (search.length > MAX_SEARCH_LENGTH) {
        throw new FerryError('INVALID_ARGUMENT', `search is ${search.length} characters long; search with at most ${MAX_SEARCH_LENGTH}`);
      }
      if (search !== '') {
        // A substring anywhere cannot use an index: this scans the jobs table, which is small
        // next to everything else a job stores (no objects, events or checkpoints are read).
        filters.push("(display_name LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')");
        const pattern = `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        params.push(pattern, pattern);
      }
      const orderBy = options.orderBy ?? 'createTime';
      if (!(JOB_LIST_ORDERS as readonly string[]).includes(orderBy)) {
        throw new FerryError('INVALID_ARGUMENT', `orderBy "${String(orderBy)}" is not valid; use one of ${JOB_LIST_ORDERS.map((o) => `"${o}"`).join(', ')}`);
      }
      const page = this.page('migration_jobs', filters, params, options, rowToJob, orderBy);
      const whereSql = filters.length === 0 ? '' : ` WHERE ${filters.join(' AND ')}`;
      const totalSize = this.statement(`SELECT count(*) FROM migration_jobs${whereSql}`, true).get(...params) as number;
      return { ...page, totalSize };
    });
  }

  async listJobsUsingProfile(profileId: string): Promise<MigrationJob[]> {
    return this.guard(() => {
      const rows = this.statement(
        'SELECT * FROM migration_jobs WHERE source_profile_id = ? OR destination_profile_id = ? ORDER BY create_time, id',
      ).all(profileId, profileId) as JobRow[];
      return rows.map(rowToJob);
    });
  }

  async deleteJob(id: string): Promise<void> {
    this.guard(() => {
      // Objects, events and checkpoints go with it: ON DELETE CASCADE, in this statement.
      const result = this.statement('DELETE FROM migration_jobs WHERE id = ?').run(id);
      if (result.changes === 0) throw jobNotFound(id);
    });
  }

  async upsertJobObjects(objects: JobObject[]): Promise<void> {
    this.guard(() =>
      this.db.transaction(() => {
        const upsert = this.statement(SQL.upsertJobObject);
        for (const object of objects) {
          try {
            upsert.run(jobObjectToRow(object));
          } catch (error) {
            if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw jobNotFound(object.jobId);
            throw error;
          }
        }
      })(),
    );
  }

  async listJobObjects(jobId: string): Promise<JobObject[]> {
    return this.guard(() => {
      const rows = this.statement('SELECT * FROM job_objects WHERE job_id = ? ORDER BY name').all(jobId) as JobObjectRow[];
      return rows.map(rowToJobObject);
    });
  }

  async totalJobObjects(jobIds: readonly string[]): Promise<JobObjectTotals[]> {
    return this.guard(() => {
      if (jobIds.length === 0) return [];
      const rows = this.statement(
        `SELECT job_id, state, count(*) AS tables, sum(rows_copied) AS rows_copied, sum(bytes_copied) AS bytes_copied,
                sum(max(0, estimated_rows)) AS estimated_rows, sum(max(0, estimated_bytes)) AS estimated_bytes
           FROM job_objects WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id, state`,
      ).all(JSON.stringify(jobIds)) as Array<{
        job_id: string; state: string; tables: number; rows_copied: number; bytes_copied: number; estimated_rows: number; estimated_bytes: number;
      }>;
      return rows.map((row) => ({
        jobId: row.job_id,
        state: row.state as JobObjectState,
        tables: row.tables,
        rowsCopied: row.rows_copied,
        bytesCopied: row.bytes_copied,
        estimatedRows: row.estimated_rows,
        estimatedBytes: row.estimated_bytes,
      }));
    });
  }

  async deleteJobObjects(jobId: string): Promise<void> {
    this.guard(() => {
      this.statement('DELETE FROM job_objects WHERE job_id = ?').run(jobId);
    });
  }

  async appendJobEvent(event: NewJobHistoryEvent): Promise<JobHistoryEvent> {
    return this.guard(() => {
      const row = jobEventToRow(event);
      try {
        const result = this.statement(SQL.insertJobEvent).run(row);
        return rowToJobEvent({ ...row, id: Number(result.lastInsertRowid) });
      } catch (error) {
        if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw jobNotFound(event.jobId);
        throw error;
      }
    });
  }

  async listJobEvents(jobId: string, options: { afterId?: number; limit?: number } = {}): Promise<JobHistoryEvent[]> {
    return this.guard(() => {
      const afterId = options.afterId ?? 0;
      if (!Number.isSafeInteger(afterId)) {
        throw new FerryError('INVALID_ARGUMENT', `afterId ${afterId} is not an integer; pass the id of an event`);
      }
      const limit = options.limit ?? -1;
      if (options.limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
        throw new FerryError('INVALID_ARGUMENT', `limit ${limit} is not valid; pass a whole number of 1 or more`);
      }
      // LIMIT -1 is SQLite for "no limit".
      const rows = this.statement('SELECT * FROM job_events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?').all(
        jobId,
        afterId,
        limit,
      ) as JobEventRow[];
      return rows.map(rowToJobEvent);
    });
  }

  async putCheckpoint(jobId: string, key: string, value: unknown): Promise<void> {
    this.guard(() => {
      const text = checkpointJson(jobId, key, value);
      try {
        this.statement('INSERT OR REPLACE INTO checkpoints (job_id, key, value) VALUES (?, ?, ?)').run(jobId, key, text);
      } catch (error) {
        if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw jobNotFound(jobId);
        throw error;
      }
    });
  }

  async getCheckpoint<T = unknown>(jobId: string, key: string): Promise<T | null> {
    return this.guard(() => {
      const text = this.statement('SELECT value FROM checkpoints WHERE job_id = ? AND key = ?', true).get(jobId, key) as
        | string
        | undefined;
      return text === undefined ? null : (JSON.parse(text) as T);
    });
  }

  async deleteCheckpoints(jobId: string): Promise<void> {
    this.guard(() => {
      this.statement('DELETE FROM checkpoints WHERE job_id = ?').run(jobId);
    });
  }

  async insertApiToken(token: StoredApiToken): Promise<void> {
    this.guard(() => {
      try {
        this.statement(
          'INSERT INTO api_tokens (id, name, token_hash, create_time, last_used_time, revoke_time) VALUES (@id, @name, @token_hash, @create_time, @last_used_time, @revoke_time)',
        ).run(apiTokenToRow(token));
      } catch (error) {
        const code = sqliteCode(error);
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new FerryError('ALREADY_EXISTS', `API token "${token.id}" (or its secret) already exists; create the token again`, {
            details: { tokenId: token.id },
          });
        }
        throw error;
      }
    });
  }

  async listApiTokens(): Promise<StoredApiToken[]> {
    return this.guard(() => {
      const rows = this.statement('SELECT * FROM api_tokens ORDER BY create_time, id').all() as ApiTokenRow[];
      return rows.map(rowToApiToken);
    });
  }

  async findApiTokenByHash(tokenHash: string): Promise<StoredApiToken | null> {
    return this.guard(() => {
      const row = this.statement('SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash) as ApiTokenRow | undefined;
      return row === undefined ? null : rowToApiToken(row);
    });
  }

  async revokeApiToken(id: string, time: string): Promise<void> {
    this.guard(() => {
      const result = this.statement('UPDATE api_tokens SET revoke_time = coalesce(revoke_time, ?) WHERE id = ?').run(time, id);
      if (result.changes === 0) {
        throw new FerryError('NOT_FOUND', `API token "${id}" does not exist; list tokens to find the right id`, {
          details: { tokenId: id },
        });
      }
    });
  }

  async touchApiToken(id: string, time: string): Promise<void> {
    this.guard(() => {
      this.statement('UPDATE api_tokens SET last_used_time = ? WHERE id = ?').run(time, id);
    });
  }

  /**
   * A keyset page: rows after the token's (key, id) in the order, so that rows added or
   * removed before that position never shift a page. Tables other than migration_jobs are
   * listed by createTime only.
   */
  private page<R, T>(
    table: string,
    filters: string[],
    params: unknown[],
    options: ListOptions,
    map: (row: R) => T,
    orderBy: JobListOrder = 'createTime',
  ): Page<T> {
    const pageSize = resolvePageSize(options.pageSize);
    const order = JOB_ORDER_SQL[orderBy];
    const where = [...filters];
    const bound = [...params];
    if (options.pageToken !== undefined && options.pageToken !== null && options.pageToken !== '') {
      const [key, id] = decodePageToken(options.pageToken, orderBy);
      where.push(`(${order.column}, id) ${order.descending ? '<' : '>'} (?, ?)`);
      bound.push(key, id);
    }
    const whereSql = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
    const direction = order.descending ? ' DESC' : '';
    // One row more than asked tells whether another page follows.
    const rows = this.statement(`SELECT * FROM ${table}${whereSql} ORDER BY ${order.column}${direction}, id${direction} LIMIT ?`).all(
      ...bound,
      pageSize + 1,
    ) as (R & Record<string, string>)[];
    const items = rows.slice(0, pageSize);
    const last = items[items.length - 1];
    const nextPageToken = rows.length > pageSize && last !== undefined ? encodePageToken(last[order.key]!, last['id']!, orderBy) : null;
    return { items: items.map(map), nextPageToken };
  }

  private statement(sql: string, pluck = false): Database.Statement<unknown[], unknown> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare<unknown[], unknown>(sql);
      if (pluck) statement.pluck();
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw storeError(error);
    }
  }
}

function storeError(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const code = sqliteCode(error);
  const reason = error instanceof Error ? error.message : String(error);
  if (code?.startsWith('SQLITE_BUSY') || code?.startsWith('SQLITE_LOCKED')) {
    return new FerryError(
      'INTERNAL',
      `The metadata database stayed locked for more than ${BUSY_TIMEOUT_MILLIS / 1000} s (${reason}); retry, and check that no other process holds it open for writing`,
      { retryable: true, cause: error },
    );
  }
  if (code === 'SQLITE_FULL') {
    return new FerryError(
      'DISK_FULL',
      `The disk holding the metadata database is full (${reason}); free space and retry`,
      { retryable: true, cause: error },
    );
  }
  if (code === 'SQLITE_CONSTRAINT_DATATYPE' || code === 'SQLITE_CONSTRAINT_NOTNULL') {
    return new FerryError('INVALID_ARGUMENT', `The metadata store refused a value: ${reason}; fix the caller that produced it`, {
      cause: error,
    });
  }
  return toFerryError(error, 'Metadata store failed');
}

function sqliteCode(error: unknown): string | undefined {
  return error instanceof Database.SqliteError ? error.code : undefined;
}

/** Where each kind of secret lives (see StoredSecret): listSecrets and replaceSecrets cover every entry. */
const SECRET_COLUMNS: ReadonlyArray<{ owner: StoredSecret['owner']; field: SecretField; table: string; column: string }> = [
  { owner: 'connectionProfile', field: 'password', table: 'connection_profiles', column: 'encrypted_password' },
  { owner: 'connectionProfile', field: 'clientKey', table: 'connection_profiles', column: 'encrypted_client_key' },
  { owner: 'connectionProfile', field: 'sshPrivateKey', table: 'connection_profiles', column: 'encrypted_ssh_private_key' },
];

function profileNotFound(id: string): FerryError {
  return new FerryError('NOT_FOUND', `Connection profile "${id}" does not exist; list profiles to find the right id`, {
    details: { profileId: id },
  });
}

function jobNotFound(id: string): FerryError {
  return new FerryError('NOT_FOUND', `Migration job "${id}" does not exist; list jobs to find the right id`, {
    details: { jobId: id },
  });
}

function resolvePageSize(pageSize: number | undefined): number {
  if (pageSize === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
    throw new FerryError('INVALID_ARGUMENT', `pageSize ${pageSize} is not valid; pass a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/** [key, id] for the default order (as tokens always were), [key, id, order] for the others. */
function encodePageToken(key: string, id: string, orderBy: JobListOrder): string {
  const parts = orderBy === 'createTime' ? [key, id] : [key, id, orderBy];
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

function decodePageToken(token: string, orderBy: JobListOrder): [string, string] {
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

function checkpointJson(jobId: string, key: string, value: unknown): string {
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

function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parseOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function profileToRow(profile: StoredProfile): ProfileRow {
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

function rowToProfile(row: ProfileRow): StoredProfile {
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

function apiTokenToRow(token: StoredApiToken): ApiTokenRow {
  return {
    id: token.id,
    name: token.name,
    token_hash: token.tokenHash,
    create_time: token.createTime,
    last_used_time: token.lastUsedTime,
    revoke_time: token.revokeTime,
  };
}

function rowToApiToken(row: ApiTokenRow): StoredApiToken {
  return {
    id: row.id,
    name: row.name,
    tokenHash: row.token_hash,
    createTime: row.create_time,
    lastUsedTime: row.last_used_time,
    revokeTime: row.revoke_time,
  };
}

function jobToRow(job: MigrationJob): JobRow {
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

function rowToJob(row: JobRow): MigrationJob {
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

function jobObjectToRow(object: JobObject): JobObjectRow {
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

function rowToJobObject(row: JobObjectRow): JobObject {
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

function jobEventToRow(event: NewJobHistoryEvent): Omit<JobEventRow, 'id'> {
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

function rowToJobEvent(row: JobEventRow): JobHistoryEvent {
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
