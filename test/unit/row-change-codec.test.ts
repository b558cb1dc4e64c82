/**
 * The text form of RowChange that parked tables keep on the destination (row-change-codec.ts),
 * and how a failing change is named (describeKey).
 */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { UNCHANGED, type RowChange } from '../../src/engines/engine.js';
import { describeKey } from '../../src/pipeline/parked-changes.js';
import { decodeRowChange, encodeRowChange } from '../../src/pipeline/row-change-codec.js';

const table = { schema: 'app', name: 'orders' };

const CHANGES: RowChange[] = [
  { op: 'insert', table, columns: ['id', 'note', 'payload'], values: ['1', null, 'tab\there "quoted" \\N é 😀'] },
  { op: 'update', table, columns: ['id', 'note', 'big'], values: ['2', '0', UNCHANGED], oldColumns: null, oldValues: null },
  { op: 'update', table, columns: ['id', 'note'], values: ['3', ''], oldColumns: ['id', 'note'], oldValues: ['4', UNCHANGED] },
  { op: 'delete', table, oldColumns: ['id'], oldValues: ['5'] },
  { op: 'truncate', tables: [table, { schema: 'app', name: 'lines' }], cascade: true, restartIdentity: false },
];

describe('RowChange codec', () => {
  it.each(CHANGES.map((c) => [c.op, c] as const))('round-trips %s exactly, UNCHANGED and NULL included', (_op, change) => {
    const text = encodeRowChange(change);
    expect(typeof text).toBe('string');
    expect(decodeRowChange(text)).toEqual(change);
  });

  it('keeps the text "0" apart from UNCHANGED', () => {
    const decoded = decodeRowChange(encodeRowChange(CHANGES[1] as RowChange)) as Extract<RowChange, { op: 'update' }>;
    expect(decoded.values[1]).toBe('0');
    expect(decoded.values[2]).toBe(UNCHANGED);
  });

  it.each([
    ['not JSON', '{'],
    ['another version', JSON.stringify({ v: 99, op: 'delete', table, oldColumns: ['id'], oldValues: ['1'] })],
    ['an unknown operation', JSON.stringify({ v: 1, op: 'merge', table })],
    ['a value that is neither text, NULL nor UNCHANGED', JSON.stringify({ v: 1, op: 'insert', table, columns: ['id'], values: [7] })],
    ['no table', JSON.stringify({ v: 1, op: 'insert', columns: ['id'], values: ['1'] })],
  ])('refuses %s with a message that says what to do', (_what, text) => {
    let caught: unknown = null;
    try {
      decodeRowChange(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FerryError);
    expect((caught as FerryError).message).toMatch(/_ferry\.parked_changes.*Restart the job/);
  });
});

describe('describeKey', () => {
  it('names the key of an insert, the old key of an update that moved the row, and a delete', () => {
    expect(describeKey(CHANGES[0] as RowChange, ['id'])).toBe('insert id=1');
    expect(describeKey(CHANGES[2] as RowChange, ['id'])).toBe('update id=4');
    expect(describeKey(CHANGES[3] as RowChange, ['id'])).toBe('delete id=5');
  });

  it('shows NULL, cuts long values, and falls back to the first columns without a key', () => {
    expect(describeKey({ op: 'insert', table, columns: ['a', 'b'], values: [null, 'x'.repeat(100)] }, ['a', 'b'])).toBe(`insert a=NULL, b=${'x'.repeat(60)}...`);
    expect(describeKey({ op: 'insert', table, columns: ['a', 'b', 'c', 'd'], values: ['1', '2', '3', '4'] }, [])).toBe('insert a=1, b=2, c=3');
    expect(describeKey(CHANGES[4] as RowChange, ['id'])).toBe('TRUNCATE of app.orders, app.lines');
  });
});
