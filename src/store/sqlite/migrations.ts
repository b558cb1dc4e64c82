/**
 * Applies the versioned schema migrations (src/store/schema-migrations.ts, SQLite side) to
 * a SQLite metadata store.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { FerryError } from '../../core/errors.js';
import { SCHEMA_MIGRATIONS, checkOrder, type SchemaMigration } from '../schema-migrations.js';

export type { SchemaMigration };

/** The SQLite side of the shared migrations (src/store/schema-migrations.ts). */
export const MIGRATIONS: readonly SchemaMigration[] = SCHEMA_MIGRATIONS.map(({ version, name, sqlite }) => ({ version, name, sql: sqlite }));

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
