/**
 * The job fence on a PostgreSQL destination: `_ferry.job_fence`, one row per job key with the
 * epoch of the lease whose holder may commit (docs/ARCHITECTURE.md, Fencing).
 * - raise: INSERT ... ON CONFLICT DO UPDATE ... WHERE epoch <= new: the row's exclusive lock,
 *   so it waits for every transaction that holds the row's share lock (and ends those that hold
 *   it past FENCE_HOLDER_GRACE_MS: endStuckFenceHolders);
 * - check: SELECT ... FOR SHARE right before COMMIT, held until the commit; another epoch (or
 *   no row) is LEASE_LOST and the caller rolls back.
 * Both run at READ COMMITTED: the check reads the latest committed epoch, whenever its
 * transaction began.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { endStuckFenceHolders, fenceLost } from '../destination-fence.js';
import type { DestinationFence } from '../engine.js';
import { connectPostgres, endQuietly, errorContext, pgBool } from './postgres-connection.js';
import { classifyPostgresError } from './postgres-error-classifier.js';

const FENCE_TABLE = '"_ferry".job_fence';
const CREATE_FENCE_TABLE_SQL = [
  'CREATE SCHEMA IF NOT EXISTS "_ferry"',
  `CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (job_id text PRIMARY KEY, epoch bigint NOT NULL, node_id text NOT NULL, raised_at timestamptz NOT NULL DEFAULT now())`,
].join('; ');
const RAISE_FENCE_SQL = `INSERT INTO ${FENCE_TABLE} AS f (job_id, epoch, node_id, raised_at) VALUES ($1, $2, $3, now())
ON CONFLICT (job_id) DO UPDATE SET epoch = EXCLUDED.epoch, node_id = EXCLUDED.node_id, raised_at = EXCLUDED.raised_at
WHERE f.epoch <= EXCLUDED.epoch RETURNING epoch`;
const CHECK_FENCE_SQL = `SELECT epoch::text AS epoch FROM ${FENCE_TABLE} WHERE job_id = $1 FOR SHARE`;
/** Object missing (the schema or table was dropped), duplicate (two raises created them at once). */
const RETRY_CODES = new Set(['42P01', '3F000', '23505', '42P06', '42P07']);

/**
 * The backends that block the raise on the fence row itself (the raise waits for their
 * transaction, not for a table lock): transactions of older epochs between their check and their
 * COMMIT, or another raise or drop of the same key. Ending one rolls its transaction back.
 */
const END_ROW_BLOCKERS_SQL = `SELECT pg_terminate_backend(b.pid) AS ended
FROM pg_stat_activity w, unnest(pg_blocking_pids(w.pid)) AS b(pid)
WHERE w.pid = $1 AND w.wait_event_type = 'Lock' AND w.wait_event IN ('transactionid', 'tuple')`;

/**
 * The application_name of a session that writes under a fence: `ferry fence <key hash> e<epoch>`
 * (63 bytes at most, whatever the key), so that a raise finds the sessions of older epochs.
 */
function fencedSessionPrefix(key: string): string {
  return `ferry fence ${createHash('sha256').update(key).digest('hex').slice(0, 16)} e`;
}

/** Names the session as writing under `fence` (the applier once, a table writer before each fenced load). */
export async function tagPostgresFencedSession(client: pg.Client, fence: DestinationFence): Promise<void> {
  await client.query("SELECT set_config('application_name', $1, false)", [`${fencedSessionPrefix(fence.key)}${fence.epoch}`]);
}

/**
 * After a raise, every session of an older epoch of the key is ended: none of its transactions can
 * commit any more (its fence check fails), and one whose node was paused mid-batch would hold its
 * row locks until the node woke, stalling the new owner's writes to the same rows.
 */
const END_OLDER_EPOCH_SESSIONS_SQL = `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND starts_with(application_name, $1)
  AND substr(application_name, length($1) + 1) ~ '^[0-9]+$' AND substr(application_name, length($1) + 1)::bigint < $2::bigint`;

/** Engine.raiseFence for PostgreSQL. */
export async function raisePostgresFence(params: ConnectionParams, fence: DestinationFence & { nodeId: string }): Promise<void> {
  const context = errorContext(params, { operation: 'write' });
  const client = await connectPostgres(params, context);
  try {
    const pid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(CREATE_FENCE_TABLE_SQL);
        let watcher: pg.Client | null = null;
        const stopWatching = endStuckFenceHolders(
          async () => {
            watcher ??= await connectPostgres(params);
            await watcher.query(END_ROW_BLOCKERS_SQL, [pid]);
          },
          async () => {
            if (watcher !== null) await endQuietly(watcher);
          },
        );
        const raised = await client.query(RAISE_FENCE_SQL, [fence.key, String(fence.epoch), fence.nodeId]).finally(stopWatching);
        if (raised.rows.length > 0) {
          // Without the right to end sessions (pg_signal_backend), the new owner waits for them instead.
          await client.query(END_OLDER_EPOCH_SESSIONS_SQL, [fencedSessionPrefix(fence.key), String(fence.epoch)]).catch(() => undefined);
          return;
        }
        const current = await client.query(`SELECT epoch::text AS epoch FROM ${FENCE_TABLE} WHERE job_id = $1`, [fence.key]);
        const found = current.rows.length === 0 ? null : Number((current.rows[0] as { epoch: string }).epoch);
        throw fenceLost(fence, found, 'Raising the job\'s fence on the destination');
      } catch (error) {
        // A promote of another job may drop `_ferry` between the create and the raise.
        if (!(error instanceof FerryError) && attempt < 3 && RETRY_CODES.has(String((error as { code?: unknown }).code))) continue;
        throw classifyPostgresError(error, context);
      }
    }
  } finally {
    await endQuietly(client);
  }
}

/**
 * The check, inside the caller's open transaction: throws LEASE_LOST unless the fence holds
 * `fence.epoch`. A missing fence table aborts the transaction like any failed statement: the
 * caller rolls back.
 */
export async function checkPostgresFence(client: pg.Client, fence: DestinationFence, what: string): Promise<void> {
  let found: number | null;
  try {
    const result = await client.query(CHECK_FENCE_SQL, [fence.key]);
    found = result.rows.length === 0 ? null : Number((result.rows[0] as { epoch: string }).epoch);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== '42P01' && code !== '3F000') throw error;
    found = null;
  }
  if (found !== fence.epoch) throw fenceLost(fence, found, what);
}

/** Engine.dropFence for PostgreSQL: the row of this epoch, then `_ferry` when every table in it is empty. */
export async function dropPostgresFence(params: ConnectionParams, fence: DestinationFence): Promise<void> {
  const context = errorContext(params, { operation: 'write' });
  const client = await connectPostgres(params, context);
  try {
    await client.query('BEGIN');
    try {
      const present = await client.query(`SELECT to_regclass('${FENCE_TABLE}') IS NOT NULL AS present`);
      if (pgBool((present.rows[0] as { present: unknown }).present)) {
        const deleted = await client.query(`DELETE FROM ${FENCE_TABLE} WHERE job_id = $1 AND epoch = $2`, [fence.key, String(fence.epoch)]);
        if (deleted.rowCount === 0) {
          const current = await client.query(`SELECT epoch::text AS epoch FROM ${FENCE_TABLE} WHERE job_id = $1`, [fence.key]);
          if (current.rows.length > 0) throw fenceLost(fence, Number((current.rows[0] as { epoch: string }).epoch), 'Removing the job\'s fence from the destination');
        }
        const tables = await client.query(`SELECT c.oid::regclass::text AS name FROM pg_class c WHERE c.relnamespace = '"_ferry"'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1`);
        const names = (tables.rows as Array<{ name: string }>).map((r) => r.name);
        // Blocks other jobs' position writes and raises until the schema is gone or kept.
        await client.query(`LOCK TABLE ${names.join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
        let left = 0;
        for (const name of names) left += (await client.query(`SELECT 1 FROM ${name} LIMIT 1`)).rows.length;
        // The destination stands alone once no job keeps anything in `_ferry`.
        if (left === 0) await client.query('DROP SCHEMA "_ferry" CASCADE');
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } catch (error) {
    throw classifyPostgresError(error, context);
  } finally {
    await endQuietly(client);
  }
}
