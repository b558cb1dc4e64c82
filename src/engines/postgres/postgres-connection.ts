/**
 * Connections to PostgreSQL: the `pg` client configuration built from a profile's
 * ConnectionParams, the session settings every Ferry connection uses, and SQL quoting.
 *
 * Values are never parsed: every client gets its own `types` object that returns the raw
 * text the server sent (timestamptz microseconds, BC dates, big numerics and jsonb pass
 * through unchanged). The process-wide `pg.types` parsers are left alone.
 */
import { isIP } from 'node:net';
import pg from 'pg';
import type { ClientConfig, CustomTypesConfig } from 'pg';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { ConnectionParams } from '../../core/connection-profile.js';
import type { QualifiedName } from '../../core/schema.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';

export const CONNECT_TIMEOUT_MS = 10_000;
export const APPLICATION_NAME = 'ferry';

type TypeParser = (value: string | Buffer) => string | Buffer;

function rawTextParser(): TypeParser {
  return (value) => value;
}

/** A `types` object for one client: every type, in either format, comes back as sent. */
export function rawTextTypes(): CustomTypesConfig {
  return { getTypeParser: rawTextParser as unknown as CustomTypesConfig['getTypeParser'] };
}

/**
 * Session settings of every Ferry connection. The catalog search path makes format_type,
 * pg_get_expr and friends print schema-qualified names, and keeps unqualified names in
 * generated DDL from resolving to user objects. The output styles make COPY text exact and
 * readable by any destination whatever its own defaults are. Timeouts a role may carry
 * would kill long copies and the idle snapshot coordinator.
 */
export const SESSION_SETUP_SQL = [
  'SET search_path = pg_catalog, pg_temp',
  "SET DateStyle = 'ISO, YMD'",
  "SET IntervalStyle = 'postgres'",
  "SET TimeZone = 'UTC'",
  'SET extra_float_digits = 3',
  "SET bytea_output = 'hex'",
  'SET statement_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
].join('; ');

/**
 * The `pg` client configuration for a profile: TLS mode, timeouts, raw-text values. Through
 * a route (an SSH tunnel's local port) the socket goes to the route, while the server
 * certificate is still checked against the database's own host name.
 */
export function buildClientConfig(params: ConnectionParams): ClientConfig {
  const config: ClientConfig = {
    host: params.route?.host ?? params.host,
    port: params.route?.port ?? params.port,
    database: params.database ?? 'postgres',
    user: params.username,
    password: params.password ?? undefined,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types: rawTextTypes(),
  };
  const tls = params.tls;
  // pg checks the certificate against `host` (and sends it as SNI when it is a name); both
  // must be the database's name, not the tunnel's 127.0.0.1.
  const identity: TlsConnectionOptions = { host: params.host, ...(isIP(params.host) === 0 ? { servername: params.host } : {}) };
  switch (tls.mode) {
    case 'none':
      config.ssl = false;
      break;
    case 'required':
      config.ssl = { rejectUnauthorized: false };
      break;
    case 'server-only':
      config.ssl = { ...identity, ca: tls.caCertificate, rejectUnauthorized: true };
      break;
    case 'server-client':
      config.ssl = { ...identity, ca: tls.caCertificate, cert: tls.clientCertificate, key: tls.clientKey, rejectUnauthorized: true };
      break;
  }
  return config;
}

/** The context the error classifier needs to name the endpoint in its messages. */
export function errorContext(params: ConnectionParams, extra: PostgresErrorContext = {}): PostgresErrorContext {
  return {
    host: params.host,
    port: params.port,
    database: params.database ?? 'postgres',
    username: params.username,
    tlsMode: params.tls.mode,
    ...(params.route === undefined ? {} : { via: params.route.via }),
    ...extra,
  };
}

/**
 * Opens a connection with Ferry's session settings. Rejects with a classified FerryError.
 * The client never emits an unhandled 'error': a connection lost while idle surfaces on the
 * next query instead.
 */
export async function connectPostgres(params: ConnectionParams, context: PostgresErrorContext = {}): Promise<pg.Client> {
  const client = new pg.Client(buildClientConfig(params));
  // Without a listener, a connection dropped while idle would crash the process.
  client.on('error', () => undefined);
  const started = Date.now();
  try {
    await client.connect();
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(
      error,
      errorContext(params, { ...context, connecting: true, timedOut: Date.now() - started >= CONNECT_TIMEOUT_MS }),
    );
  }
  try {
    await client.query(SESSION_SETUP_SQL);
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, errorContext(params, context));
  }
  return client;
}

/** Ends a client, ignoring errors: used on paths that are already failing or closing. */
export async function endQuietly(client: pg.Client): Promise<void> {
  try {
    await client.end();
  } catch {
    // Already closed or broken: nothing more to release.
  }
}

/** Quotes an identifier for SQL: `Order "Items"` → `"Order ""Items"""`. Always quotes. */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/** `"schema"."name"`. */
export function quoteQualified(object: QualifiedName): string {
  return `${quoteIdent(object.schema)}.${quoteIdent(object.name)}`;
}

/** Quotes a string literal for SQL (standard_conforming_strings, on since 9.1). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The text PostgreSQL returns for a boolean, as a boolean. */
export function pgBool(value: unknown): boolean {
  return value === 't' || value === true;
}

/** Parses a json/json_agg column that came back as raw text. */
export function pgJson<T>(value: unknown, fallback: T): T {
  if (value === null || value === undefined) return fallback;
  return JSON.parse(String(value)) as T;
}

/** A nullable text column as string | null. */
export function pgText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
