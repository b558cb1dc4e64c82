/**
 * Applies captured changes on a PostgreSQL destination, set-based: a batch is put in the order
 * of its plan (pipeline/change-batch-plan.ts: grouped by table, collapsed per key), then
 * consecutive changes of one shape (table, operation, columns, unchanged columns) become one
 * statement over arrays of text values (`unnest($1::text[], ...)`, sent in binary:
 * binary-text-array.ts), cast in SQL to the destination's column types.
 *
 * Every statement is idempotent, so changes applied again after a crash (for tables that a
 * later snapshot copied) end in the same state as changes applied once:
 * - insert: upsert on the primary key;
 * - update with the whole new row: UPDATE by key, then the upsert of the same rows when it missed
 *   one (a row gone from the destination); the upsert alone where another unique index or an
 *   identity ALWAYS column needs it, and in one simple query (no answer read there);
 * - update with unchanged TOASTed columns: UPDATE of the sent columns by key (the
 *   destination keeps the others);
 * - key change: a row already at the new key is replaced, then UPDATE by the old key; when the
 *   old row is missing and the whole new row is known, the new row is upserted;
 * - delete: DELETE by key when present; truncate: TRUNCATE.
 * Tables without a primary key (REPLICA IDENTITY FULL on the source) get plain inserts, and
 * updates and deletes of one row that matches every old column, one statement per row.
 *
 * The job's source position lives in `_ferry.replication_position` on the destination and is
 * written in the same transaction as the changes it covers; so do the tables the pipeline parked
 * (`_ferry.parked_tables`) and their waiting changes (`_ferry.parked_changes`).
 */
import type pg from 'pg';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { QualifiedName, TableSchema } from '../../core/schema.js';
import { aboutTable, namingTable } from '../apply-failure.js';
import { UNCHANGED } from '../engine.js';
import type { ChangeApplier, ChangeApplierOptions, ColumnValue, ParkedChangeRecord, ParkedTableRecord, PlannedChanges, RowChange } from '../engine.js';
import { checkPostgresFence, tagPostgresFencedSession } from './postgres-job-fence.js';
import { connectPostgres, endQuietly, errorContext, pgBool, pgText, quoteIdent, quoteQualified } from './postgres-connection.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import { binaryTextArray } from './binary-text-array.js';
import { TransactionGuard } from '../transaction-guard.js';
import { orderedTableGroups, planChangeBatch, planDescribedBatch, type PlanTable } from '../../pipeline/change-batch-plan.js';

/** The destination schema that holds Ferry's replication bookkeeping. */
export const POSITION_SCHEMA = '_ferry';
/** One row per continuous job: the source position its last committed batch reached. */
export const POSITION_TABLE = 'replication_position';

/** Rows per set-based statement. */
const MAX_STATEMENT_ROWS = 5_000;
/** Characters of values per set-based statement, so that wide rows do not build huge messages. */
const MAX_STATEMENT_CHARS = 32 * 1024 * 1024;
/** Characters of values whose statement parameters planAhead() builds ahead; a wider batch builds each statement's when it runs. */
const MAX_PREPARED_CHARS = 8 * 1024 * 1024;
/**
 * Rows (of all steps) up to which an apply() of several set-based statements goes in one simple
 * query (runInOneQuery): a small batch is round trips, so one is worth the re-planning and the
 * text[] literals; a larger one is CPU, so it keeps the prepared statements and binary arrays.
 */
const ONE_QUERY_MAX_ROWS = 500;

const POSITION_QUALIFIED = `${quoteIdent(POSITION_SCHEMA)}.${quoteIdent(POSITION_TABLE)}`;
const PARKED_TABLES = `${quoteIdent(POSITION_SCHEMA)}.parked_tables`;
const PARKED_CHANGES = `${quoteIdent(POSITION_SCHEMA)}.parked_changes`;
const CREATE_POSITION_TABLE_SQL = [
  `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(POSITION_SCHEMA)}`,
  `CREATE TABLE IF NOT EXISTS ${POSITION_QUALIFIED} (job_id text PRIMARY KEY, position text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS ${PARKED_TABLES} (job_id text NOT NULL, table_schema text NOT NULL, table_name text NOT NULL, note text NOT NULL, PRIMARY KEY (job_id, table_schema, table_name))`,
  `CREATE TABLE IF NOT EXISTS ${PARKED_CHANGES} (job_id text NOT NULL, table_schema text NOT NULL, table_name text NOT NULL, seq bigint NOT NULL, payload text NOT NULL, PRIMARY KEY (job_id, table_schema, table_name, seq))`,
].join('; ');
const READ_PARKED_TABLES_SQL = `SELECT t.table_schema, t.table_name, t.note, count(c.seq)::int AS count, coalesce(max(c.seq), 0)::text AS last_seq
FROM ${PARKED_TABLES} t LEFT JOIN ${PARKED_CHANGES} c USING (job_id, table_schema, table_name)
WHERE t.job_id = $1 GROUP BY t.table_schema, t.table_name, t.note ORDER BY t.table_schema, t.table_name`;
const WRITE_POSITION_SQL = `INSERT INTO ${POSITION_QUALIFIED} (job_id, position, updated_at) VALUES ($1, $2, now())
ON CONFLICT (job_id) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`;

/**
 * The destination's own description of the tables $1 (schemas) / $2 (names). Run with
 * search_path = pg_catalog so that format_type qualifies user types. `write_type` is the type
 * values are cast to before they are assigned: length-limited character types are cast to
 * text so that the assignment checks the length (an explicit cast would cut the value).
 * `comparable` tells whether `=` exists for the type (json, xml, arrays and geometric types
 * are compared through their text output instead).
 */
const DESTINATION_COLUMNS_SQL = `
WITH RECURSIVE domain_base (oid, base) AS (
  SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.typtype = 'd'
  UNION ALL
  SELECT d.oid, t.typbasetype FROM domain_base d JOIN pg_type t ON t.oid = d.base AND t.typtype = 'd'
)
SELECT n.nspname AS table_schema,
       c.relname AS table_name,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       CASE WHEN a.atttypmod <> -1 AND et.oid IN ('pg_catalog.varchar'::regtype, 'pg_catalog.bpchar'::regtype)
            THEN CASE WHEN at.typcategory = 'A' THEN 'text[]' ELSE 'text' END
            ELSE format_type(a.atttypid, a.atttypmod)
       END AS write_type,
       a.attidentity = 'a' AS identity_always,
       a.attgenerated <> '' AS generated,
       array_position(pk.indkey::int2[], a.attnum) AS key_position,
       (bt.typtype = 'e' OR EXISTS (
          SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
          WHERE am.amname = 'btree' AND oc.opcdefault AND oc.opcintype = bt.oid
       )) AS comparable,
       EXISTS (
          SELECT 1 FROM pg_index u
          WHERE u.indrelid = c.oid AND NOT u.indisprimary AND (u.indisunique OR u.indisexclusion)
       ) AS other_unique
FROM unnest($1::text[], $2::text[]) AS wanted (table_schema, table_name)
JOIN pg_namespace n ON n.nspname = wanted.table_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.table_name AND c.relkind IN ('r', 'p')
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type at ON at.oid = a.atttypid
JOIN pg_type et ON et.oid = CASE WHEN at.typcategory = 'A' AND at.typelem <> 0 THEN at.typelem ELSE at.oid END
JOIN pg_type bt ON bt.oid = coalesce(
  (SELECT d.base FROM domain_base d JOIN pg_type x ON x.oid = d.base AND x.typtype <> 'd' WHERE d.oid = a.atttypid),
  a.atttypid)
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
ORDER BY n.nspname, c.relname, a.attnum`;

interface DestinationColumn {
  name: string;
  quoted: string;
  /** The column's type as the destination prints it: what keys and old values are cast to. */
  type: string;
  /** What new values are cast to before they are assigned to the column. */
  writeType: string;
  identityAlways: boolean;
  generated: boolean;
  /** `=` works on the type (else rows are matched on the text output). */
  comparable: boolean;
}

interface DestinationTable {
  name: QualifiedName;
  quoted: string;
  columns: Map<string, DestinationColumn>;
  /** In the table's column order. */
  ordered: DestinationColumn[];
  /** Primary key columns in key order, or null when the destination table has none. */
  primaryKey: DestinationColumn[] | null;
  /** A unique index or exclusion constraint besides the primary key: row order within an UPDATE matters. */
  hasOtherUniqueIndex: boolean;
  /** Layouts by change structure, built on first use. */
  layouts: Map<string, Layout>;
  /** The last layout found and the structure it was found for: a chunk's changes mostly share one. */
  lastLayout: { op: string; columns: string[] | null; oldColumns: string[] | null; layout: Layout } | null;
  /** What the batch plan needs of the table (built on first use). */
  plan: PlanTable | null;
}

interface TableEntry {
  source: TableSchema;
  /** Null when the table does not exist on the destination. */
  destination: DestinationTable | null;
}

/** Where one column of a change goes: its index in the change's values. */
interface Slot {
  column: DestinationColumn;
  index: number;
}

/** A key column: where its new value is among the written columns and its old value among the old ones (-1: absent). */
interface KeySlot {
  column: DestinationColumn;
  writtenPosition: number;
  oldIndex: number;
}

/** How changes of one structure (table, operation, columns, unchanged columns, old columns) map onto the table. */
interface Layout {
  table: DestinationTable;
  op: 'insert' | 'update' | 'delete';
  /** keyed: by primary key, set-based. row: one row at a time, matched on the old columns. */
  mode: 'keyed' | 'row';
  /** Columns whose new values are written (not generated, not unchanged). */
  written: Slot[];
  /** Every written value is known and every key column is among them. */
  fullRow: boolean;
  /**
   * A full-row update that a plain UPDATE applies ('full-update'): a column besides the key is
   * written, none is an identity GENERATED ALWAYS column, and no unique index besides the
   * primary key could see a value that an earlier row of the statement frees (as in 'update').
   */
  updateInPlace: boolean;
  /** The written values are the change's values, all of them, in order (see planRow). */
  valuesInOrder: boolean;
  keys: KeySlot[];
  /** Old columns to match in row mode. */
  match: Slot[];
  shapes: Map<string, Shape>;
}

type ShapeKind = 'upsert' | 'full-update' | 'insert' | 'update' | 'move' | 'delete' | 'row-update' | 'row-delete';

/** A statement family: one or more statements run in order with the same parameters. */
interface Shape {
  kind: ShapeKind;
  layout: Layout;
  statements: Array<{ name: string; text: string }>;
  /** True: one array parameter per column over many rows; false: scalar parameters, one row. */
  setBased: boolean;
  maxRows: number;
  /** Positions, among a row's parameters, of the values that identify rows it touches (key repeats end a statement). */
  keyGroups: number[][];
  /**
   * 'full-update': the upsert of the same rows, run when the UPDATE found fewer rows than it
   * was given (a row missing on the destination), and sent instead of it in one simple query.
   */
  fallback?: { name: string; text: string };
}

/** One row's statement parameters. */
type RowParams = Array<string | null>;

/** One change turned into statement parameters (while its step is planned: a step keeps only the parameters). */
interface PlannedRow {
  shape: Shape;
  params: RowParams;
}

/** One step of a planned batch: a statement family over rows (its array parameters built ahead, or null), or a TRUNCATE. */
type Step =
  | { kind: 'rows'; shape: Shape; rows: RowParams[]; values: Buffer[] | null }
  | { kind: 'truncate'; change: Extract<RowChange, { op: 'truncate' }> };

/** A batch planned by planAhead(): the steps apply() would have run for those changes. */
class PlannedBatch implements PlannedChanges {
  constructor(
    readonly owner: PostgresChangeApplier,
    readonly changes: number,
    readonly steps: Step[],
    /** The steps' statements for one simple query, when they can go in one (oneQueryTexts): built ahead too. */
    readonly texts: string[] | null,
  ) {}
}

/** planAhead() met something only the destination can settle: apply() plans the batch itself. */
class NotPlannable {}
const NOT_PLANNABLE = new NotPlannable();

class ColumnMismatch {
  constructor(
    readonly table: QualifiedName,
    readonly missing: string[],
  ) {}
}

function tableKey(table: QualifiedName): string {
  return `${table.schema}\u0000${table.name}`;
}

function displayName(table: QualifiedName): string {
  return `${table.schema}.${table.name}`;
}

/**
 * Opens the applier of one job: connects, creates the position table if missing and reads the
 * destination's columns of `tables`. Rejects with a classified FerryError.
 */
export async function openPostgresChangeApplier(params: ConnectionParams, jobId: string, tables: TableSchema[], options: ChangeApplierOptions = {}): Promise<PostgresChangeApplier> {
  const context = errorContext(params, { operation: 'write' });
  const client = await connectPostgres(params, context);
  try {
    const applier = new PostgresChangeApplier(client, jobId, tables, context, options);
    await applier.prepare();
    return applier;
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, context);
  }
}

export class PostgresChangeApplier implements ChangeApplier {
  private readonly tables = new Map<string, TableEntry>();
  private readonly entries = new WeakMap<QualifiedName, TableEntry>();
  private readonly guard: TransactionGuard;
  /** Tables whose changes keep their relative order (foreign keys with actions exist during the stream). */
  private readonly orderedGroups: QualifiedName[][];
  private positionTableReady = false;
  /** The steps applyAndCommit holds for the commit's round trip, with their statements' text. */
  private held: { steps: Step[]; texts: string[] } | null = null;
  private statementCount = 0;
  private readonly columnKeys = new WeakMap<string[], string>();
  private readonly fence: ChangeApplierOptions['fence'];

  constructor(
    private readonly client: pg.Client,
    private readonly jobId: string,
    tables: TableSchema[],
    private readonly context: PostgresErrorContext,
    options: ChangeApplierOptions = {},
  ) {
    for (const table of tables) this.tables.set(tableKey(table), { source: table, destination: null });
    this.orderedGroups = orderedTableGroups(tables);
    const fence = options.fence;
    this.fence = fence;
    this.guard = new TransactionGuard({
      begin: () => this.client.query('BEGIN'),
      commit: () => this.client.query('COMMIT'),
      rollback: () => this.client.query('ROLLBACK'),
      classify: (error) => classifyPostgresError(error, this.context),
      ...(fence === undefined ? {} : { checkFence: () => checkPostgresFence(this.client, fence, 'A batch of changes and its position') }),
    });
  }

  /** Creates the position table if missing and reads the destination tables. Called once by openPostgresChangeApplier. */
  async prepare(): Promise<void> {
    if (this.fence !== undefined) await tagPostgresFencedSession(this.client, this.fence);
    await this.createPositionTable();
    const found = await this.readDestinationTables([...this.tables.values()].map((t) => t.source));
    for (const [key, entry] of this.tables) entry.destination = found.get(key) ?? null;
  }

  async readPosition(): Promise<string | null> {
    return this.guard.run(async () => {
      const present = await this.client.query(`SELECT to_regclass('${POSITION_SCHEMA}.${POSITION_TABLE}') IS NOT NULL AS present`);
      if (!pgBool((present.rows[0] as { present: unknown }).present)) return null;
      const result = await this.client.query(`SELECT position FROM ${POSITION_QUALIFIED} WHERE job_id = $1`, [this.jobId]);
      return result.rows.length === 0 ? null : pgText((result.rows[0] as { position: unknown }).position);
    });
  }

  async apply(changes: RowChange[]): Promise<void> {
    if (changes.length === 0) return;
    // Its first statement carries the BEGIN (run()).
    await this.guard.inBatch('apply changes', async () => this.run(this.planAhead(changes)?.steps ?? (await this.planWithDestination(changes))), true);
  }

  /**
   * apply(changes) (or applyPlanned(planned)) then commit(position): when the batch's steps can
   * go in one query (set-based, at most ONE_QUERY_MAX_ROWS rows), they are sent with the BEGIN,
   * the position write and the COMMIT, so that a batch of one chunk is one round trip. Otherwise,
   * fenced, or with the position table to create, the two calls.
   */
  async applyAndCommit(changes: RowChange[], planned: PlannedChanges | null, position: string): Promise<void> {
    const ahead = planned instanceof PlannedBatch && planned.owner === this ? planned : changes.length === 0 ? null : this.planAhead(changes);
    const texts = this.fence === undefined && this.positionTableReady ? (ahead?.texts ?? null) : null;
    if (ahead === null || texts === null) {
      if (ahead !== null) await this.applyPlanned(ahead);
      else await this.apply(changes);
      await this.commit(position);
      return;
    }
    await this.guard.inBatch('apply changes', async () => {
      this.held = { steps: ahead.steps, texts };
    }, true);
    await this.commit(position);
  }

  /**
   * Plans the batch without the destination when every table it touches is known and every
   * change fits its table; else null (apply() plans it with the destination and reports what is wrong).
   */
  planAhead(changes: RowChange[]): PlannedBatch | null {
    try {
      const planned = planChangeBatch(changes, { table: (table) => this.planTableOf(this.knownDestination(table)), orderedGroups: this.orderedGroups });
      const steps = this.steps(planned, true);
      return new PlannedBatch(this, changes.length, steps, this.oneQueryTexts(steps, 1));
    } catch {
      return null;
    }
  }

  async applyPlanned(planned: PlannedChanges): Promise<void> {
    if (!(planned instanceof PlannedBatch) || planned.owner !== this) throw new Error('applyPlanned takes only what this applier planned');
    if (planned.steps.length === 0) return;
    await this.guard.inBatch('apply changes', () => this.run(planned.steps), true);
  }

  async readParkedTables(): Promise<ParkedTableRecord[]> {
    return this.guard.run(async () => {
      const result = await this.client.query(READ_PARKED_TABLES_SQL, [this.jobId]);
      return (result.rows as Array<Record<string, unknown>>).map((row) => ({
        table: { schema: String(row.table_schema), name: String(row.table_name) },
        note: String(row.note),
        count: Number(row.count),
        lastSeq: Number(row.last_seq),
      }));
    });
  }

  async setParkedTable(table: QualifiedName, note: string | null): Promise<void> {
    await this.guard.inBatch('record a parked table', async () => {
      if (note === null) {
        await this.client.query(`DELETE FROM ${PARKED_TABLES} WHERE job_id = $1 AND table_schema = $2 AND table_name = $3`, [this.jobId, table.schema, table.name]);
      } else {
        await this.client.query(
          `INSERT INTO ${PARKED_TABLES} (job_id, table_schema, table_name, note) VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, table_schema, table_name) DO UPDATE SET note = EXCLUDED.note`,
          [this.jobId, table.schema, table.name, note],
        );
      }
    });
  }

  async parkChanges(table: QualifiedName, changes: ParkedChangeRecord[]): Promise<void> {
    if (changes.length === 0) return;
    await this.guard.inBatch('park changes', async () => {
      await this.client.query({
        name: 'ferry_park_changes',
        text: `INSERT INTO ${PARKED_CHANGES} (job_id, table_schema, table_name, seq, payload) SELECT $1, $2, $3, u.seq, u.payload FROM unnest($4::bigint[], $5::text[]) AS u (seq, payload)`,
        values: [this.jobId, table.schema, table.name, changes.map((c) => String(c.seq)), changes.map((c) => c.payload)],
      });
    });
  }

  async readParkedChanges(table: QualifiedName, limit: number): Promise<ParkedChangeRecord[]> {
    return this.guard.run(async () => {
      this.guard.refuseAfterFailure('read parked changes');
      const result = await this.client.query(
        `SELECT seq, payload FROM ${PARKED_CHANGES} WHERE job_id = $1 AND table_schema = $2 AND table_name = $3 ORDER BY seq LIMIT $4`,
        [this.jobId, table.schema, table.name, limit],
      );
      return (result.rows as Array<Record<string, unknown>>).map((row) => ({ seq: Number(row.seq), payload: String(row.payload) }));
    });
  }

  async deleteParkedChanges(table: QualifiedName, throughSeq: number): Promise<void> {
    await this.guard.inBatch('delete parked changes', async () => {
      await this.client.query(`DELETE FROM ${PARKED_CHANGES} WHERE job_id = $1 AND table_schema = $2 AND table_name = $3 AND seq <= $4`, [
        this.jobId, table.schema, table.name, String(throughSeq),
      ]);
    });
  }

  async commit(position: string): Promise<void> {
    await this.guard.commit(
      position,
      async () => {
        if (!this.positionTableReady) await this.createPositionTable();
        // Without changes the position write alone is the transaction.
        if (!this.guard.inTransaction) {
          await this.client.query({ name: 'ferry_write_position', text: WRITE_POSITION_SQL, values: [this.jobId, position] });
          return false;
        }
        // In a transaction the COMMIT goes in the same round trip: a simple query of two statements,
        // the second not run when the first fails; with the steps applyAndCommit held, and the
        // BEGIN when it was not sent yet, in front.
        const held = this.held;
        this.held = null;
        const begin = this.guard.takeBegin() ? 'BEGIN; ' : '';
        const values = [this.jobId, position];
        const tail = `${WRITE_POSITION_SQL.replace(/\$([12])/g, (_, n: string) => this.client.escapeLiteral(values[Number(n) - 1] as string))}; COMMIT`;
        if (held === null) await this.client.query(`${begin}${tail}`);
        else await this.runTextsInOneQuery(begin, held.steps, held.texts, tail);
        return true;
      },
      (error) => {
        const dropped = positionTableDropped(error);
        if (dropped !== null) this.positionTableReady = false;
        return dropped ?? classifyPostgresError(error, this.context);
      },
    );
  }

  async rollback(): Promise<void> {
    this.held = null;
    await this.guard.rollback();
  }

  async forgetPosition(): Promise<void> {
    await this.guard.run(async () => {
      const what = 'forget the replication position';
      this.guard.refuseOpenBatch(what);
      const present = await this.client.query(`SELECT to_regnamespace('${POSITION_SCHEMA}') IS NOT NULL AS present`);
      if (!pgBool((present.rows[0] as { present: unknown }).present)) {
        this.positionTableReady = false;
        return;
      }
      let left = 0;
      let positionTable = false;
      await this.guard.standalone(
        what,
        async () => {
          const table = await this.client.query(`SELECT to_regclass('${POSITION_SCHEMA}.${POSITION_TABLE}') IS NOT NULL AS present`);
          positionTable = pgBool((table.rows[0] as { present: unknown }).present);
          if (positionTable) {
            // Blocks other jobs' position writes until the schema is gone or kept.
            await this.client.query(`LOCK TABLE ${POSITION_QUALIFIED} IN SHARE ROW EXCLUSIVE MODE`);
            await this.client.query(`DELETE FROM ${POSITION_QUALIFIED} WHERE job_id = $1`, [this.jobId]);
            for (const parked of [PARKED_TABLES, PARKED_CHANGES]) {
              const exists = await this.client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [parked]);
              if (pgBool((exists.rows[0] as { present: unknown }).present)) await this.client.query(`DELETE FROM ${parked} WHERE job_id = $1`, [this.jobId]);
            }
            const count = await this.client.query(`SELECT count(*)::int AS n FROM ${POSITION_QUALIFIED}`);
            left = Number((count.rows[0] as { n: unknown }).n);
          }
          // Fence rows (Engine.raiseFence) keep the schema: their jobs still write here (this
          // job's own row goes with Engine.dropFence, when the job is done with the destination).
          const fences = await this.client.query(`SELECT to_regclass('${POSITION_SCHEMA}.job_fence') IS NOT NULL AS present`);
          if (pgBool((fences.rows[0] as { present: unknown }).present)) {
            await this.client.query(`LOCK TABLE ${quoteIdent(POSITION_SCHEMA)}.job_fence IN SHARE ROW EXCLUSIVE MODE`);
            left += (await this.client.query(`SELECT 1 FROM ${quoteIdent(POSITION_SCHEMA)}.job_fence LIMIT 1`)).rows.length;
          }
          // The destination stands alone once no job replicates into it.
          if (left === 0) await this.client.query(`DROP SCHEMA ${quoteIdent(POSITION_SCHEMA)} CASCADE`);
        },
        (error) => classifyPostgresError(error, { ...this.context, operation: 'ddl' }),
      );
      this.positionTableReady = positionTable && left > 0;
    });
  }

  async close(): Promise<void> {
    // Ending the session abandons any open transaction.
    if (!this.guard.close()) return;
    await endQuietly(this.client);
  }

  private async createPositionTable(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.query(CREATE_POSITION_TABLE_SQL);
        this.positionTableReady = true;
        return;
      } catch (error) {
        // Two jobs creating the schema at the same moment: the loser sees a duplicate; the second try finds it.
        const code = (error as { code?: unknown }).code;
        if (attempt < 2 && (code === '23505' || code === '42P06' || code === '42P07')) continue;
        throw classifyPostgresError(error, { ...this.context, operation: 'ddl' });
      }
    }
  }

  private async readDestinationTables(tables: QualifiedName[]): Promise<Map<string, DestinationTable>> {
    const found = new Map<string, DestinationTable>();
    if (tables.length === 0) return found;
    const result = await this.client.query(DESTINATION_COLUMNS_SQL, [tables.map((t) => t.schema), tables.map((t) => t.name)]);
    const keyed = new Map<string, Array<{ column: DestinationColumn; keyPosition: number | null }>>();
    for (const raw of result.rows as Array<Record<string, unknown>>) {
      const name: QualifiedName = { schema: String(raw.table_schema), name: String(raw.table_name) };
      const key = tableKey(name);
      let table = found.get(key);
      if (table === undefined) {
        table = {
          name,
          quoted: quoteQualified(name),
          columns: new Map(),
          ordered: [],
          primaryKey: null,
          hasOtherUniqueIndex: pgBool(raw.other_unique),
          layouts: new Map(),
          lastLayout: null,
          plan: null,
        };
        found.set(key, table);
        keyed.set(key, []);
      }
      const column: DestinationColumn = {
        name: String(raw.column_name),
        quoted: quoteIdent(String(raw.column_name)),
        type: String(raw.column_type),
        writeType: String(raw.write_type),
        identityAlways: pgBool(raw.identity_always),
        generated: pgBool(raw.generated),
        comparable: pgBool(raw.comparable),
      };
      table.columns.set(column.name, column);
      table.ordered.push(column);
      keyed.get(key)?.push({ column, keyPosition: raw.key_position === null ? null : Number(raw.key_position) });
    }
    for (const [key, table] of found) {
      const keyColumns = (keyed.get(key) ?? []).filter((c) => c.keyPosition !== null).sort((a, b) => (a.keyPosition ?? 0) - (b.keyPosition ?? 0));
      table.primaryKey = keyColumns.length === 0 ? null : keyColumns.map((c) => c.column);
    }
    return found;
  }

  /** Reads one table again (after DDL on the destination); its layouts and statements are rebuilt. */
  private async refreshTable(entry: TableEntry): Promise<void> {
    const found = await this.readDestinationTables([entry.source]);
    entry.destination = found.get(tableKey(entry.source)) ?? null;
  }

  /** What the batch plan needs of a table: its destination key and whether another unique index orders its changes. */
  private planTableOf(destination: DestinationTable): PlanTable {
    destination.plan ??= {
      keyColumns: destination.primaryKey?.map((c) => c.name) ?? null,
      otherUnique: destination.hasOtherUniqueIndex,
      writableColumns: destination.ordered.filter((c) => !c.generated).map((c) => c.name),
    };
    return destination.plan;
  }

  /** The destination table as already read; throws NOT_PLANNABLE when it was not (or is missing). */
  private knownDestination(table: QualifiedName): DestinationTable {
    const destination = this.entryOf(table)?.destination;
    if (destination === undefined || destination === null) throw NOT_PLANNABLE;
    return destination;
  }

  /**
   * The steps of a batch, reading the destination where planAhead() could not: each table on its
   * first change (again after DDL), a failure classified and naming its table.
   */
  private async planWithDestination(batch: RowChange[]): Promise<Step[]> {
    const classify = (error: unknown) => classifyPostgresError(error, this.context);
    // Grouped by table and collapsed per key (change-batch-plan.ts), so that runs of one shape are long.
    const changes = await planDescribedBatch(batch, (table) => aboutTable(table, classify, async () => this.planTableOf(await this.destinationOf(table))), this.orderedGroups);
    for (const change of changes) {
      if (change.op !== 'truncate') await aboutTable(change.table, classify, () => this.layoutWithDestination(change));
    }
    return this.steps(changes, false);
  }

  /**
   * The steps of a planned batch: runs of one shape become one statement. `ahead` (planAhead):
   * every table must be known and every change fit it, else NOT_PLANNABLE is thrown; the array
   * parameters are built now unless the batch is wide.
   */
  private steps(changes: RowChange[], ahead: boolean): Step[] {
    const steps: Step[] = [];
    let shape: Shape | null = null;
    let rows: RowParams[] = [];
    let touched = new Set<string>();
    let chars = 0;
    let totalChars = 0;
    const classify = (error: unknown) => classifyPostgresError(error, this.context);
    const flush = () => {
      if (shape !== null && rows.length > 0) steps.push({ kind: 'rows', shape, rows, values: null });
      shape = null;
      rows = [];
      touched = new Set();
      chars = 0;
    };

    for (const change of changes) {
      if (change.op === 'truncate') {
        flush();
        if (ahead) for (const table of change.tables) this.knownDestination(table);
        steps.push({ kind: 'truncate', change });
        continue;
      }
      const table = ahead ? this.knownDestination(change.table) : (this.entryOf(change.table)?.destination as DestinationTable);
      const layout = this.layoutOf(table, change);
      if (layout instanceof ColumnMismatch) throw ahead ? NOT_PLANNABLE : schemaChanged(layout);
      let planned: PlannedRow;
      try {
        planned = planRow(layout, change, this.statementName);
      } catch (error) {
        if (ahead) throw NOT_PLANNABLE;
        throw namingTable(classify(error), change.table);
      }
      const size = rowChars(planned.params);
      if (
        planned.shape !== shape ||
        rows.length >= planned.shape.maxRows ||
        chars + size > MAX_STATEMENT_CHARS ||
        touchesAny(planned, touched)
      ) {
        flush();
        shape = planned.shape;
      }
      rows.push(planned.params);
      chars += size;
      totalChars += size;
      touch(planned, touched);
    }
    flush();
    // Not for steps that can go in one simple query (applyAndCommit, runInOneQuery): their text is built instead (planAhead).
    if (ahead && totalChars <= MAX_PREPARED_CHARS && !inOneQuery(steps, 1)) {
      for (const step of steps) if (step.kind === 'rows' && step.shape.setBased) step.values = arrayParameters(step.rows);
    }
    return steps;
  }

  /** Runs the steps in order in the open transaction. */
  private async run(steps: Step[]): Promise<void> {
    if (await this.runInOneQuery(steps)) return;
    await this.runEach(steps);
  }

  /** Runs the steps one statement per round trip, each failure naming its table. */
  private async runEach(steps: Step[]): Promise<void> {
    const classify = (error: unknown) => classifyPostgresError(error, this.context);
    if (this.guard.takeBegin()) await this.client.query('BEGIN');
    for (const step of steps) {
      if (step.kind === 'rows') {
        await aboutTable(step.shape.layout.table.name, classify, () => this.execute(step.shape, step.rows, step.values));
        continue;
      }
      const change = step.change;
      await this.truncate(change).catch((error: unknown) => {
        // One statement empties every table: the server's error names the one it is about.
        const classified = classify(error);
        const named = change.tables.find((t) => t.schema === classified.details.schema && t.name === classified.details.table);
        throw namingTable(classified, named ?? (change.tables[0] as QualifiedName));
      });
    }
  }

  /**
   * Steps that are all set-based (the usual batch) go in one simple query, their text[]
   * parameters as escaped literals, behind a SAVEPOINT: one round trip instead of one per
   * statement. When one fails the server runs none after it: back to the savepoint, the steps run
   * again one at a time (run()), so that the failure names its table as if each had been sent
   * alone; the batch fails either way. False when the steps do not qualify (nothing sent).
   */
  private async runInOneQuery(steps: Step[]): Promise<boolean> {
    const texts = this.oneQueryTexts(steps, 2);
    if (texts === null) return false;
    await this.runTextsInOneQuery(this.guard.takeBegin() ? 'BEGIN; ' : '', steps, texts, '');
    return true;
  }

  /**
   * The statements of steps that can go in one simple query (all set-based, at most
   * ONE_QUERY_MAX_ROWS rows, at least `minimum` statements), their text[] parameters as escaped
   * literals; null when they cannot.
   */
  private oneQueryTexts(steps: Step[], minimum: number): string[] | null {
    if (!inOneQuery(steps, minimum)) return null;
    const texts: string[] = [];
    for (const step of steps) {
      if (step.kind !== 'rows') return null;
      const literals = arrayLiterals(step.rows);
      // A full-row update goes as its upsert: no answer is read in one query.
      for (const statement of step.shape.fallback === undefined ? step.shape.statements : [step.shape.fallback]) {
        // Only placeholders may hold a '$' (a quoted name could too): else the extended protocol.
        const placeholders = statement.text.match(/\$\d+::text\[\]/g)?.length ?? 0;
        if (placeholders !== (statement.text.match(/\$/g)?.length ?? 0)) return null;
        texts.push(statement.text.replace(/\$(\d+)::text\[\]/g, (_, n: string) => `${this.client.escapeLiteral(literals[Number(n) - 1] as string)}::text[]`));
      }
    }
    return texts.length >= minimum ? texts : null;
  }

  /**
   * `prefix`, the steps' statements behind a SAVEPOINT, then `suffix`, in one round trip. When
   * one fails the server runs none after it: back to the savepoint, the steps run again one at a
   * time (runEach), so that the failure names its table as if each had been sent alone; the batch
   * fails either way. When they all pass, `suffix` runs alone (a failure there is its own).
   */
  private async runTextsInOneQuery(prefix: string, steps: Step[], texts: string[], suffix: string): Promise<void> {
    try {
      await this.client.query(`${prefix}SAVEPOINT ferry_steps; ${texts.join('; ')}${suffix === '' ? '' : `; ${suffix}`}`);
    } catch (error) {
      try {
        await this.client.query('ROLLBACK TO SAVEPOINT ferry_steps');
      } catch {
        throw classifyPostgresError(error, this.context);
      }
      await this.runEach(steps);
      if (suffix === '') throw classifyPostgresError(error, this.context);
      await this.client.query(suffix);
    }
  }

  private async truncate(change: Extract<RowChange, { op: 'truncate' }>): Promise<void> {
    const names: string[] = [];
    for (const table of change.tables) {
      const entry = await this.destinationOf(table);
      // ONLY: the source lists every table its TRUNCATE emptied, inheritance children included.
      names.push(`ONLY ${entry.quoted}`);
    }
    if (names.length === 0) return;
    await this.client.query(`TRUNCATE TABLE ${names.join(', ')}${change.restartIdentity ? ' RESTART IDENTITY' : ''}${change.cascade ? ' CASCADE' : ''}`);
  }

  /** The destination table of a change's table; rejects with SCHEMA_CHANGED when the job does not have it or the destination lacks it. */
  /** The job's entry of a table, remembered per name object (a reader hands every change of a table the same one). */
  private entryOf(table: QualifiedName): TableEntry | undefined {
    let entry = this.entries.get(table);
    if (entry === undefined) {
      entry = this.tables.get(tableKey(table));
      if (entry !== undefined) this.entries.set(table, entry);
    }
    return entry;
  }

  private async destinationOf(table: QualifiedName): Promise<DestinationTable> {
    const entry = this.entryOf(table);
    if (entry === undefined) {
      throw new FerryError(
        'SCHEMA_CHANGED',
        `Changes arrived for table ${displayName(table)}, which is not one of this job's tables (was it added to the source publication?). Remove it from the job's publication on the source, or Restart the job so that its full dump includes it; Ferry retries until then.`,
        { retryable: true, details: { table: displayName(table) } },
      );
    }
    if (entry.destination === null) await this.refreshTable(entry);
    if (entry.destination === null) {
      throw new FerryError(
        'SCHEMA_CHANGED',
        `Table ${displayName(table)} does not exist on the destination, so its changes cannot be applied. Create it on the destination with the source's definition (or Restart the job to copy it again); Ferry retries and continues by itself.`,
        { retryable: true, details: { table: displayName(table) } },
      );
    }
    return entry.destination;
  }

  /** Reads the table on first use, and again when the change carries columns it lacks (DDL since); refuses with SCHEMA_CHANGED when they are still missing. */
  private async layoutWithDestination(change: Exclude<RowChange, { op: 'truncate' }>): Promise<void> {
    const table = await this.destinationOf(change.table);
    if (!(this.layoutOf(table, change) instanceof ColumnMismatch)) return;
    // The destination may have been fixed since it was read: look again before refusing.
    const entry = this.tables.get(tableKey(change.table)) as TableEntry;
    await this.refreshTable(entry);
    const layout = this.layoutOf(await this.destinationOf(change.table), change);
    if (layout instanceof ColumnMismatch) throw schemaChanged(layout);
  }

  /** The name of a new prepared statement. */
  private readonly statementName = (): string => {
    this.statementCount++;
    return `ferry_apply_${this.statementCount}`;
  };

  private columnsKey(columns: string[]): string {
    let key = this.columnKeys.get(columns);
    if (key === undefined) {
      key = columns.join('\u0000');
      this.columnKeys.set(columns, key);
    }
    return key;
  }

  /** The layout of the change's structure, built once per table and structure. */
  private layoutOf(table: DestinationTable, change: Exclude<RowChange, { op: 'truncate' }>): Layout | ColumnMismatch {
    const columns = change.op === 'delete' ? null : change.columns;
    const values = change.op === 'delete' ? null : change.values;
    const oldColumns = change.op === 'insert' ? null : change.oldColumns;
    let unchanged = '';
    if (values !== null) {
      for (let i = 0; i < values.length; i++) if (values[i] === UNCHANGED) unchanged += `${i},`;
    }
    // A reader hands every change of a table the same column arrays: most changes find the previous one's layout.
    const last = table.lastLayout;
    if (unchanged === '' && last !== null && last.op === change.op && last.columns === columns && last.oldColumns === oldColumns) return last.layout;
    const found = this.layoutBySignature(table, change, columns, values, oldColumns, unchanged);
    if (unchanged === '' && !(found instanceof ColumnMismatch)) table.lastLayout = { op: change.op, columns, oldColumns, layout: found };
    return found;
  }

  private layoutBySignature(
    table: DestinationTable,
    change: Exclude<RowChange, { op: 'truncate' }>,
    columns: string[] | null,
    values: ColumnValue[] | null,
    oldColumns: string[] | null,
    unchanged: string,
  ): Layout | ColumnMismatch {
    const signature = `${change.op}\u0001${columns === null ? '' : this.columnsKey(columns)}\u0001${oldColumns === null ? '-' : this.columnsKey(oldColumns)}\u0001${unchanged}`;
    const cached = table.layouts.get(signature);
    if (cached !== undefined) return cached;

    const missing = new Set<string>();
    const written: Slot[] = [];
    if (columns !== null && values !== null) {
      columns.forEach((name, index) => {
        const column = table.columns.get(name);
        if (column === undefined) missing.add(name);
        else if (!column.generated && values[index] !== UNCHANGED) written.push({ column, index });
      });
    }
    const old: Slot[] = [];
    (oldColumns ?? []).forEach((name, index) => {
      const column = table.columns.get(name);
      if (column === undefined) missing.add(name);
      else if (!column.generated) old.push({ column, index });
    });
    if (missing.size > 0) return new ColumnMismatch(table.name, [...missing]);

    const pk = table.primaryKey;
    const oldCoversKey = pk !== null && pk.every((k) => old.some((o) => o.column === k));
    const keyed = pk !== null && (change.op === 'insert' || (change.op === 'update' && (oldColumns === null || oldCoversKey)) || (change.op === 'delete' && oldCoversKey));
    const keys: KeySlot[] = keyed
      ? pk.map((column) => ({
          column,
          writtenPosition: written.findIndex((w) => w.column === column),
          oldIndex: old.find((o) => o.column === column)?.index ?? -1,
        }))
      : [];
    const fullRow = unchanged === '' && keys.every((k) => k.writtenPosition >= 0);
    const layout: Layout = {
      table,
      op: change.op,
      mode: keyed ? 'keyed' : 'row',
      written,
      fullRow,
      // A full row writes every key column: more written columns than keys means one besides them.
      updateInPlace: change.op === 'update' && keyed && fullRow && written.length > keys.length && !table.hasOtherUniqueIndex && !written.some((w) => w.column.identityAlways),
      valuesInOrder: columns !== null && written.length === columns.length && written.every((w, i) => w.index === i),
      keys,
      match: keyed ? [] : old,
      shapes: new Map(),
    };
    table.layouts.set(signature, layout);
    return layout;
  }

  private async execute(shape: Shape, rows: RowParams[], values: Buffer[] | null): Promise<void> {
    if (shape.setBased) {
      const arrays = values ?? arrayParameters(rows);
      for (const statement of shape.statements) {
        const result = await this.client.query({ name: statement.name, text: statement.text, values: arrays });
        // A full-row UPDATE that missed a row (gone from the destination): the upsert writes the source's rows whole.
        if (shape.fallback !== undefined && (result.rowCount ?? 0) < rows.length) await this.client.query({ ...shape.fallback, values: arrays });
      }
      return;
    }
    for (const row of rows) {
      for (const statement of shape.statements) await this.client.query({ name: statement.name, text: statement.text, values: row });
    }
  }
}

/**
 * The position table vanished under an open applier (another job's promote dropped `_ferry`
 * while this job had no row yet): retryable, since opening the applier again recreates it.
 */
function positionTableDropped(error: unknown): FerryError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== '42P01' && code !== '3F000') return null;
  return new FerryError(
    'SCHEMA_CHANGED',
    `The position table ${POSITION_SCHEMA}.${POSITION_TABLE} is missing on the destination (dropped when another job was promoted, or by hand). Ferry recreates it and applies the batch again.`,
    { retryable: true, cause: error },
  );
}

function schemaChanged(mismatch: ColumnMismatch): FerryError {
  const table = displayName(mismatch.table);
  const quoted = quoteQualified(mismatch.table);
  const columns = mismatch.missing.join(', ');
  const example = mismatch.missing.map((c) => `ALTER TABLE ${quoted} ADD COLUMN ${quoteIdent(c)} <type as on the source>;`).join(' ');
  return new FerryError(
    'SCHEMA_CHANGED',
    `The source sends column${mismatch.missing.length === 1 ? '' : 's'} ${columns} for table ${table}, which the destination table lacks (DDL on the source). Apply the same change on the destination (e.g. ${example}); Ferry retries and continues by itself.`,
    { retryable: true, details: { table, columns: mismatch.missing } },
  );
}

/** True when the steps go in one simple query (runInOneQuery): all set-based, two statements or more, few rows. */
function inOneQuery(steps: Step[], minimum = 2): boolean {
  let statements = 0;
  let rows = 0;
  for (const step of steps) {
    if (step.kind !== 'rows' || !step.shape.setBased) return false;
    statements += step.shape.statements.length;
    rows += step.rows.length;
  }
  return statements >= minimum && rows <= ONE_QUERY_MAX_ROWS;
}

/** The text[] literal of parameter `p` of every row, as node-postgres would send an array of strings. */
function arrayLiteral(rows: RowParams[], p: number): string {
  let out = '{';
  for (let r = 0; r < rows.length; r++) {
    if (r > 0) out += ',';
    const value = (rows[r] as RowParams)[p];
    if (value === null || value === undefined) out += 'NULL';
    else if (value.includes('\\') || value.includes('"')) out += `"${value.replace(/[\\"]/g, '\\$&')}"`;
    else out += `"${value}"`;
  }
  return `${out}}`;
}

/** The parameters of a set-based statement as text[] literals, for runInOneQuery. */
function arrayLiterals(rows: RowParams[]): string[] {
  const count = rows[0]?.length ?? 0;
  const arrays: string[] = [];
  for (let p = 0; p < count; p++) arrays.push(arrayLiteral(rows, p));
  return arrays;
}

/** The array parameters of a set-based statement: parameter `p` of every row as one binary text[] (binary-text-array.ts). */
function arrayParameters(rows: RowParams[]): Buffer[] {
  const count = rows[0]?.length ?? 0;
  const arrays: Buffer[] = [];
  for (let p = 0; p < count; p++) arrays.push(binaryTextArray(rows.length, (r) => (rows[r] as RowParams)[p]));
  return arrays;
}

function rowChars(params: Array<string | null>): number {
  let n = 0;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (typeof p === 'string') n += p.length;
  }
  return n;
}

/** The key of the rows one key group of a planned row identifies (a one-column key is its value). */
function rowKey(row: PlannedRow, positions: number[]): string {
  return positions.length === 1 ? String(row.params[positions[0] as number]) : positions.map((p) => row.params[p]).join('\u0000');
}

/** True when the row identifies a row that one of the statement's rows already touches. */
function touchesAny(row: PlannedRow, touched: Set<string>): boolean {
  for (const positions of row.shape.keyGroups) if (touched.has(rowKey(row, positions))) return true;
  return false;
}

function touch(row: PlannedRow, touched: Set<string>): void {
  for (const positions of row.shape.keyGroups) touched.add(rowKey(row, positions));
}

function text(value: ColumnValue | undefined): string | null {
  return value === undefined || value === UNCHANGED ? null : value;
}

/** Turns one change into a statement shape and its parameters. */
function planRow(layout: Layout, change: Exclude<RowChange, { op: 'truncate' }>, name: () => string): PlannedRow {
  const values = change.op === 'delete' ? [] : change.values;
  const oldValues = change.op === 'insert' ? null : change.oldValues;
  // Every value written in order (no unchanged, generated or unknown column): the change's own
  // values are the row's parameters, read-only like every change.
  const written = layout.valuesInOrder ? (values as Array<string | null>) : layout.written.map((w) => text(values[w.index]));

  if (layout.mode === 'row') {
    if (layout.op === 'insert') return { shape: shapeOf(layout, 'insert', '', name), params: written };
    if (oldValues === null) {
      throw new FerryError(
        'TABLE_WITHOUT_PRIMARY_KEY',
        `An ${layout.op} of ${displayName(layout.table.name)} arrived without the old row, and the table has no primary key on the destination, so the row cannot be found. Give the source table a primary key or run ALTER TABLE ${quoteQualified(layout.table.name)} REPLICA IDENTITY FULL on the source, then Restart the job.`,
        { details: { table: displayName(layout.table.name) } },
      );
    }
    // Rows are matched with `=` (or IS NULL), so the statement depends on which old values are null.
    let mask = '';
    const matchParams: string[] = [];
    for (const m of layout.match) {
      const value = oldValues[m.index];
      if (value === UNCHANGED) mask += 'u';
      else if (value === null || value === undefined) mask += 'n';
      else {
        mask += 'v';
        matchParams.push(value);
      }
    }
    const kind = layout.op === 'update' ? 'row-update' : 'row-delete';
    const params = kind === 'row-update' ? [...written, ...matchParams] : matchParams;
    return { shape: shapeOf(layout, kind, mask, name), params };
  }

  // The key before and after the change, checked without building it (most changes keep their key).
  let moved = false;
  for (const k of layout.keys) {
    const oldValue = k.oldIndex >= 0 && oldValues !== null ? text(oldValues[k.oldIndex]) : null;
    const newValue = k.writtenPosition >= 0 ? (written[k.writtenPosition] ?? null) : oldValue;
    if (newValue === null && layout.op !== 'delete') {
      throw new FerryError(
        'DATA_ERROR',
        `A change to ${displayName(layout.table.name)} has no value for its key column ${k.column.name}, so the row cannot be identified. Check that the destination's primary key matches the source's.`,
        { details: { table: displayName(layout.table.name), column: k.column.name } },
      );
    }
    if (k.oldIndex >= 0 && oldValue !== newValue) moved = true;
  }
  if (layout.op === 'delete') {
    const oldKey = keyValues(layout, written, oldValues, 'old');
    if (oldKey.some((v) => v === null)) {
      throw new FerryError('DATA_ERROR', `A delete from ${displayName(layout.table.name)} has no value for a key column, so the row cannot be identified. Check that the destination's primary key matches the source's.`, {
        details: { table: displayName(layout.table.name) },
      });
    }
    return { shape: shapeOf(layout, 'delete', '', name), params: oldKey };
  }
  if (layout.op === 'insert') return { shape: shapeOf(layout, 'upsert', '', name), params: written };
  if (moved) return { shape: shapeOf(layout, 'move', '', name), params: [...written, ...keyValues(layout, written, oldValues, 'new'), ...keyValues(layout, written, oldValues, 'old')] };
  if (layout.fullRow) return { shape: shapeOf(layout, layout.updateInPlace ? 'full-update' : 'upsert', '', name), params: written };
  return { shape: shapeOf(layout, 'update', '', name), params: [...written, ...keyValues(layout, written, oldValues, 'new')] };
}

/** The row's key values after the change ('new': written, else old) or before it ('old': old, else new). */
function keyValues(layout: Layout, written: Array<string | null>, oldValues: ColumnValue[] | null, which: 'new' | 'old'): Array<string | null> {
  return layout.keys.map((k) => {
    const oldValue = k.oldIndex >= 0 && oldValues !== null ? text(oldValues[k.oldIndex]) : null;
    const newValue = k.writtenPosition >= 0 ? (written[k.writtenPosition] ?? null) : oldValue;
    return which === 'old' && k.oldIndex >= 0 ? oldValue : newValue;
  });
}

function shapeOf(layout: Layout, kind: ShapeKind, mask: string, name: () => string): Shape {
  // No string is built per change for the usual shapes (no mask).
  const key = mask === '' ? kind : `${kind}:${mask}`;
  let shape = layout.shapes.get(key);
  if (shape === undefined) {
    shape = buildShape(layout, kind, mask, name);
    layout.shapes.set(key, shape);
  }
  return shape;
}

/** An alias-safe expression list helper: `a = v.x, b = v.y`. */
function assignments(pairs: Array<[DestinationColumn, string]>): string {
  return pairs.map(([column, expression]) => `${column.quoted} = ${expression}`).join(', ');
}

function buildShape(layout: Layout, kind: ShapeKind, mask: string, name: () => string): Shape {
  const table = layout.table;
  const target = table.quoted;
  const written = layout.written.map((w) => w.column);
  const keyColumns = layout.keys.map((k) => k.column);
  const isKey = (c: DestinationColumn) => keyColumns.includes(c);
  // PostgreSQL refuses to UPDATE an identity GENERATED ALWAYS column: such columns are only ever inserted.
  const settable = written.filter((c) => !isKey(c) && !c.identityAlways);
  const overriding = (columns: DestinationColumn[]) => (columns.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '');
  const columnList = (columns: DestinationColumn[]) => columns.map((c) => c.quoted).join(', ');
  const unwritten = table.ordered.filter((c) => !c.generated && !written.includes(c));

  // Set-based parameters: p<i> for written values, n<i> for new key values, o<i> for old key values.
  const sources: Array<{ alias: string; type: string }> = written.map((c, i) => ({ alias: `p${i + 1}`, type: c.writeType }));
  const writtenAlias = (c: DestinationColumn) => `v.p${written.indexOf(c) + 1}`;
  const keyAlias = (prefix: 'n' | 'o', i: number) => `v.${prefix}${i + 1}`;
  const keyMatch = (alias: string, prefix: 'n' | 'o') => keyColumns.map((c, i) => `${alias}.${c.quoted} = ${keyAlias(prefix, i)}`).join(' AND ');
  const source = (withOrdinality = false) => {
    const params = sources.map((_, i) => `$${i + 1}::text[]`).join(', ');
    const casts = sources.map((s) => `u.${s.alias}::${s.type} AS ${s.alias}`).join(', ');
    const aliases = sources.map((s) => s.alias).join(', ');
    return withOrdinality
      ? `(SELECT ${casts}, u.ord FROM unnest(${params}) WITH ORDINALITY AS u (${aliases}, ord)) AS v`
      : `(SELECT ${casts} FROM unnest(${params}) AS u (${aliases})) AS v`;
  };
  const upsertTail = () =>
    settable.length === 0
      ? `ON CONFLICT (${columnList(keyColumns)}) DO NOTHING`
      : `ON CONFLICT (${columnList(keyColumns)}) DO UPDATE SET ${assignments(settable.map((c) => [c, `EXCLUDED.${c.quoted}`]))}`;
  const insertSelect = (where: string) =>
    `INSERT INTO ${target} (${columnList(written)})${overriding(written)} SELECT ${written.map(writtenAlias).join(', ')} FROM ${source()}${where}`;
  /**
   * Identity GENERATED ALWAYS columns whose value may differ from the row's: such rows are
   * deleted and inserted again (keeping the columns the change does not carry), because no
   * UPDATE may set them.
   */
  const rewrite = (compared: DestinationColumn[], keyExpression: (c: DestinationColumn) => string, comparedExpression: (c: DestinationColumn) => string) =>
    `WITH d AS (DELETE FROM ONLY ${target} AS t USING ${source()} WHERE ${keyColumns.map((c) => `t.${c.quoted} = ${keyExpression(c)}`).join(' AND ')}` +
    ` AND ROW(${compared.map((c) => `t.${c.quoted}`).join(', ')}) IS DISTINCT FROM ROW(${compared.map(comparedExpression).join(', ')})` +
    ` RETURNING ${[...written.map((_, i) => `v.p${i + 1}`), ...unwritten.map((c, i) => `t.${c.quoted} AS x${i + 1}`)].join(', ')})` +
    ` INSERT INTO ${target} (${columnList([...written, ...unwritten])}) OVERRIDING SYSTEM VALUE` +
    ` SELECT ${[...written.map((_, i) => `d.p${i + 1}`), ...unwritten.map((_, i) => `d.x${i + 1}`)].join(', ')} FROM d`;
  const newKeyAlias = (c: DestinationColumn) => keyAlias('n', keyColumns.indexOf(c));
  const oldKeyAlias = (c: DestinationColumn) => keyAlias('o', keyColumns.indexOf(c));

  const statements: string[] = [];
  let fallback: string | null = null;
  let setBased = true;
  let maxRows = MAX_STATEMENT_ROWS;
  let keyGroups: number[][] = [];
  const writtenKeyPositions = keyColumns.map((c) => written.indexOf(c));
  const range = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);

  switch (kind) {
    case 'insert':
      statements.push(insertSelect(''));
      break;
    case 'upsert': {
      const identities = written.filter((c) => c.identityAlways && !isKey(c));
      if (identities.length > 0) statements.push(rewrite(identities, writtenAlias, writtenAlias));
      statements.push(`${insertSelect('')} ${upsertTail()}`);
      keyGroups = [writtenKeyPositions];
      break;
    }
    case 'full-update':
      // Every column sent, the row known to the source: UPDATE in place (no speculative insertion, no tuple lock).
      statements.push(`UPDATE ONLY ${target} AS t SET ${assignments(settable.map((c) => [c, writtenAlias(c)]))} FROM ${source()} WHERE ${keyColumns.map((c) => `t.${c.quoted} = ${writtenAlias(c)}`).join(' AND ')}`);
      fallback = `${insertSelect('')} ${upsertTail()}`;
      keyGroups = [writtenKeyPositions];
      break;
    case 'update': {
      keyColumns.forEach((c, i) => sources.push({ alias: `n${i + 1}`, type: c.type }));
      const identities = written.filter((c) => c.identityAlways && !isKey(c));
      if (identities.length > 0) statements.push(rewrite(identities, newKeyAlias, writtenAlias));
      if (settable.length > 0 && table.hasOtherUniqueIndex) {
        // UPDATE visits rows in plan order, and another unique index could then see a value
        // taken that an earlier change of the batch freed. An upsert of existing rows, with the
        // unsent columns read from them, runs in the changes' order instead.
        statements.push(
          `INSERT INTO ${target} (${columnList([...written, ...unwritten])})${overriding([...written, ...unwritten])}` +
            ` SELECT ${[...written.map(writtenAlias), ...unwritten.map((c) => `o.${c.quoted}`)].join(', ')}` +
            ` FROM ${source(true)} JOIN ONLY ${target} AS o ON ${keyMatch('o', 'n')} ORDER BY v.ord ${upsertTail()}`,
        );
      } else if (settable.length > 0) {
        statements.push(`UPDATE ONLY ${target} AS t SET ${assignments(settable.map((c) => [c, writtenAlias(c)]))} FROM ${source()} WHERE ${keyMatch('t', 'n')}`);
      }
      keyGroups = [range(written.length, keyColumns.length)];
      break;
    }
    case 'move': {
      keyColumns.forEach((c, i) => sources.push({ alias: `n${i + 1}`, type: c.type }));
      keyColumns.forEach((c, i) => sources.push({ alias: `o${i + 1}`, type: c.type }));
      const oldRowExists = `EXISTS (SELECT 1 FROM ONLY ${target} AS o WHERE ${keyColumns.map((c, i) => `o.${c.quoted} = ${keyAlias('o', i)}`).join(' AND ')})`;
      // Applied again after a crash, the old row may be gone: the whole new row is upserted instead.
      if (layout.fullRow) statements.push(`${insertSelect(` WHERE NOT ${oldRowExists}`)} ${upsertTail()}`);
      // A row already at the new key (a replay) gives way to the moved one.
      statements.push(`DELETE FROM ONLY ${target} AS t USING ${source()} WHERE ${keyMatch('t', 'n')} AND ${oldRowExists}`);
      const identities = written.filter((c) => c.identityAlways);
      if (identities.length > 0 || keyColumns.some((c) => c.identityAlways)) {
        const compared = [...keyColumns, ...identities.filter((c) => !isKey(c))];
        statements.push(rewrite(compared, oldKeyAlias, (c) => (isKey(c) ? newKeyAlias(c) : writtenAlias(c))));
      }
      const moves = [...keyColumns.filter((c) => !c.identityAlways), ...settable];
      const movesExpression = (c: DestinationColumn) => (isKey(c) ? newKeyAlias(c) : writtenAlias(c));
      if (moves.length > 0) {
        statements.push(`UPDATE ONLY ${target} AS t SET ${assignments(moves.map((c) => [c, movesExpression(c)]))} FROM ${source()} WHERE ${keyMatch('t', 'o')}`);
      }
      keyGroups = [range(written.length, keyColumns.length), range(written.length + keyColumns.length, keyColumns.length)];
      if (table.hasOtherUniqueIndex) maxRows = 1;
      break;
    }
    case 'delete':
      keyColumns.forEach((c, i) => sources.push({ alias: `o${i + 1}`, type: c.type }));
      statements.push(`DELETE FROM ONLY ${target} AS t USING ${source()} WHERE ${keyMatch('t', 'o')}`);
      keyGroups = [range(0, keyColumns.length)];
      break;
    case 'row-update':
    case 'row-delete': {
      setBased = false;
      maxRows = 1;
      let next = kind === 'row-update' ? written.length + 1 : 1;
      const conditions: string[] = [];
      layout.match.forEach((m, i) => {
        const c = m.column;
        const state = mask[i];
        if (state === 'n') conditions.push(`o.${c.quoted} IS NULL`);
        else if (state === 'v') {
          const param = `$${next++}`;
          conditions.push(c.comparable ? `o.${c.quoted} = ${param}::${c.type}` : `o.${c.quoted}::text = ${param}::${c.type}::text`);
        }
      });
      const row = `t.ctid = (SELECT o.ctid FROM ONLY ${target} AS o${conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`} LIMIT 1)`;
      if (kind === 'row-delete') {
        statements.push(`DELETE FROM ONLY ${target} AS t WHERE ${row}`);
      } else if (written.some((c) => c.identityAlways)) {
        statements.push(
          `WITH d AS (DELETE FROM ONLY ${target} AS t WHERE ${row} RETURNING ${unwritten.length === 0 ? '1' : unwritten.map((c, i) => `t.${c.quoted} AS x${i + 1}`).join(', ')})` +
            ` INSERT INTO ${target} (${columnList([...written, ...unwritten])}) OVERRIDING SYSTEM VALUE` +
            ` SELECT ${[...written.map((c, i) => `$${i + 1}::${c.writeType}`), ...unwritten.map((_, i) => `d.x${i + 1}`)].join(', ')} FROM d`,
        );
      } else if (written.length > 0) {
        statements.push(`UPDATE ONLY ${target} AS t SET ${assignments(written.map((c, i) => [c, `$${i + 1}::${c.writeType}`]))} WHERE ${row}`);
      }
      break;
    }
  }
  const shape: Shape = { kind, layout, statements: statements.map((statement) => ({ name: name(), text: statement })), setBased, maxRows, keyGroups };
  if (fallback !== null) shape.fallback = { name: name(), text: fallback };
  return shape;
}
