/**
 * The MySQL/MariaDB connection test and the checks of a server as a job's source or
 * destination. Never rejects for a server problem: failures become checks (or the report's
 * `error`). Privileges are read from SHOW GRANTS for the current account; privileges that
 * reach it only through roles are not seen, and the messages say so when it has roles.
 */
import type { ConnectionParams } from '../../core/connection-profile.js';
import { describeEndpoint } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { JobType } from '../../core/lifecycle.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../core/schema.js';
import { qualifiedName } from '../../core/schema.js';
import { hasReferentialAction } from '../../core/foreign-key-actions.js';
import { copiedColumns } from '../../core/type-mapping.js';
import type { ConnectionReport, SchemaObjectOptions, SourceVerifyOptions, VerifyCheck } from '../engine.js';
import { sampleAwkwardValues } from './mysql-value-sampler.js';
import { valuePoliciesOf } from '../../core/value-policies.js';
import { loadSql } from './load-sql.js';
import { connectMysql, endQuietly, errorContext, mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import { MysqlIntrospector } from './mysql-introspector.js';
import { describePostgresSchemaForMysql, findOrphanRows, planObjectsForMysql } from './mysql-schema-writer.js';
import { MYSQL_CREATED_KINDS, parseDefinerPolicy, plainAccount, readAccounts } from './mysql-schema-objects.js';
import type { DefinerPolicy } from './mysql-schema-objects.js';
import { schemaObjectName } from '../../core/schema-object-plan.js';
import type { MysqlFlavor } from './mysql-introspector.js';

type Row = Record<string, unknown>;

/** Binlog retention under which verify warns: a job stopped or behind longer than this loses its position. */
export const MIN_BINLOG_RETENTION_SECONDS = 24 * 3600;

/** The privileges of one account as SHOW GRANTS lists them. */
export interface Grants {
  global: Set<string>;
  /** Database-level grants; the pattern may hold LIKE wildcards (`ferry\_%`). */
  databases: Array<{ pattern: RegExp; privileges: Set<string> }>;
  /** Table-level grants, by `db.table`. */
  tables: Map<string, Set<string>>;
  /** Roles granted to the account (their privileges are not followed). */
  roles: string[];
}

/** What a connection test and the checks need to know about the server. */
export interface ServerFacts {
  flavor: MysqlFlavor;
  /** "MariaDB 10.11.19", "MySQL 8.0.36". */
  serverVersion: string;
  settings: Record<string, string>;
  /** `'user'@'host'` as the server names the current account. */
  account: string;
  grants: Grants;
}

function unquoteIdent(text: string): string {
  return text.startsWith('`') ? text.slice(1, -1).replace(/``/g, '`') : text;
}

/** A LIKE pattern of a database grant as a regular expression (`\_` and `\%` are literal). */
function likePattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) source += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (ch === '%') source += '.*';
    else if (ch === '_') source += '.';
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'i');
}

/** Splits "SELECT, INSERT (a, b), REPLICATION SLAVE" on the commas outside parentheses, column lists dropped. */
function splitPrivileges(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of list) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else if (depth === 0) current += ch;
  }
  out.push(current);
  return out.map((p) => p.trim().toUpperCase().replace(/\s+/g, ' ')).map((p) => (p === 'ALL PRIVILEGES' ? 'ALL' : p)).filter((p) => p !== '');
}

/** Parses the lines of SHOW GRANTS. */
export function parseGrants(lines: string[]): Grants {
  const grants: Grants = { global: new Set(), databases: [], tables: new Map(), roles: [] };
  const ident = '(?:`(?:[^`]|``)*`|\\*|[A-Za-z0-9_$]+)';
  const onObject = new RegExp(`^GRANT\\s+(.*?)\\s+ON\\s+(?:(TABLE|PROCEDURE|FUNCTION|PACKAGE(?: BODY)?)\\s+)?(${ident})\\.(${ident})\\s+TO\\s`, 'i');
  for (const line of lines) {
    const match = onObject.exec(line);
    if (match === null) {
      const role = /^GRANT\s+(.+?)\s+TO\s/i.exec(line);
      if (role?.[1] !== undefined && !/\bPROXY\b/i.test(role[1])) grants.roles.push(role[1]);
      continue;
    }
    const [, list = '', kind, db = '', table = ''] = match;
    if (kind !== undefined && kind.toUpperCase() !== 'TABLE') continue;
    const privileges = new Set(splitPrivileges(list));
    if (db === '*' && table === '*') {
      for (const p of privileges) grants.global.add(p);
    } else if (table === '*') {
      grants.databases.push({ pattern: likePattern(unquoteIdent(db)), privileges });
    } else {
      const name = `${unquoteIdent(db)}.${unquoteIdent(table)}`;
      const known = grants.tables.get(name) ?? new Set<string>();
      for (const p of privileges) known.add(p);
      grants.tables.set(name, known);
    }
  }
  return grants;
}

/** True when the account holds `privilege` globally (ALL included). */
export function hasGlobal(grants: Grants, privilege: string): boolean {
  return grants.global.has('ALL') || grants.global.has(privilege);
}

/** True when the account holds `privilege` on the database (globally, or on a matching database grant). */
export function hasOnDatabase(grants: Grants, privilege: string, database: string): boolean {
  return hasGlobal(grants, privilege) || grants.databases.some((d) => d.pattern.test(database) && (d.privileges.has('ALL') || d.privileges.has(privilege)));
}

/** True when the account holds `privilege` on the table (at any level). */
export function hasOnTable(grants: Grants, privilege: string, table: QualifiedName): boolean {
  if (hasOnDatabase(grants, privilege, table.schema)) return true;
  const own = grants.tables.get(`${table.schema}.${table.name}`);
  return own !== undefined && (own.has('ALL') || own.has(privilege));
}

function list(objects: string[], max = 10): string {
  return objects.length <= max ? objects.join(', ') : `${objects.slice(0, max).join(', ')} and ${objects.length - max} more`;
}

function names(objects: QualifiedName[]): string[] {
  return objects.map((o) => `${o.schema}.${o.name}`);
}

export async function readServerFacts(connection: MysqlConnection): Promise<ServerFacts> {
  const [identity] = await connection.query('SELECT VERSION() AS version, CURRENT_USER() AS account');
  const row = (identity as Row[])[0] ?? {};
  const version = mysqlText(row.version) ?? '';
  const flavor: MysqlFlavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  const [variables] = await connection.query(loadSql('server-settings.sql'));
  const settings: Record<string, string> = {};
  for (const v of variables as Row[]) settings[String(v.Variable_name).toLowerCase()] = mysqlText(v.Value) ?? '';
  const [grantRows] = await connection.query('SHOW GRANTS');
  const lines = (grantRows as Row[]).map((r) => mysqlText(Object.values(r)[0]) ?? '');
  const [user = '', host = '%'] = (mysqlText(row.account) ?? '').split('@');
  return {
    flavor,
    serverVersion: `${flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${/^[\d.]+/.exec(version)?.[0] ?? version}`,
    settings,
    account: `'${user}'@'${host}'`,
    grants: parseGrants(lines),
  };
}

/** The settings a connection test reports. */
const REPORTED_SETTINGS = [
  'log_bin',
  'binlog_format',
  'binlog_row_image',
  'server_id',
  'gtid_mode',
  'gtid_strict_mode',
  'binlog_expire_logs_seconds',
  'expire_logs_days',
  'local_infile',
  'lower_case_table_names',
  'max_allowed_packet',
];

/** Seconds binlogs are kept, 0 for "never purged automatically". */
export function binlogRetentionSeconds(settings: Record<string, string>): number {
  const seconds = Number(settings.binlog_expire_logs_seconds ?? 0);
  if (seconds > 0) return seconds;
  return Math.round(Number(settings.expire_logs_days ?? 0) * 86400);
}

function isOn(value: string | undefined): boolean {
  return value !== undefined && /^(ON|1|TRUE)$/i.test(value);
}

/** The checks of the binlog settings a continuous job needs, each ok or `severity`. */
export function binlogChecks(facts: ServerFacts, severity: 'warning' | 'error'): VerifyCheck[] {
  const side = 'source';
  const s = facts.settings;
  const restart = facts.flavor === 'mariadb' ? 'restart MariaDB' : 'restart MySQL';
  const checks: VerifyCheck[] = [];
  checks.push(
    isOn(s.log_bin)
      ? { code: 'LOG_BIN', side, severity: 'ok', message: 'The binary log is on.', objects: ['log_bin'] }
      : { code: 'LOG_BIN', side, severity, message: `The binary log is off (log_bin = ${s.log_bin ?? 'unknown'}); continuous jobs read changes from it: set log_bin (e.g. log_bin = mysql-bin) in the server configuration and ${restart}.`, objects: ['log_bin'] },
  );
  checks.push(
    (s.binlog_format ?? '').toUpperCase() === 'ROW'
      ? { code: 'BINLOG_FORMAT', side, severity: 'ok', message: 'binlog_format is ROW.', objects: ['binlog_format'] }
      : { code: 'BINLOG_FORMAT', side, severity, message: `binlog_format is ${s.binlog_format ?? 'unknown'}; continuous jobs need ROW: SET GLOBAL binlog_format = 'ROW'; and set binlog_format = ROW in the configuration (sessions already open keep their format until they reconnect).`, objects: ['binlog_format'] },
  );
  checks.push(
    (s.binlog_row_image ?? 'FULL').toUpperCase() === 'FULL'
      ? { code: 'BINLOG_ROW_IMAGE', side, severity: 'ok', message: 'binlog_row_image is FULL.', objects: ['binlog_row_image'] }
      : { code: 'BINLOG_ROW_IMAGE', side, severity, message: `binlog_row_image is ${s.binlog_row_image}; continuous jobs need FULL (whole rows before and after each change): SET GLOBAL binlog_row_image = 'FULL'; and set it in the configuration.`, objects: ['binlog_row_image'] },
  );
  const serverId = Number(s.server_id ?? 0);
  checks.push(
    serverId > 0
      ? { code: 'SERVER_ID', side, severity: 'ok', message: `server_id is ${serverId}.`, objects: ['server_id'] }
      : { code: 'SERVER_ID', side, severity, message: `server_id is ${s.server_id ?? 'unset'}; a server with binlog replication needs a non-zero server_id: set server_id = 1 (unique among your servers) in the configuration and ${restart}.`, objects: ['server_id'] },
  );
  const retention = binlogRetentionSeconds(s);
  checks.push(
    retention === 0 || retention >= MIN_BINLOG_RETENTION_SECONDS
      ? { code: 'BINLOG_RETENTION', side, severity: 'ok', message: retention === 0 ? 'Binlogs are not purged automatically.' : `Binlogs are kept ${Math.round(retention / 3600)} hours.`, objects: ['binlog_expire_logs_seconds'] }
      : {
          code: 'BINLOG_RETENTION',
          side,
          severity: 'warning',
          message: `Binlogs are kept only ${Math.round(retention / 60)} minutes: a job stopped or behind for longer loses its position and must be restarted. Keep them at least a day: SET GLOBAL binlog_expire_logs_seconds = 604800; (and in the configuration).`,
          objects: ['binlog_expire_logs_seconds', 'expire_logs_days'],
        },
  );
  return checks;
}

/** The replication privileges a continuous job needs that the account lacks. */
function missingReplicationPrivileges(facts: ServerFacts): string[] {
  const g = facts.grants;
  const missing: string[] = [];
  if (!hasGlobal(g, 'REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
  const monitor = facts.flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
  if (!hasGlobal(g, 'REPLICATION CLIENT') && !hasGlobal(g, 'BINLOG MONITOR') && !hasGlobal(g, 'SUPER')) missing.push(monitor);
  // MySQL has no lock-free snapshot position: the aligned snapshot briefly takes FLUSH TABLES WITH READ LOCK.
  if (facts.flavor === 'mysql' && !hasGlobal(g, 'RELOAD')) missing.push('RELOAD');
  return missing;
}

function rolesNote(facts: ServerFacts): string {
  return facts.grants.roles.length > 0 ? ` (privileges granted through the roles ${facts.grants.roles.join(', ')} are not seen here)` : '';
}

export async function testMysqlConnection(params: ConnectionParams): Promise<ConnectionReport> {
  let connection: MysqlConnection;
  try {
    connection = await connectMysql(params, { context: { operation: 'read' } });
  } catch (error) {
    return { ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [], error: classifyMysqlError(error) };
  }
  try {
    const facts = await readServerFacts(connection);
    const settings: Record<string, string> = {};
    for (const name of REPORTED_SETTINGS) if (facts.settings[name] !== undefined) settings[name] = facts.settings[name] as string;
    const g = facts.grants;
    const privileges: Record<string, boolean> = {
      all: hasGlobal(g, 'ALL'),
      select: hasGlobal(g, 'SELECT') || (params.database !== null && hasOnDatabase(g, 'SELECT', params.database)),
      replicationSlave: hasGlobal(g, 'REPLICATION SLAVE'),
      replicationClient: hasGlobal(g, 'REPLICATION CLIENT') || hasGlobal(g, 'BINLOG MONITOR') || hasGlobal(g, 'SUPER'),
      reload: hasGlobal(g, 'RELOAD'),
      create: hasGlobal(g, 'CREATE') || (params.database !== null && hasOnDatabase(g, 'CREATE', params.database)),
    };
    const checks = binlogChecks(facts, 'warning').filter((c) => c.severity !== 'ok');
    const missing = missingReplicationPrivileges(facts);
    if (missing.length > 0) {
      checks.push({
        code: 'REPLICATION_PRIVILEGE',
        side: 'source',
        severity: 'warning',
        message: `${facts.account} lacks ${missing.join(', ')}, needed for continuous jobs from this server${rolesNote(facts)}. Run: GRANT ${missing.join(', ')} ON *.* TO ${facts.account};`,
        objects: [facts.account],
      });
    }
    return { ok: true, serverVersion: facts.serverVersion, settings, privileges, checks, error: null };
  } catch (error) {
    return { ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [], error: classifyMysqlError(error, errorContext(params)) };
  } finally {
    await endQuietly(connection);
  }
}

export async function verifyMysqlSource(params: ConnectionParams, selection: ObjectSelection, jobType: JobType, options: SourceVerifyOptions = {}): Promise<VerifyCheck[]> {
  const side = 'source';
  const checks: VerifyCheck[] = [];
  const context = errorContext(params, { operation: 'read' });
  let connection: MysqlConnection;
  try {
    connection = await connectMysql(params, { context });
  } catch (error) {
    return [{ code: 'CONNECTIVITY', side, severity: 'error', message: classifyMysqlError(error, context).message }];
  }
  try {
    const facts = await readServerFacts(connection);
    checks.push({ code: 'CONNECTIVITY', side, severity: 'ok', message: `Connected to ${facts.serverVersion} at ${describeEndpoint(params)}.` });

    const found = await new MysqlIntrospector(connection, facts.flavor, params.database).introspect(selection, { nativeDefinitions: false });
    const tables = found.tables;
    const schema = found.schema;
    const where = params.database === null ? 'this server' : `database ${params.database}`;
    checks.push(
      tables.length === 0
        ? {
            code: 'NO_TABLES_SELECTED',
            side,
            severity: 'error',
            message: `No table of ${where} matches the job's selection (or the account cannot see any). Check the include and exclude patterns ("database" or "database.table") and the account's privileges.`,
          }
        : { code: 'NO_TABLES_SELECTED', side, severity: 'ok', message: `${tables.length} table(s) selected.`, objects: names(tables) },
    );

    const unreadable: QualifiedName[] = [];
    for (const table of tables) {
      if (hasOnTable(facts.grants, 'SELECT', table)) continue;
      // Privileges may come from a role or a column grant: only a query says for sure.
      try {
        await connection.query(`SELECT 1 FROM ${quoteQualified(table)} LIMIT 0`);
      } catch {
        unreadable.push(table);
      }
    }
    checks.push(
      unreadable.length > 0
        ? {
            code: 'PRIVILEGES',
            side,
            severity: 'error',
            message: `${facts.account} cannot read ${list(names(unreadable))}. Run: ${[...new Set(unreadable.map((t) => t.schema))].map((db) => `GRANT SELECT, SHOW VIEW ON ${quoteIdent(db)}.* TO ${facts.account};`).join(' ')}`,
            objects: names(unreadable),
          }
        : { code: 'PRIVILEGES', side, severity: 'ok', message: `${facts.account} can read every selected table.` },
    );

    const noKey = tables.filter((t) => !t.hasPrimaryKey);
    if (noKey.length > 0) {
      const message =
        jobType === 'continuous'
          ? `${list(names(noKey))} ${noKey.length === 1 ? 'has' : 'have'} no primary key. Their rows are copied, but their changes can be applied only by matching whole rows, which is slow and ambiguous for duplicate rows: add a primary key (ALTER TABLE ... ADD PRIMARY KEY).`
          : `${list(names(noKey))} ${noKey.length === 1 ? 'has' : 'have'} no primary key. A one-time job copies them as they are; a continuous job would need a primary key to apply their changes reliably.`;
      checks.push({ code: 'TABLE_WITHOUT_PRIMARY_KEY', side, severity: 'warning', message, objects: names(noKey) });
    } else {
      checks.push({ code: 'TABLE_WITHOUT_PRIMARY_KEY', side, severity: 'ok', message: 'Every selected table has a primary key.' });
    }

    const nonTransactional = tables.filter((t) => t.storageEngine !== null && !/^innodb$/i.test(t.storageEngine));
    checks.push(
      nonTransactional.length > 0
        ? {
            code: 'NON_TRANSACTIONAL_TABLE',
            side,
            severity: 'warning',
            message: `${list(nonTransactional.map((t) => `${t.schema}.${t.name} (${t.storageEngine ?? '?'})`))} ${nonTransactional.length === 1 ? 'does' : 'do'} not use InnoDB, so ${nonTransactional.length === 1 ? 'it is' : 'they are'} not read from a consistent snapshot: rows written during the dump may be copied inconsistently. Stop writes to them during the dump, or convert them: ALTER TABLE ... ENGINE = InnoDB.`,
            objects: names(nonTransactional),
          }
        : { code: 'NON_TRANSACTIONAL_TABLE', side, severity: 'ok', message: 'Every selected table uses InnoDB.' },
    );

    if (found.unsupportedColumns.length > 0) {
      const objects = found.unsupportedColumns.map((c) => `${c.table.schema}.${c.table.name}.${c.column}`);
      checks.push({
        code: 'UNSUPPORTED_TYPE',
        side,
        severity: 'error',
        message: `These columns use types Ferry cannot migrate: ${found.unsupportedColumns.map((c) => `${c.table.schema}.${c.table.name}.${c.column} (${c.type}: ${c.reason})`).join('; ')}. Exclude their tables from the job, or change the column types.`,
        objects,
      });
    } else {
      checks.push({ code: 'UNSUPPORTED_TYPE', side, severity: 'ok', message: 'Every column type can be migrated.' });
    }

    const selected = new Set(names(tables));
    const dangling = schema.tables.flatMap((t) =>
      t.foreignKeys.filter((f) => !selected.has(`${f.referencedTable.schema}.${f.referencedTable.name}`)).map((f) => `${t.schema}.${t.name}.${f.name}`),
    );
    checks.push(
      dangling.length > 0
        ? {
            code: 'FOREIGN_KEY_TO_UNSELECTED_TABLE',
            side,
            severity: 'warning',
            message: `These foreign keys reference tables outside the selection and are created only if the destination already has the referenced table: ${list(dangling)}. Include the referenced tables to keep them.`,
            objects: dangling,
          }
        : { code: 'FOREIGN_KEY_TO_UNSELECTED_TABLE', side, severity: 'ok', message: 'Every foreign key references a selected table.' },
    );

    if (options.destinationEngine !== undefined && options.destinationEngine !== 'mysql' && unreadable.length === 0) {
      checks.push(...(await sampleAwkwardValues(connection, schema.tables, valuePoliciesOf(options))));
    }

    const databases = schema.schemas;
    if (jobType === 'continuous') {
      checks.push(...(await orphanChecks(connection, schema.tables, selected)));
      checks.push(...binlogChecks(facts, 'error'));
      const missing = missingReplicationPrivileges(facts);
      checks.push(
        missing.length > 0
          ? {
              code: 'REPLICATION_PRIVILEGE',
              side,
              severity: 'error',
              message: `${facts.account} lacks ${missing.join(', ')}, which continuous jobs need${rolesNote(facts)}. Run: GRANT ${missing.join(', ')} ON *.* TO ${facts.account};`,
              objects: [facts.account],
            }
          : { code: 'REPLICATION_PRIVILEGE', side, severity: 'ok', message: `${facts.account} may read the binlog.` },
      );
    }
    return checks;
  } catch (error) {
    const classified = classifyMysqlError(error, context);
    checks.push({ code: classified.code, side, severity: 'error', message: classified.message });
    return checks;
  } finally {
    await endQuietly(connection);
  }
}

/** The columns a load writes into a destination table: the source's non-generated ones. */
/** The columns a load writes: from MySQL without generated columns, from another engine all (generated ones hold the source's values). */
function loadedColumns(table: DatabaseSchema['tables'][number], sourceEngine: DatabaseSchema['engine']): string[] {
  return copiedColumns(table, sourceEngine, 'mysql').map((c) => c.name);
}

export async function verifyMysqlDestination(params: ConnectionParams, schema: DatabaseSchema, options: SchemaObjectOptions = {}): Promise<VerifyCheck[]> {
  const side = 'destination';
  const checks: VerifyCheck[] = [];
  const context = errorContext(params, { operation: 'ddl' });
  let connection: MysqlConnection;
  try {
    connection = await connectMysql(params, { context });
  } catch (error) {
    return [{ code: 'CONNECTIVITY', side, severity: 'error', message: classifyMysqlError(error, context).message }];
  }
  try {
    const facts = await readServerFacts(connection);
    checks.push({ code: 'CONNECTIVITY', side, severity: 'ok', message: `Connected to ${facts.serverVersion} at ${describeEndpoint(params)}.` });

    checks.push(
      isOn(facts.settings.local_infile)
        ? { code: 'LOCAL_INFILE', side, severity: 'ok', message: 'local_infile is ON: tables load with LOAD DATA LOCAL INFILE.', objects: ['local_infile'] }
        : {
            code: 'LOCAL_INFILE',
            side,
            severity: 'error',
            message: `local_infile is ${facts.settings.local_infile ?? 'OFF'}; Ferry loads tables with LOAD DATA LOCAL INFILE: run SET GLOBAL local_infile = ON; and set local_infile = ON in the configuration.`,
            objects: ['local_infile'],
          },
    );

    const databases = [...new Set(schema.tables.map((t) => t.schema))];
    const [schemaRows] = databases.length === 0 ? [[]] : await connection.query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)', [databases]);
    const existingDatabases = new Set((schemaRows as Row[]).map((r) => mysqlText(r.name) ?? ''));
    const g = facts.grants;
    const grants: string[] = [];
    const missingFor: string[] = [];
    const toCreate = databases.filter((d) => !existingDatabases.has(d));
    if (toCreate.length > 0 && !hasGlobal(g, 'CREATE')) {
      const needed = ['CREATE'];
      grants.push(`GRANT ${needed.join(', ')} ON *.* TO ${facts.account};`);
      missingFor.push(`databases to create (${toCreate.join(', ')})`);
    }
    const needed = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'INDEX', 'REFERENCES'];
    for (const database of databases) {
      const missing = needed.filter((p) => !hasOnDatabase(g, p, database));
      if (missing.length > 0) {
        grants.push(`GRANT ${missing.join(', ')} ON ${quoteIdent(database)}.* TO ${facts.account};`);
        missingFor.push(`database ${database}`);
      }
    }
    checks.push(
      grants.length > 0
        ? {
            code: 'PRIVILEGES',
            side,
            severity: 'error',
            message: `${facts.account} cannot create and load the tables in ${list(missingFor)}${rolesNote(facts)}. Run: ${grants.join(' ')}`,
            objects: missingFor,
          }
        : { code: 'PRIVILEGES', side, severity: 'ok', message: `${facts.account} can create the databases and tables the job needs and load them.` },
    );

    const existing = new Map<string, string[]>();
    if (databases.length > 0) {
      const [columnRows] = await connection.query(
        `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name, COLUMN_NAME AS col, GENERATION_EXPRESSION AS expr
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
        [databases],
      );
      for (const r of columnRows as Row[]) {
        const name = `${mysqlText(r.db) ?? ''}.${mysqlText(r.name) ?? ''}`;
        const columns = existing.get(name) ?? [];
        if ((mysqlText(r.expr) ?? '') === '') columns.push(mysqlText(r.col) ?? '');
        existing.set(name, columns);
      }
    }
    const notEmpty: string[] = [];
    const mismatched: string[] = [];
    for (const table of schema.tables) {
      const name = `${table.schema}.${table.name}`;
      const columns = existing.get(name);
      if (columns === undefined) continue;
      const expected = loadedColumns(table, schema.engine);
      const have = new Set(columns.map((c) => c.toLowerCase()));
      const absent = expected.filter((c) => !have.has(c.toLowerCase()));
      const extra = columns.filter((c) => !expected.some((e) => e.toLowerCase() === c.toLowerCase()));
      if (absent.length > 0 || extra.length > 0) {
        mismatched.push(`${name} (${[absent.length > 0 ? `missing ${absent.join(', ')}` : '', extra.length > 0 ? `extra ${extra.join(', ')}` : ''].filter((s) => s !== '').join('; ')})`);
      }
      const [rows] = await connection.query(`SELECT 1 AS one FROM ${quoteQualified(table)} LIMIT 1`);
      if ((rows as Row[]).length > 0) notEmpty.push(name);
    }
    checks.push(
      notEmpty.length > 0
        ? {
            code: 'DESTINATION_NOT_EMPTY',
            side,
            severity: 'error',
            message: `These destination tables already hold rows: ${list(notEmpty)}. Empty them (TRUNCATE TABLE) or drop them on the destination, or exclude them from the job.`,
            objects: notEmpty,
          }
        : { code: 'DESTINATION_NOT_EMPTY', side, severity: 'ok', message: 'No destination table that the job loads holds rows.' },
    );
    checks.push(
      mismatched.length > 0
        ? {
            code: 'DESTINATION_TABLE_MISMATCH',
            side,
            severity: 'error',
            message: `These destination tables already exist with different columns: ${mismatched.join('; ')}. Drop or rename them on the destination, or exclude them from the job.`,
            objects: mismatched.map((m) => m.split(' ')[0] ?? m),
          }
        : {
            code: 'DESTINATION_TABLE_MISMATCH',
            side,
            severity: 'ok',
            message: `${schema.tables.filter((t) => !existing.has(`${t.schema}.${t.name}`)).length} table(s) to create; ${schema.tables.filter((t) => existing.has(`${t.schema}.${t.name}`)).length} existing table(s) with matching columns to reuse.`,
          },
    );
    // A PostgreSQL schema: columns MySQL cannot hold (error) and objects that change or are left out (warning).
    checks.push(...describePostgresSchemaForMysql(schema, { mariadb: facts.flavor === 'mariadb' }));
    checks.push(...(await definerChecks(connection, schema, options, facts.account)));
    return checks;
  } catch (error) {
    const classified: FerryError = classifyMysqlError(error, context);
    checks.push({ code: classified.code, side, severity: 'error', message: classified.message });
    return checks;
  } finally {
    await endQuietly(connection);
  }
}

/**
 * DEFINERS: who the carried views, routines, triggers and events will run as on the destination
 * under the job's definer policy, naming the source definers the destination lacks.
 */
async function definerChecks(connection: MysqlConnection, schema: DatabaseSchema, options: SchemaObjectOptions, account: string): Promise<VerifyCheck[]> {
  const side = 'destination';
  const objects = planObjectsForMysql(schema).filter((p) => p.disposition !== 'left-out' && (MYSQL_CREATED_KINDS as readonly string[]).includes(p.kind));
  let policy: DefinerPolicy;
  try {
    policy = parseDefinerPolicy(options.definerPolicy);
  } catch (error) {
    return [{ code: 'DEFINERS', side, severity: 'error', message: error instanceof FerryError ? error.message : String(error) }];
  }
  if (objects.length === 0) return [];
  const accounts = await readAccounts(connection);
  const describeObjects = (list: typeof objects) => list.map((o) => `${o.kind} ${schemaObjectName(o)}`).join(', ');
  if (policy.kind === 'invoker') {
    return [{
      code: 'DEFINERS', side, severity: 'ok',
      message: `definerPolicy invoker: the views and routines are created with SQL SECURITY INVOKER (they check the caller's privileges) and without their source DEFINER, so ${account}, which creates them, becomes the definer of every object; triggers and events run as ${account}.`,
    }];
  }
  if (policy.kind === 'user') {
    const wanted = `${policy.user}@${policy.host}`;
    if (accounts !== null && !accounts.has(wanted)) {
      return [{
        code: 'DEFINERS', side, severity: 'error',
        message: `definerPolicy names ${wanted}, which does not exist on the destination; create it (CREATE USER ${policy.quoted} ...) and grant it what the objects need, or choose keep, invoker or another account.`,
        objects: [wanted],
      }];
    }
    return [{ code: 'DEFINERS', side, severity: 'ok', message: `definerPolicy ${wanted}: every view, routine, trigger and event is created with DEFINER ${policy.quoted} (${objects.length} objects).` }];
  }
  const byDefiner = new Map<string, typeof objects>();
  for (const object of objects) {
    if (object.definer === undefined) continue;
    const name = plainAccount(object.definer);
    byDefiner.set(name, [...(byDefiner.get(name) ?? []), object]);
  }
  if (accounts === null) {
    return [{
      code: 'DEFINERS', side, severity: 'warning',
      message: `definerPolicy keep: the objects keep their source definers (${[...byDefiner.keys()].join(', ')}), but ${account} may not read mysql.user to check that they exist on the destination. An object whose definer is missing fails with error 1449 when used.`,
      objects: [...byDefiner.keys()],
    }];
  }
  const missing = [...byDefiner.keys()].filter((name) => !accounts.has(name));
  if (missing.length === 0) {
    return [{ code: 'DEFINERS', side, severity: 'ok', message: `definerPolicy keep: every definer of the ${objects.length} objects exists on the destination (${[...byDefiner.keys()].join(', ')}).` }];
  }
  return [{
    code: 'DEFINERS', side, severity: 'warning',
    message: `definerPolicy keep: these definers do not exist on the destination: ${missing.map((name) => `${name} (${describeObjects(byDefiner.get(name) ?? [])})`).join('; ')}. The objects are created with them as DEFINER but fail with error 1449 when used until the accounts exist. Create the accounts on the destination before promote, or set definerPolicy to invoker (views and routines run with the caller's privileges, ${account} becomes the definer) or to an existing account user@host.`,
    objects: missing,
  }];
}

/**
 * Continuous jobs create the foreign keys with actions before the change stream: rows that
 * violate one (written with foreign_key_checks=0) would stop the job there, so verify names
 * them first.
 */
async function orphanChecks(connection: MysqlConnection, tables: TableSchema[], selected: Set<string>): Promise<VerifyCheck[]> {
  const found: string[] = [];
  const objects: string[] = [];
  for (const table of tables) {
    for (const foreignKey of table.foreignKeys) {
      if (!hasReferentialAction(foreignKey) || !selected.has(qualifiedName(foreignKey.referencedTable))) continue;
      const samples = await findOrphanRows(connection, table, foreignKey);
      if (samples.length === 0) continue;
      objects.push(`${qualifiedName(table)}.${foreignKey.name}`);
      found.push(`${qualifiedName(table)}.${foreignKey.name} (for example ${samples.join('; ')})`);
    }
  }
  if (found.length === 0) {
    return [{ code: 'FOREIGN_KEY_ORPHANS', side: 'source', severity: 'ok', message: 'Every row satisfies the foreign keys with actions.' }];
  }
  return [{
    code: 'FOREIGN_KEY_ORPHANS', side: 'source', severity: 'error', objects,
    message: `Rows reference rows that do not exist, against foreign keys with ON DELETE / ON UPDATE actions (written with foreign_key_checks=0, or before the foreign key was added): ${found.join(', ')}. A continuous job creates these foreign keys on the destination before the change stream, so that it repeats their actions, which MySQL writes to no binlog; it cannot while such rows exist. On the source, delete those rows, insert the rows they reference, or set their referencing columns to NULL, then start the job.`,
  }];
}
