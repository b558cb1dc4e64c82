import Database from 'better-sqlite3';
import { FerryError, toFerryError } from '../../core/errors.js';
import type { JobStatus } from '../../core/lifecycle.js';
import type { JobHistoryEvent, JobListOrder, JobObject, MigrationJob, NewJobHistoryEvent } from '../../core/migration-job.js';
import type {
  JobListOptions, JobObjectTotals, ListOptions, MetadataStore, Page, SecretReplacement, StoredApiToken, StoredJobLease, StoredNode, StoredProfile, StoredSecret,
} from '../metadata-store.js';
import {
  API_TOKEN_COLUMNS, JOB_COLUMNS, JOB_EVENT_COLUMNS, JOB_OBJECT_COLUMNS, JOB_ORDER_KEYS, PROFILE_COLUMNS, SECRET_COLUMNS,
  apiTokenToRow, checkJobListOptions, compareSecrets, checkpointJson, containsPattern, decodePageToken, encodePageToken, jobEventToRow, jobNotFound, nodeNotFound,
  jobObjectToRow, jobToRow, profileNotFound, profileToRow, resolvePageSize, rowToApiToken, rowToJob, rowToJobEvent, rowToJobObject, rowToProfile,
  NODE_COLUMNS, checkLeaseMs, nodeToRow, rowToJobLease, rowToNode, rowToJobObjectTotals, type JobLeaseRow, type NodeRow, type ApiTokenRow, type JobEventRow, type JobObjectRow, type JobObjectTotalsRow, type JobRow, type ProfileRow,
} from '../store-rows.js';
import { migrate } from './migrations.js';

const BUSY_TIMEOUT_MILLIS = 5000;

/** How each job list order sorts in SQLite: NOCASE folds ASCII letters ("alpha", "Beta", "gamma"), indexed with the same collation (migration 7). */
const ORDER_COLUMN: { [O in JobListOrder]: string } = {
  createTime: 'create_time',
  'createTime desc': 'create_time',
  updateTime: 'update_time',
  'updateTime desc': 'update_time',
  displayName: 'display_name COLLATE NOCASE',
  'displayName desc': 'display_name COLLATE NOCASE',
};

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
      ).sort(compareSecrets),
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
      const { search, orderBy } = checkJobListOptions(options);
      if (search !== '') {
        // A substring anywhere cannot use an index: this scans the jobs table, which is small
        // next to everything else a job stores (no objects, events or checkpoints are read).
        filters.push("(display_name LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')");
        const pattern = containsPattern(search);
        params.push(pattern, pattern);
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
      ).all(JSON.stringify(jobIds)) as JobObjectTotalsRow[];
      return rows.map(rowToJobObjectTotals);
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
          insertSql('api_tokens', API_TOKEN_COLUMNS),
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

  async putNode(node: Omit<StoredNode, 'drainTime'>): Promise<void> {
    this.guard(() => {
      // An upsert, not INSERT OR REPLACE: the row's drain_time (set by setNodeDrain) stays.
      this.statement(`${insertSql('nodes', NODE_COLUMNS)} ON CONFLICT (id) DO UPDATE SET ${NODE_COLUMNS.slice(1).map((c) => `${c} = excluded.${c}`).join(', ')}`).run(nodeToRow(node));
    });
  }

  async listNodes(): Promise<StoredNode[]> {
    return this.guard(() => (this.statement('SELECT * FROM nodes ORDER BY id').all() as NodeRow[]).map(rowToNode));
  }

  async setNodeDrain(nodeId: string, drainTime: string | null): Promise<void> {
    this.guard(() => {
      const result = this.statement('UPDATE nodes SET drain_time = ? WHERE id = ?').run(drainTime, nodeId);
      if (result.changes === 0) throw nodeNotFound(nodeId);
    });
  }

  async acquireJobLease(jobId: string, nodeId: string, leaseMs: number): Promise<StoredJobLease | null> {
    checkLeaseMs(leaseMs);
    return this.guard(() => {
      // The process clock is the store's clock: one SQLite store has one node.
      const now = new Date();
      const expireTime = new Date(now.getTime() + leaseMs).toISOString();
      try {
        const row = this.statement(
          `INSERT INTO job_leases (job_id, node_id, epoch, expire_time) VALUES (?, ?, 1, ?)
             ON CONFLICT (job_id) DO UPDATE SET node_id = excluded.node_id, epoch = job_leases.epoch + 1, expire_time = excluded.expire_time
               WHERE job_leases.node_id IS NULL OR job_leases.node_id = excluded.node_id OR job_leases.expire_time <= ?
             RETURNING job_id, node_id, epoch, expire_time`,
        ).get(jobId, nodeId, expireTime, now.toISOString()) as JobLeaseRow | undefined;
        return row === undefined ? null : rowToJobLease(row);
      } catch (error) {
        if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw jobNotFound(jobId);
        throw error;
      }
    });
  }

  async renewJobLeases(nodeId: string, held: ReadonlyArray<{ jobId: string; epoch: number }>, leaseMs: number): Promise<string[]> {
    checkLeaseMs(leaseMs);
    return this.guard(() => {
      if (held.length === 0) return [];
      const expireTime = new Date(Date.now() + leaseMs).toISOString();
      const rows = this.statement(
        `UPDATE job_leases SET expire_time = ?
           WHERE node_id = ? AND (job_id, epoch) IN (SELECT json_extract(value, '$.jobId'), json_extract(value, '$.epoch') FROM json_each(?))
           RETURNING job_id`,
        true,
      ).all(expireTime, nodeId, JSON.stringify(held)) as string[];
      return rows.sort();
    });
  }

  async releaseJobLease(jobId: string, nodeId: string, epoch: number): Promise<void> {
    this.guard(() => {
      this.statement('UPDATE job_leases SET node_id = NULL WHERE job_id = ? AND node_id = ? AND epoch = ?').run(jobId, nodeId, epoch);
    });
  }

  async listJobLeases(): Promise<StoredJobLease[]> {
    return this.guard(() =>
      (this.statement('SELECT job_id, node_id, epoch, expire_time FROM job_leases ORDER BY job_id').all() as JobLeaseRow[]).map(rowToJobLease),
    );
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
    const order = { ...JOB_ORDER_KEYS[orderBy], column: ORDER_COLUMN[orderBy] };
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


