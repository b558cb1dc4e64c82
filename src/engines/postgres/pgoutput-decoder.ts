/**
 * Decodes the messages of PostgreSQL's pgoutput logical decoding plugin, protocol versions 1
 * and 2 (https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html), as
 * they arrive in the XLogData payloads of a START_REPLICATION stream.
 *
 * Protocol 2 adds the streaming of in-progress transactions: Stream Start and Stream Stop
 * enclose a block of one transaction's changes (each Relation, Type, row and Message inside
 * carries the xid of the (sub)transaction before its fields), and Stream Commit or Stream
 * Abort end the transaction later. The decoder tracks whether it is inside such a block
 * (`streamXid`).
 *
 * Values stay text, as the server's type output functions wrote them: no parsing, no loss.
 * A TOASTed value the server did not send because it did not change is UNCHANGED.
 *
 * The decoder keeps what earlier messages described: relations (id → schema, name, columns),
 * so that row messages come out as RowChange with column names, and user types (Type
 * messages), so that columns carry a type name. One decoder per stream: relation ids are
 * only meaningful within the stream that described them.
 *
 * Column types (`nativeType`): pgoutput sends a type oid and a typmod, not a name. Built-in
 * types are named here as `format_type(oid, typmod)` prints them (`integer`,
 * `character varying(20)`, `numeric(12,2)`, `timestamp(3) with time zone`, `text[]`); user
 * types as `schema.name` from the Type message the server sends before the relation (an
 * array type `_name` as `schema.name[]`). Anything else is `oid:<oid>:<typmod>`: looking each
 * type up over a second connection would cost a round trip inside the stream for a name the
 * pipeline only reports.
 */
import { FerryError } from '../../core/errors.js';
import type { QualifiedName } from '../../core/schema.js';
import { UNCHANGED } from '../engine.js';
import type { ColumnValue, RowChange } from '../engine.js';
import { Lsn } from './lsn.js';

/** A column as a Relation message describes it. */
export interface PgoutputColumn {
  name: string;
  /** Part of the replica identity (the primary key, the identity index, or every column with FULL). */
  key: boolean;
  typeOid: number;
  typeModifier: number;
  /** See the module comment. */
  nativeType: string;
}

export interface PgoutputRelation {
  id: number;
  schema: string;
  name: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  columns: PgoutputColumn[];
  /** The column names, in order. Shared by every RowChange of the relation: treat as read-only. */
  columnNames: string[];
  /** The table's name. Shared by every RowChange of the relation: treat as read-only. */
  table: QualifiedName;
  /** The decoder's own: the last short ASCII value read per column (see Cursor.text). */
  recentValues: Array<string | undefined>;
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: string; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: string }
  | { tag: 'origin'; originLsn: Lsn; name: string }
  | { tag: 'relation'; relation: PgoutputRelation }
  | { tag: 'type'; typeOid: number; schema: string; name: string }
  | { tag: 'change'; change: RowChange }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer }
  /** A block of the in-progress transaction `xid` follows (`first`: its first block). */
  | { tag: 'streamStart'; xid: number; first: boolean }
  | { tag: 'streamStop' }
  | { tag: 'streamCommit'; xid: number; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: string }
  /** `subxid === xid`: the whole transaction aborted; otherwise only that subtransaction. */
  | { tag: 'streamAbort'; xid: number; subxid: number };

const POSTGRES_EPOCH_MS = 946_684_800_000n;

/** A PostgreSQL timestamp (microseconds since 2000-01-01 00:00 UTC) as ISO 8601 with microseconds. */
export function postgresTimestampToIso(microseconds: bigint): string {
  const unixMicros = microseconds + POSTGRES_EPOCH_MS * 1000n;
  let millis = unixMicros / 1000n;
  let rest = unixMicros % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    millis -= 1n;
  }
  const iso = new Date(Number(millis)).toISOString();
  return `${iso.slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

/** Microseconds since 2000-01-01 00:00 UTC of a JavaScript time in milliseconds. */
export function toPostgresTimestamp(unixMillis: number): bigint {
  return (BigInt(Math.trunc(unixMillis)) - POSTGRES_EPOCH_MS) * 1000n;
}

type TypeFormatter = (typmod: number) => string;

function plain(name: string): TypeFormatter {
  return () => name;
}

function withLength(name: string, bare = name): TypeFormatter {
  return (typmod) => (typmod >= 4 ? `${name}(${typmod - 4})` : bare);
}

function withPrecision(before: string, after: string): TypeFormatter {
  return (typmod) => (typmod >= 0 ? `${before}(${typmod})${after}` : `${before}${after}`);
}

function numeric(typmod: number): string {
  if (typmod < 4) return 'numeric';
  const mod = typmod - 4;
  const precision = (mod >> 16) & 0xffff;
  // PostgreSQL 15 allows a negative scale: 11 bits, sign-extended.
  const scale = ((mod & 0x7ff) ^ 1024) - 1024;
  return `numeric(${precision},${scale})`;
}

/** Built-in types by oid (the oids are fixed across PostgreSQL versions), printed as format_type does. */
const BUILT_IN: ReadonlyMap<number, TypeFormatter> = new Map<number, TypeFormatter>([
  [16, plain('boolean')],
  [17, plain('bytea')],
  [18, plain('"char"')],
  [19, plain('name')],
  [20, plain('bigint')],
  [21, plain('smallint')],
  [23, plain('integer')],
  [25, plain('text')],
  [26, plain('oid')],
  [114, plain('json')],
  [142, plain('xml')],
  [600, plain('point')],
  [601, plain('lseg')],
  [602, plain('path')],
  [603, plain('box')],
  [604, plain('polygon')],
  [628, plain('line')],
  [650, plain('cidr')],
  [700, plain('real')],
  [701, plain('double precision')],
  [718, plain('circle')],
  [774, plain('macaddr8')],
  [790, plain('money')],
  [829, plain('macaddr')],
  [869, plain('inet')],
  [1042, withLength('character', 'bpchar')],
  [1043, withLength('character varying')],
  [1082, plain('date')],
  [1083, withPrecision('time', ' without time zone')],
  [1114, withPrecision('timestamp', ' without time zone')],
  [1184, withPrecision('timestamp', ' with time zone')],
  [1266, withPrecision('time', ' with time zone')],
  [1560, withPrecision('bit', '')],
  [1562, withPrecision('bit varying', '')],
  [1700, numeric],
  [2950, plain('uuid')],
  [3220, plain('pg_lsn')],
  [3614, plain('tsvector')],
  [3615, plain('tsquery')],
  [3802, plain('jsonb')],
  [4072, plain('jsonpath')],
  [3904, plain('int4range')],
  [3906, plain('numrange')],
  [3908, plain('tsrange')],
  [3910, plain('tstzrange')],
  [3912, plain('daterange')],
  [3926, plain('int8range')],
]);

/** Array types of the built-ins above: array oid → element oid. */
const BUILT_IN_ARRAYS: ReadonlyMap<number, number> = new Map([
  [1000, 16], [1001, 17], [1002, 18], [1003, 19], [1016, 20], [1005, 21], [1007, 23], [1009, 25], [1028, 26],
  [199, 114], [143, 142], [1017, 600], [1018, 601], [1019, 602], [1020, 603], [1027, 604], [629, 628], [651, 650],
  [1021, 700], [1022, 701], [719, 718], [775, 774], [791, 790], [1040, 829], [1041, 869], [1014, 1042], [1015, 1043],
  [1182, 1082], [1183, 1083], [1115, 1114], [1185, 1184], [1270, 1266], [1561, 1560], [1563, 1562], [1231, 1700],
  [2951, 2950], [3221, 3220], [3643, 3614], [3645, 3615], [3807, 3802], [4073, 4072], [3905, 3904], [3907, 3906],
  [3909, 3908], [3911, 3910], [3913, 3912], [3927, 3926],
]);

const BARE_IDENTIFIER = /^[a-z_][a-z0-9_$]*$/;

function identifier(name: string): string {
  return BARE_IDENTIFIER.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Node's Buffer slicing methods without toString()'s argument handling (present on every Buffer, undocumented). */
type SlicingBuffer = Buffer & { latin1Slice(start: number, end: number): string; utf8Slice(start: number, end: number): string };

/** Values up to this many bytes are compared with the column's previous value and kept when equal. */
const SHORT_VALUE_BYTES = 128;

/** Reads the fields of one message in order. One per decoder, moved to each message (no object per message). */
class Cursor {
  buffer: SlicingBuffer = Buffer.alloc(0) as SlicingBuffer;
  offset = 0;

  reset(buffer: Buffer, start: number): void {
    this.buffer = buffer as SlicingBuffer;
    this.offset = start;
  }

  byte(): number {
    const value = this.buffer.readUInt8(this.offset);
    this.offset += 1;
    return value;
  }

  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  lsn(): Lsn {
    const value = Lsn.read(this.buffer, this.offset);
    this.offset += 8;
    return value;
  }

  /** A null-terminated string. */
  string(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw malformed('a string without its terminating zero byte');
    const value = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  bytes(length: number): Buffer {
    if (this.offset + length > this.buffer.length) throw malformed('a value longer than the message');
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /**
   * A column value of `length` bytes, for column `column` of a relation whose last short ASCII
   * values are `recent`. A short ASCII value equal to the column's last one is that string itself:
   * repeated values (a flag, a foreign key, a padded filler) then cost no new string. Short ASCII
   * is read as Latin-1 (no UTF-8 decoding). Only ASCII is remembered: a byte-wise comparison with
   * any other string could mistake one text for another.
   */
  text(length: number, recent: Array<string | undefined>, column: number): string {
    const buffer = this.buffer;
    const start = this.offset;
    const end = start + length;
    if (end > buffer.length) throw malformed('a value longer than the message');
    this.offset = end;
    if (length > SHORT_VALUE_BYTES) return buffer.utf8Slice(start, end);
    const previous = recent[column];
    // The last byte first: a key or counter that changes differs there, and is rejected at once.
    if (previous !== undefined && previous.length === length && buffer[end - 1] === previous.charCodeAt(length - 1)) {
      let i = 0;
      while (i < length && buffer[start + i] === previous.charCodeAt(i)) i++;
      if (i === length) return previous;
    }
    for (let i = start; i < end; i++) if ((buffer[i] as number) >= 0x80) return buffer.utf8Slice(start, end);
    const value = buffer.latin1Slice(start, end);
    recent[column] = value;
    return value;
  }
}

function malformed(what: string): FerryError {
  return new FerryError(
    'INTERNAL',
    `The change stream from PostgreSQL contained ${what}; Ferry cannot decode it. Report this with the server version; the job resumes from its last applied position once fixed.`,
  );
}

const REPLICA_IDENTITY: Record<number, PgoutputRelation['replicaIdentity']> = {
  0x64: 'default',
  0x6e: 'nothing',
  0x66: 'full',
  0x69: 'index',
};

export class PgoutputDecoder {
  private readonly relations = new Map<number, PgoutputRelation>();
  private readonly types = new Map<number, string>();
  private readonly cursor = new Cursor();
  /** Inside a Stream Start .. Stream Stop block: the streamed transaction's xid; otherwise null. */
  streamXid: number | null = null;

  /** The relation a Relation message described under `id`, if any. */
  relation(id: number): PgoutputRelation | undefined {
    return this.relations.get(id);
  }

  /** Decodes one pgoutput message starting at `offset` (25 in an XLogData payload). */
  decode(buffer: Buffer, offset = 0): PgoutputMessage {
    const cursor = this.cursor;
    cursor.reset(buffer, offset);
    const tag = cursor.byte();
    try {
      // In a stream block, messages of the transaction carry its (sub)transaction's xid first.
      if (this.streamXid !== null && tag !== 0x45 && tag !== 0x53) cursor.uint32();
      switch (tag) {
        case 0x42: // B
          return { tag: 'begin', finalLsn: cursor.lsn(), commitTime: postgresTimestampToIso(cursor.int64()), xid: cursor.uint32() };
        case 0x43: // C
          return { tag: 'commit', flags: cursor.byte(), commitLsn: cursor.lsn(), endLsn: cursor.lsn(), commitTime: postgresTimestampToIso(cursor.int64()) };
        case 0x4f: // O
          return { tag: 'origin', originLsn: cursor.lsn(), name: cursor.string() };
        case 0x52: // R
          return { tag: 'relation', relation: this.decodeRelation(cursor) };
        case 0x59: // Y
          return this.decodeType(cursor);
        case 0x49: // I
          return { tag: 'change', change: this.decodeInsert(cursor) };
        case 0x55: // U
          return { tag: 'change', change: this.decodeUpdate(cursor) };
        case 0x44: // D
          return { tag: 'change', change: this.decodeDelete(cursor) };
        case 0x54: // T
          return { tag: 'change', change: this.decodeTruncate(cursor) };
        case 0x4d: // M
          return this.decodeMessage(cursor);
        case 0x53: {
          // S: Stream Start
          if (this.streamXid !== null) throw malformed('a Stream Start inside a stream block');
          const xid = cursor.uint32();
          this.streamXid = xid;
          return { tag: 'streamStart', xid, first: cursor.byte() === 1 };
        }
        case 0x45: // E: Stream Stop
          if (this.streamXid === null) throw malformed('a Stream Stop outside a stream block');
          this.streamXid = null;
          return { tag: 'streamStop' };
        case 0x63: // c: Stream Commit
          return { tag: 'streamCommit', xid: cursor.uint32(), flags: cursor.byte(), commitLsn: cursor.lsn(), endLsn: cursor.lsn(), commitTime: postgresTimestampToIso(cursor.int64()) };
        case 0x41: // A: Stream Abort
          return { tag: 'streamAbort', xid: cursor.uint32(), subxid: cursor.uint32() };
        default:
          throw malformed(`a message of unknown type '${String.fromCharCode(tag)}' (0x${tag.toString(16)})`);
      }
    } catch (error) {
      if (error instanceof RangeError) throw malformed(`a truncated '${String.fromCharCode(tag)}' message`);
      throw error;
    }
  }

  private decodeRelation(cursor: Cursor): PgoutputRelation {
    const id = cursor.uint32();
    const schema = cursor.string() || 'pg_catalog';
    const name = cursor.string();
    const identity = cursor.byte();
    const replicaIdentity = REPLICA_IDENTITY[identity];
    if (replicaIdentity === undefined) throw malformed(`an unknown replica identity '${String.fromCharCode(identity)}'`);
    const count = cursor.int16();
    const columns: PgoutputColumn[] = [];
    for (let i = 0; i < count; i++) {
      const flags = cursor.byte();
      const columnName = cursor.string();
      const typeOid = cursor.uint32();
      const typeModifier = cursor.int32();
      columns.push({ name: columnName, key: (flags & 1) === 1, typeOid, typeModifier, nativeType: this.typeName(typeOid, typeModifier) });
    }
    const relation: PgoutputRelation = {
      id, schema, name, replicaIdentity, columns, columnNames: columns.map((c) => c.name), table: { schema, name }, recentValues: new Array<string | undefined>(count).fill(undefined),
    };
    this.relations.set(id, relation);
    return relation;
  }

  private decodeType(cursor: Cursor): PgoutputMessage {
    const typeOid = cursor.uint32();
    const schema = cursor.string() || 'pg_catalog';
    const name = cursor.string();
    const qualified =
      name.startsWith('_') && name.length > 1 ? `${identifier(schema)}.${identifier(name.slice(1))}[]` : `${identifier(schema)}.${identifier(name)}`;
    this.types.set(typeOid, qualified);
    return { tag: 'type', typeOid, schema, name };
  }

  private typeName(oid: number, typmod: number): string {
    const builtIn = BUILT_IN.get(oid);
    if (builtIn !== undefined) return builtIn(typmod);
    const element = BUILT_IN_ARRAYS.get(oid);
    const elementFormat = element === undefined ? undefined : BUILT_IN.get(element);
    if (elementFormat !== undefined) return `${elementFormat(typmod)}[]`;
    return this.types.get(oid) ?? `oid:${oid}:${typmod}`;
  }

  private relationOf(cursor: Cursor): PgoutputRelation {
    const id = cursor.uint32();
    const relation = this.relations.get(id);
    if (relation === undefined) throw malformed(`a row change for relation ${id} before any Relation message described it`);
    return relation;
  }

  private decodeInsert(cursor: Cursor): RowChange {
    const relation = this.relationOf(cursor);
    expectTupleTag(cursor, 0x4e);
    const values = readTuple(cursor, relation);
    return { op: 'insert', table: tableOf(relation), columns: relation.columnNames, values };
  }

  private decodeUpdate(cursor: Cursor): RowChange {
    const relation = this.relationOf(cursor);
    let kind = cursor.byte();
    let oldColumns: string[] | null = null;
    let oldValues: ColumnValue[] | null = null;
    if (kind === 0x4b || kind === 0x4f) {
      ({ oldColumns, oldValues } = readOld(cursor, relation, kind));
      kind = cursor.byte();
    }
    if (kind !== 0x4e) throw malformed(`an Update whose new row is tagged '${String.fromCharCode(kind)}' instead of 'N'`);
    const values = readTuple(cursor, relation);
    return { op: 'update', table: tableOf(relation), columns: relation.columnNames, values, oldColumns, oldValues };
  }

  private decodeDelete(cursor: Cursor): RowChange {
    const relation = this.relationOf(cursor);
    const kind = cursor.byte();
    if (kind !== 0x4b && kind !== 0x4f) throw malformed(`a Delete whose old row is tagged '${String.fromCharCode(kind)}' instead of 'K' or 'O'`);
    const { oldColumns, oldValues } = readOld(cursor, relation, kind);
    return { op: 'delete', table: tableOf(relation), oldColumns, oldValues };
  }

  private decodeTruncate(cursor: Cursor): RowChange {
    const count = cursor.uint32();
    const options = cursor.byte();
    const tables: QualifiedName[] = [];
    for (let i = 0; i < count; i++) tables.push(tableOf(this.relationOf(cursor)));
    return { op: 'truncate', tables, cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0 };
  }

  private decodeMessage(cursor: Cursor): PgoutputMessage {
    const flags = cursor.byte();
    const lsn = cursor.lsn();
    const prefix = cursor.string();
    const content = cursor.bytes(cursor.uint32());
    return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content };
  }
}

function tableOf(relation: PgoutputRelation): QualifiedName {
  return relation.table;
}

function expectTupleTag(cursor: Cursor, expected: number): void {
  const kind = cursor.byte();
  if (kind !== expected) {
    throw malformed(`a row tagged '${String.fromCharCode(kind)}' where '${String.fromCharCode(expected)}' was expected`);
  }
}

function readTuple(cursor: Cursor, relation: PgoutputRelation): ColumnValue[] {
  const count = cursor.int16();
  if (count !== relation.columns.length) {
    throw malformed(`a row of ${count} columns for ${relation.schema}.${relation.name}, described with ${relation.columns.length}`);
  }
  const values: ColumnValue[] = new Array<ColumnValue>(count);
  for (let i = 0; i < count; i++) {
    const kind = cursor.byte();
    switch (kind) {
      case 0x74: // t
        values[i] = cursor.text(cursor.uint32(), relation.recentValues, i);
        break;
      case 0x6e: // n
        values[i] = null;
        break;
      case 0x75: // u
        values[i] = UNCHANGED;
        break;
      default:
        throw malformed(`a column value of kind '${String.fromCharCode(kind)}' (binary values are not requested)`);
    }
  }
  return values;
}

/** The old row: with 'K' only the replica identity columns (the others are sent as null placeholders), with 'O' all. */
function readOld(cursor: Cursor, relation: PgoutputRelation, kind: number): { oldColumns: string[]; oldValues: ColumnValue[] } {
  const values = readTuple(cursor, relation);
  if (kind === 0x4f) return { oldColumns: relation.columnNames, oldValues: values };
  const oldColumns: string[] = [];
  const oldValues: ColumnValue[] = [];
  relation.columns.forEach((column, i) => {
    if (!column.key) return;
    oldColumns.push(column.name);
    oldValues.push(values[i] as ColumnValue);
  });
  return { oldColumns, oldValues };
}
