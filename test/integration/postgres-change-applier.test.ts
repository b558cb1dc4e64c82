/**
 * The PostgreSQL change applier against a real destination: values of many types round-trip
 * through their text output, every operation, key changes and their replays, repeated keys in
 * one batch, unchanged TOASTed columns, tables without a primary key, identity ALWAYS columns,
 * idempotence, atomicity of changes with the position, SCHEMA_CHANGED and its recovery, and
 * forgetting the position.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { FerryError } from '../../src/core/errors.js';
import type { QualifiedName, TableSchema } from '../../src/core/schema.js';
import { destinationTableOf } from '../../src/engines/apply-failure.js';
import { UNCHANGED } from '../../src/engines/engine.js';
import type { ColumnValue, RowChange } from '../../src/engines/engine.js';
import { openPostgresChangeApplier } from '../../src/engines/postgres/postgres-change-applier.js';
import type { PostgresChangeApplier } from '../../src/engines/postgres/postgres-change-applier.js';
import { connectPostgres, quoteQualified } from '../../src/engines/postgres/postgres-connection.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { createTestDatabase, PG_DEST_PORT, type TestDatabase } from '../helpers/postgres.js';

const KINDS_COLUMNS = `
  id integer PRIMARY KEY,
  big bigint, amount numeric(30,6), note text, data bytea, flag boolean, day date,
  tstz timestamptz, span interval, uid uuid, doc json, docb jsonb, ints integer[],
  mood public.mood, qty public.positive_int, short varchar(10), moods public.mood[],
  doubled integer GENERATED ALWAYS AS (id * 2) STORED`;

const SCHEMA_SQL = `
  CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN public.positive_int AS integer CHECK (VALUE > 0);
  CREATE TABLE public.kinds (${KINDS_COLUMNS});
  CREATE TABLE public.kinds_src (${KINDS_COLUMNS});
  CREATE TABLE public.items (id integer PRIMARY KEY, name text, big text, n integer);
  CREATE TABLE public.pairs (a integer, b text, v text, PRIMARY KEY (a, b));
  CREATE TABLE public.logs (at integer, message text, doc json);
  CREATE TABLE public.ident (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
  CREATE TABLE public.stamped (id integer PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY, name text, big text);
  CREATE TABLE public.uniq (id integer PRIMARY KEY, email text UNIQUE, big text);
  CREATE TABLE public.bench (id integer PRIMARY KEY, name text);
`;

const SOURCE_VALUES_SQL = `
  INSERT INTO public.kinds_src (id, big, amount, note, data, flag, day, tstz, span, uid, doc, docb, ints, mood, qty, short, moods) VALUES
    (1, 9223372036854775807, 123456789012345678901234.123456,
     E'h\\u00e9llo w\\u00f6rld \\U0001F600 "quotes" \\\\ backslash\\ttab\\nnewline\\rcr ''single'' {braces} ,comma',
     '\\x00ff5c22'::bytea, true, '0044-03-15 BC', '2024-01-01 00:00:00.123456+00', '1 year 2 mons 3 days 04:05:06.789',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2.50, 1e400]}',
     '{"big": 123456789012345678901234567890.123456789, "tiny": 1e-30}', '{1,NULL,3}', 'happy', 7, 'ten chars!', '{ok,happy}'),
    (2, -9223372036854775808, 'NaN', '', '\\x'::bytea, false, 'infinity', '-infinity', '-178000000 years',
     '00000000-0000-0000-0000-000000000000', 'null', '[]', '{}', 'sad', 1, '', '{}'),
    (3, NULL, NULL, 'NULL', NULL, NULL, '2000-02-29', '1999-12-31 23:59:59.999999-08', '-1 days +00:00:00.000001',
     NULL, '"\\\\u0000"', '{"a": {"b": [null, true]}}', '{NULL}', NULL, NULL, NULL, '{NULL,sad}'),
    (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`;

let db: TestDatabase;
/** A client with Ferry's session settings: values come back as their text output, like pgoutput sends them. */
let raw: pg.Client;
let tables: TableSchema[];
let jobCounter = 0;

function nameOf(table: string): QualifiedName {
  return { schema: 'public', name: table };
}

function insert(table: string, columns: string[], values: ColumnValue[]): RowChange {
  return { op: 'insert', table: nameOf(table), columns, values };
}

function update(table: string, columns: string[], values: ColumnValue[], oldColumns: string[] | null = null, oldValues: ColumnValue[] | null = null): RowChange {
  return { op: 'update', table: nameOf(table), columns, values, oldColumns, oldValues };
}

function remove(table: string, oldColumns: string[], oldValues: ColumnValue[]): RowChange {
  return { op: 'delete', table: nameOf(table), oldColumns, oldValues };
}

/** The table's rows as text, in key order. */
async function rows(table: string, orderBy = '1'): Promise<string[]> {
  const result = await db.client.query<{ r: string }>(`SELECT t::text AS r FROM ${quoteQualified(nameOf(table))} t ORDER BY ${orderBy}`);
  return result.rows.map((row) => row.r);
}

async function open(jobId = `job-${++jobCounter}`): Promise<PostgresChangeApplier> {
  return openPostgresChangeApplier(db.params, jobId, tables);
}

async function applyAndCommit(applier: PostgresChangeApplier, changes: RowChange[], position: string): Promise<void> {
  await applier.apply(changes);
  await applier.commit(position);
}

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  db = await createTestDatabase(PG_DEST_PORT, 'ferry_apply');
  await db.client.query(SCHEMA_SQL);
  await db.client.query(SOURCE_VALUES_SQL);
  raw = await connectPostgres(db.params);
  const schema = await postgresEngine.readSchema(db.params, { include: [], exclude: ['public.kinds_src'] });
  tables = schema.tables;
});

afterAll(async () => {
  await raw?.end().catch(() => undefined);
  await db?.drop();
});

beforeEach(async () => {
  await db.client.query('TRUNCATE public.kinds, public.items, public.pairs, public.logs, public.ident, public.stamped, public.uniq, public.bench RESTART IDENTITY');
});

describe('PostgresChangeApplier', () => {
  it('round-trips values of many types through their text output', async () => {
    const source = await raw.query({ text: 'SELECT * FROM public.kinds_src ORDER BY id', rowMode: 'array' });
    const columns = source.fields.map((f) => f.name);
    const changes = (source.rows as Array<Array<string | null>>).map((values) => {
      // The generated column is ignored when the change carries it.
      const withGenerated = values.map((v, i) => (columns[i] === 'doubled' ? '999' : v));
      return insert('kinds', columns, withGenerated);
    });
    const applier = await open();
    try {
      // With a second table the batch is two statements, sent in one query with their values as literals.
      await applyAndCommit(applier, [...changes, insert('bench', ['id', 'name'], ['1', "it's $1::text[] \\ {1}"])], '0/1');
      expect(await rows('kinds')).toEqual(await rows('kinds_src'));
      expect((await raw.query('SELECT name FROM public.bench')).rows).toEqual([{ name: "it's $1::text[] \\ {1}" }]);
      const texts = await raw.query('SELECT note, day::text, tstz::text, doc::text, ints::text, doubled FROM public.kinds WHERE id = 1');
      expect(texts.rows[0]).toMatchObject({ ints: '{1,NULL,3}', day: '0044-03-15 BC', tstz: '2024-01-01 00:00:00.123456+00', doc: '{"b": 1,  "a": [1, 2.50, 1e400]}', doubled: '2' });
      expect(String((texts.rows[0] as { note: string }).note)).toContain('😀 "quotes" \\ backslash\ttab\nnewline');

      // Updates of every column to other values, and back to NULL, round-trip too.
      const reversed = (source.rows as Array<Array<string | null>>).map((values, i, all) => {
        const other = all[all.length - 1 - i] as Array<string | null>;
        return update('kinds', columns.filter((c) => c !== 'doubled'), values.map((v, j) => (columns[j] === 'id' ? v : other[j] ?? null)).filter((_, j) => columns[j] !== 'doubled'));
      });
      await applyAndCommit(applier, [...reversed, remove('bench', ['id'], ['1'])], '0/2');
      const expected = await db.client.query<{ r: string }>(
        `SELECT (s.id, o.big, o.amount, o.note, o.data, o.flag, o.day, o.tstz, o.span, o.uid, o.doc, o.docb, o.ints, o.mood, o.qty, o.short, o.moods, s.id * 2)::text AS r
         FROM public.kinds_src s JOIN public.kinds_src o ON o.id = 5 - s.id ORDER BY s.id`,
      );
      expect(await rows('kinds')).toEqual(expected.rows.map((r) => r.r));
    } finally {
      await applier.close();
    }
  });

  it('round-trips the same values through prepared statements and binary text[] arrays (a batch too large for one query)', async () => {
    const source = await raw.query({ text: 'SELECT * FROM public.kinds_src ORDER BY id', rowMode: 'array' });
    const columns = source.fields.map((f) => f.name);
    const changes = (source.rows as Array<Array<string | null>>).map((values) => insert('kinds', columns, values));
    // Over ONE_QUERY_MAX_ROWS rows in all: each statement goes alone, its arrays in binary.
    const many = Array.from({ length: 600 }, (_, i) => insert('bench', ['id', 'name'], [String(i + 1), i % 2 === 0 ? `"q" \\ {${i}} ü` : null]));
    const applier = await open();
    try {
      await applyAndCommit(applier, [...changes, ...many], '0/1');
      expect(await rows('kinds')).toEqual(await rows('kinds_src'));
      const bench = await raw.query<{ n: string; nulls: string; sample: string }>(`SELECT count(*)::text AS n, (count(*) FILTER (WHERE name IS NULL))::text AS nulls, max(name) FILTER (WHERE id = 1) AS sample FROM public.bench`);
      expect(bench.rows[0]).toEqual({ n: '600', nulls: '300', sample: '"q" \\ {0} ü' });
    } finally {
      await applier.close();
    }
  });

  it('names the table of the failing statement among several sent in one query, and keeps none of the batch', async () => {
    const applier = await open();
    try {
      await applyAndCommit(applier, [insert('bench', ['id', 'name'], ['1', 'before'])], '0/1');
      const error = await rejection(
        applier.apply([
          insert('items', ['id', 'name', 'big', 'n'], ['1', 'one', 'b1', '1']),
          insert('logs', ['at', 'message', 'doc'], ['1', 'bad', '{not json']),
          insert('bench', ['id', 'name'], ['2', 'after']),
        ]),
      );
      expect(error.code).toBe('DATA_ERROR');
      expect(destinationTableOf(error)).toEqual(nameOf('logs'));
      await applier.rollback();
      expect(await applier.readPosition()).toBe('0/1');
      expect(await rows('items')).toEqual([]);
      expect(await rows('bench')).toEqual(['(1,before)']);
    } finally {
      await applier.close();
    }
  });

  it('writes the position with its COMMIT in one round trip: any text exactly, and a failed write keeps neither', async () => {
    // The job id and position are sent as literals there: quotes, backslashes and placeholders stay text.
    const applier = await open(`job-'quoted' \\ $2 ${++jobCounter}`);
    try {
      const cols = ['id', 'name', 'big', 'n'];
      await applyAndCommit(applier, [insert('items', cols, ['1', 'one', 'b1', '1'])], "0/1 'x' \\ $1");
      expect(await applier.readPosition()).toBe("0/1 'x' \\ $1");
      await applier.apply([insert('items', cols, ['2', 'two', 'b2', '2'])]);
      // A position the server cannot take (a NUL byte) fails the write: the COMMIT after it does not run.
      await rejection(applier.commit('0/2\u0000'));
      await applier.rollback();
      expect(await applier.readPosition()).toBe("0/1 'x' \\ $1");
      expect(await rows('items')).toEqual(['(1,one,b1,1)']);
    } finally {
      await applier.close();
    }
  });

  it('applyAndCommit: a batch goes with its BEGIN, position write and COMMIT in one round trip; a refused statement or position keeps nothing', async () => {
    const applier = await open();
    // Every query the applier's session sends (the real server answers them).
    const client = (applier as unknown as { client: pg.Client }).client;
    const sent: string[] = [];
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      sent.push(typeof first === 'string' ? first : String((first as { text?: string }).text));
      return query(...args);
    };
    const cols = ['id', 'name', 'big', 'n'];
    try {
      await applyAndCommit(applier, [insert('bench', ['id', 'name'], ['1', 'before'])], '0/1');
      sent.length = 0;
      await applier.applyAndCommit([insert('items', cols, ['1', 'one', 'b1', '1']), insert('bench', ['id', 'name'], ['2', 'two']), remove('bench', ['id'], ['1'])], null, '0/2');
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(/^BEGIN; SAVEPOINT ferry_steps; .*; COMMIT$/s);
      expect(await applier.readPosition()).toBe('0/2');
      expect(await rows('bench')).toEqual(['(2,two)']);
      // What planAhead returned goes the same way, one statement too.
      const changes = [insert('items', cols, ['2', 'two', 'b2', '2'])];
      const planned = applier.planAhead(changes);
      expect(planned).not.toBeNull();
      sent.length = 0;
      await applier.applyAndCommit(changes, planned, '0/3');
      expect(sent).toHaveLength(1);
      expect(await rows('items')).toEqual(['(1,one,b1,1)', '(2,two,b2,2)']);
      // apply() alone sends its BEGIN with its statements: apply and commit are two round trips.
      sent.length = 0;
      await applier.apply([insert('items', cols, ['3', 'three', 'b3', '3']), insert('bench', ['id', 'name'], ['3', 'three'])]);
      await applier.commit('0/4');
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^BEGIN; SAVEPOINT/);

      // The middle statement is refused: it is named, and neither the batch nor its position is kept.
      const error = await rejection(
        applier.applyAndCommit([insert('items', cols, ['5', 'five', 'b5', '5']), insert('logs', ['at', 'message', 'doc'], ['5', 'bad', '{not json']), insert('bench', ['id', 'name'], ['5', 'five'])], null, '0/5'),
      );
      expect(error.code).toBe('DATA_ERROR');
      expect(destinationTableOf(error)).toEqual(nameOf('logs'));
      await applier.rollback();
      expect(await applier.readPosition()).toBe('0/4');
      expect(await rows('items')).not.toContain('(5,five,b5,5)');
      expect(await rows('bench')).not.toContain('(5,five)');

      // A position the server cannot take (a NUL byte): the statements passed, the position write fails, nothing is kept.
      const refused = await rejection(applier.applyAndCommit([insert('bench', ['id', 'name'], ['6', 'six'])], null, '0/6\u0000'));
      expect(destinationTableOf(refused)).toBeNull();
      await applier.rollback();
      expect(await applier.readPosition()).toBe('0/4');
      expect(await rows('bench')).not.toContain('(6,six)');

      // The applier goes on after both; a batch without changes commits its position alone.
      await applier.applyAndCommit([insert('bench', ['id', 'name'], ['7', 'seven'])], null, '0/7');
      await applier.applyAndCommit([], null, '0/8');
      expect(await applier.readPosition()).toBe('0/8');
      expect(await rows('bench')).toContain('(7,seven)');
    } finally {
      await applier.close();
    }
  });

  it('applies inserts, updates, deletes and truncates in order', async () => {
    const applier = await open();
    try {
      const cols = ['id', 'name', 'big', 'n'];
      await applyAndCommit(
        applier,
        [
          insert('items', cols, ['1', 'one', 'b1', '1']),
          insert('items', cols, ['2', 'two', 'b2', '2']),
          insert('items', cols, ['3', 'three', 'b3', '3']),
          update('items', cols, ['2', 'TWO', 'b2', '20']),
          remove('items', ['id'], ['3']),
          insert('pairs', ['a', 'b', 'v'], ['1', 'x', 'v1']),
          insert('pairs', ['a', 'b', 'v'], ['1', 'y', 'v2']),
          remove('pairs', ['a', 'b'], ['1', 'x']),
          insert('ident', ['id', 'name'], ['5', 'five']),
        ],
        '0/10',
      );
      expect(await rows('items')).toEqual(['(1,one,b1,1)', '(2,TWO,b2,20)']);
      expect(await rows('pairs')).toEqual(['(1,y,v2)']);
      expect(await rows('ident')).toEqual(['(5,five)']);

      // Deleting a row that is not there is a no-op.
      await applyAndCommit(applier, [remove('items', ['id'], ['42'])], '0/11');
      expect(await rows('items')).toHaveLength(2);

      await applyAndCommit(
        applier,
        [
          { op: 'truncate', tables: [nameOf('items'), nameOf('pairs')], cascade: false, restartIdentity: false },
          insert('items', cols, ['9', 'nine', null, null]),
          { op: 'truncate', tables: [nameOf('ident')], cascade: true, restartIdentity: true },
        ],
        '0/12',
      );
      expect(await rows('items')).toEqual(['(9,nine,,)']);
      expect(await rows('pairs')).toEqual([]);
      const next = await db.client.query<{ id: string }>(`INSERT INTO public.ident (name) VALUES ('fresh') RETURNING id`);
      expect(String(next.rows[0]?.id)).toBe('1');
      expect(await applier.readPosition()).toBe('0/12');
    } finally {
      await applier.close();
    }
  });

  it('changes keys, and replays of key changes end with the new row', async () => {
    const applier = await open();
    try {
      const cols = ['id', 'name', 'big', 'n'];
      await applyAndCommit(applier, [insert('items', cols, ['1', 'one', 'big1', '1']), insert('items', cols, ['2', 'two', 'big2', '2'])], '0/1');
      const moveOne = update('items', cols, ['10', 'ten', 'big10', '10'], ['id'], ['1']);
      // A partial key change keeps the unchanged column from the old row.
      const moveTwo = update('items', cols, ['20', 'twenty', UNCHANGED, '20'], ['id'], ['2']);
      await applyAndCommit(applier, [moveOne, moveTwo], '0/2');
      expect(await rows('items')).toEqual(['(10,ten,big10,10)', '(20,twenty,big2,20)']);

      // Replay: the old key is gone and the new key is there.
      await db.client.query(`UPDATE public.items SET name = 'stale' WHERE id = 10`);
      await applyAndCommit(applier, [moveOne, moveTwo], '0/3');
      expect(await rows('items')).toEqual(['(10,ten,big10,10)', '(20,twenty,big2,20)']);

      // Replay: neither key is there (a later delete removed the row): the new row is upserted.
      await db.client.query('DELETE FROM public.items');
      await applyAndCommit(applier, [moveOne], '0/4');
      expect(await rows('items')).toEqual(['(10,ten,big10,10)']);

      // Replay: both keys are there (the old key was inserted again later): the old row moves over the new one.
      await db.client.query(`INSERT INTO public.items VALUES (1, 'one again', 'x', 1)`);
      await applyAndCommit(applier, [moveOne], '0/5');
      expect(await rows('items')).toEqual(['(10,ten,big10,10)']);

      // Composite keys, and a chain of moves of one row in one batch.
      await applyAndCommit(
        applier,
        [
          insert('pairs', ['a', 'b', 'v'], ['1', 'x', 'v']),
          update('pairs', ['a', 'b', 'v'], ['1', 'y', 'v2'], ['a', 'b'], ['1', 'x']),
          update('pairs', ['a', 'b', 'v'], ['2', 'y', 'v3'], ['a', 'b'], ['1', 'y']),
          update('pairs', ['a', 'b', 'v'], ['3', 'z', 'v4'], ['a', 'b'], ['2', 'y']),
        ],
        '0/6',
      );
      expect(await rows('pairs')).toEqual(['(3,z,v4)']);

      // REPLICA IDENTITY FULL on a keyed table: the old row is whole, the key did not change.
      await applyAndCommit(applier, [update('pairs', ['a', 'b', 'v'], ['3', 'z', 'v5'], ['a', 'b', 'v'], ['3', 'z', 'v4'])], '0/7');
      expect(await rows('pairs')).toEqual(['(3,z,v5)']);
    } finally {
      await applier.close();
    }
  });

  it('applies repeated keys in one batch in order', async () => {
    const applier = await open();
    try {
      const cols = ['id', 'name', 'big', 'n'];
      await applier.apply([
        insert('items', cols, ['1', 'a', 'big', '1']),
        update('items', cols, ['1', 'b', 'big', '2']),
        update('items', cols, ['1', 'c', UNCHANGED, '3']),
        update('items', cols, ['1', 'd', UNCHANGED, '4']),
        insert('items', cols, ['2', 'x', 'y', '1']),
        remove('items', ['id'], ['2']),
        insert('items', cols, ['2', 'again', 'z', '2']),
        insert('items', cols, ['3', 'gone', 'z', '3']),
        remove('items', ['id'], ['3']),
      ]);
      // Many rows, each written several times, across statement boundaries.
      const many: RowChange[] = [];
      for (let round = 0; round < 3; round++) {
        for (let id = 100; id < 3100; id++) many.push(insert('bench', ['id', 'name'], [String(id), `r${round}-${id}`]));
      }
      for (let id = 100; id < 3100; id += 2) many.push(remove('bench', ['id'], [String(id)]));
      await applier.apply(many);
      await applier.commit('0/1');
      expect(await rows('items')).toEqual(['(1,d,big,4)', '(2,again,z,2)']);
      const bench = await db.client.query<{ n: string; wrong: string }>(`SELECT count(*) AS n, count(*) FILTER (WHERE name <> 'r2-' || id OR id % 2 = 0) AS wrong FROM public.bench`);
      expect(bench.rows[0]).toEqual({ n: '1500', wrong: '0' });
    } finally {
      await applier.close();
    }
  });

  it('ends an interleaved batch (hot keys, key changes, unchanged TOAST, a table without key, TRUNCATE) as the changes applied one by one', async () => {
    const cols = ['id', 'name', 'big', 'n'];
    const pairCols = ['a', 'b', 'v'];
    const uniqCols = ['id', 'email', 'big'];
    // Rows that exist before the batch (committed alone): collapsing cannot hide their order.
    const before: RowChange[] = [
      insert('items', cols, ['1', 'a', 'big1', '1']),
      insert('items', cols, ['2', 'b', 'big2', '1']),
      insert('uniq', uniqCols, ['1', 'x@', 'u1']),
      insert('uniq', uniqCols, ['2', 'y@', 'u2']),
      insert('logs', ['at', 'message', 'doc'], ['1', 'first', null]),
    ];
    const batch: RowChange[] = [];
    // OLTP-like: each "transaction" touches several tables, a few keys are hot.
    for (let t = 0; t < 40; t++) {
      batch.push(update('items', cols, [String(1 + (t % 2)), `t${t}`, t % 3 === 0 ? `big${t}` : UNCHANGED, String(t)]));
      batch.push(insert('pairs', pairCols, [String(t % 5), `k${t % 3}`, `v${t}`]));
      batch.push(insert('bench', ['id', 'name'], [String(t), `n${t}`]));
      if (t % 7 === 6) batch.push(remove('bench', ['id'], [String(t - 3)]));
      batch.push(insert('logs', ['at', 'message', 'doc'], [String(t), `m${t}`, null]));
    }
    // Whole-row key change, then the new key updated; a key change with an unchanged TOASTed value.
    batch.push(update('items', cols, ['5', 'moved', 'bigm', '5'], ['id'], ['2']));
    batch.push(update('items', cols, ['5', 'moved again', UNCHANGED, '6']));
    batch.push(update('bench', ['id', 'name'], ['500', 'five hundred'], ['id'], ['10']));
    batch.push(update('pairs', pairCols, ['9', 'k9', UNCHANGED], ['a', 'b'], ['0', 'k0']));
    // Another unique index: two rows trade an email in source order.
    batch.push(update('uniq', uniqCols, ['1', 'tmp@', UNCHANGED]));
    batch.push(update('uniq', uniqCols, ['2', 'x@', UNCHANGED]));
    batch.push(update('uniq', uniqCols, ['1', 'y@', UNCHANGED]));
    batch.push({ op: 'truncate', tables: [nameOf('logs')], cascade: false, restartIdentity: false });
    batch.push(insert('logs', ['at', 'message', 'doc'], ['99', 'after truncate', null]));
    batch.push(update('items', cols, ['1', 'last', UNCHANGED, '99']));
    batch.push(insert('bench', ['id', 'name'], ['3', 'back']));

    const snapshot = async () => ({
      items: await rows('items'),
      pairs: await rows('pairs', 't.a, t.b'),
      bench: await rows('bench'),
      logs: await rows('logs', 't.at, t.message'),
      uniq: await rows('uniq'),
    });
    const batched = await open();
    try {
      for (const change of before) await batched.apply([change]);
      await batched.commit('0/1');
      await applyAndCommit(batched, batch, '0/2');
    } finally {
      await batched.close();
    }
    const together = await snapshot();
    await db.client.query('TRUNCATE public.items, public.pairs, public.logs, public.uniq, public.bench');
    const single = await open();
    try {
      for (const change of [...before, ...batch]) await single.apply([change]);
      await single.commit('0/2');
    } finally {
      await single.close();
    }
    expect(together).toEqual(await snapshot());
    expect(together.items).toEqual(['(1,last,big36,99)', '(5,"moved again",bigm,6)']);
    expect(together.logs).toEqual(['(99,"after truncate",)']);
  });

  it('keeps the destination value of unchanged TOASTed columns', async () => {
    const applier = await open();
    try {
      const big = 'x'.repeat(100_000);
      await applyAndCommit(applier, [insert('items', ['id', 'name', 'big', 'n'], ['1', 'one', big, '1'])], '0/1');
      await applyAndCommit(applier, [update('items', ['id', 'name', 'big', 'n'], ['1', 'uno', UNCHANGED, '2'])], '0/2');
      const row = await db.client.query<{ name: string; n: number; len: number }>('SELECT name, n, length(big) AS len FROM public.items WHERE id = 1');
      expect(row.rows[0]).toEqual({ name: 'uno', n: 2, len: 100_000 });
      // A partial update of a missing row cannot rebuild it: it changes nothing (a later change or the copy has it).
      await applyAndCommit(applier, [update('items', ['id', 'name', 'big', 'n'], ['2', 'dos', UNCHANGED, '2'])], '0/3');
      expect(await rows('items')).toHaveLength(1);
    } finally {
      await applier.close();
    }
  });

  it('updates and deletes one matching row of a table without a primary key', async () => {
    const applier = await open();
    try {
      const cols = ['at', 'message', 'doc'];
      await applyAndCommit(
        applier,
        [
          insert('logs', cols, ['1', 'dup', '{"a":  1}']),
          insert('logs', cols, ['1', 'dup', '{"a":  1}']),
          insert('logs', cols, [null, null, null]),
          insert('logs', cols, ['2', 'tab\there', '[1, 2]']),
        ],
        '0/1',
      );
      await applyAndCommit(
        applier,
        [
          update('logs', cols, ['1', 'changed', '{"a":  1}'], cols, ['1', 'dup', '{"a":  1}']),
          update('logs', cols, ['3', 'was null', null], cols, [null, null, null]),
          remove('logs', cols, ['2', 'tab\there', '[1, 2]']),
          // No row has these old values: nothing happens.
          remove('logs', cols, ['1', 'dup', '{"a": 1}']),
        ],
        '0/2',
      );
      expect(await rows('logs', 't::text')).toEqual(['(1,changed,"{""a"":  1}")', '(1,dup,"{""a"":  1}")', '(3,"was null",)']);

      // A keyed table whose old values do not hold the key (REPLICA IDENTITY USING INDEX on other columns): matched on them.
      await applyAndCommit(applier, [insert('items', ['id', 'name', 'n'], ['1', 'one', '1']), insert('items', ['id', 'name', 'n'], ['2', 'two', '2'])], '0/3');
      await applyAndCommit(applier, [update('items', ['id', 'name', 'n'], ['1', 'uno', '10'], ['name'], ['one']), remove('items', ['name'], ['two'])], '0/4');
      expect(await rows('items')).toEqual(['(1,uno,,10)']);
    } finally {
      await applier.close();
    }
  });

  it('writes identity ALWAYS columns', async () => {
    const applier = await open();
    try {
      await applyAndCommit(
        applier,
        [
          insert('ident', ['id', 'name'], ['7', 'seven']),
          update('ident', ['id', 'name'], ['7', 'SEVEN']),
          insert('ident', ['id', 'name'], ['8', 'eight']),
          // UPDATE ... SET id = DEFAULT on the source: the key changes.
          update('ident', ['id', 'name'], ['9', 'nine'], ['id'], ['8']),
          insert('stamped', ['id', 'seq', 'name', 'big'], ['1', '100', 'one', 'big one']),
          update('stamped', ['id', 'seq', 'name', 'big'], ['1', '100', 'uno', UNCHANGED]),
          // A non-key identity ALWAYS column that changed (SET seq = DEFAULT): the row is rewritten, unchanged columns kept.
          update('stamped', ['id', 'seq', 'name', 'big'], ['1', '101', 'eins', UNCHANGED]),
          insert('stamped', ['id', 'seq', 'name', 'big'], ['2', '200', 'two', 'big two']),
          update('stamped', ['id', 'seq', 'name', 'big'], ['2', '201', 'zwei', 'big zwei']),
        ],
        '0/1',
      );
      expect(await rows('ident')).toEqual(['(7,SEVEN)', '(9,nine)']);
      expect(await rows('stamped')).toEqual(['(1,101,eins,"big one")', '(2,201,zwei,"big zwei")']);
    } finally {
      await applier.close();
    }
  });

  it('keeps source order of updates on a table with another unique index', async () => {
    const applier = await open();
    try {
      const cols = ['id', 'email', 'big'];
      await applyAndCommit(applier, [insert('uniq', cols, ['1', 'a', 'b1']), insert('uniq', cols, ['2', 'b', 'b2'])], '0/1');
      // Row 2 frees its email before row 1 takes it, with unchanged columns (UPDATE by key, not upsert):
      // the other order would violate the unique constraint.
      await applyAndCommit(applier, [update('uniq', cols, ['2', 'c', UNCHANGED]), update('uniq', cols, ['1', 'b', UNCHANGED])], '0/2');
      expect(await rows('uniq')).toEqual(['(1,b,b1)', '(2,c,b2)']);
      // The same with whole rows (upserts).
      await applyAndCommit(applier, [update('uniq', cols, ['2', 'd', 'b2']), update('uniq', cols, ['1', 'c', 'b1'])], '0/3');
      expect(await rows('uniq')).toEqual(['(1,c,b1)', '(2,d,b2)']);

      // A long chain against the table's physical order: row k takes the email row k + 1 just gave up.
      const n = 1000;
      const chain: RowChange[] = [];
      for (let id = 10; id < 10 + n; id++) chain.push(insert('uniq', cols, [String(id), `e${id}`, 'b']));
      await applyAndCommit(applier, chain, '0/4');
      const moves: RowChange[] = [update('uniq', cols, [String(10 + n - 1), 'last', UNCHANGED])];
      for (let id = 10 + n - 2; id >= 10; id--) moves.push(update('uniq', cols, [String(id), `e${id + 1}`, UNCHANGED]));
      await applyAndCommit(applier, moves, '0/5');
      const wrong = await db.client.query<{ n: string }>(`SELECT count(*) AS n FROM public.uniq WHERE id >= 10 AND email <> CASE WHEN id = ${10 + n - 1} THEN 'last' ELSE 'e' || (id + 1) END`);
      expect(wrong.rows[0]?.n).toBe('0');
    } finally {
      await applier.close();
    }
  });

  it('applies full-row updates as an UPDATE in place, and writes a row the destination lacks whole (prepared statements and one query)', async () => {
    // An ENABLE ALWAYS trigger counts the rows an INSERT proposes: an upsert proposes every row, an UPDATE none.
    await db.client.query(`
      CREATE TABLE public.tracked (id integer PRIMARY KEY, name text, n integer);
      CREATE TABLE public.proposed (n integer NOT NULL);
      INSERT INTO public.proposed VALUES (0);
      CREATE FUNCTION public.count_proposed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE public.proposed SET n = n + 1; RETURN NEW; END $$;
      CREATE TRIGGER count_proposed BEFORE INSERT ON public.tracked FOR EACH ROW EXECUTE FUNCTION public.count_proposed();
      ALTER TABLE public.tracked ENABLE ALWAYS TRIGGER count_proposed;`);
    const proposed = async () => Number((await db.client.query<{ n: number }>('SELECT n FROM public.proposed')).rows[0]?.n);
    const withTracked = (await postgresEngine.readSchema(db.params, { include: ['public.tracked', 'public.bench'], exclude: [] })).tables;
    const applier = await openPostgresChangeApplier(db.params, `in-place-${++jobCounter}`, withTracked);
    const cols = ['id', 'name', 'n'];
    const ids = Array.from({ length: 600 }, (_, i) => i + 1);
    try {
      await applyAndCommit(applier, ids.map((id) => ({ op: 'insert', table: nameOf('tracked'), columns: cols, values: [String(id), `v${id}`, '0'] })), '0/1');
      expect(await proposed()).toBe(600);
      // 600 rows: one statement through the extended protocol. Two rows vanished from the destination.
      await db.client.query('DELETE FROM public.tracked WHERE id IN (5, 550)');
      await applyAndCommit(applier, ids.map((id) => update('tracked', cols, [String(id), `w${id}`, String(id)])), '0/2');
      expect(await rows('tracked', 't.id')).toEqual(ids.map((id) => `(${id},w${id},${id})`));
      // The UPDATE found 598 of 600 rows, so the upsert of the same rows ran: 600 proposed.
      expect(await proposed()).toBe(1_200);
      // Every row present: the UPDATE alone.
      await applyAndCommit(applier, ids.map((id) => update('tracked', cols, [String(id), `x${id}`, String(-id)])), '0/3');
      expect(await rows('tracked', 't.id')).toEqual(ids.map((id) => `(${id},x${id},${-id})`));
      expect(await proposed()).toBe(1_200);
      // A small batch of two statements goes in one query, the update as its upsert.
      await db.client.query('DELETE FROM public.tracked WHERE id = 7');
      await applyAndCommit(applier, [update('tracked', cols, ['7', 'seven', '7']), update('tracked', cols, ['8', 'eight', '8']), insert('bench', ['id', 'name'], ['1', 'b'])], '0/4');
      expect((await rows('tracked', 't.id')).slice(6, 8)).toEqual(['(7,seven,7)', '(8,eight,8)']);
      expect(await rows('bench')).toEqual(['(1,b)']);
      expect(await proposed()).toBe(1_202);
    } finally {
      await applier.close();
      await db.client.query('DROP TABLE public.tracked, public.proposed; DROP FUNCTION public.count_proposed()');
    }
  });

  it('is idempotent: a batch applied twice ends as applied once', async () => {
    const applier = await open();
    try {
      const cols = ['id', 'name', 'big', 'n'];
      await applyAndCommit(applier, [insert('items', cols, ['1', 'one', 'b', '1']), insert('items', cols, ['2', 'two', 'b', '2'])], '0/1');
      const batch: RowChange[] = [
        insert('items', cols, ['3', 'three', 'b3', '3']),
        update('items', cols, ['1', 'ONE', 'b1', '10']),
        update('items', cols, ['3', 'THREE', UNCHANGED, '30']),
        update('items', cols, ['20', 'twenty', 'b20', '20'], ['id'], ['2']),
        insert('items', cols, ['4', 'four', 'b4', '4']),
        remove('items', ['id'], ['4']),
        insert('pairs', ['a', 'b', 'v'], ['1', 'x', 'v']),
        update('pairs', ['a', 'b', 'v'], ['1', 'y', 'w'], ['a', 'b'], ['1', 'x']),
        insert('ident', ['id', 'name'], ['1', 'one']),
        update('ident', ['id', 'name'], ['2', 'two'], ['id'], ['1']),
        { op: 'truncate', tables: [nameOf('uniq')], cascade: false, restartIdentity: false },
        insert('uniq', ['id', 'email', 'big'], ['1', 'e', 'b']),
      ];
      await applyAndCommit(applier, batch, '0/2');
      const once = [await rows('items'), await rows('pairs'), await rows('ident'), await rows('uniq')];
      expect(once[0]).toEqual(['(1,ONE,b1,10)', '(20,twenty,b20,20)', '(3,THREE,b3,30)']);
      await applyAndCommit(applier, batch, '0/2');
      expect([await rows('items'), await rows('pairs'), await rows('ident'), await rows('uniq')]).toEqual(once);
    } finally {
      await applier.close();
    }
  });

  it('writes the position only with its batch: rollback keeps neither', async () => {
    const jobId = `atomic-${++jobCounter}`;
    const applier = await openPostgresChangeApplier(db.params, jobId, tables);
    const position = async () =>
      (await db.client.query<{ position: string }>('SELECT position FROM _ferry.replication_position WHERE job_id = $1', [jobId])).rows[0]?.position ?? null;
    try {
      expect(await applier.readPosition()).toBeNull();
      // A heartbeat: the position alone.
      await applier.commit('0/A');
      expect(await applier.readPosition()).toBe('0/A');

      await applier.apply([insert('items', ['id', 'name'], ['1', 'one'])]);
      // Nothing is visible outside before commit.
      expect(await rows('items')).toEqual([]);
      expect(await position()).toBe('0/A');
      await applier.rollback();
      expect(await rows('items')).toEqual([]);
      expect(await applier.readPosition()).toBe('0/A');

      await applier.apply([insert('items', ['id', 'name'], ['1', 'one'])]);
      await applier.apply([insert('items', ['id', 'name'], ['2', 'two'])]);
      expect(await position()).toBe('0/A');
      await applier.commit('0/B');
      expect(await rows('items')).toEqual(['(1,one,,)', '(2,two,,)']);
      expect(await position()).toBe('0/B');

      // A failed statement abandons the batch; commit refuses until rollback.
      await applier.apply([insert('items', ['id', 'name'], ['3', 'three'])]);
      const failed = await rejection(applier.apply([insert('kinds', ['id', 'qty'], ['1', '-5'])]));
      expect(failed.code).toBe('CONSTRAINT_VIOLATION');
      const refused = await rejection(applier.commit('0/C'));
      expect(refused.code).toBe('FAILED_PRECONDITION');
      await applier.rollback();
      expect(await rows('items')).toHaveLength(2);
      expect(await applier.readPosition()).toBe('0/B');
      await applyAndCommit(applier, [insert('items', ['id', 'name'], ['3', 'three'])], '0/C');
      expect(await rows('items')).toHaveLength(3);
      expect(await applier.readPosition()).toBe('0/C');
    } finally {
      await applier.close();
    }
    // A new applier reads what the last one committed.
    const again = await openPostgresChangeApplier(db.params, jobId, tables);
    try {
      expect(await again.readPosition()).toBe('0/C');
    } finally {
      await again.close();
    }
  });

  it('plans a batch ahead while the previous one runs, and leaves to apply() what only the destination can tell', async () => {
    const cols = ['id', 'name', 'big', 'n'];
    const applier = await open();
    try {
      const running = applier.apply([insert('items', cols, ['1', 'a', 'big1', '1']), insert('bench', ['id', 'name'], ['1', 'x'])]);
      // No round trip: planned while the first batch is still on the destination.
      const planned = applier.planAhead([update('items', cols, ['1', 'a2', UNCHANGED, '2']), remove('bench', ['id'], ['1']), insert('bench', ['id', 'name'], ['2', 'y'])]);
      expect(planned?.changes).toBe(3);
      await running;
      await applier.applyPlanned(planned as NonNullable<typeof planned>);
      await applier.commit('0/1');
      expect(await rows('items')).toEqual(['(1,a2,big1,2)']);
      expect(await rows('bench')).toEqual(['(2,y)']);

      // A column the destination lacks (it may have been added since it was read): apply() looks again and says what is wrong.
      const extra = [insert('items', ['id', 'name', 'extra'], ['2', 'two', 'more'])];
      expect(applier.planAhead(extra)).toBeNull();
      expect((await rejection(applier.apply(extra))).code).toBe('SCHEMA_CHANGED');
      await applier.rollback();
      // A change without its key value: refused by apply(), naming the table.
      const keyless = [insert('items', cols, [null, 'x', null, '1'])];
      expect(applier.planAhead(keyless)).toBeNull();
      const refused = await rejection(applier.apply(keyless));
      expect(refused.code).toBe('DATA_ERROR');
      expect(refused.details.destinationTable).toEqual(nameOf('items'));
      await applier.rollback();
    } finally {
      await applier.close();
    }
  });

  it('refuses columns and tables the destination lacks with SCHEMA_CHANGED, and recovers after ALTER TABLE', async () => {
    const applier = await open();
    try {
      const change = insert('items', ['id', 'name', 'extra'], ['1', 'one', 'more']);
      const error = await rejection(applier.apply([change]));
      expect(error.code).toBe('SCHEMA_CHANGED');
      expect(error.retryable).toBe(true);
      expect(error.message).toContain('public.items');
      expect(error.message).toContain('extra');
      expect(error.message).toContain('ALTER TABLE');
      expect(error.message).toContain('Ferry retries and continues by itself');
      await applier.rollback();

      const unknown = await rejection(applier.apply([insert('kinds_src', ['id'], ['1'])]));
      expect(unknown.code).toBe('SCHEMA_CHANGED');
      expect(unknown.message).toContain('public.kinds_src');
      await applier.rollback();

      await db.client.query('ALTER TABLE public.items ADD COLUMN extra text');
      try {
        await applyAndCommit(applier, [change, update('items', ['id', 'name', 'extra'], ['1', 'one', 'most'], ['id', 'name', 'extra'], ['1', 'one', 'more'])], '0/1');
        const row = await db.client.query('SELECT id, name, extra FROM public.items');
        expect(row.rows).toEqual([{ id: 1, name: 'one', extra: 'most' }]);
      } finally {
        await db.client.query('ALTER TABLE public.items DROP COLUMN extra');
      }
    } finally {
      await applier.close();
    }
  });

  it('forgets the position and drops _ferry when no job is left', async () => {
    const first = await open('forget-a');
    const second = await open('forget-b');
    const bystander = await open('forget-bystander');
    const schemaExists = async () => (await db.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).rows.length === 1;
    try {
      // Only these two jobs replicate into the destination now.
      await db.client.query(`DELETE FROM _ferry.replication_position`);
      await first.commit('0/1');
      await second.commit('0/2');
      await first.forgetPosition();
      expect(await first.readPosition()).toBeNull();
      expect(await second.readPosition()).toBe('0/2');
      expect(await schemaExists()).toBe(true);
      await second.forgetPosition();
      expect(await schemaExists()).toBe(false);
      expect(await second.readPosition()).toBeNull();
      // Forgetting again is a no-op.
      await second.forgetPosition();
      // A later commit of the same applier creates the table again.
      await second.commit('0/3');
      expect(await second.readPosition()).toBe('0/3');
      await second.forgetPosition();
      expect(await schemaExists()).toBe(false);

      // An applier opened before the drop that had not committed yet: a retryable refusal, then it recreates the table.
      await bystander.apply([insert('items', ['id', 'name'], ['1', 'one'])]);
      const dropped = await rejection(bystander.commit('0/1'));
      expect(dropped.code).toBe('SCHEMA_CHANGED');
      expect(dropped.retryable).toBe(true);
      await bystander.rollback();
      await applyAndCommit(bystander, [insert('items', ['id', 'name'], ['1', 'one'])], '0/1');
      expect(await bystander.readPosition()).toBe('0/1');
      await bystander.forgetPosition();
      expect(await schemaExists()).toBe(false);
    } finally {
      await first.close();
      await second.close();
      await bystander.close();
    }
    // The engine's applier recreates the table when opened again.
    const engineApplier = await postgresEngine.openChangeApplier(db.params, 'forget-c', tables);
    try {
      await engineApplier.apply([insert('items', ['id', 'name'], ['1', 'one'])]);
      await engineApplier.commit('0/9');
      expect(await engineApplier.readPosition()).toBe('0/9');
      expect(await schemaExists()).toBe(true);
    } finally {
      await engineApplier.close();
    }
  });
});
