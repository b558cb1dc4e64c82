/** Connection profiles: a named, reusable way to reach one database. */

export const ENGINE_KINDS = ['postgresql', 'mysql'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];

export const TLS_MODES = ['none', 'required', 'server-only', 'server-client'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const CONNECTIVITY_METHODS = ['direct', 'ssh-tunnel'] as const;
export type ConnectivityMethod = (typeof CONNECTIVITY_METHODS)[number];

export interface TlsSettings {
  mode: TlsMode;
  /** PEM of the CA that signed the server certificate (server-only, server-client). */
  caCertificate?: string;
  /** PEM of the client certificate and key (server-client). The key is a secret. */
  clientCertificate?: string;
  clientKey?: string;
}

/**
 * How to reach the database through an SSH server (connectivityMethod "ssh-tunnel"): Ferry
 * logs in with the private key (a secret, stored encrypted) and forwards each database
 * connection from there to the profile's host and port.
 */
export interface SshTunnelSettings {
  host: string;
  port: number;
  username: string;
  /**
   * The SSH server's host key as OpenSSH prints it (`SHA256:...`). When null, the first key
   * seen is accepted and recorded; a different key later is refused.
   */
  hostKeyFingerprint: string | null;
}

/** A profile as the API shows it: never the password or the client key. */
export interface ConnectionProfile {
  id: string;
  displayName: string;
  engine: EngineKind;
  host: string;
  port: number;
  /** The database to connect to (PostgreSQL); for MySQL the schema set is chosen by the job. */
  database: string | null;
  username: string;
  passwordSet: boolean;
  tls: { mode: TlsMode; caCertificateSet: boolean; clientCertificateSet: boolean };
  connectivityMethod: ConnectivityMethod;
  /** Set when connectivityMethod is "ssh-tunnel"; never the private key. */
  sshTunnel: (SshTunnelSettings & { privateKeySet: boolean }) | null;
  labels: Record<string, string>;
  createTime: string;
  updateTime: string;
}

/** What an engine needs to connect: the profile with its secrets, decrypted. Never leaves the process. */
export interface ConnectionParams {
  engine: EngineKind;
  host: string;
  port: number;
  database: string | null;
  username: string;
  password: string | null;
  tls: TlsSettings;
  /**
   * Set when the database is reached through a local forwarding port (an SSH tunnel):
   * drivers open their sockets here, while `host` and `port` stay the database's own, for
   * TLS host name checks and messages.
   */
  route?: ConnectionRoute;
}

/** A local address that forwards to the database, and what it goes through. */
export interface ConnectionRoute {
  host: string;
  port: number;
  /** For messages: "SSH tunnel ferry@bastion:22". */
  via: string;
}

export const DEFAULT_PORTS: { [E in EngineKind]: number } = { postgresql: 5432, mysql: 3306 };

/** "postgres://user@host:port/db" for messages and logs: no password. */
export function describeEndpoint(params: Pick<ConnectionParams, 'engine' | 'host' | 'port' | 'database' | 'username'>): string {
  const scheme = params.engine === 'postgresql' ? 'postgresql' : 'mysql';
  return `${scheme}://${params.username}@${params.host}:${params.port}/${params.database ?? ''}`;
}

/** "SSH tunnel ferry@bastion:22", for messages. */
export function describeSshTunnel(ssh: Pick<SshTunnelSettings, 'host' | 'port' | 'username'>): string {
  return `SSH tunnel ${ssh.username}@${ssh.host}:${ssh.port}`;
}
