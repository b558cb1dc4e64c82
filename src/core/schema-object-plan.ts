/**
 * The job's object report: what happens to each schema object beyond the tables (views,
 * routines, triggers, events, partitioned tables, ...) for a pair of engines and a job type.
 * Pure: the source engine lists the objects, this decides; verify (SCHEMA_OBJECTS), the API's
 * `schemaObjects` resource, the CLI's `jobs describe --objects` and the destination's schema
 * writer all read the same plan, so what the report says is what the job does.
 *
 * Phases within one engine (MySQL/MariaDB; docs/ARCHITECTURE.md says why):
 * routines, views and partitioned tables in pre-data (with the tables, routines first, views in
 * dependency order); triggers and events after the data in one-time jobs (post-data) and at
 * promote in continuous jobs. PostgreSQL to PostgreSQL carries everything its engine lists.
 * Across engines, what the table translation covers is 'translated'; views, routines,
 * triggers and events are 'left-out', each with why and what to do.
 */
import type { EngineKind } from './connection-profile.js';
import type { JobType } from './lifecycle.js';
import type { SchemaObjectInfo, SchemaObjectPhase, SchemaObjectPlan } from './schema.js';

export interface SchemaObjectPlanContext {
  sourceEngine: EngineKind;
  destinationEngine: EngineKind;
  jobType: JobType;
  /** The job's tables ("schema.name"): what an object may depend on besides the objects carried before it. */
  tables: string[];
}

/** "schema.name" of an object, or its name alone for database-wide ones. */
export function schemaObjectName(object: Pick<SchemaObjectInfo, 'schema' | 'name'>): string {
  return object.schema === null ? object.name : `${object.schema}.${object.name}`;
}

/** Objects that act on writes: created after the data, and at promote in continuous jobs. */
const ACTING_KINDS = new Set(['trigger', 'event', 'event trigger', 'rule']);
/** PostgreSQL objects better built after the data. */
const POSTGRES_POST_DATA_KINDS = new Set(['index', 'constraint', 'foreign key', 'materialized view', 'statistics', 'policy']);
/** What the cross-engine table translation creates along with the tables (docs/type-mapping.md). */
const TABLE_MODEL_KINDS = new Set(['schema', 'table', 'sequence', 'index', 'constraint', 'foreign key', 'default', 'type', 'domain', 'extension']);

function phaseWithinEngine(kind: string, engine: EngineKind, jobType: JobType): SchemaObjectPhase {
  if (ACTING_KINDS.has(kind)) return jobType === 'continuous' ? 'promote' : 'post-data';
  if (engine === 'postgresql' && kind === 'foreign key') return jobType === 'continuous' ? 'promote' : 'post-data';
  if (engine === 'postgresql' && POSTGRES_POST_DATA_KINDS.has(kind)) return 'post-data';
  return 'pre-data';
}

const ENGINE_NAMES: Record<EngineKind, string> = { postgresql: 'PostgreSQL', mysql: 'MySQL/MariaDB' };

/** Why a source object cannot be carried to another engine, and what the user can do. */
function crossEngineReason(kind: string, source: EngineKind, destination: EngineKind): string {
  const from = ENGINE_NAMES[source];
  const to = ENGINE_NAMES[destination];
  if (source === 'mysql') {
    switch (kind) {
      case 'view':
        return `A ${from} view's SQL is not translated to ${to}; adapt the definition (backquotes to double quotes, MySQL functions) and create the view on the destination after the data.`;
      case 'function':
      case 'procedure':
        return `${from} stored routines are written in MySQL's procedural SQL, which ${to} does not run; rewrite the ${kind} in PL/pgSQL (or SQL) and create it on the destination.`;
      case 'trigger':
        return `${from} trigger bodies do not run on ${to}; rewrite it as a PL/pgSQL trigger function plus CREATE TRIGGER, and create it after promote so that it does not fire on Ferry's writes.`;
      case 'event':
        return `${to} has no event scheduler; run the event's statement from pg_cron or an external scheduler.`;
      default:
        return `Ferry does not translate a ${from} ${kind} to ${to}; recreate it on the destination.`;
    }
  }
  switch (kind) {
    case 'view':
    case 'materialized view':
      return `A ${from} ${kind}'s SQL is not translated to ${to}; adapt the definition and create it on the destination after the data${kind === 'materialized view' ? ' (MySQL has no materialized views: a table filled by an event or a plain view)' : ''}.`;
    case 'function':
    case 'procedure':
    case 'aggregate':
      return `${from} ${kind}s (PL/pgSQL, SQL or another language) do not run on ${to}; rewrite it as a stored routine in MySQL's procedural SQL.`;
    case 'trigger':
      return `${from} triggers call a trigger function ${to} cannot run; rewrite it as a MySQL trigger and create it after promote so that it does not fire on Ferry's writes.`;
    case 'partitioned table':
    case 'partition':
      return `${from} partitions arrive whole: the rows of every partition land in one ${to} table.`;
    default:
      return `${to} has no equivalent of a ${from} ${kind}; Ferry leaves it out.`;
  }
}

/**
 * The plan for each object, in the order given (the source's creation order). An object that
 * depends on a table or view the job does not carry (outside the selection, or left out just
 * before) is left out too, naming it.
 */
export function planSchemaObjects(objects: SchemaObjectInfo[], context: SchemaObjectPlanContext): SchemaObjectPlan[] {
  const { sourceEngine, destinationEngine, jobType } = context;
  const available = new Set(context.tables);
  const plans: SchemaObjectPlan[] = [];
  for (const object of objects) {
    let plan: SchemaObjectPlan;
    if (sourceEngine === destinationEngine) {
      plan = { ...object, disposition: 'carried', phase: phaseWithinEngine(object.kind, sourceEngine, jobType), reason: null };
    } else if (sourceEngine === 'mysql' && object.kind === 'partitioned table') {
      plan = {
        ...object, disposition: 'translated', phase: 'pre-data',
        reason: `Arrives whole on ${ENGINE_NAMES[destinationEngine]}: one ordinary table holding the rows of every partition (the PARTITION BY clause is not carried; partition the table on the destination yourself if you need it).`,
      };
    } else if (sourceEngine === 'postgresql' && TABLE_MODEL_KINDS.has(object.kind)) {
      plan = {
        ...object, disposition: 'translated', phase: object.kind === 'index' || object.kind === 'foreign key' ? 'post-data' : 'pre-data',
        reason: `Translated with the tables (docs/type-mapping.md); verify's SCHEMA_TRANSLATION check names what changes or is left out.`,
      };
    } else {
      plan = { ...object, disposition: 'left-out', phase: null, reason: crossEngineReason(object.kind, sourceEngine, destinationEngine) };
    }
    if (plan.disposition !== 'left-out') {
      const missing = (object.dependsOn ?? []).filter((name) => !available.has(name) && name !== schemaObjectName(object));
      if (missing.length > 0) {
        plan = {
          ...plan, disposition: 'left-out', phase: null,
          reason: `It depends on ${missing.join(', ')}, which the job does not carry; include ${missing.length === 1 ? 'it' : 'them'} in the job's selection or create the ${object.kind} yourself once ${missing.length === 1 ? 'it exists' : 'they exist'}.`,
        };
      }
    }
    if (plan.disposition !== 'left-out') available.add(schemaObjectName(object));
    plans.push(plan);
  }
  return plans;
}

/** Counts per kind, as "2 views, 1 function". */
function countKinds(plans: SchemaObjectPlan[]): string {
  const counts = new Map<string, number>();
  for (const plan of plans) counts.set(plan.kind, (counts.get(plan.kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ');
}

/** The verify check over a plan: ok with what is carried, a warning naming each object left out and why. */
export function schemaObjectsCheck(plans: SchemaObjectPlan[]): {
  code: 'SCHEMA_OBJECTS';
  side: 'destination';
  severity: 'ok' | 'warning';
  message: string;
  objects?: string[];
  definitions?: Record<string, string>;
} {
  const carried = plans.filter((p) => p.disposition === 'carried');
  const translated = plans.filter((p) => p.disposition === 'translated');
  const leftOut = plans.filter((p) => p.disposition === 'left-out');
  const parts: string[] = [];
  if (carried.length > 0) parts.push(`carried as on the source: ${countKinds(carried)}`);
  if (translated.length > 0) parts.push(`translated: ${countKinds(translated)} (${translated.map((p) => `${p.kind} ${schemaObjectName(p)}: ${p.reason ?? ''}`).join(' ')})`);
  const summary = parts.length === 0 ? 'The selection has no views, routines, triggers, events or other objects beyond its tables.' : `Schema objects beyond the tables: ${parts.join('; ')}.`;
  if (leftOut.length === 0) return { code: 'SCHEMA_OBJECTS', side: 'destination', severity: 'ok', message: summary };
  const definitions: Record<string, string> = {};
  for (const plan of leftOut) if (plan.definition !== null) definitions[`${plan.kind} ${schemaObjectName(plan)}`] = plan.definition;
  return {
    code: 'SCHEMA_OBJECTS',
    side: 'destination',
    severity: 'warning',
    message: `${parts.length === 0 ? '' : `${summary} `}Left out (${countKinds(leftOut)}), each to recreate on the destination yourself: ${leftOut.map((p) => `${p.kind} ${schemaObjectName(p)}: ${p.reason ?? ''}`).join(' ')} Their definitions: \`ferry jobs describe ID --objects --definitions-file FILE\` or GET /v1/migrationJobs/ID/schemaObjects.`,
    objects: leftOut.map(schemaObjectName),
    definitions,
  };
}

/** The definitions of the left-out objects as one SQL file to adapt, each under a comment saying why it was left out. */
export function leftOutDefinitionsSql(plans: SchemaObjectPlan[], header: string): string {
  const lines = [`-- ${header}`, '-- Objects Ferry left out: adapt each definition to the destination and run it there.', ''];
  for (const plan of plans) {
    if (plan.disposition !== 'left-out') continue;
    lines.push(`-- ${plan.kind} ${schemaObjectName(plan)}`);
    for (const line of (plan.reason ?? '').split('\n')) lines.push(`-- ${line}`);
    if (plan.definition === null) lines.push('-- (the source has no definition text for it)');
    else lines.push(plan.schema !== null && plan.kind !== 'schema' ? `-- in schema/database ${plan.schema}` : '', `${plan.definition.replace(/;\s*$/, '')};`);
    lines.push('');
  }
  return `${lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n')}\n`;
}
