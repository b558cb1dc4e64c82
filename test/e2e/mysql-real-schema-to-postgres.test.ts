/**
 * Issue 12, MariaDB (a private server) to PostgreSQL: a continuous job over an ordinary application schema whose
 * foreign keys cascade (ON UPDATE CASCADE, ON DELETE CASCADE, ON DELETE SET NULL, five levels,
 * a self reference and a cycle) and whose triggers write to other tables, under a workload that
 * moves parent keys, deletes parents and fires the triggers, with `ferry serve` killed twice
 * during the stream. InnoDB writes the rows its cascades change to no binlog: the destination
 * repeats them through the foreign keys Ferry creates before the stream (DEFERRABLE INITIALLY
 * DEFERRED, made NOT DEFERRABLE at promote). Rows written by source triggers arrive once (the
 * audit log and running totals would show a second write).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_DEST_PORT, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { runRealSchemaJob, startRealSource, type RealSource } from '../helpers/real-schema-job.js';
import { stopAllFerryServers } from '../helpers/ferry-server.js';

const SEED = Number(process.env.FERRY_REAL_SCHEMA_SEED ?? 1212);

/** The destination's foreign keys: name -> deferrable, with their delete and update actions. */
async function foreignKeys(destination: TestDatabase, schema: string): Promise<Map<string, { deferrable: boolean; onDelete: string; onUpdate: string }>> {
  const result = await destination.client.query(
    `SELECT k.conname AS name, k.condeferrable AS deferrable, k.confdeltype AS del, k.confupdtype AS upd FROM pg_constraint k
     JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace WHERE k.contype = 'f' AND n.nspname = $1`,
    [schema],
  );
  const action = (code: string) => ({ a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' })[code] ?? code;
  return new Map(result.rows.map((r: { name: string; deferrable: boolean; del: string; upd: string }) => [r.name, { deferrable: r.deferrable, onDelete: action(r.del), onUpdate: action(r.upd) }]));
}

describe('MariaDB to PostgreSQL, continuous: foreign-key actions and triggers of a real schema', () => {
  let source: RealSource;
  let destination: TestDatabase;

  beforeAll(async () => {
    source = await startRealSource(13, 'ferry_real_pg', SEED);
    destination = await createTestDatabase(PG_DEST_PORT, 'ferry_real');
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await source?.instance.stop();
    await destination?.drop().catch(() => undefined);
  }, 60_000);

  it('carries every cascade and every trigger-written row exactly, across two kills: zero differences after promote', async () => {
    let during = new Map<string, { deferrable: boolean; onDelete: string; onUpdate: string }>();
    const run = await runRealSchemaJob({
      jobId: 'real-pg',
      source,
      destinationProfile: destination.params,
      destination: async () => ({ engine: 'postgresql', client: destination.client, schema: source.name }),
      seed: SEED,
      // NUL characters cannot be stored in PostgreSQL text: removed, as the policy says, and compared so.
      jobArgs: ['--nul-character-policy', 'strip'],
      compareOptions: { nulStripped: true },
      duringStream: async () => {
        during = await foreignKeys(destination, source.name);
      },
    });

    const check = run.verify.checks.find((c) => c.code === 'FOREIGN_KEY_ACTIONS');
    expect(check?.severity, JSON.stringify(check)).toBe('ok');
    expect(check?.message).toContain('carried');
    expect(check?.objects).toContain(`${source.name}.orders.orders_customer`);
    expect(check?.objects).toContain(`${source.name}.teams.teams_lead`);
    expect(check?.objects).not.toContain(`${source.name}.shipments.shipments_carrier`);
    expect(run.verify.ok, JSON.stringify(run.verify.checks.filter((c) => c.severity === 'error'))).toBe(true);

    // During the stream: the foreign keys with actions, deferred; the one without (shipments_carrier) waits for promote.
    expect([...during.keys()].sort()).toEqual([
      'categories_parent', 'customers_country', 'employees_team', 'events_shipment', 'items_order', 'items_product', 'notes_customer',
      'orders_customer', 'payments_order', 'product_tags_product', 'product_tags_tag', 'products_category', 'shipments_order', 'teams_lead', 'totals_order',
    ]);
    expect([...during.values()].every((k) => k.deferrable)).toBe(true);
    // After promote: every foreign key, as on the source (not deferrable).
    const after = await foreignKeys(destination, source.name);
    expect(after.size).toBe(during.size + 1);
    expect([...after.values()].some((k) => k.deferrable)).toBe(false);
    expect(after.get('items_order')).toEqual({ deferrable: false, onDelete: 'CASCADE', onUpdate: 'CASCADE' });
    expect(after.get('teams_lead')).toMatchObject({ onDelete: 'SET NULL' });

    // The awkward values are there, in their documented PostgreSQL form: the enum's '' label,
    // NUL characters removed, points as geometry(Point,4326).
    const awkward = await destination.client.query<{ empty_moods: string; memos: string; points: string; srids: string[]; spot_type: string }>(
      `SELECT count(*) FILTER (WHERE mood::text = '') AS empty_moods,
              count(*) FILTER (WHERE memo IS NOT NULL) AS memos,
              count(spot) AS points,
              array_agg(DISTINCT public.st_srid(spot)) FILTER (WHERE spot IS NOT NULL) AS srids,
              (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = format('%I.customers', $1::text)::regclass AND a.attname = 'spot') AS spot_type
       FROM ${'"'}${source.name}${'"'}.customers`,
      [source.name],
    );
    const row = awkward.rows[0]!;
    expect(Number(row.empty_moods), 'customers with the ENUM error value').toBeGreaterThan(0);
    expect(Number(row.memos)).toBeGreaterThan(0);
    expect(Number(row.points), 'customers with a point').toBeGreaterThan(0);
    expect(row.srids).toEqual([4326]);
    expect(row.spot_type).toBe('geometry(Point,4326)');
    const source_ = await source.connect();
    try {
      const [nul] = await source_.query("SELECT count(*) AS n FROM customers WHERE LOCATE(CHAR(0), memo) > 0");
      expect(Number((nul as Array<{ n: number }>)[0]?.n), 'source memos holding a NUL character').toBeGreaterThan(0);
    } finally {
      await source_.end();
    }

    // The workload did what the test is about.
    for (const op of ['moveCustomerKey', 'moveOrderKey', 'moveProductKey', 'moveCountryCode', 'deleteCustomer', 'deleteOrder', 'deleteTeam', 'deleteCategory', 'newOrder', 'changeStatus']) {
      expect(run.stats.ops[op] ?? 0, op).toBeGreaterThan(0);
    }
    console.log(`mysql-real-schema-to-postgres: seed ${SEED}; kills: ${run.kills.join('; ')}; server crashes: ${run.serverCrashes.join('; ') || 'none'}; committed ${run.stats.committed}, rolled back ${run.stats.rolledBack}; ops ${JSON.stringify(run.stats.ops)}`);
  }, 480_000);
});
