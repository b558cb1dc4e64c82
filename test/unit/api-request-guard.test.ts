/**
 * The API's doors, at the HTTP layer: Host (DNS rebinding), Origin / Sec-Fetch-Site (cross-site
 * requests) and Content-Type, each refused before the service is called; strict request
 * schemas; and every refusal fastify or Node's HTTP parser makes, in Ferry's error shape.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { hostAllowed, parseAllowedHosts } from '../../src/api/request-guard.js';
import { buildOpenApiDocument } from '../../src/api/openapi.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import type { FerryService } from '../../src/service/ferry-service.js';

const calls: string[] = [];
const job = { id: 'job-1' };
/** A service that records calls and answers NOT_FOUND-free minimal shapes where a call is expected to fail anyway. */
const service = new Proxy(
  {},
  {
    get: (_target, name) => async (...args: unknown[]) => {
      calls.push(`${String(name)}(${JSON.stringify(args)})`);
      if (name === 'listJobs') return { items: [], nextPageToken: null };
      throw Object.assign(new Error('not in this test'), { job });
    },
  },
) as unknown as FerryService;

function expectErrorShape(status: number, body: string): { code: string; message: string; details: Record<string, unknown> } {
  const parsed = JSON.parse(body) as { error: { code: keyof typeof ERROR_CODES; message: string; details: Record<string, unknown> } };
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(Object.keys(parsed.error).sort()).toEqual(['code', 'details', 'message']);
  expect(ERROR_CODES[parsed.error.code]?.http, `${parsed.error.code} for ${status}`).toBe(status);
  expect(parsed.error.message.length).toBeGreaterThan(20);
  return parsed.error;
}

describe('Host rule', () => {
  it('takes the listen address, loopback names and allowed hosts with the listen port only', () => {
    const rule = { listenHost: '127.0.0.1', port: 8080, allowedHosts: parseAllowedHosts(['ferry.example.com', 'Proxy.Local:8443']) };
    for (const host of ['127.0.0.1:8080', 'localhost:8080', 'LOCALHOST:8080', '[::1]:8080', 'ferry.example.com', 'ferry.example.com:443', 'proxy.local:8443']) {
      expect(hostAllowed(host, rule), host).toBe(true);
    }
    for (const host of [undefined, '', 'evil.example:8080', 'localhost:8081', '127.0.0.1', '127.0.0.2:8080', 'proxy.local:8080', 'localhost:8080@evil', 'a b:8080', '10.0.0.5:8080']) {
      expect(hostAllowed(host, rule), String(host)).toBe(false);
    }
    // A wildcard listen address: any IP address of this machine with the port, never a name.
    expect(hostAllowed('10.0.0.5:8080', { listenHost: '0.0.0.0', port: 8080 })).toBe(true);
    expect(hostAllowed('[fe80::1]:8080', { listenHost: '::', port: 8080 })).toBe(true);
    expect(hostAllowed('evil.example:8080', { listenHost: '0.0.0.0', port: 8080 })).toBe(false);
    expect(hostAllowed('[::1]:9000', { listenHost: '::1', port: 9000 })).toBe(true);
    // Port 80: browsers leave it out.
    expect(hostAllowed('localhost', { listenHost: '127.0.0.1', port: 80 })).toBe(true);
    expect(() => parseAllowedHosts(['http://ferry.example'])).toThrow(/--allowed-host "http:\/\/ferry.example" is not a host name/);
  });
});

describe('refusals before the service', () => {
  let app: FastifyInstance;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    app = buildApiServer(service, { logger: pino({ level: 'info' }, sink), hostRule: { listenHost: '127.0.0.1', allowedHosts: ['ferry.example.com'] } });
    await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => app.close());

  const port = () => (app.server.address() as { port: number }).port;

  it('refuses a Host that does not name the server, for reads and writes, with 403', async () => {
    for (const [method, url] of [
      ['GET', '/v1/migrationJobs'],
      ['GET', '/healthz'],
      ['GET', '/nothing'],
      ['DELETE', '/v1/migrationJobs/job-1'],
    ] as const) {
      const response = await app.inject({ method, url, headers: { host: `evil.example:${port()}` } });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      const error = expectErrorShape(403, response.body);
      expect(error.code).toBe('PERMISSION_DENIED');
      expect(error.message).toContain(`Host "evil.example:${port()}"`);
      expect(error.message).toContain('--allowed-host');
      expect(error.details['reason']).toBe('HOST_NOT_ALLOWED');
    }
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { host: `localhost:${port()}` } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { host: 'ferry.example.com' } })).statusCode).toBe(200);
    expect(calls.filter((c) => !c.startsWith('listJobs'))).toEqual([]);
  });

  it('refuses state-changing requests from another origin, by Origin or Sec-Fetch-Site, with 403', async () => {
    calls.length = 0;
    const host = `127.0.0.1:${port()}`;
    for (const headers of [
      { origin: 'http://evil.example:8080' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:${port() + 1}` },
      { origin: `http://localhost:${port()}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      for (const [method, url] of [
        ['POST', '/v1/migrationJobs/job-1:start'],
        ['DELETE', '/v1/migrationJobs/job-1'],
        ['PATCH', '/v1/migrationJobs/job-1'],
        ['PUT', '/v1/migrationJobs/job-1'],
      ] as const) {
        const response = await app.inject({ method, url, headers: { host, 'content-type': 'application/json', ...headers }, payload: '{}' });
        expect(response.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).toBe(403);
        const error = expectErrorShape(403, response.body);
        expect(error.code).toBe('PERMISSION_DENIED');
        expect(error.message).toMatch(/^Refused a/);
      }
    }
    // Reads from another origin are not refused (the browser keeps the answer from the page).
    expect((await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { host, origin: 'http://evil.example' } })).statusCode).toBe(200);
    expect(calls.filter((c) => !c.startsWith('listJobs'))).toEqual([]);
    // Same origin, or no browser at all: the request reaches the service.
    for (const headers of [{ origin: `http://${host}` }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, {}]) {
      calls.length = 0;
      await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', headers: { host, 'content-type': 'application/json', ...headers }, payload: '{}' });
      expect(calls, JSON.stringify(headers)).toEqual(['applyJobAction(["job-1","start","api"])']);
    }
    const logged = logLines.filter((line) => line['msg'] === 'refused a request');
    expect(logged.length).toBeGreaterThan(0);
  });

  it('refuses a POST or PATCH that is not JSON with 415, a body-less one too', async () => {
    calls.length = 0;
    const host = `127.0.0.1:${port()}`;
    for (const [headers, payload] of [
      [{}, undefined],
      [{ 'content-type': 'text/plain;charset=UTF-8' }, 'x'],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, 'a=1'],
      [{ 'content-type': 'multipart/form-data; boundary=x' }, '--x--'],
      [{ 'content-type': 'application/jsonp' }, '{}'],
    ] as const) {
      for (const [method, url] of [
        ['POST', '/v1/migrationJobs/job-1:start'],
        ['PATCH', '/v1/migrationJobs/job-1'],
      ] as const) {
        const response = await app.inject({ method, url, headers: { host, ...headers }, ...(payload !== undefined ? { payload } : {}) });
        expect(response.statusCode, `${method} ${JSON.stringify(headers)}`).toBe(415);
        const error = expectErrorShape(415, response.body);
        expect(error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
        expect(error.message).toContain('Content-Type: application/json');
      }
    }
    expect(calls).toEqual([]);
  });

  it('logs requests at debug, not info', async () => {
    logLines.length = 0;
    await app.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { host: `127.0.0.1:${port()}` } });
    expect(logLines).toEqual([]);
    const sink: string[] = [];
    const debugApp = buildApiServer(service, {
      logger: pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (sink.push(chunk.toString()), done()) })),
    });
    await debugApp.inject({ method: 'GET', url: '/v1/migrationJobs' });
    await debugApp.close();
    const lines = sink.join('').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line['level'], line['msg'], line['statusCode']])).toEqual([[20, 'request completed', 200]]);
  });

  it("answers in the error shape what Node's HTTP parser refuses", async () => {
    const raw = (request: string) =>
      new Promise<string>((resolveRaw, reject) => {
        const socket = connect(port(), '127.0.0.1');
        let data = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (data += chunk));
        socket.on('error', reject);
        socket.on('close', () => resolveRaw(data));
        socket.setTimeout(5_000, () => socket.destroy());
        socket.write(request);
      });
    const cases: [string, number][] = [
      [`GET /v1/migrationJobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\u0001b\r\n\r\n`, 400],
      [`GET /v1/migrationJobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      [`POST /v1/migrationJobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400],
      [`NOPE\r\n\r\n`, 400],
    ];
    for (const [request, status] of cases) {
      const answer = await raw(request);
      expect(answer.split('\r\n')[0], request.slice(0, 60)).toBe(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}`);
      expectErrorShape(status, answer.slice(answer.indexOf('\r\n\r\n') + 4));
    }
  });
});

describe('strict request bodies and paths', () => {
  let app: FastifyInstance;
  beforeAll(() => {
    app = buildApiServer(service);
  });
  afterAll(() => app.close());

  const profile = { displayName: 'Source', engine: 'postgresql', host: 'db1', username: 'u' };

  it('refuses an unknown field, naming it and the field that was meant, without creating anything', async () => {
    calls.length = 0;
    const response = await app.inject({ method: 'POST', url: '/v1/connectionProfiles', payload: { ...profile, pasword: 'x', tls: { mode: 'none', caCert: 'x' } } });
    expect(response.statusCode).toBe(400);
    const error = expectErrorShape(400, response.body);
    expect(error.details['fields']).toEqual([
      { path: 'tls.caCert', in: 'body', message: expect.stringContaining('did you mean "caCertificate"?') },
      { path: 'pasword', in: 'body', message: expect.stringContaining('did you mean "password"?') },
    ]);
    expect(error.message).toContain('body field "pasword": is not a field of this request (nothing was changed); did you mean "password"?');
    for (const [url, body] of [
      ['/v1/migrationJobs/job-1:start', { force: true }],
      ['/v1/migrationJobs/job-1', { displayName: 'x', dumpParalelism: 2 }],
    ] as const) {
      const other = await app.inject({ method: url.includes(':') ? 'POST' : 'PATCH', url, payload: body });
      expect(other.statusCode, url).toBe(400);
    }
    const query = await app.inject({ method: 'GET', url: '/v1/migrationJobs?pagesize=5' });
    expect(query.statusCode).toBe(400);
    expect(expectErrorShape(400, query.body).message).toContain('query parameter "pagesize"');
    expect(calls).toEqual([]);
  });

  it('refuses display names of only white space and connection fields with control characters', async () => {
    for (const [body, field] of [
      [{ ...profile, displayName: ' \t\u00a0 ' }, 'displayName'],
      [{ ...profile, host: 'db1\u0000.evil' }, 'host'],
      [{ ...profile, host: 'db1\n' }, 'host'],
      [{ ...profile, username: 'u\u0000' }, 'username'],
      [{ ...profile, database: 'a\u007f' }, 'database'],
    ] as const) {
      const response = await app.inject({ method: 'POST', url: '/v1/connectionProfiles', payload: body });
      expect(response.statusCode, field).toBe(400);
      expect((expectErrorShape(400, response.body).details['fields'] as { path: string }[]).map((f) => f.path)).toEqual([field]);
    }
    expect(calls).toEqual([]);
  });

  it('takes ids up to 200 characters, and refuses longer ones with 400 naming the limit', async () => {
    calls.length = 0;
    const id200 = 'a'.repeat(200);
    await app.inject({ method: 'GET', url: `/v1/migrationJobs/${id200}` });
    await app.inject({ method: 'POST', url: `/v1/migrationJobs/${id200}:restart`, payload: {} });
    await app.inject({ method: 'GET', url: `/v1/migrationJobs/${encodeURIComponent('é'.repeat(100))}` });
    expect(calls).toEqual([`getJob(["${id200}"])`, `applyJobAction(["${id200}","restart","api"])`, `getJob(["${'é'.repeat(100)}"])`]);
    for (const id of ['a'.repeat(201), 'a'.repeat(650), '%41'.repeat(300)]) {
      const response = await app.inject({ method: 'GET', url: `/v1/migrationJobs/${id}/events` });
      expect(response.statusCode, `${id.length}`).toBe(400);
      expect(expectErrorShape(400, response.body).message).toContain('200');
    }
  });

  it('answers a malformed %-escape with 400 in the error shape', async () => {
    for (const url of ['/v1/migrationJobs/%zz', '/v1/migrationJobs/%E0%A4%A', '/v1/%ff']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(400);
      expect(expectErrorShape(400, response.body).message).toContain('%-escape');
    }
  });

  it('documents strict bodies, the empty body of custom methods and the 403, 405 and 415 answers', () => {
    const document = buildOpenApiDocument();
    const schemas = document.components.schemas as Record<string, Record<string, unknown>>;
    for (const name of ['CreateConnectionProfileRequest', 'UpdateConnectionProfileRequest', 'CreateMigrationJobRequest', 'UpdateMigrationJobRequest', 'EmptyRequest']) {
      expect(schemas[name]?.['additionalProperties'], name).toBe(false);
    }
    const start = (document.paths['/v1/migrationJobs/{id}:start'] as Record<string, Record<string, any>>)['post']!;
    expect(start['requestBody'].required).toBe(false);
    expect(start['requestBody'].content['application/json'].schema.$ref).toBe('#/components/schemas/EmptyRequest');
    expect(Object.keys(start['responses'])).toEqual(expect.arrayContaining(['403', '405', '413', '415']));
    const create = (document.paths['/v1/connectionProfiles'] as Record<string, Record<string, any>>)['post']!;
    expect(create['requestBody'].required).toBe(true);
  });
});
