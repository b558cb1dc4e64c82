/**
 * Work spread, end to end: three `ferry serve` on one PostgreSQL store copy a one-time job
 * together. The source's biggest table holds 3 million rows (cut into block ranges) beside small
 * tables; every table and range is a work item that any node claims, copying from the owner's
 * exported snapshot. In the middle, a node that is not the job's owner and holds a claim is
 * killed with SIGKILL: its claim expires, another node copies the item again. At the end the
 * history shows the items copied by at least two nodes and the item claimed again, and the
 * destination equals the source exactly (rows, indexes, constraints, sequences).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createJob, createProfile, eventsOf, jobOf } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, REPO_ROOT, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type FerryServer } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const BIG_ROWS = 3_000_000;
const NODES = ['node-a', 'node-b', 'node-c'];
const PORTS = [19301, 19302, 19303];
const LEASE_SECONDS = '4';
const JOB = 'spread-3m';

interface WorkItemView {
  itemId: string;
  state: string;
  nodeId: string | null;
  kind: string;
}

interface SpreadStore {
  migrate(): Promise<void>;
  listWorkItems(jobId: string): Promise<WorkItemView[]>;
  listJobLeases?(): Promise<Array<{ jobId: string; nodeId: string | null }>>;
  close(): Promise<void>;
}

describe('a one-time job copied by three nodes', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let storeDb: TestDatabase;
  let store: SpreadStore;
  const dataDirs: string[] = [];

  beforeAll(async () => {
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_spread');
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_spread');
    storeDb = await createTestDatabase(PG_DEST_PORT, 'ferry_spread_store');
    // Narrow rows: 3 M of them make a heap of about 150 MB, generated in a few seconds.
    await source.client.query('CREATE TABLE public.big (id bigint PRIMARY KEY, k integer NOT NULL, v integer)');
    await source.client.query(`INSERT INTO public.big SELECT g, g % 1000, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 3 END FROM generate_series(1, ${BIG_ROWS}) g`);
    await source.client.query('CREATE INDEX big_k ON public.big (k)');
    for (let i = 1; i <= 6; i++) {
      await source.client.query(`CREATE TABLE public.small_${i} (id serial PRIMARY KEY, big_id bigint, note text)`);
      await source.client.query(`INSERT INTO public.small_${i} (big_id, note) SELECT 1 + (g * ${i}) % ${BIG_ROWS}, md5(g::text) FROM generate_series(1, ${2_000 * i}) g`);
    }
    await source.client.query('ANALYZE');
  }, 240_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await store?.close();
    for (const dir of dataDirs) removeDataDir(dir);
    await source?.drop();
    await destination?.drop();
    await storeDb?.drop();
  }, 60_000);

  it('has items copied by several nodes, survives the SIGKILL of a node holding a claim, and ends exact', async () => {
    const storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${storeDb.params.database}`;
    const secretKey = randomBytes(32).toString('base64');
    const servers = new Map<string, FerryServer>();
    for (const [i, nodeId] of NODES.entries()) {
      const dataDir = makeDataDir(`ferry-spread-${nodeId}-`);
      dataDirs.push(dataDir);
      servers.set(nodeId, await spawnFerryServer({
        dataDir, port: PORTS[i],
        env: {
          ...FAST_RETRY_ENV, FERRY_STORE_URL: storeUrl, FERRY_NODE_ID: nodeId, FERRY_SECRET_KEY: secretKey, FERRY_LEASE_SECONDS: LEASE_SECONDS,
          // About 16 MiB per part: the big table becomes one range per node and dump worker.
          FERRY_DUMP_SPLIT_PART_BYTES: String(16 * 2 ** 20),
        },
      }));
    }
    const { PostgresMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'postgres', 'postgres-metadata-store.js'));
    store = (await PostgresMetadataStore.open(storeUrl)) as SpreadStore;

    const first = servers.get('node-a') as FerryServer;
    await createProfile(first, 'spread-src', source.params);
    await createProfile(first, 'spread-dst', destination.params);
    await createJob(first, JOB, { type: 'one-time', source: 'spread-src', destination: 'spread-dst', include: [], dumpParallelism: 2 });
    await runCliJson(['jobs', 'start', JOB], { server: first.url });

    // A node other than the job's owner (the holder of its lease, read again each time), in the middle of an item.
    const ownerNow = async () => ((await store.listJobLeases?.()) ?? []).find((l) => l.jobId === JOB)?.nodeId ?? null;
    const victim = await waitFor('a claimed item on a node that is not the owner', async () => {
      const owner = await ownerNow();
      if (owner === null) return undefined;
      const items = await store.listWorkItems(JOB);
      const candidate = items.find((i) => i.state === 'CLAIMED' && i.nodeId !== null && i.nodeId !== owner && servers.has(i.nodeId))?.nodeId;
      return candidate !== undefined && (await ownerNow()) === owner ? candidate : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    const killed = await (servers.get(victim) as FerryServer).kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    servers.delete(victim);

    const client = api((servers.values().next().value as FerryServer).url);
    await waitFor('the job to complete', async () => {
      const job = await jobOf(client, JOB);
      if (job.status === 'FAILED') throw new Error(`the job failed: ${JSON.stringify(job.error)}`);
      return job.status === 'COMPLETED' ? job : undefined;
    }, { timeoutMs: 180_000, intervalMs: 1_000 });

    const events = await eventsOf(client, JOB);
    const timeline = events.map((e) => `${(e as { time?: string }).time ?? ''} ${e.message}`).join('\n');
    const copied = events.find((e) => (e.details as { code?: string } | undefined)?.code === 'WORK_ITEMS_COPIED');
    expect(copied, timeline).toBeDefined();
    const byNode = (copied?.details as { nodes: Record<string, { items: number; rows: number }> }).nodes;
    expect(Object.keys(byNode).length, timeline).toBeGreaterThanOrEqual(2);
    const reclaimed = events.filter((e) => (e.details as { code?: string; fromNode?: string } | undefined)?.code === 'WORK_ITEM_RECLAIMED');
    expect(reclaimed.map((e) => (e.details as { fromNode: string }).fromNode), timeline).toContain(victim);
    expect(timeline).toMatch(/public\.big in \d+ parts that the nodes copy side by side/);

    // Every table but the big one row by row with its structure; the big one by count and digest
    // in key order (row by row it would take minutes), and its indexes and constraints.
    const small = Array.from({ length: 6 }, (_, i) => `public.small_${i + 1}`);
    const differences = await compareDatabases(source.client as pg.ClientBase, destination.client as pg.ClientBase, { tables: small });
    expect(differences, formatDifferences(differences)).toEqual([]);
    const digest = async (db: TestDatabase) =>
      (await db.client.query<{ n: string; h: string }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t.id)) AS h FROM public.big t`)).rows[0];
    expect(await digest(destination)).toEqual(await digest(source));
    const structure = async (db: TestDatabase) => (await db.client.query<{ d: string }>(
      `SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public' UNION ALL
       SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace UNION ALL
       SELECT sequencename || ' ' || last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`,
    )).rows.map((r) => r.d);
    expect(await structure(destination)).toEqual(await structure(source));
    // The item markers and fence are gone with the job: the destination stands alone.
    const ferrySchema = await destination.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`);
    expect(ferrySchema.rowCount).toBe(0);
  }, 400_000);
});
