/**
 * Verify's look at the source data of a MySQL/MariaDB job bound for another engine: one
 * bounded query per table (its first SAMPLE_ROWS rows) counts the values the destination
 * cannot hold as they are (docs/type-mapping.md, "Values one engine accepts and the other does
 * not"): MySQL's ENUM error value '', NUL characters in text, zero and invalid dates. Each
 * finding is a warning naming the table, the column and the policy that will apply.
 */
import type { ValuePolicies } from '../../core/value-policies.js';
import type { TableSchema } from '../../core/schema.js';
import type { VerifyCheck } from '../engine.js';
import type { MysqlConnection } from './mysql-connection.js';
import { quoteIdent, quoteQualified } from './mysql-connection.js';
import { NUL_CAPABLE_DATA_TYPES, enumHasEmptyLabel } from './mysql-snapshot-reader.js';

/** Rows read per table. */
export const SAMPLE_ROWS = 100_000;

type Finding = 'enum-error-value' | 'nul-character' | 'zero-date';

interface Probe {
  column: string;
  finding: Finding;
  /** A SQL condition true for an awkward value of the column (in the sample's derived table). */
  condition: string;
}

function dataTypeOf(nativeType: string): string {
  return (/^[a-z]+/i.exec(nativeType)?.[0] ?? nativeType).toLowerCase();
}

/** The probes of one table's columns (those whose values can be awkward for another engine). */
export function probesOf(table: TableSchema): Probe[] {
  const probes: Probe[] = [];
  for (const column of table.columns) {
    const c = quoteIdent(column.name);
    const type = dataTypeOf(column.nativeType);
    if (type === 'enum' && !enumHasEmptyLabel(column.nativeType)) {
      probes.push({ column: column.name, finding: 'enum-error-value', condition: `${c} + 0 = 0` });
    } else if (NUL_CAPABLE_DATA_TYPES.has(type)) {
      probes.push({ column: column.name, finding: 'nul-character', condition: `INSTR(CAST(${c} AS BINARY), X'00') > 0` });
    } else if (type === 'date' || type === 'datetime' || type === 'timestamp') {
      // Zero month or day, or a day past the month's end (kept under ALLOW_INVALID_DATES); year 0 alone is 1 BC, not invalid.
      const days = `CASE MONTH(${c}) WHEN 2 THEN IF(YEAR(${c}) % 4 = 0 AND (YEAR(${c}) % 100 <> 0 OR YEAR(${c}) % 400 = 0), 29, 28) WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END`;
      probes.push({ column: column.name, finding: 'zero-date', condition: `(MONTH(${c}) = 0 OR DAYOFMONTH(${c}) = 0 OR DAYOFMONTH(${c}) > ${days})` });
    }
  }
  return probes;
}

/** The query counting each probe's values among the table's first SAMPLE_ROWS rows. */
export function sampleSql(table: TableSchema, probes: Probe[]): string {
  const columns = [...new Set(probes.map((p) => quoteIdent(p.column)))].join(', ');
  const counts = probes.map((p, i) => `COALESCE(SUM(${p.condition}), 0) AS p${i}`).join(', ');
  return `SELECT ${counts} FROM (SELECT ${columns} FROM ${quoteQualified(table)} LIMIT ${SAMPLE_ROWS}) AS sample`;
}

function whatHappens(finding: Finding, policies: ValuePolicies): string {
  switch (finding) {
    case 'enum-error-value':
      return policies.enumErrorValue === 'label'
        ? `MySQL's ENUM error value '' (stored by a non-strict sql_mode for an invalid label): enumErrorValuePolicy "label" adds the label '' to the PostgreSQL enum type and keeps the values`
        : `MySQL's ENUM error value '' (stored by a non-strict sql_mode for an invalid label): enumErrorValuePolicy "null" writes NULL for them`;
    case 'nul-character':
      return policies.nulCharacter === 'refuse'
        ? 'NUL characters (\\0), which PostgreSQL text cannot hold: nulCharacterPolicy "refuse" will fail the job at the first one, naming the row. Remove them on the source, or create the job with nulCharacterPolicy "strip"'
        : 'NUL characters (\\0), which PostgreSQL text cannot hold: nulCharacterPolicy "strip" removes them';
    case 'zero-date':
      return policies.zeroDates === 'refuse'
        ? `zero or invalid dates ('0000-00-00', '2024-02-31'), which PostgreSQL cannot hold: zeroDatePolicy "refuse" will fail the job. Fix them on the source, or create the job with zeroDatePolicy "null"`
        : `zero or invalid dates ('0000-00-00', '2024-02-31'), which PostgreSQL cannot hold: zeroDatePolicy "null" writes NULL for them`;
  }
}

/**
 * The VALUE_POLICIES check of a job from MySQL to another engine: a warning per kind of value
 * found, naming each `db.table.column` with how many of the sampled rows hold one, and the policy.
 */
export async function sampleAwkwardValues(connection: MysqlConnection, tables: TableSchema[], policies: ValuePolicies): Promise<VerifyCheck[]> {
  const found = new Map<Finding, Array<{ column: string; count: number }>>();
  for (const table of tables) {
    const probes = probesOf(table);
    if (probes.length === 0) continue;
    const [rows] = await connection.query(sampleSql(table, probes));
    const row = (rows as Array<Record<string, unknown>>)[0] ?? {};
    probes.forEach((probe, i) => {
      const count = Number(row[`p${i}`] ?? 0);
      if (count > 0) found.set(probe.finding, [...(found.get(probe.finding) ?? []), { column: `${table.schema}.${table.name}.${probe.column}`, count }]);
    });
  }
  if (found.size === 0) {
    return [{ code: 'VALUE_POLICIES', side: 'source', severity: 'ok', message: `No sampled value (the first ${SAMPLE_ROWS} rows of each table) needs a value policy: no ENUM error value, NUL character or zero date.` }];
  }
  return [...found].map(([finding, columns]) => ({
    code: 'VALUE_POLICIES',
    side: 'source',
    severity: 'warning',
    message: `${columns.map((c) => `${c.column} (${c.count} of the first ${SAMPLE_ROWS} rows)`).join(', ')} ${columns.length === 1 ? 'holds' : 'hold'} ${whatHappens(finding, policies)}.`,
    objects: columns.map((c) => c.column),
  }));
}
