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

let scratch = Buffer.allocUnsafe(64 * 1024);

function ensure(bytes: number): void {
  if (bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2));
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
  for (let i = 0; i < count; i++) {
    const value = valueAt(i);
    if (value === null || value === undefined) {
      ensure(offset + 4);
      scratch.writeInt32BE(-1, offset);
      offset += 4;
      hasNull = 1;
      continue;
    }
    // UTF-16 to UTF-8 is at most 3 bytes per code unit: short values get that room unmeasured.
    ensure(offset + 4 + (value.length <= SHORT_VALUE ? 3 * value.length : Buffer.byteLength(value, 'utf8')));
    const written = scratch.write(value, offset + 4, 'utf8');
    scratch.writeInt32BE(written, offset);
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
  if (scratch.length > KEEP_SCRATCH_BYTES) scratch = Buffer.allocUnsafe(64 * 1024);
  return out;
}
