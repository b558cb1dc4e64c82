/**
 * Verify's POSTGIS check for a MySQL/MariaDB source whose spatial columns become PostGIS
 * geometry: the destination database must have the postgis extension, or let the job create
 * it. The job creates it (with the mapped schema, as any extension the schema lists) when the
 * server has PostGIS's files and the destination role is a superuser (postgis is not a
 * trusted extension); otherwise verify names the columns and what to install or run. The
 * mapped columns name `public.geometry`: PostGIS installed in another schema is refused too.
 */
import type pg from 'pg';
import type { DatabaseSchema } from '../../core/schema.js';
import { parsePostgisType, POSTGIS_SCHEMA } from '../../core/spatial.js';
import type { VerifyCheck } from '../engine.js';
import { loadSql } from './load-sql.js';
import { pgBool, pgText } from './postgres-connection.js';

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
  const database = pgText(row.database) ?? '';
  const objects = columns.map((c) => c.replace(/ \(.*\)$/, ''));
  const installed = pgText(row.installed_version);
  const home = pgText(row.installed_schema);
  if (installed !== null && home !== POSTGIS_SCHEMA) {
    return {
      code: 'POSTGIS',
      side,
      severity: 'error',
      message: `PostGIS is installed in schema ${home ?? '?'} of database ${database}, but Ferry creates the spatial columns (${columns.join(', ')}) with ${POSTGIS_SCHEMA}.geometry types. Use a destination database where PostGIS is in schema ${POSTGIS_SCHEMA} (or has not been created yet), or exclude the tables.`,
      objects,
    };
  }
  if (installed !== null) {
    return { code: 'POSTGIS', side, severity: 'ok', message: `PostGIS ${installed} is installed in database ${database}: the spatial columns become geometry columns (${columns.join(', ')}).`, objects };
  }
  const available = pgBool(row.available);
  const superuser = pgBool(row.superuser);
  if (available && superuser) {
    return { code: 'POSTGIS', side, severity: 'ok', message: `PostGIS is not yet installed in database ${database}; the job creates it (CREATE EXTENSION postgis) for the spatial columns ${columns.join(', ')}.`, objects };
  }
  const create = `CREATE EXTENSION postgis; as a superuser in database ${database}`;
  const debianPackage = `postgresql-${pgText(row.major) ?? ''}-postgis-3`;
  const fix = available
    ? `the destination role is not a superuser, so it cannot create it: run ${create} (the server has PostGIS's files, Debian package ${debianPackage})`
    : `the server does not have PostGIS: install its package on the destination server (Debian: apt-get install ${debianPackage}), then run ${create} (or give the job a superuser profile, which creates it)`;
  return {
    code: 'POSTGIS',
    side,
    severity: 'error',
    message: `These spatial columns need PostGIS on the destination, which database ${database} does not have: ${columns.join(', ')}. PostGIS is not installed there and ${fix}. Or exclude their tables from the job.`,
    objects,
  };
}
