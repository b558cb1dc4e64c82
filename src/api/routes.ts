/**
 * The REST API as one table: every route with its OpenAPI path, its request and response
 * schemas and a thin handler that calls FerryService. The server (api-server.ts) serves
 * exactly this table and the OpenAPI document (openapi.ts) is built from it, so the two
 * cannot drift apart.
 */
import { z } from 'zod';
import type { JobAction } from '../core/lifecycle.js';
import type { Actor, FerryService, PageView } from '../service/ferry-service.js';
import {
  ConnectionTestView,
  CreateJobInput,
  CreateProfileInput,
  JobEventView,
  JobListQuery,
  JobObjectView,
  JobView,
  ListQuery,
  ListTablesInput,
  NodeView,
  ProfileView,
  PromoteInput,
  RestartJobInput,
  UpdateJobInput,
  UpdateProfileInput,
  SchemaObjectPlanView,
  SchemaObjectReportView,
  SourceTableListView,
  SourceTableView,
  VerifyReportView,
  ValidationView,
} from '../service/inputs.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** What a handler receives once the request passed validation. */
export interface RouteRequest<P, Q, B> {
  /** Path parameters, parsed by the route's params schema. */
  params: P;
  /** Query parameters, parsed by the route's query schema (defaults applied). */
  query: Q;
  /**
   * The request body exactly as sent, after it passed the body schema. Not the parsed
   * output: the service parses it itself, and a PATCH must not gain defaults it never sent.
   */
  body: B;
  /** Who asked: 'api', or the X-Ferry-Actor header (the CLI sends 'cli'). */
  actor: Actor;
}

type SchemaOrNone = z.ZodType | undefined;
type Out<S extends SchemaOrNone> = S extends z.ZodType ? z.output<S> : undefined;
type In<S extends SchemaOrNone> = S extends z.ZodType ? z.input<S> : undefined;
type Result<R extends z.ZodType | null> = R extends z.ZodType ? z.output<R> : void;

/** One route, typed: the handler sees the parsed params and query and the validated body. */
export interface RouteDefinition<
  P extends SchemaOrNone,
  Q extends SchemaOrNone,
  B extends SchemaOrNone,
  R extends z.ZodType | null,
> {
  method: HttpMethod;
  /** OpenAPI form, e.g. '/v1/migrationJobs/{id}:start'. A custom method (':verb') may only end the path. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: 'Connection profiles' | 'Migration jobs' | 'Nodes';
  params?: P;
  query?: Q;
  body?: B;
  /** The response body schema; null for a response without a body (204). */
  response: R;
  /** The success status code. */
  status: 200 | 201 | 204;
  handler: (service: FerryService, request: RouteRequest<Out<P>, Out<Q>, In<B>>) => Promise<Result<R>>;
}

/** A route with its types erased, as the server and the OpenAPI builder see it. */
export interface ApiRoute {
  method: HttpMethod;
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  response: z.ZodType | null;
  status: 200 | 201 | 204;
  handler: (service: FerryService, request: RouteRequest<unknown, unknown, unknown>) => Promise<unknown>;
}

function defineRoute<
  P extends SchemaOrNone = undefined,
  Q extends SchemaOrNone = undefined,
  B extends SchemaOrNone = undefined,
  R extends z.ZodType | null = null,
>(route: RouteDefinition<P, Q, B, R>): ApiRoute {
  return route as unknown as ApiRoute;
}

// ---------------------------------------------------------------------------------------
// Shapes that exist only on the wire.

/** The longest id a path may carry; the server's router admits path segments of this length (and their %-encoding). */
export const MAX_ID_LENGTH = 200;

const IdParams = z.object({
  id: z.string().min(1, 'the id in the path is empty').max(MAX_ID_LENGTH).describe('The resource id.'),
});

/**
 * The body of a custom method that takes no input: {} (or nothing). It is still sent with
 * "Content-Type: application/json", which other web pages cannot send without the server's consent.
 */
export const EmptyRequest = z.strictObject({}).optional().describe('Send {} with "Content-Type: application/json".');

/** The body of :promote: {} or {"force": true}. */
export const PromoteRequest = PromoteInput.optional().describe('Send {}, {"force": true} and/or {"requireValidation": true} with "Content-Type: application/json".');

export const ProfileListView = z.object({
  connectionProfiles: z.array(ProfileView),
  /** Pass as pageToken to get the next page; null on the last page. */
  nextPageToken: z.string().nullable(),
});
export type ProfileListView = z.infer<typeof ProfileListView>;

export const JobListView = z.object({
  migrationJobs: z.array(JobView),
  nextPageToken: z.string().nullable(),
  /** How many jobs match the filters over all pages. */
  totalSize: z.number().int().describe('How many jobs match status and search, over all pages.'),
});
export type JobListView = z.infer<typeof JobListView>;

export const JobObjectListView = z.object({ objects: z.array(JobObjectView) });
export type JobObjectListView = z.infer<typeof JobObjectListView>;

export const NodeListView = z.object({ nodes: z.array(NodeView) });
export type NodeListView = z.infer<typeof NodeListView>;

export const JobEventListView = z.object({ events: z.array(JobEventView) });
export type JobEventListView = z.infer<typeof JobEventListView>;

export const JobEventsQuery = z.strictObject({
  afterId: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Only events whose id is greater than this one (for polling).'),
});

/** Names for the schemas the OpenAPI document shows as components. */
export const SCHEMA_NAMES = new Map<z.ZodType, string>([
  [CreateProfileInput, 'CreateConnectionProfileRequest'],
  [UpdateProfileInput, 'UpdateConnectionProfileRequest'],
  [CreateJobInput, 'CreateMigrationJobRequest'],
  [UpdateJobInput, 'UpdateMigrationJobRequest'],
  [EmptyRequest, 'EmptyRequest'],
  [RestartJobInput, 'RestartMigrationJobRequest'],
  [PromoteRequest, 'PromoteMigrationJobRequest'],
  [ProfileView, 'ConnectionProfile'],
  [ProfileListView, 'ListConnectionProfilesResponse'],
  [ConnectionTestView, 'ConnectionTestResult'],
  [ListTablesInput, 'ListConnectionProfileTablesRequest'],
  [SourceTableView, 'SourceTable'],
  [SourceTableListView, 'ListConnectionProfileTablesResponse'],
  [JobView, 'MigrationJob'],
  [JobListView, 'ListMigrationJobsResponse'],
  [JobObjectView, 'MigrationJobObject'],
  [JobObjectListView, 'ListMigrationJobObjectsResponse'],
  [JobEventView, 'MigrationJobEvent'],
  [JobEventListView, 'ListMigrationJobEventsResponse'],
  [NodeView, 'Node'],
  [NodeListView, 'ListNodesResponse'],
  [VerifyReportView, 'VerifyReport'],
  [SchemaObjectPlanView, 'SchemaObjectPlan'],
  [SchemaObjectReportView, 'ListMigrationJobSchemaObjectsResponse'],
  [ValidationView, 'MigrationJobValidation'],
]);

// ---------------------------------------------------------------------------------------
// The routes.

const PROFILES = 'Connection profiles' as const;
const JOBS = 'Migration jobs' as const;
const NODES = 'Nodes' as const;

const ACTION_DESCRIPTIONS: { [A in Exclude<JobAction, 'delete'>]: string } = {
  start: 'Start a job that is Not started: Starting..., then Running (Full dump in progress).',
  stop: 'Stop a running job: Stopping..., then Stopped once the in-flight batch is saved.',
  resume: 'Resume a job Stopped in Incremental load from its last checkpoint.',
  restart:
    'Wipe what the job wrote on the destination and start over with a full dump (Failed, Running with errors, or Stopped in Full dump). With `objects` (only while the job is in Full dump), restart those tables only: each is emptied on the destination and copied again from a new snapshot, the tables already copied are kept; a name that is not a table of the job is refused with 400 INVALID_ARGUMENT listing the job\'s tables.',
  promote:
    'Cut over: wait until the destination has applied every change, sync sequences, remove the replication objects on the source; ends in Completed. Refused with 409 FAILED_PRECONDITION while tables are parked (objects in state ERROR), naming them; with {"force": true} the other tables are promoted and the parked ones are reported as not migrated.',
};

function actionRoute(action: Exclude<JobAction, 'delete'>): ApiRoute {
  if (action === 'restart') {
    return defineRoute({
      ...actionRouteBase(action),
      body: RestartJobInput,
      handler: (service, { params, body, actor }) =>
        body?.objects === undefined ? service.applyJobAction(params.id, action, actor) : service.applyJobAction(params.id, action, actor, { objects: body.objects }),
    });
  }
  if (action === 'promote') {
    return defineRoute({
      ...actionRouteBase(action),
      body: PromoteRequest,
      handler: (service, { params, actor, body }) => {
        const promote = body as PromoteInput | undefined;
        const options = { ...(promote?.force === true ? { force: true } : {}), ...(promote?.requireValidation === true ? { requireValidation: true } : {}) };
        return Object.keys(options).length > 0 ? service.applyJobAction(params.id, action, actor, options) : service.applyJobAction(params.id, action, actor);
      },
    });
  }
  return defineRoute({
    ...actionRouteBase(action),
    body: EmptyRequest,
    handler: (service, { params, actor }) => service.applyJobAction(params.id, action, actor),
  });
}

function actionRouteBase(action: Exclude<JobAction, 'delete'>) {
  return {
    method: 'POST' as const,
    path: `/v1/migrationJobs/{id}:${action}`,
    operationId: `${action}MigrationJob`,
    summary: `${action[0]!.toUpperCase()}${action.slice(1)} a migration job`,
    description: `${ACTION_DESCRIPTIONS[action]} Refused with 409 ACTION_NOT_ALLOWED when the job's status does not allow it (see availableActions).`,
    tag: JOBS as typeof JOBS,
    params: IdParams,
    response: JobView,
    status: 200 as const,
  };
}

const ValidationParams = IdParams.extend({
  validationId: z.string().min(1, 'the validation id in the path is empty').max(MAX_ID_LENGTH).describe('The validation id.'),
});

export const ValidationListView = z.object({ validations: z.array(ValidationView) });

/** Data validation: start one, read one, list a job's. */
const VALIDATION_ROUTES: readonly ApiRoute[] = [
  defineRoute({
    method: 'POST',
    path: '/v1/migrationJobs/{id}:validate',
    operationId: 'validateMigrationJob',
    summary: 'Validate the data of a migration job',
    description:
      'Starts comparing source and destination table by table: row counts, an order-independent checksum of every value in the canonical form of docs/type-mapping.md, and the keys of differing rows (at most 20 per table, both sides shown). Answers at once with the RUNNING validation; poll GET /v1/migrationJobs/{id}/validations/{validationId}. During a continuous job\'s incremental load, differing rows are read again once the load has applied the source\'s changes, so changes in flight are not reported (docs/validation.md). Refused with 409 before the full dump is done and while another validation of the job runs.',
    tag: JOBS,
    params: IdParams,
    body: EmptyRequest,
    response: ValidationView,
    status: 201,
    handler: (service, { params, actor }) => service.validateJob(params.id, actor),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}/validations',
    operationId: 'listMigrationJobValidations',
    summary: "List a migration job's validations, newest first (the last 20; a Restart clears them)",
    tag: JOBS,
    params: IdParams,
    response: ValidationListView,
    status: 200,
    handler: async (service, { params }) => ({ validations: await service.listJobValidations(params.id) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}/validations/{validationId}',
    operationId: 'getMigrationJobValidation',
    summary: 'One validation with its per-table results (progress while RUNNING)',
    tag: JOBS,
    params: ValidationParams,
    response: ValidationView,
    status: 200,
    handler: (service, { params }) => service.getJobValidation(params.id, params.validationId),
  }),
];

const jobListViews = new WeakMap<PageView<JobView>, JobListView>();

/** Every route of the REST API. */
export const API_ROUTES: readonly ApiRoute[] = [
  defineRoute({
    method: 'GET',
    path: '/v1/connectionProfiles',
    operationId: 'listConnectionProfiles',
    summary: 'List connection profiles',
    tag: PROFILES,
    query: ListQuery,
    response: ProfileListView,
    status: 200,
    handler: async (service, { query }) => {
      const page = await service.listProfiles(query);
      return { connectionProfiles: page.items, nextPageToken: page.nextPageToken };
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/connectionProfiles',
    operationId: 'createConnectionProfile',
    summary: 'Create a connection profile',
    description: 'The password is write-only: it is stored encrypted and never returned (see passwordSet).',
    tag: PROFILES,
    body: CreateProfileInput,
    response: ProfileView,
    status: 201,
    handler: (service, { body, actor }) => service.createProfile(body, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/connectionProfiles:test',
    operationId: 'testConnectionProfileInput',
    summary: 'Test an unsaved connection profile',
    description: 'Connects with the given settings without saving them and reports the server version, settings, privileges and problems.',
    tag: PROFILES,
    body: CreateProfileInput,
    response: ConnectionTestView,
    status: 200,
    handler: (service, { body }) => service.testProfileInput(body),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/connectionProfiles/{id}',
    operationId: 'getConnectionProfile',
    summary: 'Get a connection profile',
    tag: PROFILES,
    params: IdParams,
    response: ProfileView,
    status: 200,
    handler: (service, { params }) => service.getProfile(params.id),
  }),
  defineRoute({
    method: 'PATCH',
    path: '/v1/connectionProfiles/{id}',
    operationId: 'updateConnectionProfile',
    summary: 'Update a connection profile',
    description: 'Only the fields sent change. A password of null clears the stored password.',
    tag: PROFILES,
    params: IdParams,
    body: UpdateProfileInput,
    response: ProfileView,
    status: 200,
    handler: (service, { params, body, actor }) => service.updateProfile(params.id, body, actor),
  }),
  defineRoute({
    method: 'DELETE',
    path: '/v1/connectionProfiles/{id}',
    operationId: 'deleteConnectionProfile',
    summary: 'Delete a connection profile',
    description: 'Refused with 409 PROFILE_IN_USE while a job that is not Completed uses the profile.',
    tag: PROFILES,
    params: IdParams,
    response: null,
    status: 204,
    handler: (service, { params, actor }) => service.deleteProfile(params.id, actor),
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/connectionProfiles/{id}:test',
    operationId: 'testConnectionProfile',
    summary: 'Test a saved connection profile',
    description: 'Connects with the stored profile and reports the server version, settings, privileges and problems.',
    tag: PROFILES,
    params: IdParams,
    body: EmptyRequest,
    response: ConnectionTestView,
    status: 200,
    handler: (service, { params }) => service.testProfile(params.id),
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/connectionProfiles/{id}:listTables',
    operationId: 'listConnectionProfileTables',
    summary: "List a source profile's tables with a selection applied",
    description:
      'Connects with the stored profile, reads every table a migration job can migrate from it and marks those the include/exclude patterns of the body select (the same patterns as a job\'s selection). Send {} to see every table selected. A database that cannot be reached answers 422 with the connection error.',
    tag: PROFILES,
    params: IdParams,
    body: ListTablesInput,
    response: SourceTableListView,
    status: 200,
    handler: (service, { params, body }) => service.listProfileTables(params.id, body),
  }),

  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs',
    operationId: 'listMigrationJobs',
    summary: 'List migration jobs',
    description:
      'One page of jobs, filtered and ordered on the server: status=RUNNING,FAILED (comma-separated statuses), search=TEXT (in the id or display name), orderBy="createTime desc". Follow nextPageToken with the same filters and order for the next page; totalSize counts every matching job.',
    tag: JOBS,
    query: JobListQuery,
    response: JobListView,
    status: 200,
    handler: async (service, { query }) => {
      const page = await service.listJobs({
        pageSize: query.pageSize,
        pageToken: query.pageToken,
        status: query.status?.join(','),
        search: query.search,
        orderBy: query.orderBy,
      });
      // The service answers identical queries with the same page: answer with the same view,
      // so that the server checks and serializes it once.
      let view = jobListViews.get(page);
      if (view === undefined) {
        view = { migrationJobs: page.items, nextPageToken: page.nextPageToken, totalSize: page.totalSize ?? page.items.length };
        jobListViews.set(page, view);
      }
      return view;
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/migrationJobs',
    operationId: 'createMigrationJob',
    summary: 'Create a migration job',
    description: 'The job is created Not started; verify it, then start it. `schemaMapping` puts a source schema (PostgreSQL) or database (MySQL) under another name on the destination; verify shows the mapping it will apply.',
    tag: JOBS,
    body: CreateJobInput,
    response: JobView,
    status: 201,
    handler: (service, { body, actor }) => service.createJob(body, actor),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}',
    operationId: 'getMigrationJob',
    summary: 'Get a migration job',
    tag: JOBS,
    params: IdParams,
    response: JobView,
    status: 200,
    handler: (service, { params }) => service.getJob(params.id),
  }),
  defineRoute({
    method: 'PATCH',
    path: '/v1/migrationJobs/{id}',
    operationId: 'updateMigrationJob',
    summary: 'Update a migration job',
    description: 'Only the fields sent change. The selection and dump parallelism change only while Not started.',
    tag: JOBS,
    params: IdParams,
    body: UpdateJobInput,
    response: JobView,
    status: 200,
    handler: (service, { params, body, actor }) => service.updateJob(params.id, body, actor),
  }),
  defineRoute({
    method: 'DELETE',
    path: '/v1/migrationJobs/{id}',
    operationId: 'deleteMigrationJob',
    summary: 'Delete a migration job',
    description:
      'Stops the job if it runs and removes the replication objects on the source (slot, publication). The data on the destination is kept.',
    tag: JOBS,
    params: IdParams,
    response: null,
    status: 204,
    handler: (service, { params, actor }) => service.deleteJob(params.id, actor),
  }),
  actionRoute('start'),
  actionRoute('stop'),
  actionRoute('resume'),
  actionRoute('restart'),
  actionRoute('promote'),
  defineRoute({
    method: 'POST',
    path: '/v1/migrationJobs/{id}:verify',
    operationId: 'verifyMigrationJob',
    summary: 'Verify a migration job',
    description: 'Runs every check that would make the job fail (connectivity, privileges, settings, tables, destination) without changing anything.',
    tag: JOBS,
    params: IdParams,
    body: EmptyRequest,
    response: VerifyReportView,
    status: 200,
    handler: (service, { params }) => service.verifyJob(params.id),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}/objects',
    operationId: 'listMigrationJobObjects',
    summary: "List a migration job's tables and their progress",
    tag: JOBS,
    params: IdParams,
    response: JobObjectListView,
    status: 200,
    handler: async (service, { params }) => ({ objects: await service.listJobObjects(params.id) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}/schemaObjects',
    operationId: 'listMigrationJobSchemaObjects',
    summary: "The job's object report: views, routines, triggers, events and other objects beyond tables",
    description:
      "Reads the source's schema objects beyond tables as they are now and says, for each, what the job does with it: carried (created as on the source), translated, or left out, the phase that creates it (pre-data, post-data, promote) and why. Definitions are in the source's dialect, so the user can adapt the left-out ones.",
    tag: JOBS,
    params: IdParams,
    response: SchemaObjectReportView,
    status: 200,
    handler: (service, { params }) => service.listJobSchemaObjects(params.id),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/migrationJobs/{id}/events',
    operationId: 'listMigrationJobEvents',
    summary: "List a migration job's history",
    tag: JOBS,
    params: IdParams,
    query: JobEventsQuery,
    response: JobEventListView,
    status: 200,
    handler: async (service, { params, query }) => ({ events: await service.listJobEvents(params.id, query.afterId) }),
  }),
  ...VALIDATION_ROUTES,
  defineRoute({
    method: 'GET',
    path: '/v1/nodes',
    operationId: 'listNodes',
    summary: 'List the nodes of the metadata store',
    description: 'Every `ferry serve` that worked on this metadata store, with its heartbeat and state. Any node answers.',
    tag: NODES,
    response: NodeListView,
    status: 200,
    handler: async (service) => ({ nodes: await service.listNodes() }),
  }),
  nodeDrainRoute(true),
  nodeDrainRoute(false),
];

function nodeDrainRoute(drain: boolean): ApiRoute {
  return defineRoute({
    method: 'POST',
    path: `/v1/nodes/{id}:${drain ? 'drain' : 'undrain'}`,
    operationId: `${drain ? 'drain' : 'undrain'}Node`,
    summary: drain ? 'Drain a node: move its jobs to other nodes' : 'Undrain a node: it takes jobs again',
    description: drain
      ? 'The node stops taking jobs, stops each of its runners at its next safe point and releases their leases, so that other nodes take the jobs at once (within a few seconds). ' +
        'State DRAINING while it still holds jobs, DRAINED once it holds none: then it can be stopped and upgraded with no job stopped. The drain lasts until undrain, across restarts of the node. 404 NOT_FOUND for an unknown node.'
      : 'Lifts a drain: the node takes jobs again (new jobs and jobs whose node was lost; jobs running elsewhere stay where they are). 404 NOT_FOUND for an unknown node.',
    tag: NODES,
    params: IdParams,
    body: EmptyRequest,
    response: NodeView,
    status: 200,
    handler: (service, { params, actor }) => service.setNodeDrain(params.id, drain, actor),
  });
}
