/**
 * MySQL's ENUM error value '' on a MySQL/MariaDB destination. A non-strict sql_mode stores ''
 * (index 0) for a label the column does not have; a MySQL source may therefore hold it, and a
 * MySQL-to-MySQL copy must write it as it is, as native replication applies a row image. The
 * server stores it only with warning 1265 ("Data truncated for column ..."), an error under
 * the strict sql_mode Ferry writes with (so that any other value that does not fit fails).
 * So the loader and the applier count the error values they send, write them (the applier in
 * a non-strict session for that statement only), and accept exactly that many warnings 1265
 * on those columns; any other warning still refuses the write.
 */
import { FerryError } from '../../core/errors.js';
import type { MysqlConnection } from './mysql-connection.js';
import { mysqlText } from './mysql-connection.js';
import { enumHasEmptyLabel } from './mysql-snapshot-reader.js';

/** Ferry's writing sql_mode: strict, 0 kept in AUTO_INCREMENT columns (as mysqldump sets), invalid dates kept, literals read the same whatever the server's default. */
export const STRICT_WRITE_SQL_MODE = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION';
/** The same without strictness: for statements that write ENUM error values (counted and checked). */
export const LENIENT_WRITE_SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION';

/** Warning 1265: WARN_DATA_TRUNCATED. */
const DATA_TRUNCATED = 1265;
/** The most warnings a session keeps (max_error_count's largest value). */
export const MAX_ERROR_COUNT = 65535;

/** True for a destination enum column that has no label '' (so '' written into it is the error value). */
export function takesEnumErrorValue(dataType: string, columnType: string): boolean {
  return dataType === 'enum' && !enumHasEmptyLabel(columnType);
}

/**
 * Whether the `total` warnings of the statement just run are exactly the ENUM error values
 * written: warning 1265 on each column of `expected` as many times as it says. Resolves with
 * null when they are, else with the server's warnings (at most 5) to quote.
 */
export async function unexpectedWarnings(connection: MysqlConnection, total: number, expected: Map<string, number>): Promise<string[] | null> {
  const [rows] = await connection.query(`SHOW WARNINGS LIMIT ${MAX_ERROR_COUNT}`);
  const warnings = (rows as Array<Record<string, unknown>>).map((r) => ({ code: Number(r.Code), message: mysqlText(r.Message) ?? '' }));
  const seen = new Map<string, number>();
  const expectedTotal = [...expected.values()].reduce((a, b) => a + b, 0);
  // More warnings than the session keeps: the ones kept must be expected, and the count exact.
  const truncated = warnings.length < total;
  let explained = truncated ? total === expectedTotal : warnings.length === total;
  for (const warning of warnings) {
    const column = warning.code === DATA_TRUNCATED ? /^Data truncated for column '((?:[^']|'')*)'/.exec(warning.message)?.[1]?.replace(/''/g, "'") : undefined;
    if (column === undefined || !expected.has(column)) {
      explained = false;
      break;
    }
    seen.set(column, (seen.get(column) ?? 0) + 1);
  }
  if (explained && !truncated) {
    for (const [column, n] of expected) if ((seen.get(column) ?? 0) !== n) explained = false;
  }
  return explained ? null : warnings.filter((w) => !(w.code === DATA_TRUNCATED && expected.has(/'((?:[^']|'')*)'/.exec(w.message)?.[1] ?? ''))).concat(warnings).slice(0, 5).map((w) => w.message);
}

/** The refusal of a write whose warnings are not only the ENUM error values it wrote. */
export function warningsRefused(what: string, total: number, messages: string[]): FerryError {
  return new FerryError(
    'DATA_ERROR',
    `${what} would not keep every value exactly: the server reported ${total} warning${total === 1 ? '' : 's'} (${[...new Set(messages)].join('; ')}). Nothing of ${what.startsWith('Loading') ? 'this load' : 'it'} was kept. Fix the values on the source, change the destination column types, or exclude the table.`,
    { details: { warnings: total, messages: [...new Set(messages)] } },
  );
}
