/**
 * A real Ferry server for end-to-end tests: `node bin/ferry.js serve` as a child process on a
 * free loopback port with its own data directory, plus helpers to drive it through the CLI
 * (`runCli`) and the REST API (`api`). Processes are only ever signalled by their PID.
 *
 * The compiled code is used (dist/): the vitest global setup (test/helpers/global-setup.ts)
 * runs `npm run build` once before the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FERRY_BIN = join(REPO_ROOT, 'bin', 'ferry.js');

/** Fast retries and probes so fault tests do not wait for production back-offs. */
export const FAST_RETRY_ENV: Record<string, string> = {
  FERRY_RETRY_INITIAL_SECONDS: '0.2',
  FERRY_RETRY_MAX_SECONDS: '2',
  FERRY_PROBE_INTERVAL_SECONDS: '1',
};

export interface FerryServerOptions {
  /** Reuse a data directory (crash tests restart on the same one). Created when absent. */
  dataDir?: string;
  /** Port; a free one when absent. */
  port?: number;
  /**
   * Listen address; 127.0.0.1 when absent. The helper talks to the server at this address
   * (at 127.0.0.1 for 0.0.0.0).
   */
  host?: string;
  /** Extra environment for the server (FERRY_RETRY_INITIAL_SECONDS, ...). */
  env?: Record<string, string>;
  /** How long to wait for GET /healthz. */
  startTimeoutMs?: number;
  /** More `ferry serve` options (`--lease-seconds 4`, ...), after the ones this helper sets. */
  args?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FerryServer {
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  /** Everything the server wrote to stdout and stderr so far (JSON log lines). */
  output(): string;
  /** The stdout/stderr lines that parse as JSON (the structured logs). */
  logLines(): Record<string, unknown>[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** Sends `signal` to the server's PID and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the data directory if this helper created it. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

const running = new Set<FerryServer>();

/** A fresh, empty temporary directory for a server's data. */
export function makeDataDir(prefix = 'ferry-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not get a free port'));
        return;
      }
      const { port } = address;
      server.close(() => resolvePort(port));
    });
  });
}

function assertBuilt(): void {
  if (!existsSync(FERRY_BIN)) {
    throw new Error(`${FERRY_BIN} does not exist: the CLI entry point is missing (run \`npm run build\` and check bin/ferry.js).`);
  }
  if (!existsSync(join(REPO_ROOT, 'dist'))) {
    throw new Error('dist/ does not exist: run `npm run build` (the vitest global setup test/helpers/global-setup.ts does it).');
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts `ferry serve` and resolves once GET /healthz answers 200. */
export async function spawnFerryServer(options: FerryServerOptions = {}): Promise<FerryServer> {
  assertBuilt();
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? makeDataDir();
  const port = options.port ?? (await freePort());
  const host = options.host ?? '127.0.0.1';
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${reachable}:${port}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [FERRY_BIN, 'serve', '--host', host, '--port', String(port), '--data-dir', dataDir, ...(options.args ?? [])],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Not detached: if the test runner dies, the server goes with its process group.
    },
  );
  if (child.pid === undefined) throw new Error('spawning ferry serve failed');
  const pid = child.pid;
  const chunks: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => chunks.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => chunks.push(d));
  let exitInfo: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolveExit) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolveExit(exitInfo);
    });
  });

  const output = () => chunks.join('');
  const server: FerryServer = {
    url,
    port,
    pid,
    dataDir,
    output,
    logLines() {
      const lines: Record<string, unknown>[] = [];
      for (const line of output().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a JSON line
        }
      }
      return lines;
    },
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (exitInfo === null) {
        try {
          process.kill(pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      }
      const info = await exited;
      running.delete(server);
      return info;
    },
    async stop(graceMs = 10_000) {
      let info: ExitInfo;
      if (exitInfo !== null) {
        info = exitInfo;
      } else {
        try {
          process.kill(pid, 'SIGTERM');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
        const timeout = sleep(graceMs).then(() => null);
        const result = await Promise.race([exited, timeout]);
        info = result ?? (await server.kill('SIGKILL'));
      }
      running.delete(server);
      if (ownDataDir) removeDataDir(dataDir);
      return info;
    },
  };
  running.add(server);

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exitInfo !== null) {
      running.delete(server);
      const info: ExitInfo = exitInfo;
      throw new Error(`ferry serve exited before it answered /healthz (code ${info.code}, signal ${info.signal}). Output:\n${output()}`);
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.kill('SIGKILL');
      throw new Error(`ferry serve did not answer ${url}/healthz within the timeout. Output:\n${output()}`);
    }
    await sleep(100);
  }
  return server;
}

/** Stops every server this helper started and that is still running (for afterAll). */
export async function stopAllFerryServers(): Promise<void> {
  await Promise.allSettled([...running].map((s) => s.stop(5_000)));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** FERRY_SERVER for the CLI. */
  server?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `node bin/ferry.js ...args` with FERRY_SERVER set; never rejects on a non-zero exit. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  assertBuilt();
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.server !== undefined) env.FERRY_SERVER = options.server;
  // Plain output: no colours or terminal progress bars in captured text.
  env.NO_COLOR = '1';
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      reject(new Error(`ferry ${args.join(' ')} did not exit within ${timeoutMs} ms.\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/** Runs a CLI command with `--output json`, requires exit 0 and returns the parsed stdout. */
export async function runCliJson<T = Record<string, unknown>>(args: string[], options: CliOptions = {}): Promise<T> {
  const result = await runCli([...args, '--output', 'json'], options);
  if (result.code !== 0) {
    throw new Error(`ferry ${args.join(' ')} --output json exited with ${result.code}.\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return parseJsonOutput<T>(result, args);
}

/** Parses a CLI result's stdout as JSON with a useful error. */
export function parseJsonOutput<T>(result: CliResult, args: string[] = []): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`ferry ${args.join(' ')} did not print JSON on stdout.\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** A tiny REST client for the server at `baseUrl`. */
export function api(baseUrl: string) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: response.status, body: parsed as T };
  };
  return {
    get: <T = any>(path: string) => call<T>('GET', path),
    post: <T = any>(path: string, body?: unknown) => call<T>('POST', path, body ?? {}),
    patch: <T = any>(path: string, body: unknown) => call<T>('PATCH', path, body),
    delete: <T = any>(path: string) => call<T>('DELETE', path),
    /** GET that requires a 2xx and returns the body. */
    async getOk<T = any>(path: string): Promise<T> {
      const r = await call<T>('GET', path);
      if (r.status < 200 || r.status >= 300) throw new Error(`GET ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
    /** POST that requires a 2xx and returns the body. */
    async postOk<T = any>(path: string, body?: unknown): Promise<T> {
      const r = await call<T>('POST', path, body ?? {});
      if (r.status < 200 || r.status >= 300) throw new Error(`POST ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
  };
}
export type ApiClient = ReturnType<typeof api>;

/** Polls `probe` every `intervalMs` until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 120_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}
