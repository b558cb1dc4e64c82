/**
 * Same-table concurrency survives a crash without a duplicate: `ferry serve` copies a table
 * split into ranges (FERRY_DUMP_SPLIT_PART_BYTES makes a small table split), kills itself
 * after the second range committed (failpoint after-range-copy), and a new server on the same
 * data directory copies the whole table again: the destination ends with exactly the source's
 * rows, every index and the primary key.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createJob, createProfile, eventsOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_SOURCE_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const ROWS = 20_000;
const SPLIT_ENV = { FERRY_DUMP_SPLIT_PART_BYTES: String(64 * 1024) };

const digest = async (db: TestDatabase) =>
  (await db.client.query<{ n: string; h: string }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t.id)) AS h FROM public.big t`)).rows[0];

afterAll(async () => {
  await stopAllFerryServers();
}, 60_000);

describe('a table split into ranges, killed after a range committed', () => {
  it('is copied again whole by the next server: exactly the source rows, no duplicate', async () => {
    const source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_splitkill');
    const destination = await createTestDatabase(PG_DEST_PORT, 'ferry_splitkill');
    const dataDir = makeDataDir('ferry-split-');
    let server: FerryServer | null = null;
    try {
      await source.client.query('CREATE TABLE public.big (id bigint PRIMARY KEY, pad text NOT NULL, k int)');
      await source.client.query(`INSERT INTO public.big SELECT g, repeat(md5(g::text), 4), g % 97 FROM generate_series(1, ${ROWS}) g`);
      await source.client.query('CREATE INDEX big_k ON public.big (k)');
      await source.client.query('VACUUM ANALYZE public.big');

      server = await spawnFerryServer({ dataDir, env: { ...FAST_RETRY_ENV, ...SPLIT_ENV, FERRY_FAILPOINTS: 'after-range-copy=kill@2' } });
      await createProfile(server, 'src', source.params);
      await createProfile(server, 'dst', destination.params);
      await createJob(server, 'split', { type: 'one-time', source: 'src', destination: 'dst', include: [], dumpParallelism: 4 });
      await runCliJson(['jobs', 'start', 'split'], { server: server.url });
      const exit = await Promise.race([server.exited, sleep(60_000).then(() => null)]);
      expect(exit, `ferry serve did not die at after-range-copy within 60 s; output:\n${server.output().slice(-3000)}`).not.toBeNull();
      expect(exit?.signal).toBe('SIGKILL');
      expect(server.output()).toContain('failpoint after-range-copy fired: kill');
      // At least two ranges are on the destination (the others may have committed too, side by
      // side, before the kill): committed rows of a table that is not DUMPED.
      const partial = Number((await destination.client.query<{ n: string }>('SELECT count(*) AS n FROM public.big')).rows[0]?.n);
      expect(partial).toBeGreaterThan(0);
      expect(partial).toBeLessThanOrEqual(ROWS);

      server = await spawnFerryServer({ dataDir, env: { ...FAST_RETRY_ENV, ...SPLIT_ENV } });
      const client: ApiClient = api(server.url);
      await waitForJob(() => client, 'split', 'Completed', (j) => j.status === 'COMPLETED', 90_000);
      expect(await digest(destination)).toEqual(await digest(source));
      const events = await eventsOf(client, 'split');
      expect(events.filter((e) => /^Copying public\.big in [2-4] parts side by side/.test(e.message)).length).toBe(2);
      const indexes = async (db: TestDatabase) => (await db.client.query<{ d: string }>(`SELECT indexdef AS d FROM pg_indexes WHERE tablename = 'big' ORDER BY 1`)).rows.map((r) => r.d);
      expect(await indexes(destination)).toEqual(await indexes(source));
    } finally {
      await stopAllFerryServers();
      removeDataDir(dataDir);
      await source.drop();
      await destination.drop();
    }
  }, 180_000);
});
