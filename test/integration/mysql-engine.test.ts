/**
 * The MySQL/MariaDB engine against the real MariaDB: introspection of a schema with every
 * MySQL type of docs/type-mapping.md, the interchange text for both destination engines,
 * snapshot consistency with per-reader binlog positions, the verify checks and error
 * classification.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ObjectSelection } from '../../src/core/object-selection.js';
import type { TableSchema } from '../../src/core/schema.js';
import type { VerifyCheck } from '../../src/engines/engine.js';
import { BinlogPosition } from '../../src/engines/mysql/binlog-position.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { classifyMysqlError } from '../../src/engines/mysql/mysql-error-classifier.js';
import { parseEnumLabels } from '../../src/engines/mysql/mysql-introspector.js';
import { MysqlTableReader, canonicalDateTime } from '../../src/engines/mysql/mysql-snapshot-reader.js';
import { parseGrants, hasOnTable } from '../../src/engines/mysql/mysql-verifier.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams, type MysqlTestDatabase } from '../helpers/mysql.js';

const TYPES_TABLE_SQL = `
  CREATE TABLE types (
    id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    b tinyint(1),
    ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
    mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
    d decimal(10,2) DEFAULT 0.00, f float, db double,
    bt bit(10) DEFAULT b'101', y year,
    dt date, dtm datetime(6), ts timestamp(3) NULL DEFAULT NULL, tm time(6),
    en enum('small','medium','large') DEFAULT 'small', st set('red','green','blue'),
    j json,
    bin binary(4), vb varbinary(16), bl blob,
    c char(5), vc varchar(50) DEFAULT 'it''s', tx text,
    g bigint GENERATED ALWAYS AS (i * 2) STORED,
    UNIQUE KEY uq_vc (vc),
    KEY k_dt (dt, dtm DESC),
    CONSTRAINT d_not_huge CHECK (d < 100000000)
  ) AUTO_INCREMENT = 1
`;

const ROWS_SQL = [
  `INSERT INTO types (b, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, f, db, bt, y, dt, dtm, ts, tm, en, st, j, bin, vb, bl, c, vc, tx)
   VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
           -12345678.90, 1234567.875, 0.1, b'1010101010', 2024, '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123',
           '-838:59:59.000000', 'medium', 'red,blue', '{"a": [1, 2.5, "x"]}', 0x00ff0a5c, 0x09, 'hello\\tworld\\n',
           'ab', 'Emoji 😀 tab\\t and \\\\ backslash', 'line1\\nline2\\r\\n')`,
  `INSERT INTO types (id, d, bt, en, vc) VALUES (2, NULL, NULL, NULL, NULL)`,
  // Zero dates need a sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE.
  `INSERT INTO types (id, b, dt, dtm, ts, st, y, vc, f, db) VALUES (3, 0, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '', 0, 'three', -0.5, 1e300)`,
  `INSERT INTO types (id, dt, dtm, vc) VALUES (4, '2024-00-10', '0000-01-01 00:00:00', 'four')`,
];

/** Reads a whole stream into one Buffer. */
async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One line of expected interchange text from its fields (strings as UTF-8, Buffers as is). */
function line(fields: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  fields.forEach((field, i) => {
    if (i > 0) parts.push(Buffer.from('\t'));
    parts.push(typeof field === 'string' ? Buffer.from(field, 'utf8') : field);
  });
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

const N = '\\N';

function check(checks: VerifyCheck[], code: string): VerifyCheck {
  const found = checks.find((c) => c.code === code);
  if (found === undefined) throw new Error(`no ${code} check in ${JSON.stringify(checks, null, 2)}`);
  return found;
}

describe('MySQL engine (MariaDB)', () => {
  let db: MysqlTestDatabase;
  let selection: ObjectSelection;

  beforeAll(async () => {
    db = await createMysqlTestDatabase('ferry_t_me');
    selection = { include: [db.name], exclude: [] };
    const c = db.connection;
    await c.query("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'");
    await c.query(TYPES_TABLE_SQL);
    for (const sql of ROWS_SQL) await c.query(sql);
    await c.query('CREATE TABLE parent (id bigint PRIMARY KEY, name varchar(20) NOT NULL)');
    await c.query(
      'CREATE TABLE child (id int PRIMARY KEY, parent_id bigint, CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE)',
    );
    await c.query('CREATE TABLE nopk (a int, b text, at timestamp NULL ON UPDATE current_timestamp())');
    await c.query('INSERT INTO parent VALUES (1, "one"), (2, "two")');
    await c.query('INSERT INTO nopk (a, b) VALUES (1, "x")');
    await c.query('CREATE VIEW parent_names AS SELECT name FROM parent');
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('introspects every MySQL type of the mapping table', async () => {
    const schema = await mysqlEngine.readSchema(db.params, selection);
    expect(schema.engine).toBe('mysql');
    expect(schema.schemas).toEqual([db.name]);
    expect(schema.tables.map((t) => t.name)).toEqual(['child', 'nopk', 'parent', 'types']);
    const types = schema.tables.find((t) => t.name === 'types') as TableSchema;
    const byName = new Map(types.columns.map((c) => [c.name, c]));
    expect(Object.fromEntries(types.columns.map((c) => [c.name, c.nativeType]))).toEqual({
      id: 'int(10) unsigned', b: 'tinyint(1)', ti: 'tinyint(4)', tiu: 'tinyint(3) unsigned', si: 'smallint(6)', siu: 'smallint(5) unsigned',
      mi: 'mediumint(9)', miu: 'mediumint(8) unsigned', i: 'int(11)', iu: 'int(10) unsigned', bi: 'bigint(20)', biu: 'bigint(20) unsigned',
      d: 'decimal(10,2)', f: 'float', db: 'double', bt: 'bit(10)', y: 'year(4)', dt: 'date', dtm: 'datetime(6)', ts: 'timestamp(3)', tm: 'time(6)',
      en: "enum('small','medium','large')", st: "set('red','green','blue')", j: 'json', bin: 'binary(4)', vb: 'varbinary(16)', bl: 'blob',
      c: 'char(5)', vc: 'varchar(50)', tx: 'text', g: 'bigint(20)',
    });
    expect(byName.get('id')).toMatchObject({ nullable: false, identity: 'by-default', defaultExpression: null, generatedExpression: null });
    expect(byName.get('g')).toMatchObject({ generatedExpression: '`i` * 2', defaultExpression: null });
    expect(byName.get('d')?.defaultExpression).toBe('0.00');
    expect(byName.get('bt')?.defaultExpression).toBe("b'101'");
    expect(byName.get('en')?.defaultExpression).toBe("'small'");
    expect(byName.get('vc')?.defaultExpression).toBe("'it''s'");
    expect(byName.get('tx')?.defaultExpression).toBeNull();
    expect(byName.get('j')?.collation).toBeNull();
    expect(types.primaryKey).toEqual({ name: 'PRIMARY', columns: ['id'] });
    expect(types.uniqueConstraints).toEqual([{ name: 'uq_vc', columns: ['vc'] }]);
    expect(types.indexes).toEqual([{ name: 'k_dt', definition: `CREATE INDEX \`k_dt\` ON \`${db.name}\`.\`types\` (\`dt\`, \`dtm\` DESC)` }]);
    // MariaDB's JSON check is the type, not a constraint.
    expect(types.checkConstraints).toEqual([{ name: 'd_not_huge', definition: 'CHECK (`d` < 100000000)' }]);
    expect(types.nativeDefinition).toMatch(/^CREATE TABLE `types` \(/);
    expect(types.estimatedRows).toBeGreaterThanOrEqual(0);

    const child = schema.tables.find((t) => t.name === 'child') as TableSchema;
    expect(child.foreignKeys).toEqual([
      {
        name: 'child_parent', definition: `FOREIGN KEY (\`parent_id\`) REFERENCES \`${db.name}\`.\`parent\` (\`id\`) ON DELETE CASCADE`, referencedTable: { schema: db.name, name: 'parent' },
        columns: ['parent_id'], referencedColumns: ['id'], onDelete: 'CASCADE', onUpdate: 'RESTRICT',
      },
    ]);
    const nopk = schema.tables.find((t) => t.name === 'nopk') as TableSchema;
    expect(nopk.primaryKey).toBeNull();
    expect(nopk.columns[2]).toMatchObject({ name: 'at', nativeType: 'timestamp', defaultExpression: 'NULL ON UPDATE current_timestamp()' });

    expect(schema.enums).toEqual([{ schema: db.name, name: 'types_en', labels: ['small', 'medium', 'large'] }]);
    expect(schema.sequences).toEqual([
      {
        schema: db.name, name: 'types_id_seq', dataType: 'int unsigned', start: '1', increment: '1', minValue: '1', maxValue: '4294967295',
        cache: '1', cycle: false, lastValue: '4', ownedBy: { table: { schema: db.name, name: 'types' }, column: 'id' }, identity: true,
      },
    ]);
  });

  it('parses enum labels, and dates PostgreSQL cannot hold', () => {
    expect(parseEnumLabels("enum('a','b''c','d\\\\e','')")).toEqual(['a', "b'c", 'd\\e', '']);
    expect(canonicalDateTime('2024-02-31')).toBeNull();
    expect(canonicalDateTime('2023-02-29 10:00:00')).toBeNull();
    expect(canonicalDateTime('2024-02-29 10:00:00.5')).toBe('2024-02-29 10:00:00.5');
    expect(canonicalDateTime('0000-03-01')).toBe('0001-03-01 BC');
  });

  async function copyTypes(destinationEngine: 'mysql' | 'postgresql'): Promise<{ text: Buffer; reader: MysqlTableReader }> {
    const snapshot = await mysqlEngine.openSnapshot(db.params);
    try {
      const schema = await snapshot.readSchema({ include: [`${db.name}.types`], exclude: [] });
      const reader = (await snapshot.openTableReader()) as MysqlTableReader;
      try {
        const text = await readAll(reader.copyOut(schema.tables[0] as TableSchema, { destinationEngine }));
        return { text, reader };
      } finally {
        await reader.close();
      }
    } finally {
      await snapshot.close();
    }
  }

  it('writes MySQL text for a MySQL destination, generated columns left out', async () => {
    const { text } = await copyTypes('mysql');
    const expected = Buffer.concat([
      line([
        '1', '1', '-128', '255', '-32768', '65535', '-8388608', '16777215', '-2147483648', '4294967295', '-9223372036854775808', '18446744073709551615',
        '-12345678.90', '1234567.9', '0.1', Buffer.from([0x02, 0xaa]), '2024', '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123',
        '-838:59:59.000000', 'medium', 'red,blue', '{"a": [1, 2.5, "x"]}', Buffer.from([0x00, 0xff, 0x5c, 0x6e, 0x5c, 0x5c]), '\\t', 'hello\\tworld\\n',
        'ab', 'Emoji 😀 tab\\t and \\\\ backslash', 'line1\\nline2\\r\\n',
      ]),
      line(['2', N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N]),
      line(['3', '0', N, N, N, N, N, N, N, N, N, N, '0.00', '-0.5', '1e+300', Buffer.from([0x00, 0x05]), '0000', '0000-00-00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000', N, 'small', '', N, N, N, N, N, 'three', N]),
      line(['4', N, N, N, N, N, N, N, N, N, N, N, '0.00', N, N, Buffer.from([0x00, 0x05]), N, '2024-00-10', '0000-01-01 00:00:00.000000', N, N, 'small', N, N, N, N, N, N, 'four', N]),
    ]);
    expect(text.toString('latin1')).toBe(expected.toString('latin1'));
  });

  it('writes the canonical form for a PostgreSQL destination, generated columns included', async () => {
    const { text, reader } = await copyTypes('postgresql');
    const expected = Buffer.concat([
      line([
        '1', 't', '-128', '255', '-32768', '65535', '-8388608', '16777215', '-2147483648', '4294967295', '-9223372036854775808', '18446744073709551615',
        '-12345678.90', '1234567.9', '0.1', '1010101010', '2024', '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123+00',
        '-838:59:59.000000', 'medium', '{red,blue}', '{"a": [1, 2.5, "x"]}', '\\\\x00ff0a5c', '\\\\x09', '\\\\x68656c6c6f09776f726c640a',
        'ab', 'Emoji 😀 tab\\t and \\\\ backslash', 'line1\\nline2\\r\\n', '-4294967296',
      ]),
      line(['2', N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N]),
      line(['3', 'f', N, N, N, N, N, N, N, N, N, N, '0.00', '-0.5', '1e+300', '0000000101', '0000', N, N, N, N, 'small', '{}', N, N, N, N, N, 'three', N, N]),
      line(['4', N, N, N, N, N, N, N, N, N, N, N, '0.00', N, N, '0000000101', N, N, '0001-01-01 00:00:00.000000 BC', N, N, 'small', N, N, N, N, N, N, 'four', N, N]),
    ]);
    expect(text.toString('utf8')).toBe(expected.toString('utf8'));
    expect(Object.fromEntries(reader.nulledZeroDates)).toEqual({
      [`${db.name}.types.dt`]: 2,
      [`${db.name}.types.dtm`]: 1,
      [`${db.name}.types.ts`]: 1,
    });
  });

  it('reads each table from its reader snapshot, with ordered binlog positions', async () => {
    const parent = { schema: db.name, name: 'parent' };
    const snapshot = await mysqlEngine.openSnapshot(db.params, { alignedWithChanges: true });
    try {
      expect(snapshot.position).not.toBeNull();
      const schema = await snapshot.readSchema({ include: [`${db.name}.parent`], exclude: [] });
      const table = schema.tables[0] as TableSchema;
      expect(table).toMatchObject(parent);
      const first = await snapshot.openTableReader();
      await db.connection.query('INSERT INTO parent VALUES (3, "three")');
      const second = await snapshot.openTableReader();
      await db.connection.query('INSERT INTO parent VALUES (4, "four")');
      try {
        expect(first.position).not.toBeNull();
        expect(second.position).not.toBeNull();
        const a = first.position as string;
        const b = second.position as string;
        expect(mysqlEngine.comparePositions(snapshot.position as string, a)).toBeLessThanOrEqual(0);
        expect(BinlogPosition.parse(a).compare(BinlogPosition.parse(b))).toBeLessThan(0);
        expect((await readAll(first.copyOut(table))).toString()).toBe('1\tone\n2\ttwo\n');
        expect((await readAll(second.copyOut(table))).toString()).toBe('1\tone\n2\ttwo\n3\tthree\n');
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    } finally {
      await snapshot.close();
      await db.connection.query('DELETE FROM parent WHERE id > 2');
    }
  });

  it('stops a copy when the consumer goes away, and refuses a closed reader', async () => {
    const snapshot = await mysqlEngine.openSnapshot(db.params);
    try {
      const schema = await snapshot.readSchema({ include: [`${db.name}.types`], exclude: [] });
      const reader = await snapshot.openTableReader();
      const stream = reader.copyOut(schema.tables[0] as TableSchema);
      stream.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await reader.close();
      await expect(readAll(reader.copyOut(schema.tables[0] as TableSchema))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    } finally {
      await snapshot.close();
    }
  });

  it('reports the server, its binlog settings and privileges', async () => {
    const report = await mysqlEngine.testConnection(mysqlConnectionParams(null));
    expect(report.error).toBeNull();
    expect(report.ok).toBe(true);
    expect(report.serverVersion).toMatch(/^MariaDB 10\.\d+\.\d+$/);
    expect(report.settings).toMatchObject({ log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', local_infile: 'ON' });
    expect(Number(report.settings.server_id)).toBeGreaterThan(0);
    expect(report.privileges).toMatchObject({ all: true, select: true, replicationSlave: true, replicationClient: true });
    expect(report.checks).toEqual([]);
  });

  it('verifies the source: binlog settings, tables without keys; lists the schema objects', async () => {
    const checks = await mysqlEngine.verifySource(db.params, selection, 'continuous');
    for (const code of ['CONNECTIVITY', 'NO_TABLES_SELECTED', 'PRIVILEGES', 'UNSUPPORTED_TYPE', 'NON_TRANSACTIONAL_TABLE', 'LOG_BIN', 'BINLOG_FORMAT', 'BINLOG_ROW_IMAGE', 'SERVER_ID', 'BINLOG_RETENTION', 'REPLICATION_PRIVILEGE', 'FOREIGN_KEY_TO_UNSELECTED_TABLE']) {
      expect(check(checks, code).severity, code).toBe('ok');
    }
    expect(check(checks, 'TABLE_WITHOUT_PRIMARY_KEY')).toMatchObject({ severity: 'warning', objects: [`${db.name}.nopk`] });
    expect(checks.some((c) => c.code === 'DEFINER_OBJECTS')).toBe(false);
    const objects = await mysqlEngine.listSchemaObjects(db.params, selection);
    expect(objects).toEqual([expect.objectContaining({ kind: 'view', schema: db.name, name: 'parent_names', dependsOn: [`${db.name}.parent`] })]);
    expect(objects[0]?.definition).toMatch(/^CREATE ALGORITHM=UNDEFINED DEFINER=`[^`]+`@`[^`]+` SQL SECURITY DEFINER VIEW `parent_names` AS select/);

    const oneTime = await mysqlEngine.verifySource(db.params, selection, 'one-time');
    expect(oneTime.some((c) => c.code === 'LOG_BIN')).toBe(false);
    expect(oneTime.filter((c) => c.severity === 'error')).toEqual([]);

    const none = await mysqlEngine.verifySource(db.params, { include: [`${db.name}.missing`], exclude: [] }, 'one-time');
    expect(check(none, 'NO_TABLES_SELECTED').severity).toBe('error');
  });

  it('accepts spatial columns (with their SRID attribute in the schema) and warns about non-InnoDB tables at verify', async () => {
    const spatial = await createMysqlTestDatabase('ferry_t_geo');
    try {
      await spatial.connection.query('CREATE TABLE places (id int PRIMARY KEY, spot point REF_SYSTEM_ID=4326, area polygon)');
      await spatial.connection.query('CREATE TABLE legacy (id int PRIMARY KEY) ENGINE = MyISAM');
      const checks = await mysqlEngine.verifySource(spatial.params, { include: [], exclude: [] }, 'one-time');
      expect(check(checks, 'UNSUPPORTED_TYPE').severity).toBe('ok');
      const schema = await mysqlEngine.readSchema(spatial.params, { include: [`${spatial.name}.places`], exclude: [] });
      expect(schema.tables[0]?.columns.map((c) => [c.name, c.nativeType, c.srid])).toEqual([
        ['id', 'int(11)', undefined],
        ['spot', 'point', 4326],
        ['area', 'polygon', undefined],
      ]);
      expect(check(checks, 'NON_TRANSACTIONAL_TABLE')).toMatchObject({ severity: 'warning', objects: [`${spatial.name}.legacy`] });
    } finally {
      await spatial.drop();
    }
  });

  it('verifies a MySQL destination: local_infile, privileges, tables that hold rows', async () => {
    const destination = await createMysqlTestDatabase('ferry_t_dst');
    try {
      const schema = await mysqlEngine.readSchema(db.params, selection);
      const moved = { ...schema, schemas: [destination.name], tables: schema.tables.map((t) => ({ ...t, schema: destination.name })) };
      let checks = await mysqlEngine.verifyDestination(destination.params, moved);
      expect(checks.filter((c) => c.severity !== 'ok')).toEqual([]);
      expect(check(checks, 'LOCAL_INFILE').severity).toBe('ok');

      await destination.connection.query('CREATE TABLE parent (id bigint PRIMARY KEY, name varchar(20) NOT NULL)');
      await destination.connection.query('INSERT INTO parent VALUES (9, "nine")');
      await destination.connection.query('CREATE TABLE nopk (a int, other text)');
      checks = await mysqlEngine.verifyDestination(destination.params, moved);
      expect(check(checks, 'DESTINATION_NOT_EMPTY')).toMatchObject({ severity: 'error', objects: [`${destination.name}.parent`] });
      expect(check(checks, 'DESTINATION_TABLE_MISMATCH')).toMatchObject({ severity: 'error', objects: [`${destination.name}.nopk`] });
    } finally {
      await destination.drop();
    }
  });

  describe('errors', () => {
    const user = `ferry_t_${randomBytes(3).toString('hex')}`;
    const password = `pw-${randomBytes(6).toString('hex')}`;

    beforeAll(async () => {
      const admin = await connectMysqlAdmin();
      try {
        await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
        await admin.query(`GRANT SELECT ON \`${db.name}\`.\`parent\` TO '${user}'@'%'`);
      } finally {
        await admin.end();
      }
    });

    afterAll(async () => {
      const admin = await connectMysqlAdmin();
      try {
        await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
      } finally {
        await admin.end();
      }
    });

    it('classifies a refused connection, an unknown database and a bad password', async () => {
      const refused = await mysqlEngine.testConnection(mysqlConnectionParams(null, { port: 1 }));
      expect(refused.ok).toBe(false);
      expect(refused.error).toMatchObject({ code: 'CONNECTION_REFUSED', retryable: true });

      const unknown = await mysqlEngine.testConnection(mysqlConnectionParams('ferry_t_no_such_database'));
      expect(unknown.error).toMatchObject({ code: 'DATABASE_NOT_FOUND' });
      expect(unknown.error?.message).toContain('ferry_t_no_such_database');

      const bad = await mysqlEngine.testConnection(mysqlConnectionParams(null, { username: user, password: 'wrong' }));
      expect(bad.error).toMatchObject({ code: 'AUTHENTICATION_FAILED', retryable: false, recoverable: true });

      const good = await mysqlEngine.testConnection(mysqlConnectionParams(db.name, { username: user, password }));
      expect(good.ok).toBe(true);
      expect(good.privileges).toMatchObject({ all: false, replicationSlave: false });
      expect(good.checks.find((c) => c.code === 'REPLICATION_PRIVILEGE')?.message).toContain(`GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '${user}'@'%'`);
    });

    it('names the GRANT a limited account needs', async () => {
      const params = mysqlConnectionParams(db.name, { username: user, password });
      const checks = await mysqlEngine.verifySource(params, { include: [db.name], exclude: [] }, 'continuous');
      // information_schema shows the account only the tables it has a privilege on.
      expect(check(checks, 'NO_TABLES_SELECTED')).toMatchObject({ severity: 'ok', objects: [`${db.name}.parent`] });
      expect(check(checks, 'PRIVILEGES').severity).toBe('ok');
      expect(check(checks, 'REPLICATION_PRIVILEGE')).toMatchObject({ severity: 'error' });

      const snapshot = await mysqlEngine.openSnapshot(params);
      try {
        const reader = await snapshot.openTableReader();
        const table = { ...(await mysqlEngine.readSchema(db.params, { include: [`${db.name}.nopk`], exclude: [] })).tables[0] } as TableSchema;
        const failure = await readAll(reader.copyOut(table)).catch((error: unknown) => error);
        expect(failure).toMatchObject({ code: 'INSUFFICIENT_PRIVILEGE' });
        expect((failure as Error).message).toContain(`GRANT SELECT ON \`${db.name}\`.\`nopk\` TO '${user}'@'%'`);
        await reader.close();
      } finally {
        await snapshot.close();
      }
    });

    it('classifies purged binlogs, lost connections, deadlocks and duplicates', () => {
      const serverError = (errno: number, code: string, message: string) => Object.assign(new Error(message), { errno, code, sqlState: 'HY000', sqlMessage: message });
      const purged = classifyMysqlError(serverError(1236, 'ER_MASTER_FATAL_ERROR_READING_BINLOG', 'Could not find first log file name in binary log index file'));
      expect(purged).toMatchObject({ code: 'REPLICATION_SLOT_LOST', retryable: false, recoverable: false });
      expect(purged.message).toMatch(/^The saved binlog position no longer exists on the source \(binlogs purged\)/);
      expect(purged.message).toContain('Restart the job to take a new full dump');
      expect(classifyMysqlError(Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }))).toMatchObject({ code: 'CONNECTION_LOST', retryable: true });
      expect(classifyMysqlError(serverError(2013, 'CR_SERVER_LOST', 'Lost connection to server during query'))).toMatchObject({ code: 'CONNECTION_LOST', retryable: true });
      expect(classifyMysqlError(serverError(1213, 'ER_LOCK_DEADLOCK', 'Deadlock found when trying to get lock'))).toMatchObject({ code: 'SERIALIZATION_FAILURE', retryable: true });
      expect(classifyMysqlError(serverError(1205, 'ER_LOCK_WAIT_TIMEOUT', 'Lock wait timeout exceeded'))).toMatchObject({ code: 'LOCK_TIMEOUT', retryable: true });
      expect(classifyMysqlError(serverError(1040, 'ER_CON_COUNT_ERROR', 'Too many connections'))).toMatchObject({ code: 'TOO_MANY_CONNECTIONS', retryable: true });
      expect(classifyMysqlError(serverError(1062, 'ER_DUP_ENTRY', "Duplicate entry '1' for key 'PRIMARY'"))).toMatchObject({ code: 'CONSTRAINT_VIOLATION', retryable: false });
      const replication = classifyMysqlError(serverError(1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR', 'Access denied; you need (at least one of) the REPLICATION SLAVE privilege(s) for this operation'), { username: 'ferry' });
      expect(replication).toMatchObject({ code: 'INSUFFICIENT_PRIVILEGE' });
      expect(replication.message).toContain("GRANT REPLICATION SLAVE ON *.* TO 'ferry'@'%'");
      const plugin = classifyMysqlError(Object.assign(new Error('Server requests authentication using unknown plugin auth_gssapi_client.'), { code: 'AUTH_SWITCH_PLUGIN_ERROR' }));
      expect(plugin).toMatchObject({ code: 'AUTHENTICATION_FAILED' });
      expect(plugin.message).toContain('caching_sha2_password');
    });

    it('parses SHOW GRANTS', () => {
      const grants = parseGrants([
        "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `ferry`@`%` IDENTIFIED BY PASSWORD '*ABC'",
        'GRANT INSERT, UPDATE (`a`, `b`) ON `shop\\_%`.* TO `ferry`@`%`',
        'GRANT ALL PRIVILEGES ON `crm`.`deals` TO `ferry`@`%`',
        'GRANT `reader` TO `ferry`@`%`',
      ]);
      expect([...grants.global]).toEqual(['SELECT', 'REPLICATION SLAVE', 'BINLOG MONITOR']);
      expect(hasOnTable(grants, 'INSERT', { schema: 'shop_eu', name: 't' })).toBe(true);
      expect(hasOnTable(grants, 'INSERT', { schema: 'shopx', name: 't' })).toBe(false);
      expect(hasOnTable(grants, 'DELETE', { schema: 'crm', name: 'deals' })).toBe(true);
      expect(grants.roles).toEqual(['`reader`']);
    });
  });
});
