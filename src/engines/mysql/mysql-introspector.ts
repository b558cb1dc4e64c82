/**
 * Reads the schema of the selected tables from MySQL/MariaDB's information_schema, as the
 * schema model describes it: a MySQL database is a schema, `nativeType` is COLUMN_TYPE
 * (`int(10) unsigned`, `tinyint(1)`, `enum('a','b')`, `decimal(10,2)`, `datetime(6)`), and
 * `nativeDefinition` is SHOW CREATE TABLE. Runs inside whatever transaction the caller
 * holds (the snapshot's, for a consistent copy: SHOW CREATE TABLE and information_schema
 * are not versioned, but a table's definition cannot change under an open consistent
 * snapshot without the snapshot's reads of it failing, error 1412).
 *
 * Beyond what information_schema says directly:
 * - a MariaDB JSON column is a `longtext` with a `json_valid()` check; it is reported as
 *   `json` and the check is left out;
 * - an AUTO_INCREMENT column is an identity column (`identity: 'by-default'`), and its
 *   counter is a SequenceSchema named `<table>_<column>_seq` with `identity: true`,
 *   `lastValue` = AUTO_INCREMENT - 1 (null while unused) and `ownedBy` the column;
 * - every `enum(...)` column gets an EnumTypeSchema named `<table>_<column>` in the table's
 *   database, for destinations that need a named type (PostgreSQL);
 * - a column's `ON UPDATE current_timestamp(n)` follows its default expression
 *   (`current_timestamp(3) ON UPDATE current_timestamp(3)`), as src/core/type-mapping.ts reads it.
 */
import { isTableSelected } from '../../core/object-selection.js';
import { readMysqlSchemaObjects } from './mysql-schema-objects.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type {
  CheckConstraintSchema,
  ColumnSchema,
  ConstraintSchema,
  DatabaseSchema,
  EnumTypeSchema,
  ForeignKeySchema,
  IndexSchema,
  QualifiedName,
  SequenceSchema,
  TableSchema,
} from '../../core/schema.js';
import { loadSql } from './load-sql.js';
import { mysqlText, quoteIdent, quoteQualified } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';

type Row = Record<string, unknown>;

export type MysqlFlavor = 'mariadb' | 'mysql';

/** The databases Ferry never migrates. */
export const SYSTEM_DATABASES = ['mysql', 'sys', 'information_schema', 'performance_schema'];

/** One table as tables.sql lists it. */
export interface MysqlCatalogTable extends QualifiedName {
  storageEngine: string | null;
  estimatedRows: number;
  estimatedBytes: number;
  /** The next AUTO_INCREMENT value, as text, or null when the table has no such column. */
  autoIncrement: string | null;
  /** The table's default collation. */
  collation: string | null;
  hasPrimaryKey: boolean;
}

/** A column whose type Ferry cannot migrate. */
export interface UnsupportedColumn {
  table: QualifiedName;
  column: string;
  type: string;
  reason: string;
}

/** Everything the introspection found: the schema, and what verify reports about it. */
export interface MysqlIntrospection {
  schema: DatabaseSchema;
  /** The selected tables as the catalog lists them. */
  tables: MysqlCatalogTable[];
  unsupportedColumns: UnsupportedColumn[];
  /** Generated columns of the selected tables (`db.table.column`): destinations of another engine get their values, not their expressions. */
  generatedColumns: string[];
}

export interface IntrospectOptions {
  /** Read SHOW CREATE TABLE for every selected table (one round trip each). Default true. */
  nativeDefinitions?: boolean;
  /** Read the views, routines, triggers and events too (readSchema only; needs nativeDefinitions). Default true. */
  objects?: boolean;
}

const NUMERIC_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real', 'year']);
const INTEGER_MAX: Record<string, [string, string]> = {
  tinyint: ['127', '255'],
  smallint: ['32767', '65535'],
  mediumint: ['8388607', '16777215'],
  int: ['2147483647', '4294967295'],
  bigint: ['9223372036854775807', '18446744073709551615'],
};

function str(value: unknown): string {
  return mysqlText(value) ?? '';
}

function num(value: unknown): number {
  return value === null || value === undefined ? -1 : Number(value);
}

function bool(value: unknown): boolean {
  return value === 1 || value === '1' || value === true;
}

function key(schema: string, table: string): string {
  return `${schema}\u0000${table}`;
}

/**
 * The labels of an `enum('a','b')` or `set('a','b')` COLUMN_TYPE. information_schema writes a
 * quote in a label as `''` and a backslash as `\\`.
 */
export function parseEnumLabels(columnType: string): string[] {
  const open = columnType.indexOf('(');
  const labels: string[] = [];
  let i = open + 1;
  while (i > 0 && i < columnType.length && columnType[i] === "'") {
    let label = '';
    i++;
    for (; i < columnType.length; i++) {
      const ch = columnType[i];
      if (ch === "'" && columnType[i + 1] === "'") {
        label += "'";
        i++;
      } else if (ch === '\\' && i + 1 < columnType.length) {
        label += columnType[i + 1];
        i++;
      } else if (ch === "'") {
        i++;
        break;
      } else {
        label += ch;
      }
    }
    labels.push(label);
    if (columnType[i] === ',') i++;
  }
  return labels;
}

/** The name of the enum type a destination creates for an enum column: `<table>_<column>`. */
export function enumTypeName(table: string, column: string): string {
  return `${table}_${column}`;
}

/** The name of the sequence that stands for a table's AUTO_INCREMENT counter. */
export function autoIncrementSequenceName(table: string, column: string): string {
  return `${table}_${column}_seq`;
}

/** A string literal in MySQL's dialect (backslash escapes on, the default sql_mode). */
function mysqlStringLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * COLUMN_DEFAULT as a default expression in MySQL's dialect, or null for no default (or a
 * NULL default). MariaDB (10.2.7+) already prints an expression; MySQL prints the bare
 * literal, or the expression when EXTRA says DEFAULT_GENERATED.
 */
export function defaultExpressionOf(flavor: MysqlFlavor, dataType: string, columnDefault: string | null, extra: string): string | null {
  if (columnDefault === null) return null;
  if (flavor === 'mariadb') return columnDefault === 'NULL' ? null : columnDefault;
  if (/DEFAULT_GENERATED/i.test(extra)) {
    return /^(current_timestamp|now|localtime|localtimestamp)(\(\d*\))?$/i.test(columnDefault) ? columnDefault : `(${columnDefault})`;
  }
  if (NUMERIC_TYPES.has(dataType) || /^b'[01]*'$/.test(columnDefault)) return columnDefault;
  return mysqlStringLiteral(columnDefault);
}

/**
 * Appends the column's `ON UPDATE current_timestamp(n)` (EXTRA) to its default expression:
 * `current_timestamp(3) ON UPDATE current_timestamp(3)`, `NULL ON UPDATE ...` without a default.
 */
export function withOnUpdate(defaultExpression: string | null, extra: string): string | null {
  const onUpdate = /\bon update ([a-z_]+(?:\(\d*\))?)/i.exec(extra)?.[1];
  if (onUpdate === undefined) return defaultExpression;
  return `${defaultExpression ?? 'NULL'} ON UPDATE ${onUpdate.toLowerCase()}`;
}

function statementFromIndexRows(table: QualifiedName, rows: Row[]): { name: string; unique: boolean; plainUnique: boolean; columns: string[]; definition: string } {
  const first = rows[0] ?? {};
  const name = str(first.INDEX_NAME);
  const unique = Number(first.NON_UNIQUE) === 0;
  const indexType = str(first.INDEX_TYPE).toUpperCase();
  let plainUnique = unique;
  const columns: string[] = [];
  const parts = rows.map((row) => {
    const column = mysqlText(row.COLUMN_NAME);
    const expression = mysqlText(row.EXPRESSION);
    const subPart = row.SUB_PART === null || row.SUB_PART === undefined ? null : Number(row.SUB_PART);
    const descending = row.COLLATION === 'D';
    if (column === null || subPart !== null || descending) plainUnique = false;
    if (column !== null) columns.push(column);
    const body = column === null ? `(${expression ?? ''})` : `${quoteIdent(column)}${subPart !== null ? `(${subPart})` : ''}`;
    return `${body}${descending ? ' DESC' : ''}`;
  });
  const kind = indexType === 'FULLTEXT' ? 'FULLTEXT ' : indexType === 'SPATIAL' ? 'SPATIAL ' : unique ? 'UNIQUE ' : '';
  const using = indexType === 'HASH' ? ' USING HASH' : '';
  return {
    name,
    unique,
    plainUnique,
    columns,
    definition: `CREATE ${kind}INDEX ${quoteIdent(name)} ON ${quoteQualified(table)} (${parts.join(', ')})${using}`,
  };
}

export class MysqlIntrospector {
  /**
   * @param database the profile's database: when set, only its tables are seen; when null,
   *   every database but the system ones (the selection then names databases).
   */
  constructor(
    private readonly connection: MysqlConnection,
    private readonly flavor: MysqlFlavor,
    private readonly database: string | null,
  ) {}

  /** MariaDB or MySQL, from the server's version string. */
  static async flavorOf(connection: MysqlConnection): Promise<MysqlFlavor> {
    const [rows] = await connection.query('SELECT VERSION() AS version');
    return /mariadb/i.test(str((rows as Row[])[0]?.version)) ? 'mariadb' : 'mysql';
  }

  /** Every base table in scope (the profile's database, or every non-system one), ordered by database then name. */
  async listTables(): Promise<MysqlCatalogTable[]> {
    // MySQL 8 caches TABLE_ROWS and AUTO_INCREMENT for a day unless told otherwise.
    if (this.flavor === 'mysql') await this.connection.query('SET SESSION information_schema_stats_expiry = 0').catch(() => undefined);
    const [rows] = await this.connection.query(loadSql('tables.sql'));
    return (rows as Row[])
      .filter((row) => this.database === null || str(row.schema) === this.database)
      .map((row) => ({
        schema: str(row.schema),
        name: str(row.name),
        storageEngine: mysqlText(row.engine),
        estimatedRows: num(row.estimated_rows),
        estimatedBytes: num(row.estimated_bytes),
        autoIncrement: mysqlText(row.auto_increment),
        collation: mysqlText(row.collation),
        hasPrimaryKey: bool(row.has_primary_key),
      }));
  }

  /** The schema of the selected tables, ordered by database then name. */
  async readSchema(selection: ObjectSelection, options: IntrospectOptions = {}): Promise<DatabaseSchema> {
    const schema = (await this.introspect(selection, options)).schema;
    if (options.objects !== false && options.nativeDefinitions !== false && schema.tables.length > 0) {
      schema.objects = await readMysqlSchemaObjects(this.connection, selection, schema.tables);
    }
    return schema;
  }

  /** The schema plus what verify needs to report (unsupported types, generated columns). */
  async introspect(selection: ObjectSelection, options: IntrospectOptions = {}): Promise<MysqlIntrospection> {
    const tables = (await this.listTables()).filter((t) => isTableSelected(selection, t.schema, t.name));
    const databases = [...new Set(tables.map((t) => t.schema))];
    const byKey = new Map<string, { catalog: MysqlCatalogTable; table: TableSchema }>();
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
        replicaIdentity: null,
      };
      byKey.set(key(t.schema, t.name), { catalog: t, table });
      return table;
    });
    const empty: MysqlIntrospection = {
      schema: { engine: 'mysql', schemas: [], tables: [], sequences: [], enums: [], domains: [], extensions: [] },
      tables: [],
      unsupportedColumns: [],
      generatedColumns: [],
    };
    if (tables.length === 0) return empty;

    const columnRows = await this.query('columns.sql', databases);
    const checkRows = await this.query(this.flavor === 'mariadb' ? 'check-constraints-mariadb.sql' : 'check-constraints-mysql.sql', databases);
    const indexRows = await this.query('indexes.sql', databases);
    const foreignKeyRows = await this.query('foreign-keys.sql', databases);
    const spatialRows = await this.query(this.flavor === 'mariadb' ? 'spatial-columns-mariadb.sql' : 'spatial-columns-mysql.sql', databases);
    const sridByColumn = new Map(spatialRows.filter((row) => num(row.srid) > 0).map((row) => [`${key(str(row.schema), str(row.table_name))}\u0000${str(row.name)}`, num(row.srid)]));

    // MariaDB's JSON is longtext plus a json_valid() check on the column.
    const jsonChecks = new Set<string>();
    for (const row of checkRows) {
      const match = /^json_valid\(`((?:[^`]|``)+)`\)$/.exec(str(row.check_clause).trim());
      if (match?.[1] !== undefined) jsonChecks.add(`${key(str(row.schema), str(row.table_name))}\u0000${match[1].replace(/``/g, '`')}\u0000${str(row.name)}`);
    }
    const isJsonCheck = (schema: string, table: string, column: string, name: string) => jsonChecks.has(`${key(schema, table)}\u0000${column}\u0000${name}`);
    const jsonColumns = new Set([...jsonChecks].map((k) => k.split('\u0000').slice(0, 3).join('\u0000')));

    const unsupportedColumns: UnsupportedColumn[] = [];
    const generatedColumns: string[] = [];
    const enums: EnumTypeSchema[] = [];
    const sequences: SequenceSchema[] = [];
    for (const row of columnRows) {
      const schema = str(row.schema);
      const tableName = str(row.table_name);
      const entry = byKey.get(key(schema, tableName));
      if (entry === undefined) continue;
      const name = str(row.name);
      const dataType = str(row.data_type).toLowerCase();
      const extra = str(row.extra);
      const isJson = dataType === 'json' || (dataType === 'longtext' && jsonColumns.has(`${key(schema, tableName)}\u0000${name}`));
      const nativeType = isJson ? 'json' : str(row.column_type);
      const generation = mysqlText(row.generation_expression);
      const generated = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.test(extra) && generation !== null && generation !== '';
      const autoIncrement = /\bauto_increment\b/i.test(extra);
      const collation = mysqlText(row.collation);
      const column: ColumnSchema = {
        name,
        nativeType,
        nullable: str(row.is_nullable) === 'YES',
        defaultExpression: generated || autoIncrement ? null : withOnUpdate(defaultExpressionOf(this.flavor, dataType, mysqlText(row.column_default), extra), extra),
        identity: autoIncrement ? 'by-default' : null,
        generatedExpression: generated ? generation : null,
        collation: !isJson && collation !== null && collation !== entry.catalog.collation ? collation : null,
      };
      const srid = sridByColumn.get(`${key(schema, tableName)}\u0000${name}`);
      if (srid !== undefined) column.srid = srid;
      entry.table.columns.push(column);
      if (generated) generatedColumns.push(`${schema}.${tableName}.${name}`);
      if (dataType === 'enum') enums.push({ schema, name: enumTypeName(tableName, name), labels: parseEnumLabels(nativeType) });
      if (autoIncrement) {
        const unsigned = /\bunsigned\b/i.test(nativeType);
        const next = entry.catalog.autoIncrement;
        sequences.push({
          schema,
          name: autoIncrementSequenceName(tableName, name),
          dataType: `${dataType}${unsigned ? ' unsigned' : ''}`,
          start: '1',
          increment: '1',
          minValue: '1',
          maxValue: INTEGER_MAX[dataType]?.[unsigned ? 1 : 0] ?? '9223372036854775807',
          cache: '1',
          cycle: false,
          lastValue: next === null || BigInt(next) <= 1n ? null : (BigInt(next) - 1n).toString(),
          ownedBy: { table: { schema, name: tableName }, column: name },
          identity: true,
        });
      }
    }

    for (const row of checkRows) {
      const schema = str(row.schema);
      const tableName = str(row.table_name);
      const entry = byKey.get(key(schema, tableName));
      if (entry === undefined) continue;
      const clause = str(row.check_clause);
      const match = /^json_valid\(`((?:[^`]|``)+)`\)$/.exec(clause.trim());
      if (match?.[1] !== undefined && isJsonCheck(schema, tableName, match[1].replace(/``/g, '`'), str(row.name))) continue;
      const check: CheckConstraintSchema = { name: str(row.name), definition: `CHECK (${clause})` };
      entry.table.checkConstraints.push(check);
    }

    const indexGroups = new Map<string, Row[]>();
    for (const row of indexRows) {
      const k = `${key(str(row.TABLE_SCHEMA), str(row.TABLE_NAME))}\u0000${str(row.INDEX_NAME)}`;
      const group = indexGroups.get(k);
      if (group === undefined) indexGroups.set(k, [row]);
      else group.push(row);
    }
    for (const rows of indexGroups.values()) {
      const first = rows[0] as Row;
      const entry = byKey.get(key(str(first.TABLE_SCHEMA), str(first.TABLE_NAME)));
      if (entry === undefined) continue;
      const index = statementFromIndexRows(entry.table, rows);
      if (index.name === 'PRIMARY') {
        entry.table.primaryKey = { name: 'PRIMARY', columns: index.columns } satisfies ConstraintSchema;
      } else if (index.plainUnique) {
        entry.table.uniqueConstraints.push({ name: index.name, columns: index.columns });
      } else {
        entry.table.indexes.push({ name: index.name, definition: index.definition } satisfies IndexSchema);
      }
    }

    const foreignKeys = new Map<string, { table: TableSchema; name: string; columns: string[]; referenced: QualifiedName; referencedColumns: string[]; onUpdate: string; onDelete: string }>();
    for (const row of foreignKeyRows) {
      const entry = byKey.get(key(str(row.schema), str(row.table_name)));
      if (entry === undefined) continue;
      const k = `${key(str(row.schema), str(row.table_name))}\u0000${str(row.name)}`;
      let fk = foreignKeys.get(k);
      if (fk === undefined) {
        fk = {
          table: entry.table,
          name: str(row.name),
          columns: [],
          referenced: { schema: str(row.referenced_schema), name: str(row.referenced_table) },
          referencedColumns: [],
          onUpdate: str(row.update_rule).toUpperCase(),
          onDelete: str(row.delete_rule).toUpperCase(),
        };
        foreignKeys.set(k, fk);
      }
      fk.columns.push(str(row.column_name));
      fk.referencedColumns.push(str(row.referenced_column));
    }
    for (const fk of foreignKeys.values()) {
      // RESTRICT and NO ACTION behave alike in InnoDB (checked at once); the default is left unsaid.
      const rule = (what: string, action: string) => (action === '' || action === 'RESTRICT' || action === 'NO ACTION' ? '' : ` ON ${what} ${action}`);
      const definition =
        `FOREIGN KEY (${fk.columns.map(quoteIdent).join(', ')}) REFERENCES ${quoteQualified(fk.referenced)} (${fk.referencedColumns.map(quoteIdent).join(', ')})` +
        `${rule('DELETE', fk.onDelete)}${rule('UPDATE', fk.onUpdate)}`;
      fk.table.foreignKeys.push({
        name: fk.name, definition, referencedTable: fk.referenced, columns: fk.columns, referencedColumns: fk.referencedColumns,
        ...(fk.onDelete === '' ? {} : { onDelete: fk.onDelete }), ...(fk.onUpdate === '' ? {} : { onUpdate: fk.onUpdate }),
      } satisfies ForeignKeySchema);
    }

    if (options.nativeDefinitions !== false) {
      for (const table of tableSchemas) {
        const [rows] = await this.connection.query(`SHOW CREATE TABLE ${quoteQualified(table)}`);
        const row = (rows as Row[])[0];
        const definition = row === undefined ? null : mysqlText(row['Create Table']);
        if (definition !== null) table.nativeDefinition = definition;
      }
    }

    return {
      schema: {
        engine: 'mysql',
        schemas: databases,
        tables: tableSchemas,
        sequences,
        enums,
        domains: [],
        extensions: [],
      },
      tables,
      unsupportedColumns,
      generatedColumns,
    };
  }

  private async query(file: string, databases: string[]): Promise<Row[]> {
    const [rows] = await this.connection.query(loadSql(file), [databases]);
    return rows as Row[];
  }
}
