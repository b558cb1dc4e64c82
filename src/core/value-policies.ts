/**
 * Values one engine holds and the other cannot (docs/type-mapping.md, "Values one engine
 * accepts and the other does not"): what a reader does with each under the job's policies,
 * the warnings it records for values it changed, and the errors that refuse a value, naming
 * the table, the column, the row's key and the fix. Pure: no I/O.
 */
import { FerryError } from './errors.js';
import type { EnumErrorValuePolicy, NulCharacterPolicy, ZeroDatePolicy } from './migration-job.js';
import type { TableSchema } from './schema.js';

/** The per-job policies a source applies to values bound for another engine. */
export interface ValuePolicies {
  zeroDates: ZeroDatePolicy;
  enumErrorValue: EnumErrorValuePolicy;
  nulCharacter: NulCharacterPolicy;
}

export const DEFAULT_VALUE_POLICIES: ValuePolicies = { zeroDates: 'null', enumErrorValue: 'label', nulCharacter: 'refuse' };

/** The policies of a job's options, defaults filled in. */
export function valuePoliciesOf(options: { zeroDatePolicy?: ZeroDatePolicy; enumErrorValuePolicy?: EnumErrorValuePolicy; nulCharacterPolicy?: NulCharacterPolicy }): ValuePolicies {
  return {
    zeroDates: options.zeroDatePolicy ?? DEFAULT_VALUE_POLICIES.zeroDates,
    enumErrorValue: options.enumErrorValuePolicy ?? DEFAULT_VALUE_POLICIES.enumErrorValue,
    nulCharacter: options.nulCharacterPolicy ?? DEFAULT_VALUE_POLICIES.nulCharacter,
  };
}

/** A kind of value a reader changed to fit the destination. */
export type ChangedValueKind = 'zero-date' | 'enum-error-value' | 'nul-character';

const SENTENCES: Record<ChangedValueKind, (n: number) => string> = {
  'zero-date': (n) => `${n} zero or invalid date${n === 1 ? '' : 's'} (e.g. '0000-00-00') written as NULL, because the destination has no such date (zeroDatePolicy "null").`,
  'enum-error-value': (n) => `${n} ENUM error value${n === 1 ? '' : 's'} ('', stored by a non-strict sql_mode for an invalid label) written as NULL (enumErrorValuePolicy "null").`,
  'nul-character': (n) => `NUL characters removed from ${n} value${n === 1 ? '' : 's'}, because PostgreSQL text cannot hold them (nulCharacterPolicy "strip").`,
};

/** Counts the values a reader changed, per column and kind, until the pipeline takes the warnings. */
export class ChangedValues {
  private readonly counts = new Map<string, { column: string; kind: ChangedValueKind; n: number }>();

  add(column: string, kind: ChangedValueKind): void {
    const key = `${kind}\u0000${column}`;
    const entry = this.counts.get(key);
    if (entry === undefined) this.counts.set(key, { column, kind, n: 1 });
    else entry.n++;
  }

  /** The counts of one kind by column. */
  countsOf(kind: ChangedValueKind): Map<string, number> {
    return new Map([...this.counts.values()].filter((e) => e.kind === kind).map((e) => [e.column, e.n]));
  }

  /** One sentence per column and kind, naming the column (`db.table.column`); clears the counts. */
  take(): string[] {
    const warnings = [...this.counts.values()].map((e) => `${e.column}: ${SENTENCES[e.kind](e.n)}`);
    this.counts.clear();
    return warnings;
  }
}

/** The columns that name a row in messages: the primary key, else the first unique key, else none. */
export function keyColumnsOf(table: Pick<TableSchema, 'primaryKey' | 'uniqueConstraints'>): string[] {
  return table.primaryKey?.columns ?? table.uniqueConstraints[0]?.columns ?? [];
}

/** `id=5, code='a'` for messages; values cut at 100 characters. */
export function describeRowKey(columns: string[], values: Array<string | null>): string {
  if (columns.length === 0) return 'a row of a table without a primary or unique key';
  return columns
    .map((c, i) => {
      const v = values[i];
      if (v === null || v === undefined) return `${c}=NULL`;
      const text = v.length > 100 ? `${v.slice(0, 100)}...` : v;
      return /^-?\d+(\.\d+)?$/.test(text) ? `${c}=${text}` : `${c}='${text.replace(/\u0000/g, '\\0').replace(/'/g, "''")}'`;
    })
    .join(', ');
}

/** Thrown by a value converter that refuses a NUL character; the reader adds the row's key. */
export class NulCharacterFound extends Error {
  constructor(readonly column: string) {
    super(`${column} holds a NUL character`);
  }
}

/** The job's nulCharacterPolicy said 'refuse' and `column` of the row `key` holds a NUL character. */
export function nulCharacterRefused(table: string, column: string, key: string): FerryError {
  return new FerryError(
    'DATA_ERROR',
    `Table ${table}, column ${column}, row ${key}: the text holds a NUL character (\\0), which PostgreSQL text cannot store, and the job's nulCharacterPolicy is "refuse". Remove the NUL characters on the source (e.g. UPDATE ... SET ${column} = REPLACE(${column}, CHAR(0), '')), or create a new job with nulCharacterPolicy "strip" (--nul-character-policy strip) to remove them with a warning, then start it.`,
    { details: { table, column, key } },
  );
}

/** A NUL character in UTF-8 bytes (it never occurs inside a multi-byte character). */
export function hasNulByte(bytes: Buffer): boolean {
  return bytes.indexOf(0) !== -1;
}

/** The bytes without their NUL characters. */
export function stripNulBytes(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b !== 0) out[o++] = b;
  }
  return out.subarray(0, o);
}
