/**
 * The parked-table part of the ChangeApplier contract (engine.ts), for both destination
 * engines against real servers (PostgreSQL 5433, a private MariaDB):
 * - a refused statement names its destination table (details.destinationTable);
 * - the parked set and parked changes are written in the open transaction and are durable only
 *   with commit(), together with the position; rollback() discards them;
 * - parked changes read back in seq order (numerically), are deleted up to a seq, and
 *   forgetPosition() removes the job's parked state but not another job's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { Engine, RowChange } from '../../src/engines/engine.js';
import { destinationTableOf } from '../../src/engines/apply-failure.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { startMariadbWithDatabase, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { mysqlDb, pgDb, type Db } from '../helpers/parked-scenario.js';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

interface Side {
  engine: Engine;
  params: ConnectionParams;
  schema: string;
  db: Db;
}

const sides: Record<'postgresql' | 'mysql', Side | null> = { postgresql: null, mysql: null };
let pg: TestDatabase;
let mariadb: MariadbInstance;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  pg = await createTestDatabase(PG_DEST_PORT, 'ferry_parkapply');
  cleanups.push(() => pg.drop());
  const started = await startMariadbWithDatabase('app', { serverId: 83 });
  cleanups.push(() => started.stop());
  mariadb = started.instance;
  const connection = started.connection;
  sides.postgresql = { engine: postgresEngine, params: pg.params, schema: 'public', db: pgDb(pg.client) };
  sides.mysql = { engine: mysqlEngine, params: mariadb.params('app'), schema: 'app', db: mysqlDb(connection) };
  for (const side of Object.values(sides) as Side[]) {
    await side.db.query(`CREATE TABLE ${side.schema}.good (id bigint NOT NULL PRIMARY KEY, v bigint)`);
    await side.db.query(`CREATE TABLE ${side.schema}.picky (id bigint NOT NULL PRIMARY KEY, v bigint, CONSTRAINT small CHECK (v < 100))`);
  }
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}, 60_000);

describe.each(['postgresql', 'mysql'] as const)('parked state of the %s change applier', (kind) => {
  const side = () => sides[kind] as Side;
  const open = async (jobId: string) => {
    const s = side();
    const schema = await s.engine.readSchema(s.params, { include: [s.schema], exclude: [] });
    return s.engine.openChangeApplier(s.params, jobId, schema.tables);
  };
  const insert = (table: string, id: number, v: number): RowChange => ({ op: 'insert', table: { schema: side().schema, name: table }, columns: ['id', 'v'], values: [String(id), String(v)] });

  it('names the destination table of a refused statement', async () => {
    const applier = await open(`${kind}-refuse`);
    try {
      let caught: unknown = null;
      await applier.apply([insert('good', 1, 1), insert('picky', 1, 500)]).catch((error: unknown) => (caught = error));
      expect(caught).toBeInstanceOf(FerryError);
      expect((caught as FerryError).code).toBe('CONSTRAINT_VIOLATION');
      expect(destinationTableOf(caught as FerryError)).toEqual({ schema: side().schema, name: 'picky' });
      await applier.rollback();
    } finally {
      await applier.close();
    }
  });

  it('keeps parked tables and changes with the position: durable on commit, gone on rollback, read in seq order, deleted up to a seq', async () => {
    const picky = { schema: side().schema, name: 'picky' };
    const applier = await open(`${kind}-park`);
    const other = await open(`${kind}-other`);
    try {
      await applier.setParkedTable(picky, '{"code":"CONSTRAINT_VIOLATION"}');
      await applier.parkChanges(picky, [{ seq: 9, payload: 'nine' }, { seq: 10, payload: 'ten' }]);
      await applier.rollback();
      expect(await applier.readParkedTables()).toEqual([]);

      await applier.apply([insert('good', 2, 2)]);
      await applier.setParkedTable(picky, '{"code":"CONSTRAINT_VIOLATION"}');
      await applier.parkChanges(picky, [9, 10, 11, 100].map((seq) => ({ seq, payload: `change ${seq}` })));
      await applier.commit('pos-1');
      await other.setParkedTable(picky, '{"other":true}');
      await other.parkChanges(picky, [{ seq: 1, payload: 'other job' }]);
      await other.commit('pos-other');

      expect(await applier.readPosition()).toBe('pos-1');
      expect(await applier.readParkedTables()).toEqual([{ table: picky, note: '{"code":"CONSTRAINT_VIOLATION"}', count: 4, lastSeq: 100 }]);
      expect((await applier.readParkedChanges(picky, 3)).map((c) => c.seq)).toEqual([9, 10, 11]);

      await applier.deleteParkedChanges(picky, 10);
      await applier.commit('pos-1');
      expect(await applier.readParkedChanges(picky, 10)).toEqual([{ seq: 11, payload: 'change 11' }, { seq: 100, payload: 'change 100' }]);
      await applier.setParkedTable(picky, null);
      await applier.commit('pos-1');
      expect((await applier.readParkedTables()).map((t) => t.table)).toEqual([]);

      await applier.forgetPosition();
      expect(await applier.readPosition()).toBeNull();
      expect((await other.readParkedTables()).map((t) => t.count)).toEqual([1]);
      const left = await side().db.query(`SELECT COUNT(*) AS n FROM _ferry.parked_changes WHERE job_id = ?`, [`${kind}-park`]);
      expect(Number(left[0]?.n)).toBe(0);
      await other.forgetPosition();
    } finally {
      await applier.close();
      await other.close();
    }
  });
});
