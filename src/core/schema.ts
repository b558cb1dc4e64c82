/**
 * The schema of a source database as engines exchange it. Types keep the source engine's
 * own spelling (`nativeType`) so that a same-engine migration is exact; cross-engine
 * mappings translate from it.
 */
import type { EngineKind } from './connection-profile.js';

export interface QualifiedName {
  schema: string;
  name: string;
}

export interface ColumnSchema {
  name: string;
  /** The type as the source engine prints it, schema-qualified for user types: `numeric(12,2)`, `public.mood[]`. */
  nativeType: string;
  nullable: boolean;
  /** The default expression in the source engine's dialect, or null. Identity columns have none. */
  defaultExpression: string | null;
  /** Identity column (PostgreSQL `GENERATED ... AS IDENTITY`; MySQL AUTO_INCREMENT is 'by-default'), or null. */
  identity: 'always' | 'by-default' | null;
  /**
   * The expression of a generated column (PostgreSQL: stored; MySQL: virtual or stored), or null.
   * Within one engine generated columns are not copied: the destination computes them. Across
   * engines they are copied into ordinary columns (copiedColumns in type-mapping.ts).
   */
  generatedExpression: string | null;
  /** Collation when it differs from the column type's default, or null. */
  collation: string | null;
  /**
   * MySQL spatial columns: the column's SRID attribute (MySQL 8 `SRID n`, MariaDB
   * `REF_SYSTEM_ID=n`), absent when the column has none (any SRID). PostgreSQL sources keep
   * the SRID in `nativeType` (`geometry(Point,4326)`).
   */
  srid?: number;
}

export interface ConstraintSchema {
  name: string;
  columns: string[];
}

export interface IndexSchema {
  name: string;
  /** The complete CREATE INDEX statement in the source dialect. */
  definition: string;
  /**
   * The key columns in index order, when every key part is a plain column (MySQL sources fill
   * it): a destination of another engine builds its index from them, not from `definition`.
   */
  columns?: string[];
  /** Per key column, the indexed prefix length in characters or bytes (MySQL `KEY (c(10))`), else null. */
  prefixLengths?: Array<number | null>;
  unique?: boolean;
  /** The index method when it is not an ordinary B-tree: MySQL 'FULLTEXT', 'SPATIAL', 'HASH'. */
  method?: string;
}

export interface ForeignKeySchema {
  name: string;
  /** The constraint definition in the source dialect (`FOREIGN KEY (a) REFERENCES s.t(b) ON DELETE CASCADE`). */
  definition: string;
  referencedTable: QualifiedName;
  /** The referencing columns, in key order (MySQL sources fill it; another engine builds the key from these fields). */
  columns?: string[];
  /** The referenced columns, in the same order. */
  referencedColumns?: string[];
  /** Referential actions as SQL spells them: 'CASCADE', 'SET NULL', 'SET DEFAULT', 'RESTRICT', 'NO ACTION'. */
  onDelete?: string;
  onUpdate?: string;
}

export interface CheckConstraintSchema {
  name: string;
  definition: string;
}

export interface TableSchema extends QualifiedName {
  columns: ColumnSchema[];
  primaryKey: ConstraintSchema | null;
  uniqueConstraints: ConstraintSchema[];
  checkConstraints: CheckConstraintSchema[];
  /** Secondary indexes: not those behind the primary key or unique constraints. Created after the data. */
  indexes: IndexSchema[];
  /** Created after the data. */
  foreignKeys: ForeignKeySchema[];
  /** The planner's estimate, for progress; -1 when unknown. */
  estimatedRows: number;
  estimatedBytes: number;
  /** PostgreSQL replica identity: 'default' | 'full' | 'index' | 'nothing'. */
  replicaIdentity: string | null;
  /**
   * A PostgreSQL partitioned table seen whole (its rows are all its partitions' rows): read
   * through a query, replicated through the root. Absent for ordinary tables and leaf partitions.
   */
  partitioned?: boolean;
  /** A PostgreSQL UNLOGGED table: copied by the dump, but its changes never reach the change stream. */
  unlogged?: boolean;
  /**
   * The source engine's own complete table definition (MySQL: SHOW CREATE TABLE), for a
   * destination of the same engine; absent when the engine does not provide one.
   */
  nativeDefinition?: string;
}

export interface SequenceSchema extends QualifiedName {
  dataType: string;
  start: string;
  increment: string;
  minValue: string;
  maxValue: string;
  cache: string;
  cycle: boolean;
  /** The value the next nextval() must exceed, or null when the sequence was never used. */
  lastValue: string | null;
  /** The column that owns the sequence (serial / identity), or null. */
  ownedBy: { table: QualifiedName; column: string } | null;
  /** True for the sequence behind an identity column: created with the table, value synced after. */
  identity: boolean;
}

export interface EnumTypeSchema extends QualifiedName {
  labels: string[];
}

export interface DomainTypeSchema extends QualifiedName {
  baseType: string;
  notNull: boolean;
  defaultExpression: string | null;
  checks: CheckConstraintSchema[];
}

export interface DatabaseSchema {
  engine: EngineKind;
  /** Schemas (PostgreSQL namespaces; MySQL databases) that hold selected tables. */
  schemas: string[];
  tables: TableSchema[];
  sequences: SequenceSchema[];
  enums: EnumTypeSchema[];
  domains: DomainTypeSchema[];
  /** PostgreSQL: the roles the selected schemas' objects grant privileges to (a destination lacking one gets those GRANTs left out). */
  grantRoles?: string[];
  /** Extensions the selected tables' types come from (PostgreSQL), e.g. ["citext"]. */
  extensions: string[];
  /**
   * The selection's schema objects beyond tables (views, routines, triggers, events, ...), in
   * the order the source may create them (a view after the views it reads), with their native
   * definitions, when the source engine reads them with the schema (MySQL). The destination's
   * schema writer creates those the plan (core/schema-object-plan.ts) carries, in their phase.
   */
  objects?: SchemaObjectInfo[];
}

export function qualifiedName(object: QualifiedName): string {
  return `${object.schema}.${object.name}`;
}

const sharedNames = new WeakMap<QualifiedName, string>();
/**
 * qualifiedName of a name object that never changes, remembered per object: a change reader
 * hands every change of a table the same one, so a batch of a million changes builds it once.
 */
export function sharedQualifiedName(object: QualifiedName): string {
  let name = sharedNames.get(object);
  if (name === undefined) {
    name = qualifiedName(object);
    sharedNames.set(object, name);
  }
  return name;
}

/**
 * A schema object other than a table's columns and rows (a view, routine, trigger, event,
 * index, constraint, partition, grant, ...), as the source engine lists it for verify and
 * for the job's object report. `kind` is lower-case words, the same across engines where
 * the concept is the same: 'schema', 'extension', 'type', 'domain', 'collation', 'sequence',
 * 'table', 'partitioned table', 'partition', 'view', 'materialized view', 'function',
 * 'procedure', 'aggregate', 'trigger', 'event trigger', 'rule', 'policy', 'event', 'index',
 * 'constraint', 'foreign key', 'statistics', 'comment', 'grant', 'default'.
 */
export interface SchemaObjectInfo {
  kind: string;
  /** The schema (PostgreSQL) or database (MySQL) that holds it; null for database-wide objects. */
  schema: string | null;
  /** The object's name; routines carry their argument types, triggers and constraints their table ("t_audit on public.orders"). */
  name: string;
  /** Its definition in the source dialect (a complete CREATE statement) when it has one, else null. */
  definition: string | null;
  /** MySQL: the account it runs as, as SHOW CREATE prints it (`user`@`host`), when it has a DEFINER. */
  definer?: string;
  /**
   * The tables and views it reads or is attached to ("schema.name"), when the engine knows them
   * (MySQL: a view's tables and views, a trigger's table). The planner leaves out an object that
   * depends on something the job does not carry.
   */
  dependsOn?: string[];
  /** Session settings its definition must be created under (MySQL: sql_mode, time_zone of an event). */
  settings?: Record<string, string>;
}

/** What a job does with one schema object. */
export type SchemaObjectDisposition = 'carried' | 'translated' | 'left-out';

/** When a carried object is created on the destination. */
export type SchemaObjectPhase = 'pre-data' | 'post-data' | 'promote';

/** One line of a job's object report: the object, what happens to it, and why. */
export interface SchemaObjectPlan extends SchemaObjectInfo {
  disposition: SchemaObjectDisposition;
  /** For carried and translated objects: the phase that creates it; null for left-out ones. */
  phase: SchemaObjectPhase | null;
  /** Why it is translated or left out, and what the user can do; null when carried as is. */
  reason: string | null;
}
