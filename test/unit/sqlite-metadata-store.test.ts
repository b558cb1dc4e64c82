import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { MIGRATIONS, currentVersion, migrate } from '../../src/store/sqlite/migrations.js';
import type { SchemaMigration } from '../../src/store/sqlite/migrations.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { makeNewJob, makeProfile, metadataStoreContract, rejection } from '../helpers/metadata-store-suite.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const openStores: SqliteMetadataStore[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const store of openStores.splice(0)) await store.close();
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-store-'));
  tempDirs.push(dir);
  return dir;
}

async function openStore(file = ':memory:'): Promise<SqliteMetadataStore> {
  const store = SqliteMetadataStore.open(file);
  openStores.push(store);
  await store.migrate();
  return store;
}

describe('SqliteMetadataStore.open', () => {
  it('puts a file database in WAL mode', async () => {
    const file = path.join(tempDir(), 'ferry.db');
    await openStore(file);
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('rejects a path it cannot open with FAILED_PRECONDITION naming the path', () => {
    const missing = path.join(tempDir(), 'no-such-dir', 'ferry.db');
    let caught: unknown;
    try {
      SqliteMetadataStore.open(missing);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FerryError);
    expect((caught as FerryError).code).toBe('FAILED_PRECONDITION');
    expect((caught as FerryError).message).toContain(missing);
  });

  it('rejects a file that is not a database', () => {
    const file = path.join(tempDir(), 'not-a-db');
    fs.writeFileSync(file, 'this is plain text, not SQLite, and long enough to have a header.'.repeat(4));
    let caught: unknown;
    try {
      SqliteMetadataStore.open(file);
    } catch (error) {
      caught = error;
    }
    expect((caught as FerryError).code).toBe('FAILED_PRECONDITION');
  });

  it('close is idempotent', async () => {
    const store = await openStore();
    await store.close();
    await expect(store.close()).resolves.toBeUndefined();
  });
});

describe('schema migrations', () => {
  it('numbers MIGRATIONS 1, 2, 3, ... (strictly increasing) with a name and SQL each', () => {
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    expect(MIGRATIONS[0]?.version).toBe(1);
    MIGRATIONS.forEach((migration, index) => {
      expect(migration.version).toBeGreaterThan(index === 0 ? 0 : (MIGRATIONS[index - 1]?.version ?? 0));
      expect(migration.name.length).toBeGreaterThan(0);
      expect(migration.sql.length).toBeGreaterThan(0);
    });
  });

  it('creates every table and index and records each version', () => {
    const db = new Database(':memory:');
    try {
      expect(currentVersion(db)).toBe(0);
      expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all() as string[];
      expect(tables).toEqual(
        expect.arrayContaining([
          'checkpoints',
          'connection_profiles',
          'job_events',
          'job_objects',
          'migration_jobs',
          'schema_migrations',
        ]),
      );
      const jobIndexes = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'migration_jobs' ORDER BY name")
        .pluck()
        .all() as string[];
      expect(jobIndexes).toEqual(
        expect.arrayContaining(['migration_jobs_create_time_id', 'migration_jobs_status', 'migration_jobs_update_time_id', 'migration_jobs_display_name_id']),
      );
      const recorded = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      expect(recorded).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      expect(currentVersion(db)).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
      expect(migrate(db)).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('is idempotent on an existing file and keeps its data', async () => {
    const file = path.join(tempDir(), 'ferry.db');
    const first = await openStore(file);
    await first.migrate();
    await first.insertProfile(makeProfile());
    await first.close();

    const second = await openStore(file);
    await second.migrate();
    await second.migrate();
    expect(await second.getProfile('src-pg')).toEqual(makeProfile());
    await second.close();

    const raw = new Database(file, { readonly: true });
    try {
      const versions = raw.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      raw.close();
    }
  });

  it('applies only the missing migrations', () => {
    const db = new Database(':memory:');
    const first: SchemaMigration = { version: 1, name: 'one', sql: 'CREATE TABLE one (x INTEGER)' };
    const second: SchemaMigration = { version: 2, name: 'two', sql: 'CREATE TABLE two (y INTEGER)' };
    try {
      expect(migrate(db, [first])).toEqual([1]);
      expect(migrate(db, [first, second])).toEqual([2]);
      expect(migrate(db, [first, second])).toEqual([]);
      expect(currentVersion(db)).toBe(2);
    } finally {
      db.close();
    }
  });

  it('runs each migration in its own transaction: a failing one leaves no trace, earlier ones stay', () => {
    const db = new Database(':memory:');
    const good: SchemaMigration = { version: 1, name: 'good', sql: 'CREATE TABLE good (x INTEGER)' };
    const bad: SchemaMigration = {
      version: 2,
      name: 'bad',
      sql: 'CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);',
    };
    try {
      expect(() => migrate(db, [good, bad])).toThrow(/Schema migration 2 \(bad\).*no_such_table.*stays at version 1/);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
      expect(tables).toContain('good');
      expect(tables).not.toContain('half_done');
      expect(currentVersion(db)).toBe(1);
    } finally {
      db.close();
    }
  });

  it('refuses a database written by a newer Ferry', async () => {
    const file = path.join(tempDir(), 'ferry.db');
    const store = await openStore(file);
    await store.close();
    const raw = new Database(file);
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_time) VALUES (999, 'future', 'now')").run();
    raw.close();

    const again = SqliteMetadataStore.open(file);
    openStores.push(again);
    const error = await rejection(again.migrate());
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.message).toContain('999');
  });

  it('refuses migrations out of order', () => {
    const db = new Database(':memory:');
    try {
      expect(() => migrate(db, [{ version: 2, name: 'two', sql: 'SELECT 1' }])).toThrow(/version 2 at position 1/);
    } finally {
      db.close();
    }
  });
});

describe('store contract on SQLite', () => {
  metadataStoreContract({
    open: () => openStore(),
    async openPair() {
      const file = path.join(tempDir(), 'ferry.db');
      return [await openStore(file), await openStore(file)];
    },
    async openReopenable() {
      const file = path.join(tempDir(), 'ferry.db');
      return [await openStore(file), () => openStore(file)];
    },
  });
});

describe('durability on SQLite', () => {
  it('keeps every committed write when the process is killed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'ferry.db');
    const script = path.join(dir, 'killed-writer.mts');
    const storeUrl = pathToFileURL(path.join(REPO_ROOT, 'src/store/sqlite/sqlite-metadata-store.ts')).href;
    fs.writeFileSync(
      script,
      `import { SqliteMetadataStore } from ${JSON.stringify(storeUrl)};
const store = SqliteMetadataStore.open(${JSON.stringify(file)});
await store.migrate();
await store.insertJob(${JSON.stringify(makeNewJob())});
for (let i = 0; i < 50; i++) {
  await store.appendJobEvent({ jobId: 'job-1', time: 't', kind: 'info', message: 'event ' + i, actor: 'system' });
}
await store.putCheckpoint('job-1', 'k', { last: 49 });
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.signal).toBe('SIGKILL');

    const store = await openStore(file);
    expect(await store.getJob('job-1')).toStrictEqual(makeNewJob());
    const events = await store.listJobEvents('job-1');
    expect(events.map((e) => e.message)).toEqual(Array.from({ length: 50 }, (_, i) => `event ${i}`));
    expect(await store.getCheckpoint('job-1', 'k')).toEqual({ last: 49 });
  });
});
