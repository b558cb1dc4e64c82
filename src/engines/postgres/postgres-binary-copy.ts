/**
 * When two PostgreSQL servers can move a table in the binary COPY format: both read the
 * copied columns' types from their own catalog, and the binary form is used only when the two
 * lists are equal, the servers are of the same major version, the databases have the same
 * encoding (binary COPY converts no text), and every type is a built-in
 * base type (or an array of one) with binary I/O whose binary value does not hold an object
 * id of the server (the reg* alias types). Anything else (user-defined, extension, enum,
 * composite, domain, range types) is copied as text: when in doubt, text.
 */
import type pg from 'pg';
import type { BinaryForm } from '../engine.js';
import type { ColumnSchema, QualifiedName } from '../../core/schema.js';
import { pgBool, quoteQualified } from './postgres-connection.js';

/** One row per column: its type as the server prints it and whether its binary form travels. */
const COLUMN_TYPES_SQL = `
  SELECT a.attname AS name,
         pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
         (ok(t) AND (t.typelem = 0 OR t.typlen <> -1 OR ok(e))) AS portable
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
   WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`;

const PORTABLE_TYPE = (alias: string) =>
  `(${alias}.typtype = 'b' AND ${alias}.typnamespace = 'pg_catalog'::regnamespace AND ${alias}.typsend <> 0 AND ${alias}.typreceive <> 0 AND ${alias}.typname NOT LIKE 'reg%' AND ${alias}.typname NOT LIKE '\\_reg%')`;

function columnTypesSql(): string {
  return COLUMN_TYPES_SQL.replace('ok(t)', PORTABLE_TYPE('t')).replace('ok(e)', PORTABLE_TYPE('e'));
}

/** The server's major version (15 for 15.4) and the database's encoding. */
async function serverFacts(client: pg.Client): Promise<{ serverMajor: number; encoding: string }> {
  const result = await client.query("SELECT current_setting('server_version_num') AS version, pg_catalog.pg_encoding_to_char(d.encoding) AS encoding FROM pg_catalog.pg_database d WHERE d.datname = current_database()");
  const row = result.rows[0] as { version: unknown; encoding: unknown };
  return { serverMajor: Math.floor(Number(row.version) / 10000), encoding: String(row.encoding) };
}

/** The binary form of `columns` of the table as this server stores them, or null when one of them has none that travels. */
export async function readBinaryForm(client: pg.Client, table: QualifiedName, columns: ColumnSchema[]): Promise<BinaryForm | null> {
  if (columns.length === 0) return null;
  const result = await client.query(columnTypesSql(), [quoteQualified(table)]);
  const byName = new Map((result.rows as Array<{ name: string; type: string; portable: unknown }>).map((r) => [r.name, r]));
  const described: BinaryForm['columns'] = [];
  for (const column of columns) {
    const row = byName.get(column.name);
    if (row === undefined || !pgBool(row.portable)) return null;
    described.push({ name: column.name, type: row.type });
  }
  return { engine: 'postgresql', ...(await serverFacts(client)), columns: described };
}

/** True when a destination's form equals the source's: same engine, major version, encoding, and columns with the same types in the same order. */
export function sameBinaryForm(source: BinaryForm, destination: BinaryForm): boolean {
  return source.engine === destination.engine
    && source.serverMajor === destination.serverMajor
    && source.encoding === destination.encoding
    && source.columns.length === destination.columns.length
    && source.columns.every((c, i) => c.name === destination.columns[i]?.name && c.type === destination.columns[i]?.type);
}
