/**
 * Data validation, PostgreSQL to PostgreSQL, through the CLI and the REST API of a real
 * `ferry serve`:
 * - after a one-time job, equal databases validate clean (row counts and checksums equal per
 *   table, a table without a primary key compared as a multiset);
 * - a changed cell, a missing row, an extra row and a NULL turned into '' on the destination are
 *   each reported with the key and both sides' values; an extra duplicate row of a keyless
 *   table is reported without a key; the job's history has one event per validation;
 * - during a continuous job's incremental load under a concurrent workload, validation reports
 *   no difference, and still finds a row added on the destination; promote with
 *   requireValidation (the request's flag, then the job option) is refused without a clean latest
 *   validation and accepted after one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProfile, eventsOf, inIncrementalLoad, waitForJob, type JobView } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { createDatabasePair, type TestDatabase } from '../helpers/postgres.js';
import { expectClean, expectSeededDifferences, tableOf, validateWithCli, type Validation } from '../helpers/validation.js';
import { createWorkloadSchema, Workload, WORKLOAD_TABLES } from '../helpers/workload.js';

const SEEDED = { changedId: 10, missingId: 20, extraId: 50_000, nulledId: 30 };

async function createSeededTables(source: TestDatabase): Promise<void> {
  await source.client.query(`
    CREATE TABLE public.vt (id integer PRIMARY KEY, name text, amount numeric(10,2), flag boolean, note text, created timestamptz);
    INSERT INTO public.vt SELECT i, 'name ' || i, i * 1.10, i % 2 = 0, CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || i END, '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
      FROM generate_series(1, 3000) AS i;
    CREATE TABLE public.vk (a integer, b text);
    INSERT INTO public.vk SELECT i % 50, 'dup ' || (i % 50) FROM generate_series(1, 500) AS i;`);
}

/** The four seeded differences of vt, and one duplicate row more in the keyless vk, on the destination. */
async function seedDifferences(destination: TestDatabase): Promise<void> {
  await destination.client.query(`
    UPDATE public.vt SET name = 'changed on the destination' WHERE id = ${SEEDED.changedId};
    DELETE FROM public.vt WHERE id = ${SEEDED.missingId};
    INSERT INTO public.vt (id, name, amount, flag, note) VALUES (${SEEDED.extraId}, 'only on the destination', 1, true, 'x');
    UPDATE public.vt SET note = '' WHERE id = ${SEEDED.nulledId};
    INSERT INTO public.vk VALUES (7, 'dup 7');`);
}

describe('data validation, PostgreSQL to PostgreSQL', () => {
  let server: FerryServer;
  let client: ApiClient;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    client = api(server.url);
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await stopAllFerryServers();
  }, 120_000);

  it('finds equal databases clean and each seeded difference with its key', async () => {
    const pair = await createDatabasePair('ferry_val');
    cleanups.push(() => pair.drop());
    await createSeededTables(pair.source);
    await createProfile(server, 'val-src', pair.source.params);
    await createProfile(server, 'val-dst', pair.destination.params);

    // Before the job copied anything there is nothing to validate: a clear refusal.
    await runCliJson(['jobs', 'create', '--id', 'val-one', '--type', 'one-time', '--source', 'val-src', '--destination', 'val-dst', '--include', 'public'], { server: server.url });
    const early = await client.post<{ error: { code: string; message: string } }>('/v1/migrationJobs/val-one:validate');
    expect(early.status).toBe(409);
    expect(early.body.error.message).toContain('start it');

    await runCliJson(['jobs', 'start', 'val-one'], { server: server.url });
    await waitForJob(() => client, 'val-one', 'Completed', (job) => job.status === 'COMPLETED', 120_000);

    const clean = await validateWithCli(server.url, 'val-one');
    expectClean(clean.validation, clean.code);
    expect(clean.validation.tables.map((t) => t.table).sort()).toEqual(['public.vk', 'public.vt']);
    expect(tableOf(clean.validation, 'public.vt').sourceRows).toBe(3000);
    expect(tableOf(clean.validation, 'public.vk')).toMatchObject({ keyed: false, sourceRows: 500, destinationRows: 500 });

    await seedDifferences(pair.destination);
    const dirty = await validateWithCli(server.url, 'val-one');
    expect(dirty.code).toBe(1);
    expect(dirty.validation).toMatchObject({ status: 'SUCCEEDED', clean: false });
    expectSeededDifferences(tableOf(dirty.validation, 'public.vt'), SEEDED);
    const keyless = tableOf(dirty.validation, 'public.vk');
    expect(keyless.state).toBe('DIFFERENT');
    expect(keyless.destinationRows).toBe(501);
    expect(keyless.differences).toEqual([{ kind: 'extra', key: null, source: null, destination: { a: '7', b: 'dup 7' } }]);

    // The table view of the CLI names the keys and both values.
    const shown = await runCli(['jobs', 'validations', 'val-one', dirty.validation.id], { server: server.url });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`key id="${SEEDED.changedId}": values differ`);
    expect(shown.stdout).toContain('name: source "name 10", destination "changed on the destination"');
    expect(shown.stdout).toContain(`key id="${SEEDED.missingId}": missing on the destination`);

    // The API lists both validations, newest first; the history has one event per validation.
    const list = await client.getOk<{ validations: Validation[] }>('/v1/migrationJobs/val-one/validations');
    expect(list.validations.map((v) => v.id)).toEqual([dirty.validation.id, clean.validation.id]);
    const one = await client.getOk<Validation>(`/v1/migrationJobs/val-one/validations/${clean.validation.id}`);
    expect(one.clean).toBe(true);
    const missing = await client.get<{ error: { code: string } }>('/v1/migrationJobs/val-one/validations/v-nope');
    expect(missing.status).toBe(404);
    const events = (await eventsOf(client, 'val-one')).filter((e) => e.message.startsWith('Validation '));
    expect(events.map((e) => e.message)).toEqual([
      `Validation ${clean.validation.id}: all 2 tables equal (${clean.validation.summary.rowsCompared} rows compared)`,
      `Validation ${dirty.validation.id}: 0 of 2 tables equal, 2 differ (public.vk, public.vt)`,
    ]);
  }, 300_000);

  it('reports no difference during the incremental load under a workload, and promote can require a clean validation', async () => {
    const pair = await createDatabasePair('ferry_valc');
    cleanups.push(() => pair.drop());
    await createWorkloadSchema(pair.source.client, { accounts: 20_000, auditRows: 5_000, items: 5_000 });
    await createProfile(server, 'valc-src', pair.source.params);
    await createProfile(server, 'valc-dst', pair.destination.params);
    await runCliJson(['jobs', 'create', '--id', 'valc', '--type', 'continuous', '--source', 'valc-src', '--destination', 'valc-dst', '--dump-parallelism', '3'], { server: server.url });
    await runCliJson(['jobs', 'start', 'valc'], { server: server.url });
    await waitForJob(() => client, 'valc', 'Incremental load', inIncrementalLoad, 180_000);

    // No validation yet: a promote that requires one is refused, and the job keeps running.
    const refused = await runCli(['jobs', 'promote', 'valc', '--require-validation'], { server: server.url });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FAILED_PRECONDITION');
    expect(refused.stderr).toContain('ferry jobs validate valc');

    const workload = new Workload({ connection: pair.source.params, workers: 3, seed: 14, pauseMs: 5, truncateEvery: 150 });
    cleanups.push(() => workload.stop());
    await workload.start();
    await workload.waitForCommits(200);
    const committedBefore = workload.stats().committed;
    const during = await validateWithCli(server.url, 'valc', 240_000);
    const committedDuring = workload.stats().committed - committedBefore;
    expect(during.validation.recheckedInFlight).toBe(true);
    expectClean(during.validation, during.code);
    expect(during.validation.tables.map((t) => t.table).sort()).toEqual([...WORKLOAD_TABLES].sort());

    // A real difference on the destination is still found while changes are in flight.
    await pair.destination.client.query(`INSERT INTO public.accounts (id, owner, balance, status, updated_at) VALUES (4000000000, 'only on the destination', 1, 'active', now())`);
    const found = await validateWithCli(server.url, 'valc', 240_000);
    expect(found.code).toBe(1);
    const accounts = tableOf(found.validation, 'public.accounts');
    expect(accounts.state).toBe('DIFFERENT');
    expect(accounts.differences.map((d) => [d.kind, d.key])).toEqual([['extra', { id: '4000000000' }]]);
    expect(found.validation.tables.filter((t) => t.state !== 'EQUAL').map((t) => t.table)).toEqual(['public.accounts']);

    // The job option: with requireValidation set, a plain promote is refused while the latest validation is not clean.
    const patched = await client.patch<JobView & { requireValidation: boolean }>('/v1/migrationJobs/valc', { requireValidation: true });
    expect(patched.status).toBe(200);
    expect(patched.body.requireValidation).toBe(true);
    const notClean = await client.post<{ error: { code: string; message: string } }>('/v1/migrationJobs/valc:promote');
    expect(notClean.status).toBe(409);
    expect(notClean.body.error.code).toBe('FAILED_PRECONDITION');
    expect(notClean.body.error.message).toContain(`the latest, ${found.validation.id}, was not`);
    await pair.destination.client.query('DELETE FROM public.accounts WHERE id = 4000000000');

    const again = await validateWithCli(server.url, 'valc', 240_000);
    expectClean(again.validation, again.code);
    const afterStats = await workload.stop();
    expect(afterStats.errors, afterStats.errors.join('\n')).toEqual([]);
    // The workload really wrote while the validation ran.
    expect(committedDuring).toBeGreaterThan(0);

    // The latest validation is clean now: the promote the job option guards is accepted.
    const promoted = await runCliJson<JobView>(['jobs', 'promote', 'valc'], { server: server.url });
    expect(promoted.promoteRequested).toBe(true);
    await waitForJob(() => client, 'valc', 'Completed', (job) => job.status === 'COMPLETED', 180_000);
  }, 600_000);
});
