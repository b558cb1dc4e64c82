/**
 * A `text[]` statement parameter in PostgreSQL's binary array format (array_send / array_recv):
 *
 *   int32 ndim (1), int32 has-nulls flag, int32 element type (25: text),
 *   int32 length and int32 lower bound (1) of the one dimension,
 *   then per element: int32 byte length (-1: NULL) and the UTF-8 bytes.
 *
 * The set-based statements of the change applier take one text[] per column over thousands of
 * rows. As text, every value is escaped into an array literal (`{"a","b\"c",NULL}`) and the
 * server parses it back with array_in; in binary each value is copied once and array_recv only
 * reads lengths. node-postgres sends a Buffer parameter with the binary format code, and the
 * server receives it with the receive function of the parameter's type, which the statement's
 * `$n::text[]` sets. Text in binary is its bytes, checked against the database encoding as a
 * text value would be (a NUL byte is refused as in text).
 */

const TEXT_OID = 25;
/** ndim, flags, element type, the dimension's length and lower bound. */
const HEADER_BYTES = 20;
/** Values up to this many characters are given room for 3 bytes each instead of being measured. */
const SHORT_VALUE = 1024;
/** A scratch buffer grown past this is dropped after use, so one wide statement does not keep its size. */
const KEEP_SCRATCH_BYTES = 1024 * 1024;

/** Values up to this many characters are copied in JavaScript when they are ASCII (most keys, numbers, flags): no call into C++ per value. */
const SHORT_ASCII = 128;

/** Node's Buffer.utf8Write: Buffer.write without its argument handling (present on every Buffer, undocumented). */
type Utf8WritingBuffer = Buffer & { utf8Write(value: string, offset: number): number };

let scratch = Buffer.allocUnsafe(64 * 1024) as Utf8WritingBuffer;

/** A big-endian int32 at `offset` of the scratch buffer (which has room for it), without writeInt32BE's checks. */
function int32(value: number, offset: number): void {
  scratch[offset] = value >>> 24;
  scratch[offset + 1] = value >>> 16;
  scratch[offset + 2] = value >>> 8;
  scratch[offset + 3] = value;
}

/** Writes `value` as UTF-8 at `offset` of the scratch buffer (which has room for it); returns the bytes written. */
function writeUtf8(value: string, offset: number): number {
  const length = value.length;
  if (length <= SHORT_ASCII) {
    let i = 0;
    for (; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) break;
      scratch[offset + i] = code;
    }
    if (i === length) return length;
  }
  return scratch.utf8Write(value, offset);
}

function ensure(bytes: number): void {
  if (bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2)) as Utf8WritingBuffer;
  scratch.copy(grown);
  scratch = grown;
}

/**
 * The binary form of the text[] whose `count` elements are valueAt(0) ... valueAt(count - 1)
 * (null or undefined: NULL). A fresh Buffer, safe to keep until the statement is sent.
 */
export function binaryTextArray(count: number, valueAt: (index: number) => string | null | undefined): Buffer {
  ensure(HEADER_BYTES + 4 * count);
  let offset = HEADER_BYTES;
  let hasNull = 0;
  // The last value written and where its bytes are: a column often repeats one value (often the
  // very same string, which the pgoutput decoder shares), whose bytes are then copied over.
  let last: string | null = null;
  let lastStart = 0;
  let lastBytes = 0;
  for (let i = 0; i < count; i++) {
    const value = valueAt(i);
    if (value === null || value === undefined) {
      ensure(offset + 4);
      int32(-1, offset);
      offset += 4;
      hasNull = 1;
      continue;
    }
    // UTF-16 to UTF-8 is at most 3 bytes per code unit: short values get that room unmeasured.
    ensure(offset + 4 + (value.length <= SHORT_VALUE ? 3 * value.length : Buffer.byteLength(value, 'utf8')));
    let written: number;
    if (value === last) {
      written = lastBytes;
      scratch.copyWithin(offset + 4, lastStart, lastStart + lastBytes);
    } else {
      written = writeUtf8(value, offset + 4);
      last = value;
      lastStart = offset + 4;
      lastBytes = written;
    }
    int32(written, offset);
    offset += 4 + written;
  }
  if (count === 0) {
    // An empty array has no dimensions.
    scratch.writeInt32BE(0, 0);
    scratch.writeInt32BE(0, 4);
    scratch.writeInt32BE(TEXT_OID, 8);
    offset = 12;
  } else {
    scratch.writeInt32BE(1, 0);
    scratch.writeInt32BE(hasNull, 4);
    scratch.writeInt32BE(TEXT_OID, 8);
    scratch.writeInt32BE(count, 12);
    scratch.writeInt32BE(1, 16);
  }
  const out = Buffer.allocUnsafe(offset);
  scratch.copy(out, 0, 0, offset);
  if (scratch.length > KEEP_SCRATCH_BYTES) scratch = Buffer.allocUnsafe(64 * 1024) as Utf8WritingBuffer;
  return out;
}
