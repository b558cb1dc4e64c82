/**
 * `<data-dir>/ferry.pid`: the process id of the `ferry serve` working on the data directory,
 * written once it listens and removed when it stops. Commands that must not run beside a
 * server (key rotation, setting a password without the API) check it. A file left by a
 * killed server names a process that is gone and is ignored.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PID_FILE_NAME = 'ferry.pid';

export function writeServerPidFile(dataDir: string, pid: number = process.pid): void {
  writeFileSync(join(dataDir, PID_FILE_NAME), `${pid}\n`, { mode: 0o600 });
}

/** Removes the file if it still names `pid` (a newer server may have written its own). */
export function removeServerPidFile(dataDir: string, pid: number = process.pid): void {
  if (readPid(dataDir) === pid) rmSync(join(dataDir, PID_FILE_NAME), { force: true });
}

/** The pid of a live server on the data directory, or null. */
export function runningServerPid(dataDir: string): number | null {
  const pid = readPid(dataDir);
  if (pid === null || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

function readPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, PID_FILE_NAME), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
