/**
 * TLS to real servers with TLS on: the PostgreSQL cluster "ferrytls" (5436, TCP only over TLS,
 * the role ferry_tls_cert needs a client certificate) and a private MariaDB started here with
 * --ssl-ca/--ssl-cert/--ssl-key (a user REQUIRE SSL and a user REQUIRE X509). Certificates
 * come from scripts/setup-test-env.sh (test/helpers/tls-certificates.ts).
 *
 * Every TLS mode of both engines, with each failure classified (TLS_ERROR with its
 * `tlsProblem`, or AUTHENTICATION_FAILED naming REQUIRE X509): a wrong CA, a host name the
 * certificate does not list (127.0.0.2), a missing client certificate, no TLS where the server
 * requires it, TLS where the server has none. Then jobs of a real `ferry serve` over TLS: a
 * one-time PostgreSQL to PostgreSQL job with a client certificate, a one-time MySQL to
 * PostgreSQL job, and a continuous PostgreSQL job whose replication connection is seen using
 * TLS in pg_stat_ssl.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { ConnectionParams, TlsSettings } from '../../src/core/connection-profile.js';
import { FerryError } from '../../src/core/errors.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { connectPostgres, endQuietly } from '../../src/engines/postgres/postgres-connection.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { connectMysql, endQuietly as endMysqlQuietly } from '../../src/engines/mysql/mysql-connection.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { PG_CERT_USER, PG_TLS_PORT, readTestCertificates, type TestCertificates } from '../helpers/tls-certificates.js';
import { FAST_RETRY_ENV, api, spawnFerryServer, stopAllFerryServers, waitFor, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { inIncrementalLoad, waitForJob } from '../helpers/e2e-jobs.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let certs: TestCertificates;
let mariadb: MariadbInstance;
let server: FerryServer;
let client: ApiClient;
const pgDatabases: string[] = [];
const otherDatabases: TestDatabase[] = [];

/** Setup over the Unix socket (trust): the cluster takes TCP only over TLS. */
async function pgAdmin(database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: '/var/run/postgresql', port: PG_TLS_PORT, user: 'postgres', database });
  await c.connect();
  return c;
}

async function createTlsDatabase(): Promise<string> {
  const name = `ferry_tls_${randomBytes(5).toString('hex')}`;
  const admin = await pgAdmin();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  pgDatabases.push(name);
  return name;
}

function pgParams(tls: TlsSettings, options: { host?: string; user?: string; database?: string } = {}): ConnectionParams {
  return {
    engine: 'postgresql',
    host: options.host ?? '127.0.0.1',
    port: PG_TLS_PORT,
    database: options.database ?? 'postgres',
    username: options.user ?? 'postgres',
    password: null,
    tls,
  };
}

function mysqlParams(tls: TlsSettings, options: { host?: string; user?: string } = {}): ConnectionParams {
  return { engine: 'mysql', host: options.host ?? '127.0.0.1', port: mariadb.port, database: null, username: options.user ?? 'ferry_ssl', password: null, tls };
}

async function expectFailure(report: Promise<{ ok: boolean; error: FerryError | null }>): Promise<FerryError> {
  const result = await report;
  expect(result.ok, 'the connection should have been refused').toBe(false);
  expect(result.error).toBeInstanceOf(FerryError);
  return result.error as FerryError;
}

beforeAll(async () => {
  certs = readTestCertificates();
  mariadb = await startMariadbInstance({
    serverId: 31,
    extraArgs: [
      // 127.0.0.2 is not in the server certificate: the wrong-host-name case.
      '--bind-address=0.0.0.0',
      `--ssl-ca=${certs.dir}/ca.crt`,
      `--ssl-cert=${certs.dir}/server.crt`,
      `--ssl-key=${certs.dir}/server.key`,
    ],
  });
  const admin = await mariadb.connect();
  try {
    await admin.query(
      "CREATE USER 'ferry_ssl'@'%' REQUIRE SSL; GRANT ALL PRIVILEGES ON *.* TO 'ferry_ssl'@'%';" +
        "CREATE USER 'ferry_x509'@'%' REQUIRE X509; GRANT ALL PRIVILEGES ON *.* TO 'ferry_x509'@'%';",
    );
  } finally {
    await admin.end();
  }
  server = await spawnFerryServer({ env: FAST_RETRY_ENV });
  client = api(server.url);
}, 120_000);

afterAll(async () => {
  await stopAllFerryServers();
  await mariadb?.stop();
  const admin = await pgAdmin();
  try {
    for (const name of pgDatabases) {
      await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [name]);
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
  for (const db of otherDatabases) await db.drop();
}, 120_000);

describe('PostgreSQL TLS modes against a TLS-only server', () => {
  it('none: refused, saying the server accepts this user only over TLS', async () => {
    const error = await expectFailure(postgresEngine.testConnection(pgParams({ mode: 'none' })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('tls-required-by-server');
    expect(error.message).toMatch(/set the profile's TLS mode to required, server-only or server-client/);
  });

  it('required: encrypts without checking the certificate', async () => {
    const report = await postgresEngine.testConnection(pgParams({ mode: 'required' }));
    expect(report.error).toBeNull();
    expect(report.serverVersion).toMatch(/^PostgreSQL 15/);
    const c = await connectPostgres(pgParams({ mode: 'required' }));
    try {
      const { rows } = await c.query('SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0].ssl).toBe('true');
    } finally {
      await endQuietly(c);
    }
  });

  it('server-only: verifies the CA and the host name (by IP address and by name)', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const report = await postgresEngine.testConnection(pgParams({ mode: 'server-only', caCertificate: certs.ca }, { host }));
      expect(report.error, host).toBeNull();
      expect(report.ok).toBe(true);
    }
  });

  it('server-only with a wrong CA: TLS_ERROR untrusted-certificate', async () => {
    const error = await expectFailure(postgresEngine.testConnection(pgParams({ mode: 'server-only', caCertificate: certs.otherCa })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('untrusted-certificate');
    expect(error.message).toMatch(/not signed by the CA in the connection profile/);
    expect(error.retryable).toBe(false);
  });

  it('server-only by a host name the certificate does not list: TLS_ERROR host-name-mismatch', async () => {
    const error = await expectFailure(postgresEngine.testConnection(pgParams({ mode: 'server-only', caCertificate: certs.ca }, { host: '127.0.0.2' })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('host-name-mismatch');
    expect(error.message).toMatch(/not valid for the host name "127\.0\.0\.2"/);
    // required does not check names: the same address works.
    expect((await postgresEngine.testConnection(pgParams({ mode: 'required' }, { host: '127.0.0.2' }))).ok).toBe(true);
  });

  it('a role that needs a client certificate: refused without one, accepted with server-client', async () => {
    const error = await expectFailure(postgresEngine.testConnection(pgParams({ mode: 'server-only', caCertificate: certs.ca }, { user: PG_CERT_USER })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('client-certificate-required');
    expect(error.message).toMatch(/set the profile's TLS mode to server-client/);

    const tls: TlsSettings = { mode: 'server-client', caCertificate: certs.ca, clientCertificate: certs.clientCert, clientKey: certs.clientKey };
    const report = await postgresEngine.testConnection(pgParams(tls, { user: PG_CERT_USER }));
    expect(report.error).toBeNull();
    const c = await connectPostgres(pgParams(tls, { user: PG_CERT_USER }));
    try {
      const { rows } = await c.query('SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0].client_dn).toBe(`/CN=${PG_CERT_USER}`);
    } finally {
      await endQuietly(c);
    }
  });

  it('server-client with a wrong CA for the server: TLS_ERROR untrusted-certificate', async () => {
    const tls: TlsSettings = { mode: 'server-client', caCertificate: certs.otherCa, clientCertificate: certs.clientCert, clientKey: certs.clientKey };
    const error = await expectFailure(postgresEngine.testConnection(pgParams(tls, { user: PG_CERT_USER })));
    expect(error.details.tlsProblem).toBe('untrusted-certificate');
  });
});

describe('MariaDB TLS modes', () => {
  it('none for a user REQUIRE SSL: AUTHENTICATION_FAILED that names REQUIRE SSL and the modes to use', async () => {
    const error = await expectFailure(mysqlEngine.testConnection(mysqlParams({ mode: 'none' })));
    expect(error.code).toBe('AUTHENTICATION_FAILED');
    expect(error.message).toMatch(/REQUIRE SSL/);
    expect(error.message).toMatch(/TLS mode to required or server-only/);
  });

  it('required: encrypts without checking the certificate', async () => {
    const report = await mysqlEngine.testConnection(mysqlParams({ mode: 'required' }));
    expect(report.error).toBeNull();
    expect(report.serverVersion).toMatch(/MariaDB/);
    const c = await connectMysql(mysqlParams({ mode: 'required' }));
    try {
      const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
      expect((rows as Array<{ Value: string }>)[0].Value).not.toBe('');
    } finally {
      await endMysqlQuietly(c);
    }
  });

  it('server-only: verifies the CA and the host name', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const report = await mysqlEngine.testConnection(mysqlParams({ mode: 'server-only', caCertificate: certs.ca }, { host }));
      expect(report.error, host).toBeNull();
    }
  });

  it('server-only with a wrong CA: TLS_ERROR untrusted-certificate', async () => {
    const error = await expectFailure(mysqlEngine.testConnection(mysqlParams({ mode: 'server-only', caCertificate: certs.otherCa })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('untrusted-certificate');
  });

  it('server-only by a host name the certificate does not list: TLS_ERROR host-name-mismatch', async () => {
    const error = await expectFailure(mysqlEngine.testConnection(mysqlParams({ mode: 'server-only', caCertificate: certs.ca }, { host: '127.0.0.2' })));
    expect(error.code).toBe('TLS_ERROR');
    expect(error.details.tlsProblem).toBe('host-name-mismatch');
    expect(error.message).toMatch(/"127\.0\.0\.2"/);
    expect((await mysqlEngine.testConnection(mysqlParams({ mode: 'required' }, { host: '127.0.0.2' }))).error).toBeNull();
  });

  it('a user REQUIRE X509: refused without a client certificate (advice names server-client), accepted with one', async () => {
    const error = await expectFailure(mysqlEngine.testConnection(mysqlParams({ mode: 'server-only', caCertificate: certs.ca }, { user: 'ferry_x509' })));
    expect(error.code).toBe('AUTHENTICATION_FAILED');
    expect(error.message).toMatch(/REQUIRE X509/);
    expect(error.message).toMatch(/TLS mode to server-client/);
    const tls: TlsSettings = { mode: 'server-client', caCertificate: certs.ca, clientCertificate: certs.clientCert, clientKey: certs.clientKey };
    const report = await mysqlEngine.testConnection(mysqlParams(tls, { user: 'ferry_x509' }));
    expect(report.error).toBeNull();
  });

  it('required against a server without TLS: TLS_ERROR server-without-tls', async () => {
    const plain = await startMariadbInstance({ serverId: 32 });
    try {
      const error = await expectFailure(mysqlEngine.testConnection({ ...plain.params(), tls: { mode: 'required' } }));
      expect(error.code).toBe('TLS_ERROR');
      expect(error.details.tlsProblem).toBe('server-without-tls');
      expect(error.message).toMatch(/set the profile's TLS mode to none/);
    } finally {
      await plain.stop();
    }
  }, 90_000);
});

describe('jobs over TLS', () => {
  async function createProfile(id: string, body: Record<string, unknown>): Promise<void> {
    const r = await client.post('/v1/connectionProfiles', { id, displayName: id, ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }

  it('a one-time PostgreSQL to PostgreSQL job with a client certificate on the source and server-only on the destination', async () => {
    const sourceDb = await createTlsDatabase();
    const destDb = await createTlsDatabase();
    const seed = await pgAdmin(sourceDb);
    try {
      await seed.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
    } finally {
      await seed.end();
    }
    await createProfile('tls-pg-src', {
      engine: 'postgresql', host: 'localhost', port: PG_TLS_PORT, database: sourceDb, username: PG_CERT_USER,
      tls: { mode: 'server-client', caCertificate: certs.ca, clientCertificate: certs.clientCert, clientKey: certs.clientKey },
    });
    await createProfile('tls-pg-dst', { engine: 'postgresql', host: '127.0.0.1', port: PG_TLS_PORT, database: destDb, username: 'postgres', tls: { mode: 'server-only', caCertificate: certs.ca } });
    const profile = await client.getOk('/v1/connectionProfiles/tls-pg-src');
    expect(profile.tls).toEqual({ mode: 'server-client', caCertificateSet: true, clientCertificateSet: true });
    expect(JSON.stringify(profile)).not.toContain('PRIVATE KEY');

    await client.postOk('/v1/migrationJobs', { id: 'tls-pg-once', displayName: 'TLS once', type: 'one-time', sourceProfileId: 'tls-pg-src', destinationProfileId: 'tls-pg-dst' });
    await client.postOk('/v1/migrationJobs/tls-pg-once:start');
    await waitForJob(() => client, 'tls-pg-once', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    const check = await pgAdmin(destDb);
    try {
      const { rows } = await check.query("SELECT count(*)::int AS n, md5(string_agg(name, ',' ORDER BY id)) AS h FROM public.items");
      const src = await pgAdmin(sourceDb);
      const { rows: expected } = await src.query("SELECT count(*)::int AS n, md5(string_agg(name, ',' ORDER BY id)) AS h FROM public.items");
      await src.end();
      expect(rows[0]).toEqual(expected[0]);
      expect(rows[0].n).toBe(5000);
    } finally {
      await check.end();
    }
  }, 180_000);

  it('a one-time MySQL to PostgreSQL job from a user REQUIRE X509', async () => {
    const schema = `tls_src_${randomBytes(4).toString('hex')}`;
    const admin = await mariadb.connect();
    try {
      await admin.query(`CREATE DATABASE ${schema}; CREATE TABLE ${schema}.notes (id int PRIMARY KEY, body varchar(100) NOT NULL, at datetime(6));`);
      await admin.query(`USE ${schema}`);
      await admin.query(`INSERT INTO ${schema}.notes SELECT seq, CONCAT('note ', seq), '2024-02-29 12:34:56.123456' FROM seq_1_to_2000`);
    } finally {
      await admin.end();
    }
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_tls');
    otherDatabases.push(destination);
    await createProfile('tls-my-src', {
      engine: 'mysql', host: 'localhost', port: mariadb.port, username: 'ferry_x509',
      tls: { mode: 'server-client', caCertificate: certs.ca, clientCertificate: certs.clientCert, clientKey: certs.clientKey },
    });
    await createProfile('tls-my-dst', { engine: 'postgresql', host: '127.0.0.1', port: PG_DEST_PORT, database: destination.params.database, username: 'postgres' });
    await client.postOk('/v1/migrationJobs', {
      id: 'tls-my-once', displayName: 'TLS MySQL once', type: 'one-time', sourceProfileId: 'tls-my-src', destinationProfileId: 'tls-my-dst', selection: { include: [schema], exclude: [] },
    });
    await client.postOk('/v1/migrationJobs/tls-my-once:start');
    await waitForJob(() => client, 'tls-my-once', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    const { rows } = await destination.client.query(`SELECT count(*)::int AS n, min(at)::text AS at FROM "${schema}".notes`);
    expect(rows[0]).toEqual({ n: 2000, at: '2024-02-29 12:34:56.123456' });
  }, 180_000);

  it('a continuous PostgreSQL job: the change stream runs over TLS and carries changes', async () => {
    const sourceDb = await createTlsDatabase();
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_tls');
    otherDatabases.push(destination);
    const seed = await pgAdmin(sourceDb);
    try {
      await seed.query('CREATE TABLE events (id int PRIMARY KEY, payload text); INSERT INTO events SELECT g, g::text FROM generate_series(1, 1000) g');
      await createProfile('tls-cdc-src', { engine: 'postgresql', host: 'localhost', port: PG_TLS_PORT, database: sourceDb, username: 'postgres', tls: { mode: 'server-only', caCertificate: certs.ca } });
      await createProfile('tls-cdc-dst', { engine: 'postgresql', host: '127.0.0.1', port: PG_DEST_PORT, database: destination.params.database, username: 'postgres' });
      await client.postOk('/v1/migrationJobs', { id: 'tls-cdc', displayName: 'TLS CDC', type: 'continuous', sourceProfileId: 'tls-cdc-src', destinationProfileId: 'tls-cdc-dst' });
      await client.postOk('/v1/migrationJobs/tls-cdc:start');
      await waitForJob(() => client, 'tls-cdc', 'Incremental load', inIncrementalLoad, 120_000);

      // The walsender of the job's slot serves a TLS connection (the cluster has no other way in over TCP, but check).
      const senders = await waitFor('the walsender of the job\'s slot', async () => {
        const { rows } = await seed.query(
          `SELECT s.ssl::text AS ssl FROM pg_replication_slots sl JOIN pg_stat_ssl s ON s.pid = sl.active_pid WHERE sl.database = $1 AND sl.active`,
          [sourceDb],
        );
        return rows.length > 0 ? rows : undefined;
      }, { timeoutMs: 30_000 });
      expect(senders).toEqual([{ ssl: 'true' }]);

      await seed.query("INSERT INTO events SELECT g, 'new ' || g FROM generate_series(1001, 1500) g; UPDATE events SET payload = 'changed' WHERE id <= 10; DELETE FROM events WHERE id BETWEEN 11 AND 20");
      await waitFor('the changes on the destination', async () => {
        const { rows } = await destination.client.query("SELECT count(*)::int AS n, count(*) FILTER (WHERE payload = 'changed')::int AS c FROM public.events");
        return rows[0].n === 1490 && rows[0].c === 10 ? true : undefined;
      }, { timeoutMs: 60_000 });
      await client.postOk('/v1/migrationJobs/tls-cdc:promote');
      await waitForJob(() => client, 'tls-cdc', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
      const { rows } = await destination.client.query("SELECT md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS h FROM public.events");
      const { rows: expected } = await seed.query("SELECT md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS h FROM public.events");
      expect(rows[0].h).toBe(expected[0].h);
    } finally {
      await seed.end();
    }
  }, 240_000);
});
