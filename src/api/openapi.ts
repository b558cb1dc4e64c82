/**
 * The OpenAPI 3.1 document, built from the route table and its zod schemas, so it always
 * says what the server does. Served at GET /openapi.json.
 */
import { z } from 'zod';
import { ErrorBody } from '../service/inputs.js';
import type { ApiRoute } from './routes.js';
import { API_ROUTES, SCHEMA_NAMES } from './routes.js';

type JsonSchema = Record<string, unknown>;

/** An OpenAPI 3.1 document (the parts Ferry writes). */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  paths: Record<string, Record<string, unknown>>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, unknown>;
    securitySchemes: Record<string, unknown>;
  };
  security: Record<string, string[]>[];
}

const COMPONENTS = '#/components/schemas/';

/** The error responses every operation may answer, with what each means. */
const ERROR_RESPONSES: Record<string, { name: string; description: string }> = {
  '400': { name: 'InvalidArgument', description: 'The request is malformed: error.details.fields says which field is wrong and how (INVALID_ARGUMENT).' },
  '401': { name: 'Unauthenticated', description: 'The server requires an API token: send Authorization: Bearer <token> (UNAUTHENTICATED).' },
  '403': {
    name: 'PermissionDenied',
    description:
      'Refused before anything ran (PERMISSION_DENIED): the Host header is not one this server answers to (DNS rebinding; see --allowed-host), or a POST, PATCH, PUT or DELETE came from a page of another origin (Origin, Sec-Fetch-Site).',
  },
  '404': { name: 'NotFound', description: 'The resource or route does not exist (NOT_FOUND).' },
  '405': { name: 'MethodNotAllowed', description: 'The path exists but not with this method; the Allow header lists the methods it takes (METHOD_NOT_ALLOWED).' },
  '409': {
    name: 'Conflict',
    description:
      'The action conflicts with the current state: ACTION_NOT_ALLOWED (the message names the status and the allowed actions), ALREADY_EXISTS, PROFILE_IN_USE, FAILED_PRECONDITION.',
  },
  '413': { name: 'PayloadTooLarge', description: 'The request body is larger than 1 MB (PAYLOAD_TOO_LARGE).' },
  '415': {
    name: 'UnsupportedMediaType',
    description: 'A POST, PATCH or PUT without "Content-Type: application/json" (UNSUPPORTED_MEDIA_TYPE); send {} when the operation takes no input.',
  },
  '422': { name: 'Unprocessable', description: 'A database could not be reached or used, or a migration check failed; the code and message say what to fix.' },
  '500': { name: 'Internal', description: 'An unexpected error on the server; its log has the details (INTERNAL).' },
};

/** Removes the keys zod writes for standalone documents, which do not belong inside OpenAPI. */
function clean(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** Converts a set of named schemas; nested named schemas become $refs to components. */
function convertNamed(named: Map<z.ZodType, string>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of named) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io,
    unrepresentable: 'any',
    uri: (id) => `${COMPONENTS}${id}`,
  });
  const out: Record<string, JsonSchema> = {};
  for (const [id, schema] of Object.entries(schemas)) out[id] = clean(schema as JsonSchema);
  return out;
}

/** Path or query parameters from an object schema: one parameter per property. */
function parametersOf(schema: z.ZodType, location: 'path' | 'query'): unknown[] {
  const json = clean(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema);
  const properties = (json['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json['required'] ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: propertySchema,
    };
  });
}

function operationOf(route: ApiRoute, names: { input: Map<z.ZodType, string>; output: Map<z.ZodType, string> }): Record<string, unknown> {
  const parameters = [
    ...(route.params ? parametersOf(route.params, 'path') : []),
    ...(route.query ? parametersOf(route.query, 'query') : []),
  ];
  const responses: Record<string, unknown> = {};
  if (route.response === null) {
    responses[String(route.status)] = { description: 'Done; no content.' };
  } else {
    responses[String(route.status)] = {
      description: route.summary,
      content: { 'application/json': { schema: { $ref: `${COMPONENTS}${names.output.get(route.response)}` } } },
    };
  }
  for (const [status, { name }] of Object.entries(ERROR_RESPONSES)) {
    responses[status] = { $ref: `#/components/responses/${name}` };
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: !route.body.safeParse(undefined).success,
            content: { 'application/json': { schema: { $ref: `${COMPONENTS}${names.input.get(route.body)}` } } },
          },
        }
      : {}),
    responses,
  };
}

/** Gives every request and response schema of the routes a component name. */
function nameSchemas(routes: readonly ApiRoute[]): { input: Map<z.ZodType, string>; output: Map<z.ZodType, string> } {
  const input = new Map<z.ZodType, string>();
  const output = new Map<z.ZodType, string>([[ErrorBody, 'Error']]);
  const capitalized = (s: string) => `${s[0]!.toUpperCase()}${s.slice(1)}`;
  for (const route of routes) {
    if (route.body && !input.has(route.body)) {
      input.set(route.body, SCHEMA_NAMES.get(route.body) ?? `${capitalized(route.operationId)}Request`);
    }
    if (route.response && !output.has(route.response)) {
      output.set(route.response, SCHEMA_NAMES.get(route.response) ?? `${capitalized(route.operationId)}Response`);
    }
  }
  // Shared pieces (a job inside a job list, ...) become components too.
  // Names for request schemas are only taken from routes: the rest are response pieces.
  for (const [schema, name] of SCHEMA_NAMES) {
    if (!input.has(schema) && !output.has(schema)) output.set(schema, name);
  }
  return { input, output };
}

/** Builds the OpenAPI 3.1 document for a route table (the API's, by default). */
export function buildOpenApiDocument(routes: readonly ApiRoute[] = API_ROUTES, version = '0.1.0'): OpenApiDocument {
  const names = nameSchemas(routes);
  const schemas = { ...convertNamed(names.input, 'input'), ...convertNamed(names.output, 'output') };
  const paths: OpenApiDocument['paths'] = {};
  for (const route of routes) {
    const item = (paths[route.path] ??= {});
    item[route.method.toLowerCase()] = operationOf(route, names);
  }
  const responses: Record<string, unknown> = {};
  for (const { name, description } of Object.values(ERROR_RESPONSES)) {
    responses[name] = { description, content: { 'application/json': { schema: { $ref: `${COMPONENTS}Error` } } } };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry',
      version,
      description:
        'Self-hosted database migration: a consistent full dump, then change data capture until you promote the destination. ' +
        'Errors are {"error": {"code", "message", "details"}}; custom methods are POST <resource>:<verb>. ' +
        'Every POST, PATCH and PUT sends "Content-Type: application/json" (custom methods without input send {}); ' +
        'state-changing requests from a web page of another origin and requests whose Host is not one the server answers to are refused with 403.',
    },
    tags: [
      { name: 'Connection profiles', description: 'Named, reusable ways to reach one database.' },
      { name: 'Migration jobs', description: 'Jobs that move a database from a source to a destination.' },
      { name: 'Nodes', description: 'The `ferry serve` processes of the metadata store.' },
    ],
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: {
        bearerToken: { type: 'http', scheme: 'bearer', description: 'Required unless the server listens on loopback only. Create one with `ferry tokens create --name NAME`.' },
      },
    },
    security: [{}, { bearerToken: [] }],
  };
}
