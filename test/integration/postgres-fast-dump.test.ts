/**
 * The fast paths of a PostgreSQL to PostgreSQL dump, against the two real clusters: binary
 * COPY chosen when both sides agree on every column's binary form (and exact), text chosen
 * for a type mismatch or a user-defined type; a table split into ctid ranges copied by several
 * readers of one snapshot side by side, exactly; a one-time job that splits its table and
 * builds the table's indexes on several connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pg from 'pg';
import type { DatabaseSchema, TableSchema } from '../../src/core/schema.js';
import type { SchemaScript, TableReader, TableWriter } from '../../src/engines/engine.js';
import { buildIndexesInParallel } from '../../src/engines/postgres/postgres-schema-script.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { CopyProgress, chooseFormat, type FullDumpDeps } from '../../src/pipeline/full-dump.js';
import { JobSupervisor } from '../../src/pipeline/job-supervisor.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { SecretBox } from '../../src/service/secret-box.js';
import { SshTunnelManager } from '../../src/engines/ssh-tunnel.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';
import { connectionParams, createDatabasePair, PG_DEST_PORT, PG_HOST, PG_USER, type TestDatabase } from '../helpers/postgres.js';

const WIDE_DDL = `CREATE TABLE public.wide (
  id bigint PRIMARY KEY, name text, amount numeric(14,2), at timestamptz, doc jsonb,
  ints int[], data bytea, uid uuid, day date, flag boolean, f double precision, span interval)`;
const WIDE_ROWS = `INSERT INTO public.wide
  SELECT g, CASE WHEN g % 11 = 0 THEN NULL ELSE E'n\\u00e4me\\t' || g || E'\\\\ \\n' END, (g * 1.25)::numeric(14,2),
         '2024-01-01 00:00:00.123456+00'::timestamptz + g * interval '1 minute', jsonb_build_object('g', g, 'deep', jsonb_build_array(g, 'x')),
         ARRAY[g::int, NULL, -g::int], decode(md5(g::text), 'hex'), md5(g::text)::uuid, DATE '2024-02-29' + g::int, g % 2 = 0,
         CASE WHEN g = 3 THEN 'NaN'::float8 ELSE g / 7.0 END, make_interval(days => g::int, secs => g / 3.0)
    FROM generate_series(1, 3000) g`;

const tableOf = (schema: DatabaseSchema, name: string) => schema.tables.find((t) => t.name === name) as TableSchema;
const digest = async (db: TestDatabase, table: string) =>
  (await db.client.query<{ n: string; h: string | null }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM ${table} t`)).rows[0];
const deps = { source: postgresEngine, destination: postgresEngine } as unknown as FullDumpDeps;

describe('PostgreSQL to PostgreSQL: binary COPY and same-table concurrency', () => {
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;

  beforeAll(async () => {
    dbs = await createDatabasePair('ferry_fastdump');
    await dbs.source.client.query(WIDE_DDL);
    await dbs.source.client.query(WIDE_ROWS);
    await dbs.destination.client.query(WIDE_DDL);
    // A destination whose column has another type (typmod) than the source's.
    await dbs.source.client.query('CREATE TABLE public.narrowed (id int PRIMARY KEY, amount numeric(14,2))');
    await dbs.source.client.query('INSERT INTO public.narrowed SELECT g, g / 3.0 FROM generate_series(1, 100) g');
    await dbs.destination.client.query('CREATE TABLE public.narrowed (id int PRIMARY KEY, amount numeric(12,2))');
    // A user-defined type: its binary form may differ between servers (an enum's is its label, but arrays of it carry an oid).
    for (const db of [dbs.source, dbs.destination]) {
      await db.client.query(`CREATE TYPE public.mood AS ENUM ('sad', 'ok'); CREATE TABLE public.moods (id int PRIMARY KEY, m public.mood, ms public.mood[])`);
    }
    await dbs.source.client.query(`INSERT INTO public.moods VALUES (1, 'ok', '{sad,ok}'), (2, NULL, NULL)`);
    // Large enough for several ranges of 64 KiB.
    await dbs.source.client.query('CREATE TABLE public.big (id bigint PRIMARY KEY, pad text NOT NULL, k int)');
    await dbs.source.client.query(`INSERT INTO public.big SELECT g, repeat(md5(g::text), 4), g % 97 FROM generate_series(1, 20000) g`);
    await dbs.source.client.query('CREATE INDEX big_k ON public.big (k); CREATE INDEX big_pad ON public.big (pad); CREATE UNIQUE INDEX big_id_k ON public.big (id, k)');
    await dbs.source.client.query('VACUUM ANALYZE public.big');
    await dbs.destination.client.query('CREATE TABLE public.big (id bigint PRIMARY KEY, pad text NOT NULL, k int)');
  }, 60_000);

  afterAll(async () => {
    await dbs?.drop();
  });

  /** A snapshot of the source with one reader, a writer on the destination, and the schema as the snapshot sees it. */
  async function withCopyPair(run: (reader: TableReader, writer: TableWriter, schema: DatabaseSchema) => Promise<void>): Promise<void> {
    const snapshot = await postgresEngine.openSnapshot(dbs.source.params);
    const reader = await snapshot.openTableReader();
    const writer = await postgresEngine.openTableWriter(dbs.destination.params);
    try {
      await run(reader, writer, await snapshot.readSchema({ include: [], exclude: [] }));
    } finally {
      await Promise.allSettled([reader.close(), writer.close()]);
      await snapshot.close();
    }
  }

  it('chooses binary when both sides agree on every column, and the binary copy is exact', async () => {
    await withCopyPair(async (reader, writer, schema) => {
      const wide = tableOf(schema, 'wide');
      expect(await chooseFormat(deps, reader, writer, wide, wide)).toBe('binary');
      const progress = new CopyProgress(60_000, () => undefined, 'binary');
      const result = await writer.replaceTableData(wide, reader.copyOut(wide, { format: 'binary' }).pipe(progress), AbortSignal.timeout(30_000), { format: 'binary' });
      expect(result.rows).toBe(3000);
      // The progress counter walks the binary tuples.
      expect(progress.rows).toBe(3000);
      expect(await digest(dbs.destination, 'public.wide')).toEqual(await digest(dbs.source, 'public.wide'));
    });
  });

  it('falls back to text for a column type that differs on the destination and for a user-defined type, and copies exactly', async () => {
    await withCopyPair(async (reader, writer, schema) => {
      const narrowed = tableOf(schema, 'narrowed');
      const moods = tableOf(schema, 'moods');
      expect(await chooseFormat(deps, reader, writer, narrowed, narrowed)).toBe('text');
      expect(await reader.binaryForm?.(moods)).toBeNull();
      expect(await chooseFormat(deps, reader, writer, moods, moods)).toBe('text');
      for (const table of [narrowed, moods]) {
        const progress = new CopyProgress(60_000, () => undefined, 'text');
        await writer.replaceTableData(table, reader.copyOut(table, { format: 'text' }).pipe(progress), AbortSignal.timeout(30_000), { format: 'text' });
        expect(progress.rows).toBeGreaterThan(0);
      }
      expect(await digest(dbs.destination, 'public.narrowed')).toEqual(await digest(dbs.source, 'public.narrowed'));
      expect(await digest(dbs.destination, 'public.moods')).toEqual(await digest(dbs.source, 'public.moods'));
    });
  });

  it('falls back to text for a destination database of another encoding (binary COPY converts no text)', async () => {
    const name = `ferry_fastdump_latin1_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: PG_USER, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name} ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`);
      const latin1 = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: PG_USER, database: name });
      await latin1.connect();
      await latin1.query('CREATE TABLE public.narrowed (id int PRIMARY KEY, amount numeric(14,2))');
      await latin1.end();
      const snapshot = await postgresEngine.openSnapshot(dbs.source.params);
      const reader = await snapshot.openTableReader();
      const writer = await postgresEngine.openTableWriter(connectionParams(PG_DEST_PORT, name));
      try {
        const narrowed = tableOf(await snapshot.readSchema({ include: [], exclude: [] }), 'narrowed');
        expect((await reader.binaryForm?.(narrowed))?.encoding).toBe('UTF8');
        expect(await chooseFormat(deps, reader, writer, narrowed, narrowed)).toBe('text');
      } finally {
        await Promise.allSettled([reader.close(), writer.close()]);
        await snapshot.close();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('builds the post-data constraints and indexes of one table on several connections, constraints first', async () => {
    await dbs.destination.client.query(`CREATE TABLE public.indexed (id bigint NOT NULL, a int, b text); INSERT INTO public.indexed SELECT g, g % 13, md5(g::text) FROM generate_series(1, 5000) g`);
    const entry = (type: string, name: string, sql: string) => ({ type, schema: 'public', name, phase: 'post-data' as const, sql });
    const script: SchemaScript = {
      engine: 'postgresql', tool: 'test', prologue: "SELECT pg_catalog.set_config('search_path', '', false);",
      entries: [
        entry('INDEX', 'indexed_a', 'CREATE INDEX indexed_a ON public.indexed USING btree (a);'),
        entry('INDEX', 'indexed_b', 'CREATE INDEX indexed_b ON public.indexed USING btree (b);'),
        entry('CONSTRAINT', 'indexed indexed_pkey', 'ALTER TABLE ONLY public.indexed ADD CONSTRAINT indexed_pkey PRIMARY KEY (id);'),
        entry('INDEX', 'indexed_a_b', 'CREATE INDEX indexed_a_b ON public.indexed USING btree (a, b);'),
      ],
    };
    const connections = await Promise.all([0, 1, 2].map(async () => {
      const client = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: PG_USER, database: dbs.destination.params.database ?? '' });
      await client.connect();
      return client;
    }));
    // The statements each connection sent, in order: which maintenance_work_mem each build ran with.
    const sent = connections.map((client) => {
      const statements: string[] = [];
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = (...args) => {
        if (typeof args[0] === 'string') statements.push(args[0]);
        return query(...args);
      };
      return statements;
    });
    const memoryOfBuild = (marker: string): number => {
      for (const statements of sent) {
        const at = statements.findIndex((sql) => sql.includes(marker));
        if (at < 0) continue;
        const set = statements.slice(0, at).reverse().find((sql) => sql.startsWith('SET maintenance_work_mem'));
        return Number(/'(\d+)MB'/.exec(set ?? '')?.[1] ?? NaN);
      }
      return NaN;
    };
    try {
      expect(await buildIndexesInParallel(connections, script)).toBe(4);
      // The primary key builds alone (constraints come first): the whole budget. The three
      // indexes build side by side on three connections: a third each, the budget in all.
      expect(memoryOfBuild('ADD CONSTRAINT indexed_pkey')).toBe(1024);
      const indexes = ['CREATE INDEX indexed_a ', 'CREATE INDEX indexed_b ', 'CREATE INDEX indexed_a_b '].map(memoryOfBuild);
      expect(indexes).toEqual([341, 341, 341]);
      // Run again (a resumed attempt): everything exists, nothing is built.
      expect(await buildIndexesInParallel(connections, script)).toBe(0);
      const built = await dbs.destination.client.query<{ n: string }>(`SELECT indexname AS n FROM pg_indexes WHERE tablename = 'indexed' ORDER BY 1`);
      expect(built.rows.map((r) => r.n)).toEqual(['indexed_a', 'indexed_a_b', 'indexed_b', 'indexed_pkey']);
    } finally {
      await Promise.allSettled(connections.map((c) => c.end()));
    }
  });

  it('splits a table into ctid ranges that readers of one snapshot copy side by side, exactly once each', async () => {
    const snapshot = await postgresEngine.openSnapshot(dbs.source.params);
    const before = await digest(dbs.source, 'public.big');
    // Written after the snapshot: neither the new rows nor the deletion may show in the copy.
    await dbs.source.client.query(`DELETE FROM public.big WHERE id % 10 = 0; INSERT INTO public.big SELECT g, 'late', 0 FROM generate_series(20001, 21000) g`);
    const readers = await Promise.all([0, 1, 2, 3].map(() => snapshot.openTableReader()));
    const writers = await Promise.all([0, 1, 2, 3].map(() => postgresEngine.openTableWriter(dbs.destination.params)));
    try {
      const schema = await snapshot.readSchema({ include: [], exclude: [] });
      const big = tableOf(schema, 'big');
      expect(await snapshot.splitTable?.(big, 4, 1e12)).toBeNull();
      const ranges = await snapshot.splitTable?.(big, 4, 64 * 1024);
      expect(ranges?.length).toBe(4);
      expect(ranges?.[0]?.lower).toBeNull();
      expect(ranges?.[3]?.upper).toBeNull();
      await writers[0]?.replaceTableData(big, Readable.from([]), AbortSignal.timeout(30_000));
      const loaded = await Promise.all((ranges ?? []).map((range, i) =>
        writers[i]?.appendTableData?.(big, readers[i]!.copyOut(big, { format: 'binary', range }), AbortSignal.timeout(30_000), { format: 'binary' })));
      expect(loaded.map((r) => r?.rows ?? 0).reduce((a, b) => a + b, 0)).toBe(20000);
      expect(loaded.every((r) => (r?.rows ?? 0) > 0)).toBe(true);
      expect(await digest(dbs.destination, 'public.big')).toEqual(before);
    } finally {
      await Promise.allSettled([...readers.map((r) => r.close()), ...writers.map((w) => w.close())]);
      await snapshot.close();
      await dbs.source.client.query(`DELETE FROM public.big WHERE id > 20000; INSERT INTO public.big SELECT g, repeat(md5(g::text), 4), g % 97 FROM generate_series(10, 20000, 10) g`);
    }
  });
});

describe('a one-time job that splits a large table and builds its indexes in parallel', () => {
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;
  let store: SqliteMetadataStore;
  let supervisor: JobSupervisor;
  let service: MigrationService;
  const saved = process.env.FERRY_DUMP_SPLIT_PART_BYTES;

  beforeAll(async () => {
    process.env.FERRY_DUMP_SPLIT_PART_BYTES = String(64 * 1024);
    dbs = await createDatabasePair('ferry_fastjob');
    await dbs.source.client.query('CREATE TABLE public.big (id bigint PRIMARY KEY, pad text NOT NULL, k int, doc jsonb)');
    await dbs.source.client.query(`INSERT INTO public.big SELECT g, repeat(md5(g::text), 4), g % 97, jsonb_build_object('g', g) FROM generate_series(1, 20000) g`);
    await dbs.source.client.query('CREATE INDEX big_k ON public.big (k); CREATE INDEX big_pad ON public.big (pad); ALTER TABLE public.big ADD CONSTRAINT big_id_k UNIQUE (id, k)');
    await dbs.source.client.query('VACUUM ANALYZE public.big');
    store = SqliteMetadataStore.open(':memory:');
    await store.migrate();
    const engines = new EngineRegistry([postgresEngine]);
    let svc: MigrationService | null = null;
    supervisor = new JobSupervisor({
      store, clock: systemClock, logger: silentLogger, engines,
      retryPolicy: { initialDelayMs: 100, maxDelayMs: 300, budgetMs: 1_500, probeIntervalMs: 300 },
      resolveConnection: (id) => (svc as MigrationService).resolveConnection(id),
    }, 500);
    svc = new MigrationService({ store, engines, workers: supervisor, clock: systemClock, secrets: new SecretBox(randomBytes(32)), logger: silentLogger, tunnels: new SshTunnelManager() });
    service = svc;
    await supervisor.start();
  }, 60_000);

  afterAll(async () => {
    if (saved === undefined) delete process.env.FERRY_DUMP_SPLIT_PART_BYTES;
    else process.env.FERRY_DUMP_SPLIT_PART_BYTES = saved;
    await supervisor?.close();
    await store?.close();
    await dbs?.drop();
  });

  it('copies the split table exactly and creates every index and constraint', async () => {
    const id = `fast-${randomBytes(3).toString('hex')}`;
    for (const [side, db] of [['src', dbs.source], ['dst', dbs.destination]] as const) {
      await service.createProfile({ id: `${id}-${side}`, displayName: side, engine: 'postgresql', host: PG_HOST, port: db.params.port, database: db.params.database, username: PG_USER }, 'test');
    }
    await service.createJob({ id, displayName: 'fast', type: 'one-time', sourceProfileId: `${id}-src`, destinationProfileId: `${id}-dst`, dumpParallelism: 4 }, 'test');
    await service.applyJobAction(id, 'start', 'test');
    const deadline = Date.now() + 90_000;
    let job = await service.getJob(id);
    while (job.status !== 'COMPLETED' && job.status !== 'FAILED' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      job = await service.getJob(id);
    }
    expect(job.status, JSON.stringify(job.error)).toBe('COMPLETED');
    expect(await digest(dbs.destination, 'public.big')).toEqual(await digest(dbs.source, 'public.big'));
    const split = (await store.listJobEvents(id)).find((e) => (e.details as { code?: string } | null)?.code === 'TABLE_SPLIT');
    expect(split?.message).toMatch(/^Copying public\.big in [2-4] parts side by side \(binary COPY\)$/);
    const objects = await store.listJobObjects(id);
    expect(objects.find((o) => o.name === 'public.big')?.rowsCopied).toBe(20000);
    const indexes = async (db: TestDatabase) => (await db.client.query<{ d: string }>(`SELECT indexdef AS d FROM pg_indexes WHERE tablename = 'big' ORDER BY 1`)).rows.map((r) => r.d);
    expect(await indexes(dbs.destination)).toEqual(await indexes(dbs.source));
    const constraints = async (db: TestDatabase) => (await db.client.query<{ d: string }>(`SELECT conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'public.big'::regclass ORDER BY 1`)).rows.map((r) => r.d);
    expect(await constraints(dbs.destination)).toEqual(await constraints(dbs.source));
  }, 120_000);
});
