/**
 * MySQL/MariaDB schema objects beyond the tables: reading them from a source (views,
 * stored functions and procedures, triggers, events, and which tables are partitioned) with
 * their SHOW CREATE definitions, and creating them on a destination under the job's definer
 * policy.
 *
 * Order on the source list (the destination creates in this order within a phase): partitioned
 * tables (informational: created with their table), functions, procedures, views (a view after
 * the views it reads, from the `database`.`name` references information_schema.VIEWS stores),
 * triggers (per table in firing order), events. The plan (core/schema-object-plan.ts) puts
 * routines and views in pre-data, triggers and events in post-data (one-time jobs) or at promote
 * (continuous jobs).
 *
 * Each object is created in its own database (`USE`), under the sql_mode (and for events the
 * time_zone) it was created with on the source, as mysqldump does. Objects that exist on the
 * destination already are kept, so every step runs again after a crash.
 */
import { FerryError } from '../../core/errors.js';
import { isTableSelected } from '../../core/object-selection.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { SchemaObjectInfo, SchemaObjectPlan, TableSchema } from '../../core/schema.js';
import { schemaObjectName } from '../../core/schema-object-plan.js';
import type { CreatedObject } from '../engine.js';
import { loadSql } from './load-sql.js';
import { mysqlText, quoteIdent, quoteLiteral } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';

type Row = Record<string, unknown>;

/** The object kinds this module creates on a destination. */
export const MYSQL_CREATED_KINDS = ['function', 'procedure', 'view', 'trigger', 'event'] as const;
type MysqlObjectKind = (typeof MYSQL_CREATED_KINDS)[number];

function isCreatedKind(kind: string): kind is MysqlObjectKind {
  return (MYSQL_CREATED_KINDS as readonly string[]).includes(kind);
}

const DEFINER_CLAUSE = /DEFINER=(`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?|'(?:[^']|'')*'(?:@'(?:[^']|'')*')?|[^\s@]+(?:@\S+)?) /;

/** The DEFINER of a SHOW CREATE statement as printed (`user`@`host`), or undefined. */
export function definerOf(definition: string): string | undefined {
  return DEFINER_CLAUSE.exec(definition)?.[1];
}

/** Whether a SHOW CREATE TABLE statement is of a partitioned table. */
export function isPartitionedDefinition(definition: string): boolean {
  return /\n\s*PARTITION BY /i.test(definition) || /\/\*!50100 PARTITION BY /i.test(definition);
}

/** The `database`.`name` pairs a stored view SELECT names (columns come as `db`.`t`.`col`: the first two parts). */
function referencedRelations(body: string): Array<[string, string]> {
  const chain = /`((?:[^`]|``)*)`(?:\.`((?:[^`]|``)*)`)+/g;
  const pairs: Array<[string, string]> = [];
  for (let match = chain.exec(body); match !== null; match = chain.exec(body)) {
    const parts = [...match[0].matchAll(/`((?:[^`]|``)*)`/g)].map((m) => (m[1] ?? '').replace(/``/g, '`'));
    if (parts.length >= 2) pairs.push([parts[0] as string, parts[1] as string]);
  }
  return pairs;
}

async function showCreate(connection: MysqlConnection, what: string, database: string, name: string, column: string): Promise<{ definition: string | null; row: Row | undefined }> {
  const [rows] = await connection.query(`SHOW CREATE ${what} ${quoteIdent(database)}.${quoteIdent(name)}`);
  const row = (rows as Row[])[0];
  return { definition: row === undefined ? null : mysqlText(row[column]), row };
}

function settingsOf(row: Row | undefined, names: string[]): Record<string, string> | undefined {
  if (row === undefined) return undefined;
  const settings: Record<string, string> = {};
  for (const name of names) {
    const value = mysqlText(row[name]);
    if (value !== null) settings[name] = value;
  }
  return Object.keys(settings).length === 0 ? undefined : settings;
}

function withDefiner(info: SchemaObjectInfo): SchemaObjectInfo {
  const definer = info.definition === null ? undefined : definerOf(info.definition);
  return definer === undefined ? info : { ...info, definer };
}

/**
 * The schema objects of the databases that hold the selected tables, in creation order (see the
 * module comment). Views, routines and events are selected by their own name as tables are
 * (`--exclude db.v_old` leaves a view out); triggers by their table. A definition the source
 * user may not read (SHOW VIEW, or SELECT on mysql.proc, missing) is null.
 */
export async function readMysqlSchemaObjects(connection: MysqlConnection, selection: ObjectSelection, tables: TableSchema[]): Promise<SchemaObjectInfo[]> {
  const databases = [...new Set(tables.map((t) => t.schema))];
  if (databases.length === 0) return [];
  const objects: SchemaObjectInfo[] = [];
  for (const table of tables) {
    if (table.nativeDefinition !== undefined && isPartitionedDefinition(table.nativeDefinition)) {
      objects.push({ kind: 'partitioned table', schema: table.schema, name: table.name, definition: table.nativeDefinition });
    }
  }

  const [routineRows] = await connection.query(loadSql('schema-object-routines.sql'), [databases]);
  for (const row of routineRows as Row[]) {
    const schema = mysqlText(row.schema) ?? '';
    const name = mysqlText(row.name) ?? '';
    if (!isTableSelected(selection, schema, name)) continue;
    const type = (mysqlText(row.type) ?? '').toUpperCase() === 'FUNCTION' ? 'FUNCTION' : 'PROCEDURE';
    const shown = await showCreate(connection, type, schema, name, type === 'FUNCTION' ? 'Create Function' : 'Create Procedure');
    const settings = settingsOf(shown.row, ['sql_mode']);
    objects.push(withDefiner({ kind: type.toLowerCase(), schema, name, definition: shown.definition, ...(settings ? { settings } : {}) }));
  }

  const [viewRows] = await connection.query(loadSql('schema-object-views.sql'), [databases]);
  const views = (viewRows as Row[])
    .map((row) => ({ schema: mysqlText(row.schema) ?? '', name: mysqlText(row.name) ?? '', body: mysqlText(row.body) ?? '' }))
    .filter((v) => isTableSelected(selection, v.schema, v.name));
  const candidates = new Map<string, [string, string]>();
  for (const view of views) for (const [s, n] of referencedRelations(view.body)) candidates.set(`${s}.${n}`, [s, n]);
  // Only pairs that name a real table or view count (`alias`.`column` has the same shape).
  const existing = new Set<string>();
  const pairs = [...candidates.values()];
  for (let i = 0; i < pairs.length; i += 500) {
    const chunk = pairs.slice(i, i + 500);
    // TABLE_SCHEMA IN (...) too: information_schema then opens only those databases (see sql/destination-tables.sql).
    const [rows] = await connection.query(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND (TABLE_SCHEMA, TABLE_NAME) IN (${chunk.map(() => '(?, ?)').join(', ')})`,
      [[...new Set(chunk.map(([schema]) => schema))], ...chunk.flat()],
    );
    for (const row of rows as Row[]) existing.add(`${mysqlText(row.s) ?? ''}.${mysqlText(row.n) ?? ''}`);
  }
  const viewInfos = new Map<string, SchemaObjectInfo>();
  for (const view of views) {
    const shown = await showCreate(connection, 'VIEW', view.schema, view.name, 'Create View');
    const self = `${view.schema}.${view.name}`;
    const dependsOn = [...new Set(referencedRelations(view.body).map(([s, n]) => `${s}.${n}`))].filter((name) => existing.has(name) && name !== self);
    viewInfos.set(self, withDefiner({ kind: 'view', schema: view.schema, name: view.name, definition: shown.definition, dependsOn }));
  }
  // Depth-first: a view after every view it reads.
  const placed = new Set<string>();
  const place = (name: string, path: Set<string>): void => {
    const info = viewInfos.get(name);
    if (info === undefined || placed.has(name) || path.has(name)) return;
    path.add(name);
    for (const dependency of info.dependsOn ?? []) place(dependency, path);
    path.delete(name);
    placed.add(name);
    objects.push(info);
  };
  for (const name of viewInfos.keys()) place(name, new Set());

  const [triggerRows] = await connection.query(loadSql('schema-object-triggers.sql'), [databases]);
  for (const row of triggerRows as Row[]) {
    const schema = mysqlText(row.schema) ?? '';
    const name = mysqlText(row.name) ?? '';
    const table = `${mysqlText(row.table_schema) ?? ''}.${mysqlText(row.table_name) ?? ''}`;
    if (!isTableSelected(selection, mysqlText(row.table_schema) ?? '', mysqlText(row.table_name) ?? '')) continue;
    const shown = await showCreate(connection, 'TRIGGER', schema, name, 'SQL Original Statement');
    const settings = settingsOf(shown.row, ['sql_mode']);
    objects.push(withDefiner({ kind: 'trigger', schema, name, definition: shown.definition, dependsOn: [table], ...(settings ? { settings } : {}) }));
  }

  const [eventRows] = await connection.query(loadSql('schema-object-events.sql'), [databases]);
  for (const row of eventRows as Row[]) {
    const schema = mysqlText(row.schema) ?? '';
    const name = mysqlText(row.name) ?? '';
    if (!isTableSelected(selection, schema, name)) continue;
    const shown = await showCreate(connection, 'EVENT', schema, name, 'Create Event');
    const settings = settingsOf(shown.row, ['sql_mode', 'time_zone']);
    objects.push(withDefiner({ kind: 'event', schema, name, definition: shown.definition, ...(settings ? { settings } : {}) }));
  }
  return objects;
}

// ---------------------------------------------------------------------------------------
// Destination: the definer policy and creation.

/** A parsed definer policy. */
export type DefinerPolicy = { kind: 'keep' } | { kind: 'invoker' } | { kind: 'user'; user: string; host: string; quoted: string };

/**
 * Parses 'keep', 'invoker' or an account `user@host` (quotes optional: 'app'@'%', `app`@`%`).
 * Throws INVALID_ARGUMENT for anything else.
 */
export function parseDefinerPolicy(text: string | undefined): DefinerPolicy {
  const value = (text ?? 'keep').trim();
  if (value === 'keep') return { kind: 'keep' };
  if (value === 'invoker') return { kind: 'invoker' };
  const at = value.lastIndexOf('@');
  const unquote = (part: string) => part.replace(/^(['`"])(.*)\1$/, '$2');
  if (at > 0 && at < value.length - 1) {
    const user = unquote(value.slice(0, at));
    const host = unquote(value.slice(at + 1));
    if (user !== '' && host !== '') return { kind: 'user', user, host, quoted: `${quoteIdent(user)}@${quoteIdent(host)}` };
  }
  throw new FerryError('INVALID_ARGUMENT', `definerPolicy "${value}" is not understood; use keep, invoker, or an account as user@host (e.g. app@%).`);
}

/** The definition as the destination creates it under the policy, plus what to run after it. */
export function applyDefinerPolicy(object: SchemaObjectInfo, policy: DefinerPolicy): { sql: string; after: string[] } {
  const definition = object.definition ?? '';
  if (policy.kind === 'keep') return { sql: definition, after: [] };
  if (policy.kind === 'user') return { sql: definition.replace(DEFINER_CLAUSE, `DEFINER=${policy.quoted} `), after: [] };
  // invoker: no DEFINER (the creating user becomes it); views and routines check the caller's privileges.
  let sql = definition.replace(DEFINER_CLAUSE, '');
  const after: string[] = [];
  const qualified = `${quoteIdent(object.schema ?? '')}.${quoteIdent(object.name)}`;
  if (object.kind === 'view') {
    sql = /^CREATE ((?:ALGORITHM=\w+ )?)SQL SECURITY (DEFINER|INVOKER) VIEW /.test(sql)
      ? sql.replace(/^CREATE ((?:ALGORITHM=\w+ )?)SQL SECURITY (DEFINER|INVOKER) VIEW /, 'CREATE $1SQL SECURITY INVOKER VIEW ')
      : sql.replace(/^CREATE ((?:ALGORITHM=\w+ )?)VIEW /, 'CREATE $1SQL SECURITY INVOKER VIEW ');
  } else if (object.kind === 'function' || object.kind === 'procedure') {
    after.push(`ALTER ${object.kind.toUpperCase()} ${qualified} SQL SECURITY INVOKER`);
  }
  return { sql, after };
}

/** The accounts the objects name as DEFINER, as printed (`user`@`host`). */
export function definersOf(objects: SchemaObjectInfo[]): string[] {
  return [...new Set(objects.flatMap((o) => (o.definer === undefined ? [] : [o.definer])))].sort();
}

/** `user`@`host` as user@host for messages and comparison with mysql.user. */
export function plainAccount(definer: string): string {
  const parts = [...definer.matchAll(/`((?:[^`]|``)*)`|'((?:[^']|'')*)'/g)].map((m) => (m[1] ?? m[2] ?? '').replace(/``/g, '`'));
  if (parts.length === 2) return `${parts[0]}@${parts[1]}`;
  if (parts.length === 1) return parts[0] as string;
  return definer;
}

/** The accounts and roles of the destination as user@host (roles as their name), or null when the user may not read mysql.user. */
export async function readAccounts(connection: MysqlConnection): Promise<Set<string> | null> {
  try {
    const [rows] = await connection.query('SELECT User AS u, Host AS h FROM mysql.user');
    const accounts = new Set<string>();
    for (const row of rows as Row[]) {
      const user = mysqlText(row.u) ?? '';
      const host = mysqlText(row.h) ?? '';
      accounts.add(host === '' ? user : `${user}@${host}`);
    }
    return accounts;
  } catch {
    return null;
  }
}

function objectKey(kind: string, schema: string, name: string): string {
  return JSON.stringify([kind, schema, name.toLowerCase()]);
}

/**
 * Creates the carried objects of `plans` (kinds of MYSQL_CREATED_KINDS) in order, skipping those
 * that exist, and resolves with those it created. A failure names the object and the server's
 * reason; objects created before it stay (DDL commits at once) and are returned by the next call
 * as existing.
 */
export async function createMysqlSchemaObjects(
  connection: MysqlConnection,
  context: MysqlErrorContext,
  plans: SchemaObjectPlan[],
  policy: DefinerPolicy,
): Promise<CreatedObject[]> {
  const wanted = plans.filter((p) => p.disposition !== 'left-out' && isCreatedKind(p.kind) && p.schema !== null && p.definition !== null);
  if (wanted.length === 0) return [];
  const databases = [...new Set(wanted.map((p) => p.schema as string))];
  const [rows] = await connection.query(loadSql('destination-schema-objects.sql'), [databases, databases, databases, databases]);
  const existing = new Set((rows as Row[]).map((r) => objectKey(mysqlText(r.kind) ?? '', mysqlText(r.schema) ?? '', mysqlText(r.name) ?? '')));
  const [session] = await connection.query('SELECT @@SESSION.sql_mode AS sql_mode, @@SESSION.time_zone AS time_zone');
  const sqlMode = mysqlText((session as Row[])[0]?.sql_mode) ?? '';
  const timeZone = mysqlText((session as Row[])[0]?.time_zone) ?? '+00:00';
  const created: CreatedObject[] = [];
  for (const plan of wanted) {
    const schema = plan.schema as string;
    const kind = plan.kind as MysqlObjectKind;
    if (existing.has(objectKey(kind, schema, plan.name))) continue;
    const { sql, after } = applyDefinerPolicy(plan, policy);
    try {
      await connection.query(`USE ${quoteIdent(schema)}`);
      if (plan.settings?.sql_mode !== undefined) await connection.query(`SET SESSION sql_mode = ${quoteLiteral(plan.settings.sql_mode)}`);
      if (plan.settings?.time_zone !== undefined) await connection.query(`SET SESSION time_zone = ${quoteLiteral(plan.settings.time_zone)}`);
      await connection.query(sql);
      created.push({ kind, schema, name: plan.name });
      for (const statement of after) await connection.query(statement);
    } catch (error) {
      const cause = classifyMysqlError(error, context);
      throw new FerryError(cause.code, `Creating ${kind} ${schemaObjectName(plan)} on the destination failed: ${cause.message} Fix the cause (or exclude the ${kind} from the job) and Resume.`, {
        retryable: cause.retryable,
        details: { ...cause.details, object: schemaObjectName(plan), kind, created },
        cause,
      });
    } finally {
      await connection.query(`SET SESSION sql_mode = ${quoteLiteral(sqlMode)}`);
      await connection.query(`SET SESSION time_zone = ${quoteLiteral(timeZone)}`);
    }
  }
  return created;
}

/** Drops one object the job created; a missing one is skipped. */
export async function dropMysqlSchemaObject(connection: MysqlConnection, object: CreatedObject): Promise<void> {
  if (object.schema === null || !isCreatedKind(object.kind)) return;
  await connection.query(`DROP ${object.kind.toUpperCase()} IF EXISTS ${quoteIdent(object.schema)}.${quoteIdent(object.name)}`);
}
