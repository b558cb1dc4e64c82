/**
 * Checks that depend on the pair of engines and the job type rather than on one server:
 * what a continuous job between two engines cannot carry. Pure.
 */
import type { EngineKind } from './connection-profile.js';
import type { JobType } from './lifecycle.js';
import type { DatabaseSchema } from './schema.js';

/** Same shape as an engine's verify check (engines/engine.ts VerifyCheck). */
export interface PairCheck {
  code: string;
  side: 'source' | 'destination';
  severity: 'ok' | 'warning' | 'error';
  message: string;
  objects?: string[];
}

const REFERENTIAL_ACTION = /\bON\s+(DELETE|UPDATE)\s+(CASCADE|SET\s+NULL|SET\s+DEFAULT)\b/i;

export function pairChecks(schema: DatabaseSchema, sourceEngine: EngineKind, destinationEngine: EngineKind, jobType: JobType): PairCheck[] {
  if (jobType !== 'continuous') return [];
  const checks: PairCheck[] = [];

  if (sourceEngine === 'mysql') {
    // MySQL runs foreign-key actions inside the storage engine and writes none of their row
    // changes to the binlog, so a change stream cannot carry them.
    const actions = schema.tables.flatMap((t) =>
      t.foreignKeys
        .filter((f) => REFERENTIAL_ACTION.test(f.definition) || [f.onDelete, f.onUpdate].some((a) => a !== undefined && /CASCADE|SET NULL|SET DEFAULT/i.test(a)))
        .map((f) => `${t.schema}.${t.name}.${f.name}`),
    );
    checks.push(
      actions.length === 0
        ? { code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'ok', message: 'No selected foreign key has an ON DELETE / ON UPDATE action that the binlog would not carry.' }
        : {
            code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'error', objects: actions,
            message: `MySQL writes the rows changed by foreign-key actions (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT) to no binlog, so a continuous job would miss them: ${actions.join(', ')}. Migrate these tables with a one-time job, or remove the actions from the foreign keys (the application then deletes and updates child rows itself) before starting.`,
          },
    );
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
