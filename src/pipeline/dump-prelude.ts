/**
 * What a full dump reads from the source before it writes anything: the snapshot, the schema
 * as the snapshot sees it, and, between two servers of one engine, the source's schema script
 * at that snapshot (PostgreSQL: pg_dump --schema-only, the slowest step before the first row).
 * Each step starts as soon as the one it needs is done, so callers can do other work
 * meanwhile: a one-time job's start opens the prelude while its checks run (the checks then
 * verify the very schema the dump copies, and pg_dump's start-up overlaps them), and the dump
 * opens its worker connections while the script is read.
 *
 * Reads only the source. Whoever holds a prelude closes it (close() releases the snapshot;
 * idempotent, also after a failed step); the dump that takes one closes it when it ends.
 */
import type { ConnectionParams, EngineKind } from '../core/connection-profile.js';
import type { MigrationJob } from '../core/migration-job.js';
import type { DatabaseSchema } from '../core/schema.js';
import type { Engine, SchemaScript, SourceSnapshot } from '../engines/engine.js';

export class DumpPrelude {
  /** The snapshot (a continuous job's lines up with its change stream). */
  readonly snapshot: Promise<SourceSnapshot>;
  /** The selected tables' schema, read inside the snapshot. */
  readonly schema: Promise<DatabaseSchema>;
  /** The source's script of the selection's schema objects, at the snapshot; null across engines, for an engine without one, or when no table is selected. */
  readonly script: Promise<SchemaScript | null>;
  #closing: Promise<void> | null = null;

  private constructor(snapshot: Promise<SourceSnapshot>, schema: Promise<DatabaseSchema>, script: Promise<SchemaScript | null>) {
    this.snapshot = snapshot;
    this.schema = schema;
    this.script = script;
    // Whoever awaits a step sees its failure; a step nobody awaits (the start failed first) must not reject unhandled.
    for (const step of [snapshot, schema, script]) step.catch(() => undefined);
  }

  /** Starts reading; returns at once. */
  static open(job: Pick<MigrationJob, 'type' | 'selection'>, source: Engine, sourceParams: ConnectionParams, destinationEngine: EngineKind): DumpPrelude {
    // A continuous job's snapshot must say where it meets the change stream.
    const snapshot = source.openSnapshot(sourceParams, { alignedWithChanges: job.type === 'continuous' });
    const schema = snapshot.then((s) => s.readSchema(job.selection, { destinationEngine }));
    const script = schema.then(async (read) => {
      const s = await snapshot;
      // Within one engine the source's own tool writes the schema; across engines the pipeline creates the mapped model.
      if (source.kind !== destinationEngine || s.readSchemaScript === undefined || read.tables.length === 0) return null;
      return s.readSchemaScript(job.selection, read);
    });
    return new DumpPrelude(snapshot, schema, script);
  }

  /** Releases the snapshot once the steps under way have ended (a running pg_dump imports it). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([this.script]);
      const snapshot = await this.snapshot.catch(() => null);
      await snapshot?.close();
    })();
    return this.#closing;
  }
}
