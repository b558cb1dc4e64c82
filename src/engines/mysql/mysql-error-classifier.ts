/**
 * Turns whatever `mysql2`, `@vlasky/zongji` or Node's sockets throw into a FerryError with a
 * stable code, retryability and a message that says what to do. The only place that reads
 * MySQL driver error fields.
 *
 * Server errors are recognised by their MySQL/MariaDB error number (`errno`), which both
 * servers share for everything classified here.
 */
import { NODE_TLS_ERROR_CODES, describeTlsFailure } from '../node-tls-errors.js';
import { FerryError } from '../../core/errors.js';
import type { ErrorCode, FerryErrorOptions } from '../../core/errors.js';

/** What the caller knows about the failed operation; every field is optional. */
export interface MysqlErrorContext {
  host?: string;
  port?: number;
  database?: string | null;
  username?: string;
  /** The failure happened while connecting. */
  connecting?: boolean;
  /** The connect timeout elapsed before the failure. */
  timedOut?: boolean;
  /** What the connection was doing, for privilege advice. */
  operation?: 'read' | 'write' | 'ddl' | 'replication';
  /** The profile's TLS mode, for advice when an account requires TLS or a certificate. */
  tlsMode?: string;
  /** What the connection goes through ("SSH tunnel ferry@bastion:22"), when not direct. */
  via?: string;
}

interface DriverErrorFields {
  code?: string;
  errno?: number;
  sqlState?: string;
  message: string;
  fatal?: boolean;
  address?: string;
  port?: number;
  hostname?: string;
}

const TLS_CODES = new Set([...NODE_TLS_ERROR_CODES, 'HANDSHAKE_NO_SSL_SUPPORT', 'HANDSHAKE_SSL_ERROR']);

const LOST_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_PACKETS_OUT_OF_ORDER',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ER_SERVER_SHUTDOWN',
]);

function fieldsOf(error: unknown): DriverErrorFields {
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node tries every address of a host name and reports them together; the first says why.
    const first = fieldsOf(error.errors[0]);
    return { ...first, code: (error as { code?: string }).code ?? first.code };
  }
  if (error instanceof Error) {
    const e = error as Error & Partial<DriverErrorFields> & { sqlMessage?: string };
    return {
      code: typeof e.code === 'string' ? e.code : undefined,
      errno: typeof e.errno === 'number' ? e.errno : undefined,
      sqlState: typeof e.sqlState === 'string' ? e.sqlState : undefined,
      message: typeof e.sqlMessage === 'string' ? e.sqlMessage : e.message,
      fatal: e.fatal,
      address: e.address,
      port: e.port,
      hostname: e.hostname,
    };
  }
  return { message: String(error) };
}

function endpoint(fields: DriverErrorFields, context: MysqlErrorContext): string {
  const host = context.host ?? fields.address ?? fields.hostname ?? 'the server';
  const port = context.port ?? fields.port;
  const through = context.via === undefined ? '' : ` (through ${context.via})`;
  return `${port === undefined ? host : `${host}:${port}`}${through}`;
}

/** `'user'@'client host'` as the server's message names the connecting client, else from the profile. */
function account(serverMessage: string, context: MysqlErrorContext): string {
  const match = /user '([^']*)'@'([^']*)'/.exec(serverMessage);
  if (match) return `'${match[1]}'@'${match[2]}'`;
  return `'${context.username ?? '<migration user>'}'@'%'`;
}

/**
 * The account to name in a GRANT: the server's messages give the client's address, not the
 * host part the account was created with, so `'%'` stands for it (the usual case).
 */
function grantee(serverMessage: string, context: MysqlErrorContext): string {
  const user = /user '([^']*)'@/.exec(serverMessage)?.[1] ?? context.username ?? '<migration user>';
  return `'${user}'@'%'`;
}

/** The GRANT that fixes a "command denied" or "access denied" error. */
function privilegeAdvice(errno: number, serverMessage: string, context: MysqlErrorContext): string {
  const who = grantee(serverMessage, context);
  if (errno === 1227) {
    // "Access denied; you need (at least one of) the REPLICATION SLAVE privilege(s) for this operation"
    const needed = /need \(at least one of\) the (.+?) privilege/.exec(serverMessage)?.[1];
    if (needed !== undefined) {
      const first = needed.split(',')[0]?.trim() ?? needed;
      return `Run: GRANT ${first} ON *.* TO ${who};`;
    }
    return `Grant ${who} the global privilege named in the message (GRANT ... ON *.* TO ${who};).`;
  }
  if (errno === 1142 || errno === 1143) {
    // "SELECT command denied to user 'u'@'h' for table `db`.`t`" (MariaDB) / "for table 't'" (MySQL)
    const command = /^(\w+) command denied/.exec(serverMessage)?.[1]?.toUpperCase() ?? 'SELECT';
    const table = /for table (`[^`]*`\.`[^`]*`|'[^']*')/.exec(serverMessage)?.[1];
    const target = table === undefined ? '<database>.<table>' : table.startsWith("'") ? `<database>.\`${table.slice(1, -1)}\`` : table;
    return `Run: GRANT ${command} ON ${target} TO ${who};`;
  }
  // 1044: "Access denied for user 'u'@'h' to database 'db'"
  const database = /to database '([^']*)'/.exec(serverMessage)?.[1] ?? context.database ?? '<database>';
  const privileges =
    context.operation === 'ddl'
      ? 'SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, REFERENCES, DROP'
      : context.operation === 'write'
        ? 'SELECT, INSERT, UPDATE, DELETE, DROP'
        : 'SELECT, SHOW VIEW';
  return `Run: GRANT ${privileges} ON \`${database.replace(/`/g, '``')}\`.* TO ${who};`;
}

/**
 * MySQL answers "access denied" also when the account requires TLS (REQUIRE SSL) or a client
 * certificate (REQUIRE X509) the connection did not give: say so, per TLS mode.
 */
function tlsAccountAdvice(context: MysqlErrorContext): string {
  switch (context.tlsMode) {
    case undefined:
    case 'server-client':
      return '';
    case 'none':
      return ` If the account requires TLS or a client certificate (SHOW CREATE USER shows REQUIRE SSL or REQUIRE X509), set the profile's TLS mode to required or server-only (REQUIRE SSL), or server-client with a client certificate and key (REQUIRE X509).`;
    default:
      return ` If the account requires a client certificate (SHOW CREATE USER shows REQUIRE X509 or ISSUER/SUBJECT), set the profile's TLS mode to server-client with a client certificate and key signed by a CA the server trusts.`;
  }
}

/** Appended to privilege advice: which account the GRANT must name. */
const GRANTEE_NOTE = " (if the account was created for another host than '%', name that host: SELECT CURRENT_USER();)";

function make(code: ErrorCode, message: string, options: FerryErrorOptions): FerryError {
  return new FerryError(code, message, options);
}

function classifyNodeError(error: unknown, fields: DriverErrorFields, context: MysqlErrorContext): FerryError | null {
  const where = endpoint(fields, context);
  const details: Record<string, unknown> = { errno: fields.code, host: context.host ?? fields.address, port: context.port ?? fields.port };
  const code = fields.code ?? '';
  const message = fields.message;

  if (code === 'ECONNREFUSED') {
    return make(
      'CONNECTION_REFUSED',
      `Could not connect to ${where}: connection refused. Check that MySQL/MariaDB is running and listening on that address (bind-address, port) and that a firewall allows it.`,
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
  if (code === 'ETIMEDOUT' || (context.connecting === true && context.timedOut === true)) {
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
  if (TLS_CODES.has(code) || /^ERR_SSL_|^ERR_TLS_|^ERR_OSSL_/.test(code) || /\bSSL\b|\bTLS\b|certificate|secure connection|PEM/i.test(message)) {
    const described =
      code === 'HANDSHAKE_NO_SSL_SUPPORT' || /does not support secure connection/i.test(message)
        ? { problem: 'server-without-tls', advice: `The server does not accept TLS connections (${message}): turn TLS on in the server (ssl_cert, ssl_key, ssl_ca) and restart it, or set the profile's TLS mode to none.` }
        : describeTlsFailure(code, message, context.host ?? fields.address ?? 'the host');
    return make('TLS_ERROR', `TLS connection to ${where} failed. ${described.advice}`, { recoverable: true, details: { ...details, tlsProblem: described.problem }, cause: error });
  }
  if (code === 'AUTH_SWITCH_PLUGIN_ERROR' || /authentication using unknown plugin|auth(entication)? plugin/i.test(message)) {
    return make(
      'AUTHENTICATION_FAILED',
      `Authentication to ${where} failed: ${message}. Ferry supports the mysql_native_password, caching_sha2_password (MySQL 8), sha256_password and mysql_clear_password plugins; ` +
        `give the migration user one of them, e.g. ALTER USER '${context.username ?? '<user>'}'@'%' IDENTIFIED WITH caching_sha2_password BY '<password>'; (MySQL 8) ` +
        `or ALTER USER '${context.username ?? '<user>'}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('<password>'); (MariaDB).`,
      { recoverable: true, details, cause: error },
    );
  }
  if (LOST_CODES.has(code) || /Connection lost|connection is in closed state|Can't add new command when connection is in closed state|The server closed the connection/i.test(message)) {
    return make(
      'CONNECTION_LOST',
      `The connection to ${where} was lost (${message}). Ferry retries; if it keeps happening, check the network, the server's error log and its wait_timeout / max_allowed_packet.`,
      { retryable: true, details, cause: error },
    );
  }
  return null;
}

/**
 * Binlog failures. Error 1236 is what a server sends a replica that asks for a position it no
 * longer has (or never had): the changes since the saved position are gone, so the job
 * cannot resume and must take a new full dump.
 */
function classifyBinlogError(errno: number, serverMessage: string, where: string, options: (retryable: boolean, recoverable?: boolean) => FerryErrorOptions): FerryError | null {
  if (errno !== 1236) return null;
  if (/Could not find first log file|purged|could not find next log|not in the master's binlog|Could not open log file|which is not in the (master|primary)'s binlog|File .* not found/i.test(serverMessage)) {
    return make(
      'REPLICATION_SLOT_LOST',
      `The saved binlog position no longer exists on the source (binlogs purged) at ${where}: ${serverMessage}. Restart the job to take a new full dump; to avoid this, keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days) than a job may be stopped or behind.`,
      options(false, false),
    );
  }
  return make(
    'REPLICATION_SLOT_LOST',
    `The source at ${where} refused to stream its binlog from the saved position: ${serverMessage}. The changes since then cannot be read, so this job cannot continue: Restart it to take a new full dump.`,
    options(false, false),
  );
}

function classifyServerError(error: unknown, fields: DriverErrorFields, context: MysqlErrorContext): FerryError {
  const errno = fields.errno ?? 0;
  const where = endpoint(fields, context);
  const serverMessage = fields.message;
  const details: Record<string, unknown> = { errno, code: fields.code, sqlState: fields.sqlState };
  const options = (retryable: boolean, recoverable = retryable): FerryErrorOptions => ({ retryable, recoverable, details, cause: error });
  const said = `${serverMessage} (${fields.code ?? 'error'} ${errno})`;

  const binlog = classifyBinlogError(errno, serverMessage, where, options);
  if (binlog !== null) return binlog;

  switch (errno) {
    case 1045:
      return make(
        'AUTHENTICATION_FAILED',
        `Authentication to ${where} failed: ${serverMessage}. Check the username and password in the connection profile${/using password: NO/.test(serverMessage) ? ' (no password was sent)' : ''}, and that an account ${account(serverMessage, context)} exists for the host Ferry connects from (SELECT user, host FROM mysql.user).${tlsAccountAdvice(context)}`,
        options(false, true),
      );
    case 1698:
      return make(
        'AUTHENTICATION_FAILED',
        `Authentication to ${where} failed: ${serverMessage}. The account authenticates only through the local socket (unix_socket); create a password-authenticated account for Ferry: CREATE USER 'ferry'@'%' IDENTIFIED BY '<password>';`,
        options(false, true),
      );
    case 1251:
    case 1524:
      return make(
        'AUTHENTICATION_FAILED',
        `Authentication to ${where} failed: ${serverMessage}. The account uses an authentication plugin the server or Ferry cannot use here; on MySQL 8 use ALTER USER '${context.username ?? '<user>'}'@'%' IDENTIFIED WITH caching_sha2_password BY '<password>';`,
        options(false, true),
      );
    case 1130:
      return make(
        'AUTHENTICATION_FAILED',
        `${serverMessage}. Create an account for the host Ferry connects from, e.g. CREATE USER '${context.username ?? '<user>'}'@'%' IDENTIFIED BY '<password>'; (and grant it the privileges the job needs).`,
        options(false, true),
      );
    case 1129:
      return make('AUTHENTICATION_FAILED', `${serverMessage}. Run FLUSH HOSTS (or mariadb-admin flush-hosts) on the server, and raise max_connect_errors.`, options(false, true));
    case 1049: {
      const db = /Unknown database '([^']*)'/.exec(serverMessage)?.[1] ?? context.database ?? 'the database';
      return make(
        'DATABASE_NOT_FOUND',
        `Database "${db}" does not exist on ${where} (${serverMessage}). Create it, or correct the database name in the connection profile or the job's selection.`,
        options(false, true),
      );
    }
    case 1044:
    case 1142:
    case 1143:
    case 1227:
      return make('INSUFFICIENT_PRIVILEGE', `${serverMessage}. ${privilegeAdvice(errno, serverMessage, context)}${GRANTEE_NOTE}`, options(false, true));
    case 1148:
    case 3948:
    case 2068:
      return make(
        'FAILED_PRECONDITION',
        `LOAD DATA LOCAL INFILE is disabled on ${where} (${serverMessage}). Run SET GLOBAL local_infile = ON; on the destination (and set local_infile = ON in its configuration to keep it after a restart).`,
        options(false, true),
      );
    case 1040:
    case 1203:
      return make(
        'TOO_MANY_CONNECTIONS',
        `The server at ${where} has no free connections for this account or server (${serverMessage}). Ferry retries; close idle sessions, raise max_connections (or max_user_connections), or lower the job's parallelism.`,
        options(true),
      );
    case 1205:
      return make(
        'LOCK_TIMEOUT',
        `Waited too long for a row lock on ${where}: ${said}. Ferry retries; look for long transactions holding locks on the table (SHOW ENGINE INNODB STATUS, information_schema.innodb_trx).`,
        options(true),
      );
    case 1213:
      return make('SERIALIZATION_FAILURE', `The transaction on ${where} was rolled back to resolve a deadlock (${serverMessage}). Ferry retries it.`, options(true));
    case 1412:
      return make(
        'SNAPSHOT_LOST',
        `A table changed its definition (DDL) after the source snapshot was taken (${serverMessage}); the snapshot cannot read it. Ferry starts the copy again from a new snapshot; avoid schema changes on the source while the dump runs.`,
        options(true),
      );
    case 1053:
    case 1077:
    case 1079:
      return make(
        'SERVER_SHUTTING_DOWN',
        `The server at ${where} is shutting down or restarting (${serverMessage}). Ferry retries; if it persists, check the server's state and error log.`,
        options(true),
      );
    case 1317:
    case 1927:
    case 2006:
    case 2013:
    case 4031:
      return make(
        'CONNECTION_LOST',
        `The connection to ${where} was lost or killed (${serverMessage}). Ferry retries; if it keeps happening, check the network, the server's error log and its wait_timeout / max_allowed_packet.`,
        options(true),
      );
    case 1021:
    case 1114:
      return make('DISK_FULL', `The server at ${where} is out of space: ${said}. Free space or grow the volume (or raise the table's size limit); Ferry retries.`, options(true));
    case 1062:
    case 1451:
    case 1452:
    case 1048:
    case 3819:
    case 4025:
    case 1216:
    case 1217:
    case 1557:
    case 1586:
      return make(
        'CONSTRAINT_VIOLATION',
        `A row violates a constraint on ${where}: ${said}. Check that the destination table was empty and that its constraints match the source's.`,
        options(false),
      );
    case 1264:
    case 1265:
    case 1292:
    case 1366:
    case 1367:
    case 1406:
    case 1411:
    case 3140:
    case 4038:
      return make('DATA_ERROR', `MySQL rejected a value on ${where}: ${said}. Check the data and the column types on both sides.`, options(false));
    case 1290:
      return make(
        'FAILED_PRECONDITION',
        `The server at ${where} refused the statement because of its configuration (${serverMessage}). If it is read-only, point the profile at the writable server or run SET GLOBAL read_only = OFF.`,
        options(false, true),
      );
    default:
      break;
  }
  if (errno >= 1000 && /^(42|3D|HY)/.test(fields.sqlState ?? '') && /doesn't exist|Unknown (column|table)|already exists|syntax|Duplicate (column|key name)|Incorrect/i.test(serverMessage)) {
    return make('SCHEMA_ERROR', `MySQL rejected a schema statement on ${where}: ${said}. Check the object named in the message.`, options(false));
  }
  return make('INTERNAL', `MySQL error on ${where}: ${said}.`, options(false));
}

/** Classifies anything thrown while using MySQL/MariaDB. FerryErrors pass through unchanged. */
export function classifyMysqlError(error: unknown, context: MysqlErrorContext = {}): FerryError {
  if (error instanceof FerryError) return error;
  const fields = fieldsOf(error);
  if (fields.errno !== undefined && fields.errno >= 1000 && fields.errno < 5000 && (fields.sqlState !== undefined || /^ER_/.test(fields.code ?? ''))) {
    return classifyServerError(error, fields, context);
  }
  const nodeError = classifyNodeError(error, fields, context);
  if (nodeError !== null) return nodeError;
  // The server's own file operations (mysys EE_* errors: a temporary file it could not create,
  // write or delete) fail the statement, not the data: the step is retried.
  if (/^EE_/.test(fields.code ?? '')) {
    return new FerryError('INTERNAL', `MySQL at ${endpoint(fields, context)} failed a file operation of its own: ${fields.message}. Ferry retries; if it lasts, check the server's tmpdir (free space, permissions, nothing cleaning it).`, {
      retryable: true,
      cause: error,
      details: { errno: fields.code },
    });
  }
  return new FerryError('INTERNAL', `Unexpected error while using MySQL at ${endpoint(fields, context)}: ${fields.message}`, {
    cause: error,
    details: fields.code === undefined ? {} : { errno: fields.code },
  });
}
