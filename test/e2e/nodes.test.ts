/**
 * The nodes of a metadata store, against a real `ferry serve` on a PostgreSQL store (a fresh
 * database on 127.0.0.1:5433): the server records itself under its --node-id and renews its
 * heartbeat; GET /v1/nodes and `ferry nodes list` show every node of the store with its state.
 * Other nodes are written by the test through the store, as another server would (several
 * `ferry serve` on one store, running jobs under leases, are in test/e2e/job-leases.test.ts);
 * the default node id (host name and port) is checked on a SQLite server.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, api, runCli, runCliJson, spawnFerryServer, stopAllFerryServers, waitFor } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

interface NodeView {
  id: string;
  address: string;
  version: string;
  state: 'UP' | 'LOST' | 'STOPPED';
  startTime: string;
  heartbeatTime: string;
  stopTime: string | null;
}

interface NodeStore {
  migrate(): Promise<void>;
  putNode(node: Omit<NodeView, 'state'>): Promise<void>;
  listNodes(): Promise<Array<Omit<NodeView, 'state'>>>;
  close(): Promise<void>;
}

describe('nodes of a metadata store', () => {
  let database: TestDatabase;
  let storeUrl: string;
  let store: NodeStore;

  beforeAll(async () => {
    database = await createTestDatabase(PG_DEST_PORT, 'ferry_nodes');
    storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${database.params.database}`;
    const { PostgresMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'postgres', 'postgres-metadata-store.js'));
    store = (await PostgresMetadataStore.open(storeUrl)) as NodeStore;
    await store.migrate();
  });

  afterAll(async () => {
    await stopAllFerryServers();
    await store?.close();
    await database?.drop();
  });

  it('lists itself and the other nodes of the store with their state, and records its stop', async () => {
    const server = await spawnFerryServer({ env: { FERRY_STORE_URL: storeUrl, FERRY_NODE_ID: 'node-one' } });
    const http = api(server.url);
    const now = Date.now();
    // Another node that beats now, and one that stopped beating 60 s ago (killed without a stop).
    await store.putNode({ id: 'node-two', address: 'http://10.0.0.2:8080', version: '0.1.0', startTime: new Date(now - 120_000).toISOString(), heartbeatTime: new Date(now).toISOString(), stopTime: null });
    await store.putNode({ id: 'node-zero', address: 'http://10.0.0.9:8080', version: '0.1.0', startTime: new Date(now - 120_000).toISOString(), heartbeatTime: new Date(now - 60_000).toISOString(), stopTime: null });

    const listed = await http.getOk<{ nodes: NodeView[] }>('/v1/nodes');
    expect(listed.nodes.map((n) => [n.id, n.state])).toEqual([['node-one', 'UP'], ['node-two', 'UP'], ['node-zero', 'LOST']]);
    const own = listed.nodes.find((n) => n.id === 'node-one')!;
    expect(own.address).toBe(server.url);
    expect(own.stopTime).toBeNull();

    // The heartbeat moves (every 5 s).
    const first = own.heartbeatTime;
    await waitFor('a newer heartbeat of node-one', async () => {
      const again = (await http.getOk<{ nodes: NodeView[] }>('/v1/nodes')).nodes.find((n) => n.id === 'node-one')!;
      return again.heartbeatTime > first ? again : undefined;
    }, { timeoutMs: 20_000, intervalMs: 500 });

    const cli = await runCliJson<{ nodes: NodeView[] }>(['nodes', 'list'], { server: server.url });
    expect(cli.nodes.map((n) => n.id)).toEqual(['node-one', 'node-two', 'node-zero']);
    const table = await runCli(['nodes', 'list'], { server: server.url });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/node-zero\s+│?\s*LOST/);

    await server.stop();
    const stopped = (await store.listNodes()).find((n) => n.id === 'node-one')!;
    expect(stopped.stopTime).not.toBeNull();
    expect(stopped.startTime <= stopped.stopTime!).toBe(true);
  });

  it('a server without --node-id is "<host name>:<port>"', async () => {
    const server = await spawnFerryServer();
    const listed = await api(server.url).getOk<{ nodes: NodeView[] }>('/v1/nodes');
    expect(listed.nodes.map((n) => [n.id, n.state])).toEqual([[`${hostname()}:${server.port}`, 'UP']]);
    await server.stop();
  });
});
