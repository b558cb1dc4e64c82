/**
 * Restart of chosen tables (issue 8, a value error during the full dump), end to end on real
 * PostgreSQL and MariaDB servers through a real `ferry serve`:
 * - a one-time job of three tables whose destination refuses one value of one table (a CHECK
 *   on a table pre-created there): the other two tables are copied, the job is Failed in Full
 *   dump naming the table and the command that restarts it; after the test drops the CHECK,
 *   `ferry jobs restart ID --objects shop.items` copies that table alone: the copy equals the
 *   source (compare.ts) and the other two tables keep the very row versions (xmin) the first
 *   copy wrote, so they were not copied again;
 * - the API's refusals: unknown table (400 listing the job's tables), an empty or malformed
 *   list (400), a status that allows no restart (409);
 * - a continuous job under a workload, PostgreSQL to PostgreSQL (aligned snapshot from a
 *   temporary slot) and MySQL to PostgreSQL (the snapshot's binlog position): the failed table
 *   is restarted alone, is read at a later snapshot with its own position, and after promote
 *   the destination equals the source while the other tables' untouched rows were not copied again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { launchChromium } from '../helpers/browser.js';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { FAST_RETRY_ENV, REPO_ROOT, api, makeDataDir, removeDataDir, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { createProfile, eventsOf, inIncrementalLoad, jobOf, objectsOf, sleep, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { PG_DEST_PORT, createDatabasePair, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import type { Connection } from 'mysql2/promise';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');
const ROWS = 2_000;
/** The one value the destination's CHECK (qty < 1000) refuses. */
const BAD_ID = 777;

/** Three tables; shop.items holds one qty the destination refuses. Ids are plain integers (no sequence), so the pre-created table matches the source exactly once its CHECK is gone. */
async function createSource(source: pg.ClientBase): Promise<void> {
  await source.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL);
    CREATE TABLE shop.orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL);
    CREATE TABLE shop.items (id int PRIMARY KEY, qty int NOT NULL, note text);
    INSERT INTO shop.customers SELECT g, 'customer ' || g FROM generate_series(1, ${ROWS}) g;
    INSERT INTO shop.orders SELECT g, 1 + g % ${ROWS}, g * 1.25 FROM generate_series(1, ${ROWS}) g;
    INSERT INTO shop.items SELECT g, g % 900, CASE WHEN g % 7 = 0 THEN NULL ELSE 'item ' || g END FROM generate_series(1, ${ROWS}) g;
    UPDATE shop.items SET qty = 5000 WHERE id = ${BAD_ID};
  `);
}

/** The same three tables on MySQL (the database is the schema). */
async function createMysqlSource(source: Connection): Promise<void> {
  await source.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL);
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount decimal(12,2) NOT NULL);
    CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, note text);
    INSERT INTO customers SELECT seq, CONCAT('customer ', seq) FROM seq_1_to_${ROWS};
    INSERT INTO orders SELECT seq, 1 + seq % ${ROWS}, seq * 1.25 FROM seq_1_to_${ROWS};
    INSERT INTO items SELECT seq, seq % 900, CASE WHEN seq % 7 = 0 THEN NULL ELSE CONCAT('item ', seq) END FROM seq_1_to_${ROWS};
    UPDATE items SET qty = 5000 WHERE id = ${BAD_ID};
  `);
}

/**
 * The destination refuses the bad row: `schema`.items exists there already, with a CHECK the
 * source lacks (with its key when another engine's schema writer would not add it to an existing table).
 */
async function narrowDestination(destination: pg.ClientBase, schema = 'shop', key = ''): Promise<void> {
  await destination.query(`
    CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.items (id int NOT NULL ${key}, qty int NOT NULL, note text, CONSTRAINT items_qty_small CHECK (qty < 1000));
  `);
}

/** The fix: the destination accepts the value. */
async function widenDestination(destination: pg.ClientBase, schema = 'shop'): Promise<void> {
  await destination.query(`ALTER TABLE ${schema}.items DROP CONSTRAINT items_qty_small`);
}

/** The row versions of a table's rows with id <= maxId: the transaction that wrote each (changes only if the row is written again). */
async function rowVersions(client: pg.ClientBase, table: string, maxId: number): Promise<string[]> {
  const { rows } = await client.query<{ v: string }>(`SELECT id || ':' || xmin::text AS v FROM ${table} WHERE id <= $1 ORDER BY id`, [maxId]);
  return rows.map((r) => r.v);
}

async function createJob(server: FerryServer, jobId: string, type: 'one-time' | 'continuous', source: ConnectionParams, destination: TestDatabase, include = 'shop'): Promise<void> {
  await createProfile(server, `${jobId}-src`, source);
  await createProfile(server, `${jobId}-dst`, destination.params);
  await runCliJson(['jobs', 'create', '--id', jobId, '--type', type, '--source', `${jobId}-src`, '--destination', `${jobId}-dst`,
    '--include', include, '--dump-parallelism', '2'], { server: server.url });
}

/** Waits until the job is Failed in Full dump; returns it. */
async function waitForFailedDump(client: ApiClient, jobId: string): Promise<JobView> {
  return waitForJob(() => client, jobId, 'Failed in Full dump', (job) => job.status === 'FAILED', 120_000);
}

/** What the failed dump must show: the table named, the others copied, the command to restart it. */
async function expectFailedOnItems(client: ApiClient, jobId: string, failed: JobView, schema = 'shop'): Promise<void> {
  expect(failed.substatus).toBe('Failed in Full dump');
  expect(failed.error?.code, JSON.stringify(failed.error)).toBe('CONSTRAINT_VIOLATION');
  expect(failed.error?.recoverable).toBe(false);
  expect(failed.error?.message).toContain(`${schema}.items`);
  expect(failed.error?.message).toContain(`ferry jobs restart ${jobId} --objects ${schema}.items`);
  expect(failed.availableActions).toContain('restart');
  const states = Object.fromEntries((await objectsOf(client, jobId)).map((o) => [o.name, o.state]));
  expect(states).toEqual({ [`${schema}.customers`]: 'DUMPED', [`${schema}.orders`]: 'DUMPED', [`${schema}.items`]: 'FAILED' });
  const items = (await objectsOf(client, jobId)).find((o) => o.name === `${schema}.items`);
  expect(items?.error?.message).toContain('items_qty_small');
}

describe('restart of chosen tables after a value error in the full dump', () => {
  let server: FerryServer;
  let client: ApiClient;
  const pairs: { drop(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    client = api(server.url);
  });

  afterAll(async () => {
    await stopAllFerryServers();
    await Promise.allSettled(pairs.map((p) => p.drop()));
  }, 120_000);

  it('one-time: the other tables complete; restarting only the failed table gives an exact copy without copying the others again', async () => {
    const pair = await createDatabasePair('ferry_rsobj');
    pairs.push(pair);
    const { source, destination } = pair;
    await createSource(source.client);
    await narrowDestination(destination.client);
    const jobId = 'rs-once';
    await createJob(server, jobId, 'one-time', source.params, destination);

    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    const failed = await waitForFailedDump(client, jobId);
    await expectFailedOnItems(client, jobId, failed);
    const described = await runCli(['jobs', 'describe', jobId], { server: server.url });
    expect(described.stdout).toContain('restart the failed tables only (--objects shop.items)');
    expect(described.stdout).toMatch(/shop\.items: CONSTRAINT_VIOLATION: .*items_qty_small/);
    // The other two tables are on the destination, whole; the refused table holds nothing.
    for (const table of ['shop.customers', 'shop.orders']) {
      const { rows } = await destination.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
      expect(Number(rows[0]?.n), table).toBe(ROWS);
    }
    expect((await destination.client.query('SELECT 1 FROM shop.items')).rowCount).toBe(0);
    const versionsBefore = {
      customers: await rowVersions(destination.client, 'shop.customers', ROWS),
      orders: await rowVersions(destination.client, 'shop.orders', ROWS),
    };
    expect(versionsBefore.customers).toHaveLength(ROWS);

    // Bad input is refused with what to do, and changes nothing.
    const unknown = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: ['shop.items', 'shop.nope'] });
    expect(unknown.status, JSON.stringify(unknown.body)).toBe(400);
    expect(unknown.body.error.code).toBe('INVALID_ARGUMENT');
    expect(unknown.body.error.message).toContain('"shop.nope"');
    for (const table of ['shop.customers', 'shop.items', 'shop.orders']) expect(unknown.body.error.message).toContain(table);
    expect(unknown.body.error.details.unknown).toEqual(['shop.nope']);
    const empty = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: [] });
    expect(empty.status, JSON.stringify(empty.body)).toBe(400);
    expect(empty.body.error.message).toContain('objects');
    const notAList = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: 'shop.items' });
    expect(notAList.status, JSON.stringify(notAList.body)).toBe(400);
    const extra = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: ['shop.items'], force: true });
    expect(extra.status, JSON.stringify(extra.body)).toBe(400);
    const cliUnknown = await runCli(['jobs', 'restart', jobId, '--objects', 'shop.nope'], { server: server.url });
    expect(cliUnknown.code).not.toBe(0);
    expect(cliUnknown.stderr).toContain('INVALID_ARGUMENT');
    expect(cliUnknown.stderr).toContain('shop.customers');
    expect((await client.getOk<JobView>(`/v1/migrationJobs/${jobId}`)).status).toBe('FAILED');

    // The fix, then the failed table alone, through the CLI.
    await widenDestination(destination.client);
    const restart = await runCli(['jobs', 'restart', jobId, '--objects', 'shop.items'], { server: server.url });
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.stdout).toContain('restart of shop.items accepted');
    const completed = await waitForJob(() => client, jobId, 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();

    const differences = await compareDatabases(source.client, destination.client, { schemas: ['shop'] });
    expect(differences, formatDifferences(differences)).toEqual([]);
    // Not copied again: every row of the other tables is the version the first copy wrote.
    expect(await rowVersions(destination.client, 'shop.customers', ROWS)).toEqual(versionsBefore.customers);
    expect(await rowVersions(destination.client, 'shop.orders', ROWS)).toEqual(versionsBefore.orders);
    expect((await objectsOf(client, jobId)).map((o) => o.state)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);

    // The history names the table, in the request and in the restart.
    const events = await eventsOf(client, jobId);
    const request = events.find((e) => e.kind === 'action' && e.action === 'restart');
    expect(request?.message).toBe('Restart of table shop.items requested by cli');
    expect(events.some((e) => e.status === 'STARTING' && e.message.includes('Restart emptied table shop.items'))).toBe(true);

    // Completed: no restart, whole or partial.
    const done = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: ['shop.items'] });
    expect(done.status, JSON.stringify(done.body)).toBe(409);
    expect(done.body.error.code).toBe('ACTION_NOT_ALLOWED');
  }, 300_000);

  it('a crash (kill -9) while the chosen tables are being restarted resumes that restart, not a whole one', async () => {
    const pair = await createDatabasePair('ferry_rsobj');
    pairs.push(pair);
    const { source, destination } = pair;
    await createSource(source.client);
    await narrowDestination(destination.client);
    const dataDir = makeDataDir('ferry-rsobj-');
    let own = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    let ownClient = api(own.url);
    const jobId = 'rs-crash';
    try {
      await createJob(own, jobId, 'one-time', source.params, destination);
      await runCliJson(['jobs', 'start', jobId], { server: own.url });
      await expectFailedOnItems(ownClient, jobId, await waitForFailedDump(ownClient, jobId));
      const versionsBefore = await rowVersions(destination.client, 'shop.customers', ROWS);
      await widenDestination(destination.client);

      // Another session holds the refused table: the restart cannot empty it and stays Restarting.
      const holder = new pg.Client({ host: destination.params.host, port: destination.params.port, user: destination.params.username, database: destination.params.database ?? undefined });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE shop.items IN ACCESS EXCLUSIVE MODE');
        const restarted = await runCli(['jobs', 'restart', jobId, '--objects', 'shop.items'], { server: own.url });
        expect(restarted.code, restarted.stderr).toBe(0);
        await waitForJob(() => ownClient, jobId, 'Restarting', (job) => job.status === 'RESTARTING', 30_000);
        await sleep(300);
        expect((await jobOf(ownClient, jobId)).status).toBe('RESTARTING');
        const exit = await own.kill('SIGKILL');
        expect(exit.signal).toBe('SIGKILL');
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }

      own = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      ownClient = api(own.url);
      await waitForJob(() => ownClient, jobId, 'Completed', (job) => job.status === 'COMPLETED', 120_000);
      const differences = await compareDatabases(source.client, destination.client, { schemas: ['shop'] });
      expect(differences, formatDifferences(differences)).toEqual([]);
      // The resumed restart was the partial one: the other tables were not emptied nor copied again.
      expect(await rowVersions(destination.client, 'shop.customers', ROWS)).toEqual(versionsBefore);
    } finally {
      await own.stop();
      removeDataDir(dataDir);
    }
  }, 300_000);

  it('console: a job Failed in Full dump offers Restart failed tables next to Restart, which restarts only that table', async () => {
    const pair = await createDatabasePair('ferry_rsobj');
    pairs.push(pair);
    const { source, destination } = pair;
    await createSource(source.client);
    await narrowDestination(destination.client);
    const jobId = 'rs-console';
    await createJob(server, jobId, 'one-time', source.params, destination);
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await expectFailedOnItems(client, jobId, await waitForFailedDump(client, jobId));
    const versionsBefore = await rowVersions(destination.client, 'shop.orders', ROWS);
    await widenDestination(destination.client);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(30_000);
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${server.url}/jobs/${jobId}`);
      const actions = page.getByTestId('job-actions');
      const button = actions.getByRole('button', { name: 'Restart failed tables' });
      await button.waitFor();
      // Next to Restart and Delete, the job's own actions.
      expect(await actions.locator('[data-action]').evaluateAll((buttons) => buttons.map((b) => b.getAttribute('data-action')))).toEqual(['restart', 'delete']);
      expect(await actions.getByRole('button').allTextContents()).toEqual(['Restart', 'Restart failed tables', 'Delete']);
      expect(await page.getByTestId('job-error').textContent()).toContain(`ferry jobs restart ${jobId} --objects shop.items`);
      await button.click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'restart-failed-tables.png') });
      expect(await dialog.getByRole('heading').textContent()).toBe(`Restart table shop.items of migration job "${jobId}"?`);
      await dialog.locator('[data-confirm]').click();
      await waitForJob(() => client, jobId, 'Completed', (job) => job.status === 'COMPLETED', 120_000);
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
    }
    const differences = await compareDatabases(source.client, destination.client, { schemas: ['shop'] });
    expect(differences, formatDifferences(differences)).toEqual([]);
    expect(await rowVersions(destination.client, 'shop.orders', ROWS)).toEqual(versionsBefore);
    const request = (await eventsOf(client, jobId)).find((e) => e.kind === 'action' && e.action === 'restart');
    expect(request?.message).toMatch(/^Restart of table shop\.items requested by /);
  }, 300_000);

  it('refuses a table restart where the status allows no restart, or before the job has tables', async () => {
    const pair = await createDatabasePair('ferry_rsobj');
    pairs.push(pair);
    const { source, destination } = pair;
    await createSource(source.client);
    const jobId = 'rs-new';
    await createJob(server, jobId, 'one-time', source.params, destination);
    const refused = await client.post<ErrorBody>(`/v1/migrationJobs/${jobId}:restart`, { objects: ['shop.items'] });
    expect(refused.status, JSON.stringify(refused.body)).toBe(409);
    expect(refused.body.error.code).toBe('ACTION_NOT_ALLOWED');
    expect(refused.body.error.details.availableActions).toEqual(['start', 'delete']);
    const cli = await runCli(['jobs', 'restart', jobId, '--objects', 'shop.items,shop.orders'], { server: server.url });
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain('ACTION_NOT_ALLOWED');
    const missing = await client.post<ErrorBody>('/v1/migrationJobs/rs-none:restart', { objects: ['shop.items'] });
    expect(missing.status).toBe(404);
  });

  it('continuous PostgreSQL to PostgreSQL: the failed table restarted alone gets its own position and replicates exactly under a workload', async () => {
    const pair = await createDatabasePair('ferry_rsobj');
    pairs.push(pair);
    const { source, destination } = pair;
    await createSource(source.client);
    await narrowDestination(destination.client);
    const workloadClient = new pg.Client({ host: source.params.host, port: source.params.port, user: source.params.username, database: source.params.database ?? undefined });
    await workloadClient.connect();
    await restartFailedTableUnderWorkload({
      jobId: 'rs-cont', source: source.params, destination, schema: 'shop',
      workload: new SmallWorkload(postgresRunner(workloadClient), 'shop.'),
      compare: async () => {
        const differences = await compareDatabases(source.client, destination.client, { schemas: ['shop'] });
        return differences.length === 0 ? '' : formatDifferences(differences);
      },
    });
  }, 300_000);

  it('continuous MySQL to PostgreSQL: the failed table restarted alone gets its own binlog position and replicates exactly under a workload', async () => {
    const db = await createMysqlTestDatabase('ferry_rsobj');
    pairs.push(db);
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_rsobj');
    pairs.push(destination);
    await createMysqlSource(db.connection);
    await narrowDestination(destination.client, db.name, 'PRIMARY KEY');
    await restartFailedTableUnderWorkload({
      jobId: 'rs-m2p', source: mysqlConnectionParams(null), destination, schema: db.name,
      workload: new SmallWorkload(mysqlRunner(await connectMysqlAdmin(db.name)), ''),
      compare: async () => {
        const differences = await compareAcrossEngines(
          { engine: 'mysql', connection: db.connection, schema: db.name },
          { engine: 'postgresql', client: destination.client, schema: db.name },
        );
        return differences.length === 0 ? '' : formatCrossDifferences(differences);
      },
    });
  }, 300_000);

  /**
   * A continuous job whose full dump fails on shop.items while `workload` writes all three
   * tables; the test widens the destination and restarts that table alone through the API;
   * after promote `compare` finds nothing and the other tables' untouched rows keep the row
   * versions of the first copy.
   */
  async function restartFailedTableUnderWorkload(options: {
    jobId: string;
    source: ConnectionParams;
    destination: TestDatabase;
    schema: string;
    workload: SmallWorkload;
    /** The differences as text; empty when the destination equals the source. */
    compare(): Promise<string>;
  }): Promise<void> {
    const { jobId, destination, schema, workload } = options;
    await createJob(server, jobId, 'continuous', options.source, destination, schema);
    try {
      workload.start();
      await workload.waitForCommits(10);
      await runCliJson(['jobs', 'start', jobId], { server: server.url });
      const failed = await waitForFailedDump(client, jobId);
      await expectFailedOnItems(client, jobId, failed, schema);
      const versionsBefore = {
        customers: await rowVersions(destination.client, `${schema}.customers`, ROWS),
        orders: await rowVersions(destination.client, `${schema}.orders`, ROWS),
      };
      expect(versionsBefore.orders).toHaveLength(ROWS);
      // Changes of every table keep coming while the job is Failed (the slot or binlog keeps them).
      await workload.waitForCommits(workload.commits + 20);

      await widenDestination(destination.client, schema);
      const restarted = await client.postOk<JobView>(`/v1/migrationJobs/${jobId}:restart`, { objects: [`${schema}.items`] });
      expect(restarted.status).toBe('RESTARTING');
      await waitForJob(() => client, jobId, 'Incremental load', inIncrementalLoad, 120_000);
      // The workload goes on writing all three tables, the restarted one included.
      await workload.waitForCommits(workload.commits + 40);
      await workload.stop();
      expect(workload.errors, workload.errors.join('\n')).toEqual([]);

      await client.postOk(`/v1/migrationJobs/${jobId}:promote`);
      await waitForJob(() => client, jobId, 'Completed', (job) => job.status === 'COMPLETED', 120_000);
      expect(await options.compare()).toBe('');
      // The rows the workload never writes (ids up to ROWS) were not copied again.
      expect(await rowVersions(destination.client, `${schema}.customers`, ROWS)).toEqual(versionsBefore.customers);
      expect(await rowVersions(destination.client, `${schema}.orders`, ROWS)).toEqual(versionsBefore.orders);
    } finally {
      await workload.stop();
    }
  }
});

/** Runs one statement on a source; SQL is written with ? placeholders. */
type Run = (sql: string, params?: unknown[]) => Promise<void>;

function postgresRunner(client: pg.Client): { run: Run; close(): Promise<void> } {
  return {
    run: async (sql, params = []) => {
      let n = 0;
      await client.query(sql.replace(/\?/g, () => `$${++n}`), params);
    },
    close: () => client.end(),
  };
}

function mysqlRunner(connection: Connection): { run: Run; close(): Promise<void> } {
  return {
    run: async (sql, params = []) => {
      await connection.query(sql, params);
    },
    close: () => connection.end(),
  };
}

/**
 * Writes all three tables of the test schema in small transactions: inserts above ROWS,
 * updates and deletes of its own rows (never the first ROWS rows, whose row versions on the
 * destination prove what was copied again).
 */
class SmallWorkload {
  commits = 0;
  readonly errors: string[] = [];
  #running = false;
  #loop: Promise<void> = Promise.resolve();

  /** `prefix`: how the source names the schema's tables ("shop." or ""). */
  constructor(private readonly runner: { run: Run; close(): Promise<void> }, private readonly prefix: string) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const { run } = this.runner;
    const t = (name: string) => `${this.prefix}${name}`;
    let next = ROWS + 1;
    while (this.#running) {
      const id = next++;
      try {
        await run('BEGIN');
        await run(`INSERT INTO ${t('customers')} VALUES (?, ?)`, [id, `customer ${id}`]);
        await run(`INSERT INTO ${t('orders')} VALUES (?, ?, ?)`, [id, id, (id * 0.5).toFixed(2)]);
        await run(`INSERT INTO ${t('items')} VALUES (?, ?, ?)`, [id, id % 500, `new ${id}`]);
        if (id % 3 === 0) {
          await run(`UPDATE ${t('items')} SET qty = qty + 1, note = ? WHERE id = ?`, [`changed ${id}`, id - 2]);
          await run(`UPDATE ${t('orders')} SET amount = amount + 1 WHERE id = ?`, [id - 1]);
        }
        if (id % 5 === 0) {
          await run(`DELETE FROM ${t('items')} WHERE id = ?`, [id - 3]);
          await run(`DELETE FROM ${t('customers')} WHERE id = ?`, [id - 4]);
        }
        await run('COMMIT');
        this.commits++;
      } catch (error) {
        this.errors.push(String(error));
        await run('ROLLBACK').catch(() => undefined);
      }
      await sleep(20);
    }
  }

  /** Bounded: 60 s. */
  async waitForCommits(count: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (this.commits < count) {
      if (this.errors.length > 0) throw new Error(`workload failed: ${this.errors.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`workload: ${this.commits} commits after 60 s, waited for ${count}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#loop;
    await this.runner.close().catch(() => undefined);
  }
}
