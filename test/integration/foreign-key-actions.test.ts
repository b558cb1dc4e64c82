/**
 * Foreign keys with actions for continuous jobs from MySQL, against the real servers: the
 * schema writers create only those with actions before the stream (PostgreSQL: deferred, made
 * NOT DEFERRABLE at promote), refuse orphan rows by name without removing any, and the MySQL
 * applier lets InnoDB repeat the cascades (ON DELETE CASCADE / SET NULL, ON UPDATE CASCADE) while
 * never deleting a referenced row through REPLACE nor cascading a replayed TRUNCATE.
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { DatabaseSchema } from '../../src/core/schema.js';
import { mapDatabaseSchema } from '../../src/core/schema-mapping.js';
import type { RowChange } from '../../src/engines/engine.js';
import { openMysqlChangeApplier } from '../../src/engines/mysql/mysql-change-applier.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { connectMysqlAdmin, createMysqlTestDatabase, mysqlConnectionParams, type MysqlTestDatabase } from '../helpers/mysql.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const SOURCE_SQL = `
  CREATE TABLE parents (id int PRIMARY KEY, code varchar(10) NOT NULL, name varchar(20), UNIQUE KEY parents_code (code));
  CREATE TABLE children (id int PRIMARY KEY, parent_id int, note varchar(20),
    CONSTRAINT children_parent FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE CASCADE ON UPDATE CASCADE);
  CREATE TABLE grandchildren (id int PRIMARY KEY, child_id int,
    CONSTRAINT grandchildren_child FOREIGN KEY (child_id) REFERENCES children (id) ON DELETE CASCADE);
  CREATE TABLE pets (id int PRIMARY KEY, owner_id int,
    CONSTRAINT pets_owner FOREIGN KEY (owner_id) REFERENCES parents (id) ON DELETE SET NULL);
  CREATE TABLE pet_tags (id int PRIMARY KEY, pet_id int,
    CONSTRAINT pet_tags_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE);
  CREATE TABLE visits (id int PRIMARY KEY, parent_id int,
    CONSTRAINT visits_parent FOREIGN KEY (parent_id) REFERENCES parents (id));
  INSERT INTO parents VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three');
  INSERT INTO children VALUES (10, 1, 'x'), (11, 1, 'y'), (20, 2, 'z'), (30, 3, 'w');
  INSERT INTO grandchildren VALUES (100, 10), (101, 11), (200, 20);
  INSERT INTO pets VALUES (1, 1), (2, 2);
  INSERT INTO pet_tags VALUES (1, 2);
  INSERT INTO visits VALUES (1, 3);`;

const ALL = ['parents', 'children', 'grandchildren', 'pets', 'pet_tags', 'visits'];

describe('foreign keys with actions before the stream', () => {
  let source: MysqlTestDatabase;
  let schema: DatabaseSchema;
  let admin: Connection;

  beforeAll(async () => {
    source = await createMysqlTestDatabase('ferry_fka');
    await source.connection.query(SOURCE_SQL);
    schema = await mysqlEngine.readSchema(source.params, { include: [source.name], exclude: [] });
    admin = await connectMysqlAdmin();
  }, 60_000);

  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    await source?.drop();
  });

  it('MySQL destination: orphans refused by name (none removed); then only the keys with actions, and the applier cascades like InnoDB on the source', async () => {
    const target = `ferry_fka_dst_${randomBytes(4).toString('hex')}`;
    const mapped = mapDatabaseSchema(schema, { [source.name]: target });
    const writer = await mysqlEngine.openSchemaWriter(mysqlConnectionParams(null));
    try {
      await writer.createPreDataObjects(mapped);
      for (const table of ALL) await admin.query(`INSERT INTO \`${target}\`.${table} SELECT * FROM \`${source.name}\`.${table}`);
      // A child of a parent that does not exist, as foreign_key_checks=0 lets a source write it.
      await admin.query(`INSERT INTO \`${target}\`.children VALUES (40, 4, 'orphan')`);
      const refused = await writer.createPostDataObjects(mapped, { foreignKeys: 'actions', triggers: false }).then(() => null, (e: unknown) => e);
      expect(refused).toBeInstanceOf(FerryError);
      expect((refused as FerryError).code).toBe('CONSTRAINT_VIOLATION');
      expect((refused as FerryError).retryable).toBe(false);
      expect((refused as FerryError).message).toContain(`children_parent of ${target}.children`);
      expect((refused as FerryError).message).toContain('parent_id=4');
      const [kept] = await admin.query(`SELECT COUNT(*) AS n FROM \`${target}\`.children`);
      expect(Number((kept as Array<{ n: number }>)[0]?.n)).toBe(5);

      await admin.query(`DELETE FROM \`${target}\`.children WHERE id = 40`);
      await writer.createPostDataObjects(mapped, { foreignKeys: 'actions', triggers: false });
      const [rules] = await admin.query('SELECT CONSTRAINT_NAME AS name FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?', [target]);
      expect((rules as Array<{ name: string }>).map((r) => r.name).sort()).toEqual(['children_parent', 'grandchildren_child', 'pet_tags_pet', 'pets_owner']);

      const t = (name: string) => ({ schema: target, name });
      const changes: RowChange[] = [
        // A full-row update of a parent with another unique key: an upsert, which REPLACE would turn into a cascading delete.
        { op: 'update', table: t('parents'), columns: ['id', 'code', 'name'], values: ['2', 'b', 'two!'], oldColumns: ['id', 'code', 'name'], oldValues: ['2', 'b', 'two'] },
        // A key change cascades to children; a delete cascades two levels and sets pets.owner_id NULL.
        { op: 'update', table: t('parents'), columns: ['id', 'code', 'name'], values: ['5', 'c', 'three'], oldColumns: ['id', 'code', 'name'], oldValues: ['3', 'c', 'three'] },
        { op: 'delete', table: t('parents'), oldColumns: ['id', 'code', 'name'], oldValues: ['1', 'a', 'one'] },
        // A TRUNCATE replayed (the source ran it with foreign_key_checks=0, which cascades nothing): pet_tags keeps its row.
        { op: 'truncate', tables: [t('pets')], cascade: false, restartIdentity: false },
      ];
      const applier = await openMysqlChangeApplier(mysqlConnectionParams(null), `${target}-job`, mapped.tables);
      try {
        await applier.apply(changes);
        await applier.commit('mariadb-bin.000001:4');
        await applier.forgetPosition();
      } finally {
        await applier.close();
      }
      const rows = async (table: string) => {
        const [r] = await admin.query(`SELECT * FROM \`${target}\`.${table} ORDER BY id`);
        return r;
      };
      expect(await rows('parents')).toEqual([{ id: 2, code: 'b', name: 'two!' }, { id: 5, code: 'c', name: 'three' }]);
      expect(await rows('children')).toEqual([{ id: 20, parent_id: 2, note: 'z' }, { id: 30, parent_id: 5, note: 'w' }]);
      expect(await rows('grandchildren')).toEqual([{ id: 200, child_id: 20 }]);
      expect(await rows('pets')).toEqual([]);
      expect(await rows('pet_tags')).toEqual([{ id: 1, pet_id: 2 }]);
      // visits_parent has no action: not there during the stream, so the key change left visits as it was.
      expect(await rows('visits')).toEqual([{ id: 1, parent_id: 3 }]);
    } finally {
      await writer.close();
      await admin.query(`DROP DATABASE IF EXISTS \`${target}\``);
    }
  });

  it('PostgreSQL destination: orphans refused by name; the keys with actions deferred during the stream, NOT DEFERRABLE after promote', async () => {
    const destination: TestDatabase = await createTestDatabase(PG_DEST_PORT, 'ferry_fka');
    const writer = await postgresEngine.openSchemaWriter(destination.params);
    try {
      await writer.createPreDataObjects(schema);
      const q = (name: string) => `"${source.name}".${name}`;
      await destination.client.query(`INSERT INTO ${q('parents')} VALUES (1, 'a', 'one'), (2, 'b', 'two'); INSERT INTO ${q('children')} VALUES (10, 1, 'x'), (11, 9, 'orphan')`);
      const refused = await writer.createPostDataObjects(schema, { foreignKeys: 'actions', triggers: false }).then(() => null, (e: unknown) => e);
      expect((refused as FerryError).code).toBe('CONSTRAINT_VIOLATION');
      expect((refused as FerryError).message).toContain(`children_parent of ${source.name}.children`);
      expect((refused as FerryError).message).toContain('parent_id=9');

      await destination.client.query(`DELETE FROM ${q('children')} WHERE id = 11`);
      await writer.createPostDataObjects(schema, { foreignKeys: 'actions', triggers: false });
      const keys = async () =>
        (
          await destination.client.query(
            `SELECT k.conname AS name, k.condeferrable AS d, k.condeferred AS i FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE k.contype = 'f' AND n.nspname = $1 ORDER BY 1`,
            [source.name],
          )
        ).rows;
      expect(await keys()).toEqual([
        { name: 'children_parent', d: true, i: true },
        { name: 'grandchildren_child', d: true, i: true },
        { name: 'pet_tags_pet', d: true, i: true },
        { name: 'pets_owner', d: true, i: true },
      ]);
      // Actions still run at once; only the existence check waits for the commit.
      await destination.client.query(`BEGIN; DELETE FROM ${q('parents')} WHERE id = 1`);
      expect((await destination.client.query(`SELECT count(*)::int AS n FROM ${q('children')}`)).rows[0].n).toBe(0);
      await destination.client.query(`INSERT INTO ${q('children')} VALUES (12, 2, 'later'); INSERT INTO ${q('parents')} VALUES (7, 'g', 'seven'); UPDATE ${q('children')} SET parent_id = 7 WHERE id = 12; COMMIT`);

      await writer.createPostDataObjects(schema);
      expect(await keys()).toEqual([
        { name: 'children_parent', d: false, i: false },
        { name: 'grandchildren_child', d: false, i: false },
        { name: 'pet_tags_pet', d: false, i: false },
        { name: 'pets_owner', d: false, i: false },
        { name: 'visits_parent', d: false, i: false },
      ]);
    } finally {
      await writer.close();
      await destination.drop();
    }
  });
});
