/**
 * A MySQL/MariaDB binary log position: the binlog file and the offset in it, plus the GTID
 * set (MySQL) or GTID position (MariaDB) when the server has GTIDs. Text form:
 * "mysql-bin.000042:1234" or "mysql-bin.000042:1234#0-1-567" (GTID after '#').
 * Files of one server sort by their numeric suffix.
 */
import { FerryError } from '../../core/errors.js';

export class BinlogPosition {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly gtid: string | null = null,
  ) {}

  static parse(text: string): BinlogPosition {
    const hash = text.indexOf('#');
    const main = hash === -1 ? text : text.slice(0, hash);
    const gtid = hash === -1 ? null : text.slice(hash + 1) || null;
    const colon = main.lastIndexOf(':');
    const offset = Number(main.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(offset) || offset < 0) {
      throw new FerryError('INVALID_ARGUMENT', `"${text}" is not a binlog position; expected "<binlog file>:<offset>", e.g. "mysql-bin.000042:1234".`);
    }
    return new BinlogPosition(main.slice(0, colon), offset, gtid);
  }

  format(): string {
    return `${this.file}:${this.offset}${this.gtid ? `#${this.gtid}` : ''}`;
  }

  /** The numeric suffix of the file name ("mysql-bin.000042" -> 42). */
  get sequence(): number {
    const match = /\.(\d+)$/.exec(this.file);
    return match ? Number(match[1]) : 0;
  }

  /** Negative, zero or positive as this is before, at or after other (GTIDs are not compared). */
  compare(other: BinlogPosition): number {
    return this.sequence - other.sequence || this.offset - other.offset;
  }

  /** Bytes between the two positions when in the same file; null across files (sizes unknown here). */
  distanceTo(later: BinlogPosition): number | null {
    return this.file === later.file ? later.offset - this.offset : null;
  }
}
