/**
 * Running with errors per table (issue 8), PostgreSQL to PostgreSQL, end to end on real servers:
 * a continuous job over three tables under a writer; the destination gets a CHECK constraint
 * that gamma's new rows violate. gamma is parked (Running with errors naming it, the failing
 * change's key, the destination's message and what to do) while alpha and beta keep
 * replicating; Promote is refused naming it; `kill -9` of ferry serve while it is parked loses
 * nothing; dropping the constraint clears the error by itself, gamma's parked changes apply in
 * order, and after promote the destination equals the source.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { makeDataDir, removeDataDir, stopAllFerryServers } from '../helpers/ferry-server.js';
import { createParkTables, pgDb, runParkScenario } from '../helpers/parked-scenario.js';
import { createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

describe('parked tables: PostgreSQL to PostgreSQL', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let drop: () => Promise<void>;
  let dataDir: string;

  beforeAll(async () => {
    const pair = await createDatabasePair('ferry_park');
    ({ source, destination } = pair);
    drop = () => pair.drop();
    await createParkTables(pgDb(source.client), 'public');
    dataDir = makeDataDir('ferry-park-');
  }, 60_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await drop?.().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('parks the refused table, keeps the others replicating, survives kill -9, clears by itself, and promotes to an exact copy', async () => {
    await runParkScenario({
      jobId: 'park-pg', dataDir, sourceProfile: source.params, destinationProfile: destination.params, include: ['public'],
      source: pgDb(source.client), sourceSchema: 'public', destination: pgDb(destination.client), destinationSchema: 'public', kill: true,
      compare: async () => {
        const differences = await compareDatabases(source.client, destination.client, { schemas: ['public'] });
        return differences.length === 0 ? '' : formatDifferences(differences);
      },
    });
  }, 600_000);
});
