/**
 * MySQL/MariaDB as a destination, against the real servers: a PostgreSQL schema covering every
 * row of docs/type-mapping.md's "PostgreSQL to MySQL" table created on MariaDB and loaded from
 * PostgreSQL's snapshot COPY through the MySQL table writer, compared value for value with the
 * documented mapping; refused types; loads refused whole; post-data objects and AUTO_INCREMENT
 * counters; the change applier (every operation, key changes, tables without a key,
 * idempotence, atomicity with the position, SCHEMA_CHANGED and its recovery); and a MySQL to
 * MySQL round trip through the MySQL snapshot reader, byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../src/core/schema.js';
import { destinationTableOf } from '../../src/engines/apply-failure.js';
import { UNCHANGED } from '../../src/engines/engine.js';
import type { ColumnValue, RowChange } from '../../src/engines/engine.js';
import { bitBytes, dialectOf, openMysqlChangeApplier, POSITION_DATABASE, POSITION_TABLE } from '../../src/engines/mysql/mysql-change-applier.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import {
  createTableFromNative,
  describePostgresSchemaForMysql,
  nativeIndexStatements,
  openMysqlSchemaWriter,
  parseNativeDefinition,
  translatePostgresExpression,
} from '../../src/engines/mysql/mysql-schema-writer.js';
import { LoadFeed, loadDataSql, openMysqlTableWriter } from '../../src/engines/mysql/mysql-table-writer.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams } from '../helpers/mysql.js';
import type { MysqlTestDatabase } from '../helpers/mysql.js';
import { createTestDatabase, PG_SOURCE_PORT } from '../helpers/postgres.js';
import type { TestDatabase } from '../helpers/postgres.js';

const never = new AbortController().signal;

/** Reads the whole stream as one string. */
async function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('latin1');
}

describe('pure parts', () => {
  it('rewrites the \\f and \\v escapes PostgreSQL writes, across chunk boundaries, and leaves the rest', async () => {
    const feed = new LoadFeed(true);
    const text = 'a\\fb\\\\f\\vc\\\\\\v\td\\N\te\\\\x00\\n\n';
    const out = collect(feed);
    for (let i = 0; i < text.length; i++) feed.write(Buffer.from(text[i] as string, 'latin1'));
    feed.end();
    expect(await out).toBe('a\x0cb\\\\f\x0bc\\\\\x0b\td\\N\te\\\\x00\\n\n');
    expect(feed.bytes).toBe(text.length);
  });

  it('takes SHOW CREATE TABLE apart and moves keys and foreign keys to post-data', () => {
    const definition = [
      'CREATE TABLE `c` (',
      '  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,',
      '  `pid` int(11) DEFAULT NULL,',
      '  `a` int(11) NOT NULL,',
      "  `n` int(11) DEFAULT NULL CHECK (`n` > 0),",
      '  `body` text DEFAULT NULL,',
      '  PRIMARY KEY (`a`),',
      '  UNIQUE KEY `uk` (`n`),',
      '  KEY `auto` (`id`),',
      "  KEY `kk` (`pid`,`n`) COMMENT 'x, y',",
      '  FULLTEXT KEY `ft` (`body`),',
      '  CONSTRAINT `fk` FOREIGN KEY (`pid`) REFERENCES `p` (`id`) ON DELETE CASCADE,',
      '  CONSTRAINT `chk` CHECK (`n` <> 5)',
      ') ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci',
    ].join('\n');
    const parsed = parseNativeDefinition(definition);
    expect(parsed.elements.map((e) => e.kind)).toEqual(['column', 'column', 'column', 'column', 'column', 'primary', 'unique', 'key', 'key', 'fulltext', 'foreign', 'check']);
    expect(parsed.elements.find((e) => e.name === 'kk')?.columns).toEqual(['pid', 'n']);
    const table = { schema: 'd`b', name: 'c', nativeDefinition: definition, columns: [] } as unknown as TableSchema;
    expect(createTableFromNative(table)).toBe(
      [
        'CREATE TABLE `d``b`.`c` (',
        '  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,',
        '  `pid` int(11) DEFAULT NULL,',
        '  `a` int(11) NOT NULL,',
        "  `n` int(11) DEFAULT NULL CHECK (`n` > 0),",
        '  `body` text DEFAULT NULL,',
        '  PRIMARY KEY (`a`),',
        '  UNIQUE KEY `uk` (`n`),',
        '  KEY `auto` (`id`),',
        '  CONSTRAINT `chk` CHECK (`n` <> 5)',
        ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci',
      ].join('\n'),
    );
    expect(nativeIndexStatements(table)).toEqual([
      { name: 'kk', sql: "ALTER TABLE `d``b`.`c` ADD KEY `kk` (`pid`,`n`) COMMENT 'x, y'" },
      { name: 'ft', sql: 'ALTER TABLE `d``b`.`c` ADD FULLTEXT KEY `ft` (`body`)' },
    ]);
  });

  it('translates simple PostgreSQL expressions and refuses the rest', () => {
    const columns = new Set(['price', 'status', 'Name']);
    expect(translatePostgresExpression("((price > (0)::numeric) AND (status = ANY (ARRAY['a'::text, 'b''c'::text])))", columns)).toBe(
      "((`price` > (0)) AND (`status` IN ('a', 'b''c')))",
    );
    expect(translatePostgresExpression('(char_length("Name") > 2)', columns)).toBe('(char_length(`Name`) > 2)');
    expect(translatePostgresExpression("(status ~ '^a')", columns)).toBeNull();
    expect(translatePostgresExpression('(other > 1)', columns)).toBeNull();
    expect(translatePostgresExpression("((status || 'x') <> 'y')", columns)).toBeNull();
  });

  it('chooses the upsert dialect by server version and encodes BIT text', () => {
    expect(dialectOf('10.11.19-MariaDB-0+deb12u1')).toEqual({ mariadb: true, rowAlias: false });
    expect(dialectOf('8.0.18')).toEqual({ mariadb: false, rowAlias: false });
    expect(dialectOf('8.0.36')).toEqual({ mariadb: false, rowAlias: true });
    expect(dialectOf('9.1.0')).toEqual({ mariadb: false, rowAlias: true });
    expect(bitBytes('1010101010').toString('hex')).toBe('02aa');
    expect(bitBytes('1').toString('hex')).toBe('01');
  });
});

describe('PostgreSQL to MySQL: schema and bulk load', () => {
  let source: TestDatabase;
  /** The PostgreSQL schema, which becomes the MySQL database of the same name. */
  const pgSchema = `ferry_pgm_${randomBytes(4).toString('hex')}`;
  let mysql: Connection;
  let schema: DatabaseSchema;

  const SOURCE_SQL = `
    CREATE SCHEMA ${pgSchema};
    SET search_path = ${pgSchema};
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'It''s \\ fine');
    CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
    CREATE DOMAIN flag_domain AS boolean;
    CREATE TABLE kinds (
      id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
      s smallint, i integer, b bigint,
      num numeric(12,3), unum numeric, r real, d double precision, flag boolean,
      ch character(5), vc character varying(20), bigvc character varying(20000), t text,
      by bytea, dt date, ts timestamp(3) without time zone, tstz timestamp with time zone, tm time(6) without time zone,
      u uuid, j json, jb jsonb, mood mood, dom positive_int, fd flag_domain, ip inet, net cidr,
      code text NOT NULL DEFAULT 'none'::text,
      created timestamp(6) without time zone DEFAULT now(),
      half integer GENERATED ALWAYS AS (i / 2) STORED,
      CONSTRAINT kinds_code_key UNIQUE (code),
      CONSTRAINT kinds_s_check CHECK ((s > '-40000'::integer))
    );
    CREATE INDEX kinds_vc_idx ON kinds USING btree (vc DESC, i);
    CREATE INDEX kinds_t_idx ON kinds USING btree (t);
    CREATE INDEX kinds_lower_idx ON kinds USING btree (lower(t));
    CREATE UNIQUE INDEX kinds_partial_idx ON kinds USING btree (i) WHERE (i > 100);
    CREATE TABLE parents (id serial PRIMARY KEY, name text);
    CREATE TABLE children (id integer PRIMARY KEY, parent_id integer REFERENCES parents (id) ON DELETE CASCADE, note varchar(10));
    INSERT INTO kinds (id, s, i, b, num, unum, r, d, flag, ch, vc, bigvc, t, by, dt, ts, tstz, tm, u, j, jb, mood, dom, fd, ip, net, code) VALUES
      (1, -32768, 2147483647, 9223372036854775807, 123456789.123, 123.456, 1.5, 0.1, true, 'ab', 'héllo 😀', repeat('x', 17000),
       E'tab\\there\\nnew\\rline \\\\ back \\f form \\x0b vtab \\b bs ''q'' "dq" 😀', '\\x00ff5c0a090d'::bytea,
       '0001-01-01', '2024-02-29 23:59:59.999', '2024-01-01 10:00:00.123456+05:30', '23:59:59.999999',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a": [1, 2.50]}', '{"b": 1,  "a": [1, 2.50]}', 'It''s \\ fine', 7, false,
       '192.168.0.1/24', '10.0.0.0/8', 'A'),
      (2, 0, -2147483648, -9223372036854775808, -0.001, -99999999999999999999999999999999999.123456789012345678901234567890,
       -0.25, 1e300, false, 'abcde', '', '', '', '\\x'::bytea,
       '9999-12-31', '1000-01-01 00:00:00', '1969-12-31 23:59:59-08', '00:00:00',
       '00000000-0000-0000-0000-000000000000', 'null', '[]', 'sad', 1, true, '::1', '2001:db8::/32', 'a'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'a ');
    ALTER TABLE kinds ADD CONSTRAINT kinds_regex_check CHECK ((vc ~ '^[a-z]'::text)) NOT VALID;
    SELECT setval(pg_get_serial_sequence('${pgSchema}.kinds', 'id'), 41);
    INSERT INTO parents (name) VALUES ('one'), ('two');
    INSERT INTO children VALUES (1, 1, 'x'), (2, 2, 'y'), (3, NULL, NULL);
  `;

  /** Copies one table through PostgreSQL's snapshot reader into the MySQL table writer. */
  async function copyTable(table: TableSchema): Promise<{ rows: number; bytes: number }> {
    const snapshot = await postgresEngine.openSnapshot(source.params);
    const reader = await snapshot.openTableReader();
    const writer = await openMysqlTableWriter(mysqlConnectionParams(null));
    try {
      return await writer.replaceTableData(table, reader.copyOut(table, { destinationEngine: 'mysql' }), never, { sourceEngine: 'postgresql' });
    } finally {
      await writer.close();
      await reader.close();
      await snapshot.close();
    }
  }

  function tableOf(name: string): TableSchema {
    const table = schema.tables.find((t) => t.name === name);
    if (table === undefined) throw new Error(`no table ${name}`);
    return table;
  }

  beforeAll(async () => {
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_pgm');
    await source.client.query(SOURCE_SQL);
    schema = await postgresEngine.readSchema(source.params, { include: [pgSchema], exclude: [] });
    mysql = await connectMysqlAdmin();
  });

  afterAll(async () => {
    await mysql?.query(`DROP DATABASE IF EXISTS \`${pgSchema}\``);
    await mysql?.end();
    await source?.drop();
  });

  it('creates the databases and tables with the documented types, idempotently', async () => {
    const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
    try {
      const created = await writer.createPreDataObjects(schema);
      expect(created).toEqual([
        { kind: 'schema', schema: null, name: pgSchema },
        { kind: 'table', schema: pgSchema, name: 'children' },
        { kind: 'table', schema: pgSchema, name: 'kinds' },
        { kind: 'table', schema: pgSchema, name: 'parents' },
      ]);
      expect(await writer.createPreDataObjects(schema)).toEqual([]);
      const states = await writer.inspectTables([{ schema: pgSchema, name: 'kinds' }, { schema: pgSchema, name: 'missing' }]);
      expect(states[0]).toMatchObject({ exists: true, hasRows: false });
      expect(states[0]?.columns.slice(0, 3)).toEqual(['id', 's', 'i']);
      expect(states[1]).toEqual({ table: { schema: pgSchema, name: 'missing' }, exists: false, hasRows: false, columns: [] });
    } finally {
      await writer.close();
    }
    const [rows] = await mysql.query(
      'SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLLATION_NAME AS coll, EXTRA AS extra, COLUMN_DEFAULT AS def FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [pgSchema, 'kinds'],
    );
    const types = Object.fromEntries((rows as Array<{ name: string; type: string }>).map((r) => [r.name, r.type]));
    expect(types).toEqual({
      id: 'bigint(20)',
      s: 'smallint(6)',
      i: 'int(11)',
      b: 'bigint(20)',
      num: 'decimal(12,3)',
      unum: 'decimal(65,30)',
      r: 'float',
      d: 'double',
      flag: 'tinyint(1)',
      ch: 'char(5)',
      vc: 'varchar(20)',
      bigvc: 'longtext',
      t: 'longtext',
      by: 'longblob',
      dt: 'date',
      ts: 'datetime(3)',
      tstz: 'datetime(6)',
      tm: 'time(6)',
      u: 'char(36)',
      // MariaDB's JSON is a longtext with a json_valid() check.
      j: 'longtext',
      jb: 'longtext',
      mood: "enum('sad','ok','It''s \\\\ fine')",
      dom: 'int(11)',
      fd: 'tinyint(1)',
      ip: 'varchar(43)',
      net: 'varchar(43)',
      // A text column in a unique key fits InnoDB's key limit.
      code: 'varchar(768)',
      created: 'datetime(6)',
      // A generated column holds the source's values.
      half: 'int(11)',
    });
    const byName = new Map((rows as Array<{ name: string; coll: string | null; extra: string; def: string | null }>).map((r) => [r.name, r]));
    expect(byName.get('id')?.extra).toContain('auto_increment');
    expect(byName.get('vc')?.coll).toBe('utf8mb4_nopad_bin');
    expect(byName.get('ch')?.coll).toBe('utf8mb4_bin');
    expect(byName.get('code')?.def).toBe("'none'");
    expect(byName.get('created')?.def).toMatch(/current_timestamp\(6\)/i);
    const [checks] = await mysql.query('SELECT CONSTRAINT_NAME AS name FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_TYPE = ? ORDER BY 1', [pgSchema, 'kinds', 'CHECK']);
    // The regex check does not translate (left out with a warning); json_valid checks are MariaDB's own.
    expect((checks as Array<{ name: string }>).map((c) => c.name)).toEqual(['j', 'jb', 'kinds_s_check']);
  });

  it('reports what does not carry over as warnings at verify', () => {
    const checks = describePostgresSchemaForMysql(schema, { mariadb: true });
    expect(checks.map((c) => [c.code, c.severity])).toEqual([['SCHEMA_TRANSLATION', 'warning']]);
    const objects = checks[0]?.objects ?? [];
    expect(objects).toEqual(
      expect.arrayContaining([
        `${pgSchema}.kinds.unum`,
        `${pgSchema}.kinds.dom`,
        `${pgSchema}.kinds.code`,
        `${pgSchema}.kinds.kinds_regex_check`,
        `${pgSchema}.kinds.kinds_lower_idx`,
        `${pgSchema}.kinds.kinds_partial_idx`,
      ]),
    );
  });

  it('loads every type through LOAD DATA and reads back the documented values', async () => {
    expect(await copyTable(tableOf('kinds'))).toMatchObject({ rows: 3 });
    const [rows] = await mysql.query(
      `SELECT id, s, i, b, num, unum, r, d, flag, ch, vc, CHAR_LENGTH(bigvc) AS bigvc, t, HEX(\`by\`) AS \`by\`, dt, ts, tstz, tm, u, j, jb, mood, dom, fd, ip, net, code, half
       FROM \`${pgSchema}\`.kinds ORDER BY id`,
    );
    expect(rows).toEqual([
      {
        id: '1',
        s: -32768,
        i: 2147483647,
        b: '9223372036854775807',
        num: '123456789.123',
        unum: '123.456000000000000000000000000000',
        r: 1.5,
        d: 0.1,
        flag: 1,
        // MySQL's CHAR strips the trailing spaces PostgreSQL pads with.
        ch: 'ab',
        vc: 'héllo 😀',
        bigvc: 17000,
        t: 'tab\there\nnew\rline \\ back \f form \v vtab \b bs \'q\' "dq" 😀',
        by: '00FF5C0A090D',
        dt: '0001-01-01',
        ts: '2024-02-29 23:59:59.999',
        tstz: '2024-01-01 04:30:00.123456',
        tm: '23:59:59.999999',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        j: '{"b": 1,  "a": [1, 2.50]}',
        jb: '{"a": [1, 2.50], "b": 1}',
        mood: "It's \\ fine",
        dom: 7,
        fd: 0,
        ip: '192.168.0.1/24',
        net: '10.0.0.0/8',
        code: 'A',
        half: 1073741823,
      },
      {
        id: '2',
        s: 0,
        i: -2147483648,
        b: '-9223372036854775808',
        num: '-0.001',
        unum: '-99999999999999999999999999999999999.123456789012345678901234567890',
        r: -0.25,
        d: 1e300,
        flag: 0,
        ch: 'abcde',
        vc: '',
        bigvc: 0,
        t: '',
        by: '',
        dt: '9999-12-31',
        ts: '1000-01-01 00:00:00.000',
        tstz: '1970-01-01 07:59:59.000000',
        tm: '00:00:00.000000',
        u: '00000000-0000-0000-0000-000000000000',
        j: 'null',
        jb: '[]',
        mood: 'sad',
        dom: 1,
        fd: 1,
        ip: '::1',
        net: '2001:db8::/32',
        code: 'a',
        half: -1073741824,
      },
      {
        id: '3',
        s: null,
        i: null,
        b: null,
        num: null,
        unum: null,
        r: null,
        d: null,
        flag: null,
        ch: null,
        vc: null,
        bigvc: null,
        t: null,
        by: null,
        dt: null,
        ts: null,
        tstz: null,
        tm: null,
        u: null,
        j: null,
        jb: null,
        mood: null,
        dom: null,
        fd: null,
        ip: null,
        net: null,
        // 'a', 'A' and 'a ' are three keys, as on PostgreSQL.
        code: 'a ',
        half: null,
      },
    ]);
    // Loading again replaces the rows: the load is exact after a crash.
    expect(await copyTable(tableOf('kinds'))).toMatchObject({ rows: 3 });
    const [count] = await mysql.query(`SELECT COUNT(*) AS n FROM \`${pgSchema}\`.kinds`);
    expect(count).toEqual([{ n: '3' }]);
  });

  it('creates indexes and foreign keys after the data, idempotently, and sets AUTO_INCREMENT from the source', async () => {
    await copyTable(tableOf('parents'));
    await copyTable(tableOf('children'));
    const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
    try {
      await writer.createPostDataObjects(schema, { foreignKeys: false });
      const [fkBefore] = await mysql.query('SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?', [pgSchema]);
      expect(fkBefore).toEqual([]);
      await writer.createPostDataObjects(schema);
      await writer.createPostDataObjects(schema);
      await writer.syncSequences(schema);
      await writer.syncSequences(schema);
    } finally {
      await writer.close();
    }
    const [indexes] = await mysql.query(
      "SELECT INDEX_NAME AS name, GROUP_CONCAT(CONCAT(COLUMN_NAME, IFNULL(CONCAT('(', SUB_PART, ')'), ''), IF(COLLATION = 'D', ' DESC', '')) ORDER BY SEQ_IN_INDEX) AS cols, MIN(NON_UNIQUE) AS non_unique FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'kinds' GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
      [pgSchema],
    );
    expect(indexes).toEqual([
      { name: 'kinds_code_key', cols: 'code', non_unique: '0' },
      { name: 'kinds_t_idx', cols: 't(768)', non_unique: '1' },
      { name: 'kinds_vc_idx', cols: 'vc DESC,i', non_unique: '1' },
      { name: 'PRIMARY', cols: 'id', non_unique: '0' },
    ]);
    const [fks] = await mysql.query('SELECT CONSTRAINT_NAME AS name, DELETE_RULE AS del, REFERENCED_TABLE_NAME AS ref FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?', [pgSchema]);
    expect(fks).toEqual([{ name: 'children_parent_id_fkey', del: 'CASCADE', ref: 'parents' }]);
    // New rows continue after the source's sequences (identity at 41, serial at 2).
    await mysql.query(`INSERT INTO \`${pgSchema}\`.kinds (code) VALUES ('new')`);
    await mysql.query(`INSERT INTO \`${pgSchema}\`.parents (name) VALUES ('three')`);
    const [ids] = await mysql.query(`SELECT (SELECT MAX(id) FROM \`${pgSchema}\`.kinds) AS k, (SELECT MAX(id) FROM \`${pgSchema}\`.parents) AS p`);
    expect(ids).toEqual([{ k: '42', p: 3 }]);
  });

  it('refuses a load whose values MySQL cannot hold, keeping nothing of it', async () => {
    await source.client.query(`INSERT INTO ${pgSchema}.children VALUES (4, 1, 'z')`);
    await source.client.query(`CREATE TABLE ${pgSchema}.bad (id integer PRIMARY KEY, r real, dt date)`);
    await source.client.query(`INSERT INTO ${pgSchema}.bad VALUES (1, 1, '2024-01-01'), (2, 'NaN', 'infinity')`);
    const badSchema = await postgresEngine.readSchema(source.params, { include: [`${pgSchema}.bad`], exclude: [] });
    const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
    try {
      await writer.createPreDataObjects(badSchema);
    } finally {
      await writer.close();
    }
    const bad = badSchema.tables[0] as TableSchema;
    const error = await copyTable(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('DATA_ERROR');
    expect((error as FerryError).message).toMatch(/Nothing of this load was kept/);
    const [rows] = await mysql.query(`SELECT COUNT(*) AS n FROM \`${pgSchema}\`.bad`);
    expect(rows).toEqual([{ n: '0' }]);
  });

  it('stops a load on abort or source failure, keeping the rows that were there, and loads again on the same writer', async () => {
    const table = tableOf('children');
    const writer = await openMysqlTableWriter(mysqlConnectionParams(null));
    try {
      const controller = new AbortController();
      const endless = new Readable({ read() {} });
      endless.push('100\t1\tnew\n');
      setTimeout(() => controller.abort(new FerryError('CANCELLED', 'stopped by the test')), 200);
      const error = await writer.replaceTableData(table, endless, controller.signal, { sourceEngine: 'postgresql' }).catch((e: unknown) => e);
      expect((error as FerryError).code).toBe('CANCELLED');
      const [rows] = await mysql.query(`SELECT id FROM \`${pgSchema}\`.children ORDER BY id`);
      expect(rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      // A source that fails mid-table: its error, nothing kept.
      const failing = new Readable({ read() {} });
      failing.push('101\t1\tnew\n');
      setTimeout(() => failing.destroy(new FerryError('CONNECTION_LOST', 'the source went away')), 100);
      const sourceError = await writer.replaceTableData(table, failing, never, { sourceEngine: 'postgresql' }).catch((e: unknown) => e);
      expect((sourceError as FerryError).code).toBe('CONNECTION_LOST');
      const [after] = await mysql.query(`SELECT id FROM \`${pgSchema}\`.children ORDER BY id`);
      expect(after).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      // A source that fails before the load starts.
      const early = new Readable({ read() {} });
      early.destroy(new FerryError('CONNECTION_LOST', 'failed at once'));
      expect(((await writer.replaceTableData(table, early, never, { sourceEngine: 'postgresql' }).catch((e: unknown) => e)) as FerryError).code).toBe('CONNECTION_LOST');
      expect(await writer.replaceTableData(table, Readable.from(['7\t\\N\tz\n']), never, { sourceEngine: 'postgresql' })).toEqual({ rows: 1, bytes: 7 });
      await copyTable(table);
    } finally {
      await writer.close();
    }
  });

  it('refuses types MySQL cannot hold with UNSUPPORTED_TYPE naming every column', async () => {
    await source.client.query(`
      CREATE TYPE ${pgSchema}.pair AS (a integer, b text);
      CREATE TABLE ${pgSchema}.refused (id integer PRIMARY KEY, tags text[], span interval, r int4range, p ${pgSchema}.pair, ok text)`);
    const refusedSchema = await postgresEngine.readSchema(source.params, { include: [`${pgSchema}.refused`], exclude: [] });
    const checks = describePostgresSchemaForMysql(refusedSchema, { mariadb: true });
    expect(checks.find((c) => c.code === 'UNSUPPORTED_TYPE')).toMatchObject({
      severity: 'error',
      objects: [`${pgSchema}.refused.tags`, `${pgSchema}.refused.span`, `${pgSchema}.refused.r`, `${pgSchema}.refused.p`],
    });
    const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
    try {
      const error = await writer.createPreDataObjects(refusedSchema).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('UNSUPPORTED_TYPE');
      for (const column of ['tags', 'span', 'r', 'p']) expect((error as FerryError).message).toContain(`${pgSchema}.refused.${column}`);
      expect((await writer.inspectTables([{ schema: pgSchema, name: 'refused' }]))[0]?.exists).toBe(false);
    } finally {
      await writer.close();
    }
  });

  it('refuses to reuse a table whose columns differ, empties and drops what the job created', async () => {
    const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
    try {
      await mysql.query(`ALTER TABLE \`${pgSchema}\`.children ADD COLUMN extra int`);
      const error = await writer.createPreDataObjects(schema).catch((e: unknown) => e);
      expect((error as FerryError).code).toBe('DESTINATION_TABLE_MISMATCH');
      expect((error as FerryError).message).toContain(`${pgSchema}.children (extra columns extra)`);
      await mysql.query(`ALTER TABLE \`${pgSchema}\`.children DROP COLUMN extra`);

      await writer.truncateTables([{ schema: pgSchema, name: 'parents' }, { schema: pgSchema, name: 'children' }, { schema: pgSchema, name: 'missing' }]);
      const [counts] = await mysql.query(`SELECT (SELECT COUNT(*) FROM \`${pgSchema}\`.parents) AS p, (SELECT COUNT(*) FROM \`${pgSchema}\`.children) AS c`);
      expect(counts).toEqual([{ p: '0', c: '0' }]);

      await writer.dropObjects([
        { kind: 'schema', schema: null, name: pgSchema },
        { kind: 'table', schema: pgSchema, name: 'children' },
        { kind: 'table', schema: pgSchema, name: 'parents' },
      ]);
      // kinds and bad are still there: the database is kept.
      const [left] = await mysql.query('SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [pgSchema]);
      expect(left).toEqual([{ name: 'bad' }, { name: 'kinds' }]);
      await writer.dropObjects([
        { kind: 'schema', schema: null, name: pgSchema },
        { kind: 'table', schema: pgSchema, name: 'kinds' },
        { kind: 'table', schema: pgSchema, name: 'bad' },
      ]);
      const [databases] = await mysql.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [pgSchema]);
      expect(databases).toEqual([]);
    } finally {
      await writer.close();
    }
  });
});

describe('change applier', () => {
  let db: MysqlTestDatabase;
  let jobCounter = 0;
  const jobPrefix = `mb2-${randomBytes(3).toString('hex')}`;

  function nameOf(table: string): QualifiedName {
    return { schema: db.name, name: table };
  }

  /** A job table as a PostgreSQL source describes it (no nativeDefinition: values are canonical). */
  function pgTable(name: string, columns: Array<[string, string]>): TableSchema {
    return {
      schema: db.name,
      name,
      columns: columns.map(([column, nativeType]) => ({ name: column, nativeType, nullable: true, defaultExpression: null, identity: null, generatedExpression: null, collation: null })),
      primaryKey: null,
      uniqueConstraints: [],
      checkConstraints: [],
      indexes: [],
      foreignKeys: [],
      estimatedRows: -1,
      estimatedBytes: -1,
      replicaIdentity: null,
    };
  }

  const tables = (): TableSchema[] => [
    pgTable('items', [['id', 'integer'], ['name', 'text'], ['flag', 'boolean'], ['data', 'bytea'], ['at', 'timestamp with time zone'], ['big', 'text']]),
    pgTable('pairs', [['a', 'integer'], ['b', 'text'], ['v', 'text']]),
    pgTable('logs', [['at', 'integer'], ['message', 'text'], ['r', 'real']]),
    pgTable('uniq', [['id', 'integer'], ['email', 'text']]),
  ];

  function insert(table: string, columns: string[], values: ColumnValue[]): RowChange {
    return { op: 'insert', table: nameOf(table), columns, values };
  }
  function update(table: string, columns: string[], values: ColumnValue[], oldColumns: string[] | null = null, oldValues: ColumnValue[] | null = null): RowChange {
    return { op: 'update', table: nameOf(table), columns, values, oldColumns, oldValues };
  }
  function remove(table: string, oldColumns: string[], oldValues: ColumnValue[]): RowChange {
    return { op: 'delete', table: nameOf(table), oldColumns, oldValues };
  }
  async function rows(table: string, select = '*', orderBy = '1, 2'): Promise<unknown[]> {
    const [result] = await db.connection.query(`SELECT ${select} FROM \`${db.name}\`.\`${table}\` ORDER BY ${orderBy}`);
    return result as unknown[];
  }
  async function applyAndCommit(jobId: string, changes: RowChange[], position: string, jobTables = tables()): Promise<void> {
    const applier = await openMysqlChangeApplier(db.params, jobId, jobTables);
    try {
      await applier.apply(changes);
      await applier.commit(position);
    } finally {
      await applier.close();
    }
  }
  function nextJob(): string {
    jobCounter++;
    return `${jobPrefix}-${jobCounter}`;
  }

  beforeAll(async () => {
    db = await createMysqlTestDatabase('ferry_mb2');
    await db.connection.query(`
      CREATE TABLE items (id int PRIMARY KEY, name varchar(50), flag tinyint(1), data longblob, at datetime(6), big longtext);
      CREATE TABLE pairs (a int, b varchar(20) COLLATE utf8mb4_bin, v text, PRIMARY KEY (a, b));
      CREATE TABLE logs (at int, message text, r float);
      CREATE TABLE uniq (id int PRIMARY KEY, email varchar(100) UNIQUE);
    `);
  });

  afterAll(async () => {
    const admin = await connectMysqlAdmin();
    try {
      const [exists] = await admin.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [POSITION_DATABASE, POSITION_TABLE]);
      if ((exists as unknown[]).length > 0) await admin.query(`DELETE FROM \`${POSITION_DATABASE}\`.\`${POSITION_TABLE}\` WHERE job_id LIKE ?`, [`${jobPrefix}-%`]);
    } finally {
      await admin.end();
    }
    await db?.drop();
  });

  it('applies inserts, updates, key changes and deletes with converted values, and records the position', async () => {
    const jobId = nextJob();
    const columns = ['id', 'name', 'flag', 'data', 'at', 'big'];
    await applyAndCommit(
      jobId,
      [
        insert('items', columns, ['1', 'one 😀', 't', '\\x00ff', '2024-01-01 10:00:00.5+05:30', 'big']),
        insert('items', columns, ['2', 'two', 'f', null, '2024-01-01 00:00:00+00', null]),
        insert('items', columns, ['3', "it's \\ tab\t", null, '\\x', null, 'keep']),
        update('items', columns, ['2', 'TWO', 't', '\\x01', '2024-06-01 12:00:00-02', null]),
        // An unchanged (TOASTed) value keeps the destination's.
        update('items', columns, ['3', 'three', 't', '\\x03', null, UNCHANGED]),
        // Key change 1 → 10.
        update('items', columns, ['10', 'ten', 'f', '\\x0a', null, 'moved'], ['id'], ['1']),
        insert('pairs', ['a', 'b', 'v'], ['1', 'x', 'a']),
        insert('pairs', ['a', 'b', 'v'], ['1', 'X', 'b']),
        insert('pairs', ['a', 'b', 'v'], ['2', 'y', 'c']),
        update('pairs', ['a', 'b', 'v'], ['2', 'z', 'd'], ['a', 'b'], ['2', 'y']),
        remove('pairs', ['a', 'b'], ['1', 'x']),
      ],
      'mysql-bin.000001:100',
    );
    expect(await rows('items', 'id, name, flag, HEX(data) AS data, at, big')).toEqual([
      { id: 2, name: 'TWO', flag: 1, data: '01', at: '2024-06-01 14:00:00.000000', big: null },
      { id: 3, name: 'three', flag: 1, data: '03', at: null, big: 'keep' },
      { id: 10, name: 'ten', flag: 0, data: '0A', at: null, big: 'moved' },
    ]);
    expect(await rows('pairs')).toEqual([
      { a: 1, b: 'X', v: 'b' },
      { a: 2, b: 'z', v: 'd' },
    ]);
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    try {
      expect(await applier.readPosition()).toBe('mysql-bin.000001:100');
    } finally {
      await applier.close();
    }
  });

  it('batches thousands of rows per statement, composite-key deletes included', async () => {
    const jobId = nextJob();
    await db.connection.query('DELETE FROM pairs');
    const inserts = Array.from({ length: 2500 }, (_, i) => insert('pairs', ['a', 'b', 'v'], [String(i % 50), `k${i}`, 'x'.repeat(i % 7)]));
    const deletes = Array.from({ length: 2400 }, (_, i) => remove('pairs', ['a', 'b'], [String(i % 50), `k${i}`]));
    await applyAndCommit(jobId, [...inserts, ...deletes], 'bulk');
    expect(await rows('pairs', 'a, b', 'b')).toEqual(Array.from({ length: 100 }, (_, i) => ({ a: (2400 + i) % 50, b: `k${2400 + i}` })).sort((x, y) => (x.b < y.b ? -1 : 1)));
  });

  it('ends an interleaved batch (hot keys, key changes, unchanged values, a table without key, TRUNCATE) as the changes applied one by one', async () => {
    const columns = ['id', 'name', 'flag', 'data', 'at', 'big'];
    // Rows that exist before the batch (committed alone): collapsing cannot hide their order.
    const before: RowChange[] = [
      insert('items', columns, ['1', 'a', 't', null, null, 'big1']),
      insert('items', columns, ['2', 'b', 'f', null, null, 'big2']),
      insert('uniq', ['id', 'email'], ['1', 'x@']),
      insert('uniq', ['id', 'email'], ['2', 'y@']),
    ];
    const batch: RowChange[] = [];
    for (let t = 0; t < 30; t++) {
      batch.push(update('items', columns, [String(1 + (t % 2)), `t${t}`, t % 2 === 0 ? 't' : 'f', null, null, t % 3 === 0 ? `big${t}` : UNCHANGED]));
      batch.push(insert('pairs', ['a', 'b', 'v'], [String(t % 4), `k${t % 3}`, `v${t}`]));
      batch.push(insert('logs', ['at', 'message', 'r'], [String(t), `m${t}`, null]));
      if (t % 5 === 4) batch.push(remove('pairs', ['a', 'b'], [String((t - 1) % 4), `k${(t - 1) % 3}`]));
    }
    batch.push(update('items', columns, ['5', 'moved', 't', '\\x05', null, 'bigm'], ['id'], ['2']));
    batch.push(update('items', columns, ['5', 'moved again', 'f', null, null, UNCHANGED]));
    batch.push(update('uniq', ['id', 'email'], ['1', 'tmp@']));
    batch.push(update('uniq', ['id', 'email'], ['2', 'x@']));
    batch.push(update('uniq', ['id', 'email'], ['1', 'y@']));
    batch.push({ op: 'truncate', tables: [nameOf('logs')], cascade: false, restartIdentity: false });
    batch.push(insert('logs', ['at', 'message', 'r'], ['99', 'after truncate', '1.5']));
    batch.push(update('items', columns, ['1', 'last', 'f', null, null, UNCHANGED]));

    const snapshot = async () => [
      await rows('items', 'id, name, flag, HEX(data) AS data, big', 'id'),
      await rows('pairs'),
      await rows('logs', 'at, message'),
      await rows('uniq'),
    ];
    const clear = () => db.connection.query('DELETE FROM items; DELETE FROM pairs; DELETE FROM logs; DELETE FROM uniq');
    await clear();
    await applyAndCommit(nextJob(), before, 'before');
    await applyAndCommit(nextJob(), batch, 'together');
    const together = await snapshot();
    await clear();
    await applyAndCommit(nextJob(), before, 'before');
    const jobId = nextJob();
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    try {
      for (const change of batch) await applier.apply([change]);
      await applier.commit('one by one');
    } finally {
      await applier.close();
    }
    expect(together).toEqual(await snapshot());
    expect(together[0]).toEqual([
      { id: 1, name: 'last', flag: 0, data: null, big: 'big24' },
      { id: 5, name: 'moved again', flag: 0, data: null, big: 'bigm' },
    ]);
    expect(together[2]).toEqual([{ at: 99, message: 'after truncate' }]);
    await clear();
  });

  it('is idempotent: the same batch applied twice ends in the same state', async () => {
    const jobId = nextJob();
    await db.connection.query('DELETE FROM items; DELETE FROM uniq');
    const columns = ['id', 'name', 'flag', 'data', 'at', 'big'];
    const batch = [
      insert('items', columns, ['1', 'a', 't', null, null, null]),
      insert('items', columns, ['2', 'b', 't', null, null, null]),
      update('items', columns, ['3', 'c', 'f', null, null, null], ['id'], ['1']),
      update('items', columns, ['2', 'b2', 'f', null, null, UNCHANGED]),
      remove('items', ['id'], ['2']),
      insert('items', columns, ['4', 'd', null, null, null, null]),
      insert('uniq', ['id', 'email'], ['1', 'a@x']),
      update('uniq', ['id', 'email'], ['1', 'b@x']),
      insert('uniq', ['id', 'email'], ['2', 'a@x']),
    ];
    await applyAndCommit(jobId, batch, 'p1');
    const once = [await rows('items', 'id, name, flag'), await rows('uniq')];
    await applyAndCommit(jobId, batch, 'p1');
    expect([await rows('items', 'id, name, flag'), await rows('uniq')]).toEqual(once);
    expect(once).toEqual([
      [
        { id: 3, name: 'c', flag: 0 },
        { id: 4, name: 'd', flag: null },
      ],
      [
        { id: 1, email: 'b@x' },
        { id: 2, email: 'a@x' },
      ],
    ]);
  });

  it('handles tables without a key: plain inserts, one-row updates and deletes matched on every old column', async () => {
    const jobId = nextJob();
    const columns = ['at', 'message', 'r'];
    await applyAndCommit(jobId, [
      insert('logs', columns, ['1', 'same', '1.1']),
      insert('logs', columns, ['1', 'same', '1.1']),
      insert('logs', columns, ['2', 'Case', null]),
      insert('logs', columns, ['2', 'case', null]),
      update('logs', columns, ['1', 'changed', '2.5'], columns, ['1', 'same', '1.1']),
      update('logs', columns, ['3', 'lower', null], columns, ['2', 'case', null]),
      remove('logs', columns, ['2', 'Case', null]),
    ], 'p');
    expect(await rows('logs', 'at, message, r', 'at, message')).toEqual([
      { at: 1, message: 'changed', r: 2.5 },
      { at: 1, message: 'same', r: 1.1 },
      { at: 3, message: 'lower', r: null },
    ]);
    const error = await (async () => {
      const applier = await openMysqlChangeApplier(db.params, jobId, tables());
      try {
        return await applier.apply([update('logs', columns, ['9', 'x', null])]).catch((e: unknown) => e);
      } finally {
        await applier.close();
      }
    })();
    expect((error as FerryError).code).toBe('TABLE_WITHOUT_PRIMARY_KEY');
  });

  it('applies TRUNCATE as a DELETE inside the batch, so a rollback keeps the rows', async () => {
    const jobId = nextJob();
    await db.connection.query('DELETE FROM pairs');
    await db.connection.query("INSERT INTO pairs VALUES (1, 'a', 'x'), (2, 'b', 'y')");
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    try {
      await applier.apply([{ op: 'truncate', tables: [nameOf('pairs')], cascade: false, restartIdentity: false }, insert('pairs', ['a', 'b', 'v'], ['3', 'c', 'z'])]);
      await applier.rollback();
      expect(await rows('pairs')).toHaveLength(2);
      expect(await applier.readPosition()).toBeNull();
      await applier.apply([{ op: 'truncate', tables: [nameOf('pairs')], cascade: false, restartIdentity: true }, insert('pairs', ['a', 'b', 'v'], ['3', 'c', 'z'])]);
      await applier.commit('after-truncate');
      expect(await rows('pairs')).toEqual([{ a: 3, b: 'c', v: 'z' }]);
      expect(await applier.readPosition()).toBe('after-truncate');
    } finally {
      await applier.close();
    }
  });

  it('commits changes and position together: a failed batch leaves neither', async () => {
    const jobId = nextJob();
    await applyAndCommit(jobId, [insert('uniq', ['id', 'email'], ['10', 'ten@x'])], 'before');
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    try {
      await applier.apply([insert('uniq', ['id', 'email'], ['11', 'eleven@x'])]);
      // A value MySQL cannot take (not a boolean) fails the batch.
      const error = await applier.apply([insert('items', ['id', 'name', 'flag', 'data', 'at', 'big'], ['50', 'x', 'maybe', null, null, null])]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('DATA_ERROR');
      await expect(applier.commit('after')).rejects.toThrow(/Call rollback\(\)/);
      await applier.rollback();
      expect(await applier.readPosition()).toBe('before');
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 11 });
      // The applier works again after the rollback.
      await applier.apply([insert('uniq', ['id', 'email'], ['11', 'eleven@x'])]);
      await applier.commit('after');
      expect(await applier.readPosition()).toBe('after');
      expect(await rows('uniq', 'id', 'id')).toContainEqual({ id: 11 });
    } finally {
      await applier.close();
    }
  });

  it('names the table of the failing statement among several sent in one round trip, and keeps none of the batch', async () => {
    const jobId = nextJob();
    await applyAndCommit(jobId, [insert('uniq', ['id', 'email'], ['20', 'twenty@x'])], 'before');
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    try {
      // Three tables, three statements: the server refuses the middle one (b is varchar(20), strict mode).
      const error = await applier
        .apply([
          insert('uniq', ['id', 'email'], ['21', 'twenty-one@x']),
          insert('pairs', ['a', 'b', 'v'], ['21', 'x'.repeat(30), 'too long']),
          insert('logs', ['at', 'message', 'r'], ['21', 'after', '1.5']),
        ])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('DATA_ERROR');
      expect(destinationTableOf(error as FerryError)).toEqual(nameOf('pairs'));
      await applier.rollback();
      expect(await applier.readPosition()).toBe('before');
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 21 });
      expect(await rows('logs', 'at', 'at')).not.toContainEqual({ at: 21 });
      // A value refused before anything is sent (not a boolean): what was queued before it goes nowhere, not into the next batch.
      const refused = await applier
        .apply([insert('uniq', ['id', 'email'], ['22', 'twenty-two@x']), remove('uniq', ['id'], ['99']), insert('items', ['id', 'name', 'flag', 'data', 'at', 'big'], ['22', 'x', 'maybe', null, null, null])])
        .catch((e: unknown) => e);
      expect((refused as FerryError).code).toBe('DATA_ERROR');
      await applier.rollback();
      await applier.apply([insert('logs', ['at', 'message', 'r'], ['22', 'next', '2.5'])]);
      await applier.commit('after');
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 22 });
      expect(await rows('logs', 'at', 'at')).toContainEqual({ at: 22 });
    } finally {
      await applier.close();
    }
  });

  it('applyAndCommit: a batch goes with its BEGIN, position write and COMMIT in one round trip; a refused statement or position keeps nothing', async () => {
    const jobId = nextJob();
    await applyAndCommit(jobId, [insert('uniq', ['id', 'email'], ['30', 'thirty@x'])], 'before');
    const applier = await openMysqlChangeApplier(db.params, jobId, tables());
    // Every query the applier's session sends (the real server answers them).
    const connection = (applier as unknown as { connection: { query: (...args: unknown[]) => unknown } }).connection;
    const sent: string[] = [];
    const query = connection.query.bind(connection);
    connection.query = (...args: unknown[]) => {
      sent.push(String(args[0]));
      return query(...args);
    };
    try {
      await applier.applyAndCommit([insert('uniq', ['id', 'email'], ['31', 'thirty-one@x']), insert('logs', ['at', 'message', 'r'], ['31', 'one', '1.5']), remove('uniq', ['id'], ['30'])], null, 'p31');
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(/^START TRANSACTION; SAVEPOINT ferry_deferred; .*; COMMIT$/s);
      expect(await applier.readPosition()).toBe('p31');
      expect(await rows('uniq', 'id', 'id')).toContainEqual({ id: 31 });
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 30 });
      // apply() alone sends its BEGIN with its statements: apply and commit are two round trips.
      sent.length = 0;
      await applier.apply([insert('logs', ['at', 'message', 'r'], ['32', 'two', '2.5']), remove('uniq', ['id'], ['31'])]);
      await applier.commit('p32');
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^START TRANSACTION; SAVEPOINT/);
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 31 });

      // The middle statement is refused: it is named, and neither the batch nor its position is kept.
      const error = await applier
        .applyAndCommit([insert('uniq', ['id', 'email'], ['33', 'thirty-three@x']), insert('pairs', ['a', 'b', 'v'], ['33', 'x'.repeat(30), 'too long']), insert('logs', ['at', 'message', 'r'], ['33', 'three', '3.5'])], null, 'p33')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('DATA_ERROR');
      expect(destinationTableOf(error as FerryError)).toEqual(nameOf('pairs'));
      await applier.rollback();
      expect(await applier.readPosition()).toBe('p32');
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 33 });
      expect(await rows('logs', 'at', 'at')).not.toContainEqual({ at: 33 });

      // A position the table cannot hold (varchar(512), strict): the statements passed, the position write fails, nothing is kept.
      const refused = await applier.applyAndCommit([insert('uniq', ['id', 'email'], ['34', 'thirty-four@x'])], null, 'p'.repeat(600)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(FerryError);
      expect(destinationTableOf(refused as FerryError)).toBeNull();
      await applier.rollback();
      expect(await applier.readPosition()).toBe('p32');
      expect(await rows('uniq', 'id', 'id')).not.toContainEqual({ id: 34 });

      // The applier goes on after both; a batch whose changes collapse to no statement still commits its position.
      await applier.applyAndCommit([insert('uniq', ['id', 'email'], ['35', 'thirty-five@x'])], null, 'p35');
      await applier.applyAndCommit([], null, 'p36');
      expect(await applier.readPosition()).toBe('p36');
      expect(await rows('uniq', 'id', 'id')).toContainEqual({ id: 35 });
    } finally {
      await applier.close();
    }
  });

  it('reports SCHEMA_CHANGED for columns the destination lacks, and continues once they exist', async () => {
    const jobId = nextJob();
    const withExtra = tables().map((t) => (t.name === 'uniq' ? pgTable('uniq', [['id', 'integer'], ['email', 'text'], ['extra', 'text']]) : t));
    const applier = await openMysqlChangeApplier(db.params, jobId, withExtra);
    try {
      const change = insert('uniq', ['id', 'email', 'extra'], ['20', 'twenty@x', 'more']);
      const error = await applier.apply([change]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect((error as FerryError).code).toBe('SCHEMA_CHANGED');
      expect((error as FerryError).retryable).toBe(true);
      expect((error as FerryError).message).toContain('ALTER TABLE');
      await applier.rollback();
      await db.connection.query('ALTER TABLE uniq ADD COLUMN extra text');
      await applier.apply([change]);
      await applier.commit('p');
      expect(await rows('uniq', 'id, extra', 'id')).toContainEqual({ id: 20, extra: 'more' });
      const missing = await applier.apply([insert('nowhere', ['id'], ['1'])]).catch((e: unknown) => e);
      expect((missing as FerryError).code).toBe('SCHEMA_CHANGED');
      await applier.rollback();
    } finally {
      await applier.close();
      await db.connection.query('ALTER TABLE uniq DROP COLUMN extra');
    }
  });

  it('writes MySQL source values as they are, bytes from their hex and bit forms', async () => {
    await db.connection.query('CREATE TABLE raw_values (id int PRIMARY KEY, b varbinary(10), bits bit(10), d date, f float)');
    const table: TableSchema = { ...pgTable('raw_values', [['id', 'int(11)'], ['b', 'varbinary(10)'], ['bits', 'bit(10)'], ['d', 'date'], ['f', 'float']]), nativeDefinition: 'CREATE TABLE `raw_values` (...)' };
    await applyAndCommit(nextJob(), [insert('raw_values', ['id', 'b', 'bits', 'd', 'f'], ['1', '\\x00ff5c', "b'1010101010'", '0000-00-00', '1.1'])], 'p', [table]);
    expect(await rows('raw_values', 'id, HEX(b) AS b, BIN(bits) AS bits, d, f', 'id')).toEqual([{ id: 1, b: '00FF5C', bits: '1010101010', d: '0000-00-00', f: 1.1 }]);
  });

  it('forgets the position: the row goes, and _ferry with it when no job is left', async () => {
    const jobId = nextJob();
    await applyAndCommit(jobId, [], 'only-position');
    const applier = await openMysqlChangeApplier(db.params, jobId, []);
    try {
      expect(await applier.readPosition()).toBe('only-position');
      await applier.forgetPosition();
      expect(await applier.readPosition()).toBeNull();
    } finally {
      await applier.close();
    }
    const [rowsLeft] = await db.connection.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [POSITION_DATABASE, POSITION_TABLE]);
    if (Number((rowsLeft as Array<{ n: number }>)[0]?.n) > 0) {
      // Other jobs (this file's, or concurrent test files') still replicate into this server.
      const [others] = await db.connection.query(`SELECT COUNT(*) AS n FROM \`${POSITION_DATABASE}\`.\`${POSITION_TABLE}\``);
      expect(Number((others as Array<{ n: number }>)[0]?.n)).toBeGreaterThan(0);
    }
  });
});

describe('MySQL to MySQL', () => {
  let sourceDb: MysqlTestDatabase;
  const destinationName = `ferry_mb2d_${randomBytes(4).toString('hex')}`;

  /** The source schema with every table moved to the destination database (both live on one server here). */
  function retarget(schema: DatabaseSchema): DatabaseSchema {
    const move = (name: QualifiedName) => (name.schema === sourceDb.name ? { ...name, schema: destinationName } : name);
    return {
      ...schema,
      schemas: [destinationName],
      tables: schema.tables.map((t) => ({
        ...t,
        schema: destinationName,
        foreignKeys: t.foreignKeys.map((f) => ({ ...f, referencedTable: move(f.referencedTable), definition: f.definition.split(`\`${sourceDb.name}\``).join(`\`${destinationName}\``) })),
      })),
      sequences: schema.sequences.map((s) => ({ ...s, schema: destinationName, ownedBy: s.ownedBy === null ? null : { ...s.ownedBy, table: move(s.ownedBy.table) } })),
      enums: [],
    };
  }

  beforeAll(async () => {
    sourceDb = await createMysqlTestDatabase('ferry_mb2s');
    await sourceDb.connection.query(`
      SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';
      CREATE TABLE parent (id int PRIMARY KEY);
      CREATE TABLE everything (
        id int unsigned NOT NULL AUTO_INCREMENT,
        ti tinyint, tb tinyint(1), si smallint unsigned, mi mediumint, bu bigint unsigned, dec30 decimal(30,10),
        f float, db double, bt bit(10), y year, d date, dt datetime(6), ts timestamp(3) NULL DEFAULT NULL, tm time(6),
        c char(10), vc varchar(100), tx text, bn binary(4), vb varbinary(20), bl blob, e enum('a','b','c d'), st set('x','y','z'), j json,
        parent_id int, g int GENERATED ALWAYS AS (ti * 2) STORED, v varchar(20) AS (concat(c, '!')) VIRTUAL,
        PRIMARY KEY (id), UNIQUE KEY u_c (c), KEY k_vc (vc(10)) COMMENT 'prefix', FULLTEXT KEY ft (tx),
        CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
      ) AUTO_INCREMENT = 100 COMMENT 'all types';
      INSERT INTO parent VALUES (1);
      INSERT INTO everything (id, ti, tb, si, mi, bu, dec30, f, db, bt, y, d, dt, ts, tm, c, vc, tx, bn, vb, bl, e, st, j, parent_id) VALUES
        (1, -128, 1, 65535, -8388608, 18446744073709551615, '-12345678901234567890.0123456789', 1.1, 0.1, b'1010101010', 1901,
         '0000-00-00', '0000-00-00 00:00:00', '2038-01-19 03:14:07.999', '-838:59:59.000000',
         'ab', 'héllo 😀', 'tab\\there\\nnew\\rline \\\\ back \\Z', X'00FF5C0A', X'', X'00090A0D5C4E', 'c d', 'x,z', '{"a": [1, 2.50]}', 1),
        (2, 0, 0, 0, 0, 0, 0, -0, -1e308, b'0', 2155, '2024-00-10', '2024-02-29 23:59:59.999999', NULL, '00:00:00',
         '', '', '', X'00000000', X'FF', X'', 'a', '', 'null', NULL),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    `);
  });

  afterAll(async () => {
    const admin = await connectMysqlAdmin();
    try {
      await admin.query(`DROP DATABASE IF EXISTS \`${destinationName}\``);
    } finally {
      await admin.end();
    }
    await sourceDb?.drop();
  });

  it('copies through the MySQL snapshot reader and keeps every byte, zero dates included', async () => {
    const snapshot = await mysqlEngine.openSnapshot(sourceDb.params);
    let schema: DatabaseSchema;
    try {
      schema = retarget(await snapshot.readSchema({ include: [sourceDb.name], exclude: [] }));
      const writer = await openMysqlSchemaWriter(mysqlConnectionParams(null));
      try {
        expect((await writer.createPreDataObjects(schema)).map((o) => o.name)).toEqual([destinationName, 'everything', 'parent']);
        const reader = await snapshot.openTableReader();
        const tableWriter = await openMysqlTableWriter(mysqlConnectionParams(null));
        try {
          for (const table of schema.tables) {
            const sourceTable = { ...table, schema: sourceDb.name };
            const result = await tableWriter.replaceTableData(table, reader.copyOut(sourceTable, { destinationEngine: 'mysql' }), never);
            expect(result.rows).toBe(table.name === 'everything' ? 3 : 1);
          }
        } finally {
          await tableWriter.close();
          await reader.close();
        }
        await writer.createPostDataObjects(schema);
        await writer.syncSequences(schema);
      } finally {
        await writer.close();
      }
    } finally {
      await snapshot.close();
    }
    const admin = await connectMysqlAdmin();
    try {
      const read = async (database: string, sql: string) => {
        const [rows] = await admin.query({ sql: sql.replace('$db', `\`${database}\``), rowsAsArray: true, typeCast: false });
        return rows;
      };
      const select = 'SELECT * FROM $db.everything ORDER BY id';
      expect(await read(destinationName, select)).toEqual(await read(sourceDb.name, select));
      const [sourceCreate] = await admin.query(`SHOW CREATE TABLE \`${sourceDb.name}\`.everything`);
      const [destinationCreate] = await admin.query(`SHOW CREATE TABLE \`${destinationName}\`.everything`);
      // The same definition, keys, foreign key and counter included (key order may differ: secondary keys came after the data).
      const normalize = (text: string) => text.split('\n').map((l) => l.replace(/,$/, '')).sort();
      const sourceText = (sourceCreate as Array<Record<string, string>>)[0]?.['Create Table'] ?? '';
      const destinationText = ((destinationCreate as Array<Record<string, string>>)[0]?.['Create Table'] ?? '').split(`\`${destinationName}\``).join(`\`${sourceDb.name}\``);
      expect(normalize(destinationText)).toEqual(normalize(sourceText));
      expect(destinationText).toContain('AUTO_INCREMENT=100');
    } finally {
      await admin.end();
    }
  });

  it('applies binlog changes read by the MySQL change reader exactly', async () => {
    const schema = retarget(await mysqlEngine.readSchema(sourceDb.params, { include: [sourceDb.name], exclude: [] }));
    const start = await mysqlEngine.currentPosition(sourceDb.params);
    await sourceDb.connection.query(`
      INSERT INTO everything (id, ti, tb, si, mi, bu, dec30, f, db, bt, y, d, dt, ts, tm, c, vc, tx, bn, vb, bl, e, st, j, parent_id) VALUES
        (10, 5, 1, 7, 8, 18446744073709551615, '1.5', 3.4e38, 2.2250738585072014e-308, b'1111111111', 2000,
         '0000-00-00', '2024-00-10 00:00:00', '2001-02-03 04:05:06.789', '838:59:59.999999',
         'x10', 'émoji 😀', 'line\\nbreak', X'0A0D5C00', X'5C', X'FF00', 'b', 'y', '{"k": [true, null]}', 1);
      UPDATE everything SET vc = 'changed', bl = X'00', f = 0.1, st = 'x,y,z' WHERE id = 1;
      UPDATE everything SET id = 11, c = 'moved' WHERE id = 2;
      DELETE FROM everything WHERE id = 3;
    `);
    const reader = await mysqlEngine.openChangeReader(sourceDb.params, { slotName: 'unused', publicationName: 'unused' }, start);
    const changes: RowChange[] = [];
    let commits = 0;
    let last = start;
    try {
      for await (const chunk of reader.events()) {
        for (const event of chunk) {
          if (event.kind === 'change' && event.change.op !== 'truncate') changes.push({ ...event.change, table: { schema: destinationName, name: event.change.table.name } });
          if (event.kind === 'commit') {
            commits++;
            last = event.position;
          }
        }
        if (commits >= 4) break;
      }
    } finally {
      await reader.close();
    }
    expect(changes.map((c) => c.op)).toEqual(['insert', 'update', 'update', 'delete']);
    const applier = await openMysqlChangeApplier(mysqlConnectionParams(null), `${destinationName}-job`, schema.tables);
    try {
      await applier.apply(changes);
      await applier.commit(last);
      // Applied twice (a replay): the same end state.
      await applier.apply(changes);
      await applier.commit(last);
      await applier.forgetPosition();
    } finally {
      await applier.close();
    }
    const admin = await connectMysqlAdmin();
    try {
      const read = async (database: string) => {
        const [rows] = await admin.query({ sql: `SELECT * FROM \`${database}\`.everything ORDER BY id`, rowsAsArray: true, typeCast: false });
        return rows;
      };
      const expected = await read(sourceDb.name);
      expect((expected as unknown[]).length).toBe(3);
      expect(await read(destinationName)).toEqual(expected);
    } finally {
      await admin.end();
    }
  });

  it('loads raw bytes exactly through LOAD DATA (no conversion for a MySQL source)', () => {
    const table = { schema: 'd', name: 't', columns: [{ name: 'b', generatedExpression: null }, { name: 'g', generatedExpression: 'x' }], nativeDefinition: '' } as unknown as TableSchema;
    expect(loadDataSql(table, 'mysql', null)).toBe("LOAD DATA LOCAL INFILE 'ferry' INTO TABLE `d`.`t` CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`b`)");
  });
});
