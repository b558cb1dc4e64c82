/**
 * Several `ferry serve` processes on one PostgreSQL metadata store, for the multi-node
 * end-to-end tests (issue 10): each node has its own data directory, port and `--node-id`, and
 * all share one secret key (FERRY_SECRET_KEY) so that any node reads the profiles' passwords.
 *
 * A node can be killed (SIGKILL), paused (SIGSTOP) and resumed (SIGCONT), and restarted on its
 * data directory, port and id; every signal goes to the node's PID. The output of every run of a
 * node is kept (`output`, `logLines`), so that a test can read what a node said before its kill.
 * `stop` ends every node still running (resuming a paused one first) and removes the data directories.
 */
import { randomBytes } from 'node:crypto';
import { encodeKey } from '../../src/service/secret-key-file.js';
import { api, makeDataDir, removeDataDir, spawnFerryServer, type ApiClient, type ExitInfo, type FerryServer } from './ferry-server.js';

export interface FerryClusterOptions {
  /** The store every node shares: postgresql://... */
  storeUrl: string;
  /** One port per node (the test's own range); the node count is their number. */
  ports: readonly number[];
  /** Node ids are `${idPrefix}${n}`, n from 1. Default "node-". */
  idPrefix?: string;
  /** `--lease-seconds`: left out when absent (the server's default). */
  leaseSeconds?: number;
  /** More environment for every node (FAST_RETRY_ENV, ...). */
  env?: Record<string, string>;
  /** More `ferry serve` options for every node. */
  args?: readonly string[];
  /** How long a node may take to answer /healthz (a loaded machine): default 120 s. */
  startTimeoutMs?: number;
}

/** A node as GET /v1/nodes shows it. */
export interface NodeView {
  id: string;
  address: string;
  state: string;
  heartbeatTime: string;
  jobs?: string[];
}

export class ClusterNode {
  /** The running process; null while the node is down (killed, not restarted yet). */
  server: FerryServer | null = null;
  /** True between `pause` and `resume`. */
  paused = false;
  /** The output of the node's earlier runs (before each kill or stop). */
  private readonly earlier: string[] = [];

  constructor(readonly id: string, readonly port: number, readonly dataDir: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Up: running and not paused. */
  get up(): boolean {
    return this.server !== null && !this.paused;
  }

  get pid(): number {
    if (this.server === null) throw new Error(`node ${this.id} is not running`);
    return this.server.pid;
  }

  api(): ApiClient {
    return api(this.url);
  }

  /** Everything this node wrote to stdout and stderr, over all its runs. */
  output(): string {
    return [...this.earlier, this.server?.output() ?? ''].join('');
  }

  /** The structured log lines of all its runs (pino: `time` in ms, `msg`, ...). */
  logLines(): Array<Record<string, unknown>> {
    const lines: Array<Record<string, unknown>> = [];
    for (const line of this.output().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
    return lines;
  }

  /** Records the output of the run that just ended. */
  retire(): void {
    if (this.server !== null) this.earlier.push(this.server.output());
    this.server = null;
    this.paused = false;
  }
}

export class FerryCluster {
  readonly nodes: ClusterNode[];
  private readonly env: Record<string, string>;
  private readonly args: string[];
  private readonly startTimeoutMs: number;

  private constructor(options: FerryClusterOptions) {
    const prefix = options.idPrefix ?? 'node-';
    this.nodes = options.ports.map((port, i) => new ClusterNode(`${prefix}${i + 1}`, port, makeDataDir(`ferry-${prefix}${i + 1}-`)));
    this.env = {
      ...options.env,
      FERRY_STORE_URL: options.storeUrl,
      // One key for every node: a profile created through one node is read by the others.
      FERRY_SECRET_KEY: encodeKey(randomBytes(32)),
    };
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000;
    this.args = [...(options.leaseSeconds === undefined ? [] : ['--lease-seconds', String(options.leaseSeconds)]), ...(options.args ?? [])];
  }

  /** Starts every node (one after the other: each migrates or checks the store) and waits for their /healthz. */
  static async start(options: FerryClusterOptions): Promise<FerryCluster> {
    const cluster = new FerryCluster(options);
    try {
      for (const node of cluster.nodes) await cluster.launch(node);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id} in the cluster (${this.nodes.map((n) => n.id).join(', ')})`);
    return node;
  }

  /** The API of an up node, other than `except`. */
  client(...except: string[]): ApiClient {
    const node = this.nodes.find((n) => n.up && !except.includes(n.id));
    if (node === undefined) throw new Error(`no node is up${except.length > 0 ? ` besides ${except.join(', ')}` : ''}`);
    return node.api();
  }

  /** SIGKILL to the node's PID; resolves once it exited. */
  async kill(id: string): Promise<ExitInfo> {
    const node = this.node(id);
    const server = node.server;
    if (server === null) throw new Error(`node ${id} is not running`);
    // A stopped process dies of SIGKILL too.
    const exit = await server.kill('SIGKILL');
    node.retire();
    return exit;
  }

  /** SIGSTOP to the node's PID: it keeps its sockets but runs no code (no renewal, no write) until `resume`. */
  pause(id: string): void {
    const node = this.node(id);
    process.kill(node.pid, 'SIGSTOP');
    node.paused = true;
  }

  /** SIGCONT to the node's PID. */
  resume(id: string): void {
    const node = this.node(id);
    process.kill(node.pid, 'SIGCONT');
    node.paused = false;
  }

  /** Starts a node that is down again, on its data directory, port and id. */
  async restart(id: string): Promise<ClusterNode> {
    const node = this.node(id);
    if (node.server !== null) throw new Error(`node ${id} is still running (pid ${node.server.pid})`);
    await this.launch(node);
    return node;
  }

  /** GET /v1/nodes through an up node. */
  async listNodes(...except: string[]): Promise<NodeView[]> {
    return (await this.client(...except).getOk<{ nodes: NodeView[] }>('/v1/nodes')).nodes;
  }

  /** The node holding the job's live lease (the job's `node`), asked of an up node; null when none. */
  async nodeOfJob(jobId: string, ...except: string[]): Promise<string | null> {
    const job = await this.client(...except).getOk<{ node?: string | null }>(`/v1/migrationJobs/${jobId}`);
    return job.node ?? null;
  }

  /** Ends every node still running (SIGCONT to a paused one, then SIGTERM, SIGKILL after `graceMs`) and removes the data directories. */
  async stop(graceMs = 5_000): Promise<void> {
    await Promise.allSettled(
      this.nodes.map(async (node) => {
        if (node.server === null) return;
        if (node.paused) {
          try {
            process.kill(node.server.pid, 'SIGCONT');
          } catch {
            // already gone
          }
        }
        await node.server.stop(graceMs);
        node.retire();
      }),
    );
    for (const node of this.nodes) removeDataDir(node.dataDir);
  }

  private async launch(node: ClusterNode): Promise<void> {
    node.server = await spawnFerryServer({
      dataDir: node.dataDir,
      port: node.port,
      env: { ...this.env, FERRY_NODE_ID: node.id },
      args: this.args,
      startTimeoutMs: this.startTimeoutMs,
    });
    node.paused = false;
  }
}
