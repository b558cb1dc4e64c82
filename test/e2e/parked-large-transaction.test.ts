/**
 * A table refused inside a large source transaction, PostgreSQL to PostgreSQL: the transaction
 * is sent into the destination in chunks, a chunk while the next one is prepared (the chunk
 * sent ahead fails only later). One source transaction inserts 7,000 alpha rows with one gamma
 * row the destination refuses among the first ones; gamma is parked, alpha gets the whole
 * transaction exactly once, and once the constraint is dropped gamma rejoins and the
 * destination equals the source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createJob, createProfile, inIncrementalLoad, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type FerryServer } from '../helpers/ferry-server.js';
import { BAD_NOTE, SEED_ROWS, addCheck, createParkTables, dropCheck, objectsOf, pgDb } from '../helpers/parked-scenario.js';
import { createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

const ROWS = 7_000;

describe('parked table inside a large source transaction', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let drop: () => Promise<void>;
  let dataDir: string;
  let server: FerryServer | null = null;

  beforeAll(async () => {
    const pair = await createDatabasePair('ferry_parkbig');
    ({ source, destination } = pair);
    drop = () => pair.drop();
    await createParkTables(pgDb(source.client), 'public');
    dataDir = makeDataDir('ferry-parkbig-');
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await stopAllFerryServers();
    await drop?.().catch(() => undefined);
    if (dataDir) removeDataDir(dataDir);
  }, 60_000);

  it('parks the refused table, applies the rest of the transaction once, and rejoins', async () => {
    server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
    const url = server.url;
    const client = () => api(url);
    await createProfile(server, 'src', source.params);
    await createProfile(server, 'dst', destination.params);
    await createJob(server, 'parkbig', { type: 'continuous', source: 'src', destination: 'dst', include: ['public'] });
    await runCliJson(['jobs', 'start', 'parkbig'], { server: url });
    await waitForJob(client, 'parkbig', 'Running (Incremental load)', inIncrementalLoad, 120_000);
    await addCheck(pgDb(destination.client), 'public');

    // One transaction: 100 alpha rows, the refused gamma row, then the rest of alpha's rows.
    const first = SEED_ROWS + 1;
    await source.client.query('BEGIN');
    await source.client.query(`INSERT INTO alpha (id, v, note) SELECT g, g, 'big' FROM generate_series($1::bigint, $2::bigint) g`, [first, first + 99]);
    await source.client.query(`INSERT INTO gamma (id, v, note) VALUES ($1, 1, $2)`, [first, `${BAD_NOTE}-big`]);
    await source.client.query(`INSERT INTO alpha (id, v, note) SELECT g, g, 'big' FROM generate_series($1::bigint, $2::bigint) g`, [first + 100, first + ROWS - 1]);
    await source.client.query(`UPDATE alpha SET v = v + 1 WHERE id <= $1`, [first + 500]);
    await source.client.query('COMMIT');

    const degraded = await waitForJob(client, 'parkbig', 'Running with errors naming gamma', (j) => j.status === 'RUNNING_WITH_ERRORS' && (j.error?.message.includes('.gamma') ?? false), 90_000);
    expect(degraded.error?.code).toBe('CONSTRAINT_VIOLATION');
    const alphaRows = async () => Number((await destination.client.query('SELECT count(*) AS n, sum(v) AS s FROM alpha')).rows[0].n);
    await waitFor('alpha holds the whole transaction', async () => ((await alphaRows()) === SEED_ROWS + ROWS ? true : undefined), { timeoutMs: 60_000 });
    const sums = async (c: typeof source.client) => (await c.query('SELECT sum(v)::text AS s FROM alpha')).rows[0].s as string;
    expect(await sums(destination.client), 'alpha applied exactly once').toBe(await sums(source.client));
    expect((await objectsOf(client(), 'parkbig')).find((x) => x.name.endsWith('.gamma'))?.state).toBe('ERROR');

    await dropCheck(pgDb(destination.client), 'public');
    await waitForJob(client, 'parkbig', 'Running again after the constraint was dropped', (j) => j.status === 'RUNNING' && j.error === null, 120_000);
    await runCliJson(['jobs', 'promote', 'parkbig'], { server: url });
    await waitForJob(client, 'parkbig', 'Completed after promote', (j) => j.status === 'COMPLETED', 120_000);
    const differences = await compareDatabases(source.client, destination.client, { schemas: ['public'] });
    expect(differences.length === 0 ? '' : formatDifferences(differences)).toBe('');
  }, 300_000);
});
