/**
 * The API server on a kept-alive connection, over raw sockets: every request gets exactly one
 * answer, and nothing is written after an answer that said Connection: close. The cases are
 * what the fuzz test (test/e2e/api-fuzz.test.ts) met through Node's http client, which sends
 * the body of a DELETE or OPTIONS request without Content-Length: HTTP reads those bytes as
 * the start of the next request, which Node's parser refuses.
 */
import { request as httpRequest, Agent } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { ERROR_CODES, FerryError } from '../../src/core/errors.js';
import type { FerryService } from '../../src/service/ferry-service.js';

/** Every call takes a few event-loop turns (like a store or a database would), then finds nothing. */
const service = new Proxy(
  {},
  {
    get: (_target, name) => async (id: unknown) => {
      await new Promise((resolveLater) => setTimeout(resolveLater, 5));
      throw new FerryError('NOT_FOUND', `Nothing called ${JSON.stringify(id)} here (${String(name)}).`);
    },
  },
) as unknown as FerryService;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits what a server sent into answers; `trailing` is whatever follows the last whole one. */
function parseAnswers(bytes: string, headRequest = false): { answers: Answer[]; trailing: string } {
  const answers: Answer[] = [];
  let rest = bytes;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(rest);
    if (headEnd < 0 || !status) break;
    const headers: Record<string, string> = {};
    for (const line of rest.slice(0, headEnd).split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = headRequest ? 0 : Number(headers['content-length'] ?? 0);
    answers.push({ status: Number(status[1]), headers, body: rest.slice(headEnd + 4, headEnd + 4 + length) });
    rest = rest.slice(headEnd + 4 + length);
  }
  return { answers, trailing: rest };
}

function expectErrorShape(answer: Answer): void {
  const parsed = JSON.parse(answer.body) as { error: { code: keyof typeof ERROR_CODES; message: string; details: unknown } };
  expect(Object.keys(parsed.error).sort()).toEqual(['code', 'details', 'message']);
  expect(ERROR_CODES[parsed.error.code]?.http).toBe(answer.status);
}

describe('one answer per request on a kept-alive connection', () => {
  let app: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    app = buildApiServer(service);
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(() => app.close());

  /**
   * Writes `parts` on one connection (a number waits that many ms), optionally ends the
   * client's side, and returns everything the server sent until it closed the connection.
   */
  const exchange = (parts: (string | number)[], options: { halfClose?: boolean } = {}) =>
    new Promise<{ bytes: string; closedByServer: boolean }>((resolveExchange, reject) => {
      const socket = connect(port, '127.0.0.1');
      let bytes = '';
      let closedByServer = true;
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (bytes += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolveExchange({ bytes, closedByServer }));
      socket.setTimeout(3_000, () => {
        closedByServer = false;
        socket.destroy();
      });
      void (async () => {
        for (const part of parts) {
          if (typeof part === 'number') await new Promise((resolveLater) => setTimeout(resolveLater, part));
          else socket.write(part, 'latin1');
        }
        if (options.halfClose) socket.end();
      })();
    });

  const host = () => `Host: 127.0.0.1:${port}\r\n`;

  it('answers a request whose body came without Content-Length once, with Connection: close, and nothing after', async () => {
    for (const [label, line] of [
      // The router refuses it while the body is still being parsed (a bad %-escape, an overlong id).
      ['router refusal', 'DELETE /v1/migrationJobs/x%zz HTTP/1.1'],
      ['router refusal', `DELETE /v1/migrationJobs/${'b'.repeat(700)} HTTP/1.1`],
      // The service answers after some I/O.
      ['service answer', 'DELETE /v1/migrationJobs/nope HTTP/1.1'],
      ['405', 'OPTIONS /v1/migrationJobs HTTP/1.1'],
    ] as const) {
      const { bytes, closedByServer } = await exchange([`${line}\r\n${host()}Content-Type: application/json\r\n\r\n{"force":true}`]);
      const { answers, trailing } = parseAnswers(bytes);
      expect(answers.map((a) => a.status), `${label}: ${line.slice(0, 40)}`).toHaveLength(1);
      expect(answers[0]!.headers['connection'], label).toBe('close');
      expectErrorShape(answers[0]!);
      expect(trailing, label).toBe('');
      expect(closedByServer, label).toBe(true);
    }
  });

  it("keeps Node's keep-alive client in step: a DELETE with a body, then HEAD and GET on the same agent", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: string) =>
      new Promise<number>((resolveSend, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolveSend(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.setTimeout(3_000, () => req.destroy(new Error(`no answer to ${method} ${path}`)));
        req.end(body);
      });
    try {
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all([
          send('DELETE', '/v1/migrationJobs/x%zz', '{}'),
          send('HEAD', '/v1/migrationJobs/x'),
          send('OPTIONS', '/v1/connectionProfiles', '{"a":1}'),
          send('GET', '/healthz'),
        ]);
        expect(answers).toEqual([400, 404, 405, 200]);
      }
    } finally {
      agent.destroy();
    }
  });

  it('reads past a refused body sent with Content-Length: the next request on the connection is answered', async () => {
    for (const first of [
      `POST /v1/migrationJobs HTTP/1.1\r\n${host()}Content-Type: text/plain\r\nContent-Length: 7\r\n\r\na=1&b=2`,
      `POST /v1/migrationJobs HTTP/1.1\r\n${host()}Content-Type: application/json\r\nOrigin: http://evil.example\r\nContent-Length: 2\r\n\r\n`,
    ]) {
      // The body of the second one arrives after its refusal.
      const { bytes } = await exchange([first, 50, first.includes('Origin') ? '{}' : '', `GET /healthz HTTP/1.1\r\n${host()}Connection: close\r\n\r\n`]);
      const { answers, trailing } = parseAnswers(bytes);
      expect(answers.map((a) => a.status)).toEqual([first.includes('Origin') ? 403 : 415, 200]);
      expect(answers[0]!.headers['connection']).toBe('keep-alive');
      expect(trailing).toBe('');
    }
  });

  it('answers a request whose client ended its side of the connection after sending it', async () => {
    const { bytes } = await exchange([`GET /v1/migrationJobs/some-job HTTP/1.1\r\n${host()}\r\n`], { halfClose: true });
    const { answers, trailing } = parseAnswers(bytes);
    expect(answers.map((a) => a.status)).toEqual([404]);
    expectErrorShape(answers[0]!);
    expect(trailing).toBe('');
  });

  it('answers what the parser refuses once, in the error shape, and without a body for HEAD', async () => {
    const refused = parseAnswers((await exchange([`HEAD /healthz HTTP/1.1\r\n${host()}X-Bad: a\u0001b\r\n\r\n`])).bytes, true);
    expect(refused.answers.map((a) => [a.status, a.headers['connection']])).toEqual([[400, 'close']]);
    expect(refused.trailing).toBe('');
    // A body whose chunked encoding breaks: the request it belongs to gets the 400.
    const chunked = parseAnswers((await exchange([`POST /v1/migrationJobs HTTP/1.1\r\n${host()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`])).bytes);
    expect(chunked.answers.map((a) => [a.status, a.headers['connection']])).toEqual([[400, 'close']]);
    expectErrorShape(chunked.answers[0]!);
    expect(chunked.trailing).toBe('');
    // After an answer on a kept-alive connection, a refused request still gets its own.
    const second = parseAnswers((await exchange([`GET /healthz HTTP/1.1\r\n${host()}\r\n`, 50, `GET /healthz HTTP/1.1\r\n${host()}X-Big: ${'h'.repeat(20_000)}\r\n\r\n`])).bytes);
    expect(second.answers.map((a) => a.status)).toEqual([200, 431]);
    expectErrorShape(second.answers[1]!);
    expect(second.trailing).toBe('');
  });
});
