/**
 * How a change applier says which destination table a failed statement was about
 * (ChangeApplier.apply): `details.destinationTable`. Shared by every engine's applier.
 */
import { FerryError } from '../core/errors.js';
import type { QualifiedName } from '../core/schema.js';

/** The error with `details.destinationTable` set to `table` (kept when an inner call already named one). */
export function namingTable(error: FerryError, table: QualifiedName): FerryError {
  if (destinationTableOf(error) !== null) return error;
  return new FerryError(error.code, error.message, {
    retryable: error.retryable,
    recoverable: error.recoverable,
    details: { ...error.details, destinationTable: { schema: table.schema, name: table.name } },
    cause: error.cause ?? error,
  });
}

/** The destination table a failed apply names, or null. */
export function destinationTableOf(error: FerryError): QualifiedName | null {
  const table = error.details.destinationTable as { schema?: unknown; name?: unknown } | undefined;
  if (table === undefined || typeof table.schema !== 'string' || typeof table.name !== 'string') return null;
  return { schema: table.schema, name: table.name };
}

/** Runs one table's statement; a failure comes back classified and naming the table. */
export async function aboutTable<T>(table: QualifiedName, classify: (error: unknown) => FerryError, statement: () => Promise<T>): Promise<T> {
  try {
    return await statement();
  } catch (error) {
    throw namingTable(classify(error), table);
  }
}
