/**
 * Running with errors per table (issue 8), MySQL/MariaDB to PostgreSQL, end to end on real
 * servers: the scenario of parked-tables.test.ts over a binlog source (a private MariaDB, so
 * that the test neither depends on nor disturbs the shared server's binlog). gamma is parked
 * when the destination's CHECK constraint refuses its new rows, alpha and beta keep
 * replicating, a `kill -9` of ferry serve while it is parked loses nothing, dropping the
 * constraint clears the error by itself, and after promote the destination equals the source
 * value for value.
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences } from '../helpers/compare-cross.js';
import { makeDataDir, removeDataDir, stopAllFerryServers } from '../helpers/ferry-server.js';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { createParkTables, mysqlDb, pgDb, runParkScenario } from '../helpers/parked-scenario.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const DATABASE = 'ferry_parkm';

describe('parked tables: MySQL/MariaDB to PostgreSQL', () => {
  let mariadb: MariadbInstance;
  let source: Connection;
  let destination: TestDatabase;
  let dataDir: string;

  beforeAll(async () => {
    mariadb = await startMariadbInstance({ serverId: 81 });
    const admin = await mariadb.connect();
    await admin.query(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4`);
    await admin.end();
    source = await mariadb.connect(DATABASE);
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_parkm');
    await createParkTables(mysqlDb(source), DATABASE);
    dataDir = makeDataDir('ferry-parkm-');
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await source?.end().catch(() => undefined);
    await mariadb?.stop().catch(() => undefined);
    await destination?.drop().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('parks the refused table, keeps the others replicating, survives kill -9, clears by itself, and promotes to an exact copy', async () => {
    await runParkScenario({
      jobId: 'park-mysql', dataDir, sourceProfile: mariadb.params(null), destinationProfile: destination.params, include: [DATABASE],
      source: mysqlDb(source), sourceSchema: DATABASE, destination: pgDb(destination.client), destinationSchema: DATABASE, kill: true,
      compare: async () => {
        const differences = await compareAcrossEngines(
          { engine: 'mysql', connection: source, schema: DATABASE },
          { engine: 'postgresql', client: destination.client, schema: DATABASE },
        );
        return differences.length === 0 ? '' : formatCrossDifferences(differences);
      },
    });
  }, 600_000);
});
