/**
 * The jobs list with many jobs, against a real `ferry serve`: 1,000 jobs created through the
 * API, then paging (every job exactly once across pages, in every order, while more jobs are
 * created), status filters, text search and orders done by the server, and the console
 * showing page 2 and searching through the server in headless Chromium.
 *
 * No database server is needed: the jobs are never started. Some jobs get a final status
 * written through the metadata store of the server's data directory (another SQLite
 * connection), which the server's list must see at once.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, api, spawnFerryServer, stopAllFerryServers, waitFor, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';


const JOBS = 1000;
/** The console refreshes every 2 s and this machine may be busy: wait up to 30 s for what it shows. */
const POLL = { timeout: 30_000, interval: 200 };
const WORDS = ['orders', 'billing', 'inventory', 'users', 'events', 'payments', 'catalog', 'search', 'audit', 'reports'];
const ORDERS = ['createTime', 'createTime desc', 'updateTime', 'updateTime desc', 'displayName', 'displayName desc'] as const;

interface ListedJob {
  id: string;
  displayName: string;
  status: string;
  createTime: string;
  updateTime: string;
}
interface JobList {
  migrationJobs: ListedJob[];
  nextPageToken: string | null;
  totalSize: number;
}

const jobId = (index: number) => `list-job-${String(index).padStart(5, '0')}`;
const jobName = (index: number) => `${WORDS[index % WORDS.length]} migration ${index}`;

describe('jobs list with 1,000 jobs', () => {
  let server: FerryServer;
  let http: ApiClient;
  let browser: Browser | undefined;

  async function createJobs(from: number, to: number, concurrency = 8): Promise<void> {
    let next = from;
    const worker = async () => {
      for (let index = next++; index < to; index = next++) {
        await http.postOk('/v1/migrationJobs', {
          id: jobId(index), displayName: jobName(index), type: index % 2 === 0 ? 'continuous' : 'one-time',
          sourceProfileId: 'list-source', destinationProfileId: 'list-destination',
        });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  async function list(query: string): Promise<JobList> {
    return http.getOk<JobList>(`/v1/migrationJobs?${query}`);
  }

  /** Follows nextPageToken to the end; `between` runs after each page (concurrent writes). */
  async function walk(query: string, between?: (page: number) => Promise<void>): Promise<ListedJob[]> {
    const jobs: ListedJob[] = [];
    let token: string | null = null;
    for (let page = 0; page < 500; page++) {
      const answer: JobList = await list(`${query}${token === null ? '' : `&pageToken=${encodeURIComponent(token)}`}`);
      jobs.push(...answer.migrationJobs);
      token = answer.nextPageToken;
      if (token === null) return jobs;
      await between?.(page);
    }
    throw new Error(`${query}: still a next page after 500 pages`);
  }

  beforeAll(async () => {
    server = await spawnFerryServer();
    http = api(server.url);
    for (const [id, database] of [['list-source', 'app'], ['list-destination', 'app_copy']] as const) {
      await http.postOk('/v1/connectionProfiles', { id, displayName: `List ${id}`, engine: 'postgresql', host: '127.0.0.1', port: 5432, database, username: 'postgres' });
    }
    await createJobs(0, JOBS);

    // Final statuses for some jobs, written by another connection to the same database.
    const { SqliteMetadataStore } = await import(join(REPO_ROOT, 'dist', 'store', 'sqlite', 'sqlite-metadata-store.js'));
    const store = SqliteMetadataStore.open(join(server.dataDir, 'ferry.db'));
    try {
      for (let index = 0; index < JOBS; index += 10) {
        const job = await store.getJob(jobId(index));
        await store.updateJob({ ...job, status: index % 20 === 0 ? 'COMPLETED' : 'FAILED' });
      }
    } finally {
      await store.close();
    }
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryServers();
  }, 60_000);

  it('lists every job exactly once across pages, in every order, while jobs are created', async () => {
    const before = new Set((await walk('pageSize=1000')).map((job) => job.id));
    expect(before.size).toBe(JOBS);
    let created = JOBS;
    for (const orderBy of ORDERS) {
      // Two more jobs after every page: they may or may not be listed, but nothing repeats or goes missing.
      const listed = await walk(`pageSize=37&orderBy=${encodeURIComponent(orderBy)}`, async () => {
        await createJobs(created, created + 2, 2);
        created += 2;
      });
      const ids = listed.map((job) => job.id);
      expect(new Set(ids).size, `${orderBy}: a job listed twice`).toBe(ids.length);
      expect([...before].filter((id) => !ids.includes(id)), `${orderBy}: jobs missing`).toEqual([]);
      const key = (job: ListedJob) => (orderBy.startsWith('displayName') ? job.displayName.toLowerCase() : orderBy.startsWith('updateTime') ? job.updateTime : job.createTime);
      const sorted = [...listed].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (orderBy.endsWith(' desc')) sorted.reverse();
      expect(ids, `${orderBy}: not in order`).toEqual(sorted.map((job) => job.id));
    }
    const after = await list('pageSize=1');
    expect(after.totalSize).toBe(created);
  }, 300_000);

  it('filters by status and searches the id and name on the server', async () => {
    const failed = await walk('pageSize=100&status=FAILED');
    expect(failed.map((job) => job.id).sort()).toEqual(
      Array.from({ length: JOBS / 20 }, (_, i) => jobId(i * 20 + 10)).sort(),
    );
    const finished = await list('pageSize=10&status=COMPLETED,FAILED');
    expect(finished.totalSize).toBe(JOBS / 10);
    expect(finished.migrationJobs.every((job) => job.status === 'COMPLETED' || job.status === 'FAILED')).toBe(true);

    // "billing" is the name of one job in ten (index % 10 === 1), in any case.
    // (Jobs from the first test, numbered from JOBS on, are named the same way.)
    const billing = await walk('pageSize=100&search=BILLING');
    const expectedBilling = Array.from({ length: JOBS / 10 }, (_, i) => jobId(i * 10 + 1));
    expect(billing.filter((job) => Number(job.id.slice(-5)) < JOBS).map((job) => job.id).sort()).toEqual(expectedBilling);
    expect(billing.every((job) => job.displayName.includes('billing'))).toBe(true);

    // The id is searched too, and search combines with the status filter.
    expect((await list('search=list-job-00042')).migrationJobs.map((job) => job.id)).toEqual([jobId(42)]);
    const completedOrders = await list('pageSize=1000&status=COMPLETED&search=orders');
    expect(completedOrders.migrationJobs.map((job) => job.id).sort()).toEqual(
      Array.from({ length: JOBS / 20 }, (_, i) => jobId(i * 20)).sort(),
    );
    expect(completedOrders.totalSize).toBe(JOBS / 20);

    // % and _ are plain characters, not patterns.
    await http.postOk('/v1/migrationJobs', { id: 'percent-job', displayName: '100% done_now', type: 'one-time', sourceProfileId: 'list-source', destinationProfileId: 'list-destination' });
    expect((await list('search=%25')).migrationJobs.map((job) => job.id)).toEqual(['percent-job']);
    expect((await list('search=e_n')).migrationJobs.map((job) => job.id)).toEqual(['percent-job']);
    expect((await list('search=no job has this')).totalSize).toBe(0);

    // A new job shows in the very next list (no stale answer), a deleted one leaves it.
    expect((await list('search=percent-job')).totalSize).toBe(1);
    expect((await http.delete('/v1/migrationJobs/percent-job')).status).toBe(204);
    expect((await list('search=percent-job')).totalSize).toBe(0);

    // Wrong input is refused with a message that says what to send.
    const badOrder = await http.get<{ error: { code: string; message: string } }>('/v1/migrationJobs?orderBy=size');
    expect(badOrder.status).toBe(400);
    expect(badOrder.body.error.message).toContain('orderBy');
    const token = (await list('pageSize=5&orderBy=displayName')).nextPageToken!;
    const mixed = await http.get<{ error: { code: string; message: string } }>(`/v1/migrationJobs?pageSize=5&pageToken=${token}`);
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.message).toContain('ordered by "displayName"');
  }, 120_000);

  it('the console shows one page at a time, page 2 on Next, and searches through the server', async () => {
    browser = await launchChromium();
    const page: Page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
    page.setDefaultTimeout(30_000);
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const listRequests: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/v1/migrationJobs' && request.method() === 'GET') listRequests.push(url);
    });

    const firstPage = await list('pageSize=50');
    const secondPage = await list(`pageSize=50&pageToken=${firstPage.nextPageToken}`);
    const rowIds = () => page.locator('[data-testid=jobs-table] tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-job-id')));

    await page.goto(`${server.url}/jobs`);
    await expect.poll(rowIds, POLL).toEqual(firstPage.migrationJobs.map((job) => job.id));
    await expect.poll(() => page.getByTestId('jobs-range').textContent(), POLL).toBe(`1–50 of ${firstPage.totalSize}`);

    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(rowIds, POLL).toEqual(secondPage.migrationJobs.map((job) => job.id));
    await expect.poll(() => page.getByTestId('jobs-range').textContent(), POLL).toBe(`51–100 of ${firstPage.totalSize}`);
    mkdirSync(join(REPO_ROOT, 'test-artifacts', 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, 'test-artifacts', 'screenshots', 'jobs-list-page-2.png'), fullPage: false });
    // Polling asks for the page on screen only: page 2's token, never every job.
    const refreshesFrom = listRequests.length;
    await waitFor('a refresh of page 2', async () => (listRequests.length > refreshesFrom + 1 ? true : undefined), { timeoutMs: 20_000 });
    for (const url of listRequests.slice(refreshesFrom)) {
      expect(url.searchParams.get('pageToken')).toBe(firstPage.nextPageToken);
      expect(url.searchParams.get('pageSize')).toBe('50');
    }
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(rowIds, POLL).toEqual(firstPage.migrationJobs.map((job) => job.id));

    // Search: typed key by key, sent to the server, starting again on page 1.
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(rowIds, POLL).toEqual(secondPage.migrationJobs.map((job) => job.id));
    const expected = await list('pageSize=50&search=billing');
    await page.getByLabel('Search by name').pressSequentially('billing');
    await expect.poll(rowIds, POLL).toEqual(expected.migrationJobs.map((job) => job.id));
    await expect.poll(() => page.getByTestId('jobs-range').textContent(), POLL).toBe(`1–50 of ${expected.totalSize}`);
    expect(listRequests.some((url) => url.searchParams.get('search') === 'billing' && !url.searchParams.has('pageToken'))).toBe(true);
    expect(listRequests.every((url) => url.searchParams.get('pageSize') === '50')).toBe(true);

    // Status filter and search together, on the server (failed jobs are all named "orders ...").
    await page.getByLabel('Filter by status').selectOption('FAILED');
    await page.getByLabel('Search by name').fill('orders');
    const failedOrders = await list('pageSize=50&status=FAILED&search=orders');
    expect(failedOrders.migrationJobs.length).toBe(JOBS / 20);
    await expect.poll(rowIds, POLL).toEqual(failedOrders.migrationJobs.map((job) => job.id));
    expect(listRequests.some((url) => url.searchParams.get('status') === 'FAILED' && url.searchParams.get('search') === 'orders')).toBe(true);
    expect(errors).toEqual([]);
  }, 180_000);
});
