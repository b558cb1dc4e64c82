/**
 * The failpoint walk of the kill matrix (issue 13), shared by the failpoint tests of every
 * engine pair: `ferry serve` runs with one failpoint armed (FERRY_FAILPOINTS,
 * src/pipeline/failpoints.ts), kills itself with SIGKILL exactly there, and a new server on
 * the same data directory carries on (the next life armed with the next failpoint). Every
 * failpoint fires at least once: during slot/binlog-position creation, after a table's copy
 * (pause: the test stops the job and kills it), during Restart's wipe, after a table's copy
 * again, between post-data steps, between a destination commit and the acknowledgement,
 * before a destination commit, in the middle of promote. Each kill is checked: the process
 * died of SIGKILL and wrote `failpoint <name> fired`.
 *
 * The oracles see double application and loss, under a concurrent workload:
 * - `audit_log`, insert-only and without a primary key (every tenth transaction inserts the same
 *   row twice): compared as a sorted list with the source and with what the workload committed;
 * - `counters`, updated with x = x + 1: each equals the increments the workload committed;
 * - `items`, with key changes and TRUNCATEs, compared row for row (the pair's `compare`).
 */
import { expect } from 'vitest';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import type { CrossSide } from './compare-cross.js';
import type { SourceWriter } from './crash-oracles.js';
import { createJob, createProfile, sleep, waitForJob } from './e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, type ApiClient, type FerryServer } from './ferry-server.js';

export const COUNTERS = 5;
/** The audit rows the schema seeds, as `event|counter_id`. */
const SEED_AUDIT = ['seed|1', 'seed|1', 'seed|2'];

/**
 * One transaction after another: an audit row (every tenth twice: duplicates are allowed), a
 * counter incremented, sometimes an item inserted or its key changed, now and then a
 * TRUNCATE of the items. Counts only what COMMIT acknowledged.
 */
export class OracleWorkload {
  readonly audit: string[] = [];
  readonly increments = new Array<number>(COUNTERS + 1).fill(0);
  readonly errors: string[] = [];
  committed = 0;
  #running = true;
  #loop: Promise<void> = Promise.resolve();

  constructor(private readonly side: SourceWriter) {}

  start(): void {
    this.#loop = (async () => {
      for (let i = 1; this.#running; i++) {
        const counter = 1 + (i % COUNTERS);
        const rows = i % 10 === 0 ? 2 : 1;
        try {
          await this.side.query('BEGIN');
          for (let r = 0; r < rows; r++) await this.side.query(`INSERT INTO audit_log (event, counter_id) VALUES ('e${i}', ${counter})`);
          await this.side.query(`UPDATE counters SET x = x + 1 WHERE id = ${counter}`);
          if (i % 3 === 0) await this.side.query(`INSERT INTO items (id, v) VALUES (${i}, 'item ${i}')`);
          if (i % 7 === 0) await this.side.query(`UPDATE items SET id = id + 1000000, v = 'moved' WHERE id = ${i - 6}`);
          await this.side.query('COMMIT');
          for (let r = 0; r < rows; r++) this.audit.push(`e${i}|${counter}`);
          this.increments[counter]!++;
          this.committed++;
          if (i % 120 === 0) await this.side.query('TRUNCATE TABLE items');
        } catch (error) {
          this.errors.push((error as Error).message);
          await this.side.query('ROLLBACK').catch(() => undefined);
          if (this.errors.length >= 20) break;
        }
        await sleep(3);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** The oracle tables and their seed rows; `tableSuffix` follows each CREATE TABLE (` ENGINE=InnoDB` on MySQL). */
export function oracleSchema(tableSuffix = ''): string[] {
  return [
    `CREATE TABLE audit_log (event varchar(20) NOT NULL, counter_id int NOT NULL)${tableSuffix}`,
    `CREATE TABLE counters (id int PRIMARY KEY, x int NOT NULL)${tableSuffix}`,
    `CREATE TABLE items (id int PRIMARY KEY, v varchar(40) NOT NULL)${tableSuffix}`,
    `INSERT INTO counters (id, x) VALUES ${Array.from({ length: COUNTERS }, (_, i) => `(${i + 1}, 0)`).join(', ')}`,
    `INSERT INTO audit_log (event, counter_id) VALUES ${SEED_AUDIT.map((r) => `('${r.split('|')[0]}', ${r.split('|')[1]})`).join(', ')}`,
    `INSERT INTO items (id, v) VALUES (0, 'seed')`,
  ];
}

async function query(side: CrossSide, sql: string): Promise<Array<Record<string, unknown>>> {
  if (side.engine === 'mysql') return (await side.connection.query(sql))[0] as Array<Record<string, unknown>>;
  return (await side.client.query(sql)).rows as Array<Record<string, unknown>>;
}

const tableOf = (side: CrossSide, table: string) => (side.engine === 'mysql' ? `\`${side.schema}\`.${table}` : `"${side.schema}".${table}`);

/** The audit log of one side as sorted `event|counter_id` strings (a multiset). */
export async function readAudit(side: CrossSide): Promise<string[]> {
  return (await query(side, `SELECT event, counter_id FROM ${tableOf(side, 'audit_log')}`)).map((r) => `${String(r.event)}|${Number(r.counter_id)}`).sort();
}

/** The counters of one side as [id, x] pairs by id. */
export async function readCounters(side: CrossSide): Promise<Array<[number, number]>> {
  return (await query(side, `SELECT id, x FROM ${tableOf(side, 'counters')} ORDER BY id`)).map((r) => [Number(r.id), Number(r.x)]);
}

/** One engine pair, its databases made, the oracle schema on the source. */
export interface FailpointPair {
  name: string;
  /** The workload's own connection to the source (crash-oracles.ts: mysqlWriter, postgresWriter). */
  writer: SourceWriter;
  source: CrossSide;
  destination: CrossSide;
  sourceProfile: ConnectionParams;
  destinationProfile: ConnectionParams;
  include: string[];
  /** PostgreSQL source: the position the slot holds as confirmed by Ferry. */
  confirmedPosition?: () => Promise<string | null>;
  /** Everything compared after promote; '' when equal, the differences otherwise. */
  compare(): Promise<string>;
}

/** Waits (at most 60 s) until the server wrote `text`. */
export async function waitForOutput(server: FerryServer, text: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; !server.output().includes(text);) {
    if (Date.now() > deadline) throw new Error(`ferry serve did not write "${text}" within 60 s; output:\n${server.output().slice(-3000)}`);
    await sleep(50);
  }
}

/** The walk described in the file comment; resolves with a one-line summary. Stops its servers and removes its data directory. */
export async function walkFailpoints(pair: FailpointPair): Promise<string> {
  const started = Date.now();
  const dataDir = makeDataDir('ferry-fp-');
  const workload = new OracleWorkload(pair.writer);
  let server: FerryServer | null = null;
  const lives: string[] = [];
  try {
    let client: ApiClient;
    const live = async (failpoints: string | null) => {
      server = await spawnFerryServer({ dataDir, env: { ...FAST_RETRY_ENV, ...(failpoints === null ? {} : { FERRY_FAILPOINTS: failpoints }) } });
      client = api(server.url);
      lives.push(failpoints ?? 'none');
      return server;
    };
    const current = () => client;
    /** Waits (bounded: `seconds`) until the server killed itself at `point`. */
    const diesAt = async (s: FerryServer, point: string, seconds = 60) => {
      const exit = await Promise.race([s.exited, sleep(seconds * 1000).then(() => null)]);
      expect(exit, `ferry serve did not die at failpoint ${point} within ${seconds} s; output:\n${s.output().slice(-3000)}`).not.toBeNull();
      expect(exit?.signal).toBe('SIGKILL');
      expect(s.output()).toContain(`failpoint ${point} fired: kill`);
    };
    const jobId = 'fp';
    const run = (args: string[]) => runCliJson(args, { server: (server as FerryServer).url });

    // 1. Killed while the slot (binlog position) is being created, before it is recorded.
    let s = await live('in-create-replication=kill');
    await createProfile(s, 'src', pair.sourceProfile);
    await createProfile(s, 'dst', pair.destinationProfile);
    await createJob(s, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: pair.include, dumpParallelism: 1 });
    workload.start();
    await run(['jobs', 'start', jobId]);
    // PostgreSQL creates a logical slot only once every transaction open on the whole cluster
    // has ended: on the shared test servers other files' transactions can hold it for a while.
    await diesAt(s, 'in-create-replication', 150);

    // 2. Paused after a table's copy committed, before its state is stored: stopped there, then killed by the test.
    s = await live('after-table-copy=pause');
    await waitForOutput(s, 'failpoint after-table-copy fired: pause');
    await run(['jobs', 'stop', jobId]);
    expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');

    // 3. Stopped in the full dump; killed during Restart's wipe.
    s = await live('during-restart-wipe=kill');
    await waitForJob(current, jobId, 'Stopped', (j) => j.status === 'STOPPED', 60_000);
    await run(['jobs', 'restart', jobId]);
    await diesAt(s, 'during-restart-wipe');

    // 4. The wipe resumes and the dump starts over: killed after the second table's copy.
    s = await live('after-table-copy=kill@2');
    await diesAt(s, 'after-table-copy');

    // 5. Killed between post-data steps (indexes done, sequences not set).
    s = await live('between-post-data-steps=kill');
    await diesAt(s, 'between-post-data-steps');

    // 6. Killed between a destination commit and the acknowledgement to the source.
    s = await live('after-destination-commit=kill@3');
    await diesAt(s, 'after-destination-commit');

    // 6b. Killed with a batch applied on the destination but not committed (nor acknowledged).
    // PostgreSQL source: paused there first, until the slot hears a newer confirmed position or
    // about 12 s pass (Ferry's status interval is 10 s), so that an acknowledgement sent too
    // early reaches the source before the kill; a MySQL source is acknowledged to nobody.
    if (pair.confirmedPosition === undefined) {
      s = await live('before-destination-commit=kill@4');
      await diesAt(s, 'before-destination-commit');
    } else {
      s = await live('before-destination-commit=pause@4');
      await waitForOutput(s, 'failpoint before-destination-commit fired: pause');
      const atPause = await pair.confirmedPosition();
      for (const deadline = Date.now() + 12_000; Date.now() < deadline && (await pair.confirmedPosition()) === atPause;) await sleep(200);
      expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');
    }

    // 7. Killed in the middle of promote: caught up to the marker, the slot not dropped yet.
    s = await live('promote-after-catch-up=kill');
    await waitForJob(current, jobId, 'changes applied', (j) => j.phase === 'INCREMENTAL_LOAD' && (j.replication?.changesApplied ?? 0) > 0, 60_000);
    await workload.stop();
    expect(workload.errors, workload.errors.join('\n')).toEqual([]);
    await run(['jobs', 'promote', jobId]);
    await diesAt(s, 'promote-after-catch-up');

    // 8. No failpoint: the promote finishes.
    s = await live(null);
    const done = await waitForJob(current, jobId, 'Completed', (j) => j.status === 'COMPLETED', 90_000);
    expect(done.error).toBeNull();

    // The keyless audit log: the same multiset on both sides, and exactly what the workload committed.
    const committedAudit = [...SEED_AUDIT, ...workload.audit].sort();
    expect(await readAudit(pair.source)).toEqual(committedAudit);
    const destinationAudit = await readAudit(pair.destination);
    expect(destinationAudit.length, 'audit rows on the destination (more: a change applied twice; fewer: one lost)').toBe(committedAudit.length);
    expect(destinationAudit).toEqual(committedAudit);
    // The counters: each equals the increments committed.
    expect(await readCounters(pair.destination)).toEqual(Array.from({ length: COUNTERS }, (_, i) => [i + 1, workload.increments[i + 1]]));
    // The keyed tables (key changes, TRUNCATEs) row for row, and everything else the pair compares.
    expect(await pair.compare()).toBe('');
    expect(workload.committed).toBeGreaterThan(50);
    return `failpoints ${pair.name}: lives ${lives.join(' → ')}; ${workload.committed} transactions committed, ${committedAudit.length} audit rows; ${((Date.now() - started) / 1000).toFixed(0)} s`;
  } finally {
    await workload.stop().catch(() => undefined);
    await (server as FerryServer | null)?.stop().catch(() => undefined);
    await pair.writer.close().catch(() => undefined);
    removeDataDir(dataDir);
  }
}
