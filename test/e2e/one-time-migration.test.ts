/**
 * End to end: a real `ferry serve`, driven by the real CLI (`node bin/ferry.js`), migrates a
 * PostgreSQL database with awkward types and values, a 300,000-row table, a table without a
 * primary key, a second schema, a mixed-case name, a foreign key and a secondary index. The
 * destination is then compared with the source by an independent oracle (compare.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences, quoteIdent } from '../helpers/compare.js';
import {
  FAST_RETRY_ENV,
  api,
  parseJsonOutput,
  runCli,
  runCliJson,
  spawnFerryServer,
  stopAllFerryServers,
  type ApiClient,
  type FerryServer,
} from '../helpers/ferry-server.js';
import { PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const SECRET = 'e2e-Secret-Pa55word';

const SOURCE_SCHEMA = String.raw`
  CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);

  CREATE TABLE public.all_types (
    id serial PRIMARY KEY,
    ident bigint GENERATED ALWAYS AS IDENTITY,
    c_smallint smallint,
    c_int integer,
    c_bigint bigint,
    c_num numeric(20, 6),
    c_num_free numeric,
    c_real real,
    c_double double precision,
    c_text text,
    c_varchar varchar(10),
    c_char char(5),
    c_bytea bytea,
    c_bool boolean,
    c_date date,
    c_time time,
    c_timetz timetz,
    c_ts timestamp,
    c_tstz timestamptz,
    c_interval interval,
    c_uuid uuid,
    c_json json,
    c_jsonb jsonb,
    c_int_arr integer[],
    c_text_arr text[],
    c_mood public.mood,
    c_posint public.posint,
    c_inet inet,
    c_cidr cidr,
    c_gen bigint GENERATED ALWAYS AS (coalesce(c_int, 0)::bigint * 2 + 1) STORED
  );

  INSERT INTO public.all_types (c_smallint, c_int, c_bigint, c_num, c_num_free, c_real, c_double, c_text, c_varchar, c_char,
    c_bytea, c_bool, c_date, c_time, c_timetz, c_ts, c_tstz, c_interval, c_uuid, c_json, c_jsonb, c_int_arr, c_text_arr,
    c_mood, c_posint, c_inet, c_cidr)
  VALUES
    (-32768, -2147483648, -9223372036854775808, -99999999999999.999999,
     '123456789012345678901234567890.123456789012345678901234567890', 'NaN', 'NaN',
     E'h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001F680\U0001F469\u200D\U0001F469\u200D\U0001F467', 'abc', 'ab',
     '\x0001020300ff00'::bytea, true, '0001-01-01 BC', '00:00:00', '00:00:00+14', '2024-01-02 03:04:05.123456',
     '2024-01-02 03:04:05.654321+02', '1 year 2 months 3 days 04:05:06.789012', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{ "a" :  1,"b":[1, 2 ,3] ,  "a": 2 }', '{"big": 123456789012345678901234567890, "f": 1.000000000000000000001, "s": "\u00e9\ud83d\ude80"}',
     '{1,NULL,3}', '{"a",NULL,"b c","NULL","\"q\"","back\\slash"}', 'sad', 1, '192.168.0.1/24', '10.0.0.0/8'),
    (32767, 2147483647, 9223372036854775807, 99999999999999.999999,
     '0.00000000000000000000000000000000000000000000000001', 'Infinity', '-Infinity',
     E'tab\there\nnew line\r\ncarriage \\ backslash "double" ''single'' \\N not null', '', 'abcde',
     ''::bytea, false, 'infinity', '23:59:59.999999', '12:34:56.789012+05:30', 'infinity', '-infinity',
     '-178000000 years', '00000000-0000-0000-0000-000000000000', '[]', '{}', '{{1,2},{3,4}}', '{{"a",NULL},{"c","d"}}',
     'happy', 2147483647, '::1', '2001:db8::/32'),
    (0, 0, 0, -0.000001, '-Infinity', '3.4028235e38', '1.7976931348623157e308',
     E'\\N', 'x', ' ', '\x5c4e0a09'::bytea, NULL, '-infinity', '12:00', '00:00:00-12', '1999-12-31 23:59:59.999999',
     '1970-01-01 00:00:00.000001+00', '-1 days +00:00:00.000001', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', 'null',
     '{}', '{}', 'ok', 42, '255.255.255.255', '0.0.0.0/0'),
    (1, -1, 1, 0, '-0.5', '1.17549435e-38', '4.9e-324', '', 'ten chars!', 'é', '\x00'::bytea, true, '2024-02-29', '00:00:00.000001',
     '23:59:59.999999+00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00 BC', '0', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
     '"just a string"', '[1, "two", null, {"three": [3.0]}]', '{NULL}', '{""}', 'sad', 7, '10.1.2.3', '10.1.2.0/24'),
    -- NULL in every nullable column.
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  -- Double precision minus zero, and a real with every digit.
  INSERT INTO public.all_types (c_double, c_real) VALUES ('-0', '0.1'), ('2.718281828459045', '1.0000001');

  CREATE TABLE public.big (
    id bigint PRIMARY KEY,
    label text NOT NULL,
    amount numeric(14, 4),
    happened timestamptz,
    flag boolean
  );
  INSERT INTO public.big
  SELECT g, md5(g::text) || repeat('x', g % 17), (g * 1.2345)::numeric(14, 4),
         '2020-01-01 00:00:00+00'::timestamptz + g * interval '1 minute 1.000001 second', g % 3 = 0
    FROM generate_series(1, 300000) g;

  -- No primary key, with duplicate rows and an all-NULL row.
  CREATE TABLE public.no_pk (a integer, b text, c double precision);
  INSERT INTO public.no_pk VALUES (1, 'dup', 1.5), (1, 'dup', 1.5), (1, 'dup', 1.5), (NULL, NULL, NULL), (2, NULL, 'NaN');

  CREATE TABLE public."MixedCase" ("Id" integer PRIMARY KEY, "CamelColumn" text, "with space" text);
  INSERT INTO public."MixedCase" VALUES (1, 'One', 'a b'), (2, 'Two', NULL), (3, NULL, 'c');

  CREATE TABLE public.customers (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text
  );
  INSERT INTO public.customers (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 500) g;

  CREATE SCHEMA sales;
  CREATE TABLE sales.orders (
    order_id serial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES public.customers (id) ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    status text DEFAULT 'new',
    placed_at timestamptz DEFAULT now()
  );
  CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
  CREATE INDEX orders_status_lower_idx ON sales.orders (lower(status)) WHERE status <> 'done';
  INSERT INTO sales.orders (customer_id, total, status, placed_at)
  SELECT (g % 500) + 1, g * 0.37, CASE WHEN g % 4 = 0 THEN 'done' ELSE 'new' END, '2023-06-01 12:00:00+00'::timestamptz + g * interval '1 hour'
    FROM generate_series(1, 20000) g;
  -- Sequences that are not at the row count: the destination must continue from the same value.
  SELECT setval('sales.orders_order_id_seq', 25000);
  CREATE SEQUENCE public.standalone_seq START 100 INCREMENT 5;
  SELECT nextval('public.standalone_seq'), nextval('public.standalone_seq');
  ANALYZE;
`;

interface JobView {
  id: string;
  status: string;
  substatus: string | null;
  availableActions: string[];
  error: { code: string; message: string } | null;
  progress: { tablesTotal: number; tablesCompleted: number; rowsCopied: number; bytesCopied: number; percent: number };
  durationSeconds: number;
  startTime: string | null;
  endTime: string | null;
  dumpParallelism: number;
}

interface JobObject {
  name: string;
  state: string;
  rowsCopied: number;
  bytesCopied: number;
}

describe('one-time migration through the CLI', () => {
  let source: TestDatabase;
  let destination: TestDatabase;
  let server: FerryServer;
  let client: ApiClient;
  const cli = (args: string[], timeoutMs?: number) => runCli(args, { server: server.url, ...(timeoutMs ? { timeoutMs } : {}) });
  const cliJson = <T>(args: string[]) => runCliJson<T>(args, { server: server.url });
  const sourceTables: { schema: string; name: string; rows: number }[] = [];

  beforeAll(async () => {
    [source, destination] = await Promise.all([createTestDatabase(5432, 'ferry_e2e_src'), createTestDatabase(5433, 'ferry_e2e_dst')]);
    await source.client.query(SOURCE_SCHEMA);
    const { rows } = await source.client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname IN ('public', 'sales') ORDER BY 1, 2`,
    );
    for (const t of rows) {
      const { rows: n } = await source.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`);
      sourceTables.push({ ...t, rows: Number(n[0]!.n) });
    }
    server = await spawnFerryServer({ env: FAST_RETRY_ENV });
    client = api(server.url);
  }, 300_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await Promise.allSettled([source?.drop(), destination?.drop()]);
  }, 120_000);

  it('creates profiles and a job, verifies, starts, watches to Completed; the destination is an exact copy', async () => {
    expect(sourceTables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual(
      ['public.MixedCase', 'public.all_types', 'public.big', 'public.customers', 'public.no_pk', 'sales.orders'].sort(),
    );

    for (const [id, db] of [['src', source], ['dst', destination]] as const) {
      // The test clusters trust local connections: the source's password is never asked for, but Ferry must keep it secret.
      const password = id === 'src' ? ['--password', SECRET] : [];
      const result = await cli([
        'profiles', 'create', '--id', id, '--display-name', `E2E ${id}`, '--engine', 'postgresql',
        '--host', PG_HOST, '--port', String(db.params.port), '--database', db.params.database as string, '--username', PG_USER,
        ...password, '--output', 'json',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).not.toContain(SECRET);
      const profile = parseJsonOutput<Record<string, unknown>>(result);
      expect(profile).toMatchObject({ id, passwordSet: id === 'src', port: db.params.port });
      expect(profile).not.toHaveProperty('password');
    }

    const created = await cliJson<JobView>([
      'jobs', 'create', '--id', 'job-one', '--display-name', 'E2E one-time', '--type', 'one-time',
      '--source', 'src', '--destination', 'dst', '--dump-parallelism', '3',
    ]);
    expect(created).toMatchObject({ id: 'job-one', status: 'NOT_STARTED', dumpParallelism: 3 });
    expect(created.availableActions).toEqual(['start', 'delete']);

    const verify = await cli(['jobs', 'verify', 'job-one', '--output', 'json']);
    const report = parseJsonOutput<{ ok: boolean; checks: { code: string; severity: string; message: string }[] }>(verify);
    expect(report.ok, JSON.stringify(report.checks, null, 2)).toBe(true);
    expect(verify.code).toBe(0);
    expect(report.checks.filter((c) => c.severity === 'error')).toEqual([]);

    const started = await cliJson<JobView>(['jobs', 'start', 'job-one']);
    expect(['STARTING', 'RUNNING']).toContain(started.status);

    const watch = await cli(['jobs', 'watch', 'job-one', '--interval', '0.5'], 280_000);
    expect(watch.code, `${watch.stdout.slice(-3000)}\n${watch.stderr}\n${server.output().slice(-5000)}`).toBe(0);

    const job = await cliJson<JobView & { objects: JobObject[] }>(['jobs', 'describe', 'job-one']);
    expect(job.status, JSON.stringify(job.error)).toBe('COMPLETED');
    expect(job.substatus).toBeNull();
    expect(job.error).toBeNull();
    expect(job.availableActions).toEqual(['delete']);
    expect(job.progress.tablesTotal).toBe(sourceTables.length);
    expect(job.progress.tablesCompleted).toBe(job.progress.tablesTotal);
    expect(job.progress.rowsCopied).toBe(sourceTables.reduce((sum, t) => sum + t.rows, 0));
    expect(job.progress.percent).toBe(100);
    // Finished: the totals are what was copied, not the planner's estimates.
    expect(job.progress.totalsEstimated).toBe(false);
    expect(job.progress.estimatedRows).toBe(job.progress.rowsCopied);
    expect(job.progress.estimatedBytes).toBe(job.progress.bytesCopied);
    const described = await runCli(['jobs', 'describe', 'job-one'], { server: server.url });
    expect(described.stdout).toContain(`rows ${job.progress.rowsCopied.toLocaleString('en-US')} `);
    expect(described.stdout).not.toMatch(/rows [\d,]+ \/ /);
    expect(job.endTime).not.toBeNull();
    expect(job.durationSeconds).toBeGreaterThan(0);

    // Per table: every source table is an object, Completed, with exactly the source's row count.
    const { objects } = await client.getOk<{ objects: JobObject[] }>('/v1/migrationJobs/job-one/objects');
    const byName = new Map(objects.map((o) => [o.name, o]));
    expect(objects).toHaveLength(sourceTables.length);
    for (const t of sourceTables) {
      const object = byName.get(`${t.schema}.${t.name}`);
      expect(object, `job object for ${t.schema}.${t.name} among ${[...byName.keys()].join(', ')}`).toBeDefined();
      expect(object!.state).toBe('COMPLETED');
      expect(object!.rowsCopied, `${t.schema}.${t.name}`).toBe(t.rows);
      expect(object!.bytesCopied).toBeGreaterThan(0);
    }

    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);

    // The destination is standalone: its sequences continue where the source's are.
    const next = await destination.client.query<{ n: string }>(`SELECT nextval('sales.orders_order_id_seq') AS n`);
    expect(next.rows[0]!.n).toBe('25001');
    await destination.client.query(`SELECT setval('sales.orders_order_id_seq', 25000)`);

    // The password appears nowhere: not in the logs (JSON lines), not in clear in the data directory.
    expect(server.logLines().length).toBeGreaterThan(0);
    expect(server.output()).not.toContain(SECRET);
    for (const file of readdirSync(server.dataDir)) {
      expect(readFileSync(join(server.dataDir, file)).includes(Buffer.from(SECRET)), `${file} holds the password in clear`).toBe(false);
    }
  }, 300_000);

  it('refuses a second job into the same, now non-empty destination (DESTINATION_NOT_EMPTY)', async () => {
    await cliJson(['jobs', 'create', '--id', 'job-two', '--type', 'one-time', '--source', 'src', '--destination', 'dst']);
    const verify = await cli(['jobs', 'verify', 'job-two', '--output', 'json']);
    const report = parseJsonOutput<{ ok: boolean; checks: { code: string; side: string; severity: string; message: string }[] }>(verify);
    expect(report.ok).toBe(false);
    expect(verify.code).not.toBe(0);
    const check = report.checks.find((c) => c.code === 'DESTINATION_NOT_EMPTY');
    expect(check, JSON.stringify(report.checks, null, 2)).toMatchObject({ side: 'destination', severity: 'error' });
    expect(check!.message.length).toBeGreaterThan(20);

    // Starting it anyway fails before touching the destination.
    await cliJson(['jobs', 'start', 'job-two']);
    const failed = await waitForStatus(client, 'job-two', ['FAILED'], 60_000);
    expect(failed.error?.code).toBe('DESTINATION_NOT_EMPTY');
    expect(failed.availableActions).toEqual(['restart', 'delete']);
    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);

    const deleted = await cli(['jobs', 'delete', 'job-two']);
    expect(deleted.code, deleted.stderr).toBe(0);
  }, 120_000);

  it('refuses Stop on a Completed job with 409 naming the status and the allowed actions', async () => {
    const stop = await cli(['jobs', 'stop', 'job-one']);
    expect(stop.code).not.toBe(0);
    const text = `${stop.stdout}\n${stop.stderr}`;
    expect(text).toContain('ACTION_NOT_ALLOWED');
    expect(text).toMatch(/completed/i);
    expect(text).toMatch(/allowed now: delete/i);

    const rest = await client.post<{ error: { code: string; message: string; details: Record<string, unknown> } }>('/v1/migrationJobs/job-one:stop');
    expect(rest.status).toBe(409);
    expect(rest.body.error.code).toBe('ACTION_NOT_ALLOWED');
    expect(rest.body.error.details).toMatchObject({ status: 'COMPLETED', availableActions: ['delete'] });

    // Nothing changed.
    const job = await client.getOk<JobView>('/v1/migrationJobs/job-one');
    expect(job.status).toBe('COMPLETED');
  }, 60_000);

  it('deletes the job and keeps the data on the destination', async () => {
    const deleted = await cli(['jobs', 'delete', 'job-one']);
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = await client.get<{ error: { code: string } }>('/v1/migrationJobs/job-one');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('NOT_FOUND');
    const describe = await cli(['jobs', 'describe', 'job-one']);
    expect(describe.code).not.toBe(0);
    expect(describe.stderr).toContain('NOT_FOUND');

    const differences = await compareDatabases(source.client, destination.client);
    expect(differences, formatDifferences(differences)).toEqual([]);
    // No replication slot left behind on the source.
    const slots = await source.client.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots.rows).toEqual([]);

    // The profiles are no longer in use: they can be deleted too.
    for (const id of ['src', 'dst']) {
      const result = await cli(['profiles', 'delete', id]);
      expect(result.code, result.stderr).toBe(0);
    }
  }, 120_000);
});

async function waitForStatus(client: ApiClient, id: string, statuses: string[], timeoutMs: number): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | null = null;
  while (Date.now() < deadline) {
    last = await client.getOk<JobView>(`/v1/migrationJobs/${id}`);
    if (statuses.includes(last.status)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`job ${id} did not reach ${statuses.join('/')} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}
