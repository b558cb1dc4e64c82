/**
 * The schema oracle of the whole-database tests: `pg_dump --schema-only --no-owner` of a
 * database (Debian's pg_dump 15, independent of Ferry's code), normalized so that two databases
 * with the same objects give the same lines:
 * - SQL comment lines (`-- Name: ...; Type: ...`, the header with the versions) are dropped,
 *   `COMMENT ON ...` statements are kept (comments on objects are objects);
 * - session settings (`SET ...`, `SELECT pg_catalog.set_config(...)`) are dropped;
 * - psql's `\restrict KEY` / `\unrestrict KEY` lines (a random key per dump) are dropped;
 * - blank lines are dropped.
 * Everything else (object definitions, their order, ACLs, ownership of sequences, triggers'
 * enabled state, ...) is compared line by line.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ConnectionParams } from '../../src/core/connection-profile.js';

const run = promisify(execFile);

/** Debian's pg_dump 15 (the clusters' version); FERRY_TEST_PG_DUMP overrides it. */
export function pgDumpPath(): string {
  const explicit = process.env.FERRY_TEST_PG_DUMP;
  if (explicit !== undefined && explicit !== '') return explicit;
  const debian = '/usr/lib/postgresql/15/bin/pg_dump';
  if (existsSync(debian)) return debian;
  throw new Error(`pg_dump 15 not found at ${debian}: install the postgresql-client-15 package (scripts/setup-test-env.sh does) or set FERRY_TEST_PG_DUMP`);
}

/** pg_dump's arguments for a connection (trust authentication, no password). */
function connectionArgs(params: ConnectionParams): string[] {
  if (params.database === null) throw new Error('schemaDump needs a PostgreSQL connection with a database');
  return ['--host', params.host, '--port', String(params.port), '--username', params.username, '--dbname', params.database];
}

/** Keeps the lines that describe objects (see the file comment). */
export function normalizeSchemaDump(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\s+$/, ''))
    .filter(
      (line) =>
        line !== '' &&
        !line.startsWith('--') &&
        !/^SET\s/.test(line) &&
        !line.startsWith('SELECT pg_catalog.set_config(') &&
        !line.startsWith('\\restrict') &&
        !line.startsWith('\\unrestrict'),
    );
}

/** `pg_dump --schema-only --no-owner` of the database, normalized. */
export async function schemaDump(params: ConnectionParams, extraArgs: string[] = []): Promise<string[]> {
  const { stdout } = await run(pgDumpPath(), ['--schema-only', '--no-owner', ...extraArgs, ...connectionArgs(params)], {
    maxBuffer: 256 * 1024 * 1024,
    timeout: 120_000,
    env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
  });
  return normalizeSchemaDump(stdout);
}

export interface SchemaDiff {
  equal: boolean;
  /** 0-based index of the first line that differs (in both normalized dumps), or -1. */
  firstDifference: number;
  /** Lines that are in the source's dump more often than in the destination's (order ignored). */
  onlyInSource: string[];
  /** Lines that are in the destination's dump more often than in the source's (order ignored). */
  onlyInDestination: string[];
  /** A readable report: the first differing lines with a little context, then the lines of either side only. */
  report: string;
}

function multisetMinus(a: string[], b: string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of b) counts.set(line, (counts.get(line) ?? 0) + 1);
  const out: string[] = [];
  for (const line of a) {
    const n = counts.get(line) ?? 0;
    if (n > 0) counts.set(line, n - 1);
    else out.push(line);
  }
  return out;
}

/** Compares two normalized dumps; `maxLines` bounds each list of the report. */
export function diffSchemaDumps(source: string[], destination: string[], maxLines = 40): SchemaDiff {
  let first = -1;
  const n = Math.max(source.length, destination.length);
  for (let i = 0; i < n; i++) {
    if (source[i] !== destination[i]) {
      first = i;
      break;
    }
  }
  const onlyInSource = multisetMinus(source, destination);
  const onlyInDestination = multisetMinus(destination, source);
  if (first === -1) return { equal: true, firstDifference: -1, onlyInSource, onlyInDestination, report: 'the normalized schema dumps are equal' };
  const context = (lines: string[]) =>
    lines
      .slice(Math.max(0, first - 3), first + 4)
      .map((l, k) => `${Math.max(0, first - 3) + k === first ? '>' : ' '} ${l}`)
      .join('\n');
  const reordered = onlyInSource.length === 0 && onlyInDestination.length === 0;
  const list = (lines: string[]) =>
    lines.length === 0
      ? reordered ? '  (none: both dumps hold the same lines in another order)' : '  (none)'
      : lines.slice(0, maxLines).map((l) => `  ${l}`).join('\n') + (lines.length > maxLines ? `\n  ... ${lines.length - maxLines} more` : '');
  const report = [
    `the normalized schema dumps differ from line ${first + 1} on (source ${source.length} lines, destination ${destination.length} lines)`,
    `source line ${first + 1}:      ${source[first] ?? '<end of dump>'}`,
    `destination line ${first + 1}: ${destination[first] ?? '<end of dump>'}`,
    'source around it:',
    context(source),
    'destination around it:',
    context(destination),
    `lines only in the source's dump (${onlyInSource.length}):`,
    list(onlyInSource),
    `lines only in the destination's dump (${onlyInDestination.length}):`,
    list(onlyInDestination),
  ].join('\n');
  return { equal: false, firstDifference: first, onlyInSource, onlyInDestination, report };
}

/** Dumps both databases and compares them. */
export async function compareSchemas(source: ConnectionParams, destination: ConnectionParams): Promise<SchemaDiff> {
  const [a, b] = await Promise.all([schemaDump(source), schemaDump(destination)]);
  return diffSchemaDumps(a, b);
}
