/**
 * Failpoints, for tests only: named places in the pipeline where a test makes `ferry serve`
 * kill itself (SIGKILL of its own process) or stop there for good, so that a crash lands at an
 * exact dangerous moment (between a destination COMMIT and the acknowledgement to the source,
 * after a table's copy and before its state is stored, ...). The technique of etcd (gofail)
 * and TiDB (failpoint).
 *
 * Enabled only by the environment variable FERRY_FAILPOINTS, read once at start:
 *   FERRY_FAILPOINTS=after-destination-commit=kill@3,after-table-copy=pause
 * `kill` kills on the first hit, `kill@N` on the Nth, `pause` (or `pause@N`) waits forever.
 * Without the variable `failpoint()` returns at once. Never set it in production.
 */
import { writeSync } from 'node:fs';

/** Every failpoint the pipeline has (the variable may name only these). */
export const FAILPOINTS = [
  'before-destination-commit',
  'after-destination-commit',
  'after-table-copy',
  'after-range-copy',
  'in-create-replication',
  'between-post-data-steps',
  'promote-after-catch-up',
  'during-restart-wipe',
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

interface Armed {
  action: 'kill' | 'pause';
  at: number;
  hits: number;
}

/** Parses FERRY_FAILPOINTS; throws on anything it does not understand, naming the valid forms. */
export function parseFailpoints(text: string | undefined): Map<string, Armed> {
  const armed = new Map<string, Armed>();
  for (const item of (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const match = /^([a-z-]+)=(kill|pause)(?:@([1-9]\d*))?$/.exec(item);
    if (match === null || !(FAILPOINTS as readonly string[]).includes(match[1] as string)) {
      throw new Error(`FERRY_FAILPOINTS: cannot read "${item}"; write name=kill, name=kill@N or name=pause[@N], with name one of ${FAILPOINTS.join(', ')} (failpoints are for tests only).`);
    }
    armed.set(match[1] as string, { action: match[2] as 'kill' | 'pause', at: Number(match[3] ?? 1), hits: 0 });
  }
  return armed;
}

const armed = parseFailpoints(process.env.FERRY_FAILPOINTS);

/** Kills or pauses the process when the failpoint `name` is armed and reaches its hit; otherwise returns at once. */
export function failpoint(name: FailpointName): Promise<void> | undefined {
  if (armed.size === 0) return undefined;
  const point = armed.get(name);
  if (point === undefined) return undefined;
  point.hits++;
  if (point.hits !== point.at) return undefined;
  // Written synchronously: the process may die on the next line.
  writeSync(2, `${JSON.stringify({ level: 50, time: Date.now(), failpoint: name, action: point.action, hit: point.hits, msg: `failpoint ${name} fired: ${point.action}` })}\n`);
  if (point.action === 'kill') process.kill(process.pid, 'SIGKILL');
  return new Promise<void>(() => undefined);
}
