/**
 * The versioned schema of the metadata store, in both dialects side by side: migration N
 * means the same change in SQLite (src/store/sqlite/) and in PostgreSQL (src/store/postgres/),
 * so both stores at version N hold the same tables, columns and meaning.
 *
 * Append only: a released migration never changes; a schema change is one new entry with
 * the next version and its SQL for each dialect (the comments live with the SQLite text).
 * PostgreSQL SQL runs with the store's schema (default "ferry") first on the search path.
 */

import { FerryError } from '../core/errors.js';

/** One migration in one dialect, as a store applies it. */
export interface SchemaMigration {
  /** 1, 2, 3, ... in order, without gaps. */
  version: number;
  name: string;
  sql: string;
}

export interface DialectMigration {
  /** 1, 2, 3, ... in order, without gaps. */
  version: number;
  name: string;
  sqlite: string;
  postgresql: string;
}

export const SCHEMA_MIGRATIONS: readonly DialectMigration[] = [
  {
    version: 1,
    name: 'initial schema',
    sqlite: `
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
    postgresql: `
      -- Text keys that lists order by use the "C" collation: byte order, as in SQLite.
      CREATE TABLE connection_profiles (
        id TEXT COLLATE "C" PRIMARY KEY,
        display_name TEXT COLLATE "C" NOT NULL,
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
        create_time TEXT COLLATE "C" NOT NULL,
        update_time TEXT COLLATE "C" NOT NULL
      );
      CREATE INDEX connection_profiles_create_time_id ON connection_profiles (create_time, id);

      -- No foreign key to connection_profiles: a Completed job outlives its profiles.
      -- Flags are 0/1 integers, as in SQLite, so that both stores map rows the same way.
      CREATE TABLE migration_jobs (
        id TEXT COLLATE "C" PRIMARY KEY,
        display_name TEXT COLLATE "C" NOT NULL,
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
        create_time TEXT COLLATE "C" NOT NULL,
        update_time TEXT COLLATE "C" NOT NULL,
        start_time TEXT,
        end_time TEXT,
        running_millis BIGINT NOT NULL,
        run_start_time TEXT
      );
      CREATE INDEX migration_jobs_create_time_id ON migration_jobs (create_time, id);
      CREATE INDEX migration_jobs_status ON migration_jobs (status);
      CREATE INDEX migration_jobs_source_profile_id ON migration_jobs (source_profile_id);
      CREATE INDEX migration_jobs_destination_profile_id ON migration_jobs (destination_profile_id);

      CREATE TABLE job_objects (
        job_id TEXT COLLATE "C" NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        rows_copied BIGINT NOT NULL,
        bytes_copied BIGINT NOT NULL,
        estimated_rows BIGINT NOT NULL,
        estimated_bytes BIGINT NOT NULL,
        error TEXT,
        update_time TEXT NOT NULL,
        PRIMARY KEY (job_id, name)
      );

      -- An identity is never reused (as SQLite's AUTOINCREMENT): a client polling with afterId
      -- never misses an event. BY DEFAULT lets \`ferry store copy\` keep the ids it copies.
      CREATE TABLE job_events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT,
        status TEXT,
        phase TEXT,
        has_phase INTEGER NOT NULL,
        details TEXT
      );
      CREATE INDEX job_events_job_id_id ON job_events (job_id, id);

      CREATE TABLE checkpoints (
        job_id TEXT COLLATE "C" NOT NULL REFERENCES migration_jobs (id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (job_id, key)
      );

      -- dataVersion(): every write statement adds 1 to its backend's own row (no two
      -- transactions ever wait on each other for it); the sum over the committed rows grows
      -- with every commit and with nothing else.
      CREATE TABLE data_version (
        backend_pid INTEGER PRIMARY KEY,
        writes BIGINT NOT NULL
      );
      CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      BEGIN
        INSERT INTO data_version (backend_pid, writes) VALUES (pg_backend_pid(), 1)
          ON CONFLICT (backend_pid) DO UPDATE SET writes = data_version.writes + 1;
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER connection_profiles_data_version AFTER INSERT OR UPDATE OR DELETE ON connection_profiles
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
      CREATE TRIGGER migration_jobs_data_version AFTER INSERT OR UPDATE OR DELETE ON migration_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
      CREATE TRIGGER job_objects_data_version AFTER INSERT OR UPDATE OR DELETE ON job_objects
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
      CREATE TRIGGER job_events_data_version AFTER INSERT OR UPDATE OR DELETE ON job_events
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
      CREATE TRIGGER checkpoints_data_version AFTER INSERT OR UPDATE OR DELETE ON checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
    `,
  },
  {
    version: 2,
    name: 'api tokens',
    sqlite: `
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
    postgresql: `
      CREATE TABLE api_tokens (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        create_time TEXT COLLATE "C" NOT NULL,
        last_used_time TEXT,
        revoke_time TEXT
      );
      CREATE INDEX api_tokens_create_time_id ON api_tokens (create_time, id);
      CREATE TRIGGER api_tokens_data_version AFTER INSERT OR UPDATE OR DELETE ON api_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
    `,
  },
  {
    version: 3,
    name: 'zero date policy',
    sqlite: `
      -- How a job treats MySQL zero dates bound for an engine without them: 'null' (warn) or 'refuse'.
      ALTER TABLE migration_jobs ADD COLUMN zero_date_policy TEXT NOT NULL DEFAULT 'null';
    `,
    postgresql: `
      ALTER TABLE migration_jobs ADD COLUMN zero_date_policy TEXT NOT NULL DEFAULT 'null';
    `,
  },
  {
    version: 4,
    name: 'schema mapping',
    sqlite: `
      -- Source schema / database -> destination name, as a JSON object ('{}' keeps every name).
      ALTER TABLE migration_jobs ADD COLUMN schema_mapping TEXT NOT NULL DEFAULT '{}';
      -- A job object's "schema.table" on the destination when the mapping renames it, else NULL.
      ALTER TABLE job_objects ADD COLUMN destination_name TEXT;
    `,
    postgresql: `
      ALTER TABLE migration_jobs ADD COLUMN schema_mapping TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE job_objects ADD COLUMN destination_name TEXT;
    `,
  },
  {
    version: 5,
    name: 'definer policy',
    sqlite: `
      -- Who a MySQL to MySQL job's views, routines, triggers and events run as: 'keep', 'invoker' or 'user@host'.
      ALTER TABLE migration_jobs ADD COLUMN definer_policy TEXT NOT NULL DEFAULT 'keep';
    `,
    postgresql: `
      ALTER TABLE migration_jobs ADD COLUMN definer_policy TEXT NOT NULL DEFAULT 'keep';
    `,
  },
  {
    version: 6,
    name: 'ssh tunnel',
    sqlite: `
      -- connectivityMethod 'ssh-tunnel': the SSH server as JSON (host, port, username,
      -- hostKeyFingerprint) and its private key, encrypted like the password.
      ALTER TABLE connection_profiles ADD COLUMN ssh_tunnel TEXT;
      ALTER TABLE connection_profiles ADD COLUMN encrypted_ssh_private_key TEXT;
    `,
    postgresql: `
      ALTER TABLE connection_profiles ADD COLUMN ssh_tunnel TEXT;
      ALTER TABLE connection_profiles ADD COLUMN encrypted_ssh_private_key TEXT;
    `,
  },
  {
    version: 7,
    name: 'job list orders',
    sqlite: `
      -- The jobs list pages in these orders too (createTime has its index since version 1).
      CREATE INDEX migration_jobs_update_time_id ON migration_jobs (update_time, id);
      CREATE INDEX migration_jobs_display_name_id ON migration_jobs (display_name COLLATE NOCASE, id);
    `,
    postgresql: `
      -- SQLite's NOCASE folds ASCII letters only: so does lower() under the "C" collation.
      CREATE INDEX migration_jobs_update_time_id ON migration_jobs (update_time, id);
      CREATE INDEX migration_jobs_display_name_id ON migration_jobs (lower(display_name), id);
    `,
  },
  {
    version: 8,
    name: 'parked tables',
    sqlite: `
      -- Running with errors per table: changes the destination refused wait (parked) on the destination.
      ALTER TABLE job_objects ADD COLUMN parked_changes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE job_objects ADD COLUMN last_retry_time TEXT;
      -- NULL: the default limit (DEFAULT_MAX_PARKED_CHANGES).
      ALTER TABLE migration_jobs ADD COLUMN max_parked_changes INTEGER;
    `,
    postgresql: `
      ALTER TABLE job_objects ADD COLUMN parked_changes BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE job_objects ADD COLUMN last_retry_time TEXT;
      ALTER TABLE migration_jobs ADD COLUMN max_parked_changes BIGINT;
    `,
  },
  {
    version: 9,
    name: 'value policies',
    sqlite: `
      -- MySQL ENUM error values ('') bound for PostgreSQL: 'label' (kept as a label) or 'null' (warn).
      ALTER TABLE migration_jobs ADD COLUMN enum_error_value_policy TEXT NOT NULL DEFAULT 'label';
      -- NUL characters in MySQL text bound for PostgreSQL: 'refuse' or 'strip' (warn).
      ALTER TABLE migration_jobs ADD COLUMN nul_character_policy TEXT NOT NULL DEFAULT 'refuse';
    `,
    postgresql: `
      ALTER TABLE migration_jobs ADD COLUMN enum_error_value_policy TEXT NOT NULL DEFAULT 'label';
      ALTER TABLE migration_jobs ADD COLUMN nul_character_policy TEXT NOT NULL DEFAULT 'refuse';
    `,
  },
  {
    version: 10,
    name: 'promote requires a clean validation',
    sqlite: `
      -- 1: promote is refused unless the job's latest data validation is clean (docs/validation.md).
      ALTER TABLE migration_jobs ADD COLUMN require_validation INTEGER NOT NULL DEFAULT 0;
    `,
    postgresql: `
      ALTER TABLE migration_jobs ADD COLUMN require_validation INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 11,
    name: 'nodes',
    sqlite: `
      -- Each \`ferry serve\` on the store (a node), by its --node-id: where its API listens, which
      -- Ferry it runs, when it started, its last heartbeat (every few seconds) and when it stopped
      -- cleanly (NULL while it runs, or when it died).
      CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        version TEXT NOT NULL,
        start_time TEXT NOT NULL,
        heartbeat_time TEXT NOT NULL,
        stop_time TEXT
      ) STRICT;
    `,
    postgresql: `
      CREATE TABLE nodes (
        id TEXT COLLATE "C" PRIMARY KEY,
        address TEXT NOT NULL,
        version TEXT NOT NULL,
        start_time TEXT NOT NULL,
        heartbeat_time TEXT NOT NULL,
        stop_time TEXT
      );
      CREATE TRIGGER nodes_data_version AFTER INSERT OR UPDATE OR DELETE ON nodes
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
    `,
  },
  {
    version: 12,
    name: 'job leases',
    sqlite: `
      -- A job runs on the node that holds its lease (docs/ARCHITECTURE.md, "Leases"). node_id is
      -- NULL once the holder released it; epoch grows by one at every acquisition and never
      -- decreases (the fencing token); expire_time is by the store's clock (here the process's:
      -- one SQLite store has one node). The row goes with its job.
      CREATE TABLE job_leases (
        job_id TEXT PRIMARY KEY REFERENCES migration_jobs (id) ON DELETE CASCADE,
        node_id TEXT,
        epoch INTEGER NOT NULL,
        expire_time TEXT NOT NULL
      ) STRICT;
      -- When a drain of the node was asked (NULL: not draining), and its --max-jobs (NULL: no limit).
      ALTER TABLE nodes ADD COLUMN drain_time TEXT;
      ALTER TABLE nodes ADD COLUMN max_jobs INTEGER;
    `,
    postgresql: `
      -- expire_time by the store server's clock (now()): every node compares against the same clock.
      CREATE TABLE job_leases (
        job_id TEXT COLLATE "C" PRIMARY KEY REFERENCES migration_jobs (id) ON DELETE CASCADE,
        node_id TEXT COLLATE "C",
        epoch BIGINT NOT NULL,
        expire_time TIMESTAMPTZ NOT NULL
      );
      CREATE TRIGGER job_leases_data_version AFTER INSERT OR UPDATE OR DELETE ON job_leases
        FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
      ALTER TABLE nodes ADD COLUMN drain_time TEXT;
      ALTER TABLE nodes ADD COLUMN max_jobs INTEGER;
    `,
  },
];

/** Rejects migrations that do not start at 1 or do not increase. */
export function checkOrder(migrations: readonly SchemaMigration[]): void {
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
