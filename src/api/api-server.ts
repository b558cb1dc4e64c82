/**
 * The HTTP server of the REST API: serves the route table (routes.ts) with fastify,
 * validates every request with the route's zod schemas, and maps every failure to
 * {"error": {"code", "message", "details"}}. No business logic: handlers call FerryService.
 */
import { collectMetrics } from './metrics.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { FerryError, isFerryError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import type { FerryService } from '../service/ferry-service.js';
import { buildOpenApiDocument } from './openapi.js';
import type { ApiRoute } from './routes.js';
import { API_ROUTES } from './routes.js';

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

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

/** Flattens zod issues into field violations with messages a person can act on. */
function violationsOf(
  issues: readonly z.core.$ZodIssue[],
  location: FieldViolation['in'],
  input: unknown,
  nested = false,
): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (!nested && location === 'body' && input === undefined && issues.some((issue) => issue.path.length === 0)) {
    return [{ path: '', in: 'body', message: 'is missing; send a JSON object with "Content-Type: application/json"' }];
  }
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
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
  return { value: undefined, violations: violationsOf(result.error.issues, location, value) };
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

function notFoundError(method: string, url: string): FerryError {
  const path = url.split('?')[0] ?? url;
  return new FerryError('NOT_FOUND', `No route ${method} ${path}. GET /openapi.json lists every route of this API.`, {
    details: { method, path },
  });
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
  // Requests are logged at debug, one line each (fastify's own two lines at info cost a
  // busy server more than answering a list); failures still log at error.
  const app = (
    typeof logger === 'boolean'
      ? Fastify({ logger, bodyLimit: MAX_BODY_BYTES, logController: new LogController({ disableRequestLogging: true }) })
      : Fastify({ loggerInstance: logger, bodyLimit: MAX_BODY_BYTES, logController: new LogController({ disableRequestLogging: true }) })
  ) as unknown as FastifyInstance;
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime },
      'request completed',
    );
  });

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
      if (error.httpStatus >= 500) request.log.error({ err: error }, 'request failed');
      if (error.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer realm="ferry"');
      return reply.code(error.httpStatus).send(errorBody(error));
    }
    const status = (error as FastifyError).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own refusals: body too large, unsupported media type, ...
      const message =
        status === 413
          ? `The request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MB. Send a smaller body.`
          : status === 415
            ? `Unsupported Content-Type "${request.headers['content-type'] ?? ''}". Send JSON with "Content-Type: application/json".`
            : `${error.message}. Fix the request and send it again.`;
      return reply.code(status).send(errorBody(new FerryError('INVALID_ARGUMENT', message)));
    }
    request.log.error({ err: error }, 'unexpected error while handling the request');
    return reply
      .code(500)
      .send(
        errorBody(
          new FerryError('INTERNAL', `Internal error while handling ${request.method} ${request.url.split('?')[0]}; the server log has the details (request ${request.id}).`),
        ),
      );
  });

  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody(notFoundError(request.method, request.url))));

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
        if (!picked) throw notFoundError(request.method, request.url);
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
