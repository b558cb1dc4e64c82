/**
 * A MySQL/MariaDB binary log position: the binlog file and the offset in it, plus the GTID
 * state there (MariaDB: the GTID position, `domain-server-seq` per domain; MySQL: the executed
 * GTID set) and the identity of the server whose binlog the file and offset are in (MariaDB:
 * its server_id; MySQL: its server_uuid).
 *
 * Text form: `file:offset[#gtid][@server]`, e.g. "mysql-bin.000042:1234",
 * "mysql-bin.000042:1234#0-1-567" or "mysql-bin.000042:1234#0-1-567@1". `#` with nothing
 * after it is a known empty GTID state (a server that has not written a GTID yet); no `#` is
 * an unknown one. Positions stored by earlier versions have no `@server` (or no GTID) and
 * still parse.
 *
 * Order (compare): within one server by file (numeric suffix) and offset, which is exact.
 * Across two servers (a job moved to a replica promoted after a failover) a file and offset
 * mean nothing: positions are ordered by their GTID state, per replication domain by sequence
 * number (MariaDB), or by the number of transactions in the set (MySQL; within one history a
 * later set holds every transaction of an earlier one).
 */
import { FerryError } from '../../core/errors.js';

const SERVER_SUFFIX = /@([0-9A-Za-z-]+)$/;

export class BinlogPosition {
  constructor(
    readonly file: string,
    readonly offset: number,
    /** The GTID state at this position; '' when the server had none yet, null when unknown. */
    readonly gtid: string | null = null,
    /** The server whose binlog this is, null when unknown (positions stored before servers were recorded). */
    readonly server: string | null = null,
  ) {}

  static parse(text: string): BinlogPosition {
    const suffix = SERVER_SUFFIX.exec(text);
    const body = suffix === null ? text : text.slice(0, suffix.index);
    const hash = body.indexOf('#');
    const main = hash === -1 ? body : body.slice(0, hash);
    const gtid = hash === -1 ? null : body.slice(hash + 1);
    const colon = main.lastIndexOf(':');
    const offsetText = main.slice(colon + 1);
    const offset = Number(offsetText);
    if (colon <= 0 || !/^\d+$/.test(offsetText) || !Number.isSafeInteger(offset)) {
      throw new FerryError('INVALID_ARGUMENT', `"${text}" is not a binlog position; expected "<binlog file>:<offset>", e.g. "mysql-bin.000042:1234".`);
    }
    return new BinlogPosition(main.slice(0, colon), offset, gtid, suffix === null ? null : (suffix[1] as string));
  }

  format(): string {
    return `${this.file}:${this.offset}${this.gtid === null ? '' : `#${this.gtid}`}${this.server === null ? '' : `@${this.server}`}`;
  }

  /** This position with another GTID state or server. */
  with(changes: { gtid?: string | null; server?: string | null }): BinlogPosition {
    return new BinlogPosition(this.file, this.offset, changes.gtid === undefined ? this.gtid : changes.gtid, changes.server === undefined ? this.server : changes.server);
  }

  /** The numeric suffix of the file name ("mysql-bin.000042" -> 42). */
  get sequence(): number {
    const match = /\.(\d+)$/.exec(this.file);
    return match ? Number(match[1]) : 0;
  }

  /** True when both are known to be in the binlogs of two different servers. */
  onOtherServerThan(other: BinlogPosition): boolean {
    return this.server !== null && other.server !== null && this.server !== other.server;
  }

  /**
   * Negative, zero or positive as this is before, at or after other. Positions of two servers
   * are ordered by GTID (equal states are the same point of the history: zero); a position
   * whose server is unknown is ordered by GTID when the states differ, else by file and
   * offset. Throws when two servers' positions carry no GTID to order them by.
   */
  compare(other: BinlogPosition): number {
    const twoServers = this.onOtherServerThan(other);
    if (this.server !== other.server && this.gtid !== null && other.gtid !== null) {
      const byGtid = compareGtidStates(this.gtid, other.gtid);
      if (byGtid !== 0 || twoServers) return byGtid;
    }
    if (twoServers) {
      throw new FerryError(
        'REPLICATION_SLOT_LOST',
        `The binlog positions ${this.format()} and ${other.format()} are on two different source servers and carry no GTID state to order them by, so Ferry cannot tell which changes the destination already holds. Restart the job to take a new full dump from the current source.`,
        { details: { positions: [this.format(), other.format()] } },
      );
    }
    return this.sequence - other.sequence || this.offset - other.offset;
  }

  /** Bytes between the two positions when in the same file of the same server; null otherwise (sizes unknown here). */
  distanceTo(later: BinlogPosition): number | null {
    return this.file === later.file && !this.onOtherServerThan(later) ? later.offset - this.offset : null;
  }
}

/** True for a MySQL GTID set ('uuid:1-5,...'), false for a MariaDB GTID position ('0-1-5,...'). */
export function isMysqlGtidSet(text: string): boolean {
  return text.includes(':');
}

/**
 * MariaDB GTID position text as sequence numbers by domain ('0-1-5,1-2-7' -> {0: 5n, 1: 7n});
 * null when the text is not one.
 */
export function mariadbSequences(text: string): Map<number, { server: number; seq: bigint }> | null {
  const domains = new Map<number, { server: number; seq: bigint }>();
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const match = /^(\d+)-(\d+)-(\d+)$/.exec(entry);
    if (match === null) return null;
    domains.set(Number(match[1]), { server: Number(match[2]), seq: BigInt(match[3] as string) });
  }
  return domains;
}

/** The number of transactions in a MySQL GTID set ('uuid:1-5:7,uuid2:1-3' -> 9n); null when the text is not one. */
export function mysqlGtidCount(text: string): bigint | null {
  let count = 0n;
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const parts = entry.split(':').slice(1);
    if (parts.length === 0) return null;
    for (const part of parts) {
      if (/^[a-z_][a-z0-9_]*$/i.test(part)) continue; // a tag (MySQL 8.3+) names the intervals after it
      const bounds = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (bounds === null) return null;
      const start = BigInt(bounds[1] as string);
      const end = bounds[2] === undefined ? start : BigInt(bounds[2]);
      count += end - start + 1n;
    }
  }
  return count;
}

/**
 * Orders two GTID states of one history: MariaDB per domain by sequence number (a domain
 * missing from one side counts as before its first transaction; when domains disagree, the
 * first domain that differs decides), MySQL by the number of transactions in the set.
 */
export function compareGtidStates(a: string, b: string): number {
  if (a === b) return 0;
  if (isMysqlGtidSet(a) || isMysqlGtidSet(b)) {
    const countA = mysqlGtidCount(a);
    const countB = mysqlGtidCount(b);
    if (countA === null || countB === null) return 0;
    return countA === countB ? 0 : countA < countB ? -1 : 1;
  }
  const left = mariadbSequences(a);
  const right = mariadbSequences(b);
  if (left === null || right === null) return 0;
  const domains = [...new Set([...left.keys(), ...right.keys()])].sort((x, y) => x - y);
  for (const domain of domains) {
    const x = left.get(domain)?.seq ?? -1n;
    const y = right.get(domain)?.seq ?? -1n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** True when two MariaDB GTID positions name the same last transaction in every domain. */
export function sameGtidState(a: string, b: string): boolean {
  if (isMysqlGtidSet(a) || isMysqlGtidSet(b)) return a.replace(/\s/g, '').toLowerCase() === b.replace(/\s/g, '').toLowerCase();
  const left = mariadbSequences(a);
  const right = mariadbSequences(b);
  if (left === null || right === null || left.size !== right.size) return false;
  for (const [domain, last] of left) {
    const other = right.get(domain);
    if (other === undefined || other.server !== last.server || other.seq !== last.seq) return false;
  }
  return true;
}
