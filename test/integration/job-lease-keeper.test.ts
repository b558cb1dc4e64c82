/**
 * The JobLeaseKeeper (src/pipeline/job-leases.ts) of two nodes on one real PostgreSQL store
 * (a fresh database on 127.0.0.1:5433), with short leases: renewals keep a lease; a lease taken
 * over by another node is lost at the holder's next renewal; a holder whose renewals stop (a
 * paused process) stops trusting its lease by its own clock before the store lets another node
 * take it, and learns at its next tick that it lost it. A lost lease aborts the fence's `lost`
 * signal and calls onLost once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JobLeaseKeeper, type LeaseSettings } from '../../src/pipeline/job-leases.js';
import { silentLogger } from '../../src/pipeline/logger.js';
import { PostgresMetadataStore } from '../../src/store/postgres/postgres-metadata-store.js';
import { makeNewJob } from '../helpers/metadata-store-suite.js';
import { PG_DEST_PORT, PG_HOST, PG_USER, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const LEASE_MS = 900;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the first loss (the next renewal tick comes within L/3; a loaded machine may be slower). */
async function lossOf(lost: string[]): Promise<void> {
  for (let waited = 0; lost.length === 0 && waited < 5_000; waited += 50) await sleep(50);
  await sleep(LEASE_MS / 3 + 100);
}

describe('JobLeaseKeeper on a PostgreSQL store', () => {
  let database: TestDatabase;
  let store: PostgresMetadataStore;
  const keepers: JobLeaseKeeper[] = [];
  let jobNumber = 0;

  beforeAll(async () => {
    database = await createTestDatabase(PG_DEST_PORT, 'ferry_lease_keeper');
    store = await PostgresMetadataStore.open(`postgresql://${PG_USER}@${PG_HOST}:${PG_DEST_PORT}/${database.params.database}`);
    await store.migrate();
  });

  afterEach(async () => {
    for (const keeper of keepers.splice(0)) await keeper.stop();
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  function keeper(nodeId: string, lost: string[], leaseMs = LEASE_MS): JobLeaseKeeper {
    const settings: LeaseSettings = { nodeId, leaseMs, maxJobs: null, fenced: true, soleNode: false };
    const made = new JobLeaseKeeper(store, silentLogger, settings, (jobId) => lost.push(`${nodeId}:${jobId}`));
    keepers.push(made);
    return made;
  }

  async function newJob(): Promise<string> {
    jobNumber += 1;
    const id = `keeper-job-${jobNumber}`;
    await store.insertJob(makeNewJob({ id }));
    return id;
  }

  it('keeps a lease across many renewals; another node cannot take it meanwhile', async () => {
    const lost: string[] = [];
    // Longer leases here: a loaded machine may delay one renewal, not three in a row.
    const a = keeper('node-a', lost, 3_000);
    const b = keeper('node-b', lost, 3_000);
    await a.start();
    const job = await newJob();
    const lease = await a.acquire(job);
    expect(lease?.epoch).toBe(1);
    for (let i = 0; i < 6; i += 1) {
      await sleep(1_500);
      expect(lease!.valid()).toBe(true);
      expect(await b.acquire(job)).toBeNull();
    }
    expect(lost).toEqual([]);
    expect(lease!.lost.aborted).toBe(false);
  });

  it('a lease taken over by another node is lost at the next renewal: lost aborts, onLost once', async () => {
    const lost: string[] = [];
    const a = keeper('node-a', lost);
    const b = keeper('node-b', lost);
    await a.start();
    const job = await newJob();
    const lease = (await a.acquire(job))!;
    // As a delete on another node does: release the holder's lease, then take it.
    await store.releaseJobLease(job, 'node-a', lease.epoch);
    const taken = await b.acquire(job);
    expect(taken?.epoch).toBe(2);
    await lossOf(lost);
    expect(lost).toEqual([`node-a:${job}`]);
    expect(lease.lost.aborted).toBe(true);
    expect(lease.valid()).toBe(false);
    expect(a.lease(job)).toBeUndefined();
    expect(taken!.valid()).toBe(true);
  });

  it('a holder whose renewals stop distrusts its lease by its own clock before the store frees it, then learns it lost it', async () => {
    const lost: string[] = [];
    const a = keeper('node-a', lost);
    const b = keeper('node-b', lost);
    const job = await newJob();
    // Renewals never run (as in a paused process): only the acquisition counts.
    const lease = (await a.acquire(job))!;
    const acquiredAt = Date.now();
    let validWhenTaken: boolean | null = null;
    while (validWhenTaken === null) {
      // The local deadline counts from before the acquisition request, the store's expiry from
      // after it: by the time another node holds the lease, the holder no longer trusts it.
      if ((await b.acquire(job)) !== null) validWhenTaken = lease.valid();
      if (Date.now() - acquiredAt > 10 * LEASE_MS) throw new Error('node-b never took the expired lease');
    }
    expect(validWhenTaken).toBe(false);
    expect(Date.now() - acquiredAt).toBeGreaterThanOrEqual(LEASE_MS - 50);
    expect(lease.lost.aborted).toBe(false);
    // The process wakes up: its first tick sees the deadline passed.
    await a.start();
    await lossOf(lost);
    expect(lost).toEqual([`node-a:${job}`]);
    expect(lease.lost.aborted).toBe(true);
  });

  it('release frees the lease for another node at once, and is not a loss', async () => {
    const lost: string[] = [];
    const a = keeper('node-a', lost);
    const b = keeper('node-b', lost);
    await a.start();
    const job = await newJob();
    await a.acquire(job);
    await a.release(job);
    expect((await b.acquire(job))?.epoch).toBe(2);
    await sleep(LEASE_MS / 3 + 200);
    expect(lost).toEqual([]);
  });
});
