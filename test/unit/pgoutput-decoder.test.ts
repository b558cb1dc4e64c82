/**
 * The pgoutput decoder against hand-built protocol version 1 and 2 messages
 * (https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html).
 */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { UNCHANGED } from '../../src/engines/engine.js';
import { Lsn } from '../../src/engines/postgres/lsn.js';
import { PgoutputDecoder, postgresTimestampToIso, toPostgresTimestamp } from '../../src/engines/postgres/pgoutput-decoder.js';

/** Builds a message field by field, big-endian, as the server writes it. */
class Message {
  private readonly parts: Buffer[] = [];

  constructor(tag: string) {
    this.byte(tag.charCodeAt(0));
  }

  byte(value: number): this {
    this.parts.push(Buffer.from([value]));
    return this;
  }

  char(value: string): this {
    return this.byte(value.charCodeAt(0));
  }

  int16(value: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(value);
    this.parts.push(b);
    return this;
  }

  int32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(value);
    this.parts.push(b);
    return this;
  }

  uint32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    this.parts.push(b);
    return this;
  }

  int64(value: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(value);
    this.parts.push(b);
    return this;
  }

  lsn(text: string): this {
    return this.int64(Lsn.parse(text).toBigInt());
  }

  string(value: string): this {
    this.parts.push(Buffer.from(value, 'utf8'), Buffer.from([0]));
    return this;
  }

  bytes(value: Buffer): this {
    this.parts.push(value);
    return this;
  }

  /** TupleData: each value as text ('t'), null ('n') or unchanged TOAST ('u'). */
  tuple(values: Array<string | null | typeof UNCHANGED>): this {
    this.int16(values.length);
    for (const value of values) {
      if (value === null) this.char('n');
      else if (value === UNCHANGED) this.char('u');
      else {
        const text = Buffer.from(value, 'utf8');
        this.char('t').uint32(text.length).bytes(text);
      }
    }
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

// 2026-11-03T10:20:30.123456Z in microseconds since 2000-01-01.
const COMMIT_TIME = toPostgresTimestamp(Date.parse('2026-11-03T10:20:30.123Z')) + 456n;

function relation(id: number, schema: string, name: string, identity: string, columns: Array<[name: string, key: boolean, oid: number, typmod: number]>): Buffer {
  const m = new Message('R').uint32(id).string(schema).string(name).char(identity).int16(columns.length);
  for (const [column, key, oid, typmod] of columns) m.byte(key ? 1 : 0).string(column).uint32(oid).int32(typmod);
  return m.build();
}

const ORDERS = relation(16400, 'public', 'orders', 'd', [
  ['id', true, 23, -1],
  ['note', false, 25, -1],
  ['amount', false, 1700, ((12 << 16) | 2) + 4],
]);

describe('timestamps', () => {
  it('turns microseconds since 2000-01-01 into ISO with microseconds', () => {
    expect(postgresTimestampToIso(0n)).toBe('2000-01-01T00:00:00.000000Z');
    expect(postgresTimestampToIso(COMMIT_TIME)).toBe('2026-11-03T10:20:30.123456Z');
    expect(postgresTimestampToIso(-1n)).toBe('1999-12-31T23:59:59.999999Z');
  });
});

describe('PgoutputDecoder', () => {
  it('decodes Begin and Commit', () => {
    const decoder = new PgoutputDecoder();
    expect(decoder.decode(new Message('B').lsn('16/B374D848').int64(COMMIT_TIME).uint32(0xfffffff0).build())).toEqual({
      tag: 'begin',
      finalLsn: Lsn.parse('16/B374D848'),
      commitTime: '2026-11-03T10:20:30.123456Z',
      xid: 0xfffffff0,
    });
    const commit = decoder.decode(new Message('C').byte(0).lsn('16/B374D848').lsn('16/B374D878').int64(COMMIT_TIME).build());
    expect(commit).toEqual({
      tag: 'commit',
      flags: 0,
      commitLsn: Lsn.parse('16/B374D848'),
      endLsn: Lsn.parse('16/B374D878'),
      commitTime: '2026-11-03T10:20:30.123456Z',
    });
  });

  it('decodes Origin and Type messages', () => {
    const decoder = new PgoutputDecoder();
    expect(decoder.decode(new Message('O').lsn('0/100').string('node_a').build())).toEqual({ tag: 'origin', originLsn: Lsn.parse('0/100'), name: 'node_a' });
    expect(decoder.decode(new Message('Y').uint32(16385).string('public').string('mood').build())).toEqual({
      tag: 'type',
      typeOid: 16385,
      schema: 'public',
      name: 'mood',
    });
  });

  it('decodes a Relation, with key flags and type names', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(new Message('Y').uint32(16385).string('public').string('mood').build());
    decoder.decode(new Message('Y').uint32(16384).string('Sales').string('_mood').build());
    const message = decoder.decode(
      relation(16401, '', 'weird', 'i', [
        ['id', true, 20, -1],
        ['code', false, 1043, 24],
        ['fixed', false, 1042, -1],
        ['at', false, 1184, 3],
        ['price', false, 1700, ((10 << 16) | 2) + 4],
        ['tags', false, 1009, -1],
        ['mood', false, 16385, -1],
        ['moods', false, 16384, -1],
        ['other', false, 99999, 7],
      ]),
    );
    expect(message.tag).toBe('relation');
    if (message.tag !== 'relation') return;
    const { relation: described } = message;
    expect(described).toMatchObject({ id: 16401, schema: 'pg_catalog', name: 'weird', replicaIdentity: 'index' });
    expect(described.columns.map((c) => [c.name, c.key, c.nativeType])).toEqual([
      ['id', true, 'bigint'],
      ['code', false, 'character varying(20)'],
      ['fixed', false, 'bpchar'],
      ['at', false, 'timestamp(3) with time zone'],
      ['price', false, 'numeric(10,2)'],
      ['tags', false, 'text[]'],
      ['mood', false, 'public.mood'],
      ['moods', false, '"Sales".mood[]'],
      ['other', false, 'oid:99999:7'],
    ]);
    expect(described.columns[1]).toMatchObject({ typeOid: 1043, typeModifier: 24 });
    expect(decoder.relation(16401)).toBe(described);
  });

  it('decodes an Insert into a RowChange with column names, NULL and UTF-8 text', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(ORDERS);
    const message = decoder.decode(new Message('I').uint32(16400).char('N').tuple(['1', 'crème brûlée\ttab\nline', null]).build());
    expect(message).toEqual({
      tag: 'change',
      change: { op: 'insert', table: { schema: 'public', name: 'orders' }, columns: ['id', 'note', 'amount'], values: ['1', 'crème brûlée\ttab\nline', null] },
    });
  });

  it('reuses the string of a short ASCII value equal to the column\'s last one, and never mistakes other text for it', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(ORDERS);
    const values = (row: Array<string | null>) => {
      const message = decoder.decode(new Message('I').uint32(16400).char('N').tuple(row).build());
      if (message.tag !== 'change' || message.change.op !== 'insert') throw new Error('expected an insert');
      return message.change.values;
    };
    const filler = ' '.repeat(84);
    const first = values(['1', filler, '2.00']);
    const second = values(['2', filler, '2.00']);
    expect(second).toEqual(['2', filler, '2.00']);
    expect(second[1]).toBe(first[1]);
    // Same length, other bytes; then Latin-1 look-alikes of UTF-8 ("Ã©" is what the bytes of "é" read as Latin-1).
    expect(values(['3', ' '.repeat(83) + 'x', '2.01'])).toEqual(['3', ' '.repeat(83) + 'x', '2.01']);
    expect(values(['4', 'Ã©', null])).toEqual(['4', 'Ã©', null]);
    expect(values(['5', 'é', null])).toEqual(['5', 'é', null]);
    expect(values(['6', 'é', null])).toEqual(['6', 'é', null]);
    expect(values(['7', 'ab', null])).toEqual(['7', 'ab', null]);
    // Long values are read whole, ASCII or not.
    const long = `${'é'.repeat(100)}${'a'.repeat(100)}`;
    expect(values(['8', long, ''])).toEqual(['8', long, '']);
    expect(values(['9', 'a'.repeat(200), ''])).toEqual(['9', 'a'.repeat(200), '']);
  });

  it('decodes Updates: without old key, with old key (K), with old row (O), and unchanged TOAST', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(ORDERS);
    const table = { schema: 'public', name: 'orders' };
    const columns = ['id', 'note', 'amount'];

    expect(decoder.decode(new Message('U').uint32(16400).char('N').tuple(['1', UNCHANGED, '3.50']).build())).toEqual({
      tag: 'change',
      change: { op: 'update', table, columns, values: ['1', UNCHANGED, '3.50'], oldColumns: null, oldValues: null },
    });
    // A key change: the old key comes with the other columns as null placeholders.
    expect(decoder.decode(new Message('U').uint32(16400).char('K').tuple(['1', null, null]).char('N').tuple(['2', 'x', null]).build())).toEqual({
      tag: 'change',
      change: { op: 'update', table, columns, values: ['2', 'x', null], oldColumns: ['id'], oldValues: ['1'] },
    });
    expect(decoder.decode(new Message('U').uint32(16400).char('O').tuple(['2', 'x', null]).char('N').tuple(['2', 'y', null]).build())).toEqual({
      tag: 'change',
      change: { op: 'update', table, columns, values: ['2', 'y', null], oldColumns: columns, oldValues: ['2', 'x', null] },
    });
  });

  it('decodes Deletes with the old key (K) or the old row (O)', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(ORDERS);
    const table = { schema: 'public', name: 'orders' };
    expect(decoder.decode(new Message('D').uint32(16400).char('K').tuple(['7', null, null]).build())).toEqual({
      tag: 'change',
      change: { op: 'delete', table, oldColumns: ['id'], oldValues: ['7'] },
    });
    expect(decoder.decode(new Message('D').uint32(16400).char('O').tuple(['7', 'n', '1.00']).build())).toEqual({
      tag: 'change',
      change: { op: 'delete', table, oldColumns: ['id', 'note', 'amount'], oldValues: ['7', 'n', '1.00'] },
    });
  });

  it('decodes Truncate with its options and relations', () => {
    const decoder = new PgoutputDecoder();
    decoder.decode(ORDERS);
    decoder.decode(relation(16410, 'sales', 'lines', 'f', [['a', true, 23, -1]]));
    const both = decoder.decode(new Message('T').uint32(2).byte(3).uint32(16400).uint32(16410).build());
    expect(both).toEqual({
      tag: 'change',
      change: { op: 'truncate', tables: [{ schema: 'public', name: 'orders' }, { schema: 'sales', name: 'lines' }], cascade: true, restartIdentity: true },
    });
    const plain = decoder.decode(new Message('T').uint32(1).byte(0).uint32(16410).build());
    expect(plain).toMatchObject({ change: { cascade: false, restartIdentity: false } });
    const restart = decoder.decode(new Message('T').uint32(1).byte(2).uint32(16410).build());
    expect(restart).toMatchObject({ change: { cascade: false, restartIdentity: true } });
  });

  it('decodes logical Messages', () => {
    const decoder = new PgoutputDecoder();
    const content = Buffer.from('promote job-1', 'utf8');
    expect(decoder.decode(new Message('M').byte(0).lsn('0/5000').string('ferry').uint32(content.length).bytes(content).build())).toEqual({
      tag: 'message',
      transactional: false,
      lsn: Lsn.parse('0/5000'),
      prefix: 'ferry',
      content,
    });
    expect(decoder.decode(new Message('M').byte(1).lsn('0/5000').string('other').uint32(0).build())).toMatchObject({ transactional: true, prefix: 'other' });
  });

  it('decodes protocol 2 stream blocks: the xid before each message inside a block, and Stream Commit and Abort after it', () => {
    const decoder = new PgoutputDecoder();
    expect(decoder.decode(new Message('S').uint32(901).byte(1).build())).toEqual({ tag: 'streamStart', xid: 901, first: true });
    expect(decoder.streamXid).toBe(901);
    // Inside the block a Relation, a Type and the row changes carry a (sub)transaction xid first.
    const described = decoder.decode(Buffer.concat([new Message('R').uint32(905).build().subarray(0, 5), ORDERS.subarray(1)]));
    expect(described).toMatchObject({ tag: 'relation', relation: { id: 16400, name: 'orders' } });
    expect(decoder.decode(new Message('Y').uint32(905).uint32(16385).string('public').string('mood').build())).toMatchObject({ tag: 'type', name: 'mood' });
    expect(decoder.decode(new Message('I').uint32(905).uint32(16400).char('N').tuple(['7', 'in block', null]).build())).toEqual({
      tag: 'change',
      change: { op: 'insert', table: { schema: 'public', name: 'orders' }, columns: ['id', 'note', 'amount'], values: ['7', 'in block', null] },
    });
    expect(decoder.decode(new Message('D').uint32(901).uint32(16400).char('K').tuple(['7', null, null]).build())).toMatchObject({ tag: 'change', change: { op: 'delete', oldValues: ['7'] } });
    expect(decoder.decode(new Message('T').uint32(901).uint32(1).byte(0).uint32(16400).build())).toMatchObject({ tag: 'change', change: { op: 'truncate' } });
    expect(decoder.decode(new Message('E').build())).toEqual({ tag: 'streamStop' });
    expect(decoder.streamXid).toBeNull();
    // Outside a block the same messages have no xid.
    expect(decoder.decode(new Message('I').uint32(16400).char('N').tuple(['8', 'outside', null]).build())).toMatchObject({ tag: 'change', change: { values: ['8', 'outside', null] } });
    expect(decoder.decode(new Message('S').uint32(901).byte(0).build())).toEqual({ tag: 'streamStart', xid: 901, first: false });
    expect(decoder.decode(new Message('E').build())).toEqual({ tag: 'streamStop' });
    expect(decoder.decode(new Message('A').uint32(901).uint32(905).build())).toEqual({ tag: 'streamAbort', xid: 901, subxid: 905 });
    expect(decoder.decode(new Message('c').uint32(901).byte(0).lsn('16/B374D848').lsn('16/B374D878').int64(COMMIT_TIME).build())).toEqual({
      tag: 'streamCommit',
      xid: 901,
      flags: 0,
      commitLsn: Lsn.parse('16/B374D848'),
      endLsn: Lsn.parse('16/B374D878'),
      commitTime: '2026-11-03T10:20:30.123456Z',
    });
    // A block inside a block, or a Stream Stop without one, is not a stream the decoder can follow.
    expect(() => decoder.decode(new Message('E').build())).toThrow(FerryError);
    decoder.decode(new Message('S').uint32(902).byte(1).build());
    expect(() => decoder.decode(new Message('S').uint32(903).byte(1).build())).toThrow(FerryError);
  });

  it('decodes at an offset, as inside an XLogData payload', () => {
    const decoder = new PgoutputDecoder();
    const payload = Buffer.concat([Buffer.alloc(25, 0xee), new Message('O').lsn('0/1').string('x').build()]);
    expect(decoder.decode(payload, 25)).toMatchObject({ tag: 'origin', name: 'x' });
  });

  it('refuses what it cannot decode with a FerryError', () => {
    const decoder = new PgoutputDecoder();
    const refusals: Buffer[] = [
      new Message('Z').build(),
      new Message('I').uint32(1).char('N').tuple(['1']).build(), // relation never described
      new Message('B').lsn('0/1').build(), // truncated
    ];
    decoder.decode(ORDERS);
    refusals.push(
      new Message('I').uint32(16400).char('N').tuple(['1']).build(), // wrong column count
      new Message('I').uint32(16400).char('N').int16(3).char('b').uint32(1).byte(1).char('n').char('n').build(), // binary value
      new Message('D').uint32(16400).char('N').tuple(['1', null, null]).build(),
      new Message('I').uint32(16400).char('N').int16(3).char('t').uint32(100).byte(0x41).build(), // value longer than the message
      new Message('R').uint32(1).string('s').string('t').char('?').int16(0).build(),
    );
    for (const message of refusals) {
      expect(() => decoder.decode(message)).toThrow(FerryError);
    }
  });
});
