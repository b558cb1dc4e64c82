/**
 * Creates the source schema on a PostgreSQL destination: pre-data objects (schemas,
 * extensions, enums, domains, sequences, tables with their keys and checks) in one
 * transaction before the load, post-data objects (indexes, foreign keys) after it, and the
 * sequence values last. Every step is idempotent: what exists is kept, only what is missing
 * is created, so a step can run again after a crash.
 *
 * A MySQL/MariaDB schema is first mapped by docs/type-mapping.md (mapMysqlSchemaToPostgres);
 * its check constraints are tried one by one, and one PostgreSQL refuses (a MySQL-only
 * function, a comparison the mapped types do not allow) is left out: verifyDestination
 * rehearses the creation and warns about each.
 */
import type pg from 'pg';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type {
  ColumnSchema,
  DatabaseSchema,
  DomainTypeSchema,
  EnumTypeSchema,
  ForeignKeySchema,
  QualifiedName,
  SequenceSchema,
  TableSchema,
} from '../../core/schema.js';
import { mapMysqlSchemaToPostgres } from '../../core/type-mapping.js';
import { hasReferentialAction, orphanRowsError } from '../../core/foreign-key-actions.js';
import type { UnsupportedColumn } from '../../core/type-mapping.js';
import type { PostDataOptions, CreatedObject, DestinationTableState, SchemaObjectOptions, SchemaObjectPhase, SchemaScript, SchemaScriptOptions, SchemaScriptResult, SchemaWriter } from '../engine.js';
import { applySchemaPhase, buildIndexesInParallel } from './postgres-schema-script.js';
import { loadSql } from './load-sql.js';
import { connectPostgres, endQuietly, errorContext, pgBool, pgJson, pgText, quoteIdent, quoteLiteral, quoteQualified } from './postgres-connection.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';
import { classifyPostgresError } from './postgres-error-classifier.js';

type Row = Record<string, unknown>;

/** A destination table's state plus the kind of relation that holds its name. */
export interface DestinationRelationState extends DestinationTableState {
  /** pg_class.relkind when it exists: 'r' table, 'p' partitioned table, 'v' view, ... */
  kind: string | null;
}

/** A problem with one existing destination table. */
export interface DestinationTableProblem {
  table: QualifiedName;
  code: 'DESTINATION_NOT_EMPTY' | 'DESTINATION_TABLE_MISMATCH';
  /** What differs, e.g. "missing columns: a, b". */
  reason: string;
}

export interface CreatePreDataOptions {
  /**
   * Refuse existing tables that hold rows (DESTINATION_NOT_EMPTY). Off by default: the
   * pipeline calls createPreDataObjects again on every attempt, after earlier attempts have
   * loaded some tables, so rows there are the job's own. verifyDestination refuses tables
   * with rows before the first load.
   */
  requireEmptyTables?: boolean;
  /** With requireEmptyTables: tables this job created or loaded earlier, whose rows are its own. */
  ownedTables?: QualifiedName[];
}

const RELATION_KINDS: Record<string, string> = {
  p: 'a partitioned table',
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
};

function key(object: QualifiedName): string {
  return JSON.stringify([object.schema, object.name]);
}

function describe(object: QualifiedName): string {
  return `${object.schema}.${object.name}`;
}

/** Compares an existing destination table with the source table; null when it can be reused. */
export function compareTable(table: TableSchema, state: DestinationRelationState): DestinationTableProblem | null {
  if (!state.exists) return null;
  const name = { schema: table.schema, name: table.name };
  if (state.kind !== 'r') {
    return {
      table: name,
      code: 'DESTINATION_TABLE_MISMATCH',
      reason: `it exists as ${RELATION_KINDS[state.kind ?? ''] ?? 'another kind of relation'}, not a table`,
    };
  }
  const source = new Set(table.columns.map((c) => c.name));
  const destination = new Set(state.columns);
  const missing = [...source].filter((c) => !destination.has(c));
  const extra = [...destination].filter((c) => !source.has(c));
  if (missing.length > 0 || extra.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing columns ${missing.join(', ')}`);
    if (extra.length > 0) parts.push(`extra columns ${extra.join(', ')}`);
    return { table: name, code: 'DESTINATION_TABLE_MISMATCH', reason: parts.join('; ') };
  }
  if (state.hasRows) return { table: name, code: 'DESTINATION_NOT_EMPTY', reason: 'it holds rows' };
  return null;
}

/** The FerryError for destination table problems: mismatches first, then tables with rows. */
export function destinationTableError(problems: DestinationTableProblem[]): FerryError | null {
  const mismatched = problems.filter((p) => p.code === 'DESTINATION_TABLE_MISMATCH');
  if (mismatched.length > 0) {
    return new FerryError(
      'DESTINATION_TABLE_MISMATCH',
      `These destination tables already exist with a different shape: ${mismatched.map((p) => `${describe(p.table)} (${p.reason})`).join('; ')}. Drop or rename them on the destination, or exclude them from the job.`,
      { details: { tables: mismatched.map((p) => describe(p.table)) } },
    );
  }
  const notEmpty = problems.filter((p) => p.code === 'DESTINATION_NOT_EMPTY');
  if (notEmpty.length > 0) {
    return new FerryError(
      'DESTINATION_NOT_EMPTY',
      `These destination tables already hold rows: ${notEmpty.map((p) => describe(p.table)).join(', ')}. Empty them (TRUNCATE) or drop them on the destination, or exclude them from the job.`,
      { details: { tables: notEmpty.map((p) => describe(p.table)) } },
    );
  }
  return null;
}

function sequenceOptions(sequence: SequenceSchema): string {
  return [
    `INCREMENT BY ${sequence.increment}`,
    `MINVALUE ${sequence.minValue}`,
    `MAXVALUE ${sequence.maxValue}`,
    `START WITH ${sequence.start}`,
    `CACHE ${sequence.cache}`,
    sequence.cycle ? 'CYCLE' : 'NO CYCLE',
  ].join(' ');
}

function isNotValid(definition: string): boolean {
  return /\sNOT VALID$/.test(definition);
}

function createSequenceSql(sequence: SequenceSchema): string {
  return `CREATE SEQUENCE IF NOT EXISTS ${quoteQualified(sequence)} AS ${sequence.dataType} ${sequenceOptions(sequence)}`;
}

function createEnumSql(type: EnumTypeSchema): string {
  return `CREATE TYPE ${quoteQualified(type)} AS ENUM (${type.labels.map(quoteLiteral).join(', ')})`;
}

function createDomainSql(domain: DomainTypeSchema): string {
  const parts = [`CREATE DOMAIN ${quoteQualified(domain)} AS ${domain.baseType}`];
  if (domain.defaultExpression !== null) parts.push(`DEFAULT ${domain.defaultExpression}`);
  if (domain.notNull) parts.push('NOT NULL');
  for (const check of domain.checks) {
    // CREATE DOMAIN has no NOT VALID; the destination starts empty, so checking is harmless.
    parts.push(`CONSTRAINT ${quoteIdent(check.name)} ${check.definition.replace(/\sNOT VALID$/, '')}`);
  }
  return parts.join(' ');
}

function columnSql(table: TableSchema, column: ColumnSchema, sequences: SequenceSchema[]): string {
  const parts = [quoteIdent(column.name), column.nativeType];
  if (column.collation !== null) parts.push(`COLLATE ${column.collation}`);
  if (column.generatedExpression !== null) {
    parts.push(`GENERATED ALWAYS AS (${column.generatedExpression}) STORED`);
  } else if (column.identity !== null) {
    const sequence = sequences.find(
      (s) => s.identity && s.ownedBy !== null && s.ownedBy.column === column.name && key(s.ownedBy.table) === key(table),
    );
    const kind = column.identity === 'always' ? 'ALWAYS' : 'BY DEFAULT';
    const options = sequence === undefined ? '' : ` (SEQUENCE NAME ${quoteQualified(sequence)} ${sequenceOptions(sequence)})`;
    parts.push(`GENERATED ${kind} AS IDENTITY${options}`);
  } else if (column.defaultExpression !== null) {
    parts.push(`DEFAULT ${column.defaultExpression}`);
  }
  if (!column.nullable) parts.push('NOT NULL');
  return parts.join(' ');
}

/** The CREATE TABLE statement: columns, primary key, unique and (valid) check constraints. */
export function createTableSql(table: TableSchema, sequences: SequenceSchema[]): string {
  const lines = table.columns.map((c) => columnSql(table, c, sequences));
  if (table.primaryKey !== null) {
    lines.push(`CONSTRAINT ${quoteIdent(table.primaryKey.name)} PRIMARY KEY (${table.primaryKey.columns.map(quoteIdent).join(', ')})`);
  }
  for (const unique of table.uniqueConstraints) {
    lines.push(`CONSTRAINT ${quoteIdent(unique.name)} UNIQUE (${unique.columns.map(quoteIdent).join(', ')})`);
  }
  for (const check of table.checkConstraints) {
    if (!isNotValid(check.definition)) lines.push(`CONSTRAINT ${quoteIdent(check.name)} ${check.definition}`);
  }
  return `CREATE TABLE ${quoteQualified(table)} (\n  ${lines.join(',\n  ')}\n)`;
}

/** The schema of a type name as format_type prints it (`public.citext[]` → public), or null. */
function typeSchema(nativeType: string): string | null {
  const match = /^("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\./.exec(nativeType);
  if (match === null) return null;
  const raw = match[1] ?? '';
  return raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
}

/**
 * The schema to install extensions in. The model carries extension names only, so it is
 * inferred: the one schema holding the column types that are neither enums nor domains of
 * the schema (those come from extensions), else public.
 */
function extensionSchema(schema: DatabaseSchema): string {
  const own = new Set([...schema.enums, ...schema.domains].map((t) => key(t)));
  const candidates = new Set<string>();
  const types = [...schema.tables.flatMap((t) => t.columns.map((c) => c.nativeType)), ...schema.domains.map((d) => d.baseType)];
  for (const nativeType of types) {
    const s = typeSchema(nativeType);
    if (s === null) continue;
    const name = nativeType.slice(nativeType.indexOf('.') + 1).replace(/\[\]$/, '').replace(/^"(.*)"$/, '$1');
    if (!own.has(key({ schema: s, name }))) candidates.add(s);
  }
  return candidates.size === 1 ? ([...candidates][0] ?? 'public') : 'public';
}

/** The UNSUPPORTED_TYPE error for columns PostgreSQL cannot hold, naming each and what to do. */
export function unsupportedColumnsError(columns: UnsupportedColumn[]): FerryError {
  return new FerryError('UNSUPPORTED_TYPE', columns.map((c) => c.message).join(' '), {
    details: { columns: columns.map((c) => `${c.table.schema}.${c.table.name}.${c.column}`) },
  });
}

/**
 * The schema as this destination creates it: a PostgreSQL schema as it is, a MySQL/MariaDB
 * schema mapped by docs/type-mapping.md. Rejects columns PostgreSQL cannot hold (UNSUPPORTED_TYPE).
 */
export function postgresSchemaFor(schema: DatabaseSchema, options: SchemaObjectOptions = {}): DatabaseSchema {
  if (schema.engine !== 'mysql') return schema;
  const mapped = mapMysqlSchemaToPostgres(schema, { enumErrorValue: options.enumErrorValuePolicy ?? 'label' });
  if (mapped.unsupported.length > 0) throw unsupportedColumnsError(mapped.unsupported);
  return mapped.schema;
}

/** How createMissing creates check constraints. */
interface CheckCreation {
  /** Add each check on its own, under a savepoint, leaving out the ones PostgreSQL refuses (schemas mapped from another engine). */
  oneByOne: boolean;
  /** Receives a sentence per check left out. */
  skipped: string[];
}

export async function openPostgresSchemaWriter(params: ConnectionParams, options: SchemaObjectOptions = {}): Promise<PostgresSchemaWriter> {
  const context = errorContext(params, { operation: 'ddl' });
  return new PostgresSchemaWriter(await connectPostgres(params, context), context, options, params);
}

export class PostgresSchemaWriter implements SchemaWriter {
  constructor(
    private readonly client: pg.Client,
    private readonly context: PostgresErrorContext,
    /** enumErrorValuePolicy: whether mapped MySQL enums get the label ''. */
    private readonly options: SchemaObjectOptions = {},
    /** For the extra connections of parallel index builds; without it, indexes are built on the one connection. */
    private readonly params: ConnectionParams | null = null,
  ) {}

  async inspectTables(tables: QualifiedName[]): Promise<DestinationTableState[]> {
    try {
      return (await this.inspectRelations(tables)).map(({ kind: _kind, ...state }) => state);
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  /** Like inspectTables, with the kind of relation that holds each name. */
  async inspectRelations(tables: QualifiedName[]): Promise<DestinationRelationState[]> {
    if (tables.length === 0) return [];
    const result = await this.client.query(loadSql('table-states.sql'), [tables.map((t) => t.schema), tables.map((t) => t.name)]);
    const states: DestinationRelationState[] = [];
    for (const row of result.rows as Row[]) {
      const table = { schema: String(row.schema), name: String(row.name) };
      const kind = pgText(row.kind);
      let hasRows = false;
      if (kind === 'r' || kind === 'p') {
        const rows = await this.client.query(`SELECT EXISTS (SELECT 1 FROM ${quoteQualified(table)}) AS has_rows`);
        hasRows = pgBool((rows.rows[0] as Row).has_rows);
      }
      states.push({ table, exists: kind !== null, hasRows, columns: pgJson<string[]>(row.columns, []), kind });
    }
    return states;
  }

  /** The problems of the destination tables that the schema would create or reuse. */
  async findTableProblems(schema: DatabaseSchema, ownedTables: QualifiedName[] = []): Promise<DestinationTableProblem[]> {
    const owned = new Set(ownedTables.map(key));
    const states = await this.inspectRelations(schema.tables);
    const problems: DestinationTableProblem[] = [];
    schema.tables.forEach((table, i) => {
      const state = states[i];
      if (state === undefined) return;
      const problem = compareTable(table, owned.has(key(table)) ? { ...state, hasRows: false } : state);
      if (problem !== null) problems.push(problem);
    });
    return problems;
  }

  async createPreDataObjects(source: DatabaseSchema, options: CreatePreDataOptions = {}): Promise<CreatedObject[]> {
    const created: CreatedObject[] = [];
    try {
      const schema = postgresSchemaFor(source, this.options);
      await this.client.query('BEGIN');
      try {
        const problems = (await this.findTableProblems(schema, options.ownedTables)).filter(
          (p) => options.requireEmptyTables === true || p.code !== 'DESTINATION_NOT_EMPTY',
        );
        const problem = destinationTableError(problems);
        if (problem !== null) throw problem;
        await this.createMissing(schema, created, { oneByOne: schema !== source, skipped: [] });
        await this.client.query('COMMIT');
      } catch (error) {
        await this.client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
    return created;
  }

  /**
   * Creates the pre-data objects of a schema mapped from another engine inside a transaction
   * that is rolled back, so that verify finds what PostgreSQL refuses before the job starts.
   * Resolves with the check constraints that would be left out; rejects with what fails.
   */
  async rehearsePreDataObjects(schema: DatabaseSchema): Promise<{ skippedChecks: string[] }> {
    const target = postgresSchemaFor(schema, this.options);
    const skipped: string[] = [];
    try {
      await this.client.query('BEGIN');
      try {
        await this.createMissing(target, [], { oneByOne: target !== schema, skipped });
      } finally {
        await this.client.query('ROLLBACK').catch(() => undefined);
      }
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
    return { skippedChecks: skipped };
  }

  private async createMissing(schema: DatabaseSchema, created: CreatedObject[], checks: CheckCreation): Promise<void> {
    const schemaNames = [
      ...new Set([
        ...schema.schemas,
        ...schema.tables.map((t) => t.schema),
        ...schema.sequences.map((s) => s.schema),
        ...schema.enums.map((t) => t.schema),
        ...schema.domains.map((t) => t.schema),
      ]),
    ];
    const extensionHome = extensionSchema(schema);
    const existing = await this.client.query(loadSql('existing-objects.sql'), [[...schemaNames, extensionHome]]);
    const have = new Map<string, Row>();
    for (const row of existing.rows as Row[]) have.set(`${String(row.kind)}:${key({ schema: String(row.schema), name: String(row.name) })}`, row);
    const exists = (kind: string, object: QualifiedName | { schema: null; name: string }): Row | undefined =>
      have.get(`${kind}:${key({ schema: String(object.schema), name: object.name })}`);

    for (const name of schemaNames) {
      if (exists('schema', { schema: name, name })) continue;
      await this.client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(name)}`);
      created.push({ kind: 'schema', schema: null, name });
    }
    for (const name of schema.extensions) {
      if (exists('extension', { schema: null, name })) continue;
      if (!exists('schema', { schema: extensionHome, name: extensionHome }) && !schemaNames.includes(extensionHome)) {
        await this.client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(extensionHome)}`);
        created.push({ kind: 'schema', schema: null, name: extensionHome });
        have.set(`schema:${key({ schema: extensionHome, name: extensionHome })}`, {});
      }
      await this.client.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(name)} WITH SCHEMA ${quoteIdent(extensionHome)}`);
      created.push({ kind: 'extension', schema: null, name });
    }
    for (const type of schema.enums) {
      const row = exists('type', type);
      if (row !== undefined) {
        const labels = pgJson<string[]>(row.labels, []);
        const missing = type.labels.filter((l) => !labels.includes(l));
        if (missing.length === 1 && missing[0] === '' && type.labels[0] === '') {
          // MySQL's ENUM error value (enumErrorValuePolicy "label"): added to a type the destination already has, first as in the mapping.
          await this.client.query(`ALTER TYPE ${quoteQualified(type)} ADD VALUE IF NOT EXISTS ''${labels.length > 0 ? ` BEFORE ${quoteLiteral(labels[0] as string)}` : ''}`);
          continue;
        }
        if (missing.length > 0) {
          throw new FerryError(
            'SCHEMA_ERROR',
            `The enum type ${describe(type)} exists on the destination without the labels ${missing.map(quoteLiteral).join(', ')}. Add them (ALTER TYPE ${quoteQualified(type)} ADD VALUE ...) or drop the type.`,
            { details: { type: describe(type), missingLabels: missing } },
          );
        }
        continue;
      }
      await this.client.query(createEnumSql(type));
      created.push({ kind: 'type', schema: type.schema, name: type.name });
    }
    for (const domain of schema.domains) {
      if (exists('domain', domain)) continue;
      await this.client.query(createDomainSql(domain));
      created.push({ kind: 'domain', schema: domain.schema, name: domain.name });
    }
    for (const sequence of schema.sequences) {
      if (sequence.identity || exists('sequence', sequence)) continue;
      await this.client.query(createSequenceSql(sequence));
      created.push({ kind: 'sequence', schema: sequence.schema, name: sequence.name });
    }
    const states = await this.inspectRelations(schema.tables);
    for (const [i, table] of schema.tables.entries()) {
      if (states[i]?.exists === true) continue;
      if (!checks.oneByOne) {
        await this.client.query(createTableSql(table, schema.sequences));
      } else {
        await this.client.query(createTableSql({ ...table, checkConstraints: [] }, schema.sequences));
        await this.addChecksOneByOne(table, checks.skipped);
      }
      created.push({ kind: 'table', schema: table.schema, name: table.name });
    }
    const tables = new Set(schema.tables.map(key));
    for (const sequence of schema.sequences) {
      if (sequence.identity || sequence.ownedBy === null || !tables.has(key(sequence.ownedBy.table))) continue;
      await this.client.query(
        `ALTER SEQUENCE ${quoteQualified(sequence)} OWNED BY ${quoteQualified(sequence.ownedBy.table)}.${quoteIdent(sequence.ownedBy.column)}`,
      );
    }
  }

  /** Adds each check of a just-created table under a savepoint; the ones PostgreSQL refuses are left out and described in `skipped`. */
  private async addChecksOneByOne(table: TableSchema, skipped: string[]): Promise<void> {
    for (const check of table.checkConstraints) {
      await this.client.query('SAVEPOINT ferry_check');
      try {
        await this.client.query(`ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(check.name)} ${check.definition}`);
        await this.client.query('RELEASE SAVEPOINT ferry_check');
      } catch (error) {
        await this.client.query('ROLLBACK TO SAVEPOINT ferry_check');
        skipped.push(
          `The check constraint ${check.name} of ${describe(table)} (${check.definition}) is not created on PostgreSQL, which refuses it: ${error instanceof Error ? error.message : String(error)}. Write an equivalent check on the destination if needed.`,
        );
      }
    }
  }

  async createPostDataObjects(source: DatabaseSchema, options: PostDataOptions = {}): Promise<void> {
    try {
      const schema = postgresSchemaFor(source, this.options);
      const schemaNames = [...new Set([...schema.tables.map((t) => t.schema), ...schema.tables.flatMap((t) => t.foreignKeys.map((f) => f.referencedTable.schema))])];
      const names = await this.client.query(loadSql('relation-names.sql'), [schemaNames]);
      const relations = new Set<string>();
      const constraints = new Set<string>();
      for (const row of names.rows as Row[]) {
        if (row.kind === 'relation') relations.add(key({ schema: String(row.schema), name: String(row.name) }));
        else constraints.add(JSON.stringify([row.schema, row.table_name, row.name]));
      }
      const hasConstraint = (table: QualifiedName, name: string): boolean => constraints.has(JSON.stringify([table.schema, table.name, name]));

      for (const table of schema.tables) {
        for (const index of table.indexes) {
          if (relations.has(key({ schema: table.schema, name: index.name }))) continue;
          await this.client.query(index.definition);
        }
      }
      for (const table of schema.tables) {
        for (const check of table.checkConstraints) {
          if (!isNotValid(check.definition) || hasConstraint(table, check.name)) continue;
          await this.client.query(`ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(check.name)} ${check.definition}`);
        }
      }
      if (options.foreignKeys === false) return;
      const onlyActions = options.foreignKeys === 'actions';
      for (const table of schema.tables) {
        for (const foreignKey of table.foreignKeys) {
          if (onlyActions && !hasReferentialAction(foreignKey)) continue;
          if (hasConstraint(table, foreignKey.name)) continue;
          // A key to a table outside the job that the destination lacks cannot be created; verify warns about it.
          if (!relations.has(key(foreignKey.referencedTable))) continue;
          if (onlyActions) {
            await this.refuseOrphans(table, foreignKey);
            // Its actions run at once; only the existence check waits for the commit of the applier's batch.
            await this.client.query(`ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(foreignKey.name)} ${foreignKey.definition} DEFERRABLE INITIALLY DEFERRED`);
          } else {
            await this.client.query(`ALTER TABLE ${quoteQualified(table)} ADD CONSTRAINT ${quoteIdent(foreignKey.name)} ${foreignKey.definition}`);
          }
        }
      }
      if (!onlyActions) await this.undeferForeignKeys(schema, schemaNames);
    } catch (error) {
      throw error instanceof FerryError ? error : classifyPostgresError(error, this.context);
    }
  }

  /** The foreign keys created deferrable for the change stream ('actions') become as on the source: NOT DEFERRABLE. */
  private async undeferForeignKeys(schema: DatabaseSchema, schemaNames: string[]): Promise<void> {
    const deferrable = await this.client.query(
      `SELECT n.nspname AS schema, t.relname AS table_name, k.conname AS name FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace WHERE k.contype = 'f' AND k.condeferrable AND n.nspname = ANY ($1::text[])`,
      [schemaNames],
    );
    const found = new Set((deferrable.rows as Row[]).map((r) => JSON.stringify([r.schema, r.table_name, r.name])));
    for (const table of schema.tables) {
      for (const foreignKey of table.foreignKeys) {
        if (/\bDEFERRABLE\b/i.test(foreignKey.definition.replace(/\bNOT\s+DEFERRABLE\b/i, ''))) continue;
        if (!found.has(JSON.stringify([table.schema, table.name, foreignKey.name]))) continue;
        await this.client.query(`ALTER TABLE ${quoteQualified(table)} ALTER CONSTRAINT ${quoteIdent(foreignKey.name)} NOT DEFERRABLE`);
      }
    }
  }

  /** Rejects when rows of `table` reference rows that `foreignKey`'s referenced table lacks (a few named). */
  private async refuseOrphans(table: QualifiedName, foreignKey: ForeignKeySchema): Promise<void> {
    const columns = foreignKey.columns ?? [];
    const referenced = foreignKey.referencedColumns ?? [];
    if (columns.length === 0 || columns.length !== referenced.length) return;
    const present = columns.map((c) => `c.${quoteIdent(c)} IS NOT NULL`).join(' AND ');
    const match = columns.map((c, i) => `p.${quoteIdent(referenced[i] as string)} = c.${quoteIdent(c)}`).join(' AND ');
    // A hash anti-join, whatever the fresh tables' statistics say: a CI run saw the planner pick a
    // nested loop over a table copied moments before (no statistics yet), still running after 3 minutes.
    await this.client.query('SET enable_nestloop = off');
    const result = await this.client
      .query(
        `SELECT ${columns.map((c, i) => `c.${quoteIdent(c)}::text AS k${i}`).join(', ')} FROM ONLY ${quoteQualified(table)} AS c` +
          ` WHERE ${present} AND NOT EXISTS (SELECT 1 FROM ONLY ${quoteQualified(foreignKey.referencedTable)} AS p WHERE ${match}) LIMIT 3`,
      )
      .finally(() => this.client.query('RESET enable_nestloop').catch(() => undefined));
    const samples = (result.rows as Row[]).map((row) => columns.map((c, i) => `${c}=${pgText(row[`k${i}`]) ?? 'NULL'}`).join(', '));
    if (samples.length > 0) throw orphanRowsError(table, foreignKey, samples);
  }

  async syncSequences(source: DatabaseSchema): Promise<void> {
    try {
      const schema = postgresSchemaFor(source, this.options);
      for (const sequence of schema.sequences) {
        if (schema !== source && sequence.ownedBy !== null) {
          await this.syncMappedCounter(sequence, sequence.ownedBy);
          continue;
        }
        let target = quoteQualified(sequence);
        if (sequence.identity && sequence.ownedBy !== null) {
          // A reused destination table may have its own name for the identity sequence.
          const result = await this.client.query('SELECT pg_get_serial_sequence($1, $2) AS name', [
            quoteQualified(sequence.ownedBy.table),
            sequence.ownedBy.column,
          ]);
          target = pgText((result.rows[0] as Row).name) ?? target;
        }
        if (sequence.lastValue !== null) {
          await this.client.query('SELECT setval($1::regclass, $2::bigint, true)', [target, sequence.lastValue]);
        } else {
          await this.client.query('SELECT setval($1::regclass, $2::bigint, false)', [target, sequence.start]);
        }
      }
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  /**
   * Sets the sequence of a column mapped from an AUTO_INCREMENT to the source's counter, and
   * never below the largest value the destination column holds (rows a continuous job applied
   * after the counter was read, a reused table's own rows).
   */
  private async syncMappedCounter(sequence: SequenceSchema, owner: { table: QualifiedName; column: string }): Promise<void> {
    // A table the source gained after the dump (read again at promote) has no destination counterpart to sync.
    const exists = await this.client.query('SELECT to_regclass($1) IS NOT NULL AS exists', [quoteQualified(owner.table)]);
    if (!pgBool((exists.rows[0] as Row).exists)) return;
    const found = await this.client.query(
      `SELECT pg_get_serial_sequence($1, $2) AS name, (SELECT max(${quoteIdent(owner.column)})::text FROM ${quoteQualified(owner.table)}) AS max`,
      [quoteQualified(owner.table), owner.column],
    );
    const row = found.rows[0] as Row;
    const target = pgText(row.name) ?? quoteQualified(sequence);
    const candidates = [sequence.lastValue, pgText(row.max)].filter((v): v is string => v !== null).map((v) => BigInt(v));
    let highest = candidates.reduce<bigint | null>((a, b) => (a === null || b > a ? b : a), null);
    // Past the sequence's range (a numeric(20,0) key above 2^63-1): the next nextval() fails, as the source's would.
    if (highest !== null && highest > BigInt(sequence.maxValue)) highest = BigInt(sequence.maxValue);
    if (highest === null || highest < BigInt(sequence.start)) {
      await this.client.query('SELECT setval($1::regclass, $2::bigint, false)', [target, sequence.start]);
    } else {
      await this.client.query('SELECT setval($1::regclass, $2::bigint, true)', [target, highest.toString()]);
    }
  }

  async truncateTables(tables: QualifiedName[]): Promise<void> {
    try {
      const states = await this.inspectRelations(tables);
      const existing = tables.filter((_, i) => states[i]?.kind === 'r');
      if (existing.length === 0) return;
      // One statement, so foreign keys between the listed tables do not stop it.
      await this.client.query(`TRUNCATE ${existing.map(quoteQualified).join(', ')}`);
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  async applySchemaScript(script: SchemaScript, phase: SchemaObjectPhase, options: SchemaScriptOptions = {}): Promise<SchemaScriptResult> {
    if (script.engine !== 'postgresql') {
      throw new FerryError('INTERNAL', `A ${script.engine} schema script cannot be applied on PostgreSQL; the pipeline must create this schema from its model.`);
    }
    try {
      const jobs = options.indexJobs ?? 1;
      const mapped = Object.entries(options.schemaMapping ?? {}).some(([from, to]) => from !== to);
      if (phase === 'post-data' && jobs > 1 && !mapped && this.params !== null) await this.buildIndexesAhead(script, jobs);
      return await applySchemaPhase(this.client, script, phase, options);
    } catch (error) {
      const classified = classifyPostgresError(error, this.context);
      throw new FerryError(classified.code === 'INTERNAL' ? 'SCHEMA_ERROR' : classified.code, `Creating the ${phase} objects of the source's schema (from ${script.tool}) failed on the destination: ${classified.message}`, {
        retryable: classified.retryable, recoverable: classified.recoverable, details: { ...classified.details, phase }, cause: error,
      });
    }
  }

  /** The post-data indexes and constraints on `jobs` connections at once (buildIndexesInParallel): this one and jobs - 1 more. */
  private async buildIndexesAhead(script: SchemaScript, jobs: number): Promise<void> {
    const count = Math.min(jobs, script.entries.filter((e) => e.phase === 'post-data' && (e.type === 'INDEX' || e.type === 'CONSTRAINT')).length);
    if (count < 2 || this.params === null) return;
    const extra: pg.Client[] = [];
    try {
      for (let i = 1; i < count; i++) extra.push(await connectPostgres(this.params, this.context));
      await buildIndexesInParallel([this.client, ...extra], script);
    } finally {
      await Promise.allSettled(extra.map((c) => endQuietly(c)));
    }
  }

  async dropObjects(objects: CreatedObject[]): Promise<void> {
    try {
      for (const object of [...objects].reverse()) {
        const name = object.schema === null ? quoteIdent(object.name) : quoteQualified({ schema: object.schema, name: object.name });
        switch (object.kind) {
          case 'table':
            await this.client.query(`DROP TABLE IF EXISTS ${name} CASCADE`);
            break;
          case 'sequence':
            await this.client.query(`DROP SEQUENCE IF EXISTS ${name} CASCADE`);
            break;
          case 'type':
            await this.dropUnlessUsed(`DROP TYPE IF EXISTS ${name}`);
            break;
          case 'domain':
            await this.dropUnlessUsed(`DROP DOMAIN IF EXISTS ${name}`);
            break;
          case 'extension':
            await this.dropUnlessUsed(`DROP EXTENSION IF EXISTS ${name}`);
            break;
          case 'schema':
            await this.dropUnlessUsed(`DROP SCHEMA IF EXISTS ${name}`);
            break;
          case 'view':
            await this.client.query(`DROP VIEW IF EXISTS ${name} CASCADE`);
            break;
          case 'materialized view':
            await this.client.query(`DROP MATERIALIZED VIEW IF EXISTS ${name} CASCADE`);
            break;
          case 'function':
          case 'procedure':
          case 'aggregate': {
            // pg_dump names routines with their argument types: "f(integer, text)".
            const paren = object.name.indexOf('(');
            const routine = paren < 0 ? name : `${object.schema === null ? '' : `${quoteIdent(object.schema)}.`}${quoteIdent(object.name.slice(0, paren))}${object.name.slice(paren)}`;
            await this.client.query(`DROP ${object.kind.toUpperCase()} IF EXISTS ${routine} CASCADE`);
            break;
          }
          case 'collation':
            await this.dropUnlessUsed(`DROP COLLATION IF EXISTS ${name}`);
            break;
          case 'event trigger':
            await this.client.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(object.name)}`);
            break;
        }
      }
    } catch (error) {
      throw classifyPostgresError(error, this.context);
    }
  }

  /**
   * Drops a shared object unless something else now depends on it. Without CASCADE: objects
   * created on the destination since the job created this one (a user's table in the schema,
   * a column of the type) are kept, and so is the object they need.
   */
  private async dropUnlessUsed(sql: string): Promise<void> {
    try {
      await this.client.query(sql);
    } catch (error) {
      if ((error as { code?: unknown }).code !== '2BP01') throw error;
    }
  }

  async close(): Promise<void> {
    await endQuietly(this.client);
  }
}
