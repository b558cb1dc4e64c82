/**
 * `ferry store copy`: moves an installation from its SQLite store to a PostgreSQL store,
 * every table as it is (profiles with their encrypted secrets untouched, jobs, job objects,
 * history events with their ids, checkpoints, API tokens), in one transaction on the target.
 *
 * Both stores are first brought to the same schema version; every table of the SQLite store
 * is copied (a table added by a later migration is copied without a change here), and the
 * row counts are checked on the target before the commit.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { FerryError } from '../core/errors.js';
import { runningServerPid } from '../service/server-pid-file.js';
import { PostgresMetadataStore, type Queryable } from './postgres/postgres-metadata-store.js';
import { SqliteMetadataStore } from './sqlite/sqlite-metadata-store.js';

/**
 * Never copied: bookkeeping that each store keeps for itself, the nodes (the servers that
 * ran on the source are not servers of the target) and the job leases (live state of those
 * servers; the target's nodes acquire new ones, with epochs from 1: runners on a SQLite store
 * never raise a destination fence, so no fence row holds a higher epoch).
 */
const OWN_TABLES = new Set(['schema_migrations', 'data_version', 'sqlite_sequence', 'nodes', 'job_leases']);
const BATCH_ROWS = 500;

export interface StoreCopyResult {
  from: string;
  to: string;
  /** Rows copied, by table, in copy order. */
  tables: Array<{ table: string; rows: number }>;
  /** True when the target held data that was deleted first (`replace`). */
  replaced: boolean;
}

export interface StoreCopyOptions {
  /** The data directory holding ferry.db. */
  fromDataDir: string;
  /** postgresql://... */
  toUrl: string;
  /** Delete what the target holds first, instead of refusing a non-empty target. */
  replace?: boolean;
  /** Schema on the target; default "ferry". */
  schema?: string;
}

export async function copySqliteStoreToPostgres(options: StoreCopyOptions): Promise<StoreCopyResult> {
  const dataDir = resolve(options.fromDataDir);
  const file = join(dataDir, 'ferry.db');
  if (!existsSync(file)) {
    throw new FerryError('NOT_FOUND', `${dataDir} holds no Ferry metadata (no ferry.db); pass the --data-dir the SQLite server ran with`, { details: { dataDir } });
  }
  const pid = runningServerPid(dataDir);
  if (pid !== null) {
    throw new FerryError(
      'FAILED_PRECONDITION',
      `A Ferry server (pid ${pid}) is running on ${dataDir}: what it writes during the copy would be lost; stop it, then copy`,
      { details: { dataDir, pid } },
    );
  }
  // Brings the source to this Ferry's schema version (what `ferry serve` would do).
  const sqliteStore = SqliteMetadataStore.open(file);
  try {
    await sqliteStore.migrate();
  } finally {
    await sqliteStore.close();
  }
  const target = await PostgresMetadataStore.open(options.toUrl, options.schema === undefined ? {} : { schema: options.schema });
  const source = new Database(file, { readonly: true, fileMustExist: true });
  try {
    await target.migrate();
    const tables = copyOrder(source);
    return await target.transaction(async (client) => {
      // Nobody writes the target while the copy runs: other servers wait rather than see half of it.
      for (const table of tables) await client.query(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
      const nonEmpty: Array<{ table: string; rows: number }> = [];
      for (const table of tables) {
        const rows = await countRows(client, table);
        if (rows > 0) nonEmpty.push({ table, rows });
      }
      if (nonEmpty.length > 0 && options.replace !== true) {
        throw new FerryError(
          'FAILED_PRECONDITION',
          `The target store ${target.location} is not empty (${nonEmpty.map((t) => `${t.table}: ${t.rows}`).join(', ')}); copy into an empty store, or pass --replace to delete what it holds first`,
          { details: { nonEmpty } },
        );
      }
      // Children first: every table that references another goes before it.
      for (const table of [...tables].reverse()) await client.query(`DELETE FROM ${table}`);
      const copied: StoreCopyResult['tables'] = [];
      for (const table of tables) {
        const rows = source.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
        for (let i = 0; i < rows.length; i += BATCH_ROWS) {
          await client.query(`INSERT INTO ${table} SELECT * FROM json_populate_recordset(NULL::${table}, $1::json)`, [JSON.stringify(rows.slice(i, i + BATCH_ROWS))]);
        }
        const count = await countRows(client, table);
        if (count !== rows.length) {
          throw new FerryError('INTERNAL', `Copying ${table} left ${count} rows on the target for ${rows.length} in the source; nothing was copied`);
        }
        copied.push({ table, rows: rows.length });
      }
      // Event ids are never reused, also after the copy: the target's identity continues past
      // the source's high-water mark (which counts events of deleted jobs too).
      const seq = source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'job_events'").pluck().get() as number | undefined;
      const maxId = (source.prepare('SELECT max(id) FROM job_events').pluck().get() as number | null) ?? 0;
      const highWater = Math.max(seq ?? 0, maxId);
      if (highWater > 0) await client.query("SELECT setval(pg_get_serial_sequence('job_events', 'id'), $1)", [highWater]);
      return { from: file, to: target.location, tables: copied, replaced: nonEmpty.length > 0 };
    });
  } finally {
    source.close();
    await target.close();
  }
}

/** The SQLite store's tables, parents before the tables that reference them. */
function copyOrder(source: Database.Database): string[] {
  const tables = (source.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]).filter(
    (name) => !OWN_TABLES.has(name),
  );
  const parents = new Map(
    tables.map((table) => [table, (source.prepare('SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)').pluck().all(table) as string[]).filter((p) => p !== table)]),
  );
  const ordered: string[] = [];
  const visit = (table: string, depth: number) => {
    if (ordered.includes(table)) return;
    if (depth > tables.length) throw new FerryError('INTERNAL', `The tables of the metadata store reference each other in a cycle (at ${table})`);
    for (const parent of parents.get(table) ?? []) visit(parent, depth + 1);
    ordered.push(table);
  };
  for (const table of tables) visit(table, 0);
  return ordered;
}

async function countRows(client: Queryable, table: string): Promise<number> {
  const result = await client.query<{ count: number }>(`SELECT count(*) AS count FROM ${table}`);
  return Number(result.rows[0]?.count ?? 0);
}
