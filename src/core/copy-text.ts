/**
 * Ferry's interchange format between engines: PostgreSQL's text COPY format. One row per
 * line ending in `\n`, columns separated by a tab, `\N` for NULL, and backslash escapes for
 * the backslash, newline, carriage return and tab inside values.
 *
 * Writers here escape only those four characters: PostgreSQL's COPY FROM and MySQL's
 * `LOAD DATA ... FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'` both
 * read that subset the same way. The parser accepts everything PostgreSQL's COPY TO writes
 * (`\b`, `\f`, `\v`, octal and hex escapes too), which MySQL's LOAD DATA does not.
 */

const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPES = /[\\\n\r\t]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The text that stands for NULL in a field. */
export const COPY_NULL = '\\N';

/** Escapes one non-null value for a COPY text field: `a\tb` → `a\\tb`. */
export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPES, (c) => ESCAPED[c] ?? c) : value;
}

/** One row as a COPY text line, newline included: values escaped, null as `\N`. */
export function formatCopyRow(values: ReadonlyArray<string | null>): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) line += '\t';
    line += value === null || value === undefined ? COPY_NULL : escapeCopyText(value);
  }
  return `${line}\n`;
}

const BACKSLASH = 0x5c;
const TAB = 0x09;
const SIMPLE_ESCAPES: Record<number, number> = {
  0x62: 0x08, // \b
  0x66: 0x0c, // \f
  0x6e: 0x0a, // \n
  0x72: 0x0d, // \r
  0x74: 0x09, // \t
  0x76: 0x0b, // \v
};

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/** Undoes the escapes of one field (its bytes between tabs). */
function unescapeField(field: Buffer): Buffer {
  if (!field.includes(BACKSLASH)) return field;
  const out = Buffer.allocUnsafe(field.length);
  let o = 0;
  for (let i = 0; i < field.length; i++) {
    const byte = field[i] as number;
    if (byte !== BACKSLASH || i + 1 >= field.length) {
      out[o++] = byte;
      continue;
    }
    const next = field[++i] as number;
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out[o++] = simple;
    } else if (next >= 0x30 && next <= 0x37) {
      let value = next - 0x30;
      for (let n = 0; n < 2 && i + 1 < field.length && (field[i + 1] as number) >= 0x30 && (field[i + 1] as number) <= 0x37; n++) {
        value = value * 8 + ((field[++i] as number) - 0x30);
      }
      out[o++] = value & 0xff;
    } else if (next === 0x78 && i + 1 < field.length && hexDigit(field[i + 1] as number) >= 0) {
      let value = hexDigit(field[++i] as number);
      if (i + 1 < field.length && hexDigit(field[i + 1] as number) >= 0) value = value * 16 + hexDigit(field[++i] as number);
      out[o++] = value;
    } else {
      // Any other escaped character stands for itself (\\ included).
      out[o++] = next;
    }
  }
  return out.subarray(0, o);
}

/**
 * Splits one COPY text line (without its newline) into its fields, unescaped, as bytes;
 * `\N` is null. Works on bytes so that any encoding and binary-looking text pass unchanged.
 */
export function parseCopyLine(line: Buffer): Array<Buffer | null> {
  const fields: Array<Buffer | null> = [];
  let start = 0;
  for (;;) {
    let end = line.indexOf(TAB, start);
    // A tab right after a backslash is an escaped character, not a separator.
    while (end !== -1 && isEscaped(line, start, end)) end = line.indexOf(TAB, end + 1);
    const field = line.subarray(start, end === -1 ? line.length : end);
    fields.push(field.length === 2 && field[0] === BACKSLASH && field[1] === 0x4e ? null : unescapeField(field));
    if (end === -1) return fields;
    start = end + 1;
  }
}

/** True when the byte at `index` is preceded by an odd number of backslashes (after `start`). */
function isEscaped(line: Buffer, start: number, index: number): boolean {
  let count = 0;
  for (let i = index - 1; i >= start && line[i] === BACKSLASH; i--) count++;
  return count % 2 === 1;
}

/** Like parseCopyLine, for a line held as a string: fields decoded as UTF-8. */
export function parseCopyText(line: string): Array<string | null> {
  return parseCopyLine(Buffer.from(line, 'utf8')).map((field) => (field === null ? null : field.toString('utf8')));
}
