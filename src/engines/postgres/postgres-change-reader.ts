/**
 * Reads a PostgreSQL source's changes from the job's logical replication slot: a walsender
 * connection (`replication: 'database'`) streams pgoutput messages in CopyBoth mode, and
 * PostgresChangeReader turns them into ChangeEvents.
 *
 * Durability: the reader confirms to the server (standby status update: write, flush and
 * apply positions) only what acknowledge() was given, never what it merely received, so the
 * slot keeps every change that is not durably applied. Before the first acknowledge() it
 * confirms nothing (0/0, which the server ignores).
 *
 * Memory: events wait in a queue until events() hands them out. The queue is bounded in events
 * (HIGH_WATER_EVENTS) and in estimated bytes (HIGH_WATER_BYTES: eventBytes() of each
 * message's wire size, an upper estimate of what its decoded strings and objects take on the
 * V8 heap): past either, the socket is paused, and it resumes when the consumer takes the
 * queue. A transaction of a million rows therefore never sits in memory whole: the reader
 * holds at most one queue plus one socket read (64 KiB) of messages, the consumer the chunk it
 * took, and the pipeline applies it in pieces inside one destination transaction.
 */
import pg from 'pg';
import type { ClientConfig } from 'pg';
import { insertOnlyPublicationName } from './postgres-replication.js';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { ChangeEvent, ChangeReader, ReplicationSpec } from '../engine.js';
import { Lsn } from './lsn.js';
import { buildClientConfig, CONNECT_TIMEOUT_MS, endQuietly, errorContext, quoteIdent, quoteLiteral, SESSION_SETUP_SQL } from './postgres-connection.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import type { PostgresErrorContext } from './postgres-error-classifier.js';
import { PgoutputDecoder, toPostgresTimestamp } from './pgoutput-decoder.js';
import type { PgoutputMessage } from './pgoutput-decoder.js';

/** The prefix of the logical messages that emitMarker writes; other prefixes are ignored. */
export const MARKER_PREFIX = 'ferry';

/** How often the reader confirms its acknowledged position (and proves it is alive). */
const STATUS_INTERVAL_MS = 10_000;
/** Queued events beyond which the socket is paused. */
const HIGH_WATER_EVENTS = 10_000;
/** Estimated bytes of queued events beyond which the socket is paused. */
// 1 MiB, not more: a deeper queue is not faster, its events only live long enough to be promoted
// to V8's old generation (docs/ARCHITECTURE.md, "Memory of ferry serve").
export const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * An upper estimate of the heap bytes of the event decoded from a message of `wireBytes`: the
 * event's objects and arrays (a fixed part), and per wire byte up to 3 heap bytes (a value's
 * text becomes a string of 1 or 2 bytes per character; each column's 5-byte header becomes a
 * string header and an array slot of about 24 bytes, 5 per header byte, amortised over data).
 */
export function eventBytes(wireBytes: number): number {
  return 256 + 3 * wireBytes;
}
/** How long close() waits for the server to end the stream before dropping the connection. */
const STOP_TIMEOUT_MS = 5_000;

const XLOG_DATA = 0x77; // 'w'
const PRIMARY_KEEPALIVE = 0x6b; // 'k'
const STANDBY_STATUS_UPDATE = 0x72; // 'r'

/** The parts of pg's Connection that CopyBoth mode needs (not in @types/pg). */
interface ReplicationConnection extends pg.Connection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

export interface PostgresChangeReaderOptions {
  statusIntervalMs?: number;
  highWaterEvents?: number;
  highWaterBytes?: number;
  /**
   * Ask the server (14 and later: pgoutput protocol 2) to stream a transaction before its
   * commit once its decoding outgrows `logical_decoding_work_mem`: its changes arrive as
   * `streamChange` events between `streamStart` and `streamCommit` or `streamAbort`.
   */
  streamInProgress?: boolean;
  /** `logical_decoding_work_mem` of the walsender session (e.g. '64kB'); the server's setting when absent. */
  decodingWorkMem?: string;
}

/**
 * Connects a walsender client to the database (`replication: 'database'`): it accepts both
 * replication commands and SQL. Rejects with a classified FerryError.
 */
export async function connectReplicationClient(params: ConnectionParams, context: PostgresErrorContext = {}): Promise<pg.Client> {
  const config: ClientConfig & { replication: 'database' } = { ...buildClientConfig(params), replication: 'database' };
  const client = new pg.Client(config);
  // Without a listener, a connection dropped while idle would crash the process.
  client.on('error', () => undefined);
  const started = Date.now();
  try {
    await client.connect();
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, errorContext(params, { ...context, connecting: true, timedOut: Date.now() - started >= CONNECT_TIMEOUT_MS }));
  }
  return client;
}

/**
 * Opens a reader of the slot's changes from `startPosition`: connects, starts the stream and
 * resolves once the server streams. Rejects with a classified FerryError (a missing slot is
 * REPLICATION_SLOT_LOST).
 */
export async function openPostgresChangeReader(
  params: ConnectionParams,
  spec: ReplicationSpec,
  startPosition: string,
  options: PostgresChangeReaderOptions = {},
): Promise<PostgresChangeReader> {
  const start = Lsn.parse(startPosition);
  const context = errorContext(params, { operation: 'read' });
  const client = await connectReplicationClient(params, context);
  let publications: string[];
  let serverVersionNum: number;
  try {
    serverVersionNum = Number((await client.query("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
    // The walsender runs the type output functions: the same settings as the snapshot's COPY
    // make a changed value read exactly as the copied one (time zone, bytea, float digits).
    await client.query(SESSION_SETUP_SQL);
    // Tables without a key or replica identity are published for INSERT and TRUNCATE only, in a
    // second publication that exists only when the job has such tables.
    const insertOnly = insertOnlyPublicationName(spec.publicationName);
    const found = await client.query(`SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = ${quoteLiteral(insertOnly)}`);
    publications = found.rows.length > 0 ? [spec.publicationName, insertOnly] : [spec.publicationName];
  } catch (error) {
    await endQuietly(client);
    throw classifyPostgresError(error, context);
  }
  if (options.decodingWorkMem !== undefined) {
    try {
      await client.query(`SET logical_decoding_work_mem = ${quoteLiteral(options.decodingWorkMem)}`);
    } catch (error) {
      await endQuietly(client);
      throw classifyPostgresError(error, context);
    }
  }
  const reader = new PostgresChangeReader(client, context, start, options);
  await reader.start(spec, publications, serverVersionNum, options.streamInProgress === true);
  return reader;
}

export class PostgresChangeReader implements ChangeReader {
  private readonly connection: ReplicationConnection;
  private readonly decoder = new PgoutputDecoder();
  private readonly highWater: number;
  private readonly highWaterBytes: number;
  /** eventBytes() of what `pending` holds. */
  private pendingBytes = 0;
  private readonly statusIntervalMs: number;
  private pending: ChangeEvent[] = [];
  private wakeConsumer: (() => void) | null = null;
  private failure: FerryError | null = null;
  private closing: Promise<void> | null = null;
  private streaming: Promise<void> = Promise.resolve();
  private streamEnded = false;
  private paused = false;
  private iterating = false;
  private inTransaction = false;
  /** Streamed transactions begun and not yet committed or aborted (their xids). */
  private readonly openStreams = new Set<number>();
  /** The furthest commit end, marker or heartbeat handed out: a heartbeat must go beyond it. */
  private delivered: Lsn;
  /** The furthest position acknowledge() was given: all the server is ever told. */
  private acknowledged = Lsn.ZERO;
  /** The server asked for a reply that did not yet carry a new position. */
  private replyPending = false;
  private lastStatusSent = 0;
  private statusTimer: NodeJS.Timeout | null = null;

  /** Use openPostgresChangeReader. */
  constructor(
    private readonly client: pg.Client,
    private readonly context: PostgresErrorContext,
    private readonly startPosition: Lsn,
    options: PostgresChangeReaderOptions = {},
  ) {
    this.connection = client.connection as ReplicationConnection;
    this.delivered = startPosition;
    this.highWater = options.highWaterEvents ?? HIGH_WATER_EVENTS;
    this.highWaterBytes = options.highWaterBytes ?? HIGH_WATER_BYTES;
    this.statusIntervalMs = options.statusIntervalMs ?? STATUS_INTERVAL_MS;
  }

  /**
   * Sends START_REPLICATION; resolves when the server answers with CopyBoth. pgoutput refuses
   * options it does not know, so only what `serverVersionNum` has is asked for: logical
   * messages (the promote marker) arrive with PostgreSQL 14. Before 14 the marker is not sent,
   * but the transaction emitMarker commits after it is (pgoutput sends empty transactions
   * before 15), so the stream still reaches the marker's position with a commit.
   * openPostgresChangeReader passes the server's version; the default is a server with messages.
   */
  start(spec: ReplicationSpec, publications: string[] = [spec.publicationName], serverVersionNum = 140_000, streamInProgress = false): Promise<void> {
    const streaming = streamInProgress && serverVersionNum >= 140_000;
    const options = [`proto_version '${streaming ? 2 : 1}'`, `publication_names ${quoteLiteral(publications.map((p) => quoteIdent(p)).join(','))}`];
    if (serverVersionNum >= 140_000) options.push(`messages 'true'`);
    if (streaming) options.push(`streaming 'on'`);
    const sql = `START_REPLICATION SLOT ${quoteIdent(spec.slotName)} LOGICAL ${this.startPosition.format()} (${options.join(', ')})`;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const onStart = () => {
        started = true;
        this.statusTimer = setInterval(() => this.sendStatus(), this.statusIntervalMs);
        this.statusTimer.unref();
        resolve();
      };
      this.connection.once('replicationStart', onStart);
      this.connection.on('copyData', this.onCopyData);
      this.streaming = this.client.query(sql).then(
        () => this.streamStopped(null),
        (error: unknown) => this.streamStopped(error),
      );
      void this.streaming.then(() => {
        if (started) return;
        this.connection.removeListener('replicationStart', onStart);
        const classified = this.failure ?? new FerryError('CONNECTION_LOST', 'The source ended the change stream before it started; Ferry retries.', { retryable: true });
        void endQuietly(this.client);
        reject(classified);
      });
    });
  }

  events(): AsyncIterable<ChangeEvent[]> {
    if (this.iterating) {
      throw new FerryError('FAILED_PRECONDITION', 'The events of a change reader can be iterated only once; open another reader.');
    }
    this.iterating = true;
    return this.iterate();
  }

  acknowledge(position: string): void {
    const lsn = Lsn.parse(position);
    if (!lsn.isAfter(this.acknowledged)) return;
    this.acknowledged = lsn;
    // A server waiting for our reply (a shutdown waits for every walsender's client to confirm)
    // hears the new position now, not at the next interval; otherwise at most once a second.
    if (this.replyPending || Date.now() - this.lastStatusSent >= 1_000) {
      this.sendStatus();
      this.replyPending = false;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async *iterate(): AsyncGenerator<ChangeEvent[]> {
    for (;;) {
      if (this.closing !== null) return;
      if (this.pending.length > 0) {
        const chunk = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        if (this.paused) {
          this.paused = false;
          this.connection.stream.resume();
        }
        yield chunk;
        continue;
      }
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => {
        this.wakeConsumer = resolve;
      });
    }
  }

  private wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = null;
    wake?.();
  }

  private push(event: ChangeEvent, wireBytes = 0): void {
    this.pending.push(event);
    this.pendingBytes += eventBytes(wireBytes);
    if ((this.pending.length >= this.highWater || this.pendingBytes >= this.highWaterBytes) && !this.paused) {
      // pg parses a socket read whole, so a few more messages may still arrive: bounded by one read.
      this.paused = true;
      this.connection.stream.pause();
    }
    this.wake();
  }

  private readonly onCopyData = (message: { chunk: Buffer }): void => this.receive(message.chunk);

  private receive(chunk: Buffer): void {
    if (this.closing !== null || this.failure !== null) return;
    try {
      const type = chunk[0];
      if (type === XLOG_DATA) {
        this.handle(this.decoder.decode(chunk, 25), chunk.length, chunk);
      } else if (type === PRIMARY_KEEPALIVE) {
        const walEnd = Lsn.read(chunk, 1);
        // Between transactions the server has sent every commit before walEnd; inside one, walEnd
        // may lie past the commit being sent, and acknowledging it would lose that transaction.
        // A streamed transaction is open until its Stream Commit or Abort: the same holds for it.
        if (!this.inTransaction && this.openStreams.size === 0 && walEnd.isAfter(this.delivered)) {
          this.delivered = walEnd;
          this.push({ kind: 'heartbeat', position: walEnd.format() });
        }
        if (chunk[17] === 1) {
          this.sendStatus();
          this.replyPending = true;
        }
      }
    } catch (error) {
      this.fail(classifyPostgresError(error, this.context));
      this.connection.stream.destroy();
    }
  }

  private handle(message: PgoutputMessage, wireBytes: number, chunk: Buffer): void {
    switch (message.tag) {
      case 'begin':
        this.inTransaction = true;
        this.push({ kind: 'begin', commitPosition: message.finalLsn.format(), commitTime: message.commitTime });
        break;
      case 'commit':
        this.inTransaction = false;
        this.delivered = Lsn.max(this.delivered, message.endLsn);
        this.push({ kind: 'commit', position: message.endLsn.format(), commitTime: message.commitTime });
        break;
      case 'relation':
        this.push({
          kind: 'relation',
          table: { schema: message.relation.schema, name: message.relation.name },
          columns: message.relation.columns.map((c) => ({ name: c.name, nativeType: c.nativeType, key: c.key })),
        });
        break;
      case 'change': {
        const xid = this.decoder.streamXid;
        if (xid === null) this.push({ kind: 'change', change: message.change }, wireBytes);
        else this.push({ kind: 'streamChange', xid, change: message.change }, wireBytes);
        break;
      }
      case 'streamStart':
        this.openStreams.add(message.xid);
        // The XLogData's start: the block's first change, so before the transaction's commit.
        this.push({ kind: 'streamStart', xid: message.xid, first: message.first, position: Lsn.read(chunk, 1).format() });
        break;
      case 'streamCommit':
        this.openStreams.delete(message.xid);
        this.delivered = Lsn.max(this.delivered, message.endLsn);
        this.push({ kind: 'streamCommit', xid: message.xid, position: message.endLsn.format(), commitTime: message.commitTime });
        break;
      case 'streamAbort':
        if (message.subxid === message.xid) this.openStreams.delete(message.xid);
        this.push({ kind: 'streamAbort', xid: message.xid, subxid: message.subxid });
        break;
      case 'message':
        // A transactional marker inside a streamed transaction is not one the pipeline wrote (its markers are not transactional).
        if (message.prefix !== MARKER_PREFIX || this.decoder.streamXid !== null) break;
        if (!message.transactional && !this.inTransaction) this.delivered = Lsn.max(this.delivered, message.lsn);
        this.push({ kind: 'marker', position: message.lsn.format(), content: message.content.toString('utf8') });
        break;
      case 'type':
      case 'origin':
      case 'streamStop':
        break;
    }
  }

  /** Standby status update: write, flush and apply all at the acknowledged position. */
  private sendStatus(): void {
    if (this.streamEnded) return;
    this.lastStatusSent = Date.now();
    const message = Buffer.alloc(34);
    message[0] = STANDBY_STATUS_UPDATE;
    this.acknowledged.write(message, 1);
    this.acknowledged.write(message, 9);
    this.acknowledged.write(message, 17);
    message.writeBigInt64BE(toPostgresTimestamp(Date.now()), 25);
    message[33] = 0;
    try {
      this.connection.sendCopyFromChunk(message);
    } catch (error) {
      this.fail(classifyPostgresError(error, this.context));
    }
  }

  private fail(error: FerryError): void {
    if (this.failure !== null || this.closing !== null) return;
    this.failure = error;
    this.stopStatusTimer();
    this.wake();
  }

  private streamStopped(error: unknown): void {
    this.streamEnded = true;
    this.stopStatusTimer();
    if (this.paused) {
      this.paused = false;
      this.connection.stream.resume();
    }
    this.fail(
      error === null
        ? new FerryError('CONNECTION_LOST', 'The source ended the change stream; Ferry reconnects and continues from the last applied position.', { retryable: true })
        : classifyPostgresError(error, this.context),
    );
  }

  private stopStatusTimer(): void {
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.statusTimer = null;
  }

  private async stop(): Promise<void> {
    this.stopStatusTimer();
    this.pending = [];
    this.pendingBytes = 0;
    this.wake();
    if (!this.streamEnded) {
      try {
        // The last acknowledged position reaches the slot before the stream ends.
        this.sendStatus();
        this.connection.endCopyFrom();
        if (this.paused) {
          this.paused = false;
          this.connection.stream.resume();
        }
      } catch {
        // The socket is already gone: ending the client below is all that is left.
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.streaming, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    this.connection.removeListener('copyData', this.onCopyData);
    await endQuietly(this.client);
  }
}
