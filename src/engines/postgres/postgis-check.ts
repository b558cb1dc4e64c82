/**
 * Verify's POSTGIS check for a MySQL/MariaDB source whose spatial columns become PostGIS
 * geometry: the destination database must have the postgis extension, or let the job create
 * it. The job creates it (with the mapped schema, as any extension the schema lists) when the
 * server has PostGIS's files and the destination role is a superuser (postgis is not a
 * trusted extension); otherwise verify names the columns and what to install or run.
 */
import type pg from 'pg';
import type { DatabaseSchema } from '../../core/schema.js';
import { parsePostgisType } from '../../core/spatial.js';
import type { VerifyCheck } from '../engine.js';
import { loadSql } from './load-sql.js';

type Row = Record<string, unknown>;

/** The `schema.table.column (type)` of every PostGIS column of a mapped schema. */
function spatialColumns(schema: DatabaseSchema): string[] {
  return schema.tables.flatMap((t) => t.columns.filter((c) => parsePostgisType(c.nativeType) !== null).map((c) => `${t.schema}.${t.name}.${c.name} (${c.nativeType})`));
}

/** The POSTGIS check, or null when the mapped schema has no spatial column. */
export async function postgisCheck(client: pg.Client, mapped: DatabaseSchema): Promise<VerifyCheck | null> {
  const columns = spatialColumns(mapped);
  if (columns.length === 0) return null;
  const side = 'destination';
  const row = ((await client.query(loadSql('postgis-state.sql'))).rows[0] ?? {}) as Row;
  const database = String(row.database);
  const objects = columns.map((c) => c.replace(/ \(.*\)$/, ''));
  const installed = row.installed_version === null || row.installed_version === undefined ? null : String(row.installed_version);
  if (installed !== null) {
    return { code: 'POSTGIS', side, severity: 'ok', message: `PostGIS ${installed} is installed in database ${database}: the spatial columns become geometry columns (${columns.join(', ')}).`, objects };
  }
  const available = row.available === true;
  const superuser = row.superuser === true;
  if (available && superuser) {
    return { code: 'POSTGIS', side, severity: 'ok', message: `PostGIS is not yet installed in database ${database}; the job creates it (CREATE EXTENSION postgis) for the spatial columns ${columns.join(', ')}.`, objects };
  }
  const create = `CREATE EXTENSION postgis; as a superuser in database ${database}`;
  const fix = available
    ? `the destination role is not a superuser, so it cannot create it: run ${create}`
    : `the server does not have PostGIS: install its package on the destination server (Debian: apt-get install postgresql-${String(row.major)}-postgis-3), then run ${create} (or let a superuser job create it)`;
  return {
    code: 'POSTGIS',
    side,
    severity: 'error',
    message: `These spatial columns need PostGIS on the destination, which database ${database} does not have: ${columns.join(', ')}. PostGIS is not installed there and ${fix}. Or exclude their tables from the job.`,
    objects,
  };
}
