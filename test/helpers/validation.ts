/**
 * Running data validations in the end-to-end tests: `ferry jobs validate ID --output json`
 * through the CLI (which waits for the result), and the four seeded differences every engine
 * pair must find with their keys.
 */
import { expect } from 'vitest';
import { parseJsonOutput, runCli } from './ferry-server.js';

// The shapes the API answers with (src/core/validation.ts).
import type { RowDifference, TableValidation } from '../../src/core/validation.js';
export type { RowDifference, TableValidation };

export interface Validation {
  id: string;
  status: string;
  clean: boolean | null;
  recheckedInFlight: boolean;
  summary: { tables: number; tablesEqual: number; tablesDifferent: number; tablesFailed: number; rowsCompared: number };
  tables: TableValidation[];
  error: { code: string; message: string } | null;
}

/** Runs `ferry jobs validate` to its end (bounded by `timeoutMs`); returns the exit code and the validation. */
export async function validateWithCli(serverUrl: string, jobId: string, timeoutMs = 180_000): Promise<{ code: number | null; validation: Validation }> {
  const args = ['jobs', 'validate', jobId, '--timeout', String(Math.floor(timeoutMs / 1000)), '--output', 'json'];
  const result = await runCli(args, { server: serverUrl, timeoutMs: timeoutMs + 10_000 });
  return { code: result.code, validation: parseJsonOutput<Validation>(result, args) };
}

/** The table's entry, by source name "schema.table". */
export function tableOf(validation: Validation, table: string): TableValidation {
  const found = validation.tables.find((t) => t.table === table);
  if (found === undefined) throw new Error(`validation ${validation.id} has no table ${table}: ${validation.tables.map((t) => t.table).join(', ')}`);
  return found;
}

/**
 * A clean validation: every table EQUAL with the same row count and checksum on both sides,
 * except (during an incremental load) a table whose first pass saw changes in flight, which says
 * so in its message: its rows matched when read again.
 */
export function expectClean(validation: Validation, code: number | null): void {
  const summary = JSON.stringify(validation.tables.filter((t) => t.state !== 'EQUAL'), null, 1);
  expect(validation.status, summary).toBe('SUCCEEDED');
  expect(validation.clean, summary).toBe(true);
  expect(code).toBe(0);
  for (const t of validation.tables) {
    expect(t.state, `${t.table}: ${t.message}`).toBe('EQUAL');
    if (validation.recheckedInFlight && t.message !== null) {
      expect(t.message).toMatch(/in flight/);
      continue;
    }
    expect(t.sourceRows, t.table).toBe(t.destinationRows);
    expect(t.sourceChecksum, t.table).toBe(t.destinationChecksum);
  }
}

/**
 * The seeded differences of the `vt` table, keyed by `id`: `changedId` has another `name` on the
 * destination, `missingId` is deleted there, `extraId` is only there, `nulledId`'s NULL `note`
 * became ''. Each is reported once, with its key and both sides' values.
 */
export function expectSeededDifferences(table: TableValidation, ids: { changedId: number; missingId: number; extraId: number; nulledId: number }): void {
  expect(table.state).toBe('DIFFERENT');
  expect(table.sourceChecksum).not.toBe(table.destinationChecksum);
  expect(table.destinationRows).toBe(table.sourceRows);
  const byId = new Map(table.differences.map((d) => [d.key?.id ?? null, d]));
  expect(table.differences).toHaveLength(4);
  const changed = byId.get(String(ids.changedId));
  expect(changed?.kind).toBe('changed');
  expect(changed?.source?.name).toBe(`name ${ids.changedId}`);
  expect(changed?.destination?.name).toBe('changed on the destination');
  const missing = byId.get(String(ids.missingId));
  expect(missing?.kind).toBe('missing');
  expect(missing?.destination).toBeNull();
  expect(missing?.source?.name).toBe(`name ${ids.missingId}`);
  const extra = byId.get(String(ids.extraId));
  expect(extra?.kind).toBe('extra');
  expect(extra?.source).toBeNull();
  expect(extra?.destination?.name).toBe('only on the destination');
  const nulled = byId.get(String(ids.nulledId));
  expect(nulled?.kind).toBe('changed');
  expect(nulled?.source?.note).toBeNull();
  expect(nulled?.destination?.note).toBe('');
}
