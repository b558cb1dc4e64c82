/**
 * An ordinary MySQL/MariaDB application schema for the continuous end-to-end tests of issue 12:
 * 18 tables in five levels of foreign keys with ON UPDATE CASCADE, ON DELETE CASCADE and ON
 * DELETE SET NULL (a self reference, and a cycle between `teams` and `employees`), triggers that
 * write to other tables (an audit log, a totals table that itself cascades) or stamp a column,
 * zero dates and ordinary types; and a workload that moves parent keys, deletes parents (whose
 * cascades InnoDB writes to no binlog), fires the triggers and writes the odd values.
 *
 * Values that one engine accepts and the other may not live in one place: VALUE_COLUMNS, the
 * extra columns of `customers`, written by every insert and by the `touchCustomer` operation.
 * Add a column there (with its value generator) and both the seed and the workload write it.
 *
 * Foreign-key graph (→ references; C = cascade, N = set null, R = restrict):
 *   customers.country_code → countries.code      (UPDATE C, DELETE N)
 *   customer_notes.customer_id → customers.id    (UPDATE C, DELETE C)
 *   orders.customer_id → customers.id            (UPDATE C, DELETE C)
 *   order_items.order_id → orders.id             (UPDATE C, DELETE C; part of the key)
 *   order_items.product_id → products.id         (UPDATE C, DELETE N)
 *   order_totals.order_id → orders.id            (UPDATE C, DELETE C; the key; written by a trigger)
 *   shipments.order_id → orders.id               (UPDATE C, DELETE C)
 *   shipments.carrier → carriers.code            (no action: created on the destination at promote only)
 *   shipment_events.shipment_id → shipments.id   (UPDATE C, DELETE C)
 *   payments.order_id → orders.id                (UPDATE C, DELETE N)
 *   products.category_id → categories.id         (UPDATE C, DELETE N)
 *   categories.parent_id → categories.id         (DELETE N; InnoDB refuses an update cascading into its own table)
 *   product_tags.product_id → products.id        (UPDATE C, DELETE C), product_tags.tag_id → tags.id (DELETE C)
 *   employees.team_id → teams.id                 (UPDATE C, DELETE C)
 *   teams.lead_id → employees.id                 (DELETE N)            -- the cycle
 *   audit_log, settings: no foreign key.
 */
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { ConnectionParams } from '../../src/core/connection-profile.js';
import { seededRng, type Rng } from './cross-workload.js';

type Param = string | number | Buffer | null;

const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'ünïcödé', '😀 emoji', "o'brien", 'back\\slash', 'tab\there', 'line\nbreak', '中文', ''];
const words = (r: Rng, n: number) => Array.from({ length: int(r, 1, n) }, () => pick(r, WORDS)).join(' ');
const date = (r: Rng) => `${int(r, 1990, 2030)}-${pad(int(r, 1, 12))}-${pad(int(r, 1, 28))}`;
const datetime = (r: Rng, fraction = 0) =>
  `${date(r)} ${pad(int(r, 0, 23))}:${pad(int(r, 0, 59))}:${pad(int(r, 0, 59))}${fraction > 0 ? `.${String(int(r, 0, 10 ** fraction - 1)).padStart(fraction, '0')}` : ''}`;

/**
 * Columns of `customers` whose values test how each engine takes them: zero dates today
 * (the job's zeroDatePolicy 'null' writes NULL on PostgreSQL; MySQL keeps them), ordinary types
 * otherwise, MySQL's ENUM error value '', NUL characters in text and a spatial column.
 */
export const VALUE_COLUMNS: ReadonlyArray<{ name: string; definition: string; value: (r: Rng) => Param }> = [
  { name: 'born', definition: 'date', value: (r) => (r() < 0.2 ? '0000-00-00' : r() < 0.1 ? null : date(r)) },
  { name: 'last_seen', definition: 'datetime(3)', value: (r) => (r() < 0.15 ? '0000-00-00 00:00:00.000' : datetime(r, 3)) },
  { name: 'balance', definition: 'decimal(14,2)', value: (r) => `${int(r, -99999, 99999)}.${pad(int(r, 0, 99))}` },
  { name: 'ratio', definition: 'double', value: (r) => (r() < 0.1 ? null : String(int(r, -1000, 1000) / 8)) },
  { name: 'active', definition: 'tinyint(1)', value: (r) => int(r, 0, 1) },
  { name: 'tier', definition: "enum('free','pro','gold')", value: (r) => pick(r, ['free', 'pro', 'gold', null]) },
  { name: 'flags', definition: "set('a','b','c')", value: (r) => pick(r, ['', 'a', 'a,c', 'b,c', null]) },
  { name: 'profile', definition: 'json', value: (r) => JSON.stringify({ n: int(r, 0, 1000), w: words(r, 2) }) },
  { name: 'avatar', definition: 'varbinary(16)', value: (r) => Buffer.from(Array.from({ length: int(r, 0, 16) }, () => int(r, 0, 255))) },
  // MySQL's ENUM error value: an invalid label is stored as '' (the session is not strict).
  { name: 'mood', definition: "enum('calm','busy')", value: (r) => (r() < 0.2 ? 'no such label' : pick(r, ['calm', 'busy', null])) },
  // NUL characters in text: kept by MySQL destinations, stripped for PostgreSQL (nulCharacterPolicy 'strip').
  { name: 'memo', definition: 'varchar(40)', value: (r) => (r() < 0.25 ? `${words(r, 1)}\u0000${words(r, 1)}` : r() < 0.1 ? null : words(r, 2)) },
  // Spatial: MySQL's internal value (SRID 4326, then WKB of a point); PostGIS geometry(Point,4326) on PostgreSQL.
  { name: 'spot', definition: 'point REF_SYSTEM_ID=4326', value: (r) => (r() < 0.1 ? null : pointValue(4326, int(r, -1800, 1800) / 10, int(r, -900, 900) / 10)) },
];

/** MySQL's internal geometry value of a point: the SRID (4 bytes, little-endian), then its WKB. */
function pointValue(srid: number, x: number, y: number): Buffer {
  const value = Buffer.alloc(25);
  value.writeUInt32LE(srid, 0);
  value.writeUInt8(1, 4);
  value.writeUInt32LE(1, 5);
  value.writeDoubleLE(x, 9);
  value.writeDoubleLE(y, 17);
  return value;
}

/** The schema: tables, then triggers (one statement each). */
export function realSchemaStatements(): string[] {
  const valueColumns = VALUE_COLUMNS.map((c) => `${c.name} ${c.definition}`).join(',\n  ');
  return [
    `CREATE TABLE countries (code varchar(8) NOT NULL PRIMARY KEY, name varchar(60) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE customers (
  id int NOT NULL PRIMARY KEY,
  email varchar(80) NOT NULL,
  name varchar(100),
  country_code varchar(8),
  created_at datetime(6) NOT NULL,
  ${valueColumns},
  UNIQUE KEY customers_email (email),
  CONSTRAINT customers_country FOREIGN KEY (country_code) REFERENCES countries (code) ON UPDATE CASCADE ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE customer_notes (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id int NOT NULL,
  body text,
  CONSTRAINT notes_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE categories (
  id int NOT NULL PRIMARY KEY,
  parent_id int,
  name varchar(60) NOT NULL,
  CONSTRAINT categories_parent FOREIGN KEY (parent_id) REFERENCES categories (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE products (
  id int NOT NULL PRIMARY KEY,
  sku varchar(30) NOT NULL,
  name varchar(100) NOT NULL,
  search_name varchar(100),
  category_id int,
  price decimal(10,2) NOT NULL,
  released date,
  UNIQUE KEY products_sku (sku),
  CONSTRAINT products_category FOREIGN KEY (category_id) REFERENCES categories (id) ON UPDATE CASCADE ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE tags (id int NOT NULL PRIMARY KEY, name varchar(40) NOT NULL, UNIQUE KEY tags_name (name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE product_tags (
  product_id int NOT NULL,
  tag_id int NOT NULL,
  PRIMARY KEY (product_id, tag_id),
  CONSTRAINT product_tags_product FOREIGN KEY (product_id) REFERENCES products (id) ON UPDATE CASCADE ON DELETE CASCADE,
  CONSTRAINT product_tags_tag FOREIGN KEY (tag_id) REFERENCES tags (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE orders (
  id int NOT NULL PRIMARY KEY,
  customer_id int NOT NULL,
  status varchar(20) NOT NULL,
  placed_at datetime NOT NULL,
  shipped_on date DEFAULT '0000-00-00',
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE order_items (
  order_id int NOT NULL,
  line int NOT NULL,
  product_id int,
  qty int NOT NULL,
  price decimal(10,2) NOT NULL,
  PRIMARY KEY (order_id, line),
  CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON UPDATE CASCADE ON DELETE CASCADE,
  CONSTRAINT items_product FOREIGN KEY (product_id) REFERENCES products (id) ON UPDATE CASCADE ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE order_totals (
  order_id int NOT NULL PRIMARY KEY,
  items int NOT NULL,
  amount decimal(14,2) NOT NULL,
  CONSTRAINT totals_order FOREIGN KEY (order_id) REFERENCES orders (id) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE carriers (code varchar(30) NOT NULL PRIMARY KEY, name varchar(60) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE shipments (
  id int NOT NULL PRIMARY KEY,
  order_id int NOT NULL,
  carrier varchar(30),
  CONSTRAINT shipments_order FOREIGN KEY (order_id) REFERENCES orders (id) ON UPDATE CASCADE ON DELETE CASCADE,
  CONSTRAINT shipments_carrier FOREIGN KEY (carrier) REFERENCES carriers (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE shipment_events (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  shipment_id int NOT NULL,
  at datetime(3) NOT NULL,
  note varchar(100),
  CONSTRAINT events_shipment FOREIGN KEY (shipment_id) REFERENCES shipments (id) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE payments (
  id int NOT NULL PRIMARY KEY,
  order_id int,
  amount decimal(12,2) NOT NULL,
  paid_on date,
  CONSTRAINT payments_order FOREIGN KEY (order_id) REFERENCES orders (id) ON UPDATE CASCADE ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE teams (id int NOT NULL PRIMARY KEY, lead_id int, name varchar(40) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE employees (
  id int NOT NULL PRIMARY KEY,
  team_id int,
  name varchar(60) NOT NULL,
  CONSTRAINT employees_team FOREIGN KEY (team_id) REFERENCES teams (id) ON UPDATE CASCADE ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `ALTER TABLE teams ADD CONSTRAINT teams_lead FOREIGN KEY (lead_id) REFERENCES employees (id) ON DELETE SET NULL`,
    `CREATE TABLE audit_log (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  table_name varchar(30) NOT NULL,
  row_key varchar(40) NOT NULL,
  action varchar(60) NOT NULL,
  at datetime(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE settings (k varchar(40) NOT NULL PRIMARY KEY, v varchar(200)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    // Triggers: an audit row and a running total per inserted item (a table that itself cascades from orders),
    // an audit row per status change and per deleted customer, and a stamped column.
    `CREATE TRIGGER order_items_ai AFTER INSERT ON order_items FOR EACH ROW BEGIN
  INSERT INTO audit_log (table_name, row_key, action, at) VALUES ('order_items', CONCAT(NEW.order_id, '/', NEW.line), 'insert', NOW(6));
  INSERT INTO order_totals (order_id, items, amount) VALUES (NEW.order_id, 1, NEW.qty * NEW.price)
    ON DUPLICATE KEY UPDATE items = items + 1, amount = amount + VALUES(amount);
END`,
    `CREATE TRIGGER orders_au AFTER UPDATE ON orders FOR EACH ROW BEGIN
  IF NOT (OLD.status <=> NEW.status) THEN
    INSERT INTO audit_log (table_name, row_key, action, at) VALUES ('orders', NEW.id, CONCAT(OLD.status, ' -> ', NEW.status), NOW(6));
  END IF;
END`,
    `CREATE TRIGGER customers_bd BEFORE DELETE ON customers FOR EACH ROW
  INSERT INTO audit_log (table_name, row_key, action, at) VALUES ('customers', OLD.id, 'delete', NOW(6))`,
    `CREATE TRIGGER products_bi BEFORE INSERT ON products FOR EACH ROW SET NEW.search_name = LOWER(NEW.name)`,
  ];
}

/** The tables (for assertions about the job's objects). */
export const REAL_SCHEMA_TABLES = [
  'countries', 'customers', 'customer_notes', 'categories', 'products', 'tags', 'product_tags', 'orders', 'order_items',
  'order_totals', 'carriers', 'shipments', 'shipment_events', 'payments', 'teams', 'employees', 'audit_log', 'settings',
] as const;

export const REAL_SCHEMA_TRIGGERS = ['order_items_ai', 'orders_au', 'customers_bd', 'products_bi'] as const;

async function connect(params: ConnectionParams): Promise<Connection> {
  const connection = await mysql.createConnection({
    host: params.host,
    port: params.port,
    user: params.username,
    password: params.password ?? undefined,
    database: params.database ?? undefined,
    charset: 'utf8mb4_general_ci',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
  });
  connection.on('error', () => undefined);
  await connection.query("SET time_zone = '+00:00'");
  // Zero dates and ENUM error values ('') are what the schema tests: a non-strict sql_mode stores
  // an invalid enum label as '' (with a warning), as an application under such a mode does.
  await connection.query("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'");
  return connection;
}

/** New keys for every table, above the seed's: one counter per process, so concurrent workers never collide. */
let nextKey = 1_000_000;
const newKey = () => nextKey++;

function customerRow(r: Rng, id: number, country: string | null): Param[] {
  return [id, `c${id}.${int(r, 0, 1e6)}@example.com`, words(r, 3), country, datetime(r, 6), ...VALUE_COLUMNS.map((c) => c.value(r))];
}
const CUSTOMER_COLUMNS = ['id', 'email', 'name', 'country_code', 'created_at', ...VALUE_COLUMNS.map((c) => c.name)];

export interface RealSchemaSize {
  customers: number;
  ordersPerCustomer: number;
}

/** Creates the schema in `params.database` and fills it (deterministic for a seed). */
export async function createRealSchema(params: ConnectionParams, seed: number, size: RealSchemaSize = { customers: 300, ordersPerCustomer: 3 }): Promise<void> {
  const r = seededRng(seed);
  const c = await connect(params);
  try {
    for (const statement of realSchemaStatements()) await c.query(statement);
    const insert = async (table: string, columns: string[], rows: Param[][]) => {
      for (let i = 0; i < rows.length; i += 500) {
        const chunk = rows.slice(i, i + 500);
        await c.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => `(${columns.map(() => '?').join(', ')})`).join(', ')}`, chunk.flat());
      }
    };
    await insert('countries', ['code', 'name'], Array.from({ length: 12 }, (_, i) => [`C${i}`, `country ${i} ${words(r, 2)}`]));
    await insert('categories', ['id', 'parent_id', 'name'], Array.from({ length: 30 }, (_, i) => [i + 1, i < 5 ? null : int(r, 1, i), `category ${i}`]));
    await insert('products', ['id', 'sku', 'name', 'category_id', 'price', 'released'], Array.from({ length: 120 }, (_, i) => [i + 1, `SKU-${i + 1}`, `Product ${words(r, 2)}`, r() < 0.1 ? null : int(r, 1, 30), `${int(r, 1, 999)}.${pad(int(r, 0, 99))}`, r() < 0.2 ? '0000-00-00' : date(r)]));
    await insert('carriers', ['code', 'name'], [['ups', 'UPS'], ['dhl', 'DHL'], ['post', 'Post']]);
    await insert('tags', ['id', 'name'], Array.from({ length: 25 }, (_, i) => [i + 1, `tag-${i + 1}`]));
    const productTags = new Set<string>();
    for (let i = 0; i < 300; i++) productTags.add(`${int(r, 1, 120)}:${int(r, 1, 25)}`);
    await insert('product_tags', ['product_id', 'tag_id'], [...productTags].map((k) => k.split(':').map(Number)));
    await insert('customers', CUSTOMER_COLUMNS, Array.from({ length: size.customers }, (_, i) => customerRow(r, i + 1, r() < 0.1 ? null : `C${int(r, 0, 11)}`)));
    await insert('customer_notes', ['customer_id', 'body'], Array.from({ length: size.customers }, () => [int(r, 1, size.customers), words(r, 5)]));
    const orders: Param[][] = [];
    const items: Param[][] = [];
    const shipments: Param[][] = [];
    const events: Param[][] = [];
    const payments: Param[][] = [];
    let orderId = 0;
    for (let customer = 1; customer <= size.customers; customer++) {
      for (let k = 0; k < size.ordersPerCustomer; k++) {
        orderId++;
        orders.push([orderId, customer, pick(r, ['new', 'paid', 'shipped']), datetime(r), r() < 0.5 ? '0000-00-00' : date(r)]);
        for (let line = 1; line <= int(r, 1, 4); line++) items.push([orderId, line, r() < 0.1 ? null : int(r, 1, 120), int(r, 1, 5), `${int(r, 1, 500)}.${pad(int(r, 0, 99))}`]);
        if (r() < 0.5) {
          shipments.push([orderId, orderId, pick(r, ['ups', 'dhl', null])]);
          events.push([orderId, datetime(r, 3), words(r, 2)]);
        }
        if (r() < 0.6) payments.push([orderId, orderId, `${int(r, 1, 2000)}.${pad(int(r, 0, 99))}`, r() < 0.2 ? '0000-00-00' : date(r)]);
      }
    }
    await insert('orders', ['id', 'customer_id', 'status', 'placed_at', 'shipped_on'], orders);
    // Through the trigger: order_totals and audit_log are filled as the application fills them.
    await insert('order_items', ['order_id', 'line', 'product_id', 'qty', 'price'], items);
    await insert('shipments', ['id', 'order_id', 'carrier'], shipments);
    await insert('shipment_events', ['shipment_id', 'at', 'note'], events);
    await insert('payments', ['id', 'order_id', 'amount', 'paid_on'], payments);
    await insert('teams', ['id', 'lead_id', 'name'], Array.from({ length: 10 }, (_, i) => [i + 1, null, `team ${i + 1}`]));
    await insert('employees', ['id', 'team_id', 'name'], Array.from({ length: 60 }, (_, i) => [i + 1, int(r, 1, 10), `employee ${words(r, 2)}`]));
    for (let team = 1; team <= 10; team++) await c.query('UPDATE teams SET lead_id = (SELECT MIN(id) FROM employees WHERE team_id = ?) WHERE id = ?', [team, team]);
    await insert('settings', ['k', 'v'], Array.from({ length: 10 }, (_, i) => [`key${i}`, words(r, 3)]));
  } finally {
    await c.end();
  }
}

export interface RealWorkloadStats {
  committed: number;
  rolledBack: number;
  /** Connections lost (a server that crashed) and opened again. */
  reconnects: number;
  ops: Record<string, number>;
  errors: string[];
}

/** Errors a concurrent application meets and retries: deadlock, lock wait, a row another worker just moved or deleted. */
const EXPECTED_ERRNOS = new Set([1213, 1205, 1062, 1451, 1452]);

/**
 * Transactions against the schema, from `workers` connections, until stopped: parent keys
 * moved (cascading into up to four levels), parents deleted (cascade and set null, across the
 * cycle), trigger-firing inserts and status changes, value updates. Every operation picks its
 * rows from what exists at that moment.
 */
export class RealSchemaWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly connections: Connection[] = [];
  readonly stats: RealWorkloadStats = { committed: 0, rolledBack: 0, reconnects: 0, ops: {}, errors: [] };

  constructor(private readonly params: ConnectionParams, private readonly options: { workers: number; seed: number; pauseMs: number }) {}

  async start(): Promise<void> {
    this.running = true;
    for (let w = 0; w < this.options.workers; w++) {
      const connection = await connect(this.params);
      this.connections.push(connection);
      this.loops.push(this.loop(w, seededRng(this.options.seed * 31 + w)));
    }
  }

  async stop(): Promise<RealWorkloadStats> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.connections.map((c) => c.end().catch(() => undefined)));
    return this.stats;
  }

  /** A new connection once the server accepts one again (at most 90 s). */
  private async reconnect(): Promise<Connection> {
    this.stats.reconnects++;
    for (const deadline = Date.now() + 90_000; ; ) {
      try {
        return await connect(this.params);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  private async loop(worker: number, r: Rng): Promise<void> {
    const operations: Array<[string, number, (c: Connection, r: Rng) => Promise<void>]> = [
      ['newOrder', 20, newOrder],
      ['changeStatus', 12, changeStatus],
      ['moveCustomerKey', 6, (c2, r2) => moveKey(c2, r2, 'customers', 'id')],
      ['moveOrderKey', 8, (c2, r2) => moveKey(c2, r2, 'orders', 'id')],
      ['moveProductKey', 4, (c2, r2) => moveKey(c2, r2, 'products', 'id')],
      ['moveCategoryKey', 2, (c2, r2) => moveKey(c2, r2, 'categories', 'id')],
      ['moveShipmentKey', 3, (c2, r2) => moveKey(c2, r2, 'shipments', 'id')],
      ['moveTeamKey', 2, (c2, r2) => moveKey(c2, r2, 'teams', 'id')],
      ['moveCountryCode', 2, moveCountryCode],
      ['deleteCustomer', 5, (c2, r2) => deleteSome(c2, r2, 'customers')],
      ['deleteOrder', 5, (c2, r2) => deleteSome(c2, r2, 'orders')],
      ['deleteProduct', 3, (c2, r2) => deleteSome(c2, r2, 'products')],
      ['deleteCategory', 2, (c2, r2) => deleteSome(c2, r2, 'categories')],
      ['deleteCountry', 1, (c2, r2) => deleteSome(c2, r2, 'countries')],
      ['deleteTag', 1, (c2, r2) => deleteSome(c2, r2, 'tags')],
      ['deleteTeam', 2, (c2, r2) => deleteSome(c2, r2, 'teams')],
      ['deleteEmployee', 2, (c2, r2) => deleteSome(c2, r2, 'employees')],
      ['newCustomer', 6, newCustomer],
      ['touchCustomer', 6, touchCustomer],
      ['newTeam', 2, newTeam],
      ['newParents', 3, newParents],
      ['shipOrder', 5, shipOrder],
      ['rolledBack', 2, rolledBack],
    ];
    const total = operations.reduce((n, [, weight]) => n + weight, 0);
    while (this.running) {
      const c = this.connections[worker] as Connection;
      let roll = r() * total;
      const [name, , run] = operations.find(([, weight]) => (roll -= weight) < 0) ?? (operations[0] as (typeof operations)[number]);
      try {
        await c.query('START TRANSACTION');
        await run(c, r);
        if (name === 'rolledBack') {
          await c.query('ROLLBACK');
          this.stats.rolledBack++;
        } else {
          await c.query('COMMIT');
          this.stats.committed++;
        }
        this.stats.ops[name] = (this.stats.ops[name] ?? 0) + 1;
      } catch (error) {
        await c.query('ROLLBACK').catch(() => undefined);
        this.stats.rolledBack++;
        const e = error as { errno?: number; fatal?: boolean; message: string };
        if (e.fatal === true) {
          // The server went away (a crash): the transaction is gone with it; connect again.
          await c.end().catch(() => undefined);
          this.connections[worker] = await this.reconnect();
          continue;
        }
        if (e.errno === undefined || !EXPECTED_ERRNOS.has(e.errno)) this.stats.errors.push(`${name}: ${e.message}`);
      }
      if (this.options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, int(r, 0, this.options.pauseMs)));
    }
  }
}

/** A random existing key of `table` (null when empty). */
async function someKey(c: Connection, r: Rng, table: string, column = 'id'): Promise<string | null> {
  if (column !== 'id') {
    // Text keys of small tables.
    const [few] = await c.query(`SELECT ${column} AS k FROM ${table} ORDER BY RAND(${int(r, 0, 1e9)}) LIMIT 1`);
    const one = (few as Array<{ k: unknown }>)[0];
    return one === undefined ? null : String(one.k);
  }
  const [rows] = await c.query(`SELECT ${column} AS k FROM ${table} WHERE ${column} >= ? ORDER BY ${column} LIMIT 1`, [pick(r, [0, int(r, 0, 400), int(r, 0, 3000), newKeyFloor(r)])]);
  const row = (rows as Array<{ k: unknown }>)[0];
  if (row !== undefined) return String(row.k);
  const [first] = await c.query(`SELECT ${column} AS k FROM ${table} ORDER BY ${column} LIMIT 1`);
  const f = (first as Array<{ k: unknown }>)[0];
  return f === undefined ? null : String(f.k);
}
const newKeyFloor = (r: Rng) => int(r, 1_000_000, Math.max(1_000_000, nextKey));

async function newOrder(c: Connection, r: Rng): Promise<void> {
  const customer = await someKey(c, r, 'customers');
  if (customer === null) return;
  const order = newKey();
  await c.query("INSERT INTO orders (id, customer_id, status, placed_at, shipped_on) VALUES (?, ?, 'new', NOW(), ?)", [order, customer, r() < 0.5 ? '0000-00-00' : date(r)]);
  const lines = int(r, 1, 4);
  for (let line = 1; line <= lines; line++) {
    const product = r() < 0.15 ? null : await someKey(c, r, 'products');
    // Fires order_items_ai: an audit row and the order's running total.
    await c.query('INSERT INTO order_items (order_id, line, product_id, qty, price) VALUES (?, ?, ?, ?, ?)', [order, line, product, int(r, 1, 5), `${int(r, 1, 500)}.${pad(int(r, 0, 99))}`]);
  }
  if (r() < 0.5) await c.query('INSERT INTO payments (id, order_id, amount, paid_on) VALUES (?, ?, ?, ?)', [newKey(), order, `${int(r, 1, 900)}.00`, r() < 0.3 ? '0000-00-00' : date(r)]);
}

async function changeStatus(c: Connection, r: Rng): Promise<void> {
  const order = await someKey(c, r, 'orders');
  if (order === null) return;
  // Fires orders_au (an audit row) when the status changes.
  await c.query('UPDATE orders SET status = ? WHERE id = ?', [pick(r, ['new', 'paid', 'shipped', 'returned', 'closed']), order]);
}

async function moveKey(c: Connection, r: Rng, table: string, column: string): Promise<void> {
  const key = await someKey(c, r, table, column);
  if (key === null) return;
  // ON UPDATE CASCADE moves every referencing row, down to four levels, in no binlog event.
  await c.query(`UPDATE ${table} SET ${column} = ? WHERE ${column} = ?`, [newKey(), key]);
}

async function moveCountryCode(c: Connection, r: Rng): Promise<void> {
  const code = await someKey(c, r, 'countries', 'code');
  if (code === null) return;
  await c.query('UPDATE countries SET code = ? WHERE code = ?', [`N${newKey()}`, code]);
}

async function deleteSome(c: Connection, r: Rng, table: string): Promise<void> {
  const column = table === 'countries' ? 'code' : 'id';
  const key = await someKey(c, r, table, column);
  if (key === null) return;
  // Cascades (and SET NULLs) that InnoDB writes to no binlog; customers_bd writes an audit row.
  await c.query(`DELETE FROM ${table} WHERE ${column} = ?`, [key]);
}

async function newCustomer(c: Connection, r: Rng): Promise<void> {
  const country = r() < 0.2 ? null : await someKey(c, r, 'countries', 'code');
  const id = newKey();
  await c.query(`INSERT INTO customers (${CUSTOMER_COLUMNS.join(', ')}) VALUES (${CUSTOMER_COLUMNS.map(() => '?').join(', ')})`, customerRow(r, id, country));
  await c.query('INSERT INTO customer_notes (customer_id, body) VALUES (?, ?)', [id, words(r, 4)]);
}

async function touchCustomer(c: Connection, r: Rng): Promise<void> {
  const id = await someKey(c, r, 'customers');
  if (id === null) return;
  const values = VALUE_COLUMNS.map((column) => column.value(r));
  await c.query(`UPDATE customers SET ${VALUE_COLUMNS.map((column) => `${column.name} = ?`).join(', ')} WHERE id = ?`, [...values, id]);
}

async function newTeam(c: Connection, r: Rng): Promise<void> {
  // Both halves of the cycle: the team first without a lead, its employees, then the lead.
  const team = newKey();
  await c.query('INSERT INTO teams (id, lead_id, name) VALUES (?, NULL, ?)', [team, `team ${team}`]);
  const first = newKey();
  await c.query('INSERT INTO employees (id, team_id, name) VALUES (?, ?, ?), (?, ?, ?)', [first, team, words(r, 2), newKey(), team, words(r, 2)]);
  await c.query('UPDATE teams SET lead_id = ? WHERE id = ?', [first, team]);
  // A lead from another team: deleting that team later sets this one's lead to NULL across the cycle.
  if (r() < 0.3) {
    const other = await someKey(c, r, 'employees');
    if (other !== null) await c.query('UPDATE teams SET lead_id = ? WHERE id = ?', [other, team]);
  }
}

async function newParents(c: Connection, r: Rng): Promise<void> {
  const category = newKey();
  await c.query('INSERT INTO categories (id, parent_id, name) VALUES (?, ?, ?)', [category, await someKey(c, r, 'categories'), `category ${category}`]);
  const product = newKey();
  // products_bi stamps search_name.
  await c.query('INSERT INTO products (id, sku, name, category_id, price, released) VALUES (?, ?, ?, ?, ?, ?)', [product, `SKU-${product}`, `Product ${words(r, 2)}`, category, '9.99', r() < 0.3 ? '0000-00-00' : date(r)]);
  const tag = newKey();
  await c.query('INSERT INTO tags (id, name) VALUES (?, ?)', [tag, `tag-${tag}`]);
  await c.query('INSERT INTO product_tags (product_id, tag_id) VALUES (?, ?)', [product, tag]);
  if (r() < 0.3) await c.query('INSERT INTO countries (code, name) VALUES (?, ?)', [`K${newKey()}`, words(r, 2)]);
  await c.query('INSERT INTO settings (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)', [`key${int(r, 0, 20)}`, words(r, 3)]);
}

async function shipOrder(c: Connection, r: Rng): Promise<void> {
  const order = await someKey(c, r, 'orders');
  if (order === null) return;
  const shipment = newKey();
  await c.query('INSERT INTO shipments (id, order_id, carrier) VALUES (?, ?, ?)', [shipment, order, pick(r, ['ups', 'dhl', 'post'])]);
  await c.query('INSERT INTO shipment_events (shipment_id, at, note) VALUES (?, NOW(3), ?), (?, NOW(3), ?)', [shipment, words(r, 2), shipment, words(r, 2)]);
  await c.query('UPDATE orders SET status = ?, shipped_on = CURDATE() WHERE id = ?', ['shipped', order]);
}

async function rolledBack(c: Connection, r: Rng): Promise<void> {
  // Rolled back: none of it (nor its cascades) may reach the destination.
  await deleteSome(c, r, 'customers');
  await moveKey(c, r, 'orders', 'id');
}
