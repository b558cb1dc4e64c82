/**
 * The pure parts of the value policies (docs/type-mapping.md, "Values one engine accepts and
 * the other does not"): warnings per column, row keys in refusals, NUL removal, the enum type
 * of each enumErrorValuePolicy, the change reader's converters under each policy, the load
 * feed's count of ENUM error values, and verify's sampling query.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ColumnSchema, DatabaseSchema, TableSchema } from '../../src/core/schema.js';
import { mapMysqlSchemaToPostgres } from '../../src/core/type-mapping.js';
import { ChangedValues, NulCharacterFound, describeRowKey, keyColumnsOf, nulCharacterRefused, stripNulBytes, valuePoliciesOf } from '../../src/core/value-policies.js';
import { takesEnumErrorValue } from '../../src/engines/mysql/enum-error-values.js';
import { canonicalConverter } from '../../src/engines/mysql/mysql-change-reader.js';
import { enumHasEmptyLabel } from '../../src/engines/mysql/mysql-snapshot-reader.js';
import { LoadFeed } from '../../src/engines/mysql/mysql-table-writer.js';
import { probesOf, sampleSql } from '../../src/engines/mysql/mysql-value-sampler.js';

function column(name: string, nativeType: string, nullable = true): ColumnSchema {
  return { name, nativeType, nullable, defaultExpression: null, identity: null, generatedExpression: null, collation: null };
}

function table(columns: ColumnSchema[]): TableSchema {
  return { schema: 'shop', name: 'orders', columns, primaryKey: { name: 'PRIMARY', columns: ['id'] }, uniqueConstraints: [], checkConstraints: [], indexes: [], foreignKeys: [], estimatedRows: -1, estimatedBytes: -1, replicaIdentity: null };
}

function database(tables: TableSchema[]): DatabaseSchema {
  return { engine: 'mysql', schemas: ['shop'], tables, sequences: [], enums: [], domains: [], extensions: [] };
}

describe('value policies', () => {
  it('defaults to the lossless or refusing choice', () => {
    expect(valuePoliciesOf({})).toEqual({ zeroDates: 'null', enumErrorValue: 'label', nulCharacter: 'refuse' });
    expect(valuePoliciesOf({ enumErrorValuePolicy: 'null', nulCharacterPolicy: 'strip', zeroDatePolicy: 'refuse' })).toEqual({ zeroDates: 'refuse', enumErrorValue: 'null', nulCharacter: 'strip' });
  });

  it('counts changed values per column and kind, one sentence each naming the column, then forgets them', () => {
    const changed = new ChangedValues();
    changed.add('shop.orders.status', 'enum-error-value');
    changed.add('shop.orders.status', 'enum-error-value');
    changed.add('shop.orders.note', 'nul-character');
    changed.add('shop.orders.due', 'zero-date');
    expect(changed.countsOf('enum-error-value')).toEqual(new Map([['shop.orders.status', 2]]));
    expect(changed.take()).toEqual([
      `shop.orders.status: 2 ENUM error values ('', stored by a non-strict sql_mode for an invalid label) written as NULL (enumErrorValuePolicy "null").`,
      'shop.orders.note: NUL characters removed from 1 value, because PostgreSQL text cannot hold them (nulCharacterPolicy "strip").',
      `shop.orders.due: 1 zero or invalid date (e.g. '0000-00-00') written as NULL, because the destination has no such date (zeroDatePolicy "null").`,
    ]);
    expect(changed.take()).toEqual([]);
  });

  it('names a row by its primary key, else its first unique key', () => {
    expect(keyColumnsOf(table([]))).toEqual(['id']);
    expect(keyColumnsOf({ primaryKey: null, uniqueConstraints: [{ name: 'u', columns: ['a', 'b'] }] })).toEqual(['a', 'b']);
    expect(describeRowKey(['id'], ['42'])).toBe('id=42');
    expect(describeRowKey(['a', 'b'], ["it's", null])).toBe("a='it''s', b=NULL");
    expect(describeRowKey([], [])).toBe('a row of a table without a primary or unique key');
  });

  it('refuses a NUL character naming the table, column, key and both ways out', () => {
    const error = nulCharacterRefused('shop.orders', 'note', 'id=7');
    expect(error.code).toBe('DATA_ERROR');
    expect(error.message).toContain('Table shop.orders, column note, row id=7');
    expect(error.message).toContain('REPLACE(note, CHAR(0)');
    expect(error.message).toContain('--nul-character-policy strip');
  });

  it('strips NUL bytes and nothing else (UTF-8 never has a zero byte inside a character)', () => {
    expect(stripNulBytes(Buffer.from('a\0b\0\0é😀', 'utf8')).toString('utf8')).toBe('abé😀');
  });
});

describe('enum types and the ENUM error value', () => {
  it("knows an enum that has the label '' (then '' is no error value)", () => {
    expect(enumHasEmptyLabel("enum('','a')")).toBe(true);
    expect(enumHasEmptyLabel("enum('a','')")).toBe(true);
    expect(enumHasEmptyLabel("enum('a','b')")).toBe(false);
    expect(enumHasEmptyLabel("enum('a''','b')")).toBe(false);
    expect(takesEnumErrorValue('enum', "enum('a','b')")).toBe(true);
    expect(takesEnumErrorValue('enum', "enum('','b')")).toBe(false);
    expect(takesEnumErrorValue('varchar', 'varchar(10)')).toBe(false);
  });

  it("'label': the PostgreSQL enum type gets '' first; 'null': labels only, the column nullable with a warning", () => {
    const source = database([table([column('id', 'int', false), column('status', "enum('new','paid')", false), column('kind', "enum('','x')")])]);
    const labelled = mapMysqlSchemaToPostgres(source, { enumErrorValue: 'label' });
    expect(labelled.schema.enums.map((e) => e.labels)).toEqual([['', 'new', 'paid'], ['', 'x']]);
    const nulled = mapMysqlSchemaToPostgres(source, { enumErrorValue: 'null' });
    expect(nulled.schema.enums.map((e) => e.labels)).toEqual([['new', 'paid'], ['', 'x']]);
    expect(nulled.schema.tables[0]?.columns.find((c) => c.name === 'status')?.nullable).toBe(true);
    expect(nulled.warnings.some((w) => w.includes('shop.orders.status is NOT NULL on the source but nullable'))).toBe(true);
    expect(mapMysqlSchemaToPostgres(source).schema.enums.map((e) => e.labels)).toEqual([['new', 'paid'], ['', 'x']]);
  });
});

describe("the change reader's converters under each policy", () => {
  const hooks = (enumErrorValue: 'label' | 'null', nulCharacter: 'refuse' | 'strip', seen: string[]) => ({
    policies: { zeroDates: 'null' as const, enumErrorValue, nulCharacter },
    onZeroDate: () => seen.push('zero-date'),
    changed: (kind: string) => seen.push(kind),
  });

  it("ENUM error value: '' kept ('label') or NULL and counted ('null'); a real '' label always kept", () => {
    const seen: string[] = [];
    expect(canonicalConverter("enum('a','b')", 'shop.orders.status', hooks('label', 'refuse', seen))(undefined)).toBe('');
    expect(canonicalConverter("enum('a','b')", 'shop.orders.status', hooks('null', 'refuse', seen))(undefined)).toBeNull();
    expect(canonicalConverter("enum('a','b')", 'shop.orders.status', hooks('null', 'refuse', seen))('a')).toBe('a');
    expect(canonicalConverter("enum('','b')", 'shop.orders.status', hooks('null', 'refuse', seen))('')).toBe('');
    expect(seen).toEqual(['enum-error-value']);
  });

  it('NUL characters: refused naming the column, or removed and counted', () => {
    const seen: string[] = [];
    expect(() => canonicalConverter('varchar(10)', 'shop.orders.note', hooks('label', 'refuse', seen))('a\0b')).toThrow(NulCharacterFound);
    expect(canonicalConverter('text', 'shop.orders.note', hooks('label', 'strip', seen))(Buffer.from('a\0b'))).toBe('ab');
    expect(canonicalConverter('text', 'shop.orders.note', hooks('label', 'refuse', seen))('plain')).toBe('plain');
    expect(seen).toEqual(['nul-character']);
  });
});

describe('the load feed counts MySQL ENUM error values (empty fields of watched columns)', () => {
  async function feed(chunks: string[], watched: boolean[]): Promise<{ counts: number[]; out: string }> {
    const load = new LoadFeed(false, watched);
    const parts: Buffer[] = [];
    load.on('data', (b: Buffer) => parts.push(b));
    await new Promise<void>((resolve, reject) => {
      Readable.from(chunks.map((c) => Buffer.from(c))).pipe(load).on('end', resolve).on('error', reject);
    });
    return { counts: load.emptyCounts, out: Buffer.concat(parts).toString() };
  }

  it('counts empty fields but not NULL (\\N) or values, across chunk boundaries, and passes the bytes on unchanged', async () => {
    const rows = ['1\t\tx\n', '2\tpaid\t\n', '3\t\\N\t\n', '4\t\t\n'];
    const whole = await feed([rows.join('')], [false, true, false]);
    expect(whole.counts).toEqual([0, 2, 0]);
    expect(whole.out).toBe(rows.join(''));
    const text = rows.join('');
    const split = await feed([...text].map((c) => c), [false, true, true]);
    expect(split.counts).toEqual([0, 2, 3]);
  });
});

describe("verify's sampling query", () => {
  it('probes enums without the label, text columns and date columns; one bounded query per table', () => {
    const t = table([column('id', 'int'), column('status', "enum('a','b')"), column('kind', "enum('','x')"), column('note', 'varchar(10)'), column('due', 'date'), column('n', 'decimal(10,2)')]);
    const probes = probesOf(t);
    expect(probes.map((p) => [p.column, p.finding])).toEqual([
      ['status', 'enum-error-value'],
      ['note', 'nul-character'],
      ['due', 'zero-date'],
    ]);
    const sql = sampleSql(t, probes);
    expect(sql).toMatch(/FROM \(SELECT `status`, `note`, `due` FROM `shop`\.`orders` LIMIT 100000\) AS sample$/);
    expect(sql).toContain("INSTR(CAST(`note` AS BINARY), X'00') > 0");
  });
});
