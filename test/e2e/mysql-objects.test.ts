/**
 * MySQL/MariaDB to MySQL/MariaDB with every schema object beyond tables, through `ferry serve`:
 * the source (the main MariaDB) has views (one on another view, one calling a function), a
 * function, a procedure, a trigger that stamps a column, a trigger that writes an audit row into
 * another table, an event and a partitioned table, all with data; the destination is a private
 * MariaDB server started once for this file.
 *
 * One-time job (definerPolicy invoker): the objects are created, their SHOW CREATE equals the
 * source's once DEFINER and SQL SECURITY are set aside, views and routines are SQL SECURITY
 * INVOKER with the destination user as definer, the table stays partitioned, and the audit rows
 * are the source's (the trigger did not fire on the load). Continuous job (definerPolicy keep)
 * under a workload that fires both triggers, with `kill -9` of `ferry serve` during the stream:
 * no trigger or event exists on the destination until promote; after promote the data equals the
 * source (audit rows not doubled) and the triggers fire for new writes.
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { createProfile, jobOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams, type MysqlTestDatabase } from '../helpers/mysql.js';

type Row = Record<string, unknown>;

const ORDERS = 300;

/** Builds the source: tables with data, then the objects (the triggers' work on the initial rows is in the data). */
async function buildSource(connection: Connection, definer: string | null): Promise<void> {
  const as = definer === null ? '' : `DEFINER=${definer} `;
  await connection.query(`
    CREATE TABLE orders (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, customer varchar(40) NOT NULL, amount decimal(10,2) NOT NULL, updated_at datetime(6) NULL, KEY by_customer (customer)) ENGINE=InnoDB;
    CREATE TABLE audit (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id int NOT NULL, action varchar(10) NOT NULL, amount decimal(10,2)) ENGINE=InnoDB;
    CREATE TABLE readings (id int NOT NULL, taken date NOT NULL, value int, PRIMARY KEY (id, taken)) ENGINE=InnoDB
      PARTITION BY RANGE (YEAR(taken)) (PARTITION p2023 VALUES LESS THAN (2024), PARTITION p2024 VALUES LESS THAN (2025), PARTITION pmax VALUES LESS THAN MAXVALUE);
  `);
  await connection.query(`CREATE ${as}FUNCTION with_tax(a decimal(10,2)) RETURNS decimal(12,2) DETERMINISTIC RETURN a * 1.2`);
  await connection.query(`CREATE ${as}PROCEDURE add_order(c varchar(40), a decimal(10,2)) MODIFIES SQL DATA BEGIN INSERT INTO orders (customer, amount) VALUES (c, a); END`);
  await connection.query(`CREATE ${as}VIEW big_orders AS SELECT id, customer, with_tax(amount) AS gross FROM orders WHERE amount > 50`);
  // Sorts before big_orders by name: created after it only if the order follows dependencies.
  await connection.query(`CREATE ${as}VIEW big_order_count AS SELECT COUNT(*) AS n FROM big_orders`);
  await connection.query('CREATE TRIGGER orders_stamp BEFORE UPDATE ON orders FOR EACH ROW SET NEW.updated_at = NOW(6)');
  await connection.query("CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id, action, amount) VALUES (NEW.id, 'insert', NEW.amount)");
  await connection.query("CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit WHERE action = 'purge-me'");
  for (let i = 1; i <= ORDERS; i++) await connection.query('CALL add_order(?, ?)', [`customer ${i % 17}`, (i * 7) % 100 + 0.25]);
  await connection.query('UPDATE orders SET amount = amount + 1 WHERE id % 5 = 0');
  await connection.query("INSERT INTO readings SELECT seq, '2023-06-01' + INTERVAL (seq * 3) DAY, seq FROM seq_1_to_400");
}

const KINDS = [
  { kind: 'view', show: 'VIEW', column: 'Create View', list: "SELECT TABLE_NAME AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?" },
  { kind: 'function', show: 'FUNCTION', column: 'Create Function', list: "SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'" },
  { kind: 'procedure', show: 'PROCEDURE', column: 'Create Procedure', list: "SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'" },
  { kind: 'trigger', show: 'TRIGGER', column: 'SQL Original Statement', list: 'SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?' },
  { kind: 'event', show: 'EVENT', column: 'Create Event', list: 'SELECT EVENT_NAME AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?' },
] as const;

/** Every object's SHOW CREATE, by "kind name", without DEFINER and SQL SECURITY (the definer policy changes those). */
async function objectDefinitions(connection: Connection, database: string): Promise<Map<string, string>> {
  await connection.query(`USE \`${database}\``);
  const definitions = new Map<string, string>();
  for (const { kind, show, column, list } of KINDS) {
    const [names] = await connection.query(list, [database]);
    for (const { n } of names as Row[]) {
      const [rows] = await connection.query(`SHOW CREATE ${show} \`${String(n)}\``);
      const text = String((rows as Row[])[0]?.[column] ?? '')
        .replace(/DEFINER=`[^`]*`@`[^`]*` /, '')
        // A routine's characteristic line, a view's inline clause.
        .replace(/\n\s*SQL SECURITY (DEFINER|INVOKER)(?=\n)/g, '')
        .replace(/SQL SECURITY (DEFINER|INVOKER) /g, '');
      definitions.set(`${kind} ${String(n)}`, text);
    }
  }
  return definitions;
}

async function count(connection: Connection, sql: string, params: unknown[] = []): Promise<number> {
  const [rows] = await connection.query(sql, params);
  return Number((rows as Row[])[0]?.n ?? -1);
}

describe('MySQL to MySQL with views, routines, triggers, events and partitions', () => {
  let destination: MariadbInstance;
  let server: FerryServer;
  let client: ApiClient;
  let dataDir: string;
  const databases: MysqlTestDatabase[] = [];
  const definerUser = `ferry_def_${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    dataDir = makeDataDir('ferry-mobjects-');
    [destination, server] = await Promise.all([startMariadbInstance({ serverId: 5 }), spawnFerryServer({ dataDir, env: FAST_RETRY_ENV })]);
    client = api(server.url);
    await createProfile(server, 'src', mysqlConnectionParams(null));
    await createProfile(server, 'dst', destination.params(null));
    const admin = await connectMysqlAdmin();
    try {
      // A definer that exists on the source only.
      await admin.query(`CREATE USER '${definerUser}'@'%'`);
    } finally {
      await admin.end();
    }
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    for (const database of databases) await database.drop().catch(() => undefined);
    const admin = await connectMysqlAdmin();
    await admin.query(`DROP USER IF EXISTS '${definerUser}'@'%'`).catch(() => undefined);
    await admin.end();
    await destination?.stop();
    if (dataDir) removeDataDir(dataDir);
  }, 120_000);

  it('one-time job: creates every object in its phase, with the definer policy, the table partitioned, the audit rows not doubled', async () => {
    const source = await createMysqlTestDatabase('ferry_mobj1');
    databases.push(source);
    await source.connection.query(`GRANT SELECT, INSERT, UPDATE, EXECUTE ON \`${source.name}\`.* TO '${definerUser}'@'%'`);
    await buildSource(source.connection, `'${definerUser}'@'%'`);

    // keep: verify names the definer the destination lacks.
    await runCliJson(['jobs', 'create', '--id', 'mobj-keep', '--type', 'one-time', '--source', 'src', '--destination', 'dst', '--include', source.name], { server: server.url });
    const keep = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> }>('/v1/migrationJobs/mobj-keep:verify');
    const definers = keep.checks.find((c) => c.code === 'DEFINERS');
    expect(definers, JSON.stringify(keep.checks)).toMatchObject({ severity: 'warning', objects: [`${definerUser}@%`] });
    expect(definers?.message).toContain('view');
    const objectsCheck = keep.checks.find((c) => c.code === 'SCHEMA_OBJECTS');
    expect(objectsCheck, JSON.stringify(keep.checks)).toMatchObject({ severity: 'ok' });
    for (const part of ['1 partitioned table', '1 function', '1 procedure', '2 views', '2 triggers', '1 event']) expect(objectsCheck?.message).toContain(part);

    const created = await runCliJson<{ definerPolicy: string }>(
      ['jobs', 'create', '--id', 'mobj-once', '--type', 'one-time', '--source', 'src', '--destination', 'dst', '--include', source.name, '--definer-policy', 'invoker'],
      { server: server.url },
    );
    expect(created.definerPolicy).toBe('invoker');
    const verify = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string }> }>('/v1/migrationJobs/mobj-once:verify');
    expect(verify.ok, JSON.stringify(verify.checks)).toBe(true);
    expect(verify.checks.find((c) => c.code === 'DEFINERS')).toMatchObject({ severity: 'ok' });

    const report = await runCliJson<{ objects: Array<{ kind: string; name: string; disposition: string; phase: string | null; definition: string | null }> }>(['jobs', 'describe', 'mobj-once', '--objects'], { server: server.url });
    const phases = Object.fromEntries(report.objects.map((o) => [`${o.kind} ${o.name}`, `${o.disposition}/${o.phase}`]));
    expect(phases).toEqual({
      'partitioned table readings': 'carried/pre-data',
      'function with_tax': 'carried/pre-data',
      'procedure add_order': 'carried/pre-data',
      'view big_orders': 'carried/pre-data',
      'view big_order_count': 'carried/pre-data',
      'trigger orders_stamp': 'carried/post-data',
      'trigger orders_audit': 'carried/post-data',
      'event purge_audit': 'carried/post-data',
    });
    // Views in dependency order: big_orders before the view that reads it.
    const order = report.objects.map((o) => o.name);
    expect(order.indexOf('big_orders')).toBeLessThan(order.indexOf('big_order_count'));

    await client.postOk('/v1/migrationJobs/mobj-once:start');
    const done = await waitForJob(() => client, 'mobj-once', 'Completed', (j) => j.status === 'COMPLETED', 180_000);
    expect(done.status).toBe('COMPLETED');

    const target = await destination.connect(source.name);
    try {
      const differences = await compareAcrossEngines({ engine: 'mysql', connection: source.connection, schema: source.name }, { engine: 'mysql', connection: target, schema: source.name });
      expect(differences, formatCrossDifferences(differences)).toEqual([]);
      expect(await count(target, 'SELECT COUNT(*) AS n FROM audit')).toBe(ORDERS);

      const expected = await objectDefinitions(source.connection, source.name);
      const actual = await objectDefinitions(target, source.name);
      expect(expected.size).toBe(7);
      expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));

      // invoker: views and routines check the caller; nothing keeps the source-only definer.
      const [views] = await target.query('SELECT TABLE_NAME AS n, SECURITY_TYPE AS s, DEFINER AS d FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?', [source.name]);
      const [routines] = await target.query('SELECT ROUTINE_NAME AS n, SECURITY_TYPE AS s, DEFINER AS d FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?', [source.name]);
      for (const row of [...(views as Row[]), ...(routines as Row[])]) {
        expect(row.s, String(row.n)).toBe('INVOKER');
        expect(String(row.d), String(row.n)).not.toContain(definerUser);
      }
      expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL', [source.name, 'readings'])).toBe(3);
      expect(await count(target, 'SELECT n FROM big_order_count')).toBe(await count(source.connection, 'SELECT n FROM big_order_count'));

      // The triggers work for new writes on the destination.
      await target.query("CALL add_order('after', 99.50)");
      expect(await count(target, "SELECT COUNT(*) AS n FROM audit WHERE order_id = (SELECT id FROM orders WHERE customer = 'after')")).toBe(1);
      await target.query("UPDATE orders SET amount = 1 WHERE customer = 'after'");
      expect(await count(target, "SELECT COUNT(*) AS n FROM orders WHERE customer = 'after' AND updated_at IS NOT NULL")).toBe(1);
    } finally {
      await target.end();
    }
  }, 300_000);

  it('continuous job with kill -9 during the stream: triggers and events only at promote, audit rows not doubled, triggers fire afterwards', async () => {
    const source = await createMysqlTestDatabase('ferry_mobj2');
    databases.push(source);
    await buildSource(source.connection, null);
    await runCliJson(['jobs', 'create', '--id', 'mobj-cont', '--type', 'continuous', '--source', 'src', '--destination', 'dst', '--include', source.name], { server: server.url });
    const verify = await client.postOk<{ ok: boolean; checks: Array<{ code: string; severity: string; message: string }> }>('/v1/migrationJobs/mobj-cont:verify');
    expect(verify.ok, JSON.stringify(verify.checks)).toBe(true);
    expect(verify.checks.find((c) => c.code === 'DEFINERS'), JSON.stringify(verify.checks)).toMatchObject({ severity: 'ok' });
    await client.postOk('/v1/migrationJobs/mobj-cont:start');

    // A workload that fires both triggers (inserts through the procedure, updates) and deletes.
    const writer = await connectMysqlAdmin(source.name);
    let running = true;
    const errors: string[] = [];
    let writes = 0;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        try {
          if (i % 3 === 0) await writer.query('CALL add_order(?, ?)', [`stream ${i}`, (i % 90) + 0.5]);
          else if (i % 3 === 1) await writer.query('UPDATE orders SET amount = amount + 1 WHERE id = ?', [1 + (i % ORDERS)]);
          else await writer.query('DELETE FROM orders WHERE id = ?', [1 + ((i * 7) % ORDERS)]);
          writes++;
        } catch (error) {
          errors.push((error as Error).message);
        }
        await sleep(5);
      }
    })();

    try {
      await waitForJob(() => client, 'mobj-cont', 'changes applied in Incremental load', (j) => j.phase === 'INCREMENTAL_LOAD' && (j.replication?.changesApplied ?? 0) > 20, 180_000);
      const target = await destination.connect(source.name);
      try {
        // During the stream: routines and views are there, triggers and events are not.
        expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?', [source.name])).toBe(2);
        expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?', [source.name])).toBe(2);
        expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [source.name])).toBe(0);
        expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?', [source.name])).toBe(0);
      } finally {
        await target.end();
      }

      // The applied counter survives restarts: the new server has applied changes once it passes the count at the kill.
      const atKill = (await client.getOk<{ replication: { changesApplied: number } | null }>('/v1/migrationJobs/mobj-cont')).replication?.changesApplied ?? 0;
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);
      await waitForJob(() => client, 'mobj-cont', 'changes applied after the kill', (j) => j.phase === 'INCREMENTAL_LOAD' && (j.replication?.changesApplied ?? 0) > atKill + 10, 120_000);
    } finally {
      running = false;
      await loop;
      await writer.end();
    }
    expect(errors, errors.join('\n')).toEqual([]);
    expect(writes).toBeGreaterThan(30);

    await client.postOk('/v1/migrationJobs/mobj-cont:promote');
    await waitForJob(() => client, 'mobj-cont', 'Completed after promote', (j) => j.status === 'COMPLETED', 180_000);
    expect((await jobOf(client, 'mobj-cont')).status).toBe('COMPLETED');

    const target = await destination.connect(source.name);
    try {
      const differences = await compareAcrossEngines({ engine: 'mysql', connection: source.connection, schema: source.name }, { engine: 'mysql', connection: target, schema: source.name });
      expect(differences, formatCrossDifferences(differences)).toEqual([]);
      // Every audit row the source wrote, once: no destination trigger fired on Ferry's writes.
      const audits = await count(source.connection, 'SELECT COUNT(*) AS n FROM audit');
      expect(audits).toBeGreaterThan(ORDERS);
      expect(await count(target, 'SELECT COUNT(*) AS n FROM audit')).toBe(audits);

      const expected = await objectDefinitions(source.connection, source.name);
      expect(Object.fromEntries(await objectDefinitions(target, source.name))).toEqual(Object.fromEntries(expected));
      expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL', [source.name, 'readings'])).toBe(3);

      // After promote the triggers fire for the application's writes.
      const before = await count(target, 'SELECT COUNT(*) AS n FROM audit');
      await target.query("INSERT INTO orders (customer, amount) VALUES ('after promote', 10)");
      expect(await count(target, 'SELECT COUNT(*) AS n FROM audit')).toBe(before + 1);
      await target.query("UPDATE orders SET amount = 11 WHERE customer = 'after promote'");
      expect(await count(target, "SELECT COUNT(*) AS n FROM orders WHERE customer = 'after promote' AND updated_at IS NOT NULL")).toBe(1);
    } finally {
      await target.end();
    }
  }, 600_000);

  it('Restart drops what the job created: views, routines, triggers, events, tables and the database', async () => {
    const source = await createMysqlTestDatabase('ferry_mobj3');
    databases.push(source);
    await buildSource(source.connection, null);
    const schema = await mysqlEngine.readSchema(source.params, { include: [source.name], exclude: [] });
    const writer = await mysqlEngine.openSchemaWriter(destination.params(null));
    const target = await destination.connect();
    try {
      const created = [...(await writer.createPreDataObjects(schema)), ...((await writer.createPostDataObjects(schema)) ?? [])];
      expect(created.map((o) => `${o.kind} ${o.name}`).sort()).toEqual(
        [`schema ${source.name}`, 'table audit', 'table orders', 'table readings', 'function with_tax', 'procedure add_order', 'view big_orders', 'view big_order_count', 'trigger orders_stamp', 'trigger orders_audit', 'event purge_audit'].sort(),
      );
      // Idempotent: a second run creates nothing.
      expect([...(await writer.createPreDataObjects(schema)), ...((await writer.createPostDataObjects(schema)) ?? [])]).toEqual([]);
      await writer.dropObjects(created);
      expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [source.name])).toBe(0);
      expect(await count(target, 'SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?', [source.name])).toBe(0);
    } finally {
      await writer.close();
      await target.end();
    }
  }, 120_000);
});
