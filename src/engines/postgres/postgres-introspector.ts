/**
 * Reads the schema of the selected tables from the PostgreSQL catalogs, as the schema
 * model describes it. Runs on a connection with Ferry's session settings (search_path =
 * pg_catalog, so that every printed name is schema-qualified), inside whatever transaction
 * the caller holds: the snapshot's, for a consistent copy.
 *
 * Scope: ordinary tables and partitioned tables, seen one of two ways (`partitions`): as
 * their leaf partitions (a PostgreSQL destination: data is copied and replicated per leaf,
 * the destination gets the same partitions from the schema script), or as their root tables
 * (another engine: one table whose rows are every partition's, replicated through the root).
 * Tables that belong to an extension are left out.
 */
import type pg from 'pg';
import { isTableSelected } from '../../core/object-selection.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { EngineKind } from '../../core/connection-profile.js';
import type {
  CheckConstraintSchema,
  ColumnSchema,
  DatabaseSchema,
  DomainTypeSchema,
  EnumTypeSchema,
  QualifiedName,
  SequenceSchema,
  TableSchema,
} from '../../core/schema.js';
import { loadSql } from './load-sql.js';
import { pgBool, pgJson, pgText, quoteQualified } from './postgres-connection.js';

type Row = Record<string, unknown>;

/** One table (or partitioned table) as tables.sql lists it. */
export interface CatalogTable extends QualifiedName {
  oid: string;
  kind: 'r' | 'p';
  isPartition: boolean;
  /** UNLOGGED: copied, but its changes never reach the WAL. */
  unlogged: boolean;
  estimatedRows: number;
  estimatedBytes: number;
  replicaIdentity: string | null;
  hasPrimaryKey: boolean;
  /** The current role has USAGE on the table's schema. */
  schemaUsage: boolean;
  /** The current role has SELECT on the table. */
  tableSelect: boolean;
}

/** A column whose type Ferry cannot create on the destination. */
export interface UnsupportedColumn {
  table: QualifiedName;
  column: string;
  type: string;
  reason: string;
}

/** Everything the introspection found: the schema, and what verify reports about it. */
export interface Introspection {
  schema: DatabaseSchema;
  /** The selected tables as the catalog lists them (ordinary tables only). */
  tables: CatalogTable[];
  /** Selected partitioned tables and partitions that are not data units in this view (roots in 'leaves', leaves in 'roots'). */
  partitioned: QualifiedName[];
  unsupportedColumns: UnsupportedColumn[];
  /** Sequences in the schema the current role may not read. */
  unreadableSequences: QualifiedName[];
}

export interface IntrospectOptions {
  /** Read each sequence's current value (needs SELECT on it). Default true. */
  readSequenceValues?: boolean;
  /**
   * How partitioned tables are seen: 'leaves' (default; a PostgreSQL destination) lists every
   * leaf partition as a table and no partitioned parent; 'roots' (another engine) lists each
   * top-level partitioned table as one table (`partitioned: true`) and none of its partitions.
   */
  partitions?: 'leaves' | 'roots';
  /**
   * The destination's engine. Within PostgreSQL the schema script creates every user type
   * (composite, range, base types), so only pseudo-types are unsupported.
   */
  destinationEngine?: EngineKind;
}

interface TypeRow {
  oid: string;
  schema: string;
  name: string;
  kind: string;
  elementOid: string | null;
  baseOid: string | null;
  baseType: string | null;
  notNull: boolean;
  defaultExpression: string | null;
  labels: string[];
  checks: CheckConstraintSchema[];
  extension: string | null;
}

const UNSUPPORTED_KINDS: Record<string, string> = {
  c: 'composite types are not supported yet',
  r: 'range types are not supported yet',
  m: 'multirange types are not supported yet',
  p: 'pseudo-types cannot be stored',
  b: 'base types defined outside an extension are not supported',
};

function str(value: unknown): string {
  return String(value);
}

function num(value: unknown): number {
  return value === null || value === undefined ? -1 : Number(value);
}

export class PostgresIntrospector {
  constructor(private readonly client: pg.Client) {}

  /**
   * Every ordinary and partitioned table outside the system schemas, ordered by schema then
   * name. estimatedBytes is -1 here: introspect() reads sizes for the selected tables only.
   */
  async listTables(): Promise<CatalogTable[]> {
    const result = await this.client.query(loadSql('tables.sql'));
    return result.rows.map((row: Row) => ({
      oid: str(row.oid),
      schema: str(row.schema),
      name: str(row.name),
      kind: row.kind === 'p' ? 'p' : 'r',
      isPartition: pgBool(row.is_partition),
      unlogged: pgBool(row.unlogged),
      estimatedRows: num(row.estimated_rows),
      estimatedBytes: -1,
      replicaIdentity: pgText(row.replica_identity),
      hasPrimaryKey: pgBool(row.has_primary_key),
      schemaUsage: pgBool(row.schema_usage),
      tableSelect: pgBool(row.table_select),
    }));
  }

  /** The schema of the selected ordinary tables, ordered by schema then name. */
  async readSchema(selection: ObjectSelection, options: IntrospectOptions = {}): Promise<DatabaseSchema> {
    return (await this.introspect(selection, options)).schema;
  }

  /** The schema plus what verify needs to report (partitioned tables, unsupported types). */
  async introspect(selection: ObjectSelection, options: IntrospectOptions = {}): Promise<Introspection> {
    const all = await this.listTables();
    const matching = all.filter((t) => isTableSelected(selection, t.schema, t.name));
    const roots = options.partitions === 'roots';
    const isUnit = (t: CatalogTable) => (roots ? !t.isPartition : t.kind === 'r');
    const tables = matching.filter(isUnit);
    const partitioned = matching.filter((t) => !isUnit(t)).map(({ schema, name }) => ({ schema, name }));
    const sameEngine = (options.destinationEngine ?? 'postgresql') === 'postgresql';
    const oids = tables.map((t) => t.oid);

    // One query at a time: a pg client does not pipeline, and queueing is deprecated in pg 9.
    const sizes = new Map((await this.query('table-sizes.sql', oids)).map((row) => [str(row.oid), num(row.bytes)]));
    for (const table of tables) table.estimatedBytes = sizes.get(table.oid) ?? -1;
    const columnRows = await this.query('columns.sql', oids);
    const constraintRows = await this.query('constraints.sql', oids);
    const indexRows = await this.query('indexes.sql', oids);
    const sequenceRows = await this.query('sequences.sql', oids);
    const typeRows = await this.query('types.sql', oids);
    const extensionRows = await this.query('extensions.sql', oids);

    const byOid = new Map<string, TableSchema>();
    const tableSchemas: TableSchema[] = tables.map((t) => {
      const table: TableSchema = {
        schema: t.schema,
        name: t.name,
        columns: [],
        primaryKey: null,
        uniqueConstraints: [],
        checkConstraints: [],
        indexes: [],
        foreignKeys: [],
        estimatedRows: t.estimatedRows,
        estimatedBytes: t.estimatedBytes,
        replicaIdentity: t.replicaIdentity,
        ...(t.kind === 'p' ? { partitioned: true } : {}),
        ...(t.unlogged ? { unlogged: true } : {}),
      };
      byOid.set(t.oid, table);
      return table;
    });

    const columnTypes: { table: TableSchema; column: string; typeOid: string }[] = [];
    for (const row of columnRows) {
      const table = byOid.get(str(row.table_oid));
      if (table === undefined) continue;
      const column: ColumnSchema = {
        name: str(row.name),
        nativeType: str(row.native_type),
        nullable: !pgBool(row.not_null),
        defaultExpression: pgText(row.default_expression),
        identity: row.identity === 'always' ? 'always' : row.identity === 'by-default' ? 'by-default' : null,
        generatedExpression: pgText(row.generated_expression),
        collation: pgText(row.collation),
      };
      table.columns.push(column);
      columnTypes.push({ table, column: column.name, typeOid: str(row.type_oid) });
    }

    for (const row of constraintRows) {
      const table = byOid.get(str(row.table_oid));
      if (table === undefined) continue;
      const name = str(row.name);
      const definition = str(row.definition);
      const columns = pgJson<string[]>(row.columns, []);
      switch (row.type) {
        case 'p':
          table.primaryKey = { name, columns };
          break;
        case 'u':
          table.uniqueConstraints.push({ name, columns });
          break;
        case 'c':
          table.checkConstraints.push({ name, definition });
          break;
        case 'f':
          table.foreignKeys.push({
            name,
            definition,
            referencedTable: { schema: str(row.referenced_schema), name: str(row.referenced_name) },
          });
          break;
      }
    }

    for (const row of indexRows) {
      byOid.get(str(row.table_oid))?.indexes.push({ name: str(row.name), definition: str(row.definition) });
    }

    const types = typeRows.map(toTypeRow);
    const typesByOid = new Map(types.map((t) => [t.oid, t]));
    const enums: EnumTypeSchema[] = types
      .filter((t) => t.kind === 'e' && t.extension === null)
      .map((t) => ({ schema: t.schema, name: t.name, labels: t.labels }));
    const domains = orderDomains(types.filter((t) => t.kind === 'd' && t.extension === null), typesByOid);
    const extensions = new Set<string>();
    for (const t of types) if (t.extension !== null) extensions.add(t.extension);
    for (const row of extensionRows) extensions.add(str(row.name));
    extensions.delete('plpgsql');

    const unsupportedColumns: UnsupportedColumn[] = [];
    for (const { table, column, typeOid } of columnTypes) {
      const problem = findUnsupportedType(typeOid, typesByOid, sameEngine);
      if (problem !== null) {
        unsupportedColumns.push({
          table: { schema: table.schema, name: table.name },
          column,
          type: `${problem.type.schema}.${problem.type.name}`,
          reason: problem.reason,
        });
      }
    }

    const selectedOids = new Set(oids);
    const chosen = sequenceRows.filter((row) => {
      const owner = pgText(row.owner_oid);
      if (owner !== null && selectedOids.has(owner)) return true;
      if (pgBool(row.used_by_selected)) return true;
      return owner === null && isTableSelected(selection, str(row.schema), str(row.name));
    });
    const unreadableSequences = chosen
      .filter((row) => !pgBool(row.can_select))
      .map((row) => ({ schema: str(row.schema), name: str(row.name) }));
    const sequences: SequenceSchema[] = chosen.map((row) => ({
      schema: str(row.schema),
      name: str(row.name),
      dataType: str(row.data_type),
      start: str(row.start_value),
      increment: str(row.increment_by),
      minValue: str(row.min_value),
      maxValue: str(row.max_value),
      cache: str(row.cache_size),
      cycle: pgBool(row.cycle),
      lastValue: null,
      ownedBy:
        row.owner_table === null || row.owner_table === undefined
          ? null
          : { table: { schema: str(row.owner_schema), name: str(row.owner_table) }, column: str(row.owner_column) },
      identity: pgBool(row.identity),
    }));
    if (options.readSequenceValues !== false) await this.readSequenceValues(sequences);

    const schemas = [...new Set(tableSchemas.map((t) => t.schema))];
    const grantRoles = ((await this.client.query(loadSql('grant-roles.sql'), [schemas])).rows as Row[]).map((r) => str(r.role));
    return {
      schema: {
        engine: 'postgresql',
        schemas,
        grantRoles,
        tables: tableSchemas,
        sequences,
        enums,
        domains,
        extensions: [...extensions].sort(),
      },
      tables,
      partitioned,
      unsupportedColumns,
      unreadableSequences,
    };
  }

  private async query(file: string, oids: string[]): Promise<Row[]> {
    const result = await this.client.query(loadSql(file), [oids]);
    return result.rows as Row[];
  }

  /** Reads last_value and is_called from each sequence relation, in one statement. */
  private async readSequenceValues(sequences: SequenceSchema[]): Promise<void> {
    if (sequences.length === 0) return;
    const sql = sequences
      .map((s, i) => `SELECT ${i} AS i, last_value::text AS last_value, is_called FROM ${quoteQualified(s)}`)
      .join(' UNION ALL ');
    const result = await this.client.query(sql);
    for (const row of result.rows as Row[]) {
      const sequence = sequences[Number(row.i)];
      if (sequence !== undefined) sequence.lastValue = pgBool(row.is_called) ? str(row.last_value) : null;
    }
  }
}

function toTypeRow(row: Row): TypeRow {
  return {
    oid: str(row.oid),
    schema: str(row.schema),
    name: str(row.name),
    kind: str(row.kind),
    elementOid: pgText(row.element_oid),
    baseOid: pgText(row.base_oid),
    baseType: pgText(row.base_type),
    notNull: pgBool(row.not_null),
    defaultExpression: pgText(row.default_expression),
    labels: pgJson<string[]>(row.labels, []),
    checks: pgJson<CheckConstraintSchema[]>(row.checks, []),
    extension: pgText(row.extension),
  };
}

/** The types a type is built from: an array's element, a domain's base type. */
function partsOf(type: TypeRow): string[] {
  return [type.elementOid, type.baseOid].filter((oid): oid is string => oid !== null);
}

/** Domains ordered so that a domain comes after the domains it is defined over. */
function orderDomains(domains: TypeRow[], typesByOid: Map<string, TypeRow>): DomainTypeSchema[] {
  const ordered: DomainTypeSchema[] = [];
  const visited = new Set<string>();
  const visit = (oid: string): void => {
    if (visited.has(oid)) return;
    visited.add(oid);
    const type = typesByOid.get(oid);
    if (type === undefined) return;
    for (const part of partsOf(type)) visit(part);
    if (type.kind === 'd' && type.extension === null) {
      ordered.push({
        schema: type.schema,
        name: type.name,
        baseType: type.baseType ?? 'text',
        notNull: type.notNull,
        defaultExpression: type.defaultExpression,
        checks: type.checks,
      });
    }
  };
  for (const domain of domains) visit(domain.oid);
  return ordered;
}

/** The first user type under `oid` that cannot be created on the destination, if any. */
function findUnsupportedType(oid: string, typesByOid: Map<string, TypeRow>, sameEngine: boolean): { type: TypeRow; reason: string } | null {
  const seen = new Set<string>();
  const walk = (current: string): { type: TypeRow; reason: string } | null => {
    if (seen.has(current)) return null;
    seen.add(current);
    const type = typesByOid.get(current);
    // Built-in types are not in the map: nothing to create.
    if (type === undefined || type.extension !== null) return null;
    if (type.elementOid === null && UNSUPPORTED_KINDS[type.kind] !== undefined && (!sameEngine || type.kind === 'p')) {
      return { type, reason: UNSUPPORTED_KINDS[type.kind] ?? 'not supported' };
    }
    for (const part of partsOf(type)) {
      const found = walk(part);
      if (found !== null) return found;
    }
    return null;
  };
  return walk(oid);
}
