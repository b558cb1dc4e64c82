import { describe, expect, it } from 'vitest';
import { orderedTableGroups, planChangeBatch, type PlanTable } from '../../src/pipeline/change-batch-plan.js';
import { UNCHANGED, type ColumnValue, type RowChange } from '../../src/engines/engine.js';
import type { ForeignKeySchema, QualifiedName, TableSchema } from '../../src/core/schema.js';

const T = (name: string): QualifiedName => ({ schema: 's', name });
const COLS = ['id', 'v', 'big'];
const ins = (table: string, id: string, v: string, big: ColumnValue = 'b'): RowChange => ({ op: 'insert', table: T(table), columns: COLS, values: [id, v, big] });
const upd = (table: string, id: string, v: string, big: ColumnValue = UNCHANGED, oldId: string | null = null): RowChange => ({
  op: 'update', table: T(table), columns: COLS, values: [id, v, big], oldColumns: oldId === null ? null : ['id'], oldValues: oldId === null ? null : [oldId],
});
const del = (table: string, id: string): RowChange => ({ op: 'delete', table: T(table), oldColumns: ['id'], oldValues: [id] });
const keyed: PlanTable = { keyColumns: ['id'], otherUnique: false, writableColumns: COLS };
const plan = (changes: RowChange[], tables: Record<string, PlanTable> = {}, orderedGroups: QualifiedName[][] = []) =>
  planChangeBatch(changes, { table: (t) => tables[t.name] ?? keyed, orderedGroups });
/** A compact view: op:table:key[:values]. */
const show = (changes: RowChange[]) =>
  changes.map((c) => {
    if (c.op === 'truncate') return `truncate:${c.tables.map((t) => t.name).join(',')}`;
    if (c.op === 'delete') return `delete:${c.table.name}:${c.oldValues[0] as string}`;
    const values = c.values.map((v) => (v === UNCHANGED ? '~' : String(v))).join(',');
    return `${c.op}:${c.table.name}:${values}${c.op === 'update' && c.oldValues !== null ? `<${c.oldValues[0] as string}` : ''}`;
  });

describe('planChangeBatch', () => {
  it('groups a batch by table in order of first appearance, each key keeping its order', () => {
    const batch = [ins('a', '1', 'x'), ins('b', '1', 'x'), ins('c', '1', 'x'), ins('a', '2', 'y'), ins('b', '2', 'y'), ins('a', '3', 'z')];
    expect(show(plan(batch))).toEqual(['insert:a:1,x,b', 'insert:a:2,y,b', 'insert:a:3,z,b', 'insert:b:1,x,b', 'insert:b:2,y,b', 'insert:c:1,x,b']);
  });

  it('collapses the successive changes of one key into its final state', () => {
    // TPC-B's hot rows: the same teller updated by many transactions of the batch.
    expect(show(plan([upd('t', '1', 'a', 'A'), upd('t', '1', 'b', 'B'), upd('t', '1', 'c', 'C')]))).toEqual(['update:t:1,c,C']);
    expect(show(plan([ins('t', '1', 'a'), upd('t', '1', 'b', 'B'), upd('t', '1', 'c')]))).toEqual(['insert:t:1,c,B']);
    expect(show(plan([ins('t', '1', 'a'), upd('t', '1', 'b'), del('t', '1')]))).toEqual([]);
    expect(show(plan([upd('t', '1', 'a'), del('t', '1')]))).toEqual(['delete:t:1']);
    // Deleted, then inserted again: the delete stays before the insert.
    expect(show(plan([del('t', '1'), ins('t', '1', 'n'), upd('t', '1', 'm')]))).toEqual(['delete:t:1', 'insert:t:1,m,b']);
  });

  it('keeps unchanged-TOAST markers: a later unchanged value keeps the earlier one, or stays unchanged', () => {
    expect(show(plan([upd('t', '1', 'a', 'BIG'), upd('t', '1', 'b')]))).toEqual(['update:t:1,b,BIG']);
    expect(show(plan([upd('t', '1', 'a'), upd('t', '1', 'b')]))).toEqual(['update:t:1,b,~']);
    const merged = plan([upd('t', '1', 'a'), upd('t', '1', 'b')])[0] as Extract<RowChange, { op: 'update' }>;
    expect(merged.values[2]).toBe(UNCHANGED);
  });

  it('writes a table\'s deletes, then inserts, then updates, sorted by shape', () => {
    const batch = [upd('t', '1', 'a'), ins('t', '2', 'b'), del('t', '3'), upd('t', '4', 'c', 'C'), ins('t', '5', 'd'), upd('t', '6', 'e')];
    expect(show(plan(batch))).toEqual(['delete:t:3', 'insert:t:2,b,b', 'insert:t:5,d,b', 'update:t:1,a,~', 'update:t:6,e,~', 'update:t:4,c,C']);
  });

  it('turns a key change into a delete of the old key and an insert of the new row, when the new row is whole', () => {
    expect(show(plan([upd('t', '2', 'a', 'A', '1'), upd('t', '2', 'b', 'B')]))).toEqual(['delete:t:1', 'insert:t:2,b,B']);
    // A row inserted and moved in the batch leaves nothing at its first key.
    expect(show(plan([ins('t', '1', 'a'), upd('t', '2', 'a', 'A', '1'), ins('t', '1', 'z')]))).toEqual(['insert:t:1,z,b', 'insert:t:2,a,A']);
    // Keys that trade places: 1 -> 3, 2 -> 1, 3 -> 2.
    const swap = [upd('t', '3', 'x', 'X', '1'), upd('t', '1', 'y', 'Y', '2'), upd('t', '2', 'x', 'X', '3')];
    expect(show(plan(swap))).toEqual(['delete:t:1', 'delete:t:2', 'insert:t:1,y,Y', 'insert:t:2,x,X']);
  });

  it('leaves a key change as it is when the destination has columns its new row lacks', () => {
    const wider = { t: { keyColumns: ['id'], otherUnique: false, writableColumns: [...COLS, 'extra'] } };
    expect(show(plan([upd('t', '2', 'a', 'A', '1'), upd('t', '2', 'b', 'B')], wider))).toEqual(['update:t:2,a,A<1', 'update:t:2,b,B']);
  });

  it('leaves a table in source order when a key change carries unchanged values, the table has no key or another unique index', () => {
    const moveWithToast = [upd('t', '1', 'a'), upd('t', '2', 'b', UNCHANGED, '1'), upd('t', '2', 'c'), ins('u', '1', 'x')];
    expect(show(plan(moveWithToast))).toEqual(['update:t:1,a,~', 'update:t:2,b,~<1', 'update:t:2,c,~', 'insert:u:1,x,b']);
    const batch = [upd('t', '1', 'a'), ins('u', '1', 'x'), upd('t', '1', 'b'), del('t', '2')];
    const expected = ['update:t:1,a,~', 'update:t:1,b,~', 'delete:t:2', 'insert:u:1,x,b'];
    expect(show(plan(batch, { t: { keyColumns: null, otherUnique: false, writableColumns: COLS } }))).toEqual(expected);
    expect(show(plan(batch, { t: { keyColumns: ['id'], otherUnique: true, writableColumns: COLS } }))).toEqual(expected);
  });

  it('treats TRUNCATE as a barrier', () => {
    const truncate: RowChange = { op: 'truncate', tables: [T('t')], cascade: false, restartIdentity: false };
    const batch = [upd('t', '1', 'a'), ins('u', '1', 'x'), truncate, ins('t', '1', 'b'), upd('u', '1', 'y'), upd('t', '1', 'c')];
    expect(show(plan(batch))).toEqual(['update:t:1,a,~', 'insert:u:1,x,b', 'truncate:t', 'insert:t:1,c,b', 'update:u:1,y,~']);
  });

  it('keeps the tables of a foreign-key action group in their relative source order, uncollapsed', () => {
    const batch = [ins('p', '1', 'a'), ins('x', '1', 'a'), ins('c', '1', 'p1'), upd('p', '1', 'b'), del('c', '1'), ins('x', '2', 'b'), del('p', '1')];
    expect(show(plan(batch, {}, [[T('p'), T('c')]]))).toEqual([
      'insert:p:1,a,b', 'insert:c:1,p1,b', 'update:p:1,b,~', 'delete:c:1', 'delete:p:1',
      'insert:x:1,a,b', 'insert:x:2,b,b',
    ]);
  });

  it('finds the foreign-key action groups of a MySQL source only', () => {
    const fk: ForeignKeySchema = { name: 'f', definition: 'FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE', referencedTable: T('p'), onDelete: 'CASCADE' };
    const table = (name: string, foreignKeys: ForeignKeySchema[], nativeDefinition?: string): TableSchema => ({
      schema: 's', name, columns: [], primaryKey: null, uniqueConstraints: [], checkConstraints: [], indexes: [], foreignKeys,
      estimatedRows: 0, estimatedBytes: 0, replicaIdentity: null, ...(nativeDefinition === undefined ? {} : { nativeDefinition }),
    } as TableSchema);
    expect(orderedTableGroups([table('p', [], 'x'), table('c', [fk], 'x'), table('o', [], 'x')])).toEqual([[T('p'), T('c')]]);
    expect(orderedTableGroups([table('p', []), table('c', [fk])])).toEqual([]);
  });

  it('ends in the same state as the changes applied one by one in source order (random batches)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const pick = <V>(values: V[]) => values[Math.floor(random() * values.length)] as V;
    type Row = Record<string, string | null>;
    // The destination's statements, as the appliers write them: upsert, update of the sent columns by key, move, delete.
    const applyOne = (state: Map<string, Map<string, Row>>, change: RowChange) => {
      if (change.op === 'truncate') {
        for (const t of change.tables) state.get(t.name)?.clear();
        return;
      }
      const rows = state.get(change.table.name) ?? new Map<string, Row>();
      state.set(change.table.name, rows);
      if (change.op === 'delete') {
        rows.delete(change.oldValues[0] as string);
        return;
      }
      const id = change.values[0] as string;
      const oldId = change.op === 'update' && change.oldValues !== null ? (change.oldValues[0] as string) : id;
      const before = rows.get(oldId);
      if (change.op === 'update' && before === undefined) return;
      const row: Row = { ...(change.op === 'insert' ? rows.get(id) : before) };
      change.columns.forEach((c, i) => {
        const v = change.values[i] as ColumnValue;
        if (v !== UNCHANGED) row[c] = v;
      });
      rows.delete(oldId);
      rows.set(id, row);
    };
    for (let round = 0; round < 300; round++) {
      const start = new Map<string, Map<string, Row>>();
      const live = new Map<string, Set<string>>();
      for (const t of ['a', 'b']) {
        start.set(t, new Map());
        live.set(t, new Set());
        for (let i = 0; i < 4; i++) {
          start.get(t)?.set(String(i), { id: String(i), v: 'start', big: 'B0' });
          live.get(t)?.add(String(i));
        }
      }
      const batch: RowChange[] = [];
      for (let n = 0; n < 30; n++) {
        const t = pick(['a', 'b']);
        const keys = live.get(t) as Set<string>;
        const present = [...keys];
        const absent = ['0', '1', '2', '3', '4', '5', '6'].filter((k) => !keys.has(k));
        const roll = random();
        if (roll < 0.03) {
          batch.push({ op: 'truncate', tables: [T(t)], cascade: false, restartIdentity: false });
          keys.clear();
        } else if ((roll < 0.25 || present.length === 0) && absent.length > 0) {
          const k = pick(absent);
          batch.push(ins(t, k, `v${n}`, `B${n}`));
          keys.add(k);
        } else if (roll < 0.4 && present.length > 0) {
          const k = pick(present);
          batch.push(del(t, k));
          keys.delete(k);
        } else if (roll < 0.55 && present.length > 0 && absent.length > 0) {
          const k = pick(present);
          const to = pick(absent);
          batch.push(upd(t, to, `v${n}`, `B${n}`, k));
          keys.delete(k);
          keys.add(to);
        } else if (present.length > 0) {
          batch.push(upd(t, pick(present), `v${n}`, random() < 0.5 ? UNCHANGED : `B${n}`));
        }
      }
      const copy = (s: Map<string, Map<string, Row>>) => new Map([...s].map(([t, rows]) => [t, new Map([...rows].map(([k, r]) => [k, { ...r }]))]));
      const expected = copy(start);
      for (const change of batch) applyOne(expected, change);
      const actual = copy(start);
      const planned = plan(batch);
      for (const change of planned) applyOne(actual, change);
      expect(actual, `round ${round}`).toEqual(expected);
      expect(planned.length).toBeLessThanOrEqual(batch.length);
    }
  });
});
