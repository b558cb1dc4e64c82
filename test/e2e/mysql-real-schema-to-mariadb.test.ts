/**
 * Issue 12, MariaDB to MariaDB (private source and destination servers): the continuous job of
 * mysql-real-schema-to-postgres.test.ts with a MariaDB destination. The foreign keys with
 * actions exist on the destination during the stream and the applier checks foreign keys, so
 * InnoDB repeats the cascades that the source's binlog lacks; the foreign key without an action
 * and the triggers are created at promote only, so no destination trigger fires on Ferry's
 * writes (the audit log and running totals would show a second write).
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadbInstance, type MariadbInstance } from '../helpers/mariadb-instance.js';
import { REAL_SCHEMA_TRIGGERS } from '../helpers/mysql-real-schema.js';
import { runRealSchemaJob, startRealSource, type RealSource } from '../helpers/real-schema-job.js';
import { stopAllFerryServers } from '../helpers/ferry-server.js';

const SEED = Number(process.env.FERRY_REAL_SCHEMA_SEED ?? 2121);

/** The destination's foreign keys (name -> delete/update rules) and triggers. */
async function objects(server: MariadbInstance, schema: string): Promise<{ foreignKeys: Map<string, string>; triggers: string[] }> {
  const connection = await server.connect();
  try {
    return await readObjects(connection, schema);
  } finally {
    await connection.end().catch(() => undefined);
  }
}

async function readObjects(connection: Connection, schema: string): Promise<{ foreignKeys: Map<string, string>; triggers: string[] }> {
  const [keys] = await connection.query('SELECT CONSTRAINT_NAME AS name, DELETE_RULE AS del, UPDATE_RULE AS upd FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?', [schema]);
  const [triggers] = await connection.query('SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [schema]);
  return {
    foreignKeys: new Map((keys as Array<{ name: string; del: string; upd: string }>).map((k) => [k.name, `DELETE ${k.del} UPDATE ${k.upd}`])),
    triggers: (triggers as Array<{ name: string }>).map((t) => t.name).sort(),
  };
}

describe('MariaDB to MariaDB, continuous: foreign-key actions and triggers of a real schema', () => {
  let source: RealSource;
  let destination: MariadbInstance;
  let connection: Connection | null = null;

  beforeAll(async () => {
    // One after the other: a failure of the second leaves the first for afterAll to stop.
    source = await startRealSource(14, 'ferry_real_m', SEED);
    destination = await startMariadbInstance({ serverId: 12 });
  }, 120_000);

  afterAll(async () => {
    await stopAllFerryServers();
    await connection?.end().catch(() => undefined);
    await source?.instance.stop();
    await destination?.stop();
  }, 60_000);

  it('carries every cascade and every trigger-written row exactly, across two kills: zero differences after promote', async () => {
    let during: Awaited<ReturnType<typeof objects>> = { foreignKeys: new Map(), triggers: [] };
    const run = await runRealSchemaJob({
      jobId: 'real-m',
      source,
      destinationProfile: destination.params(null),
      destination: async () => {
        connection = await destination.connect();
        return { engine: 'mysql', connection, schema: source.name };
      },
      destinationServer: destination,
      seed: SEED,
      duringStream: async () => {
        during = await objects(destination, source.name);
      },
    });

    const check = run.verify.checks.find((c) => c.code === 'FOREIGN_KEY_ACTIONS');
    expect(check?.severity, JSON.stringify(check)).toBe('ok');
    expect(run.verify.ok, JSON.stringify(run.verify.checks.filter((c) => c.severity === 'error'))).toBe(true);

    // During the stream: the foreign keys with actions only, no trigger.
    expect(during.triggers).toEqual([]);
    expect(during.foreignKeys.has('shipments_carrier')).toBe(false);
    expect(during.foreignKeys.get('items_order')).toBe('DELETE CASCADE UPDATE CASCADE');
    expect(during.foreignKeys.get('teams_lead')).toBe('DELETE SET NULL UPDATE RESTRICT');
    expect(during.foreignKeys.size).toBe(15);
    // After promote: every foreign key and trigger, as on the source.
    const after = await objects(destination, source.name);
    expect(after.foreignKeys.size).toBe(16);
    expect(after.foreignKeys.get('shipments_carrier')).toBe('DELETE RESTRICT UPDATE RESTRICT');
    expect(after.triggers).toEqual([...REAL_SCHEMA_TRIGGERS].sort());

    for (const op of ['moveCustomerKey', 'moveOrderKey', 'moveProductKey', 'moveCountryCode', 'deleteCustomer', 'deleteOrder', 'deleteTeam', 'deleteCategory', 'newOrder', 'changeStatus']) {
      expect(run.stats.ops[op] ?? 0, op).toBeGreaterThan(0);
    }
    console.log(`mysql-real-schema-to-mariadb: seed ${SEED}; kills: ${run.kills.join('; ')}; server crashes: ${run.serverCrashes.join('; ') || 'none'}; committed ${run.stats.committed}, rolled back ${run.stats.rolledBack}; ops ${JSON.stringify(run.stats.ops)}`);
  }, 480_000);
});
