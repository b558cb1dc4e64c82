/**
 * Three `ferry serve` nodes on one PostgreSQL metadata store (issue 10), end to end, under a
 * concurrent workload on three continuous PostgreSQL jobs:
 * - the jobs spread over the nodes, each held by exactly one node (GET /v1/migrationJobs/ID
 *   `node`, GET /v1/nodes `jobs`);
 * - three times, a node that runs a job and was not killed before is killed (SIGKILL, by PID):
 *   another node holds its jobs within a bounded time and their incremental load goes on
 *   (rows written by the workload reach the destination); the killed node is restarted;
 * - the node running job A is stopped (SIGSTOP) for longer than its lease: another node takes
 *   the job over (not before the lease could have expired), raises the destination fence, and
 *   goes on; the stopped node, continued (SIGCONT), finds it lost the lease and writes nothing:
 *   the destination's fence keeps the new owner's epoch, the destination position only moves
 *   forward, no history event is its, and its log says it lost the lease;
 * - the workload stops, every job is promoted (through a node that does not run it), and each
 *   destination equals its source (test/helpers/compare.ts) while the audit multiset and
 *   counter oracles (test/helpers/crash-oracles.ts) find no change lost or applied twice;
 *   the history of each job shows each takeover with the node it came from and the node it went to.
 *
 * Servers start once for the file (ports 19500-19502, lease 6 s); every wait is bounded. Each
 * node's output goes to ferry-three-nodes-<node>.log in the temporary directory.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { OracleWriter, auditRowCount, oracleSchemaSql, postgresWriter, type OracleSize } from '../helpers/crash-oracles.js';
import type { CrossSide } from '../helpers/compare-cross.js';
import { eventsOf, sleep, type JobView } from '../helpers/e2e-jobs.js';
import { FerryCluster, type ClusterNode } from '../helpers/ferry-cluster.js';
import { FAST_RETRY_ENV, waitFor } from '../helpers/ferry-server.js';
import { PG_DEST_PORT, PG_HOST, PG_SOURCE_PORT, PG_USER, createDatabasePair, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { Workload, createWorkloadSchema, seededRandom } from '../helpers/workload.js';

/**
 * Short, for a short test; long enough that a loaded shared machine (other test files, load
 * average far above its cores) does not make nodes lose leases they still run.
 * FERRY_THREE_NODES_LEASE_SECONDS changes it.
 */
const LEASE_SECONDS = Number(process.env.FERRY_THREE_NODES_LEASE_SECONDS ?? 6);
const PORTS = [19500, 19501, 19502];
/**
 * A lease not renewed expires L s after its last renewal (renewals every L/3), and another node
 * looks for expired leases every L/3: a takeover within about 5/3 L of a kill. The wait allows a
 * loaded machine well more than that; the measured times are printed.
 */
const TAKEOVER_TIMEOUT_MS = 3 * LEASE_SECONDS * 1_000 + 10_000;
const PROGRESS_TIMEOUT_MS = 60_000;
const ORACLE: OracleSize = { counters: 20, auditRows: 200 };
const SEED = 20261202;
/** Job A has the whole workload (tables with and without keys, TOAST, key changes, TRUNCATE) besides its oracle; B and C only the oracles. */
const JOBS = ['n3-a', 'n3-b', 'n3-c'] as const;
type JobId = (typeof JOBS)[number];
const JOB_A: JobId = 'n3-a';
/** What a node that finds it lost a lease (or a stale transaction refused by the fence) writes to its log. */
const LOST_LEASE = /lost (the|its) lease|lease (was |is )?lost|LEASE_LOST/i;

interface ClusterJobView extends JobView {
  node?: string | null;
}

interface HistoryEvent {
  id: number;
  time: string;
  kind: string;
  message: string;
  status?: string;
  details?: Record<string, unknown>;
}

interface Pair {
  job: JobId;
  source: TestDatabase;
  destination: TestDatabase;
  oracle: OracleWriter | null;
  drop(): Promise<void>;
}

interface Takeover {
  job: JobId;
  from: string;
  to: string;
  how: 'SIGKILL' | 'SIGSTOP';
  afterMs: number;
}

/** A PostgreSQL log sequence number ("16/B374D848") as a number, to compare positions. */
function lsn(position: string): bigint {
  const match = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(position.trim());
  if (match === null) throw new Error(`"${position}" is not a PostgreSQL LSN`);
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`);
}

const oracleSide = (database: TestDatabase): CrossSide => ({ engine: 'postgresql', client: database.client, schema: 'oracle' });

describe('three ferry serve nodes on one PostgreSQL store: kill -9, SIGSTOP, takeover, fencing', () => {
  let store: TestDatabase;
  let cluster: FerryCluster | null = null;
  const pairs = new Map<JobId, Pair>();
  let workload: Workload | null = null;
  const takeovers: Takeover[] = [];
  const timings: string[] = [];
  const fileStarted = Date.now();

  const pairOf = (job: JobId) => pairs.get(job)!;
  const live = () => {
    if (cluster === null) throw new Error('the cluster did not start');
    return cluster;
  };
  const measure = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await work();
    timings.push(`${what} ${((Date.now() - started) / 1_000).toFixed(1)} s`);
    return result;
  };

  /** Who holds each job, asked of an up node other than `except`. */
  const holders = async (...except: string[]): Promise<Map<JobId, string | null>> => {
    const held = new Map<JobId, string | null>();
    for (const job of JOBS) held.set(job, await live().nodeOfJob(job, ...except));
    return held;
  };
  /** The job as the node that runs it shows it (replication numbers live there). */
  const jobViaOwner = async (job: JobId): Promise<ClusterJobView> => {
    const owner = await live().nodeOfJob(job);
    const node = owner === null ? null : live().node(owner);
    return (node !== null && node.up ? node.api() : live().client()).getOk<ClusterJobView>(`/v1/migrationJobs/${job}`);
  };
  const auditRowsOnDestination = (job: JobId) => auditRowCount(oracleSide(pairOf(job).destination));
  /** Rows the oracle writer commits after now reach the destination: the job's incremental load goes on. */
  const waitForProgress = async (job: JobId, what: string): Promise<void> => {
    const before = await auditRowsOnDestination(job);
    await waitFor(`${job}: new audit rows on the destination ${what}`, async () => ((await auditRowsOnDestination(job)) > before ? true : undefined), {
      timeoutMs: PROGRESS_TIMEOUT_MS,
      intervalMs: 250,
    });
    const view = await jobViaOwner(job);
    expect(view.status, `${job} ${what}: ${JSON.stringify(view)}`).toBe('RUNNING');
    expect(view.error).toBeNull();
  };
  /** The job's position on its destination (`_ferry.replication_position`, one job per destination database). */
  const destinationPosition = async (job: JobId): Promise<bigint> => {
    const { rows } = await pairOf(job).destination.client.query<{ position: string }>('SELECT position FROM _ferry.replication_position');
    if (rows.length !== 1) throw new Error(`${job}: ${rows.length} rows in _ferry.replication_position, expected 1`);
    return lsn(rows[0]!.position);
  };
  /** The job's fence row on its destination (`_ferry.job_fence`), null before the first raise. */
  const fenceOf = async (job: JobId): Promise<{ epoch: number; nodeId: string } | null> => {
    const present = await pairOf(job).destination.client.query<{ present: boolean }>(`SELECT to_regclass('_ferry.job_fence') IS NOT NULL AS present`);
    if (!present.rows[0]!.present) return null;
    const { rows } = await pairOf(job).destination.client.query<{ epoch: string; node_id: string }>('SELECT epoch::text AS epoch, node_id FROM _ferry.job_fence');
    if (rows.length > 1) throw new Error(`${job}: ${rows.length} rows in _ferry.job_fence, expected 1: ${JSON.stringify(rows)}`);
    return rows[0] === undefined ? null : { epoch: Number(rows[0].epoch), nodeId: rows[0].node_id };
  };
  /** What the sessions on the job's destination do (for a wait that timed out). */
  const destinationActivity = async (job: JobId): Promise<string> => {
    const { rows } = await pairOf(job).destination.client.query(
      `SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start AS in_transaction, pg_blocking_pids(pid) AS blocked_by, left(query, 160) AS query
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid`,
    );
    return rows.map((r) => JSON.stringify(r)).join('\n');
  };
  /** Runs `work`; when it throws, adds what the job's destination sessions do to the error. */
  const explained = async <T>(job: JobId, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${job}'s destination sessions:\n${await destinationActivity(job)}`);
    }
  };
  /** Waits until every job has a node (a lease lost by a stall of the machine is taken again); returns who holds each. */
  const settledHolders = async (): Promise<Map<JobId, string>> =>
    waitFor('every job held by a node', async () => {
      const held = await holders();
      return [...held.values()].every((node) => node !== null) ? (held as Map<JobId, string>) : undefined;
    }, { timeoutMs: TAKEOVER_TIMEOUT_MS, intervalMs: 250 });
  /** Waits until an up node other than `from` holds `job`; returns it. */
  const waitForNewHolder = async (job: JobId, from: string): Promise<string> =>
    waitFor(`a node other than ${from} to hold ${job}`, async () => {
      const holder = await live().nodeOfJob(job, from);
      return holder !== null && holder !== from ? holder : undefined;
    }, { timeoutMs: TAKEOVER_TIMEOUT_MS, intervalMs: 200 });

  beforeAll(async () => {
    store = await createTestDatabase(PG_SOURCE_PORT, 'ferry_nodes3_store');
    for (const [i, job] of JOBS.entries()) {
      const pair = await createDatabasePair(`ferry_nodes3_${'abc'[i]}`);
      pairs.set(job, { job, ...pair, oracle: null });
      if (job === JOB_A) await createWorkloadSchema(pair.source.client);
      await pair.source.client.query(`CREATE SCHEMA oracle; SET search_path = oracle; ${oracleSchemaSql('postgresql', ORACLE)}; RESET search_path`);
    }
    const storeUrl = `postgresql://${PG_USER}@${PG_HOST}:${PG_SOURCE_PORT}/${store.params.database}`;
    cluster = await measure('3 nodes started', () => FerryCluster.start({ storeUrl, ports: PORTS, leaseSeconds: LEASE_SECONDS, env: FAST_RETRY_ENV }));
  }, 120_000);

  afterAll(async () => {
    await workload?.stop().catch(() => undefined);
    for (const pair of pairs.values()) await pair.oracle?.stop().catch(() => undefined);
    await cluster?.stop();
    // Every node's output, over all its runs, for a failure's post-mortem.
    for (const node of cluster?.nodes ?? []) writeFileSync(join(tmpdir(), `ferry-three-nodes-${node.id}.log`), node.output());
    for (const pair of pairs.values()) await pair.drop().catch(() => undefined);
    await store?.drop().catch(() => undefined);
    console.log(`three-nodes: ${((Date.now() - fileStarted) / 1_000).toFixed(0)} s in all; ${timings.join('; ')}; takeovers: ${takeovers.map((t) => `${t.job} ${t.from}->${t.to} (${t.how}, ${t.afterMs} ms)`).join(', ')}; nodes' output in ${join(tmpdir(), 'ferry-three-nodes-*.log')}`);
  }, 120_000);

  it('runs three continuous jobs under a workload, each on exactly one node, spread over the nodes', async () => {
    const client = live().nodes[0]!.api();
    for (const [job, pair] of pairs) {
      for (const [side, port, database] of [['src', PG_SOURCE_PORT, pair.source], ['dst', PG_DEST_PORT, pair.destination]] as const) {
        await client.postOk('/v1/connectionProfiles', {
          id: `${job}-${side}`, displayName: `${job} ${side}`, engine: 'postgresql', host: PG_HOST, port, database: database.params.database, username: PG_USER,
        });
      }
      await client.postOk('/v1/migrationJobs', {
        id: job, displayName: `three nodes ${job}`, type: 'continuous', sourceProfileId: `${job}-src`, destinationProfileId: `${job}-dst`, dumpParallelism: 2,
      });
    }
    workload = await new Workload({ connection: pairOf(JOB_A).source.params, workers: 2, seed: SEED % 100_000, pauseMs: 10, truncateEvery: 80 }).start();
    for (const [i, pair] of [...pairs.values()].entries()) {
      pair.oracle = new OracleWriter(await postgresWriter(pair.source.params, 'oracle'), seededRandom(SEED + i), ORACLE, 10);
      pair.oracle.start();
    }
    // Started through different nodes: any node takes an action on any job.
    for (const [i, job] of JOBS.entries()) await live().nodes[i]!.api().postOk(`/v1/migrationJobs/${job}:start`);

    await measure('3 jobs in incremental load', async () => {
      for (const job of JOBS) {
        await waitFor(`${job} in incremental load on some node`, async () => {
          const view = await jobViaOwner(job);
          if (view.status === 'FAILED') throw new Error(`${job} failed: ${JSON.stringify(view.error)}`);
          return view.node !== null && view.node !== undefined && view.substatus === 'Incremental load' ? view : undefined;
        }, { timeoutMs: 120_000, intervalMs: 250 });
        await waitForProgress(job, 'once in incremental load');
      }
    });

    const held = await settledHolders();
    const listed = await live().listNodes();
    for (const job of JOBS) {
      const owners = listed.filter((n) => (n.jobs ?? []).includes(job)).map((n) => n.id);
      expect(owners, `${job}: the nodes that list it (GET /v1/nodes) against its node ${held.get(job)}`).toEqual([held.get(job)]);
    }
    // Least loaded first: three jobs on three nodes end one on each (a node at one job only takes
    // another when none is at zero), unless a node lost a lease on the way (a stall of the machine
    // longer than the lease), after which the jobs went wherever they could.
    const loads = live().nodes.map((n) => [...held.values()].filter((h) => h === n.id).length);
    const early = live().nodes.flatMap((n) => n.logLines().filter((l) => LOST_LEASE.test(String(l.msg))).map((l) => `${n.id}: ${String(l.jobId)} ${String(l.reason ?? l.msg)}`));
    if (early.length === 0) expect(Math.max(...loads) - Math.min(...loads), `jobs per node: ${JSON.stringify(Object.fromEntries(held))}`).toBeLessThanOrEqual(1);
    else console.log(`three-nodes: balance not checked, leases lost before any kill: ${early.join('; ')}`);
  }, 240_000);

  it('kill -9 of a node running a job, three times on three different nodes: another node takes its jobs over and goes on', async () => {
    const killed: string[] = [];
    for (let round = 1; round <= 3; round++) {
      const held = await settledHolders();
      // A node not killed yet that runs a job, the one running job A when it qualifies.
      const candidates = live().nodes.filter((n) => !killed.includes(n.id) && [...held.values()].includes(n.id));
      const victim: ClusterNode | undefined = candidates.find((n) => n.id === held.get(JOB_A)) ?? candidates[0];
      if (victim === undefined) {
        throw new Error(`round ${round}: no job runs on a node not killed yet (killed: ${killed.join(', ')}; holders: ${JSON.stringify(Object.fromEntries(held))}): taken-over jobs did not go to the least loaded nodes`);
      }
      const jobs = JOBS.filter((job) => held.get(job) === victim.id);
      const exit = await live().kill(victim.id);
      expect(exit.signal).toBe('SIGKILL');
      const killedAt = Date.now();
      for (const job of jobs) {
        const to = await waitForNewHolder(job, victim.id);
        takeovers.push({ job, from: victim.id, to, how: 'SIGKILL', afterMs: Date.now() - killedAt });
      }
      for (const job of jobs) await waitForProgress(job, `after the kill of ${victim.id} (round ${round})`);
      timings.push(`kill ${round} (${victim.id}: ${jobs.join(', ')}) to progress ${((Date.now() - killedAt) / 1_000).toFixed(1)} s`);
      await live().restart(victim.id);
      killed.push(victim.id);
      await waitFor(`${victim.id} UP again`, async () => ((await live().listNodes()).find((n) => n.id === victim.id)?.state === 'UP' ? true : undefined), { timeoutMs: 20_000 });
    }
    expect(new Set(killed).size).toBe(3);
    // Every job is still held, and moves on.
    await settledHolders();
    for (const job of JOBS) await waitForProgress(job, 'after the three kills');
  }, 300_000);

  it('SIGSTOP of the node running job A for longer than its lease: another node takes over; the stopped node, continued, writes nothing', async () => {
    const held = await settledHolders();
    const stale = held.get(JOB_A)!;
    const jobs = JOBS.filter((job) => held.get(job) === stale);
    const fenceBefore = new Map<JobId, number>();
    for (const job of jobs) {
      const fence = await fenceOf(job);
      expect(fence, `${job}: the fence on its destination before the pause`).not.toBeNull();
      expect(fence!.nodeId).toBe(stale);
      fenceBefore.set(job, fence!.epoch);
    }
    const lastEventBefore = new Map<JobId, number>();
    for (const job of jobs) lastEventBefore.set(job, Math.max(0, ...((await eventsOf(live().client(), job)) as unknown as HistoryEvent[]).map((e) => e.id)));

    live().pause(stale);
    const pausedAt = Date.now();
    const newOwner = new Map<JobId, string>();
    try {
      for (const job of jobs) {
        const to = await waitForNewHolder(job, stale);
        const afterMs = Date.now() - pausedAt;
        takeovers.push({ job, from: stale, to, how: 'SIGSTOP', afterMs });
        newOwner.set(job, to);
        // The lease was renewed at most L/3 before the pause: nobody may take it before it expires.
        expect(afterMs, `${job} taken from ${stale} ${afterMs} ms after its pause`).toBeGreaterThanOrEqual((LEASE_SECONDS * 2_000) / 3 - 250);
      }
      for (const job of jobs) {
        // The new owner raised the destination fence to its epoch before reading where to resume.
        const raised = await explained(job, () => waitFor(`${job}: the destination fence raised by ${newOwner.get(job)}`, async () => {
          const fence = await fenceOf(job);
          return fence !== null && fence.nodeId === newOwner.get(job) ? fence : undefined;
        }, { timeoutMs: 20_000, intervalMs: 200 }));
        expect(raised.epoch).toBeGreaterThan(fenceBefore.get(job)!);
        await explained(job, () => waitForProgress(job, `under ${newOwner.get(job)} while ${stale} is stopped`));
      }
      // Stopped for longer than its lease, whatever the waits above took.
      await sleep(Math.max(0, LEASE_SECONDS * 1_000 + 1_000 - (Date.now() - pausedAt)));
    } finally {
      live().resume(stale);
    }
    const resumedAt = Date.now();
    timings.push(`SIGSTOP ${((resumedAt - pausedAt) / 1_000).toFixed(1)} s`);

    // For a lease and more after SIGCONT: the fence never goes back to the stale node or an older
    // epoch, the position only moves forward, the job does not go back to the stale node.
    const fenceAfter = new Map<JobId, { epoch: number; nodeId: string }>();
    const lastPosition = new Map<JobId, bigint>();
    for (const job of jobs) {
      fenceAfter.set(job, (await fenceOf(job))!);
      lastPosition.set(job, await destinationPosition(job));
    }
    while (Date.now() - resumedAt < (LEASE_SECONDS + 3) * 1_000) {
      for (const job of jobs) {
        const position = await destinationPosition(job);
        expect(position >= lastPosition.get(job)!, `${job}: the destination position went back from ${lastPosition.get(job)} to ${position} after SIGCONT of ${stale}`).toBe(true);
        lastPosition.set(job, position);
        const fence = await fenceOf(job);
        expect(fence?.nodeId, `${job}: the destination fence after SIGCONT of ${stale}`).not.toBe(stale);
        expect(fence?.epoch ?? 0, `${job}: the destination fence's epoch after SIGCONT of ${stale}`).toBeGreaterThanOrEqual(fenceAfter.get(job)!.epoch);
      }
      await sleep(200);
    }
    for (const job of jobs) {
      expect(await live().nodeOfJob(job), `${job} after SIGCONT of ${stale}`).not.toBe(stale);
      await waitForProgress(job, `after SIGCONT of ${stale}`);
    }

    // Its log says it lost the lease.
    const staleNode = live().node(stale);
    await waitFor(`${stale}'s log saying it lost the lease`, async () => (staleNode.logLines().some((l) => Number(l.time) >= pausedAt && LOST_LEASE.test(JSON.stringify(l))) ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 250,
    }).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${stale}'s log since the pause:\n${staleNode.logLines().filter((l) => Number(l.time) >= pausedAt).map((l) => JSON.stringify(l)).join('\n')}`);
    });
    // It runs none of them now, and it is a node like the others again.
    const listed = await live().listNodes();
    const staleView = listed.find((n) => n.id === stale);
    expect(staleView?.state).toBe('UP');
    for (const job of jobs) expect(staleView?.jobs ?? [], `${stale}'s jobs after SIGCONT`).not.toContain(job);

    // The store: nothing in the history from the stale node after the takeover, no error.
    for (const job of jobs) {
      const events = ((await eventsOf(live().client(), job)) as unknown as HistoryEvent[]).filter((e) => e.id > lastEventBefore.get(job)!);
      const strays = events.filter((e) => e.details?.['node'] === stale || e.status === 'FAILED' || e.status === 'RUNNING_WITH_ERRORS' || LOST_LEASE.test(JSON.stringify(e)));
      expect(strays, `${job}: history events after the takeover from ${stale}`).toEqual([]);
      const view = await jobViaOwner(job);
      expect(view.status).toBe('RUNNING');
      expect(view.error).toBeNull();
    }
  }, 180_000);

  it('after promote each destination equals its source, no change is lost or applied twice, and the history shows every takeover', async () => {
    const stats = await workload!.stop();
    workload = null;
    expect(stats.errors, stats.errors.join('\n')).toEqual([]);
    for (const pair of pairs.values()) {
      await pair.oracle!.stop();
      expect(pair.oracle!.errors, pair.oracle!.errors.join('\n')).toEqual([]);
      expect(pair.oracle!.committed).toBeGreaterThan(100);
    }

    await measure('promote of 3 jobs', async () => {
      for (const job of JOBS) {
        // Through a node that does not run the job: the action reaches its owner through the store.
        const owner = await live().nodeOfJob(job);
        await live().client(...(owner === null ? [] : [owner])).postOk(`/v1/migrationJobs/${job}:promote`);
      }
      for (const job of JOBS) {
        await waitFor(`${job} COMPLETED`, async () => {
          const view = await live().client().getOk<ClusterJobView>(`/v1/migrationJobs/${job}`);
          if (view.status === 'FAILED') throw new Error(`${job} failed: ${JSON.stringify(view.error)}`);
          return view.status === 'COMPLETED' ? view : undefined;
        }, { timeoutMs: 180_000, intervalMs: 250 });
      }
    });

    await measure('comparison of 3 pairs', async () => {
      for (const pair of pairs.values()) {
        const differences = await compareDatabases(pair.source.client, pair.destination.client);
        expect(differences, `${pair.job}: ${formatDifferences(differences)}`).toEqual([]);
        expect(await pair.oracle!.differences(oracleSide(pair.source), oracleSide(pair.destination)), `${pair.job}: oracles`).toEqual([]);
        const slots = await pair.source.client.query('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()');
        expect(slots.rows, `${pair.job}: slots left on the source`).toEqual([]);
      }
    });

    // Each takeover the test saw is in the job's history with the node it came from and the one it went to.
    for (const job of JOBS) {
      const events = (await eventsOf(live().client(), job)) as unknown as HistoryEvent[];
      const recorded = events.filter((e) => e.details?.['fromNode'] !== undefined || e.details?.['toNode'] !== undefined).map((e) => `${String(e.details!['fromNode'])}->${String(e.details!['toNode'])}`);
      for (const seen of takeovers.filter((t) => t.job === job)) {
        expect(recorded, `${job}: the takeover ${seen.from}->${seen.to} (${seen.how}) in its history`).toContain(`${seen.from}->${seen.to}`);
      }
      expect(events.filter((e) => e.status === 'FAILED'), `${job}: FAILED in its history`).toEqual([]);
    }
    expect(takeovers.filter((t) => t.how === 'SIGKILL').map((t) => t.from).filter((v, i, all) => all.indexOf(v) === i)).toHaveLength(3);
  }, 300_000);
});
