/**
 * The secret key's life cycle against the real `ferry serve` and real PostgreSQL, on one
 * data directory, in order:
 * (a) the key file deleted while secrets exist: the server refuses to start, naming the data
 *     directory and both ways out, and makes no key; a damaged key file is refused the same
 *     way and left alone; the restored key starts it, and the continuous job goes on;
 * (b) the key lost for good: set-password on the data directory makes a new key; the server
 *     starts; the continuous job whose profiles' secrets the new key cannot read is Failed,
 *     recoverable, naming the profile and the fix; the API answers 409 (never 500) for them;
 *     once the original key is back (restart) the job resumes by itself;
 * (c) a one-time job whose source profile's secret cannot be read: Failed recoverable, then
 *     `ferry profiles set-password` through the API, and it resumes by itself to Completed;
 * (d) `ferry keys rotate` with the server stopped: every profile still works, the jobs go on,
 *     and the old key no longer decrypts anything (a server given it refuses to start).
 * The databases use trust authentication: the passwords are only secrets to keep.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAST_RETRY_ENV,
  api,
  freePort,
  makeDataDir,
  removeDataDir,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  waitFor,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { jobOf, waitForJob, type JobView } from '../helpers/e2e-jobs.js';

const SERVER_ENV = { ...FAST_RETRY_ENV, FERRY_SECRET_KEY: '' };

describe('secret key life cycle (real ferry serve, PostgreSQL 5432 -> 5433)', () => {
  const databases: TestDatabase[] = [];
  let dataDir: string;
  let keyFile: string;
  let originalKey: string;
  let server: FerryServer | null = null;
  let source: TestDatabase;
  let destination: TestDatabase;
  let destination2: TestDatabase;

  const client = (): ApiClient => api((server as FerryServer).url);

  async function start(env: Record<string, string> = {}): Promise<FerryServer> {
    server = await spawnFerryServer({ dataDir, env: { ...SERVER_ENV, ...env } });
    return server;
  }

  async function stop(): Promise<void> {
    const info = await (server as FerryServer).stop();
    expect(info.code, 'a clean stop').toBe(0);
    server = null;
  }

  /** `ferry serve` that is expected to refuse: it must exit by itself. */
  async function serveRefused(env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
    const result = await runCli(['serve', '--port', String(await freePort()), '--data-dir', dataDir], { env: { ...SERVER_ENV, ...env }, timeoutMs: 60_000 });
    return { code: result.code, stderr: result.stderr + result.stdout };
  }

  async function createProfile(id: string, db: TestDatabase, password: string): Promise<void> {
    await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(db.params.port),
      '--database', db.params.database as string, '--username', PG_USER, '--password', password], { server: (server as FerryServer).url });
  }

  async function insertRow(id: number): Promise<void> {
    await source.client.query('INSERT INTO public.items (id, v) VALUES ($1, $2)', [id, `row ${id}`]);
  }

  async function rowArrives(db: TestDatabase, id: number): Promise<void> {
    await waitFor(`item ${id} on ${db.params.database}`, async () => {
      const { rows } = await db.client.query('SELECT v FROM public.items WHERE id = $1', [id]);
      return rows.length === 1 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300 });
  }

  /** Polls until `ready`; a Failed job with a recoverable error is waited through (it probes and resumes by itself). */
  async function waitThroughFailure(id: string, what: string, ready: (job: JobView) => boolean, timeoutMs = 120_000): Promise<JobView> {
    return waitFor(`job ${id}: ${what}`, async () => {
      const job = await jobOf(client(), id);
      if (ready(job)) return job;
      if (job.status === 'FAILED' && job.error?.recoverable !== true) throw new Error(`job ${id} failed for good: ${JSON.stringify(job.error)}`);
      return undefined;
    }, { timeoutMs, intervalMs: 250 });
  }

  beforeAll(async () => {
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_key_src');
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_key_dst');
    destination2 = await createTestDatabase(PG_DEST_PORT, 'ferry_key_dst2');
    databases.push(source, destination, destination2);
    await source.client.query('CREATE TABLE public.items (id integer PRIMARY KEY, v text NOT NULL)');
    await source.client.query(`INSERT INTO public.items SELECT g, 'row ' || g FROM generate_series(1, 100) g`);
    dataDir = makeDataDir('ferry-secret-key-');
    keyFile = path.join(dataDir, 'secret.key');
    await start();
    originalKey = fs.readFileSync(keyFile, 'utf8');
    await createProfile('src', source, 'pw-src');
    await createProfile('dst', destination, 'pw-dst');
    // Same source database, another profile: lets one secret be readable while src's is not.
    await createProfile('spare', source, 'pw-spare');
    await runCliJson(['jobs', 'create', '--id', 'cont', '--type', 'continuous', '--source', 'src', '--destination', 'dst', '--include', 'public'], { server: (server as FerryServer).url });
    await runCliJson(['jobs', 'start', 'cont'], { server: (server as FerryServer).url });
    await waitForJob(client, 'cont', 'Running (Incremental load)', (j) => j.status === 'RUNNING' && j.substatus === 'Incremental load');
    await insertRow(1001);
    await rowArrives(destination, 1001);
  }, 180_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await Promise.allSettled(databases.map((d) => d.drop()));
    if (dataDir !== undefined) removeDataDir(dataDir);
  }, 120_000);

  it('(a) refuses to start without its key or with a damaged one, makes no key, and starts once the key is restored', async () => {
    await stop();
    fs.rmSync(keyFile);
    const missing = await serveRefused();
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error: FAILED_PRECONDITION: The secret key is missing');
    expect(missing.stderr).toContain(`${keyFile} does not exist`);
    expect(missing.stderr).toContain(`the metadata store in ${dataDir} holds 3 encrypted secrets`);
    expect(missing.stderr).toContain(`copy your backup of secret.key to ${keyFile}`);
    expect(missing.stderr).toContain('set FERRY_SECRET_KEY to the key');
    expect(missing.stderr).toContain(`\`ferry profiles set-password ID --data-dir ${dataDir} --password-stdin\` for "dst", "spare", "src"`);
    expect(fs.existsSync(keyFile), 'no key was made').toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'ferry.pid'))).toBe(false);

    fs.writeFileSync(keyFile, 'this is not a key\n', { mode: 0o600 });
    const damaged = await serveRefused();
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toContain(`The secret key in the key file ${keyFile} is damaged: it is not base64`);
    expect(damaged.stderr).toContain('Do not delete the key file');
    expect(damaged.stderr).toContain(`replace ${keyFile} with your backup of it`);
    expect(damaged.stderr).not.toMatch(/delete the key file to/i);
    expect(fs.readFileSync(keyFile, 'utf8')).toBe('this is not a key\n');

    fs.writeFileSync(keyFile, originalKey, { mode: 0o600 });
    await start();
    const job = await waitForJob(client, 'cont', 'Running (Incremental load)', (j) => j.status === 'RUNNING' && j.substatus === 'Incremental load');
    expect(job.error).toBeNull();
    await insertRow(1002);
    await rowArrives(destination, 1002);
  }, 240_000);

  it('(b) with the key lost, set-password on the data directory makes a new key; the job that needs the old secrets is Failed (recoverable) and resumes by itself once the key is back', async () => {
    await stop();
    fs.rmSync(keyFile);
    const set = await runCli(['profiles', 'set-password', 'spare', '--data-dir', dataDir, '--password', 'pw-spare-2'], { env: SERVER_ENV });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('No usable secret key existed: a new one was made');
    expect(set.stdout).toContain(`the password of connection profile "src": ferry profiles set-password src --data-dir ${dataDir} --password-stdin`);
    expect(set.stdout).toContain('the password of connection profile "dst"');
    const newKey = fs.readFileSync(keyFile, 'utf8');
    expect(newKey).not.toBe(originalKey);

    await start();
    const failed = await waitForJob(client, 'cont', 'Failed (secret unreadable)', (j) => j.status === 'FAILED');
    const error = failed.error as NonNullable<JobView['error']>;
    expect(error.code).toBe('SECRET_UNREADABLE');
    expect(error.recoverable).toBe(true);
    expect(error.message).toMatch(/The password of connection profile "(src|dst)" cannot be decrypted: it was encrypted with another secret key/);
    expect(error.message).toMatch(/ferry profiles set-password (src|dst) --password-stdin/);
    expect(failed.substatus).toBe('Failed in Incremental load');

    // The API answers the contract's 409 with the fix, never 500.
    const tested = await client().post<{ error: { code: string; message: string; details: Record<string, unknown> } }>('/v1/connectionProfiles/src:test');
    expect(tested.status).toBe(409);
    expect(tested.body.error.code).toBe('SECRET_UNREADABLE');
    expect(tested.body.error.message).toContain('The password of connection profile "src" cannot be decrypted');
    expect(tested.body.error.details).toMatchObject({ profileId: 'src', field: 'password', reason: 'wrong-key' });
    const verified = await client().post<{ error: { code: string } }>('/v1/migrationJobs/cont:verify');
    expect(verified.status).toBe(409);
    expect(verified.body.error.code).toBe('SECRET_UNREADABLE');
    const cliTest = await runCli(['profiles', 'test', 'src'], { server: (server as FerryServer).url });
    expect(cliTest.code).toBe(1);
    expect(cliTest.stderr).toContain('error: SECRET_UNREADABLE: The password of connection profile "src" cannot be decrypted');
    // The readable profile still works.
    expect((await client().postOk<{ ok: boolean }>('/v1/connectionProfiles/spare:test')).ok).toBe(true);
    // set-password on the data directory is refused while the server runs on it.
    const offline = await runCli(['profiles', 'set-password', 'src', '--data-dir', dataDir, '--password', 'x'], { env: SERVER_ENV });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain(`a Ferry server (pid ${(server as FerryServer).pid}) is running on ${dataDir}`);

    // The original key comes back: the job resumes by itself, where it was.
    await stop();
    fs.writeFileSync(keyFile, originalKey, { mode: 0o600 });
    await insertRow(1003);
    await start();
    const resumed = await waitThroughFailure('cont', 'Running again', (j) => j.status === 'RUNNING' && j.substatus === 'Incremental load');
    expect(resumed.error).toBeNull();
    await rowArrives(destination, 1003);
    const events = (await client().getOk<{ events: { kind: string; message: string }[] }>('/v1/migrationJobs/cont/events')).events;
    expect(events.some((e) => e.kind === 'error' && e.message.startsWith('SECRET_UNREADABLE'))).toBe(true);
    expect(events.some((e) => e.message.includes('The cause of SECRET_UNREADABLE is gone'))).toBe(true);
  }, 300_000);

  it('(c) a one-time job whose source secret cannot be read is Failed (recoverable), and set-password through the API makes it resume by itself', async () => {
    // spare's password was set with the key that is gone now.
    await createProfile('dst2', destination2, 'pw-dst2');
    await runCliJson(['jobs', 'create', '--id', 'once', '--type', 'one-time', '--source', 'spare', '--destination', 'dst2', '--include', 'public'], { server: (server as FerryServer).url });
    await runCliJson(['jobs', 'start', 'once'], { server: (server as FerryServer).url });
    const failed = await waitForJob(client, 'once', 'Failed (secret unreadable)', (j) => j.status === 'FAILED');
    expect(failed.error).toMatchObject({ code: 'SECRET_UNREADABLE', recoverable: true });
    expect(failed.error?.message).toContain('The password of connection profile "spare" cannot be decrypted');
    expect(failed.error?.message).toContain('ferry profiles set-password spare --password-stdin');
    const described = await runCli(['jobs', 'describe', 'once'], { server: (server as FerryServer).url });
    expect(described.stdout).toContain('SECRET_UNREADABLE');

    const set = await runCli(['profiles', 'set-password', 'spare', '--password', 'pw-spare-3'], { server: (server as FerryServer).url });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('Set the password of connection profile spare');
    const done = await waitThroughFailure('once', 'Completed', (j) => j.status === 'COMPLETED');
    expect(done.error).toBeNull();
    const { rows } = await destination2.client.query('SELECT count(*)::int AS n FROM public.items');
    expect(rows[0].n).toBe(103);
    const events = (await client().getOk<{ events: { kind: string; message: string }[] }>('/v1/migrationJobs/once/events')).events;
    expect(events.some((e) => e.message.includes('The cause of SECRET_UNREADABLE is gone'))).toBe(true);
  }, 240_000);

  it('(d) keys rotate re-encrypts every secret: every profile still works, the jobs go on, and the old key decrypts nothing', async () => {
    const running = await runCli(['keys', 'rotate', '--data-dir', dataDir], { env: SERVER_ENV });
    expect(running.code).toBe(1);
    expect(running.stderr).toContain('Cannot rotate the secret key: a Ferry server');
    await stop();
    const before = fs.readFileSync(keyFile, 'utf8');
    const rotated = await runCli(['keys', 'rotate', '--data-dir', dataDir], { env: SERVER_ENV });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/^Rotated: 4 secrets re-encrypted with a new key \(key id [0-9a-f]{16}\), now in /);
    const after = fs.readFileSync(keyFile, 'utf8');
    expect(after).not.toBe(before);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir).filter((f) => f.startsWith('secret.key'))).toEqual(['secret.key']);

    // The old key, given instead, decrypts none of the secrets: the server refuses to start.
    const old = await serveRefused({ FERRY_SECRET_KEY: before.trim() });
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('is not the key that encrypted the secrets');

    await insertRow(1004);
    await start();
    for (const id of ['src', 'dst', 'spare', 'dst2']) {
      const tested = await client().postOk<{ ok: boolean }>(`/v1/connectionProfiles/${id}:test`);
      expect(tested.ok, id).toBe(true);
    }
    await waitForJob(client, 'cont', 'Running (Incremental load)', (j) => j.status === 'RUNNING' && j.substatus === 'Incremental load');
    await rowArrives(destination, 1004);
    expect((await jobOf(client(), 'once')).status).toBe('COMPLETED');
  }, 240_000);
});
