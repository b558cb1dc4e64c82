/**
 * The console's data validation, end to end: headless Chromium (playwright-core) against a real
 * `ferry serve` and real PostgreSQL. After a one-time job, a cell changed on the destination;
 * on the job's page the user clicks Validate and the results panel shows the table as
 * different, with the key and both values, and the other table equal. Any browser console error
 * fails the test. The screenshot goes to test-artifacts/screenshots/job-validation.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { createProfile, waitForJob } from '../helpers/e2e-jobs.js';
import { REPO_ROOT, api, runCliJson, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');

describe('console: data validation', () => {
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let server: FerryServer;
  let client: ApiClient;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    dbs = await createDatabasePair('ferry_valui');
    await dbs.source.client.query(`
      CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL, city text);
      INSERT INTO public.customers SELECT g, 'Customer ' || g, 'City ' || (g % 40) FROM generate_series(1, 5000) g;
      CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, total numeric(12, 2) NOT NULL);
      INSERT INTO public.orders SELECT g, 1 + g % 5000, (g % 1000) * 1.25 FROM generate_series(1, 20000) g;`);
    server = await spawnFerryServer();
    client = api(server.url);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryServers();
    await dbs?.drop();
  }, 120_000);

  it('runs a validation from the job page and shows the differing row', async () => {
    await createProfile(server, 'ui-src', dbs.source.params);
    await createProfile(server, 'ui-dst', dbs.destination.params);
    await runCliJson(['jobs', 'create', '--id', 'ui-val', '--type', 'one-time', '--source', 'ui-src', '--destination', 'ui-dst', '--include', 'public'], { server: server.url });
    await runCliJson(['jobs', 'start', 'ui-val'], { server: server.url });
    await waitForJob(() => client, 'ui-val', 'Completed', (job) => job.status === 'COMPLETED', 120_000);
    await dbs.destination.client.query(`UPDATE public.customers SET city = 'Elsewhere' WHERE id = 42`);

    await page.goto(`${server.url}/jobs/ui-val`);
    const panel = page.getByTestId('validation-panel');
    await expect.poll(() => panel.textContent(), { timeout: 30_000 }).toContain('No validation yet.');
    await page.getByTestId('validate-button').click();

    const result = page.getByTestId('validation-result');
    await expect.poll(() => result.getAttribute('data-status'), { timeout: 120_000, interval: 250 }).toBe('SUCCEEDED');
    expect(await result.getAttribute('data-clean')).toBe('false');
    expect(await result.textContent()).toContain('Not clean: 1 of 2 tables differ.');
    const customers = page.locator('[data-testid=validation-table] tr[data-table="public.customers"]');
    expect(await customers.getAttribute('data-state')).toBe('DIFFERENT');
    const shown = (await customers.textContent()) ?? '';
    expect(shown).toContain('id = "42"');
    expect(shown).toContain('city: source "City 2", destination "Elsewhere"');
    expect(shown).toContain('Differs');
    const orders = page.locator('[data-testid=validation-table] tr[data-table="public.orders"]');
    expect(await orders.getAttribute('data-state')).toBe('EQUAL');
    expect(await orders.textContent()).toContain('20,000');
    // The history panel records the validation.
    await expect.poll(() => page.getByTestId('events-table').textContent(), { timeout: 30_000 }).toContain('1 differ (public.customers)');
    await page.getByTestId('validation-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'job-validation.png'), fullPage: true });

    expect(consoleErrors).toEqual([]);
  }, 300_000);
});
