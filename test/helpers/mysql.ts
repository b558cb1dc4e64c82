/**
 * Real MySQL/MariaDB for tests: a fresh database per test file on the server at
 * FERRY_TEST_MYSQL_HOST:FERRY_TEST_MYSQL_PORT (default 127.0.0.1:3306) as
 * FERRY_TEST_MYSQL_USER (default root, no password). `npm run test:env` prepares it with the
 * row binlog and local_infile on.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

export const MYSQL_HOST = process.env.FERRY_TEST_MYSQL_HOST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.FERRY_TEST_MYSQL_PORT ?? 3306);
export const MYSQL_USER = process.env.FERRY_TEST_MYSQL_USER ?? 'root';
export const MYSQL_PASSWORD = process.env.FERRY_TEST_MYSQL_PASSWORD ?? null;

export interface MysqlTestDatabase {
  /** The database's name (a MySQL database is Ferry's "schema"). */
  name: string;
  /** Params with `database` set to this database. */
  params: ConnectionParams;
  /** A connection to the database, for setup and assertions (UTC session, exact values). */
  connection: Connection;
  drop(): Promise<void>;
}

/** Params for the test server; `database` null means "no default database". */
export function mysqlConnectionParams(database: string | null, overrides: Partial<ConnectionParams> = {}): ConnectionParams {
  return {
    engine: 'mysql',
    host: MYSQL_HOST,
    port: MYSQL_PORT,
    database,
    username: MYSQL_USER,
    password: MYSQL_PASSWORD,
    tls: { mode: 'none' },
    ...overrides,
  };
}

/** A connection as the admin user, with the options Ferry itself uses for exact values. */
export async function connectMysqlAdmin(database?: string): Promise<Connection> {
  const connection = await mysql.createConnection({
    host: MYSQL_HOST,
    port: MYSQL_PORT,
    user: MYSQL_USER,
    password: MYSQL_PASSWORD ?? undefined,
    database,
    charset: 'utf8mb4_general_ci',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    multipleStatements: true,
  });
  connection.on('error', () => undefined);
  await connection.query("SET time_zone = '+00:00'");
  return connection;
}

/** Creates an empty utf8mb4 database with a unique name: `<prefix>_<random>`. */
export async function createMysqlTestDatabase(prefix = 'ferry_t'): Promise<MysqlTestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = await connectMysqlAdmin();
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await admin.end();
  }
  const connection = await connectMysqlAdmin(name);
  return {
    name,
    params: mysqlConnectionParams(name),
    connection,
    async drop() {
      await connection.end().catch(() => undefined);
      const a = await connectMysqlAdmin();
      try {
        await a.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await a.end();
      }
    },
  };
}
