/**
 * The HTTP layer only: routing (every route of the table is reachable and calls the right
 * service method), request validation, error mapping and the OpenAPI document. The service
 * behind it is a small in-memory fake; the real service has its own tests.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { buildOpenApiDocument } from '../../src/api/openapi.js';
import { API_ROUTES } from '../../src/api/routes.js';
import { FerryError } from '../../src/core/errors.js';
import { JOB_STATUSES, STATUS_LABELS, availableActions, nextStatusForAction, substatusOf } from '../../src/core/lifecycle.js';
import type { JobStatus } from '../../src/core/lifecycle.js';
import type { FerryService, JobActionOptions, PageView } from '../../src/service/ferry-service.js';
import {
  CreateJobInput,
  CreateProfileInput,
  JobListQuery,
  ListQuery,
  UpdateJobInput,
  UpdateProfileInput,
} from '../../src/service/inputs.js';
import type { ConnectionTestView, JobView, ProfileView, VerifyReportView } from '../../src/service/inputs.js';

const TIME = '2024-05-01T12:00:00.000Z';

function profileView(id: string, overrides: Partial<ProfileView> = {}): ProfileView {
  return {
    id,
    displayName: `Profile ${id}`,
    engine: 'postgresql',
    host: 'db.internal',
    port: 5432,
    database: 'app',
    username: 'migrator',
    passwordSet: true,
    tls: { mode: 'none', caCertificateSet: false, clientCertificateSet: false },
    connectivityMethod: 'direct',
    sshTunnel: null,
    labels: {},
    createTime: TIME,
    updateTime: TIME,
    ...overrides,
  };
}

function jobView(id: string, status: JobStatus = 'NOT_STARTED', overrides: Partial<JobView> = {}): JobView {
  const phase = status === 'NOT_STARTED' ? null : 'FULL_DUMP';
  return {
    id,
    displayName: `Job ${id}`,
    type: 'continuous',
    status,
    statusLabel: STATUS_LABELS[status],
    substatus: substatusOf({ status, phase }),
    phase,
    availableActions: availableActions({ status, phase }),
    sourceProfileId: 'src',
    sourceProfileName: 'Source',
    sourceEngine: 'postgresql',
    destinationProfileId: 'dst',
    destinationProfileName: 'Destination',
    destinationEngine: 'postgresql',
    connectivityMethod: 'direct',
    selection: { include: [], exclude: [] },
    dumpParallelism: 4,
    zeroDatePolicy: 'null',
    enumErrorValuePolicy: 'label',
    nulCharacterPolicy: 'refuse',
    schemaMapping: {},
    definerPolicy: 'keep',
    maxParkedChanges: 1_000_000,
    requireValidation: false,
    labels: {},
    createTime: TIME,
    updateTime: TIME,
    startTime: null,
    endTime: null,
    durationSeconds: 0,
    error: null,
    progress: { tablesTotal: 0, tablesCompleted: 0, rowsCopied: 0, bytesCopied: 0, estimatedRows: 0, estimatedBytes: 0, totalsEstimated: false, percent: 0 },
    replication: null,
    promoteRequested: false,
    node: null,
    ...overrides,
  };
}

const TEST_OK: ConnectionTestView = { ok: true, serverVersion: '16.3', settings: { wal_level: 'logical' }, privileges: { replication: true }, checks: [], error: null };
const VERIFY_OK: VerifyReportView = { ok: true, checks: [{ code: 'CONNECTIVITY', side: 'source', severity: 'ok', message: 'Connected' }] };

/**
 * A FerryService over plain maps, with the real lifecycle table for actions, so the HTTP
 * layer can be exercised end to end. Records every call.
 */
const VALIDATION: Awaited<ReturnType<FerryService['validateJob']>> = {
  id: 'v-1', jobId: 'job-1', status: 'RUNNING', clean: null, createTime: TIME, endTime: null, actor: 'api', recheckedInFlight: false,
  summary: { tables: 0, tablesEqual: 0, tablesDifferent: 0, tablesFailed: 0, rowsCompared: 0 }, tables: [], error: null,
};

class InMemoryFerryService implements FerryService {
  readonly profiles = new Map<string, ProfileView>();
  readonly jobs = new Map<string, JobView>();
  readonly calls: { method: string; args: unknown[] }[] = [];
  /** When set, the next call rejects with it. */
  failNext: unknown = null;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failNext !== null) {
      const error = this.failNext;
      this.failNext = null;
      throw error;
    }
  }

  private page<T extends { id: string }>(items: T[], query: unknown): PageView<T> {
    const { pageSize, pageToken } = ListQuery.parse(query);
    const start = pageToken ? Number(pageToken) : 0;
    const slice = items.slice(start, start + pageSize);
    return { items: slice, nextPageToken: start + pageSize < items.length ? String(start + pageSize) : null };
  }

  private profile(id: string): ProfileView {
    const profile = this.profiles.get(id);
    if (!profile) throw new FerryError('NOT_FOUND', `Connection profile "${id}" does not exist.`, { details: { id } });
    return profile;
  }

  private job(id: string): JobView {
    const job = this.jobs.get(id);
    if (!job) throw new FerryError('NOT_FOUND', `Migration job "${id}" does not exist.`, { details: { id } });
    return job;
  }

  async createProfile(input: Parameters<FerryService['createProfile']>[0], actor: string): Promise<ProfileView> {
    this.record('createProfile', input, actor);
    const parsed = CreateProfileInput.parse(input);
    const id = parsed.id ?? `profile-${this.profiles.size + 1}`;
    if (this.profiles.has(id)) throw new FerryError('ALREADY_EXISTS', `Connection profile "${id}" already exists.`);
    const view = profileView(id, {
      displayName: parsed.displayName,
      engine: parsed.engine,
      host: parsed.host,
      port: parsed.port ?? 5432,
      database: parsed.database ?? null,
      username: parsed.username,
      passwordSet: parsed.password !== undefined,
      labels: parsed.labels,
    });
    this.profiles.set(id, view);
    return view;
  }
  async getProfile(id: string): Promise<ProfileView> {
    this.record('getProfile', id);
    return this.profile(id);
  }
  async listProfiles(query: Parameters<FerryService['listProfiles']>[0]): Promise<PageView<ProfileView>> {
    this.record('listProfiles', query);
    return this.page([...this.profiles.values()], query);
  }
  async updateProfile(id: string, input: Parameters<FerryService['updateProfile']>[1], actor: string): Promise<ProfileView> {
    this.record('updateProfile', id, input, actor);
    const current = this.profile(id);
    UpdateProfileInput.parse(input);
    const next = { ...current, ...(input.displayName !== undefined ? { displayName: input.displayName } : {}) };
    this.profiles.set(id, next);
    return next;
  }
  async deleteProfile(id: string, actor: string): Promise<void> {
    this.record('deleteProfile', id, actor);
    this.profile(id);
    if ([...this.jobs.values()].some((job) => job.sourceProfileId === id && job.status !== 'COMPLETED')) {
      throw new FerryError('PROFILE_IN_USE', `Connection profile "${id}" is used by a job; delete the job first.`);
    }
    this.profiles.delete(id);
  }
  async testProfile(id: string): Promise<ConnectionTestView> {
    this.record('testProfile', id);
    this.profile(id);
    return TEST_OK;
  }
  async listProfileTables(id: string, selection: Parameters<FerryService['listProfileTables']>[1]): ReturnType<FerryService['listProfileTables']> {
    this.record('listProfileTables', id, selection);
    this.profile(id);
    return { tables: [{ schema: 'public', name: 'orders', estimatedRows: 10, selected: true }] };
  }
  async testProfileInput(input: Parameters<FerryService['testProfileInput']>[0]): Promise<ConnectionTestView> {
    this.record('testProfileInput', input);
    return TEST_OK;
  }
  async createJob(input: Parameters<FerryService['createJob']>[0], actor: string): Promise<JobView> {
    this.record('createJob', input, actor);
    const parsed = CreateJobInput.parse(input);
    this.profile(parsed.sourceProfileId);
    this.profile(parsed.destinationProfileId);
    const id = parsed.id ?? `job-${this.jobs.size + 1}`;
    const view = jobView(id, 'NOT_STARTED', {
      displayName: parsed.displayName,
      type: parsed.type,
      sourceProfileId: parsed.sourceProfileId,
      destinationProfileId: parsed.destinationProfileId,
      selection: parsed.selection,
      dumpParallelism: parsed.dumpParallelism,
      labels: parsed.labels,
    });
    this.jobs.set(id, view);
    return view;
  }
  async getJob(id: string): Promise<JobView> {
    this.record('getJob', id);
    return this.job(id);
  }
  async listJobs(query: Parameters<FerryService['listJobs']>[0]): Promise<PageView<JobView>> {
    this.record('listJobs', query);
    const { status } = JobListQuery.parse(query);
    const jobs = [...this.jobs.values()].filter((job) => status === undefined || status.includes(job.status));
    return this.page(jobs, { pageSize: query.pageSize, pageToken: query.pageToken });
  }
  async updateJob(id: string, input: Parameters<FerryService['updateJob']>[1], actor: string): Promise<JobView> {
    this.record('updateJob', id, input, actor);
    const current = this.job(id);
    const parsed = UpdateJobInput.parse(input);
    const next = { ...current, ...(parsed.displayName !== undefined ? { displayName: parsed.displayName } : {}) };
    this.jobs.set(id, next);
    return next;
  }
  async applyJobAction(id: string, action: Parameters<FerryService['applyJobAction']>[1], actor: string, options?: JobActionOptions): Promise<JobView> {
    if (options === undefined) this.record('applyJobAction', id, action, actor);
    else this.record('applyJobAction', id, action, actor, options);
    const job = this.job(id);
    const state = { status: job.status, phase: job.phase };
    const next = nextStatusForAction(state, action);
    if (next === null || next === 'deleted') {
      throw new FerryError(
        'ACTION_NOT_ALLOWED',
        `Cannot ${action} job "${id}": it is ${job.statusLabel}. Allowed now: ${availableActions(state).join(', ')}.`,
        { details: { status: job.status, action, availableActions: availableActions(state) } },
      );
    }
    const updated = jobView(id, next, { displayName: job.displayName });
    this.jobs.set(id, updated);
    return updated;
  }
  async deleteJob(id: string, actor: string): Promise<void> {
    this.record('deleteJob', id, actor);
    this.job(id);
    this.jobs.delete(id);
  }
  async validateJob(id: string, actor: string): ReturnType<FerryService['validateJob']> {
    this.record('validateJob', id, actor);
    this.job(id);
    return VALIDATION;
  }
  async getJobValidation(id: string, validationId: string): ReturnType<FerryService['getJobValidation']> {
    this.record('getJobValidation', id, validationId);
    this.job(id);
    return VALIDATION;
  }
  async listJobValidations(id: string): ReturnType<FerryService['listJobValidations']> {
    this.record('listJobValidations', id);
    this.job(id);
    return [VALIDATION];
  }
  async verifyJob(id: string): Promise<VerifyReportView> {
    this.record('verifyJob', id);
    this.job(id);
    return VERIFY_OK;
  }
  async listJobObjects(id: string): ReturnType<FerryService['listJobObjects']> {
    this.record('listJobObjects', id);
    this.job(id);
    return [
      { name: 'public.orders', destination: 'public.orders', state: 'DUMPING', rowsCopied: 10, bytesCopied: 1000, estimatedRows: 100, estimatedBytes: 10000, error: null, parkedChanges: 0, lastRetryTime: null, updateTime: TIME },
    ];
  }
  async listJobSchemaObjects(id: string): ReturnType<FerryService['listJobSchemaObjects']> {
    this.record('listJobSchemaObjects', id);
    this.job(id);
    return {
      objects: [
        { kind: 'view', schema: 'public', name: 'v', definition: 'CREATE VIEW public.v AS SELECT 1', disposition: 'carried', phase: 'pre-data', reason: null },
      ],
    };
  }
  async listJobEvents(id: string, afterId?: number): ReturnType<FerryService['listJobEvents']> {
    this.record('listJobEvents', id, afterId);
    this.job(id);
    const events = [
      { id: 1, time: TIME, kind: 'created' as const, message: 'Created', actor: 'api' },
      { id: 2, time: TIME, kind: 'action' as const, message: 'Start requested', actor: 'cli', action: 'start' as const },
    ];
    return events.filter((event) => afterId === undefined || event.id > afterId);
  }
  async listNodes(): ReturnType<FerryService['listNodes']> {
    this.record('listNodes');
    return [{ id: 'host-a:8080', address: 'http://10.0.0.5:8080', version: '0.1.0', state: 'UP', startTime: TIME, heartbeatTime: TIME, stopTime: null, jobs: [], drainTime: null, maxJobs: null }];
  }

  async setNodeDrain(id: string, drain: boolean): ReturnType<FerryService['setNodeDrain']> {
    this.record('setNodeDrain', id, drain);
    if (id !== 'host-a:8080') throw new FerryError('NOT_FOUND', `Node "${id}" is not known to the metadata store`);
    return {
      id, address: 'http://10.0.0.5:8080', version: '0.1.0', state: drain ? 'DRAINED' : 'UP', startTime: TIME, heartbeatTime: TIME, stopTime: null,
      jobs: [], drainTime: drain ? TIME : null, maxJobs: null,
    };
  }
}

const PROFILE_BODY = { id: 'src', displayName: 'Source', engine: 'postgresql', host: 'db1', port: 5432, database: 'app', username: 'u', password: 'secret' };

let service: InMemoryFerryService;
let app: FastifyInstance;

beforeEach(async () => {
  service = new InMemoryFerryService();
  service.profiles.set('src', profileView('src'));
  service.profiles.set('dst', profileView('dst'));
  service.jobs.set('job-1', jobView('job-1', 'NOT_STARTED'));
  service.jobs.set('running', jobView('running', 'RUNNING'));
  service.jobs.set('failed', jobView('failed', 'FAILED'));
  app = buildApiServer(service);
  await app.ready();
});

afterEach(async () => {
  await app.close();
});

function lastCall() {
  return service.calls.at(-1);
}

describe('routing', () => {
  /** For each operation: a request that must succeed, and the service call it must make. */
  const CASES: Record<string, { method: string; url: string; body?: unknown; status: number; call: { method: string; args: unknown[] } }> = {
    listConnectionProfiles: { method: 'GET', url: '/v1/connectionProfiles?pageSize=1', status: 200, call: { method: 'listProfiles', args: [{ pageSize: 1 }] } },
    createConnectionProfile: {
      method: 'POST',
      url: '/v1/connectionProfiles',
      body: { ...PROFILE_BODY, id: 'new-one' },
      status: 201,
      call: { method: 'createProfile', args: [{ ...PROFILE_BODY, id: 'new-one' }, 'api'] },
    },
    testConnectionProfileInput: { method: 'POST', url: '/v1/connectionProfiles:test', body: PROFILE_BODY, status: 200, call: { method: 'testProfileInput', args: [PROFILE_BODY] } },
    getConnectionProfile: { method: 'GET', url: '/v1/connectionProfiles/src', status: 200, call: { method: 'getProfile', args: ['src'] } },
    updateConnectionProfile: {
      method: 'PATCH',
      url: '/v1/connectionProfiles/src',
      body: { displayName: 'Renamed' },
      status: 200,
      call: { method: 'updateProfile', args: ['src', { displayName: 'Renamed' }, 'api'] },
    },
    deleteConnectionProfile: { method: 'DELETE', url: '/v1/connectionProfiles/dst', status: 204, call: { method: 'deleteProfile', args: ['dst', 'api'] } },
    testConnectionProfile: { method: 'POST', url: '/v1/connectionProfiles/src:test', body: {}, status: 200, call: { method: 'testProfile', args: ['src'] } },
    listConnectionProfileTables: {
      method: 'POST',
      url: '/v1/connectionProfiles/src:listTables',
      body: { include: ['public'] },
      status: 200,
      call: { method: 'listProfileTables', args: ['src', { include: ['public'] }] },
    },
    listMigrationJobs: {
      method: 'GET',
      url: '/v1/migrationJobs?status=RUNNING,FAILED&search=orders&orderBy=updateTime%20desc',
      status: 200,
      call: {
        method: 'listJobs',
        args: [{ pageSize: 100, pageToken: undefined, status: 'RUNNING,FAILED', search: 'orders', orderBy: 'updateTime desc' }],
      },
    },
    createMigrationJob: {
      method: 'POST',
      url: '/v1/migrationJobs',
      body: { id: 'job-2', displayName: 'J2', type: 'one-time', sourceProfileId: 'src', destinationProfileId: 'dst' },
      status: 201,
      call: { method: 'createJob', args: [{ id: 'job-2', displayName: 'J2', type: 'one-time', sourceProfileId: 'src', destinationProfileId: 'dst' }, 'api'] },
    },
    getMigrationJob: { method: 'GET', url: '/v1/migrationJobs/job-1', status: 200, call: { method: 'getJob', args: ['job-1'] } },
    updateMigrationJob: {
      method: 'PATCH',
      url: '/v1/migrationJobs/job-1',
      body: { displayName: 'New name' },
      status: 200,
      call: { method: 'updateJob', args: ['job-1', { displayName: 'New name' }, 'api'] },
    },
    deleteMigrationJob: { method: 'DELETE', url: '/v1/migrationJobs/job-1', status: 204, call: { method: 'deleteJob', args: ['job-1', 'api'] } },
    startMigrationJob: { method: 'POST', url: '/v1/migrationJobs/job-1:start', body: {}, status: 200, call: { method: 'applyJobAction', args: ['job-1', 'start', 'api'] } },
    stopMigrationJob: { method: 'POST', url: '/v1/migrationJobs/running:stop', body: {}, status: 200, call: { method: 'applyJobAction', args: ['running', 'stop', 'api'] } },
    resumeMigrationJob: { method: 'POST', url: '/v1/migrationJobs/stopped-il:resume', body: {}, status: 200, call: { method: 'applyJobAction', args: ['stopped-il', 'resume', 'api'] } },
    restartMigrationJob: { method: 'POST', url: '/v1/migrationJobs/failed:restart', body: {}, status: 200, call: { method: 'applyJobAction', args: ['failed', 'restart', 'api'] } },
    promoteMigrationJob: { method: 'POST', url: '/v1/migrationJobs/incremental:promote', body: { requireValidation: true }, status: 200, call: { method: 'applyJobAction', args: ['incremental', 'promote', 'api', { requireValidation: true }] } },
    validateMigrationJob: { method: 'POST', url: '/v1/migrationJobs/job-1:validate', body: {}, status: 201, call: { method: 'validateJob', args: ['job-1', 'api'] } },
    listMigrationJobValidations: { method: 'GET', url: '/v1/migrationJobs/job-1/validations', status: 200, call: { method: 'listJobValidations', args: ['job-1'] } },
    getMigrationJobValidation: { method: 'GET', url: '/v1/migrationJobs/job-1/validations/v-1', status: 200, call: { method: 'getJobValidation', args: ['job-1', 'v-1'] } },
    verifyMigrationJob: { method: 'POST', url: '/v1/migrationJobs/job-1:verify', body: {}, status: 200, call: { method: 'verifyJob', args: ['job-1'] } },
    listMigrationJobObjects: { method: 'GET', url: '/v1/migrationJobs/job-1/objects', status: 200, call: { method: 'listJobObjects', args: ['job-1'] } },
    listMigrationJobSchemaObjects: { method: 'GET', url: '/v1/migrationJobs/job-1/schemaObjects', status: 200, call: { method: 'listJobSchemaObjects', args: ['job-1'] } },
    listMigrationJobEvents: { method: 'GET', url: '/v1/migrationJobs/job-1/events?afterId=1', status: 200, call: { method: 'listJobEvents', args: ['job-1', 1] } },
    listNodes: { method: 'GET', url: '/v1/nodes', status: 200, call: { method: 'listNodes', args: [] } },
    // A node id holds a colon ("<host>:<port>"): the custom method is what follows the last one.
    drainNode: { method: 'POST', url: '/v1/nodes/host-a:8080:drain', body: {}, status: 200, call: { method: 'setNodeDrain', args: ['host-a:8080', true] } },
    undrainNode: { method: 'POST', url: '/v1/nodes/host-a%3A8080:undrain', body: {}, status: 200, call: { method: 'setNodeDrain', args: ['host-a:8080', false] } },
  };

  it('has a case here for every route of the table, and no other', () => {
    expect(Object.keys(CASES).sort()).toEqual(API_ROUTES.map((route) => route.operationId).sort());
  });

  for (const route of API_ROUTES) {
    it(`${route.method} ${route.path} reaches ${route.operationId}`, async () => {
      const testCase = CASES[route.operationId]!;
      expect(testCase.method).toBe(route.method);
      service.jobs.set('stopped-il', { ...jobView('stopped-il', 'STOPPED'), phase: 'INCREMENTAL_LOAD' });
      service.jobs.set('incremental', { ...jobView('incremental', 'RUNNING'), phase: 'INCREMENTAL_LOAD' });
      const response = await app.inject({
        method: testCase.method as 'GET',
        url: testCase.url,
        ...(testCase.body !== undefined ? { payload: testCase.body as object } : {}),
      });
      expect(response.statusCode, response.body).toBe(route.status);
      expect(service.calls).toEqual([testCase.call]);
      if (route.response === null) {
        expect(response.body).toBe('');
      } else {
        expect(route.response.safeParse(response.json()).success).toBe(true);
      }
    });
  }

  it('returns list responses under the resource name, with the next page token', async () => {
    const first = await app.inject({ method: 'GET', url: '/v1/connectionProfiles?pageSize=1' });
    expect(first.json()).toEqual({ connectionProfiles: [profileView('src')], nextPageToken: '1' });
    const second = await app.inject({ method: 'GET', url: '/v1/connectionProfiles?pageSize=1&pageToken=1' });
    expect(second.json()).toEqual({ connectionProfiles: [profileView('dst')], nextPageToken: null });

    const jobs = await app.inject({ method: 'GET', url: '/v1/migrationJobs?status=RUNNING,FAILED' });
    expect(jobs.statusCode).toBe(200);
    expect(jobs.json().migrationJobs.map((job: JobView) => job.id).sort()).toEqual(['failed', 'running']);
    expect(jobs.json().nextPageToken).toBeNull();

    const objects = await app.inject({ method: 'GET', url: '/v1/migrationJobs/job-1/objects' });
    expect(objects.json().objects[0].name).toBe('public.orders');
    const events = await app.inject({ method: 'GET', url: '/v1/migrationJobs/job-1/events?afterId=1' });
    expect(events.json()).toEqual({ events: [expect.objectContaining({ id: 2, action: 'start' })] });
  });

  it('tells custom methods apart and keeps ids that contain a colon intact', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', payload: {} });
    expect(response.json().status).toBe('STARTING');
    expect(lastCall()).toEqual({ method: 'applyJobAction', args: ['job-1', 'start', 'api'] });

    // Only the text after the last colon is the method.
    await app.inject({ method: 'GET', url: '/v1/migrationJobs/a:b' });
    expect(lastCall()).toEqual({ method: 'getJob', args: ['a:b'] });
  });

  it('passes restart\'s objects to the service, and refuses a malformed list before it', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/migrationJobs/failed:restart', payload: { objects: ['public.orders', 'public.items'] } });
    expect(response.statusCode, response.body).toBe(200);
    expect(lastCall()).toEqual({ method: 'applyJobAction', args: ['failed', 'restart', 'api', { objects: ['public.orders', 'public.items'] }] });

    const callsBefore = service.calls.length;
    for (const payload of [{ objects: [] }, { objects: 'public.orders' }, { objects: [''] }, { objects: ['public.orders'], force: true }]) {
      const bad = await app.inject({ method: 'POST', url: '/v1/migrationJobs/failed:restart', payload });
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
      expect(bad.json().error.code).toBe('INVALID_ARGUMENT');
    }
    // The other actions take no objects.
    const start = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', payload: { objects: ['public.orders'] } });
    expect(start.statusCode).toBe(400);
    expect(service.calls.length).toBe(callsBefore);

    const document = buildOpenApiDocument() as Record<string, any>;
    const body = document.paths['/v1/migrationJobs/{id}:restart'].post.requestBody.content['application/json'].schema;
    expect(JSON.stringify(body)).toContain('RestartMigrationJobRequest');
    expect(document.components.schemas.RestartMigrationJobRequest.properties.objects.type).toBe('array');
  });

  it('records the X-Ferry-Actor header as the actor, and refuses a malformed one', async () => {
    await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', headers: { 'x-ferry-actor': 'cli' }, payload: {} });
    expect(lastCall()).toEqual({ method: 'applyJobAction', args: ['job-1', 'start', 'cli'] });

    const callsBefore = service.calls.length;
    const bad = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', headers: { 'x-ferry-actor': 'two words' }, payload: {} });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.fields).toEqual([expect.objectContaining({ path: 'X-Ferry-Actor', in: 'header' })]);
    expect(service.calls.length).toBe(callsBefore);
  });

  it('answers 404 in the error shape for unknown routes and unknown custom methods', async () => {
    for (const [method, url] of [
      ['GET', '/v1/nothing'],
      ['POST', '/v1/migrationJobs/job-1:explode'],
      ['POST', '/v1/connectionProfiles:bogus'],
      ['DELETE', '/v1/nothing/at/all'],
    ] as const) {
      const response = await app.inject({ method, url, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      const body = response.json();
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error.code).toBe('NOT_FOUND');
      expect(body.error.message).toContain(url.split('?')[0]);
      expect(body.error.message).toContain('/openapi.json');
    }
    const verb = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:explode', payload: {} });
    expect(verb.json().error.message).toContain(':start, :stop, :resume, :restart, :promote, :verify');
    expect(service.calls).toEqual([]);
  });

  it('answers 405 with the Allow header for a path that does not take the method', async () => {
    for (const [method, url, allow] of [
      ['POST', '/v1/migrationJobs/job-1', 'GET, PATCH, DELETE, HEAD'],
      ['PUT', '/v1/migrationJobs/job-1', 'GET, PATCH, DELETE, HEAD'],
      ['DELETE', '/v1/migrationJobs', 'GET, POST, HEAD'],
      ['PATCH', '/v1/connectionProfiles/src/whatever', null],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const response = await app.inject({ method, url, payload: {} });
      if (allow === null) {
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        continue;
      }
      expect(response.statusCode, `${method} ${url}`).toBe(405);
      expect(response.headers['allow']).toBe(allow);
      expect(response.json().error).toEqual({
        code: 'METHOD_NOT_ALLOWED',
        message: `${url} does not take ${method}; it takes ${allow}. GET /openapi.json lists every route of this API.`,
        details: { method, path: url, allow: allow.split(', ') },
      });
    }
    expect(service.calls).toEqual([]);
  });

  it('serves /healthz and routes added by extraRoutes', async () => {
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });

    const extra = buildApiServer(service, { extraRoutes: (instance) => instance.get('/extra', async () => 'extra 1\n') });
    const metrics = await extra.inject({ method: 'GET', url: '/extra' });
    expect(metrics.body).toBe('extra 1\n');
    await extra.close();
  });
});

describe('request validation', () => {
  it('names every wrong body field and how it is wrong, without calling the service', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/connectionProfiles',
      payload: { displayName: 'x', engine: 'oracle', host: 'h', port: '5432', tls: { mode: 'sometimes' } },
    });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe('INVALID_ARGUMENT');
    const fields = Object.fromEntries(error.details.fields.map((f: { path: string; message: string }) => [f.path, f.message]));
    expect(Object.keys(fields).sort()).toEqual(['engine', 'port', 'tls.mode', 'username']);
    expect(fields['engine']).toContain('"postgresql"|"mysql"');
    expect(fields['port']).toContain('expected number');
    expect(fields['username']).toMatch(/^is required/);
    expect(error.message).toContain('body field "engine"');
    expect(error.message).toContain('body field "username": is required');
    expect(error.details.fields.every((f: { in: string }) => f.in === 'body')).toBe(true);
    expect(service.calls).toEqual([]);
  });

  it('explains a bad record key (labels)', async () => {
    const response = await app.inject({ method: 'PATCH', url: '/v1/connectionProfiles/src', payload: { labels: { Team: 'a' } } });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.fields).toEqual([
      { path: 'labels.Team', in: 'body', message: 'key "Team": label keys are lowercase letters, digits, _ and -' },
    ]);
  });

  it('refuses malformed JSON, a missing body, an array body and a non-JSON content type with 4xx', async () => {
    const malformed = await app.inject({ method: 'POST', url: '/v1/connectionProfiles', headers: { 'content-type': 'application/json' }, payload: '{"displayName": ' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('INVALID_ARGUMENT');
    expect(malformed.json().error.message).toContain('not valid JSON');

    const missing = await app.inject({ method: 'POST', url: '/v1/migrationJobs', headers: { 'content-type': 'application/json' } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.message).toContain('request body is missing');

    const array = await app.inject({ method: 'POST', url: '/v1/migrationJobs', payload: [1, 2] });
    expect(array.statusCode).toBe(400);
    expect(array.json().error.message).toContain('expected object');

    const text = await app.inject({ method: 'POST', url: '/v1/migrationJobs', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    expect(text.json().error).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('application/json'), details: { contentType: 'text/plain' } });

    expect(service.calls).toEqual([]);
  });

  it('rejects prototype poisoning in the body', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/connectionProfiles',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__": {"admin": true}, "displayName": "x"}',
    });
    expect(response.statusCode).toBe(400);
    expect(service.calls).toEqual([]);
  });

  it('accepts an empty JSON body on a custom method', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:start', headers: { 'content-type': 'application/json' }, payload: '' });
    expect(response.statusCode).toBe(200);
  });

  it('refuses bodies over 1 MB with 413 in the error shape', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/connectionProfiles',
      payload: { ...PROFILE_BODY, displayName: 'x'.repeat(1024 * 1024 + 10) },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(response.json().error.message).toContain('1 MB');
  });

  it('validates query parameters', async () => {
    const badStatus = await app.inject({ method: 'GET', url: '/v1/migrationJobs?status=RUNNING,NOPE' });
    expect(badStatus.statusCode).toBe(400);
    expect(badStatus.json().error.details.fields).toEqual([
      { path: 'status', in: 'query', message: expect.stringContaining('unknown status "NOPE"') },
    ]);
    expect(badStatus.json().error.message).toContain('query parameter "status"');

    const badSize = await app.inject({ method: 'GET', url: '/v1/connectionProfiles?pageSize=lots' });
    expect(badSize.statusCode).toBe(400);
    expect(badSize.json().error.details.fields[0].path).toBe('pageSize');

    const tooBig = await app.inject({ method: 'GET', url: '/v1/connectionProfiles?pageSize=5000' });
    expect(tooBig.statusCode).toBe(400);

    const repeated = await app.inject({ method: 'GET', url: '/v1/migrationJobs?status=RUNNING&status=FAILED' });
    expect(repeated.statusCode).toBe(400);

    const afterId = await app.inject({ method: 'GET', url: '/v1/migrationJobs/job-1/events?afterId=-3' });
    expect(afterId.statusCode).toBe(400);
    expect(service.calls).toEqual([]);
  });

  it('passes a PATCH body to the service exactly as sent: no defaults added', async () => {
    const response = await app.inject({ method: 'PATCH', url: '/v1/connectionProfiles/src', payload: { displayName: 'Renamed' } });
    expect(response.statusCode).toBe(200);
    // Schema defaults (labels: {}, connectivityMethod: 'direct') would wipe stored values.
    expect(lastCall()!.args[1]).not.toHaveProperty('labels');
    expect(lastCall()!.args[1]).not.toHaveProperty('connectivityMethod');
  });
});

describe('error mapping', () => {
  it('passes ACTION_NOT_ALLOWED through as 409 with its message and details', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/migrationJobs/job-1:stop', payload: {} });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({
      error: {
        code: 'ACTION_NOT_ALLOWED',
        message: 'Cannot stop job "job-1": it is Not started. Allowed now: start, delete.',
        details: { status: 'NOT_STARTED', action: 'stop', availableActions: ['start', 'delete'] },
      },
    });
  });

  it('maps each FerryError to its status with only code, message and details', async () => {
    const notFound = await app.inject({ method: 'GET', url: '/v1/migrationJobs/missing' });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'Migration job "missing" does not exist.', details: { id: 'missing' } } });

    const dup = await app.inject({ method: 'POST', url: '/v1/connectionProfiles', payload: PROFILE_BODY });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('ALREADY_EXISTS');

    service.failNext = new FerryError('AUTHENTICATION_FAILED', 'Password authentication failed for user "u"; fix the password.', { retryable: true });
    const unreachable = await app.inject({ method: 'POST', url: '/v1/connectionProfiles/src:test', payload: {} });
    expect(unreachable.statusCode).toBe(422);
    expect(unreachable.json()).toEqual({
      error: { code: 'AUTHENTICATION_FAILED', message: 'Password authentication failed for user "u"; fix the password.', details: {} },
    });
  });

  it('answers 500 INTERNAL with a generic message for anything else, without leaking it', async () => {
    const logged: unknown[] = [];
    const logger = {
      level: 'info',
      error: (...args: unknown[]) => logged.push(args),
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
      trace: () => undefined,
      fatal: () => undefined,
      silent: () => undefined,
      child() {
        return this;
      },
    };
    const logging = buildApiServer(service, { logger });
    service.failNext = new Error('connection string postgres://admin:hunter2@db failed');
    const response = await logging.inject({ method: 'GET', url: '/v1/migrationJobs/job-1' });
    expect(response.statusCode).toBe(500);
    const { error } = response.json();
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toContain('server log');
    expect(response.body).not.toContain('hunter2');
    expect(logged.length).toBeGreaterThan(0);
    await logging.close();
  });

  it('strips fields a response schema does not declare (a secret never leaks)', async () => {
    service.profiles.set('leaky', { ...profileView('leaky'), password: 'hunter2' } as ProfileView);
    const response = await app.inject({ method: 'GET', url: '/v1/connectionProfiles/leaky' });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('hunter2');
    expect(response.json().passwordSet).toBe(true);
  });

  it('answers 500 when the service breaks the response contract', async () => {
    service.jobs.set('broken', { ...jobView('broken'), status: 'EXPLODED' } as unknown as JobView);
    const response = await app.inject({ method: 'GET', url: '/v1/migrationJobs/broken' });
    expect(response.statusCode).toBe(500);
    expect(response.json().error.code).toBe('INTERNAL');
  });
});

describe('API token', () => {
  it('requires the bearer token on /v1 routes when configured, and leaves /healthz open', async () => {
    const secured = buildApiServer(service, { apiToken: 's3cret' });
    const none = await secured.inject({ method: 'GET', url: '/v1/migrationJobs' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('UNAUTHENTICATED');
    expect(none.json().error.message).toContain('FERRY_TOKEN');
    const wrong = await secured.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    const right = await secured.inject({ method: 'GET', url: '/v1/migrationJobs', headers: { authorization: 'Bearer s3cret' } });
    expect(right.statusCode).toBe(200);
    expect((await secured.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await secured.close();
  });
});

describe('OpenAPI document', () => {
  it('is served at /openapi.json, parses, and is the document built from the route table', async () => {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = JSON.parse(response.body);
    expect(document).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.title).toBe('Ferry');
  });

  it('has every route of the table, with its path, method, operationId, parameters and status', () => {
    const document = buildOpenApiDocument();
    const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    expect(operations.sort()).toEqual(API_ROUTES.map((route) => `${route.method} ${route.path}`).sort());

    const operationIds = new Set<string>();
    for (const route of API_ROUTES) {
      const operation = document.paths[route.path]![route.method.toLowerCase()] as Record<string, any>;
      expect(operation.operationId).toBe(route.operationId);
      operationIds.add(operation.operationId);
      // Every {param} of the path is declared as a required path parameter.
      const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (operation.parameters ?? []).filter((p: any) => p.in === 'path');
      expect(declared.map((p: any) => p.name)).toEqual(pathParams);
      expect(declared.every((p: any) => p.required === true)).toBe(true);
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining([String(route.status), '400', '404', '409', '422', '500']));
      expect(Boolean(operation.requestBody)).toBe(route.body !== undefined);
    }
    expect(operationIds.size).toBe(API_ROUTES.length);

    const listJobs = document.paths['/v1/migrationJobs']!['get'] as Record<string, any>;
    expect(listJobs.parameters.map((p: any) => p.name).sort()).toEqual(['orderBy', 'pageSize', 'pageToken', 'search', 'status']);
  });

  it('has only $refs that resolve, and describes the error body', () => {
    const document = buildOpenApiDocument();
    const refs: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) {
          if (key === '$ref' && typeof inner === 'string') refs.push(inner);
          else walk(inner);
        }
      }
    };
    walk(document);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of refs) {
      expect(ref.startsWith('#/')).toBe(true);
      const target = ref
        .slice(2)
        .split('/')
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], document);
      expect(target, ref).toBeDefined();
    }
    // No stray JSON Schema document keys inside components.
    expect(JSON.stringify(document.components.schemas)).not.toContain('"$schema"');

    const error = document.components.schemas['Error'] as any;
    expect(error.required).toEqual(['error']);
    expect(error.properties.error.required).toEqual(['code', 'message', 'details']);
    const jobList = document.components.schemas['ListMigrationJobsResponse'] as any;
    expect(jobList.properties.migrationJobs.items).toEqual({ $ref: '#/components/schemas/MigrationJob' });
    const job = document.components.schemas['MigrationJob'] as any;
    expect(job.properties.status.enum).toEqual([...JOB_STATUSES]);
    // Request schemas are documented as input: defaults are optional fields.
    const createProfile = document.components.schemas['CreateConnectionProfileRequest'] as any;
    expect(createProfile.required).toEqual(['displayName', 'engine', 'host', 'username']);
  });
});
