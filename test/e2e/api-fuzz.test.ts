/**
 * Fuzzes a real `ferry serve` from its own /openapi.json: at least 2,000 malformed requests
 * across every route (bad JSON, wrong types, huge strings, unicode, NUL bytes, unknown fields,
 * wrong methods, bad %-encoding, overlong ids, missing and odd content types, odd headers,
 * requests Node's HTTP parser refuses). Fails on any 5xx but a documented 501 NOT_IMPLEMENTED,
 * on the server dying, and on any error body outside the contract
 * {"error": {"code", "message", "details"}} with the status its code stands for.
 *
 * The generator is seeded: the seed is printed, and FERRY_FUZZ_SEED=<seed> replays a run.
 * Bounded: it stops sending after FUZZ_SECONDS (and after MAX_REQUESTS).
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.js';
import { api, spawnFerryServer, stopAllFerryServers, type FerryServer } from '../helpers/ferry-server.js';

const SEED = Number(process.env.FERRY_FUZZ_SEED ?? 20261202);
const MIN_REQUESTS = 2_000;
const MAX_REQUESTS = 3_000;
const FUZZ_SECONDS = 45;
const CONCURRENCY = 8;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function randomSource(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (max: number) => Math.floor(next() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Random = ReturnType<typeof randomSource>;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = Record<string, any>;

interface Operation {
  method: string;
  path: string;
  operationId: string;
  bodySchema: Schema | null;
  hasPathId: boolean;
}

interface FuzzRequest {
  /** What was tried, to reproduce a failure by reading it. */
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** Sent over a raw socket, byte for byte (requests a client library refuses to send). */
  raw?: string;
}

interface FuzzAnswer {
  status: number;
  body: string;
}

const WEIRD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0007\u001b[31m',
  '\n\r\t',
  '\ud800',
  '\udfff\ud800',
  '😀'.repeat(50),
  'ﷺ‮evil',
  '%zz',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  "'; DROP TABLE profiles; --",
  '${jndi:ldap://x}',
  '__proto__',
  'constructor',
  'Ａ'.repeat(300),
];

const ODD_CONTENT_TYPES = [
  undefined,
  '',
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zz',
  'application/json; charset=utf-16',
  'application/json, text/plain',
  'application/jsonx',
  'APPLICATION/JSON',
  'application/*',
  '*/*',
  'application/json;;;',
];

function weirdValue(random: Random, depth = 0): Json {
  switch (random.int(depth > 2 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 65536, 99999999999]);
    case 3:
      return random.pick(WEIRD_STRINGS);
    case 4:
      return 'x'.repeat(random.pick([201, 256, 1025, 70_000]));
    case 5:
      return String.fromCharCode(...Array.from({ length: 1 + random.int(40) }, () => random.int(0xffff)));
    case 6:
      return Array.from({ length: random.int(4) }, () => weirdValue(random, depth + 1));
    case 7:
      return Object.fromEntries(Array.from({ length: random.int(4) }, (_, i) => [`k${i}${random.pick(WEIRD_STRINGS)}`, weirdValue(random, depth + 1)]));
    default:
      return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } } as unknown as Json;
  }
}

/** A value that satisfies a JSON schema (enough of JSON Schema for Ferry's request bodies). */
function validValue(schema: Schema | undefined, components: Record<string, Schema>, random: Random): Json {
  if (schema === undefined) return null;
  if (schema['$ref']) return validValue(components[String(schema['$ref']).split('/').at(-1)!], components, random);
  if (schema['anyOf']) return validValue((schema['anyOf'] as Schema[]).find((s) => s['type'] !== 'null') ?? schema['anyOf'][0], components, random);
  if (schema['enum']) return random.pick(schema['enum'] as Json[]);
  if (schema['default'] !== undefined && random.chance(0.3)) return schema['default'] as Json;
  switch (schema['type']) {
    case 'object': {
      const out: Record<string, Json> = {};
      const properties = (schema['properties'] ?? {}) as Record<string, Schema>;
      const required = new Set((schema['required'] ?? []) as string[]);
      for (const [name, property] of Object.entries(properties)) {
        if (required.has(name) || random.chance(0.4)) out[name] = validValue(property, components, random);
      }
      return out;
    }
    case 'array':
      return [validValue(schema['items'] as Schema, components, random)];
    case 'integer':
    case 'number':
      return Math.max(Number(schema['minimum'] ?? 1), Math.min(Number(schema['maximum'] ?? 4), 4));
    case 'boolean':
      return true;
    case 'string':
      // Loopback and ids of the shape the schemas take: a body that passes still reaches nothing slow.
      return schema['pattern'] === '^[a-z][a-z0-9-]{0,62}$' ? `fz-${random.int(1e6)}` : '127.0.0.1';
    default:
      return 'x';
  }
}

/** Paths in a body to mutate: every key of the object, nested objects too. */
function keyPaths(value: Json, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, inner]) => [[...prefix, key], ...keyPaths(inner, [...prefix, key])]);
}

function setAt(root: Record<string, Json>, path: string[], value: Json | undefined): void {
  let current: Record<string, Json> = root;
  for (const key of path.slice(0, -1)) {
    const inner = current[key];
    // An earlier mutation replaced a parent: set the value there instead.
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) break;
    current = inner;
  }
  if (value === undefined) delete current[path.at(-1)!];
  else current[path.at(-1)!] = value;
}

/** A body that breaks the schema in at least one way (so nothing reaches a database). */
function malformedBody(operation: Operation, components: Record<string, Schema>, random: Random): { label: string; text: string } {
  const base = operation.bodySchema ? validValue(operation.bodySchema, components, random) : {};
  const body = (base !== null && typeof base === 'object' && !Array.isArray(base) ? base : {}) as Record<string, Json>;
  const labels: string[] = [];
  const mutations = 1 + random.int(3);
  for (let i = 0; i < mutations; i++) {
    const paths = keyPaths(body);
    const kind = random.int(4);
    if (kind === 0 || paths.length === 0) {
      const name = random.pick(['pasword', 'passwd', 'extra', 'Host', 'id ', '__proto__', 'constructor', random.pick(WEIRD_STRINGS)]);
      body[name] = weirdValue(random);
      labels.push(`unknown field ${JSON.stringify(name)}`);
    } else if (kind === 1) {
      const path = random.pick(paths);
      setAt(body, path, weirdValue(random));
      labels.push(`${path.join('.')} = weird value`);
    } else if (kind === 2) {
      const path = random.pick(paths);
      setAt(body, path, undefined);
      body[`${path.join('_')}_typo`] = 1;
      labels.push(`${path.join('.')} removed, a typo added`);
    } else {
      const path = random.pick(paths);
      setAt(body, path, random.pick([[], {}, 12345, true, null, '\u0000']));
      labels.push(`${path.join('.')} wrong type`);
    }
  }
  return { label: labels.join(', '), text: JSON.stringify(body) };
}

const BROKEN_JSON = [
  '{',
  '{"displayName": ',
  '{"a":1,}',
  "{'a':1}",
  '[1,2',
  'nul',
  '\ufeff{}',
  '{"a":"\\ud800"}',
  '{"a":1}{"b":2}',
  '"just a string"',
  '42',
  'null',
  '[]',
  '{"__proto__":{"x":1}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '['.repeat(5000) + ']'.repeat(5000),
  '{"a":' + '9'.repeat(5000) + '}',
  '\u0000\u0001\u0002',
];

function encodedId(random: Random): { label: string; segment: string } {
  return random.pick([
    () => ({ label: 'id of 200', segment: 'a'.repeat(200) }),
    () => ({ label: 'id of 201', segment: 'a'.repeat(201) }),
    () => ({ label: 'id of 700', segment: 'b'.repeat(700) }),
    () => ({ label: 'id of 5000', segment: 'c'.repeat(5000) }),
    () => ({ label: '%-encoded id of 300', segment: '%41'.repeat(300) }),
    () => ({ label: 'bad %-escape', segment: `x%${random.pick(['zz', 'G1', '', 'E0%A4%A', 'C3%28', 'ED%A0%80', 'ff'])}` }),
    () => ({ label: 'NUL in id', segment: 'a%00b' }),
    () => ({ label: 'encoded slash', segment: 'a%2Fb' }),
    () => ({ label: 'unicode id', segment: encodeURIComponent(random.pick(WEIRD_STRINGS.filter((s) => s !== '' && !s.includes('\ud800') && !s.includes('\udfff'))) ?? 'x') }),
    () => ({ label: 'dot segment', segment: '..' }),
    () => ({ label: 'colons', segment: 'a:b:c' }),
    () => ({ label: 'existing job', segment: 'fz-job' }),
    () => ({ label: 'existing profile', segment: 'fz-src' }),
  ])();
}

function concretePath(operation: Operation, random: Random): { label: string; path: string } {
  if (!operation.hasPathId) return { label: '', path: operation.path };
  const id = encodedId(random);
  return { label: id.label, path: operation.path.replace('{id}', id.segment) };
}

const METHODS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH'];

function fuzzRequest(operations: Operation[], components: Record<string, Schema>, random: Random, port: number): FuzzRequest {
  const operation = random.pick(operations);
  const { label: pathLabel, path } = concretePath(operation, random);
  const json = { 'content-type': 'application/json' };
  const at = `${operation.operationId}${pathLabel ? ` (${pathLabel})` : ''}`;
  switch (random.int(10)) {
    case 0:
    case 1: {
      const body = malformedBody(operation, components, random);
      const method = operation.method === 'GET' || operation.method === 'DELETE' ? random.pick(['POST', 'PATCH']) : operation.method;
      return { label: `${at}: body with ${body.label}`, method, path, headers: json, body: body.text };
    }
    case 2: {
      const text = random.pick(BROKEN_JSON);
      return { label: `${at}: broken JSON ${JSON.stringify(text.slice(0, 30))}`, method: random.pick(['POST', 'PATCH', 'PUT', 'DELETE']), path, headers: json, body: text };
    }
    case 3: {
      const contentType = random.pick(ODD_CONTENT_TYPES);
      const body = random.pick(['{}', 'a=1&b=2', '--zz\r\n\r\n--zz--', '', '{"displayName":"x"}']);
      return {
        label: `${at}: content type ${JSON.stringify(contentType)}`,
        method: random.pick(['POST', 'PATCH', 'PUT']),
        path,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
        body,
      };
    }
    case 4: {
      const method = random.pick(METHODS.filter((m) => m !== operation.method));
      return { label: `${at}: wrong method ${method}`, method, path, headers: method === 'GET' || method === 'HEAD' ? {} : json, body: method === 'GET' || method === 'HEAD' ? undefined : '{}' };
    }
    case 5: {
      const query = random.pick([
        '?pageSize=-1',
        '?pageSize=abc',
        '?pageSize=1e400',
        '?pageSize=99999999999999999999',
        '?pageToken=%zz',
        '?pageToken=' + 'x'.repeat(5000),
        '?status=NOPE',
        '?status=RUNNING,,FAILED',
        '?status=' + encodeURIComponent('\u0000'),
        '?afterId=-5',
        '?afterId=1.5',
        '?afterId=' + '9'.repeat(400),
        '?unknown=1',
        '?pageSize=1&pageSize=2',
        '?%00=%00',
        '?a[b]=c',
        '?__proto__[x]=1',
      ]);
      return { label: `${at}: query ${query.slice(0, 40)}`, method: operation.method, path: `${path}${query}`, headers: operation.method === 'GET' ? {} : json, body: operation.method === 'GET' ? undefined : '{}' };
    }
    case 6: {
      const [name, value] = random.pick([
        ['x-ferry-actor', 'two words'],
        ['x-ferry-actor', ''],
        ['x-ferry-actor', 'x'.repeat(500)],
        ['authorization', 'Bearer'],
        ['authorization', 'Basic ' + 'A'.repeat(3000)],
        ['accept', 'text/html'],
        ['accept-encoding', 'gzip;q=bogus'],
        ['origin', 'http://evil.example'],
        ['origin', 'null'],
        ['origin', 'not a url'],
        ['sec-fetch-site', 'cross-site'],
        ['content-encoding', 'gzip'],
        ['expect', '100-continue'],
        ['x-forwarded-host', 'evil.example'],
        ['cookie', 'a=' + 'b'.repeat(4000)],
      ] as const);
      const method = operation.method;
      return { label: `${at}: header ${name}: ${value.slice(0, 30)}`, method, path, headers: { ...(method === 'GET' || method === 'DELETE' ? {} : json), [name]: value }, body: method === 'GET' || method === 'DELETE' ? undefined : '{}' };
    }
    case 7: {
      const size = random.pick([100_000, 1_100_000, 2_000_000]);
      const body = JSON.stringify({ displayName: 'x'.repeat(size), extra: 1 });
      return { label: `${at}: body of ${body.length} bytes`, method: random.pick(['POST', 'PATCH']), path, headers: json, body };
    }
    case 8: {
      // Requests a client library would refuse to send: over a raw socket.
      const line = random.pick([
        `GET ${path} HTTP/1.1\r\nHost: evil.example:${port}\r\n`,
        `DELETE ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Bad: a\u0001b\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'h'.repeat(20_000)}\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: abc\r\n`,
        `GET ${path}#frag HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`,
        `GET /v1/migrationJobs/a b HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`,
        `GET ${path} HTTP/1.1\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: [::1]:${port}\r\nHost: evil.example\r\n`,
        `GET ${path} HTTP/9.9\r\nHost: 127.0.0.1:${port}\r\n`,
        `G\u00e9T ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`,
      ]);
      return { label: `${at}: raw ${JSON.stringify(line.slice(0, 60))}`, method: 'RAW', path, headers: {}, raw: `${line}Connection: close\r\n\r\n` };
    }
    default: {
      const body = malformedBody(operation, components, random);
      const contentType = random.pick(ODD_CONTENT_TYPES);
      return {
        label: `${at}: ${body.label} with content type ${JSON.stringify(contentType)} and origin`,
        method: operation.method === 'GET' ? 'POST' : operation.method,
        path,
        headers: { ...(contentType === undefined ? {} : { 'content-type': contentType }), ...(random.chance(0.5) ? { origin: 'http://127.0.0.1:1' } : {}) },
        body: body.text,
      };
    }
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function send(port: number, request: FuzzRequest): Promise<FuzzAnswer> {
  if (request.raw !== undefined) return sendRaw(port, request.raw);
  return new Promise((resolveSend, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: request.method, path: request.path, headers: request.headers, agent, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolveSend({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close the connection once it has answered a body it will not read (413).
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') resolveSend({ status: -1, body: '' });
      else reject(error);
    });
    req.end(request.body);
  });
}

function sendRaw(port: number, raw: string): Promise<FuzzAnswer> {
  return new Promise((resolveSend, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    socket.on('close', () => {
      // The first response only: a malformed request may be answered twice (its garbage tail
      // parsed as a second request).
      const bytes = Buffer.concat(chunks);
      const text = bytes.toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? -1);
      const headEnd = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? NaN);
      const rest = headEnd >= 0 ? bytes.subarray(headEnd + 4) : Buffer.alloc(0);
      resolveSend({ status, body: (Number.isNaN(length) ? rest : rest.subarray(0, length)).toString('utf8') });
    });
    socket.setTimeout(30_000, () => socket.destroy());
    socket.end(Buffer.from(raw, 'latin1'));
  });
}

/** What is wrong with an answer, or null when it keeps the contract. */
function contractBreach(request: FuzzRequest, answer: FuzzAnswer): string | null {
  if (answer.status === -1) return request.body !== undefined && request.body.length > 1_000_000 ? null : 'the connection closed without an answer';
  if (answer.status >= 500 && answer.status !== 501) return `answered ${answer.status}: ${answer.body.slice(0, 300)}`;
  if (answer.status < 400) return null;
  if (request.method === 'HEAD') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return `answered ${answer.status} with a body that is not JSON: ${JSON.stringify(answer.body.slice(0, 200))}`;
  }
  const error = (parsed as { error?: Record<string, unknown> }).error;
  if (parsed === null || typeof parsed !== 'object' || Object.keys(parsed).join() !== 'error' || error === undefined) {
    return `answered ${answer.status} with a body outside the error shape: ${answer.body.slice(0, 200)}`;
  }
  if (Object.keys(error).sort().join() !== 'code,details,message') return `error keys are ${Object.keys(error).join(', ')}`;
  const code = error['code'] as keyof typeof ERROR_CODES;
  if (typeof code !== 'string' || !(code in ERROR_CODES)) return `unknown error code ${String(code)}`;
  if (ERROR_CODES[code].http !== answer.status) return `code ${code} answered with ${answer.status}, not ${ERROR_CODES[code].http}`;
  if (answer.status === 501 && code !== 'NOT_IMPLEMENTED') return `501 with code ${code}`;
  if (typeof error['message'] !== 'string' || error['message'].length < 10) return `message ${JSON.stringify(error['message'])} says nothing`;
  if (error['details'] === null || typeof error['details'] !== 'object' || Array.isArray(error['details'])) return 'details is not an object';
  return null;
}

describe('API fuzz', () => {
  let server: FerryServer;
  let operations: Operation[];
  let components: Record<string, Schema>;

  beforeAll(async () => {
    server = await spawnFerryServer({ env: { FERRY_LOG_LEVEL: 'warn' } });
    const http = api(server.url);
    // Something for ids to hit: two profiles on a closed loopback port and a job between them.
    for (const id of ['fz-src', 'fz-dst']) {
      await http.postOk('/v1/connectionProfiles', { id, displayName: id, engine: 'postgresql', host: '127.0.0.1', port: 1, database: 'x', username: 'u', password: 'p' });
    }
    await http.postOk('/v1/migrationJobs', { id: 'fz-job', displayName: 'fz', type: 'one-time', sourceProfileId: 'fz-src', destinationProfileId: 'fz-dst' });
    const document = await http.getOk<{ paths: Record<string, Record<string, Schema>>; components: { schemas: Record<string, Schema> } }>('/openapi.json');
    components = document.components.schemas;
    operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => {
        const ref = operation['requestBody']?.content?.['application/json']?.schema as Schema | undefined;
        return { method: method.toUpperCase(), path, operationId: String(operation['operationId']), bodySchema: ref ?? null, hasPathId: path.includes('{id}') };
      }),
    );
  }, 60_000);

  afterAll(async () => {
    agent.destroy();
    await stopAllFerryServers();
  }, 60_000);

  it(`answers ${MIN_REQUESTS}+ malformed requests across every route within the contract (seed in the output)`, async () => {
    console.log(`API fuzz seed: ${SEED} (replay with FERRY_FUZZ_SEED=${SEED})`);
    expect(operations.length).toBeGreaterThanOrEqual(18);
    const random = randomSource(SEED);
    // Generated up front, in order, so that the seed alone decides the requests.
    const requests = Array.from({ length: MAX_REQUESTS }, () => fuzzRequest(operations, components, random, server.port));
    const breaches: string[] = [];
    const statuses = new Map<number, number>();
    const touched = new Set<string>();
    const deadline = Date.now() + FUZZ_SECONDS * 1000;
    let next = 0;
    let sent = 0;
    const worker = async () => {
      while (next < requests.length && Date.now() < deadline && breaches.length < 20) {
        const index = next++;
        const request = requests[index]!;
        const answer = await send(server.port, request);
        sent++;
        touched.add(request.label.split(':')[0]!.split(' ')[0]!);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const breach = contractBreach(request, answer);
        if (breach) breaches.push(`#${index} ${request.method} ${request.path.slice(0, 120)} [${request.label}]: ${breach}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    console.log(`API fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);

    expect(breaches, `seed ${SEED}`).toEqual([]);
    expect(sent, `only ${sent} requests were sent within ${FUZZ_SECONDS} s`).toBeGreaterThanOrEqual(MIN_REQUESTS);
    expect([...touched].sort()).toEqual(operations.map((o) => o.operationId).sort());
    // Still alive and still serving.
    const exited = await Promise.race([server.exited.then(() => true), Promise.resolve(false)]);
    expect(exited, server.output().slice(-2000)).toBe(false);
    expect((await api(server.url).get('/healthz')).status).toBe(200);
    expect((await api(server.url).get('/v1/migrationJobs')).status).toBe(200);
    const fatal = server.logLines().filter((line) => Number(line['level']) >= 50);
    expect(fatal.map((line) => line['msg'])).toEqual([]);
  }, 120_000);
});
