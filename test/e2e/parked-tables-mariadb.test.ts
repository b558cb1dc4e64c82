/**
 * Running with errors per table (issue 8) with a MySQL/MariaDB destination (PostgreSQL to a
 * private MariaDB): the MySQL change applier parks gamma when the destination's CHECK
 * constraint refuses its new rows (its changes wait in `_ferry.parked_changes`, written in the
 * same transactions as the position), alpha and beta keep replicating, dropping the
 * constraint clears the error by itself, and after promote the destination equals the source.
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { makeDataDir, removeDataDir, stopAllFerryServers } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { createParkTables, mysqlDb, pgDb, runParkScenario } from '../helpers/parked-scenario.js';
import { PG_SOURCE_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

// The source schema's name: a MySQL destination profile without a database receives each schema as a database of its name.
const DATABASE = 'public';

describe('parked tables: PostgreSQL to MySQL/MariaDB', () => {
  let mariadb: MariadbInstance;
  let destination: Connection;
  let source: TestDatabase;
  let dataDir: string;

  beforeAll(async () => {
    mariadb = await startMariadbInstance({ serverId: 82 });
    const admin = await mariadb.connect();
    await admin.query(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
    await admin.end();
    destination = await mariadb.connect(DATABASE);
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_parkd');
    await createParkTables(pgDb(source.client), 'public');
    dataDir = makeDataDir('ferry-parkd-');
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await destination?.end().catch(() => undefined);
    await mariadb?.stop().catch(() => undefined);
    await source?.drop().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('parks the refused table on the MySQL destination, keeps the others replicating, rejoins by itself, and promotes to an exact copy', async () => {
    await runParkScenario({
      jobId: 'park-mariadb', dataDir, sourceProfile: source.params, destinationProfile: mariadb.params(null), include: ['public'],
      source: pgDb(source.client), sourceSchema: 'public', destination: mysqlDb(destination), destinationSchema: DATABASE, kill: false,
      compare: async () => {
        const differences = await compareAcrossEngines(
          { engine: 'postgresql', client: source.client, schema: 'public' },
          { engine: 'mysql', connection: destination, schema: DATABASE },
        );
        return differences.length === 0 ? '' : formatCrossDifferences(differences);
      },
    });
  }, 600_000);
});
