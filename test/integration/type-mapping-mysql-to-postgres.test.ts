/**
 * docs/type-mapping.md, MySQL/MariaDB to PostgreSQL, against the real servers: a MariaDB table
 * with every type of the table, read through MysqlEngine's snapshot reader in the canonical
 * form, created on PostgreSQL by the schema writer, loaded by the table writer, then compared
 * value for value with the documented mappings. Also: names unique per PostgreSQL schema,
 * foreign keys to `bigint unsigned` keys, the AUTO_INCREMENT counter, verify's checks, and
 * the change applier with one canonical row per type.
 */
import { Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCopyText } from '../../src/core/copy-text.js';
import type { ObjectSelection } from '../../src/core/object-selection.js';
import type { DatabaseSchema, TableSchema } from '../../src/core/schema.js';
import { shortestFloat32 } from '../../src/core/type-mapping.js';
import type { RowChange, SchemaWriter, SourceSnapshot, TableWriter } from '../../src/engines/engine.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { createMysqlTestDatabase, type MysqlTestDatabase } from '../helpers/mysql.js';
import { createTestDatabase, PG_DEST_PORT, type TestDatabase } from '../helpers/postgres.js';

const ALL_TYPES_SQL = `
CREATE TABLE all_types (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  b tinyint(1) DEFAULT 1,
  bu tinyint(1) unsigned,
  ti tinyint, tu tinyint unsigned, si smallint, su smallint unsigned,
  mi mediumint, mu mediumint unsigned, i int DEFAULT 42, iz int(8) unsigned zerofill, iu int unsigned,
  bi bigint, bgu bigint unsigned DEFAULT 18446744073709551615,
  d decimal(10,2) DEFAULT 1.50, dmax decimal(65,30),
  f float DEFAULT 1.5, db double,
  bt bit(5) DEFAULT b'101', bt64 bit(64),
  y year DEFAULT 2024,
  dt date DEFAULT '2024-01-02', dz date DEFAULT '0000-00-00',
  dtm datetime(6) DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6), dt0 datetime,
  ts timestamp(3) NULL DEFAULT current_timestamp(3), ts0 timestamp NULL DEFAULT '2020-01-01 00:00:00',
  tm time(2) DEFAULT '-12:00:00.00', tm0 time,
  c char(4) DEFAULT 'it''s', v varchar(100) DEFAULT 'a\\\\b',
  tt tinytext, tx text, mt mediumtext, lt longtext,
  bn binary(4), vb varbinary(10), tb tinyblob, bl blob, mb mediumblob, lb longblob,
  e enum('a','b''q','c\\\\d',' sp') DEFAULT 'a',
  s set('x','y','z') DEFAULT 'x,y',
  j json,
  u uuid, i6 inet6,
  g int AS (ti * 2) STORED, gv int AS (ti + 1) VIRTUAL,
  CONSTRAINT chk_ti CHECK (ti > -200),
  CONSTRAINT chk_b CHECK (b BETWEEN 0 AND 10),
  KEY idx_name (si, mi),
  KEY tx_prefix (tx(10)),
  UNIQUE KEY v_key (v),
  FULLTEXT KEY ft (mt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=1`;

const PARENT_CHILD_SQL = `
CREATE TABLE parent (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name varchar(20),
  KEY idx_name (name)
) ENGINE=InnoDB;
CREATE TABLE child (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  parent_id bigint unsigned,
  KEY idx_name (parent_id),
  CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE places (id int PRIMARY KEY, shape point);`;

const ROWS_SQL = String.raw`
SET SESSION sql_mode = '';
INSERT INTO all_types (b, bu, ti, tu, si, su, mi, mu, i, iz, iu, bi, bgu, d, dmax, f, db, bt, bt64, y, dt, dz, dtm, dt0, ts, ts0, tm, tm0,
  c, v, tt, tx, mt, lt, bn, vb, tb, bl, mb, lb, e, s, j, u, i6)
VALUES (5, 200, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 42, 4294967295, -9223372036854775808, 18446744073709551615,
  -12.34, 12345678901234567890123456789012345.123456789012345678901234567890, 16777217, 0.30000000000000004, b'00011', b'1111111111111111111111111111111111111111111111111111111111111111', 1901,
  '2024-02-29', '0000-00-00', '2024-01-02 03:04:05.123456', '9999-12-31 23:59:59', '2038-01-19 03:14:07.123', '1970-01-01 00:00:01', '-838:59:59.99', '838:59:59',
  'ab', '😀 emoji\ttab \\ backslash\nnewline\rCR', 'tiny', 'text ünïcödé', 'medium', REPEAT('long', 1000),
  x'0001', x'ff', x'', x'00ff10', x'5c0a09', x'00',
  'b''q', 'x,z', '{"a": 12345678901234567890, "b": [1, "😀"]}', '123e4567-e89b-12d3-a456-426614174000', '::ffff:1.2.3.4');
INSERT INTO all_types (id) VALUES (2);
INSERT INTO all_types (id, b, f, db, dt, dtm, ts0, s, e, tm, j, bt, v) VALUES (3, 0, 0.1, 1e300, '2024-00-10', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '', 'c\\d', '00:00:00', '[]', b'0', 'row 3');
ALTER TABLE all_types AUTO_INCREMENT = 100;
INSERT INTO parent (id, name) VALUES (18446744073709551000, 'max'), (1, 'one');
INSERT INTO child (parent_id) VALUES (18446744073709551000), (1), (NULL);`;

/** The PostgreSQL type of each column, as format_type prints it (docs/type-mapping.md). */
function expectedTypes(schema: string): Record<string, string> {
  return {
    id: 'bigint',
    b: 'boolean',
    bu: 'smallint',
    ti: 'smallint',
    tu: 'smallint',
    si: 'smallint',
    su: 'integer',
    mi: 'integer',
    mu: 'integer',
    i: 'integer',
    iz: 'bigint',
    iu: 'bigint',
    bi: 'bigint',
    bgu: 'numeric(20,0)',
    d: 'numeric(10,2)',
    dmax: 'numeric(65,30)',
    f: 'real',
    db: 'double precision',
    bt: 'bit varying(5)',
    bt64: 'bit varying(64)',
    y: 'smallint',
    dt: 'date',
    dz: 'date',
    dtm: 'timestamp(6) without time zone',
    dt0: 'timestamp(0) without time zone',
    ts: 'timestamp(3) with time zone',
    ts0: 'timestamp(0) with time zone',
    tm: 'interval',
    tm0: 'interval',
    c: 'character(4)',
    v: 'character varying(100)',
    tt: 'text',
    tx: 'text',
    mt: 'text',
    lt: 'text',
    bn: 'bytea',
    vb: 'bytea',
    tb: 'bytea',
    bl: 'bytea',
    mb: 'bytea',
    lb: 'bytea',
    e: `${schema}.all_types_e`,
    s: 'text[]',
    j: 'jsonb',
    u: 'uuid',
    i6: 'inet',
    g: 'integer',
    gv: 'integer',
  };
}

/** Row 1 as PostgreSQL prints it (`col::text`), with the documented mappings. */
const ROW_1: Record<string, string | null> = {
  id: '1',
  b: 'true',
  bu: '200',
  ti: '-128',
  tu: '255',
  si: '-32768',
  su: '65535',
  mi: '-8388608',
  mu: '16777215',
  i: '-2147483648',
  iz: '42',
  iu: '4294967295',
  bi: '-9223372036854775808',
  bgu: '18446744073709551615',
  d: '-12.34',
  dmax: '12345678901234567890123456789012345.123456789012345678901234567890',
  db: '0.30000000000000004',
  bt: '00011',
  bt64: '1'.repeat(64),
  y: '1901',
  dt: '2024-02-29',
  dz: null,
  dtm: '2024-01-02 03:04:05.123456',
  dt0: '9999-12-31 23:59:59',
  ts: '2038-01-19 03:14:07.123+00',
  ts0: '1970-01-01 00:00:01+00',
  tm: '-838:59:59.99',
  tm0: '838:59:59',
  c: 'ab',
  v: '😀 emoji\ttab \\ backslash\nnewline\rCR',
  tt: 'tiny',
  tx: 'text ünïcödé',
  mt: 'medium',
  lt: 'long'.repeat(1000),
  bn: '\\x00010000',
  vb: '\\xff',
  tb: '\\x',
  bl: '\\x00ff10',
  mb: '\\x5c0a09',
  lb: '\\x00',
  e: "b'q",
  s: '{x,z}',
  j: '{"a": 12345678901234567890, "b": [1, "😀"]}',
  u: '123e4567-e89b-12d3-a456-426614174000',
  // inet::text shows the mask.
  i6: '::ffff:1.2.3.4/128',
  g: '-256',
  gv: '-127',
};

describe('MySQL/MariaDB to PostgreSQL type mapping, end to end', () => {
  let source: MysqlTestDatabase;
  let destination: TestDatabase;
  let selection: ObjectSelection;
  let snapshot: SourceSnapshot | null = null;
  let schema: DatabaseSchema;
  let schemaWriter: SchemaWriter | null = null;
  let tableWriter: TableWriter | null = null;
  /** Row 1 of all_types as the reader sent it (canonical text, unescaped). */
  let canonicalRow: Array<string | null> = [];
  let canonicalColumns: string[] = [];

  const table = (name: string): TableSchema => {
    const found = schema.tables.find((t) => t.name === name);
    if (found === undefined) throw new Error(`no table ${name}`);
    return found;
  };
  const pgRows = async (sql: string, params: unknown[] = []) => (await destination.client.query(sql, params)).rows as Array<Record<string, string | null>>;

  beforeAll(async () => {
    source = await createMysqlTestDatabase('ferry_tm');
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_tm');
    await destination.client.query("SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET IntervalStyle = 'postgres'");
    await source.connection.query(ALL_TYPES_SQL);
    await source.connection.query(PARENT_CHILD_SQL);
    await source.connection.query(ROWS_SQL);
    selection = { include: [`${source.name}.all_types`, `${source.name}.parent`, `${source.name}.child`], exclude: [] };
  });

  afterAll(async () => {
    await tableWriter?.close();
    await schemaWriter?.close();
    await snapshot?.close();
    await source?.drop();
    await destination?.drop();
  });

  it('verify passes, warns about what does not carry over, and rehearses the creation', async () => {
    schema = await mysqlEngine.readSchema(source.params, selection);
    const checks = await postgresEngine.verifyDestination(destination.params, schema);
    expect(checks.filter((c) => c.severity === 'error')).toEqual([]);
    expect(checks.find((c) => c.code === 'UNSUPPORTED_TYPE')?.severity).toBe('ok');
    expect(checks.find((c) => c.code === 'SCHEMA_ERROR')?.severity).toBe('ok');
    const mapping = checks.find((c) => c.code === 'TYPE_MAPPING');
    expect(mapping?.severity).toBe('warning');
    const where = `${source.name}.all_types`;
    expect(mapping?.message).toContain(`${where}.g is a generated column`);
    expect(mapping?.message).toContain(`${where}.gv is a generated column`);
    expect(mapping?.message).toContain(`${where}.dtm has ON UPDATE current_timestamp(6)`);
    expect(mapping?.message).toContain(`The default of ${where}.dz ('0000-00-00') is not carried over`);
    expect(mapping?.message).toContain('FULLTEXT index ft');
    expect(mapping?.message).toContain('check constraint chk_b');
    // The rehearsal was rolled back.
    expect(await pgRows('SELECT nspname FROM pg_namespace WHERE nspname = $1', [source.name])).toEqual([]);
  });

  it('maps spatial columns to PostGIS geometry at verify: the POSTGIS check says the job creates the extension', async () => {
    const places = await mysqlEngine.readSchema(source.params, { include: [`${source.name}.places`], exclude: [] });
    const checks = await postgresEngine.verifyDestination(destination.params, places);
    expect(checks.find((c) => c.code === 'UNSUPPORTED_TYPE')?.severity).toBe('ok');
    expect(checks.find((c) => c.code === 'POSTGIS')).toMatchObject({ severity: 'ok', objects: [`${source.name}.places.shape`] });
    expect(checks.find((c) => c.code === 'POSTGIS')?.message).toContain('public.geometry(Point)');
    // The rehearsal (CREATE EXTENSION postgis included) was rolled back.
    expect(checks.find((c) => c.code === 'SCHEMA_ERROR')?.severity).toBe('ok');
    expect(await pgRows("SELECT extname FROM pg_extension WHERE extname = 'postgis'")).toEqual([]);
  });

  it('creates the mapped schema, loads the canonical text through the snapshot reader, and builds indexes, keys and counters', async () => {
    snapshot = await mysqlEngine.openSnapshot(source.params);
    schema = await snapshot.readSchema(selection);
    schemaWriter = await postgresEngine.openSchemaWriter(destination.params);
    const created = await schemaWriter.createPreDataObjects(schema);
    expect(created.filter((o) => o.kind === 'table').map((o) => o.name).sort()).toEqual(['all_types', 'child', 'parent']);
    expect(created.filter((o) => o.kind === 'type').map((o) => o.name)).toEqual(['all_types_e']);
    // Idempotent: a second run creates nothing.
    expect(await schemaWriter.createPreDataObjects(schema)).toEqual([]);

    tableWriter = await postgresEngine.openTableWriter(destination.params);
    for (const name of ['parent', 'child', 'all_types']) {
      const reader = await snapshot.openTableReader();
      try {
        const chunks: Buffer[] = [];
        const rows = reader.copyOut(table(name), { destinationEngine: 'postgresql' });
        const tee = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            chunks.push(Buffer.from(chunk));
            callback(null, chunk);
          },
        });
        rows.on('error', (error) => tee.destroy(error));
        const result = await tableWriter.replaceTableData(table(name), rows.pipe(tee), new AbortController().signal, { sourceEngine: 'mysql' });
        if (name === 'all_types') canonicalRow = parseCopyText(Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '');
        expect(result.rows).toBe(name === 'parent' ? 2 : 3);
      } finally {
        await reader.close();
      }
    }
    canonicalColumns = table('all_types').columns.map((c) => c.name);
    await schemaWriter.createPostDataObjects(schema);
    await schemaWriter.syncSequences(schema);
  });

  it('gives every column the documented PostgreSQL type', async () => {
    const rows = await pgRows(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attidentity AS identity, a.attgenerated AS generated
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [`"${source.name}".all_types`],
    );
    expect(Object.fromEntries(rows.map((r) => [r.name, r.type]))).toEqual(expectedTypes(source.name));
    expect(rows.find((r) => r.name === 'id')?.identity).toBe('d');
    expect(rows.filter((r) => r.generated !== '')).toEqual([]);
    const labels = await pgRows(`SELECT array_agg(enumlabel ORDER BY enumsortorder)::text AS labels FROM pg_enum WHERE enumtypid = $1::regtype`, [`"${source.name}".all_types_e`]);
    // The label '' first: MySQL's ENUM error value (the job's default enumErrorValuePolicy "label").
    expect(labels[0]?.labels).toBe(`{"",a,b'q,"c\\\\d"," sp"}`);
  });

  it('loads every value as documented: extremes, emoji, bit(n), zero dates as NULL, sets, time beyond 24 hours', async () => {
    const columns = Object.keys(ROW_1);
    const select = columns.map((c) => `"${c}"::text AS "${c}"`).join(', ');
    const [row1, row2, row3] = await pgRows(`SELECT ${select}, f::text AS f FROM "${source.name}".all_types ORDER BY id`);
    expect(row1).toEqual({ ...ROW_1, f: row1?.f });
    // float: 16777217 is stored as the float 16777216.
    expect(shortestFloat32(Number(row1?.f))).toBe('16777216');
    // Row 2: the MySQL defaults, as MySQL computed them.
    expect(row2).toMatchObject({ id: '2', b: 'true', i: '42', bgu: '18446744073709551615', d: '1.50', bt: '00101', y: '2024', dt: '2024-01-02', dz: null });
    expect(row2).toMatchObject({ ts0: '2020-01-01 00:00:00+00', tm: '-12:00:00', c: "it's", v: 'a\\b', e: 'a', s: '{x,y}', g: null, gv: null });
    expect(shortestFloat32(Number(row2?.f))).toBe('1.5');
    // Row 3: zero dates (date, datetime, timestamp) become NULL; the empty set is {}.
    expect(row3).toMatchObject({ id: '3', b: 'false', dt: null, dtm: null, ts0: null, s: '{}', e: 'c\\d', tm: '00:00:00', j: '[]', bt: '00000', db: '1e+300' });
    expect(shortestFloat32(Number(row3?.f))).toBe('0.1');
  });

  it('creates defaults, checks, indexes with names unique in the schema, and foreign keys to bigint unsigned keys', async () => {
    const defaults = await pgRows(
      `SELECT a.attname AS name, pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
       WHERE d.adrelid = $1::regclass ORDER BY a.attnum`,
      [`"${source.name}".all_types`],
    );
    expect(Object.fromEntries(defaults.map((r) => [r.name, r.expr]))).toMatchObject({
      b: 'true',
      i: '42',
      bgu: "'18446744073709551615'::numeric",
      bt: "'00101'::\"bit\"",
      dt: "'2024-01-02'::date",
      dtm: 'CURRENT_TIMESTAMP',
      ts0: "'2020-01-01 00:00:00+00'::timestamp with time zone",
      c: "'it''s'::bpchar",
      e: `'a'::${source.name}.all_types_e`,
      s: "'{x,y}'::text[]",
    });
    expect(defaults.find((r) => r.name === 'dz')).toBeUndefined();
    const constraints = await pgRows(
      `SELECT conrelid::regclass::text AS tbl, conname AS name, contype AS type FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
       WHERE n.nspname = $1 ORDER BY 1, 2`,
      [source.name],
    );
    expect(constraints.map((c) => `${c.tbl?.split('.').pop()}:${c.name}:${c.type}`)).toEqual([
      'all_types:all_types_pkey:p',
      'all_types:chk_ti:c',
      'all_types:v_key:u',
      'child:child_parent:f',
      'child:child_pkey:p',
      'parent:parent_pkey:p',
    ]);
    const indexes = await pgRows(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [source.name]);
    expect(indexes.map((i) => i.name)).toEqual(['all_types_pkey', 'child_idx_name', 'child_pkey', 'idx_name', 'parent_idx_name', 'parent_pkey', 'tx_prefix', 'v_key']);
    expect(indexes.find((i) => i.name === 'tx_prefix')?.def).toContain('("left"(tx, 10))');
    const children = await pgRows(`SELECT parent_id::text AS p FROM "${source.name}".child ORDER BY id`);
    expect(children.map((r) => r.p)).toEqual(['18446744073709551000', '1', null]);
    await destination.client.query(`DELETE FROM "${source.name}".parent WHERE id = 1`);
    expect(await pgRows(`SELECT count(*)::text AS n FROM "${source.name}".child`)).toEqual([{ n: '2' }]);
  });

  it('sets each AUTO_INCREMENT sequence to the source counter, never below the column maximum', async () => {
    const inserted = await pgRows(`INSERT INTO "${source.name}".all_types (v) VALUES ('row 100') RETURNING id::text AS id`);
    expect(inserted).toEqual([{ id: '100' }]);
    const child = await pgRows(`INSERT INTO "${source.name}".child (parent_id) VALUES (NULL) RETURNING id::text AS id`);
    expect(child).toEqual([{ id: '4' }]);
    // bigint unsigned AUTO_INCREMENT: numeric(20,0) with an owned sequence, clamped to bigint.
    const sequence = await pgRows(`SELECT pg_get_serial_sequence($1, 'id') AS name`, [`"${source.name}".parent`]);
    expect(sequence[0]?.name).toBe(`${source.name}.parent_id_seq`);
    const state = await pgRows(`SELECT last_value::text AS v, is_called::text AS c FROM "${source.name}".parent_id_seq`);
    expect(state).toEqual([{ v: '9223372036854775807', c: 'true' }]);
  });

  it('applies one canonical row per type through the change applier', async () => {
    expect(canonicalColumns.length).toBe(Object.keys(expectedTypes(source.name)).length);
    expect(canonicalRow.length).toBe(canonicalColumns.length);
    const values = canonicalRow.map((v, i) => (canonicalColumns[i] === 'id' ? '500' : canonicalColumns[i] === 'v' ? 'another unique value 😀' : v));
    const applier = await postgresEngine.openChangeApplier(destination.params, 'type-mapping-test', schema.tables);
    try {
      const all: RowChange = { op: 'insert', table: { schema: source.name, name: 'all_types' }, columns: canonicalColumns, values };
      await applier.apply([all]);
      await applier.commit('mysql-bin.000001:4');
      const columns = Object.keys(ROW_1).filter((c) => c !== 'id' && c !== 'v');
      const select = columns.map((c) => `"${c}"::text AS "${c}"`).join(', ');
      const [applied] = await pgRows(`SELECT ${select}, f::text AS f FROM "${source.name}".all_types WHERE id = 500`);
      const [loaded] = await pgRows(`SELECT ${select}, f::text AS f FROM "${source.name}".all_types WHERE id = 1`);
      expect(applied).toEqual(loaded);
      // An update by key with canonical values of the mapped types, then a delete.
      const update: RowChange = {
        op: 'update',
        table: { schema: source.name, name: 'all_types' },
        columns: ['id', 'b', 'bt', 'tm', 's', 'ts', 'bgu'],
        values: ['500', 'f', '11111', '-01:00:00', '{y}', '2000-01-01 00:00:00+00', '0'],
        oldColumns: null,
        oldValues: null,
      };
      await applier.apply([update]);
      await applier.commit('mysql-bin.000001:5');
      expect(await pgRows(`SELECT b::text, bt::text, tm::text, s::text, ts::text, bgu::text FROM "${source.name}".all_types WHERE id = 500`)).toEqual([
        { b: 'false', bt: '11111', tm: '-01:00:00', s: '{y}', ts: '2000-01-01 00:00:00+00', bgu: '0' },
      ]);
      await applier.apply([{ op: 'delete', table: { schema: source.name, name: 'all_types' }, oldColumns: ['id'], oldValues: ['500'] }]);
      await applier.commit('mysql-bin.000001:6');
      expect(await pgRows(`SELECT id FROM "${source.name}".all_types WHERE id = 500`)).toEqual([]);
      expect(await applier.readPosition()).toBe('mysql-bin.000001:6');
    } finally {
      await applier.close();
    }
  });
});
