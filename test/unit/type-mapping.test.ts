/**
 * docs/type-mapping.md, row by row: the PostgreSQL type a MySQL/MariaDB column gets and the
 * canonical text of its values, then the MySQL type a PostgreSQL column gets and the MySQL
 * value of its canonical text. Plus the schema-level mapping (names, keys, indexes) and the
 * COPY text helpers.
 */
import { describe, expect, it } from 'vitest';
import { COPY_NULL, escapeCopyText, formatCopyRow, parseCopyLine, parseCopyText } from '../../src/core/copy-text.js';
import { FerryError } from '../../src/core/errors.js';
import type { ColumnSchema, DatabaseSchema, TableSchema } from '../../src/core/schema.js';
import {
  canonicalToMysqlValue,
  copiedColumns,
  createMysqlValueConverter,
  fitPostgresIdentifier,
  isRefused,
  mapMysqlColumnToPostgres,
  mapMysqlSchemaToPostgres,
  mapPostgresColumnToMysql,
  mysqlValueToCanonical,
  parseMysqlStringList,
  shortestFloat32,
} from '../../src/core/type-mapping.js';
import type { MysqlColumnMapping, PostgresColumnMapping, PostgresUserTypes } from '../../src/core/type-mapping.js';
import { copyOutSql } from '../../src/engines/postgres/postgres-snapshot-reader.js';
import { copyInSql } from '../../src/engines/postgres/postgres-table-writer.js';

function column(name: string, nativeType: string, extra: Partial<ColumnSchema> = {}): ColumnSchema {
  return { name, nativeType, nullable: true, defaultExpression: null, identity: null, generatedExpression: null, collation: null, ...extra };
}

function table(name: string, columns: ColumnSchema[], extra: Partial<TableSchema> = {}): TableSchema {
  return {
    schema: 'shop',
    name,
    columns,
    primaryKey: null,
    uniqueConstraints: [],
    checkConstraints: [],
    indexes: [],
    foreignKeys: [],
    estimatedRows: -1,
    estimatedBytes: -1,
    replicaIdentity: null,
    ...extra,
  };
}

/** The PostgreSQL mapping of one MySQL column (in a table `t` of database `shop`). */
function toPostgres(nativeType: string, extra: Partial<ColumnSchema> = {}, tableExtra: Partial<TableSchema> = {}): PostgresColumnMapping {
  const c = column('c', nativeType, extra);
  const mapping = mapMysqlColumnToPostgres(table('t', [c], tableExtra), c);
  if (isRefused(mapping)) throw new Error(mapping.unsupported);
  return mapping;
}

function pgType(nativeType: string): string {
  return toPostgres(nativeType).nativeType;
}

function toMysql(nativeType: string, extra: Partial<ColumnSchema> = {}, types?: PostgresUserTypes): MysqlColumnMapping {
  const mapping = mapPostgresColumnToMysql({ schema: 'public', name: 't' }, column('c', nativeType, extra), types);
  if (isRefused(mapping)) throw new Error(mapping.unsupported);
  return mapping;
}

function refusedToMysql(nativeType: string, types?: PostgresUserTypes): string {
  const mapping = mapPostgresColumnToMysql({ schema: 'public', name: 't' }, column('c', nativeType), types);
  if (!isRefused(mapping)) throw new Error(`${nativeType} was mapped to ${mapping.nativeType}`);
  return mapping.unsupported;
}

function dataError(run: () => unknown): FerryError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('DATA_ERROR');
    return error as FerryError;
  }
  throw new Error('expected a DATA_ERROR');
}

describe('MySQL / MariaDB to PostgreSQL, one test per row of docs/type-mapping.md', () => {
  it('tinyint(1), boolean → boolean: t / f, 0 is false and any other value true', () => {
    expect(pgType('tinyint(1)')).toBe('boolean');
    expect(pgType('boolean')).toBe('boolean');
    expect(pgType('tinyint(1) unsigned')).toBe('smallint');
    const convert = createMysqlValueConverter('tinyint(1)');
    expect([0, 1, 5, -1, '0', '1', Buffer.from('0'), Buffer.from('127'), null].map(convert)).toEqual(['f', 't', 't', 't', 'f', 't', 'f', 't', null]);
    expect(toPostgres('tinyint(1)', { defaultExpression: '1' }).defaultExpression).toBe('true');
    expect(toPostgres('tinyint(1)', { defaultExpression: "'0'" }).defaultExpression).toBe('false');
  });

  it('tinyint, tinyint unsigned, smallint → smallint, values as is', () => {
    for (const t of ['tinyint(4)', 'tinyint', 'tinyint(3) unsigned', 'tinyint unsigned', 'smallint(6)', 'smallint']) expect(pgType(t)).toBe('smallint');
    expect(mysqlValueToCanonical('tinyint(4)', -128)).toBe('-128');
    expect(mysqlValueToCanonical('tinyint(3) unsigned', Buffer.from('255'))).toBe('255');
    expect(mysqlValueToCanonical('smallint(6)', -32768)).toBe('-32768');
    expect(mysqlValueToCanonical('tinyint(3) unsigned zerofill', '007')).toBe('7');
    expect(toPostgres('tinyint(4)', { defaultExpression: '-3' }).defaultExpression).toBe('-3');
  });

  it('smallint unsigned, mediumint, mediumint unsigned, int → integer, values as is', () => {
    for (const t of ['smallint(5) unsigned', 'smallint unsigned', 'mediumint(9)', 'mediumint(8) unsigned', 'int(11)', 'int']) expect(pgType(t)).toBe('integer');
    expect(mysqlValueToCanonical('smallint(5) unsigned', 65535)).toBe('65535');
    expect(mysqlValueToCanonical('mediumint(8) unsigned', 16777215)).toBe('16777215');
    expect(mysqlValueToCanonical('int(11)', -2147483648)).toBe('-2147483648');
  });

  it('int unsigned, bigint → bigint, values as is', () => {
    for (const t of ['int(10) unsigned', 'int unsigned', 'int(10) unsigned zerofill', 'bigint(20)', 'bigint']) expect(pgType(t)).toBe('bigint');
    expect(mysqlValueToCanonical('int(10) unsigned', 4294967295)).toBe('4294967295');
    expect(mysqlValueToCanonical('bigint(20)', '-9223372036854775808')).toBe('-9223372036854775808');
    expect(mysqlValueToCanonical('int(10) unsigned zerofill', Buffer.from('0000000042'))).toBe('42');
  });

  it('bigint unsigned → numeric(20,0), 18446744073709551615 as is', () => {
    expect(pgType('bigint(20) unsigned')).toBe('numeric(20,0)');
    expect(pgType('bigint unsigned')).toBe('numeric(20,0)');
    expect(mysqlValueToCanonical('bigint(20) unsigned', '18446744073709551615')).toBe('18446744073709551615');
    expect(toPostgres('bigint(20) unsigned', { defaultExpression: '18446744073709551615' }).defaultExpression).toBe('18446744073709551615');
  });

  it('decimal(p,s) → numeric(p,s), values as is', () => {
    expect(pgType('decimal(10,2)')).toBe('numeric(10,2)');
    expect(pgType('decimal(65,30) unsigned')).toBe('numeric(65,30)');
    expect(mysqlValueToCanonical('decimal(10,2)', '-12.34')).toBe('-12.34');
    expect(mysqlValueToCanonical('decimal(65,30)', Buffer.from('12345678901234567890123456789012345.123456789012345678901234567890'))).toBe(
      '12345678901234567890123456789012345.123456789012345678901234567890',
    );
    expect(toPostgres('decimal(10,2)', { defaultExpression: '1.50' }).defaultExpression).toBe('1.50');
  });

  it('float → real: the shortest text that reads back as the same 32-bit float', () => {
    expect(pgType('float')).toBe('real');
    expect(pgType('float(7,3) unsigned')).toBe('real');
    // What CAST(f AS DOUBLE) returns for floats stored from 0.1, 3.40282e38, 16777217 and 123456.789.
    expect(mysqlValueToCanonical('float', 0.10000000149011612)).toBe('0.1');
    expect(mysqlValueToCanonical('float', '3.402820018375656e38')).toBe('3.40282e+38');
    expect(mysqlValueToCanonical('float', 16777216)).toBe('16777216');
    expect(mysqlValueToCanonical('float', Buffer.from('123456.7890625'))).toBe('123456.79');
    expect(mysqlValueToCanonical('float', 1.1754943508222875e-38)).toBe('1.1754944e-38');
    for (const v of [0.1, 1 / 3, 3.4028234663852886e38, 1.401298464324817e-45, -2.5]) {
      const text = shortestFloat32(v);
      expect(Math.fround(Number(text))).toBe(Math.fround(v));
    }
  });

  it('double → double precision: the shortest text that reads back as the same double', () => {
    expect(pgType('double')).toBe('double precision');
    expect(pgType('double(10,2)')).toBe('double precision');
    expect(mysqlValueToCanonical('double', 0.1)).toBe('0.1');
    expect(mysqlValueToCanonical('double', '1e300')).toBe('1e+300');
    expect(mysqlValueToCanonical('double', Buffer.from('0.30000000000000004'))).toBe('0.30000000000000004');
    expect(mysqlValueToCanonical('double', '5e-324')).toBe('5e-324');
    expect(mysqlValueToCanonical('double', '2.2250738585072014e-308')).toBe('2.2250738585072014e-308');
  });

  it('bit(n) → bit varying(n): n binary digits', () => {
    expect(pgType('bit(5)')).toBe('bit varying(5)');
    expect(pgType('bit(1)')).toBe('bit varying(1)');
    expect(mysqlValueToCanonical('bit(5)', Buffer.from([0x03]))).toBe('00011');
    expect(mysqlValueToCanonical('bit(1)', Buffer.from([0x01]))).toBe('1');
    expect(mysqlValueToCanonical('bit(16)', Buffer.from([0x01, 0x02]))).toBe('0000000100000010');
    expect(mysqlValueToCanonical('bit(64)', Buffer.from('ffffffffffffffff', 'hex'))).toBe('1'.repeat(64));
    expect(mysqlValueToCanonical('bit(5)', 5)).toBe('00101');
    expect(toPostgres('bit(5)', { defaultExpression: "b'101'" }).defaultExpression).toBe("B'00101'");
  });

  it('year → smallint, as is', () => {
    expect(pgType('year(4)')).toBe('smallint');
    expect(pgType('year')).toBe('smallint');
    expect(mysqlValueToCanonical('year(4)', 2024)).toBe('2024');
    expect(mysqlValueToCanonical('year(4)', Buffer.from('1901'))).toBe('1901');
    expect(toPostgres('year(4)', { defaultExpression: '2024' }).defaultExpression).toBe('2024');
  });

  it('date → date; zero dates become NULL, or a DATA_ERROR when refused', () => {
    expect(pgType('date')).toBe('date');
    expect(mysqlValueToCanonical('date', '2024-02-29')).toBe('2024-02-29');
    expect(mysqlValueToCanonical('date', '1000-01-01')).toBe('1000-01-01');
    expect(mysqlValueToCanonical('date', '0000-00-00')).toBeNull();
    expect(mysqlValueToCanonical('date', '2024-00-10')).toBeNull();
    expect(mysqlValueToCanonical('date', Buffer.from('2024-05-00'))).toBeNull();
    const error = dataError(() => mysqlValueToCanonical('date', '0000-00-00', { zeroDates: 'refuse', column: 'shop.t.d' }));
    expect(error.message).toContain('shop.t.d');
    expect(error.message).toContain('0000-00-00');
    const zero = toPostgres('date', { defaultExpression: "'0000-00-00'" });
    expect(zero.defaultExpression).toBeNull();
    expect(zero.warnings.join(' ')).toContain('shop.t.c');
    expect(toPostgres('date', { defaultExpression: "'2024-01-02'" }).defaultExpression).toBe("'2024-01-02'");
    expect(toPostgres('date', { defaultExpression: 'curdate()' }).defaultExpression).toBe('CURRENT_DATE');
  });

  it('datetime(n) → timestamp(n) without time zone; zero dates as for date', () => {
    expect(pgType('datetime(6)')).toBe('timestamp(6) without time zone');
    expect(pgType('datetime(3)')).toBe('timestamp(3) without time zone');
    expect(pgType('datetime')).toBe('timestamp(0) without time zone');
    expect(mysqlValueToCanonical('datetime(6)', '2024-01-02 03:04:05.123456')).toBe('2024-01-02 03:04:05.123456');
    expect(mysqlValueToCanonical('datetime', '9999-12-31 23:59:59')).toBe('9999-12-31 23:59:59');
    expect(mysqlValueToCanonical('datetime(6)', '0000-00-00 00:00:00.000000')).toBeNull();
    const d = toPostgres('datetime(6)', { defaultExpression: 'current_timestamp(6) ON UPDATE current_timestamp(6)' });
    expect(d.defaultExpression).toBe('CURRENT_TIMESTAMP');
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings[0]).toContain('ON UPDATE current_timestamp(6)');
    expect(d.warnings[0]).toContain('shop.t.c');
    expect(toPostgres('datetime', { defaultExpression: "'0000-00-00 00:00:00'" }).defaultExpression).toBeNull();
  });

  it('timestamp(n) → timestamp(n) with time zone, read in UTC: +00 appended', () => {
    expect(pgType('timestamp(3)')).toBe('timestamp(3) with time zone');
    expect(pgType('timestamp')).toBe('timestamp(0) with time zone');
    expect(mysqlValueToCanonical('timestamp(3)', '2038-01-19 03:14:07.123')).toBe('2038-01-19 03:14:07.123+00');
    expect(mysqlValueToCanonical('timestamp', Buffer.from('1970-01-01 00:00:01'))).toBe('1970-01-01 00:00:01+00');
    expect(mysqlValueToCanonical('timestamp', '0000-00-00 00:00:00')).toBeNull();
    expect(toPostgres('timestamp(3)', { defaultExpression: 'current_timestamp(3)' }).defaultExpression).toBe('CURRENT_TIMESTAMP');
    expect(toPostgres('timestamp', { defaultExpression: "'2020-01-01 00:00:00'" }).defaultExpression).toBe("'2020-01-01 00:00:00+00'");
    expect(toPostgres('timestamp', { defaultExpression: 'CURRENT_TIMESTAMP' }).defaultExpression).toBe('CURRENT_TIMESTAMP');
  });

  it('time(n) → interval: [-]HHH:MM:SS[.ffffff]', () => {
    expect(pgType('time(2)')).toBe('interval');
    expect(pgType('time')).toBe('interval');
    expect(mysqlValueToCanonical('time', '838:59:59')).toBe('838:59:59');
    expect(mysqlValueToCanonical('time(2)', '-838:59:59.99')).toBe('-838:59:59.99');
    expect(mysqlValueToCanonical('time(6)', Buffer.from('12:00:00.000001'))).toBe('12:00:00.000001');
    expect(toPostgres('time(2)', { defaultExpression: "'-12:00:00.00'" }).defaultExpression).toBe("'-12:00:00.00'");
  });

  it('char(n), varchar(n) → character(n), character varying(n): utf8mb4 text, emoji included', () => {
    expect(pgType('char(4)')).toBe('character(4)');
    expect(pgType('varchar(20)')).toBe('character varying(20)');
    expect(mysqlValueToCanonical('varchar(20)', '😀 emoji')).toBe('😀 emoji');
    expect(mysqlValueToCanonical('varchar(20)', Buffer.from('😀 ünïcödé', 'utf8'))).toBe('😀 ünïcödé');
    expect(mysqlValueToCanonical('char(4)', "it's")).toBe("it's");
    expect(toPostgres('char(4)', { defaultExpression: "'it''s'" }).defaultExpression).toBe("'it''s'");
    expect(toPostgres('varchar(20)', { defaultExpression: "'a\\\\b'" }).defaultExpression).toBe("'a\\b'");
  });

  it('tinytext, text, mediumtext, longtext → text', () => {
    for (const t of ['tinytext', 'text', 'mediumtext', 'longtext']) expect(pgType(t)).toBe('text');
    expect(mysqlValueToCanonical('text', 'tab\there\nnewline \\ backslash')).toBe('tab\there\nnewline \\ backslash');
  });

  it('binary(n), varbinary(n), tinyblob, blob, mediumblob, longblob → bytea: \\x + hex', () => {
    for (const t of ['binary(4)', 'varbinary(10)', 'tinyblob', 'blob', 'mediumblob', 'longblob']) expect(pgType(t)).toBe('bytea');
    expect(mysqlValueToCanonical('binary(4)', Buffer.from([0, 1, 0, 0]))).toBe('\\x00010000');
    expect(mysqlValueToCanonical('blob', Buffer.from([0x00, 0xff, 0x10]))).toBe('\\x00ff10');
    expect(mysqlValueToCanonical('varbinary(10)', Buffer.alloc(0))).toBe('\\x');
    expect(toPostgres('binary(4)', { defaultExpression: "'ab'" }).defaultExpression).toBe("'\\x61620000'");
  });

  it('enum → an enum type <table>_<column> in the table schema; the label', () => {
    const mapping = toPostgres("enum('a','b''q','c\\\\d',' sp')", { defaultExpression: "'a'" });
    expect(mapping.nativeType).toBe('"shop"."t_c"');
    expect(mapping.defaultExpression).toBe("'a'");
    expect(parseMysqlStringList("'a','b''q','c\\\\d',' sp'")).toEqual(['a', "b'q", 'c\\d', ' sp']);
    expect(mysqlValueToCanonical("enum('a','b')", 'b')).toBe('b');
    expect(mysqlValueToCanonical("enum('a','b')", Buffer.from('c\\d'))).toBe('c\\d');
    const schema = mapMysqlSchemaToPostgres(database([table('t', [column('c', "enum('a','b''q')")])]));
    expect(schema.schema.enums).toEqual([{ schema: 'shop', name: 't_c', labels: ['a', "b'q"] }]);
  });

  it('set → text[]: {a,b}; the empty set is {}', () => {
    expect(pgType("set('x','y','z')")).toBe('text[]');
    expect(mysqlValueToCanonical("set('x','y','z')", 'x,z')).toBe('{x,z}');
    expect(mysqlValueToCanonical("set('x','y','z')", '')).toBe('{}');
    expect(mysqlValueToCanonical("set('a b','q\"','null','{x}')", Buffer.from('a b,q",null,{x}'))).toBe('{"a b","q\\"","null","{x}"}');
    expect(toPostgres("set('x','y','z')", { defaultExpression: "'x,y'" }).defaultExpression).toBe("'{x,y}'");
  });

  it('json → jsonb: the JSON text; MariaDB JSON (longtext with json_valid) too', () => {
    expect(pgType('json')).toBe('jsonb');
    const mariadb = toPostgres('longtext', {}, { checkConstraints: [{ name: 'c', definition: 'json_valid(`c`)' }] });
    expect(mariadb.nativeType).toBe('jsonb');
    expect(toPostgres('longtext', {}, { checkConstraints: [{ name: 'x', definition: 'CHECK (json_valid(`other`))' }] }).nativeType).toBe('text');
    expect(mysqlValueToCanonical('json', '{"a": 12345678901234567890}')).toBe('{"a": 12345678901234567890}');
    expect(mysqlValueToCanonical('longtext', Buffer.from('[1, "😀"]'))).toBe('[1, "😀"]');
    const schema = mapMysqlSchemaToPostgres(database([table('t', [column('j', 'longtext')], { checkConstraints: [{ name: 'j', definition: 'json_valid(`j`)' }] })]));
    expect(schema.schema.tables[0]?.checkConstraints).toEqual([]);
  });

  it('MariaDB uuid → uuid, inet4 / inet6 → inet', () => {
    expect(pgType('uuid')).toBe('uuid');
    expect(pgType('inet6')).toBe('inet');
    expect(pgType('inet4')).toBe('inet');
    expect(mysqlValueToCanonical('uuid', '123e4567-e89b-12d3-a456-426614174000')).toBe('123e4567-e89b-12d3-a456-426614174000');
    expect(mysqlValueToCanonical('inet6', '::ffff:1.2.3.4')).toBe('::ffff:1.2.3.4');
  });

  it('generated columns → ordinary columns holding the source values, with a warning', () => {
    const mapping = toPostgres('int(11)', { generatedExpression: '`i` * 2' });
    expect(mapping).toEqual({ nativeType: 'integer', defaultExpression: null, identity: null, warnings: [expect.stringContaining('shop.t.c')] });
    expect(mapping.warnings[0]).toContain('`i` * 2');
    const t = table('t', [column('i', 'int'), column('g', 'int', { generatedExpression: '`i` + 1' })]);
    expect(copiedColumns(t, 'mysql', 'postgresql').map((c) => c.name)).toEqual(['i', 'g']);
    expect(copiedColumns(t, 'mysql', 'mysql').map((c) => c.name)).toEqual(['i']);
    expect(copiedColumns(t, 'postgresql', 'postgresql').map((c) => c.name)).toEqual(['i']);
    const pgTable = { ...t, schema: 'public' };
    expect(copyOutSql(pgTable)).toBe('COPY "public"."t" ("i") TO STDOUT');
    expect(copyOutSql(pgTable, 'mysql')).toBe('COPY (SELECT "i", "g" FROM "public"."t") TO STDOUT');
    expect(copyInSql(t)).toBe('COPY "shop"."t" ("i") FROM STDIN');
    expect(copyInSql(t, 'mysql')).toBe('COPY "shop"."t" ("i", "g") FROM STDIN');
  });

  it('AUTO_INCREMENT → GENERATED BY DEFAULT AS IDENTITY, its sequence at the source counter', () => {
    expect(toPostgres('int(11)', { identity: 'by-default' })).toEqual({ nativeType: 'integer', defaultExpression: null, identity: 'by-default', warnings: [] });
    const t = table('orders', [column('id', 'int(10) unsigned', { identity: 'by-default', nullable: false })], { primaryKey: { name: 'PRIMARY', columns: ['id'] } });
    const schema = database([t]);
    schema.sequences.push({
      schema: 'shop',
      name: 'orders_id_seq',
      dataType: 'int(10) unsigned',
      start: '1',
      increment: '1',
      minValue: '1',
      maxValue: '4294967295',
      cache: '1',
      cycle: false,
      lastValue: '41',
      ownedBy: { table: { schema: 'shop', name: 'orders' }, column: 'id' },
      identity: true,
    });
    const mapped = mapMysqlSchemaToPostgres(schema).schema;
    expect(mapped.tables[0]?.columns[0]).toMatchObject({ nativeType: 'bigint', identity: 'by-default', defaultExpression: null });
    expect(mapped.sequences).toEqual([
      {
        schema: 'shop',
        name: 'orders_id_seq',
        dataType: 'bigint',
        start: '1',
        increment: '1',
        minValue: '1',
        maxValue: '9223372036854775807',
        cache: '1',
        cycle: false,
        lastValue: '41',
        ownedBy: { table: { schema: 'shop', name: 'orders' }, column: 'id' },
        identity: true,
      },
    ]);
  });

  it('bigint unsigned AUTO_INCREMENT → numeric(20,0) with a default from a sequence the column owns', () => {
    expect(toPostgres('bigint(20) unsigned', { identity: 'by-default' }).identity).toBe('sequence');
    const mapped = mapMysqlSchemaToPostgres(database([table('users', [column('id', 'bigint(20) unsigned', { identity: 'by-default' })])])).schema;
    expect(mapped.tables[0]?.columns[0]).toMatchObject({ nativeType: 'numeric(20,0)', identity: null, defaultExpression: `nextval('"shop"."users_id_seq"'::regclass)` });
    expect(mapped.sequences[0]).toMatchObject({ name: 'users_id_seq', dataType: 'bigint', identity: false, lastValue: null });
  });

  it('spatial types → PostGIS geometry with the subtype, and the SRID when the column has one; the mapped schema needs postgis', () => {
    expect(toPostgres('point').nativeType).toBe('public.geometry(Point)');
    expect(toPostgres('point', { srid: 4326 }).nativeType).toBe('public.geometry(Point,4326)');
    expect(toPostgres('geometry').nativeType).toBe('public.geometry');
    expect(toPostgres('geometry', { srid: 3857 }).nativeType).toBe('public.geometry(Geometry,3857)');
    expect(toPostgres('polygon').nativeType).toBe('public.geometry(Polygon)');
    expect(toPostgres('geomcollection').nativeType).toBe('public.geometry(GeometryCollection)');
    expect(toPostgres('multilinestring', { srid: 4326 }).nativeType).toBe('public.geometry(MultiLineString,4326)');
    const mapped = mapMysqlSchemaToPostgres(
      database([
        table('places', [column('id', 'int'), column('shape', 'point', { nullable: false, srid: 4326 })], {
          indexes: [{ name: 'shape_idx', definition: 'CREATE SPATIAL INDEX `shape_idx` ON `shop`.`places` (`shape`)', columns: ['shape'], method: 'SPATIAL' }],
        }),
      ]),
    );
    expect(mapped.unsupported).toEqual([]);
    expect(mapped.schema.extensions).toEqual(['postgis']);
    expect(mapped.schema.tables[0]?.indexes[0]?.definition).toBe('CREATE INDEX "shape_idx" ON "shop"."places" USING gist ("shape")');
    expect(mapMysqlSchemaToPostgres(database([table('plain', [column('id', 'int')])])).schema.extensions).toEqual([]);
  });

  it('unknown types are refused with what to do', () => {
    const c = column('shape', 'vector(3)');
    const mapping = mapMysqlColumnToPostgres(table('places', [c]), c);
    expect(isRefused(mapping)).toBe(true);
    if (isRefused(mapping)) {
      expect(mapping.unsupported).toContain('shop.places.shape');
      expect(mapping.unsupported).toContain('Exclude the table shop.places');
    }
  });

  it('drops expression defaults with a warning naming the column', () => {
    const mapping = toPostgres('int(11)', { defaultExpression: '(1 + 2)' });
    expect(mapping.defaultExpression).toBeNull();
    expect(mapping.warnings[0]).toContain('shop.t.c');
    expect(mapping.warnings[0]).toContain('(1 + 2)');
    expect(toPostgres('int(11)', { defaultExpression: '(42)' }).defaultExpression).toBe('42');
    expect(toPostgres('varchar(36)', { defaultExpression: 'uuid()' }).defaultExpression).toBeNull();
    expect(toPostgres('int(11)', { defaultExpression: 'NULL' })).toEqual({ nativeType: 'integer', defaultExpression: null, identity: null, warnings: [] });
  });
});

function database(tables: TableSchema[]): DatabaseSchema {
  return { engine: 'mysql', schemas: [...new Set(tables.map((t) => t.schema))], tables, sequences: [], enums: [], domains: [], extensions: [] };
}

describe('mapMysqlSchemaToPostgres: names, keys, checks, indexes, foreign keys', () => {
  const users = table(
    'users',
    [column('id', 'int(11)', { nullable: false }), column('email', 'varchar(200)'), column('bio', 'text'), column('age', 'int(11)'), column('data', 'blob')],
    {
      primaryKey: { name: 'PRIMARY', columns: ['id'] },
      uniqueConstraints: [{ name: 'email', columns: ['email'] }],
      checkConstraints: [{ name: 'age_positive', definition: '`age` > 0 and `email` <> \'it\\\'s\'' }],
      indexes: [
        { name: 'idx_age', definition: 'KEY `idx_age` (`age`)', columns: ['age'] },
        { name: 'bio_prefix', definition: 'KEY `bio_prefix` (`bio`(10))', columns: ['bio', 'age'], prefixLengths: [10, null] },
        { name: 'data_prefix', definition: 'UNIQUE KEY `data_prefix` (`data`(4))', columns: ['data'], prefixLengths: [4], unique: true },
        { name: 'ft', definition: 'FULLTEXT KEY `ft` (`bio`)', columns: ['bio'], method: 'FULLTEXT' },
      ],
    },
  );
  const orders = table('orders', [column('id', 'int(11)'), column('user_id', 'int(11)'), column('email', 'varchar(200)')], {
    primaryKey: { name: 'PRIMARY', columns: ['id'] },
    indexes: [{ name: 'idx_age', definition: 'KEY `idx_age` (`user_id`)', columns: ['user_id'] }],
    foreignKeys: [
      {
        name: 'orders_user',
        definition: 'FOREIGN KEY (`user_id`) REFERENCES `shop`.`users` (`id`) ON DELETE CASCADE',
        referencedTable: { schema: 'shop', name: 'users' },
        columns: ['user_id'],
        referencedColumns: ['id'],
        onDelete: 'CASCADE',
        onUpdate: 'RESTRICT',
      },
      {
        name: 'orders_email',
        definition: 'FOREIGN KEY (`email`) REFERENCES `shop`.`users` (`bio`)',
        referencedTable: { schema: 'shop', name: 'users' },
        columns: ['email'],
        referencedColumns: ['bio'],
        onDelete: 'NO ACTION',
        onUpdate: 'NO ACTION',
      },
    ],
  });
  const mapped = mapMysqlSchemaToPostgres(database([orders, users]));
  const [o, u] = mapped.schema.tables as [TableSchema, TableSchema];

  it('names primary keys <table>_pkey and keeps index names unique per PostgreSQL schema', () => {
    expect(o.primaryKey?.name).toBe('orders_pkey');
    expect(u.primaryKey?.name).toBe('users_pkey');
    expect(u.uniqueConstraints).toEqual([{ name: 'email', columns: ['email'] }]);
    expect(o.indexes.map((i) => i.name)).toEqual(['idx_age']);
    expect(u.indexes.map((i) => i.name)).toEqual(['users_idx_age', 'bio_prefix', 'data_prefix']);
    expect(mapped.schema.engine).toBe('postgresql');
  });

  it('builds indexes from their columns, prefixes as left() / substring(), and leaves FULLTEXT out with a warning', () => {
    expect(u.indexes.map((i) => i.definition)).toEqual([
      'CREATE INDEX "users_idx_age" ON "shop"."users" ("age")',
      'CREATE INDEX "bio_prefix" ON "shop"."users" (left("bio", 10), "age")',
      'CREATE UNIQUE INDEX "data_prefix" ON "shop"."users" (substring("data" from 1 for 4))',
    ]);
    expect(mapped.warnings.some((w) => w.includes('FULLTEXT index ft on shop.users'))).toBe(true);
  });

  it('reads the key parts from the MySQL statement when the introspector gives no columns', () => {
    const t = table('t', [column('a', 'text'), column('b', 'int')], {
      indexes: [
        { name: 'u', definition: 'CREATE UNIQUE INDEX `u` ON `shop`.`t` (`a`(10), `b` DESC) USING HASH' },
        { name: 'e', definition: 'CREATE INDEX `e` ON `shop`.`t` ((`b` + 1))' },
      ],
      foreignKeys: [{ name: 'fk', definition: 'FOREIGN KEY (`b`) REFERENCES `shop`.`p` (`id`) ON DELETE SET NULL', referencedTable: { schema: 'shop', name: 'p' } }],
    });
    const result = mapMysqlSchemaToPostgres(database([t]));
    expect(result.schema.tables[0]?.indexes.map((i) => i.definition)).toEqual(['CREATE UNIQUE INDEX "u" ON "shop"."t" (left("a", 10), "b")']);
    expect(result.warnings.some((w) => w.includes('index e on shop.t has expression key parts'))).toBe(true);
    expect(result.schema.tables[0]?.foreignKeys[0]?.definition).toBe('FOREIGN KEY ("b") REFERENCES "shop"."p" ("id") ON DELETE SET NULL');
  });

  it('translates checks to PostgreSQL quoting', () => {
    expect(u.checkConstraints).toEqual([{ name: 'age_positive', definition: `CHECK ("age" > 0 and "email" <> 'it''s')` }]);
  });

  it('builds foreign keys from their columns and leaves out one PostgreSQL cannot create', () => {
    expect(o.foreignKeys).toHaveLength(1);
    expect(o.foreignKeys[0]?.definition).toBe('FOREIGN KEY ("user_id") REFERENCES "shop"."users" ("id") ON DELETE CASCADE ON UPDATE RESTRICT');
    expect(mapped.warnings.some((w) => w.includes('orders_email') && w.includes('neither its primary key nor a unique key'))).toBe(true);
  });

  it('fits long names into 63 bytes and keeps them distinct', () => {
    const long = 'x'.repeat(70);
    expect(Buffer.byteLength(fitPostgresIdentifier(long))).toBe(63);
    expect(fitPostgresIdentifier(`${long}a`)).not.toBe(fitPostgresIdentifier(`${long}b`));
    expect(fitPostgresIdentifier('short')).toBe('short');
    const tables = [table('t', [column('c', "enum('a')")]), table('t_c', [column('id', 'int')])];
    expect(mapMysqlSchemaToPostgres(database(tables)).schema.enums[0]?.name).toBe('t_c_enum');
  });

  it('maps the same schema to the same names every time', () => {
    expect(mapMysqlSchemaToPostgres(database([orders, users]))).toEqual(mapped);
  });
});

describe('PostgreSQL to MySQL / MariaDB, one test per row of docs/type-mapping.md', () => {
  it('smallint, integer, bigint → same; serial / identity → AUTO_INCREMENT', () => {
    expect(toMysql('smallint').nativeType).toBe('smallint');
    expect(toMysql('integer').nativeType).toBe('int');
    expect(toMysql('bigint').nativeType).toBe('bigint');
    expect(toMysql('integer', { defaultExpression: "nextval('public.t_id_seq'::regclass)" })).toEqual({ nativeType: 'int', defaultExpression: null, autoIncrement: true, warnings: [] });
    expect(toMysql('bigint', { identity: 'always' }).autoIncrement).toBe(true);
    expect(toMysql('integer', { defaultExpression: "'-1'::integer" }).defaultExpression).toBe('-1');
    expect(canonicalToMysqlValue('bigint', '-9223372036854775808')).toBe('-9223372036854775808');
  });

  it('numeric(p,s) → decimal(p,s); unconstrained numeric → decimal(65,30) with a warning; NaN refused at load', () => {
    expect(toMysql('numeric(12,2)').nativeType).toBe('decimal(12,2)');
    const unconstrained = toMysql('numeric');
    expect(unconstrained.nativeType).toBe('decimal(65,30)');
    expect(unconstrained.warnings[0]).toContain('public.t.c');
    expect(refusedToMysql('numeric(70,2)')).toContain('public.t.c');
    expect(refusedToMysql('numeric(40,35)')).toContain('numeric(40,35)');
    expect(canonicalToMysqlValue('numeric(12,2)', '-12.34')).toBe('-12.34');
    const error = dataError(() => canonicalToMysqlValue('numeric', 'NaN', 'public.t.c'));
    expect(error.message).toContain('public.t.c');
    expect(error.message).toContain('NaN');
  });

  it('real, double precision → float, double; NaN and infinities refused at load', () => {
    expect(toMysql('real').nativeType).toBe('float');
    expect(toMysql('double precision').nativeType).toBe('double');
    expect(canonicalToMysqlValue('real', '3.40282e+38')).toBe('3.40282e+38');
    // PostgreSQL prints the largest real as 3.4028235e+38, a double past it that MySQL refuses for a FLOAT.
    expect(canonicalToMysqlValue('real', '3.4028235e+38')).toBe('3.4028234663852886e+38');
    expect(canonicalToMysqlValue('real', '-3.4028235e+38')).toBe('-3.4028234663852886e+38');
    expect(canonicalToMysqlValue('real', '-0')).toBe('-0');
    expect(canonicalToMysqlValue('double precision', '0.30000000000000004')).toBe('0.30000000000000004');
    for (const v of ['NaN', 'Infinity', '-Infinity']) dataError(() => canonicalToMysqlValue('double precision', v, 'public.t.c'));
    dataError(() => canonicalToMysqlValue('real', 'Infinity'));
  });

  it('boolean → tinyint(1): t → 1, f → 0', () => {
    expect(toMysql('boolean').nativeType).toBe('tinyint(1)');
    expect(canonicalToMysqlValue('boolean', 't')).toBe('1');
    expect(canonicalToMysqlValue('boolean', 'f')).toBe('0');
    expect(canonicalToMysqlValue('boolean', null)).toBeNull();
    expect(toMysql('boolean', { defaultExpression: 'true' }).defaultExpression).toBe('1');
  });

  it('character(n), character varying(n) → char(n), varchar(n); over 16383 characters → longtext', () => {
    expect(toMysql('character(10)').nativeType).toBe('char(10)');
    expect(toMysql('character(300)').nativeType).toBe('varchar(300)');
    expect(toMysql('character varying(20)').nativeType).toBe('varchar(20)');
    expect(toMysql('character varying(16383)').nativeType).toBe('varchar(16383)');
    expect(toMysql('character varying(16384)').nativeType).toBe('longtext');
    expect(toMysql('character varying').nativeType).toBe('longtext');
    expect(canonicalToMysqlValue('character varying(20)', '😀 emoji')).toBe('😀 emoji');
    expect(toMysql('character varying(20)', { defaultExpression: "'it''s \\ ok'::character varying" }).defaultExpression).toBe("'it''s \\\\ ok'");
  });

  it('text → longtext', () => {
    expect(toMysql('text').nativeType).toBe('longtext');
    expect(toMysql('text', { defaultExpression: "'x'::text" }).defaultExpression).toBe("('x')");
  });

  it('bytea → longblob: \\x hex → bytes', () => {
    expect(toMysql('bytea').nativeType).toBe('longblob');
    expect(canonicalToMysqlValue('bytea', '\\x00ff10')).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(canonicalToMysqlValue('bytea', '\\x')).toEqual(Buffer.alloc(0));
  });

  it('date → date; infinity refused at load', () => {
    expect(toMysql('date').nativeType).toBe('date');
    expect(canonicalToMysqlValue('date', '2024-02-29')).toBe('2024-02-29');
    dataError(() => canonicalToMysqlValue('date', 'infinity', 'public.t.c'));
    dataError(() => canonicalToMysqlValue('date', '0044-03-15 BC'));
    dataError(() => canonicalToMysqlValue('date', '10000-01-01'));
    expect(toMysql('date', { defaultExpression: 'CURRENT_DATE' }).defaultExpression).toBe('(curdate())');
  });

  it('timestamp(n) → datetime(n)', () => {
    expect(toMysql('timestamp(3) without time zone').nativeType).toBe('datetime(3)');
    expect(toMysql('timestamp without time zone').nativeType).toBe('datetime(6)');
    expect(toMysql('timestamp(0) without time zone').nativeType).toBe('datetime(0)');
    expect(canonicalToMysqlValue('timestamp without time zone', '2024-01-02 03:04:05.123456')).toBe('2024-01-02 03:04:05.123456');
    dataError(() => canonicalToMysqlValue('timestamp(3) without time zone', '-infinity'));
    expect(toMysql('timestamp(3) without time zone', { defaultExpression: 'now()' }).defaultExpression).toBe('CURRENT_TIMESTAMP(3)');
    expect(toMysql('timestamp(0) without time zone', { defaultExpression: 'CURRENT_TIMESTAMP' }).defaultExpression).toBe('CURRENT_TIMESTAMP');
  });

  it('timestamp(n) with time zone → datetime(n), stored in UTC', () => {
    expect(toMysql('timestamp(6) with time zone').nativeType).toBe('datetime(6)');
    expect(toMysql('timestamp with time zone').nativeType).toBe('datetime(6)');
    expect(canonicalToMysqlValue('timestamp with time zone', '2024-01-02 03:04:05.123456+00')).toBe('2024-01-02 03:04:05.123456');
    expect(canonicalToMysqlValue('timestamp with time zone', '2024-01-02 03:04:05.5+05:30')).toBe('2024-01-01 21:34:05.5');
    expect(canonicalToMysqlValue('timestamp(0) with time zone', '2023-12-31 20:00:00-08')).toBe('2024-01-01 04:00:00');
    expect(canonicalToMysqlValue('timestamp with time zone', '2024-02-28 23:30:00-01')).toBe('2024-02-29 00:30:00');
    expect(canonicalToMysqlValue('timestamp with time zone', '1900-01-01 00:00:00+00:09:21')).toBe('1899-12-31 23:50:39');
    dataError(() => canonicalToMysqlValue('timestamp with time zone', 'infinity', 'public.t.c'));
    dataError(() => canonicalToMysqlValue('timestamp with time zone', '0044-03-15 12:00:00+00 BC'));
    expect(toMysql('timestamp with time zone', { defaultExpression: "'2020-01-01 05:00:00+05'::timestamp with time zone" }).defaultExpression).toBe("'2020-01-01 00:00:00'");
  });

  it('time(n) → time(n)', () => {
    expect(toMysql('time(3) without time zone').nativeType).toBe('time(3)');
    expect(toMysql('time without time zone').nativeType).toBe('time(6)');
    expect(canonicalToMysqlValue('time without time zone', '24:00:00')).toBe('24:00:00');
    refusedToMysql('time with time zone');
  });

  it('uuid → char(36), as is', () => {
    expect(toMysql('uuid').nativeType).toBe('char(36)');
    expect(canonicalToMysqlValue('uuid', '123e4567-e89b-12d3-a456-426614174000')).toBe('123e4567-e89b-12d3-a456-426614174000');
    expect(toMysql('uuid', { defaultExpression: 'gen_random_uuid()' }).defaultExpression).toBe('(uuid())');
  });

  it('json, jsonb → json, as is', () => {
    expect(toMysql('json').nativeType).toBe('json');
    expect(toMysql('jsonb').nativeType).toBe('json');
    expect(canonicalToMysqlValue('jsonb', '{"a": 12345678901234567890}')).toBe('{"a": 12345678901234567890}');
    expect(toMysql('jsonb', { defaultExpression: "'{}'::jsonb" }).defaultExpression).toBe("('{}')");
  });

  it('enum types → enum(...), the label as is', () => {
    const types = { enums: [{ schema: 'public', name: 'mood', labels: ['happy', "it's", 'back\\slash'] }], domains: [] };
    expect(toMysql('public.mood', {}, types).nativeType).toBe("enum('happy','it''s','back\\\\slash')");
    expect(toMysql('public.mood', { defaultExpression: "'happy'::public.mood" }, types).defaultExpression).toBe("'happy'");
    expect(canonicalToMysqlValue('public.mood', "it's")).toBe("it's");
    refusedToMysql('public.mood');
  });

  it('domains → their base type; the domain checks are not carried over (warning)', () => {
    const types: PostgresUserTypes = {
      enums: [],
      domains: [{ schema: 'public', name: 'posint', baseType: 'integer', notNull: false, defaultExpression: null, checks: [{ name: 'posint_check', definition: 'CHECK ((VALUE > 0))' }] }],
    };
    const mapping = toMysql('public.posint', {}, types);
    expect(mapping.nativeType).toBe('int');
    expect(mapping.warnings[0]).toContain('CHECK ((VALUE > 0))');
    expect(mapping.warnings[0]).toContain('public.t.c');
  });

  it('inet, cidr → varchar(43)', () => {
    expect(toMysql('inet').nativeType).toBe('varchar(43)');
    expect(toMysql('cidr').nativeType).toBe('varchar(43)');
    expect(canonicalToMysqlValue('inet', '2001:db8::1/128')).toBe('2001:db8::1/128');
  });

  it('generated columns → ordinary columns holding the source values, with a warning', () => {
    const mapping = toMysql('integer', { generatedExpression: '(a * 2)' });
    expect(mapping.nativeType).toBe('int');
    expect(mapping.warnings[0]).toContain('(a * 2)');
  });

  it('arrays, ranges, interval, composite and other types are refused, naming the column and what to do', () => {
    const composite: PostgresUserTypes = { enums: [], domains: [] };
    for (const [type, hint] of [
      ['integer[]', 'json'],
      ['text[]', 'json'],
      ['int4range', 'bound'],
      ['tstzrange', 'bound'],
      ['interval', 'seconds'],
      ['interval(3)', 'seconds'],
      ['public.address', 'json'],
      ['money', 'docs/type-mapping.md'],
      ['xml', 'docs/type-mapping.md'],
    ] as const) {
      const message = refusedToMysql(type, composite);
      expect(message).toContain('public.t.c');
      expect(message).toContain('Exclude the table public.t');
      expect(message).toContain(hint);
    }
  });
});

describe('COPY text helpers', () => {
  it('escapes backslash, newline, carriage return and tab only', () => {
    expect(escapeCopyText('plain 😀')).toBe('plain 😀');
    expect(escapeCopyText('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(escapeCopyText('\\x00ff')).toBe('\\\\x00ff');
    expect(formatCopyRow(['1', null, 'a\tb', ''])).toBe(`1\t${COPY_NULL}\ta\\tb\t\n`);
  });

  it('parses lines back, PostgreSQL escapes included', () => {
    const values = ['1', null, 'a\tb\\c\nd\re', '', '\\N literal', '😀'];
    const line = formatCopyRow(values).slice(0, -1);
    expect(parseCopyText(line)).toEqual(values);
    expect(parseCopyLine(Buffer.from('\\b\\f\\v\\101\\x41\\q\t\\N\t\\\\N'))).toEqual([Buffer.from('\b\f\vAAq'), null, Buffer.from('\\N')]);
    expect(parseCopyLine(Buffer.from('a\\\tb\tc'))).toEqual([Buffer.from('a\tb'), Buffer.from('c')]);
    expect(parseCopyLine(Buffer.from(''))).toEqual([Buffer.alloc(0)]);
  });
});
