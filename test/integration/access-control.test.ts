/**
 * Access control with a real `ferry serve` listening beyond loopback: every API request needs
 * a valid bearer token (created and revoked with `ferry tokens` on the data directory), the
 * console's login page takes one, and a database password never appears in an API response,
 * a log line, the CLI's output, the console, or the metadata database's files.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeDataDir,
  removeDataDir,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';


/** An address of this machine that is not loopback; 0.0.0.0 (reached at 127.0.0.1) when there is none. */
function nonLoopbackAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '0.0.0.0';
}

/** Every 8-character piece of a password's random start: a partial echo counts as a leak too. */
function fragments(password: string): string[] {
  const random = password.slice(0, 20);
  return Array.from({ length: random.length - 7 }, (_, i) => random.slice(i, i + 8));
}

interface CreatedToken {
  token: { id: string; name: string; state: string; lastUsedTime: string | null };
  secret: string;
}

describe('access control beyond loopback', () => {
  const host = nonLoopbackAddress();
  // Twenty random letters first: an error message that quotes a few characters of the body
  // (V8's JSON errors quote ten) quotes these.
  const passwords = [0, 1, 2, 3].map(() => `${randomBytes(10).toString('hex').replace(/[0-9]/g, (d) => String.fromCharCode(103 + Number(d)))}-Secret`);
  let dataDir: string;
  let server: FerryServer;
  let first: CreatedToken;
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let browser: Browser | undefined;
  /** Every API response body the test received, to search for passwords at the end. */
  const responses: string[] = [];

  async function call(method: string, path: string, options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    // As the CLI and the console do: a POST or PATCH is JSON, {} when it has nothing to say.
    const body = options.body ?? (method === 'POST' || method === 'PATCH' ? {} : undefined);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    responses.push(`${method} ${path} -> ${response.status} ${JSON.stringify(Object.fromEntries(response.headers))} ${text}`);
    return { status: response.status, text, json: () => JSON.parse(text) as Record<string, any>, headers: response.headers };
  }

  beforeAll(async () => {
    dataDir = makeDataDir('ferry-access-');
    // The first token is made on the data directory before any server runs.
    first = await runCliJson<CreatedToken>(['tokens', 'create', '--name', 'integration', '--data-dir', dataDir]);
    dbs = await createDatabasePair('ferry_access');
    await dbs.source.client.query('CREATE TABLE public.items (id integer PRIMARY KEY, name text); INSERT INTO public.items SELECT g, g::text FROM generate_series(1, 100) g;');
    server = await spawnFerryServer({ host, dataDir, env: { FERRY_LOG_LEVEL: 'debug' } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllFerryServers();
    if (dataDir) removeDataDir(dataDir);
    await dbs?.drop();
  }, 120_000);

  it('listens beyond loopback and says that it requires a token', () => {
    expect(first.secret).toMatch(/^ferry_[A-Za-z0-9_-]{43}$/);
    const serving = server.logLines().find((line) => line['msg'] === 'ferry is serving');
    expect(serving?.['apiAccess']).toBe('bearer token required');
    expect(String(serving?.['url'])).toContain(host === '0.0.0.0' ? '0.0.0.0' : host);
  });

  it('answers 401 without a token or with a bad one, 200 with a valid one, 401 once it is revoked', async () => {
    const none = await call('GET', '/v1/migrationJobs');
    expect(none.status).toBe(401);
    expect(none.json().error.code).toBe('UNAUTHENTICATED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="ferry"');
    expect((await call('GET', '/v1/migrationJobs', { token: 'ferry_wrong' })).status).toBe(401);
    expect((await call('GET', '/v1/migrationJobs', { token: `${first.secret}x` })).status).toBe(401);
    expect((await call('GET', '/v1/migrationJobs', { headers: { authorization: `Basic ${Buffer.from(`x:${first.secret}`).toString('base64')}` } })).status).toBe(401);
    expect((await call('GET', '/%76%31/connectionProfiles')).status).toBe(401);
    expect((await call('POST', '/v1/connectionProfiles', { body: { displayName: 'x' } })).status).toBe(401);
    expect((await call('GET', '/metrics')).status).toBe(401);

    expect((await call('GET', '/v1/migrationJobs', { token: first.secret })).status).toBe(200);
    expect((await call('GET', '/metrics', { token: first.secret })).status).toBe(200);
    // Health, the API description and the console's files need no token.
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/openapi.json')).status).toBe(200);
    const consolePage = await call('GET', '/jobs');
    expect(consolePage.status).toBe(200);
    expect(consolePage.headers.get('content-type')).toContain('text/html');

    // A second token, created while the server runs, works at once; revoked, it stops at once.
    const second = await runCliJson<CreatedToken>(['tokens', 'create', '--name', 'short-lived', '--data-dir', dataDir]);
    expect((await call('GET', '/v1/connectionProfiles', { token: second.secret })).status).toBe(200);
    const listed = await runCli(['tokens', 'list', '--data-dir', dataDir, '--output', 'json']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(first.secret);
    expect(listed.stdout).not.toContain(second.secret);
    const tokens = (JSON.parse(listed.stdout) as { apiTokens: CreatedToken['token'][] }).apiTokens;
    expect(tokens.map((t) => t.name).sort()).toEqual(['integration', 'short-lived']);
    expect(tokens.find((t) => t.id === first.token.id)?.lastUsedTime).not.toBeNull();
    const revoked = await runCli(['tokens', 'revoke', second.token.id, '--data-dir', dataDir]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`Revoked API token ${second.token.id}`);
    const after = await call('GET', '/v1/connectionProfiles', { token: second.secret });
    expect(after.status).toBe(401);
    expect(after.json().error.message).toContain('revoked');
    expect((await call('GET', '/v1/connectionProfiles', { token: first.secret })).status).toBe(200);
  });

  it('the CLI sends FERRY_TOKEN as a bearer token', async () => {
    const refused = await runCli(['jobs', 'list'], { server: server.url, env: { FERRY_TOKEN: '' } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('UNAUTHENTICATED');
    const allowed = await runCli(['jobs', 'list', '--output', 'json'], { server: server.url, env: { FERRY_TOKEN: first.secret } });
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toEqual({ migrationJobs: [], nextPageToken: null });
  });

  it('never shows a password: not in API responses, logs, CLI output, the console or the files on disk', async () => {
    const token = first.secret;
    const [p0, p1, p2, p3] = passwords as [string, string, string, string];
    const source = {
      id: 'secret-source',
      displayName: 'Secret source',
      engine: 'postgresql',
      host: PG_HOST,
      port: PG_SOURCE_PORT,
      database: dbs.source.params.database,
      username: PG_USER,
      password: p0,
    };
    const created = await call('POST', '/v1/connectionProfiles', { token, body: source });
    expect(created.status).toBe(201);
    expect(created.json().passwordSet).toBe(true);
    expect((await call('GET', '/v1/connectionProfiles/secret-source', { token })).status).toBe(200);
    expect((await call('GET', '/v1/connectionProfiles', { token })).status).toBe(200);
    expect((await call('POST', '/v1/connectionProfiles/secret-source:test', { token })).json().ok).toBe(true);
    expect((await call('PATCH', '/v1/connectionProfiles/secret-source', { token, body: { password: p1 } })).status).toBe(200);
    // Refusals and failures, each carrying a password.
    expect((await call('POST', '/v1/connectionProfiles', { token, body: source })).status).toBe(409);
    expect((await call('POST', '/v1/connectionProfiles', { token, body: { ...source, id: 'bad', port: 'not a port' } })).status).toBe(400);
    // Malformed JSON: V8's parser quotes the body around the error; the API's message must not.
    expect((await call('POST', '/v1/connectionProfiles', { token, body: `{"displayName":"x","password":${p1}}` })).status).toBe(400);
    expect((await call('POST', '/v1/connectionProfiles', { token, body: `{"displayName":"x","password":"${p1}"` })).status).toBe(400);
    const unreachable = await call('POST', '/v1/connectionProfiles:test', { token, body: { ...source, id: undefined, port: 1, password: p2 } });
    expect(unreachable.status).toBe(200);
    expect(unreachable.json().ok).toBe(false);
    const reachable = await call('POST', '/v1/connectionProfiles:test', { token, body: { ...source, id: undefined, password: p2 } });
    expect(reachable.json().ok).toBe(true);

    // The CLI takes a password from FERRY_PASSWORD and does not print it.
    const cli = await runCli(
      ['profiles', 'create', '--id', 'secret-destination', '--engine', 'postgresql', '--host', PG_HOST, '--port', String(PG_DEST_PORT), '--database', dbs.destination.params.database!, '--username', PG_USER],
      { server: server.url, env: { FERRY_TOKEN: token, FERRY_PASSWORD: p3 } },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect(`${cli.stdout}${cli.stderr}`).not.toContain(p3);
    const described = await runCli(['profiles', 'describe', 'secret-destination', '--output', 'json'], { server: server.url, env: { FERRY_TOKEN: token } });
    expect(JSON.parse(described.stdout).passwordSet).toBe(true);
    expect(described.stdout).not.toContain(p3);

    // A job with both: created, verified, run to completion.
    const job = await call('POST', '/v1/migrationJobs', {
      token,
      body: { id: 'secret-job', displayName: 'Secret job', type: 'one-time', sourceProfileId: 'secret-source', destinationProfileId: 'secret-destination' },
    });
    expect(job.status).toBe(201);
    expect((await call('POST', '/v1/migrationJobs/secret-job:verify', { token })).json().ok).toBe(true);
    expect((await call('POST', '/v1/migrationJobs/secret-job:start', { token })).status).toBe(200);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const current = await call('GET', '/v1/migrationJobs/secret-job', { token });
      if (current.json().status === 'COMPLETED') break;
      if (Date.now() > deadline) throw new Error(`the job did not complete: ${current.text}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await call('GET', '/v1/migrationJobs/secret-job/objects', { token });
    await call('GET', '/v1/migrationJobs/secret-job/events', { token });
    await call('GET', '/metrics', { token });

    // The console: the login page takes the token; no page shows a password.
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${server.url}/profiles/secret-source`);
    await page.getByRole('heading', { name: 'Sign in to Ferry' }).waitFor();
    await page.getByLabel('API token').fill('ferry_not-valid');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This token is not valid for this Ferry server').waitFor();
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('profile-details').waitFor();
    expect(await page.evaluate(() => window.localStorage.getItem('ferry.apiToken'))).toBe(token);
    const pages = [await page.content()];
    for (const path of ['/profiles', '/jobs', '/jobs/secret-job', '/profiles/secret-destination?edit=1']) {
      await page.goto(`${server.url}${path}`);
      await page.locator('main h1').first().waitFor();
      await page.waitForTimeout(500);
      pages.push(await page.content());
    }
    expect(pages.join('\n')).toContain('Secret job');
    // Signing out forgets the token: the next request asks for one again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Ferry' }).waitFor();

    const logs = server.output();
    expect(logs.length).toBeGreaterThan(0);
    const files = readdirSync(dataDir).map((name) => readFileSync(join(dataDir, name)).toString('latin1'));
    for (const password of passwords) {
      for (const piece of fragments(password)) {
        for (const response of responses) expect(response, 'an API response').not.toContain(piece);
        expect(logs, 'the server log').not.toContain(piece);
        for (const html of pages) expect(html, 'a console page').not.toContain(piece);
      }
      for (const file of files) expect(file.includes(password), 'a file in the data directory').toBe(false);
    }
    // Nor the token's secret in the logs.
    expect(logs).not.toContain(token);
  }, 180_000);
});

describe('access control on loopback', () => {
  it('stays open without a token', async () => {
    const server = await spawnFerryServer({ host: '127.0.0.1' });
    try {
      const response = await fetch(`${server.url}/v1/migrationJobs`);
      expect(response.status).toBe(200);
      expect(server.logLines().find((line) => line['msg'] === 'ferry is serving')?.['apiAccess']).toBe('open (loopback only)');
    } finally {
      await server.stop();
    }
  });
});
