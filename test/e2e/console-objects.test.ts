/**
 * The create-job Objects step: POST /v1/connectionProfiles/{id}:listTables against a real
 * PostgreSQL source (patterns, unknown profile, unreachable server), and the console's table
 * picker in headless Chromium: the source's schemas and tables as checkboxes, the live count of
 * the tables the patterns match, checkboxes that write include entries, and the created job's
 * selection. What the preview marks selected must be what the job's verify selects. And the
 * profile form's SSH tunnel choice (this server always has tunnels): choosing it shows every
 * field a tunnel needs, required, so a half-filled tunnel never reaches the server.
 *
 * Screenshot: test-artifacts/screenshots/create-job-objects.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { REPO_ROOT, api, freePort, spawnFerryServer, stopAllFerryServers, type ApiClient, type FerryServer } from '../helpers/ferry-server.js';
import { PG_HOST, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';

/** Where console.test.ts saves its screenshots. */
const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots');

const SOURCE_SQL = `
  CREATE SCHEMA sales;
  CREATE SCHEMA audit;
  CREATE TABLE sales.customers (id integer PRIMARY KEY, name text NOT NULL);
  INSERT INTO sales.customers SELECT g, 'c' || g FROM generate_series(1, 40) g;
  CREATE TABLE sales.orders (id integer PRIMARY KEY, customer_id integer NOT NULL);
  INSERT INTO sales.orders SELECT g, 1 + g % 40 FROM generate_series(1, 1200) g;
  CREATE TABLE sales.orders_archive (id integer PRIMARY KEY, customer_id integer NOT NULL);
  INSERT INTO sales.orders_archive SELECT g, 1 + g % 40 FROM generate_series(1, 300) g;
  CREATE TABLE audit.log (id integer PRIMARY KEY, line text NOT NULL);
  INSERT INTO audit.log SELECT g, 'line ' || g FROM generate_series(1, 25) g;
  CREATE TABLE public.notes (id integer PRIMARY KEY, body text NOT NULL);
  INSERT INTO public.notes VALUES (1, 'one');
  ANALYZE;
`;

const ALL = ['audit.log', 'public.notes', 'sales.customers', 'sales.orders', 'sales.orders_archive'];

interface SourceTable {
  schema: string;
  name: string;
  estimatedRows: number;
  selected: boolean;
}

const qualified = (t: SourceTable) => `${t.schema}.${t.name}`;

describe('create-job objects: listTables and the table picker', () => {
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let server: FerryServer;
  let http: ApiClient;
  let browser: Browser | undefined;
  /** The port of the unreachable source: nothing listens there. */
  let closedPort: number;

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    dbs = await createDatabasePair('ferry_console_objects');
    await dbs.source.client.query(SOURCE_SQL);
    server = await spawnFerryServer();
    http = api(server.url);
    await http.postOk('/v1/connectionProfiles', { id: 'objects-source', displayName: 'Objects source', engine: 'postgresql', host: PG_HOST, port: dbs.source.params.port, database: dbs.source.params.database, username: PG_USER });
    await http.postOk('/v1/connectionProfiles', {
      id: 'objects-destination',
      displayName: 'Objects destination',
      engine: 'postgresql',
      host: PG_HOST,
      port: dbs.destination.params.port,
      database: dbs.destination.params.database,
      username: PG_USER,
    });
    closedPort = await freePort();
    await http.postOk('/v1/connectionProfiles', { id: 'objects-nowhere', displayName: 'Nowhere', engine: 'postgresql', host: '127.0.0.1', port: closedPort, database: 'x', username: PG_USER });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryServers();
    await dbs?.drop();
  }, 120_000);

  async function listTables(body: unknown, profile = 'objects-source'): Promise<SourceTable[]> {
    return (await http.postOk<{ tables: SourceTable[] }>(`/v1/connectionProfiles/${profile}:listTables`, body)).tables;
  }
  const selectedOf = (tables: SourceTable[]) => tables.filter((t) => t.selected).map(qualified);

  describe('POST /v1/connectionProfiles/{id}:listTables', () => {
    it('lists every table with its estimate, all selected when no pattern is given', async () => {
      const tables = await listTables({});
      expect(tables.map(qualified)).toEqual(ALL);
      expect(tables.every((t) => t.selected)).toBe(true);
      // ANALYZE ran: the planner's estimates are the row counts of these small tables.
      expect(Object.fromEntries(tables.map((t) => [qualified(t), t.estimatedRows]))).toEqual({
        'audit.log': 25,
        'public.notes': 1,
        'sales.customers': 40,
        'sales.orders': 1200,
        'sales.orders_archive': 300,
      });
      // No body at all is the same as {}.
      const bare = await fetch(`${server.url}/v1/connectionProfiles/objects-source:listTables`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      expect(bare.status).toBe(200);
      expect(selectedOf(((await bare.json()) as { tables: SourceTable[] }).tables)).toEqual(ALL);
    });

    it('marks the tables the include and exclude patterns select, with the job selection semantics', async () => {
      expect(selectedOf(await listTables({ include: ['sales'] }))).toEqual(['sales.customers', 'sales.orders', 'sales.orders_archive']);
      expect(selectedOf(await listTables({ include: ['sales.orders*'] }))).toEqual(['sales.orders', 'sales.orders_archive']);
      expect(selectedOf(await listTables({ include: ['sales.orders*'], exclude: ['sales.orders_archive'] }))).toEqual(['sales.orders']);
      expect(selectedOf(await listTables({ exclude: ['sales', 'a*'] }))).toEqual(['public.notes']);
      expect(selectedOf(await listTables({ include: ['*.notes', 'audit.log'] }))).toEqual(['audit.log', 'public.notes']);
      expect(selectedOf(await listTables({ include: ['nothing_here'] }))).toEqual([]);
      // Every table is still listed, selected or not.
      expect((await listTables({ include: ['nothing_here'] })).map(qualified)).toEqual(ALL);
    });

    it('selects exactly what a job with the same selection verifies', async () => {
      const selection = { include: ['sales', 'public.notes'], exclude: ['sales.customers'] };
      await http.postOk('/v1/migrationJobs', { id: 'objects-api-job', displayName: 'Objects API job', type: 'one-time', sourceProfileId: 'objects-source', destinationProfileId: 'objects-destination', selection });
      const report = await http.postOk<{ checks: { code: string; objects?: string[] }[] }>('/v1/migrationJobs/objects-api-job:verify');
      const selectedCheck = report.checks.find((c) => c.code === 'NO_TABLES_SELECTED');
      expect([...(selectedCheck?.objects ?? [])].sort()).toEqual(selectedOf(await listTables(selection)));
      expect(selectedOf(await listTables(selection))).toEqual(['public.notes', 'sales.orders', 'sales.orders_archive']);
      expect((await http.delete('/v1/migrationJobs/objects-api-job')).status).toBe(204);
    });

    it('refuses a malformed pattern and an unknown field with 400, saying what to send', async () => {
      const dots = await http.post<{ error: { code: string; message: string } }>('/v1/connectionProfiles/objects-source:listTables', { include: ['a.b.c'] });
      expect(dots.status).toBe(400);
      expect(dots.body.error.code).toBe('INVALID_ARGUMENT');
      expect(dots.body.error.message).toContain('"a.b.c" has more than one dot');
      const unknown = await http.post<{ error: { code: string; message: string } }>('/v1/connectionProfiles/objects-source:listTables', { includes: ['sales'] });
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.message).toContain('includes');
    });

    it('answers 404 for an unknown profile', async () => {
      const response = await http.post<{ error: { code: string; message: string } }>('/v1/connectionProfiles/no-such-profile:listTables', {});
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('NOT_FOUND');
      expect(response.body.error.message).toContain('no-such-profile');
    });

    it('answers 422 with the connection error when the source cannot be reached', async () => {
      const response = await http.post<{ error: { code: string; message: string } }>('/v1/connectionProfiles/objects-nowhere:listTables', {});
      expect(response.status).toBe(422);
      expect(response.body.error.code).toBe('CONNECTION_REFUSED');
      expect(response.body.error.message).toContain(String(closedPort));
    });
  });

  describe('console: the Objects step', () => {
    let page: Page;
    const consoleErrors: string[] = [];

    beforeAll(async () => {
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      page = await context.newPage();
      page.setDefaultTimeout(30_000);
      page.on('console', (message) => {
        if (message.type() !== 'error') return;
        const url = message.location().url;
        // The unreachable source's listTables answers 422 on purpose.
        if (url.includes('objects-nowhere:listTables') && message.text().includes('status of 422')) return;
        consoleErrors.push(`${message.text()} (${url})`);
      });
      page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
    }, 60_000);

    /** "selected/total" once the picker shows the answer for the patterns typed now; "stale" before. */
    const matchCount = async () => {
      const count = page.getByTestId('match-count');
      if ((await count.getAttribute('data-current')) !== 'true') return 'stale';
      return `${await count.getAttribute('data-selected')}/${await count.getAttribute('data-total')}`;
    };
    /** The tables the picker marks selected (the server's answer for the current patterns). */
    const shownSelected = () => page.locator('[data-testid=source-table][data-selected=true]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-table')));
    const includeText = () => page.getByLabel('Include', { exact: true }).inputValue();

    async function toObjectsStep(sourceId: string, name: string, id: string): Promise<void> {
      await page.goto(`${server.url}/create/job`);
      await page.getByLabel('Migration job name').fill(name);
      await page.getByLabel('Migration job ID').fill(id);
      await page.getByRole('button', { name: 'Next' }).click();
      await page.getByLabel('Source connection profile').selectOption(sourceId);
      await page.getByRole('button', { name: 'Next' }).click();
      await page.getByLabel('Destination connection profile').selectOption('objects-destination');
      await page.getByRole('button', { name: 'Next' }).click();
      await page.getByTestId('table-picker').waitFor();
    }

    it('lists the tables with checkboxes, shows what the patterns match, writes include entries and creates the job with them', async () => {
      await toObjectsStep('objects-source', 'Objects move', 'objects-move');

      // Every table of the source, grouped by schema, each with a checkbox; all selected while both lists are empty.
      await expect.poll(matchCount).toBe('5/5');
      expect(await page.locator('[data-testid=source-table]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-table')))).toEqual(ALL);
      for (const table of ALL) expect(await page.getByLabel(`Table ${table}`, { exact: true }).isChecked()).toBe(false);
      for (const schema of ['audit', 'public', 'sales']) expect(await page.getByLabel(`Schema ${schema}`, { exact: true }).isVisible()).toBe(true);
      expect(await page.locator('[data-table="sales.orders"]').textContent()).toContain('1,200 rows');

      // Typed patterns: the count follows them.
      await page.getByLabel('Include', { exact: true }).fill('sales.orders*');
      await expect.poll(matchCount).toBe('2/5');
      expect(await shownSelected()).toEqual(['sales.orders', 'sales.orders_archive']);
      await page.getByLabel('Exclude', { exact: true }).fill('sales.orders_archive');
      await expect.poll(matchCount).toBe('1/5');
      await page.getByLabel('Exclude', { exact: true }).fill('');
      await page.getByLabel('Include', { exact: true }).fill('');
      await expect.poll(matchCount).toBe('5/5');

      // A schema box selects all its tables, as the include entry "sales".
      await page.getByLabel('Schema sales', { exact: true }).check();
      expect(await includeText()).toBe('sales');
      await expect.poll(matchCount).toBe('3/5');
      for (const table of ['sales.customers', 'sales.orders', 'sales.orders_archive']) expect(await page.getByLabel(`Table ${table}`, { exact: true }).isChecked()).toBe(true);

      // Unchecking one table of a checked schema lists the others instead.
      await page.getByLabel('Table sales.customers', { exact: true }).uncheck();
      expect((await includeText()).split('\n')).toEqual(['sales.orders', 'sales.orders_archive']);
      expect(await page.getByLabel('Schema sales', { exact: true }).isChecked()).toBe(false);
      await expect.poll(matchCount).toBe('2/5');

      // A table box adds "schema.table"; an exclude pattern still applies on top.
      await page.getByLabel('Table public.notes', { exact: true }).check();
      expect((await includeText()).split('\n')).toEqual(['sales.orders', 'sales.orders_archive', 'public.notes']);
      await page.getByLabel('Exclude', { exact: true }).fill('sales.*_archive');
      await expect.poll(matchCount).toBe('2/5');
      expect(await shownSelected()).toEqual(['public.notes', 'sales.orders']);
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'create-job-objects.png'), fullPage: true });

      await page.getByRole('button', { name: 'Create and verify' }).click();
      const report = page.getByTestId('verify-report');
      await report.waitFor({ timeout: 60_000 });
      expect(await report.getAttribute('data-ok')).toBe('true');

      const job = await http.getOk<{ selection: { include: string[]; exclude: string[] } }>('/v1/migrationJobs/objects-move');
      expect(job.selection).toEqual({ include: ['sales.orders', 'sales.orders_archive', 'public.notes'], exclude: ['sales.*_archive'] });
      // What the picker showed selected is what the job migrates.
      const verify = await http.postOk<{ checks: { code: string; objects?: string[] }[] }>('/v1/migrationJobs/objects-move:verify');
      expect([...(verify.checks.find((c) => c.code === 'NO_TABLES_SELECTED')?.objects ?? [])].sort()).toEqual(['public.notes', 'sales.orders']);
      expect(consoleErrors).toEqual([]);
    }, 180_000);

    it('shows a clear message when the source cannot be reached, and the pattern fields still work', async () => {
      await toObjectsStep('objects-nowhere', 'Nowhere move', 'nowhere-move');
      const alert = page.getByTestId('table-picker').getByRole('alert');
      await alert.waitFor();
      expect(await alert.textContent()).toContain("Could not list the source's tables");
      expect(await alert.textContent()).toContain('CONNECTION_REFUSED');
      expect(await page.locator('[data-testid=source-table]').count()).toBe(0);
      await page.getByLabel('Include', { exact: true }).fill('public');
      expect(await includeText()).toBe('public');
      expect(await page.getByRole('button', { name: 'Create and verify' }).isEnabled()).toBe(true);
      expect(consoleErrors).toEqual([]);
    }, 120_000);

    it('offers the SSH tunnel with every field it needs, and refuses to send it half filled', async () => {
      await page.goto(`${server.url}/create/profile`);
      const form = page.getByRole('form', { name: 'New connection profile' });
      await form.getByLabel('Display name').fill('Behind a bastion');
      await form.getByLabel('Profile ID').fill('objects-bastion');
      await form.getByLabel('Host').fill('10.0.0.5');
      await form.getByLabel('Username').fill(PG_USER);
      expect(await form.getByLabel('SSH host').count()).toBe(0);
      await form.getByLabel('Connectivity method').selectOption('ssh-tunnel');
      for (const field of ['SSH host', 'SSH port', 'SSH user', 'SSH private key', 'SSH host key fingerprint']) expect(await form.getByLabel(field, { exact: true }).isVisible()).toBe(true);
      const missing = () =>
        form.locator('input, textarea').evaluateAll((fields) => fields.filter((f) => (f as HTMLInputElement).validity.valueMissing).map((f) => f.closest('.field')?.querySelector('label')?.textContent ?? '?'));
      expect(await missing()).toEqual(['SSH host', 'SSH user', 'SSH private key']);
      await form.getByRole('button', { name: 'Create profile' }).click();
      await form.getByLabel('SSH host', { exact: true }).fill('bastion.example.com');
      await form.getByLabel('SSH user', { exact: true }).fill('tunnel');
      expect(await missing()).toEqual(['SSH private key']);
      await form.getByRole('button', { name: 'Test connection' }).click();
      // The browser kept both requests: nothing reached the server.
      expect((await http.get('/v1/connectionProfiles/objects-bastion')).status).toBe(404);
      expect(await form.getByTestId('connection-test').count()).toBe(0);
      await form.getByLabel('Connectivity method').selectOption('direct');
      expect(await form.getByLabel('SSH host').count()).toBe(0);
      expect(await missing()).toEqual([]);
      expect(consoleErrors).toEqual([]);
    }, 60_000);
  });
});
