/**
 * Data validation, the pure part: the record of one validation of a job (per table: rows on
 * each side, an order-independent checksum of every compared value, the differing rows), and
 * how a value is put in the one form both sides are compared in (docs/validation.md).
 *
 * Values are compared in the canonical form of docs/type-mapping.md: both sides are read
 * through their engine's copyOut, which writes that form across engines (MySQL zero dates
 * already NULL, tinyint(1) as t/f, binary as \x hex, ...). What still differs in spelling for
 * equal values is folded here, chosen by the PostgreSQL side's column type: numbers by value
 * (`12.30` = `12.3`), booleans, timestamps and times without trailing fractional zeros or the
 * `+00` of UTC, fixed-width characters without trailing spaces, JSON by value, UUIDs in lower case.
 */

export const VALIDATION_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED'] as const;
export type ValidationStatus = (typeof VALIDATION_STATUSES)[number];

export const TABLE_VALIDATION_STATES = ['PENDING', 'RUNNING', 'EQUAL', 'DIFFERENT', 'ERROR'] as const;
export type TableValidationState = (typeof TABLE_VALIDATION_STATES)[number];

/** One row that differs, with both sides' values (column -> canonical text, null for NULL). */
export interface RowDifference {
  /** missing: on the source only; extra: on the destination only; changed: both, other values. */
  kind: 'missing' | 'extra' | 'changed';
  /** The primary key's values; null for a table without one (compared as a multiset). */
  key: Record<string, string | null> | null;
  source: Record<string, string | null> | null;
  destination: Record<string, string | null> | null;
}

export interface TableValidation {
  /** "schema.table" on the source. */
  table: string;
  /** "schema.table" on the destination (after the job's schema mapping). */
  destinationTable: string;
  state: TableValidationState;
  /** Whether rows are matched by primary key (false: compared as a multiset of rows). */
  keyed: boolean;
  /** Rows read so far on the source side (progress), then its row count. */
  sourceRows: number;
  destinationRows: number;
  /** Order-independent checksum of every compared value of every row, hex; null until read. */
  sourceChecksum: string | null;
  destinationChecksum: string | null;
  /** Rows both sides read in the first comparison, for progress: the planner's estimate of the source table. */
  estimatedRows: number;
  /** At most MAX_REPORTED_DIFFERENCES. */
  differences: RowDifference[];
  /** True when more rows differ than are listed. */
  differencesTruncated: boolean;
  /** Why the table is ERROR, or a note (columns that were compared by name, changes in flight that settled). */
  message: string | null;
}

export interface ValidationSummary {
  tables: number;
  tablesEqual: number;
  tablesDifferent: number;
  tablesFailed: number;
  rowsCompared: number;
}

export interface Validation {
  id: string;
  jobId: string;
  status: ValidationStatus;
  /** SUCCEEDED with every table EQUAL. Null while running. */
  clean: boolean | null;
  createTime: string;
  endTime: string | null;
  /** Who asked for it. */
  actor: string;
  /** Continuous job during its incremental load: differing rows were checked again once the load had passed them. */
  recheckedInFlight: boolean;
  summary: ValidationSummary;
  tables: TableValidation[];
  error: { code: string; message: string } | null;
}

/** Differing rows listed per table. */
export const MAX_REPORTED_DIFFERENCES = 20;

export function summarizeValidation(tables: TableValidation[]): ValidationSummary {
  return {
    tables: tables.length,
    tablesEqual: tables.filter((t) => t.state === 'EQUAL').length,
    tablesDifferent: tables.filter((t) => t.state === 'DIFFERENT').length,
    tablesFailed: tables.filter((t) => t.state === 'ERROR').length,
    rowsCompared: tables.reduce((sum, t) => sum + t.sourceRows + t.destinationRows, 0),
  };
}

/** One sentence for the job's history. */
export function describeValidation(validation: Validation): string {
  const s = validation.summary;
  if (validation.status === 'FAILED') return `Validation ${validation.id} failed: ${validation.error?.message ?? 'unknown error'}`;
  if (validation.clean === true) return `Validation ${validation.id}: all ${s.tables} tables equal (${s.rowsCompared} rows compared)`;
  const parts = [`${s.tablesEqual} of ${s.tables} tables equal`];
  if (s.tablesDifferent > 0) parts.push(`${s.tablesDifferent} differ (${validation.tables.filter((t) => t.state === 'DIFFERENT').map((t) => t.table).join(', ')})`);
  if (s.tablesFailed > 0) parts.push(`${s.tablesFailed} could not be compared`);
  return `Validation ${validation.id}: ${parts.join(', ')}`;
}

/** A number's value as `[-]digits e exponent` without leading or trailing zeros: equal for equal values however spelled. */
export function canonicalNumberText(text: string): string {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text);
  if (m === null) return text;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  let digits = `${intPart}${fracPart}`.replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = Number(m[4] ?? 0) - fracPart.length;
  const trailing = /0*$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return `${m[1] === '-' ? '-' : ''}${digits}e${exponent}`;
}

/** JSON by value: object keys sorted, numbers by value, no whitespace; the text itself when it does not parse. */
export function canonicalJsonText(text: string): string {
  const sortKeys = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
    }
    return value;
  };
  try {
    return JSON.stringify(sortKeys(JSON.parse(text)));
  } catch {
    return text;
  }
}

/** An IPv6 address (with or without a prefix) with all eight groups spelled out: MariaDB compresses a single zero group (`a::b`), PostgreSQL does not. */
export function canonicalInetText(text: string): string {
  const [address = '', prefix] = text.split('/');
  if (!address.includes(':')) return text;
  let groups = address.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(groups);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    groups = `${groups.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = groups.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const middle = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  const all = [...left, ...middle, ...right].map((g) => parseInt(g, 16).toString(16));
  return `${all.join(':')}${prefix === undefined ? '' : `/${prefix}`}`;
}

/** `12:00:00.500000+00` -> `12:00:00.5`: trailing fractional zeros and a UTC offset do not change a time. */
function canonicalTimeText(text: string): string {
  return text.replace(/([+-]00(:00)?)$/, '').replace(/(\.\d*?)0+(?=$|\s)/, '$1').replace(/\.(?=$|\s)/, '');
}

/**
 * The function that folds one value's spelling for comparison: identity between two servers of
 * the same engine (values are kept exactly), else chosen from the PostgreSQL side's column type.
 */
export function comparisonNormalizer(sameEngine: boolean, postgresType: string): (text: string) => string {
  if (sameEngine) return (text) => text;
  const type = postgresType.toLowerCase();
  if (type === 'boolean') return (text) => (text === 't' || text === 'true' || (text !== 'f' && text !== 'false' && Number(text) !== 0) ? 't' : 'f');
  // A float has several shortest spellings (4.1425958e+08 and 414259600 are the same float4): compare the stored value.
  if (type === 'real') return (text) => (/^[-+]?[\d.]+(e[-+]?\d+)?$/i.test(text) ? String(Math.fround(Number(text))) : text);
  if (type === 'double precision') return (text) => (/^[-+]?[\d.]+(e[-+]?\d+)?$/i.test(text) ? String(Number(text)) : text);
  if (/^(smallint|integer|bigint|numeric|decimal)\b/.test(type)) return canonicalNumberText;
  if (/^(timestamp|time|interval)\b/.test(type)) return canonicalTimeText;
  if (/^(character|char)\(/.test(type) || type === 'character' || type === 'bpchar') return (text) => text.replace(/ +$/, '');
  if (type === 'json' || type === 'jsonb') return canonicalJsonText;
  if (type === 'uuid') return (text) => text.toLowerCase();
  if (type === 'inet' || type === 'cidr') return canonicalInetText;
  return (text) => text;
}

/**
 * MurmurHash3 (x86, 32-bit) of bytes `start`..`end` of `bytes`. Rows are hashed twice with two
 * seeds (64 bits per row): fast in JavaScript, where a cryptographic hash per row costs more than
 * reading the row; validation guards against mistakes, not against an adversary.
 */
export function murmurHash32(bytes: Uint8Array, start: number, end: number, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    let k = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = end - i;
  if (rest > 0) {
    let k = bytes[i] as number;
    if (rest > 1) k |= (bytes[i + 1] as number) << 8;
    if (rest > 2) k |= (bytes[i + 2] as number) << 16;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
