/**
 * Applies the versioned schema migrations (src/store/schema-migrations.ts, PostgreSQL side)
 * to a PostgreSQL metadata store. Several servers may start together on one store: an
 * advisory lock makes them migrate one after the other, so each migration runs once.
 */
import type pg from 'pg';
import { FerryError } from '../../core/errors.js';
import { SCHEMA_MIGRATIONS, checkOrder, type SchemaMigration } from '../schema-migrations.js';

/** The PostgreSQL side of the shared migrations. */
export const PG_MIGRATIONS: readonly SchemaMigration[] = SCHEMA_MIGRATIONS.map(({ version, name, postgresql }) => ({ version, name, sql: postgresql }));

/** How long a start waits for another server's migration before giving up. */
const MIGRATION_LOCK_WAIT_MILLIS = 120_000;

type Client = Pick<pg.PoolClient, 'query'>;

/**
 * Creates the schema when missing and applies the migrations it has not seen, each in its
 * own transaction, under a session advisory lock; returns the versions applied. Rejects with
 * FAILED_PRECONDITION when the store was written by a newer Ferry. Leaves the connection's
 * search_path on the schema.
 */
export async function migratePostgres(
  client: Client,
  target: { schema: string; location: string },
  migrations: readonly SchemaMigration[] = PG_MIGRATIONS,
): Promise<number[]> {
  checkOrder(migrations);
  const schema = `"${target.schema}"`;
  const lockKey = `ferry metadata store migrations: ${target.schema}`;
  const deadline = Date.now() + MIGRATION_LOCK_WAIT_MILLIS;
  for (;;) {
    const got = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [lockKey]);
    if (got.rows[0]?.locked === true) break;
    if (Date.now() > deadline) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `Another Ferry server has been migrating the metadata store ${target.location} for more than ${MIGRATION_LOCK_WAIT_MILLIS / 1000} s; check the servers on this store (pg_locks shows the session holding the advisory lock), then start again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  try {
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`SET search_path TO ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time TEXT NOT NULL)`);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new FerryError(
        (error as { code?: string }).code === '42501' ? 'INSUFFICIENT_PRIVILEGE' : 'INTERNAL',
        `Cannot create the schema ${schema} of the metadata store ${target.location}: ${reason}; let the store's user create it (GRANT CREATE ON DATABASE ... TO ...), or create the schema owned by that user`,
        { cause: error },
      );
    }
    const latestKnown = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
    const latestApplied = await pgCurrentVersion(client, target.schema);
    if (latestApplied > latestKnown) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `The metadata store ${target.location} (schema ${target.schema}) has schema version ${latestApplied}, newer than the ${latestKnown} this Ferry knows; upgrade Ferry on this node (every node on one store runs the same version)`,
      );
    }
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= latestApplied) continue;
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_time) VALUES ($1, $2, $3)', [
          migration.version, migration.name, new Date().toISOString(),
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const reason = error instanceof Error ? error.message : String(error);
        throw new FerryError(
          'INTERNAL',
          `Schema migration ${migration.version} (${migration.name}) of the metadata store ${target.location} failed and was rolled back: ${reason}; the store stays at version ${await pgCurrentVersion(client, target.schema).catch(() => '?')}, fix the cause and restart Ferry`,
          { cause: error },
        );
      }
      applied.push(migration.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
  }
}

/** The highest applied version in the schema, 0 when it has no migrations table. */
export async function pgCurrentVersion(client: Client, schema: string): Promise<number> {
  const table = await client.query<{ exists: boolean }>(
    "SELECT to_regclass(format('%I.schema_migrations', $1::text)) IS NOT NULL AS exists",
    [schema],
  );
  if (table.rows[0]?.exists !== true) return 0;
  const result = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM "${schema}".schema_migrations`);
  return result.rows[0]?.version ?? 0;
}
