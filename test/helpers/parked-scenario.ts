/**
 * The parked-table scenario of issue 8, for any engine pair: a continuous job over three tables
 * (alpha, beta, gamma) under a writer; the destination gets a CHECK constraint that gamma's new
 * rows violate. Helpers to drive both sides through one small interface.
 */
import type { Connection } from 'mysql2/promise';
import type pg from 'pg';
import { expect } from 'vitest';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, sleep, waitForJob } from './e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCli, runCliJson, spawnFerryServer, waitFor, type ApiClient, type FerryServer } from './ferry-server.js';

export interface ParkedObject {
  name: string;
  state: string;
  error: { code: string; message: string } | null;
  parkedChanges: number;
  lastRetryTime: string | null;
}

export async function objectsOf(client: ApiClient, id: string): Promise<ParkedObject[]> {
  return (await client.getOk<{ objects: ParkedObject[] }>(`/v1/migrationJobs/${id}/objects`)).objects;
}

/** One database, either engine, with `?` placeholders. */
export interface Db {
  engine: 'postgresql' | 'mysql';
  query(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
}

export function pgDb(client: pg.ClientBase): Db {
  return {
    engine: 'postgresql',
    async query(sql, params = []) {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      return (await client.query(text, params)).rows as Array<Record<string, unknown>>;
    },
  };
}

export function mysqlDb(connection: Connection): Db {
  return {
    engine: 'mysql',
    async query(sql, params = []) {
      const [rows] = await connection.query(sql, params);
      return Array.isArray(rows) ? (rows as Array<Record<string, unknown>>) : [];
    },
  };
}

export const PARK_TABLES = ['alpha', 'beta', 'gamma'] as const;
/** Rows each table holds before the job starts. */
export const SEED_ROWS = 200;
/** gamma rows whose note starts with this violate the destination's constraint. */
export const BAD_NOTE = 'bad';
export const CHECK_NAME = 'ferry_test_no_bad_notes';

/** Creates the three tables with SEED_ROWS rows each (the table names are qualified by `schema`). */
export async function createParkTables(db: Db, schema: string): Promise<void> {
  for (const table of PARK_TABLES) {
    const suffix = db.engine === 'mysql' ? ' ENGINE=InnoDB' : '';
    await db.query(`CREATE TABLE ${schema}.${table} (id bigint NOT NULL PRIMARY KEY, v bigint NOT NULL, note varchar(100))${suffix}`);
    for (let start = 1; start <= SEED_ROWS; start += 100) {
      const ids = Array.from({ length: 100 }, (_, i) => start + i);
      await db.query(`INSERT INTO ${schema}.${table} (id, v, note) VALUES ${ids.map(() => '(?, ?, ?)').join(', ')}`, ids.flatMap((id) => [id, id, 'seed']));
    }
  }
}

export async function addCheck(db: Db, schema: string): Promise<void> {
  await db.query(`ALTER TABLE ${schema}.gamma ADD CONSTRAINT ${CHECK_NAME} CHECK (note IS NULL OR note NOT LIKE '${BAD_NOTE}%')`);
}

export async function dropCheck(db: Db, schema: string): Promise<void> {
  await db.query(`ALTER TABLE ${schema}.gamma DROP CONSTRAINT ${CHECK_NAME}`);
}

export async function maxId(db: Db, schema: string, table: string): Promise<number> {
  const rows = await db.query(`SELECT COALESCE(MAX(id), 0) AS m FROM ${schema}.${table}`);
  return Number(rows[0]?.m ?? 0);
}

/**
 * Writes to the three tables in source transactions, one per round: a row inserted in each,
 * gamma's and alpha's early rows updated again and again (their final values depend on every
 * update applied in order), some rows deleted. With `bad`, gamma's new and updated rows carry
 * a note the destination's constraint refuses.
 */
export class ParkWriter {
  bad = false;
  rounds = 0;
  readonly errors: string[] = [];
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #next = SEED_ROWS + 1;

  constructor(
    private readonly db: Db,
    private readonly schema: string,
  ) {}

  start(): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        const id = this.#next++;
        const note = this.bad ? `${BAD_NOTE}-${id}` : `ok-${id}`;
        const s = this.schema;
        try {
          await this.db.query('BEGIN');
          await this.db.query(`INSERT INTO ${s}.alpha (id, v, note) VALUES (?, ?, ?)`, [id, id, `a-${id}`]);
          await this.db.query(`INSERT INTO ${s}.beta (id, v, note) VALUES (?, ?, ?)`, [id, id, `b-${id}`]);
          await this.db.query(`INSERT INTO ${s}.gamma (id, v, note) VALUES (?, ?, ?)`, [id, id, note]);
          await this.db.query(`UPDATE ${s}.gamma SET v = v + 1, note = ? WHERE id = ?`, [`${note}-u`, (id % 50) + 1]);
          await this.db.query(`UPDATE ${s}.alpha SET v = v + 1 WHERE id = ?`, [(id % 50) + 1]);
          if (id % 7 === 0) {
            await this.db.query(`DELETE FROM ${s}.beta WHERE id = ?`, [id - 3]);
            await this.db.query(`DELETE FROM ${s}.gamma WHERE id = ?`, [id - 5]);
          }
          await this.db.query('COMMIT');
          this.rounds++;
        } catch (error) {
          this.errors.push(String(error));
          await this.db.query('ROLLBACK').catch(() => undefined);
        }
        await sleep(15);
      }
    })();
  }

  /** The id the next round inserts (every lower id was inserted by a committed round or the seed). */
  get nextId(): number {
    return this.#next;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

export interface ParkScenarioOptions {
  jobId: string;
  /** The data directory of `ferry serve` (kept across the kill). */
  dataDir: string;
  sourceProfile: ConnectionParams;
  destinationProfile: ConnectionParams;
  /** The job's selection. */
  include: string[];
  source: Db;
  sourceSchema: string;
  destination: Db;
  destinationSchema: string;
  /** Kill -9 `ferry serve` while gamma is parked, then start it again. */
  kill: boolean;
  /** Differences between source and destination after promote, formatted; '' when none. */
  compare(): Promise<string>;
}

/** Parked changes of the job's gamma table in the destination's bookkeeping. */
async function parkedOnDestination(db: Db, schema: string): Promise<number> {
  const rows = await db.query(`SELECT COUNT(*) AS n FROM _ferry.parked_changes WHERE table_schema = ? AND table_name = 'gamma'`, [schema]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The scenario of issue 8: gamma is parked, alpha and beta go on, a kill -9 loses nothing, the
 * error clears by itself once the constraint is dropped, and after promote the destination
 * equals the source.
 */
export async function runParkScenario(o: ParkScenarioOptions): Promise<void> {
  const { jobId, source, destination } = o;
  let server: FerryServer = await spawnFerryServer({ dataDir: o.dataDir, env: FAST_RETRY_ENV });
  const client = () => api(server.url);
  const writer = new ParkWriter(source, o.sourceSchema);
  const earlier: string[] = [];
  try {
    await createProfile(server, 'src', o.sourceProfile);
    await createProfile(server, 'dst', o.destinationProfile);
    await createJob(server, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: o.include });
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad, 120_000);
    writer.start();
    await waitFor('the first rounds on the destination', async () => ((await maxId(destination, o.destinationSchema, 'gamma')) > SEED_ROWS + 20 ? true : undefined), { timeoutMs: 60_000 });

    // The destination refuses gamma's new rows.
    await addCheck(destination, o.destinationSchema);
    writer.bad = true;
    const degraded = await waitForJob(client, jobId, 'Running with errors naming gamma', (j) => j.status === 'RUNNING_WITH_ERRORS' && (j.error?.message.includes('.gamma') ?? false), 90_000);
    expect(degraded.substatus).toBe('Incremental load');
    expect(degraded.error?.code).toBe('CONSTRAINT_VIOLATION');
    expect(degraded.error?.message).toMatch(/Ferry retries by itself/);
    const withKey = await waitForJob(client, jobId, 'the error naming the failing change', (j) => /first failing change: (insert|update) id=\d+/.test(j.error?.message ?? ''), 60_000);
    expect(withKey.error?.message, 'says what to do').toMatch(/Drop or relax the constraint on the destination/);
    expect(withKey.error?.message, "the destination's message").toMatch(/ferry_test_no_bad_notes/);
    let objects = await objectsOf(client(), jobId);
    const stateOf = (name: string) => objects.find((x) => x.name.endsWith(`.${name}`));
    expect(stateOf('gamma')?.state).toBe('ERROR');
    expect(stateOf('alpha')?.state).toBe('REPLICATING');
    expect(stateOf('beta')?.state).toBe('REPLICATING');

    // alpha and beta keep replicating while gamma is parked.
    const keepsFlowing = async (what: string) => {
      const target = writer.nextId + 10;
      await waitFor(`alpha and beta rows written ${what} on the destination`, async () => {
        const [a, b] = [await maxId(destination, o.destinationSchema, 'alpha'), await maxId(destination, o.destinationSchema, 'beta')];
        return a >= target && b >= target - 7 ? true : undefined;
      }, { timeoutMs: 60_000 });
      expect(await maxId(destination, o.destinationSchema, 'gamma'), 'gamma stays behind').toBeLessThan(target);
    };
    await keepsFlowing('after gamma was parked');
    const parkedObject = await waitFor('parked changes counted on the job object', async () => {
      const gamma = (await objectsOf(client(), jobId)).find((x) => x.name.endsWith('.gamma'));
      return gamma !== undefined && (gamma.parkedChanges ?? 0) > 0 && gamma.lastRetryTime !== null ? gamma : undefined;
    }, { timeoutMs: 30_000 });
    expect(parkedObject.error?.message).toMatch(/First failing change/);
    expect(await parkedOnDestination(destination, o.destinationSchema)).toBeGreaterThan(0);

    // Seen in describe, the metrics, and refused by Promote.
    const describe = await runCli(['jobs', 'describe', jobId], { server: server.url });
    expect(describe.stdout).toContain('ERROR (parked)');
    expect(describe.stdout).toMatch(/changes? parked, last retry/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`ferry_job_parked_changes\\{job="${jobId}",table="[^"]+\\.gamma"\\} [1-9]`));
    const refused = await client().post<{ error: { code: string; message: string } }>(`/v1/migrationJobs/${jobId}:promote`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/Promote refused: table \S+\.gamma is parked/);
    expect(refused.body.error.message).toMatch(/--force/);

    if (o.kill) {
      const exit = await server.kill('SIGKILL');
      earlier.push(server.output());
      expect(exit.signal).toBe('SIGKILL');
      const before = await parkedOnDestination(destination, o.destinationSchema);
      server = await spawnFerryServer({ dataDir: o.dataDir, env: FAST_RETRY_ENV });
      await waitForJob(client, jobId, 'Running with errors again after the restart', (j) => j.status === 'RUNNING_WITH_ERRORS' && (j.error?.message.includes('.gamma') ?? false), 90_000);
      await keepsFlowing('after the restart');
      expect(await parkedOnDestination(destination, o.destinationSchema), 'parked changes kept across kill -9').toBeGreaterThanOrEqual(before);
    }

    // The user fixes the destination: the error clears by itself and gamma rejoins.
    await dropCheck(destination, o.destinationSchema);
    const recovered = await waitForJob(client, jobId, 'Running again after the constraint was dropped', (j) => j.status === 'RUNNING' && j.error === null, 120_000);
    expect(recovered.substatus).toBe('Incremental load');
    objects = await objectsOf(client(), jobId);
    expect(objects.map((x) => x.state)).toEqual(['REPLICATING', 'REPLICATING', 'REPLICATING']);
    expect(await parkedOnDestination(destination, o.destinationSchema), 'no parked change left').toBe(0);
    const events = await eventsOf(client(), jobId);
    expect(events.some((e) => /Table \S+\.gamma parked/.test(e.message)), 'history: parked').toBe(true);
    expect(events.some((e) => /Table \S+\.gamma rejoined the stream/.test(e.message)), 'history: rejoined').toBe(true);
    expect(events.filter((e) => e.status === 'FAILED')).toEqual([]);

    await writer.stop();
    expect(writer.errors).toEqual([]);
    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(client, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();
    expect(await o.compare()).toBe('');
  } catch (error) {
    // What the server said about it (warnings and errors), for the failure report.
    console.log([...earlier, server.output()].join('\n').split('\n').filter((l) => /"level":[4-6]/.test(l)).slice(-30).join('\n'));
    throw error;
  } finally {
    await writer.stop();
    await server.stop();
  }
}
