/**
 * `npm run demo` (= build, then `ferry demo`): two throwaway PostgreSQL servers, a shop under a
 * live write load, Ferry and a continuous job. The test runs `ferry demo` (the build is done by
 * the suite's global setup), waits for the job to stream changes, checks that orders written on
 * the source after that reach the destination, then stops it with Ctrl-C (SIGINT) and checks
 * that everything it made is gone. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { FERRY_BIN, REPO_ROOT } from '../helpers/ferry-server.js';

const READY_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 90_000;

let child: ChildProcess | null = null;

afterAll(() => {
  // Only if the test failed before its own clean stop.
  if (child !== null && child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGINT');
});

function waitFor<T>(what: string, timeoutMs: number, check: () => T | null | Promise<T | null>): Promise<T> {
  return new Promise((resolveWait, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = async () => {
      try {
        const value = await check();
        if (value !== null) return resolveWait(value);
      } catch {
        // not yet
      }
      if (Date.now() > deadline) return reject(new Error(`${what}: not within ${timeoutMs / 1000} s`));
      setTimeout(() => void tick(), 500);
    };
    void tick();
  });
}

async function maxOrderId(port: number): Promise<number> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'shop', connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return Number((await client.query<{ m: string }>('SELECT coalesce(max(id), 0) AS m FROM orders')).rows[0]?.m);
  } finally {
    await client.end();
  }
}

describe('ferry demo', () => {
  it('starts two servers, a live load and a continuous job; changes stream; Ctrl-C removes everything', { timeout: 600_000 }, async () => {
    let output = '';
    child = spawn(process.execPath, [FERRY_BIN, 'demo', '--port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) => child?.once('exit', (code) => resolveExit(code)));

    await waitFor('the demo job reaching Incremental load', READY_TIMEOUT_MS, () => {
      if (child?.exitCode !== null) throw new Error(`ferry demo exited early:\n${output}`);
      return output.includes('Job demo-shop: Running (Incremental load)') ? true : null;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${output}`);
    });
    const ports = [...output.matchAll(/postgresql:\/\/postgres@127\.0\.0\.1:(\d+)\/shop/g)].map((m) => Number(m[1]));
    expect(ports, output).toHaveLength(2);
    const [sourcePort, destinationPort] = ports as [number, number];
    const consoleUrl = /Ferry console: (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)?.[1];
    const dataDir = /data directory (\S+?)\)/.exec(output)?.[1];
    expect(consoleUrl, output).toBeDefined();
    expect(dataDir && existsSync(dataDir), output).toBe(true);

    // The console answers, and the job's API says what the output said.
    const page = await fetch(`${consoleUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    const job = (await (await fetch(`${consoleUrl}/v1/migrationJobs/demo-shop`)).json()) as { status: string; phase: string; type: string };
    expect(job).toMatchObject({ status: 'RUNNING', phase: 'INCREMENTAL_LOAD', type: 'continuous' });

    // Orders placed on the source from now on reach the destination: the live load streams.
    const target = (await waitFor('new orders on the source', 60_000, async () => {
      const now = await maxOrderId(sourcePort);
      return now > 0 ? now : null;
    })) + 5;
    await waitFor(`order ${target} on the source`, 60_000, async () => ((await maxOrderId(sourcePort)) >= target ? true : null));
    await waitFor(`order ${target} on the destination`, 60_000, async () => ((await maxOrderId(destinationPort)) >= target ? true : null));

    // Ctrl-C: exit 0, servers down, directories gone.
    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS))]);
    expect(code, output).toBe(0);
    expect(output).toContain('Removed everything the demo made.');
    expect(existsSync(dataDir as string)).toBe(false);
    for (const port of ports) await expect(maxOrderId(port)).rejects.toThrow();
    const gone = await fetch(`${consoleUrl}/healthz`).then(() => 'answered', () => 'refused');
    expect(gone).toBe('refused');
  });
});
