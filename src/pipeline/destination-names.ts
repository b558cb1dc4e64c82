/**
 * Destination names of a job's objects: the schema mapping a job applies (core/schema-mapping.ts),
 * fixed when its full dump first reads the source schema and kept as a checkpoint, so that a
 * resumed dump, the change stream and promote all write under the same names even if the
 * destination profile changes meanwhile. Restart clears it with the other checkpoints.
 */
import type { ConnectionParams, EngineKind } from '../core/connection-profile.js';
import { FerryError } from '../core/errors.js';
import type { MigrationJob } from '../core/migration-job.js';
import type { DatabaseSchema } from '../core/schema.js';
import { mapQualifiedName, resolveSchemaMapping, type SchemaMapping } from '../core/schema-mapping.js';
import type { RowChange } from '../engines/engine.js';
import type { MetadataStore } from '../store/metadata-store.js';

export const SCHEMA_MAPPING_CHECKPOINT = 'schemaMapping';

/**
 * The mapping of the job's dump: the one recorded by an earlier attempt, else resolved from the
 * job's pairs, the selection's schemas and the destination profile's database, and recorded.
 * Rejects with what verify reports when the mapping cannot apply.
 */
export async function fixSchemaMapping(
  store: MetadataStore,
  job: MigrationJob,
  schema: DatabaseSchema,
  destinationEngine: EngineKind,
  destinationParams: ConnectionParams,
): Promise<SchemaMapping> {
  const recorded = await store.getCheckpoint<SchemaMapping>(job.id, SCHEMA_MAPPING_CHECKPOINT);
  if (recorded !== null) return recorded;
  const resolved = resolveSchemaMapping({ explicit: job.schemaMapping ?? {}, sourceSchemas: schema.schemas, destinationEngine, destinationDatabase: destinationParams.database });
  const blocking = resolved.checks.filter((c) => c.severity === 'error');
  if (blocking.length > 0) throw new FerryError('FAILED_PRECONDITION', blocking.map((c) => c.message).join(' '), { details: { checks: blocking } });
  await store.putCheckpoint(job.id, SCHEMA_MAPPING_CHECKPOINT, resolved.mapping);
  return resolved.mapping;
}

/** The mapping the job's dump recorded ({} for a job that recorded none: names kept). */
export async function recordedSchemaMapping(store: MetadataStore, jobId: string): Promise<SchemaMapping> {
  return (await store.getCheckpoint<SchemaMapping>(jobId, SCHEMA_MAPPING_CHECKPOINT)) ?? {};
}

/** The change with its tables under their destination names (changes arrive with the source's). */
export function mapRowChange(change: RowChange, mapping: SchemaMapping): RowChange {
  if (change.op === 'truncate') return { ...change, tables: change.tables.map((t) => mapQualifiedName(mapping, t)) };
  const table = mapQualifiedName(mapping, change.table);
  // Unmapped (the usual case): the same change, not a copy of each of millions.
  return table === change.table ? change : { ...change, table };
}
