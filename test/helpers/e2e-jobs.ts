/**
 * Driving jobs of a real `ferry serve` in the end-to-end tests of every engine pair: profiles
 * and jobs created through the CLI, the job's view polled through the REST API.
 */
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { runCliJson, type ApiClient, type FerryServer } from './ferry-server.js';

export interface JobView {
  id: string;
  type: string;
  status: string;
  substatus: string | null;
  phase: string | null;
  availableActions: string[];
  error: { code: string; message: string; retryable: boolean; recoverable: boolean } | null;
  replication: { changesApplied: number; transactionsApplied: number; appliedPosition: string | null; lagSeconds: number } | null;
  promoteRequested: boolean;
  progress: { tablesTotal: number; tablesCompleted: number };
}

export interface JobObject {
  name: string;
  state: string;
  rowsCopied: number;
  updateTime: string;
  error?: { code: string; message: string } | null;
}

export interface JobEvent {
  kind: string;
  action?: string;
  status?: string;
  phase?: string | null;
  message: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Creates a connection profile through the CLI for `params` (MySQL profiles name no database). */
export async function createProfile(server: FerryServer, id: string, params: ConnectionParams): Promise<void> {
  await runCliJson(
    [
      'profiles', 'create', '--id', id, '--engine', params.engine, '--host', params.host, '--port', String(params.port), '--username', params.username,
      ...(params.engine === 'postgresql' && params.database !== null ? ['--database', params.database] : []),
      ...(params.password !== null ? ['--password', params.password] : []),
    ],
    { server: server.url },
  );
}

/** Creates a job through the CLI; `include` is the selection (a MySQL database or a PostgreSQL schema). */
export async function createJob(
  server: FerryServer,
  id: string,
  options: { type: 'one-time' | 'continuous'; source: string; destination: string; include: string[]; dumpParallelism?: number; extraArgs?: string[] },
): Promise<JobView> {
  return runCliJson<JobView>(
    [
      'jobs', 'create', '--id', id, '--type', options.type, '--source', options.source, '--destination', options.destination,
      ...options.include.flatMap((p) => ['--include', p]),
      '--dump-parallelism', String(options.dumpParallelism ?? 2),
      ...(options.extraArgs ?? []),
    ],
    { server: server.url },
  );
}

export async function jobOf(client: ApiClient, id: string): Promise<JobView> {
  return client.getOk<JobView>(`/v1/migrationJobs/${id}`);
}

export async function objectsOf(client: ApiClient, id: string): Promise<JobObject[]> {
  return (await client.getOk<{ objects: JobObject[] }>(`/v1/migrationJobs/${id}/objects`)).objects;
}

export async function eventsOf(client: ApiClient, id: string): Promise<JobEvent[]> {
  return (await client.getOk<{ events: JobEvent[] }>(`/v1/migrationJobs/${id}/events`)).events;
}

/** Polls until `ready(job)`; throws at once when the job fails (unless `ready` accepts it) or after the timeout. */
export async function waitForJob(
  client: () => ApiClient,
  id: string,
  what: string,
  ready: (job: JobView) => boolean,
  timeoutMs = 120_000,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  for (;;) {
    try {
      last = await jobOf(client(), id);
    } catch (error) {
      // A server being restarted by the test: try again.
      if (Date.now() > deadline) throw error;
      await sleep(250);
      continue;
    }
    if (ready(last)) return last;
    if (last.status === 'FAILED') throw new Error(`job ${id} failed while waiting for ${what}: ${JSON.stringify(last.error)}`);
    if (Date.now() > deadline) throw new Error(`job ${id}: timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(250);
  }
}

export const inIncrementalLoad = (job: JobView) => job.status === 'RUNNING' && job.substatus === 'Incremental load' && job.replication !== null;

/**
 * Kill tests: tables DUMPED before a kill must stay DUMPED after it, not be copied again.
 * `kept` maps a table to its object's updateTime when it was seen DUMPED; `check` records a
 * violation for each kept table that went back or was written again.
 */
export function watchCopiedTables(): { kept: Map<string, string>; violations: string[]; check(objects: JobObject[]): void } {
  const kept = new Map<string, string>();
  const violations: string[] = [];
  const check = (objects: JobObject[]) => {
    for (const o of objects) {
      const updateTime = kept.get(o.name);
      if (updateTime === undefined || o.state === 'REPLICATING' || o.state === 'COMPLETED') continue;
      if (o.state !== 'DUMPED') violations.push(`${o.name} went back to ${o.state} after a kill`);
      else if (o.updateTime !== updateTime) violations.push(`${o.name} was copied again (DUMPED at ${updateTime}, then at ${o.updateTime})`);
    }
  };
  return { kept, violations, check };
}
