/**
 * The PostgreSQL metadata store: the shared store contract (test/helpers/metadata-store-suite.ts)
 * on a real server, plus what only this store has: its schema and migrations under an
 * advisory lock, and the errors of a store that cannot be opened. One fresh database on the
 * destination-side cluster (127.0.0.1:5433) per file, one fresh schema per test.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { PG_MIGRATIONS, migratePostgres, pgCurrentVersion } from '../../src/store/postgres/migrations.js';
import { PostgresMetadataStore, redactStoreUrl } from '../../src/store/postgres/postgres-metadata-store.js';
import { SCHEMA_MIGRATIONS } from '../../src/store/schema-migrations.js';
import { MIGRATIONS, currentVersion, migrate } from '../../src/store/sqlite/migrations.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { makeNewJob, makeProfile, metadataStoreContract, rejection } from '../helpers/metadata-store-suite.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let database: TestDatabase;
let url: string;
const openStores: PostgresMetadataStore[] = [];

beforeAll(async () => {
  database = await createTestDatabase(PG_DEST_PORT, 'ferry_store');
  url = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${database.params.database}`;
});

afterEach(async () => {
  for (const store of openStores.splice(0)) await store.close();
});

afterAll(async () => {
  await database?.drop();
});

function freshSchema(): string {
  return `s_${randomBytes(5).toString('hex')}`;
}

async function openStore(schema = freshSchema()): Promise<PostgresMetadataStore> {
  const store = await PostgresMetadataStore.open(url, { schema });
  openStores.push(store);
  await store.migrate();
  return store;
}

describe('store contract on PostgreSQL', () => {
  metadataStoreContract({
    open: () => openStore(),
    async openPair() {
      const schema = freshSchema();
      return [await openStore(schema), await openStore(schema)];
    },
    async openReopenable() {
      const schema = freshSchema();
      return [await openStore(schema), () => openStore(schema)];
    },
  });
});

describe('PostgreSQL schema migrations', () => {
  it('has the same migrations as the SQLite store, numbered and named identically, so both report one schema version', async () => {
    expect(PG_MIGRATIONS.map((m) => [m.version, m.name])).toEqual(MIGRATIONS.map((m) => [m.version, m.name]));
    const latest = SCHEMA_MIGRATIONS[SCHEMA_MIGRATIONS.length - 1]!.version;
    const schema = freshSchema();
    await openStore(schema);
    expect(await pgCurrentVersion(database.client, schema)).toBe(latest);
    const sqlite = new Database(':memory:');
    try {
      migrate(sqlite);
      expect(currentVersion(sqlite)).toBe(latest);
    } finally {
      sqlite.close();
    }
  });

  it('creates every table of the SQLite store, with the same columns, in its own schema', async () => {
    const schema = freshSchema();
    await openStore(schema);
    const pgColumns = (
      await database.client.query<{ table_name: string; column_name: string }>(
        'SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name',
        [schema],
      )
    ).rows.map((r) => `${r.table_name}.${r.column_name}`);
    const sqlite = SqliteMetadataStore.open(':memory:');
    await sqlite.migrate();
    await sqlite.close();
    const raw = new Database(':memory:');
    try {
      migrate(raw);
      const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
      const sqliteColumns = tables.flatMap((table) =>
        (raw.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]).map((c) => `${table}.${c}`),
      );
      // The PostgreSQL store has one table more: what dataVersion() counts.
      expect(pgColumns.filter((c) => !c.startsWith('data_version.')).sort()).toEqual(sqliteColumns.sort());
    } finally {
      raw.close();
    }
    const versions = await database.client.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
    expect(versions.rows).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it('is idempotent and keeps the data', async () => {
    const schema = freshSchema();
    const first = await openStore(schema);
    await first.insertProfile(makeProfile());
    await first.migrate();
    const second = await openStore(schema);
    expect(await second.getProfile('src-pg')).toEqual(makeProfile());
  });

  it('several servers starting together on one empty store apply each migration once', async () => {
    const schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresMetadataStore.open(url, { schema })));
    openStores.push(...stores);
    await Promise.all(stores.map((store) => store.migrate()));
    const versions = await database.client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    await stores[3]!.insertJob(makeNewJob());
    expect((await stores[0]!.getJob('job-1'))?.id).toBe('job-1');
  });

  it('runs each migration in its own transaction: a failing one leaves no trace, earlier ones stay', async () => {
    const schema = freshSchema();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const good = { version: 1, name: 'good', sql: 'CREATE TABLE good (x INTEGER)' };
      const bad = { version: 2, name: 'bad', sql: 'CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);' };
      const error = await rejection(migratePostgres(client, { schema, location: 'test' }, [good, bad]));
      expect(error.message).toMatch(/Schema migration 2 \(bad\).*no_such_table.*stays at version 1/);
      const tables = await client.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
      expect(tables.rows.map((r) => r.table_name)).toContain('good');
      expect(tables.rows.map((r) => r.table_name)).not.toContain('half_done');
      expect(await pgCurrentVersion(client, schema)).toBe(1);
      // The advisory lock was released: another migration goes through at once.
      expect(await migratePostgres(client, { schema, location: 'test' }, [good])).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('refuses a store written by a newer Ferry', async () => {
    const schema = freshSchema();
    await openStore(schema);
    await database.client.query(`INSERT INTO "${schema}".schema_migrations (version, name, applied_time) VALUES (999, 'future', 'now')`);
    const again = await PostgresMetadataStore.open(url, { schema });
    openStores.push(again);
    const error = await rejection(again.migrate());
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.message).toContain('999');
    expect(error.message).toContain('upgrade Ferry');
  });
});

describe('opening a PostgreSQL store', () => {
  async function openError(target: string): Promise<FerryError> {
    return rejection(PostgresMetadataStore.open(target));
  }

  it('an unreachable server: CONNECTION_REFUSED, naming the store without its password', async () => {
    const error = await openError(`postgresql://ferry:s3cret-pw@127.0.0.1:1/ferry`);
    expect(error.code).toBe('CONNECTION_REFUSED');
    expect(error.message).toContain('Cannot open the metadata store postgresql://ferry@127.0.0.1:1/ferry');
    expect(error.message).not.toContain('s3cret-pw');
  });

  it('a database that does not exist: DATABASE_NOT_FOUND', async () => {
    const error = await openError(`postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/no_such_ferry_store_db`);
    expect(error.code).toBe('DATABASE_NOT_FOUND');
    expect(error.message).toContain('no_such_ferry_store_db');
  });

  it('a login the server refuses: AUTHENTICATION_FAILED', async () => {
    // The test clusters trust local logins, so a wrong password cannot be shown here; a role
    // without LOGIN takes the same path (SQLSTATE 28000, as 28P01 for a wrong password).
    const role = `ferry_nologin_${randomBytes(4).toString('hex')}`;
    await database.client.query(`CREATE ROLE ${role} NOLOGIN`);
    try {
      const error = await openError(`postgresql://${role}:pw@${PG_HOST}:${PG_DEST_PORT}/${database.params.database}`);
      expect(error.code).toBe('AUTHENTICATION_FAILED');
      expect(error.message).toContain(role);
      expect(error.message).not.toContain(':pw@');
    } finally {
      await database.client.query(`DROP ROLE ${role}`);
    }
  });

  it('a URL that is not a PostgreSQL database URL: INVALID_ARGUMENT', async () => {
    expect((await openError('mysql://root@127.0.0.1/x')).code).toBe('INVALID_ARGUMENT');
    expect((await openError('postgresql://127.0.0.1:5433')).code).toBe('INVALID_ARGUMENT');
    expect((await openError('not a url')).code).toBe('INVALID_ARGUMENT');
  });

  it('redacts the password of a store URL', () => {
    expect(redactStoreUrl('postgresql://u:p%40ss@h:5433/db')).toBe('postgresql://u@h:5433/db');
  });
});
