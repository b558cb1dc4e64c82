/**
 * The PostgreSQL client programs a PostgreSQL-to-PostgreSQL job uses for its schema:
 * `pg_dump` (schema only, from the job's snapshot) and `pg_restore` (to split the archive
 * into phases). `pg_dump` refuses servers of a newer major version than its own, so the
 * newest installed client is chosen and a source newer than it is refused at verify with the
 * package to install.
 *
 * Where they are looked for, first match wins: `FERRY_PG_BIN_DIR` (a directory holding both),
 * then Debian's `/usr/lib/postgresql/<major>/bin` (newest major first), then `PATH`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FerryError } from '../../core/errors.js';

export interface PgDumpTools {
  pgDump: string;
  pgRestore: string;
  /** Major version of the client programs, e.g. 15. */
  major: number;
  /** e.g. "pg_dump (PostgreSQL) 15.20". */
  versionText: string;
}

const DEBIAN_LIB = '/usr/lib/postgresql';

function candidateDirectories(): string[] {
  const directories: string[] = [];
  const configured = process.env.FERRY_PG_BIN_DIR;
  if (configured !== undefined && configured !== '') directories.push(configured);
  if (existsSync(DEBIAN_LIB)) {
    const majors = readdirSync(DEBIAN_LIB).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
    for (const major of majors) directories.push(join(DEBIAN_LIB, major, 'bin'));
  }
  for (const entry of (process.env.PATH ?? '').split(delimiter)) if (entry !== '') directories.push(entry);
  return directories;
}

/** `--version` answers read ahead by primePgDumpTools, by program path. */
const primedVersions = new Map<string, string | null>();

function parseVersion(output: string | null): { major: number; text: string } | null {
  if (output === null) return null;
  const text = output.trim();
  const match = /(\d+)(?:\.(\d+))?/.exec(text.replace(/^[^)]*\)/, ''));
  return match === null ? null : { major: Number(match[1]), text };
}

function versionOf(program: string): { major: number; text: string } | null {
  const primed = primedVersions.get(program);
  if (primed !== undefined) return parseVersion(primed);
  try {
    return parseVersion(execFileSync(program, ['--version'], { encoding: 'utf8', timeout: 10_000 }));
  } catch {
    return null;
  }
}

/**
 * Runs every candidate's `--version` without blocking the process, then fills the cache of
 * findPgDumpTools, so that the first job's start (verify, pg_dump) does not wait for the
 * lookup. `ferry serve` calls it once at start; findPgDumpTools works without it.
 */
export async function primePgDumpTools(): Promise<void> {
  const run = promisify(execFile);
  await Promise.all(candidateDirectories().map(async (directory) => {
    const pgDump = join(directory, 'pg_dump');
    if (!existsSync(pgDump) || !existsSync(join(directory, 'pg_restore'))) return;
    const output = await run(pgDump, ['--version'], { encoding: 'utf8', timeout: 10_000 }).then((r) => r.stdout, () => null);
    primedVersions.set(pgDump, output);
  }));
  findPgDumpTools();
}

let cached: PgDumpTools | null | undefined;

/** The newest pg_dump/pg_restore pair on this machine, or null when there is none. Cached. */
export function findPgDumpTools(): PgDumpTools | null {
  if (cached !== undefined) return cached;
  let best: PgDumpTools | null = null;
  for (const directory of candidateDirectories()) {
    const pgDump = join(directory, 'pg_dump');
    const pgRestore = join(directory, 'pg_restore');
    if (!existsSync(pgDump) || !existsSync(pgRestore)) continue;
    const version = versionOf(pgDump);
    if (version === null) continue;
    if (best === null || version.major > best.major) best = { pgDump, pgRestore, major: version.major, versionText: version.text };
    // FERRY_PG_BIN_DIR is the user's choice: take it as it is.
    if (directory === process.env.FERRY_PG_BIN_DIR) break;
  }
  cached = best;
  return best;
}

/** Forgets the cached choice (tests that change FERRY_PG_BIN_DIR). */
export function resetPgDumpToolsCache(): void {
  cached = undefined;
  primedVersions.clear();
}

/**
 * The tools for a source whose `server_version_num` is given, or a FerryError
 * (PG_DUMP_UNAVAILABLE) that names the Debian package to install.
 */
export function pgDumpToolsFor(serverVersionNum: number): PgDumpTools {
  const serverMajor = Math.floor(serverVersionNum / 10_000);
  const tools = findPgDumpTools();
  if (tools === null) {
    throw new FerryError(
      'PG_DUMP_UNAVAILABLE',
      `pg_dump and pg_restore were not found on the machine running Ferry; a PostgreSQL-to-PostgreSQL job copies the schema with them. Install postgresql-client-${serverMajor} (or newer), or set FERRY_PG_BIN_DIR to the directory that holds them.`,
      { details: { serverMajor } },
    );
  }
  if (tools.major < serverMajor) {
    throw new FerryError(
      'PG_DUMP_UNAVAILABLE',
      `The source runs PostgreSQL ${serverMajor}, newer than the newest pg_dump on the machine running Ferry (${tools.versionText}, at ${tools.pgDump}); pg_dump refuses servers newer than itself. Install postgresql-client-${serverMajor} (or newer) there, or set FERRY_PG_BIN_DIR to a directory with pg_dump ${serverMajor} or newer.`,
      { details: { serverMajor, clientMajor: tools.major, pgDump: tools.pgDump } },
    );
  }
  return tools;
}
