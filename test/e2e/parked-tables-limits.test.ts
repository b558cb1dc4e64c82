/**
 * Parked tables (issue 8), what ends them otherwise than by a fix, PostgreSQL to PostgreSQL:
 * - Promote with force while gamma is parked: the job is Completed, alpha and beta equal the
 *   source, gamma is reported not migrated (job object and history) and the destination keeps
 *   none of Ferry's bookkeeping;
 * - maxParkedChanges: a warning in the history at 80 %, then Failed (recoverable) with a message
 *   saying what to do; once the destination is fixed the job resumes by itself, drains gamma and
 *   runs without error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, jobOf, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type FerryServer } from '../helpers/ferry-server.js';
import { ParkWriter, SEED_ROWS, addCheck, createParkTables, dropCheck, maxId, objectsOf, pgDb } from '../helpers/parked-scenario.js';
import { createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

describe('parked tables: promote with force, and the limit of parked changes', () => {
  let server: FerryServer;
  const pairs: Array<{ source: TestDatabase; destination: TestDatabase; drop(): Promise<void> }> = [];
  const client = () => api(server.url);

  beforeAll(async () => {
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
  }, 60_000);

  afterAll(async () => {
    await stopAllFerryServers();
    for (const pair of pairs) await pair.drop().catch(() => undefined);
  }, 60_000);

  /** Source and destination with the three tables, profiles and a continuous job in Incremental load, with the writer running. */
  async function setUp(jobId: string, extra: string[] = []): Promise<{ source: TestDatabase; destination: TestDatabase; writer: ParkWriter }> {
    const pair = await createDatabasePair('ferry_parkl');
    pairs.push(pair);
    await createParkTables(pgDb(pair.source.client), 'public');
    await createProfile(server, `${jobId}-src`, pair.source.params);
    await createProfile(server, `${jobId}-dst`, pair.destination.params);
    await createJob(server, jobId, { type: 'continuous', source: `${jobId}-src`, destination: `${jobId}-dst`, include: ['public'] });
    if (extra.length > 0) await runCliJson(['jobs', 'update', jobId, ...extra], { server: server.url });
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(client, jobId, 'Running (Incremental load)', inIncrementalLoad, 120_000);
    const writer = new ParkWriter(pgDb(pair.source.client), 'public');
    writer.start();
    const destination = pgDb(pair.destination.client);
    await waitFor('the first rounds on the destination', async () => ((await maxId(destination, 'public', 'gamma')) > SEED_ROWS + 10 ? true : undefined), { timeoutMs: 60_000 });
    await addCheck(destination, 'public');
    writer.bad = true;
    return { source: pair.source, destination: pair.destination, writer };
  }

  it('promote --force promotes the healthy tables and reports the parked one as not migrated', async () => {
    const jobId = 'park-force';
    const { source, destination, writer } = await setUp(jobId);
    await waitForJob(client, jobId, 'gamma parked', (j) => j.status === 'RUNNING_WITH_ERRORS' && (j.error?.message.includes('public.gamma') ?? false), 90_000);

    const refused = await runCli(['jobs', 'promote', jobId], { server: server.url });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Promote refused: table public\.gamma is parked/);
    expect((await client().get(`/v1/migrationJobs/${jobId}`)).body.promoteRequested).toBe(false);

    await writer.stop();
    expect(writer.errors).toEqual([]);
    const forced = await runCliJson<{ promoteRequested: boolean }>(['jobs', 'promote', jobId, '--force'], { server: server.url });
    expect(forced.promoteRequested).toBe(true);
    const completed = await waitForJob(client, jobId, 'Completed after promote --force', (j) => j.status === 'COMPLETED', 120_000);
    expect(completed.error).toBeNull();

    const objects = await objectsOf(client(), jobId);
    expect(objects.map((o) => [o.name, o.state])).toEqual([['public.alpha', 'COMPLETED'], ['public.beta', 'COMPLETED'], ['public.gamma', 'ERROR']]);
    expect(objects[2]?.error?.message).toMatch(/^Not migrated: promoted with force while the table was parked; [1-9]\d* changes were not applied/);
    const events = await eventsOf(client(), jobId);
    expect(events.some((e) => e.kind === 'action' && e.action === 'promote' && /with force/.test(e.message))).toBe(true);
    expect(events.some((e) => /Promoted with force: table public\.gamma was not migrated/.test(e.message))).toBe(true);

    const differences = await compareDatabases(source.client, destination.client, { schemas: ['public'], tables: ['public.alpha', 'public.beta'] });
    expect(differences, formatDifferences(differences)).toEqual([]);
    expect(await maxId(pgDb(destination.client), 'public', 'gamma'), 'gamma kept none of its parked rows').toBeLessThan(await maxId(pgDb(source.client), 'public', 'gamma'));
    const bookkeeping = await destination.client.query(`SELECT to_regnamespace('_ferry') IS NULL AS gone`);
    expect(bookkeeping.rows[0]?.gone, 'no _ferry schema left on the destination').toBe(true);
  }, 300_000);

  it('maxParkedChanges: warns at 80 %, fails (recoverable) beyond it, and resumes by itself once the destination is fixed', async () => {
    const jobId = 'park-limit';
    const { destination, writer } = await setUp(jobId, ['--max-parked-changes', '40']);
    const failed = await waitForJob(client, jobId, 'Failed beyond maxParkedChanges', (j) => j.status === 'FAILED', 90_000);
    expect(failed.substatus).toBe('Failed in Incremental load');
    expect(failed.error?.code).toBe('FAILED_PRECONDITION');
    expect(failed.error?.recoverable).toBe(true);
    expect(failed.error?.message).toMatch(/changes are parked for public\.gamma, more than this job's limit \(maxParkedChanges 40\)/);
    expect(failed.error?.message).toMatch(/--max-parked-changes/);
    const events = await eventsOf(client(), jobId);
    expect(events.some((e) => /^Warning: \d+ changes are parked for public\.gamma, \d+ % of this job's limit/.test(e.message))).toBe(true);

    await writer.stop();
    expect(writer.errors).toEqual([]);
    await dropCheck(pgDb(destination.client), 'public');
    // Failed until the next probe resumes it (waitForJob would stop at Failed).
    const running = await waitFor('Running again, by itself, after the fix', async () => {
      const job = await jobOf(client(), jobId);
      const states = (await objectsOf(client(), jobId)).map((o) => o.state);
      return job.status === 'RUNNING' && job.error === null && states.every((state) => state === 'REPLICATING') ? job : undefined;
    }, { timeoutMs: 120_000 });
    expect(running.substatus).toBe('Incremental load');
    expect(await destination.client.query(`SELECT count(*)::int AS n FROM _ferry.parked_changes`).then((r) => r.rows[0]?.n)).toBe(0);
    const history = await eventsOf(client(), jobId);
    expect(history.some((e) => /Table public\.gamma rejoined the stream/.test(e.message))).toBe(true);
  }, 300_000);
});
