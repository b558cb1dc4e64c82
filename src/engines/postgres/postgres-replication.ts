/**
 * The replication objects of a continuous job on a PostgreSQL source, and the positions
 * around them: the publication that lists the job's tables, the logical replication slot
 * (pgoutput) that keeps their changes, the source's current WAL position, markers written
 * into the change stream, and the snapshot aligned with the stream.
 *
 * Order matters: the publication is created before the slot, because pgoutput looks the
 * publication up as of each change's position and fails on changes older than it; the slot
 * is created before the aligned snapshot, so that the stream is consistent from the
 * snapshot's position on.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../core/schema.js';
import type { ReplicationSpec, SchemaReadOptions, SchemaScript, SourceSnapshot, TableRange, TableReader } from '../engine.js';
import { loadSql } from './load-sql.js';
import { Lsn } from './lsn.js';
import { connectReplicationClient, MARKER_PREFIX } from './postgres-change-reader.js';
import { connectPostgres, endQuietly, errorContext, pgBool, quoteIdent, quoteLiteral, quoteQualified } from './postgres-connection.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import { PostgresSnapshotReader } from './postgres-snapshot-reader.js';

type Row = Record<string, unknown>;

/** How long drop() waits for a reader to release the slot before terminating it. */
const RELEASE_WAIT_MS = 10_000;
const RELEASE_POLL_MS = 200;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tableKey(table: QualifiedName): string {
  return JSON.stringify([table.schema, table.name]);
}

export class PostgresReplication {
  constructor(private readonly params: ConnectionParams) {}

  /**
   * Creates or updates the publication over `tables`, then creates the slot if missing.
   * Resolves with the slot's start position: its confirmed_flush_lsn, where a reader that
   * has applied nothing yet starts. Idempotent.
   */
  async create(spec: ReplicationSpec, tables: QualifiedName[], insertOnlyTables: QualifiedName[] = []): Promise<{ startPosition: string }> {
    if (tables.length === 0 && insertOnlyTables.length === 0) {
      throw new FerryError('NO_TABLES_SELECTED', 'A publication needs at least one table; change the job\'s include/exclude lists so that it selects tables.');
    }
    const context = errorContext(this.params, { operation: 'ddl' });
    const client = await connectPostgres(this.params, context);
    try {
      const walLevel = String(((await client.query("SELECT current_setting('wal_level') AS wal_level")).rows[0] as Row).wal_level);
      if (walLevel !== 'logical') {
        throw new FerryError('REPLICATION_NOT_CONFIGURED', `wal_level is '${walLevel}' on the source; set wal_level = logical and restart PostgreSQL.`, {
          recoverable: true,
          details: { wal_level: walLevel },
        });
      }
      await this.syncPublication(client, spec.publicationName, tables, '');
      const insertOnly = insertOnlyPublicationName(spec.publicationName);
      if (insertOnlyTables.length > 0) {
        await this.syncPublication(client, insertOnly, insertOnlyTables, " WITH (publish = 'insert, truncate')");
      } else {
        await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(insertOnly)}`);
      }
      return { startPosition: (await this.ensureSlot(client, spec.slotName)).format() };
    } catch (error) {
      throw classifyPostgresError(error, context);
    } finally {
      await endQuietly(client);
    }
  }

  /**
   * Drops the slot and the publication; missing ones are skipped. A reader still streaming
   * from the slot gets RELEASE_WAIT_MS to stop, then its walsender is terminated.
   */
  async drop(spec: ReplicationSpec): Promise<void> {
    const context = errorContext(this.params, { operation: 'ddl' });
    const client = await connectPostgres(this.params, context);
    try {
      await this.releaseSlot(client, spec.slotName);
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [spec.slotName]);
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(spec.publicationName)}`);
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(insertOnlyPublicationName(spec.publicationName))}`);
    } catch (error) {
      throw classifyPostgresError(error, context);
    } finally {
      await endQuietly(client);
    }
  }

  /**
   * Slot takeover: terminates the backend that holds the slot (the walsender of a node that
   * lost the job's lease, or one that stopped answering) and waits, up to RELEASE_WAIT_MS, for
   * the slot to be free. Resolves true when it is, false when someone still holds it.
   */
  async takeOverSlot(slot: string): Promise<boolean> {
    const context = errorContext(this.params, { operation: 'ddl' });
    const client = await connectPostgres(this.params, context);
    try {
      const deadline = Date.now() + RELEASE_WAIT_MS;
      for (let terminated = new Set<unknown>(); ; await sleep(RELEASE_POLL_MS)) {
        const row = (await client.query('SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0] as Row | undefined;
        if (row === undefined || row.active !== 't') return true;
        if (Date.now() >= deadline) return false;
        if (!terminated.has(row.active_pid)) {
          await client.query('SELECT pg_terminate_backend($1)', [row.active_pid]);
          terminated.add(row.active_pid);
        }
      }
    } catch (error) {
      throw classifyPostgresError(error, context);
    } finally {
      await endQuietly(client);
    }
  }

  /** pg_current_wal_lsn(), canonical. */
  currentPosition(): Promise<string> {
    return this.reading(currentLsn);
  }

  /**
   * When none of these transactions (32-bit xids, as the change stream names them) is in
   * progress any more: the current position, read after that (each of them ended before it);
   * else null. The 64-bit id of each is the one nearest the snapshot's xmax (wraparound
   * arithmetic: an id the stream gave is assigned, so never in the future); pg_xact_status needs
   * no privilege, unlike pg_stat_activity's backend_xid; one too old to have a status has ended.
   */
  transactionsEndedAt(xids: number[]): Promise<string | null> {
    return this.reading(async (client) => {
      const running = (await client.query(
        `SELECT EXISTS (
           SELECT 1 FROM (
             SELECT CASE WHEN c > xmax + 2147483648 THEN c - 4294967296 WHEN c < xmax - 2147483648 THEN c + 4294967296 ELSE c END AS full_xid
               FROM (SELECT (s.xmax >> 32) * 4294967296 + x AS c, s.xmax
                       FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) s, unnest($1::bigint[]) AS x) t
           ) f
            WHERE f.full_xid >= 0 AND pg_xact_status(f.full_xid::text::xid8) = 'in progress'
         ) AS running`,
        [xids.map(String)],
      )).rows[0] as Row;
      return pgBool(running.running) ? null : currentLsn(client);
    });
  }

  /** Runs `read` on a session of its own, its failure classified. */
  private async reading<T>(read: (client: pg.Client) => Promise<T>): Promise<T> {
    const context = errorContext(this.params, { operation: 'read' });
    const client = await connectPostgres(this.params, context);
    try {
      return await read(client);
    } catch (error) {
      throw classifyPostgresError(error, context);
    } finally {
      await endQuietly(client);
    }
  }

  /**
   * Writes a non-transactional logical message (prefix MARKER_PREFIX) and resolves with its
   * position, which is the position of the marker event the readers see. Needs no privilege:
   * pg_logical_emit_message is executable by PUBLIC.
   */
  async emitMarker(content: string): Promise<string> {
    const context = errorContext(this.params, { operation: 'write' });
    const client = await connectPostgres(this.params, context);
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL synchronous_commit = on');
      const row = (await client.query('SELECT pg_logical_emit_message(false, $1, $2)::text AS lsn', [MARKER_PREFIX, content])).rows[0] as Row;
      // A non-transactional message is not flushed by itself (before PostgreSQL 17), and the
      // walsender decodes only flushed WAL: committing a transaction id flushes the WAL up to
      // and past the message, so readers see it now rather than when the next commit comes.
      await client.query('SELECT txid_current()');
      await client.query('COMMIT');
      return Lsn.parse(String(row.lsn)).format();
    } catch (error) {
      throw classifyPostgresError(error, context);
    } finally {
      await endQuietly(client);
    }
  }

  /**
   * Opens a snapshot whose position is where it meets the change stream: a temporary slot,
   * created on a walsender connection, exports its snapshot at its consistent point; the
   * coordinator and every table reader import it. Transactions that commit at or after the
   * position are in the stream and not in the snapshot.
   */
  async openAlignedSnapshot(): Promise<PostgresAlignedSnapshot> {
    const context = errorContext(this.params, { operation: 'read' });
    const replication = await connectReplicationClient(this.params, context);
    let coordinator: pg.Client | null = null;
    try {
      const version = Number(((await replication.query('SHOW server_version_num')).rows[0] as Row).server_version_num);
      const slot = quoteIdent(`ferry_tmp_${randomBytes(6).toString('hex')}`);
      const created = (
        await replication.query(
          version >= 150_000
            ? `CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')`
            : `CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`,
        )
      ).rows[0] as Row;
      // From here on the walsender connection must stay idle: any command it runs ends the
      // exported snapshot for readers that have not imported it yet.
      const snapshotId = String(created.snapshot_name);
      const position = Lsn.parse(String(created.consistent_point)).format();
      const importContext = { ...context, snapshotId };
      coordinator = await connectPostgres(this.params, importContext);
      await coordinator.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await coordinator.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotId)}`);
      return new PostgresAlignedSnapshot(new PostgresSnapshotReader(this.params, coordinator, snapshotId, position), replication);
    } catch (error) {
      if (coordinator !== null) await endQuietly(coordinator);
      await endQuietly(replication);
      throw classifyPostgresError(error, context);
    }
  }

  private async syncPublication(client: pg.Client, publication: string, tables: QualifiedName[], withClause: string): Promise<void> {
    const list = tables.map((t) => quoteQualified(t)).join(', ');
    const exists = (await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rows.length > 0;
    if (tables.length === 0) {
      // Every table is insert-only: the main publication stays, empty, so the stream has it.
      if (exists) await client.query(`DROP PUBLICATION ${quoteIdent(publication)}`);
      await client.query(`CREATE PUBLICATION ${quoteIdent(publication)}${withClause}`);
      return;
    }
    // A partitioned table (a job to another engine sees it whole) publishes its partitions'
    // changes under its own name; a job to PostgreSQL publishes leaf partitions themselves.
    const partitioned = (await client.query(
      "SELECT 1 FROM pg_class WHERE oid = ANY($1::text[]::regclass[]) AND relkind = 'p'",
      [tables.map((t) => quoteQualified(t))],
    )).rows.length > 0;
    if (partitioned) withClause = withClause === '' ? ' WITH (publish_via_partition_root = true)' : withClause.replace(/\)$/, ', publish_via_partition_root = true)');
    if (!exists) {
      try {
        await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${list}${withClause}`);
        return;
      } catch (error) {
        // Created concurrently by another attempt: make it list the tables below.
        if ((error as { code?: unknown }).code !== '42710') throw error;
      }
    }
    const current = (await client.query('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [publication])).rows as Row[];
    const have = new Set(current.map((r) => tableKey({ schema: String(r.schemaname), name: String(r.tablename) })));
    const want = new Set(tables.map(tableKey));
    if (have.size === want.size && [...want].every((k) => have.has(k))) return;
    await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${list}`);
  }

  private async ensureSlot(client: pg.Client, slot: string): Promise<Lsn> {
    const existing = await this.readSlot(client, slot);
    if (existing !== null) return existing;
    try {
      const row = (await client.query("SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot])).rows[0] as Row;
      return Lsn.parse(String(row.lsn));
    } catch (error) {
      if ((error as { code?: unknown }).code !== '42710') throw error;
      const raced = await this.readSlot(client, slot);
      if (raced === null) throw error;
      return raced;
    }
  }

  /** The slot's confirmed position, or null when it does not exist. Rejects when it cannot serve this job. */
  private async readSlot(client: pg.Client, slot: string): Promise<Lsn | null> {
    const row = (await client.query(loadSql('replication-slot.sql'), [slot])).rows[0] as Row | undefined;
    if (row === undefined) return null;
    if (row.slot_type !== 'logical' || row.plugin !== 'pgoutput' || row.same_database !== 't') {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `A replication slot named ${slot} already exists on the source for something else (${String(row.slot_type)} slot, plugin ${String(row.plugin)}, database ${String(row.database)}). Drop it (SELECT pg_drop_replication_slot('${slot}')) if it is unused, then retry.`,
      );
    }
    if (row.wal_status === 'lost' || row.confirmed_flush_lsn === null) {
      throw new FerryError(
        'REPLICATION_SLOT_LOST',
        `The job's replication slot ${slot} was invalidated on the source (its WAL was removed). This job cannot continue: Restart it, which drops its replication objects and takes a new full dump.`,
      );
    }
    return Lsn.parse(String(row.confirmed_flush_lsn));
  }

  private async releaseSlot(client: pg.Client, slot: string): Promise<void> {
    const deadline = Date.now() + RELEASE_WAIT_MS;
    let terminated = false;
    for (;;) {
      const row = (await client.query('SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0] as Row | undefined;
      if (row === undefined || row.active !== 't') return;
      if (Date.now() >= deadline) {
        if (terminated) {
          throw new FerryError(
            'FAILED_PRECONDITION',
            `The replication slot ${slot} is still in use by process ${String(row.active_pid)} on the source. Ferry retries; if it persists, stop that process (SELECT pg_terminate_backend(${String(row.active_pid)})).`,
            { retryable: true },
          );
        }
        // A reader that does not let go (another instance, a stuck connection) would keep the
        // slot, and the WAL it retains, forever.
        await client.query('SELECT pg_terminate_backend($1)', [row.active_pid]);
        terminated = true;
      }
      await sleep(RELEASE_POLL_MS);
    }
  }
}

/**
 * A snapshot aligned with the change stream: the PostgresSnapshotReader of the exported
 * snapshot, plus the walsender connection that exported it, which stays open (and idle) until
 * close() so that readers can still import the snapshot. Closing it drops the temporary slot.
 */
export class PostgresAlignedSnapshot implements SourceSnapshot {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly snapshot: PostgresSnapshotReader,
    private readonly replication: pg.Client,
  ) {}

  get id(): string {
    return this.snapshot.id;
  }

  get position(): string | null {
    return this.snapshot.position;
  }

  readSchema(selection: ObjectSelection, options?: SchemaReadOptions): Promise<DatabaseSchema> {
    return this.snapshot.readSchema(selection, options);
  }

  readSchemaScript(selection: ObjectSelection, schema: DatabaseSchema): Promise<SchemaScript> {
    return this.snapshot.readSchemaScript(selection, schema);
  }

  openTableReader(): Promise<TableReader> {
    return this.snapshot.openTableReader();
  }

  splitTable(table: TableSchema, parts: number, minPartBytes: number): Promise<TableRange[] | null> {
    return this.snapshot.splitTable(table, parts, minPartBytes);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.snapshot.close();
      } finally {
        await endQuietly(this.replication);
      }
    })();
    return this.closing;
  }
}

/** The publication of a job's tables whose UPDATEs and DELETEs cannot be replicated (no key, no replica identity). */
export function insertOnlyPublicationName(publicationName: string): string {
  return `${publicationName.slice(0, 59)}_ins`;
}

/** pg_current_wal_lsn() of the session, canonical. */
async function currentLsn(client: pg.Client): Promise<string> {
  const row = (await client.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0] as Row;
  return Lsn.parse(String(row.lsn)).format();
}
