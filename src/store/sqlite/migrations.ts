/**
 * Versioned schema migrations of the SQLite metadata store. Append only: a released
 * migration never changes; a schema change is a new migration with the next version.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { FerryError } from '../../core/errors.js';

export interface SchemaMigration {
  /** 1, 2, 3, ... in order, without gaps. */
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly SchemaMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE connection_profiles (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        engine TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        database TEXT,
        username TEXT NOT NULL,
        tls_mode TEXT NOT NULL,
        connectivity_method TEXT NOT NULL,
        labels TEXT NOT NULL,
        encrypted_password TEXT,
        ca_certificate TEXT,
        client_certificate TEXT,
        encrypted_client_key TEXT,
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL
      ) STRICT;
      CREATE INDEX connection_profiles_create_time_id ON connection_profiles (create_time, id);

      -- No foreign key to connection_profiles: a Completed job outlives its profiles.
      CREATE TABLE migration_jobs (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        type TEXT NOT NULL,
        source_profile_id TEXT NOT NULL,
        destination_profile_id TEXT NOT NULL,
        source_engine TEXT NOT NULL,
        destination_engine TEXT NOT NULL,
        connectivity_method TEXT NOT NULL,
        selection TEXT NOT NULL,
        dump_parallelism INTEGER NOT NULL,
        labels TEXT NOT NULL,
        status TEXT NOT NULL,
        phase TEXT,
        error TEXT,
        promote_requested INTEGER NOT NULL,
        create_time TEXT NOT NULL,
        update_time TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        running_millis INTEGER NOT NULL,
        run_start_time TEXT
      ) STRICT;
      CREATE INDEX migration_jobs_create_time_id ON migration_jobs (create_time, id);
      CREATE INDEX migration_jobs_status ON migration_jobs (status);
      CREATE INDEX migration_jobs_source_profile_id ON migration_jobs (source_profile_id);
      CREATE INDEX migration_jobs_destination_profile_id ON migration_jobs (destination_profile_id);

      CREATE TABLE job_objects (
        job_id TEXT NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        rows_copied INTEGER NOT NULL,
        bytes_copied INTEGER NOT NULL,
        estimated_rows INTEGER NOT NULL,
        estimated_bytes INTEGER NOT NULL,
        error TEXT,
        update_time TEXT NOT NULL,
        PRIMARY KEY (job_id, name)
      ) STRICT;

      -- AUTOINCREMENT: an event id is never reused, even after its job is deleted, so that
      -- a client polling with afterId never misses an event.
      CREATE TABLE job_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT,
        status TEXT,
        phase TEXT,
        has_phase INTEGER NOT NULL,
        details TEXT
      ) STRICT;
      CREATE INDEX job_events_job_id_id ON job_events (job_id, id);

      CREATE TABLE checkpoints (
        job_id TEXT NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (job_id, key)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'api tokens',
    sql: `
      -- Only the SHA-256 of a token is kept: the secret is shown once, when it is created.
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        create_time TEXT NOT NULL,
        last_used_time TEXT,
        revoke_time TEXT
      ) STRICT;
      CREATE INDEX api_tokens_create_time_id ON api_tokens (create_time, id);
    `,
  },
  {
    version: 3,
    name: 'zero date policy',
    sql: `
      -- How a job treats MySQL zero dates bound for an engine without them: 'null' (warn) or 'refuse'.
      ALTER TABLE migration_jobs ADD COLUMN zero_date_policy TEXT NOT NULL DEFAULT 'null';
    `,
  },
  {
    version: 4,
    name: 'schema mapping',
    sql: `
      -- Source schema / database -> destination name, as a JSON object ('{}' keeps every name).
      ALTER TABLE migration_jobs ADD COLUMN schema_mapping TEXT NOT NULL DEFAULT '{}';
      -- A job object's "schema.table" on the destination when the mapping renames it, else NULL.
      ALTER TABLE job_objects ADD COLUMN destination_name TEXT;
      `,
    },
    {
      version: 5,
    name: 'definer policy',
    sql: `
      -- Who a MySQL to MySQL job's views, routines, triggers and events run as: 'keep', 'invoker' or 'user@host'.
      ALTER TABLE migration_jobs ADD COLUMN definer_policy TEXT NOT NULL DEFAULT 'keep';
      `,
    },
    {
      version: 6,
    name: 'ssh tunnel',
    sql: `
      -- connectivityMethod 'ssh-tunnel': the SSH server as JSON (host, port, username,
      -- hostKeyFingerprint) and its private key, encrypted like the password.
      ALTER TABLE connection_profiles ADD COLUMN ssh_tunnel TEXT;
      ALTER TABLE connection_profiles ADD COLUMN encrypted_ssh_private_key TEXT;
      `,
    },
    {
      version: 7,
    name: 'job list orders',
    sql: `
      -- The jobs list pages in these orders too (createTime has its index since version 1).
      CREATE INDEX migration_jobs_update_time_id ON migration_jobs (update_time, id);
      CREATE INDEX migration_jobs_display_name_id ON migration_jobs (display_name COLLATE NOCASE, id);
    `,
  },
  {
    version: 8,
    name: 'parked tables',
    sql: `
      -- Running with errors per table: changes the destination refused wait (parked) on the destination.
      ALTER TABLE job_objects ADD COLUMN parked_changes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE job_objects ADD COLUMN last_retry_time TEXT;
      -- NULL: the default limit (DEFAULT_MAX_PARKED_CHANGES).
      ALTER TABLE migration_jobs ADD COLUMN max_parked_changes INTEGER;
    `,
  },
  {
    version: 9,
    name: 'value policies',
    sql: `
      -- MySQL ENUM error values ('') bound for PostgreSQL: 'label' (kept as a label) or 'null' (warn).
      ALTER TABLE migration_jobs ADD COLUMN enum_error_value_policy TEXT NOT NULL DEFAULT 'label';
      -- NUL characters in MySQL text bound for PostgreSQL: 'refuse' or 'strip' (warn).
      ALTER TABLE migration_jobs ADD COLUMN nul_character_policy TEXT NOT NULL DEFAULT 'refuse';
    `,
  },
  {
    version: 10,
    name: 'promote requires a clean validation',
    sql: `
      -- 1: promote is refused unless the job's latest data validation is clean (docs/validation.md).
      ALTER TABLE migration_jobs ADD COLUMN require_validation INTEGER NOT NULL DEFAULT 0;
    `,
  },
];

/**
 * Applies the migrations the database has not seen, each in its own transaction, and
 * returns the versions it applied (empty when the schema was up to date).
 * Rejects with FAILED_PRECONDITION when the database was written by a newer Ferry.
 */
export function migrate(
  db: BetterSqlite3.Database,
  migrations: readonly SchemaMigration[] = MIGRATIONS,
): number[] {
  checkOrder(migrations);
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_time TEXT NOT NULL
    ) STRICT
  `);
  const latestKnown = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const latestApplied = currentVersion(db);
  if (latestApplied > latestKnown) {
    throw new FerryError(
      'FAILED_PRECONDITION',
      `The metadata database ${db.name} has schema version ${latestApplied}, newer than the ${latestKnown} this Ferry knows; upgrade Ferry or point it at another data directory`,
    );
  }
  const isApplied = db.prepare<[number], number>('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare<[number, string, string]>(
    'INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)',
  );
  const applied: number[] = [];
  for (const migration of migrations) {
    // IMMEDIATE takes the write lock before the check, so two processes starting together
    // cannot both apply the same migration.
    let ran: boolean;
    try {
      ran = db
        .transaction((): boolean => {
          if (isApplied.get(migration.version) !== undefined) return false;
          db.exec(migration.sql);
          record.run(migration.version, migration.name, new Date().toISOString());
          return true;
        })
        .immediate();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new FerryError(
        'INTERNAL',
        `Schema migration ${migration.version} (${migration.name}) of ${db.name} failed and was rolled back: ${reason}; the database stays at version ${currentVersion(db)}, fix the cause and restart Ferry`,
        { cause: error },
      );
    }
    if (ran) applied.push(migration.version);
  }
  return applied;
}

/** The highest applied version, 0 for a new database. */
export function currentVersion(db: BetterSqlite3.Database): number {
  const hasTable = db
    .prepare<[], number>("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .pluck()
    .get();
  if (hasTable === undefined) return 0;
  const version = db.prepare<[], number | null>('SELECT max(version) FROM schema_migrations').pluck().get();
  return version ?? 0;
}

function checkOrder(migrations: readonly SchemaMigration[]): void {
  migrations.forEach((migration, index) => {
    // Strictly increasing (branches reserve numbers: a gap is allowed until they merge).
    const previous = index === 0 ? 0 : (migrations[index - 1] as SchemaMigration).version;
    if (index === 0 ? migration.version !== 1 : migration.version <= previous) {
      throw new FerryError(
        'INTERNAL',
        `Schema migration "${migration.name}" has version ${migration.version} at position ${index + 1}, not above the previous one's ${previous}; number migrations 1, 2, 3, ... in order`,
      );
    }
  });
}
