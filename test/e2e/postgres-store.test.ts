/**
 * Moving an installation from its SQLite store to a PostgreSQL store, end to end: a real
 * `ferry serve` on SQLite gets profiles (with a password), a job and a token; `ferry store
 * copy` moves everything into a fresh database on 127.0.0.1:5433; a `ferry serve --store`
 * (FERRY_STORE_URL) with the same secret key lists the job with its history, reads the
 * password and accepts the token. Also the clear refusals: a non-empty target, a running
 * source server, an unreachable store.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, api, makeDataDir, removeDataDir, runCli, runCliJson, spawnFerryServer, stopAllFerryServers } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

interface StoreLike {
  getProfile(id: string): Promise<{ encryptedPassword: string | null } | null>;
  listJobEvents(jobId: string): Promise<Array<{ id: number; kind: string }>>;
  getCheckpoint(jobId: string, key: string): Promise<unknown>;
  putCheckpoint(jobId: string, key: string, value: unknown): Promise<void>;
  appendJobEvent(event: Record<string, unknown>): Promise<{ id: number }>;
  listApiTokens(): Promise<Array<{ id: string; tokenHash: string }>>;
  upsertJobObjects(objects: Array<Record<string, unknown>>): Promise<void>;
  listJobObjects(jobId: string): Promise<Array<Record<string, unknown>>>;
  insertJob(job: Record<string, unknown>): Promise<void>;
  getJob(id: string): Promise<{ id: string; displayName: string } | null>;
  deleteJob(id: string): Promise<void>;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const JOB = 'moved-job';
const CHECKPOINT = { createdObjects: ['public.orders'], step: 3 };
const VALIDATION = { id: 'v-1', status: 'SUCCEEDED', tables: [{ name: 'public.orders', differences: 0 }] };
const OBJECT = {
  jobId: JOB, name: 'public.orders', state: 'DUMPED', rowsCopied: 1234, bytesCopied: 9_007_199_254, estimatedRows: 1200, estimatedBytes: 9_000_000_000,
  error: null, updateTime: '2026-01-01T00:00:00.000Z', destinationName: 'archive.orders', parkedChanges: 2, lastRetryTime: '2026-01-01T00:00:01.000Z',
};

describe('ferry store copy and ferry serve on a PostgreSQL store', () => {
  let database: TestDatabase;
  let storeUrl: string;
  let dataDir: string;
  let tokenSecret: string;
  let sqliteEvents: Array<{ id: number; kind: string }>;
  let sqlitePassword: string | null;
  /** The id of an event of a job deleted before the copy: never to be given again. */
  let deletedEventId: number;

  const openSqlite = async (): Promise<StoreLike> => {
    const { SqliteMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'sqlite', 'sqlite-metadata-store.js'));
    const store = SqliteMetadataStore.open(join(dataDir, 'ferry.db')) as StoreLike;
    await store.migrate();
    return store;
  };
  const openPostgres = async (): Promise<StoreLike> => {
    const { PostgresMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'postgres', 'postgres-metadata-store.js'));
    const store = (await PostgresMetadataStore.open(storeUrl)) as StoreLike;
    await store.migrate();
    return store;
  };

  beforeAll(async () => {
    database = await createTestDatabase(PG_DEST_PORT, 'ferry_store_e2e');
    storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${database.params.database}`;
    dataDir = makeDataDir('ferry-store-copy-');

    const server = await spawnFerryServer({ dataDir });
    const http = api(server.url);
    for (const [id, name] of [['copy-source', 'app'], ['copy-destination', 'app_copy']] as const) {
      await http.postOk('/v1/connectionProfiles', {
        id, displayName: `Copy ${id}`, engine: 'postgresql', host: '127.0.0.1', port: 5432, database: name, username: 'postgres', password: `pw-of-${id}`,
      });
    }
    await http.postOk('/v1/migrationJobs', { id: JOB, displayName: 'Moved to PostgreSQL', type: 'continuous', sourceProfileId: 'copy-source', destinationProfileId: 'copy-destination' });
    await server.stop();

    const created = await runCliJson<{ secret: string }>(['tokens', 'create', '--name', 'ci', '--data-dir', dataDir]);
    tokenSecret = created.secret;
    const sqlite = await openSqlite();
    try {
      await sqlite.putCheckpoint(JOB, 'full-dump', CHECKPOINT);
      await sqlite.putCheckpoint(JOB, 'validation:v-1', VALIDATION);
      await sqlite.upsertJobObjects([OBJECT]);
      await sqlite.appendJobEvent({ jobId: JOB, time: new Date().toISOString(), kind: 'info', message: 'written before the move', actor: 'system' });
      const doomed = { ...(await sqlite.getJob(JOB)), id: 'deleted-before-the-move' };
      await sqlite.insertJob(doomed);
      deletedEventId = (await sqlite.appendJobEvent({ jobId: doomed.id, time: new Date().toISOString(), kind: 'info', message: 'gone', actor: 'system' })).id;
      await sqlite.deleteJob(doomed.id);
      sqliteEvents = await sqlite.listJobEvents(JOB);
      sqlitePassword = (await sqlite.getProfile('copy-source'))?.encryptedPassword ?? null;
    } finally {
      await sqlite.close();
    }
  }, 180_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await database?.drop();
    if (dataDir !== undefined) removeDataDir(dataDir);
  });

  it('copies everything into an empty store, in one go, and refuses a non-empty target unless told', async () => {
    const copied = await runCliJson<{ tables: Array<{ table: string; rows: number }>; replaced: boolean }>(['store', 'copy', '--from', dataDir, '--to', storeUrl]);
    const rows = Object.fromEntries(copied.tables.map((t) => [t.table, t.rows]));
    expect(rows).toMatchObject({ connection_profiles: 2, migration_jobs: 1, checkpoints: 2, api_tokens: 1, job_objects: 1 });
    expect(rows['job_events']).toBe(sqliteEvents.length);
    // The SQLite server's node row stays behind: it is not a server of the new store.
    expect(rows['nodes']).toBeUndefined();
    expect(copied.replaced).toBe(false);

    const refused = await runCli(['store', 'copy', '--from', dataDir, '--to', storeUrl]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not empty');
    expect(refused.stderr).toContain('--replace');

    const replaced = await runCliJson<{ replaced: boolean }>(['store', 'copy', '--from', dataDir, '--to', storeUrl, '--replace']);
    expect(replaced.replaced).toBe(true);

    const pg = await openPostgres();
    try {
      expect((await pg.getJob(JOB))?.displayName).toBe('Moved to PostgreSQL');
      // History keeps its ids: a client polling with afterId goes on where it was.
      expect(await pg.listJobEvents(JOB)).toEqual(sqliteEvents);
      expect(await pg.getCheckpoint(JOB, 'full-dump')).toEqual(CHECKPOINT);
      expect(await pg.getCheckpoint(JOB, 'validation:v-1')).toEqual(VALIDATION);
      expect(await pg.listJobObjects(JOB)).toEqual([OBJECT]);
      // The encrypted secret is copied as it is.
      expect((await pg.getProfile('copy-source'))?.encryptedPassword).toBe(sqlitePassword);
      expect(sqlitePassword).not.toBeNull();
      expect(await pg.listApiTokens()).toHaveLength(1);
      // New events continue after the copied ones.
      const next = await pg.appendJobEvent({ jobId: JOB, time: new Date().toISOString(), kind: 'info', message: 'after the move', actor: 'system' });
      expect(next.id).toBeGreaterThan(Math.max(...sqliteEvents.map((e) => e.id)));
      // ... and after those of jobs deleted before the copy.
      expect(deletedEventId).toBeGreaterThan(Math.max(...sqliteEvents.map((e) => e.id)));
      expect(next.id).toBeGreaterThan(deletedEventId);
    } finally {
      await pg.close();
    }
  });

  it('a server on the PostgreSQL store (FERRY_STORE_URL) lists the job with its history, reads the secrets and accepts the copied token', async () => {
    // FERRY_API_TOKEN makes every request need a token: the one made on the SQLite store must work.
    const server = await spawnFerryServer({ dataDir, env: { FERRY_STORE_URL: storeUrl, FERRY_API_TOKEN: 'ferry_bootstrap-token-for-this-test-only-0000000' } });
    const get = async <T>(path: string, token = tokenSecret): Promise<{ status: number; body: T }> => {
      const response = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
      return { status: response.status, body: (await response.json()) as T };
    };
    const list = await get<{ migrationJobs: Array<{ id: string }> }>('/v1/migrationJobs');
    expect(list.status).toBe(200);
    expect(list.body.migrationJobs.map((j) => j.id)).toEqual([JOB]);
    expect((await get('/v1/migrationJobs', 'ferry_not-a-token-of-this-store')).status).toBe(401);
    const cli = await runCliJson<{ migrationJobs: Array<{ id: string }> }>(['jobs', 'list'], { server: server.url, env: { FERRY_TOKEN: tokenSecret } });
    expect(cli.migrationJobs.map((j) => j.id)).toEqual([JOB]);
    const history = await runCli(['jobs', 'describe', JOB], { server: server.url, env: { FERRY_TOKEN: tokenSecret } });
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toContain('written before the move');
    const profile = await get<{ passwordSet: boolean }>('/v1/connectionProfiles/copy-source');
    expect(profile.body.passwordSet).toBe(true);
    // Same secret key (the data directory's secret.key): every copied secret decrypts.
    expect(server.output()).not.toContain('cannot be decrypted');
    expect(server.output()).toContain('"store":"postgresql://');
    // A second server on the store is another node (jobs run under leases, one node each): both are UP.
    const secondDir = makeDataDir('ferry-second-');
    const second = await spawnFerryServer({
      dataDir: secondDir,
      env: { FERRY_STORE_URL: storeUrl, FERRY_API_TOKEN: 'ferry_bootstrap-token-for-this-test-only-0000000', FERRY_SECRET_KEY: readFileSync(join(dataDir, 'secret.key'), 'utf8').trim() },
    });
    const nodes = await get<{ nodes: Array<{ id: string; state: string; jobs: string[] }> }>('/v1/nodes');
    expect(nodes.body.nodes.filter((n) => n.state === 'UP').map((n) => n.id).sort()).toEqual([`${hostname()}:${server.port}`, `${hostname()}:${second.port}`].sort());
    await second.stop();
    removeDataDir(secondDir);
    await server.stop();
  });

  it('a token created with --store is seen by the server on that store', async () => {
    const created = await runCliJson<{ token: { id: string } }>(['tokens', 'create', '--name', 'second', '--data-dir', dataDir, '--store', storeUrl]);
    const pg = await openPostgres();
    try {
      expect((await pg.listApiTokens()).map((t) => t.id)).toContain(created.token.id);
    } finally {
      await pg.close();
    }
  });

  it('refuses to copy while a server runs on the source', async () => {
    const server = await spawnFerryServer({ dataDir });
    const refused = await runCli(['store', 'copy', '--from', dataDir, '--to', storeUrl, '--replace']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`A Ferry server (pid ${server.pid}) is running`);
    await server.stop();
  });

  it('ferry serve says clearly why it cannot open the store and exits non-zero', async () => {
    const unreachable = await runCli(['serve', '--port', '0', '--data-dir', dataDir, '--store', 'postgresql://ferry:hunter2@127.0.0.1:1/ferry']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('CONNECTION_REFUSED: Cannot open the metadata store postgresql://ferry@127.0.0.1:1/ferry');
    expect(unreachable.stderr).not.toContain('hunter2');
    const missing = await runCli(['serve', '--port', '0', '--data-dir', dataDir], { env: { FERRY_STORE_URL: `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/no_such_ferry_store` } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('DATABASE_NOT_FOUND');
    await database.client.query(`INSERT INTO ferry.schema_migrations (version, name, applied_time) VALUES (999, 'future', 'now')`);
    try {
      const newer = await runCli(['serve', '--port', '0', '--data-dir', dataDir, '--store', storeUrl]);
      expect(newer.code).toBe(1);
      expect(newer.stderr).toContain('schema version 999, newer than');
    } finally {
      await database.client.query('DELETE FROM ferry.schema_migrations WHERE version = 999');
    }
  });
});
