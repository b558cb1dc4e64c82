/**
 * The console's Nodes page and the node of each job, in headless Chromium against a real
 * `ferry serve` on a PostgreSQL store (a fresh database on 127.0.0.1:5433) that runs a real
 * continuous PostgreSQL job. Two more nodes are written by the test through the store, as other
 * servers would: one that beats (UP) and one that stopped beating 90 s ago (LOST).
 * - The Nodes page (nav entry) shows every node of GET /v1/nodes with its address, version,
 *   state, heartbeat age and jobs, and offers Drain for the nodes that are up.
 * - The jobs list and the job details show the node that runs each job (the one holding its lease).
 * - Drain asks first (Cancel changes nothing); once confirmed the node is Drained and the job
 *   runs on no node (the only other node that "beats" is the test's, which takes no job); Undo
 *   drain lets the node take the job again.
 * Any browser error fails the test.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataStore } from '../../src/store/metadata-store.js';
import type { FerryNode } from '../../web/src/api/types.js';
import { launchChromium } from '../helpers/browser.js';
import { createJob, createProfile, inIncrementalLoad, waitForJob } from '../helpers/e2e-jobs.js';
import { FAST_RETRY_ENV, REPO_ROOT, api, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createDatabasePair, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

/** This file's ports: 19400-19499. */
const SERVER_PORT = 19400;
const OWN_NODE = 'console-node-a';
const BEATING_NODE = 'console-node-b';
const LOST_NODE = 'console-node-z';
const JOB_ID = 'nodes-console-job';
/** The console refreshes every 2 s and this machine may be busy: wait up to 30 s for what it shows. */
const POLL = { timeout: 30_000, interval: 200 };
const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');

type NodeStore = Pick<MetadataStore, 'migrate' | 'putNode' | 'close'>;

describe('console: nodes and the node of each job', () => {
  let storeDatabase: TestDatabase;
  let store: NodeStore;
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let server: FerryServer;
  let http: ApiClient;
  let browser: Browser;
  let page: Page;
  let beat: ReturnType<typeof setInterval> | undefined;
  const browserErrors: string[] = [];
  /** Failed heartbeats of the test's node (checked at the end: a failure would turn it LOST). */
  const beatErrors: string[] = [];
  const startTime = new Date(Date.now() - 300_000).toISOString();

  const nodes = async () => (await http.getOk<{ nodes: FerryNode[] }>('/v1/nodes')).nodes;
  const nodeOf = async (id: string) => (await nodes()).find((n) => n.id === id)!;
  const jobNode = async () => (await http.getOk<{ node?: string | null }>(`/v1/migrationJobs/${JOB_ID}`)).node;
  const row = (id: string) => page.locator(`[data-testid=nodes-table] tr[data-node-id="${id}"]`);

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    storeDatabase = await createTestDatabase(PG_DEST_PORT, 'ferry_nodes_console');
    const storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${storeDatabase.params.database}`;
    const { PostgresMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'postgres', 'postgres-metadata-store.js'));
    store = (await PostgresMetadataStore.open(storeUrl)) as NodeStore;
    await store.migrate();

    dbs = await createDatabasePair('ferry_nodes_console');
    await dbs.source.client.query(`
      CREATE TABLE public.items (id integer PRIMARY KEY, label text NOT NULL);
      INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
    `);

    server = await spawnFerryServer({
      port: SERVER_PORT,
      env: { ...FAST_RETRY_ENV, FERRY_STORE_URL: storeUrl, FERRY_NODE_ID: OWN_NODE, FERRY_LEASE_SECONDS: '4' },
    });
    http = api(server.url);

    // Another server that beats every second (with --lease-seconds 4 a node is LOST after about
    // 4 s without a beat), and one killed 90 s ago (never stopped cleanly).
    const putBeatingNode = () =>
      store.putNode({ id: BEATING_NODE, address: 'http://10.0.0.2:8080', version: '0.1.0', startTime, heartbeatTime: new Date().toISOString(), stopTime: null, drainTime: null, maxJobs: null });
    await putBeatingNode();
    beat = setInterval(() => void putBeatingNode().catch((error: unknown) => beatErrors.push(String(error))), 1_000);
    const lostBeat = new Date(Date.now() - 90_000).toISOString();
    await store.putNode({ id: LOST_NODE, address: 'http://10.0.0.9:8080', version: '0.0.9', startTime, heartbeatTime: lostBeat, stopTime: null, drainTime: null, maxJobs: 3 });

    await createProfile(server, 'nodes-console-source', dbs.source.params);
    await createProfile(server, 'nodes-console-destination', dbs.destination.params);
    await createJob(server, JOB_ID, { type: 'continuous', source: 'nodes-console-source', destination: 'nodes-console-destination', include: ['public'] });

    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (error) => browserErrors.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') browserErrors.push(`${message.text()} (${message.location().url})`);
    });
  }, 180_000);

  afterAll(async () => {
    clearInterval(beat);
    await browser?.close();
    await stopAllFerryServers();
    await store?.close();
    await dbs?.drop();
    await storeDatabase?.drop();
  }, 120_000);

  it('the Nodes page lists every node with its state, heartbeat age and Drain for nodes that are up; a job not started runs on no node', async () => {
    // A job that was never started holds no lease.
    await page.goto(`${server.url}/jobs`);
    const jobRow = page.locator(`[data-testid=jobs-table] tr[data-job-id="${JOB_ID}"]`);
    await expect.poll(() => jobRow.getByTestId('job-node').textContent(), POLL).toBe('—');
    expect(await page.locator('[data-testid=jobs-table] th').allTextContents()).toContain('Node');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).click();
    expect(new URL(page.url()).pathname).toBe('/nodes');
    await expect.poll(() => page.getByRole('link', { name: 'Nodes' }).getAttribute('aria-current')).toBe('page');

    const listed = await nodes();
    expect(listed.map((n) => [n.id, n.state])).toEqual([[OWN_NODE, 'UP'], [BEATING_NODE, 'UP'], [LOST_NODE, 'LOST']]);
    const rowIds = () => page.locator('[data-testid=nodes-table] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-node-id')));
    await expect.poll(rowIds, POLL).toEqual([OWN_NODE, BEATING_NODE, LOST_NODE]);

    for (const node of listed) {
      const cells = await row(node.id).locator('td').allTextContents();
      expect(cells[0]).toBe(node.id);
      expect(cells[1]).toBe(node.address);
      expect(cells[2]).toBe(node.version);
      expect(await row(node.id).locator('[data-state]').first().getAttribute('data-state')).toBe(node.state);
    }
    expect(await row(OWN_NODE).locator('.badge').textContent()).toBe('Up');
    expect(await row(LOST_NODE).locator('.badge').textContent()).toBe('Lost');

    // Heartbeat ages: this server beats every 5 s; the lost node's last beat is 90 s old and grows.
    const ownAge = await row(OWN_NODE).getByTestId('heartbeat-age').textContent();
    expect(ownAge).toMatch(/^\d+ s ago$/);
    expect(Number(/^(\d+)/.exec(ownAge!)![1])).toBeLessThan(15);
    const secondsOf = (age: string | null) => {
      const match = /^(?:(\d+) min )?(\d+) s ago$/.exec(age ?? '');
      return match ? Number(match[1] ?? 0) * 60 + Number(match[2]) : null;
    };
    const lostAge = secondsOf(await row(LOST_NODE).getByTestId('heartbeat-age').textContent());
    expect(lostAge).toBeGreaterThanOrEqual(90);
    expect(lostAge).toBeLessThan(300);
    await expect.poll(async () => secondsOf(await row(LOST_NODE).getByTestId('heartbeat-age').textContent()), POLL).toBeGreaterThan(lostAge!);

    // Drain is offered for the nodes that are up, not for a lost one; no node is draining yet.
    expect(await row(OWN_NODE).locator('button[data-action]').evaluateAll((b) => b.map((x) => x.getAttribute('data-action')))).toEqual(['drain']);
    expect(await row(BEATING_NODE).locator('button[data-action]').evaluateAll((b) => b.map((x) => x.getAttribute('data-action')))).toEqual(['drain']);
    expect(await row(LOST_NODE).locator('button').count()).toBe(0);
    expect(await row(LOST_NODE).getByTestId('node-jobs').textContent()).toBe('None');
    expect(await row(LOST_NODE).getByTestId('node-max-jobs').textContent()).toBe('at most 3 jobs');
    expect(await row(OWN_NODE).getByTestId('node-max-jobs').count()).toBe(0);

    await page.screenshot({ path: join(SCREENSHOT_DIR, 'nodes-page.png') });
    expect(browserErrors).toEqual([]);
  }, 120_000);

  it('the jobs list, the job details and the Nodes page show the node that runs a job', async () => {
    await http.postOk(`/v1/migrationJobs/${JOB_ID}:start`, {});
    await waitForJob(() => http, JOB_ID, 'Incremental load', inIncrementalLoad, 120_000);
    await expect.poll(jobNode, POLL).toBe(OWN_NODE);
    expect((await nodeOf(OWN_NODE)).jobs).toEqual([JOB_ID]);
    expect((await nodeOf(BEATING_NODE)).jobs).toEqual([]);

    await page.goto(`${server.url}/jobs`);
    const jobRow = page.locator(`[data-testid=jobs-table] tr[data-job-id="${JOB_ID}"]`);
    await expect.poll(() => jobRow.getByTestId('job-node').textContent(), POLL).toBe(OWN_NODE);

    await page.goto(`${server.url}/jobs/${JOB_ID}`);
    await expect.poll(() => page.getByTestId('job-node').textContent(), POLL).toBe(OWN_NODE);
    // The node links to the Nodes page, whose row of that node links back to the job.
    await page.getByTestId('job-node').getByRole('link').click();
    expect(new URL(page.url()).pathname).toBe('/nodes');
    await expect.poll(() => row(OWN_NODE).getByTestId('node-jobs').textContent(), POLL).toBe(JOB_ID);
    await expect.poll(() => row(BEATING_NODE).getByTestId('node-jobs').textContent(), POLL).toBe('None');
    await row(OWN_NODE).getByRole('link', { name: JOB_ID }).click();
    expect(new URL(page.url()).pathname).toBe(`/jobs/${JOB_ID}`);
    await expect.poll(() => page.getByTestId('job-details').getAttribute('data-job-id'), POLL).toBe(JOB_ID);
    expect(browserErrors).toEqual([]);
  }, 180_000);

  it('Drain asks first, then takes the job off the node; Undo drain lets the node take it again', async () => {
    await page.goto(`${server.url}/nodes`);
    await expect.poll(() => row(OWN_NODE).getByTestId('node-jobs').textContent(), POLL).toBe(JOB_ID);

    // Cancel changes nothing.
    await row(OWN_NODE).locator('button[data-action=drain]').click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.getByRole('heading').textContent()).toBe(`Drain node "${OWN_NODE}"?`);
    expect(await dialog.textContent()).toContain(`It runs 1 job now: ${JOB_ID}.`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.count()).toBe(0);
    expect((await nodeOf(OWN_NODE)).drainTime).toBeNull();

    await row(OWN_NODE).locator('button[data-action=drain]').click();
    await dialog.locator('[data-confirm]').click();
    await expect.poll(() => dialog.count(), POLL).toBe(0);
    const drained = await nodeOf(OWN_NODE);
    expect(drained.drainTime).not.toBeNull();
    expect(['DRAINING', 'DRAINED']).toContain(drained.state);

    // The job leaves the node at its next safe point; nobody else takes it (the other "node" is the test's).
    await expect.poll(() => row(OWN_NODE).locator('.badge').getAttribute('data-state'), POLL).toBe('DRAINED');
    expect(await jobNode()).toBeNull();
    expect((await nodeOf(OWN_NODE)).jobs).toEqual([]);
    await expect.poll(() => row(OWN_NODE).getByTestId('node-jobs').textContent(), POLL).toBe('None');
    expect(await row(OWN_NODE).locator('button[data-action]').evaluateAll((b) => b.map((x) => x.getAttribute('data-action')))).toEqual(['undrain']);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'nodes-page-drained.png') });

    await row(OWN_NODE).locator('button[data-action=undrain]').click();
    await expect.poll(async () => (await nodeOf(OWN_NODE)).drainTime, POLL).toBeNull();
    await expect.poll(jobNode, POLL).toBe(OWN_NODE);
    await expect.poll(() => row(OWN_NODE).locator('.badge').getAttribute('data-state'), POLL).toBe('UP');
    await expect.poll(() => row(OWN_NODE).getByTestId('node-jobs').textContent(), POLL).toBe(JOB_ID);
    expect(await row(OWN_NODE).locator('button[data-action]').evaluateAll((b) => b.map((x) => x.getAttribute('data-action')))).toEqual(['drain']);
    expect(browserErrors).toEqual([]);
    expect(beatErrors).toEqual([]);
  }, 180_000);
});
