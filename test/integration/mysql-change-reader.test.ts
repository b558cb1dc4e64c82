/**
 * MySQL/MariaDB change data capture against the real MariaDB server (row binlog on): the
 * exact event stream of a workload, resuming from a commit position, heartbeats, values in
 * MySQL's own and in the canonical form, back-pressure, lost binlogs and lost connections,
 * and the decode throughput. Other test files write to the same server at the same time, so
 * assertions never depend on the binlog holding only this file's transactions.
 */
import { startMariadbInstance } from '../helpers/mariadb-instance.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent, ChangeReader, RowChange } from '../../src/engines/engine.js';
import { FerryError } from '../../src/core/errors.js';
import type { QualifiedName } from '../../src/core/schema.js';
import { BinlogPosition } from '../../src/engines/mysql/binlog-position.js';
import {
  MysqlChangeReader,
  canonicalConverter,
  mysqlTextConverter,
  openMysqlChangeReader,
  parseTableDdl,
  parseTruncate,
  readBinlogPosition,
} from '../../src/engines/mysql/mysql-change-reader.js';
import type { MysqlChangeReaderOptions } from '../../src/engines/mysql/mysql-change-reader.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { connectMysqlAdmin, createMysqlTestDatabase, type MysqlTestDatabase } from '../helpers/mysql.js';

const SPEC = { slotName: 'unused', publicationName: 'unused' };

/** Reads a reader's events in the background; `until` waits for a condition on what arrived. */
class Collector {
  readonly events: ChangeEvent[] = [];
  error: unknown = null;
  done = false;
  readonly running: Promise<void>;

  constructor(reader: ChangeReader) {
    this.running = (async () => {
      try {
        for await (const chunk of reader.events()) this.events.push(...chunk);
      } catch (error) {
        this.error = error;
      } finally {
        this.done = true;
      }
    })();
  }

  async until(condition: (events: ChangeEvent[]) => boolean, timeoutMs = 20_000): Promise<ChangeEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.events)) {
      if (this.done) throw new Error(`the stream ended (${String(this.error)}) before the condition held; got ${JSON.stringify(this.events.map(describeEvent))}`);
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.events.map(describeEvent))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.events;
  }
}

function describeEvent(event: ChangeEvent): unknown {
  switch (event.kind) {
    case 'begin':
    case 'commit':
    case 'heartbeat':
      return event.kind;
    case 'marker':
      return `marker ${event.content}`;
    case 'relation':
      return `relation ${event.table.name}(${event.columns.map((c) => `${c.name} ${c.nativeType}${c.key ? ' key' : ''}`).join(', ')})`;
    case 'change':
      return describeChange(event.change);
  }
}

function describeChange(change: RowChange): unknown {
  switch (change.op) {
    case 'insert':
      return { insert: change.table.name, row: row(change.columns, change.values) };
    case 'update':
      return { update: change.table.name, row: row(change.columns, change.values), old: row(change.oldColumns ?? [], change.oldValues ?? []) };
    case 'delete':
      return { delete: change.table.name, old: row(change.oldColumns, change.oldValues) };
    case 'truncate':
      return { truncate: change.tables.map((t) => t.name) };
  }
}

function row(columns: string[], values: unknown[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c, i) => [c, values[i]]));
}

const withoutHeartbeats = (events: ChangeEvent[]) => events.filter((e) => e.kind !== 'heartbeat');
const isInsertOf = (table: string, id: string) => (e: ChangeEvent) => e.kind === 'change' && e.change.op === 'insert' && e.change.table.name === table && e.change.values[0] === id;
const endsAfter = (predicate: (e: ChangeEvent) => boolean) => (events: ChangeEvent[]) => {
  const at = events.findIndex(predicate);
  return at >= 0 && events.slice(at).some((e) => e.kind === 'commit');
};
const reaches = (target: string) => (events: ChangeEvent[]) =>
  events.some((e) => (e.kind === 'heartbeat' || e.kind === 'commit') && BinlogPosition.parse(e.position).compare(BinlogPosition.parse(target)) >= 0);

async function expectRejection(promise: Promise<unknown>): Promise<FerryError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FerryError);
  return error as FerryError;
}

describe('MySQL binlog change capture', () => {
  let db: MysqlTestDatabase;
  const readers: ChangeReader[] = [];
  let table: (name: string) => QualifiedName;
  let workloadStart = '';
  let workload: ChangeEvent[] = [];

  const open = async (position: string, options: MysqlChangeReaderOptions = {}): Promise<{ reader: MysqlChangeReader; collector: Collector }> => {
    const reader = await openMysqlChangeReader(db.params, position, { tables: [table('items'), table('logs')], ...options });
    readers.push(reader);
    return { reader, collector: new Collector(reader) };
  };
  const position = async (): Promise<string> => (await readBinlogPosition(db.connection, { gtid: true })).format();

  beforeAll(async () => {
    db = await createMysqlTestDatabase('ferry_mc');
    table = (name) => ({ schema: db.name, name });
    await db.connection.query(`
      CREATE TABLE items (id int PRIMARY KEY, name varchar(40), price decimal(10,2));
      CREATE TABLE logs (msg varchar(40), n int);
      CREATE TABLE other (id int PRIMARY KEY);
    `);
  });

  afterAll(async () => {
    for (const reader of readers) await reader.close();
    await db.drop();
  });

  it('streams a workload as the exact sequence of events', async () => {
    const created = await mysqlEngine.createReplication(db.params, SPEC, [table('items'), table('logs')]);
    workloadStart = created.startPosition;
    const start = BinlogPosition.parse(workloadStart);
    expect(start.gtid).not.toBeNull();
    const [[exact]] = (await db.connection.query('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [start.file, start.offset])) as unknown as [[{ gtid: string }]];
    expect(start.gtid).toBe(exact.gtid);

    const { collector } = await open(workloadStart);
    const c = db.connection;
    await c.query(`INSERT INTO items VALUES (1, 'one', 1.5)`);
    await c.query(`INSERT INTO items VALUES (2, 'two', 2), (3, 'three', 3)`);
    await c.query(`UPDATE items SET name = 'uno' WHERE id = 1`);
    await c.query(`UPDATE items SET id = 20 WHERE id = 2`);
    await c.query(`DELETE FROM items WHERE id = 3`);
    await c.query(`UPDATE items SET price = price + 1`);
    await c.query(`BEGIN; INSERT INTO items VALUES (4, 'four', 4); INSERT INTO logs VALUES ('x', 1); INSERT INTO other VALUES (1); UPDATE logs SET n = 2; COMMIT`);
    await c.query(`BEGIN; INSERT INTO items VALUES (99, 'rolled back', 0); INSERT INTO logs VALUES ('rolled back', 99); ROLLBACK`);
    await c.query(`INSERT INTO other VALUES (2)`);
    await c.query(`TRUNCATE TABLE logs`);
    await c.query(`ALTER TABLE items ADD COLUMN note varchar(10)`);
    await c.query(`INSERT INTO items VALUES (5, 'five', 5, 'n')`);

    const all = await collector.until(endsAfter(isInsertOf('items', '5')));
    workload = all;
    const events = withoutHeartbeats(all);
    const item = (id: string, name: string, price: string) => ({ id, name, price });
    expect(events.map(describeEvent)).toEqual([
      'begin', { insert: 'items', row: item('1', 'one', '1.50') }, 'commit',
      'begin', { insert: 'items', row: item('2', 'two', '2.00') }, { insert: 'items', row: item('3', 'three', '3.00') }, 'commit',
      'begin', { update: 'items', row: item('1', 'uno', '1.50'), old: item('1', 'one', '1.50') }, 'commit',
      'begin', { update: 'items', row: item('20', 'two', '2.00'), old: item('2', 'two', '2.00') }, 'commit',
      'begin', { delete: 'items', old: item('3', 'three', '3.00') }, 'commit',
      'begin', { update: 'items', row: item('1', 'uno', '2.50'), old: item('1', 'uno', '1.50') }, { update: 'items', row: item('20', 'two', '3.00'), old: item('20', 'two', '2.00') }, 'commit',
      'begin',
      { insert: 'items', row: item('4', 'four', '4.00') },
      { insert: 'logs', row: { msg: 'x', n: '1' } },
      { update: 'logs', row: { msg: 'x', n: '2' }, old: { msg: 'x', n: '1' } },
      'commit',
      'begin', { truncate: ['logs'] }, 'commit',
      'relation items(id int(11) key, name varchar(40), price decimal(10,2), note varchar(10))',
      'begin', { insert: 'items', row: { ...item('5', 'five', '5.00'), note: 'n' } }, 'commit',
    ]);

    // Positions: each transaction starts at or after the previous commit; commits move forward.
    let previous = start;
    for (const event of events) {
      if (event.kind === 'begin') {
        expect(BinlogPosition.parse(event.commitPosition).compare(previous)).toBeGreaterThanOrEqual(0);
        expect(Number.isNaN(Date.parse(event.commitTime))).toBe(false);
      }
      if (event.kind === 'commit') {
        const at = BinlogPosition.parse(event.position);
        expect(at.compare(previous)).toBeGreaterThan(0);
        previous = at;
      }
    }
    // The last commit carries the GTID state at its position.
    const [[atEnd]] = (await c.query('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [previous.file, previous.offset])) as unknown as [[{ gtid: string }]];
    expect(previous.gtid).toBe(atEnd.gtid);
    // The table's changes came with the event's own columns: the change after the DDL has `note`.
    const changes = events.filter((e): e is Extract<ChangeEvent, { kind: 'change' }> => e.kind === 'change');
    expect(changes.every((e) => e.change.op === 'truncate' || e.change.table.schema === db.name)).toBe(true);
  });

  it('never sends a heartbeat inside a transaction, nor one behind what it sent', () => {
    let open = false;
    let delivered = BinlogPosition.parse(workloadStart);
    for (const event of workload) {
      if (event.kind === 'begin') open = true;
      if (event.kind === 'commit') {
        open = false;
        delivered = BinlogPosition.parse(event.position);
      }
      if (event.kind === 'heartbeat') {
        expect(open).toBe(false);
        const at = BinlogPosition.parse(event.position);
        expect(at.compare(delivered)).toBeGreaterThan(0);
        delivered = at;
      }
    }
  });

  it('resumes from a commit position: nothing before it again, everything after it', async () => {
    const events = withoutHeartbeats(workload);
    const commits = events.map((e, i) => [e, i] as const).filter(([e]) => e.kind === 'commit');
    const [resumeAt, index] = commits[3] as readonly [Extract<ChangeEvent, { kind: 'commit' }>, number];
    const { collector } = await open(resumeAt.position);
    const again = withoutHeartbeats(await collector.until(endsAfter(isInsertOf('items', '5'))));
    expect(again.map(describeEvent)).toEqual(events.slice(index + 1).map(describeEvent));
    // A transaction's position equal to the resume point is not sent again.
    expect(again.every((e) => e.kind !== 'commit' || BinlogPosition.parse(e.position).compare(BinlogPosition.parse(resumeAt.position)) > 0)).toBe(true);
  });

  it('resumes from a position stored before servers and GTIDs were recorded (file:offset), and gives its positions both', async () => {
    const events = withoutHeartbeats(workload);
    const commits = events.map((e, i) => [e, i] as const).filter(([e]) => e.kind === 'commit');
    const [resumeAt, index] = commits[3] as readonly [Extract<ChangeEvent, { kind: 'commit' }>, number];
    const stored = BinlogPosition.parse(resumeAt.position);
    expect(stored.server).not.toBeNull();
    const { reader, collector } = await open(`${stored.file}:${stored.offset}`);
    // This server's file and offset: streamed from there, with the GTID state the binlog has at that point.
    expect(reader.origin).toMatchObject({ server: stored.server, resumedBy: 'position', gtid: stored.gtid });
    const again = withoutHeartbeats(await collector.until(endsAfter(isInsertOf('items', '5'))));
    expect(again.map(describeEvent)).toEqual(events.slice(index + 1).map(describeEvent));
    const later = again.filter((e): e is Extract<ChangeEvent, { kind: 'commit' }> => e.kind === 'commit');
    const first = commits[4]?.[0] as Extract<ChangeEvent, { kind: 'commit' }>;
    expect(later[0]?.position).toBe(first.position);
    const last = BinlogPosition.parse((later.at(-1) as Extract<ChangeEvent, { kind: 'commit' }>).position);
    const [[exact]] = (await db.connection.query('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [last.file, last.offset])) as unknown as [[{ gtid: string }]];
    expect(last.gtid).toBe(exact.gtid);
  });

  it('sends heartbeats when the binlog holds nothing of the job, and reaches the position emitMarker returns', async () => {
    const { collector } = await open(await position(), { heartbeatIntervalMs: 300 });
    await db.connection.query('INSERT INTO other VALUES (100)');
    const target = await mysqlEngine.emitMarker(db.params, 'promote');
    const events = await collector.until(reaches(target), 10_000);
    expect(events.filter((e) => e.kind !== 'heartbeat')).toEqual([]);
    // Idle: the server's own heartbeats keep coming, and none moves backwards or repeats.
    const count = events.length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let i = 1; i < collector.events.length; i++) {
      const a = collector.events[i - 1] as Extract<ChangeEvent, { kind: 'heartbeat' }>;
      const b = collector.events[i] as Extract<ChangeEvent, { kind: 'heartbeat' }>;
      expect(mysqlEngine.comparePositions(a.position, b.position)).toBeLessThan(0);
    }
    expect(collector.events.length).toBeGreaterThanOrEqual(count);
  });

  it('converts values to MySQL text for a MySQL destination and to the canonical form for PostgreSQL', async () => {
    const c = db.connection;
    await c.query(`
      CREATE TABLE vals (
        id int PRIMARY KEY, b tinyint(1), ti tinyint unsigned, bu bigint unsigned, d decimal(10,2), f float, db double,
        bt bit(10), y year, dt date, dtm datetime(6), ts timestamp(3) NULL, tm time(2), c char(5), vc varchar(20), tx text,
        bn binary(3), vb varbinary(10), bl blob, e enum('a','b c'), s set('x','y z'), j json
      )`);
    const from = await position();
    const vals = table('vals');
    const mysqlSide = await open(from, { tables: [vals] });
    const postgresSide = await open(from, { tables: [vals], destinationEngine: 'postgresql' });
    await c.query("SET SESSION sql_mode = ''");
    await c.query(`INSERT INTO vals VALUES
      (1, 1, 255, 18446744073709551615, -123.45, 1.1, 2.5e-300, b'1010000001', 2024, '2024-02-29', '2024-01-02 03:04:05.123456',
       '2024-01-02 03:04:05.5', '-838:59:59.99', 'ab', 'héllo😀', 'tab\\there\\nline', x'000102', x'ff00', x'deadbeef', 'b c', 'x,y z', '{"a": [1, 2.5, "x"]}'),
      (2, 0, 0, 0, 0, 3.4e38, -1e300, b'0', 1901, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', '', '', '', x'', x'', x'', 'a', '', 'null'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, '2024-00-10', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0000-03-01', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    await c.query("SET SESSION sql_mode = DEFAULT");
    const inserts = async (collector: Collector) =>
      (await collector.until(endsAfter(isInsertOf('vals', '4'))))
        .filter((e): e is Extract<ChangeEvent, { kind: 'change' }> => e.kind === 'change')
        .map((e) => describeChange(e.change) as { row: Record<string, unknown> })
        .map((e) => e.row);
    const nulls = { b: null, ti: null, bu: null, d: null, f: null, db: null, bt: null, y: null, dtm: null, ts: null, tm: null, c: null, vc: null, tx: null, bn: null, vb: null, bl: null, e: null, s: null, j: null };
    expect(await inserts(mysqlSide.collector)).toEqual([
      {
        id: '1', b: '1', ti: '255', bu: '18446744073709551615', d: '-123.45', f: '1.1', db: '2.5e-300', bt: '\\x0281', y: '2024', dt: '2024-02-29',
        dtm: '2024-01-02 03:04:05.123456', ts: '2024-01-02 03:04:05.500', tm: '-838:59:59.99', c: 'ab', vc: 'héllo😀', tx: 'tab\there\nline',
        bn: '\\x000102', vb: '\\xff00', bl: '\\xdeadbeef', e: 'b c', s: 'x,y z', j: '{"a": [1, 2.5, "x"]}',
      },
      {
        id: '2', b: '0', ti: '0', bu: '0', d: '0.00', f: '3.4e+38', db: '-1e+300', bt: '\\x0000', y: '1901', dt: '0000-00-00',
        dtm: '0000-00-00 00:00:00.000000', ts: '0000-00-00 00:00:00.000', tm: '00:00:00.00', c: '', vc: '', tx: '',
        bn: '\\x000000', vb: '\\x', bl: '\\x', e: 'a', s: '', j: 'null',
      },
      { id: '3', ...nulls, y: '0000', dt: '2024-00-10' },
      { id: '4', ...nulls, dt: '0000-03-01' },
    ]);
    expect(await inserts(postgresSide.collector)).toEqual([
      {
        id: '1', b: 't', ti: '255', bu: '18446744073709551615', d: '-123.45', f: '1.1', db: '2.5e-300', bt: '1010000001', y: '2024', dt: '2024-02-29',
        dtm: '2024-01-02 03:04:05.123456', ts: '2024-01-02 03:04:05.500+00', tm: '-838:59:59.99', c: 'ab', vc: 'héllo😀', tx: 'tab\there\nline',
        bn: '\\x000102', vb: '\\xff00', bl: '\\xdeadbeef', e: 'b c', s: '{x,"y z"}', j: '{"a": [1, 2.5, "x"]}',
      },
      {
        id: '2', b: 'f', ti: '0', bu: '0', d: '0.00', f: '3.4e+38', db: '-1e+300', bt: '0000000000', y: '1901', dt: null,
        dtm: null, ts: null, tm: '00:00:00.00', c: '', vc: '', tx: '',
        bn: '\\x000000', vb: '\\x', bl: '\\x', e: 'a', s: '{}', j: 'null',
      },
      { id: '3', ...nulls, y: '0000', dt: null },
      { id: '4', ...nulls, dt: '0001-03-01 BC' },
    ]);
  });

  it('pauses the binlog connection while the consumer is behind, and loses nothing', async () => {
    const c = db.connection;
    await c.query('CREATE TABLE bulk (id int PRIMARY KEY, pad varchar(20))');
    const from = await position();
    const reader = await openMysqlChangeReader(db.params, from, { tables: [table('bulk')], highWaterEvents: 100 });
    readers.push(reader);
    await c.query(`INSERT INTO bulk SELECT seq, 'padding' FROM seq_1_to_5000`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Nobody reads yet: the queue stops near the high-water mark (one binlog event of rows past it at most).
    const queued = (reader as unknown as { pending: ChangeEvent[] }).pending.length;
    expect(queued).toBeGreaterThanOrEqual(100);
    expect(queued).toBeLessThan(1_000);
    const collector = new Collector(reader);
    const events = await collector.until((e) => e.some((x) => x.kind === 'commit'));
    const inserted = events.filter((e) => e.kind === 'change');
    expect(inserted.length).toBe(5_000);
    expect(inserted.map((e) => (e.kind === 'change' && e.change.op === 'insert' ? e.change.values[0] : null))).toEqual(Array.from({ length: 5_000 }, (_, i) => String(i + 1)));
  });

  it('pauses the binlog connection at the byte bound of the queue, whatever its count of events', async () => {
    const c = db.connection;
    await c.query('CREATE TABLE wide (id int PRIMARY KEY, pad varchar(2000))');
    const from = await position();
    // About 4.3 KB estimated per row: 100 KB holds some 24 rows, far below 10,000 events.
    const reader = await openMysqlChangeReader(db.params, from, { tables: [table('wide')], highWaterBytes: 100_000 });
    readers.push(reader);
    await c.query(`INSERT INTO wide SELECT seq, repeat('w', 2000) FROM seq_1_to_2000`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const queued = (reader as unknown as { pending: ChangeEvent[] }).pending.length;
    expect(queued).toBeGreaterThanOrEqual(20);
    expect(queued).toBeLessThan(200);
    const collector = new Collector(reader);
    const events = await collector.until((e) => e.some((x) => x.kind === 'commit'));
    expect(events.filter((e) => e.kind === 'change')).toHaveLength(2_000);
  });

  it('fails a statement-based change on a selected table instead of losing it', async () => {
    const admin = await connectMysqlAdmin(db.name);
    try {
      const { collector } = await open(await position());
      await admin.query("SET SESSION binlog_format = 'STATEMENT'");
      await admin.query(`INSERT INTO logs VALUES ('statement', 1)`);
      await collector.until(() => collector.done, 10_000).catch(() => undefined);
      await collector.running;
      expect(collector.error).toBeInstanceOf(FerryError);
      expect((collector.error as FerryError).code).toBe('DATA_ERROR');
      expect((collector.error as FerryError).message).toMatch(/binlog_format = ROW/);
    } finally {
      await admin.end();
    }
  });

  it('reports a lost connection as retryable', async () => {
    const { reader, collector } = await open(await position());
    const threadId = (reader as unknown as { zongji: { connection: { threadId: number } } }).zongji.connection.threadId;
    await db.connection.query(`KILL ${threadId}`);
    await collector.running;
    expect(collector.error).toBeInstanceOf(FerryError);
    expect((collector.error as FerryError).code).toBe('CONNECTION_LOST');
    expect((collector.error as FerryError).retryable).toBe(true);
  });

  it('ends the iteration when closed', async () => {
    const { reader, collector } = await open(await position());
    await reader.close();
    await collector.running;
    expect(collector.error).toBeNull();
    reader.acknowledge('mariadb-bin.000001:4');
    expect(reader.acknowledged).toBe('mariadb-bin.000001:4');
  });

  it('answers for positions: current, compare, distance; replication objects are none', async () => {
    const current = await mysqlEngine.currentPosition(db.params);
    // file:offset and the server's identity (server_id), no GTID: it is polled for lag.
    const [[identity]] = (await db.connection.query('SELECT @@GLOBAL.server_id AS id')) as unknown as [[{ id: number }]];
    expect(current).toMatch(new RegExp(`^.+\\.\\d+:\\d+@${identity.id}$`));
    expect(mysqlEngine.comparePositions('b.000002:4', 'b.000001:900')).toBeGreaterThan(0);
    expect(mysqlEngine.comparePositions('b.000001:4#0-1-5', 'b.000001:4')).toBe(0);
    expect(mysqlEngine.positionDistance('b.000001:100', 'b.000001:350')).toBe(250);
    expect(mysqlEngine.positionDistance('b.000001:100', 'b.000002:350')).toBeNull();
    await expect(mysqlEngine.dropReplication(db.params, SPEC)).resolves.toBeUndefined();
    const reader = await mysqlEngine.openChangeReader(db.params, SPEC, current, { tables: [] });
    readers.push(reader);
  });

  it('refuses a position whose binlog was purged: REPLICATION_SLOT_LOST, saying Restart', async () => {
    // On a private server: purging the shared server's binlog could break other test files' jobs.
    const server = await startMariadbInstance();
    try {
      const admin = await server.connect();
      try {
        await admin.query('CREATE DATABASE purged; CREATE TABLE purged.items (id int PRIMARY KEY, name varchar(20))');
        const params = server.params('purged');
        const before = BinlogPosition.parse(await mysqlEngine.currentPosition(params));
        await admin.query("INSERT INTO purged.items VALUES (1, 'a')");
        await admin.query('FLUSH BINARY LOGS');
        const current = BinlogPosition.parse(await mysqlEngine.currentPosition(params));
        expect(current.file).not.toBe(before.file);
        // MariaDB keeps a binlog until its checkpoint (InnoDB durability) has moved past it: retry.
        const deadline = Date.now() + 20_000;
        for (;;) {
          await admin.query(`PURGE BINARY LOGS TO '${current.file}'`);
          const [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string }>];
          if (!logs.some((l) => l.Log_name === before.file)) break;
          if (Date.now() > deadline) throw new Error(`${before.file} was never purged: ${JSON.stringify(logs)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        const { tables } = await mysqlEngine.readSchema(params, { include: ['purged'], exclude: [] });
        const error = await expectRejection(openMysqlChangeReader(params, before.format(), { tables }));
        expect(error.code).toBe('REPLICATION_SLOT_LOST');
        expect(error.retryable).toBe(false);
        expect(error.message).toMatch(/Restart/);
        const viaEngine = await expectRejection(mysqlEngine.openChangeReader(params, SPEC, before.format(), { tables }));
        expect(viaEngine.code).toBe('REPLICATION_SLOT_LOST');
      } finally {
        await admin.end();
      }
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('decodes every transaction and an ALTER right when the binlog describes its own columns (binlog_row_metadata = FULL)', async () => {
    // zongji then builds a new table map entry at every table map event: the reader reuses its
    // decoder while the columns stay the same, and must build a new one once they change.
    const server = await startMariadbInstance({ extraArgs: ['--binlog-row-metadata=FULL'] });
    try {
      const admin = await server.connect();
      try {
        await admin.query('CREATE DATABASE described; CREATE TABLE described.t (id int PRIMARY KEY, name varchar(20))');
        const params = server.params('described');
        const { tables } = await mysqlEngine.readSchema(params, { include: ['described'], exclude: [] });
        const from = await mysqlEngine.currentPosition(params);
        await admin.query("INSERT INTO described.t VALUES (1, 'a')");
        await admin.query("INSERT INTO described.t VALUES (2, 'b')");
        await admin.query("UPDATE described.t SET name = 'c' WHERE id = 1");
        // A column in the middle: a decoder kept from before would put 30 under name.
        await admin.query('ALTER TABLE described.t ADD COLUMN n int AFTER id');
        await admin.query("INSERT INTO described.t VALUES (3, 30, 'd')");
        await admin.query('DELETE FROM described.t WHERE id = 2');
        const reader = await openMysqlChangeReader(params, from, { tables });
        readers.push(reader);
        const collector = new Collector(reader);
        const events = await collector.until(endsAfter((e) => e.kind === 'change' && e.change.op === 'delete'));
        expect(withoutHeartbeats(events).filter((e) => e.kind === 'change' || e.kind === 'relation').map(describeEvent)).toEqual([
          { insert: 't', row: { id: '1', name: 'a' } },
          { insert: 't', row: { id: '2', name: 'b' } },
          { update: 't', row: { id: '1', name: 'c' }, old: { id: '1', name: 'a' } },
          'relation t(id int(11) key, n int(11), name varchar(20))',
          { insert: 't', row: { id: '3', n: '30', name: 'd' } },
          { delete: 't', old: { id: '2', n: null, name: 'b' } },
        ]);
        await reader.close();
      } finally {
        await admin.end();
      }
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('decodes a table by its columns after DDL, not by those read when the stream started', async () => {
    await db.connection.query(`CREATE TABLE drift (id int PRIMARY KEY, c int)`);
    const reader = await openMysqlChangeReader(db.params, await position(), { tables: [table('drift'), table('items')] });
    readers.push(reader);
    const collector = new Collector(reader);
    await db.connection.query(`INSERT INTO items (id, name, price) VALUES (9001, 'read ahead', 1.50)`);
    await collector.until(endsAfter(isInsertOf('items', '9001')));
    // The columns read when the stream started said c int; the binlog's rows now carry d, text.
    await db.connection.query(`ALTER TABLE drift CHANGE c d varchar(20)`);
    await db.connection.query(`INSERT INTO drift VALUES (1, 'abc')`);
    const events = await collector.until(endsAfter(isInsertOf('drift', '1')));
    const inserted = events.find(isInsertOf('drift', '1'));
    expect(inserted?.kind === 'change' ? describeChange(inserted.change) : null).toEqual({ insert: 'drift', row: { id: '1', d: 'abc' } });
    expect(events.find(isInsertOf('items', '9001'))?.kind === 'change').toBe(true);
    await reader.close();
    await db.connection.query(`DELETE FROM items WHERE id = 9001`);
  });

  it('decodes 200k row changes', async () => {
    const c = db.connection;
    await c.query('CREATE TABLE big (id int PRIMARY KEY, name varchar(40), amount decimal(12,2), at datetime(6), flag tinyint(1))');
    const from = await position();
    await c.query(`INSERT INTO big SELECT seq, CONCAT('name-', seq), seq / 100, '2024-01-02 03:04:05.123456', seq % 2 FROM seq_1_to_200000`);
    for (const destinationEngine of ['mysql', 'postgresql'] as const) {
      const started = performance.now();
      const reader = await openMysqlChangeReader(db.params, from, { tables: [table('big')], destinationEngine });
      readers.push(reader);
      let rows = 0;
      for await (const chunk of reader.events()) {
        for (const event of chunk) if (event.kind === 'change') rows++;
        if (chunk.some((e) => e.kind === 'commit')) break;
      }
      const seconds = (performance.now() - started) / 1000;
      await reader.close();
      expect(rows).toBe(200_000);
      console.log(`binlog decode (${destinationEngine} values): ${rows} row changes in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds)} rows/s`);
    }
  });
});

describe('binlog statements and values', () => {
  it('parses TRUNCATE as the binlog has it', () => {
    expect(parseTruncate('TRUNCATE TABLE `db`.`t`', '')).toEqual({ schema: 'db', name: 't' });
    expect(parseTruncate('truncate t', 'db')).toEqual({ schema: 'db', name: 't' });
    expect(parseTruncate('TRUNCATE `we``ird`', 'db')).toEqual({ schema: 'db', name: 'we`ird' });
    expect(parseTruncate('TRUNCATE t', '')).toBeNull();
    expect(parseTruncate('DELETE FROM t', 'db')).toBeNull();
  });

  it('finds the tables whose columns DDL changes', () => {
    expect(parseTableDdl('ALTER TABLE items ADD COLUMN x int', 'db')).toEqual([{ schema: 'db', name: 'items' }]);
    expect(parseTableDdl('alter online ignore table `o`.`i` drop column x', 'db')).toEqual([{ schema: 'o', name: 'i' }]);
    expect(parseTableDdl('CREATE TABLE IF NOT EXISTS a.b (id int)', '')).toEqual([{ schema: 'a', name: 'b' }]);
    expect(parseTableDdl('DROP TABLE IF EXISTS `a`,`db2`.`b` /* generated by server */', 'db')).toEqual([
      { schema: 'db', name: 'a' },
      { schema: 'db2', name: 'b' },
    ]);
    expect(parseTableDdl('RENAME TABLE a TO b, x.c TO x.d', 'db')).toEqual([
      { schema: 'db', name: 'a' },
      { schema: 'db', name: 'b' },
      { schema: 'x', name: 'c' },
      { schema: 'x', name: 'd' },
    ]);
    expect(parseTableDdl('CREATE INDEX i ON t (a)', 'db')).toEqual([]);
    expect(parseTableDdl('GRANT SELECT ON *.* TO u', 'db')).toEqual([]);
  });

  it('converts values like the snapshot does', () => {
    expect(mysqlTextConverter('float')(Math.fround(1.2345679))).toBe('1.2345679');
    expect(mysqlTextConverter('bit(3)')(Buffer.from([5]))).toBe('\\x05');
    expect(mysqlTextConverter('year(4)')(1900)).toBe('0000');
    expect(mysqlTextConverter("enum('a')")(undefined)).toBe('');
    expect(canonicalConverter("set('a','b')")('')).toBe('{}');
    expect(canonicalConverter('timestamp(6)')('2024-01-02 03:04:05.000001')).toBe('2024-01-02 03:04:05.000001+00');
    expect(canonicalConverter('date')('2024-02-31')).toBeNull();
    expect(canonicalConverter('datetime')('0000-03-01 10:00:00')).toBe('0001-03-01 10:00:00 BC');
    // Spatial values arrive as MySQL's internal bytes (SRID + WKB): EWKB hex for another engine, `\x` + hex for MySQL.
    const point = Buffer.from('E61000000101000000000000000000F03F0000000000000040', 'hex');
    expect(canonicalConverter('point', 'db.t.p')(point)).toBe('0101000020E6100000000000000000F03F0000000000000040');
    expect(mysqlTextConverter('point')(point)).toBe('\\xe61000000101000000000000000000f03f0000000000000040');
    expect(() => canonicalConverter('point', 'db.t.p')(Buffer.from('00', 'hex'))).toThrow(/db\.t\.p/);
  });
});
