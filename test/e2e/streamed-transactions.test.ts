/**
 * Streaming of in-progress transactions, PostgreSQL to PostgreSQL: with
 * FERRY_PG_DECODING_WORK_MEM=64kB the source's walsender streams every transaction larger than
 * 64 kB before its commit (pgoutput protocol 2), and Ferry applies it on a second destination
 * session while the source transaction is still open, committing it with its position once
 * the source commits it.
 *
 * Each case checks behaviour on the servers, not log lines alone:
 * - applied while open: the destination holds a session with the table's RowExclusiveLock
 *   while the source transaction is still open (and the rows are not visible yet), and a small
 *   transaction committed meanwhile on another source connection is applied and visible
 *   before the large one commits, and the large one then writes that transaction's row;
 * - a streamed transaction rolled back on the source leaves nothing on the destination;
 * - kill -9 of ferry serve while a streamed transaction is half applied, and kills at the
 *   failpoints just before and just after its destination commit: after the restart it is
 *   applied exactly once;
 * - two large transactions streamed at once: each is applied on a session of its own;
 * - a rolled-back subtransaction inside a streamed transaction, and three large transactions
 *   streamed at once: the stream is read again without streaming, and nothing is lost or doubled;
 *   once the transaction of the fallback ended and is applied, a large transaction is streamed
 *   (applied while open) again.
 * At the end the job is promoted and the destination must equal the source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createJob, createProfile, inIncrementalLoad, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type FerryServer } from '../helpers/ferry-server.js';
import { PG_HOST, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

const ENV = { ...FAST_RETRY_ENV, FERRY_PG_DECODING_WORK_MEM: '64kB' };
const FALLBACK = 'reading the change stream again without streaming in-progress transactions';
const RESUMED = 'streaming in-progress transactions again';

describe('transactions streamed before their commit (PostgreSQL to PostgreSQL)', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let drop: () => Promise<void>;
  let dataDir: string;
  let server: FerryServer | null = null;
  const extra: pg.Client[] = [];
  const client = () => api((server as FerryServer).url);

  /** Another session on the source, for a transaction of its own. */
  async function sourceSession(): Promise<pg.Client> {
    const session = new pg.Client({ host: PG_HOST, port: source.params.port, user: PG_USER, database: source.params.database as string });
    await session.connect();
    extra.push(session);
    return session;
  }

  const count = async (c: pg.Client, table: string) => Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const digest = async (c: pg.Client) => (await c.query(`SELECT count(*)::text || ':' || coalesce(sum(v), 0)::text || ':' || coalesce(sum(length(note)), 0)::text AS d FROM big`)).rows[0].d as string;

  /** A destination session other than the test's holds a write lock on `big` while its rows are not committed: the streamed transaction is being applied. */
  async function waitForStreamedApply(): Promise<void> {
    await waitFor('a destination session writing big before the source commits', async () => {
      const { rows } = await destination.client.query(
        `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.relation = 'big'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted AND a.pid <> pg_backend_pid() AND a.state = 'idle in transaction'`,
      );
      return Number(rows[0].n) > 0 ? true : undefined;
    }, { timeoutMs: 60_000 }).catch(async (error: unknown) => {
      const slots = await source.client.query(`SELECT query FROM pg_stat_activity WHERE backend_type = 'walsender'`);
      const act = await destination.client.query(`SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()`);
      console.log(JSON.stringify(slots.rows), JSON.stringify(act.rows), (server as FerryServer).output().slice(-3000));
      throw error;
    });
  }

  async function waitForEqual(what: string): Promise<void> {
    const expected = await digest(source.client);
    await waitFor(what, async () => ((await digest(destination.client)) === expected ? true : undefined), { timeoutMs: 90_000 });
  }

  const fallbacks = () => (server as FerryServer).logLines().filter((line) => line['msg'] === FALLBACK).length;
  const resumed = () => (server as FerryServer).logLines().filter((line) => String(line['msg']).startsWith(RESUMED)).length;

  beforeAll(async () => {
    const pair = await createDatabasePair('ferry_stream');
    ({ source, destination } = pair);
    drop = () => pair.drop();
    await source.client.query(`CREATE TABLE big (id bigint PRIMARY KEY, v integer NOT NULL, note text NOT NULL)`);
    await source.client.query(`CREATE TABLE small (id bigint PRIMARY KEY, v integer NOT NULL)`);
    await source.client.query(`INSERT INTO big SELECT g, g, 'seed' FROM generate_series(1, 1000) g`);
    dataDir = makeDataDir('ferry-stream-');
  }, 60_000);

  afterAll(async () => {
    for (const session of extra) await session.end().catch(() => undefined);
    await server?.stop();
    await stopAllFerryServers();
    await drop?.().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('applies a large transaction while it is open on the source, and commits it after what committed before it', async () => {
    server = await spawnFerryServer({ dataDir, env: ENV });
    await createProfile(server, 'src', source.params);
    await createProfile(server, 'dst', destination.params);
    await createJob(server, 'stream', { type: 'continuous', source: 'src', destination: 'dst', include: ['public'] });
    await runCliJson(['jobs', 'start', 'stream'], { server: server.url });
    await waitForJob(client, 'stream', 'Running (Incremental load)', inIncrementalLoad, 120_000);

    const large = await sourceSession();
    await large.query('BEGIN');
    await large.query(`INSERT INTO big SELECT g, g, repeat('x', 50) FROM generate_series(10001, 30000) g`);
    await large.query(`UPDATE big SET v = v + 1 WHERE id <= 500`);
    await large.query(`DELETE FROM big WHERE id BETWEEN 501 AND 600`);
    await waitForStreamedApply();
    expect(await count(destination.client, 'big'), 'nothing of the open transaction is visible').toBe(1000);

    // A transaction on other rows commits while the large one is open: it is applied before the large one's commit.
    await source.client.query(`INSERT INTO small VALUES (1, 1), (2, 2)`);
    await source.client.query(`UPDATE big SET v = v + 1000 WHERE id = 900`);
    await waitFor('the small transaction on the destination', async () => ((await count(destination.client, 'small')) === 2 ? true : undefined), { timeoutMs: 60_000 });
    expect(await count(destination.client, 'big')).toBe(1000);

    // The large transaction now writes the row the small one wrote: its block comes after the small transaction's commit.
    await large.query(`UPDATE big SET v = v + 1, note = 'both' WHERE id = 900`);
    await large.query(`INSERT INTO big SELECT g, g, 'tail' FROM generate_series(30001, 31000) g`);
    await large.query('COMMIT');
    await waitForEqual('the large transaction applied');
    expect(fallbacks()).toBe(0);
  }, 240_000);

  it('leaves nothing of a streamed transaction the source rolled back', async () => {
    const large = await sourceSession();
    await large.query('BEGIN');
    await large.query(`INSERT INTO big SELECT g, g, 'void' FROM generate_series(40001, 60000) g`);
    await waitForStreamedApply();
    await large.query('ROLLBACK');
    await source.client.query(`INSERT INTO small VALUES (3, 3)`);
    await waitFor('the transaction after the rollback', async () => ((await count(destination.client, 'small')) === 3 ? true : undefined), { timeoutMs: 60_000 });
    await waitForEqual('no row of the rolled-back transaction');
    expect(Number((await destination.client.query(`SELECT count(*) AS n FROM big WHERE note = 'void'`)).rows[0].n)).toBe(0);
    expect(fallbacks()).toBe(0);
  }, 120_000);

  it('applies a streamed transaction exactly once across a kill -9 of ferry serve in its middle', async () => {
    const large = await sourceSession();
    await large.query('BEGIN');
    await large.query(`INSERT INTO big SELECT g, g, 'crash' FROM generate_series(70001, 90000) g`);
    await large.query(`UPDATE big SET v = v * 2 WHERE id BETWEEN 10001 AND 12000`);
    await waitForStreamedApply();
    await (server as FerryServer).kill('SIGKILL');
    server = await spawnFerryServer({ dataDir, env: ENV });
    await large.query(`UPDATE big SET v = v + 3 WHERE id BETWEEN 70001 AND 71000`);
    await large.query('COMMIT');
    await waitForEqual('the transaction applied once after the restart');
    expect(fallbacks()).toBe(0);
  }, 180_000);

  it('applies a streamed transaction exactly once when ferry serve dies just before or just after its destination commit', async () => {
    for (const [i, point] of ['before-destination-commit', 'after-destination-commit'].entries()) {
      await (server as FerryServer).stop();
      const armed = await spawnFerryServer({ dataDir, env: { ...ENV, FERRY_FAILPOINTS: `${point}=kill` } });
      server = armed;
      await waitForJob(client, 'stream', 'Running (Incremental load)', inIncrementalLoad, 120_000);
      const large = await sourceSession();
      await large.query('BEGIN');
      const from = 600_000 + i * 100_000;
      await large.query(`INSERT INTO big SELECT g, g, $1 FROM generate_series($2::bigint, $3::bigint) g`, [point, from + 1, from + 20_000]);
      await waitForStreamedApply();
      await large.query('COMMIT');
      const exit = await Promise.race([armed.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 60_000))]);
      expect(exit?.signal, `ferry serve did not die at ${point}`).toBe('SIGKILL');
      expect(armed.output()).toContain(`failpoint ${point} fired: kill`);
      server = await spawnFerryServer({ dataDir, env: ENV });
      await waitForEqual(`the transaction applied once after a kill ${point}`);
    }
    expect(fallbacks()).toBe(0);
  }, 240_000);

  it('reads the stream again without streaming when a subtransaction of a streamed transaction rolls back', async () => {
    const large = await sourceSession();
    await large.query('BEGIN');
    await large.query(`INSERT INTO big SELECT g, g, 'outer' FROM generate_series(100001, 105000) g`);
    await large.query('SAVEPOINT inner_part');
    await large.query(`INSERT INTO big SELECT g, g, 'inner' FROM generate_series(105001, 125000) g`);
    await waitForStreamedApply();
    await large.query('ROLLBACK TO SAVEPOINT inner_part');
    await large.query(`INSERT INTO big SELECT g, g, 'after' FROM generate_series(125001, 126000) g`);
    await large.query('COMMIT');
    await waitForEqual('the transaction without its rolled-back subtransaction');
    expect(Number((await destination.client.query(`SELECT count(*) AS n FROM big WHERE note = 'inner'`)).rows[0].n)).toBe(0);
    expect(fallbacks()).toBe(1);

    // Streaming is asked for again once the transaction of the fallback ended and its end is
    // applied (after a pause of 5 s): small transactions keep the stream moving until then.
    let tick = 0;
    await waitFor('streaming resumed after the fallback', async () => {
      await source.client.query('INSERT INTO small VALUES ($1::bigint, $1::integer)', [1_000 + ++tick]);
      return resumed() > 0 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    const again = await sourceSession();
    await again.query('BEGIN');
    await again.query(`INSERT INTO big SELECT g, g, 'again' FROM generate_series(130001, 150000) g`);
    await waitForStreamedApply();
    expect(await count(destination.client, 'big'), 'nothing of the open transaction is visible').toBe(await count(source.client, 'big'));
    await again.query('COMMIT');
    await waitForEqual('a large transaction streamed again after the fallback');
    expect(fallbacks(), 'no second fallback').toBe(1);
  }, 180_000);

  it('applies two transactions streamed at once on two sessions; reads the stream again without streaming for a third', async () => {
    // A new server: its fallbacks are counted from zero.
    await (server as FerryServer).stop();
    server = await spawnFerryServer({ dataDir, env: ENV });
    await waitForJob(client, 'stream', 'Running (Incremental load)', inIncrementalLoad, 120_000);
    const sessions = [await sourceSession(), await sourceSession(), await sourceSession()];
    const writers = async (count: number, base: number) => {
      for (const session of sessions.slice(0, count)) await session.query('BEGIN');
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < count; i++) {
          const from = base + round * 30_000 + i * 10_000;
          await (sessions[i] as pg.Client).query(`INSERT INTO big SELECT g, g, 'writer ${i}' FROM generate_series($1::bigint, $2::bigint) g`, [from + 1, from + 5_000]);
        }
      }
    };
    const lockHolders = async () => Number((await destination.client.query(
      `SELECT count(DISTINCT l.pid) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.relation = 'big'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted AND a.state = 'idle in transaction'`,
    )).rows[0].n);

    await writers(2, 200_000);
    await waitFor('two destination sessions writing big, one per open source transaction', async () => ((await lockHolders()) === 2 ? true : undefined), { timeoutMs: 60_000 });
    await (sessions[1] as pg.Client).query('COMMIT');
    await (sessions[0] as pg.Client).query('COMMIT');
    await waitForEqual('both transactions applied');
    expect(fallbacks(), 'two at once are applied as they stream').toBe(0);

    await writers(3, 400_000);
    for (const session of sessions) await session.query('COMMIT');
    await waitForEqual('three transactions applied');
    expect(fallbacks(), 'a third at once reads the stream again').toBe(1);

    await runCliJson(['jobs', 'promote', 'stream'], { server: (server as FerryServer).url });
    await waitForJob(client, 'stream', 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
    const differences = await compareDatabases(source.client, destination.client, { schemas: ['public'] });
    expect(differences.length === 0 ? '' : formatDifferences(differences)).toBe('');
  }, 240_000);
});
