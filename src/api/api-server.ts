/**
 * The HTTP server of the REST API: serves the route table (routes.ts) with fastify,
 * validates every request with the route's zod schemas, and maps every failure to
 * {"error": {"code", "message", "details"}}. No business logic: handlers call FerryService.
 */
import { collectMetrics } from './metrics.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ERROR_CODES, FerryError, isFerryError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import type { FerryService } from '../service/ferry-service.js';
import { buildOpenApiDocument } from './openapi.js';
import type { ApiRoute } from './routes.js';
import { API_ROUTES, MAX_ID_LENGTH } from './routes.js';
import { checkContentType, checkHost, checkOrigin } from './request-guard.js';
import type { HostRule } from './request-guard.js';

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The longest path segment the router takes: an id of MAX_ID_LENGTH characters, each
 * %-encoded, plus a custom method (':restart'). Longer ones get a 400 that names the limit;
 * ids up to MAX_ID_LENGTH reach the schema, which has the last word.
 */
export const MAX_PATH_SEGMENT = MAX_ID_LENGTH * 3 + 32;

/** The header the CLI sets so that a job's history says who acted ('cli'). */
export const ACTOR_HEADER = 'x-ferry-actor';

export interface ApiServerOptions {
  /** A pino-compatible logger, or true for fastify's default JSON logger. Default: no logging. */
  logger?: FastifyBaseLogger | boolean;
  /** Registers more routes on the same server (the web console, /metrics, ...). */
  extraRoutes?: (app: FastifyInstance) => void;
  /**
   * When set, every /v1 request must send `Authorization: Bearer <apiToken>`; others get
   * 401 UNAUTHENTICATED. /healthz and /openapi.json stay open.
   */
  apiToken?: string;
  /**
   * When set, every /v1 and /metrics request must send `Authorization: Bearer <token>` for
   * which this resolves true (main.ts: TokenService.authenticate); others get 401
   * UNAUTHENTICATED before their body is read. /healthz, /openapi.json and the console's
   * static files stay open. Takes precedence over apiToken.
   */
  authenticate?: (token: string) => Promise<boolean>;
  /**
   * When set, every request whose Host header does not name this server is refused with 403
   * PERMISSION_DENIED (DNS rebinding; request-guard.ts). The port defaults to the one the
   * server listens on.
   */
  hostRule?: Omit<HostRule, 'port'> & { port?: number };
  /** Called with every error that becomes a 5xx (main.ts checks the data directory then). */
  onServerError?: (error: Error) => void;
}

/** One field that failed validation, as listed in error.details.fields. */
export interface FieldViolation {
  /** Dotted path inside the part, e.g. "tls.mode"; empty for the part as a whole. */
  path: string;
  /** Where the field is: the path, the query string or the body. */
  in: 'path' | 'query' | 'body' | 'header';
  message: string;
}

type ErrorBody = { error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

function errorBody(error: FerryError): ErrorBody {
  const { code, message, details } = error.toJSON();
  return { error: { code, message, details } };
}

// ---------------------------------------------------------------------------------------
// Validation

const PART_NAMES = { path: 'path parameter', query: 'query parameter', body: 'body field', header: 'header' } as const;

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** The object schema inside optional/default/nullable wrappers, or null. */
function objectSchemaOf(schema: z.ZodType | undefined): z.ZodObject | null {
  let current: unknown = schema;
  for (let depth = 0; depth < 10 && current !== undefined; depth++) {
    if (current instanceof z.ZodObject) return current;
    const inner = (current as { _zod?: { def?: { innerType?: unknown } } })._zod?.def?.innerType;
    if (inner === undefined) return null;
    current = inner;
  }
  return null;
}

/** The fields an object schema takes at a path inside it ([] when unknown). */
function fieldsAt(schema: z.ZodType | undefined, path: readonly PropertyKey[]): string[] {
  let object = objectSchemaOf(schema);
  for (const key of path) {
    if (object === null) return [];
    object = objectSchemaOf(object.shape[String(key)] as z.ZodType | undefined);
  }
  return object === null ? [] : Object.keys(object.shape);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** 'is not a field of this request; did you mean "password"?' */
function unknownFieldMessage(key: string, known: readonly string[]): string {
  const lower = key.toLowerCase();
  const close = known
    .map((name) => ({ name, distance: editDistance(key.slice(0, 100), name) }))
    .filter(({ distance, name }) => distance <= Math.max(2, Math.floor(name.length / 3)) || (lower.length >= 3 && name.toLowerCase().startsWith(lower)))
    .sort((x, y) => x.distance - y.distance)[0];
  const hint = close
    ? `did you mean "${close.name}"?`
    : known.length > 0
      ? `the fields here are ${known.join(', ')}`
      : 'remove it';
  return `is not a field of this request (nothing was changed); ${hint}`;
}

/** Flattens zod issues into field violations with messages a person can act on. */
function violationsOf(
  issues: readonly z.core.$ZodIssue[],
  location: FieldViolation['in'],
  input: unknown,
  nested = false,
  schema?: z.ZodType,
): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (!nested && location === 'body' && input === undefined && issues.some((issue) => issue.path.length === 0)) {
    return [{ path: '', in: 'body', message: 'is missing; send a JSON object with "Content-Type: application/json"' }];
  }
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      // A strict schema: an unknown field (a typo such as "pasword") is refused, never dropped.
      const known = fieldsAt(schema, issue.path);
      for (const key of issue.keys) {
        out.push({ path: [...issue.path.map(String), key.slice(0, 100)].join('.'), in: location, message: unknownFieldMessage(key, known) });
      }
      continue;
    }
    if (issue.code === 'invalid_key' || issue.code === 'invalid_element') {
      // A record key or map element: the nested issues say what is wrong with it.
      const inner = violationsOf(issue.issues, location, undefined, true);
      const what = issue.code === 'invalid_key' ? `key "${String(issue.path.at(-1))}"` : 'element';
      for (const violation of inner) out.push({ path, in: location, message: `${what}: ${violation.message}` });
      continue;
    }
    if (issue.code === 'invalid_union') {
      out.push({ path, in: location, message: issue.message });
      continue;
    }
    if (issue.code === 'invalid_type' && input !== undefined && valueAt(input, issue.path) === undefined) {
      out.push({ path, in: location, message: `is required (${issue.expected})` });
      continue;
    }
    out.push({ path, in: location, message: issue.message });
  }
  return out;
}

function describeViolation(violation: FieldViolation): string {
  if (violation.path === '') {
    const sep = violation.message.startsWith('is ') ? ' ' : ': ';
    return `the ${violation.in === 'body' ? 'request body' : violation.in}${sep}${violation.message}`;
  }
  return `${PART_NAMES[violation.in]} "${violation.path}": ${violation.message}`;
}

/** The 400 for a request that failed validation: the message names each wrong field. */
export function invalidArgument(violations: FieldViolation[]): FerryError {
  const shown = violations.slice(0, 5).map(describeViolation);
  const more = violations.length > 5 ? ` (and ${violations.length - 5} more)` : '';
  return new FerryError('INVALID_ARGUMENT', `Invalid request: ${shown.join('; ')}${more}. Fix the request and send it again.`, {
    details: { fields: violations },
  });
}

function validate(schema: z.ZodType | undefined, value: unknown, location: FieldViolation['in']): { value: unknown; violations: FieldViolation[] } {
  if (schema === undefined) return { value: undefined, violations: [] };
  const result = schema.safeParse(value);
  if (result.success) return { value: result.data, violations: [] };
  return { value: undefined, violations: violationsOf(result.error.issues, location, value, false, schema) };
}

// ---------------------------------------------------------------------------------------
// Dispatch: fastify's router cannot tell '/{id}:start' from '/{id}:stop' (a parameter
// swallows the colon), so routes that end in a custom method on a parameter share one
// fastify route and are told apart here by what follows the last ':'.

interface CompiledRoute {
  route: ApiRoute;
  /** The custom method after a path parameter ('start'), or null. */
  verb: string | null;
  /** The parameter the verb is glued to ('id'). */
  verbParam: string | null;
}

interface RouteGroup {
  method: ApiRoute['method'];
  url: string;
  routes: CompiledRoute[];
}

/** '/v1/migrationJobs/{id}:start' -> fastify '/v1/migrationJobs/:id' with verb 'start'. */
function compile(route: ApiRoute): { url: string; compiled: CompiledRoute } {
  const segments = route.path.split('/');
  let verb: string | null = null;
  let verbParam: string | null = null;
  const converted = segments.map((segment, index) => {
    const last = index === segments.length - 1;
    const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}(?::([A-Za-z][A-Za-z0-9]*))?$/.exec(segment);
    if (param) {
      if (param[2] !== undefined) {
        if (!last) throw new Error(`Route ${route.path}: a custom method may only end the path`);
        verb = param[2];
        verbParam = param[1]!;
      }
      return `:${param[1]}`;
    }
    if (segment.includes('{')) throw new Error(`Route ${route.path}: a segment is either one {param} or static text`);
    // A static custom method ('connectionProfiles:test'): fastify's escaped colon.
    if (segment.includes(':') && !last) throw new Error(`Route ${route.path}: a custom method may only end the path`);
    return segment.replaceAll(':', '::');
  });
  return { url: converted.join('/'), compiled: { route, verb, verbParam } };
}

function groupRoutes(routes: readonly ApiRoute[]): RouteGroup[] {
  const groups = new Map<string, RouteGroup>();
  for (const route of routes) {
    const { url, compiled } = compile(route);
    const key = `${route.method} ${url}`;
    let group = groups.get(key);
    if (!group) {
      group = { method: route.method, url, routes: [] };
      groups.set(key, group);
    }
    const clash = group.routes.find((other) => other.verb === compiled.verb);
    if (clash) throw new Error(`Routes ${clash.route.path} and ${route.path} (${route.method}) are the same route`);
    group.routes.push(compiled);
  }
  return [...groups.values()];
}

/** Picks the route of a group for a request, and the path parameters it sees. */
function pick(group: RouteGroup, rawParams: Record<string, string>): { compiled: CompiledRoute; params: Record<string, string> } | null {
  const plain = group.routes.find((r) => r.verb === null) ?? null;
  const verbParam = group.routes.find((r) => r.verbParam !== null)?.verbParam ?? null;
  if (verbParam === null) return plain ? { compiled: plain, params: rawParams } : null;
  const value = rawParams[verbParam] ?? '';
  const colon = value.lastIndexOf(':');
  if (colon >= 0) {
    const verb = value.slice(colon + 1);
    const match = group.routes.find((r) => r.verb === verb);
    if (match) return { compiled: match, params: { ...rawParams, [verbParam]: value.slice(0, colon) } };
  }
  return plain ? { compiled: plain, params: rawParams } : null;
}

/** Paths besides the route table that the server answers (GET only). */
const PLAIN_GET_PATHS = ['/openapi.json', '/healthz', '/metrics'];

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Does one segment of a route's OpenAPI path ('{id}:start', '{id}', 'v1') match a request's? */
function segmentMatches(pattern: string, segment: string): boolean {
  const param = /^\{[A-Za-z_][A-Za-z0-9_]*\}(?::([A-Za-z][A-Za-z0-9]*))?$/.exec(pattern);
  if (!param) return pattern === segment;
  if (param[1] === undefined) return segment !== '';
  return segment.endsWith(`:${param[1]}`) && segment.length > param[1].length + 1;
}

/** The routes of the table whose path matches a request path, whatever their method. */
function routesAt(path: string): ApiRoute[] {
  const segments = path.split('/').map(decodeSegment);
  return API_ROUTES.filter((route) => {
    const parts = route.path.split('/');
    return parts.length === segments.length && parts.every((part, index) => segmentMatches(part, segments[index]!));
  });
}

/**
 * The error for a request no route takes: 405 with the methods the path takes, 404 naming
 * the custom methods for an unknown one, or 404 for a path the server does not have.
 */
function routeMissError(method: string, url: string): FerryError {
  const path = (url.split('?')[0] ?? url).slice(0, 500);
  const atPath = routesAt(path);
  const lastSegment = decodeSegment(path.split('/').at(-1) ?? '');
  const colon = lastSegment.lastIndexOf(':');
  if (method === 'POST' && colon > 0) {
    // Same shape as a custom method route: '/v1/migrationJobs/{id}:verb' with another verb.
    const prefix = path.split('/').slice(0, -1).join('/');
    const verbs = API_ROUTES.filter((route) => route.method === 'POST' && /:[A-Za-z]+$/.test(route.path))
      .filter((route) => routesAtShape(route, `${prefix}/${lastSegment.slice(0, colon)}`))
      .map((route) => `:${route.path.slice(route.path.lastIndexOf(':') + 1)}`);
    if (verbs.length > 0) {
      return new FerryError(
        'NOT_FOUND',
        `No custom method "${lastSegment.slice(colon)}" on ${path}: this resource takes ${verbs.join(', ')} (POST). GET /openapi.json lists every route of this API.`,
        { details: { method, path, customMethods: verbs } },
      );
    }
  }
  const allowed = new Set(atPath.map((route) => route.method as string));
  if (PLAIN_GET_PATHS.includes(path)) allowed.add('GET');
  if (allowed.has('GET')) allowed.add('HEAD');
  if (allowed.size > 0 && !allowed.has(method)) {
    const allow = [...allowed];
    return new FerryError('METHOD_NOT_ALLOWED', `${path} does not take ${method}; it takes ${allow.join(', ')}. GET /openapi.json lists every route of this API.`, {
      details: { method, path, allow },
    });
  }
  return new FerryError('NOT_FOUND', `No route ${method} ${path}. GET /openapi.json lists every route of this API.`, {
    details: { method, path },
  });
}

/** Would `route` (a custom method route) match `path` + ':' + its verb? */
function routesAtShape(route: ApiRoute, pathWithoutVerb: string): boolean {
  const verb = route.path.slice(route.path.lastIndexOf(':'));
  return routesAt(`${pathWithoutVerb}${verb}`).includes(route);
}

/** Sends a FerryError in the error shape with the status its code stands for. */
function sendError(reply: FastifyReply, error: FerryError): FastifyReply {
  if (error.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer realm="ferry"');
  if (error.code === 'METHOD_NOT_ALLOWED' && Array.isArray(error.details['allow'])) void reply.header('allow', (error.details['allow'] as string[]).join(', '));
  return reply.code(error.httpStatus).send(errorBody(error));
}

/** The router's refusals (fastify's frameworkErrors): a bad %-escape, an overlong path segment. */
function frameworkError(error: FastifyError): FerryError {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return invalidArgument([
      { path: 'id', in: 'path', message: `is longer than ${MAX_ID_LENGTH} characters; ids are at most ${MAX_ID_LENGTH} characters` },
    ]);
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    return new FerryError(
      'INVALID_ARGUMENT',
      'The URL path is not valid: each %-escape must be % followed by two hex digits of valid UTF-8 (write % itself as %25). Encode the path and send the request again.',
      { details: { fields: [{ path: '', in: 'path', message: 'has a malformed %-escape' }] } },
    );
  }
  return new FerryError('INVALID_ARGUMENT', `The request could not be routed (${error.message}). Fix the URL and send it again.`);
}

const REFUSAL_CODES: Record<number, keyof typeof ERROR_CODES> = {
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'REQUEST_HEADERS_TOO_LARGE',
};

/** Fastify's own 4xx refusals (body too large, unsupported media type, bad Content-Length, ...) in the error shape. */
function fastifyRefusal(error: FastifyError, status: number, request: FastifyRequest): FerryError {
  if (status === 413) return new FerryError('PAYLOAD_TOO_LARGE', `The request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MB. Send a smaller body.`);
  if (status === 415) {
    return checkContentType('POST', request.headers['content-type']) ??
      new FerryError('UNSUPPORTED_MEDIA_TYPE', 'Send JSON with "Content-Type: application/json".');
  }
  return new FerryError(REFUSAL_CODES[status] ?? 'INVALID_ARGUMENT', `${error.message.replace(/\.$/, '')}. Fix the request and send it again.`);
}

/** The response Node's HTTP server is writing on a connection, if any (Node's own socketOnError reads the same field). */
function responseInFlight(socket: Socket): ServerResponse | null {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/** Connections whose parser has failed: they get at most one refusal and then end. */
const refusedConnections = new WeakSet<Socket>();

/** Lets `response` answer its own request with Connection: close, and ends the connection after it. */
function closeAfter(response: ServerResponse, socket: Socket): void {
  if (!response.headersSent) {
    // Node then writes "Connection: close" and ends the connection once the response is done.
    response.shouldKeepAlive = false;
    return;
  }
  // It already told the client the connection stays open: still end it, since nothing after
  // the bytes that failed can be read any more.
  response.once('finish', () => socket.destroy());
  response.once('close', () => socket.destroy());
}

/**
 * Requests Node's HTTP parser refuses before fastify sees them (a header with characters HTTP
 * does not allow, headers over 16 KB, a bad Content-Length): answered in the error shape too.
 *
 * Only when the answer cannot be mistaken for the answer to another request. When a request
 * is in flight and was read completely, the bytes that failed came after it: most often a
 * body its client sent without Content-Length (Node's http client does so for DELETE and
 * OPTIONS), which HTTP reads as the start of the next request. That request gets its own
 * answer, with Connection: close, and nothing else is written: a second answer would reach
 * the client as the answer to its next request on the connection. A raw refusal goes out
 * only when nothing of the in-flight response was written yet (Node's rule), and it ends
 * the connection.
 */
function clientErrorHandler(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // The parser stays failed: later bytes on this connection report the same error again.
  if (refusedConnections.has(socket)) return;
  refusedConnections.add(socket);
  const inFlight = responseInFlight(socket);
  if (inFlight !== null && (inFlight.req.complete || inFlight.headersSent)) {
    closeAfter(inFlight, socket);
    return;
  }
  const refusal =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new FerryError('REQUEST_HEADERS_TOO_LARGE', 'The request headers are larger than this server accepts (16 KB). Send fewer or shorter headers.')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new FerryError('REQUEST_TIMEOUT', 'The request did not arrive in time. Send it again.')
        : new FerryError(
            'INVALID_ARGUMENT',
            `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'}): check the request line and the headers (names and values with characters HTTP does not allow, Content-Length, Transfer-Encoding).`,
          );
  const body = JSON.stringify(errorBody(refusal));
  const status = refusal.httpStatus;
  // The answer to a HEAD request has no body: a client reads bytes after it as garbage.
  const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket : Buffer.alloc(0);
  const method = inFlight?.req.method ?? (packet.subarray(0, 5).toString('latin1') === 'HEAD ' ? 'HEAD' : undefined);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${method === 'HEAD' ? '' : body}`,
    );
  }
  socket.destroy(error);
}

// ---------------------------------------------------------------------------------------
// Authentication and actor

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Refuses a request without a valid bearer token with 401 UNAUTHENTICATED. */
async function checkToken(request: FastifyRequest, isValid: (token: string) => Promise<boolean>): Promise<void> {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match && (await isValid(match[1]!))) return;
  throw new FerryError(
    'UNAUTHENTICATED',
    header === ''
      ? 'This Ferry server requires an API token: send "Authorization: Bearer <token>" (the CLI reads it from FERRY_TOKEN; the console asks for it). Create one on the server with `ferry tokens create --name NAME`.'
      : 'The API token is not valid for this Ferry server (unknown or revoked): check FERRY_TOKEN, or create a new token with `ferry tokens create --name NAME`.',
  );
}

function actorOf(request: FastifyRequest): string {
  const header = request.headers[ACTOR_HEADER];
  if (header === undefined) return 'api';
  const value = (Array.isArray(header) ? header[0] ?? '' : header).trim();
  if (!/^[\x21-\x7e]{1,64}$/.test(value)) {
    throw invalidArgument([
      { path: 'X-Ferry-Actor', in: 'header', message: 'must be 1 to 64 printable characters without spaces, e.g. "cli"' },
    ]);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// The server

/**
 * Builds the API server (not listening yet): every route of API_ROUTES, GET /openapi.json,
 * GET /healthz, and whatever `extraRoutes` adds. Errors always have the shape
 * {"error": {"code", "message", "details"}}; bad input is a 4xx, never a 500.
 */
export function buildApiServer(service: FerryService, options: ApiServerOptions = {}): FastifyInstance {
  const logger = options.logger ?? false;
  const common = {
    bodyLimit: MAX_BODY_BYTES,
    // Each request is logged once, at debug, by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MAX_PATH_SEGMENT },
    // Node answers a request without Host with a bare 400 of its own; let it through, so the
    // Host rule refuses it in the error shape.
    http: { requireHostHeader: false },
    // The router refuses a request while Node is still parsing the bytes that came with it; the
    // answer waits until they are parsed, so that clientErrorHandler can still make it say
    // Connection: close when they do not parse (a body sent without Content-Length).
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      setImmediate(() => sendError(reply, frameworkError(error)));
    },
    clientErrorHandler,
  };
  const app = (
    typeof logger === 'boolean' ? Fastify({ logger, ...common }) : Fastify({ loggerInstance: logger, ...common })
  ) as unknown as FastifyInstance;
  // A client may end its side of the connection once it has sent its request (HTTP: that does
  // not mean it no longer wants the answer). Node's default ends the connection right away,
  // and an answer that takes I/O is lost; with this, Node answers and then closes.
  (app.server as typeof app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  // JSON bodies: an empty body is no body (custom methods may be sent without one), and
  // malformed JSON is a 400 that says so. Fastify's parser guards against prototype poisoning.
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // The API speaks JSON only: other content types get a 415 that says so.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    defaultJsonParser(request, text, (error, value) => {
      if (error) {
        done(
          new FerryError('INVALID_ARGUMENT', `The request body is not valid JSON (${error.message}). Send a JSON object.`, {
            details: { fields: [{ path: '', in: 'body', message: 'is not valid JSON' }] },
          }),
          undefined,
        );
      } else {
        done(null, value);
      }
    });
  });

  app.setErrorHandler((error: FastifyError | FerryError | Error, request, reply) => {
    if (isFerryError(error)) {
      if (error.httpStatus >= 500) {
        request.log.error({ err: error }, 'request failed');
        options.onServerError?.(error);
      }
      if (error.code === 'PERMISSION_DENIED') request.log.warn({ method: request.method, url: request.url.slice(0, 300), details: error.details }, 'refused a request');
      return sendError(reply, error);
    }
    const status = (error as FastifyError).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own refusals: body too large, unsupported media type, bad Content-Length, ...
      return sendError(reply, fastifyRefusal(error as FastifyError, status, request));
    }
    request.log.error({ err: error }, 'unexpected error while handling the request');
    options.onServerError?.(error);
    return sendError(
      reply,
      new FerryError('INTERNAL', `Internal error while handling ${request.method} ${request.url.split('?')[0]}; the server log has the details (request ${request.id}).`),
    );
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, routeMissError(request.method, request.url)));

  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url.slice(0, 300), statusCode: reply.statusCode, responseTime: Math.round(reply.elapsedTime) },
      'request completed',
    );
  });

  // Before anything else, for every path: a Host that does not name this server (DNS
  // rebinding), then a state-changing request from another origin's page.
  const hostRule = options.hostRule;
  if (hostRule !== undefined) {
    const portOf = () => hostRule.port ?? (app.server.address() as AddressInfo | null)?.port ?? 80;
    app.addHook('onRequest', async (request) => {
      const refusal = checkHost(request.headers.host, { ...hostRule, port: portOf() });
      if (refusal) throw refusal;
    });
  }
  app.addHook('onRequest', async (request) => {
    const refusal = checkOrigin(request.method, request.headers);
    if (refusal) throw refusal;
  });

  const apiToken = options.apiToken;
  const authenticate =
    options.authenticate ??
    (apiToken !== undefined ? async (token: string) => timingSafeEqual(digest(token), digest(apiToken)) : undefined);
  if (authenticate !== undefined) {
    // Before the body is read: a caller without a token gets nothing but the 401.
    // The matched route decides, not the raw URL: the router decodes %-escapes, the URL does not.
    // /metrics names jobs and their errors: it is protected like the API.
    const isProtected = (path: string) => path === '/v1' || path.startsWith('/v1/') || path === '/metrics';
    app.addHook('onRequest', async (request) => {
      if (isProtected(request.routeOptions.url ?? '') || isProtected(request.url.split('?')[0] ?? '')) {
        await checkToken(request, authenticate);
      }
    });
  }

  const serializedResults = new WeakMap<object, string>();
  const runRoute = async (compiled: CompiledRoute, rawParams: Record<string, string>, request: FastifyRequest, reply: FastifyReply) => {
    const { route } = compiled;
    // A body-less POST without a content type is what another page can send (no-cors fetch,
    // sendBeacon, a form): refused, whatever its Origin says.
    const mediaRefusal = checkContentType(request.method, request.headers['content-type']);
    if (mediaRefusal) throw mediaRefusal;
    const actor = actorOf(request);
    const params = validate(route.params, rawParams, 'path');
    const query = validate(route.query, request.query ?? {}, 'query');
    const body = validate(route.body, request.body, 'body');
    const violations = [...params.violations, ...query.violations, ...body.violations];
    if (violations.length > 0) throw invalidArgument(violations);

    const result = await route.handler(service, {
      params: params.value,
      query: query.value,
      // The body as sent (it passed the schema): the service parses it itself.
      body: route.body ? request.body : undefined,
      actor,
    });

    if (route.response === null) return reply.code(route.status).send();
    // The service hands the same object to many callers (a memoized job list): check and
    // serialize it once.
    const memoized = typeof result === 'object' && result !== null ? serializedResults.get(result) : undefined;
    if (memoized !== undefined) return reply.code(route.status).type('application/json; charset=utf-8').send(memoized);
    const checked = route.response.safeParse(result);
    if (!checked.success) {
      // The service broke the contract the OpenAPI document promises: a bug, not the caller's fault.
      request.log.error({ operationId: route.operationId, issues: checked.error.issues }, 'response does not match its schema');
      throw new Error(`The ${route.operationId} response does not match its schema`);
    }
    const text = JSON.stringify(checked.data);
    if (typeof result === 'object' && result !== null) serializedResults.set(result, text);
    return reply.code(route.status).type('application/json; charset=utf-8').send(text);
  };

  for (const group of groupRoutes(API_ROUTES)) {
    app.route({
      method: group.method,
      url: group.url,
      handler: async (request, reply) => {
        const picked = pick(group, (request.params ?? {}) as Record<string, string>);
        if (!picked) throw routeMissError(request.method, request.url);
        return runRoute(picked.compiled, picked.params, request, reply);
      },
    });
  }

  const openApiDocument = buildOpenApiDocument(API_ROUTES);
  app.get('/openapi.json', async () => openApiDocument);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    const text = await collectMetrics(service);
    return reply.type('text/plain; version=0.0.4').send(text);
  });

  options.extraRoutes?.(app);
  return app;
}
