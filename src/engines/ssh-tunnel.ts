/**
 * SSH tunnels for profiles with connectivityMethod "ssh-tunnel", through the `ssh2` library.
 *
 * One tunnel per profile: an SSH session to the profile's SSH server and a listener on
 * 127.0.0.1:<ephemeral port>; every connection to the listener is forwarded (`forwardOut`,
 * like `ssh -L`) to the database's host and port as the SSH server sees them. Drivers of
 * both engines (pg, its replication client, COPY streams, mysql2, zongji) connect to the
 * listener through `ConnectionParams.route`, and still check TLS certificates against the
 * database's own host name.
 *
 * The listener outlives the SSH session: when the session drops (sshd restarted, network
 * gone), connections in flight end, and the next `open` logs in again, so the route a job
 * holds stays valid. The host key is checked against the profile's fingerprint; when the
 * profile has none, the first key seen is accepted and handed to `onHostKeyLearned`, and a
 * different key later is refused.
 *
 * The only place that reads ssh2's error fields.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { describeSshTunnel, type ConnectionRoute, type SshTunnelSettings } from '../core/connection-profile.js';
import { FerryError } from '../core/errors.js';

export const SSH_READY_TIMEOUT_MS = 10_000;
/** A dead SSH server is noticed after about three missed keepalives. */
const KEEPALIVE_INTERVAL_MS = 5_000;
const KEEPALIVE_COUNT_MAX = 3;

export interface SshTunnelRequest {
  /** Identifies the tunnel (a profile id): a request with other settings for the same key replaces it. */
  key: string;
  ssh: SshTunnelSettings;
  /** The private key, OpenSSH or PEM text, unencrypted. */
  privateKey: string;
  /** The database as the SSH server reaches it. */
  target: { host: string; port: number };
  /** Called once the session is up when `ssh.hostKeyFingerprint` is null, with the key that was accepted. */
  onHostKeyLearned?: (fingerprint: string) => Promise<void>;
}

/** What the service needs from tunnels; `main.ts` gives it an `SshTunnelManager`. */
export interface ConnectionTunnels {
  /**
   * The local route to the request's target, with the SSH session logged in (again, when it
   * had dropped). Rejects with SSH_TUNNEL_FAILED (retryable when the SSH server may come
   * back by itself; not for a refused key or a changed host key).
   */
  open(request: SshTunnelRequest): Promise<ConnectionRoute>;
  /** Closes the tunnel of `key`, if any (its profile was deleted, or a test is done). */
  release(key: string): Promise<void>;
  /** A problem with the private key's text, or null when ssh2 can read it. */
  checkPrivateKey(privateKey: string): string | null;
  /** Closes every tunnel. */
  close(): Promise<void>;
}

/** The host key fingerprint as OpenSSH prints it: "SHA256:" and unpadded base64. */
export function sshFingerprint(hostKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '')}`;
}

function signatureOf(request: SshTunnelRequest): string {
  const { host, port, username } = request.ssh;
  const keyHash = createHash('sha256').update(request.privateKey).digest('hex');
  return JSON.stringify([host, port, username, keyHash, request.target.host, request.target.port]);
}

export class SshTunnelManager implements ConnectionTunnels {
  readonly #tunnels = new Map<string, SshTunnel>();
  #closed = false;

  async open(request: SshTunnelRequest): Promise<ConnectionRoute> {
    if (this.#closed) throw new FerryError('CANCELLED', 'Ferry is shutting down; no new SSH tunnel is opened.');
    let tunnel = this.#tunnels.get(request.key);
    const expected = request.ssh.hostKeyFingerprint;
    if (tunnel !== undefined && (tunnel.signature !== signatureOf(request) || (expected !== null && expected !== tunnel.expectedFingerprint))) {
      this.#tunnels.delete(request.key);
      await tunnel.close();
      tunnel = undefined;
    }
    if (tunnel === undefined) {
      tunnel = new SshTunnel(request);
      this.#tunnels.set(request.key, tunnel);
    }
    return tunnel.route();
  }

  async release(key: string): Promise<void> {
    const tunnel = this.#tunnels.get(key);
    if (tunnel === undefined) return;
    this.#tunnels.delete(key);
    await tunnel.close();
  }

  checkPrivateKey(privateKey: string): string | null {
    const parsed = ssh2.utils.parseKey(privateKey);
    if (parsed instanceof Error) return parsed.message;
    if (Array.isArray(parsed)) return null;
    return parsed.isPrivateKey() ? null : 'it is a public key, not a private key';
  }

  async close(): Promise<void> {
    this.#closed = true;
    const tunnels = [...this.#tunnels.values()];
    this.#tunnels.clear();
    await Promise.all(tunnels.map((t) => t.close()));
  }
}

class SshTunnel {
  readonly signature: string;
  expectedFingerprint: string | null;
  readonly #request: SshTunnelRequest;
  readonly #description: string;
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;
  #listening: Promise<number> | null = null;
  #client: ssh2.Client | null = null;
  #connecting: Promise<ssh2.Client> | null = null;
  #closed = false;

  constructor(request: SshTunnelRequest) {
    this.#request = request;
    this.signature = signatureOf(request);
    this.expectedFingerprint = request.ssh.hostKeyFingerprint;
    this.#description = describeSshTunnel(request.ssh);
  }

  async route(): Promise<ConnectionRoute> {
    const port = await this.#listen();
    await this.#session();
    return { host: '127.0.0.1', port, via: this.#description };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#client?.end();
    this.#client = null;
    const server = this.#server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #listen(): Promise<number> {
    this.#listening ??= new Promise<number>((resolve, reject) => {
      const server = createServer((socket) => this.#forward(socket));
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(new FerryError('INTERNAL', 'The SSH tunnel listener has no TCP address.'));
          return;
        }
        resolve(address.port);
      });
      this.#server = server;
    });
    return this.#listening;
  }

  /** Forwards one local connection; a failure drops it, and the driver reports a lost connection. */
  #forward(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.#sockets.delete(socket));
    const { host, port } = this.#request.target;
    this.#session().then(
      (client) => {
        if (socket.destroyed) return;
        client.forwardOut('127.0.0.1', socket.remotePort ?? 0, host, port, (error: Error | undefined, channel: ClientChannel) => {
          if (error !== undefined || socket.destroyed) {
            socket.destroy();
            channel?.close();
            return;
          }
          channel.on('error', () => socket.destroy());
          channel.on('close', () => socket.destroy());
          socket.on('close', () => channel.close());
          socket.pipe(channel);
          channel.pipe(socket);
        });
      },
      () => socket.destroy(),
    );
  }

  /** The logged-in SSH session: the current one, or a new one when it dropped. */
  #session(): Promise<ssh2.Client> {
    if (this.#closed) return Promise.reject(new FerryError('CANCELLED', `${this.#description} is closed.`, { retryable: true }));
    if (this.#client !== null) return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  #connect(): Promise<ssh2.Client> {
    const { ssh } = this.#request;
    return new Promise<ssh2.Client>((resolve, reject) => {
      const client = new ssh2.Client();
      let seenFingerprint: string | null = null;
      let hostKeyChanged = false;
      let ready = false;
      client.on('ready', () => {
        ready = true;
        this.#client = client;
        const learned = this.expectedFingerprint === null ? seenFingerprint : null;
        if (learned !== null) this.expectedFingerprint = learned;
        if (learned !== null && this.#request.onHostKeyLearned !== undefined) {
          this.#request.onHostKeyLearned(learned).then(
            () => resolve(client),
            (error: unknown) => reject(error),
          );
          return;
        }
        resolve(client);
      });
      client.on('error', (error: Error & { level?: string; code?: string }) => {
        if (ready) return; // the 'close' that follows drops the session
        client.end();
        reject(this.#classify(error, hostKeyChanged ? seenFingerprint : null));
      });
      client.on('close', () => {
        if (this.#client === client) this.#client = null;
        if (!ready) reject(new FerryError('SSH_TUNNEL_FAILED', `${this.#description} closed before login. Ferry retries; check that sshd runs on ${ssh.host}:${ssh.port}.`, { retryable: true }));
      });
      try {
        client.connect({
          host: ssh.host,
          port: ssh.port,
          username: ssh.username,
          privateKey: this.#request.privateKey,
          readyTimeout: SSH_READY_TIMEOUT_MS,
          keepaliveInterval: KEEPALIVE_INTERVAL_MS,
          keepaliveCountMax: KEEPALIVE_COUNT_MAX,
          hostVerifier: (key: Buffer) => {
            seenFingerprint = sshFingerprint(key);
            hostKeyChanged = this.expectedFingerprint !== null && seenFingerprint !== this.expectedFingerprint;
            return !hostKeyChanged;
          },
        });
      } catch (error) {
        reject(this.#classify(error as Error, null));
      }
    });
  }

  #classify(error: Error & { level?: string; code?: string }, changedFingerprint: string | null): FerryError {
    const { ssh } = this.#request;
    const where = this.#description;
    const details = { sshHost: ssh.host, sshPort: ssh.port, sshUser: ssh.username, errno: error.code, level: error.level };
    if (changedFingerprint !== null) {
      return new FerryError(
        'SSH_TUNNEL_FAILED',
        `The host key of ${ssh.host}:${ssh.port} changed: expected ${this.expectedFingerprint}, the server offered ${changedFingerprint}. This may be an attack; if the server's key was really replaced, set sshTunnel.hostKeyFingerprint in the profile to the new one (ssh-keygen -lf on the server's host key).`,
        { retryable: false, recoverable: true, details: { ...details, expectedFingerprint: this.expectedFingerprint, offeredFingerprint: changedFingerprint }, cause: error },
      );
    }
    if (error.level === 'client-authentication') {
      return new FerryError(
        'SSH_TUNNEL_FAILED',
        `${where}: the SSH server refused the private key for user "${ssh.username}". Add the key's public half to ~${ssh.username}/.ssh/authorized_keys on ${ssh.host}, or correct the SSH user and private key in the profile.`,
        { retryable: false, recoverable: true, details, cause: error },
      );
    }
    if (/parse privateKey|Unsupported key format|encrypted private key/i.test(error.message)) {
      return new FerryError('SSH_TUNNEL_FAILED', `${where}: the private key cannot be used (${error.message}). Give an unencrypted OpenSSH or PEM private key.`, { retryable: false, recoverable: true, details, cause: error });
    }
    if (error.code === 'ENOTFOUND' || error.code === 'EAI_NONAME') {
      return new FerryError('SSH_TUNNEL_FAILED', `${where}: cannot resolve the SSH host name "${ssh.host}". Check sshTunnel.host in the profile.`, { retryable: false, recoverable: true, details, cause: error });
    }
    const why =
      error.code === 'ECONNREFUSED'
        ? 'connection refused (is sshd running and listening there?)'
        : /Timed out/i.test(error.message) || error.code === 'ETIMEDOUT'
          ? 'timed out (check the host, port and firewalls)'
          : error.message;
    return new FerryError('SSH_TUNNEL_FAILED', `Could not open ${where}: ${why}. Ferry retries; check that the SSH server is up and allows TCP forwarding (AllowTcpForwarding yes).`, {
      retryable: true,
      details,
      cause: error,
    });
  }
}
