/**
 * The continuous job of issue 12's end-to-end tests, for either destination engine: the
 * application schema of mysql-real-schema.ts on a MariaDB source, under its workload from
 * before the start (cascades and triggers during the dump) to promote, with `ferry serve`
 * killed by SIGKILL twice during the binlog stream. The caller checks the destination while
 * the stream runs (foreign keys with actions present, the others and the triggers absent) and
 * after promote; this runner asserts the job itself and compares the databases.
 */
import { expect } from 'vitest';
import { compareAcrossEngines, formatCrossDifferences, type CrossCompareOptions, type CrossSide } from './compare-cross.js';
import { createJob, createProfile, eventsOf, jobOf, sleep, waitForJob, type JobView } from './e2e-jobs.js';
import { FAST_RETRY_ENV, api, makeDataDir, removeDataDir, runCliJson, spawnFerryServer, type ApiClient, type FerryServer } from './ferry-server.js';
import type { Connection } from 'mysql2/promise';
import { startMariadbInstance, type MariadbInstance } from './mariadb-instance.js';
import { RealSchemaWorkload, createRealSchema, type RealWorkloadStats } from './mysql-real-schema.js';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

/** The source: a database on a private MariaDB server (its own binlog; the shared server's restarts do not reach it). */
export interface RealSource {
  name: string;
  instance: MariadbInstance;
  /** With `database` set. */
  params: ConnectionParams;
  connect(): Promise<Connection>;
}

/** Starts a private MariaDB server and builds the schema in database `name`, filled for `seed`. */
export async function startRealSource(serverId: number, name: string, seed: number): Promise<RealSource> {
  const instance = await startMariadbInstance({ serverId });
  try {
    const admin = await instance.connect();
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    await admin.end();
    await createRealSchema(instance.params(name), seed);
  } catch (error) {
    await instance.stop();
    throw error;
  }
  return { name, instance, params: instance.params(name), connect: () => instance.connect(name) };
}

export interface RealSchemaRun {
  stats: RealWorkloadStats;
  kills: string[];
  /** Private MariaDB servers that crashed during the run and were started again (what their log said). */
  serverCrashes: string[];
  verify: { ok: boolean; checks: Array<{ code: string; severity: string; message: string; objects?: string[] }> };
}

export async function runRealSchemaJob(options: {
  jobId: string;
  source: RealSource;
  destinationProfile: ConnectionParams;
  /** The destination as the comparison reads it, opened after promote. */
  destination(): Promise<CrossSide>;
  seed: number;
  /** Called once the job applies changes, before the first kill. */
  duringStream(): Promise<void>;
  /** A private destination server, watched like the source's. */
  destinationServer?: MariadbInstance;
  /** More `ferry jobs create` options (value policies). */
  jobArgs?: string[];
  /** How the final comparison treats documented lossy mappings. */
  compareOptions?: CrossCompareOptions;
}): Promise<RealSchemaRun> {
  const { jobId, source, seed } = options;
  // MariaDB 10.11.19 here may die with SIGSEGV (ha_maria::drop_table under
  // create_tmp_table_for_schema) on information_schema queries that open the system databases'
  // views (main's abfa785 rewrites Ferry's such queries). Such a server is started again on its
  // data directory (crash recovery), the job reconnects by itself, and the run says so.
  const serverCrashes: string[] = [];
  let watching = true;
  const watchdog = (async () => {
    while (watching) {
      for (const [role, server] of [['source', source.instance], ['destination', options.destinationServer]] as const) {
        if (server === undefined || !server.exited() || !watching) continue;
        const crash = server.log().split('\n').filter((line) => /got signal/.test(line)).at(-1) ?? 'exited';
        serverCrashes.push(`${role} server: ${crash.trim()}`);
        await server.restart().catch((error: unknown) => serverCrashes.push(`${role} server did not start again: ${String(error)}`));
      }
      await sleep(200);
    }
  })();
  const dataDir = makeDataDir(`ferry-${jobId}-`);
  let server: FerryServer = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
  let client: ApiClient = api(server.url);
  const current = () => client;
  const workload = new RealSchemaWorkload(source.params, { workers: 3, seed, pauseMs: 4 });
  try {
    await createProfile(server, 'src', source.instance.params(null));
    await createProfile(server, 'dst', options.destinationProfile);
    await createJob(server, jobId, { type: 'continuous', source: 'src', destination: 'dst', include: [source.name], dumpParallelism: 3, extraArgs: options.jobArgs ?? [] });
    const verify = await client.postOk<RealSchemaRun['verify']>(`/v1/migrationJobs/${jobId}:verify`);

    // Writes from before the start: the dump copies tables while parents are deleted and moved.
    await workload.start();
    await runCliJson(['jobs', 'start', jobId], { server: server.url });
    await waitForJob(current, jobId, 'Incremental load', (j) => j.phase === 'INCREMENTAL_LOAD', 180_000);
    await waitForJob(current, jobId, 'changes applied', (j) => (j.replication?.changesApplied ?? 0) > 0, 60_000);
    await options.duringStream();

    const kills: string[] = [];
    for (let k = 0; k < 2; k++) {
      await sleep(500 + ((seed * (k + 7)) % 1500));
      const job: JobView = await jobOf(client, jobId);
      if (job.status === 'FAILED') throw new Error(`job failed during streaming: ${JSON.stringify(job.error)}`);
      expect(job.phase).toBe('INCREMENTAL_LOAD');
      const exit = await server.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      kills.push(`streaming #${k + 1} (${job.replication?.changesApplied ?? 0} changes applied by that server)`);
      server = await spawnFerryServer({ dataDir, env: FAST_RETRY_ENV });
      client = api(server.url);
      await waitForJob(current, jobId, 'changes applied after the restart', (j) => j.phase === 'INCREMENTAL_LOAD' && (j.replication?.changesApplied ?? 0) > (job.replication?.changesApplied ?? 0), 90_000);
    }

    const stats = await workload.stop();
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    await runCliJson(['jobs', 'promote', jobId], { server: server.url });
    const completed = await waitForJob(current, jobId, 'Completed after promote', (j) => j.status === 'COMPLETED', 180_000);
    expect(completed.error).toBeNull();
    const events = await eventsOf(client, jobId);
    expect(events.filter((e) => e.kind === 'action').map((e) => e.action)).toEqual(['start', 'promote']);
    expect(events.filter((e) => e.status === 'FAILED').map((e) => e.message)).toEqual([]);

    const oracle = await source.connect();
    try {
      const differences = await compareAcrossEngines({ engine: 'mysql', connection: oracle, schema: source.name }, await options.destination(), { maxDifferences: 40, ...options.compareOptions });
      expect(differences, formatCrossDifferences(differences)).toEqual([]);
    } finally {
      await oracle.end().catch(() => undefined);
    }
    return { stats, kills, verify, serverCrashes };
  } finally {
    watching = false;
    await watchdog;
    await workload.stop().catch(() => undefined);
    await server.stop().catch(() => undefined);
    removeDataDir(dataDir);
  }
}
