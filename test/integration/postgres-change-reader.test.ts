/**
 * PostgreSQL change data capture against the real source cluster: replication objects, the
 * exact event stream of a workload, acknowledgement and resumption, heartbeats, the snapshot
 * aligned with the stream, dropping under a reader and lost slots. The protocol handling
 * that a real server cannot be made to exercise on demand (reply requests, back-pressure) is
 * driven by a scripted connection at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { FerryError } from '../../src/core/errors.js';
import type { QualifiedName, TableSchema } from '../../src/core/schema.js';
import { UNCHANGED } from '../../src/engines/engine.js';
import type { ChangeEvent, ChangeReader, ReplicationSpec, RowChange } from '../../src/engines/engine.js';
import { Lsn } from '../../src/engines/postgres/lsn.js';
import { PostgresChangeReader } from '../../src/engines/postgres/postgres-change-reader.js';
import { classifyPostgresError } from '../../src/engines/postgres/postgres-error-classifier.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { createTestDatabase, PG_SOURCE_PORT, type TestDatabase } from '../helpers/postgres.js';

const ITEMS: QualifiedName = { schema: 'public', name: 'items' };
const LOGS: QualifiedName = { schema: 'public', name: 'logs' };
const DOCS: QualifiedName = { schema: 'public', name: 'docs' };

const SCHEMA_SQL = `
  CREATE TABLE public.items (id integer PRIMARY KEY, name text, price numeric(10,2), at timestamptz, data bytea);
  CREATE TABLE public.logs (msg text, n integer);
  ALTER TABLE public.logs REPLICA IDENTITY FULL;
  CREATE TABLE public.docs (id integer PRIMARY KEY, title varchar(40), body text);
  -- Out of line and uncompressed: a body of a few kilobytes is TOASTed.
  ALTER TABLE public.docs ALTER COLUMN body SET STORAGE EXTERNAL;
  CREATE TABLE public.unpublished (x integer);
`;

function newSpec(): ReplicationSpec {
  const suffix = randomBytes(5).toString('hex');
  return { slotName: `ferry_test_slot_${suffix}`, publicationName: `ferry_test_pub_${suffix}` };
}

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

const hasMarker = (content: string) => (events: ChangeEvent[]) => events.some((e) => e.kind === 'marker' && e.content === content);

/** A compact, comparable form of an event; changes keep their values (UNCHANGED included). */
function describeEvent(event: ChangeEvent): unknown {
  switch (event.kind) {
    case 'begin':
    case 'commit':
    case 'heartbeat':
      return event.kind;
    case 'marker':
      return `marker ${event.content}`;
    case 'relation':
      return `relation ${event.table.schema}.${event.table.name}(${event.columns.map((c) => `${c.name} ${c.nativeType}${c.key ? ' key' : ''}`).join(', ')})`;
    case 'change':
      return describeChange(event.change);
  }
}

function describeChange(change: RowChange): unknown {
  switch (change.op) {
    case 'insert':
      return { insert: `${change.table.schema}.${change.table.name}`, columns: change.columns, values: change.values };
    case 'update':
      return { update: `${change.table.schema}.${change.table.name}`, columns: change.columns, values: change.values, oldColumns: change.oldColumns, oldValues: change.oldValues };
    case 'delete':
      return { delete: `${change.table.schema}.${change.table.name}`, oldColumns: change.oldColumns, oldValues: change.oldValues };
    case 'truncate':
      return { truncate: change.tables.map((t) => `${t.schema}.${t.name}`), cascade: change.cascade, restartIdentity: change.restartIdentity };
  }
}

/** Events up to and including the marker `content`, heartbeats left out. */
function untilMarker(events: ChangeEvent[], content: string): ChangeEvent[] {
  const end = events.findIndex((e) => e.kind === 'marker' && e.content === content);
  return events.slice(0, end + 1).filter((e) => e.kind !== 'heartbeat');
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

async function slotRow(db: TestDatabase, slot: string): Promise<{ active: boolean; confirmed_flush_lsn: string } | undefined> {
  const result = await db.client.query<{ active: boolean; confirmed_flush_lsn: string }>(
    'SELECT active, confirmed_flush_lsn::text AS confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return result.rows[0];
}

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

describe('PostgreSQL change capture', () => {
  let db: TestDatabase;
  const spec = newSpec();
  let startPosition = '';
  const body = randomBytes(8_000).toString('hex');
  let workload: ChangeEvent[] = [];
  const openReaders: ChangeReader[] = [];

  const open = async (position: string, which = spec): Promise<{ reader: ChangeReader; collector: Collector }> => {
    const reader = await postgresEngine.openChangeReader(db.params, which, position);
    openReaders.push(reader);
    return { reader, collector: new Collector(reader) };
  };

  beforeAll(async () => {
    db = await createTestDatabase(PG_SOURCE_PORT, 'ferry_cdc');
    await db.client.query(SCHEMA_SQL);
  });

  afterAll(async () => {
    for (const reader of openReaders) await reader.close();
    await postgresEngine.dropReplication(db.params, spec).catch(() => undefined);
    await db.drop();
  });

  it('creates the publication and the slot, idempotently', async () => {
    const created = await postgresEngine.createReplication(db.params, spec, [ITEMS, LOGS, DOCS]);
    startPosition = created.startPosition;
    expect(startPosition).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect((await slotRow(db, spec.slotName))?.confirmed_flush_lsn).toBe(startPosition);

    const again = await postgresEngine.createReplication(db.params, spec, [ITEMS, LOGS, DOCS]);
    expect(again.startPosition).toBe(startPosition);
    const published = await db.client.query<{ t: string }>('SELECT tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [spec.publicationName]);
    expect(published.rows.map((r) => r.t)).toEqual(['docs', 'items', 'logs']);

    // A changed table list updates the publication; the slot stays.
    await postgresEngine.createReplication(db.params, spec, [ITEMS, LOGS]);
    const narrowed = await db.client.query<{ t: string }>('SELECT tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [spec.publicationName]);
    expect(narrowed.rows.map((r) => r.t)).toEqual(['items', 'logs']);
    expect((await postgresEngine.createReplication(db.params, spec, [ITEMS, LOGS, DOCS])).startPosition).toBe(startPosition);
  });

  it('streams a workload as the exact sequence of events', async () => {
    const { reader, collector } = await open(startPosition);
    const c = db.client;
    await c.query(`INSERT INTO items VALUES (1, 'apple', 1.5, '2026-01-02 03:04:05.123456+00', '\\x00ff'), (2, 'pear', 2, NULL, NULL)`);
    await c.query(`UPDATE items SET price = 1.75 WHERE id = 1`);
    await c.query(`UPDATE items SET id = 10 WHERE id = 2`);
    await c.query(`INSERT INTO docs VALUES (1, 'first', $1)`, [body]);
    await c.query(`UPDATE docs SET title = 'renamed' WHERE id = 1`);
    await c.query(`BEGIN; INSERT INTO logs VALUES ('a', 1); UPDATE logs SET n = 2 WHERE msg = 'a'; DELETE FROM logs WHERE n = 2; COMMIT`);
    await c.query(`DELETE FROM items WHERE id = 10`);
    await c.query(`BEGIN; INSERT INTO items VALUES (3, E'tab\\there\\nnewline é', NULL, NULL, NULL); INSERT INTO logs VALUES ('multi', 3); COMMIT`);
    await c.query(`BEGIN; INSERT INTO items VALUES (99, 'rolled back', NULL, NULL, NULL); INSERT INTO logs VALUES ('rolled back', 99); ROLLBACK`);
    await c.query(`INSERT INTO logs VALUES ('keep', 4)`);
    await c.query(`TRUNCATE logs`);
    await c.query(`SELECT pg_logical_emit_message(false, 'not-ferry', 'ignored')`);
    const markerPosition = await postgresEngine.emitMarker(db.params, 'workload done');

    const events = untilMarker(await collector.until(hasMarker('workload done')), 'workload done');
    workload = events;
    const items = 'public.items';
    const itemColumns = ['id', 'name', 'price', 'at', 'data'];
    const logColumns = ['msg', 'n'];
    expect(events.map(describeEvent)).toEqual([
      'begin',
      'relation public.items(id integer key, name text, price numeric(10,2), at timestamp with time zone, data bytea)',
      { insert: items, columns: itemColumns, values: ['1', 'apple', '1.50', '2026-01-02 03:04:05.123456+00', '\\x00ff'] },
      { insert: items, columns: itemColumns, values: ['2', 'pear', '2.00', null, null] },
      'commit',
      'begin',
      { update: items, columns: itemColumns, values: ['1', 'apple', '1.75', '2026-01-02 03:04:05.123456+00', '\\x00ff'], oldColumns: null, oldValues: null },
      'commit',
      'begin',
      { update: items, columns: itemColumns, values: ['10', 'pear', '2.00', null, null], oldColumns: ['id'], oldValues: ['2'] },
      'commit',
      'begin',
      'relation public.docs(id integer key, title character varying(40), body text)',
      { insert: 'public.docs', columns: ['id', 'title', 'body'], values: ['1', 'first', body] },
      'commit',
      'begin',
      { update: 'public.docs', columns: ['id', 'title', 'body'], values: ['1', 'renamed', UNCHANGED], oldColumns: null, oldValues: null },
      'commit',
      'begin',
      'relation public.logs(msg text key, n integer key)',
      { insert: 'public.logs', columns: logColumns, values: ['a', '1'] },
      { update: 'public.logs', columns: logColumns, values: ['a', '2'], oldColumns: logColumns, oldValues: ['a', '1'] },
      { delete: 'public.logs', oldColumns: logColumns, oldValues: ['a', '2'] },
      'commit',
      'begin',
      { delete: items, oldColumns: ['id'], oldValues: ['10'] },
      'commit',
      'begin',
      { insert: items, columns: itemColumns, values: ['3', 'tab\there\nnewline é', null, null, null] },
      { insert: 'public.logs', columns: logColumns, values: ['multi', '3'] },
      'commit',
      'begin',
      { insert: 'public.logs', columns: logColumns, values: ['keep', '4'] },
      'commit',
      'begin',
      // TRUNCATE gives the table a new file: the server describes it again.
      'relation public.logs(msg text key, n integer key)',
      { truncate: ['public.logs'], cascade: false, restartIdentity: false },
      'commit',
      'marker workload done',
    ]);

    // Positions: each transaction commits after the start, ends after its commit record, and in order.
    let previousEnd = Lsn.parse(startPosition);
    let commitPosition = Lsn.ZERO;
    for (const event of events) {
      if (event.kind === 'begin') {
        commitPosition = Lsn.parse(event.commitPosition);
        expect(commitPosition.compare(previousEnd)).toBeGreaterThanOrEqual(0);
        expect(event.commitTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        expect(Math.abs(Date.parse(event.commitTime) - Date.now())).toBeLessThan(60_000);
      }
      if (event.kind === 'commit') {
        const end = Lsn.parse(event.position);
        expect(end.isAfter(commitPosition)).toBe(true);
        previousEnd = end;
      }
    }
    const marker = events.at(-1);
    expect(marker).toEqual({ kind: 'marker', position: markerPosition, content: 'workload done' });
    expect(postgresEngine.comparePositions(markerPosition, previousEnd.format())).toBeGreaterThan(0);

    // Nothing was acknowledged: the slot still holds everything.
    await reader.close();
    await collector.running;
    expect(collector.error).toBeNull();
    expect((await slotRow(db, spec.slotName))?.confirmed_flush_lsn).toBe(startPosition);
  });

  it('resumes after the acknowledged position: acknowledged transactions are not sent again, the others are', async () => {
    const commits = workload.filter((e): e is Extract<ChangeEvent, { kind: 'commit' }> => e.kind === 'commit');
    const acked = (commits[4] as { position: string }).position; // the docs update, fifth transaction
    const expectedRest = workload.slice(workload.indexOf(commits[4] as ChangeEvent) + 1).map(describeEvent);
    // A new stream describes each table before its first change in that stream: items, first
    // touched by the delete now, is described there.
    const itemsRelation = workload.map(describeEvent).find((e) => typeof e === 'string' && e.startsWith('relation public.items'));
    expectedRest.splice(expectedRest.findIndex((e) => typeof e === 'object' && e !== null && 'delete' in e && e.delete === 'public.items'), 0, itemsRelation);
    const { reader, collector } = await open(startPosition);
    await collector.until(hasMarker('workload done'));
    reader.acknowledge(acked);
    reader.acknowledge(startPosition); // going back is ignored
    await reader.close();
    await collector.running;
    expect(collector.error).toBeNull();
    // close() confirmed the acknowledged position to the slot, and nothing more.
    expect((await slotRow(db, spec.slotName))?.confirmed_flush_lsn).toBe(acked);

    // From the acknowledged position.
    const fromAck = await open(acked);
    const resumed = untilMarker(await fromAck.collector.until(hasMarker('workload done')), 'workload done');
    expect(resumed.map(describeEvent)).toEqual(expectedRest);
    await fromAck.reader.close();

    // From an older position: the slot starts at what was acknowledged anyway.
    const fromStart = await open(startPosition);
    const again = untilMarker(await fromStart.collector.until(hasMarker('workload done')), 'workload done');
    expect(again.map(describeEvent)).toEqual(expectedRest);
    await fromStart.reader.close();
  });

  it('sends a heartbeat past the last commit when the source writes only unpublished tables', async () => {
    const { reader, collector } = await open(startPosition);
    await collector.until(hasMarker('workload done'));
    const marker = collector.events.find((e) => e.kind === 'marker') as Extract<ChangeEvent, { kind: 'marker' }>;
    await db.client.query('INSERT INTO unpublished VALUES (1)');
    const afterWrite = await postgresEngine.currentPosition(db.params);
    const events = await collector.until((all) =>
      all.some((e) => e.kind === 'heartbeat' && postgresEngine.comparePositions(e.position, afterWrite) >= 0),
    );
    const heartbeat = events.find((e) => e.kind === 'heartbeat' && postgresEngine.comparePositions(e.position, afterWrite) >= 0) as Extract<ChangeEvent, { kind: 'heartbeat' }>;
    expect(postgresEngine.comparePositions(heartbeat.position, marker.position)).toBeGreaterThan(0);
    expect(postgresEngine.positionDistance(marker.position, heartbeat.position)).toBeGreaterThan(0);
    // No row of the unpublished table, and heartbeats only ever move forward.
    expect(events.some((e) => e.kind === 'change' && e.change.op !== 'truncate' && e.change.table.name === 'unpublished')).toBe(false);
    const beats = events.filter((e): e is Extract<ChangeEvent, { kind: 'heartbeat' }> => e.kind === 'heartbeat').map((e) => e.position);
    for (let i = 1; i < beats.length; i++) expect(postgresEngine.comparePositions(beats[i] as string, beats[i - 1] as string)).toBeGreaterThan(0);
    await reader.close();
    await collector.running;
    expect(collector.error).toBeNull();
  });

  it('aligns a snapshot with the stream: earlier commits in the snapshot only, later ones in the stream only', async () => {
    const alignedSpec = newSpec();
    const { startPosition: alignedStart } = await postgresEngine.createReplication(db.params, alignedSpec, [ITEMS]);
    try {
      await db.client.query(`INSERT INTO items VALUES (100, 'before', NULL, NULL, NULL)`);
      const snapshot = await postgresEngine.openSnapshot(db.params, { alignedWithChanges: true });
      expect(snapshot.position).not.toBeNull();
      const position = snapshot.position as string;
      expect(postgresEngine.comparePositions(position, alignedStart)).toBeGreaterThan(0);
      const temporary = await db.client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name LIKE 'ferry_tmp_%' AND database = current_database()`);
      expect(temporary.rows[0]?.n).toBe('1');
      await db.client.query(`INSERT INTO items VALUES (101, 'after', NULL, NULL, NULL)`);

      const schema = await snapshot.readSchema({ include: ['public.items'], exclude: [] });
      expect(schema.tables.map((t) => t.name)).toEqual(['items']);
      const table = schema.tables[0] as TableSchema;
      // Two readers, one opened after the other has read: both see the snapshot.
      const first = await snapshot.openTableReader();
      const firstRows = await readAll(first.copyOut(table));
      const second = await snapshot.openTableReader();
      await snapshot.close();
      const secondRows = await readAll(second.copyOut(table));
      await first.close();
      await second.close();
      for (const rows of [firstRows, secondRows]) {
        expect(rows).toContain('100\tbefore');
        expect(rows).not.toContain('101\tafter');
      }
      // Closing the snapshot dropped its temporary slot.
      const left = await db.client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name LIKE 'ferry_tmp_%' AND database = current_database()`);
      expect(left.rows[0]?.n).toBe('0');

      const marker = await postgresEngine.emitMarker(db.params, 'aligned');
      const { reader, collector } = await open(position, alignedSpec);
      const events = untilMarker(await collector.until(hasMarker('aligned')), 'aligned');
      const inserted = events.flatMap((e) => (e.kind === 'change' && e.change.op === 'insert' ? [e.change.values[1]] : []));
      expect(inserted).toEqual(['after']);
      for (const event of events) {
        if (event.kind === 'begin') expect(postgresEngine.comparePositions(event.commitPosition, position)).toBeGreaterThanOrEqual(0);
      }
      expect(events.at(-1)).toMatchObject({ kind: 'marker', position: marker });
      await reader.close();
    } finally {
      await postgresEngine.dropReplication(db.params, alignedSpec);
    }
  });

  it('streams a large transaction before its commit when asked (protocol 2), with transactions that committed meanwhile in between', async () => {
    const from = await postgresEngine.currentPosition(db.params);
    const saved = process.env.FERRY_PG_DECODING_WORK_MEM;
    process.env.FERRY_PG_DECODING_WORK_MEM = '64kB';
    let reader: ChangeReader;
    try {
      reader = await postgresEngine.openChangeReader(db.params, spec, from, { streamInProgress: true });
    } finally {
      if (saved === undefined) delete process.env.FERRY_PG_DECODING_WORK_MEM;
      else process.env.FERRY_PG_DECODING_WORK_MEM = saved;
    }
    openReaders.push(reader);
    const collector = new Collector(reader);
    const other = new pg.Client({ host: db.params.host, port: db.params.port, user: db.params.username, database: db.params.database as string });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`INSERT INTO items (id, name) SELECT g, 'streamed ' || g FROM generate_series(100001, 103000) g`);
      const streamed = (events: ChangeEvent[]) => events.filter((e) => e.kind === 'streamChange').length;
      await collector.until((events) => streamed(events) > 0);
      await db.client.query(`INSERT INTO items (id, name) VALUES (200001, 'meanwhile')`);
      await other.query(`UPDATE items SET name = 'last' WHERE id = 100001`);
      await other.query('COMMIT');
      await db.client.query(`SELECT pg_logical_emit_message(false, 'ferry', 'streamed done')`);
      const events = untilMarker(await collector.until(hasMarker('streamed done')), 'streamed done');
      const start = events.find((e): e is Extract<ChangeEvent, { kind: 'streamStart' }> => e.kind === 'streamStart');
      const commit = events.find((e): e is Extract<ChangeEvent, { kind: 'streamCommit' }> => e.kind === 'streamCommit');
      expect(start?.first).toBe(true);
      expect(commit?.xid).toBe(start?.xid);
      expect(Lsn.parse(commit?.position as string).isAfter(Lsn.parse(start?.position as string))).toBe(true);
      // The transaction that committed meanwhile arrives whole, before the streamed one's commit.
      // (Relation messages left out: the server describes a table again for the other transaction.)
      const described = events.filter((e) => e.kind !== 'relation');
      const kinds = described.map((e) => e.kind);
      const meanwhile = described.findIndex((e) => e.kind === 'change' && e.change.op === 'insert' && e.change.values[0] === '200001');
      expect(meanwhile).toBeGreaterThan(kinds.indexOf('streamStart'));
      expect(meanwhile).toBeLessThan(kinds.indexOf('streamCommit'));
      expect(kinds[meanwhile - 1]).toBe('begin');
      expect(kinds[meanwhile + 1]).toBe('commit');
      const changes = events.filter((e): e is Extract<ChangeEvent, { kind: 'streamChange' }> => e.kind === 'streamChange');
      expect(changes.length).toBe(3001);
      expect(changes.every((e) => e.xid === start?.xid)).toBe(true);
      expect(describeChange((changes.at(-1) as { change: RowChange }).change)).toMatchObject({ update: 'public.items', values: ['100001', 'last', null, null, null] });
      // No heartbeat from the first block to the streamed commit: nothing in between may be acknowledged past it.
      expect(kinds.slice(kinds.indexOf('streamStart'), kinds.indexOf('streamCommit')).includes('heartbeat')).toBe(false);
    } finally {
      await other.end();
      await reader.close();
    }
  });

  it('drops the replication objects while a reader streams; the reader fails retryably and the slot is then lost', async () => {
    const dropSpec = newSpec();
    const { startPosition: dropStart } = await postgresEngine.createReplication(db.params, dropSpec, [ITEMS]);
    const { collector } = await open(dropStart, dropSpec);
    await db.client.query(`INSERT INTO items VALUES (200, 'streamed', NULL, NULL, NULL)`);
    await collector.until((events) => events.some((e) => e.kind === 'commit'));
    expect((await slotRow(db, dropSpec.slotName))?.active).toBe(true);

    await postgresEngine.dropReplication(db.params, dropSpec);
    expect(await slotRow(db, dropSpec.slotName)).toBeUndefined();
    const publications = await db.client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [dropSpec.publicationName]);
    expect(publications.rows).toHaveLength(0);

    await collector.running;
    expect(collector.error).toBeInstanceOf(FerryError);
    expect((collector.error as FerryError).retryable).toBe(true);

    // The retry finds the slot gone: permanent, and the message says what to do.
    const lost = await expectRejection(postgresEngine.openChangeReader(db.params, dropSpec, dropStart));
    expect(lost.code).toBe('REPLICATION_SLOT_LOST');
    expect(lost.retryable).toBe(false);
    expect(lost.recoverable).toBe(false);
    expect(lost.message).toMatch(/Restart/);
    expect(lost.message).toMatch(/full dump/);

    // Dropping again skips what is missing.
    await postgresEngine.dropReplication(db.params, dropSpec);
  });

  it('reports a slot that does not exist as REPLICATION_SLOT_LOST', async () => {
    const error = await expectRejection(postgresEngine.openChangeReader(db.params, { slotName: 'ferry_no_such_slot', publicationName: spec.publicationName }, startPosition));
    expect(error.code).toBe('REPLICATION_SLOT_LOST');
    expect(error.retryable).toBe(false);
  });

  it('tells a role without REPLICATION what to run', async () => {
    const role = `ferry_norepl_${randomBytes(4).toString('hex')}`;
    await db.client.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const params = { ...db.params, username: role };
      // The publication exists already and lists these tables: only the slot is left to create.
      const created = await expectRejection(postgresEngine.createReplication(params, { ...newSpec(), publicationName: spec.publicationName }, [ITEMS, LOGS, DOCS]));
      expect(created.code).toBe('INSUFFICIENT_PRIVILEGE');
      expect(created.message).toContain(`ALTER ROLE ${role} WITH REPLICATION`);
      const reading = await expectRejection(postgresEngine.openChangeReader(params, spec, startPosition));
      expect(reading.code).toBe('INSUFFICIENT_PRIVILEGE');
      expect(reading.message).toContain(`ALTER ROLE ${role} WITH REPLICATION`);
    } finally {
      await db.client.query(`DROP ROLE ${role}`);
    }
  });

  it('refuses to open a reader at something that is not an LSN', async () => {
    const error = await expectRejection(postgresEngine.openChangeReader(db.params, spec, 'not-an-lsn'));
    expect(error.code).toBe('INVALID_ARGUMENT');
  });
});

/** A stand-in for pg's Client in CopyBoth mode: the test plays the server. */
class ScriptedConnection extends EventEmitter {
  readonly sent: Buffer[] = [];
  copyDone = false;
  readonly stream = {
    paused: false,
    pause(): void {
      this.paused = true;
    },
    resume(): void {
      this.paused = false;
    },
    destroy(): void {},
  };
  finish: (error?: unknown) => void = () => undefined;

  sendCopyFromChunk(chunk: Buffer): void {
    this.sent.push(chunk);
  }

  endCopyFrom(): void {
    this.copyDone = true;
    this.finish();
  }
}

class ScriptedClient {
  readonly connection = new ScriptedConnection();
  sql = '';
  ended = false;

  query(sql: string): Promise<void> {
    this.sql = sql;
    return new Promise<void>((resolve, reject) => {
      this.connection.finish = (error?: unknown) => (error === undefined ? resolve() : reject(error));
    });
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }

  /** The server starts streaming (CopyBothResponse). */
  start(): void {
    this.connection.emit('replicationStart');
  }

  keepalive(walEnd: string, replyRequested: boolean): void {
    const message = Buffer.alloc(18);
    message[0] = 0x6b;
    Lsn.parse(walEnd).write(message, 1);
    message[17] = replyRequested ? 1 : 0;
    this.connection.emit('copyData', { chunk: message });
  }

  xlogData(payload: Buffer): void {
    this.connection.emit('copyData', { chunk: Buffer.concat([Buffer.from([0x77]), Buffer.alloc(24), payload]) });
  }
}

function lsnBytes(text: string): Buffer {
  const b = Buffer.alloc(8);
  Lsn.parse(text).write(b, 0);
  return b;
}

const BEGIN = (commit: string) => Buffer.concat([Buffer.from('B'), lsnBytes(commit), Buffer.alloc(8), Buffer.alloc(4)]);
const COMMIT = (commit: string, end: string) => Buffer.concat([Buffer.from('C'), Buffer.alloc(1), lsnBytes(commit), lsnBytes(end), Buffer.alloc(8)]);
const RELATION = Buffer.concat([
  Buffer.from('R'),
  Buffer.from([0, 0, 0x40, 0]),
  Buffer.from('public\0t\0d'),
  Buffer.from([0, 1, 1]),
  Buffer.from('id\0'),
  Buffer.from([0, 0, 0, 23, 0xff, 0xff, 0xff, 0xff]),
]);
const INSERT = (id: string) => Buffer.concat([Buffer.from('I'), Buffer.from([0, 0, 0x40, 0]), Buffer.from('N'), Buffer.from([0, 1]), Buffer.from('t'), Buffer.from([0, 0, 0, id.length]), Buffer.from(id)]);

/** The write, flush and apply positions of a standby status update. */
function statusPositions(message: Buffer): string[] {
  expect(message[0]).toBe(0x72);
  expect(message).toHaveLength(34);
  expect(message[33]).toBe(0);
  return [1, 9, 17].map((offset) => Lsn.read(message, offset).format());
}

describe('classification of replication failures', () => {
  const serverError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'ERROR' });

  it('makes a lost slot permanent, and says to Restart', () => {
    for (const error of [
      serverError('42704', 'replication slot "s" does not exist'),
      serverError('58P01', 'requested WAL segment 000000010000000000000001 has already been removed'),
      serverError('55000', 'can no longer get changes from replication slot "s"'),
      serverError('55000', 'cannot read from logical replication slot "s"'),
      serverError('42704', 'publication "p" does not exist'),
    ]) {
      const classified = classifyPostgresError(error);
      expect(classified.code).toBe('REPLICATION_SLOT_LOST');
      expect(classified.retryable).toBe(false);
      expect(classified.recoverable).toBe(false);
      expect(classified.message).toMatch(/Restart it, which drops its replication objects and takes a new full dump/);
    }
  });

  it('says which setting to raise, and waits out a busy slot', () => {
    const slots = classifyPostgresError(serverError('53400', 'all replication slots are in use'));
    expect(slots.code).toBe('REPLICATION_NOT_CONFIGURED');
    expect(slots.message).toMatch(/max_replication_slots/);
    const senders = classifyPostgresError(serverError('53300', 'number of requested standby connections exceeds max_wal_senders (currently 10)'));
    expect(senders.code).toBe('REPLICATION_NOT_CONFIGURED');
    expect(senders.retryable).toBe(true);
    const wal = classifyPostgresError(serverError('55000', 'logical decoding requires wal_level >= logical'));
    expect(wal.code).toBe('REPLICATION_NOT_CONFIGURED');
    expect(wal.message).toMatch(/set wal_level = logical and restart PostgreSQL/);
    const busy = classifyPostgresError(serverError('55006', 'replication slot "s" is active for PID 42'));
    expect(busy.retryable).toBe(true);
  });
});

describe('PostgresChangeReader protocol handling (scripted server)', () => {
  async function started(highWaterEvents = 10_000, highWaterBytes?: number): Promise<{ client: ScriptedClient; reader: PostgresChangeReader }> {
    const client = new ScriptedClient();
    const reader = new PostgresChangeReader(client as unknown as pg.Client, {}, Lsn.parse('0/100'), { highWaterEvents, statusIntervalMs: 3_600_000, ...(highWaterBytes === undefined ? {} : { highWaterBytes }) });
    const starting = reader.start({ slotName: 'job "slot"', publicationName: 'job pub' });
    client.start();
    await starting;
    return { client, reader };
  }

  it('starts the stream with the slot, position, publication and messages', async () => {
    const { client, reader } = await started();
    expect(client.sql).toBe(`START_REPLICATION SLOT "job ""slot""" LOGICAL 0/100 (proto_version '1', publication_names '"job pub"', messages 'true')`);
    await reader.close();
  });

  it('answers reply requests with the acknowledged position only, and 0/0 before any', async () => {
    const { client, reader } = await started();
    client.keepalive('0/500', true);
    expect(client.connection.sent).toHaveLength(1);
    expect(statusPositions(client.connection.sent[0] as Buffer)).toEqual(['0/0', '0/0', '0/0']);
    client.keepalive('0/600', false);
    expect(client.connection.sent).toHaveLength(1);

    reader.acknowledge('0/300');
    reader.acknowledge('0/200');
    client.keepalive('0/700', true);
    expect(statusPositions(client.connection.sent[1] as Buffer)).toEqual(['0/300', '0/300', '0/300']);
    const sentAt = (client.connection.sent[1] as Buffer).readBigInt64BE(25);
    const nowMicros = (BigInt(Date.now()) - 946_684_800_000n) * 1000n;
    expect(nowMicros - sentAt).toBeLessThan(5_000_000n);

    // close() confirms the acknowledged position once more, then ends the copy.
    reader.acknowledge('0/350');
    await reader.close();
    expect(statusPositions(client.connection.sent.at(-1) as Buffer)).toEqual(['0/350', '0/350', '0/350']);
    expect(client.connection.copyDone).toBe(true);
    expect(client.ended).toBe(true);
  });

  it('emits heartbeats only between transactions and only forward', async () => {
    const { client, reader } = await started();
    const collector = new Collector(reader);
    client.keepalive('0/50', false); // before the start position: nothing new
    client.keepalive('0/400', false);
    client.xlogData(BEGIN('0/480'));
    client.keepalive('0/500', false); // inside a transaction: acknowledging it could skip the transaction
    client.xlogData(RELATION);
    client.xlogData(INSERT('1'));
    client.xlogData(COMMIT('0/480', '0/4A0'));
    client.keepalive('0/490', false); // behind the commit just delivered
    client.keepalive('0/600', false);
    await collector.until((events) => events.length >= 6);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(collector.events.map((e) => (e.kind === 'heartbeat' ? `heartbeat ${e.position}` : e.kind))).toEqual([
      'heartbeat 0/400',
      'begin',
      'relation',
      'change',
      'commit',
      'heartbeat 0/600',
    ]);
    await reader.close();
    await collector.running;
    expect(collector.error).toBeNull();
  });

  it('pauses the socket while the consumer is behind, and resumes when it catches up', async () => {
    const { client, reader } = await started(5);
    client.xlogData(RELATION);
    client.xlogData(BEGIN('0/480'));
    for (let i = 0; i < 10; i++) client.xlogData(INSERT(String(i)));
    expect(client.connection.stream.paused).toBe(true);
    const iterator = reader.events()[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toHaveLength(12);
    expect(client.connection.stream.paused).toBe(false);
    expect(() => reader.events()).toThrow(FerryError);
    await reader.close();
    expect((await iterator.next()).done).toBe(true);
  });

  it('pauses the socket once the queued events reach the byte bound, whatever their count', async () => {
    // Events of 200-byte values: the second one passes 2,000 estimated bytes, far below 10,000 events.
    const { client, reader } = await started(10_000, 2_000);
    client.xlogData(RELATION);
    client.xlogData(BEGIN('0/480'));
    client.xlogData(INSERT('a'.repeat(200)));
    expect(client.connection.stream.paused).toBe(false);
    client.xlogData(INSERT('b'.repeat(200)));
    expect(client.connection.stream.paused).toBe(true);
    const iterator = reader.events()[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toHaveLength(4);
    expect(client.connection.stream.paused).toBe(false);
    // The count starts again from the empty queue: one more such event does not pause.
    client.xlogData(INSERT('c'.repeat(200)));
    expect(client.connection.stream.paused).toBe(false);
    await reader.close();
  });

  it('delivers what arrived, then ends with the classified stream error', async () => {
    const { client, reader } = await started();
    const collector = new Collector(reader);
    client.xlogData(RELATION);
    client.xlogData(BEGIN('0/480'));
    client.xlogData(INSERT('1'));
    const serverError = Object.assign(new Error('replication slot "job slot" does not exist'), { code: '42704', severity: 'ERROR' });
    client.connection.finish(serverError);
    await collector.running;
    expect(collector.events.map((e) => e.kind)).toEqual(['relation', 'begin', 'change']);
    expect(collector.error).toBeInstanceOf(FerryError);
    expect((collector.error as FerryError).code).toBe('REPLICATION_SLOT_LOST');
    await reader.close();
  });

  it('ends with an error on a message it cannot decode', async () => {
    const { client, reader } = await started();
    const collector = new Collector(reader);
    client.xlogData(INSERT('1')); // no Relation message first
    await collector.running;
    expect((collector.error as FerryError).code).toBe('INTERNAL');
    await reader.close();
  });

  it('rejects the start with the classified error when the server refuses it', async () => {
    const client = new ScriptedClient();
    const reader = new PostgresChangeReader(client as unknown as pg.Client, {}, Lsn.parse('0/100'));
    const starting = reader.start({ slotName: 's', publicationName: 'p' });
    client.connection.finish(Object.assign(new Error('requested WAL segment 000000010000000000000001 has already been removed'), { code: '58P01', severity: 'ERROR' }));
    const error = await expectRejection(starting);
    expect(error.code).toBe('REPLICATION_SLOT_LOST');
    expect(client.ended).toBe(true);
  });
});
