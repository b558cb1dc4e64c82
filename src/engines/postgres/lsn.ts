/**
 * A PostgreSQL log sequence number: a 64-bit byte position in the write-ahead log, the
 * source position of the PostgreSQL engine.
 *
 * PostgreSQL prints it as two hexadecimal halves, `16/B374D848`; some tools pad the halves
 * (`00000016/B374D848`). Both parse. `format()` prints the canonical form, as PostgreSQL
 * does: uppercase, no leading zeros in either half. Compare values, never strings: text
 * order is not log order.
 */
import { FerryError } from '../../core/errors.js';

const MAX = (1n << 64n) - 1n;
const TEXT_FORM = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export class Lsn {
  /** `0/0`: PostgreSQL's InvalidXLogRecPtr; in a standby status update it means "nothing confirmed". */
  static readonly ZERO = new Lsn(0n);

  private constructor(private readonly value: bigint) {}

  /** Parses `X/Y` with one to eight hexadecimal digits in each half. */
  static parse(text: string): Lsn {
    const match = TEXT_FORM.exec(text.trim());
    if (match === null) {
      throw new FerryError('INVALID_ARGUMENT', `"${text}" is not a PostgreSQL LSN; expected two hexadecimal halves such as 16/B374D848.`);
    }
    return new Lsn((BigInt(`0x${match[1] as string}`) << 32n) | BigInt(`0x${match[2] as string}`));
  }

  /** The LSN of a 64-bit unsigned value (as read from the replication protocol). */
  static fromBigInt(value: bigint): Lsn {
    if (value < 0n || value > MAX) {
      throw new FerryError('INVALID_ARGUMENT', `${value} is outside the range of a PostgreSQL LSN (0 to 2^64 - 1).`);
    }
    return value === 0n ? Lsn.ZERO : new Lsn(value);
  }

  /** Reads an unsigned 64-bit big-endian LSN at `offset`, as the replication protocol sends it. */
  static read(buffer: Buffer, offset: number): Lsn {
    return Lsn.fromBigInt(buffer.readBigUInt64BE(offset));
  }

  /** Negative, zero or positive as `a` is before, at or after `b`; accepts either text form. */
  static compareText(a: string, b: string): number {
    return Lsn.parse(a).compare(Lsn.parse(b));
  }

  /** Canonical text: `16/B374D848`, `0/0`. */
  format(): string {
    return `${(this.value >> 32n).toString(16).toUpperCase()}/${(this.value & 0xffffffffn).toString(16).toUpperCase()}`;
  }

  toString(): string {
    return this.format();
  }

  toJSON(): string {
    return this.format();
  }

  toBigInt(): bigint {
    return this.value;
  }

  /** Writes the LSN as an unsigned 64-bit big-endian integer at `offset`. */
  write(buffer: Buffer, offset: number): void {
    buffer.writeBigUInt64BE(this.value, offset);
  }

  compare(other: Lsn): number {
    return this.value < other.value ? -1 : this.value > other.value ? 1 : 0;
  }

  equals(other: Lsn): boolean {
    return this.value === other.value;
  }

  isAfter(other: Lsn): boolean {
    return this.value > other.value;
  }

  isZero(): boolean {
    return this.value === 0n;
  }

  /** Bytes of WAL from this LSN to `to` (negative when `to` is before it). */
  distance(to: Lsn): bigint {
    return to.value - this.value;
  }

  /** The later of two LSNs. */
  static max(a: Lsn, b: Lsn): Lsn {
    return a.value >= b.value ? a : b;
  }
}
