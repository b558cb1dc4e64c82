/**
 * Access control at the HTTP layer: with an authenticator, /v1 and /metrics need a valid
 * bearer token (checked before the body is read, on the routed path), while /healthz,
 * /openapi.json and the console stay open. And which listen addresses count as loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { isLoopbackHost } from '../../src/main.js';
import type { FerryService } from '../../src/service/ferry-service.js';

const service = {
  listJobs: async () => ({ items: [], nextPageToken: null }),
  listNodes: async () => [],
  jobTakeovers: () => 0,
  createProfile: async () => {
    throw new Error('must not be reached without a token');
  },
} as unknown as FerryService;

describe('bearer tokens', () => {
  let app: FastifyInstance;
  const seen: string[] = [];

  beforeAll(() => {
    app = buildApiServer(service, {
      authenticate: async (token) => {
        seen.push(token);
        return token === 'ferry_good';
      },
    });
  });
  afterAll(() => app.close());

  it('refuses /v1 without a token, with a bad token, or with another scheme', async () => {
    for (const authorization of [undefined, 'Bearer ferry_bad', 'Basic ZmVycnk6Z29vZA==', 'Bearer', 'Bearer ferry_good extra', 'ferry_good']) {
      const response = await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: authorization ? { authorization } : {} });
      expect(response.statusCode, String(authorization)).toBe(401);
      expect(response.json().error.code).toBe('UNAUTHENTICATED');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="ferry"');
    }
    const none = await app.inject({ method: 'GET', url: '/v1/migrationJobs' });
    expect(none.json().error.message).toContain('ferry tokens create');
  });

  it('accepts a valid token, in any case of "Bearer"', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { authorization: 'Bearer ferry_good' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { authorization: 'bearer ferry_good' } })).statusCode).toBe(200);
  });

  it('checks the routed path: percent-escapes do not get around it', async () => {
    const escaped = await app.inject({ method: 'GET', url: '/%76%31/migrationJobs' });
    expect(escaped.statusCode).toBe(401);
  });

  it('refuses before reading the body', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/connectionProfiles',
      headers: { 'content-type': 'application/json' },
      payload: '{not json',
    });
    expect(response.statusCode).toBe(401);
  });

  it('protects /metrics; leaves /healthz and /openapi.json open', async () => {
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer ferry_good' } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback addresses from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.20', 'db.example.com', '128.0.0.1', '::ffff:10.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });
});
