/**
 * The data directory of a real `ferry serve`: ferry.db and its WAL files are created 0600,
 * and a server whose data directory is removed or replaced while it runs stops with a clear
 * error (exit code 1, a message naming the directory and what to do) instead of writing to
 * files nobody can open again.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, makeDataDir, removeDataDir, spawnFerryServer, stopAllFerryServers } from '../helpers/ferry-server.js';

const PROFILE = { displayName: 'Somewhere', engine: 'postgresql', host: '127.0.0.1', port: 1, database: 'x', username: 'u', password: 'p' };

describe('the data directory', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await stopAllFerryServers();
    for (const dir of dirs) removeDataDir(dir);
  }, 60_000);

  it('creates ferry.db and its -wal and -shm files readable by their owner only', async () => {
    const server = await spawnFerryServer();
    // A write, so that the WAL exists.
    expect((await api(server.url).post('/v1/connectionProfiles', { ...PROFILE, id: 'modes' })).status).toBe(201);
    for (const file of ['ferry.db', 'ferry.db-wal', 'ferry.db-shm']) {
      const path = join(server.dataDir, file);
      expect(existsSync(path), file).toBe(true);
      expect((statSync(path).mode & 0o777).toString(8), file).toBe('600');
    }
    expect((statSync(server.dataDir).mode & 0o777).toString(8)).toBe('700');
    await server.stop();
  });

  for (const [what, change, reason] of [
    ['removed', (dir: string) => rmSync(dir, { recursive: true, force: true }), 'the directory is gone'],
    [
      'replaced by another directory',
      (dir: string) => {
        renameSync(dir, `${dir}-moved`);
        mkdirSync(dir);
      },
      'the directory was replaced by another one',
    ],
    ['left without ferry.db', (dir: string) => rmSync(join(dir, 'ferry.db')), 'ferry.db is gone'],
  ] as const) {
    it(`stops with a clear error when its data directory is ${what}`, async () => {
      const dataDir = makeDataDir('ferry-datadir-');
      dirs.push(dataDir, `${dataDir}-moved`);
      const server = await spawnFerryServer({ dataDir });
      expect((await api(server.url).post('/v1/connectionProfiles', { ...PROFILE, id: 'before' })).status).toBe(201);
      change(dataDir);
      const exit = await Promise.race([server.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
      expect(exit, `ferry serve kept running after its data directory was ${what}:\n${server.output()}`).toEqual({ code: 1, signal: null });
      const output = server.output();
      expect(output).toContain(`error: FAILED_PRECONDITION: The data directory ${dataDir} changed under the running server (${reason})`);
      expect(output).toContain(`ferry serve --data-dir ${dataDir}`);
      const fatal = server.logLines().find((line) => line['level'] === 60);
      expect(fatal?.['dataDir']).toBe(dataDir);
    });
  }
});
