/**
 * Each `ferry serve` is a node of its metadata store: it records itself when it starts,
 * renews its heartbeat every few seconds and records its stop. `GET /v1/nodes` reads them back
 * with a state derived from the heartbeat's age (a node that died shows as LOST) and its drain.
 */
import type { Clock } from '../pipeline/clock.js';
import type { Logger } from '../pipeline/logger.js';
import type { MetadataStore, StoredNode } from '../store/metadata-store.js';

/** How often a node renews its heartbeat. */
export const NODE_HEARTBEAT_MS = 5_000;
export { NODE_STATES, nodeState, type NodeState } from '../pipeline/job-leases.js';

export interface NodeHeartbeat {
  /** Records the clean stop (stopTime) and ends the heartbeats. */
  stop(): Promise<void>;
}

/** Records the node now, then renews its heartbeat every `intervalMs` until stop(). */
export async function startNodeHeartbeat(deps: {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  node: Pick<StoredNode, 'id' | 'address' | 'version' | 'maxJobs'>;
  intervalMs?: number;
}): Promise<NodeHeartbeat> {
  const startTime = deps.clock.now();
  const record = (stopTime: string | null) =>
    deps.store.putNode({ ...deps.node, startTime, heartbeatTime: stopTime ?? deps.clock.now(), stopTime });
  await record(null);
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = record(null).catch((error: unknown) => {
      deps.logger.warn({ err: error, nodeId: deps.node.id }, 'could not renew this node\'s heartbeat in the metadata store; other nodes may see it as lost');
    });
  }, deps.intervalMs ?? NODE_HEARTBEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await beating;
      await record(deps.clock.now());
    },
  };
}
