/**
 * The console's only door to Ferry: fetch against the REST API on the same origin. Sends the
 * API token kept in this browser (localStorage) as a bearer token; a 401 tells the app to
 * show the login page.
 */
import type {
  ConnectionTest,
  CreateJobInput,
  CreateProfileInput,
  FerryNode,
  Job,
  JobAction,
  JobEvent,
  JobListOrder,
  JobObject,
  JobStatus,
  ObjectSelection,
  Profile,
  SourceTable,
  UpdateJobInput,
  UpdateProfileInput,
  VerifyReport,
  Validation,
} from './types';

const TOKEN_KEY = 'ferry.apiToken';

/** An answer other than 2xx: the API's error code and message (which says what to do). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, status: number, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export function storedToken(): string | null {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string): void {
  window.localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  window.localStorage.removeItem(TOKEN_KEY);
}

const unauthorizedListeners = new Set<() => void>();

/** Calls `listener` whenever the API answers 401; returns the unsubscribe function. */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal;
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
  }
  // Job history records who acted: "Start requested by console".
  const headers: Record<string, string> = { accept: 'application/json', 'x-ferry-actor': 'console' };
  const token = storedToken();
  if (token) headers['authorization'] = `Bearer ${token}`;
  // The server takes a POST or PATCH only as JSON: custom methods without input send {}.
  const body = options.body ?? (method === 'POST' || method === 'PATCH' ? {} : undefined);
  if (body !== undefined) headers['content-type'] = 'application/json';

  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
      cache: 'no-store',
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError('UNAVAILABLE', 'Ferry did not answer: is the server running? The console retries by itself.', 0);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (response.ok) return parsed as T;
  if (response.status === 401) for (const listener of unauthorizedListeners) listener();
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    const details = error.details !== null && typeof error.details === 'object' ? (error.details as Record<string, unknown>) : {};
    throw new ApiError(error.code, error.message, response.status, details);
  }
  throw new ApiError(`HTTP_${response.status}`, `${method} ${url.pathname} answered ${response.status} ${response.statusText}.`, response.status);
}

const segment = encodeURIComponent;

/** Follows nextPageToken until the last page. */
async function listAll<T>(fetchPage: (pageToken: string | undefined) => Promise<{ items: T[]; next: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < 100; page++) {
    const result = await fetchPage(pageToken);
    items.push(...result.items);
    if (!result.next) break;
    pageToken = result.next;
  }
  return items;
}

/** One page of the jobs list, filtered and ordered by the server. */
export interface JobListQuery {
  pageSize: number;
  /** The nextPageToken of the previous page; absent for the first. */
  pageToken?: string;
  status?: JobStatus[];
  /** Text in the id or display name. */
  search?: string;
  orderBy?: JobListOrder;
}

export interface JobPage {
  jobs: Job[];
  nextPageToken: string | null;
  /** Jobs matching the filters over all pages. */
  totalSize: number;
}

export const api = {
  async listJobPage(query: JobListQuery, signal?: AbortSignal): Promise<JobPage> {
    const page = await request<{ migrationJobs: Job[]; nextPageToken: string | null; totalSize: number }>('GET', '/v1/migrationJobs', {
      query: {
        pageSize: query.pageSize,
        pageToken: query.pageToken,
        status: query.status?.join(','),
        search: query.search?.trim(),
        orderBy: query.orderBy,
      },
      signal,
    });
    return { jobs: page.migrationJobs, nextPageToken: page.nextPageToken, totalSize: page.totalSize };
  },
  /** Every job, all pages: for views that need them all (profiles and the jobs that use them). */
  listJobs(status: JobStatus[] = [], signal?: AbortSignal): Promise<Job[]> {
    return listAll(async (pageToken) => {
      const page = await request<{ migrationJobs: Job[]; nextPageToken: string | null }>('GET', '/v1/migrationJobs', {
        query: { pageSize: 1000, pageToken, status: status.join(',') },
        signal,
      });
      return { items: page.migrationJobs, next: page.nextPageToken };
    });
  },
  getJob: (id: string, signal?: AbortSignal) => request<Job>('GET', `/v1/migrationJobs/${segment(id)}`, { signal }),
  createJob: (input: CreateJobInput) => request<Job>('POST', '/v1/migrationJobs', { body: input }),
  updateJob: (id: string, input: UpdateJobInput) => request<Job>('PATCH', `/v1/migrationJobs/${segment(id)}`, { body: input }),
  deleteJob: (id: string) => request<void>('DELETE', `/v1/migrationJobs/${segment(id)}`),
  /** start | stop | resume | restart | promote; delete is deleteJob. */
  applyJobAction: (id: string, action: Exclude<JobAction, 'delete'>) => request<Job>('POST', `/v1/migrationJobs/${segment(id)}:${action}`),
  /** Restart of chosen tables only (source "schema.table"), while the job is in Full dump. */
  restartJobObjects: (id: string, objects: string[]) => request<Job>('POST', `/v1/migrationJobs/${segment(id)}:restart`, { body: { objects } }),
  verifyJob: (id: string) => request<VerifyReport>('POST', `/v1/migrationJobs/${segment(id)}:verify`),
  validateJob: (id: string) => request<Validation>('POST', `/v1/migrationJobs/${segment(id)}:validate`),
  listJobValidations: async (id: string, signal?: AbortSignal) =>
    (await request<{ validations: Validation[] }>('GET', `/v1/migrationJobs/${segment(id)}/validations`, { signal })).validations,
  listJobObjects: async (id: string, signal?: AbortSignal) =>
    (await request<{ objects: JobObject[] }>('GET', `/v1/migrationJobs/${segment(id)}/objects`, { signal })).objects,
  listJobEvents: async (id: string, afterId: number, signal?: AbortSignal) =>
    (await request<{ events: JobEvent[] }>('GET', `/v1/migrationJobs/${segment(id)}/events`, { query: { afterId }, signal })).events,

  listProfiles(signal?: AbortSignal): Promise<Profile[]> {
    return listAll(async (pageToken) => {
      const page = await request<{ connectionProfiles: Profile[]; nextPageToken: string | null }>('GET', '/v1/connectionProfiles', {
        query: { pageSize: 1000, pageToken },
        signal,
      });
      return { items: page.connectionProfiles, next: page.nextPageToken };
    });
  },
  getProfile: (id: string, signal?: AbortSignal) => request<Profile>('GET', `/v1/connectionProfiles/${segment(id)}`, { signal }),
  createProfile: (input: CreateProfileInput) => request<Profile>('POST', '/v1/connectionProfiles', { body: input }),
  updateProfile: (id: string, input: UpdateProfileInput) => request<Profile>('PATCH', `/v1/connectionProfiles/${segment(id)}`, { body: input }),
  deleteProfile: (id: string) => request<void>('DELETE', `/v1/connectionProfiles/${segment(id)}`),
  testProfile: (id: string) => request<ConnectionTest>('POST', `/v1/connectionProfiles/${segment(id)}:test`),
  /** Every table of the profile's database, each marked with whether `selection` selects it. */
  listProfileTables: async (id: string, selection: ObjectSelection, signal?: AbortSignal) =>
    (await request<{ tables: SourceTable[] }>('POST', `/v1/connectionProfiles/${segment(id)}:listTables`, { body: selection, signal })).tables,
  testProfileInput: (input: CreateProfileInput) => request<ConnectionTest>('POST', '/v1/connectionProfiles:test', { body: input }),

  listNodes: async (signal?: AbortSignal) => (await request<{ nodes: FerryNode[] }>('GET', '/v1/nodes', { signal })).nodes,
  /** The node takes no new job and hands its jobs to other nodes at their next safe point. */
  drainNode: async (id: string): Promise<void> => {
    await request<unknown>('POST', `/v1/nodes/${segment(id)}:drain`);
  },
  /** The node takes jobs again. */
  undrainNode: async (id: string): Promise<void> => {
    await request<unknown>('POST', `/v1/nodes/${segment(id)}:undrain`);
  },
};

/** A message to show for anything a call threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.status === 0 ? error.message : `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
