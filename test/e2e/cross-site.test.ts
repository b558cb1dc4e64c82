/**
 * The API on loopback can be driven only by the user's own tools: headless Chromium (Debian's,
 * through playwright-core) opens a page served from another origin (a tiny HTTP server on
 * another loopback port) whose script tries to start, stop and delete jobs of a real
 * `ferry serve` with no-cors fetch, navigator.sendBeacon, a CORS fetch and form posts; and a
 * page under a rebinding name (evil.example resolved to 127.0.0.1 by Chromium) tries to read
 * and delete through Ferry's own port. Every attempt reaches the server and is refused with
 * 403 (or 415): the jobs keep their status and their history records nothing. The CLI and the
 * console's own origin keep working.
 */
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  freePort,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  waitFor,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, type TestDatabase } from '../helpers/postgres.js';


interface Job {
  id: string;
  status: string;
  displayName: string;
}

/** A raw HTTP request with any Host header (fetch does not let a caller set Host). */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveRequest, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolveRequest({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end(body);
  });
}

describe('cross-site requests and DNS rebinding', () => {
  let dbs: { source: TestDatabase; destination: TestDatabase; drop(): Promise<void> };
  let server: FerryServer;
  let http: ApiClient;
  let browser: Browser;
  let attacker: Server;
  let attackerPort: number;

  beforeAll(async () => {
    dbs = await createDatabasePair('ferry_xsite');
    await dbs.source.client.query('CREATE TABLE public.items (id integer PRIMARY KEY, name text); INSERT INTO public.items SELECT g, g::text FROM generate_series(1, 50) g;');
    server = await spawnFerryServer({ env: { FERRY_LOG_LEVEL: 'debug' } });
    http = api(server.url);
    attackerPort = await freePort();
    attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>A page on another origin</title><iframe name="sink"></iframe>');
    });
    await new Promise<void>((resolveListen) => attacker.listen(attackerPort, '127.0.0.1', resolveListen));
    // DNS rebinding without DNS: evil.example answers 127.0.0.1, as a rebinding name would.
    browser = await launchChromium(['--host-resolver-rules=MAP evil.example 127.0.0.1']);

    // Profiles and jobs through the CLI: it sends JSON (and {} on custom methods) and keeps working.
    for (const [id, port, database] of [
      ['xs-src', PG_SOURCE_PORT, dbs.source.params.database],
      ['xs-dst', PG_DEST_PORT, dbs.destination.params.database],
    ] as const) {
      await runCliJson(['profiles', 'create', '--id', id, '--engine', 'postgresql', '--host', PG_HOST, '--port', String(port), '--database', database, '--username', PG_USER], {
        server: server.url,
      });
    }
    for (const [id, type] of [
      ['idle', 'one-time'],
      ['live', 'continuous'],
    ] as const) {
      await runCliJson(['jobs', 'create', '--id', id, '--display-name', id, '--type', type, '--source', 'xs-src', '--destination', 'xs-dst'], { server: server.url });
    }
    await runCliJson(['jobs', 'start', 'live'], { server: server.url });
    await waitFor('job live in Incremental load', async () => {
      const job = await http.getOk<Job & { phase: string | null }>('/v1/migrationJobs/live');
      return job.status === 'RUNNING' && job.phase === 'INCREMENTAL_LOAD' ? job : undefined;
    }, { timeoutMs: 90_000 });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolveClose) => (attacker ? attacker.close(() => resolveClose()) : resolveClose()));
    if (server) {
      // Removes the slot and publication on the source.
      await runCli(['jobs', 'delete', 'live'], { server: server.url }).catch(() => undefined);
    }
    await stopAllFerryServers();
    await dbs?.drop();
  }, 120_000);

  async function history(id: string): Promise<unknown[]> {
    return (await http.getOk<{ events: unknown[] }>(`/v1/migrationJobs/${id}/events`)).events;
  }

  /** The refusals the server logged (warn 'refused a request'). */
  function refusals(): { method: string; url: string; details: { reason?: string } }[] {
    return server.logLines().filter((line) => line['msg'] === 'refused a request') as never;
  }

  it('refuses start, stop and delete from a page of another origin (no-cors fetch, sendBeacon, CORS fetch, forms)', async () => {
    const before = { idle: await history('idle'), live: await history('live') };
    const refusedBefore = refusals().length;
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${attackerPort}/`);
    const outcomes = await page.evaluate(async (ferry) => {
      const results: string[] = [];
      const attempt = async (name: string, run: () => Promise<unknown> | unknown) => {
        try {
          const value = await run();
          results.push(`${name}: ${value instanceof Response ? `opaque=${value.type}` : String(value)}`);
        } catch (error) {
          results.push(`${name}: threw ${(error as Error).name}`);
        }
      };
      await attempt('no-cors start', () => fetch(`${ferry}/v1/migrationJobs/idle:start`, { method: 'POST', mode: 'no-cors' }));
      await attempt('no-cors stop with text body', () => fetch(`${ferry}/v1/migrationJobs/live:stop`, { method: 'POST', mode: 'no-cors', body: '{}' }));
      await attempt('no-cors start as form data', () =>
        fetch(`${ferry}/v1/migrationJobs/idle:start`, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' }),
      );
      await attempt('beacon start', () => navigator.sendBeacon(`${ferry}/v1/migrationJobs/idle:start`));
      await attempt('beacon stop', () => navigator.sendBeacon(`${ferry}/v1/migrationJobs/live:stop`, '{}'));
      await attempt('cors delete', () => fetch(`${ferry}/v1/migrationJobs/live`, { method: 'DELETE' }));
      await attempt('cors json start', () => fetch(`${ferry}/v1/migrationJobs/idle:start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
      for (const [action, enctype] of [
        ['idle:start', 'application/x-www-form-urlencoded'],
        ['live:stop', 'text/plain'],
        ['live:stop', 'multipart/form-data'],
      ]) {
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = `${ferry}/v1/migrationJobs/${action}`;
        form.enctype = enctype!;
        form.target = 'sink';
        const input = document.createElement('input');
        input.name = '{"a":"';
        input.value = '"}';
        form.appendChild(input);
        document.body.appendChild(form);
        const loaded = new Promise((resolveLoad) => document.querySelector('iframe')!.addEventListener('load', resolveLoad, { once: true }));
        form.submit();
        await Promise.race([loaded, new Promise((r) => setTimeout(r, 5_000))]);
        results.push(`form ${action} ${enctype}: submitted`);
      }
      return results;
    }, server.url);
    await page.close();

    // Every request that left the browser reached Ferry and was refused there (the CORS
    // preflights of the DELETE and the JSON POST failed before the request itself was sent).
    const reached = await waitFor('the refusals in the server log', async () => {
      const seen = refusals().slice(refusedBefore);
      return seen.length >= 8 ? seen : undefined;
    }, { timeoutMs: 20_000 });
    expect(outcomes).toContain('cors delete: threw TypeError');
    expect(outcomes).toContain('cors json start: threw TypeError');
    expect(outcomes).toContain('beacon start: true');
    expect(reached.every((line) => line.details.reason === 'CROSS_ORIGIN')).toBe(true);
    expect(new Set(reached.map((line) => `${line.method} ${line.url}`))).toEqual(
      new Set(['POST /v1/migrationJobs/idle:start', 'POST /v1/migrationJobs/live:stop']),
    );

    // Nothing happened: same statuses, same history, the job still exists.
    expect((await http.getOk<Job>('/v1/migrationJobs/idle')).status).toBe('NOT_STARTED');
    expect((await http.getOk<Job>('/v1/migrationJobs/live')).status).toBe('RUNNING');
    expect(await history('idle')).toEqual(before.idle);
    expect((await history('live')).length).toBe(before.live.length);
  });

  it('answers a cross-origin state change with 403 and a message that says what to do', async () => {
    const refused = await rawRequest(server.port, 'POST', '/v1/migrationJobs/idle:start', {
      host: `127.0.0.1:${server.port}`,
      origin: `http://127.0.0.1:${attackerPort}`,
      'content-type': 'application/json',
    }, '{}');
    expect(refused.status).toBe(403);
    const { error } = JSON.parse(refused.body) as { error: { code: string; message: string; details: Record<string, unknown> } };
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toContain(`http://127.0.0.1:${attackerPort}`);
    expect(error.message).toContain('ferry CLI');
    expect((await http.getOk<Job>('/v1/migrationJobs/idle')).status).toBe('NOT_STARTED');
  });

  it('refuses a rebinding Host for reads and writes, from Chromium and from a raw client', async () => {
    const before = await history('idle');
    const context = await browser.newContext();
    const page = await context.newPage();
    // The attacker's page under its own name, which now resolves to Ferry's address and port.
    const landing = await page.goto(`http://evil.example:${server.port}/`);
    expect(landing?.status()).toBe(403);
    const seen = await page.evaluate(async () => {
      const read = await fetch('/v1/connectionProfiles');
      const remove = await fetch('/v1/migrationJobs/idle', { method: 'DELETE' });
      const patch = await fetch('/v1/migrationJobs/idle', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"displayName":"owned"}' });
      return [
        { status: read.status, body: await read.text() },
        { status: remove.status, body: await remove.text() },
        { status: patch.status, body: await patch.text() },
      ];
    });
    await context.close();
    for (const answer of seen) {
      expect(answer.status).toBe(403);
      const { error } = JSON.parse(answer.body) as { error: { code: string; message: string; details: { reason: string } } };
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.details.reason).toBe('HOST_NOT_ALLOWED');
      expect(error.message).toContain(`evil.example:${server.port}`);
      expect(error.message).toContain('--allowed-host');
      expect(answer.body).not.toContain('xs-src');
    }
    for (const [method, path] of [
      ['GET', '/v1/connectionProfiles'],
      ['GET', '/v1/migrationJobs/idle'],
      ['POST', '/v1/migrationJobs/idle:start'],
      ['DELETE', '/v1/migrationJobs/idle'],
    ] as const) {
      const answer = await rawRequest(server.port, method, path, { host: `evil.example:${server.port}`, 'content-type': 'application/json' }, method === 'POST' ? '{}' : undefined);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(answer.body).toContain('HOST_NOT_ALLOWED');
    }
    const job = await http.getOk<Job>('/v1/migrationJobs/idle');
    expect(job.status).toBe('NOT_STARTED');
    expect(job.displayName).toBe('idle');
    expect(await history('idle')).toEqual(before);
  });

  it("still takes the console's own requests and the CLI's", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/jobs`);
    const status = await page.evaluate(async () => {
      const response = await fetch('/v1/migrationJobs/idle', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"displayName":"renamed by the console"}' });
      return response.status;
    });
    await page.close();
    expect(status).toBe(200);
    expect((await http.getOk<Job>('/v1/migrationJobs/idle')).displayName).toBe('renamed by the console');
    const described = await runCliJson<Job>(['jobs', 'describe', 'live'], { server: server.url });
    expect(described.status).toBe('RUNNING');
    const stopped = await runCliJson<Job>(['jobs', 'stop', 'live'], { server: server.url });
    expect(stopped.status).toBe('STOPPING');
  });
});
