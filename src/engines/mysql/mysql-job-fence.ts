/**
 * The job fence on a MySQL/MariaDB destination: `_ferry`.`job_fence` (InnoDB), one row per job
 * key with the epoch of the lease whose holder may commit (docs/ARCHITECTURE.md, Fencing).
 * - raise: a transaction that reads the row FOR UPDATE (its exclusive lock, which waits for
 *   every transaction holding the row's share lock), then updates or inserts it;
 * - check: SELECT ... LOCK IN SHARE MODE right before COMMIT, held until the commit. A locking
 *   read sees the latest committed row whatever the transaction's snapshot; another epoch (or
 *   no row) is LEASE_LOST and the caller rolls back.
 */
import type { ConnectionParams } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import { fenceLost } from '../destination-fence.js';
import type { DestinationFence } from '../engine.js';
import { connectMysql, endQuietly, errorContext } from './mysql-connection.js';
import type { MysqlConnection } from './mysql-connection.js';
import { classifyMysqlError } from './mysql-error-classifier.js';

const FENCE_TABLE = '`_ferry`.`job_fence`';
const CREATE_FENCE_SQL = [
  'CREATE DATABASE IF NOT EXISTS `_ferry` CHARACTER SET utf8mb4',
  `CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (job_id varchar(200) NOT NULL PRIMARY KEY, epoch bigint NOT NULL, ` +
    'node_id varchar(255) NOT NULL, raised_at datetime(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
];
/** ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR: `_ferry` or the fence table is gone. */
const MISSING_ERRNOS = new Set([1146, 1049]);
/** ER_DUP_ENTRY: two raises inserted the first row at once; the second try finds it. */
const DUPLICATE_ERRNO = 1062;

type Row = Record<string, unknown>;

function errnoOf(error: unknown): number | undefined {
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? errno : undefined;
}

/** Engine.raiseFence for MySQL/MariaDB. */
export async function raiseMysqlFence(params: ConnectionParams, fence: DestinationFence & { nodeId: string }): Promise<void> {
  const context = errorContext(params, { operation: 'write' });
  const connection = await connectMysql(params, { context });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        for (const statement of CREATE_FENCE_SQL) await connection.query(statement);
        await connection.query('START TRANSACTION');
        try {
          const [rows] = await connection.query(`SELECT epoch FROM ${FENCE_TABLE} WHERE job_id = ? FOR UPDATE`, [fence.key]);
          const row = (rows as Row[])[0];
          if (row === undefined) {
            await connection.query(`INSERT INTO ${FENCE_TABLE} (job_id, epoch, node_id, raised_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))`, [fence.key, fence.epoch, fence.nodeId]);
          } else if (Number(row.epoch) > fence.epoch) {
            throw fenceLost(fence, Number(row.epoch), 'Raising the job\'s fence on the destination');
          } else {
            await connection.query(`UPDATE ${FENCE_TABLE} SET epoch = ?, node_id = ?, raised_at = UTC_TIMESTAMP(6) WHERE job_id = ?`, [fence.epoch, fence.nodeId, fence.key]);
          }
          await connection.query('COMMIT');
          return;
        } catch (error) {
          await connection.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      } catch (error) {
        // A promote of another job may drop `_ferry` between the create and the raise.
        const errno = errnoOf(error);
        if (!(error instanceof FerryError) && attempt < 3 && errno !== undefined && (MISSING_ERRNOS.has(errno) || errno === DUPLICATE_ERRNO)) continue;
        throw classifyMysqlError(error, context);
      }
    }
  } finally {
    await endQuietly(connection);
  }
}

/** The check, inside the caller's open transaction: throws LEASE_LOST unless the fence holds `fence.epoch`. */
export async function checkMysqlFence(connection: MysqlConnection, fence: DestinationFence, what: string): Promise<void> {
  let found: number | null;
  try {
    const [rows] = await connection.query(`SELECT epoch FROM ${FENCE_TABLE} WHERE job_id = ? LOCK IN SHARE MODE`, [fence.key]);
    const row = (rows as Row[])[0];
    found = row === undefined ? null : Number(row.epoch);
  } catch (error) {
    const errno = errnoOf(error);
    if (errno === undefined || !MISSING_ERRNOS.has(errno)) throw error;
    found = null;
  }
  if (found !== fence.epoch) throw fenceLost(fence, found, what);
}

/** Engine.dropFence for MySQL/MariaDB: the row of this epoch, the fence table once empty, `_ferry` once it holds no table. */
export async function dropMysqlFence(params: ConnectionParams, fence: DestinationFence): Promise<void> {
  const context = errorContext(params, { operation: 'write' });
  const connection = await connectMysql(params, { context });
  try {
    const [present] = await connection.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ferry' AND TABLE_NAME = 'job_fence'");
    if ((present as Row[]).length === 0) return;
    await connection.query('START TRANSACTION');
    try {
      const [rows] = await connection.query(`SELECT epoch FROM ${FENCE_TABLE} WHERE job_id = ? FOR UPDATE`, [fence.key]);
      const row = (rows as Row[])[0];
      if (row !== undefined && Number(row.epoch) !== fence.epoch) throw fenceLost(fence, Number(row.epoch), 'Removing the job\'s fence from the destination');
      if (row !== undefined) await connection.query(`DELETE FROM ${FENCE_TABLE} WHERE job_id = ?`, [fence.key]);
      await connection.query('COMMIT');
    } catch (error) {
      await connection.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    // The write lock keeps other jobs from raising a fence between the count and the drop.
    await connection.query(`LOCK TABLES ${FENCE_TABLE} WRITE`);
    try {
      const [count] = await connection.query(`SELECT COUNT(*) AS n FROM ${FENCE_TABLE}`);
      if (Number((count as Row[])[0]?.n ?? 0) === 0) await connection.query(`DROP TABLE ${FENCE_TABLE}`);
    } finally {
      await connection.query('UNLOCK TABLES');
    }
    // The destination stands alone once no job keeps anything in `_ferry`.
    const [tables] = await connection.query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ferry'");
    if (Number((tables as Row[])[0]?.n ?? 0) === 0) await connection.query('DROP DATABASE IF EXISTS `_ferry`');
  } catch (error) {
    throw classifyMysqlError(error, context);
  } finally {
    await endQuietly(connection);
  }
}
