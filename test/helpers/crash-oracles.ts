/**
 * Oracles that see double application and loss in the random-kill crash tests (issue 13),
 * whatever the engine pair. The appliers are idempotent on tables with a key, so a replayed
 * change leaves no trace there; these two tables do show one:
 * - `audit_log`, insert-only and without a primary key, with identical rows on purpose: a
 *   replayed insert adds a row, a lost one misses one (compared as a multiset);
 * - `counters`, updated with `x = x + 1`: each counter's final value must equal the increments
 *   the workload committed (a lost update shows; a replayed one too when the stream carries
 *   statements, not the new row image).
 * OracleWriter writes them next to the test's other workload and counts only what COMMIT acknowledged.
 */
import pg from 'pg';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import type { CrossSide } from './compare-cross.js';
import { sleep } from './e2e-jobs.js';
import { connectMysqlAdmin } from './mysql.js';

/** A statement runner on the source, MySQL placeholders (`?`) on either engine. */
export interface SourceWriter {
  query(sql: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** A connection to `database` on the shared MySQL/MariaDB test server. */
export async function mysqlWriter(database: string): Promise<SourceWriter> {
  const connection = await connectMysqlAdmin(database);
  return { query: async (sql, params = []) => void (await connection.query(sql, params)), close: () => connection.end() };
}

/** A connection to the PostgreSQL database of `params`, its search path on `schema`. */
export async function postgresWriter(params: ConnectionParams, schema: string): Promise<SourceWriter> {
  const client = new pg.Client({ host: params.host, port: params.port, user: params.username, database: params.database ?? undefined });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`SET search_path = "${schema}"`);
  return {
    query: async (sql, values = []) => {
      let k = 0;
      await client.query(sql.replace(/\?/g, () => `$${++k}`), values);
    },
    close: () => client.end(),
  };
}

export interface OracleSize {
  /** Counters 1..counters, all 0 at the start. */
  counters: number;
  /** Rows of audit_log before the job starts ('seed', counter_id = 1 + seq % counters): a multiple of `counters`. */
  auditRows: number;
}

/** The oracles' tables and their initial rows, as one script for `engine`. */
export function oracleSchemaSql(engine: 'mysql' | 'postgresql', size: OracleSize): string {
  const series = (n: number) => (engine === 'mysql' ? `seq_1_to_${n}` : `generate_series(1, ${n}) AS g(seq)`);
  return `
    CREATE TABLE counters (id int NOT NULL PRIMARY KEY, x bigint NOT NULL);
    CREATE TABLE audit_log (counter_id int NOT NULL, note varchar(20) NOT NULL);
    INSERT INTO counters SELECT seq, 0 FROM ${series(size.counters)};
    INSERT INTO audit_log SELECT 1 + seq % ${size.counters}, 'seed' FROM ${series(size.auditRows)};`;
}

/**
 * One writer of the two oracles: each transaction adds 1 to a counter and inserts one or two
 * identical audit rows; what it counts is only what COMMIT acknowledged.
 */
export class OracleWriter {
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  /** Committed increments per counter id. */
  readonly increments = new Map<number, number>();
  /** Committed audit rows per `counter_id|note`. */
  readonly audit = new Map<string, number>();
  committed = 0;
  errors: string[] = [];

  /** `pauseMs`: the pause between two transactions (a lighter load with several writers). */
  constructor(private readonly db: SourceWriter, private readonly r: () => number, private readonly size: OracleSize, private readonly pauseMs = 3) {}

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        const id = 1 + Math.floor(this.r() * this.size.counters);
        const note = this.r() < 0.5 ? 'tick' : 'tock';
        const copies = this.r() < 0.3 ? 2 : 1;
        try {
          await this.db.query('BEGIN');
          await this.db.query('UPDATE counters SET x = x + 1 WHERE id = ?', [id]);
          for (let c = 0; c < copies; c++) await this.db.query('INSERT INTO audit_log (counter_id, note) VALUES (?, ?)', [id, note]);
          await this.db.query('COMMIT');
          this.increments.set(id, (this.increments.get(id) ?? 0) + 1);
          this.audit.set(`${id}|${note}`, (this.audit.get(`${id}|${note}`) ?? 0) + copies);
          this.committed++;
        } catch (error) {
          await this.db.query('ROLLBACK').catch(() => undefined);
          this.errors.push((error as Error).message);
          if (this.errors.length >= 20) break;
        }
        await sleep(this.pauseMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.db.close().catch(() => undefined);
  }

  /**
   * The oracles on both sides against what was committed, as readable lines (empty when
   * equal): the source first (a difference there is the test's own accounting), then the destination.
   */
  async differences(source: CrossSide, destination: CrossSide): Promise<string[]> {
    const expected = this.expected();
    const [onSource, onDestination] = await Promise.all([readOracles(source), readOracles(destination)]);
    return [
      ...countDifferences('source counter', onSource.counters, expected.counters),
      ...countDifferences('source audit_log rows', onSource.audit, expected.audit),
      // x = x + 1 lost (or applied twice) on the destination.
      ...countDifferences('destination counter', onDestination.counters, expected.counters),
      // Keyless inserts lost or applied twice on the destination.
      ...countDifferences('destination audit_log rows', onDestination.audit, expected.audit),
    ];
  }

  /** What the oracle tables must hold: the initial rows plus what was committed. */
  private expected(): { counters: Map<number, number>; audit: Map<string, number> } {
    const counters = new Map<number, number>();
    const audit = new Map<string, number>();
    for (let id = 1; id <= this.size.counters; id++) {
      counters.set(id, this.increments.get(id) ?? 0);
      // 1 + seq % counters = id for auditRows / counters values of seq in 1..auditRows.
      audit.set(`${id}|seed`, this.size.auditRows / this.size.counters);
    }
    for (const [key, n] of this.audit) audit.set(key, n);
    return { counters, audit };
  }
}

/** The number of audit_log rows on one side. */
export async function auditRowCount(side: CrossSide): Promise<number> {
  const sql = `SELECT COUNT(*) AS n FROM ${side.engine === 'mysql' ? `\`${side.schema}\`` : `"${side.schema}"`}.audit_log`;
  const rows = side.engine === 'mysql' ? ((await side.connection.query(sql))[0] as Array<{ n: unknown }>) : (await side.client.query<{ n: unknown }>(sql)).rows;
  return Number(rows[0]?.n);
}

/**
 * Waits (at most `timeoutMs`) until the destination holds more audit rows than `before`: the
 * stream applied audit rows written after the table's copy. A kill before that only makes a
 * restart replay changes older than the copy, which the per-table positions filter, so a
 * change applied twice could not show in the oracles.
 */
export async function waitForStreamedAuditRows(destination: CrossSide, before: number, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; (await auditRowCount(destination)) <= before;) {
    if (Date.now() > deadline) throw new Error(`no audit row streamed to the destination within ${timeoutMs / 1000} s (${before} rows there)`);
    await sleep(250);
  }
}

/** Reads the counters and the audit multiset (counts per `counter_id|note`) of one side. */
async function readOracles(side: CrossSide): Promise<{ counters: Map<number, number>; audit: Map<string, number> }> {
  const table = (name: string) => (side.engine === 'mysql' ? `\`${side.schema}\`.${name}` : `"${side.schema}".${name}`);
  const read = async (sql: string) => {
    if (side.engine === 'mysql') return (await side.connection.query(sql))[0] as Array<Record<string, unknown>>;
    return (await side.client.query(sql)).rows as Array<Record<string, unknown>>;
  };
  const counters = new Map((await read(`SELECT id, x FROM ${table('counters')} ORDER BY id`)).map((r) => [Number(r.id), Number(r.x)] as const));
  const audit = new Map((await read(`SELECT counter_id, note, COUNT(*) AS n FROM ${table('audit_log')} GROUP BY counter_id, note`)).map((r) => [`${Number(r.counter_id)}|${String(r.note)}`, Number(r.n)] as const));
  return { counters, audit };
}

/** The keys whose counts differ, as readable lines (empty when equal). */
function countDifferences(what: string, actual: Map<number | string, number>, expected: Map<number | string, number>): string[] {
  const keys = [...new Set([...actual.keys(), ...expected.keys()])].sort((a, b) => String(a).localeCompare(String(b)));
  return keys.filter((k) => actual.get(k) !== expected.get(k)).map((k) => `${what} ${k}: ${actual.get(k) ?? 'absent'}, committed ${expected.get(k) ?? 'absent'}`);
}
