/**
 * Foreign keys with referential actions (ON DELETE / ON UPDATE CASCADE, SET NULL, SET
 * DEFAULT) in continuous jobs from a MySQL/MariaDB source. InnoDB performs the actions inside
 * the storage engine and writes the rows they change to no binlog, so the destination repeats
 * them: these foreign keys exist on the destination while the changes are applied (created
 * after the dump, before the change stream), and every group of tables they link is copied
 * at one snapshot position. Pure.
 */
import type { EngineKind } from './connection-profile.js';
import { FerryError } from './errors.js';
import type { JobType } from './lifecycle.js';
import { qualifiedName, type ForeignKeySchema, type QualifiedName, type TableSchema } from './schema.js';

const ACTION = /^(CASCADE|SET\s+NULL|SET\s+DEFAULT)$/i;
const ACTION_IN_DEFINITION = /\bON\s+(DELETE|UPDATE)\s+(CASCADE|SET\s+NULL|SET\s+DEFAULT)\b/i;

/** True when the foreign key changes or deletes referencing rows by itself (CASCADE, SET NULL, SET DEFAULT). */
export function hasReferentialAction(foreignKey: ForeignKeySchema): boolean {
  return [foreignKey.onDelete, foreignKey.onUpdate].some((a) => a !== undefined && ACTION.test(a.trim())) || ACTION_IN_DEFINITION.test(foreignKey.definition);
}

/** True when a continuous job from `sourceEngine` keeps the foreign keys with actions on the destination during the change stream. */
export function carriesForeignKeyActions(sourceEngine: EngineKind, jobType: JobType): boolean {
  return sourceEngine === 'mysql' && jobType === 'continuous';
}

/** `schema.table.constraint` of every foreign key with an action among `tables`. */
export function actionForeignKeyNames(tables: TableSchema[]): string[] {
  return tables.flatMap((t) => t.foreignKeys.filter(hasReferentialAction).map((f) => `${qualifiedName(t)}.${f.name}`));
}

/**
 * The tables linked (in either direction, transitively) by foreign keys with actions, each
 * group with at least two tables, in the order of `tables`. A foreign key to a table outside
 * `tables` links nothing. Tables in no group are left out.
 */
export function actionForeignKeyGroups(tables: TableSchema[]): TableSchema[][] {
  const index = new Map(tables.map((t, i) => [qualifiedName(t), i]));
  const parent = tables.map((_, i) => i);
  const find = (i: number): number => {
    let root = i;
    while (parent[root] !== root) root = parent[root] as number;
    while (parent[i] !== root) {
      const next = parent[i] as number;
      parent[i] = root;
      i = next;
    }
    return root;
  };
  tables.forEach((table, i) => {
    for (const foreignKey of table.foreignKeys) {
      if (!hasReferentialAction(foreignKey)) continue;
      const j = index.get(qualifiedName(foreignKey.referencedTable));
      if (j === undefined || j === i) continue;
      parent[find(i)] = find(j);
    }
  });
  const groups = new Map<number, TableSchema[]>();
  tables.forEach((table, i) => {
    const root = find(i);
    const group = groups.get(root) ?? [];
    group.push(table);
    groups.set(root, group);
  });
  return [...groups.values()].filter((g) => g.length > 1);
}

/** The tables referenced by a foreign key with an action (whose changes the destination cascades), as `schema.table`. */
export function actionReferencedTables(tables: TableSchema[]): Set<string> {
  return new Set(tables.flatMap((t) => t.foreignKeys.filter(hasReferentialAction).map((f) => qualifiedName(f.referencedTable))));
}

/**
 * Referencing rows whose referenced row is missing (written on the source with
 * foreign_key_checks=0, or present before the foreign key was added) make creating the foreign
 * key fail, and the destination could not repeat the source's actions for them: the job stops
 * with this error, keeping every row, until they are mended on the source.
 */
export function orphanRowsError(table: QualifiedName, foreignKey: ForeignKeySchema, samples: string[]): FerryError {
  const name = qualifiedName(table);
  return new FerryError(
    'CONSTRAINT_VIOLATION',
    `Cannot create the foreign key ${foreignKey.name} of ${name} on the destination before the change stream: rows of ${name} reference rows of ${qualifiedName(foreignKey.referencedTable)} that do not exist (for example ${samples.join('; ')}), written on the source with foreign_key_checks=0 or before the foreign key was added. The destination needs this foreign key to repeat its ON DELETE / ON UPDATE actions, which MySQL writes to no binlog. On the source, delete those rows or insert the rows they reference (or set the referencing columns to NULL), then Restart the job. No row was removed.`,
    { retryable: false, details: { table: name, constraint: foreignKey.name, referencedTable: qualifiedName(foreignKey.referencedTable), examples: samples } },
  );
}
