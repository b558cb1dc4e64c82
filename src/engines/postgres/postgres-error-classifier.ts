/**
 * Turns whatever `pg`, `pg-copy-streams` or Node's sockets throw into a FerryError with a
 * stable code, retryability and a message that says what to do. The only place outside the
 * engine's own files that reads driver error fields.
 */
import { NODE_TLS_ERROR_CODES, describeTlsFailure } from '../node-tls-errors.js';
import pg from 'pg';
import { FerryError } from '../../core/errors.js';
import type { ErrorCode, FerryErrorOptions } from '../../core/errors.js';

/** What the caller knows about the failed operation; every field is optional. */
export interface PostgresErrorContext {
  host?: string;
  port?: number;
  database?: string | null;
  username?: string;
  /** The failure happened while connecting. */
  connecting?: boolean;
  /** The connect timeout elapsed before the failure. */
  timedOut?: boolean;
  /** What the connection was doing, for privilege advice. */
  operation?: 'read' | 'write' | 'ddl';
  /** The snapshot being imported, when any. */
  snapshotId?: string;
  /** The profile's TLS mode, for advice on pg_hba.conf and certificate failures. */
  tlsMode?: string;
  /** What the connection goes through ("SSH tunnel ferry@bastion:22"), when not direct. */
  via?: string;
}

interface DriverErrorFields {
  code?: string;
  message: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
  detail?: string;
  hint?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  severity?: string;
}

const TLS_CODES = NODE_TLS_ERROR_CODES;

function fieldsOf(error: unknown): DriverErrorFields {
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node tries every address of a host name and reports them together; the first says why.
    const first = fieldsOf(error.errors[0]);
    return { ...first, code: (error as { code?: string }).code ?? first.code };
  }
  if (error instanceof Error) {
    const e = error as Error & Partial<DriverErrorFields>;
    return {
      code: typeof e.code === 'string' ? e.code : undefined,
      message: e.message,
      syscall: e.syscall,
      address: e.address,
      port: e.port,
      hostname: e.hostname,
      detail: e.detail,
      hint: e.hint,
      schema: e.schema,
      table: e.table,
      column: e.column,
      constraint: e.constraint,
      severity: e.severity,
    };
  }
  return { message: String(error) };
}

function endpoint(fields: DriverErrorFields, context: PostgresErrorContext): string {
  const host = context.host ?? fields.address ?? fields.hostname ?? 'the server';
  const port = context.port ?? fields.port;
  const through = context.via === undefined ? '' : ` (through ${context.via})`;
  return `${port === undefined ? host : `${host}:${port}`}${through}`;
}

function who(context: PostgresErrorContext): string {
  return context.username ?? '<migration user>';
}

/** Advice for "permission denied for <kind> <name>": the GRANT that fixes it. */
function privilegeAdvice(serverMessage: string, context: PostgresErrorContext): string {
  const user = who(context);
  const match = /permission denied for (table|view|sequence|schema|database|function|materialized view|type|large object) (.+)$/.exec(serverMessage);
  if (match) {
    const kind = match[1];
    const name = match[2];
    switch (kind) {
      case 'table':
      case 'view':
      case 'materialized view':
        if (context.operation === 'write') return `Run: GRANT INSERT, TRUNCATE ON TABLE ${name} TO ${user};`;
        if (context.operation === 'read') return `Run: GRANT SELECT ON TABLE ${name} TO ${user};`;
        return `Grant ${user} the privilege this step needs on ${name}: SELECT to read it, INSERT and TRUNCATE to load it, or make ${user} its owner.`;
      case 'sequence':
        return context.operation === 'read'
          ? `Run: GRANT SELECT ON SEQUENCE ${name} TO ${user};`
          : `Run: GRANT USAGE, SELECT, UPDATE ON SEQUENCE ${name} TO ${user};`;
      case 'schema':
        return context.operation === 'read'
          ? `Run: GRANT USAGE ON SCHEMA ${name} TO ${user};`
          : `Run: GRANT USAGE, CREATE ON SCHEMA ${name} TO ${user};`;
      case 'database':
        return context.operation === 'ddl'
          ? `Run: GRANT CREATE ON DATABASE ${name} TO ${user};`
          : `Run: GRANT CONNECT ON DATABASE ${name} TO ${user};`;
      case 'type':
        return `Run: GRANT USAGE ON TYPE ${name} TO ${user};`;
      case 'function':
        return `Run: GRANT EXECUTE ON FUNCTION ${name} TO ${user};`;
      default:
        return `Grant ${user} access to ${kind} ${name}.`;
    }
  }
  if (/must be owner of/.test(serverMessage)) {
    return `Connect as the owner of that object (or a member of its owning role), or transfer ownership to ${user}.`;
  }
  if (/permission denied to create extension/.test(serverMessage)) {
    return 'Ask a superuser to run CREATE EXTENSION for it on this database first, then try again.';
  }
  if (/must be superuser|must have replication|permission denied to start WAL sender|replication/i.test(serverMessage)) {
    return `Run: ALTER ROLE ${user} WITH REPLICATION; (or use a superuser).`;
  }
  return `Grant ${user} the privilege named in the message.`;
}

function make(code: ErrorCode, message: string, options: FerryErrorOptions): FerryError {
  return new FerryError(code, message, options);
}

function classifyNodeError(error: unknown, fields: DriverErrorFields, context: PostgresErrorContext): FerryError | null {
  const where = endpoint(fields, context);
  const details: Record<string, unknown> = { errno: fields.code, host: context.host ?? fields.address, port: context.port ?? fields.port };
  const code = fields.code ?? '';
  const message = fields.message;

  if (code === 'ECONNREFUSED') {
    return make(
      'CONNECTION_REFUSED',
      `Could not connect to ${where}: connection refused. Check that PostgreSQL is running and listening on that address (listen_addresses, port) and that a firewall allows it.`,
      { retryable: true, details, cause: error },
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    const host = context.host ?? fields.hostname ?? 'the host';
    return make(
      'HOST_NOT_FOUND',
      `Could not resolve the host name "${host}". Check the host in the connection profile and that this machine's DNS can resolve it.`,
      { retryable: code === 'EAI_AGAIN', recoverable: true, details, cause: error },
    );
  }
  if (code === 'ETIMEDOUT' || message === 'timeout expired' || (context.connecting === true && context.timedOut === true)) {
    return make(
      'CONNECTION_TIMEOUT',
      `Timed out connecting to ${where}. Check the host and port, and that no firewall or security group drops the traffic.`,
      { retryable: true, details, cause: error },
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return make(
      'CONNECTION_TIMEOUT',
      `Could not reach ${where}: ${code === 'EHOSTUNREACH' ? 'no route to host' : 'network unreachable'}. Check the host address and the network path (routes, VPN, security groups).`,
      { retryable: true, details, cause: error },
    );
  }
  if (TLS_CODES.has(code) || /^ERR_SSL_|^ERR_TLS_|^ERR_OSSL_/.test(code) || /SSL|TLS|certificate|PEM/i.test(message)) {
    const described = /does not support SSL/.test(message)
      ? { problem: 'server-without-tls', advice: `The server does not accept TLS connections (${message}): turn ssl on in postgresql.conf (ssl_cert_file, ssl_key_file) and reload, or set the profile's TLS mode to none.` }
      : describeTlsFailure(code, message, context.host ?? fields.address ?? 'the host');
    return make('TLS_ERROR', `TLS connection to ${where} failed. ${described.advice}`, {
      recoverable: true,
      details: { ...details, tlsProblem: described.problem },
      cause: error,
    });
  }
  if (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ECONNABORTED' ||
    /Connection terminated|connection error and is not queryable|Client was closed/.test(message)
  ) {
    return make(
      'CONNECTION_LOST',
      `The connection to ${where} was lost (${message}). Ferry retries; if it keeps happening, check the network and the PostgreSQL server log.`,
      { retryable: true, details, cause: error },
    );
  }
  return null;
}

/**
 * Replication failures: a lost slot (dropped, invalidated, or its WAL removed) cannot be
 * resumed, since the changes it kept are gone; a full setup or a busy slot can be fixed or waited out.
 */
function classifyReplicationError(sqlstate: string, serverMessage: string, where: string, options: (retryable: boolean, recoverable?: boolean) => FerryErrorOptions): FerryError | null {
  const lost = (why: string) =>
    make(
      'REPLICATION_SLOT_LOST',
      `${why} (${serverMessage}). The changes since the last applied position can no longer be read, so this job cannot continue: Restart it, which drops its replication objects and takes a new full dump.`,
      options(false, false),
    );
  if (/replication slot ".*" does not exist/.test(serverMessage)) {
    return lost(`The job's replication slot no longer exists on ${where}`);
  }
  if (/requested WAL segment .* has already been removed/.test(serverMessage)) {
    return lost(`The WAL the job's replication slot needs was removed on ${where}`);
  }
  if (/can no longer get changes from replication slot|cannot read from logical replication slot|has been invalidated/.test(serverMessage)) {
    return lost(`The job's replication slot was invalidated on ${where} (it fell further behind than max_slot_wal_keep_size allows)`);
  }
  if (sqlstate === '42704' && /publication ".*" does not exist/.test(serverMessage)) {
    return lost(`The job's publication was dropped on ${where}`);
  }
  if (sqlstate === '55006' && /replication slot .* is active/.test(serverMessage)) {
    return make(
      'FAILED_PRECONDITION',
      `The job's replication slot is in use by another connection on ${where} (${serverMessage}). A previous reader may still be stopping: Ferry retries. If it persists, check that no other tool or Ferry instance streams from it (pg_stat_replication).`,
      // slotActive: a node that holds the job's lease takes the slot over (openChangeReader's takeOverSlot).
      (({ details, ...rest }) => ({ ...rest, details: { ...details, slotActive: true } }))(options(true)),
    );
  }
  if (sqlstate === '53400' && /replication slots/.test(serverMessage)) {
    return make(
      'REPLICATION_NOT_CONFIGURED',
      `All replication slots on ${where} are in use (${serverMessage}). Drop unused slots (SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active), or raise max_replication_slots and restart PostgreSQL.`,
      options(false, true),
    );
  }
  if (sqlstate === '53300' && /max_wal_senders/.test(serverMessage)) {
    return make(
      'REPLICATION_NOT_CONFIGURED',
      `No replication connection is free on ${where} (${serverMessage}). Ferry retries; raise max_wal_senders and restart PostgreSQL, or stop other replication clients.`,
      options(true),
    );
  }
  if (sqlstate === '55000' && /wal_level/.test(serverMessage)) {
    return make(
      'REPLICATION_NOT_CONFIGURED',
      `Logical decoding is off on ${where} (${serverMessage}): set wal_level = logical and restart PostgreSQL.`,
      options(false, true),
    );
  }
  return null;
}

function classifyServerError(error: unknown, fields: DriverErrorFields, context: PostgresErrorContext): FerryError {
  const sqlstate = fields.code ?? '';
  const where = endpoint(fields, context);
  const serverMessage = fields.message;
  const details: Record<string, unknown> = { sqlstate };
  for (const key of ['severity', 'detail', 'hint', 'schema', 'table', 'column', 'constraint'] as const) {
    if (fields[key] !== undefined) details[key] = fields[key];
  }
  const extra = [fields.detail, fields.hint].filter((s): s is string => typeof s === 'string' && s !== '').join(' ');
  const said = extra === '' ? serverMessage : `${serverMessage} (${extra})`;
  const options = (retryable: boolean, recoverable = retryable): FerryErrorOptions => ({ retryable, recoverable, details, cause: error });
  const replication = classifyReplicationError(sqlstate, serverMessage, where, options);
  if (replication !== null) return replication;

  if (sqlstate === '28000' && /requires a valid client certificate|certificate authentication failed/.test(serverMessage)) {
    const mode = context.tlsMode ?? 'none';
    const advice =
      mode === 'server-client'
        ? `The server did not accept the client certificate: its CN must be the user name "${who(context)}" (or be mapped in pg_ident.conf) and it must be signed by a CA in the server's ssl_ca_file.`
        : `pg_hba.conf requires a client certificate for this user: set the profile's TLS mode to server-client with a client certificate (CN "${who(context)}") and key signed by a CA the server trusts (its ssl_ca_file).`;
    return make('TLS_ERROR', `Connection to ${where} refused: ${serverMessage}. ${advice}`, { ...options(false, true), details: { ...details, tlsProblem: 'client-certificate-required' } });
  }
  if (sqlstate === '28000' && /no pg_hba\.conf entry/.test(serverMessage) && /no encryption/.test(serverMessage)) {
    return make(
      'TLS_ERROR',
      `Connection to ${where} refused: ${serverMessage}. The server accepts this user only over TLS (hostssl in pg_hba.conf): set the profile's TLS mode to required, server-only or server-client.`,
      { ...options(false, true), details: { ...details, tlsProblem: 'tls-required-by-server' } },
    );
  }
  if (sqlstate === '28P01' || sqlstate === '28000') {
    const hba = /pg_hba\.conf/.test(serverMessage)
      ? 'Add a pg_hba.conf entry for this user, database and client address (with TLS if the entry requires it), then reload PostgreSQL.'
      : `Check the username and password in the connection profile, that the role may log in (ALTER ROLE ${who(context)} LOGIN), and that pg_hba.conf allows it from this host.`;
    return make('AUTHENTICATION_FAILED', `Authentication to ${where} failed: ${serverMessage}. ${hba}`, options(false, true));
  }
  if (sqlstate === '3D000' || sqlstate === '57P04') {
    const db = context.database ?? 'the database';
    return make(
      'DATABASE_NOT_FOUND',
      `Database "${db}" does not exist on ${where} (${serverMessage}). Create it, or correct the database name in the connection profile.`,
      options(false, true),
    );
  }
  if (sqlstate === '42501') {
    return make('INSUFFICIENT_PRIVILEGE', `${serverMessage}. ${privilegeAdvice(serverMessage, context)}`, options(false, true));
  }
  if (sqlstate === '57P01' || sqlstate === '57P02' || sqlstate === '57P03') {
    return make(
      'SERVER_SHUTTING_DOWN',
      sqlstate === '57P01'
        ? `The server at ${where} ended this session: an administrator command (pg_terminate_backend, a fenced job's takeover) or a shutdown (${serverMessage}). Ferry retries; if it persists, check the server's state and log.`
        : `The server at ${where} is shutting down, restarting or not yet accepting connections (${serverMessage}). Ferry retries; if it persists, check the server's state and log.`,
      options(true),
    );
  }
  if (sqlstate === '53300') {
    return make(
      'TOO_MANY_CONNECTIONS',
      `The server at ${where} has no free connection slots (${serverMessage}). Ferry retries; close idle sessions, raise max_connections, or lower the job's parallelism.`,
      options(true),
    );
  }
  if (sqlstate === '55P03') {
    return make(
      'LOCK_TIMEOUT',
      `Waited too long for a lock on ${where}: ${said}. Ferry retries; look for long transactions holding locks on the table (pg_locks, pg_stat_activity).`,
      options(true),
    );
  }
  if (sqlstate === '40001' || sqlstate === '40P01') {
    return make(
      'SERIALIZATION_FAILURE',
      `The transaction on ${where} was cancelled to resolve a conflict (${serverMessage}). Ferry retries it.`,
      options(true),
    );
  }
  if (sqlstate === '53100') {
    return make(
      'DISK_FULL',
      `The server at ${where} is out of disk space: ${said}. Free space or grow the volume; Ferry retries.`,
      options(true),
    );
  }
  if (
    (sqlstate === '22023' && /snapshot/i.test(serverMessage)) ||
    (sqlstate === '55000' && /import the requested snapshot/i.test(serverMessage))
  ) {
    const id = context.snapshotId === undefined ? '' : ` ${context.snapshotId}`;
    return make(
      'SNAPSHOT_LOST',
      `The source snapshot${id} is no longer available (${serverMessage}). It lives only as long as the transaction that exported it; Ferry starts the copy again from a new snapshot.`,
      { ...options(true), details: { ...details, snapshotId: context.snapshotId } },
    );
  }
  if (sqlstate === '0A000' && /cannot truncate a table referenced in a foreign key constraint/.test(serverMessage)) {
    return make(
      'SCHEMA_ERROR',
      `Cannot empty the table before loading it: ${said}. Empty the referencing tables too, or drop those foreign keys on the destination (Ferry creates the source's foreign keys after the load), then retry.`,
      options(false, true),
    );
  }
  if (sqlstate.startsWith('23')) {
    const constraint = fields.constraint === undefined ? '' : ` "${fields.constraint}"`;
    const table = fields.table === undefined ? '' : ` on ${fields.schema === undefined ? '' : `${fields.schema}.`}${fields.table}`;
    return make(
      'CONSTRAINT_VIOLATION',
      `A row violates constraint${constraint}${table}: ${said}. Check that the destination table was empty and that its constraints match the source's.`,
      options(false),
    );
  }
  if (sqlstate.startsWith('08')) {
    return make(
      'CONNECTION_LOST',
      `The connection to ${where} failed (${serverMessage}). Ferry retries; if it keeps happening, check the network and the PostgreSQL server log.`,
      options(true),
    );
  }
  if (sqlstate.startsWith('22')) {
    return make('DATA_ERROR', `PostgreSQL rejected a value: ${said} (SQLSTATE ${sqlstate}). Check the data and the column types on both sides.`, options(false));
  }
  if (sqlstate.startsWith('42') || sqlstate.startsWith('3F')) {
    return make('SCHEMA_ERROR', `PostgreSQL rejected a schema statement: ${said} (SQLSTATE ${sqlstate}). Check the object named in the message on the destination.`, options(false));
  }
  return make('INTERNAL', `PostgreSQL error on ${where}: ${said} (SQLSTATE ${sqlstate}).`, options(false));
}

/** Classifies anything thrown while using PostgreSQL. FerryErrors pass through unchanged. */
export function classifyPostgresError(error: unknown, context: PostgresErrorContext = {}): FerryError {
  if (error instanceof FerryError) return error;
  const fields = fieldsOf(error);
  if (error instanceof pg.DatabaseError || (fields.severity !== undefined && /^[0-9A-Z]{5}$/.test(fields.code ?? ''))) {
    return classifyServerError(error, fields, context);
  }
  const nodeError = classifyNodeError(error, fields, context);
  if (nodeError !== null) return nodeError;
  return new FerryError('INTERNAL', `Unexpected error while using PostgreSQL at ${endpoint(fields, context)}: ${fields.message}`, {
    cause: error,
    details: fields.code === undefined ? {} : { errno: fields.code },
  });
}
