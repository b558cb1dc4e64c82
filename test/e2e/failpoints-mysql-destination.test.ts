/**
 * Exactly once at the dangerous moments with a MySQL/MariaDB destination, PostgreSQL→MariaDB
 * and MariaDB→MariaDB: the failpoint walk of test/helpers/failpoint-walk.ts. Every failpoint
 * fires on the MySQL destination's paths: the binlog position (MariaDB source) or slot
 * (PostgreSQL source) creation, a table's LOAD into MariaDB committed before its state is
 * stored, Restart's wipe on MariaDB, MariaDB's post-data steps, a batch committed on MariaDB
 * with its position (`_ferry`) and not acknowledged, a batch applied and not committed, and
 * promote after the catch-up with the foreign keys added, before the slot or the position record
 * is dropped. Oracles: a keyless insert-only audit log compared as a multiset with what the
 * workload committed, counters x = x + 1, and after promote the cross-engine comparer on every
 * table (the audit log as a multiset) plus, on the destination, no trace of the job left in `_ferry`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences, type CrossSide } from '../helpers/compare-cross.js';
import { mysqlWriter, postgresWriter } from '../helpers/crash-oracles.js';
import { oracleSchema, walkFailpoints, type FailpointPair } from '../helpers/failpoint-walk.js';
import { stopAllFerryServers } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import { PG_SOURCE_PORT, createTestDatabase } from '../helpers/postgres.js';

const cleanups: Array<() => Promise<void>> = [];

/** Everything the cross-engine comparer sees, and the job's rows in the destination's `_ferry` bookkeeping gone. */
async function compareAll(source: CrossSide, destination: CrossSide & { engine: 'mysql' }): Promise<string> {
  const differences = await compareAcrossEngines(source, destination);
  const lines = differences.length === 0 ? [] : [formatCrossDifferences(differences)];
  const [tables] = await destination.connection.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ferry'`);
  for (const { name } of tables as Array<{ name: string }>) {
    const [rows] = await destination.connection.query(`SELECT COUNT(*) AS n FROM \`_ferry\`.\`${name}\` WHERE job_id = 'fp'`);
    if (Number((rows as Array<{ n: number }>)[0]?.n) > 0) lines.push(`_ferry.${name} still holds rows of the promoted job`);
  }
  return lines.join('\n');
}

describe('failpoints with a MySQL/MariaDB destination', () => {
  let privateMariadb: MariadbInstance;

  beforeAll(async () => {
    // MariaDB→MariaDB needs a second server: the destination database has the source's name.
    privateMariadb = await startMariadbInstance({ serverId: 13 });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await privateMariadb?.stop();
  }, 120_000);

  it('PostgreSQL to MariaDB: a kill at every failpoint neither loses nor repeats a change', async () => {
    const db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_fpq');
    cleanups.push(() => db.drop());
    // A schema of its own: it becomes a database on the shared MariaDB.
    const schema = `ferry_fpq_${randomBytes(4).toString('hex')}`;
    await db.client.query(`CREATE SCHEMA "${schema}"; SET search_path = "${schema}"`);
    for (const sql of oracleSchema()) await db.client.query(sql);
    await db.client.query('ALTER TABLE audit_log REPLICA IDENTITY FULL; RESET search_path');
    const destination = await connectMysqlAdmin();
    cleanups.push(async () => {
      await destination.query(`DROP DATABASE IF EXISTS \`${schema}\``);
      await destination.end();
    });
    const source = { engine: 'postgresql', client: db.client, schema } as const;
    const destinationSide = { engine: 'mysql', connection: destination, schema } as const;
    const pair: FailpointPair = {
      name: 'PostgreSQL to MariaDB',
      writer: await postgresWriter(db.params, schema),
      source,
      destination: destinationSide,
      sourceProfile: db.params,
      destinationProfile: mysqlConnectionParams(null),
      include: [schema],
      confirmedPosition: async () => (await db.client.query<{ p: string | null }>(`SELECT confirmed_flush_lsn::text AS p FROM pg_replication_slots WHERE database = current_database()`)).rows[0]?.p ?? null,
      compare: () => compareAll(source, destinationSide),
    };
    console.log(await walkFailpoints(pair));
    const slots = await db.client.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots.rows, 'no slot is left on the source').toEqual([]);
  }, 360_000);

  it('MariaDB to MariaDB: a kill at every failpoint neither loses nor repeats a change', async () => {
    const db = await createMysqlTestDatabase('ferry_fpr');
    cleanups.push(() => db.drop());
    for (const sql of oracleSchema(' ENGINE=InnoDB')) await db.connection.query(sql);
    const destination = await privateMariadb.connect();
    cleanups.push(() => destination.end());
    const source = { engine: 'mysql', connection: db.connection, schema: db.name } as const;
    const destinationSide = { engine: 'mysql', connection: destination, schema: db.name } as const;
    const pair: FailpointPair = {
      name: 'MariaDB to MariaDB',
      writer: await mysqlWriter(db.name),
      source,
      destination: destinationSide,
      sourceProfile: mysqlConnectionParams(null),
      destinationProfile: privateMariadb.params(null),
      include: [db.name],
      compare: () => compareAll(source, destinationSide),
    };
    console.log(await walkFailpoints(pair));
  }, 360_000);
});
