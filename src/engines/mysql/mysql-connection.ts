/**
 * Connections to MySQL and MariaDB: the `mysql2` configuration built from a profile's
 * ConnectionParams, the session settings every Ferry connection uses, and SQL quoting.
 *
 * Values are never parsed into JavaScript types that lose information: dates and times come
 * back as the server's text (`dateStrings`: microseconds and zero dates survive), BIGINT
 * and DECIMAL as strings (`supportBigNumbers` + `bigNumberStrings`: 18446744073709551615
 * survives), JSON as its text (`jsonStrings`). The table readers go further and read every
 * value as the raw bytes the server sent (`typeCast: false` per query).
 *
 * Every session runs in UTC (`SET time_zone = '+00:00'`, and `timezone: 'Z'` for the driver)
 * with utf8mb4, so TIMESTAMP values read on one server load unchanged on another whatever
 * either server's own time zone is.
 */
import { connect as connectTcp, isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { createConnection } from 'mysql2';
import type { Connection as CoreConnection, ConnectionOptions } from 'mysql2';
import type { Connection } from 'mysql2/promise';
import type { ConnectionParams } from '../../core/connection-profile.js';
import type { QualifiedName } from '../../core/schema.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';

export type { Connection as MysqlConnection } from 'mysql2/promise';
export type { Connection as MysqlCoreConnection } from 'mysql2';

export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Session settings of every Ferry connection. UTC makes TIMESTAMP text exact across servers.
 * The wait timeouts a server may set low would drop the idle snapshot coordinator and
 * slow consumers of a long copy; net_write_timeout bounds how long a paused result stream
 * (back-pressure) may stall before the server gives up on it.
 */
export const SESSION_SETUP_SQL = [
  "SET time_zone = '+00:00'",
  'SET NAMES utf8mb4',
  'SET SESSION wait_timeout = 86400',
  'SET SESSION net_write_timeout = 3600',
  'SET SESSION net_read_timeout = 3600',
];

/**
 * The `mysql2` connection options for a profile: TLS mode, timeouts, exact value handling.
 * `extra` is merged last (e.g. the table writer's `flags` and `infileStreamFactory`).
 * server-only and server-client verify the host name too (`verifyIdentity`). Through a
 * route (an SSH tunnel's local port) the socket goes to the route, while `host` stays the
 * database's, which mysql2 checks the certificate against.
 */
export function buildConnectionOptions(params: ConnectionParams, extra: ConnectionOptions = {}): ConnectionOptions {
  const options: ConnectionOptions = {
    host: params.host,
    port: params.port,
    user: params.username,
    password: params.password ?? undefined,
    database: params.database ?? undefined,
    charset: 'utf8mb4_general_ci',
    timezone: 'Z',
    connectTimeout: CONNECT_TIMEOUT_MS,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    decimalNumbers: false,
    enableKeepAlive: true,
    multipleStatements: false,
  };
  const tls = params.tls;
  switch (tls.mode) {
    case 'none':
      break;
    case 'required':
      options.ssl = { rejectUnauthorized: false };
      break;
    case 'server-only':
      options.ssl = { ca: tls.caCertificate, rejectUnauthorized: true, verifyIdentity: true };
      break;
    case 'server-client':
      options.ssl = { ca: tls.caCertificate, cert: tls.clientCertificate, key: tls.clientKey, rejectUnauthorized: true, verifyIdentity: true };
      break;
  }
  const route = params.route;
  if (route !== undefined) {
    options.stream = () => {
      const socket = connectTcp(route.port, route.host);
      // Node checks a certificate against the socket's host when no SNI name is set (an IP
      // address): that must be the database's address, not the tunnel's 127.0.0.1.
      (socket as unknown as { _host: string })._host = params.host;
      return socket;
    };
  }
  return { ...options, ...extra };
}

/** The context the error classifier needs to name the endpoint in its messages. */
export function errorContext(params: ConnectionParams, extra: MysqlErrorContext = {}): MysqlErrorContext {
  return {
    host: params.host,
    port: params.port,
    database: params.database,
    username: params.username,
    tlsMode: params.tls.mode,
    ...(params.route === undefined ? {} : { via: params.route.via }),
    ...extra,
  };
}

export interface ConnectMysqlOptions {
  /** What the connection is for: names the privilege in error messages. */
  context?: MysqlErrorContext;
  /** Extra `mysql2` options, merged over Ferry's (flags, infileStreamFactory, ...). */
  connection?: ConnectionOptions;
}

/**
 * Opens a connection (promise API) with Ferry's session settings. Rejects with a classified
 * FerryError. The connection never emits an unhandled 'error': a connection lost while idle
 * surfaces on the next query instead. `coreConnection()` gives the callback API underneath
 * (for streaming queries).
 */
export async function connectMysql(params: ConnectionParams, options: ConnectMysqlOptions = {}): Promise<Connection> {
  const context = errorContext(params, options.context);
  const core = createConnection(buildConnectionOptions(params, options.connection));
  // Without a listener, a connection dropped while idle would crash the process.
  core.on('error', () => undefined);
  const connection = core.promise();
  connection.on('error', () => undefined);
  const started = Date.now();
  try {
    await connection.connect();
  } catch (error) {
    destroyQuietly(connection);
    throw classifyMysqlError(error, { ...context, connecting: true, timedOut: Date.now() - started >= CONNECT_TIMEOUT_MS });
  }
  try {
    verifyServerAddress(core, params);
    for (const statement of SESSION_SETUP_SQL) await connection.query(statement);
  } catch (error) {
    destroyQuietly(connection);
    throw classifyMysqlError(error, context);
  }
  return connection;
}

/**
 * mysql2 checks the certificate's names only when the host is a name: for an IP address Node
 * checks "localhost" instead. So with server-only and server-client, a connection to an IP
 * address is checked here, against that address, once connected (throws
 * ERR_TLS_CERT_ALTNAME_INVALID). The change reader calls it for its binlog connections.
 */
export function verifyServerAddress(core: CoreConnection, params: ConnectionParams): void {
  if ((params.tls.mode !== 'server-only' && params.tls.mode !== 'server-client') || isIP(params.host) === 0) return;
  const socket = (core as unknown as { stream?: { getPeerCertificate?: () => PeerCertificate } }).stream;
  if (typeof socket?.getPeerCertificate !== 'function') {
    throw new Error(`TLS was not negotiated with ${params.host}:${params.port} although the profile's TLS mode is ${params.tls.mode}`);
  }
  const mismatch = checkServerIdentity(params.host, socket.getPeerCertificate());
  if (mismatch !== undefined) throw mismatch;
}

/** The callback-API connection under a promise connection (streaming queries need it). */
export function coreConnection(connection: Connection): CoreConnection {
  return (connection as unknown as { connection: CoreConnection }).connection;
}

/** Ends a connection, ignoring errors: used on paths that are already failing or closing. */
export async function endQuietly(connection: Connection): Promise<void> {
  try {
    await connection.end();
  } catch {
    // Already closed or broken: nothing more to release.
    destroyQuietly(connection);
  }
}

/** Drops the socket at once (a query in flight is abandoned; the server rolls its transaction back). */
export function destroyQuietly(connection: Connection): void {
  try {
    connection.destroy();
  } catch {
    // Already destroyed.
  }
}

/** Quotes an identifier: `a`b` → `` `a``b` ``. Always quotes. */
export function quoteIdent(identifier: string): string {
  return `\`${identifier.replace(/`/g, '``')}\``;
}

/** `` `schema`.`name` ``. */
export function quoteQualified(object: QualifiedName): string {
  return `${quoteIdent(object.schema)}.${quoteIdent(object.name)}`;
}

/**
 * Quotes a string literal so that it reads the same whatever the session's sql_mode
 * (NO_BACKSLASH_ESCAPES or not): in plain quotes when it holds no backslash, quote or
 * control character, else as a utf8mb4 hex literal.
 */
export function quoteLiteral(value: string): string {
  if (!/[\\'\0\n\r\x1a]/.test(value)) return `'${value}'`;
  return `_utf8mb4 X'${Buffer.from(value, 'utf8').toString('hex')}'`;
}

/** A nullable text column as string | null. */
export function mysqlText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}
