/**
 * The schema of a PostgreSQL-to-PostgreSQL job as `pg_dump --schema-only` writes it: every
 * object pg_dump knows (partitioned tables and partitions, views, materialized views,
 * functions, procedures, triggers, rules, policies, types, collations, extensions, comments,
 * grants, statistics, event triggers), for every server version pg_dump supports, read from
 * the job's snapshot (`--snapshot`) so that it matches the data exactly.
 *
 * The archive is split into entries (one per TOC entry, by the `-- Name: ...; Type: ...;`
 * headers pg_restore writes) and each entry gets a phase:
 * - pre-data: what the data needs (pg_dump's pre-data section, grants last);
 * - post-data: what is faster built after the data, and what the change applier needs before
 *   the incremental load (primary keys, unique and exclusion constraints, indexes, statistics);
 *   materialized views are refreshed at its end;
 * - promote: what would interfere with applying changes or fire on Ferry's own writes
 *   (foreign keys, triggers, rules, row-level security and policies, event triggers, and the
 *   comments of post-data objects): right after post-data in a one-time job, at promote in a
 *   continuous one.
 *
 * Applying a phase is idempotent: an entry whose object exists already on the destination is
 * skipped (and so are the entries that only decorate it), and a phase runs in one transaction.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { QualifiedName } from '../../core/schema.js';
import type { CreatedObject, SchemaObjectInfo, SchemaObjectPhase, SchemaScript, SchemaScriptEntry, SchemaScriptResult } from '../engine.js';
import { pgDumpToolsFor } from './pg-dump-tools.js';
import { quoteIdent, quoteLiteral } from './postgres-connection.js';

/** The schema of a PostgreSQL source as pg_dump wrote it, split into phases. */
export type PostgresSchemaScript = SchemaScript;

/** Ferry's own schema on a destination: never dumped, never created elsewhere. */
const FERRY_SCHEMA = '_ferry';

/** Post-data entries that wait for promote in a continuous job. */
const PROMOTE_TYPES = new Set(['FK CONSTRAINT', 'TRIGGER', 'RULE', 'POLICY', 'ROW SECURITY', 'EVENT TRIGGER', 'COMMENT', 'SECURITY LABEL']);

function phaseOf(type: string, section: 'pre' | 'post'): SchemaObjectPhase {
  if (section === 'pre') return 'pre-data';
  return PROMOTE_TYPES.has(type) ? 'promote' : 'post-data';
}

const HEADER = /^-- Name: (.*); Type: (.*); Schema: (.*); Owner: ?(.*)$/;

/**
 * Splits pg_restore's plain output into its prologue (the SET lines before the first entry)
 * and its entries. psql meta-commands (`\restrict`, `\unrestrict`) are dropped: the SQL is run
 * by Ferry, not psql.
 */
export function splitRestoreOutput(text: string, section: 'pre' | 'post'): { prologue: string; entries: SchemaScriptEntry[] } {
  const lines = text.split('\n');
  const prologue: string[] = [];
  const entries: SchemaScriptEntry[] = [];
  let current: { type: string; schema: string | null; name: string; lines: string[] } | null = null;
  const finish = () => {
    if (current === null) return;
    const sql = current.lines.filter((l) => !l.startsWith('\\')).join('\n').trim();
    entries.push({ type: current.type, schema: current.schema, name: current.name, phase: phaseOf(current.type, section), sql });
    current = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const header = HEADER.exec(line);
    // A header is "--", "-- Name: ...", "--": the "--" before it belongs to no statement.
    if (header !== null && lines[i - 1] === '--' && lines[i + 1] === '--') {
      finish();
      if (current === null && entries.length === 0 && prologue.at(-1) === '--') prologue.pop();
      current = { name: header[1] as string, type: header[2] as string, schema: header[3] === '-' ? null : (header[3] as string), lines: [] };
      i++;
      continue;
    }
    if (current === null) {
      if (line.startsWith('SET ') || line.startsWith('SELECT pg_catalog.set_config')) prologue.push(line);
    } else if (line === '--' && HEADER.test(lines[i + 1] ?? '')) {
      // the opening line of the next header
    } else {
      current.lines.push(line);
    }
  }
  finish();
  return { prologue: prologue.join('\n'), entries };
}

function run(program: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${program} ${signal !== null ? `was killed (${signal})` : `exited with ${String(code)}`}: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
  });
}

/** libpq's environment for a profile: password and TLS files, never on a command line. */
function libpqEnvironment(params: ConnectionParams, directory: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: params.host,
    PGPORT: String(params.route?.port ?? params.port),
    PGDATABASE: params.database ?? 'postgres',
    PGUSER: params.username,
    PGAPPNAME: 'ferry',
    PGCONNECT_TIMEOUT: '10',
  };
  delete env.PGSERVICE;
  // Through an SSH tunnel the socket goes to its local port; TLS still checks the real host name.
  if (params.route !== undefined) env.PGHOSTADDR = params.route.host;
  else delete env.PGHOSTADDR;
  if (params.password !== null) env.PGPASSWORD = params.password;
  else delete env.PGPASSWORD;
  const file = (name: string, content: string | undefined) => {
    if (content === undefined) return undefined;
    const path = join(directory, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  switch (params.tls.mode) {
    case 'none':
      env.PGSSLMODE = 'disable';
      break;
    case 'required':
      env.PGSSLMODE = 'require';
      break;
    case 'server-only':
    case 'server-client': {
      env.PGSSLMODE = 'verify-full';
      const ca = file('ca.pem', params.tls.caCertificate);
      if (ca !== undefined) env.PGSSLROOTCERT = ca;
      if (params.tls.mode === 'server-client') {
        const cert = file('client.pem', params.tls.clientCertificate);
        const key = file('client.key', params.tls.clientKey);
        if (cert !== undefined) env.PGSSLCERT = cert;
        if (key !== undefined) env.PGSSLKEY = key;
      }
      break;
    }
  }
  return env;
}

/**
 * pg_dump's object selection for the job's tables: the schemas that hold them (every object of
 * those schemas comes along), minus the tables of those schemas that the job leaves out, plus
 * the extensions their column types come from (a schema selection leaves every extension out,
 * so PostGIS's geometry would be missing on a fresh destination; pg_dump 14 and later).
 * Without include or exclude patterns the whole database is dumped (extensions and event
 * triggers included), Ferry's own schema excepted.
 */
function selectionArguments(selection: ObjectSelection, tables: QualifiedName[], excludedTables: QualifiedName[], extensions: string[], pgDumpMajor: number): string[] {
  const args = ['--exclude-schema', FERRY_SCHEMA];
  if (selection.include.length === 0 && selection.exclude.length === 0) return args;
  const schemas = [...new Set(tables.map((t) => t.schema))];
  for (const schema of schemas) args.push('--schema', pgDumpPattern(schema));
  if (pgDumpMajor >= 14) for (const extension of extensions) args.push('--extension', pgDumpPattern(extension));
  for (const table of excludedTables) if (schemas.includes(table.schema)) args.push('--exclude-table', `${pgDumpPattern(table.schema)}.${pgDumpPattern(table.name)}`);
  return args;
}

/** A name as a pg_dump pattern that matches only itself: quoted, with the pattern characters escaped. */
function pgDumpPattern(name: string): string {
  return `"${name.replace(/"/g, '""').replace(/([*?$])/g, '\\$1')}"`;
}

export interface DumpSchemaOptions {
  /** The exported snapshot the data is copied from; null to read the current state. */
  snapshotId: string | null;
  selection: ObjectSelection;
  /** Every selected table (leaves and roots alike), to narrow pg_dump to their schemas. */
  tables: QualifiedName[];
  /** Tables of those schemas that the selection leaves out. */
  excludedTables: QualifiedName[];
  /** The source's server_version_num. */
  serverVersionNum: number;
  /** The extensions the selected tables use (DatabaseSchema.extensions): dumped with the schemas. */
  extensions?: string[];
}

/** Runs pg_dump --schema-only on the source and splits its output into phases. */
export async function dumpPostgresSchema(params: ConnectionParams, options: DumpSchemaOptions): Promise<PostgresSchemaScript> {
  const tools = pgDumpToolsFor(options.serverVersionNum);
  const directory = mkdtempSync(join(tmpdir(), 'ferry-pgdump-'));
  try {
    const env = libpqEnvironment(params, directory);
    const archive = join(directory, 'schema.dump');
    const args = ['--schema-only', '--format=custom', '--file', archive, '--no-publications', '--no-subscriptions', ...selectionArguments(options.selection, options.tables, options.excludedTables, options.extensions ?? [], tools.major)];
    if (options.snapshotId !== null) args.push('--snapshot', options.snapshotId);
    try {
      await run(tools.pgDump, args, env, 10 * 60_000);
    } catch (error) {
      throw new FerryError('SCHEMA_ERROR', `pg_dump --schema-only failed on the source: ${(error as Error).message}. Fix the cause on the source (or the selection), then Restart the job.`, {
        retryable: /could not connect|connection to server|timeout|terminat/i.test((error as Error).message),
        cause: error,
      });
    }
    const restore = (section: 'pre-data' | 'post-data') => run(tools.pgRestore, ['--section', section, '--no-owner', '--file', '-', archive], env, 5 * 60_000);
    // Both sections at once: each pg_restore only reads the archive.
    const [preText, postText] = await Promise.all([restore('pre-data'), restore('post-data')]);
    const pre = splitRestoreOutput(preText, 'pre');
    const post = splitRestoreOutput(postText, 'post');
    // Grants come last in pre-data: they name objects of every kind.
    const preEntries = [...pre.entries.filter((e) => e.type !== 'ACL' && e.type !== 'DEFAULT ACL'), ...pre.entries.filter((e) => e.type === 'ACL' || e.type === 'DEFAULT ACL')];
    return { engine: 'postgresql', tool: tools.versionText, prologue: pre.prologue, entries: [...preEntries, ...post.entries] };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Kinds of the object report, from pg_dump's types. */
const REPORT_KINDS: Record<string, string> = {
  SCHEMA: 'schema', EXTENSION: 'extension', TYPE: 'type', DOMAIN: 'domain', COLLATION: 'collation', SEQUENCE: 'sequence',
  TABLE: 'table', VIEW: 'view', 'MATERIALIZED VIEW': 'materialized view', FUNCTION: 'function', PROCEDURE: 'procedure',
  AGGREGATE: 'aggregate', TRIGGER: 'trigger', 'EVENT TRIGGER': 'event trigger', RULE: 'rule', POLICY: 'policy',
  INDEX: 'index', CONSTRAINT: 'constraint', 'FK CONSTRAINT': 'foreign key', STATISTICS: 'statistics', COMMENT: 'comment',
  ACL: 'grant', DEFAULT: 'default', 'TABLE ATTACH': 'partition', 'ROW SECURITY': 'policy',
};

/** The script's entries as the object report lists them (ownership lines and the like left out). */
export function schemaObjectsOf(script: PostgresSchemaScript, partitionedTables: Set<string>): SchemaObjectInfo[] {
  const objects: SchemaObjectInfo[] = [];
  for (const entry of script.entries) {
    let kind = REPORT_KINDS[entry.type];
    if (kind === undefined) kind = entry.type.toLowerCase();
    if (entry.type === 'SEQUENCE OWNED BY' || entry.type === 'INDEX ATTACH' || entry.type === 'SHELL TYPE') continue;
    if (entry.type === 'TABLE' && partitionedTables.has(`${entry.schema ?? ''}.${entry.name}`)) kind = 'partitioned table';
    if (entry.type === 'ROW SECURITY') {
      objects.push({ kind: 'policy', schema: entry.schema, name: `row level security on ${entry.schema ?? ''}.${entry.name}`, definition: entry.sql });
      continue;
    }
    objects.push({ kind, schema: entry.schema, name: displayName(entry), definition: entry.sql });
  }
  return objects;
}

/** "orders orders_pkey" (table, object) becomes "orders_pkey on shop.orders". */
function displayName(entry: SchemaScriptEntry): string {
  if (['CONSTRAINT', 'FK CONSTRAINT', 'TRIGGER', 'RULE', 'POLICY'].includes(entry.type)) {
    const space = entry.name.indexOf(' ');
    if (space > 0) return `${entry.name.slice(space + 1)} on ${entry.schema ?? ''}.${entry.name.slice(0, space)}`;
  }
  if (entry.type === 'DEFAULT') return `default of ${entry.schema ?? ''}.${entry.name.replace(' ', '.')}`;
  return entry.name;
}

/** The leading word of a COMMENT/ACL tag names the kind of its object ("TABLE customer", "COLUMN t.c", "FUNCTION f(integer)"). */
function subjectOf(entry: SchemaScriptEntry): { type: string; name: string } | null {
  const match = /^(TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|FUNCTION|PROCEDURE|AGGREGATE|TYPE|DOMAIN|SCHEMA|COLUMN|INDEX|CONSTRAINT|TRIGGER|RULE|POLICY|COLLATION|EXTENSION|FOREIGN TABLE|EVENT TRIGGER|STATISTICS) (.*)$/.exec(entry.name);
  if (match === null) return null;
  return { type: match[1] as string, name: match[2] as string };
}

/** Destination existence checks by pg_dump type, each `$1` schema, `$2` name (tag). */
async function exists(client: pg.Client, entry: SchemaScriptEntry): Promise<boolean> {
  const schema = entry.schema;
  const qualified = schema === null ? quoteIdent(entry.name) : `${quoteIdent(schema)}.${quoteIdent(entry.name)}`;
  const one = async (sql: string, values: unknown[] = []) => ((await client.query(sql, values)).rows.length > 0);
  const tableAndName = () => {
    const space = entry.name.indexOf(' ');
    return { table: entry.name.slice(0, space), name: entry.name.slice(space + 1) };
  };
  switch (entry.type) {
    case 'SCHEMA':
      return one('SELECT 1 FROM pg_namespace WHERE nspname = $1', [entry.name]);
    case 'EXTENSION':
      return one('SELECT 1 FROM pg_extension WHERE extname = $1', [entry.name]);
    case 'TABLE':
    case 'VIEW':
    case 'MATERIALIZED VIEW':
    case 'SEQUENCE':
    case 'FOREIGN TABLE':
    case 'INDEX':
      return one('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [schema, entry.name]);
    case 'TYPE':
    case 'DOMAIN':
    case 'SHELL TYPE':
      return one('SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = $2', [schema, entry.name]);
    case 'FUNCTION':
    case 'PROCEDURE':
    case 'AGGREGATE':
      return one(`SELECT 1 WHERE to_regprocedure(${quoteLiteral(`${quoteIdent(schema ?? 'public')}.${quoteFunctionName(entry.name)}`)}) IS NOT NULL`);
    case 'COLLATION':
      return one('SELECT 1 FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE n.nspname = $1 AND c.collname = $2', [schema, entry.name]);
    case 'STATISTICS':
      return one('SELECT 1 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE n.nspname = $1 AND s.stxname = $2', [schema, entry.name]);
    case 'CONSTRAINT':
    case 'FK CONSTRAINT': {
      const { table, name } = tableAndName();
      return one('SELECT 1 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $3', [schema, table, name]);
    }
    case 'TRIGGER': {
      const { table, name } = tableAndName();
      return one('SELECT 1 FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND g.tgname = $3 AND NOT g.tgisinternal', [schema, table, name]);
    }
    case 'RULE': {
      const { table, name } = tableAndName();
      return one('SELECT 1 FROM pg_rules WHERE schemaname = $1 AND tablename = $2 AND rulename = $3', [schema, table, name]);
    }
    case 'POLICY': {
      const { table, name } = tableAndName();
      return one('SELECT 1 FROM pg_policies WHERE schemaname = $1 AND tablename = $2 AND policyname = $3', [schema, table, name]);
    }
    case 'EVENT TRIGGER':
      return one('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [entry.name]);
    case 'ROW SECURITY':
      return one(`SELECT 1 FROM pg_class WHERE oid = to_regclass(${quoteLiteral(qualified)}) AND relrowsecurity`);
    case 'INDEX ATTACH':
      return one('SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN (\'i\', \'I\')', [schema, entry.name]);
    case 'TABLE ATTACH':
      return one('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relispartition', [schema, entry.name]);
    default:
      return false;
  }
}

/** True when the table a foreign key's REFERENCES clause names exists (pg_dump writes it schema-qualified). */
async function referencedTableExists(client: pg.Client, sql: string): Promise<boolean> {
  const match = /\bREFERENCES\s+((?:"(?:[^"]|"")*"|[^\s("]+)\.(?:"(?:[^"]|"")*"|[^\s("]+))\s*\(/.exec(sql);
  if (match === null) return true;
  return (await client.query(`SELECT 1 WHERE to_regclass(${quoteLiteral(match[1] as string)}) IS NOT NULL`)).rows.length > 0;
}

/** "f(integer, text)" with the function name quoted, for to_regprocedure. */
function quoteFunctionName(tag: string): string {
  const paren = tag.indexOf('(');
  if (paren < 0) return quoteIdent(tag);
  return `${quoteIdent(tag.slice(0, paren))}${tag.slice(paren)}`;
}

/** Entries that only decorate another object: skipped with it. Key: the object they belong to. */
function ownerKey(entry: SchemaScriptEntry): string | null {
  const schema = entry.schema ?? '';
  switch (entry.type) {
    case 'DEFAULT':
      return `TABLE:${schema}.${entry.name.split(' ')[0] ?? ''}`;
    case 'SEQUENCE OWNED BY':
      return `SEQUENCE:${schema}.${entry.name}`;
    case 'COMMENT':
    case 'ACL':
    case 'SECURITY LABEL': {
      const subject = subjectOf(entry);
      if (subject === null) return null;
      if (subject.type === 'COLUMN') return `TABLE:${schema}.${subject.name.split('.')[0] ?? ''}`;
      const type = subject.type === 'TABLE' ? 'TABLE' : subject.type;
      return `${type}:${schema}.${subject.name}`;
    }
    default:
      return null;
  }
}

function keyOf(entry: SchemaScriptEntry): string {
  const type = ['VIEW', 'MATERIALIZED VIEW', 'FOREIGN TABLE'].includes(entry.type) ? 'TABLE' : entry.type;
  return `${type}:${entry.schema ?? ''}.${entry.name}`;
}

/** The roles a GRANT/REVOKE line names (`TO role`, `FROM role`), PUBLIC excepted. */
function grantees(line: string): string[] {
  const match = /\b(?:TO|FROM)\s+(.+?)(?:\s+WITH GRANT OPTION|\s+GRANTED BY .*)?;\s*$/i.exec(line);
  if (match === null) return [];
  return (match[1] as string).split(',').map((r) => r.trim()).map((r) => (r.startsWith('"') ? r.slice(1, -1).replace(/""/g, '"') : r)).filter((r) => r.toUpperCase() !== 'PUBLIC');
}

/** Roles that the script's grants name and the destination lacks. */
export async function missingGrantRoles(client: pg.Client, script: PostgresSchemaScript): Promise<string[]> {
  const named = new Set<string>();
  for (const entry of script.entries) {
    if (entry.type !== 'ACL' && entry.type !== 'DEFAULT ACL') continue;
    for (const line of entry.sql.split('\n')) for (const role of grantees(line)) named.add(role);
  }
  if (named.size === 0) return [];
  const present = new Set(((await client.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [[...named]])).rows as Array<{ rolname: string }>).map((r) => r.rolname));
  return [...named].filter((r) => !present.has(r)).sort();
}

/** The SQL of a grant entry without the lines that name a role the destination lacks. */
function withoutMissingRoles(sql: string, missing: Set<string>): string {
  return sql.split('\n').filter((line) => !grantees(line).some((r) => missing.has(r))).join('\n');
}


const CREATED_KINDS: Record<string, CreatedObject['kind']> = {
  SCHEMA: 'schema', TABLE: 'table', SEQUENCE: 'sequence', TYPE: 'type', DOMAIN: 'domain', EXTENSION: 'extension',
  VIEW: 'view', 'MATERIALIZED VIEW': 'materialized view', FUNCTION: 'function', PROCEDURE: 'procedure', AGGREGATE: 'aggregate',
  COLLATION: 'collation', 'EVENT TRIGGER': 'event trigger',
};

/** What the post-data phase builds ahead, on several connections: indexes and the constraints that own one. */
const PARALLEL_BUILD_TYPES = new Set(['CONSTRAINT', 'INDEX']);

/** maintenance_work_mem of the parallel builds: this budget shared by the builds that run at once, never below the server's own setting. */
export const INDEX_BUILD_MEMORY_BUDGET_MB = 1024;

/**
 * The maintenance_work_mem (MB) of a build that starts while `concurrent` builds (itself
 * included) can run until it ends: the budget divided among them, never below the server's
 * own setting (`serverMb`). The number of builds still running or queued only falls, so each
 * running build holds at most budget / (its count at its start) <= budget / (today's count):
 * the builds running at once never hold more than the budget together. A lone build (a table
 * whose only index is its primary key, or the last large index) gets the whole budget.
 */
export function indexBuildMemoryMb(concurrent: number, serverMb: number): number {
  return Math.max(Math.floor(serverMb), Math.floor(INDEX_BUILD_MEMORY_BUDGET_MB / Math.max(1, concurrent)));
}

/**
 * Builds the post-data indexes and constraints (primary keys, unique, exclusion) of the script
 * ahead of applySchemaPhase, on `connections` (each already connected to the destination), one
 * entry per connection at a time, each in its own transaction: the indexes of one table are
 * built side by side (CREATE INDEX takes a SHARE lock, which does not block another), and a
 * table's constraints come before its indexes (ADD CONSTRAINT takes ACCESS EXCLUSIVE, which
 * would hold them back). Each build's maintenance_work_mem is the budget divided among the
 * builds that can run beside it (indexBuildMemoryMb). Best effort: an entry that fails here (a lock conflict, a deadlock the server broke)
 * is left to applySchemaPhase, which builds what is still missing in its one transaction and
 * reports any real error. Not used with a schema mapping (the script's names are the
 * source's, and the mapping renames schemas only inside applySchemaPhase's transaction).
 * Resolves with the number of entries built.
 */
export async function buildIndexesInParallel(connections: pg.Client[], script: PostgresSchemaScript, log: (message: string) => void = () => undefined): Promise<number> {
  const entries = script.entries.filter((e) => e.phase === 'post-data' && PARALLEL_BUILD_TYPES.has(e.type));
  if (entries.length === 0 || connections.length === 0) return 0;
  // Constraints first (per table they exclude every other build), then every index.
  const waves = [entries.filter((e) => e.type === 'CONSTRAINT'), entries.filter((e) => e.type === 'INDEX')];
  const setting = await (connections[0] as pg.Client).query("SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) AS bytes");
  const serverMb = Number((setting.rows[0] as { bytes: string }).bytes) / 2 ** 20;
  for (const client of connections) await client.query(script.prologue);
  const memoryOf = new Map<pg.Client, number>();
  let built = 0;
  for (const wave of waves) {
    const queue = [...wave];
    let running = 0;
    await Promise.all(connections.map(async (client) => {
      for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) {
        running++;
        try {
          if (await exists(client, entry)) continue;
          // Counted when the build starts: the builds running now, this one, and those still queued.
          const memoryMb = indexBuildMemoryMb(Math.min(connections.length, running + queue.length), serverMb);
          if (memoryOf.get(client) !== memoryMb) {
            await client.query(`SET maintenance_work_mem = '${memoryMb}MB'`);
            memoryOf.set(client, memoryMb);
          }
          await client.query('BEGIN');
          await client.query(entry.sql);
          await client.query('COMMIT');
          built++;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          log(`building ${entry.type} ${entry.name} ahead failed (${String(error)}); the post-data step builds it`);
        } finally {
          running--;
        }
      }
    }));
  }
  for (const client of connections) await client.query('RESET maintenance_work_mem; SET search_path = pg_catalog, pg_temp').catch(() => undefined);
  return built;
}

/**
 * Applies the entries of one phase in one destination transaction, skipping what exists
 * already. `refreshMaterializedViews` refreshes every materialized view of the script at the
 * end (after the data, and again at promote).
 *
 * `schemaMapping` (source schema -> destination schema) is applied by renaming inside the
 * transaction: a destination schema already named like a source schema is set aside, each
 * mapped schema takes its source name while the script runs (pg_dump's SQL names the source's
 * schemas), then every name is put back. Objects that refer to a schema by name in their text
 * (function bodies, search_path settings) keep the source's name: verify says so.
 */
export async function applySchemaPhase(
  client: pg.Client,
  script: PostgresSchemaScript,
  phase: SchemaObjectPhase,
  options: { refreshMaterializedViews?: boolean; schemaMapping?: Record<string, string> } = {},
): Promise<SchemaScriptResult> {
  const entries = script.entries.filter((e) => e.phase === phase);
  const renames = Object.entries(options.schemaMapping ?? {}).filter(([from, to]) => from !== to);
  const toDestination = (schema: string | null) => (schema === null ? null : (options.schemaMapping?.[schema] ?? schema));
  const missingRoles = await missingGrantRoles(client, script);
  const missing = new Set(missingRoles);
  const skippedKeys = new Set<string>();
  const created: CreatedObject[] = [];
  let skipped = 0;
  const schemaExists = async (name: string) => (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])).rows.length > 0;
  await client.query('BEGIN');
  try {
    const held: Array<[string, string]> = [];
    for (const [index, [from, to]] of renames.entries()) {
      if (await schemaExists(from)) {
        const aside = `_ferry_aside_${index}_${Date.now().toString(36)}`;
        await client.query(`ALTER SCHEMA ${quoteIdent(from)} RENAME TO ${quoteIdent(aside)}`);
        held.push([aside, from]);
      }
      if (await schemaExists(to)) await client.query(`ALTER SCHEMA ${quoteIdent(to)} RENAME TO ${quoteIdent(from)}`);
      else if (!entries.some((e) => e.type === 'SCHEMA' && e.name === from)) await client.query(`CREATE SCHEMA ${quoteIdent(from)}`);
    }
    const statements: string[] = [script.prologue];
    for (const entry of entries) {
      const owner = ownerKey(entry);
      if ((owner !== null && skippedKeys.has(owner)) || (await exists(client, entry))) {
        skippedKeys.add(keyOf(entry));
        skipped++;
        continue;
      }
      if (entry.type === 'FK CONSTRAINT' && !(await referencedTableExists(client, entry.sql))) {
        // A foreign key to a table the job left out: kept only where the destination has that table (verify warns).
        skipped++;
        continue;
      }
      const sql = entry.type === 'ACL' || entry.type === 'DEFAULT ACL' ? withoutMissingRoles(entry.sql, missing) : entry.sql;
      if (sql.trim() !== '') statements.push(sql);
      const kind = CREATED_KINDS[entry.type];
      if (kind !== undefined) created.push({ kind, schema: toDestination(entry.schema), name: kind === 'schema' ? (toDestination(entry.name) ?? entry.name) : entry.name });
    }
    if (options.refreshMaterializedViews === true) {
      for (const entry of script.entries) {
        if (entry.type === 'MATERIALIZED VIEW' && entry.schema !== null) statements.push(`REFRESH MATERIALIZED VIEW ${quoteIdent(entry.schema)}.${quoteIdent(entry.name)};`);
      }
    }
    for (const statement of statements) await client.query(statement);
    // pg_dump's prologue empties the search path; the renames below need none.
    for (const [from, to] of renames) if (await schemaExists(from)) await client.query(`ALTER SCHEMA ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
    for (const [aside, original] of held) await client.query(`ALTER SCHEMA ${quoteIdent(aside)} RENAME TO ${quoteIdent(original)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.query('SET search_path = pg_catalog, pg_temp').catch(() => undefined);
  }
  return { created: [...created].sort((x, y) => DROP_ORDER.indexOf(x.kind) - DROP_ORDER.indexOf(y.kind)), skipped, missingRoles };
}

/**
 * Created objects are dropped newest first (Restart): listed so that a table goes before the
 * sequences, types and routines it uses, and views before the tables they read. An identity
 * column's sequence cannot be dropped before its table.
 */
const DROP_ORDER: Array<CreatedObject['kind']> = [
  'schema', 'extension', 'collation', 'type', 'domain', 'function', 'procedure', 'aggregate', 'sequence', 'table',
  'view', 'materialized view', 'event trigger', 'trigger', 'event',
];
