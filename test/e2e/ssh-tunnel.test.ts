/**
 * SSH tunnels through a real OpenSSH server (a private sshd on a free loopback port, see
 * test/helpers/sshd-instance.ts), with a real `ferry serve`:
 * - a profile made by the CLI with --ssh-*: the key is write-only (privateKeySet), `profiles
 *   test` reports the server version through the tunnel and records the host key (first use);
 *   a different host key is refused with SSH_TUNNEL_FAILED;
 * - a one-time MySQL to PostgreSQL job with the MySQL source behind the tunnel;
 * - a continuous PostgreSQL to PostgreSQL job with both sides behind the tunnel (the
 *   replication stream too); sshd killed mid-stream (listener and sessions): the job goes
 *   Running with a retryable SSH_TUNNEL_FAILED error naming the tunnel, recovers by itself when
 *   sshd is back, and the destination ends equal to the source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { FAST_RETRY_ENV, api, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { inIncrementalLoad, jobOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startSshd, type SshdInstance } from '../helpers/sshd-instance.js';

let sshd: SshdInstance;
let server: FerryServer;
let client: ApiClient;
const databases: TestDatabase[] = [];
const mysqlSchemas: string[] = [];

async function mysqlRoot() {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: true, dateStrings: true });
  c.on('error', () => undefined);
  return c;
}

function sshFlags(): string[] {
  return ['--ssh-host', '127.0.0.1', '--ssh-port', String(sshd.port), '--ssh-user', sshd.user, '--ssh-private-key-file', sshd.privateKeyFile];
}

async function createTunnelProfile(id: string, args: string[]): Promise<void> {
  await runCliJson(['profiles', 'create', '--id', id, ...args, ...sshFlags()], { server: server.url });
}

beforeAll(async () => {
  sshd = await startSshd();
  server = await spawnFerryServer({ env: FAST_RETRY_ENV });
  client = api(server.url);
}, 60_000);

afterAll(async () => {
  await stopAllFerryServers();
  await sshd?.stop();
  for (const db of databases) await db.drop();
  if (mysqlSchemas.length > 0) {
    const c = await mysqlRoot();
    for (const schema of mysqlSchemas) await c.query(`DROP DATABASE IF EXISTS \`${schema}\``);
    await c.end();
  }
}, 60_000);

describe('profiles with an SSH tunnel', () => {
  it('stores the key write-only, tests through the tunnel, records the host key, and refuses a changed one', async () => {
    const db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_ssh');
    databases.push(db);
    await createTunnelProfile('ssh-pg', ['--engine', 'postgresql', '--host', PG_HOST, '--port', String(PG_SOURCE_PORT), '--database', db.params.database!, '--username', PG_USER]);
    const created = await client.getOk('/v1/connectionProfiles/ssh-pg');
    expect(created.connectivityMethod).toBe('ssh-tunnel');
    expect(created.sshTunnel).toEqual({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKeySet: true, hostKeyFingerprint: null });
    expect(JSON.stringify(created)).not.toMatch(/PRIVATE KEY|privateKey"/);

    const test = await runCliJson<{ ok: boolean; serverVersion: string; error: unknown }>(['profiles', 'test', 'ssh-pg'], { server: server.url });
    expect(test.error).toBeNull();
    expect(test.serverVersion).toMatch(/^PostgreSQL 15/);
    const after = await client.getOk('/v1/connectionProfiles/ssh-pg');
    expect(after.sshTunnel.hostKeyFingerprint).toBe(sshd.hostKeyFingerprint);

    const wrong = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
    const patched = await client.patch('/v1/connectionProfiles/ssh-pg', { sshTunnel: { hostKeyFingerprint: wrong } });
    expect(patched.status).toBe(200);
    const refused = await client.postOk('/v1/connectionProfiles/ssh-pg:test');
    expect(refused.ok).toBe(false);
    expect(refused.error.code).toBe('SSH_TUNNEL_FAILED');
    expect(refused.error.message).toContain(`expected ${wrong}`);
    expect(refused.error.message).toContain(`offered ${sshd.hostKeyFingerprint}`);

    const restored = await client.patch('/v1/connectionProfiles/ssh-pg', { sshTunnel: { hostKeyFingerprint: sshd.hostKeyFingerprint } });
    expect(restored.status).toBe(200);
    expect((await client.postOk('/v1/connectionProfiles/ssh-pg:test')).ok).toBe(true);

    const badKey = await client.post('/v1/connectionProfiles', {
      id: 'ssh-bad', displayName: 'bad', engine: 'postgresql', host: PG_HOST, database: 'postgres', username: PG_USER,
      connectivityMethod: 'ssh-tunnel', sshTunnel: { host: '127.0.0.1', username: 'root', privateKey: 'not a key' },
    });
    expect(badKey.status).toBe(400);
    expect(badKey.body.error.message).toMatch(/sshTunnel\.privateKey: cannot be read/);
  }, 60_000);
});

describe('jobs through an SSH tunnel', () => {
  it('a one-time MySQL to PostgreSQL job with the MySQL source behind the tunnel', async () => {
    const schema = `ferry_ssh_${randomBytes(4).toString('hex')}`;
    mysqlSchemas.push(schema);
    const c = await mysqlRoot();
    await c.query(`CREATE DATABASE ${schema}; USE ${schema}; CREATE TABLE t (id int PRIMARY KEY, v varchar(40)); INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000;`);
    await c.end();
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_ssh');
    databases.push(destination);
    await createTunnelProfile('ssh-my', ['--engine', 'mysql', '--host', '127.0.0.1', '--port', '3306', '--username', 'root']);
    await runCliJson(['profiles', 'create', '--id', 'ssh-my-dst', '--engine', 'postgresql', '--host', PG_HOST, '--port', String(PG_DEST_PORT), '--database', destination.params.database!, '--username', PG_USER], { server: server.url });
    await runCliJson(['jobs', 'create', '--id', 'ssh-my-once', '--type', 'one-time', '--source', 'ssh-my', '--destination', 'ssh-my-dst', '--include', schema], { server: server.url });
    await runCli(['jobs', 'start', 'ssh-my-once'], { server: server.url });
    await waitForJob(() => client, 'ssh-my-once', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    const { rows } = await destination.client.query(`SELECT count(*)::int AS n, max(v) AS m FROM "${schema}".t`);
    expect(rows[0]).toEqual({ n: 3000, m: 'v999' });
  }, 180_000);

  it('a continuous PostgreSQL job through the tunnel survives sshd being killed mid-stream', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_ssh');
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_ssh');
    databases.push(source, destination);
    await source.client.query('CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, g::text FROM generate_series(1, 2000) g');
    await createTunnelProfile('ssh-cdc-src', ['--engine', 'postgresql', '--host', PG_HOST, '--port', String(PG_SOURCE_PORT), '--database', source.params.database!, '--username', PG_USER]);
    await createTunnelProfile('ssh-cdc-dst', ['--engine', 'postgresql', '--host', PG_HOST, '--port', String(PG_DEST_PORT), '--database', destination.params.database!, '--username', PG_USER]);
    await runCliJson(['jobs', 'create', '--id', 'ssh-cdc', '--type', 'continuous', '--source', 'ssh-cdc-src', '--destination', 'ssh-cdc-dst'], { server: server.url });
    await runCli(['jobs', 'start', 'ssh-cdc'], { server: server.url });
    await waitForJob(() => client, 'ssh-cdc', 'Incremental load', inIncrementalLoad, 120_000);

    // The walsender serving the job is reached through the tunnel: its client is sshd on 127.0.0.1.
    await source.client.query("INSERT INTO items SELECT g, 'before drop' FROM generate_series(2001, 2100) g");
    await waitFor('changes before the drop', async () => {
      const { rows } = await destination.client.query('SELECT count(*)::int AS n FROM public.items');
      return rows[0].n === 2100 ? true : undefined;
    }, { timeoutMs: 60_000 });

    await sshd.drop();
    await source.client.query("INSERT INTO items SELECT g, 'during drop' FROM generate_series(2101, 2300) g; UPDATE items SET v = 'updated' WHERE id <= 50; DELETE FROM items WHERE id BETWEEN 51 AND 60");
    const failing = await waitFor('the job to report the broken tunnel', async () => {
      const job = await jobOf(client, 'ssh-cdc');
      return job.error?.code === 'SSH_TUNNEL_FAILED' ? job : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    expect(failing.status).toBe('RUNNING_WITH_ERRORS');
    expect(failing.error?.retryable).toBe(true);
    expect(failing.error?.message).toContain(`SSH tunnel ${sshd.user}@127.0.0.1:${sshd.port}`);
    await sleep(1_000);
    expect((await jobOf(client, 'ssh-cdc')).status).toBe('RUNNING_WITH_ERRORS');

    await sshd.start();
    await waitFor('the job to recover and apply the changes made while the tunnel was down', async () => {
      const job = await jobOf(client, 'ssh-cdc');
      const { rows } = await destination.client.query("SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'updated')::int AS u FROM public.items");
      return job.error === null && inIncrementalLoad(job) && rows[0].n === 2290 && rows[0].u === 50 ? true : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500 });

    await runCli(['jobs', 'promote', 'ssh-cdc'], { server: server.url });
    await waitForJob(() => client, 'ssh-cdc', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    const digest = "SELECT count(*)::int AS n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) AS h FROM public.items";
    const [{ rows: got }, { rows: want }] = await Promise.all([destination.client.query(digest), source.client.query(digest)]);
    expect(got[0]).toEqual(want[0]);
  }, 300_000);
});
