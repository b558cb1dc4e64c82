/**
 * The metadata store contract (src/store/metadata-store.ts) as one test suite, run against
 * every store: test/unit/sqlite-metadata-store.test.ts and postgres-metadata-store.test.ts
 * call it with their own way to open a fresh, migrated store.
 */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { JobError } from '../../src/core/errors.js';
import type { JobStatus } from '../../src/core/lifecycle.js';
import { JOB_LIST_ORDERS } from '../../src/core/migration-job.js';
import type { JobObject, MigrationJob, NewJobHistoryEvent } from '../../src/core/migration-job.js';
import type { MetadataStore, StoredProfile } from '../../src/store/metadata-store.js';

export const PAGE_TOKEN_MESSAGE = 'pageToken is not valid; pass the nextPageToken of a previous response';

export interface StoreHarness {
  /** A fresh, migrated, empty store; closed by the harness after the test. */
  open(): Promise<MetadataStore>;
  /** Two stores (two connections) on one fresh database. */
  openPair(): Promise<[MetadataStore, MetadataStore]>;
  /** A fresh store, and a function opening another store on the same database (after the first is closed). */
  openReopenable(): Promise<[MetadataStore, () => Promise<MetadataStore>]>;
}

/** Resolves to the FerryError the promise rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }
  throw new Error('expected the promise to reject, it resolved');
}

export function makeProfile(overrides: Partial<StoredProfile> = {}): StoredProfile {
  return {
    id: 'src-pg',
    displayName: 'Source PostgreSQL',
    engine: 'postgresql',
    host: 'db.example.com',
    port: 5433,
    database: 'orders',
    username: 'ferry',
    tlsMode: 'server-client',
    connectivityMethod: 'ssh-tunnel',
    labels: { team: 'payments', env: 'prod' },
    encryptedPassword: 'v1:pw-cipher',
    caCertificate: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----',
    clientCertificate: '-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----',
    encryptedClientKey: 'v1:key-cipher',
    sshTunnel: { host: 'bastion.example.com', port: 2222, username: 'tunnel', hostKeyFingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ' },
    encryptedSshPrivateKey: 'v1:ssh-key-cipher',
    createTime: '2024-05-01T10:00:00.000Z',
    updateTime: '2024-05-02T11:30:00.000Z',
    ...overrides,
  };
}

export const SAMPLE_ERROR: JobError = {
  code: 'CONNECTION_LOST',
  message: 'The connection to the source was lost; check the network',
  retryable: true,
  recoverable: true,
  details: { host: 'db.example.com', attempts: 3, nested: { ok: false, list: [1, 'two', null] } },
  time: '2024-05-03T08:00:00.000Z',
};

export function makeJob(overrides: Partial<MigrationJob> = {}): MigrationJob {
  return {
    id: 'job-1',
    displayName: 'Orders to new cluster',
    type: 'continuous',
    sourceProfileId: 'src-pg',
    destinationProfileId: 'dst-pg',
    sourceEngine: 'postgresql',
    destinationEngine: 'postgresql',
    connectivityMethod: 'direct',
    selection: { include: ['public', 'sales.orders*'], exclude: ['public.tmp_*'] },
    dumpParallelism: 4,
    labels: { owner: 'ana', 'cost-center': '42' },
    status: 'RUNNING_WITH_ERRORS',
    phase: 'INCREMENTAL_LOAD',
    error: SAMPLE_ERROR,
    promoteRequested: true,
    createTime: '2024-05-01T12:00:00.000Z',
    updateTime: '2024-05-03T08:00:01.000Z',
    startTime: '2024-05-01T12:05:00.000Z',
    endTime: '2024-05-04T00:00:00.000Z',
    runningMillis: 123_456_789,
    runStartTime: '2024-05-03T07:00:00.000Z',
    ...overrides,
  };
}

export function makeNewJob(overrides: Partial<MigrationJob> = {}): MigrationJob {
  return makeJob({
    status: 'NOT_STARTED',
    phase: null,
    error: null,
    promoteRequested: false,
    selection: { include: [], exclude: [] },
    labels: {},
    startTime: null,
    endTime: null,
    runningMillis: 0,
    runStartTime: null,
    ...overrides,
  });
}

export function makeObject(overrides: Partial<JobObject> = {}): JobObject {
  return {
    jobId: 'job-1',
    name: 'public.orders',
    state: 'DUMPING',
    rowsCopied: 1500,
    bytesCopied: 9_007_199_254, // beyond 32 bits
    estimatedRows: 10_000,
    estimatedBytes: 60_000_000,
    error: null,
    updateTime: '2024-05-01T12:10:00.000Z',
    ...overrides,
  };
}

export function makeEvent(overrides: Partial<NewJobHistoryEvent> = {}): NewJobHistoryEvent {
  return {
    jobId: 'job-1',
    time: '2024-05-01T12:00:00.000Z',
    kind: 'info',
    message: 'something happened',
    actor: 'system',
    ...overrides,
  };
}

/** Follows nextPageToken to the end; returns the ids page by page. */
export async function collectPages<T extends { id: string }>(
  list: (pageToken: string | null) => Promise<{ items: T[]; nextPageToken: string | null }>,
): Promise<string[][]> {
  const pages: string[][] = [];
  let token: string | null = null;
  do {
    const page: { items: T[]; nextPageToken: string | null } = await list(token);
    pages.push(page.items.map((item) => item.id));
    token = page.nextPageToken;
    if (pages.length > 100) throw new Error('pagination does not end');
  } while (token !== null);
  return pages;
}


/** Every test of the store contract, against the stores `harness` opens. */
export function metadataStoreContract(harness: StoreHarness): void {
  describe('connection profiles', () => {
    it('round-trips every field', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile());
      expect(await store.getProfile('src-pg')).toStrictEqual(makeProfile());
    });

    it('round-trips nulls and empty labels', async () => {
      const store = await harness.open();
      const profile = makeProfile({
        id: 'mysql-1',
        engine: 'mysql',
        database: null,
        tlsMode: 'none',
        connectivityMethod: 'direct',
        labels: {},
        encryptedPassword: null,
        caCertificate: null,
        clientCertificate: null,
        encryptedClientKey: null,
        sshTunnel: null,
        encryptedSshPrivateKey: null,
      });
      await store.insertProfile(profile);
      expect(await store.getProfile('mysql-1')).toStrictEqual(profile);
    });

    it('returns null for a missing profile', async () => {
      const store = await harness.open();
      expect(await store.getProfile('nope')).toBeNull();
    });

    it('rejects a duplicate id with ALREADY_EXISTS and keeps the original', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile());
      const error = await rejection(store.insertProfile(makeProfile({ host: 'other' })));
      expect(error.code).toBe('ALREADY_EXISTS');
      expect(error.message).toContain('src-pg');
      expect((await store.getProfile('src-pg'))?.host).toBe('db.example.com');
    });

    it('updateProfile replaces every field', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile());
      const updated = makeProfile({
        displayName: 'Renamed',
        host: '10.0.0.7',
        port: 6543,
        database: null,
        username: 'other',
        tlsMode: 'required',
        connectivityMethod: 'direct',
        labels: { env: 'staging' },
        encryptedPassword: 'v1:new',
        caCertificate: null,
        clientCertificate: null,
        encryptedClientKey: null,
        updateTime: '2024-06-01T00:00:00.000Z',
      });
      await store.updateProfile(updated);
      expect(await store.getProfile('src-pg')).toStrictEqual(updated);
    });

    it('updateProfile rejects a missing profile with NOT_FOUND and creates nothing', async () => {
      const store = await harness.open();
      const error = await rejection(store.updateProfile(makeProfile({ id: 'ghost' })));
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('ghost');
      expect(await store.getProfile('ghost')).toBeNull();
    });

    it('deleteProfile removes the row; a missing one is NOT_FOUND', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile());
      await store.insertProfile(makeProfile({ id: 'keep' }));
      await store.deleteProfile('src-pg');
      expect(await store.getProfile('src-pg')).toBeNull();
      expect(await store.getProfile('keep')).not.toBeNull();
      expect((await rejection(store.deleteProfile('src-pg'))).code).toBe('NOT_FOUND');
    });

    it('deleting a profile leaves the jobs that used it', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile());
      await store.insertJob(makeJob());
      await store.deleteProfile('src-pg');
      expect(await store.getJob('job-1')).toStrictEqual(makeJob());
    });

    it('lists by createTime then id, page by page', async () => {
      const store = await harness.open();
      const specs: [string, string][] = [
        ['e', '2024-01-03T00:00:00.000Z'],
        ['a', '2024-01-02T00:00:00.000Z'],
        ['c', '2024-01-01T00:00:00.000Z'],
        ['b', '2024-01-02T00:00:00.000Z'],
        ['d', '2024-01-01T00:00:00.000Z'],
      ];
      for (const [id, createTime] of specs) await store.insertProfile(makeProfile({ id, createTime }));

      const all = await store.listProfiles();
      expect(all.items.map((p) => p.id)).toEqual(['c', 'd', 'a', 'b', 'e']);
      expect(all.nextPageToken).toBeNull();
      expect(all.items[0]).toStrictEqual(makeProfile({ id: 'c', createTime: '2024-01-01T00:00:00.000Z' }));

      const pages = await collectPages((pageToken) => store.listProfiles({ pageSize: 2, pageToken }));
      expect(pages).toEqual([['c', 'd'], ['a', 'b'], ['e']]);
    });

    it('lists an empty store as one empty page', async () => {
      const store = await harness.open();
      expect(await store.listProfiles()).toEqual({ items: [], nextPageToken: null });
    });
  });

  describe('migration jobs', () => {
    it('round-trips every field, with an error, a selection and labels', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const stored = await store.getJob('job-1');
      expect(stored).toStrictEqual(makeJob());
      expect(stored?.promoteRequested).toBe(true);
      expect(stored?.error?.details).toEqual(SAMPLE_ERROR.details);
    });

    it('round-trips nulls, false and empty collections', async () => {
      const store = await harness.open();
      const job = makeNewJob({ id: 'fresh', type: 'one-time', sourceEngine: 'mysql', connectivityMethod: 'ssh-tunnel' });
      await store.insertJob(job);
      const stored = await store.getJob('fresh');
      expect(stored).toStrictEqual(job);
      expect(stored?.phase).toBeNull();
      expect(stored?.error).toBeNull();
      expect(stored?.promoteRequested).toBe(false);
      expect(stored?.startTime).toBeNull();
      expect(stored?.endTime).toBeNull();
      expect(stored?.runStartTime).toBeNull();
    });

    it('returns null for a missing job', async () => {
      const store = await harness.open();
      expect(await store.getJob('nope')).toBeNull();
    });

    it('rejects a duplicate id with ALREADY_EXISTS', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const error = await rejection(store.insertJob(makeNewJob()));
      expect(error.code).toBe('ALREADY_EXISTS');
      expect(error.message).toContain('job-1');
      expect(await store.getJob('job-1')).toStrictEqual(makeJob());
    });

    it('updateJob without expectedStatus replaces every field', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob());
      const updated = makeJob({ displayName: 'changed', dumpParallelism: 8, updateTime: '2024-07-01T00:00:00.000Z' });
      expect(await store.updateJob(updated)).toBe(true);
      expect(await store.getJob('job-1')).toStrictEqual(updated);
    });

    it('updateJob can clear nullable fields', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const cleared = makeJob({ error: null, phase: null, endTime: null, runStartTime: null, promoteRequested: false });
      expect(await store.updateJob(cleared, 'RUNNING_WITH_ERRORS')).toBe(true);
      expect(await store.getJob('job-1')).toStrictEqual(cleared);
    });

    it('updateJob is a compare-and-set on status', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob());

      const starting = makeNewJob({ status: 'STARTING', updateTime: '2024-05-01T12:01:00.000Z' });
      expect(await store.updateJob(starting, 'NOT_STARTED')).toBe(true);
      expect((await store.getJob('job-1'))?.status).toBe('STARTING');

      // A second writer that read NOT_STARTED loses and changes nothing.
      const loser = makeNewJob({ status: 'NOT_STARTED', displayName: 'stale write' });
      expect(await store.updateJob(loser, 'NOT_STARTED')).toBe(false);
      expect(await store.getJob('job-1')).toStrictEqual(starting);

      const running = makeNewJob({ status: 'RUNNING', phase: 'FULL_DUMP' });
      expect(await store.updateJob(running, 'STARTING')).toBe(true);
      expect(await store.getJob('job-1')).toStrictEqual(running);
    });

    it('only one of two racing compare-and-sets wins', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob({ status: 'RUNNING', phase: 'INCREMENTAL_LOAD', error: null }));
      const results = await Promise.all([
        store.updateJob(makeJob({ status: 'STOPPING', error: null }), 'RUNNING'),
        store.updateJob(makeJob({ status: 'RUNNING_WITH_ERRORS' }), 'RUNNING'),
      ]);
      expect(results.filter((won) => won)).toHaveLength(1);
      expect((await store.getJob('job-1'))?.status).toBe(results[0] ? 'STOPPING' : 'RUNNING_WITH_ERRORS');
    });

    it('updateJob rejects a missing job with NOT_FOUND, with or without expectedStatus', async () => {
      const store = await harness.open();
      expect((await rejection(store.updateJob(makeJob({ id: 'ghost' })))).code).toBe('NOT_FOUND');
      const error = await rejection(store.updateJob(makeJob({ id: 'ghost' }), 'RUNNING'));
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('ghost');
      expect(await store.getJob('ghost')).toBeNull();
    });

    it('lists jobs by createTime then id across pages', async () => {
      const store = await harness.open();
      const created = ['2024-03-01', '2024-01-01', '2024-02-01', '2024-01-01', '2024-02-01', '2024-01-15', '2024-03-01'];
      const ids = ['g', 'b', 'e', 'a', 'd', 'c', 'f'];
      for (let i = 0; i < ids.length; i++) {
        await store.insertJob(makeNewJob({ id: ids[i], createTime: `${created[i]}T00:00:00.000Z` }));
      }
      const expectedOrder = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

      expect((await store.listJobs()).items.map((j) => j.id)).toEqual(expectedOrder);
      expect(await collectPages((pageToken) => store.listJobs({ pageSize: 3, pageToken }))).toEqual([
        ['a', 'b', 'c'],
        ['d', 'e', 'f'],
        ['g'],
      ]);
      expect(await collectPages((pageToken) => store.listJobs({ pageSize: 1, pageToken }))).toEqual(
        expectedOrder.map((id) => [id]),
      );
      // An exact multiple ends without an empty trailing page.
      expect(await collectPages((pageToken) => store.listJobs({ pageSize: 7, pageToken }))).toEqual([expectedOrder]);

      const listed = (await store.listJobs({ pageSize: 1 })).items[0];
      expect(listed).toStrictEqual(makeNewJob({ id: 'a', createTime: '2024-01-01T00:00:00.000Z' }));
    });

    it('a page token keeps working after rows before it are deleted or added', async () => {
      const store = await harness.open();
      for (const id of ['a', 'b', 'c', 'd']) await store.insertJob(makeNewJob({ id, createTime: `2024-01-0${'abcd'.indexOf(id) + 1}T00:00:00.000Z` }));
      const first = await store.listJobs({ pageSize: 2 });
      expect(first.items.map((j) => j.id)).toEqual(['a', 'b']);
      await store.deleteJob('b');
      await store.insertJob(makeNewJob({ id: 'a0', createTime: '2023-12-31T00:00:00.000Z' }));
      const second = await store.listJobs({ pageSize: 2, pageToken: first.nextPageToken });
      expect(second.items.map((j) => j.id)).toEqual(['c', 'd']);
      expect(second.nextPageToken).toBeNull();
    });

    it('filters by status, with pagination', async () => {
      const store = await harness.open();
      const statuses: JobStatus[] = ['RUNNING', 'FAILED', 'RUNNING', 'COMPLETED', 'RUNNING', 'STOPPED'];
      for (let i = 0; i < statuses.length; i++) {
        await store.insertJob(makeNewJob({ id: `job-${i}`, status: statuses[i], createTime: `2024-01-0${i + 1}T00:00:00.000Z` }));
      }
      const ids = async (status: JobStatus[] | undefined) => (await store.listJobs({ status })).items.map((j) => j.id);

      expect(await ids(['RUNNING'])).toEqual(['job-0', 'job-2', 'job-4']);
      expect(await ids(['FAILED', 'STOPPED'])).toEqual(['job-1', 'job-5']);
      expect(await ids(['RESUMING'])).toEqual([]);
      expect(await ids([])).toEqual(['job-0', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
      expect(await ids(undefined)).toEqual(['job-0', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);

      expect(
        await collectPages((pageToken) => store.listJobs({ status: ['RUNNING', 'COMPLETED'], pageSize: 2, pageToken })),
      ).toEqual([
        ['job-0', 'job-2'],
        ['job-3', 'job-4'],
      ]);
    });

    it('pages 100 by default and at most 1000', async () => {
      const store = await harness.open();
      const count = 1005;
      for (let i = 0; i < count; i++) {
        await store.insertJob(makeNewJob({ id: `job-${String(i).padStart(4, '0')}` }));
      }
      const byDefault = await store.listJobs();
      expect(byDefault.items).toHaveLength(100);
      expect(byDefault.items[99].id).toBe('job-0099');
      expect(byDefault.nextPageToken).not.toBeNull();

      const huge = await store.listJobs({ pageSize: 5000 });
      expect(huge.items).toHaveLength(1000);
      const rest = await store.listJobs({ pageSize: 5000, pageToken: huge.nextPageToken });
      expect(rest.items.map((j) => j.id)).toEqual(['job-1000', 'job-1001', 'job-1002', 'job-1003', 'job-1004']);
      expect(rest.nextPageToken).toBeNull();
    });

    it('rejects a pageSize below 1 or not whole with INVALID_ARGUMENT', async () => {
      const store = await harness.open();
      for (const pageSize of [0, -3, 2.5, Number.NaN]) {
        expect((await rejection(store.listJobs({ pageSize }))).code).toBe('INVALID_ARGUMENT');
      }
      expect((await rejection(store.listProfiles({ pageSize: 0 }))).code).toBe('INVALID_ARGUMENT');
    });

    it('rejects page tokens that do not decode with INVALID_ARGUMENT', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob());
      const b64 = (text: string) => Buffer.from(text).toString('base64url');
      const bad = [
        'not a token!',
        '%%%%',
        b64('not json'),
        b64('{"createTime":"x","id":"y"}'),
        b64('["only-one"]'),
        b64('[1, 2]'),
        b64('["a","b","c"]'),
        b64('null'),
      ];
      for (const pageToken of bad) {
        const error = await rejection(store.listJobs({ pageToken }));
        expect(error.code).toBe('INVALID_ARGUMENT');
        expect(error.message).toBe(PAGE_TOKEN_MESSAGE);
        const profileError = await rejection(store.listProfiles({ pageToken }));
        expect(profileError.message).toBe(PAGE_TOKEN_MESSAGE);
      }
    });

    it('treats an empty or null page token as the first page', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob());
      expect((await store.listJobs({ pageToken: '' })).items.map((j) => j.id)).toEqual(['job-1']);
      expect((await store.listJobs({ pageToken: null })).items.map((j) => j.id)).toEqual(['job-1']);
    });

    it('page tokens are opaque base64url', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob({ id: 'a' }));
      await store.insertJob(makeNewJob({ id: 'b' }));
      const token = (await store.listJobs({ pageSize: 1 })).nextPageToken;
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    });

    it('searches the id and display name, ignoring ASCII case, with % and _ as plain characters', async () => {
      const store = await harness.open();
      const names: Array<[string, string]> = [
        ['orders-eu', 'Orders EU'], ['billing', 'Billing to new cluster'], ['misc', 'Keep ORDERS history'],
        ['pct', '100% done'], ['under', 'a_b'], ['plain', 'ab'],
      ];
      for (const [i, [id, displayName]] of names.entries()) {
        await store.insertJob(makeNewJob({ id, displayName, createTime: `2024-01-0${i + 1}T00:00:00.000Z`, status: i % 2 === 0 ? 'RUNNING' : 'FAILED' }));
      }
      const ids = async (search: string, status?: JobStatus[]) => (await store.listJobs({ search, status })).items.map((j) => j.id);
      expect(await ids('orders')).toEqual(['orders-eu', 'misc']);
      expect(await ids('ORDERS-E')).toEqual(['orders-eu']);
      expect(await ids('bill')).toEqual(['billing']);
      expect(await ids('%')).toEqual(['pct']);
      expect(await ids('a_b')).toEqual(['under']);
      expect(await ids('_')).toEqual(['under']);
      expect(await ids('  ')).toEqual(names.map(([id]) => id));
      expect(await ids('orders', ['FAILED'])).toEqual([]);
      expect(await ids('orders', ['RUNNING'])).toEqual(['orders-eu', 'misc']);
      const page = await store.listJobs({ search: 'orders', pageSize: 1 });
      expect(page.totalSize).toBe(2);
      expect(await collectPages((pageToken) => store.listJobs({ search: 'o', pageSize: 2, pageToken }))).toEqual([['orders-eu', 'billing'], ['misc', 'pct']]);
      expect((await rejection(store.listJobs({ search: 'x'.repeat(201) }))).code).toBe('INVALID_ARGUMENT');
    });

    it('lists in every order across pages, ties broken by id, and counts what matches', async () => {
      const store = await harness.open();
      const rows = [
        { id: 'a', displayName: 'delta', createTime: '2024-01-03', updateTime: '2024-02-01' },
        { id: 'b', displayName: 'Alpha', createTime: '2024-01-01', updateTime: '2024-02-03' },
        { id: 'c', displayName: 'charlie', createTime: '2024-01-02', updateTime: '2024-02-01' },
        { id: 'd', displayName: 'alpha', createTime: '2024-01-02', updateTime: '2024-02-02' },
        { id: 'e', displayName: 'Bravo', createTime: '2024-01-05', updateTime: '2024-02-04' },
      ];
      for (const row of rows) {
        await store.insertJob(makeNewJob({ ...row, createTime: `${row.createTime}T00:00:00.000Z`, updateTime: `${row.updateTime}T00:00:00.000Z` }));
      }
      const expected: Record<string, string[]> = {
        createTime: ['b', 'c', 'd', 'a', 'e'],
        'createTime desc': ['e', 'a', 'd', 'c', 'b'],
        updateTime: ['a', 'c', 'd', 'b', 'e'],
        'updateTime desc': ['e', 'b', 'd', 'c', 'a'],
        displayName: ['b', 'd', 'e', 'c', 'a'],
        'displayName desc': ['a', 'c', 'e', 'd', 'b'],
      };
      for (const orderBy of JOB_LIST_ORDERS) {
        expect((await store.listJobs({ orderBy })).items.map((j) => j.id), orderBy).toEqual(expected[orderBy]);
        const pages = await collectPages((pageToken) => store.listJobs({ orderBy, pageSize: 2, pageToken }));
        expect(pages.flat(), orderBy).toEqual(expected[orderBy]);
        expect(pages.map((p) => p.length), orderBy).toEqual([2, 2, 1]);
        expect((await store.listJobs({ orderBy, pageSize: 2 })).totalSize).toBe(5);
      }
      expect((await store.listJobs({ status: ['FAILED'] })).totalSize).toBe(0);
    });

    it('a page token continues only its own order', async () => {
      const store = await harness.open();
      for (const id of ['a', 'b', 'c']) await store.insertJob(makeNewJob({ id, displayName: id }));
      const byName = await store.listJobs({ orderBy: 'displayName', pageSize: 1 });
      const error = await rejection(store.listJobs({ pageSize: 1, pageToken: byName.nextPageToken }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain('ordered by "displayName"');
      const byCreate = await store.listJobs({ pageSize: 1 });
      expect((await rejection(store.listJobs({ orderBy: 'createTime desc', pageToken: byCreate.nextPageToken }))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(store.listJobs({ orderBy: 'size' as never }))).code).toBe('INVALID_ARGUMENT');
    });

    it('totals the tables of many jobs by state in one call', async () => {
      const store = await harness.open();
      for (const id of ['j1', 'j2', 'j3']) await store.insertJob(makeNewJob({ id }));
      await store.upsertJobObjects([
        makeObject({ jobId: 'j1', name: 'a', state: 'DUMPED', rowsCopied: 10, bytesCopied: 100, estimatedRows: 10, estimatedBytes: 100 }),
        makeObject({ jobId: 'j1', name: 'b', state: 'DUMPED', rowsCopied: 5, bytesCopied: 50, estimatedRows: -1, estimatedBytes: -1 }),
        makeObject({ jobId: 'j1', name: 'c', state: 'DUMPING', rowsCopied: 1, bytesCopied: 2, estimatedRows: 30, estimatedBytes: 300 }),
        makeObject({ jobId: 'j2', name: 'a', state: 'NOT_STARTED', rowsCopied: 0, bytesCopied: 0, estimatedRows: 7, estimatedBytes: 70 }),
      ]);
      const totals = await store.totalJobObjects(['j1', 'j2', 'j3', 'ghost']);
      const sorted = [...totals].sort((x, y) => `${x.jobId}${x.state}`.localeCompare(`${y.jobId}${y.state}`));
      expect(sorted).toEqual([
        { jobId: 'j1', state: 'DUMPED', tables: 2, rowsCopied: 15, bytesCopied: 150, estimatedRows: 10, estimatedBytes: 100 },
        { jobId: 'j1', state: 'DUMPING', tables: 1, rowsCopied: 1, bytesCopied: 2, estimatedRows: 30, estimatedBytes: 300 },
        { jobId: 'j2', state: 'NOT_STARTED', tables: 1, rowsCopied: 0, bytesCopied: 0, estimatedRows: 7, estimatedBytes: 70 },
      ]);
      expect(await store.totalJobObjects(['j2'])).toHaveLength(1);
      expect(await store.totalJobObjects([])).toEqual([]);
    });

    it('getProfileNames answers for the profiles that exist', async () => {
      const store = await harness.open();
      await store.insertProfile(makeProfile({ id: 'p1', displayName: 'One' }));
      await store.insertProfile(makeProfile({ id: 'p2', displayName: 'Two' }));
      expect(await store.getProfileNames(['p2', 'p1', 'nope'])).toEqual(new Map([['p2', 'Two'], ['p1', 'One']]));
      expect(await store.getProfileNames([])).toEqual(new Map());
    });

    it('dataVersion changes with every write, its own or another connection\'s, and only then', async () => {
      const [store, other] = await harness.openPair();
      const v0 = await store.dataVersion();
      expect(await store.dataVersion()).toBe(v0);
      await store.listJobs();
      expect(await store.dataVersion()).toBe(v0);
      await store.insertJob(makeNewJob({ id: 'a' }));
      const v1 = await store.dataVersion();
      expect(v1).not.toBe(v0);
      await other.updateJob(makeNewJob({ id: 'a', displayName: 'renamed' }));
      const v2 = await store.dataVersion();
      expect(v2).not.toBe(v1);
      await other.upsertJobObjects([makeObject({ jobId: 'a' })]);
      expect(await store.dataVersion()).not.toBe(v2);
    });

    it('listJobsUsingProfile finds jobs using the profile as source or destination', async () => {
      const store = await harness.open();
      await store.insertJob(makeNewJob({ id: 'j3', sourceProfileId: 'p', destinationProfileId: 'x', createTime: '2024-01-03T00:00:00.000Z' }));
      await store.insertJob(makeNewJob({ id: 'j1', sourceProfileId: 'x', destinationProfileId: 'p', createTime: '2024-01-01T00:00:00.000Z' }));
      await store.insertJob(makeNewJob({ id: 'j2', sourceProfileId: 'y', destinationProfileId: 'z', createTime: '2024-01-02T00:00:00.000Z' }));
      expect((await store.listJobsUsingProfile('p')).map((j) => j.id)).toEqual(['j1', 'j3']);
      expect((await store.listJobsUsingProfile('x')).map((j) => j.id)).toEqual(['j1', 'j3']);
      expect((await store.listJobsUsingProfile('z')).map((j) => j.id)).toEqual(['j2']);
      expect(await store.listJobsUsingProfile('none')).toEqual([]);
      expect((await store.listJobsUsingProfile('y'))[0]).toStrictEqual(
        makeNewJob({ id: 'j2', sourceProfileId: 'y', destinationProfileId: 'z', createTime: '2024-01-02T00:00:00.000Z' }),
      );
    });

    it('deleteJob removes the job with its objects, events and checkpoints, and nothing else', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob({ id: 'doomed' }));
      await store.insertJob(makeJob({ id: 'kept' }));
      for (const jobId of ['doomed', 'kept']) {
        await store.upsertJobObjects([makeObject({ jobId }), makeObject({ jobId, name: 'public.items' })]);
        await store.appendJobEvent(makeEvent({ jobId, kind: 'created' }));
        await store.appendJobEvent(makeEvent({ jobId }));
        await store.putCheckpoint(jobId, 'schema', { created: ['public.orders'] });
      }

      await store.deleteJob('doomed');

      expect(await store.getJob('doomed')).toBeNull();
      expect(await store.listJobObjects('doomed')).toEqual([]);
      expect(await store.listJobEvents('doomed')).toEqual([]);
      expect(await store.getCheckpoint('doomed', 'schema')).toBeNull();

      expect(await store.getJob('kept')).not.toBeNull();
      expect(await store.listJobObjects('kept')).toHaveLength(2);
      expect(await store.listJobEvents('kept')).toHaveLength(2);
      expect(await store.getCheckpoint('kept', 'schema')).toEqual({ created: ['public.orders'] });
    });

    it('deleteJob rejects a missing job with NOT_FOUND', async () => {
      const store = await harness.open();
      const error = await rejection(store.deleteJob('ghost'));
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('ghost');
    });

    it('rejects a non-integer count with INVALID_ARGUMENT and stores nothing', async () => {
      const store = await harness.open();
      const error = await rejection(store.insertJob(makeJob({ runningMillis: 1.5 })));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(await store.getJob('job-1')).toBeNull();
    });
  });

  describe('job objects', () => {
    it('round-trips every field, with and without an error, ordered by name', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const failed = makeObject({
        name: 'sales.returns',
        state: 'FAILED',
        rowsCopied: 0,
        bytesCopied: 0,
        estimatedRows: 0,
        estimatedBytes: 0,
        error: SAMPLE_ERROR,
        updateTime: '2024-05-02T00:00:00.000Z',
      });
      const orders = makeObject();
      const accounts = makeObject({ name: 'public.accounts', state: 'COMPLETED' });
      await store.upsertJobObjects([failed, orders, accounts]);

      const listed = await store.listJobObjects('job-1');
      expect(listed.map((o) => o.name)).toEqual(['public.accounts', 'public.orders', 'sales.returns']);
      expect(listed).toStrictEqual([accounts, orders, failed]);
    });

    it('upsert replaces by (jobId, name)', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.upsertJobObjects([makeObject(), makeObject({ name: 'public.items' })]);
      const progressed = makeObject({ state: 'DUMPED', rowsCopied: 10_000, bytesCopied: 60_000_000, updateTime: '2024-05-01T13:00:00.000Z' });
      await store.upsertJobObjects([progressed]);
      const listed = await store.listJobObjects('job-1');
      expect(listed).toHaveLength(2);
      expect(listed.find((o) => o.name === 'public.orders')).toStrictEqual(progressed);
      expect(listed.find((o) => o.name === 'public.items')?.state).toBe('DUMPING');
    });

    it('upsert of an empty list does nothing', async () => {
      const store = await harness.open();
      await expect(store.upsertJobObjects([])).resolves.toBeUndefined();
    });

    it('upsert is atomic: an object of a missing job rejects with NOT_FOUND and nothing is written', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const error = await rejection(
        store.upsertJobObjects([makeObject({ name: 'public.a' }), makeObject({ jobId: 'ghost' }), makeObject({ name: 'public.z' })]),
      );
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('ghost');
      expect(await store.listJobObjects('job-1')).toEqual([]);
    });

    it('deleteJobObjects removes only that job’s objects', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.insertJob(makeJob({ id: 'job-2' }));
      await store.upsertJobObjects([makeObject(), makeObject({ jobId: 'job-2' })]);
      await store.deleteJobObjects('job-1');
      expect(await store.listJobObjects('job-1')).toEqual([]);
      expect(await store.listJobObjects('job-2')).toStrictEqual([makeObject({ jobId: 'job-2' })]);
      expect(await store.getJob('job-1')).not.toBeNull();
    });
  });

  describe('job events', () => {
    it('appends with increasing ids and round-trips every field', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const full = makeEvent({
        kind: 'action',
        message: 'Stop requested',
        actor: 'api',
        action: 'stop',
        status: 'STOPPING',
        phase: 'INCREMENTAL_LOAD',
        details: { reason: 'maintenance', lagBytes: 1024, nested: { list: [1, null, 'x'] } },
      });
      const nullPhase = makeEvent({ kind: 'status', status: 'STARTING', phase: null, message: 'Starting' });
      const bare = makeEvent({ kind: 'created', message: 'Job created', actor: 'cli' });

      const a = await store.appendJobEvent(full);
      const b = await store.appendJobEvent(nullPhase);
      const c = await store.appendJobEvent(bare);
      expect(b.id).toBeGreaterThan(a.id);
      expect(c.id).toBeGreaterThan(b.id);

      expect(a).toStrictEqual({ id: a.id, ...full });
      expect(b).toStrictEqual({ id: b.id, ...nullPhase });
      expect(c).toStrictEqual({ id: c.id, ...bare });
      // Absent optional fields stay absent; a null phase stays null.
      expect('phase' in c).toBe(false);
      expect('action' in c).toBe(false);
      expect('details' in c).toBe(false);
      expect(b.phase).toBeNull();

      expect(await store.listJobEvents('job-1')).toStrictEqual([a, b, c]);
    });

    it('lists oldest first, after afterId, up to limit, per job', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.insertJob(makeJob({ id: 'other' }));
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await store.appendJobEvent(makeEvent({ message: `event ${i}` }))).id);
        await store.appendJobEvent(makeEvent({ jobId: 'other', message: `other ${i}` }));
      }
      const messages = async (options?: { afterId?: number; limit?: number }) =>
        (await store.listJobEvents('job-1', options)).map((e) => e.message);

      expect(await messages()).toEqual(['event 0', 'event 1', 'event 2', 'event 3', 'event 4']);
      expect(await messages({ afterId: ids[1] })).toEqual(['event 2', 'event 3', 'event 4']);
      expect(await messages({ afterId: ids[4] })).toEqual([]);
      expect(await messages({ limit: 2 })).toEqual(['event 0', 'event 1']);
      expect(await messages({ afterId: ids[0], limit: 2 })).toEqual(['event 1', 'event 2']);
      expect(await messages({ afterId: 0 })).toHaveLength(5);
      expect(await store.listJobEvents('nobody')).toEqual([]);
    });

    it('never reuses an id, even after the job is deleted', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob({ id: 'a' }));
      await store.insertJob(makeJob({ id: 'b' }));
      await store.appendJobEvent(makeEvent({ jobId: 'b' }));
      const last = await store.appendJobEvent(makeEvent({ jobId: 'a' }));
      await store.deleteJob('a');
      const next = await store.appendJobEvent(makeEvent({ jobId: 'b' }));
      expect(next.id).toBeGreaterThan(last.id);
    });

    it('rejects an event of a missing job with NOT_FOUND', async () => {
      const store = await harness.open();
      const error = await rejection(store.appendJobEvent(makeEvent({ jobId: 'ghost' })));
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('ghost');
    });

    it('rejects a bad limit or afterId with INVALID_ARGUMENT', async () => {
      const store = await harness.open();
      expect((await rejection(store.listJobEvents('job-1', { limit: 0 }))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(store.listJobEvents('job-1', { limit: 1.5 }))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(store.listJobEvents('job-1', { afterId: 0.5 }))).code).toBe('INVALID_ARGUMENT');
    });
  });

  describe('checkpoints', () => {
    it('round-trips JSON values', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      const value = {
        createdObjects: ['public.orders', 'public.items'],
        steps: { schema: true, snapshot: false },
        lsn: '0/16B6C50',
        count: 42,
        ratio: 0.25,
        nothing: null,
        unicode: 'naïve — 日本',
      };
      await store.putCheckpoint('job-1', 'full-dump', value);
      await store.putCheckpoint('job-1', 'number', 7);
      await store.putCheckpoint('job-1', 'string', 'plain');
      await store.putCheckpoint('job-1', 'list', [1, [2, 3]]);
      await store.putCheckpoint('job-1', 'bool', false);

      expect(await store.getCheckpoint('job-1', 'full-dump')).toStrictEqual(value);
      expect(await store.getCheckpoint<number>('job-1', 'number')).toBe(7);
      expect(await store.getCheckpoint('job-1', 'string')).toBe('plain');
      expect(await store.getCheckpoint('job-1', 'list')).toEqual([1, [2, 3]]);
      expect(await store.getCheckpoint('job-1', 'bool')).toBe(false);
      expect(await store.getCheckpoint('job-1', 'missing')).toBeNull();
    });

    it('put overwrites the value of the same key only', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.insertJob(makeJob({ id: 'job-2' }));
      await store.putCheckpoint('job-1', 'k', { step: 1 });
      await store.putCheckpoint('job-1', 'other', { step: 'x' });
      await store.putCheckpoint('job-2', 'k', { step: 'job-2' });
      await store.putCheckpoint('job-1', 'k', { step: 2, done: true });
      expect(await store.getCheckpoint('job-1', 'k')).toStrictEqual({ step: 2, done: true });
      expect(await store.getCheckpoint('job-1', 'other')).toStrictEqual({ step: 'x' });
      expect(await store.getCheckpoint('job-2', 'k')).toStrictEqual({ step: 'job-2' });
    });

    it('deleteCheckpoints removes only that job’s checkpoints', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.insertJob(makeJob({ id: 'job-2' }));
      await store.putCheckpoint('job-1', 'a', 1);
      await store.putCheckpoint('job-1', 'b', 2);
      await store.putCheckpoint('job-2', 'a', 3);
      await store.deleteCheckpoints('job-1');
      expect(await store.getCheckpoint('job-1', 'a')).toBeNull();
      expect(await store.getCheckpoint('job-1', 'b')).toBeNull();
      expect(await store.getCheckpoint('job-2', 'a')).toBe(3);
    });

    it('rejects a checkpoint of a missing job with NOT_FOUND', async () => {
      const store = await harness.open();
      const error = await rejection(store.putCheckpoint('ghost', 'k', {}));
      expect(error.code).toBe('NOT_FOUND');
    });

    it('rejects values without a JSON form with INVALID_ARGUMENT and keeps the old value', async () => {
      const store = await harness.open();
      await store.insertJob(makeJob());
      await store.putCheckpoint('job-1', 'k', { kept: true });
      expect((await rejection(store.putCheckpoint('job-1', 'k', undefined))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(store.putCheckpoint('job-1', 'k', { big: 10n }))).code).toBe('INVALID_ARGUMENT');
      expect(await store.getCheckpoint('job-1', 'k')).toStrictEqual({ kept: true });
    });
  });

  describe('nodes', () => {
    const node = (id: string, heartbeatTime: string) => ({
      id, address: `http://${id}`, version: '0.1.0', startTime: '2024-05-01T10:00:00.000Z', heartbeatTime, stopTime: null, maxJobs: null,
    });
    const listed = (id: string, heartbeatTime: string) => ({ ...node(id, heartbeatTime), drainTime: null });

    it('a drain is set and cleared by setNodeDrain only: a heartbeat keeps it; an unknown node is NOT_FOUND', async () => {
      const store = await harness.open();
      await store.putNode({ ...node('node-a:8080', '2024-05-01T10:00:01.000Z'), maxJobs: 3 });
      await store.setNodeDrain('node-a:8080', '2024-05-01T10:00:02.000Z');
      await store.putNode({ ...node('node-a:8080', '2024-05-01T10:00:06.000Z'), maxJobs: 3 });
      expect(await store.listNodes()).toStrictEqual([{ ...listed('node-a:8080', '2024-05-01T10:00:06.000Z'), maxJobs: 3, drainTime: '2024-05-01T10:00:02.000Z' }]);
      await store.setNodeDrain('node-a:8080', null);
      expect((await store.listNodes())[0]?.drainTime).toBeNull();
      const error = await rejection(store.setNodeDrain('node-x:1', '2024-05-01T10:00:02.000Z'));
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('node-x:1');
    });

    it('two stores on one database see each other\'s nodes; a heartbeat replaces the row', async () => {
      const [a, b] = await harness.openPair();
      expect(await a.listNodes()).toEqual([]);
      await a.putNode(node('node-b:8080', '2024-05-01T10:00:01.000Z'));
      await b.putNode(node('node-a:8080', '2024-05-01T10:00:02.000Z'));
      expect((await b.listNodes()).map((n) => n.id)).toEqual(['node-a:8080', 'node-b:8080']);
      await a.putNode(node('node-b:8080', '2024-05-01T10:00:09.000Z'));
      await b.putNode({ ...node('node-a:8080', '2024-05-01T10:00:10.000Z'), stopTime: '2024-05-01T10:00:10.000Z' });
      expect(await a.listNodes()).toStrictEqual([
        { ...listed('node-a:8080', '2024-05-01T10:00:10.000Z'), stopTime: '2024-05-01T10:00:10.000Z' },
        listed('node-b:8080', '2024-05-01T10:00:09.000Z'),
      ]);
    });
  });

  describe('job leases', () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    async function storeWithJobs(...ids: string[]): Promise<MetadataStore> {
      const store = await harness.open();
      for (const id of ids) await store.insertJob(makeNewJob({ id }));
      return store;
    }

    it('acquires a free lease with epoch 1, expiring leaseMs from now by the store clock', async () => {
      const store = await storeWithJobs('job-1');
      const before = Date.now();
      const lease = await store.acquireJobLease('job-1', 'node-a', 60_000);
      expect(lease).toMatchObject({ jobId: 'job-1', nodeId: 'node-a', epoch: 1 });
      // The store's clock (PostgreSQL's now()) and this process's agree within a few seconds here.
      expect(Math.abs(Date.parse(lease!.expireTime) - (before + 60_000))).toBeLessThan(5_000);
      expect(lease!.expireTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(await store.listJobLeases()).toStrictEqual([lease]);
    });

    it('refuses a lease another node holds, and changes nothing', async () => {
      const store = await storeWithJobs('job-1');
      const held = await store.acquireJobLease('job-1', 'node-a', 60_000);
      expect(await store.acquireJobLease('job-1', 'node-b', 60_000)).toBeNull();
      expect(await store.listJobLeases()).toStrictEqual([held]);
    });

    it('the holder itself (a node restarted under its id) takes its lease again with the next epoch', async () => {
      const store = await storeWithJobs('job-1');
      await store.acquireJobLease('job-1', 'node-a', 60_000);
      expect(await store.acquireJobLease('job-1', 'node-a', 60_000)).toMatchObject({ nodeId: 'node-a', epoch: 2 });
    });

    it('takes an expired lease over with epoch + 1; the old holder can no longer renew or release it', async () => {
      const store = await storeWithJobs('job-1');
      await store.acquireJobLease('job-1', 'node-a', 40);
      await sleep(80);
      const taken = await store.acquireJobLease('job-1', 'node-b', 60_000);
      expect(taken).toMatchObject({ jobId: 'job-1', nodeId: 'node-b', epoch: 2 });
      expect(await store.renewJobLeases('node-a', [{ jobId: 'job-1', epoch: 1 }], 60_000)).toEqual([]);
      await store.releaseJobLease('job-1', 'node-a', 1);
      expect(await store.listJobLeases()).toStrictEqual([taken]);
    });

    it('renews only the leases the node still holds with those epochs, expired but not taken ones included', async () => {
      const store = await storeWithJobs('job-1', 'job-2', 'job-3', 'job-4');
      await store.acquireJobLease('job-1', 'node-a', 40);
      await store.acquireJobLease('job-2', 'node-a', 60_000);
      await store.acquireJobLease('job-3', 'node-b', 60_000);
      await store.acquireJobLease('job-4', 'node-a', 60_000);
      await store.acquireJobLease('job-4', 'node-a', 60_000); // epoch 2: a renewal with epoch 1 is stale
      await sleep(80);
      const renewed = await store.renewJobLeases(
        'node-a',
        [{ jobId: 'job-1', epoch: 1 }, { jobId: 'job-2', epoch: 1 }, { jobId: 'job-3', epoch: 1 }, { jobId: 'job-4', epoch: 1 }, { jobId: 'job-5', epoch: 1 }],
        60_000,
      );
      expect(renewed).toEqual(['job-1', 'job-2']);
      const leases = await store.listJobLeases();
      // job-1 was expired: renewed, nobody may take it now.
      expect(Date.parse(leases[0]!.expireTime)).toBeGreaterThan(Date.now() + 30_000);
      expect(await store.acquireJobLease('job-1', 'node-b', 60_000)).toBeNull();
      expect(await store.renewJobLeases('node-a', [], 60_000)).toEqual([]);
    });

    it('release frees the lease and keeps the epoch: the next acquisition counts on from it', async () => {
      const store = await storeWithJobs('job-1');
      await store.acquireJobLease('job-1', 'node-a', 60_000);
      await store.releaseJobLease('job-1', 'node-b', 1); // not the holder: nothing happens
      await store.releaseJobLease('job-1', 'node-a', 2); // not its epoch: nothing happens
      expect((await store.listJobLeases())[0]).toMatchObject({ nodeId: 'node-a', epoch: 1 });
      await store.releaseJobLease('job-1', 'node-a', 1);
      expect((await store.listJobLeases())[0]).toMatchObject({ jobId: 'job-1', nodeId: null, epoch: 1 });
      expect(await store.renewJobLeases('node-a', [{ jobId: 'job-1', epoch: 1 }], 60_000)).toEqual([]);
      expect(await store.acquireJobLease('job-1', 'node-b', 60_000)).toMatchObject({ nodeId: 'node-b', epoch: 2 });
    });

    it('of many concurrent acquisitions on two connections, exactly one wins', async () => {
      const [a, b] = await harness.openPair();
      await a.insertJob(makeNewJob({ id: 'job-1' }));
      // Round 0 races for a lease nobody ever held (the insert), the next ones for a released one (the update).
      for (let round = 0; round < 3; round += 1) {
        const attempts = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).acquireJobLease('job-1', `node-${i}`, 60_000));
        const won = (await Promise.all(attempts)).filter((lease) => lease !== null);
        expect(won).toHaveLength(1);
        expect(won[0]!.epoch).toBe(round + 1);
        await a.releaseJobLease('job-1', won[0]!.nodeId!, won[0]!.epoch);
      }
    });

    it('rejects a lease on a missing job with NOT_FOUND, and a bad duration with INVALID_ARGUMENT', async () => {
      const store = await storeWithJobs('job-1');
      expect((await rejection(store.acquireJobLease('job-9', 'node-a', 60_000))).code).toBe('NOT_FOUND');
      expect((await rejection(store.acquireJobLease('job-1', 'node-a', 0))).code).toBe('INVALID_ARGUMENT');
      expect((await rejection(store.renewJobLeases('node-a', [], 1.5))).code).toBe('INVALID_ARGUMENT');
      expect(await store.listJobLeases()).toEqual([]);
    });

    it('a lease goes with its job', async () => {
      const store = await storeWithJobs('job-1', 'job-2');
      await store.acquireJobLease('job-1', 'node-a', 60_000);
      await store.acquireJobLease('job-2', 'node-a', 60_000);
      await store.deleteJob('job-1');
      expect((await store.listJobLeases()).map((l) => l.jobId)).toEqual(['job-2']);
    });
  });

  describe('durability', () => {
    async function writeEverything(store: MetadataStore): Promise<number> {
      await store.insertProfile(makeProfile());
      await store.insertJob(makeJob());
      await store.upsertJobObjects([makeObject({ error: SAMPLE_ERROR })]);
      const event = await store.appendJobEvent(makeEvent({ kind: 'status', status: 'RUNNING', phase: 'FULL_DUMP' }));
      await store.putCheckpoint('job-1', 'progress', { tables: ['public.orders'], done: 3 });
      return event.id;
    }

    async function expectEverything(store: MetadataStore, eventId: number): Promise<void> {
      expect(await store.getProfile('src-pg')).toStrictEqual(makeProfile());
      expect(await store.getJob('job-1')).toStrictEqual(makeJob());
      expect(await store.listJobObjects('job-1')).toStrictEqual([makeObject({ error: SAMPLE_ERROR })]);
      expect(await store.listJobEvents('job-1')).toStrictEqual([
        { id: eventId, ...makeEvent({ kind: 'status', status: 'RUNNING', phase: 'FULL_DUMP' }) },
      ]);
      expect(await store.getCheckpoint('job-1', 'progress')).toStrictEqual({ tables: ['public.orders'], done: 3 });
    }

    it('a new instance on the same file reads what a closed one wrote', async () => {
      const [writer, reopen] = await harness.openReopenable();
      const eventId = await writeEverything(writer);
      await writer.close();

      const reader = await reopen();
      await expectEverything(reader, eventId);
    });

    it('a second instance sees committed writes while the first is still open', async () => {
      const [writer, reader] = await harness.openPair();
      const eventId = await writeEverything(writer);
      await expectEverything(reader, eventId);

      expect(await writer.updateJob(makeJob({ status: 'STOPPING' }), 'RUNNING_WITH_ERRORS')).toBe(true);
      expect((await reader.getJob('job-1'))?.status).toBe('STOPPING');
      // The compare-and-set holds across connections too.
      expect(await reader.updateJob(makeJob({ status: 'RUNNING' }), 'RUNNING_WITH_ERRORS')).toBe(false);
    });

  });
}
