/**
 * The object report across engines, through `ferry serve`: a MySQL/MariaDB source with a view,
 * a function, a procedure, a trigger, an event and a partitioned table, bound for PostgreSQL.
 * Verify lists the view, routines, trigger and event as left out with why and their
 * definitions; the API resource and `ferry jobs describe --objects` give the same plan, and
 * `--definitions-file` writes the definitions to adapt. The one-time job then lands the
 * partitioned table whole, as one PostgreSQL table with every row.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProfile, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { createMysqlTestDatabase, mysqlConnectionParams, type MysqlTestDatabase } from '../helpers/mysql.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

interface Plan { kind: string; schema: string | null; name: string; definition: string | null; disposition: string; phase: string | null; reason: string | null }

describe('the object report for a MySQL to PostgreSQL job', () => {
  let server: FerryServer;
  let client: ApiClient;
  let source: MysqlTestDatabase;
  let destination: TestDatabase;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = makeDataDir('ferry-objreport-');
    [server, source] = await Promise.all([spawnFerryServer({ env: FAST_RETRY_ENV }), createMysqlTestDatabase('ferry_objrep')]);
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_objrep');
    client = api(server.url);
    await source.connection.query(`
      CREATE TABLE orders (id int NOT NULL PRIMARY KEY, amount decimal(10,2) NOT NULL);
      CREATE TABLE audit (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id int NOT NULL);
      CREATE TABLE readings (id int NOT NULL, taken date NOT NULL, value int, PRIMARY KEY (id, taken))
        PARTITION BY RANGE (YEAR(taken)) (PARTITION p2023 VALUES LESS THAN (2024), PARTITION pmax VALUES LESS THAN MAXVALUE);
      INSERT INTO orders SELECT seq, seq / 4 FROM seq_1_to_50;
      INSERT INTO readings SELECT seq, '2023-10-01' + INTERVAL seq DAY, seq FROM seq_1_to_200;
    `);
    await source.connection.query('CREATE FUNCTION with_tax(a decimal(10,2)) RETURNS decimal(12,2) DETERMINISTIC RETURN a * 1.2');
    await source.connection.query('CREATE PROCEDURE add_order(i int) BEGIN INSERT INTO orders VALUES (i, 1); END');
    await source.connection.query('CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 5');
    await source.connection.query('CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id)');
    await source.connection.query("CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit");
    await createProfile(server, 'src', mysqlConnectionParams(null));
    await createProfile(server, 'dst', destination.params);
    await runCliJson(['jobs', 'create', '--id', 'report', '--type', 'one-time', '--source', 'src', '--destination', 'dst', '--include', source.name], { server: server.url });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await source?.drop().catch(() => undefined);
    await destination?.drop().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('verify lists what is left out, naming each with why and its definition', async () => {
    const report = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[]; definitions?: Record<string, string> }> }>('/v1/migrationJobs/report:verify');
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    const check = report.checks.find((c) => c.code === 'SCHEMA_OBJECTS');
    expect(check).toMatchObject({ severity: 'warning', side: 'destination' });
    expect(check?.objects?.sort()).toEqual(['add_order', 'big_orders', 'orders_audit', 'purge_audit', 'with_tax'].map((n) => `${source.name}.${n}`));
    expect(check?.message).toContain('1 partitioned table');
    expect(check?.message).toContain(`view ${source.name}.big_orders: A MySQL/MariaDB view's SQL is not translated`);
    expect(check?.definitions?.[`view ${source.name}.big_orders`]).toMatch(/^CREATE ALGORITHM=UNDEFINED DEFINER=.* VIEW (`[^`]+`\.)?`big_orders` AS select/);
    expect(check?.definitions?.[`trigger ${source.name}.orders_audit`]).toContain('INSERT INTO audit (order_id) VALUES (NEW.id)');
    expect(report.checks.some((c) => c.code === 'DEFINERS')).toBe(false);
  });

  it('the API and the CLI give the plan; --definitions-file writes the left-out definitions as SQL', async () => {
    const { objects } = await client.getOk<{ objects: Plan[] }>('/v1/migrationJobs/report/schemaObjects');
    expect(objects.map((o) => `${o.kind} ${o.name} ${o.disposition} ${o.phase}`)).toEqual([
      'partitioned table readings translated pre-data',
      'function with_tax left-out null',
      'procedure add_order left-out null',
      'view big_orders left-out null',
      'trigger orders_audit left-out null',
      'event purge_audit left-out null',
    ]);
    expect(objects.every((o) => o.definition !== null && o.reason !== null)).toBe(true);

    const json = await runCliJson<{ objects: Plan[] }>(['jobs', 'describe', 'report', '--objects'], { server: server.url });
    expect(json.objects).toEqual(objects);

    const file = join(dataDir, 'left-out.sql');
    const table = await runCli(['jobs', 'describe', 'report', '--objects', '--definitions-file', file], { server: server.url });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^KIND\s+NAME\s+DISPOSITION\s+PHASE\s+REASON/m);
    expect(table.stdout).toMatch(new RegExp(`trigger\\s+${source.name}\\.orders_audit\\s+left-out\\s+-\\s+MySQL/MariaDB trigger bodies`));
    expect(table.stdout).toContain(`Wrote the definitions of 5 object(s) left out to ${file}.`);
    const sql = readFileSync(file, 'utf8');
    for (const o of objects.filter((p) => p.disposition === 'left-out')) {
      expect(sql).toContain(`-- ${o.kind} ${source.name}.${o.name}`);
      expect(sql).toContain(`${(o.definition ?? '').replace(/;\s*$/, '')};`);
    }
    expect(sql).not.toContain('PARTITION BY');

    const misuse = await runCli(['jobs', 'describe', 'report', '--definitions-file', file], { server: server.url });
    expect(misuse.code).toBe(2);
    expect(misuse.stderr).toContain('--definitions-file goes with --objects');
  });

  it('refuses a definer policy for another engine pair', async () => {
    const refused = await client.post<{ error: { code: string; message: string } }>('/v1/migrationJobs', {
      displayName: 'x', type: 'one-time', sourceProfileId: 'src', destinationProfileId: 'dst', definerPolicy: 'invoker',
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('MySQL/MariaDB to MySQL/MariaDB jobs only');
  });

  it('the partitioned table arrives whole: one PostgreSQL table with every row', async () => {
    await client.postOk('/v1/migrationJobs/report:start');
    await waitForJob(() => client, 'report', 'Completed', (j) => j.status === 'COMPLETED', 120_000);
    const kinds = await destination.client.query<{ relkind: string }>(`SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'readings'`, [source.name]);
    expect(kinds.rows).toEqual([{ relkind: 'r' }]);
    const rows = await destination.client.query<{ n: string }>(`SELECT count(*) AS n FROM "${source.name}".readings`);
    expect(rows.rows[0]?.n).toBe('200');
  });
});
