/**
 * Destination fencing (docs/ARCHITECTURE.md, Fencing) for both destination engines against real
 * servers (PostgreSQL 5433, a private MariaDB): two writers of one job key, epochs 1 and 2.
 * - once epoch 2 raised the fence, epoch 1's commit rolls back with LEASE_LOST: the destination
 *   holds none of its changes and the position of its last successful commit;
 * - a raise waits for an epoch-1 transaction that already holds the fence's share lock: that
 *   transaction commits, and the raise then sees its position;
 * - a raise ends an epoch-1 transaction stuck while holding the share lock (a paused node) after
 *   a grace period: it is rolled back;
 * - a stale table load (epoch 1 after the raise to 2) rolls back, the table as it was;
 * - dropFence refuses another epoch, and removes `_ferry` once nothing is left in it.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { FerryError } from '../../src/core/errors.js';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import type { TableSchema } from '../../src/core/schema.js';
import type { ChangeApplier, DestinationFence, Engine, RowChange } from '../../src/engines/engine.js';
import { FENCE_HOLDER_GRACE_MS } from '../../src/engines/destination-fence.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { startMariadbWithDatabase, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { mysqlDb, pgDb, type Db } from '../helpers/parked-scenario.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

interface Side {
  engine: Engine;
  params: ConnectionParams;
  schema: string;
  /** For assertions. */
  db: Db;
  /** Opens another session (a transaction of its own). */
  session(): Promise<{ db: Db; close(): Promise<void> }>;
  /** Sessions of this database waiting for a lock. */
  lockWaits(): Promise<number>;
  /** True while Ferry's `_ferry` schema (PostgreSQL) or database (MySQL) exists. */
  ferryExists(): Promise<boolean>;
}

const sides: Record<'postgresql' | 'mysql', Side | null> = { postgresql: null, mysql: null };
let pgDatabase: TestDatabase;
let mariadb: MariadbInstance;
const cleanups: Array<() => Promise<unknown>> = [];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

beforeAll(async () => {
  pgDatabase = await createTestDatabase(PG_DEST_PORT, 'ferry_fence');
  cleanups.push(() => pgDatabase.drop());
  const started = await startMariadbWithDatabase('app', { serverId: 91 });
  cleanups.push(() => started.stop());
  mariadb = started.instance;
  const connection = started.connection;
  const pgName = pgDatabase.params.database;
  sides.postgresql = {
    engine: postgresEngine, params: pgDatabase.params, schema: 'public', db: pgDb(pgDatabase.client),
    async session() {
      const client = new pg.Client({ host: PG_HOST, port: PG_DEST_PORT, user: PG_USER, database: pgName });
      // A session a raise ends (terminated) must not crash the test process.
      client.on('error', () => undefined);
      await client.connect();
      return { db: pgDb(client), close: () => client.end() };
    },
    async lockWaits() {
      const rows = await pgDb(pgDatabase.client).query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
      return Number(rows[0]?.n);
    },
    async ferryExists() {
      return (await pgDb(pgDatabase.client).query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).length > 0;
    },
  };
  sides.mysql = {
    engine: mysqlEngine, params: mariadb.params('app'), schema: 'app', db: mysqlDb(connection),
    async session() {
      const other = await mariadb.connect('app');
      // A session a raise ends (killed) must not crash the test process.
      other.on('error', () => undefined);
      return { db: mysqlDb(other), close: () => other.end() };
    },
    async lockWaits() {
      // A statement still running in another session here waits for a lock (a point lookup waits in state 'Statistics').
      const rows = await mysqlDb(connection).query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND ID <> CONNECTION_ID() AND INFO IS NOT NULL`);
      return Number(rows[0]?.n);
    },
    async ferryExists() {
      return (await mysqlDb(connection).query(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_ferry'`)).length > 0;
    },
  };
  for (const side of Object.values(sides) as Side[]) {
    await side.db.query(`CREATE TABLE ${side.schema}.items (id bigint NOT NULL PRIMARY KEY, v bigint)`);
    await side.db.query(`CREATE TABLE ${side.schema}.loaded (id bigint NOT NULL PRIMARY KEY, v bigint)`);
  }
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}, 60_000);

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  const outcome = await promise.then(() => null, (error: unknown) => error);
  expect(outcome, 'the call must reject').toBeInstanceOf(FerryError);
  return outcome as FerryError;
}

/** Waits until `n` sessions wait for a lock (or fails after 10 s). */
async function untilLockWaits(side: Side, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await side.lockWaits()) < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} sessions waiting for a lock`);
    await sleep(50);
  }
}

describe.each(['postgresql', 'mysql'] as const)('the job fence on a %s destination', (kind) => {
  const side = () => sides[kind] as Side;
  const tables = async (): Promise<TableSchema[]> => {
    const s = side();
    return (await s.engine.readSchema(s.params, { include: [s.schema], exclude: [] })).tables;
  };
  const open = async (fence: DestinationFence): Promise<ChangeApplier> => side().engine.openChangeApplier(side().params, fence.key, await tables(), { fence });
  const insert = (id: number, v: number): RowChange => ({ op: 'insert', table: { schema: side().schema, name: 'items' }, columns: ['id', 'v'], values: [String(id), String(v)] });
  const items = async () => (await side().db.query(`SELECT id, v FROM ${side().schema}.items ORDER BY id`)).map((r) => `${String(r.id)}=${String(r.v)}`);
  const raise = (key: string, epoch: number) => side().engine.raiseFence(side().params, { key, epoch, nodeId: `node-${epoch}` });
  const positionOf = async (key: string) => {
    const reader = await side().engine.openChangeApplier(side().params, key, []);
    try {
      return await reader.readPosition();
    } finally {
      await reader.close();
    }
  };

  it("after epoch 2 raises, epoch 1's commit rolls back with LEASE_LOST: none of its changes, the position of its last good commit", async () => {
    const key = `${kind}-stale-commit`;
    await raise(key, 1);
    const stale = await open({ key, epoch: 1 });
    try {
      await stale.apply([insert(1, 10)]);
      await stale.commit('pos-1');
      await stale.apply([insert(2, 20)]);
      await raise(key, 2);
      const lost = await rejection(stale.commit('pos-2'));
      if (kind === 'postgresql') {
        // On PostgreSQL the raise ended the stale session (it held the row of id 2), so its commit
        // fails as a lost session: CONNECTION_LOST when the socket's close is seen first,
        // SERVER_SHUTTING_DOWN when the server's FATAL 57P01 is read first (a CI run saw each).
        // The LEASE_LOST of a check is shown by the stale load below.
        expect(['CONNECTION_LOST', 'SERVER_SHUTTING_DOWN']).toContain(lost.code);
        expect(lost.retryable).toBe(true);
      } else {
        expect(lost.code).toBe('LEASE_LOST');
        expect(lost.httpStatus).toBe(409);
        expect(lost.retryable).toBe(false);
        expect(lost.details).toMatchObject({ fenceKey: key, epoch: 1, fenceEpoch: 2 });
        await stale.rollback();
        // A position written alone (a heartbeat) is checked too.
        expect((await rejection(stale.commit('pos-3'))).code).toBe('LEASE_LOST');
      }
    } finally {
      await stale.close();
    }
    expect(await items()).toEqual(['1=10']);
    expect(await positionOf(key)).toBe('pos-1');
    // The new owner commits; an older epoch can no longer raise the fence back.
    const owner = await open({ key, epoch: 2 });
    try {
      await owner.apply([insert(2, 21)]);
      await owner.commit('pos-2b');
    } finally {
      await owner.close();
    }
    expect(await items()).toEqual(['1=10', '2=21']);
    expect(await positionOf(key)).toBe('pos-2b');
    expect((await rejection(raise(key, 1))).code).toBe('LEASE_LOST');
    await raise(key, 2);
  });

  it('a raise waits for an epoch-1 transaction that holds the share lock: it commits, and the raise then sees its position', async () => {
    const key = `${kind}-in-flight`;
    await raise(key, 1);
    const stale = await open({ key, epoch: 1 });
    const holder = await side().session();
    try {
      await stale.apply([insert(10, 100)]);
      await stale.commit('pos-10');
      // Another session holds the position row: epoch 1's next commit passes its fence check
      // (the share lock) and then waits at its position write, in flight.
      await holder.db.query(kind === 'postgresql' ? 'BEGIN' : 'START TRANSACTION');
      await holder.db.query(`SELECT position FROM _ferry.replication_position WHERE job_id = ? FOR UPDATE`, [key]);
      await stale.apply([insert(11, 110)]);
      const order: string[] = [];
      const committing = stale.commit('pos-11').then(() => order.push('commit'));
      await untilLockWaits(side(), 1);
      const raising = raise(key, 2).then(() => order.push('raise'));
      await untilLockWaits(side(), 2);
      // Well within FENCE_HOLDER_GRACE_MS: a holder past it would be ended (the next test).
      await sleep(100);
      expect(order, 'the raise waits for the transaction holding the share lock').toEqual([]);
      await holder.db.query('ROLLBACK');
      // Epoch 1's commit succeeds (its check came first), then the raise goes through.
      await Promise.all([committing, raising]);
      expect([...order].sort()).toEqual(['commit', 'raise']);
    } finally {
      await holder.close().catch(() => undefined);
      await stale.close();
    }
    expect(await positionOf(key)).toBe('pos-11');
    expect(await items()).toEqual(expect.arrayContaining(['10=100', '11=110']));
  });

  it('a raise ends an older-epoch transaction stuck while it holds the share lock (a paused node): rolled back, the raise goes through', async () => {
    const key = `${kind}-stuck`;
    await raise(key, 1);
    const stuck = await side().session();
    try {
      // What a fenced commit does up to its COMMIT, then the node stops.
      await stuck.db.query(kind === 'postgresql' ? 'BEGIN' : 'START TRANSACTION');
      await stuck.db.query(`INSERT INTO ${side().schema}.items (id, v) VALUES (30, 300)`);
      await stuck.db.query(`SELECT epoch FROM _ferry.job_fence WHERE job_id = ? ${kind === 'postgresql' ? 'FOR SHARE' : 'LOCK IN SHARE MODE'}`, [key]);
      const started = Date.now();
      await raise(key, 2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(FENCE_HOLDER_GRACE_MS - 100);
      expect(Date.now() - started).toBeLessThan(FENCE_HOLDER_GRACE_MS + 8_000);
      await expect(stuck.db.query('COMMIT'), 'the stuck session was ended').rejects.toThrow();
    } finally {
      await stuck.close().catch(() => undefined);
    }
    expect(await items()).not.toContain('30=300');
    await side().engine.dropFence(side().params, { key, epoch: 2 });
  });

  it.runIf(kind === 'postgresql')('a raise ends the sessions of older epochs: a node paused mid-batch (row locks, before its check) does not stall the new owner', async () => {
    const key = `${kind}-paused-mid-batch`;
    await raise(key, 1);
    const stale = await open({ key, epoch: 1 });
    try {
      await stale.apply([insert(40, 400)]);
      // The stale batch is open and holds the row of id 40; its node stops here (before any check).
      await raise(key, 2);
      const owner = await open({ key, epoch: 2 });
      try {
        const started = Date.now();
        await owner.apply([insert(40, 401)]);
        await owner.commit('pos-owner');
        // Without the ending of older sessions the insert waits on the stale row lock until the stale node wakes.
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await owner.close();
      }
      expect(await items()).toContain('40=401');
      // The raise ended the stale session: its batch can never commit.
      expect((await rejection(stale.commit('pos-stale'))).code).toBe('CONNECTION_LOST');
    } finally {
      await stale.close().catch(() => undefined);
    }
    expect(await items()).toContain('40=401');
    expect(await positionOf(key)).toBe('pos-owner');
    const forget = await side().engine.openChangeApplier(side().params, key, []);
    try {
      await forget.forgetPosition();
    } finally {
      await forget.close();
    }
    await side().engine.dropFence(side().params, { key, epoch: 2 });
  });

  it('a stale table load (epoch 1 after the raise to 2) rolls back and leaves the table as it was', async () => {
    const key = `${kind}-stale-load`;
    const loaded = (await tables()).find((t) => t.name === 'loaded') as TableSchema;
    await side().db.query(`INSERT INTO ${side().schema}.loaded (id, v) VALUES (1, 1)`);
    await raise(key, 1);
    await raise(key, 2);
    const writer = await side().engine.openTableWriter(side().params);
    try {
      const stale = await rejection(writer.replaceTableData(loaded, Readable.from(['7\t70\n', '8\t80\n']), new AbortController().signal, { fence: { key, epoch: 1 } }));
      expect(stale.code).toBe('LEASE_LOST');
      expect((await side().db.query(`SELECT id, v FROM ${side().schema}.loaded ORDER BY id`)).map((r) => `${String(r.id)}=${String(r.v)}`)).toEqual(['1=1']);
      if (writer.appendTableData !== undefined) {
        expect((await rejection(writer.appendTableData(loaded, Readable.from(['9\t90\n']), new AbortController().signal, { fence: { key, epoch: 1 } }))).code).toBe('LEASE_LOST');
      }
      // The same writer loads for the epoch the fence holds.
      const result = await writer.replaceTableData(loaded, Readable.from(['7\t70\n', '8\t80\n']), new AbortController().signal, { fence: { key, epoch: 2 } });
      expect(result.rows).toBe(2);
    } finally {
      await writer.close();
    }
    expect((await side().db.query(`SELECT id, v FROM ${side().schema}.loaded ORDER BY id`)).map((r) => `${String(r.id)}=${String(r.v)}`)).toEqual(['7=70', '8=80']);
  });

  it('dropFence refuses another epoch; `_ferry` goes once no position and no fence is left', async () => {
    const keys = [`${kind}-stale-commit`, `${kind}-in-flight`, `${kind}-stale-load`];
    expect((await rejection(side().engine.dropFence(side().params, { key: keys[0] as string, epoch: 1 }))).code).toBe('LEASE_LOST');
    for (const key of keys.slice(0, 2)) {
      const applier = await side().engine.openChangeApplier(side().params, key, []);
      try {
        await applier.forgetPosition();
      } finally {
        await applier.close();
      }
      // Fences still held keep `_ferry` when the positions go.
      expect(await side().ferryExists()).toBe(true);
    }
    for (const [i, key] of keys.entries()) {
      await side().engine.dropFence(side().params, { key, epoch: 2 });
      expect(await side().ferryExists()).toBe(i < keys.length - 1);
    }
    // Nothing left to drop: a second drop does nothing.
    await side().engine.dropFence(side().params, { key: keys[0] as string, epoch: 2 });
  });
});
