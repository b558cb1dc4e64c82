/**
 * The order in which a change applier writes one batch of changes, shared by every engine's
 * applier. Pure.
 *
 * The stream delivers changes in source commit order, and an OLTP transaction touches several
 * tables in turn: applied in that order, runs of one statement shape have length one and every
 * change becomes its own round trip. Within one destination transaction only the final state
 * counts, so the plan
 * - groups the changes by table (tables in order of their first change): tables are
 *   independent on the destination while the stream runs, since foreign keys are created at
 *   promote, except the foreign keys with ON DELETE / ON UPDATE actions of a MySQL source
 *   (core/foreign-key-actions.ts), which exist during the stream: the tables each such
 *   group links keep their changes in source order, as one unit, uncollapsed;
 * - collapses the changes of one key into its final state: insert + updates become one insert
 *   of the final row, updates one update (a value the later update leaves unchanged, PostgreSQL's
 *   unchanged-TOAST marker, keeps the earlier one, or stays unchanged), a row inserted and deleted
 *   in the batch nothing, a delete then an insert a delete followed by the insert; an update that
 *   changes the key, with the whole new row, is a delete of the old key and an insert of the new row;
 * - writes a table's deletes first, then its inserts, then its updates, each sorted by shape, so
 *   that the applier's runs of one shape become long multi-row statements. A key has at most one
 *   delete followed by one insert or update, so every key still sees its changes in source order.
 *
 * A TRUNCATE is a barrier: what comes before it is written before it, what comes after, after.
 * Changes of a table are left in source order and uncollapsed (still grouped with their table)
 * when the table has no primary key, when it has another unique index (two rows may trade a
 * value, and only the source order never holds it twice), or when a change cannot be placed by
 * key (a key value missing, or a key change whose new row is not whole: unchanged values, or
 * destination columns it does not carry).
 */
import { qualifiedName, sharedQualifiedName, type QualifiedName, type TableSchema } from '../core/schema.js';
import { actionForeignKeyGroups } from '../core/foreign-key-actions.js';
import { UNCHANGED, type ColumnValue, type RowChange } from '../engines/engine.js';

/** What the plan needs to know of one destination table. */
export interface PlanTable {
  /** Primary key columns (the names changes carry), or null when the table has none. */
  keyColumns: string[] | null;
  /** Another unique index or constraint besides the primary key: changes keep their source order. */
  otherUnique: boolean;
  /**
   * The columns a whole row writes on the destination (not generated). A key change becomes a
   * delete and an insert only when its new row has them all, so that no destination column is
   * reset to its default.
   */
  writableColumns: string[];
}

export interface ChangeBatchPlanOptions {
  /** The destination's description of a table that has changes in the batch. */
  table(table: QualifiedName): PlanTable;
  /** Groups of tables whose changes keep their relative source order (foreign keys with actions exist during the stream). */
  orderedGroups?: QualifiedName[][];
}

type KeyedChange = Exclude<RowChange, { op: 'truncate' }>;

/**
 * The groups of tables whose foreign keys with actions exist on the destination during the
 * stream: those of a MySQL source (its tables carry their `nativeDefinition`), none otherwise
 * (see carriesForeignKeyActions).
 */
export function orderedTableGroups(tables: TableSchema[]): QualifiedName[][] {
  const mysqlSource = tables.length > 0 && tables.every((t) => t.nativeDefinition !== undefined);
  if (!mysqlSource) return [];
  return actionForeignKeyGroups(tables).map((group) => group.map((t) => ({ schema: t.schema, name: t.name })));
}

/**
 * planChangeBatch for an applier that learns a table's description asynchronously (it reads the
 * destination table on first use): each table of the batch is described once, in order of its
 * first change, before anything is planned.
 */
export async function planDescribedBatch(
  changes: RowChange[],
  describe: (table: QualifiedName) => Promise<PlanTable>,
  orderedGroups: QualifiedName[][],
): Promise<RowChange[]> {
  if (changes.length < 2) return changes;
  const tables = new Map<string, PlanTable>();
  for (const change of changes) {
    if (change.op === 'truncate') continue;
    const name = sharedQualifiedName(change.table);
    if (!tables.has(name)) tables.set(name, await describe(change.table));
  }
  return planChangeBatch(changes, { table: (t) => tables.get(sharedQualifiedName(t)) as PlanTable, orderedGroups });
}

/** The batch in the order to write it (see the module comment). The result holds the same change objects or merged copies. */
export function planChangeBatch(changes: RowChange[], options: ChangeBatchPlanOptions): RowChange[] {
  const groupOf = new Map<string, string>();
  (options.orderedGroups ?? []).forEach((group, i) => {
    for (const table of group) groupOf.set(qualifiedName(table), `\u0001group${i}`);
  });
  const out: RowChange[] = [];
  if (!changes.some((change) => change.op === 'truncate')) {
    // The usual batch, one segment: planned from the batch itself, not a copy of it.
    planSegment(changes as KeyedChange[], options, groupOf, out);
    return out;
  }
  let segment: KeyedChange[] = [];
  for (const change of changes) {
    if (change.op === 'truncate') {
      planSegment(segment, options, groupOf, out);
      out.push(change);
      segment = [];
    } else {
      segment.push(change);
    }
  }
  planSegment(segment, options, groupOf, out);
  return out;
}

interface Unit {
  table: QualifiedName;
  /** Several tables linked by foreign keys with actions: kept in source order. */
  group: boolean;
  changes: KeyedChange[];
}

function planSegment(changes: KeyedChange[], options: ChangeBatchPlanOptions, groupOf: Map<string, string>, out: RowChange[]): void {
  if (changes.length === 0) return;
  const units = new Map<string, Unit>();
  for (const change of changes) {
    const name = sharedQualifiedName(change.table);
    const group = groupOf.get(name);
    const key = group ?? name;
    let unit = units.get(key);
    if (unit === undefined) {
      unit = { table: change.table, group: group !== undefined, changes: [] };
      units.set(key, unit);
    }
    unit.changes.push(change);
  }
  for (const unit of units.values()) {
    const collapsed = !unit.group && unit.changes.length > 1 && collapseTable(unit.changes, options.table(unit.table), out);
    if (!collapsed) for (const change of unit.changes) out.push(change);
  }
}

/** What one key's changes come to: at most a delete, then an insert or an update. */
interface KeyState {
  /** The key's first change in the batch was an insert: the row did not exist before the batch. */
  bornHere: boolean;
  delete: KeyedChange | null;
  last: Extract<RowChange, { op: 'insert' | 'update' }> | null;
}

/** Appends the table's changes collapsed per key to `out`; false (nothing appended) when they must stay as they are. */
function collapseTable(changes: KeyedChange[], table: PlanTable, out: RowChange[]): boolean {
  const keyColumns = table.keyColumns;
  if (keyColumns === null || keyColumns.length === 0 || table.otherUnique) return false;
  const states = new Map<string, KeyState>();
  const stateOf = (key: string, inserting: boolean): KeyState => {
    let state = states.get(key);
    if (state === undefined) {
      state = { bornHere: inserting, delete: null, last: null };
      states.set(key, state);
    }
    return state;
  };
  const remove = (key: string, change: KeyedChange) => {
    const state = stateOf(key, false);
    state.last = null;
    state.delete = state.bornHere ? null : change;
  };
  const insert = (key: string, change: Extract<RowChange, { op: 'insert' }>) => {
    stateOf(key, true).last = change;
  };

  for (const change of changes) {
    if (change.op === 'insert') {
      const key = keyOf(keyColumns, change.columns, change.values);
      if (key === null) return false;
      insert(key, change);
    } else if (change.op === 'delete') {
      const key = keyOf(keyColumns, change.oldColumns, change.oldValues);
      if (key === null) return false;
      remove(key, change);
    } else {
      const newKey = newKeyOf(keyColumns, change);
      if (newKey === null) return false;
      const oldKey = change.oldColumns === null || change.oldValues === null ? newKey : (keyOf(keyColumns, change.oldColumns, change.oldValues) ?? newKey);
      if (oldKey !== newKey) {
        // A key change: the old key's row goes, the new row arrives whole (else it cannot be placed).
        const whole = !change.values.some((v) => v === UNCHANGED) && table.writableColumns.every((c) => change.columns.includes(c));
        if (!whole || keyOf(keyColumns, change.columns, change.values) === null) return false;
        remove(oldKey, { op: 'delete', table: change.table, oldColumns: change.oldColumns as string[], oldValues: change.oldValues as ColumnValue[] });
        insert(newKey, { op: 'insert', table: change.table, columns: change.columns, values: change.values });
        continue;
      }
      const state = stateOf(newKey, false);
      const last = state.last;
      if (last === null) {
        state.last = change;
      } else if (last.op === 'insert') {
        const merged = merge(last.columns, last.values, change.columns, change.values);
        state.last = { op: 'insert', table: change.table, columns: merged.columns, values: merged.values };
      } else {
        const merged = merge(last.columns, last.values, change.columns, change.values);
        state.last = { op: 'update', table: change.table, columns: merged.columns, values: merged.values, oldColumns: last.oldColumns, oldValues: last.oldValues };
      }
    }
  }

  const deletes: RowChange[] = [];
  const inserts: RowChange[] = [];
  const updates: RowChange[] = [];
  for (const state of states.values()) {
    if (state.delete !== null) deletes.push(state.delete);
    if (state.last?.op === 'insert') inserts.push(state.last);
    else if (state.last !== null) updates.push(state.last);
  }
  for (const list of [deletes, inserts, updates]) for (const change of byShape(list)) out.push(change);
  return true;
}

/** The key of a row from its columns and values, or null when a key value is missing. */
function keyOf(keyColumns: string[], columns: string[], values: ColumnValue[]): string | null {
  if (keyColumns.length === 1) {
    // One column: its value is the key.
    const value = values[columns.indexOf(keyColumns[0] as string)];
    return typeof value === 'string' ? value : null;
  }
  let key = '';
  for (const column of keyColumns) {
    const index = columns.indexOf(column);
    const value = index < 0 ? undefined : values[index];
    if (typeof value !== 'string') return null;
    key += `${value.length}:${value}`;
  }
  return key;
}

/** The key an update leaves the row at: the new values, or the old ones for key columns the new row does not carry. */
function newKeyOf(keyColumns: string[], change: Extract<RowChange, { op: 'update' }>): string | null {
  let key = '';
  const single = keyColumns.length === 1;
  for (const column of keyColumns) {
    const index = change.columns.indexOf(column);
    let value = index < 0 ? undefined : change.values[index];
    if (typeof value !== 'string' && change.oldColumns !== null && change.oldValues !== null) {
      const oldIndex = change.oldColumns.indexOf(column);
      value = oldIndex < 0 ? undefined : change.oldValues[oldIndex];
    }
    if (typeof value !== 'string') return null;
    if (single) return value;
    key += `${value.length}:${value}`;
  }
  return key;
}

/** The later values over the earlier ones; a later unchanged value keeps the earlier one. */
function merge(columns: string[], values: ColumnValue[], laterColumns: string[], laterValues: ColumnValue[]): { columns: string[]; values: ColumnValue[] } {
  if (columns === laterColumns || (columns.length === laterColumns.length && columns.every((c, i) => c === laterColumns[i]))) {
    return { columns, values: laterValues.map((v, i) => (v === UNCHANGED ? (values[i] as ColumnValue) : v)) };
  }
  const mergedColumns = [...columns];
  const mergedValues = [...values];
  laterColumns.forEach((column, i) => {
    const value = laterValues[i] as ColumnValue;
    const index = mergedColumns.indexOf(column);
    if (index < 0) {
      mergedColumns.push(column);
      mergedValues.push(value);
    } else if (value !== UNCHANGED) {
      mergedValues[index] = value;
    }
  });
  return { columns: mergedColumns, values: mergedValues };
}

/** Changes sorted (stably) by their shape: columns, unchanged values, old columns. */
function byShape(changes: RowChange[]): RowChange[] {
  if (changes.length < 2 || oneShape(changes)) return changes;
  const shapes = new Map<string, RowChange[]>();
  for (const change of changes) {
    const shape = shapeOf(change);
    const list = shapes.get(shape);
    if (list === undefined) shapes.set(shape, [change]);
    else list.push(change);
  }
  return shapes.size === 1 ? changes : [...shapes.values()].flat();
}

/** True when every change has the first one's column arrays (by identity: a reader shares them per table) and none an unchanged value. */
function oneShape(changes: RowChange[]): boolean {
  const first = changes[0] as RowChange;
  const columns = (c: RowChange) => (c.op === 'insert' || c.op === 'update' ? c.columns : null);
  const oldColumns = (c: RowChange) => (c.op === 'delete' || c.op === 'update' ? c.oldColumns : null);
  for (const change of changes) {
    if (change.op !== first.op || columns(change) !== columns(first) || oldColumns(change) !== oldColumns(first)) return false;
    if ((change.op === 'insert' || change.op === 'update') && change.values.includes(UNCHANGED)) return false;
  }
  return true;
}

function shapeOf(change: RowChange): string {
  if (change.op === 'truncate') return '';
  if (change.op === 'delete') return joined(change.oldColumns);
  let unchanged = '';
  for (let i = 0; i < change.values.length; i++) if (change.values[i] === UNCHANGED) unchanged += `${i},`;
  const old = change.op === 'update' ? (change.oldColumns === null ? '-' : joined(change.oldColumns)) : '';
  return `${joined(change.columns)}\u0001${unchanged}\u0001${old}`;
}

/**
 * A column list as one string, remembered per array: a reader hands every change of a table
 * the same columns array, so a batch of a million rows joins it once, not once per change.
 */
const joinedColumns = new WeakMap<string[], string>();
function joined(columns: string[]): string {
  let key = joinedColumns.get(columns);
  if (key === undefined) {
    key = columns.join('\u0000');
    joinedColumns.set(columns, key);
  }
  return key;
}
