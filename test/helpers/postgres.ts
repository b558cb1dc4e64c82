/**
 * Real PostgreSQL for tests: a fresh database per test file on the source-side cluster
 * (FERRY_TEST_PG_SOURCE_PORT, default 5432) and the destination-side cluster
 * (FERRY_TEST_PG_DEST_PORT, default 5433). `npm run test:env` prepares both.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

export const PG_HOST = process.env.FERRY_TEST_PG_HOST ?? '127.0.0.1';
export const PG_SOURCE_PORT = Number(process.env.FERRY_TEST_PG_SOURCE_PORT ?? 5432);
export const PG_DEST_PORT = Number(process.env.FERRY_TEST_PG_DEST_PORT ?? 5433);
export const PG_USER = process.env.FERRY_TEST_PG_USER ?? 'postgres';

export interface TestDatabase {
  params: ConnectionParams;
  /** A client connected to the database, for setup and assertions. */
  client: pg.Client;
  drop(): Promise<void>;
}

export function connectionParams(port: number, database: string): ConnectionParams {
  return { engine: 'postgresql', host: PG_HOST, port, database, username: PG_USER, password: null, tls: { mode: 'none' } };
}

async function admin(port: number): Promise<pg.Client> {
  const client = new pg.Client({ host: PG_HOST, port, user: PG_USER, database: 'postgres' });
  await client.connect();
  return client;
}

/** Creates an empty database with a unique name on the cluster at `port`. */
export async function createTestDatabase(port: number, prefix = 'ferry_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const adminClient = await admin(port);
  try {
    await adminClient.query(`CREATE DATABASE ${name}`);
  } finally {
    await adminClient.end();
  }
  const client = new pg.Client({ host: PG_HOST, port, user: PG_USER, database: name });
  await client.connect();
  return {
    params: connectionParams(port, name),
    client,
    async drop() {
      await client.end().catch(() => undefined);
      const a = await admin(port);
      try {
        // Replication slots pin a database (and their WAL): drop the ones a test left behind,
        // ending the stream of one still read (a server the test has not stopped yet). Bounded.
        for (let attempt = 0; attempt < 50; attempt++) {
          const slots = (await a.query<{ slot_name: string; active_pid: number | null }>(`SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1`, [name])).rows;
          if (slots.length === 0) break;
          for (const slot of slots) {
            if (slot.active_pid !== null) await a.query('SELECT pg_terminate_backend($1)', [slot.active_pid]);
            // Taken again in between: the next attempt ends that stream.
            else await a.query('SELECT pg_drop_replication_slot($1)', [slot.slot_name]).catch(() => undefined);
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // WITH (FORCE) arrives in PostgreSQL 13; older servers (test/helpers/embedded-pg.ts) end the sessions first.
        const version = Number(((await a.query('SHOW server_version_num')).rows[0] as { server_version_num: string }).server_version_num);
        if (version >= 130_000) {
          await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } else {
          await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
          await a.query(`DROP DATABASE IF EXISTS ${name}`);
        }
      } finally {
        await a.end();
      }
    },
  };
}

/** Source and destination databases on the two clusters. */
export async function createDatabasePair(prefix = 'ferry_test'): Promise<{ source: TestDatabase; destination: TestDatabase; drop(): Promise<void> }> {
  const source = await createTestDatabase(PG_SOURCE_PORT, prefix);
  const destination = await createTestDatabase(PG_DEST_PORT, prefix);
  return {
    source,
    destination,
    async drop() {
      await Promise.all([source.drop(), destination.drop()]);
    },
  };
}
