import { describe, expect, it } from 'vitest';
import { actionForeignKeyGroups, actionReferencedTables, hasReferentialAction } from '../../src/core/foreign-key-actions.js';
import { pairChecks } from '../../src/core/job-checks.js';
import type { DatabaseSchema, ForeignKeySchema, TableSchema } from '../../src/core/schema.js';

const fk = (name: string, referenced: string, onDelete?: string, onUpdate?: string): ForeignKeySchema => ({
  name,
  definition: `FOREIGN KEY (x) REFERENCES \`db\`.\`${referenced}\` (id)${onDelete ? ` ON DELETE ${onDelete}` : ''}${onUpdate ? ` ON UPDATE ${onUpdate}` : ''}`,
  referencedTable: { schema: 'db', name: referenced },
  ...(onDelete ? { onDelete } : {}),
  ...(onUpdate ? { onUpdate } : {}),
});

const table = (name: string, foreignKeys: ForeignKeySchema[] = []): TableSchema => ({
  schema: 'db', name, columns: [], primaryKey: null, uniqueConstraints: [], checkConstraints: [], indexes: [], foreignKeys,
  estimatedRows: 0, estimatedBytes: 0, replicaIdentity: null,
});

const schemaOf = (tables: TableSchema[]): DatabaseSchema => ({ engine: 'mysql', tables } as unknown as DatabaseSchema);

describe('foreign keys with actions', () => {
  it('tells actions (CASCADE, SET NULL, SET DEFAULT) from checks (RESTRICT, NO ACTION), from the fields or the definition', () => {
    expect(hasReferentialAction(fk('a', 'p', 'CASCADE'))).toBe(true);
    expect(hasReferentialAction(fk('a', 'p', undefined, 'SET NULL'))).toBe(true);
    expect(hasReferentialAction(fk('a', 'p', 'RESTRICT', 'NO ACTION'))).toBe(false);
    expect(hasReferentialAction(fk('a', 'p'))).toBe(false);
    expect(hasReferentialAction({ name: 'b', definition: 'FOREIGN KEY (x) REFERENCES p (id) ON UPDATE SET DEFAULT', referencedTable: { schema: 'db', name: 'p' } })).toBe(true);
  });

  it('groups the tables linked by action foreign keys in either direction, through cycles and self references; plain keys and outside tables link nothing', () => {
    const tables = [
      table('countries'),
      table('customers', [fk('c_country', 'countries', 'SET NULL', 'CASCADE')]),
      table('orders', [fk('o_customer', 'customers', 'CASCADE')]),
      table('items', [fk('i_order', 'orders', 'CASCADE')]),
      table('carriers'),
      table('shipments', [fk('s_carrier', 'carriers', 'RESTRICT')]),
      table('teams', [fk('t_lead', 'employees', 'SET NULL')]),
      table('employees', [fk('e_team', 'teams', 'CASCADE')]),
      table('categories', [fk('c_parent', 'categories', 'SET NULL')]),
      table('outside_child', [fk('x', 'not_selected', 'CASCADE')]),
    ];
    const groups = actionForeignKeyGroups(tables).map((g) => g.map((t) => t.name));
    expect(groups).toEqual([['countries', 'customers', 'orders', 'items'], ['teams', 'employees']]);
    expect([...actionReferencedTables(tables)].sort()).toEqual(['db.categories', 'db.countries', 'db.customers', 'db.employees', 'db.not_selected', 'db.orders', 'db.teams']);
  });

  it('verify: continuous jobs from MySQL carry the actions (ok, naming them); a parent outside the selection is an error naming the fix', () => {
    const carried = pairChecks(schemaOf([table('p'), table('c', [fk('c_p', 'p', 'CASCADE')]), table('d', [fk('d_p', 'p', 'RESTRICT')])]), 'mysql', 'postgresql', 'continuous');
    expect(carried).toEqual([expect.objectContaining({ code: 'FOREIGN_KEY_ACTIONS', severity: 'ok', objects: ['db.c.c_p'] })]);
    expect(carried[0]?.message).toContain('carried');

    const outside = pairChecks(schemaOf([table('c', [fk('c_p', 'p', 'CASCADE')])]), 'mysql', 'mysql', 'continuous');
    expect(outside).toEqual([expect.objectContaining({ code: 'FOREIGN_KEY_ACTIONS', severity: 'error', objects: ['db.c.c_p (references db.p)'] })]);
    expect(outside[0]?.message).toContain("Add the referenced tables to the job's selection");

    expect(pairChecks(schemaOf([table('c', [fk('c_p', 'p', 'CASCADE')])]), 'mysql', 'postgresql', 'one-time')).toEqual([]);

    // InnoDB lets a foreign key reference any indexed columns; PostgreSQL only a primary or unique key.
    const parent = { ...table('p'), primaryKey: { name: 'PRIMARY', columns: ['id'] } };
    const byCode = { ...fk('c_code', 'p', 'CASCADE'), referencedColumns: ['code'] };
    const byId = { ...fk('c_id', 'p', 'CASCADE'), referencedColumns: ['id'] };
    const keyless = pairChecks(schemaOf([parent, table('c', [byCode, byId])]), 'mysql', 'postgresql', 'continuous');
    expect(keyless).toEqual([expect.objectContaining({ code: 'FOREIGN_KEY_ACTIONS', severity: 'error', objects: ['db.c.c_code'] })]);
    expect(keyless[0]?.message).toContain('Add a unique key on the referenced columns');
    expect(pairChecks(schemaOf([parent, table('c', [byCode, byId])]), 'mysql', 'mysql', 'continuous')[0]?.severity).toBe('ok');
  });
});
