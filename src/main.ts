/**
 * The one place that wires concrete parts together: the metadata store, the engines, the
 * job supervisor, the service and the HTTP API.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { EngineRegistry } from './engines/engine-registry.js';
import { postgresEngine } from './engines/postgres/postgres-engine.js';
import { primePgDumpTools } from './engines/postgres/pg-dump-tools.js';
import { mysqlEngine } from './engines/mysql/mysql-engine.js';
import { SshTunnelManager } from './engines/ssh-tunnel.js';
import { systemClock } from './pipeline/clock.js';
import { DEFAULT_LEASE_SECONDS, nodeHeartbeatIntervalMs, nodeLostAfterMs } from './pipeline/job-leases.js';
import { JobSupervisor } from './pipeline/job-supervisor.js';
import type { Logger } from './pipeline/logger.js';
import { WorkItemWorker } from './pipeline/work-items.js';
import { retryPolicyFromEnv } from './pipeline/retry-policy.js';
import { MigrationService } from './service/migration-service.js';
import { SecretKeyService, type ServerKey } from './service/secret-keys.js';
import { removeServerPidFile, writeServerPidFile } from './service/server-pid-file.js';
import { TokenService } from './service/token-service.js';
import { nodeState, startNodeHeartbeat, type NodeHeartbeat } from './service/node-heartbeat.js';
import type { MetadataStore } from './store/metadata-store.js';
import { PostgresMetadataStore, redactStoreUrl } from './store/postgres/postgres-metadata-store.js';
import { SqliteMetadataStore } from './store/sqlite/sqlite-metadata-store.js';
import { buildApiServer } from './api/api-server.js';
import { registerConsoleAssets } from './api/console-assets.js';
import { parseAllowedHosts } from './api/request-guard.js';
import { FerryError } from './core/errors.js';

export { redactStoreUrl };

export interface ServerConfig {
  host: string;
  port: number;
  /** Holds the secret key, the pid file and (without `storeUrl`) the SQLite metadata store. Created when missing. */
  dataDir: string;
  /**
   * The metadata store: a postgresql:// URL (`--store`, FERRY_STORE_URL) that several servers
   * may share; absent or empty: the SQLite store `<dataDir>/ferry.db`.
   */
  storeUrl?: string;
  /** This server's id among the nodes of its store (`--node-id`); default "<host name>:<port>". */
  nodeId?: string;
  /** How long a job's lease lasts from its last renewal (`--lease-seconds`, FERRY_LEASE_SECONDS); default 15. */
  leaseSeconds?: number;
  /** At most this many jobs run on this node (`--max-jobs`, FERRY_MAX_JOBS); default no limit. */
  maxJobs?: number | null;
  /** pino level; default "info", or FERRY_LOG_LEVEL. */
  logLevel?: string;
  /**
   * Host names the API answers to besides the listen address and loopback (`--allowed-host`,
   * FERRY_ALLOWED_HOSTS): "name" on any port, or "name:port".
   */
  allowedHosts?: readonly string[];
  /**
   * Called once the server has stopped by itself because it cannot go on (its data directory
   * vanished or was replaced); the error says what happened and what to do. `ferry serve` exits non-zero.
   */
  onFatalError?: (error: FerryError) => void;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Starts API, console and workers in this process. Resolves once it listens and has resumed its jobs. */
export async function startFerryServer(config: ServerConfig): Promise<RunningServer> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = pino({
    level: config.logLevel ?? process.env.FERRY_LOG_LEVEL ?? 'info',
    base: { service: 'ferry' },
    redact: { paths: ['password', '*.password', 'params.password', 'req.headers.authorization', 'clientKey', '*.clientKey', 'privateKey', '*.privateKey'], censor: '[redacted]' },
  });

  const apiToken = process.env.FERRY_API_TOKEN;
  const bootstrapToken = apiToken === undefined || apiToken === '' ? undefined : apiToken;
  // Beyond loopback, anyone on the network could reach the API: it needs a token. On
  // loopback it stays open unless FERRY_API_TOKEN asks for tokens anyway.
  const tokensRequired = !isLoopbackHost(config.host) || bootstrapToken !== undefined;

  const allowedHosts = parseAllowedHosts(config.allowedHosts ?? []);
  const storeUrl = config.storeUrl === undefined || config.storeUrl === '' ? null : config.storeUrl;
  const store = await openMigratedStore(dataDir, storeUrl);
  const tokens = new TokenService({ store, clock: systemClock, ...(bootstrapToken !== undefined ? { bootstrapToken } : {}) });
  if (tokensRequired && !(await tokens.hasUsableTokens())) {
    logger.warn(
      { host: config.host, dataDir },
      'every API request needs a token and none exists yet: create one with `ferry tokens create --name NAME --data-dir DIR` (works while the server runs), or set FERRY_API_TOKEN',
    );
  }
  let serverKey: ServerKey;
  try {
    serverKey = await new SecretKeyService({ store, clock: systemClock, dataDir, env: process.env }).openForServer();
  } catch (error) {
    await store.close();
    throw error;
  }
  const secrets = serverKey.box;
  if (serverKey.createdKey) {
    logger.info({ keyFile: join(dataDir, 'secret.key'), keyId: secrets.keyId }, 'created the secret key that encrypts passwords at rest: back it up (without it, stored passwords cannot be read)');
  }
  if (serverKey.finishedRotation) logger.info({ keyId: secrets.keyId }, 'finished a key rotation that was interrupted: the new key is in place');
  const unreadable = [...serverKey.census.wrongKey, ...serverKey.census.damaged];
  if (unreadable.length > 0) {
    logger.warn(
      { keyId: secrets.keyId, profiles: unreadable.map((s) => s.ownerId) },
      `${unreadable.length} stored secrets cannot be decrypted with the current key; jobs that use their profiles fail until the key that encrypted them is back or the secrets are re-entered (\`ferry profiles set-password ID\`)`,
    );
  }
  const engines = new EngineRegistry([postgresEngine, mysqlEngine]);
  // Which pg_dump to use is found in the background now, not on the first job's start.
  void primePgDumpTools().catch((error: unknown) => logger.warn({ err: String(error) }, 'looking for pg_dump failed'));
  const pipelineLogger = logger as unknown as Logger;
  const tunnels = new SshTunnelManager();

  const leaseMs = Math.round((config.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000);
  const maxJobs = config.maxJobs ?? null;
  let service: MigrationService | null = null;
  const supervisor = new JobSupervisor({
    store,
    clock: systemClock,
    logger: pipelineLogger,
    engines,
    retryPolicy: retryPolicyFromEnv(process.env),
    resolveConnection: (profileId) => (service as MigrationService).resolveConnection(profileId),
    // A shared store: one-time dumps are work items that every node copies.
    ...(storeUrl === null ? {} : { workSpread: { liveNodes: () => countLiveNodes(store, nodeLostAfterMs(leaseMs)) } }),
  });
  service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets, logger: pipelineLogger, tunnels, nodeLostAfterMs: nodeLostAfterMs(leaseMs) });

  let watch: DataDirectoryWatch | null = null;
  const app = buildApiServer(service, {
    logger: logger.child({ component: 'api' }),
    ...(tokensRequired ? { authenticate: (token: string) => tokens.authenticate(token) } : {}),
    hostRule: { listenHost: config.host, allowedHosts },
    // A failing store is often a vanished data directory: look at once rather than at the next tick.
    onServerError: () => watch?.check(),
    extraRoutes: (server) => registerConsoleAssets(server),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  writeServerPidFile(dataDir);
  const listening = new URL(url);
  const nodeId = config.nodeId ?? `${hostname()}:${listening.port}`;
  let heartbeat: NodeHeartbeat | null = null;
  try {
    heartbeat = await startNodeHeartbeat({
      store, clock: systemClock, logger: pipelineLogger, node: { id: nodeId, address: url, version: ferryVersion(), maxJobs }, intervalMs: nodeHeartbeatIntervalMs(leaseMs),
    });
  } catch (error) {
    await app.close();
    await service.close();
    await tunnels.close();
    await store.close();
    removeServerPidFile(dataDir);
    throw error;
  }
  // On the SQLite store this is the only node (the pid file guards the data directory): leases
  // are trivial and runners get no destination fence.
  const sqlite = storeUrl === null;
  await supervisor.start({ nodeId, leaseMs, maxJobs, fenced: !sqlite, soleNode: sqlite });

  // Every node of a shared store copies work items of any job's full dump, its own jobs' too.
  const workItems = storeUrl === null ? null : new WorkItemWorker({
    store, clock: systemClock, logger: pipelineLogger, engines, nodeId, claimMs: leaseMs,
    resolveConnection: (profileId) => (service as MigrationService).resolveConnection(profileId),
  });
  workItems?.start();

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      watch?.stop();
      await app.close();
      await workItems?.close();
      await supervisor.close();
      await heartbeat?.stop().catch((error: unknown) => logger.warn({ err: error }, 'could not record the stop of this node in the metadata store'));
      await service.close();
      await tunnels.close();
      await store.close();
      removeServerPidFile(dataDir);
      logger.info({}, 'ferry stopped');
    })();
    return closing;
  };
  // A PostgreSQL store does not live in the data directory (the key is already loaded): only
  // the SQLite store is watched.
  if (storeUrl === null) {
    watch = watchDataDirectory(dataDir, (error) => {
      logger.fatal({ dataDir, code: error.code }, error.message);
      close().then(
        () => config.onFatalError?.(error),
        (closeError: unknown) => {
          logger.error({ err: closeError }, 'stopping after the data directory was lost failed');
          config.onFatalError?.(error);
        },
      );
    });
  }
  logger.info(
    { url, nodeId, dataDir, store: storeUrl === null ? join(dataDir, 'ferry.db') : redactStoreUrl(storeUrl), keyId: secrets.keyId, apiAccess: tokensRequired ? 'bearer token required' : 'open (loopback only)', allowedHosts },
    'ferry is serving',
  );
  return { url, close };
}

/** The nodes of the store that run (their heartbeat is recent and they did not stop): each copies work items, draining or not. */
async function countLiveNodes(store: MetadataStore, lostAfterMs: number): Promise<number> {
  const now = systemClock.now();
  return (await store.listNodes()).filter((node) => !['STOPPED', 'LOST'].includes(nodeState(node, now, 0, lostAfterMs))).length;
}

/** The version in package.json (dist/main.js and src/main.ts sit one level below it). */
function ferryVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Opens and migrates the metadata store: the PostgreSQL store at `storeUrl`, or the SQLite
 * store in the data directory when it is null. Closed again when the migration fails.
 */
export async function openMigratedStore(dataDir: string, storeUrl: string | null): Promise<MetadataStore> {
  const store: MetadataStore = storeUrl === null ? openMetadataStore(dataDir) : await PostgresMetadataStore.open(storeUrl);
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/**
 * Opens `<dataDir>/ferry.db` readable by its owner only. SQLite gives the -wal and -shm files
 * the mode of the database file, so a 0600 database keeps them 0600 too; files of an older
 * install are brought down to 0600.
 */
function openMetadataStore(dataDir: string): SqliteMetadataStore {
  const path = join(dataDir, 'ferry.db');
  const previousUmask = process.umask(0o077);
  let store: SqliteMetadataStore;
  try {
    store = SqliteMetadataStore.open(path);
  } finally {
    process.umask(previousUmask);
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
  return store;
}

interface FileIdentity {
  dev: number;
  ino: number;
}

function identityOf(path: string): FileIdentity | null {
  try {
    const stat = statSync(path);
    return { dev: stat.dev, ino: stat.ino };
  } catch {
    return null;
  }
}

export interface DataDirectoryWatch {
  /** Looks now; calls onLost (once) when the directory or ferry.db is gone or another file. */
  check(): void;
  stop(): void;
}

/** How often the server makes sure its data directory is still the one it opened. */
export const DATA_DIRECTORY_CHECK_MS = 2_000;

/**
 * Watches the data directory and its ferry.db by device and inode: removed or replaced, the
 * server would go on writing to files nobody can open again (SQLite keeps the deleted file
 * open), so the caller stops it.
 */
export function watchDataDirectory(dataDir: string, onLost: (error: FerryError) => void, intervalMs = DATA_DIRECTORY_CHECK_MS): DataDirectoryWatch {
  const dbPath = join(dataDir, 'ferry.db');
  const directory = identityOf(dataDir);
  const database = identityOf(dbPath);
  let lost = false;
  const same = (a: FileIdentity | null, b: FileIdentity | null) => a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;
  const check = () => {
    if (lost) return;
    const nowDirectory = identityOf(dataDir);
    const nowDatabase = identityOf(dbPath);
    if (same(directory, nowDirectory) && same(database, nowDatabase)) return;
    lost = true;
    clearInterval(timer);
    const what =
      nowDirectory === null
        ? 'the directory is gone'
        : !same(directory, nowDirectory)
          ? 'the directory was replaced by another one'
          : nowDatabase === null
            ? 'ferry.db is gone'
            : 'ferry.db was replaced by another file';
    onLost(
      new FerryError(
        'FAILED_PRECONDITION',
        `The data directory ${dataDir} changed under the running server (${what}): Ferry's metadata (profiles, jobs, tokens) is no longer in the file this server opened, ` +
          `and anything written now would be lost, so Ferry stopped. Put the directory back (from a backup, with its ferry.db and secret.key) and start \`ferry serve --data-dir ${dataDir}\` again; ` +
          'starting on an empty directory begins with no profiles, jobs or tokens.',
        { details: { dataDir, reason: what } },
      ),
    );
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}

/**
 * The token service on a data directory's metadata store (or the PostgreSQL store at
 * `storeUrl`), for `ferry tokens`: works whether or not a server is running on it (SQLite in
 * WAL mode and PostgreSQL take both). Close it when done.
 */
export async function openTokenService(dataDirectory: string, storeUrl: string | null = null): Promise<{ tokens: TokenService; close(): Promise<void> }> {
  const dataDir = resolve(dataDirectory);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = await openMigratedStore(dataDir, storeUrl);
  return { tokens: new TokenService({ store, clock: systemClock }), close: () => store.close() };
}

/**
 * The secret key service on a data directory's metadata store, for `ferry keys rotate` and
 * `ferry profiles set-password --data-dir`: works while no server runs (both refuse
 * otherwise), in particular when the server refuses to start for want of its key. Close it when done.
 */
export async function openSecretKeyService(dataDirectory: string, storeUrl: string | null = null): Promise<{ keys: SecretKeyService; close(): Promise<void> }> {
  const dataDir = resolve(dataDirectory);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = await openMigratedStore(dataDir, storeUrl);
  return { keys: new SecretKeyService({ store, clock: systemClock, dataDir, env: process.env }), close: () => store.close() };
}
