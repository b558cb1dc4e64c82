/**
 * The metadata store on PostgreSQL, for several Ferry servers sharing one store. Same
 * contract, same versioned schema (src/store/schema-migrations.ts) and same row mapping
 * (src/store/store-rows.ts) as the SQLite store; its tables live in their own schema of the
 * target database ("ferry" by default).
 *
 * Every method is one statement in autocommit, or one transaction: a rejected promise
 * changed nothing. `updateJob` with `expectedStatus` is one UPDATE whose WHERE checks the
 * status: PostgreSQL re-checks it on the latest row version after waiting for a concurrent
 * writer, so two servers cannot both win.
 */
import pg from 'pg';
import { FerryError, toFerryError } from '../../core/errors.js';
import type { JobStatus } from '../../core/lifecycle.js';
import type { JobHistoryEvent, JobListOrder, JobObject, MigrationJob, NewJobHistoryEvent } from '../../core/migration-job.js';
import { classifyPostgresError } from '../../engines/postgres/postgres-error-classifier.js';
import type {
  JobListOptions, JobObjectTotals, ListOptions, MetadataStore, Page, SecretReplacement, StoredApiToken, StoredJobLease, StoredNode, StoredProfile, StoredSecret,
} from '../metadata-store.js';
import {
  API_TOKEN_COLUMNS, JOB_COLUMNS, JOB_EVENT_COLUMNS, JOB_OBJECT_COLUMNS, JOB_ORDER_KEYS, PROFILE_COLUMNS, SECRET_COLUMNS,
  apiTokenToRow, checkJobListOptions, compareSecrets, checkpointJson, containsPattern, decodePageToken, encodePageToken, jobEventToRow, jobNotFound, nodeNotFound,
  jobObjectToRow, jobToRow, profileNotFound, profileToRow, resolvePageSize, rowToApiToken, rowToJob, rowToJobEvent, rowToJobObject, rowToProfile,
  NODE_COLUMNS, checkLeaseMs, nodeToRow, rowToJobLease, rowToNode, rowToJobObjectTotals, type JobLeaseRow, type NodeRow, type ApiTokenRow, type JobEventRow, type JobObjectRow, type JobObjectTotalsRow, type JobRow, type ProfileRow,
} from '../store-rows.js';
import { migratePostgres } from './migrations.js';

export const DEFAULT_PG_SCHEMA = 'ferry';
const POOL_SIZE = 8;
const CONNECT_TIMEOUT_MILLIS = 10_000;

/** How each job list order sorts in PostgreSQL: lower() under the "C" collation folds ASCII letters only, as SQLite's NOCASE (migration 7). */
const ORDER_COLUMN: { [O in JobListOrder]: string } = {
  createTime: 'create_time',
  'createTime desc': 'create_time',
  updateTime: 'update_time',
  'updateTime desc': 'update_time',
  displayName: 'lower(display_name)',
  'displayName desc': 'lower(display_name)',
};

/** bigint (20) and numeric (1700, what sum() of bigint gives) as JavaScript numbers: every count the store keeps is below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === 20 || oid === 1700) return (text: string) => Number(text);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

export interface PostgresStoreOptions {
  /** The schema that holds Ferry's tables; created by migrate(). Default "ferry". */
  schema?: string;
  poolSize?: number;
}

/** A store URL with its password left out, for messages and logs. */
export function redactStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '';
    return parsed.toString();
  } catch {
    return '(a PostgreSQL URL that does not parse)';
  }
}

export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text);
}

function placeholders(count: number, from = 1): string {
  return Array.from({ length: count }, (_, i) => `$${i + from}`).join(', ');
}

function valuesOf<R>(row: R, columns: readonly (keyof R)[]): unknown[] {
  return columns.map((c) => row[c]);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const SQL = {
  insertProfile: `INSERT INTO connection_profiles (${PROFILE_COLUMNS.join(', ')}) VALUES (${placeholders(PROFILE_COLUMNS.length)})`,
  updateProfile: `UPDATE connection_profiles SET ${PROFILE_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1`,
  insertJob: `INSERT INTO migration_jobs (${JOB_COLUMNS.join(', ')}) VALUES (${placeholders(JOB_COLUMNS.length)})`,
  // $N+1: the expected status, or NULL for an unconditional update.
  updateJob: `UPDATE migration_jobs SET ${JOB_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`).join(', ')}
    WHERE id = $1 AND ($${JOB_COLUMNS.length + 1}::text IS NULL OR status = $${JOB_COLUMNS.length + 1}::text) RETURNING 1`,
  // One statement for the whole batch: the rows travel as one JSON array.
  upsertJobObjects: `INSERT INTO job_objects (${JOB_OBJECT_COLUMNS.join(', ')})
    SELECT ${JOB_OBJECT_COLUMNS.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS x(
      job_id text, name text, state text, rows_copied bigint, bytes_copied bigint, estimated_rows bigint, estimated_bytes bigint,
      error text, update_time text, destination_name text, parked_changes bigint, last_retry_time text)
    ON CONFLICT (job_id, name) DO UPDATE SET ${JOB_OBJECT_COLUMNS.slice(2).map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
  insertJobEvent: `INSERT INTO job_events (${JOB_EVENT_COLUMNS.join(', ')}) VALUES (${placeholders(JOB_EVENT_COLUMNS.length)}) RETURNING id`,
  putNode: `INSERT INTO nodes (${NODE_COLUMNS.join(', ')}) VALUES (${placeholders(NODE_COLUMNS.length)})
    ON CONFLICT (id) DO UPDATE SET ${NODE_COLUMNS.slice(1).map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
  // One compare-and-set: the row is locked by the conflict, and the WHERE is checked on its
  // latest version, so of several nodes racing for a lease exactly one gets it.
  acquireJobLease: `INSERT INTO job_leases (job_id, node_id, epoch, expire_time) VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
    ON CONFLICT (job_id) DO UPDATE SET node_id = EXCLUDED.node_id, epoch = job_leases.epoch + 1, expire_time = EXCLUDED.expire_time
      WHERE job_leases.node_id IS NULL OR job_leases.node_id = EXCLUDED.node_id OR job_leases.expire_time <= now()
    RETURNING job_id, node_id, epoch, expire_time`,
  renewJobLeases: `UPDATE job_leases AS l SET expire_time = now() + $3 * interval '1 millisecond'
    FROM jsonb_to_recordset($2::jsonb) AS h(job_id text, epoch bigint)
    WHERE l.job_id = h.job_id AND l.epoch = h.epoch AND l.node_id = $1
    RETURNING l.job_id`,
  insertApiToken: `INSERT INTO api_tokens (${API_TOKEN_COLUMNS.join(', ')}) VALUES (${placeholders(API_TOKEN_COLUMNS.length)})`,
};

export type Queryable = Pick<pg.PoolClient, 'query'>;

export class PostgresMetadataStore implements MetadataStore {
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    /** The URL without its password. */
    readonly location: string,
    readonly schema: string,
  ) {}

  /**
   * Connects to the database of `url` (postgresql://user[:password]@host[:port]/database)
   * and checks that it answers. Rejects with a FerryError naming the store (never its
   * password) when it is unreachable, refuses the login or the database does not exist.
   * Call `migrate()` before anything else.
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresMetadataStore> {
    const location = redactStoreUrl(url);
    const schema = options.schema ?? DEFAULT_PG_SCHEMA;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new FerryError('INVALID_ARGUMENT', `Schema name "${schema}" is not valid for the metadata store; use lower-case letters, digits and _`);
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new FerryError('INVALID_ARGUMENT', `The store URL does not parse; write it as postgresql://user[:password]@host[:port]/database`, { cause: error });
    }
    if (!isPostgresUrl(url) || parsed.pathname.length <= 1) {
      throw new FerryError('INVALID_ARGUMENT', `The store URL ${location} is not a PostgreSQL database URL; write it as postgresql://user[:password]@host[:port]/database`);
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MILLIS,
      application_name: 'ferry-metadata-store',
      options: `-c search_path=${schema}`,
      types: TYPES,
    });
    // An idle connection that breaks (server restart) is replaced by the pool; the next query reports trouble.
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      const classified = classifyPostgresError(error, {
        host: parsed.hostname,
        port: parsed.port === '' ? 5432 : Number(parsed.port),
        database: decodeURIComponent(parsed.pathname.slice(1)),
        username: decodeURIComponent(parsed.username),
        connecting: true,
      });
      throw new FerryError(classified.code, `Cannot open the metadata store ${location}: ${classified.message} (The store URL comes from --store or FERRY_STORE_URL.)`, {
        retryable: classified.retryable,
        details: { ...classified.details, store: location },
        cause: error,
      });
    }
    return new PostgresMetadataStore(pool, location, schema);
  }

  async migrate(): Promise<void> {
    const client = await this.connect();
    try {
      await migratePostgres(client, { schema: this.schema, location: this.location });
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async dataVersion(): Promise<string> {
    const rows = await this.query<{ version: number }>('SELECT coalesce(sum(writes), 0) AS version FROM data_version');
    return String(rows[0]?.version ?? 0);
  }

  async insertProfile(profile: StoredProfile): Promise<void> {
    try {
      await this.query(SQL.insertProfile, valuesOf(profileToRow(profile), PROFILE_COLUMNS));
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new FerryError('ALREADY_EXISTS', `Connection profile "${profile.id}" already exists; choose another id or update the existing profile`, {
          details: { profileId: profile.id },
        });
      }
      throw error;
    }
  }

  async updateProfile(profile: StoredProfile): Promise<void> {
    const result = await this.run(SQL.updateProfile, valuesOf(profileToRow(profile), PROFILE_COLUMNS));
    if (result.rowCount === 0) throw profileNotFound(profile.id);
  }

  async getProfile(id: string): Promise<StoredProfile | null> {
    const rows = await this.query<ProfileRow>('SELECT * FROM connection_profiles WHERE id = $1', [id]);
    return rows[0] === undefined ? null : rowToProfile(rows[0]);
  }

  async getProfileNames(ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map<string, string>();
    const rows = await this.query<{ id: string; display_name: string }>(
      'SELECT id, display_name FROM connection_profiles WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.map((row) => [row.id, row.display_name]));
  }

  async listProfiles(options: ListOptions = {}): Promise<Page<StoredProfile>> {
    return this.page('connection_profiles', [], [], options, rowToProfile);
  }

  async deleteProfile(id: string): Promise<void> {
    const result = await this.run('DELETE FROM connection_profiles WHERE id = $1', [id]);
    if (result.rowCount === 0) throw profileNotFound(id);
  }

  async listSecrets(): Promise<StoredSecret[]> {
    const secrets: StoredSecret[] = [];
    for (const { owner, table, column, field } of SECRET_COLUMNS) {
      const rows = await this.query<{ id: string; value: string }>(`SELECT id, ${column} AS value FROM ${table} WHERE ${column} IS NOT NULL ORDER BY id`);
      secrets.push(...rows.map((row): StoredSecret => ({ owner, ownerId: row.id, field, value: row.value })));
    }
    return secrets.sort(compareSecrets);
  }

  async replaceSecrets(replacements: SecretReplacement[]): Promise<void> {
    await this.transaction(async (client) => {
      for (const r of replacements) {
        const place = SECRET_COLUMNS.find((c) => c.owner === r.owner && c.field === r.field);
        if (place === undefined) throw new FerryError('INTERNAL', `No store column holds the ${r.field} of a ${r.owner}; add it to SECRET_COLUMNS`);
        const result = await client.query(`UPDATE ${place.table} SET ${place.column} = $1 WHERE id = $2 AND ${place.column} = $3`, [r.value, r.ownerId, r.previous]);
        if (result.rowCount !== 1) {
          throw new FerryError('FAILED_PRECONDITION', `The ${r.field} of ${r.owner} "${r.ownerId}" changed or vanished while secrets were being replaced; nothing was changed, run the command again`, {
            details: { owner: r.owner, ownerId: r.ownerId, field: r.field },
          });
        }
      }
    });
  }

  async insertJob(job: MigrationJob): Promise<void> {
    try {
      await this.query(SQL.insertJob, valuesOf(jobToRow(job), JOB_COLUMNS));
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new FerryError('ALREADY_EXISTS', `Migration job "${job.id}" already exists; choose another id or update the existing job`, {
          details: { jobId: job.id },
        });
      }
      throw error;
    }
  }

  async updateJob(job: MigrationJob, expectedStatus?: JobStatus): Promise<boolean> {
    const result = await this.run(SQL.updateJob, [...valuesOf(jobToRow(job), JOB_COLUMNS), expectedStatus ?? null]);
    if (result.rowCount === 1) return true;
    // Nothing updated: either the status differed or there is no such job.
    const exists = await this.query('SELECT 1 FROM migration_jobs WHERE id = $1', [job.id]);
    if (exists.length === 0) throw jobNotFound(job.id);
    return false;
  }

  async getJob(id: string): Promise<MigrationJob | null> {
    const rows = await this.query<JobRow>('SELECT * FROM migration_jobs WHERE id = $1', [id]);
    return rows[0] === undefined ? null : rowToJob(rows[0]);
  }

  async listJobs(options: JobListOptions = {}): Promise<Page<MigrationJob>> {
    const filters: string[] = [];
    const params: unknown[] = [];
    const statuses = options.status ?? [];
    if (statuses.length > 0) {
      params.push(statuses);
      filters.push(`status = ANY($${params.length}::text[])`);
    }
    const { search, orderBy } = checkJobListOptions(options);
    if (search !== '') {
      // lower() under the "C" collation of these columns folds ASCII letters only, as SQLite's LIKE.
      params.push(containsPattern(search));
      const pattern = `lower($${params.length}::text COLLATE "C")`;
      filters.push(`(lower(display_name) LIKE ${pattern} ESCAPE '\\' OR lower(id) LIKE ${pattern} ESCAPE '\\')`);
    }
    const page = await this.page('migration_jobs', filters, params, options, rowToJob, orderBy);
    const whereSql = filters.length === 0 ? '' : ` WHERE ${filters.join(' AND ')}`;
    const count = await this.query<{ count: number }>(`SELECT count(*) AS count FROM migration_jobs${whereSql}`, params);
    return { ...page, totalSize: count[0]?.count ?? 0 };
  }

  async listJobsUsingProfile(profileId: string): Promise<MigrationJob[]> {
    const rows = await this.query<JobRow>(
      'SELECT * FROM migration_jobs WHERE source_profile_id = $1 OR destination_profile_id = $1 ORDER BY create_time, id',
      [profileId],
    );
    return rows.map(rowToJob);
  }

  async deleteJob(id: string): Promise<void> {
    // Objects, events and checkpoints go with it: ON DELETE CASCADE, in this statement.
    const result = await this.run('DELETE FROM migration_jobs WHERE id = $1', [id]);
    if (result.rowCount === 0) throw jobNotFound(id);
  }

  async upsertJobObjects(objects: JobObject[]): Promise<void> {
    if (objects.length === 0) return;
    // The last of several objects with one (jobId, name) wins, as when they are written one by one.
    const byKey = new Map<string, JobObjectRow>();
    for (const object of objects) byKey.set(JSON.stringify([object.jobId, object.name]), jobObjectToRow(object));
    try {
      await this.query(SQL.upsertJobObjects, [JSON.stringify([...byKey.values()])]);
    } catch (error) {
      if (sqlState(error) !== '23503') throw error;
      const jobIds = [...new Set(objects.map((o) => o.jobId))];
      const found = new Set((await this.query<{ id: string }>('SELECT id FROM migration_jobs WHERE id = ANY($1::text[])', [jobIds])).map((r) => r.id));
      throw jobNotFound(jobIds.find((id) => !found.has(id)) ?? jobIds[0]!);
    }
  }

  async listJobObjects(jobId: string): Promise<JobObject[]> {
    const rows = await this.query<JobObjectRow>('SELECT * FROM job_objects WHERE job_id = $1 ORDER BY name', [jobId]);
    return rows.map(rowToJobObject);
  }

  async totalJobObjects(jobIds: readonly string[]): Promise<JobObjectTotals[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.query<JobObjectTotalsRow>(
      `SELECT job_id, state, count(*) AS tables, sum(rows_copied) AS rows_copied, sum(bytes_copied) AS bytes_copied,
              sum(greatest(0, estimated_rows)) AS estimated_rows, sum(greatest(0, estimated_bytes)) AS estimated_bytes
         FROM job_objects WHERE job_id = ANY($1::text[]) GROUP BY job_id, state`,
      [jobIds],
    );
    return rows.map(rowToJobObjectTotals);
  }

  async deleteJobObjects(jobId: string): Promise<void> {
    await this.query('DELETE FROM job_objects WHERE job_id = $1', [jobId]);
  }

  async appendJobEvent(event: NewJobHistoryEvent): Promise<JobHistoryEvent> {
    const row = jobEventToRow(event);
    try {
      const rows = await this.query<{ id: number }>(SQL.insertJobEvent, valuesOf(row, JOB_EVENT_COLUMNS));
      return rowToJobEvent({ ...row, id: rows[0]!.id });
    } catch (error) {
      if (sqlState(error) === '23503') throw jobNotFound(event.jobId);
      throw error;
    }
  }

  async listJobEvents(jobId: string, options: { afterId?: number; limit?: number } = {}): Promise<JobHistoryEvent[]> {
    const afterId = options.afterId ?? 0;
    if (!Number.isSafeInteger(afterId)) {
      throw new FerryError('INVALID_ARGUMENT', `afterId ${afterId} is not an integer; pass the id of an event`);
    }
    const limit = options.limit ?? null;
    if (limit !== null && !(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new FerryError('INVALID_ARGUMENT', `limit ${limit} is not valid; pass a whole number of 1 or more`);
    }
    // LIMIT NULL is PostgreSQL for "no limit".
    const rows = await this.query<JobEventRow>('SELECT * FROM job_events WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3', [jobId, afterId, limit]);
    return rows.map(rowToJobEvent);
  }

  async putCheckpoint(jobId: string, key: string, value: unknown): Promise<void> {
    const text = checkpointJson(jobId, key, value);
    try {
      await this.query(
        'INSERT INTO checkpoints (job_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (job_id, key) DO UPDATE SET value = EXCLUDED.value',
        [jobId, key, text],
      );
    } catch (error) {
      if (sqlState(error) === '23503') throw jobNotFound(jobId);
      throw error;
    }
  }

  async getCheckpoint<T = unknown>(jobId: string, key: string): Promise<T | null> {
    const rows = await this.query<{ value: string }>('SELECT value FROM checkpoints WHERE job_id = $1 AND key = $2', [jobId, key]);
    return rows[0] === undefined ? null : (JSON.parse(rows[0].value) as T);
  }

  async deleteCheckpoints(jobId: string): Promise<void> {
    await this.query('DELETE FROM checkpoints WHERE job_id = $1', [jobId]);
  }

  async insertApiToken(token: StoredApiToken): Promise<void> {
    try {
      await this.query(SQL.insertApiToken, valuesOf(apiTokenToRow(token), API_TOKEN_COLUMNS));
    } catch (error) {
      if (sqlState(error) === '23505') {
        throw new FerryError('ALREADY_EXISTS', `API token "${token.id}" (or its secret) already exists; create the token again`, {
          details: { tokenId: token.id },
        });
      }
      throw error;
    }
  }

  async listApiTokens(): Promise<StoredApiToken[]> {
    const rows = await this.query<ApiTokenRow>('SELECT * FROM api_tokens ORDER BY create_time, id');
    return rows.map(rowToApiToken);
  }

  async findApiTokenByHash(tokenHash: string): Promise<StoredApiToken | null> {
    const rows = await this.query<ApiTokenRow>('SELECT * FROM api_tokens WHERE token_hash = $1', [tokenHash]);
    return rows[0] === undefined ? null : rowToApiToken(rows[0]);
  }

  async revokeApiToken(id: string, time: string): Promise<void> {
    const result = await this.run('UPDATE api_tokens SET revoke_time = coalesce(revoke_time, $1) WHERE id = $2', [time, id]);
    if (result.rowCount === 0) {
      throw new FerryError('NOT_FOUND', `API token "${id}" does not exist; list tokens to find the right id`, { details: { tokenId: id } });
    }
  }

  async touchApiToken(id: string, time: string): Promise<void> {
    await this.query('UPDATE api_tokens SET last_used_time = $1 WHERE id = $2', [time, id]);
  }

  async putNode(node: StoredNode): Promise<void> {
    await this.query(SQL.putNode, valuesOf(nodeToRow(node), NODE_COLUMNS));
  }

  async listNodes(): Promise<StoredNode[]> {
    return (await this.query<NodeRow>('SELECT * FROM nodes ORDER BY id')).map(rowToNode);
  }

  async setNodeDrain(nodeId: string, drainTime: string | null): Promise<void> {
    const result = await this.run('UPDATE nodes SET drain_time = $2 WHERE id = $1', [nodeId, drainTime]);
    if (result.rowCount === 0) throw nodeNotFound(nodeId);
  }

  async acquireJobLease(jobId: string, nodeId: string, leaseMs: number): Promise<StoredJobLease | null> {
    checkLeaseMs(leaseMs);
    try {
      const rows = await this.query<JobLeaseRow>(SQL.acquireJobLease, [jobId, nodeId, leaseMs]);
      return rows[0] === undefined ? null : rowToJobLease(rows[0]);
    } catch (error) {
      if (sqlState(error) === '23503') throw jobNotFound(jobId);
      throw error;
    }
  }

  async renewJobLeases(nodeId: string, held: ReadonlyArray<{ jobId: string; epoch: number }>, leaseMs: number): Promise<string[]> {
    checkLeaseMs(leaseMs);
    if (held.length === 0) return [];
    const rows = await this.query<{ job_id: string }>(SQL.renewJobLeases, [nodeId, JSON.stringify(held.map((h) => ({ job_id: h.jobId, epoch: h.epoch }))), leaseMs]);
    return rows.map((row) => row.job_id).sort();
  }

  async releaseJobLease(jobId: string, nodeId: string, epoch: number): Promise<void> {
    await this.query('UPDATE job_leases SET node_id = NULL WHERE job_id = $1 AND node_id = $2 AND epoch = $3', [jobId, nodeId, epoch]);
  }

  async listJobLeases(): Promise<StoredJobLease[]> {
    return (await this.query<JobLeaseRow>('SELECT job_id, node_id, epoch, expire_time FROM job_leases ORDER BY job_id')).map(rowToJobLease);
  }

  /**
   * Runs `work` in one transaction on one connection: committed when it resolves, rolled
   * back when it rejects. For callers that write several things at once (`ferry store copy`).
   */
  async transaction<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw storeError(error, this.location);
    } finally {
      client.release();
    }
  }

  /** A keyset page, as in the SQLite store: rows after the token's (key, id) in the order. */
  private async page<R, T>(
    table: string,
    filters: string[],
    params: unknown[],
    options: ListOptions,
    map: (row: R) => T,
    orderBy: JobListOrder = 'createTime',
  ): Promise<Page<T>> {
    const pageSize = resolvePageSize(options.pageSize);
    const order = JOB_ORDER_KEYS[orderBy];
    const column = ORDER_COLUMN[orderBy];
    const where = [...filters];
    const bound = [...params];
    if (options.pageToken !== undefined && options.pageToken !== null && options.pageToken !== '') {
      const [key, id] = decodePageToken(options.pageToken, orderBy);
      bound.push(key, id);
      const keyText = `$${bound.length - 1}::text COLLATE "C"`;
      const keyParam = column.startsWith('lower(') ? `lower(${keyText})` : keyText;
      where.push(`(${column}, id) ${order.descending ? '<' : '>'} (${keyParam}, $${bound.length}::text COLLATE "C")`);
    }
    const whereSql = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
    const direction = order.descending ? ' DESC' : '';
    bound.push(pageSize + 1);
    // One row more than asked tells whether another page follows.
    const rows = await this.query<R & Record<string, string>>(
      `SELECT * FROM ${table}${whereSql} ORDER BY ${column}${direction}, id${direction} LIMIT $${bound.length}`,
      bound,
    );
    const items = rows.slice(0, pageSize);
    const last = items[items.length - 1];
    const nextPageToken = rows.length > pageSize && last !== undefined ? encodePageToken(last[order.key]!, last['id']!, orderBy) : null;
    return { items: items.map(map), nextPageToken };
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw storeError(error, this.location);
    }
  }

  private async run(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(sql, params);
    } catch (error) {
      throw storeError(error, this.location);
    }
  }

  private async query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.run(sql, params)).rows as R[];
  }
}

/** The SQLSTATE of a PostgreSQL error, also through the FerryError storeError made of it. */
function sqlState(error: unknown): string | undefined {
  const raw = error instanceof FerryError ? error.cause : error;
  return raw instanceof pg.DatabaseError ? raw.code : undefined;
}

function storeError(error: unknown, location: string): FerryError {
  if (error instanceof FerryError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  const code = error instanceof pg.DatabaseError ? error.code : undefined;
  if (code === '22P02' || code === '22003' || code === '23502' || code === '23514') {
    return new FerryError('INVALID_ARGUMENT', `The metadata store refused a value: ${reason}; fix the caller that produced it`, { cause: error });
  }
  if (code === '53100') {
    return new FerryError('DISK_FULL', `The disk of the metadata store ${location} is full (${reason}); free space and retry`, { retryable: true, cause: error });
  }
  if (code === '23505') {
    return new FerryError('ALREADY_EXISTS', `The metadata store already holds this: ${reason}`, { cause: error });
  }
  if (code === '23503') {
    return new FerryError('NOT_FOUND', `The metadata store refused a row whose parent is missing: ${reason}`, { cause: error });
  }
  const classified = classifyPostgresError(error);
  if (classified.code !== 'INTERNAL' || code !== undefined) {
    return new FerryError(classified.code, `The metadata store ${location} failed: ${classified.message}`, {
      retryable: classified.retryable,
      details: { ...classified.details, store: location },
      cause: error,
    });
  }
  return toFerryError(error, `Metadata store ${location} failed`);
}
