/**
 * binaryTextArray against a real server: the Buffer goes as a binary `$1::text[]` parameter
 * (node-postgres sends Buffers with the binary format code) and array_recv must read back
 * exactly the strings and NULLs it was given, awkward ones included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { binaryTextArray } from '../../src/engines/postgres/binary-text-array.js';
import { connectPostgres } from '../../src/engines/postgres/postgres-connection.js';
import { createTestDatabase, PG_DEST_PORT, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase(PG_DEST_PORT, 'ferry_binarr');
  client = await connectPostgres(db.params);
});

afterAll(async () => {
  await client?.end().catch(() => undefined);
  await db?.drop();
});

/** The array's elements as the server reads them, in order, with the server's count and dimensions. */
async function roundTrip(values: Array<string | null>): Promise<{ values: Array<string | null>; length: number | null; dims: string | null }> {
  const param = binaryTextArray(values.length, (i) => values[i]);
  const elements = await client.query<{ v: string | null }>({ text: 'SELECT u.v FROM unnest($1::text[]) WITH ORDINALITY AS u (v, n) ORDER BY u.n', values: [param] });
  const shape = await client.query<{ length: unknown; dims: string | null }>({ text: 'SELECT cardinality($1::text[]) AS length, array_dims($1::text[]) AS dims', values: [param] });
  const row = shape.rows[0] as { length: unknown; dims: string | null };
  return { values: elements.rows.map((r) => r.v), length: row.length === null ? null : Number(row.length), dims: row.dims };
}

describe('binaryTextArray', () => {
  it('round-trips quotes, backslashes, braces, NULL and "NULL", empty strings, commas, whitespace and multi-byte UTF-8', async () => {
    const values = [
      'plain', '', null, 'NULL', 'null', '"', '\\', '\\\\"', '{', '}', '{a,b}', '{"x"}', 'a,b', ' leading and trailing ', '\t\n\r',
      "single ' quote", 'héllo wörld', '日本語テキスト', '😀 emoji 👍🏽', 'mixed \\ "q" {b} , é 😀', null, '',
    ];
    const result = await roundTrip(values);
    expect(result.values).toEqual(values);
    expect(result.length).toBe(values.length);
    expect(result.dims).toBe(`[1:${values.length}]`);
  });

  it('round-trips values of 1 MB, ASCII and multi-byte, next to short ones', async () => {
    const ascii = 'x'.repeat(1024 * 1024);
    const wide = 'é😀'.repeat(400 * 1024);
    const values = ['a', ascii, null, wide, 'b', `${'\\"{}'.repeat(300_000)}`];
    const result = await roundTrip(values);
    expect(result.values.length).toBe(values.length);
    result.values.forEach((v, i) => expect(v === values[i], `element ${i}`).toBe(true));
  });

  it('round-trips repeated values, the same string or equal ones, also where the buffer grows between them', async () => {
    const filler = ' '.repeat(84);
    const wide = `${'é'.repeat(500)}${'q'.repeat(500)}`;
    const values: Array<string | null> = [];
    for (let i = 0; i < 300; i++) values.push(filler, ' '.repeat(84), wide, wide, null, String(i % 3), String(i % 3), '', '');
    expect((await roundTrip(values)).values).toEqual(values);
  });

  it('reads an array without elements, one of NULLs only, and thousands of rows', async () => {
    expect(await roundTrip([])).toEqual({ values: [], length: 0, dims: null });
    expect((await roundTrip([null, null])).values).toEqual([null, null]);
    const many = Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? null : `row ${i} ${'é'.repeat(i % 5)}`));
    expect((await roundTrip(many)).values).toEqual(many);
  });

  it('is refused for a NUL character, as a text value is', async () => {
    await expect(roundTrip(['a\u0000b'])).rejects.toThrow(/invalid byte sequence|0x00/);
    await expect(client.query({ text: 'SELECT $1::text AS v', values: ['a\u0000b'] })).rejects.toThrow(/invalid byte sequence|0x00/);
  });
});
