/**
 * The one place that wires concrete parts together: the metadata store, the engines, the
 * job supervisor, the service and the HTTP API.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { EngineRegistry } from './engines/engine-registry.js';
import { postgresEngine } from './engines/postgres/postgres-engine.js';
import { mysqlEngine } from './engines/mysql/mysql-engine.js';
import { SshTunnelManager } from './engines/ssh-tunnel.js';
import { systemClock } from './pipeline/clock.js';
import { JobSupervisor } from './pipeline/job-supervisor.js';
import type { Logger } from './pipeline/logger.js';
import { retryPolicyFromEnv } from './pipeline/retry-policy.js';
import { MigrationService } from './service/migration-service.js';
import { SecretBox } from './service/secret-box.js';
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
    redact: { paths: ['password', '*.password', 'params.password', 'req.headers.authorization', 'clientKey', '*.clientKey', 'privateKey', '*.privateKey'], censor: '[redacted]' },
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
  const secrets = new SecretBox(loadSecretKey(dataDir));
  const engines = new EngineRegistry([postgresEngine, mysqlEngine]);
  const pipelineLogger = logger as unknown as Logger;
  const tunnels = new SshTunnelManager();

  let service: MigrationService | null = null;
  const supervisor = new JobSupervisor({
    store,
    clock: systemClock,
    logger: pipelineLogger,
    engines,
    retryPolicy: retryPolicyFromEnv(process.env),
    resolveConnection: (profileId) => (service as MigrationService).resolveConnection(profileId),
  });
  service = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets, logger: pipelineLogger, tunnels });

  const app = buildApiServer(service, {
    logger: logger.child({ component: 'api' }),
    ...(tokensRequired ? { authenticate: (token: string) => tokens.authenticate(token) } : {}),
    extraRoutes: (server) => registerConsoleAssets(server),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  await supervisor.start();
  logger.info({ url, dataDir, apiAccess: tokensRequired ? 'bearer token required' : 'open (loopback only)' }, 'ferry is serving');

  let closing: Promise<void> | null = null;
  return {
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await supervisor.close();
        await tunnels.close();
        await store.close();
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

/** The 32-byte key that encrypts secrets at rest: FERRY_SECRET_KEY (base64), or a 0600 file in the data directory. */
function loadSecretKey(dataDir: string): Buffer {
  const fromEnv = process.env.FERRY_SECRET_KEY;
  if (fromEnv !== undefined && fromEnv !== '') return Buffer.from(fromEnv, 'base64');
  const path = join(dataDir, 'secret.key');
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
}
