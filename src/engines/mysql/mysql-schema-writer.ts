/**
 * Creates the source schema on a MySQL/MariaDB destination: databases and tables (with their
 * primary keys, unique keys and checks) before the load, secondary indexes and foreign keys
 * after it, and the AUTO_INCREMENT counters last.
 *
 * From a MySQL/MariaDB source each table is created from its SHOW CREATE TABLE, exact but
 * for three things: the `AUTO_INCREMENT=<n>` option is left out (syncSequences sets the
 * counter from the source), and the secondary (non-unique) keys and foreign keys move to
 * post-data (faster loads; foreign keys cannot fail on load order). A key that leads with
 * the AUTO_INCREMENT column stays, since InnoDB requires one.
 *
 * From a PostgreSQL source tables are built from the schema model with the types of
 * docs/type-mapping.md (`mapPostgresColumnToMysql`). Text columns get a binary collation
 * (NO PAD, but CHAR: PAD SPACE), as PostgreSQL compares text: a case-insensitive MySQL
 * collation would make keys collide that are distinct on the source. What MySQL cannot
 * express is either refused (UNSUPPORTED_TYPE: arrays, ranges, interval, ...) or left out
 * with a warning that verify reports (`describePostgresSchemaForMysql`): defaults, checks,
 * indexes and foreign keys that do not translate, domain checks, a second identity column.
 * Long text and bytea columns in a unique key become varchar / varbinary that fit InnoDB's
 * key limit. A generated column is an ordinary column holding the source's values.
 *
 * Views, routines, triggers and events of a MySQL source (`schema.objects`) are created by
 * mysql-schema-objects.ts in the phase core/schema-object-plan.ts gives them: routines and views
 * after the tables in pre-data, triggers and events in post-data (`triggers: false` defers them
 * to promote), under the job's definer policy.
 *
 * DDL commits at once in MySQL, so unlike PostgreSQL the steps are not transactions: each is
 * idempotent instead (what exists is kept, only what is missing is created), so a step can
 * run again after a crash. A table created just before a crash, before the job recorded it,
 * is reused by the next attempt but not dropped by Restart.
 */
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { DatabaseSchema, ForeignKeySchema, QualifiedName, SchemaObjectPlan, SequenceSchema, TableSchema } from '../../core/schema.js';
import { hasReferentialAction, orphanRowsError } from '../../core/foreign-key-actions.js';
import { qualifiedName } from '../../core/schema.js';
import { planSchemaObjects } from '../../core/schema-object-plan.js';
import { isRefused, mapPostgresColumnToMysql } from '../../core/type-mapping.js';
import type { CreatedObject, DestinationTableState, PostDataOptions, SchemaObjectOptions, SchemaWriter, VerifyCheck } from '../engine.js';
import { createMysqlSchemaObjects, dropMysqlSchemaObject, parseDefinerPolicy } from './mysql-schema-objects.js';
import type { DefinerPolicy } from './mysql-schema-objects.js';
import { loadSql } from './load-sql.js';
import { STRICT_WRITE_SQL_MODE } from './enum-error-values.js';
import { connectMysql, endQuietly, errorContext, mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';
import type { MysqlErrorContext } from './mysql-error-classifier.js';

type Row = Record<string, unknown>;

/** What the schema writer needs to know of the destination server. */
export interface MysqlServerFlavor {
  mariadb: boolean;
}

/** A destination table's state plus the kind of relation that holds its name. */
export interface MysqlRelationState extends DestinationTableState {
  /** information_schema TABLE_TYPE when it exists: 'BASE TABLE', 'VIEW', 'SYSTEM VERSIONED', ... */
  kind: string | null;
}

function key(object: QualifiedName): string {
  return JSON.stringify([object.schema, object.name]);
}

function describe(object: QualifiedName): string {
  return `${object.schema}.${object.name}`;
}

/** Session settings: foreign keys between the job's tables must not stop TRUNCATE and DROP TABLE. */
const SCHEMA_SESSION_SQL = [
  `SET SESSION sql_mode = '${STRICT_WRITE_SQL_MODE}'`,
  'SET SESSION foreign_key_checks = 0',
];

// ---------------------------------------------------------------------------------------
// MySQL source: SHOW CREATE TABLE, rewritten.

/** One element of a SHOW CREATE TABLE body: a column, a key or a constraint. */
interface DefinitionElement {
  text: string;
  kind: 'column' | 'primary' | 'unique' | 'key' | 'fulltext' | 'spatial' | 'foreign' | 'check' | 'other';
  /** Index or constraint name, when it has one. */
  name: string | null;
  /** The columns of a key, in order. */
  columns: string[];
}

/** A SHOW CREATE TABLE statement taken apart. */
export interface NativeDefinition {
  /** The first line with the table name, e.g. "CREATE TABLE `t` (". */
  head: string;
  elements: DefinitionElement[];
  /** From ") ENGINE=..." to the end (options, partitioning). */
  tail: string;
}

const ELEMENT_START = /^ {2}(`|PRIMARY KEY|UNIQUE KEY|UNIQUE INDEX|KEY|INDEX|FULLTEXT|SPATIAL|CONSTRAINT|CHECK|PERIOD FOR|VECTOR|FOREIGN KEY)/;

function unquoteBackticks(text: string): string {
  return text.slice(1, -1).replace(/``/g, '`');
}

/** The backquoted names in a key's column list: "(`a`,`b`(10))" → [a, b]. */
function keyColumns(text: string): string[] {
  const open = text.indexOf('(');
  if (open === -1) return [];
  const names: string[] = [];
  const pattern = /`((?:[^`]|``)*)`/g;
  const body = text.slice(open);
  for (let match = pattern.exec(body); match !== null; match = pattern.exec(body)) {
    names.push((match[1] ?? '').replace(/``/g, '`'));
    // Skip to the next comma at depth 0 of the list (prefix lengths, ASC/DESC, functional parts).
    let depth = 0;
    let i = pattern.lastIndex;
    for (; i < body.length; i++) {
      const ch = body[i];
      if (ch === '(') depth++;
      else if (ch === ')') {
        if (depth === 0) break;
        depth--;
      } else if (ch === ',' && depth === 0) break;
    }
    if (body[i] === ')' && depth === 0) {
      pattern.lastIndex = body.length;
    } else {
      pattern.lastIndex = i + 1;
    }
  }
  return names;
}

function classifyElement(text: string): DefinitionElement {
  const body = text.trimStart();
  const named = (prefix: RegExp): string | null => {
    const match = prefix.exec(body);
    return match?.[1] === undefined ? null : unquoteBackticks(match[1]);
  };
  if (body.startsWith('`')) return { text, kind: 'column', name: named(/^(`(?:[^`]|``)*`)/), columns: [] };
  if (body.startsWith('PRIMARY KEY')) return { text, kind: 'primary', name: 'PRIMARY', columns: keyColumns(body) };
  if (/^UNIQUE (KEY|INDEX)/.test(body)) {
    return { text, kind: 'unique', name: named(/^UNIQUE (?:KEY|INDEX) (`(?:[^`]|``)*`)/), columns: keyColumns(body.replace(/^UNIQUE (?:KEY|INDEX) `(?:[^`]|``)*`/, '')) };
  }
  if (/^(KEY|INDEX) /.test(body)) {
    return { text, kind: 'key', name: named(/^(?:KEY|INDEX) (`(?:[^`]|``)*`)/), columns: keyColumns(body.replace(/^(?:KEY|INDEX) `(?:[^`]|``)*`/, '')) };
  }
  if (/^FULLTEXT /.test(body)) return { text, kind: 'fulltext', name: named(/^FULLTEXT (?:KEY|INDEX) (`(?:[^`]|``)*`)/), columns: [] };
  if (/^SPATIAL /.test(body)) return { text, kind: 'spatial', name: named(/^SPATIAL (?:KEY|INDEX) (`(?:[^`]|``)*`)/), columns: [] };
  if (/^CONSTRAINT `(?:[^`]|``)*` FOREIGN KEY/.test(body)) return { text, kind: 'foreign', name: named(/^CONSTRAINT (`(?:[^`]|``)*`)/), columns: [] };
  if (/^CONSTRAINT `(?:[^`]|``)*` CHECK/.test(body)) return { text, kind: 'check', name: named(/^CONSTRAINT (`(?:[^`]|``)*`)/), columns: [] };
  return { text, kind: 'other', name: null, columns: [] };
}

/** Takes SHOW CREATE TABLE apart into its head, elements (one per column, key, constraint) and tail. */
export function parseNativeDefinition(definition: string): NativeDefinition {
  const lines = definition.split('\n');
  const head = lines[0] ?? '';
  if (!/^CREATE TABLE `(?:[^`]|``)+` \($/.test(head)) {
    throw new FerryError('SCHEMA_ERROR', `The source's table definition does not start as SHOW CREATE TABLE prints it ("${head.slice(0, 80)}"); Ferry cannot recreate the table from it.`);
  }
  const tailIndex = lines.findIndex((line, i) => i > 0 && line.startsWith(')'));
  if (tailIndex === -1) throw new FerryError('SCHEMA_ERROR', 'The source\'s table definition has no closing ") ENGINE=..." line; Ferry cannot recreate the table from it.');
  const blocks: string[] = [];
  for (const line of lines.slice(1, tailIndex)) {
    if (ELEMENT_START.test(line) || blocks.length === 0) blocks.push(line);
    else blocks[blocks.length - 1] += `\n${line}`;
  }
  const elements = blocks.map((block, i) => classifyElement(i < blocks.length - 1 && block.endsWith(',') ? block.slice(0, -1) : block));
  return { head, elements, tail: lines.slice(tailIndex).join('\n') };
}

/** The AUTO_INCREMENT column of a parsed definition, or null. */
function autoIncrementColumn(parsed: NativeDefinition): string | null {
  const column = parsed.elements.find((e) => e.kind === 'column' && /\sAUTO_INCREMENT\b/.test(e.text));
  return column?.name ?? null;
}

/** The elements that move to post-data: non-unique keys (but one leading with the AUTO_INCREMENT column) and foreign keys. */
function postDataElements(parsed: NativeDefinition): { keys: DefinitionElement[]; foreign: DefinitionElement[] } {
  const auto = autoIncrementColumn(parsed);
  let autoKeyKept = auto === null || parsed.elements.some((e) => (e.kind === 'primary' || e.kind === 'unique') && e.columns[0] === auto);
  const keys: DefinitionElement[] = [];
  for (const element of parsed.elements) {
    if (element.kind !== 'key' && element.kind !== 'fulltext' && element.kind !== 'spatial') continue;
    if (!autoKeyKept && element.kind === 'key' && element.columns[0] === auto) {
      // InnoDB needs an index that starts with the AUTO_INCREMENT column when the table is created.
      autoKeyKept = true;
      continue;
    }
    keys.push(element);
  }
  return { keys, foreign: parsed.elements.filter((e) => e.kind === 'foreign') };
}

/**
 * A column element with the spatial column's SRID attribute when SHOW CREATE TABLE left it
 * out: MariaDB never prints its `REF_SYSTEM_ID=n`; MySQL 8 prints `/*!80003 SRID n *\/`,
 * which MariaDB would not read, so for MariaDB it becomes REF_SYSTEM_ID (the MySQL 8 paths are
 * untested here: no MySQL 8 server runs in the tests).
 */
function withSridAttribute(element: DefinitionElement, table: TableSchema, flavor: MysqlServerFlavor): string {
  if (element.kind !== 'column' || element.name === null) return element.text;
  const srid = table.columns.find((c) => c.name === element.name)?.srid;
  if (srid === undefined || srid === 0) return element.text;
  const text = element.text.replace(/\s*\/\*!80003 SRID \d+ \*\//, '');
  if (/\bREF_SYSTEM_ID\s*=/i.test(text)) return text;
  const attribute = flavor.mariadb ? ` REF_SYSTEM_ID=${srid}` : ` /*!80003 SRID ${srid} */`;
  return text.replace(/^(\s*`(?:[^`]|``)*`\s+[a-z]+)/i, `$1${attribute}`);
}

/**
 * The CREATE TABLE for a MySQL source table: its SHOW CREATE TABLE with the table name
 * qualified by its database, without the `AUTO_INCREMENT=<n>` option, without the keys and
 * foreign keys that post-data creates, with spatial columns' SRID attributes in the
 * destination's syntax.
 */
export function createTableFromNative(table: TableSchema, flavor: MysqlServerFlavor = { mariadb: true }): string {
  const parsed = parseNativeDefinition(table.nativeDefinition ?? '');
  const moved = postDataElements(parsed);
  const skip = new Set<DefinitionElement>([...moved.keys, ...moved.foreign]);
  const body = parsed.elements.filter((e) => !skip.has(e)).map((e) => withSridAttribute(e, table, flavor));
  const tail = parsed.tail.replace(/^(\)[^\n]*?) AUTO_INCREMENT=\d+/, '$1');
  return `CREATE TABLE ${quoteQualified(table)} (\n${body.join(',\n')}\n${tail}`;
}

/** The post-data statements of a MySQL source table: ALTER TABLE ... ADD per missing key (FULLTEXT alone: InnoDB builds one at a time). */
export function nativeIndexStatements(table: TableSchema): Array<{ name: string; sql: string }> {
  const parsed = parseNativeDefinition(table.nativeDefinition ?? '');
  return postDataElements(parsed).keys.map((element) => ({
    name: element.name ?? '',
    sql: `ALTER TABLE ${quoteQualified(table)} ADD ${element.text.trim()}`,
  }));
}

/** The source's charset and collation from a SHOW CREATE TABLE tail. */
function tableCharset(table: TableSchema): { charset: string; collation: string | null } | null {
  if (table.nativeDefinition === undefined) return null;
  const tail = parseNativeDefinition(table.nativeDefinition).tail;
  const charset = /DEFAULT CHARSET=(\w+)/.exec(tail)?.[1];
  if (charset === undefined) return null;
  return { charset, collation: /COLLATE=(\w+)/.exec(tail)?.[1] ?? null };
}

// ---------------------------------------------------------------------------------------
// PostgreSQL source: the schema model, translated.

/** A PostgreSQL column the destination cannot hold. */
export interface RefusedColumn {
  table: QualifiedName;
  column: string;
  type: string;
  /** The mapping's message: what the column is and what to do. */
  reason: string;
}

/** One translated table. */
export interface PlannedPostgresTable {
  table: TableSchema;
  createSql: string;
  /** Secondary indexes, created after the data. */
  indexes: Array<{ name: string; sql: string }>;
  foreignKeys: Array<{ name: string; sql: string; referencedTable: QualifiedName }>;
  autoIncrementColumn: string | null;
}

/** A PostgreSQL schema translated for MySQL/MariaDB, with what could not be. */
export interface PostgresSchemaPlan {
  tables: PlannedPostgresTable[];
  refused: RefusedColumn[];
  /** Objects left out or changed, each with why (verify reports them as warnings). */
  warnings: Array<{ object: string; message: string }>;
}

/** A string literal for MySQL DDL (the writer's session has backslash escapes on). */
export function ddlLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\0/g, '\\0')}'`;
}

/** A PostgreSQL identifier as written in an expression ("Name" or name) → its name. */
function pgIdentifier(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replace(/""/g, '"') : text;
}

const PG_IDENTIFIER = /"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*/y;
/** Functions that mean the same in both dialects, by their MySQL name (PostgreSQL's length counts characters). */
const SAFE_FUNCTIONS: Record<string, string> = {
  lower: 'lower',
  upper: 'upper',
  length: 'char_length',
  char_length: 'char_length',
  character_length: 'char_length',
  abs: 'abs',
  coalesce: 'coalesce',
  nullif: 'nullif',
  greatest: 'greatest',
  least: 'least',
  floor: 'floor',
  ceil: 'ceil',
  ceiling: 'ceiling',
  mod: 'mod',
};
const KEYWORDS = new Set(['and', 'or', 'not', 'is', 'null', 'true', 'false', 'in', 'between', 'like', 'case', 'when', 'then', 'else', 'end', 'distinct', 'from']);

/**
 * Translates a simple PostgreSQL expression (a check constraint) into MySQL: casts (`::type`) are dropped, identifiers backquoted, `ANY (ARRAY[...])` becomes
 * `IN (...)`. Returns null for anything beyond comparisons, arithmetic, boolean logic,
 * literals and a few common functions: what is not understood is not guessed.
 */
export function translatePostgresExpression(expression: string, columns: ReadonlySet<string>): string | null {
  let text = expression.trim();
  // `= ANY (ARRAY['a'::text, 'b'::text])` → `IN ('a', 'b')`
  text = text.replace(/(=|<>) ANY \(ARRAY\[([^\]]*)\]\)/g, (_, op: string, list: string) => `${op === '=' ? 'IN' : 'NOT IN'} (${list})`);
  text = text.replace(/\(ARRAY\[([^\]]*)\]\)/g, '($1)');
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === "'") {
      let j = i + 1;
      let value = '';
      for (; j < text.length; j++) {
        if (text[j] === "'" && text[j + 1] === "'") {
          value += "'";
          j++;
        } else if (text[j] === "'") break;
        else value += text[j];
      }
      if (j >= text.length) return null;
      out += ddlLiteral(value);
      i = j + 1;
      continue;
    }
    if (ch === ':' && text[i + 1] === ':') {
      // A cast: skip the type name (possibly qualified, multi-word, with modifiers and []).
      const cast = /^::(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\.(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))?(?: (?:varying|precision|with time zone|without time zone))*(?:\(\d+(?:,\d+)?\))?(?:\[\])?/.exec(text.slice(i));
      if (cast === null) return null;
      i += cast[0].length;
      continue;
    }
    if (/[A-Za-z_"]/.test(ch)) {
      PG_IDENTIFIER.lastIndex = i;
      const match = PG_IDENTIFIER.exec(text);
      if (match === null) return null;
      const word = match[0];
      const name = pgIdentifier(word);
      i += word.length;
      const next = text.slice(i).trimStart();
      if (!word.startsWith('"') && KEYWORDS.has(name.toLowerCase())) {
        out += name.toLowerCase() === 'true' ? '1' : name.toLowerCase() === 'false' ? '0' : name.toUpperCase();
        continue;
      }
      if (next.startsWith('(') && !word.startsWith('"')) {
        const mysqlName = SAFE_FUNCTIONS[name.toLowerCase()];
        if (mysqlName === undefined) return null;
        out += mysqlName;
        continue;
      }
      if (!columns.has(name)) return null;
      out += quoteIdent(name);
      continue;
    }
    if (/[0-9.]/.test(ch)) {
      const number = /^\d+(\.\d+)?([eE][+-]?\d+)?|^\.\d+/.exec(text.slice(i));
      if (number === null) return null;
      out += number[0];
      i += number[0].length;
      continue;
    }
    const operator = /^(<>|<=|>=|!=|\|\||[-+*/%<>=(),\s])/.exec(text.slice(i));
    if (operator === null) return null;
    // PostgreSQL's || concatenates (MySQL's is OR); its / of integers truncates (MySQL's does not).
    if (operator[0] === '||' || operator[0] === '/') return null;
    out += operator[0];
    i += operator[0].length;
  }
  return out;
}

/** Parses `CREATE [UNIQUE] INDEX name ON s.t USING btree (a, b DESC)` into a MySQL key, or null when it does not translate. */
export function translatePostgresIndex(definition: string): { unique: boolean; name: string; columns: Array<{ name: string; descending: boolean }> } | null {
  const match = /^CREATE (UNIQUE )?INDEX ("(?:[^"]|"")+"|\S+) ON (?:ONLY )?\S+ USING (btree|hash) \((.*)\)(?: INCLUDE \(.*\))?(?: NULLS NOT DISTINCT)?$/.exec(definition.trim());
  if (match === null) return null;
  const parts = (match[4] ?? '').split(',').map((p) => p.trim());
  const columns: Array<{ name: string; descending: boolean }> = [];
  for (const part of parts) {
    const column = /^("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?: (ASC|DESC))?(?: NULLS (?:FIRST|LAST))?$/.exec(part);
    if (column === null) return null;
    columns.push({ name: pgIdentifier(column[1] ?? ''), descending: column[2] === 'DESC' });
  }
  return { unique: match[1] !== undefined, name: pgIdentifier(match[2] ?? ''), columns };
}

/**
 * Up to three rows of `table` (their referencing columns, as `col=value`) whose referenced row
 * `foreignKey`'s table lacks: rows written with foreign_key_checks=0. NULL in any referencing
 * column references nothing (MATCH SIMPLE).
 */
export async function findOrphanRows(connection: MysqlConnection, table: QualifiedName, foreignKey: ForeignKeySchema): Promise<string[]> {
  const columns = foreignKey.columns ?? [];
  const referenced = foreignKey.referencedColumns ?? [];
  if (columns.length === 0 || columns.length !== referenced.length) return [];
  const present = columns.map((c) => `c.${quoteIdent(c)} IS NOT NULL`).join(' AND ');
  const match = columns.map((c, i) => `p.${quoteIdent(referenced[i] as string)} = c.${quoteIdent(c)}`).join(' AND ');
  const [rows] = await connection.query(
    `SELECT ${columns.map((c, i) => `c.${quoteIdent(c)} AS k${i}`).join(', ')} FROM ${quoteQualified(table)} AS c` +
      ` WHERE ${present} AND NOT EXISTS (SELECT 1 FROM ${quoteQualified(foreignKey.referencedTable)} AS p WHERE ${match}) LIMIT 3`,
  );
  return (rows as Row[]).map((row) => columns.map((c, i) => `${c}=${mysqlText(row[`k${i}`]) ?? 'NULL'}`).join(', '));
}

/** Parses `FOREIGN KEY (a) REFERENCES s.t(b) ON DELETE CASCADE` into MySQL, or null when it does not translate. */
export function translatePostgresForeignKey(definition: string, referenced: QualifiedName): string | null {
  const match = /^FOREIGN KEY \((.+?)\) REFERENCES \S+?\((.+?)\)((?: MATCH (?:FULL|SIMPLE))?(?: ON UPDATE (?:CASCADE|SET NULL|RESTRICT|NO ACTION))?(?: ON DELETE (?:CASCADE|SET NULL|RESTRICT|NO ACTION))?)((?: NOT)? DEFERRABLE(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)?( NOT VALID)?$/.exec(definition.trim());
  if (match === null) return null;
  if (match[4] !== undefined && /INITIALLY DEFERRED/.test(match[4])) return null;
  const list = (text: string) => text.split(',').map((c) => quoteIdent(pgIdentifier(c.trim())));
  const actions = (match[3] ?? '').replace(/ MATCH (FULL|SIMPLE)/, '');
  return `FOREIGN KEY (${list(match[1] ?? '').join(', ')}) REFERENCES ${quoteQualified(referenced)} (${list(match[2] ?? '').join(', ')})${actions}`;
}

/** The collation of text columns: binary, as PostgreSQL compares under its default deterministic collations. */
function textCollation(flavor: MysqlServerFlavor, padded: boolean): string {
  if (padded) return 'utf8mb4_bin';
  return flavor.mariadb ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
}

/** InnoDB's limit on the bytes of one key. */
const KEY_BYTES = 3072;
/** What a key part of a fixed-size type (numbers, dates, ...) is counted for. */
const FIXED_KEY_PART_BYTES = 16;

/** The most bytes a value of a MySQL type takes in a key (utf8mb4: 4 per character); Infinity for TEXT / BLOB. */
function keyPartBytes(type: string): number {
  if (/^(tinytext|text|mediumtext|longtext|tinyblob|blob|mediumblob|longblob|json)$/.test(type)) return Infinity;
  const match = /^(char|varchar|binary|varbinary)\((\d+)\)/.exec(type);
  if (match === null) return FIXED_KEY_PART_BYTES;
  return Number(match[2]) * (match[1] === 'char' || match[1] === 'varchar' ? 4 : 1);
}

/**
 * The bytes each text or binary part of a key may take so that the key fits InnoDB's limit,
 * or null when the key fits as it is.
 */
function keyShare(types: string[]): number | null {
  const sizes = types.map(keyPartBytes);
  if (sizes.reduce((a, b) => a + b, 0) <= KEY_BYTES) return null;
  const variable = types.filter((t) => /^(char|varchar|binary|varbinary)\(|^(tinytext|text|mediumtext|longtext|tinyblob|blob|mediumblob|longblob)$/.test(t)).length;
  const fixed = sizes.length - variable;
  return Math.max(4, Math.floor((KEY_BYTES - fixed * FIXED_KEY_PART_BYTES) / Math.max(1, variable)));
}

/**
 * Translates a PostgreSQL schema for MySQL/MariaDB. Pure: the statements, the columns that
 * are refused and what is left out.
 */
export function planPostgresSchema(schema: DatabaseSchema, flavor: MysqlServerFlavor): PostgresSchemaPlan {
  const refused: RefusedColumn[] = [];
  const warnings: Array<{ object: string; message: string }> = [];
  const tables: PlannedPostgresTable[] = [];
  const tableNames = new Set(schema.tables.map(key));

  for (const table of schema.tables) {
    const name = describe(table);
    const columnNames = new Set(table.columns.map((c) => c.name));
    const types = new Map<string, { type: string; text: boolean; binary: boolean; padded: boolean; defaultSql: string | null; autoIncrement: boolean }>();
    for (const column of table.columns) {
      const mapped = mapPostgresColumnToMysql(table, column, { enums: schema.enums, domains: schema.domains }, flavor.mariadb ? 'mariadb' : 'mysql');
      if (isRefused(mapped)) {
        refused.push({ table: { schema: table.schema, name: table.name }, column: column.name, type: column.nativeType, reason: mapped.unsupported });
        continue;
      }
      for (const warning of mapped.warnings) warnings.push({ object: `${name}.${column.name}`, message: warning });
      const type = mapped.nativeType;
      types.set(column.name, {
        type,
        text: /^(char|varchar|tinytext|text|mediumtext|longtext|enum)\b/.test(type),
        binary: /^(binary|varbinary|tinyblob|blob|mediumblob|longblob)\b/.test(type),
        padded: type.startsWith('char('),
        defaultSql: mapped.defaultExpression,
        autoIncrement: mapped.autoIncrement,
      });
    }

    // Keys: long text and bytea columns in a unique key become varchar / varbinary (InnoDB cannot key longtext).
    const translatedIndexes = table.indexes.map((index) => ({ index, parsed: translatePostgresIndex(index.definition) }));
    const uniqueKeys: string[][] = [
      ...(table.primaryKey === null ? [] : [table.primaryKey.columns]),
      ...table.uniqueConstraints.map((u) => u.columns),
      ...translatedIndexes.filter((t) => t.parsed?.unique === true).map((t) => (t.parsed?.columns ?? []).map((c) => c.name)),
    ];
    for (const columns of uniqueKeys) {
      const share = keyShare(columns.map((c) => types.get(c)?.type ?? ''));
      for (const c of columns) {
        const current = types.get(c);
        if (share === null || current === undefined || !(current.text || current.binary) || keyPartBytes(current.type) <= share) continue;
        const narrowed = current.binary ? `varbinary(${share})` : `varchar(${Math.floor(share / 4)})`;
        types.set(c, { ...current, type: narrowed, padded: false });
        warnings.push({
          object: `${name}.${c}`,
          message: `part of a unique key, so it becomes ${narrowed} (InnoDB keys hold at most ${KEY_BYTES} bytes): longer values are refused at load`,
        });
      }
    }

    // AUTO_INCREMENT: the first identity or serial column (MySQL allows one per table).
    const autoColumns = table.columns.filter((c) => types.get(c.name)?.autoIncrement === true);
    const auto = autoColumns[0] ?? null;
    for (const other of autoColumns.slice(1)) {
      warnings.push({ object: `${name}.${other.name}`, message: `MySQL allows one AUTO_INCREMENT column per table (${auto?.name ?? ''} has it here): this identity/serial column becomes a plain column without a default` });
    }

    const lines: string[] = [];
    for (const column of table.columns) {
      const mapped = types.get(column.name);
      if (mapped === undefined) continue;
      const parts = [quoteIdent(column.name), mapped.type];
      if (mapped.text) parts.push(`COLLATE ${textCollation(flavor, mapped.padded)}`);
      // A generated column holds the values computed on the source (docs/type-mapping.md): no expression.
      if (!column.nullable) parts.push('NOT NULL');
      if (column === auto) parts.push('AUTO_INCREMENT');
      else if (mapped.defaultSql !== null && !mapped.autoIncrement) parts.push(`DEFAULT ${mapped.defaultSql}`);
      lines.push(parts.join(' '));
    }
    if (table.primaryKey !== null) lines.push(`PRIMARY KEY (${table.primaryKey.columns.map(quoteIdent).join(', ')})`);
    for (const unique of table.uniqueConstraints) lines.push(`UNIQUE KEY ${quoteIdent(unique.name)} (${unique.columns.map(quoteIdent).join(', ')})`);
    if (auto !== null) {
      const keyed = [table.primaryKey?.columns ?? [], ...table.uniqueConstraints.map((u) => u.columns)].some((k) => k[0] === auto.name);
      // InnoDB needs an index that starts with the AUTO_INCREMENT column.
      if (!keyed) lines.push(`KEY ${quoteIdent(`${auto.name}_auto_increment`.slice(0, 64))} (${quoteIdent(auto.name)})`);
    }
    for (const check of table.checkConstraints) {
      const body = /^CHECK \((.*)\)( NOT VALID)?$/s.exec(check.definition.trim());
      const expression = body === null ? null : translatePostgresExpression(body[1] ?? '', columnNames);
      if (expression === null) {
        warnings.push({ object: `${name}.${check.name}`, message: `the check ${check.definition} does not translate to MySQL and is left out` });
        continue;
      }
      lines.push(`CONSTRAINT ${quoteIdent(check.name)} CHECK (${expression})`);
    }
    const createSql = `CREATE TABLE ${quoteQualified(table)} (\n  ${lines.join(',\n  ')}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${textCollation(flavor, false)}`;

    const indexes: Array<{ name: string; sql: string }> = [];
    for (const { index, parsed } of translatedIndexes) {
      if (parsed === null || parsed.columns.some((c) => !types.has(c.name))) {
        warnings.push({ object: `${name}.${index.name}`, message: `the index ${index.definition} does not translate to MySQL (expressions, partial indexes, other methods) and is left out` });
        continue;
      }
      // A non-unique key may index a prefix of a long value; the columns of a unique one were narrowed above.
      const share = parsed.unique ? null : keyShare(parsed.columns.map((c) => types.get(c.name)?.type ?? ''));
      const parts = parsed.columns.map((c) => {
        const mapped = types.get(c.name);
        const long = share !== null && mapped !== undefined && (mapped.text || mapped.binary) && keyPartBytes(mapped.type) > share;
        const prefix = long && mapped !== undefined ? `(${mapped.binary ? share : Math.floor(share / 4)})` : '';
        return `${quoteIdent(c.name)}${prefix}${c.descending ? ' DESC' : ''}`;
      });
      if (parsed.columns.some((c) => types.get(c.name)?.type === 'json')) {
        warnings.push({ object: `${name}.${index.name}`, message: 'MySQL cannot index a json column; the index is left out' });
        continue;
      }
      indexes.push({ name: index.name, sql: `ALTER TABLE ${quoteQualified(table)} ADD ${parsed.unique ? 'UNIQUE ' : ''}KEY ${quoteIdent(index.name)} (${parts.join(', ')})` });
    }
    const foreignKeys: PlannedPostgresTable['foreignKeys'] = [];
    for (const foreignKey of table.foreignKeys) {
      const translated = translatePostgresForeignKey(foreignKey.definition, foreignKey.referencedTable);
      if (translated === null) {
        warnings.push({ object: `${name}.${foreignKey.name}`, message: `the foreign key ${foreignKey.definition} does not translate to MySQL (deferred, SET DEFAULT, column lists) and is left out` });
        continue;
      }
      if (!tableNames.has(key(foreignKey.referencedTable))) {
        warnings.push({ object: `${name}.${foreignKey.name}`, message: `it references ${describe(foreignKey.referencedTable)}, which the job does not copy: created only if that table exists on the destination` });
      }
      foreignKeys.push({ name: foreignKey.name, sql: `ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(foreignKey.name)} ${translated}`, referencedTable: foreignKey.referencedTable });
    }
    tables.push({ table, createSql, indexes, foreignKeys, autoIncrementColumn: auto?.name ?? null });
  }
  return { tables, refused, warnings };
}

/** The UNSUPPORTED_TYPE error for refused columns, naming each and what to do. */
export function unsupportedTypeError(refused: RefusedColumn[]): FerryError {
  return new FerryError('UNSUPPORTED_TYPE', `${refused.length === 1 ? 'A column' : `${refused.length} columns`} cannot be created on MySQL/MariaDB. ${refused.map((r) => r.reason).join(' ')}`, {
    details: { columns: refused.map((r) => `${describe(r.table)}.${r.column}`) },
  });
}

/**
 * What verify reports about creating a PostgreSQL schema on MySQL/MariaDB: an error naming
 * the refused columns, and a warning per object left out or changed.
 */
export function describePostgresSchemaForMysql(schema: DatabaseSchema, flavor: MysqlServerFlavor): VerifyCheck[] {
  if (schema.engine !== 'postgresql') return [];
  const plan = planPostgresSchema(schema, flavor);
  const checks: VerifyCheck[] = [];
  if (plan.refused.length > 0) {
    checks.push({
      code: 'UNSUPPORTED_TYPE',
      side: 'destination',
      severity: 'error',
      message: unsupportedTypeError(plan.refused).message,
      objects: plan.refused.map((r) => `${describe(r.table)}.${r.column}`),
    });
  }
  if (plan.warnings.length > 0) {
    checks.push({
      code: 'SCHEMA_TRANSLATION',
      side: 'destination',
      severity: 'warning',
      message: `Some PostgreSQL schema objects change or are left out on MySQL/MariaDB: ${plan.warnings.map((w) => `${w.object}: ${w.message}`).join('; ')}.`,
      objects: plan.warnings.map((w) => w.object),
    });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------

/**
 * The plan of the schema's objects for a MySQL/MariaDB destination, with the one-time phases
 * (the caller decides when the 'post-data' ones run: after the data, or at promote).
 */
export function planObjectsForMysql(schema: DatabaseSchema): SchemaObjectPlan[] {
  return planSchemaObjects(schema.objects ?? [], { sourceEngine: schema.engine, destinationEngine: 'mysql', jobType: 'one-time', tables: schema.tables.map(qualifiedName) });
}

export async function openMysqlSchemaWriter(params: ConnectionParams, options: SchemaObjectOptions = {}): Promise<MysqlSchemaWriter> {
  const definerPolicy = parseDefinerPolicy(options.definerPolicy);
  const context = errorContext(params, { operation: 'ddl' });
  const connection = await connectMysql(params, { context });
  try {
    for (const statement of SCHEMA_SESSION_SQL) await connection.query(statement);
    const [rows] = await connection.query('SELECT VERSION() AS version');
    const version = mysqlText((rows as Row[])[0]?.version) ?? '';
    return new MysqlSchemaWriter(connection, context, { mariadb: /mariadb/i.test(version) }, definerPolicy);
  } catch (error) {
    await endQuietly(connection);
    throw classifyMysqlError(error, context);
  }
}

export class MysqlSchemaWriter implements SchemaWriter {
  constructor(
    private readonly connection: MysqlConnection,
    private readonly context: MysqlErrorContext,
    readonly flavor: MysqlServerFlavor,
    private readonly definerPolicy: DefinerPolicy = { kind: 'keep' },
  ) {}

  async inspectTables(tables: QualifiedName[]): Promise<DestinationTableState[]> {
    try {
      return (await this.inspectRelations(tables)).map(({ kind: _kind, ...state }) => state);
    } catch (error) {
      throw classifyMysqlError(error, this.context);
    }
  }

  /** Like inspectTables, with the kind of relation that holds each name. */
  async inspectRelations(tables: QualifiedName[]): Promise<MysqlRelationState[]> {
    if (tables.length === 0) return [];
    const [rows] = await this.connection.query(loadSql('table-states.sql'), [[...new Set(tables.map((t) => t.schema))]]);
    const found = new Map<string, { kind: string; columns: string[] }>();
    for (const row of rows as Row[]) {
      const k = key({ schema: mysqlText(row.table_schema) ?? '', name: mysqlText(row.table_name) ?? '' });
      let entry = found.get(k);
      if (entry === undefined) {
        entry = { kind: mysqlText(row.table_type) ?? '', columns: [] };
        found.set(k, entry);
      }
      const column = mysqlText(row.column_name);
      if (column !== null) entry.columns.push(column);
    }
    const states: MysqlRelationState[] = [];
    for (const table of tables) {
      const entry = found.get(key(table));
      let hasRows = false;
      const isTable = entry !== undefined && entry.kind !== 'VIEW' && entry.kind !== 'SYSTEM VIEW';
      if (isTable) {
        const [present] = await this.connection.query(`SELECT 1 AS present FROM ${quoteQualified(table)} LIMIT 1`);
        hasRows = (present as Row[]).length > 0;
      }
      states.push({ table: { schema: table.schema, name: table.name }, exists: entry !== undefined, hasRows, columns: entry?.columns ?? [], kind: entry?.kind ?? null });
    }
    return states;
  }

  async createPreDataObjects(schema: DatabaseSchema): Promise<CreatedObject[]> {
    const created: CreatedObject[] = [];
    try {
      const plan = schema.engine === 'postgresql' ? planPostgresSchema(schema, this.flavor) : null;
      if (plan !== null && plan.refused.length > 0) throw unsupportedTypeError(plan.refused);
      const mysqlSource = schema.engine === 'mysql';
      const missingDefinitions = mysqlSource ? schema.tables.filter((t) => t.nativeDefinition === undefined) : [];
      if (missingDefinitions.length > 0) {
        throw new FerryError('SCHEMA_ERROR', `The source schema lacks the table definitions (SHOW CREATE TABLE) of ${missingDefinitions.map(describe).join(', ')}; Restart the job so that Ferry reads them again.`);
      }

      const states = await this.inspectRelations(schema.tables);
      const problems: string[] = [];
      schema.tables.forEach((table, i) => {
        const state = states[i];
        if (state?.exists !== true) return;
        if (state.kind === 'VIEW' || state.kind === 'SYSTEM VIEW') {
          problems.push(`${describe(table)} (it exists as a view, not a table)`);
          return;
        }
        const source = new Set(table.columns.map((c) => c.name));
        const destination = new Set(state.columns);
        const missing = [...source].filter((c) => !destination.has(c));
        const extra = [...destination].filter((c) => !source.has(c));
        if (missing.length > 0 || extra.length > 0) {
          const parts = [];
          if (missing.length > 0) parts.push(`missing columns ${missing.join(', ')}`);
          if (extra.length > 0) parts.push(`extra columns ${extra.join(', ')}`);
          problems.push(`${describe(table)} (${parts.join('; ')})`);
        }
      });
      if (problems.length > 0) {
        throw new FerryError(
          'DESTINATION_TABLE_MISMATCH',
          `These destination tables already exist with a different shape: ${problems.join('; ')}. Drop or rename them on the destination, or exclude them from the job.`,
          { details: { tables: problems } },
        );
      }

      const databases = [...new Set([...schema.schemas, ...schema.tables.map((t) => t.schema)])];
      const [existing] = await this.connection.query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)', [databases]);
      const have = new Set((existing as Row[]).map((r) => mysqlText(r.name)));
      for (const database of databases) {
        if (have.has(database)) continue;
        await this.connection.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)} ${this.databaseOptions(schema, database)}`);
        created.push({ kind: 'schema', schema: null, name: database });
      }
      for (const [i, table] of schema.tables.entries()) {
        if (states[i]?.exists === true) continue;
        const sql = mysqlSource ? createTableFromNative(table, this.flavor) : (plan?.tables.find((t) => t.table === table)?.createSql ?? '');
        await this.connection.query(sql);
        created.push({ kind: 'table', schema: table.schema, name: table.name });
      }
      // Routines first (a view may call a function), then views in dependency order: the plan keeps the source's order.
      const objects = planObjectsForMysql(schema).filter((p) => p.phase === 'pre-data');
      created.push(...(await createMysqlSchemaObjects(this.connection, this.context, objects, this.definerPolicy)));
    } catch (error) {
      // What was created stays (DDL commits at once); the pipeline records it only on success,
      // and the next attempt reuses it.
      throw error instanceof FerryError ? error : classifyMysqlError(error, this.context);
    }
    return created;
  }

  /** CHARACTER SET / COLLATE of a new database: the source tables' own when they agree, else utf8mb4. */
  private databaseOptions(schema: DatabaseSchema, database: string): string {
    if (schema.engine === 'mysql') {
      const charsets = schema.tables.filter((t) => t.schema === database).map(tableCharset);
      const first = charsets[0];
      if (first !== undefined && first !== null && charsets.every((c) => c !== null && c.charset === first.charset && c.collation === first.collation)) {
        return `CHARACTER SET ${first.charset}${first.collation === null ? '' : ` COLLATE ${first.collation}`}`;
      }
      return 'CHARACTER SET utf8mb4';
    }
    return `CHARACTER SET utf8mb4 COLLATE ${textCollation(this.flavor, false)}`;
  }

  async createPostDataObjects(schema: DatabaseSchema, options: PostDataOptions = {}): Promise<CreatedObject[]> {
    await this.createIndexesAndForeignKeys(schema, options);
    if (options.triggers === false) return [];
    // Triggers and events last: they must not fire on the rows the load wrote.
    const objects = planObjectsForMysql(schema).filter((p) => p.phase === 'post-data');
    return createMysqlSchemaObjects(this.connection, this.context, objects, this.definerPolicy);
  }

  private async createIndexesAndForeignKeys(schema: DatabaseSchema, options: PostDataOptions): Promise<void> {
    try {
      const databases = [...new Set([...schema.tables.map((t) => t.schema), ...schema.tables.flatMap((t) => t.foreignKeys.map((f) => f.referencedTable.schema))])];
      if (databases.length === 0) return;
      const [rows] = await this.connection.query(loadSql('index-names.sql'), [databases, databases]);
      const indexes = new Set<string>();
      const constraints = new Set<string>();
      for (const row of rows as Row[]) {
        const entry = JSON.stringify([mysqlText(row.table_schema), mysqlText(row.table_name), mysqlText(row.name)]);
        if (row.kind === 'index') indexes.add(entry);
        else constraints.add(entry);
      }
      const [tableRows] = await this.connection.query('SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?)', [databases]);
      const relations = new Set((tableRows as Row[]).map((r) => key({ schema: mysqlText(r.s) ?? '', name: mysqlText(r.n) ?? '' })));
      const has = (set: Set<string>, table: QualifiedName, name: string) => set.has(JSON.stringify([table.schema, table.name, name]));
      const plan = schema.engine === 'postgresql' ? planPostgresSchema(schema, this.flavor) : null;

      for (const table of schema.tables) {
        if (!relations.has(key(table))) continue;
        const statements = plan === null ? nativeIndexStatements(table) : (plan.tables.find((t) => t.table === table)?.indexes ?? []);
        const missing = statements.filter((s) => !has(indexes, table, s.name));
        // One ALTER builds every plain key in one pass over the table; InnoDB builds FULLTEXT keys one at a time.
        const plain = missing.filter((s) => !/ ADD FULLTEXT /.test(s.sql));
        if (plain.length > 0) {
          const prefix = `ALTER TABLE ${quoteQualified(table)} `;
          await this.connection.query(`${prefix}${plain.map((s) => s.sql.slice(prefix.length)).join(', ')}`);
        }
        for (const statement of missing.filter((s) => / ADD FULLTEXT /.test(s.sql))) await this.connection.query(statement.sql);
      }
      if (options.foreignKeys === false) return;
      const onlyActions = options.foreignKeys === 'actions';
      for (const table of schema.tables) {
        if (!relations.has(key(table))) continue;
        const foreignKeys =
          plan === null
            ? table.foreignKeys.map((f) => ({ name: f.name, sql: `ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(f.name)} ${f.definition}`, referencedTable: f.referencedTable }))
            : (plan.tables.find((t) => t.table === table)?.foreignKeys ?? []);
        for (const foreignKey of foreignKeys) {
          const source = table.foreignKeys.find((f) => f.name === foreignKey.name);
          if (onlyActions && (source === undefined || !hasReferentialAction(source))) continue;
          if (has(constraints, table, foreignKey.name)) continue;
          // A key to a table outside the job that the destination lacks cannot be created; verify warns about it.
          if (!relations.has(key(foreignKey.referencedTable))) continue;
          // This session does not check foreign keys, so ADD CONSTRAINT would accept rows without their referenced row.
          if (onlyActions && source !== undefined) await this.refuseOrphans(table, source);
          await this.connection.query(foreignKey.sql);
        }
      }
    } catch (error) {
      throw error instanceof FerryError ? error : classifyMysqlError(error, this.context);
    }
  }

  /** Rejects when rows of `table` reference rows that `foreignKey`'s referenced table lacks (a few named). */
  private async refuseOrphans(table: QualifiedName, foreignKey: ForeignKeySchema): Promise<void> {
    const samples = await findOrphanRows(this.connection, table, foreignKey);
    if (samples.length > 0) throw orphanRowsError(table, foreignKey, samples);
  }

  async syncSequences(schema: DatabaseSchema): Promise<void> {
    try {
      const databases = [...new Set(schema.sequences.flatMap((s) => (s.ownedBy === null ? [] : [s.ownedBy.table.schema])))];
      if (databases.length === 0) return;
      const [rows] = await this.connection.query(loadSql('auto-increment-columns.sql'), [databases]);
      const autoColumns = new Set((rows as Row[]).map((r) => JSON.stringify([mysqlText(r.table_schema), mysqlText(r.table_name), mysqlText(r.column_name)])));
      for (const sequence of schema.sequences) {
        if (sequence.ownedBy === null) continue;
        const { table, column } = sequence.ownedBy;
        if (!autoColumns.has(JSON.stringify([table.schema, table.name, column]))) continue;
        const next = nextValue(sequence);
        if (next === null) continue;
        // InnoDB raises a value below the column's current maximum to maximum + 1 by itself.
        await this.connection.query(`ALTER TABLE ${quoteQualified(table)} AUTO_INCREMENT = ${next}`);
      }
    } catch (error) {
      throw classifyMysqlError(error, this.context);
    }
  }

  async truncateTables(tables: QualifiedName[]): Promise<void> {
    try {
      const states = await this.inspectRelations(tables);
      for (const [i, table] of tables.entries()) {
        const state = states[i];
        if (state?.exists !== true || state.kind === 'VIEW' || state.kind === 'SYSTEM VIEW') continue;
        // foreign_key_checks = 0 in this session: references between the listed tables do not stop it.
        await this.connection.query(`TRUNCATE TABLE ${quoteQualified(table)}`);
      }
    } catch (error) {
      throw classifyMysqlError(error, this.context);
    }
  }

  async dropObjects(objects: CreatedObject[]): Promise<void> {
    try {
      for (const object of [...objects].reverse()) {
        if (object.kind !== 'table' && object.kind !== 'schema') {
          await dropMysqlSchemaObject(this.connection, object);
        } else if (object.kind === 'table' && object.schema !== null) {
          await this.connection.query(`DROP TABLE IF EXISTS ${quoteQualified({ schema: object.schema, name: object.name })}`);
        } else if (object.kind === 'schema') {
          // A database that now holds something the job did not create (a user's table, a routine) is kept.
          const [tables] = await this.connection.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [object.name]);
          const [routines] = await this.connection.query('SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?', [object.name]);
          const [events] = await this.connection.query('SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?', [object.name]);
          if ([tables, routines, events].every((rows) => Number((rows as Row[])[0]?.n ?? 0) === 0)) {
            await this.connection.query(`DROP DATABASE IF EXISTS ${quoteIdent(object.name)}`);
          }
        }
      }
    } catch (error) {
      throw classifyMysqlError(error, this.context);
    }
  }

  async close(): Promise<void> {
    await endQuietly(this.connection);
  }
}

/** The AUTO_INCREMENT value that follows the source's sequence, or null to leave the counter alone. */
export function nextValue(sequence: SequenceSchema): string | null {
  try {
    if (sequence.lastValue === null) return BigInt(sequence.start) >= 1n ? BigInt(sequence.start).toString() : null;
    const next = BigInt(sequence.lastValue) + (BigInt(sequence.increment) > 0n ? BigInt(sequence.increment) : 1n);
    return next >= 1n ? next.toString() : null;
  } catch {
    return null;
  }
}
