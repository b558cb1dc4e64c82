/**
 * Where a binlog stream starts on the server a profile points at now: at the stored binlog
 * file and offset when they are this server's, or by GTID when they are not (the job's source
 * failed over to a replica, whose binlog files are its own) or the file is gone.
 *
 * MariaDB: the server's identity is its server_id. The stored position is this server's when
 * it names the same server (or none, for positions stored before servers were recorded) and
 * `BINLOG_GTID_POS(file, offset)` gives the GTID state the position carries: so a server that
 * merely reuses the server id and the binlog file names is not taken for the one the job
 * read. Otherwise the stream connects by GTID (`@slave_connect_state`), after checking that
 * the server's history holds the stored state: for every replication domain, the server
 * binlogged the stored transaction of the stored server or a later one of it
 * (`@@gtid_binlog_state`). A server that lacks them cannot feed the job exactly: a replica
 * promoted before it received everything the job applied, or another history altogether.
 *
 * MySQL (not tested here: no MySQL server runs on the test machine): the identity is
 * server_uuid; the stored file is this server's when the uuid matches and SHOW BINARY LOGS
 * lists the file; otherwise COM_BINLOG_DUMP_GTID with the stored executed set, after
 * GTID_SUBSET checks that the server executed all of it and purged none of what follows.
 */
import { FerryError } from '../../core/errors.js';
import { BinlogPosition, isMysqlGtidSet, mariadbSequences, sameGtidState } from './binlog-position.js';
import type { MysqlConnection } from './mysql-connection.js';

export type MysqlFlavorName = 'mariadb' | 'mysql';

export interface ServerIdentity {
  flavor: MysqlFlavorName;
  /** What positions record: MariaDB's server_id, MySQL's server_uuid. */
  id: string;
  /** e.g. "MariaDB server_id 2" */
  description: string;
}

export interface StreamStart {
  identity: ServerIdentity;
  /** 'position': COM_BINLOG_DUMP at `position`'s file and offset; 'gtid': by `position.gtid`. */
  mode: 'position' | 'gtid';
  /**
   * The start: in 'position' mode this server's, with its GTID state when known; in 'gtid'
   * mode the stored position as is (the server it names is another).
   */
  position: BinlogPosition;
}

type Row = Record<string, unknown>;

async function rowOf(connection: MysqlConnection, sql: string, values: unknown[] = []): Promise<Row> {
  const [rows] = await connection.query(sql, values);
  return (rows as Row[])[0] ?? {};
}

/** The server's flavor and identity (one query on MariaDB, two on MySQL). */
export async function readServerIdentity(connection: MysqlConnection): Promise<ServerIdentity> {
  const row = await rowOf(connection, 'SELECT @@GLOBAL.server_id AS id, VERSION() AS version');
  if (/mariadb/i.test(String(row.version ?? ''))) {
    return { flavor: 'mariadb', id: String(row.id), description: `MariaDB server_id ${String(row.id)}` };
  }
  const uuid = String((await rowOf(connection, 'SELECT @@GLOBAL.server_uuid AS uuid')).uuid ?? '').toLowerCase();
  return { flavor: 'mysql', id: uuid, description: `MySQL server_uuid ${uuid}` };
}

/** Decides how a stream from `stored` starts on the server of `connection`; throws REPLICATION_SLOT_LOST when it cannot. */
export async function resolveStreamStart(connection: MysqlConnection, stored: BinlogPosition): Promise<StreamStart> {
  const identity = await readServerIdentity(connection);
  const sameServer = stored.server === null || stored.server === identity.id;
  if (sameServer) {
    const here = identity.flavor === 'mariadb' ? await mariadbStateAt(connection, stored) : await mysqlHasPosition(connection, stored);
    if (here !== undefined) return { identity, mode: 'position', position: stored.with({ gtid: stored.gtid ?? here, server: identity.id }) };
  }
  const where = `${identity.description}`;
  if (stored.gtid === null) {
    throw new FerryError(
      'REPLICATION_SLOT_LOST',
      `The saved binlog position ${stored.format()} is not in the binlog of the source (${where}${sameServer ? ': its binlogs were purged' : `, not the server ${stored.server} the position was read from`}), and it carries no GTID state to find the same point by. The changes since then cannot be read, so this job cannot continue: Restart it to take a new full dump.`,
      { details: { position: stored.format(), server: identity.id, reason: sameServer ? 'purged' : 'no-gtid' } },
    );
  }
  if (identity.flavor === 'mariadb') await requireMariadbHistory(connection, stored, identity);
  else await requireMysqlHistory(connection, stored, identity);
  return { identity, mode: 'gtid', position: stored };
}

/**
 * The GTID state at the stored file and offset on this MariaDB server when the position is
 * there and, if it carries one, with the same state; undefined when it is not. A server that
 * refuses BINLOG_GTID_POS (privileges) is asked whether the file exists instead.
 */
async function mariadbStateAt(connection: MysqlConnection, stored: BinlogPosition): Promise<string | null | undefined> {
  let state: unknown;
  try {
    state = (await rowOf(connection, 'SELECT BINLOG_GTID_POS(?, ?) AS state', [stored.file, stored.offset])).state;
  } catch {
    return (await binlogFileHolds(connection, stored)) ? stored.gtid : undefined;
  }
  if (state === null || state === undefined) return undefined;
  const text = String(state);
  if (stored.gtid !== null && !sameGtidState(text, stored.gtid)) return undefined;
  return text;
}

async function mysqlHasPosition(connection: MysqlConnection, stored: BinlogPosition): Promise<string | null | undefined> {
  return (await binlogFileHolds(connection, stored)) ? stored.gtid : undefined;
}

async function binlogFileHolds(connection: MysqlConnection, stored: BinlogPosition): Promise<boolean> {
  const [rows] = await connection.query('SHOW BINARY LOGS');
  return (rows as Row[]).some((r) => String(r.Log_name) === stored.file && Number(r.File_size) >= stored.offset);
}

function historyMismatch(stored: BinlogPosition, identity: ServerIdentity, why: string, details: Record<string, unknown>): FerryError {
  return new FerryError(
    'REPLICATION_SLOT_LOST',
    `The source (${identity.description}) does not have the history this job applied up to GTID ${stored.gtid} (read from server ${stored.server ?? 'unknown'}): ${why}. The job cannot resume exactly from this server: Restart it to take a new full dump from this server. (To follow a failover, a job needs the new source to be a replica that received every transaction the job applied and wrote it to its binlog.)`,
    { details: { position: stored.format(), server: identity.id, reason: 'history', ...details } },
  );
}

async function requireMariadbHistory(connection: MysqlConnection, stored: BinlogPosition, identity: ServerIdentity): Promise<void> {
  const wanted = isMysqlGtidSet(stored.gtid as string) ? null : mariadbSequences(stored.gtid as string);
  if (wanted === null) throw historyMismatch(stored, identity, 'the position carries a MySQL GTID set, and this is a MariaDB server', {});
  const row = await rowOf(connection, 'SELECT @@GLOBAL.gtid_binlog_state AS state, @@GLOBAL.gtid_slave_pos AS replicaPos, @@GLOBAL.log_slave_updates AS logReplicaUpdates');
  const state = String(row.state ?? '');
  // The binlog state keeps the last transaction of every (domain, server) pair.
  const binlogged = new Map<string, bigint>();
  for (const entry of state.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const [domain, server, seq] = entry.split('-');
    binlogged.set(`${domain}-${server}`, BigInt(seq as string));
  }
  const replicaApplied = mariadbSequences(String(row.replicaPos ?? '')) ?? new Map();
  for (const [domain, last] of wanted) {
    const have = binlogged.get(`${domain}-${last.server}`);
    if (have !== undefined && have >= last.seq) continue;
    const gtid = `${domain}-${last.server}-${last.seq}`;
    const applied = replicaApplied.get(domain);
    const details = { gtidBinlogState: state, missing: gtid };
    if (have === undefined && applied !== undefined && applied.server === last.server && applied.seq >= last.seq) {
      throw historyMismatch(stored, identity, `it applied ${gtid} as a replica but did not write it to its own binlog (log_slave_updates is ${String(row.logReplicaUpdates)}); a replica that may be promoted needs log_slave_updates = ON`, details);
    }
    throw historyMismatch(
      stored,
      identity,
      have === undefined
        ? `its binlog has no transaction of server ${last.server} in replication domain ${domain} (gtid_binlog_state ${state || 'empty'}), so it is not a replica of the server the job read`
        : `its binlog holds server ${last.server}'s transactions in domain ${domain} only up to ${domain}-${last.server}-${have}, but the destination already has ${gtid}: the server was promoted before it received every transaction the job applied`,
      details,
    );
  }
}

async function requireMysqlHistory(connection: MysqlConnection, stored: BinlogPosition, identity: ServerIdentity): Promise<void> {
  if (!isMysqlGtidSet(stored.gtid as string) && stored.gtid !== '') throw historyMismatch(stored, identity, 'the position carries a MariaDB GTID position, and this is a MySQL server', {});
  const row = await rowOf(
    connection,
    'SELECT @@GLOBAL.gtid_mode AS mode, GTID_SUBSET(?, @@GLOBAL.gtid_executed) AS held, GTID_SUBSET(@@GLOBAL.gtid_purged, ?) AS available, @@GLOBAL.gtid_executed AS executed',
    [stored.gtid, stored.gtid],
  );
  if (String(row.mode).toUpperCase() !== 'ON') {
    throw historyMismatch(stored, identity, `gtid_mode is ${String(row.mode)}, so the server cannot stream by GTID (set gtid_mode = ON and enforce_gtid_consistency = ON)`, {});
  }
  if (Number(row.held) !== 1) throw historyMismatch(stored, identity, `its gtid_executed (${String(row.executed)}) does not contain every transaction the destination already has`, {});
  if (Number(row.available) !== 1) {
    throw new FerryError(
      'REPLICATION_SLOT_LOST',
      `The source (${identity.description}) has purged binlogs with transactions after GTID set ${stored.gtid} that this job has not applied. Restart the job to take a new full dump; to avoid this, keep binlogs longer (binlog_expire_logs_seconds) than a job may be stopped or behind.`,
      { details: { position: stored.format(), server: identity.id, reason: 'purged' } },
    );
  }
}
