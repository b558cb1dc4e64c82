/**
 * Job leases across real `ferry serve` processes on one PostgreSQL store (a fresh database on
 * 127.0.0.1:5433), with --lease-seconds 4 and one shared secret key (FERRY_SECRET_KEY): a
 * continuous job runs on exactly one node; `kill -9` of that node lets another node take it
 * over within the lease bound, with the takeover in the job's history, and the change stream
 * goes on without a lost change; a drain moves the job to another node at once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, makeDataDir, removeDataDir, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor, type FerryServer } from '../helpers/ferry-server.js';
import { createJob, createProfile, eventsOf, inIncrementalLoad, jobOf, sleep, waitForJob } from '../helpers/e2e-jobs.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createDatabasePair, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const LEASE_SECONDS = 4;
const JOB = 'lease-job';

interface NodeView {
  id: string;
  state: string;
  jobs: string[];
}

describe('job leases across ferry serve processes on one PostgreSQL store', () => {
  let store: TestDatabase;
  let databases: Awaited<ReturnType<typeof createDatabasePair>>;
  let storeUrl: string;
  const dataDirs: string[] = [];
  const servers = new Map<string, FerryServer>();
  const env = { FERRY_SECRET_KEY: randomBytes(32).toString('base64'), FERRY_LEASE_SECONDS: String(LEASE_SECONDS) };
  let nextRow = 1;

  const start = async (nodeId: string, port: number): Promise<FerryServer> => {
    const dataDir = makeDataDir('ferry-lease-');
    dataDirs.push(dataDir);
    const server = await spawnFerryServer({ dataDir, port, env: { ...env, FERRY_STORE_URL: storeUrl, FERRY_NODE_ID: nodeId } });
    servers.set(nodeId, server);
    return server;
  };
  const anyServer = (): FerryServer => [...servers.values()][0]!;
  const nodesOf = async (server: FerryServer) => (await api(server.url).getOk<{ nodes: NodeView[] }>('/v1/nodes')).nodes;
  const insertRows = async (count: number) => {
    const first = nextRow;
    nextRow += count;
    await databases.source.client.query('INSERT INTO public.items (id, v) SELECT g, md5(g::text) FROM generate_series($1::int, $2::int) g', [first, nextRow - 1]);
  };
  const destinationCatchesUp = async (what: string) =>
    waitFor(what, async () => {
      const result = await databases.destination.client.query<{ n: string; s: string | null }>('SELECT count(*) AS n, sum(id) AS s FROM public.items');
      const expected = ((nextRow - 1) * nextRow) / 2;
      return Number(result.rows[0]!.n) === nextRow - 1 && Number(result.rows[0]!.s) === expected ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300 });

  beforeAll(async () => {
    store = await createTestDatabase(PG_DEST_PORT, 'ferry_lease_store');
    storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${store.params.database}`;
    databases = await createDatabasePair('ferry_lease');
    await databases.source.client.query('CREATE TABLE public.items (id int PRIMARY KEY, v text NOT NULL)');
    await insertRows(500);
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await databases?.drop();
    await store?.drop();
    for (const dir of dataDirs) removeDataDir(dir);
  });

  it('runs a job on one node, moves it on kill -9 within the lease bound and on drain', async () => {
    const a = await start('node-a', 19101);
    await start('node-b', 19102);
    await createProfile(a, 'lease-src', databases.source.params);
    await createProfile(a, 'lease-dst', databases.destination.params);
    await createJob(a, JOB, { type: 'continuous', source: 'lease-src', destination: 'lease-dst', include: ['public'] });
    await runCliJson(['jobs', 'start', JOB], { server: a.url });
    const running = await waitForJob(() => api(anyServer().url), JOB, 'the incremental load', inIncrementalLoad, 90_000);
    const owner = (running as unknown as { node: string | null }).node;
    expect(['node-a', 'node-b']).toContain(owner);
    await insertRows(200);
    await destinationCatchesUp('the first rows on the destination');

    // Exactly one node runs it, and it stays there (several renewals).
    for (let i = 0; i < 4; i += 1) {
      const nodes = await nodesOf(a);
      expect(nodes.filter((n) => n.jobs.includes(JOB)).map((n) => n.id)).toEqual([owner]);
      expect((await jobOf(api(a.url), JOB) as unknown as { node: string | null }).node).toBe(owner);
      await sleep(1_000);
    }
    const table = await runCli(['nodes', 'list'], { server: a.url });
    expect(table.stdout).toMatch(new RegExp(`${owner}\\s+UP\\s+${JOB}`));

    // kill -9 of the owner: the other node takes the job over within about L + L/3 (+ the sweep and a start).
    const survivorId = owner === 'node-a' ? 'node-b' : 'node-a';
    const survivor = servers.get(survivorId)!;
    await servers.get(owner!)!.kill('SIGKILL');
    servers.delete(owner!);
    const killedAt = Date.now();
    await insertRows(300);
    await waitFor('the takeover by the other node', async () => {
      const job = (await jobOf(api(survivor.url), JOB)) as unknown as { node: string | null };
      return job.node === survivorId ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const takeoverMs = Date.now() - killedAt;
    // L = 4 s: expiry after at most L, a sweep every L/3; a bound with room for a loaded machine.
    expect(takeoverMs).toBeLessThan(LEASE_SECONDS * 1000 * 3);
    const takeover = (await eventsOf(api(survivor.url), JOB)).find((e) => (e as { details?: { code?: string } }).details?.code === 'TAKEN_OVER') as
      | { message: string; details: { fromNode: string; toNode: string; epoch: number } }
      | undefined;
    expect(takeover?.details).toMatchObject({ fromNode: owner, toNode: survivorId });
    expect(takeover!.details.epoch).toBeGreaterThanOrEqual(2);
    expect(takeover!.message).toContain(owner!);
    await destinationCatchesUp('the rows written across the takeover on the destination');
    const metrics = await (await fetch(`${survivor.url}/metrics`)).text();
    expect(metrics).toContain('ferry_job_takeovers_total 1');
    expect(metrics).toMatch(new RegExp(`ferry_node_jobs\\{node="${survivorId}",state="UP"\\} 1`));
    console.log(`takeover after kill -9: ${takeoverMs} ms (lease ${LEASE_SECONDS} s)`);

    // Drain: a new node starts, the survivor drains, the job moves to the new node at once.
    const c = await start('node-c', 19103);
    await runCliJson(['nodes', 'drain', survivorId], { server: c.url });
    const drainedAt = Date.now();
    await waitFor('the job on node-c', async () => {
      const job = (await jobOf(api(c.url), JOB)) as unknown as { node: string | null };
      return job.node === 'node-c' ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const moveMs = Date.now() - drainedAt;
    // Released, not left to expire: well within one lease after the drain is seen (a sweep, L/3).
    expect(moveMs).toBeLessThan(LEASE_SECONDS * 1000 * 2);
    await waitFor('the drained node DRAINED', async () => {
      const node = (await nodesOf(c)).find((n) => n.id === survivorId);
      return node?.state === 'DRAINED' && node.jobs.length === 0 ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    const events = await eventsOf(api(c.url), JOB);
    expect(events.some((e) => (e as { details?: { code?: string; node?: string } }).details?.code === 'RELEASED' && (e as { details: { node: string } }).details.node === survivorId)).toBe(true);
    await insertRows(100);
    await destinationCatchesUp('the rows written after the drain on the destination');
    console.log(`move on drain: ${moveMs} ms`);

    const undrained = await runCliJson<NodeView>(['nodes', 'undrain', survivorId], { server: c.url });
    expect(undrained.state).toBe('UP');
    const unknown = await runCli(['nodes', 'drain', 'no-such-node'], { server: c.url });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NOT_FOUND');
  }, 240_000);
});
