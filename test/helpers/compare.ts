/**
 * The oracle of the end-to-end tests: compares a source PostgreSQL database with its
 * destination, independently of Ferry's own code. For every user table of the source (every
 * schema but the system ones):
 * - the table exists on the destination;
 * - its columns have the same names and types (format_type) in the same order, and the same
 *   nullability, default, identity and generated expression;
 * - the row counts are equal;
 * - the rows are equal: both sides are read ordered by the whole row's text, in byte order,
 *   through cursors (a chunk at a time, memory stays bounded), and compared row by row; the
 *   first differing row is reported with both values.
 * Also sequences (settings and last_value), indexes and constraints by name and definition,
 * enum labels and domain constraints, views (and materialized views' definitions), functions
 * and procedures, triggers, each column's collation and each table's replica identity.
 *
 * Both directions: what the destination has in excess is a difference as much as what it
 * lacks: a table of a compared schema that the source does not have (`extra-table`, unless
 * `tables` narrows the comparison), a schema (`extra-schema`, whole-database comparisons only:
 * no `schemas`, `tables` or `schemaMapping`), an index, constraint, sequence, type, view,
 * function or trigger. Ferry's own bookkeeping schema `_ferry` (the replication position and
 * parked changes, src/engines/postgres/postgres-change-applier.ts POSITION_SCHEMA) is not part
 * of the migrated database: it exists while a continuous job replicates into the destination
 * and is dropped at promote when no other job uses it, so it is left out on both sides.
 * Objects that belong to an extension are left out (the extension creates them).
 *
 * Partitioned parents (relkind p) are compared whole (their rows are their partitions' rows) and
 * every partition on its own, so a row in the wrong partition shows. Ordinary tables are read
 * with ONLY: an inheritance parent's own rows, not its children's. Tables without a key, and
 * columns of composite, range, domain and enum types compare by the row's text. With
 * `materializedViews`, materialized views are compared too (populated or not, then their rows).
 *
 * Returns the differences; an empty list means equal.
 */
import type pg from 'pg';

export type DifferenceKind =
  | 'missing-table'
  | 'extra-table'
  | 'missing-schema'
  | 'extra-schema'
  | 'columns'
  | 'column-type'
  | 'column-default'
  | 'column-nullability'
  | 'collation'
  | 'replica-identity'
  | 'view'
  | 'function'
  | 'trigger'
  | 'row-count'
  | 'row'
  | 'sequence'
  | 'index'
  | 'constraint'
  | 'type'
  | 'relation-kind';

export interface Difference {
  kind: DifferenceKind;
  /** "schema.table", "schema.sequence", "schema.table.index", ... */
  object: string;
  message: string;
  source?: unknown;
  destination?: unknown;
}

export interface CompareOptions {
  /** Only these schemas (default: every non-system schema of the source). */
  schemas?: string[];
  /** Only these tables, as "schema.table" (default: all). */
  tables?: string[];
  /** Rows fetched per cursor round trip. Default 50,000. */
  chunkSize?: number;
  /** Skip sequences, indexes, constraints and types (rows and columns only). */
  dataOnly?: boolean;
  /** Stop after this many differences. Default 100. */
  maxDifferences?: number;
  /**
   * Source schema → the schema that holds it on the destination (a job's schema mapping). The
   * destination's objects are looked up under the mapped names, and names inside definitions
   * are printed unqualified on both sides (search_path set to the compared schemas).
   */
  schemaMapping?: Record<string, string>;
  /** Also compare materialized views: populated or not, and their rows. Default false. */
  materializedViews?: boolean;
}

type Client = pg.ClientBase;

/**
 * Ferry's bookkeeping schema on a PostgreSQL destination (POSITION_SCHEMA in
 * src/engines/postgres/postgres-change-applier.ts): the replication position, parked tables and
 * parked changes of the continuous jobs writing into it (src/pipeline/parked-changes.ts). Not
 * migrated data; dropped at promote once no job is left.
 */
const FERRY_SCHEMA = '_ferry';

const SYSTEM_SCHEMA_FILTER = `n.nspname NOT IN ('pg_catalog', 'information_schema', '${FERRY_SCHEMA}') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

interface TableRef {
  schema: string;
  name: string;
  /** pg_class.relkind: 'r' ordinary table (or partition), 'p' partitioned table, 'm' materialized view. */
  kind: string;
}

const KIND_NAMES: Record<string, string> = { r: 'table', p: 'partitioned table', m: 'materialized view' };

/** The FROM item that reads a relation's own rows: ONLY for ordinary tables (not an inheritance parent's children). */
function fromItem(t: TableRef): string {
  return `${t.kind === 'r' ? 'ONLY ' : ''}${qualified(t.schema, t.name)}`;
}

async function listTables(client: Client, options: CompareOptions): Promise<TableRef[]> {
  const kinds = options.materializedViews ? `('r', 'p', 'm')` : `('r', 'p')`;
  const { rows } = await client.query<{ schema: string; name: string; kind: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ${kinds} AND ${SYSTEM_SCHEMA_FILTER}
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`,
  );
  return rows.filter(
    (t) =>
      (options.schemas === undefined || options.schemas.includes(t.schema)) &&
      (options.tables === undefined || options.tables.includes(`${t.schema}.${t.name}`)),
  );
}

/** The relation's relkind on `client` ('r', 'p', 'm'), or null when it has no relation of these kinds by that name. */
async function relationKind(client: Client, t: TableRef): Promise<string | null> {
  const { rows } = await client.query<{ kind: string }>(
    `SELECT c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'm')`,
    [t.schema, t.name],
  );
  return rows[0]?.kind ?? null;
}

async function isPopulated(client: Client, t: TableRef): Promise<boolean> {
  const { rows } = await client.query<{ p: boolean }>(`SELECT relispopulated AS p FROM pg_class WHERE oid = $1::regclass`, [qualified(t.schema, t.name)]);
  return rows[0]!.p;
}

interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
  defaultExpr: string | null;
  identity: string;
  generated: string;
  /** The column's collation when it is not its type's default, else null. */
  collation: string | null;
}

async function columns(client: Client, t: TableRef): Promise<ColumnInfo[]> {
  const { rows } = await client.query<ColumnInfo>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
            pg_get_expr(d.adbin, d.adrelid) AS "defaultExpr", a.attidentity AS identity, a.attgenerated AS generated,
            CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS collation
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [qualified(t.schema, t.name)],
  );
  return rows;
}

function describeColumns(cols: ColumnInfo[]): string[] {
  return cols.map(
    (c) =>
      `${c.name} ${c.type}${c.collation !== null ? ` COLLATE ${c.collation}` : ''}${c.notNull ? ' NOT NULL' : ''}${c.defaultExpr !== null ? ` DEFAULT ${c.defaultExpr}` : ''}` +
      `${c.identity !== '' ? ` IDENTITY(${c.identity})` : ''}${c.generated !== '' ? ` GENERATED(${c.generated})` : ''}`,
  );
}

/** Column by column, when both sides have the same columns in the same order: one finding per property that differs. */
function diffColumns(object: string, a: ColumnInfo[], b: ColumnInfo[], out: Difference[]): void {
  a.forEach((c, i) => {
    const d = b[i] as ColumnInfo;
    const where = `${object}.${c.name}`;
    const check = (kind: DifferenceKind, what: string, x: unknown, y: unknown) => {
      if (x !== y) out.push({ kind, object: where, message: `${what} of ${where} differs`, source: x, destination: y });
    };
    check('column-type', 'the type', c.type, d.type);
    check('column-nullability', 'NOT NULL', c.notNull, d.notNull);
    check('column-default', 'the default', c.defaultExpr, d.defaultExpr);
    check('collation', 'the collation', c.collation ?? 'default', d.collation ?? 'default');
    check('columns', 'identity', c.identity, d.identity);
    check('columns', 'the generation expression', c.generated, d.generated);
  });
}

/** A table's replica identity: default, nothing, full, or the index it uses. */
async function replicaIdentity(client: Client, t: TableRef): Promise<string> {
  const { rows } = await client.query<{ r: string }>(
    `SELECT CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
              ELSE 'index ' || coalesce((SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid AND x.indisreplident), '?') END AS r
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [qualified(t.schema, t.name)],
  );
  return rows[0]!.r;
}

async function count(client: Client, t: TableRef): Promise<number> {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${fromItem(t)}`);
  return Number(rows[0]!.n);
}

/**
 * Session settings that fix how values print, so both sides render the same value the same
 * way whatever the servers' defaults (time zone, date style, float digits, bytea output).
 */
const SESSION_SETTINGS = [
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL DateStyle = 'ISO, MDY'`,
  `SET LOCAL IntervalStyle = 'postgres'`,
  `SET LOCAL extra_float_digits = 1`,
  `SET LOCAL bytea_output = 'hex'`,
  `SET LOCAL work_mem = '128MB'`,
];

async function openRowCursor(client: Client, t: TableRef): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  for (const s of SESSION_SETTINGS) await client.query(s);
  // The whole row's text, ordered in byte order: identical on both sides for identical data,
  // whatever the databases' collations.
  await client.query(`DECLARE ferry_compare_rows NO SCROLL CURSOR FOR SELECT r FROM (SELECT t::text AS r FROM ${fromItem(t)} t) s ORDER BY r COLLATE "C"`);
}

async function fetchRows(client: Client, chunkSize: number): Promise<string[]> {
  const { rows } = await client.query<{ r: string | null }>(`FETCH FORWARD ${chunkSize} FROM ferry_compare_rows`);
  // A row whose every column is NULL prints as "(,,)"; t::text is never NULL for a row.
  return rows.map((row) => row.r ?? '<null row>');
}

async function closeRowCursor(client: Client): Promise<void> {
  await client.query('ROLLBACK').catch(() => undefined);
}

/** Compares the rows of one table; returns the first difference or null. */
async function compareRows(source: Client, destination: Client, t: TableRef, d: TableRef, chunkSize: number): Promise<Difference | null> {
  const object = `${t.schema}.${t.name}`;
  await Promise.all([openRowCursor(source, t), openRowCursor(destination, d)]);
  try {
    let index = 0;
    let a: string[] = [];
    let b: string[] = [];
    let aDone = false;
    let bDone = false;
    for (;;) {
      if (a.length === 0 && !aDone) {
        a = await fetchRows(source, chunkSize);
        if (a.length === 0) aDone = true;
      }
      if (b.length === 0 && !bDone) {
        b = await fetchRows(destination, chunkSize);
        if (b.length === 0) bDone = true;
      }
      if (a.length === 0 && b.length === 0) return null;
      if (a.length === 0 || b.length === 0) {
        return {
          kind: 'row',
          object,
          message: `row ${index + 1} (in sorted order) exists only on the ${a.length === 0 ? 'destination' : 'source'}`,
          source: a[0] ?? null,
          destination: b[0] ?? null,
        };
      }
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) {
        if (a[i] !== b[i]) {
          return {
            kind: 'row',
            object,
            message: `row ${index + i + 1} (in sorted order) differs`,
            source: a[i],
            destination: b[i],
          };
        }
      }
      index += n;
      a = a.slice(n);
      b = b.slice(n);
    }
  } finally {
    await Promise.all([closeRowCursor(source), closeRowCursor(destination)]);
  }
}

async function keyedQuery(client: Client, sql: string): Promise<Map<string, string>> {
  const { rows } = await client.query<{ k: string; v: string }>(sql);
  return new Map(rows.map((r) => [r.k, r.v]));
}

function diffMaps(kind: DifferenceKind, what: string, source: Map<string, string>, destination: Map<string, string>, out: Difference[]): void {
  for (const [key, value] of source) {
    const other = destination.get(key);
    if (other === undefined) {
      out.push({ kind, object: key, message: `${what} ${key} is missing on the destination`, source: value, destination: null });
    } else if (other !== value) {
      out.push({ kind, object: key, message: `${what} ${key} differs`, source: value, destination: other });
    }
  }
  for (const [key, value] of destination) {
    if (!source.has(key)) out.push({ kind, object: key, message: `${what} ${key} exists only on the destination`, source: null, destination: value });
  }
}

function tableFilterSql(tables: TableRef[], relAlias: string, nsAlias: string): string {
  if (tables.length === 0) return 'false';
  const pairs = tables.map((t) => `(${literal(t.schema)}, ${literal(t.name)})`).join(', ');
  return `(${nsAlias}.nspname, ${relAlias}.relname) IN (${pairs})`;
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

async function compareSchemaObjects(
  source: Client,
  destination: Client,
  tables: TableRef[],
  options: CompareOptions,
  out: Difference[],
  onDestination: (t: TableRef) => TableRef,
): Promise<void> {
  // Each side's queries name its own schemas; destination keys and index definitions are read back under the source's names.
  const back = new Map(tables.map((t) => [onDestination(t).schema, t.schema]));
  const sides = [
    { client: source, tables, schemas: [...new Set(tables.map((t) => t.schema))], rename: (k: string) => k },
    {
      client: destination,
      tables: tables.map(onDestination),
      schemas: [...new Set(tables.map((t) => onDestination(t).schema))],
      rename: (k: string) => {
        for (const [destinationSchema, sourceSchema] of back) if (k.startsWith(`${destinationSchema}.`)) return `${sourceSchema}${k.slice(destinationSchema.length)}`;
        return k;
      },
    },
  ];
  const onBoth = async (build: (side: (typeof sides)[number]) => string) =>
    Promise.all(
      sides.map(async (side) => {
        const values = await keyedQuery(side.client, build(side));
        return new Map([...values].map(([k, v]) => [side.rename(k), side === sides[0] ? v : unqualifyIndexTable(v, back)]));
      }),
    );
  const schemaFilterOf = (side: (typeof sides)[number]) => (alias: string) =>
    side.schemas.length === 0 ? 'false' : `${alias}.nspname IN (${side.schemas.map(literal).join(', ')})`;

  // Indexes of the compared tables, by name, with their definitions.
  const indexSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || t.relname || '.' || i.relname AS k, pg_get_indexdef(i.oid) AS v
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace WHERE ${tableFilterSql(side.tables, 't', 'n')}`;
  const [srcIdx, dstIdx] = await onBoth(indexSql);
  diffMaps('index', 'index', srcIdx, dstIdx, out);

  // Table constraints (primary keys, unique, check, foreign keys, exclusion) by name. PostgreSQL
  // 18 also lists NOT NULL as constraints (contype 'n'): nullability is compared with the
  // columns, so that a source older than 18 compares with an 18 destination.
  const constraintSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || t.relname || '.' || c.conname AS k, c.contype::text || ' ' || pg_get_constraintdef(c.oid) AS v
      FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE ${tableFilterSql(side.tables, 't', 'n')} AND c.contype <> 'n'`;
  const [srcCon, dstCon] = await onBoth(constraintSql);
  diffMaps('constraint', 'constraint', srcCon, dstCon, out);

  // Triggers of the compared tables (not the internal ones of foreign keys), with whether they are enabled.
  const triggerSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || t.relname || '.' || g.tgname AS k, g.tgenabled::text || ' ' || pg_get_triggerdef(g.oid) AS v
      FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE ${tableFilterSql(side.tables, 't', 'n')} AND NOT g.tgisinternal`;
  const [srcTrg, dstTrg] = await onBoth(triggerSql);
  diffMaps('trigger', 'trigger', srcTrg, dstTrg, out);

  if (options.tables !== undefined) return; // sequences and types are per schema: only for whole-schema comparisons

  // Views and materialized views by definition (a materialized view's rows only with `materializedViews`).
  const notFromExtension = (classid: string, alias: string) => `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${classid}'::regclass AND e.objid = ${alias}.oid AND e.deptype = 'e')`;
  const viewSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || c.relname AS k, c.relkind::text || ' ' || pg_get_viewdef(c.oid, true) AS v
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND ${schemaFilterOf(side)('n')} AND ${notFromExtension('pg_class', 'c')}`;
  const [srcView, dstView] = await onBoth(viewSql);
  diffMaps('view', 'view', srcView, dstView, out);

  // Functions, procedures and aggregates: signature, result, language, body and properties.
  const functionSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS k,
      concat_ws(' ', p.prokind::text, 'returns', pg_get_function_result(p.oid), 'language', l.lanname, 'volatility', p.provolatile::text,
                'strict', p.proisstrict, 'security definer', p.prosecdef, 'config', array_to_string(p.proconfig, ','), 'body', p.prosrc) AS v
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
      WHERE ${schemaFilterOf(side)('n')} AND ${notFromExtension('pg_proc', 'p')}`;
  const [srcFn, dstFn] = await onBoth(functionSql);
  diffMaps('function', 'function', srcFn, dstFn, out);

  // Sequences: settings and the value the next nextval() continues from.
  const sequenceSql = (side: (typeof sides)[number]) => `SELECT schemaname || '.' || sequencename AS k,
      concat_ws(' ', data_type::text, 'start', start_value, 'increment', increment_by, 'min', min_value, 'max', max_value, 'cycle', cycle,
                'last_value', coalesce(last_value::text, 'never used')) AS v
      FROM pg_sequences s JOIN pg_namespace n ON n.nspname = s.schemaname WHERE ${schemaFilterOf(side)('n')}`;
  const [srcSeq, dstSeq] = await onBoth(sequenceSql);
  diffMaps('sequence', 'sequence', srcSeq, dstSeq, out);

  // Enum labels in order, and domains with their constraints.
  const enumSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || t.typname AS k, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS v
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE ${schemaFilterOf(side)('n')} GROUP BY 1`;
  const [srcEnum, dstEnum] = await onBoth(enumSql);
  diffMaps('type', 'enum type', srcEnum, dstEnum, out);

  const domainSql = (side: (typeof sides)[number]) => `SELECT n.nspname || '.' || t.typname AS k,
      format_type(t.typbasetype, t.typtypmod) || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END ||
      coalesce(' DEFAULT ' || t.typdefault, '') ||
      coalesce((SELECT ' ' || string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname) FROM pg_constraint c WHERE c.contypid = t.oid), '') AS v
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'd' AND ${schemaFilterOf(side)('n')}`;
  const [srcDom, dstDom] = await onBoth(domainSql);
  diffMaps('type', 'domain', srcDom, dstDom, out);
}

export async function compareDatabases(source: Client, destination: Client, options: CompareOptions = {}): Promise<Difference[]> {
  const mapping = options.schemaMapping ?? {};
  if (Object.keys(mapping).length === 0) return compareUnmapped(source, destination, options, (t) => t);
  const schemas = options.schemas ?? [...new Set((await listTables(source, options)).map((t) => t.schema))];
  const paths = await Promise.all([source, destination].map(async (c) => (await c.query<{ search_path: string }>('SHOW search_path')).rows[0]!.search_path));
  const pathOf = (names: string[]) => names.map(quoteIdent).join(', ') || 'pg_catalog';
  await source.query(`SET search_path = ${pathOf(schemas)}`);
  await destination.query(`SET search_path = ${pathOf(schemas.map((s) => mapping[s] ?? s))}`);
  try {
    return await compareUnmapped(source, destination, options, (t) => ({ ...t, schema: mapping[t.schema] ?? t.schema }));
  } finally {
    await source.query(`SET search_path = ${paths[0]}`);
    await destination.query(`SET search_path = ${paths[1]}`);
  }
}

async function compareUnmapped(source: Client, destination: Client, options: CompareOptions, onDestination: (t: TableRef) => TableRef): Promise<Difference[]> {
  const chunkSize = options.chunkSize ?? 50_000;
  const max = options.maxDifferences ?? 100;
  const out: Difference[] = [];
  const tables = await listTables(source, options);
  const present: TableRef[] = [];
  for (const t of tables) {
    if (out.length >= max) break;
    const object = `${t.schema}.${t.name}`;
    const d = onDestination(t);
    const what = KIND_NAMES[t.kind] ?? 'table';
    const destinationKind = await relationKind(destination, d);
    if (destinationKind === null) {
      out.push({ kind: 'missing-table', object, message: `${what} ${object} is missing on the destination` });
      continue;
    }
    if (destinationKind !== t.kind) {
      out.push({ kind: 'relation-kind', object, message: `${object} is a ${what} on the source and a ${KIND_NAMES[destinationKind] ?? destinationKind} on the destination`, source: t.kind, destination: destinationKind });
      continue;
    }
    present.push(t);
    if (t.kind === 'm') {
      const [pa, pb] = await Promise.all([isPopulated(source, t), isPopulated(destination, d)]);
      if (pa !== pb) {
        out.push({ kind: 'row-count', object, message: `materialized view ${object} is ${pa ? '' : 'not '}populated on the source and ${pb ? '' : 'not '}populated on the destination`, source: pa, destination: pb });
        continue;
      }
      if (!pa) continue;
    }
    const [srcCols, dstCols] = await Promise.all([columns(source, t), columns(destination, d)]);
    if (srcCols.map((c) => c.name).join('\n') !== dstCols.map((c) => c.name).join('\n')) {
      out.push({ kind: 'columns', object, message: `columns of ${object} differ`, source: describeColumns(srcCols), destination: describeColumns(dstCols) });
    } else {
      diffColumns(object, srcCols, dstCols, out);
    }
    if (!options.dataOnly && t.kind !== 'm') {
      const [ra, rb] = await Promise.all([replicaIdentity(source, t), replicaIdentity(destination, d)]);
      if (ra !== rb) out.push({ kind: 'replica-identity', object, message: `the replica identity of ${object} differs`, source: ra, destination: rb });
    }
    const [na, nb] = await Promise.all([count(source, t), count(destination, d)]);
    if (na !== nb) {
      out.push({ kind: 'row-count', object, message: `${object} has ${na} rows on the source and ${nb} on the destination`, source: na, destination: nb });
    }
    // Row text depends on the column list: compare rows only when the columns agree.
    if (srcCols.map((c) => c.name).join('\n') === dstCols.map((c) => c.name).join('\n')) {
      const rowDiff = await compareRows(source, destination, t, d, chunkSize);
      if (rowDiff !== null) out.push(rowDiff);
    }
  }
  if (options.tables === undefined && out.length < max) await findExcess(source, destination, tables, options, out, onDestination);
  if (!options.dataOnly && out.length < max) await compareSchemaObjects(source, destination, present, options, out, onDestination);
  return out.slice(0, max);
}

async function listSchemas(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n.nspname AS name FROM pg_namespace n WHERE ${SYSTEM_SCHEMA_FILTER}
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
      ORDER BY n.nspname COLLATE "C"`,
  );
  return rows.map((r) => r.name);
}

/**
 * What the destination has that the source has not: tables of the compared schemas (under
 * their destination names) and, comparing whole databases (no schemas, no mapping), schemas.
 */
async function findExcess(source: Client, destination: Client, tables: TableRef[], options: CompareOptions, out: Difference[], onDestination: (t: TableRef) => TableRef): Promise<void> {
  const mapped = Object.keys(options.schemaMapping ?? {}).length > 0;
  const whole = options.schemas === undefined && !mapped;
  const sourceSchemas = options.schemas ?? (whole ? await listSchemas(source) : [...new Set(tables.map((t) => t.schema))]);
  const toDestination = (schema: string) => onDestination({ schema, name: '', kind: 'r' }).schema;
  const back = new Map(sourceSchemas.map((s) => [toDestination(s), s]));
  if (whole) {
    const destinationSchemas = await listSchemas(destination);
    for (const schema of destinationSchemas) {
      if (!back.has(schema)) out.push({ kind: 'extra-schema', object: schema, message: `schema ${schema} exists only on the destination` });
    }
    for (const schema of sourceSchemas) {
      if (!destinationSchemas.includes(toDestination(schema))) out.push({ kind: 'missing-schema', object: schema, message: `schema ${schema} is missing on the destination` });
    }
  }
  const known = new Set(tables.map((t) => `${t.schema}.${t.name}`));
  const destinationTables = await listTables(destination, { ...options, schemas: [...back.keys()], tables: undefined });
  for (const t of destinationTables) {
    const object = `${back.get(t.schema) ?? t.schema}.${t.name}`;
    if (!known.has(object)) out.push({ kind: 'extra-table', object, message: `${KIND_NAMES[t.kind] ?? 'table'} ${object} exists only on the destination${object === `${t.schema}.${t.name}` ? '' : ` (as ${t.schema}.${t.name})`}` });
  }
}

/** pg_get_indexdef names the table qualified whatever the search path: the destination's schema read back as the source's. */
function unqualifyIndexTable(definition: string, back: Map<string, string>): string {
  for (const [destination, source] of back) {
    if (destination === source) continue;
    definition = definition.replace(` ON ${pgIdent(destination)}.`, ` ON ${pgIdent(source)}.`).replace(` ON ONLY ${pgIdent(destination)}.`, ` ON ONLY ${pgIdent(source)}.`);
  }
  return definition;
}

function pgIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

/** A readable summary for assertion messages. */
export function formatDifferences(differences: Difference[]): string {
  if (differences.length === 0) return 'no differences';
  return differences
    .map((d) => {
      const detail = d.source !== undefined || d.destination !== undefined ? `\n    source:      ${JSON.stringify(d.source)}\n    destination: ${JSON.stringify(d.destination)}` : '';
      return `- [${d.kind}] ${d.message}${detail}`;
    })
    .join('\n');
}
