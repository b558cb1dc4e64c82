/**
 * The console's static files on the API server: index.html for client routes, hashed assets
 * cached for good, nothing outside web/dist, and the server's own paths never shadowed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { registerConsoleAssets } from '../../src/api/console-assets.js';
import type { FerryService } from '../../src/service/ferry-service.js';

const INDEX = '<!doctype html><html><body><div id="root"></div><script type="module" src="/assets/app-1a2b.js"></script></body></html>';

/** Only what /metrics asks for: the console tests call no API route. */
const service = {
  listJobs: async () => ({ items: [], nextPageToken: null }),
  listNodes: async () => [],
  jobTakeovers: () => 0,
} as unknown as FerryService;

describe('console assets', () => {
  let base: string;
  let app: FastifyInstance;
  let bare: FastifyInstance;

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'ferry-console-'));
    const root = join(base, 'dist');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), INDEX);
    writeFileSync(join(root, 'assets', 'app-1a2b.js'), 'console.log("app")');
    writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(base, 'secret.txt'), 'outside the console');
    app = buildApiServer(service, { extraRoutes: (server) => registerConsoleAssets(server, { root }) });
    bare = buildApiServer(service, { extraRoutes: (server) => registerConsoleAssets(server, { root: join(base, 'missing') }) });
  });

  afterAll(async () => {
    await app.close();
    await bare.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('serves index.html at / and for client routes, with security headers and no caching', async () => {
    for (const url of ['/', '/jobs', '/jobs/shop-move', '/create/job', '/profiles/a?edit=1']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.body).toBe(INDEX);
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['content-security-policy']).toContain("default-src 'self'");
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await app.inject({ method: 'HEAD', url: '/jobs' })).statusCode).toBe(200);
  });

  it('serves files with their type; hashed assets are immutable', async () => {
    const script = await app.inject({ method: 'GET', url: '/assets/app-1a2b.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toContain('immutable');
    const icon = await app.inject({ method: 'GET', url: '/favicon.svg' });
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('answers 404, not index.html, for a missing file and for anything outside the console directory', async () => {
    for (const url of ['/assets/missing.js', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt', '/%2e%2e/secret.txt', '/a%00b']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(404);
      expect(response.body).not.toContain('outside the console');
      expect(response.json().error.code).toBe('NOT_FOUND');
    }
  });

  it('never answers the server paths: /v1, /openapi.json, /healthz, /metrics', async () => {
    for (const url of ['/v1', '/v1/', '/v1/nothing/here', '/v1/migrationJobs/a/b/c', '/openapi.json/x', '/healthz/x']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(404);
      expect(response.json().error.code).toBe('NOT_FOUND');
    }
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).json().openapi).toBe('3.1.0');
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).headers['content-type']).toContain('text/plain');
    // Only GET and HEAD are the console's.
    expect((await app.inject({ method: 'POST', url: '/jobs' })).statusCode).toBe(404);
  });

  it('says how to build the console when web/dist is missing', async () => {
    const response = await bare.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body.replace(/<[^>]+>/g, '')).toContain('Console not built: run npm run build');
    expect((await bare.inject({ method: 'GET', url: '/jobs/x' })).statusCode).toBe(503);
    expect((await bare.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
