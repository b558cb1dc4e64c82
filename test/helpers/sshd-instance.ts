/**
 * A private OpenSSH server for one test file: Debian's /usr/sbin/sshd with its own config,
 * host key and authorized key, on a free loopback port, in the foreground (-D), stopped by
 * PID. `drop()` kills the listener and its session processes (children by PID) to cut every
 * tunnel; `start()` again brings it back on the same port with the same host key.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort } from './ferry-server.js';

const SSHD = '/usr/sbin/sshd';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SshdInstance {
  port: number;
  user: string;
  /** The private key file authorized for `user`. */
  privateKeyFile: string;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it (SHA256:...). */
  hostKeyFingerprint: string;
  start(): Promise<void>;
  /** Kills sshd and every session it forked (SIGKILL by PID): every tunnel through it breaks at once. */
  drop(): Promise<void>;
  stop(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return children;
}

function keygen(args: string[]): string {
  const result = spawnSync('ssh-keygen', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export async function startSshd(): Promise<SshdInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshd-'));
  const port = await freePort();
  const user = process.env.USER === undefined || process.getuid?.() === 0 ? 'root' : process.env.USER;
  keygen(['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  keygen(['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const hostKeyFingerprint = keygen(['-l', '-E', 'sha256', '-f', join(dir, 'host_key.pub')]).split(' ')[1] ?? '';
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  // sshd's privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const check = spawnSync(SSHD, ['-t', '-f', config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`sshd -t failed: ${check.stderr}`);

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    const proc = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child = proc;
    exited = new Promise<void>((r) => proc.on('exit', () => r()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
      const open = await new Promise<boolean>((r) => {
        const s = connect(port, '127.0.0.1');
        s.on('connect', () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      if (open) return;
      if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${stderr}`);
      await sleep(100);
    }
  };
  const drop = async () => {
    const proc = child;
    if (proc === null || proc.pid === undefined) return;
    const sessions = childrenOf(proc.pid);
    for (const pid of [proc.pid, ...sessions]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await exited;
    child = null;
  };
  await start();
  return {
    port,
    user,
    privateKeyFile: join(dir, 'client_key'),
    hostKeyFingerprint,
    start,
    drop,
    async stop() {
      await drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
