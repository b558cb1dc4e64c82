/**
 * A PostgreSQL partitioned table bound for MySQL/MariaDB arrives whole: one MySQL table with
 * every partition's rows, and in a continuous job the partitions' changes arrive through the
 * root (publish_via_partition_root), including an UPDATE that moves a row from one partition
 * to another. Verify says the table arrives whole and lists the view it leaves out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProfile, inIncrementalLoad, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { createMysqlTestDatabase, type MysqlTestDatabase } from '../helpers/mysql.js';
import { PG_SOURCE_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

type Row = { id: string; created: string; region: string; amount: string };

describe('PostgreSQL partitioned tables to MySQL', () => {
  let server: FerryServer;
  let client: ApiClient;
  let source: TestDatabase;
  let destination: MysqlTestDatabase;

  async function sourceRows(): Promise<Row[]> {
    const result = await source.client.query("SELECT id::text, to_char(created, 'YYYY-MM-DD') AS created, region, amount::text FROM shop.orders ORDER BY id");
    return result.rows as Row[];
  }

  async function destinationRows(): Promise<Row[]> {
    const [rows] = await destination.connection.query("SELECT CAST(id AS CHAR) AS id, DATE_FORMAT(created, '%Y-%m-%d') AS created, region, CAST(amount AS CHAR) AS amount FROM orders ORDER BY id");
    return (rows as Row[]).map((r) => ({ ...r, amount: String(Number(r.amount).toFixed(2)) }));
  }

  beforeAll(async () => {
    [server, source, destination] = await Promise.all([spawnFerryServer({ env: FAST_RETRY_ENV }), createTestDatabase(PG_SOURCE_PORT, 'ferry_parts'), createMysqlTestDatabase('ferry_parts')]);
    client = api(server.url);
    await source.client.query(`
      CREATE SCHEMA shop;
      CREATE TABLE shop.orders (id bigint NOT NULL, created date NOT NULL, region text NOT NULL, amount numeric(10,2) NOT NULL,
        PRIMARY KEY (id, created, region)) PARTITION BY RANGE (created);
      CREATE TABLE shop.orders_2025 PARTITION OF shop.orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE shop.orders_2026 PARTITION OF shop.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (region);
      CREATE TABLE shop.orders_2026_eu PARTITION OF shop.orders_2026 FOR VALUES IN ('eu');
      CREATE TABLE shop.orders_2026_other PARTITION OF shop.orders_2026 DEFAULT;
      CREATE TABLE shop.orders_old PARTITION OF shop.orders DEFAULT;
      INSERT INTO shop.orders SELECT g, DATE '2024-06-01' + (g * 3), CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g * 1.25 FROM generate_series(1, 300) g;
      CREATE VIEW shop.eu_orders AS SELECT id, amount FROM shop.orders WHERE region = 'eu';
    `);
    await createProfile(server, 'pg', source.params);
    await runCliJson(['profiles', 'create', '--id', 'my', '--engine', 'mysql', '--host', destination.params.host, '--port', String(destination.params.port),
      '--username', destination.params.username, '--database', destination.name], { server: server.url });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await source?.drop().catch(() => undefined);
    await destination?.drop().catch(() => undefined);
  }, 60_000);

  it('verify says the partitioned table arrives whole and names the view it leaves out', async () => {
    await runCliJson(['jobs', 'create', '--id', 'parts', '--type', 'continuous', '--source', 'pg', '--destination', 'my', '--include', 'shop'], { server: server.url });
    const report = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> }>('/v1/migrationJobs/parts:verify', {});
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    const partitioned = report.checks.find((c) => c.code === 'PARTITIONED_TABLE');
    expect(partitioned).toMatchObject({ severity: 'ok', objects: ['shop.orders'] });
    expect(partitioned?.message).toContain('arrive whole');
    const objects = report.checks.find((c) => c.code === 'SCHEMA_OBJECTS');
    expect(objects?.severity).toBe('warning');
    expect(objects?.objects).toContain('shop.eu_orders');
  });

  it('copies every partition into one table, then applies inserts, deletes and a row moving between partitions', async () => {
    await runCliJson(['jobs', 'start', 'parts'], { server: server.url });
    await waitForJob(() => client, 'parts', 'Incremental load', inIncrementalLoad, 180_000);
    const [tables] = await destination.connection.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1', [destination.name]);
    expect((tables as Array<{ t: string }>).map((r) => r.t)).toEqual(['orders']);
    expect(await destinationRows()).toEqual(await sourceRows());

    await source.client.query(`
      INSERT INTO shop.orders VALUES (1001, '2026-03-01', 'eu', 10), (1002, '2026-03-02', 'us', 20), (1003, '2025-05-05', 'eu', 30), (1004, '2023-01-01', 'us', 40);
      UPDATE shop.orders SET region = 'us', amount = amount + 1 WHERE id = 1001;
      UPDATE shop.orders SET created = '2026-07-07' WHERE id = 1003;
      DELETE FROM shop.orders WHERE id BETWEEN 10 AND 19;
      UPDATE shop.orders SET amount = 0 WHERE id = 2;
    `);
    // The row moved between partitions: it must exist once, in its new place.
    expect((await source.client.query("SELECT tableoid::regclass::text AS p FROM shop.orders WHERE id = 1003")).rows).toEqual([{ p: 'shop.orders_2026_eu' }]);
    await runCliJson(['jobs', 'promote', 'parts'], { server: server.url });
    const done = await waitForJob(() => client, 'parts', 'Completed', (job: JobView) => job.status === 'COMPLETED', 180_000);
    expect(done.error).toBeNull();
    expect(await destinationRows()).toEqual(await sourceRows());
  });
});
