/**
 * The item worker of a node (a shared store): claims work items of any job's full dump
 * (published by the job's owner, full-dump.ts copyAsWorkItems), imports the owner's exported
 * snapshot, copies the item through the destination's table writer and finishes it in the store.
 *
 * Why an item commits once: its destination load marks the item's marker in the load's own
 * transaction (LoadOptions.workItem), so of two copies (a claim that expired while its node was
 * paused, and the node that claimed it again) one commits and the other rolls back; a copy of
 * an earlier attempt finds its marker gone. A claim lives `claimMs` past its last renewal
 * (every claimMs / 3): a node that dies mid-item loses it then, and another node copies it
 * again (the dead node's transaction died with its connection, or committed and left the
 * marker done, which the next copy records as DONE).
 */
import type { ConnectionParams } from '../core/connection-profile.js';
import { FerryError, toJobError } from '../core/errors.js';
import type { MigrationJob } from '../core/migration-job.js';
import { qualifiedName } from '../core/schema.js';
import type { EngineRegistry } from '../engines/engine-registry.js';
import type { TableReader, TableWriter } from '../engines/engine.js';
import type { ClaimedWorkItem, MetadataStore, WorkClaim } from '../store/metadata-store.js';
import type { Clock } from './clock.js';
import { copyWorkItem, type WorkItemSpec } from './full-dump.js';
import type { Logger } from './logger.js';
import { sleep } from './retry-policy.js';

/** How long a claim lasts past its last renewal, by default. */
export const DEFAULT_WORK_CLAIM_MS = 15_000;
/** How often an idle node looks for an item to claim. */
const IDLE_POLL_MS = 1_000;
/** Items one node copies at once, by default. */
const DEFAULT_MAX_ITEMS = 4;

export interface WorkItemWorkerDeps {
  store: MetadataStore;
  clock: Clock;
  logger: Logger;
  engines: EngineRegistry;
  resolveConnection(profileId: string): Promise<ConnectionParams>;
  /** This node's id (the claims' holder). */
  nodeId: string;
  claimMs?: number;
  maxItems?: number;
}

export class WorkItemWorker {
  readonly #deps: WorkItemWorkerDeps;
  readonly #claimMs: number;
  readonly #maxItems: number;
  readonly #running = new Set<Promise<void>>();
  readonly #controller = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(deps: WorkItemWorkerDeps) {
    this.#deps = deps;
    this.#claimMs = deps.claimMs ?? DEFAULT_WORK_CLAIM_MS;
    this.#maxItems = deps.maxItems ?? DEFAULT_MAX_ITEMS;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops claiming and abandons the items in flight (their loads roll back; their claims expire). */
  async close(): Promise<void> {
    this.#controller.abort(new FerryError('CANCELLED', 'This node is stopping; its work items go to other nodes once their claims expire.'));
    await this.#loop;
    await Promise.allSettled([...this.#running]);
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    while (!signal.aborted) {
      try {
        while (this.#running.size < this.#maxItems && !signal.aborted) {
          const item = await this.#deps.store.claimWorkItem(this.#deps.nodeId, this.#claimMs);
          if (item === null) break;
          const copy = this.#copy(item, signal).catch((error: unknown) =>
            this.#deps.logger.error({ jobId: item.jobId, itemId: item.itemId, err: String(error) }, 'work item copy crashed'),
          );
          this.#running.add(copy);
          void copy.finally(() => this.#running.delete(copy));
        }
      } catch (error) {
        this.#deps.logger.warn({ err: String(error) }, 'claiming a work item failed; trying again');
      }
      await sleep(IDLE_POLL_MS, signal).catch(() => undefined);
    }
  }

  /** Copies one claimed item and finishes it; never rejects for the item's own failure. */
  async #copy(item: ClaimedWorkItem, nodeSignal: AbortSignal): Promise<void> {
    const { store, logger, nodeId } = this.#deps;
    const log = logger.child({ jobId: item.jobId, itemId: item.itemId });
    const claim: WorkClaim = { jobId: item.jobId, itemId: item.itemId, claims: item.claims, rows: 0, bytes: 0 };
    const controller = new AbortController();
    const onNodeStop = () => controller.abort(nodeSignal.reason);
    nodeSignal.addEventListener('abort', onNodeStop, { once: true });
    const renewal = setInterval(() => {
      store.renewWorkClaims(nodeId, [claim], this.#claimMs).then(
        (held) => {
          if (held.length === 0) controller.abort(new FerryError('CANCELLED', `The claim of work item ${item.itemId} was lost (expired and claimed again, or its attempt was replaced).`));
        },
        (error: unknown) => log.warn({ err: String(error) }, 'renewing a work item claim failed'),
      );
    }, Math.max(100, Math.floor(this.#claimMs / 3)));
    let reader: TableReader | null = null;
    let writer: TableWriter | null = null;
    try {
      const job = await store.getJob(item.jobId);
      // A deleted job's items went with it.
      if (job === null) return;
      const spec = item.spec as WorkItemSpec;
      if (!isDumping(job)) {
        await this.#finish(claim, { state: 'FAILED', error: toJobError(new FerryError('CANCELLED', `Job ${job.id} is no longer in its full dump (${job.status}); its work item was dropped.`), this.#deps.clock.now()) }, log);
        return;
      }
      if (item.previousNodeId !== null) {
        await store.appendJobEvent({
          jobId: job.id, time: this.#deps.clock.now(), kind: 'info', actor: 'system',
          message: `Node ${nodeId} claimed work item ${item.itemId} (${qualifiedName(spec.table)}${spec.range === null ? '' : `, ${spec.range.label}`}) again: the claim of node ${item.previousNodeId} expired`,
          details: { code: 'WORK_ITEM_RECLAIMED', itemId: item.itemId, table: qualifiedName(spec.table), fromNode: item.previousNodeId, toNode: nodeId },
        });
      }
      const source = this.#deps.engines.get(job.sourceEngine);
      const destination = this.#deps.engines.get(job.destinationEngine);
      if (source.openSnapshotReader === undefined) throw new FerryError('INTERNAL', `A ${job.sourceEngine} source cannot share its snapshot with other nodes; its tables are not work items.`);
      const [sourceParams, destinationParams] = await Promise.all([
        this.#deps.resolveConnection(job.sourceProfileId),
        this.#deps.resolveConnection(job.destinationProfileId),
      ]);
      reader = await source.openSnapshotReader(sourceParams, item.snapshot);
      writer = await destination.openTableWriter(destinationParams);
      log.info({ table: qualifiedName(spec.table), range: spec.range?.label ?? null }, 'copying a work item');
      const result = await copyWorkItem({ source, destination }, job, item.itemId, spec, reader, writer, controller.signal, (rows, bytes) => {
        claim.rows = rows;
        claim.bytes = bytes;
      });
      // Committed on the destination, not yet DONE in the store: a crash here leaves the claim to
      // expire, and the next copy finds the marker done.
      claim.rows = result.rows;
      claim.bytes = result.bytes;
      for (const warning of reader.takeWarnings?.() ?? []) {
        await store.appendJobEvent({ jobId: job.id, time: this.#deps.clock.now(), kind: 'info', actor: 'system', message: `Warning: ${warning}`, details: { code: 'VALUE_CHANGED', table: qualifiedName(spec.table) } });
      }
      await this.#finish(claim, { state: 'DONE' }, log);
    } catch (error) {
      const classified = error instanceof FerryError ? error : new FerryError('INTERNAL', `Copying work item ${item.itemId} failed: ${String(error)}`, { cause: error });
      if (classified.details.alreadyCommitted === true) {
        // Another copy of this item committed (its node died before recording it): the rows are there.
        log.info({}, 'work item already committed by another copy');
        await this.#finish(claim, { state: 'DONE' }, log);
      } else if (controller.signal.aborted) {
        // This node stops or lost the claim: another node takes the item.
        log.info({ reason: String(controller.signal.reason) }, 'work item abandoned');
      } else {
        log.warn({ code: classified.code, err: classified.message }, 'work item failed');
        await this.#finish(claim, { state: 'FAILED', error: toJobError(classified, this.#deps.clock.now()) }, log);
      }
    } finally {
      clearInterval(renewal);
      nodeSignal.removeEventListener('abort', onNodeStop);
      await Promise.allSettled([reader?.close(), writer?.close()]);
    }
  }

  async #finish(claim: WorkClaim, outcome: { state: 'DONE' } | { state: 'FAILED'; error: unknown }, log: Logger): Promise<void> {
    const finished = await this.#deps.store.finishWorkItem(claim, this.#deps.nodeId, outcome).catch((error: unknown) => {
      log.warn({ err: String(error) }, 'recording the end of a work item failed; its claim expires and another node copies it again');
      return true;
    });
    if (!finished) log.info({ state: outcome.state }, 'work item claim lost before it was recorded; another node owns it now');
  }
}

function isDumping(job: MigrationJob): boolean {
  return (job.status === 'RUNNING' || job.status === 'RUNNING_WITH_ERRORS') && (job.phase === 'FULL_DUMP' || job.phase === null);
}
