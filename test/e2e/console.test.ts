/**
 * End to end through the web console: headless Chromium (Debian's, driven by playwright-core)
 * against a real `ferry serve` and real PostgreSQL. A DBA creates the profiles in the UI, creates
 * and verifies a job, starts it and watches it reach Completed. At every status the test sees,
 * the buttons shown must be exactly the API's availableActions. Any browser console error or
 * uncaught page error fails the test (except the HTTP refusals the test provokes on purpose).
 *
 * Screenshots of the list and details pages go to test-artifacts/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  api,
  spawnFerryServer,
  stopAllFerryServers,
  waitFor,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');


const ORDERS = 300_000;

const SOURCE_SQL = `
  CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE);
  INSERT INTO public.customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 2000) g;
  CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES public.customers (id),
    total numeric(12, 2) NOT NULL,
    note text
  );
  INSERT INTO public.orders SELECT g, 1 + g % 2000, (g % 1000) * 1.25, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, ${ORDERS}) g;
  -- The smallest table: the dump copies the largest first, so this one comes last.
  CREATE TABLE public.zz_notes (id integer PRIMARY KEY, body text NOT NULL);
  INSERT INTO public.zz_notes SELECT g, 'note ' || g FROM generate_series(1, 10) g;
  ANALYZE;
`;

interface JobView {
  id: string;
  status: string;
  substatus: string | null;
  availableActions: string[];
  progress: { tablesTotal: number; tablesCompleted: number; rowsCopied: number };
}

/** Network refusals the test provokes on purpose: Chromium logs them as console errors. */
interface ExpectedFailure {
  urlPart: string;
  status: number;
}

describe('web console', () => {
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let server: FerryServer;
  let http: ApiClient;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const expectedFailures: ExpectedFailure[] = [];
  /** Statuses at which the buttons were compared with availableActions. */
  const checkedStatuses = new Set<string>();
  /** Buttons that differed from availableActions (recorded, not thrown: checks run inside waits). */
  const mismatches: string[] = [];
  /** The last comparison, for the message of a wait that timed out. */
  let lastSeen = '';

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    dbs = await createDatabasePair('ferry_console');
    await dbs.source.client.query(SOURCE_SQL);
    server = await spawnFerryServer();
    http = api(server.url);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const text = message.text();
      const url = message.location().url;
      if (expectedFailures.some((e) => url.includes(e.urlPart) && text.includes(`status of ${e.status}`))) return;
      consoleErrors.push(`${text} (${url})`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryServers();
    await dbs?.drop();
  }, 120_000);

  /** What the page shows now: the job's status and substatus, and its action buttons. */
  async function shownJob(scope: string): Promise<{ status: string | null; substatus: string | null; actions: string[] }> {
    return page.evaluate((selector) => {
      const root = document.querySelector(selector);
      const statusElement = root?.querySelector('[data-testid=job-status]') ?? root?.querySelector('[data-status]');
      return {
        status: statusElement?.getAttribute('data-status') ?? null,
        substatus: root?.querySelector('.substatus')?.textContent ?? null,
        actions: [...(root?.querySelectorAll('[data-testid=job-actions] [data-action]') ?? [])].map((b) => b.getAttribute('data-action') ?? ''),
      };
    }, scope);
  }

  /**
   * Compares the buttons shown with the API's availableActions when the page and the API agree
   * on the status (the page refreshes every 2 s). Returns the status compared, or null.
   */
  async function compareButtons(jobId: string, scope = '[data-testid=job-details]'): Promise<string | null> {
    const shown = await shownJob(scope);
    const job = await http.getOk<JobView>(`/v1/migrationJobs/${jobId}`);
    lastSeen = `page: ${JSON.stringify(shown)}; API: ${job.status} / ${job.substatus} [${job.availableActions.join(', ')}]`;
    if (shown.status !== job.status || (scope.includes('job-details') && (shown.substatus ?? null) !== (job.substatus ?? null))) return null;
    if (JSON.stringify(shown.actions) !== JSON.stringify(job.availableActions)) {
      mismatches.push(`${scope} at ${job.status}: shown [${shown.actions.join(', ')}], availableActions [${job.availableActions.join(', ')}]`);
    }
    checkedStatuses.add(job.status);
    return job.status;
  }

  async function waitForShownStatus(jobId: string, status: string, timeoutMs = 90_000): Promise<void> {
    try {
      await waitFor(`the details page to show ${status}`, async () => ((await compareButtons(jobId)) === status ? true : undefined), {
        timeoutMs,
        intervalMs: 250,
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}; last seen: ${lastSeen}`);
    }
  }

  async function fillProfileForm(scope: ReturnType<Page['locator']>, profile: { name: string; id: string; port: number; database: string }) {
    await scope.getByLabel('Display name').fill(profile.name);
    await scope.getByLabel('Profile ID').fill(profile.id);
    await scope.getByLabel('Host').fill(PG_HOST);
    await scope.getByLabel('Port').fill(String(profile.port));
    await scope.getByLabel('Database', { exact: true }).fill(profile.database);
    await scope.getByLabel('Username').fill(PG_USER);
    await scope.getByRole('button', { name: 'Test connection' }).click();
    const result = scope.getByTestId('connection-test');
    await expect.poll(() => result.getAttribute('data-ok')).toBe('true');
    expect(await result.textContent()).toContain('Connection succeeded');
    expect(await result.textContent()).toContain('PostgreSQL');
  }

  it('creates profiles and a job, verifies it, starts it and follows it to Completed; buttons match availableActions', async () => {
    const sourceDb = dbs.source.params.database!;
    const destinationDb = dbs.destination.params.database!;

    // The console is served at / and opens on the migration jobs.
    await page.goto(server.url);
    await page.waitForURL(/\/jobs$/);
    await expect.poll(() => page.getByText('No migration jobs yet.').isVisible()).toBe(true);

    // 1. The source profile, on the connection profiles pages.
    await page.getByRole('link', { name: 'Connection profiles' }).click();
    await page.getByRole('link', { name: 'Create profile' }).click();
    await page.waitForURL(/\/create\/profile$/);
    const form = page.getByRole('form', { name: 'New connection profile' });
    await fillProfileForm(form, { name: 'Shop source', id: 'shop-source', port: PG_SOURCE_PORT, database: sourceDb });
    await form.getByRole('button', { name: 'Create profile' }).click();
    await page.waitForURL(/\/profiles\/shop-source$/);
    await expect.poll(() => page.getByTestId('profile-details').textContent()).toContain(sourceDb);

    // 2. The job, with the destination profile created inside the flow.
    await page.getByRole('link', { name: 'Migration jobs' }).first().click();
    await page.getByRole('link', { name: 'Create migration job' }).first().click();
    await page.waitForURL(/\/create\/job$/);
    await page.getByLabel('Migration job name').fill('Shop move');
    await page.getByLabel('Migration job ID').fill('shop-move');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByLabel('Source connection profile').selectOption('shop-source');
    await page.getByRole('button', { name: 'Test connection' }).click();
    await expect.poll(() => page.getByTestId('connection-test').getAttribute('data-ok')).toBe('true');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByLabel('Create a new connection profile').check();
    const destinationForm = page.getByRole('form', { name: 'New connection profile' });
    await fillProfileForm(destinationForm, { name: 'Shop destination', id: 'shop-destination', port: PG_DEST_PORT, database: destinationDb });
    await destinationForm.getByRole('button', { name: 'Create profile' }).click();
    await expect.poll(() => page.getByLabel('Destination connection profile').inputValue()).toBe('shop-destination');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByLabel('Dump parallelism').fill('1');
    await page.getByRole('button', { name: 'Create and verify' }).click();

    // 3. Verify: every check's result is shown; the job exists, Not started.
    const report = page.getByTestId('verify-report');
    await report.waitFor({ timeout: 60_000 });
    expect(await report.getAttribute('data-ok')).toBe('true');
    const checks = await page.getByTestId('checks').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-severity')));
    expect(checks.length).toBeGreaterThan(0);
    expect(checks).not.toContain('error');
    const apiChecks = (await http.postOk<{ checks: unknown[] }>('/v1/migrationJobs/shop-move:verify')).checks;
    expect(checks).toHaveLength(apiChecks.length);
    await waitFor('the verify step to show the job Not started with its actions', async () =>
      (await compareButtons('shop-move', '[data-testid=verify-step]')) === 'NOT_STARTED' ? true : undefined,
    );
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'create-job-verify.png'), fullPage: true });

    // 4. Start. The smallest table is copied last, by a COPY into the destination table: a SHARE
    // lock held there (it conflicts with COPY's ROW EXCLUSIVE) keeps the job Running (Full dump
    // in progress) while the test looks at the page.
    await page.getByTestId('verify-step').locator('[data-action=start]').click();
    await page.waitForURL(/\/jobs\/shop-move$/);
    const locker = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: PG_USER, database: destinationDb });
    await locker.connect();
    try {
      await waitFor(
        'the job to be Running and the last table to be locked on the destination',
        async () => {
          await compareButtons('shop-move'); // Starting..., when the page shows it
          const job = await http.getOk<JobView>('/v1/migrationJobs/shop-move');
          if (job.status !== 'RUNNING') return undefined;
          await locker.query("BEGIN; SET LOCAL lock_timeout = '2s'");
          try {
            // Fails while the job has not created the table yet: the wait tries again.
            await locker.query('LOCK TABLE public.zz_notes IN SHARE MODE');
            return true;
          } catch (error) {
            await locker.query('ROLLBACK');
            throw error;
          }
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const notes = await http.getOk<{ objects: { name: string; state: string }[] }>('/v1/migrationJobs/shop-move/objects');
      expect(notes.objects.find((o) => o.name === 'public.zz_notes')?.state ?? 'NOT_STARTED').not.toBe('DUMPED');

      await waitForShownStatus('shop-move', 'RUNNING');
      // Per-table progress updates live: the orders table is copied while the page is open.
      await expect
        .poll(() => page.locator('[data-object="public.orders"]').getAttribute('data-state'), { timeout: 60_000, interval: 250 })
        .toBe('DUMPED');
      await expect.poll(() => page.locator('[data-object="public.orders"]').textContent()).toContain('300,000');
      // A one-time job has no change stream: no replication lag panel.
      expect(await page.getByTestId('replication-lag').count()).toBe(0);
      // The throughput chart is drawn from successive refreshes (rows/s between two polls).
      await page.locator('[data-testid=throughput] svg polyline').waitFor({ timeout: 30_000 });
      // The axis says what it measures, and no two gridlines carry the same label.
      expect(await page.locator('[data-testid=throughput] [data-testid=chart-y-title]').textContent()).toBe('Rows copied per second');
      const yLabels = await page.locator('[data-testid=throughput] svg text.chart-y-tick').allTextContents();
      expect(new Set(yLabels).size, yLabels.join(' | ')).toBe(yLabels.length);
      await compareButtons('shop-move');
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'job-details-running.png'), fullPage: true });
    } finally {
      await locker.query('COMMIT').catch(() => undefined);
      await locker.end();
    }

    // 5. Completed.
    await waitForShownStatus('shop-move', 'COMPLETED');
    await expect.poll(() => page.getByTestId('tables-progress').textContent()).toBe('3 of 3');
    expect(await page.getByTestId('job-percent').textContent()).toBe('100%');
    const details = (await page.getByTestId('job-details').textContent()) ?? '';
    for (const field of ['Display name', 'Migration type', 'One-time', 'Source connection profile', 'Shop source', 'Source database engine', 'Destination', 'Shop destination', 'Connectivity method', 'Direct', 'Created', 'Running duration']) {
      expect(details).toContain(field);
    }
    await expect.poll(() => page.getByTestId('events-table').textContent()).toContain('Start requested by console');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'job-details.png'), fullPage: true });
    const copied = await dbs.destination.client.query<{ n: string }>('SELECT count(*) AS n FROM public.orders');
    expect(Number(copied.rows[0]!.n)).toBe(ORDERS);

    // 6. The list: the job with its fields; bulk actions offer exactly its actions.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Migration jobs' }).click();
    await page.waitForURL(/\/jobs$/);
    const row = page.locator('[data-job-id=shop-move]');
    await expect.poll(() => row.textContent()).toContain('Completed');
    const rowText = (await row.textContent()) ?? '';
    for (const value of ['Shop move', 'shop-move', 'One-time', 'Shop source', 'Shop destination', 'PostgreSQL']) expect(rowText).toContain(value);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'jobs-list.png'), fullPage: true });
    await row.getByRole('checkbox').check();
    const bulkActions = await page.locator('[data-testid=bulk-actions] [data-action]').evaluateAll((buttons) => buttons.map((b) => b.getAttribute('data-action')));
    expect(bulkActions).toEqual((await http.getOk<JobView>('/v1/migrationJobs/shop-move')).availableActions);
    await row.getByRole('checkbox').uncheck();
    // Filter by status and search by name, without reloading.
    await page.getByLabel('Filter by status').selectOption('RUNNING');
    await expect.poll(() => page.getByText('No migration job matches the filter.').isVisible()).toBe(true);
    await page.getByLabel('Filter by status').selectOption('COMPLETED');
    await expect.poll(() => row.isVisible()).toBe(true);
    await page.getByLabel('Search by name').fill('nothing like it');
    await expect.poll(() => row.count()).toBe(0);
    await page.getByLabel('Search by name').fill('shop');
    await expect.poll(() => row.isVisible()).toBe(true);

    // 7. Profiles: each lists the jobs that use it; delete is refused with the API's message
    // while a job that is not Completed uses the profile.
    const other = await http.postOk<JobView>('/v1/migrationJobs', {
      id: 'shop-again',
      displayName: 'Shop again',
      type: 'one-time',
      sourceProfileId: 'shop-source',
      destinationProfileId: 'shop-destination',
    });
    expect(other.status).toBe('NOT_STARTED');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Connection profiles' }).click();
    const profileRow = page.locator('[data-profile-id=shop-destination]');
    await expect.poll(() => profileRow.textContent()).toContain('Shop again');
    expect(await profileRow.textContent()).toContain('Shop move');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'profiles-list.png'), fullPage: true });
    expectedFailures.push({ urlPart: '/v1/connectionProfiles/shop-destination', status: 409 });
    await profileRow.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.textContent()).toContain('not Completed');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    const refusal = page.getByTestId('profile-error');
    await expect.poll(() => refusal.textContent()).toContain('PROFILE_IN_USE');
    expect(await refusal.textContent()).toContain('"shop-again" (Not started)');
    expectedFailures.pop();
    expect((await http.get('/v1/connectionProfiles/shop-destination')).status).toBe(200);
    expect((await http.delete('/v1/migrationJobs/shop-again')).status).toBe(204);

    // 8. Delete the completed job from its details page, through the confirmation.
    await page.goto(`${server.url}/jobs/shop-move`);
    await waitForShownStatus('shop-move', 'COMPLETED');
    await page.getByTestId('job-details').locator('[data-action=delete]').click();
    const confirm = page.getByRole('dialog');
    expect(await confirm.textContent()).toContain('The data already copied to the destination is kept');
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/jobs$/);
    await expect.poll(async () => (await http.get('/v1/migrationJobs/shop-move')).status).toBe(404);
    await expect.poll(() => page.locator('[data-job-id=shop-move]').count()).toBe(0);

    expect(mismatches).toEqual([]);
    expect([...checkedStatuses]).toEqual(expect.arrayContaining(['NOT_STARTED', 'RUNNING', 'COMPLETED']));
    expect(consoleErrors).toEqual([]);
  }, 240_000);
});
