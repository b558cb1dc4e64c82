/**
 * CopyOutStream (COPY TO STDOUT without pg-copy-streams) against the real source cluster:
 * the same bytes as pg-copy-streams' `to` in text and binary format, rows counted from the
 * protocol, rows larger than a socket read, an error in the middle of the COPY (the
 * connection usable afterwards), a lost connection, and a paused consumer that holds the
 * server back instead of buffering the table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { countsRows } from '../../src/engines/engine.js';
import { CopyOutStream } from '../../src/engines/postgres/copy-out-stream.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { CopyProgress } from '../../src/pipeline/full-dump.js';
import { createTestDatabase, PG_HOST, PG_SOURCE_PORT, PG_USER, type TestDatabase } from '../helpers/postgres.js';

const ROWS = 100_000;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('CopyOutStream', () => {
  let db: TestDatabase;
  let client: pg.Client;

  const connect = async () => {
    const c = new pg.Client({ host: PG_HOST, port: PG_SOURCE_PORT, user: PG_USER, database: db.params.database });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_copyout');
    // About 10 MB: many socket reads, so read boundaries fall inside message headers and bodies.
    await db.client.query('CREATE TABLE public.t (id bigint PRIMARY KEY, name text, amount numeric(14,2), at timestamptz, doc jsonb)');
    await db.client.query(`INSERT INTO public.t
      SELECT g, CASE WHEN g % 13 = 0 THEN NULL ELSE E'n\\u00e4me\\t' || repeat('x', g % 40) || E'\\\\\\n' END, g / 7.0,
             '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', jsonb_build_object('g', g, 'tag', md5(g::text))
        FROM generate_series(1, ${ROWS}) g`);
    // Rows of 1 to 3 MB: each spans many socket reads.
    await db.client.query('CREATE TABLE public.wide (id int PRIMARY KEY, pad text)');
    await db.client.query(`INSERT INTO public.wide SELECT g, repeat(md5(g::text), 32768 * (1 + g % 3)) FROM generate_series(1, 12) g`);
    await db.client.query('CREATE TABLE public.empty (id int)');
    client = await connect();
  }, 120_000);

  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await db?.drop();
  });

  for (const format of ['text', 'binary'] as const) {
    it(`hands on the same ${format} bytes as pg-copy-streams and counts the rows from the protocol`, async () => {
      const options = format === 'binary' ? ' (FORMAT binary)' : '';
      const expected = await collect(client.query(copyTo(`COPY public.t TO STDOUT${options}`)));
      const stream = client.query(new CopyOutStream(`COPY public.t TO STDOUT${options}`));
      let chunks = 0;
      stream.on('data', () => chunks++);
      const actual = await collect(stream);
      expect(actual.length).toBe(expected.length);
      expect(actual.equals(expected)).toBe(true);
      expect(stream.rows).toBe(ROWS);
      expect(stream.rowCount).toBe(ROWS);
      // One chunk per socket read, not one per row.
      expect(chunks).toBeLessThan(ROWS / 50);
      // pg has the connection back.
      expect((await client.query('SELECT 42 AS n')).rows[0]).toEqual({ n: 42 });
    }, 60_000);
  }

  it('counts zero rows of an empty table in both formats', async () => {
    const text = client.query(new CopyOutStream('COPY public.empty TO STDOUT'));
    expect((await collect(text)).length).toBe(0);
    expect(text.rows).toBe(0);
    const binary = client.query(new CopyOutStream('COPY public.empty TO STDOUT (FORMAT binary)'));
    // Signature, flags, extension length, then the trailer.
    expect((await collect(binary)).length).toBe(11 + 4 + 4 + 2);
    expect(binary.rows).toBe(0);
    expect(binary.rowCount).toBe(0);
  });

  it('copies rows larger than a socket read exactly', async () => {
    for (const format of ['text', 'binary'] as const) {
      const options = format === 'binary' ? ' (FORMAT binary)' : '';
      const expected = await collect(client.query(copyTo(`COPY public.wide TO STDOUT${options}`)));
      const stream = client.query(new CopyOutStream(`COPY public.wide TO STDOUT${options}`));
      const actual = await collect(stream);
      expect(actual.length).toBeGreaterThan(12 * 1024 * 1024);
      expect(actual.equals(expected)).toBe(true);
      expect(stream.rows).toBe(12);
    }
  }, 60_000);

  it('fails with the server error raised mid-copy, after the rows before it, and leaves the connection usable', async () => {
    const stream = client.query(new CopyOutStream('COPY (SELECT CASE WHEN g = 50000 THEN 1 / (g - g) ELSE g END, repeat(\'y\', 100) FROM generate_series(1, 100000) g) TO STDOUT'));
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    const error = await new Promise<Error & { code?: string }>((resolve) => stream.on('error', resolve));
    expect(error.code).toBe('22012');
    expect(bytes).toBeGreaterThan(0);
    expect(stream.rows).toBeGreaterThan(0);
    expect(stream.rows).toBeLessThan(50_000);
    expect((await client.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    // The next COPY on the same connection works.
    const again = client.query(new CopyOutStream('COPY public.wide (id) TO STDOUT'));
    expect((await collect(again)).toString()).toBe(`${Array.from({ length: 12 }, (_, i) => i + 1).join('\n')}\n`);
  }, 60_000);

  it('reports an error for a statement the server refuses before copying', async () => {
    const stream = client.query(new CopyOutStream('COPY public.missing TO STDOUT'));
    const error = await new Promise<Error & { code?: string }>((resolve) => stream.on('error', resolve));
    expect(error.code).toBe('42P01');
    expect((await client.query('SELECT 2 AS two')).rows[0]).toEqual({ two: 2 });
  });

  it('holds the server back while its consumer is paused, and fails when the connection is lost', async () => {
    const own = await connect();
    try {
      const pid = Number((await own.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const stream = own.query(new CopyOutStream('COPY (SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 2000000) g) TO STDOUT'));
      // Read one chunk, then stop reading for a while: what is held in memory stays near the
      // stream's buffer (one socket read and the highWaterMark), far from the 500 MB of the copy.
      await new Promise<void>((resolve) => stream.once('readable', resolve));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(stream.readableLength).toBeLessThan(1024 * 1024);
      const rowsWhilePaused = stream.rows;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(stream.rows).toBe(rowsWhilePaused);
      expect(rowsWhilePaused).toBeLessThan(100_000);

      const failed = new Promise<Error>((resolve) => stream.on('error', resolve));
      await db.client.query('SELECT pg_terminate_backend($1)', [pid]);
      stream.resume();
      const error = await failed;
      expect(String(error.message)).toMatch(/terminat/i);
    } finally {
      await own.end().catch(() => undefined);
    }
  }, 60_000);

  it('gives the table reader and the dump progress its row count without scanning', async () => {
    const snapshot = await postgresEngine.openSnapshot(db.params);
    const reader = await snapshot.openTableReader();
    try {
      const schema = await snapshot.readSchema({ include: [], exclude: [] });
      const table = schema.tables.find((t) => t.name === 't');
      if (table === undefined) throw new Error('table t not found');
      for (const format of ['text', 'binary'] as const) {
        const rows = reader.copyOut(table, { format });
        expect(countsRows(rows)).toBe(true);
        // The dump's progress takes the count (a text-format progress would count newlines,
        // which the binary data does not have one per row).
        const progress = new CopyProgress(60_000, () => undefined, 'text');
        if (countsRows(rows)) progress.countRowsOf(rows);
        await collect(rows.pipe(progress));
        expect(countsRows(rows) ? rows.rows : -1).toBe(ROWS);
        expect(progress.rows).toBe(ROWS);
      }
    } finally {
      await reader.close();
      await snapshot.close();
    }
  }, 60_000);
});
