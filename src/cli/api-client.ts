/**
 * A small typed client of Ferry's REST API over fetch, one method per route. Non-2xx
 * answers throw an ApiClientError carrying the API's error code and message.
 */
import type { JobAction } from '../core/lifecycle.js';
import type {
  JobEventListView,
  NodeListView,
  JobListView,
  JobObjectListView,
  ProfileListView,
} from '../api/routes.js';
import type {
  ConnectionTestView,
  CreateJobInput,
  CreateProfileInput,
  JobView,
  NodeView,
  ProfileView,
  RestartJobInput,
  UpdateJobInput,
  UpdateProfileInput,
  SchemaObjectReportView,
  VerifyReportView,
  PromoteInput,
  ValidationView,
} from '../service/inputs.js';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

export interface ApiClientOptions {
  /** Base URL; else FERRY_SERVER; else http://127.0.0.1:8080. */
  server?: string;
  /** Bearer token; else FERRY_TOKEN when set. */
  token?: string;
  /** Recorded in job history as who acted (X-Ferry-Actor). Default 'cli'. */
  actor?: string;
  /** Per-request timeout. Default 120 s (tests and verify connect to databases). */
  timeoutMs?: number;
  /** Where FERRY_SERVER and FERRY_TOKEN are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
}

/** A failed call: the API's error, or UNAVAILABLE / TIMEOUT when the server did not answer. */
export class ApiClientError extends Error {
  /** The API error code (NOT_FOUND, ACTION_NOT_ALLOWED, ...), UNAVAILABLE, TIMEOUT, or HTTP_<status>. */
  readonly code: string;
  /** The HTTP status, or null when there was no answer. */
  readonly status: number | null;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, status: number | null, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ApiClientError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export type JobListOptions = { status?: string | string[]; pageSize?: number; pageToken?: string; search?: string; orderBy?: string };
export type ProfileListOptions = { pageSize?: number; pageToken?: string };

function networkCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } } | null)?.cause;
  return cause?.code ?? cause?.errors?.[0]?.code;
}

export class ApiClient {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly actor: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ApiClientOptions = {}) {
    const env = options.env ?? process.env;
    const server = options.server ?? env['FERRY_SERVER'] ?? DEFAULT_SERVER_URL;
    this.baseUrl = server.replace(/\/+$/, '');
    const token = options.token ?? env['FERRY_TOKEN'];
    this.token = token === undefined || token === '' ? undefined : token;
    this.actor = options.actor ?? 'cli';
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  // Connection profiles

  listProfiles(options: ProfileListOptions = {}): Promise<ProfileListView> {
    return this.request('GET', '/v1/connectionProfiles', { query: options });
  }
  createProfile(input: CreateProfileInput): Promise<ProfileView> {
    return this.request('POST', '/v1/connectionProfiles', { body: input });
  }
  getProfile(id: string): Promise<ProfileView> {
    return this.request('GET', `/v1/connectionProfiles/${segment(id)}`);
  }
  updateProfile(id: string, input: UpdateProfileInput): Promise<ProfileView> {
    return this.request('PATCH', `/v1/connectionProfiles/${segment(id)}`, { body: input });
  }
  async deleteProfile(id: string): Promise<void> {
    await this.request('DELETE', `/v1/connectionProfiles/${segment(id)}`);
  }
  testProfile(id: string): Promise<ConnectionTestView> {
    return this.request('POST', `/v1/connectionProfiles/${segment(id)}:test`);
  }
  testProfileInput(input: CreateProfileInput): Promise<ConnectionTestView> {
    return this.request('POST', '/v1/connectionProfiles:test', { body: input });
  }

  // Migration jobs

  listJobs(options: JobListOptions = {}): Promise<JobListView> {
    const status = Array.isArray(options.status) ? options.status.join(',') : options.status;
    return this.request('GET', '/v1/migrationJobs', { query: { ...options, status } });
  }
  createJob(input: CreateJobInput): Promise<JobView> {
    return this.request('POST', '/v1/migrationJobs', { body: input });
  }
  getJob(id: string): Promise<JobView> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}`);
  }
  updateJob(id: string, input: UpdateJobInput): Promise<JobView> {
    return this.request('PATCH', `/v1/migrationJobs/${segment(id)}`, { body: input });
  }
  async deleteJob(id: string): Promise<void> {
    await this.request('DELETE', `/v1/migrationJobs/${segment(id)}`);
  }
  /** start | stop | resume | restart | promote: the job as it is once the action is recorded. */
  applyJobAction(id: string, action: Exclude<JobAction, 'delete'>, body?: PromoteInput): Promise<JobView> {
    return this.request('POST', `/v1/migrationJobs/${segment(id)}:${action}`, body === undefined ? {} : { body });
  }
  /** Restart: the whole job, or with `objects` those tables only. */
  restartJob(id: string, input: RestartJobInput = {}): Promise<JobView> {
    return this.request('POST', `/v1/migrationJobs/${segment(id)}:restart`, { body: input });
  }
  validateJob(id: string): Promise<ValidationView> {
    return this.request('POST', `/v1/migrationJobs/${segment(id)}:validate`);
  }
  getJobValidation(id: string, validationId: string): Promise<ValidationView> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}/validations/${segment(validationId)}`);
  }
  listJobValidations(id: string): Promise<{ validations: ValidationView[] }> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}/validations`);
  }
  verifyJob(id: string): Promise<VerifyReportView> {
    return this.request('POST', `/v1/migrationJobs/${segment(id)}:verify`);
  }
  listJobObjects(id: string): Promise<JobObjectListView> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}/objects`);
  }
  listJobSchemaObjects(id: string): Promise<SchemaObjectReportView> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}/schemaObjects`);
  }
  listJobEvents(id: string, afterId?: number): Promise<JobEventListView> {
    return this.request('GET', `/v1/migrationJobs/${segment(id)}/events`, { query: { afterId } });
  }

  listNodes(): Promise<NodeListView> {
    return this.request('GET', '/v1/nodes');
  }

  setNodeDrain(nodeId: string, drain: boolean): Promise<NodeView> {
    return this.request('POST', `/v1/nodes/${segment(nodeId)}:${drain ? 'drain' : 'undrain'}`);
  }

  private async request<T>(
    method: string,
    path: string,
    options: { query?: Record<string, string | number | undefined>; body?: unknown } = {},
  ): Promise<T> {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json', 'x-ferry-actor': this.actor };
    if (this.token) headers['authorization'] = `Bearer ${this.token}`;
    // The server takes a POST or PATCH only as JSON: custom methods without input send {}.
    const body = options.body ?? (method === 'POST' || method === 'PATCH' ? {} : undefined);
    if (body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      if ((error as { name?: string } | null)?.name === 'TimeoutError') {
        throw new ApiClientError(
          'TIMEOUT',
          `Ferry at ${this.baseUrl} did not answer ${method} ${path} within ${Math.round(this.timeoutMs / 1000)} s; check the server's log.`,
          null,
          {},
          error,
        );
      }
      const code = networkCode(error);
      const reason = code === undefined || code === 'ECONNREFUSED' ? '' : ` (${code})`;
      throw new ApiClientError('UNAVAILABLE', `Could not reach Ferry at ${this.baseUrl}${reason}: is \`ferry serve\` running?`, null, {}, error);
    }

    const text = await response.text();
    if (response.ok) {
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new ApiClientError(
          'BAD_RESPONSE',
          `${method} ${url.pathname} answered ${response.status} with something that is not JSON. Is ${this.baseUrl} a Ferry server?`,
          response.status,
          {},
          error,
        );
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      const details = error.details !== null && typeof error.details === 'object' ? (error.details as Record<string, unknown>) : {};
      throw new ApiClientError(error.code, error.message, response.status, details);
    }
    const snippet = text.trim().slice(0, 200);
    throw new ApiClientError(
      `HTTP_${response.status}`,
      `${method} ${url.pathname} answered ${response.status} ${response.statusText}${snippet ? `: ${snippet}` : ''}. Is ${this.baseUrl} a Ferry server?`,
      response.status,
    );
  }
}

function segment(id: string): string {
  return encodeURIComponent(id);
}
