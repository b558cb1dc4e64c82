/**
 * RowChange as text, for the changes a parked table keeps on the destination
 * (`_ferry.parked_changes`). JSON, with one extension: a value the source did not send
 * (UNCHANGED, a TOASTed column) is written as the number 0, which no value can be (values are
 * text or null). Pure.
 */
import { FerryError } from '../core/errors.js';
import type { QualifiedName } from '../core/schema.js';
import { UNCHANGED, type ColumnValue, type RowChange } from '../engines/engine.js';

/** Bumped when the layout changes; a stored change of another version is refused, not guessed. */
const CODEC_VERSION = 1;

type StoredValue = string | null | 0;

const toStored = (values: ColumnValue[]): StoredValue[] => values.map((v) => (v === UNCHANGED ? 0 : v));

export function encodeRowChange(change: RowChange): string {
  switch (change.op) {
    case 'insert':
      return JSON.stringify({ v: CODEC_VERSION, op: 'insert', table: change.table, columns: change.columns, values: toStored(change.values) });
    case 'update':
      return JSON.stringify({
        v: CODEC_VERSION, op: 'update', table: change.table, columns: change.columns, values: toStored(change.values),
        oldColumns: change.oldColumns, oldValues: change.oldValues === null ? null : toStored(change.oldValues),
      });
    case 'delete':
      return JSON.stringify({ v: CODEC_VERSION, op: 'delete', table: change.table, oldColumns: change.oldColumns, oldValues: toStored(change.oldValues) });
    case 'truncate':
      return JSON.stringify({ v: CODEC_VERSION, op: 'truncate', tables: change.tables, cascade: change.cascade, restartIdentity: change.restartIdentity });
  }
}

/** The change `encodeRowChange` wrote; rejects anything else with INTERNAL (a damaged parked change). */
export function decodeRowChange(text: string): RowChange {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw damaged(text, 'not JSON', error);
  }
  if (raw === null || typeof raw !== 'object' || raw.v !== CODEC_VERSION) throw damaged(text, `version ${String((raw as { v?: unknown } | null)?.v)}, expected ${CODEC_VERSION}`);
  switch (raw.op) {
    case 'insert':
      return { op: 'insert', table: tableOf(raw.table, text), columns: namesOf(raw.columns, text), values: valuesOf(raw.values, text) };
    case 'update':
      return {
        op: 'update', table: tableOf(raw.table, text), columns: namesOf(raw.columns, text), values: valuesOf(raw.values, text),
        oldColumns: raw.oldColumns === null ? null : namesOf(raw.oldColumns, text),
        oldValues: raw.oldValues === null ? null : valuesOf(raw.oldValues, text),
      };
    case 'delete':
      return { op: 'delete', table: tableOf(raw.table, text), oldColumns: namesOf(raw.oldColumns, text), oldValues: valuesOf(raw.oldValues, text) };
    case 'truncate':
      if (!Array.isArray(raw.tables)) throw damaged(text, 'truncate without tables');
      return { op: 'truncate', tables: raw.tables.map((t) => tableOf(t, text)), cascade: raw.cascade === true, restartIdentity: raw.restartIdentity === true };
    default:
      throw damaged(text, `unknown operation ${String(raw.op)}`);
  }
}

function tableOf(value: unknown, text: string): QualifiedName {
  const t = value as { schema?: unknown; name?: unknown } | null;
  if (t === null || typeof t !== 'object' || typeof t.schema !== 'string' || typeof t.name !== 'string') throw damaged(text, 'no table');
  return { schema: t.schema, name: t.name };
}

function namesOf(value: unknown, text: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw damaged(text, 'column names are not text');
  return value as string[];
}

function valuesOf(value: unknown, text: string): ColumnValue[] {
  if (!Array.isArray(value)) throw damaged(text, 'values are not a list');
  return value.map((v): ColumnValue => {
    if (v === 0) return UNCHANGED;
    if (v === null || typeof v === 'string') return v;
    throw damaged(text, `value ${JSON.stringify(v)}`);
  });
}

function damaged(text: string, why: string, cause?: unknown): FerryError {
  return new FerryError('INTERNAL', `A parked change on the destination (_ferry.parked_changes) cannot be read (${why}): ${text.slice(0, 200)}. Restart the job to copy the table again.`, { cause });
}
