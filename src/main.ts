/**
 * The one place that wires concrete parts together: the metadata store, the engines, the
 * job supervisor, the service and the HTTP API.
 */
import { mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { EngineRegistry } from './engines/engine-registry.js';
import { postgresEngine } from './engines/postgres/postgres-engine.js';
import { mysqlEngine } from './engines/mysql/mysql-engine.js';
import { systemClock } from './pipeline/clock.js';
import { JobSupervisor } from './pipeline/job-supervisor.js';
import type { Logger } from './pipeline/logger.js';
import { retryPolicyFromEnv } from './pipeline/retry-policy.js';
import { MigrationService } from './service/migration-service.js';
import { SecretKeyService, type ServerKey } from './service/secret-keys.js';
import { removeServerPidFile, writeServerPidFile } from './service/server-pid-file.js';
import { TokenService } from './service/token-service.js';
import { SqliteMetadataStore } from './store/sqlite/sqlite-metadata-store.js';
import { buildApiServer } from './api/api-server.js';
import { registerConsoleAssets } from './api/console-assets.js';

export interface ServerConfig {
  host: string;
  port: number;
  /** Holds the SQLite metadata store and the secret key. Created when missing. */
  dataDir: string;
  /** pino level; default "info", or FERRY_LOG_LEVEL. */
  logLevel?: string;
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
    redact: { paths: ['password', '*.password', 'params.password', 'req.headers.authorization', 'clientKey', '*.clientKey'], censor: '[redacted]' },
  });

  const apiToken = process.env.FERRY_API_TOKEN;
  const bootstrapToken = apiToken === undefined || apiToken === '' ? undefined : apiToken;
  // Beyond loopback, anyone on the network could reach the API: it needs a token. On
  // loopback it stays open unless FERRY_API_TOKEN asks for tokens anyway.
  const tokensRequired = !isLoopbackHost(config.host) || bootstrapToken !== undefined;

  const store = SqliteMetadataStore.open(join(dataDir, 'ferry.db'));
  await store.migrate();
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
  const pipelineLogger = logger as unknown as Logger;

  let service: MigrationService | null = null;
  const supervisor = new JobSupervisor({
    store,
    clock: systemClock,
    logger: pipelineLogger,
    engines,
    retryPolicy: retryPolicyFromEnv(process.env),
    resolveConnection: (profileId) => (service as MigrationService).resolveConnection(profileId),
  });
  service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets, logger: pipelineLogger });

  const app = buildApiServer(service, {
    logger: logger.child({ component: 'api' }),
    ...(tokensRequired ? { authenticate: (token: string) => tokens.authenticate(token) } : {}),
    extraRoutes: (server) => registerConsoleAssets(server),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  writeServerPidFile(dataDir);
  await supervisor.start();
  logger.info({ url, dataDir, keyId: secrets.keyId, apiAccess: tokensRequired ? 'bearer token required' : 'open (loopback only)' }, 'ferry is serving');

  let closing: Promise<void> | null = null;
  return {
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await supervisor.close();
        await store.close();
        removeServerPidFile(dataDir);
        logger.info({}, 'ferry stopped');
      })();
      return closing;
    },
  };
}

/**
 * The token service on a data directory's metadata store, for `ferry tokens`: works whether
 * or not a server is running on it (SQLite in WAL mode takes both). Close it when done.
 */
export async function openTokenService(dataDirectory: string): Promise<{ tokens: TokenService; close(): Promise<void> }> {
  const dataDir = resolve(dataDirectory);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = SqliteMetadataStore.open(join(dataDir, 'ferry.db'));
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return { tokens: new TokenService({ store, clock: systemClock }), close: () => store.close() };
}

/**
 * The secret key service on a data directory's metadata store, for `ferry keys rotate` and
 * `ferry profiles set-password --data-dir`: works while no server runs (both refuse
 * otherwise), in particular when the server refuses to start for want of its key. Close it when done.
 */
export async function openSecretKeyService(dataDirectory: string): Promise<{ keys: SecretKeyService; close(): Promise<void> }> {
  const dataDir = resolve(dataDirectory);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = SqliteMetadataStore.open(join(dataDir, 'ferry.db'));
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return { keys: new SecretKeyService({ store, clock: systemClock, dataDir, env: process.env }), close: () => store.close() };
}
