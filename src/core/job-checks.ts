/**
 * Checks that depend on the pair of engines and the job type rather than on one server:
 * what a continuous job between two engines cannot carry. Pure.
 */
import type { EngineKind } from './connection-profile.js';
import type { JobType } from './lifecycle.js';
import { qualifiedName, type DatabaseSchema } from './schema.js';
import { actionForeignKeyNames, carriesForeignKeyActions, hasReferentialAction } from './foreign-key-actions.js';

/** Same shape as an engine's verify check (engines/engine.ts VerifyCheck). */
export interface PairCheck {
  code: string;
  side: 'source' | 'destination';
  severity: 'ok' | 'warning' | 'error';
  message: string;
  objects?: string[];
}

export function pairChecks(schema: DatabaseSchema, sourceEngine: EngineKind, destinationEngine: EngineKind, jobType: JobType): PairCheck[] {
  if (jobType !== 'continuous') return [];
  const checks: PairCheck[] = [];

  if (carriesForeignKeyActions(sourceEngine, jobType)) {
    // MySQL runs foreign-key actions inside InnoDB and writes none of their row changes to the
    // binlog: the destination repeats them, so these foreign keys exist there during the stream.
    const actions = actionForeignKeyNames(schema.tables);
    const selected = new Set(schema.tables.map(qualifiedName));
    // A parent outside the job: its deletes and key updates never reach the destination, so the cascades they cause would be lost.
    const outside = schema.tables.flatMap((t) =>
      t.foreignKeys.filter((f) => hasReferentialAction(f) && !selected.has(qualifiedName(f.referencedTable))).map((f) => `${qualifiedName(t)}.${f.name} (references ${qualifiedName(f.referencedTable)})`),
    );
    // PostgreSQL references only a primary or unique key; InnoDB any indexed columns. Such a
    // foreign key is not created there (a warning for one-time jobs), so its actions would be lost.
    const keyless = destinationEngine === 'postgresql' ? unreferenceableActionKeys(schema) : [];
    if (keyless.length > 0) {
      checks.push({
        code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'error', objects: keyless,
        message: `These foreign keys have ON DELETE / ON UPDATE actions but reference columns that are neither the primary key nor a unique key of their table: ${keyless.join(', ')}. PostgreSQL cannot create such a foreign key, so the destination could not repeat its actions (which MySQL writes to no binlog). Add a unique key on the referenced columns on the source, or migrate these tables with a one-time job.`,
      });
    } else if (outside.length > 0) {
      checks.push({
        code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'error', objects: outside,
        message: `These foreign keys have ON DELETE / ON UPDATE actions but reference a table the job does not copy: ${outside.join(', ')}. MySQL writes the rows its actions change to no binlog, so Ferry repeats the actions on the destination from the referenced table's changes, which this job does not read. Add the referenced tables to the job's selection (or exclude the referencing tables), then start again.`,
      });
    } else {
      checks.push(
        actions.length === 0
          ? { code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'ok', message: 'No selected foreign key has an ON DELETE / ON UPDATE action.' }
          : {
              code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'ok', objects: actions,
              message: `Foreign keys with ON DELETE / ON UPDATE actions are carried: MySQL writes the rows its actions change to no binlog, so Ferry creates these foreign keys on the destination before the change stream (PostgreSQL: DEFERRABLE INITIALLY DEFERRED until promote) and the destination repeats each action when the parent's change is applied; the tables they link are copied at one snapshot position. ${actions.join(', ')}.`,
            },
      );
    }
  }

  if (sourceEngine === 'postgresql' && destinationEngine !== 'postgresql') {
    // PostgreSQL 15's pgoutput sends no generated column; another engine holds it as an ordinary
    // column that replicated changes would leave NULL or stale.
    const generated = schema.tables.flatMap((t) => t.columns.filter((c) => c.generatedExpression !== null).map((c) => `${t.schema}.${t.name}.${c.name}`));
    checks.push(
      generated.length === 0
        ? { code: 'GENERATED_COLUMNS', side: 'source', severity: 'ok', message: 'No selected table has a generated column.' }
        : {
            code: 'GENERATED_COLUMNS', side: 'source', severity: 'error', objects: generated,
            message: `The change stream of PostgreSQL carries no generated column, and ${destinationEngine === 'mysql' ? 'MySQL' : destinationEngine} holds these as ordinary columns that replicated changes would leave empty: ${generated.join(', ')}. Exclude their tables, or migrate them with a one-time job.`,
          },
    );
  }
  return checks;
}

/** `schema.table.constraint` of the foreign keys with actions whose referenced columns are no primary or unique key of a selected table. */
function unreferenceableActionKeys(schema: DatabaseSchema): string[] {
  const keys = new Map(
    schema.tables.map((t) => [
      qualifiedName(t),
      [
        ...(t.primaryKey === null ? [] : [t.primaryKey.columns]),
        ...t.uniqueConstraints.map((u) => u.columns),
        ...t.indexes.filter((i) => i.unique === true && i.columns !== undefined && (i.prefixLengths ?? []).every((p) => p === null)).map((i) => i.columns as string[]),
      ],
    ]),
  );
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((c) => b.includes(c));
  return schema.tables.flatMap((t) =>
    t.foreignKeys
      .filter((f) => {
        const candidates = keys.get(qualifiedName(f.referencedTable));
        return hasReferentialAction(f) && candidates !== undefined && f.referencedColumns !== undefined && !candidates.some((k) => same(k, f.referencedColumns ?? []));
      })
      .map((f) => `${qualifiedName(t)}.${f.name}`),
  );
}
