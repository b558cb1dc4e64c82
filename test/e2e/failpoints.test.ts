/**
 * Exactly once at the dangerous moments, PostgreSQL→PostgreSQL and MySQL/MariaDB→PostgreSQL:
 * the failpoint walk of test/helpers/failpoint-walk.ts (a kill at every failpoint, under a
 * concurrent workload; a keyless insert-only audit log and x = x + 1 counters as oracles; a
 * full comparison after promote). The pairs with a MySQL/MariaDB destination are in
 * failpoints-mysql-destination.test.ts.
 */
import { afterAll, describe, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { mysqlWriter, postgresWriter } from '../helpers/crash-oracles.js';
import { oracleSchema, walkFailpoints, type FailpointPair } from '../helpers/failpoint-walk.js';
import { stopAllFerryServers } from '../helpers/ferry-server.js';
import { createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createTestDatabase } from '../helpers/postgres.js';

interface Case {
  name: string;
  /** Makes the databases and the pair; `drop` removes the databases. */
  setup(): Promise<{ pair: FailpointPair; drop(): Promise<void> }>;
}

const CASES: Case[] = [
  {
    name: 'PostgreSQL to PostgreSQL',
    async setup() {
      const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_fpp');
      const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_fpp');
      for (const sql of oracleSchema()) await source.client.query(sql);
      await source.client.query('ALTER TABLE audit_log REPLICA IDENTITY FULL');
      return {
        pair: {
          name: this.name,
          writer: await postgresWriter(source.params, 'public'),
          source: { engine: 'postgresql', client: source.client, schema: 'public' },
          destination: { engine: 'postgresql', client: destination.client, schema: 'public' },
          sourceProfile: source.params,
          destinationProfile: destination.params,
          include: [],
          confirmedPosition: async () => (await source.client.query<{ p: string | null }>(`SELECT confirmed_flush_lsn::text AS p FROM pg_replication_slots WHERE database = current_database()`)).rows[0]?.p ?? null,
          async compare() {
            const differences = await compareDatabases(source.client, destination.client);
            return differences.length === 0 ? '' : formatDifferences(differences);
          },
        },
        drop: async () => void (await Promise.all([source.drop(), destination.drop()])),
      };
    },
  },
  {
    name: 'MySQL (MariaDB) to PostgreSQL',
    async setup() {
      const source = await createMysqlTestDatabase('ferry_fpm');
      const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_fpm');
      for (const sql of oracleSchema(' ENGINE=InnoDB')) await source.connection.query(sql);
      const sourceSide = { engine: 'mysql', connection: source.connection, schema: source.name } as const;
      const destinationSide = { engine: 'postgresql', client: destination.client, schema: source.name } as const;
      return {
        pair: {
          name: this.name,
          writer: await mysqlWriter(source.name),
          source: sourceSide,
          destination: destinationSide,
          sourceProfile: mysqlConnectionParams(null),
          destinationProfile: destination.params,
          include: [source.name],
          async compare() {
            // Every table; the keyless audit log as a multiset.
            const differences = await compareAcrossEngines(sourceSide, destinationSide);
            return differences.length === 0 ? '' : formatCrossDifferences(differences);
          },
        },
        drop: async () => void (await Promise.all([source.drop(), destination.drop()])),
      };
    },
  },
];

afterAll(async () => {
  await stopAllFerryServers();
}, 60_000);

describe.each(CASES)('failpoints: $name', (c) => {
  it('a kill at every failpoint neither loses nor repeats a change: exact audit log and counters after promote', async () => {
    const { pair, drop } = await c.setup();
    try {
      console.log(await walkFailpoints(pair));
    } finally {
      await drop().catch(() => undefined);
    }
  }, 360_000);
});
