/**
 * Promote, restart and delete ask first on a terminal and say what will happen; `--yes` and a
 * script's standard input go ahead without asking. The CLI runs in-process against a real
 * `ferry serve`, with the terminal question answered by the test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../src/cli/cli.js';
import { api, spawnFerryServer, type FerryServer } from '../helpers/ferry-server.js';
import { PG_HOST, PG_USER } from '../helpers/postgres.js';

let server: FerryServer;

beforeAll(async () => {
  server = await spawnFerryServer();
  const http = api(server.url);
  for (const [id, port] of [['cf-src', 5432], ['cf-dst', 5433]] as const) {
    const created = await http.post('/v1/connectionProfiles', { id, displayName: id, engine: 'postgresql', host: PG_HOST, port, database: 'postgres', username: PG_USER });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
});

afterAll(async () => {
  await server?.stop();
});

async function cli(argv: string[], answer: boolean | null): Promise<{ stdout: string; stderr: string; asked: string[]; exitCode: number | undefined }> {
  let stdout = '';
  let stderr = '';
  const asked: string[] = [];
  const before = process.exitCode;
  const program = buildCli({
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: { FERRY_SERVER: server.url },
    exit: () => undefined,
    confirm: async (question) => {
      asked.push(question);
      return answer;
    },
  });
  await program.parseAsync(argv, { from: 'user' });
  const exitCode = process.exitCode === before ? undefined : (process.exitCode as number | undefined);
  process.exitCode = before;
  return { stdout, stderr, asked, exitCode };
}

async function createJob(id: string): Promise<void> {
  const created = await api(server.url).post('/v1/migrationJobs', { id, displayName: id, type: 'continuous', sourceProfileId: 'cf-src', destinationProfileId: 'cf-dst' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
}

describe('CLI confirmations', () => {
  it('delete says what happens and does nothing when the answer is no', async () => {
    await createJob('cf-keep');
    const refused = await cli(['jobs', 'delete', 'cf-keep'], false);
    expect(refused.asked).toHaveLength(1);
    expect(refused.asked[0]).toContain('Delete migration job cf-keep');
    expect(refused.asked[0]).toContain('The data on the destination is kept');
    expect(refused.stderr).toContain('Nothing was changed.');
    expect(refused.exitCode).toBe(1);
    expect((await api(server.url).get('/v1/migrationJobs/cf-keep')).status).toBe(200);

    const accepted = await cli(['jobs', 'delete', 'cf-keep'], true);
    expect(accepted.stdout).toContain('Deleted migration job cf-keep');
    expect((await api(server.url).get('/v1/migrationJobs/cf-keep')).status).toBe(404);
  });

  it('--yes does not ask; without a terminal nothing is asked either', async () => {
    await createJob('cf-yes');
    const yes = await cli(['jobs', 'delete', 'cf-yes', '--yes'], false);
    expect(yes.asked).toEqual([]);
    expect((await api(server.url).get('/v1/migrationJobs/cf-yes')).status).toBe(404);
    await createJob('cf-script');
    const script = await cli(['jobs', 'delete', 'cf-script'], null);
    expect(script.asked).toHaveLength(1);
    expect(script.stdout).toContain('Deleted migration job cf-script');
  });

  it('promote and restart explain what they do before asking', async () => {
    await createJob('cf-act');
    const promote = await cli(['jobs', 'promote', 'cf-act'], false);
    expect(promote.asked[0]).toContain('applies every remaining change, then cuts over');
    expect(promote.asked[0]).toContain('the destination then stands alone');
    const restart = await cli(['jobs', 'restart', 'cf-act'], false);
    expect(restart.asked[0]).toContain('starts over with a full dump');
    const tables = await cli(['jobs', 'restart', 'cf-act', '--objects', 'public.a,public.b'], false);
    expect(tables.asked[0]).toContain('Restart tables public.a, public.b of migration job cf-act');
    expect((await api(server.url).get<{ status: string }>('/v1/migrationJobs/cf-act')).body.status).toBe('NOT_STARTED');
  });
});
