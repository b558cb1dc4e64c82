/**
 * The structural half of the cross-engine oracle (compare-cross.ts calls it): what the
 * destination schema holds beyond the rows, checked in both directions.
 *
 * - Tables: a base table of the destination schema that the source schema does not have is an
 *   `extra-table` (whole-schema comparisons only).
 * - Columns, across engines: the type, default and nullability the destination should have are
 *   computed by the product's documented mapping (docs/type-mapping.md): Ferry's own
 *   introspector reads the source, and `mapMysqlSchemaToPostgres` (MySQL to PostgreSQL) or
 *   `mapPostgresColumnToMysql` / `planPostgresSchema` (PostgreSQL to MySQL) say what it becomes;
 *   the destination is read from its catalogs here. Findings: `column-type`, `column-default`,
 *   `column-nullability`.
 * - Indexes (column lists and uniqueness, primary keys included) and foreign keys (columns,
 *   referenced table and columns, ON DELETE / ON UPDATE) where the mapping carries them; both
 *   directions: what the destination lacks and what it has in excess. Findings: `index`,
 *   `foreign-key`.
 * - MySQL to MySQL (same engine): every column's COLUMN_TYPE, nullability, default, EXTRA and
 *   collation, every index (by name, with prefix lengths and type) and foreign key kept exactly;
 *   views, routines, triggers and events by name and definition, both directions (`view`,
 *   `routine`, `trigger`, `event`; whole-schema comparisons only).
 *
 * Deliberate, documented differences are excluded where they are met, each with its reason.
 */
import type { Connection } from 'mysql2/promise';
import type pg from 'pg';
import type { DatabaseSchema, TableSchema } from '../../src/core/schema.js';
import { isRefused, mapMysqlSchemaToPostgres, mapPostgresColumnToMysql } from '../../src/core/type-mapping.js';
import { MysqlIntrospector } from '../../src/engines/mysql/mysql-introspector.js';
import { planPostgresSchema, translatePostgresIndex } from '../../src/engines/mysql/mysql-schema-writer.js';
import { rawTextTypes } from '../../src/engines/postgres/postgres-connection.js';
import { PostgresIntrospector } from '../../src/engines/postgres/postgres-introspector.js';
import type { CrossDifference, CrossSide } from './compare-cross.js';

export interface StructureOptions {
  /** Only these tables; absent: the whole schema (and extra tables are looked for). */
  tables?: string[];
  /** The job's enumErrorValuePolicy (MySQL to PostgreSQL): 'null' makes enum columns nullable, as documented. */
  enumErrorValue?: 'label' | 'null';
}

interface ColumnMeta {
  name: string;
  type: string;
  nullable: boolean;
  /** Normalized default (see normalizeDefault), or null. */
  defaultValue: string | null;
  /** The default as the catalog prints it. */
  defaultText: string | null;
  /** PostgreSQL: attidentity ('', 'a', 'd'); MySQL: EXTRA. */
  extra: string;
  collation: string | null;
}

interface IndexMeta {
  name: string;
  primary: boolean;
  unique: boolean;
  columns: string[];
  /** MySQL: prefix lengths and index type, for same-engine comparisons. */
  detail: string;
}

interface ForeignKeyMeta {
  name: string;
  columns: string[];
  referencedSchema: string;
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

const PG_ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

/** Splits text into single-quoted literals (kept as they are) and code (passed to `code`). */
function mapOutsideQuotes(text: string, code: (part: string) => string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === "'") {
      let j = i + 1;
      while (j < text.length) {
        if (text[j] === '\\') j += 2;
        else if (text[j] === "'" && text[j + 1] === "'") j += 2;
        else if (text[j] === "'") break;
        else j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      const j = text.indexOf("'", i);
      const end = j === -1 ? text.length : j;
      out += code(text.slice(i, end));
      i = end;
    }
  }
  return out;
}

/**
 * A default expression as it compares across catalogs and dialects: casts (`::text`), outer
 * parentheses, identifier quotes, case and spaces outside literals dropped; `''` inside a
 * literal as `\'`; a literal or bare number by value; NULL as no default.
 */
export function normalizeDefault(text: string | null): string | null {
  if (text === null) return null;
  // A sequence named in nextval('"s"."t_seq"') compares without its identifier quotes.
  let t = text.trim().replace(/nextval\('([^']*)'/gi, (_m, name: string) => `nextval('${name.replace(/"/g, '')}'`);
  t = mapOutsideQuotes(t, (code) =>
    code
      .replace(/::\s*(?:"[^"]+"|[a-z_][a-z0-9_]*)(?:\.(?:"[^"]+"|[a-z_][a-z0-9_]*))?(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))*(?:\(\d+(?:,\d+)?\))?(?:\[\])?/gi, '')
      .replace(/"/g, '')
      .replace(/\s+/g, '')
      .toLowerCase(),
  );
  for (;;) {
    const inner = t.startsWith('(') && t.endsWith(')') ? t.slice(1, -1) : null;
    if (inner === null || !balanced(inner)) break;
    t = inner;
  }
  if (t === 'null') return null;
  const quoted = /^'((?:[^'\\]|''|\\.)*)'$/s.exec(t);
  const body = quoted === null ? t : (quoted[1] ?? '').replace(/''/g, "'").replace(/\\'/g, "'");
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(body)) {
    const [mantissa = '', exponent = '0'] = body.toLowerCase().split('e');
    const [intPart = '', fraction = ''] = mantissa.replace(/^\+/, '').split('.');
    const value = `${intPart.replace(/^(-?)0+(?=\d)/, '$1')}${fraction.replace(/0+$/, '') === '' ? '' : `.${fraction.replace(/0+$/, '')}`}`;
    return `${value}${exponent === '0' ? '' : `e${Number(exponent)}`}`;
  }
  return quoted === null ? t : `'${body}'`;
}

function balanced(text: string): boolean {
  let depth = 0;
  let ok = true;
  mapOutsideQuotes(text, (code) => {
    for (const c of code) {
      if (c === '(') depth++;
      else if (c === ')' && --depth < 0) ok = false;
    }
    return code;
  });
  return ok && depth === 0;
}

/**
 * A MySQL type as information_schema prints it. MariaDB prints integer display widths
 * (`int(11)`): they mean nothing, except `tinyint(1)`, which is MySQL's boolean. A fractional
 * precision of 0 is not printed (`datetime(0)` is `datetime`). MariaDB keeps its metadata in
 * utf8mb3, so a character outside the BMP in an enum or set label reads back as `?` in
 * COLUMN_TYPE (and SHOW CREATE TABLE) while the values keep it: compared as `?` on both sides.
 */
function normalizeMysqlType(type: string): string {
  const t = type.trim().replace(/[\u{10000}-\u{10FFFF}]/gu, '?');
  const lower = /^(enum|set)\(/i.test(t) ? t.replace(/^[a-z]+/i, (m) => m.toLowerCase()) : t.toLowerCase();
  if (/^tinyint\(1\)/.test(lower)) return lower;
  return lower.replace(/^(tinyint|smallint|mediumint|int|bigint)\(\d+\)/, '$1').replace(/^(datetime|timestamp|time)\(0\)/, '$1');
}

async function mysqlTables(connection: Connection, schema: string): Promise<string[]> {
  const [rows] = await connection.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, [schema]);
  return (rows as Array<{ name: string }>).map((r) => String(r.name));
}

async function pgTables(client: pg.ClientBase, schema: string): Promise<string[]> {
  // Partitions are not tables of their own across engines: a partitioned table arrives whole (docs/type-mapping.md).
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname COLLATE "C"`,
    [schema],
  );
  return rows.map((r) => r.name);
}

/** Views, routines, triggers and events of a MySQL database, `kind name` → definition (the database's own name taken out). */
async function mysqlObjects(connection: Connection, schema: string): Promise<Map<string, string>> {
  const [rows] = await connection.query(
    `SELECT CONCAT('view ', TABLE_NAME) AS k, VIEW_DEFINITION AS v FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
     UNION ALL SELECT CONCAT('routine ', ROUTINE_NAME), CONCAT(ROUTINE_TYPE, ' ', COALESCE(DTD_IDENTIFIER, ''), ' ', COALESCE(ROUTINE_DEFINITION, '')) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
     UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME), CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION, ' ON ', EVENT_OBJECT_TABLE, ' ', ACTION_STATEMENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
     UNION ALL SELECT CONCAT('event ', EVENT_NAME), EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`,
    [schema, schema, schema, schema],
  );
  const own = new RegExp(`\`${schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`\\.`, 'g');
  return new Map((rows as Array<{ k: string; v: string | null }>).map((r) => [String(r.k), String(r.v ?? '').replace(own, '')]));
}

async function mysqlColumns(connection: Connection, schema: string, table: string): Promise<ColumnMeta[]> {
  const [rows] = await connection.query(
    `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS def, EXTRA AS extra, COLLATION_NAME AS coll
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, table],
  );
  // MariaDB's COLUMN_TYPE does not print a spatial column's REF_SYSTEM_ID: GEOMETRY_COLUMNS has it, 0 for none (docs/type-mapping.md, Spatial types).
  const srids = new Map<string, number>();
  try {
    const [g] = await connection.query(`SELECT G_GEOMETRY_COLUMN AS name, SRID AS srid FROM information_schema.GEOMETRY_COLUMNS WHERE F_TABLE_SCHEMA = ? AND F_TABLE_NAME = ?`, [schema, table]);
    for (const r of g as Array<{ name: string; srid: unknown }>) if (Number(r.srid) > 0) srids.set(String(r.name), Number(r.srid));
  } catch {
    // A server without GEOMETRY_COLUMNS (MySQL 8 prints `SRID n` in COLUMN_TYPE already).
  }
  return (rows as Array<Record<string, unknown>>).map((r) => {
    const def = r.def === null || r.def === undefined ? null : String(r.def);
    const srid = srids.get(String(r.name));
    return {
      name: String(r.name),
      type: normalizeMysqlType(`${String(r.type)}${srid === undefined ? '' : ` ref_system_id=${srid}`}`),
      nullable: r.nullable === 'YES',
      defaultText: def,
      defaultValue: normalizeDefault(def),
      extra: String(r.extra ?? '').toLowerCase(),
      collation: r.coll === null || r.coll === undefined ? null : String(r.coll),
    };
  });
}

async function pgColumns(client: pg.ClientBase, schema: string, table: string): Promise<ColumnMeta[]> {
  // search_path pg_catalog: format_type and pg_get_expr qualify every user type and sequence.
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SET LOCAL search_path = pg_catalog`);
    const { rows } = await client.query<{ name: string; type: string; notnull: boolean; def: string | null; identity: string; coll: string | null }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def,
              a.attidentity::text AS identity, CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS coll
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [schema, table],
    );
    return rows.map((r) => ({
      name: r.name,
      type: r.type.replace(/"/g, ''),
      nullable: !r.notnull,
      defaultText: r.def,
      defaultValue: normalizeDefault(r.def),
      extra: r.identity,
      collation: r.coll,
    }));
  } finally {
    await client.query('ROLLBACK');
  }
}

async function mysqlIndexes(connection: Connection, schema: string, table: string): Promise<IndexMeta[]> {
  const [rows] = await connection.query(
    `SELECT INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS col, SUB_PART AS sub, INDEX_TYPE AS type, COLLATION AS coll
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [schema, table],
  );
  const byName = new Map<string, IndexMeta & { parts: string[] }>();
  for (const r of rows as Array<Record<string, unknown>>) {
    const name = String(r.name);
    let index = byName.get(name);
    if (index === undefined) {
      index = { name, primary: name === 'PRIMARY', unique: Number(r.nonUnique) === 0, columns: [], detail: '', parts: [] };
      byName.set(name, index);
    }
    index.columns.push(String(r.col));
    index.parts.push(`${String(r.col)}${r.sub === null || r.sub === undefined ? '' : `(${String(r.sub)})`}${r.coll === 'D' ? ' DESC' : ''}`);
    index.detail = `${String(r.type)} (${index.parts.join(', ')})`;
  }
  return [...byName.values()].map(({ parts: _parts, ...index }) => index);
}

async function pgIndexes(client: pg.ClientBase, schema: string, table: string): Promise<IndexMeta[]> {
  const { rows } = await client.query<{ name: string; primary: boolean; unique: boolean; parts: string[]; columns: string[] }>(
    `SELECT i.relname AS name, x.indisprimary AS primary, x.indisunique AS unique,
            array(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k ORDER BY k)::text[] AS parts,
            array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)::text[] AS columns
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 ORDER BY i.relname COLLATE "C"`,
    [schema, table],
  );
  return rows.map((r) => ({
    name: r.name,
    primary: r.primary,
    unique: r.unique,
    // An expression key part (a MySQL prefix index becomes left(col, n)) counts as the column it reads.
    columns: r.parts.map((p) => {
      const plain = p.replace(/^"(.*)"$/, '$1').replace(/""/g, '"');
      if (r.columns.includes(plain)) return plain;
      const used = r.columns.filter((c) => new RegExp(`(^|[^A-Za-z0-9_$"])("?)${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\2($|[^A-Za-z0-9_$"])`).test(p));
      return used.length === 1 ? (used[0] as string) : p;
    }),
    detail: '',
  }));
}

async function mysqlForeignKeys(connection: Connection, schema: string, table: string): Promise<ForeignKeyMeta[]> {
  const [rows] = await connection.query(
    `SELECT k.CONSTRAINT_NAME AS name, k.COLUMN_NAME AS col, k.REFERENCED_TABLE_SCHEMA AS rs, k.REFERENCED_TABLE_NAME AS rt, k.REFERENCED_COLUMN_NAME AS rc,
            r.DELETE_RULE AS del, r.UPDATE_RULE AS upd
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [schema, table],
  );
  const byName = new Map<string, ForeignKeyMeta>();
  for (const r of rows as Array<Record<string, unknown>>) {
    const name = String(r.name);
    let fk = byName.get(name);
    if (fk === undefined) {
      fk = { name, columns: [], referencedSchema: String(r.rs), referencedTable: String(r.rt), referencedColumns: [], onDelete: String(r.del), onUpdate: String(r.upd) };
      byName.set(name, fk);
    }
    fk.columns.push(String(r.col));
    fk.referencedColumns.push(String(r.rc));
  }
  return [...byName.values()];
}

async function pgForeignKeys(client: pg.ClientBase, schema: string, table: string): Promise<ForeignKeyMeta[]> {
  const { rows } = await client.query<{ name: string; columns: string[]; rs: string; rt: string; rc: string[]; del: string; upd: string }>(
    `SELECT k.conname AS name,
            array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o)::text[] AS columns,
            rn.nspname AS rs, rc.relname AS rt,
            array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o)::text[] AS rc,
            k.confdeltype::text AS del, k.confupdtype::text AS upd
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE k.contype = 'f' AND n.nspname = $1 AND c.relname = $2 ORDER BY k.conname COLLATE "C"`,
    [schema, table],
  );
  return rows.map((r) => ({
    name: r.name,
    columns: r.columns,
    referencedSchema: r.rs,
    referencedTable: r.rt,
    referencedColumns: r.rc,
    onDelete: PG_ACTIONS[r.del] ?? r.del,
    onUpdate: PG_ACTIONS[r.upd] ?? r.upd,
  }));
}

/** An index as it compares across engines: no name (each engine's namespace renames), its kind and columns. */
const indexKey = (i: { primary: boolean; unique: boolean; columns: string[] }) => `${i.primary ? 'PRIMARY KEY' : i.unique ? 'UNIQUE' : 'INDEX'} (${i.columns.join(', ')})`;

/**
 * A foreign key as it compares across engines. InnoDB treats NO ACTION as RESTRICT (MySQL
 * reference manual, "FOREIGN KEY Constraints": "NO ACTION: ... equivalent to RESTRICT") and
 * MariaDB reports an unspecified action as RESTRICT: where one side is MySQL the two are one.
 */
const foreignKeyKey = (f: ForeignKeyMeta, mysqlSide: boolean) => {
  const action = (a: string) => (mysqlSide && a === 'NO ACTION' ? 'RESTRICT' : a);
  return `(${f.columns.join(', ')}) REFERENCES ${f.referencedSchema}.${f.referencedTable} (${f.referencedColumns.join(', ')}) ON DELETE ${action(f.onDelete)} ON UPDATE ${action(f.onUpdate)}`;
};

function diffMultisets(expected: string[], actual: string[]): { missing: string[]; extra: string[] } {
  const left = [...actual];
  const missing: string[] = [];
  for (const e of expected) {
    const i = left.indexOf(e);
    if (i === -1) missing.push(e);
    else left.splice(i, 1);
  }
  return { missing, extra: left };
}

/** The actions written in a foreign key definition (NO ACTION when not written). */
function actionsOf(definition: string): { onDelete: string; onUpdate: string } {
  const of = (event: string) => new RegExp(`ON ${event} (CASCADE|SET NULL|SET DEFAULT|RESTRICT|NO ACTION)`, 'i').exec(definition)?.[1]?.toUpperCase() ?? 'NO ACTION';
  return { onDelete: of('DELETE'), onUpdate: of('UPDATE') };
}

/** What the destination table should hold, from the product's mapping. */
interface Expected {
  columns: Array<{ name: string; type: string; nullable: boolean; defaultValue: string | null; defaultText: string | null; extra: string; keyNarrowed: boolean }>;
  indexes: Array<{ primary: boolean; unique: boolean; columns: string[] }>;
  foreignKeys: ForeignKeyMeta[];
}

function renameSchema(schema: DatabaseSchema, from: string, to: string): DatabaseSchema {
  const rename = <T extends { schema: string }>(o: T): T => (o.schema === from ? { ...o, schema: to } : o);
  return {
    ...schema,
    schemas: schema.schemas.map((s) => (s === from ? to : s)),
    tables: schema.tables.map((t) => ({ ...rename(t), foreignKeys: t.foreignKeys.map((f) => ({ ...f, referencedTable: rename(f.referencedTable) })) })),
    sequences: schema.sequences.map((s) => ({ ...rename(s), ownedBy: s.ownedBy === null ? null : { ...s.ownedBy, table: rename(s.ownedBy.table) } })),
    enums: schema.enums.map(rename),
    domains: schema.domains.map(rename),
  };
}

async function expectedFromMysql(source: Extract<CrossSide, { engine: 'mysql' }>, destinationSchema: string, tables: string[], options: StructureOptions): Promise<Map<string, Expected>> {
  const flavor = await MysqlIntrospector.flavorOf(source.connection);
  const introspected = await new MysqlIntrospector(source.connection, flavor, source.schema).readSchema(
    { include: tables.map((t) => `${source.schema}.${t}`), exclude: [] },
    { objects: false },
  );
  const mapped = mapMysqlSchemaToPostgres(renameSchema(introspected, source.schema, destinationSchema), options.enumErrorValue === undefined ? {} : { enumErrorValue: options.enumErrorValue });
  const out = new Map<string, Expected>();
  for (const t of mapped.schema.tables) {
    out.set(t.name, {
      columns: t.columns.map((c) => ({
        name: c.name,
        type: c.nativeType.replace(/"/g, ''),
        nullable: c.nullable,
        defaultValue: normalizeDefault(c.defaultExpression),
        defaultText: c.defaultExpression,
        extra: c.identity === 'by-default' ? 'd' : c.identity === 'always' ? 'a' : '',
        keyNarrowed: false,
      })),
      indexes: [
        ...(t.primaryKey === null ? [] : [{ primary: true, unique: true, columns: t.primaryKey.columns }]),
        ...t.uniqueConstraints.map((u) => ({ primary: false, unique: true, columns: u.columns })),
        ...t.indexes.map((i) => ({ primary: false, unique: i.unique === true, columns: i.columns ?? [] })),
      ],
      foreignKeys: t.foreignKeys
        .filter((f) => f.columns !== undefined && f.referencedColumns !== undefined)
        .map((f) => ({
          name: f.name,
          columns: f.columns ?? [],
          referencedSchema: f.referencedTable.schema,
          referencedTable: f.referencedTable.name,
          referencedColumns: f.referencedColumns ?? [],
          ...actionsOf(f.definition),
        })),
    });
  }
  return out;
}

async function expectedFromPostgres(
  source: Extract<CrossSide, { engine: 'postgresql' }>,
  destination: Extract<CrossSide, { engine: 'mysql' }>,
  tables: string[],
): Promise<Map<string, Expected>> {
  const flavor = await MysqlIntrospector.flavorOf(destination.connection);
  // The introspector reads values as raw text under Ferry's session settings (src/engines/postgres/postgres-connection.ts).
  const client = source.client;
  const raw = rawTextTypes();
  const ferryLike = { query: (text: string, values?: unknown[]) => client.query({ text, ...(values === undefined ? {} : { values }), types: raw }) } as unknown as pg.Client;
  const path = (await client.query<{ search_path: string }>('SHOW search_path')).rows[0]?.search_path ?? 'public';
  await client.query('SET search_path = pg_catalog, pg_temp');
  let introspected: DatabaseSchema;
  try {
    introspected = await new PostgresIntrospector(ferryLike).readSchema(
      { include: tables.map((t) => `${source.schema}.${t}`), exclude: [] },
      { partitions: 'roots', destinationEngine: 'mysql', readSequenceValues: false },
    );
  } finally {
    await client.query(`SET search_path = ${path}`);
  }
  const schema = renameSchema(introspected, source.schema, destination.schema);
  const plan = planPostgresSchema(schema, { mariadb: flavor === 'mariadb' });
  const out = new Map<string, Expected>();
  for (const planned of plan.tables) {
    const t = planned.table;
    const where = `${t.schema}.${t.name}`;
    const columns: Expected['columns'] = [];
    for (const c of t.columns) {
      const mapped = mapPostgresColumnToMysql(t, c, { enums: schema.enums, domains: schema.domains }, flavor);
      if (isRefused(mapped)) continue;
      // Key columns too long for InnoDB are narrowed (docs/type-mapping.md, "InnoDB keys hold at most 3072 bytes"): the plan says to what.
      const narrowed = plan.warnings.find((w) => w.object === `${where}.${c.name}`)?.message.match(/so it becomes (\S+) \(InnoDB/)?.[1];
      const auto = planned.autoIncrementColumn === c.name;
      columns.push({
        name: c.name,
        type: normalizeMysqlType(narrowed ?? mapped.nativeType),
        nullable: c.nullable,
        defaultValue: auto || mapped.autoIncrement ? null : normalizeDefault(mapped.defaultExpression),
        defaultText: auto || mapped.autoIncrement ? null : mapped.defaultExpression,
        extra: auto ? 'auto_increment' : '',
        keyNarrowed: narrowed !== undefined,
      });
    }
    const keyParts = (list: string) => [...list.matchAll(/`((?:[^`]|``)+)`(?:\(\d+\))?(?: DESC)?/g)].map((m) => (m[1] ?? '').replace(/``/g, '`'));
    const indexes: Expected['indexes'] = [];
    // The table's keys as the plan writes them in CREATE TABLE (the primary key, unique keys, the AUTO_INCREMENT column's own key).
    for (const m of planned.createSql.matchAll(/^ {2}(PRIMARY KEY|UNIQUE KEY `(?:[^`]|``)+`|KEY `(?:[^`]|``)+`) \((.*)\),?$/gm)) {
      indexes.push({ primary: m[1] === 'PRIMARY KEY', unique: m[1] !== undefined && !m[1].startsWith('KEY'), columns: keyParts(m[2] ?? '') });
    }
    // Secondary indexes the plan carries (expression, partial and other methods are left out, documented).
    for (const index of planned.indexes) {
      const source = t.indexes.find((i) => i.name === index.name);
      const parsed = source === undefined ? null : translatePostgresIndex(source.definition);
      if (parsed !== null) indexes.push({ primary: false, unique: parsed.unique, columns: parsed.columns.map((c) => c.name) });
    }
    const foreignKeys: ForeignKeyMeta[] = [];
    for (const fk of planned.foreignKeys) {
      const m = /FOREIGN KEY \((.*?)\) REFERENCES `((?:[^`]|``)+)`\.`((?:[^`]|``)+)` \((.*?)\)(.*)$/.exec(fk.sql);
      if (m === null) continue;
      foreignKeys.push({
        name: fk.name,
        columns: keyParts(m[1] ?? ''),
        referencedSchema: (m[2] ?? '').replace(/``/g, '`'),
        referencedTable: (m[3] ?? '').replace(/``/g, '`'),
        referencedColumns: keyParts(m[4] ?? ''),
        ...actionsOf(m[5] ?? ''),
      });
    }
    out.set(t.name, { columns, indexes, foreignKeys });
  }
  return out;
}

/** Compares the structure of `tables` (present on both sides) and looks for extra destination tables; see the file comment. */
export async function compareStructure(source: CrossSide, destination: CrossSide, tables: string[], options: StructureOptions, out: CrossDifference[], max: number): Promise<void> {
  const full = () => out.length >= max;
  const add = (d: CrossDifference) => {
    if (!full()) out.push(d);
  };
  const tablesOf = (side: CrossSide) => (side.engine === 'mysql' ? mysqlTables(side.connection, side.schema) : pgTables(side.client, side.schema));
  if (options.tables === undefined) {
    // Ferry's bookkeeping lives in its own schema/database (`_ferry`), never in the compared one: nothing to exclude here.
    const [sourceTables, destinationTables] = await Promise.all([tablesOf(source), tablesOf(destination)]);
    for (const t of destinationTables) {
      if (!sourceTables.includes(t)) add({ kind: 'extra-table', table: `${destination.schema}.${t}`, message: `${destination.schema}.${t} exists on the destination only (the source schema ${source.schema} has no such table)` });
    }
  }
  if (options.tables === undefined && source.engine === 'mysql' && destination.engine === 'mysql') {
    // Same engine: views, routines, triggers and events are carried (docs/type-mapping.md, "Schema objects beyond tables"); both directions.
    const [a, b] = await Promise.all([mysqlObjects(source.connection, source.schema), mysqlObjects(destination.connection, destination.schema)]);
    for (const [key, definition] of a) {
      const other = b.get(key);
      const [kind, objectName] = key.split(' ') as [CrossDifference['kind'], string];
      if (other === undefined) add({ kind, table: `${source.schema}.${objectName}`, message: `the ${kind} ${source.schema}.${objectName} is missing on the destination`, source: definition, destination: null });
      else if (other !== definition) add({ kind, table: `${source.schema}.${objectName}`, message: `the ${kind} ${source.schema}.${objectName} differs`, source: definition, destination: other });
    }
    for (const [key, definition] of b) {
      const [kind, objectName] = key.split(' ') as [CrossDifference['kind'], string];
      if (!a.has(key)) add({ kind, table: `${destination.schema}.${objectName}`, message: `the ${kind} ${destination.schema}.${objectName} exists only on the destination`, source: null, destination: definition });
    }
  }
  const [onSource, onDestination] = await Promise.all([tablesOf(source), tablesOf(destination)]);
  const present = tables.filter((t) => onSource.includes(t) && onDestination.includes(t));
  if (present.length === 0 || (source.engine === 'postgresql' && destination.engine === 'postgresql')) return;

  const columnsOf = (side: CrossSide, t: string) => (side.engine === 'mysql' ? mysqlColumns(side.connection, side.schema, t) : pgColumns(side.client, side.schema, t));
  const indexesOf = (side: CrossSide, t: string) => (side.engine === 'mysql' ? mysqlIndexes(side.connection, side.schema, t) : pgIndexes(side.client, side.schema, t));
  const foreignKeysOf = (side: CrossSide, t: string) => (side.engine === 'mysql' ? mysqlForeignKeys(side.connection, side.schema, t) : pgForeignKeys(side.client, side.schema, t));

  let expected: Map<string, Expected>;
  if (source.engine === 'mysql' && destination.engine === 'mysql') {
    // Same engine: the destination keeps every column, index and foreign key exactly (docs/type-mapping.md, first paragraph).
    expected = new Map();
    for (const t of present) {
      const [columns, indexes, foreignKeys] = await Promise.all([columnsOf(source, t), indexesOf(source, t), foreignKeysOf(source, t)]);
      expected.set(t, {
        columns: columns.map((c) => ({ ...c, extra: `${c.extra}${c.collation === null ? '' : ` collate ${c.collation}`}`, keyNarrowed: false })),
        indexes: indexes.map((i) => ({ ...i, columns: [`${i.name}: ${i.detail}`] })),
        foreignKeys: foreignKeys.map((f) => ({ ...f, columns: [`${f.name}: ${f.columns.join(', ')}`], referencedSchema: f.referencedSchema === source.schema ? destination.schema : f.referencedSchema })),
      });
    }
  } else if (source.engine === 'mysql') {
    expected = await expectedFromMysql(source, destination.schema, present, options);
  } else {
    expected = await expectedFromPostgres(source, destination as Extract<CrossSide, { engine: 'mysql' }>, present);
  }
  const sameEngine = source.engine === destination.engine;
  const mysqlInvolved = source.engine === 'mysql' || destination.engine === 'mysql';

  for (const t of present) {
    if (full()) return;
    const want = expected.get(t);
    if (want === undefined) continue;
    const name = `${source.schema}.${t}`;
    const actualColumns = await columnsOf(destination, t);
    for (const w of want.columns) {
      const a = actualColumns.find((c) => c.name === w.name);
      if (a === undefined) continue; // the column lists are compared by the caller
      const where = `${name}.${w.name}`;
      let typeOk = a.type === w.type;
      // MariaDB's JSON is an alias of LONGTEXT with a json_valid check (MariaDB KB, "JSON Data Type"): information_schema says longtext.
      if (!typeOk && destination.engine === 'mysql' && w.type === 'json' && a.type === 'longtext') typeOk = true;
      if (!typeOk) add({ kind: 'column-type', table: name, column: w.name, message: `${where}: the destination's type is ${a.type}, the mapping gives ${w.type}`, source: w.type, destination: a.type });
      if (a.nullable !== w.nullable) {
        add({ kind: 'column-nullability', table: name, column: w.name, message: `${where} is ${w.nullable ? 'nullable' : 'NOT NULL'} per the mapping but ${a.nullable ? 'nullable' : 'NOT NULL'} on the destination`, source: w.nullable, destination: a.nullable });
      }
      if (a.defaultValue !== w.defaultValue) {
        add({ kind: 'column-default', table: name, column: w.name, message: `${where}: the destination's default is ${a.defaultText ?? 'none'}, the mapping gives ${w.defaultText ?? 'none'}`, source: w.defaultText, destination: a.defaultText });
      }
      const extra = sameEngine ? `${a.extra}${a.collation === null ? '' : ` collate ${a.collation}`}` : a.extra;
      const wantedExtra = w.extra;
      // PostgreSQL to MySQL: only AUTO_INCREMENT is looked at in EXTRA (it also says DEFAULT_GENERATED and the like).
      const extraDiffers = !sameEngine && destination.engine === 'mysql' ? (wantedExtra === 'auto_increment') !== /\bauto_increment\b/.test(extra) : wantedExtra !== extra;
      if (extraDiffers) {
        add({ kind: sameEngine ? 'column-type' : 'column-default', table: name, column: w.name, message: `${where}: ${sameEngine ? 'EXTRA/collation' : 'identity/AUTO_INCREMENT'} is ${JSON.stringify(extra)} on the destination, expected ${JSON.stringify(wantedExtra)}`, source: wantedExtra, destination: extra });
      }
    }

    const [actualIndexes, actualForeignKeys] = await Promise.all([indexesOf(destination, t), foreignKeysOf(destination, t)]);
    const expectedIndexKeys = want.indexes.map(indexKey);
    let actualIndexList = actualIndexes;
    if (sameEngine) {
      actualIndexList = actualIndexes.map((i) => ({ ...i, columns: [`${i.name}: ${i.detail}`] }));
    } else if (destination.engine === 'mysql') {
      // InnoDB creates an index on a foreign key's columns when none starts with them, named after the constraint
      // (MySQL reference manual, "FOREIGN KEY Constraints", "Index Prerequisites"): not a difference.
      actualIndexList = actualIndexes.filter((i) => i.primary || i.unique || !want.foreignKeys.some((f) => f.name === i.name && f.columns.join() === i.columns.join()));
    }
    const indexDiff = diffMultisets(expectedIndexKeys, actualIndexList.map(indexKey));
    for (const m of indexDiff.missing) add({ kind: 'index', table: name, message: `${name}: the index ${m} is missing on the destination`, source: m, destination: null });
    for (const e of indexDiff.extra) add({ kind: 'index', table: name, message: `${name}: the index ${e} exists only on the destination`, source: null, destination: e });

    const actualFks = sameEngine ? actualForeignKeys.map((f) => ({ ...f, columns: [`${f.name}: ${f.columns.join(', ')}`] })) : actualForeignKeys;
    const fkDiff = diffMultisets(
      want.foreignKeys.map((f) => foreignKeyKey(f, mysqlInvolved)),
      actualFks.map((f) => foreignKeyKey(f, mysqlInvolved)),
    );
    for (const m of fkDiff.missing) add({ kind: 'foreign-key', table: name, message: `${name}: the foreign key ${m} is missing on the destination`, source: m, destination: null });
    for (const e of fkDiff.extra) add({ kind: 'foreign-key', table: name, message: `${name}: the foreign key ${e} exists only on the destination`, source: null, destination: e });
  }
}
