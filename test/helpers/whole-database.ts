/**
 * The whole-database fixture (test/fixtures/pg-whole-database.sql) and a concurrent workload on
 * it, for the tests of issue 11 (every schema object of a PostgreSQL database, not only tables).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { PG_HOST, PG_USER } from './postgres.js';
import { seededRandom } from './workload.js';

export const WHOLE_DATABASE_FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'pg-whole-database.sql');

/** The role the fixture grants to; it must exist on both clusters. */
export const READER_ROLE = 'ferry_wholedb_reader';

export function wholeDatabaseSql(): string {
  return readFileSync(WHOLE_DATABASE_FIXTURE, 'utf8');
}

/** Runs the fixture in the (empty) database of `client`, as one multi-statement query. */
export async function loadWholeDatabase(client: pg.ClientBase): Promise<void> {
  await client.query(wholeDatabaseSql());
}

/** Creates `role` (NOLOGIN) on the cluster at `port` unless it exists. */
export async function ensureRole(port: number, role: string): Promise<void> {
  const client = new pg.Client({ host: PG_HOST, port, user: PG_USER, database: 'postgres' });
  await client.connect();
  try {
    await client.query(`DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
          CREATE ROLE "${role}" NOLOGIN;
        END IF;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
      END $$`);
  } finally {
    await client.end();
  }
}

/** Drops `role` on the cluster at `port` if it exists (its databases must be gone first). */
export async function dropRole(port: number, role: string): Promise<void> {
  const client = new pg.Client({ host: PG_HOST, port, user: PG_USER, database: 'postgres' });
  await client.connect();
  try {
    await client.query(`DROP ROLE IF EXISTS "${role}"`);
  } finally {
    await client.end();
  }
}

/**
 * Makes the dump longer (for kills during it): `rows` more events, in the HASH partitions, and
 * as many orders (through the triggers, as the application would write them) as `orders`.
 */
export async function growWholeDatabase(client: pg.ClientBase, { events, orders }: { events: number; orders: number }): Promise<void> {
  await client.query(
    `INSERT INTO shop.events (event_id, customer_id, kind, payload, at)
     SELECT 100000 + g, 1 + g % 2000, (ARRAY['view', 'click', 'buy'])[1 + g % 3],
            jsonb_build_object('n', g, 'page', '/p/' || (g % 97), 'pad', repeat('x', 60)),
            '2024-01-01 00:00:00+00'::timestamptz + g * interval '11 seconds'
       FROM generate_series(1, $1::integer) g`,
    [events],
  );
  await client.query(
    `INSERT INTO shop.orders (order_date, region, customer_id, status, amount)
     SELECT DATE '2023-01-01' + (g % 1000), (ARRAY['eu', 'us', 'apac'])[1 + g % 3], 1 + g % 2000, 'paid', (g % 300) * 1.5
       FROM generate_series(1, $1::integer) g`,
    [orders],
  );
  await client.query(`REFRESH MATERIALIZED VIEW shop.monthly_sales`);
  await client.query(`ANALYZE`);
}

export interface WholeDatabaseWorkloadStats {
  committed: number;
  ops: Record<string, number>;
  errors: string[];
}

/** Events written by the workload start here (the fixture and growWholeDatabase stay below). */
const EVENT_BASE = 10_000_000;
/** Notes written by the workload start here. */
const NOTE_BASE = 1_000_000;
/** Vehicles written by the workload start here. */
const VEHICLE_BASE = 100_000;

/**
 * Concurrent writes to the fixture's tables, as its application would do them: each worker has
 * its own connection and seeded generator and writes only rows whose key is its own modulo the
 * number of workers (no deadlocks). Every op is one autocommitted statement or a short
 * transaction. What it exercises (counted in `ops` when a row was written):
 * - insertOrder (stamp and audit triggers fire, the make_ref default, the sequence), with lines;
 * - updateOrder (stamp and audit triggers), moveOrder (order_date to the other year: the row
 *   moves between RANGE partitions, and between the 2024 LIST sub-partitions' and 2023, with
 *   its lines following by ON UPDATE CASCADE), changeRegion (2024 LIST sub-partitions),
 *   deleteOrder (lines deleted by ON DELETE CASCADE);
 * - insertEvent / updateEvent / deleteEvent (HASH partitions), moveEvent (customer_id changes:
 *   another hash partition);
 * - insertNote (the rule writes note_log), insertPageHit (no key), insertTruck / updateVehicle
 *   (inheritance parent and child), updateCustomer (row-level security, composite type),
 *   bookRoom (exclusion constraint), updateProduct (generated column, range type).
 * Never the unlogged session_cache (its changes do not replicate).
 */
export class WholeDatabaseWorkload {
  private running = false;
  private workers: Promise<void>[] = [];
  private readonly clients: pg.Client[] = [];
  private readonly stats: WholeDatabaseWorkloadStats = { committed: 0, ops: {}, errors: [] };

  constructor(private readonly options: { connection: ConnectionParams; workers: number; seed: number; pauseMs: number }) {}

  async start(): Promise<void> {
    const p = this.options.connection;
    for (let w = 0; w < this.options.workers; w++) {
      const client = new pg.Client({ host: p.host, port: p.port, user: p.username, database: p.database ?? undefined });
      await client.connect();
      this.clients.push(client);
    }
    this.running = true;
    this.workers = this.clients.map((client, w) => this.work(client, w));
  }

  async stop(): Promise<WholeDatabaseWorkloadStats> {
    this.running = false;
    await Promise.all(this.workers);
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    return this.stats;
  }

  private count(op: string, rows: number | null): void {
    if ((rows ?? 0) > 0) this.stats.ops[op] = (this.stats.ops[op] ?? 0) + 1;
  }

  private async work(client: pg.Client, w: number): Promise<void> {
    const n = this.options.workers;
    const rng = seededRandom(this.options.seed + w * 7919);
    const pick = (max: number) => Math.floor(rng() * max);
    let seq = 0;
    let maxOrder = Number((await client.query<{ m: string }>(`SELECT coalesce(max(order_id), 1)::text AS m FROM shop.orders`)).rows[0]!.m);
    // A key of this worker's own at or after a random point (null when there is none).
    const ownOrder = async () => {
      const { rows } = await client.query<{ order_id: string }>(
        `SELECT order_id::text FROM shop.orders WHERE order_id % $1 = $2 AND order_id >= $3 ORDER BY order_id LIMIT 1`,
        [n, w, pick(maxOrder)],
      );
      return rows[0]?.order_id ?? null;
    };
    while (this.running) {
      seq++;
      const op = pick(100);
      try {
        if (op < 20) {
          await client.query('BEGIN');
          const year = rng() < 0.5 ? '2023' : '2024';
          const region = ['eu', 'us', 'apac'][pick(3)]!;
          // The application's sequence, until a key of this worker's own comes (n calls on average).
          let id = '';
          // Draws come in batches: single draws of workers running in step can keep landing on
          // the other workers' residues.
          for (let k = 0; k < 20 && id === ''; k++) {
            const { rows } = await client.query<{ id: string }>(
              `SELECT id::text FROM (SELECT nextval('shop.orders_order_id_seq') AS id FROM generate_series(1, $1)) d WHERE id % $2 = $3 ORDER BY id LIMIT 1`,
              [2 * n + pick(n), n, w],
            );
            id = rows[0]?.id ?? '';
          }
          if (id === '') throw new Error('no key of this worker from the sequence');
          maxOrder = Math.max(maxOrder, Number(id));
          const r = await client.query(
            `INSERT INTO shop.orders (order_id, order_date, region, customer_id, amount, ship_to)
             VALUES ($1, $2::date + $3::integer, $4, $5, $6, ROW('1 Quay', 'Oslo', '0150'))`,
            [id, `${year}-01-01`, pick(360), region, 1 + pick(2000), (pick(100_000) / 100).toFixed(2)],
          );
          await client.query(
            `INSERT INTO shop.order_lines (order_id, order_date, region, line_no, product_id, qty)
             SELECT order_id, order_date, region, l, 1 + (order_id::integer + l) % 500, 1 + l FROM shop.orders, generate_series(1, 2) l WHERE order_id = $1`,
            [id],
          );
          await client.query('COMMIT');
          this.count('insertOrder', r.rowCount);
        } else if (op < 35) {
          const id = await ownOrder();
          if (id !== null) this.count('updateOrder', (await client.query(`UPDATE shop.orders SET status = 'paid', amount = amount + 1 WHERE order_id = $1`, [id])).rowCount);
        } else if (op < 45) {
          const id = await ownOrder();
          if (id !== null) {
            const r = await client.query(
              `UPDATE shop.orders SET order_date = CASE WHEN order_date < '2024-01-01' THEN order_date + 365 ELSE order_date - 365 END WHERE order_id = $1 AND order_date < '2025-01-01'`,
              [id],
            );
            this.count('moveOrder', r.rowCount);
          }
        } else if (op < 50) {
          const id = await ownOrder();
          if (id !== null) {
            const r = await client.query(
              `UPDATE shop.orders SET region = CASE region WHEN 'eu' THEN 'us' WHEN 'us' THEN 'apac' ELSE 'eu' END WHERE order_id = $1 AND order_date >= '2024-01-01' AND order_date < '2025-01-01'`,
              [id],
            );
            this.count('changeRegion', r.rowCount);
          }
        } else if (op < 55) {
          const id = await ownOrder();
          if (id !== null) this.count('deleteOrder', (await client.query(`DELETE FROM shop.orders WHERE order_id = $1`, [id])).rowCount);
        } else if (op < 67) {
          const id = EVENT_BASE + seq * n + w;
          const r = await client.query(
            `INSERT INTO shop.events (event_id, customer_id, kind, payload, at) VALUES ($1, $2, 'click', jsonb_build_object('seq', $3::integer), clock_timestamp())`,
            [id, 1 + pick(2000), seq],
          );
          this.count('insertEvent', r.rowCount);
        } else if (op < 72) {
          const r = await client.query(
            `UPDATE shop.events SET kind = 'buy', payload = payload || '{"updated": true}' WHERE event_id = (SELECT event_id FROM shop.events WHERE event_id % $1 = $2 AND event_id >= $3 ORDER BY event_id LIMIT 1)`,
            [n, w, pick(20_000)],
          );
          this.count('updateEvent', r.rowCount);
        } else if (op < 75) {
          const r = await client.query(
            `UPDATE shop.events SET customer_id = 1 + (customer_id + 1) % 2000 WHERE event_id = (SELECT event_id FROM shop.events WHERE event_id % $1 = $2 AND event_id >= $3 ORDER BY event_id LIMIT 1)`,
            [n, w, pick(20_000)],
          );
          this.count('moveEvent', r.rowCount);
        } else if (op < 78) {
          const r = await client.query(
            `DELETE FROM shop.events WHERE event_id = (SELECT event_id FROM shop.events WHERE event_id % $1 = $2 AND event_id >= $3 ORDER BY event_id LIMIT 1)`,
            [n, w, pick(20_000)],
          );
          this.count('deleteEvent', r.rowCount);
        } else if (op < 83) {
          this.count('insertNote', (await client.query(`INSERT INTO shop.notes (note_id, body) VALUES ($1, $2)`, [NOTE_BASE + seq * n + w, `workload note ${seq}`])).rowCount);
        } else if (op < 87) {
          this.count('insertPageHit', (await client.query(`INSERT INTO public.page_hits (path, hits) VALUES ($1, $2)`, [`/w/${pick(20)}`, pick(3)])).rowCount);
        } else if (op < 90) {
          const id = VEHICLE_BASE + seq * n + w;
          this.count('insertTruck', (await client.query(`INSERT INTO shop.trucks (vehicle_id, name, wheels, payload_kg) VALUES ($1, $2, 8, $3)`, [id, `Truck w${w}-${seq}`, 1000 + pick(9000)])).rowCount);
        } else if (op < 93) {
          // Through the inheritance parent: rows of the parent and of the child.
          const r = await client.query(`UPDATE shop.vehicles SET name = name || '+' WHERE vehicle_id % $1 = $2 AND vehicle_id IN ($3, $4)`, [n, w, 1 + pick(100), 1001 + pick(50)]);
          this.count('updateVehicle', r.rowCount);
        } else if (op < 96) {
          const r = await client.query(
            `UPDATE shop.customers SET credit = credit + 1, address = ROW('9 New Street', (address).city, (address).zip) WHERE customer_id = $1 AND customer_id % $2 = $3`,
            [1 + pick(2000), n, w],
          );
          this.count('updateCustomer', r.rowCount);
        } else if (op < 98) {
          // Far in the future, one room per worker and op: never overlapping.
          const id = 1_000_000 + seq * n + w;
          const r = await client.query(
            `INSERT INTO shop.room_bookings (booking_id, room, during) VALUES ($1, $2, tsrange('2030-01-01'::timestamp + $3 * interval '1 hour', '2030-01-01'::timestamp + $3 * interval '1 hour' + interval '30 minutes'))`,
            [id, 100 + w, seq],
          );
          this.count('bookRoom', r.rowCount);
        } else {
          const r = await client.query(
            `UPDATE shop.products SET title = title || ' v2', band = numrange(lower(band), upper(band) + 5)::text::shop.price_band WHERE product_id = $1 AND product_id % $2 = $3`,
            [1 + pick(500), n, w],
          );
          this.count('updateProduct', r.rowCount);
        }
        this.stats.committed++;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        this.stats.errors.push(`worker ${w} op ${op}: ${(error as Error).message}`);
        if (this.stats.errors.length > 20) this.running = false;
      }
      if (this.options.pauseMs > 0) await new Promise((r) => setTimeout(r, this.options.pauseMs));
    }
  }
}
