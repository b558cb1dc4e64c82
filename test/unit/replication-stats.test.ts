import { describe, expect, it } from 'vitest';
import { ReplicationStats } from '../../src/pipeline/replication-stats.js';

describe('replication stats', () => {
  it('counts batches, and a new instance restored from the saved counters goes on counting', () => {
    const stats = new ReplicationStats();
    stats.recordBatch('0/10', 5, 2, '2026-12-02T10:00:00Z', new Map([['public.a', 5]]), 1_000);
    stats.recordBatch('0/20', 3, 1, '2026-12-02T10:00:01Z', new Map([['public.a', 1], ['public.b', 2]]), 2_000);
    const saved = JSON.parse(JSON.stringify(stats.counters())) as ReturnType<ReplicationStats['counters']>;
    expect(saved).toEqual({ changesApplied: 8, transactionsApplied: 3, lastAppliedCommitTime: '2026-12-02T10:00:01Z', tableChanges: { 'public.a': 6, 'public.b': 2 } });

    const restarted = new ReplicationStats();
    restarted.restore(saved);
    restarted.recordBatch('0/30', 4, 1, null, new Map([['public.b', 4]]), 10_000);
    const snapshot = restarted.snapshot(10_500);
    expect(snapshot.changesApplied).toBe(12);
    expect(snapshot.transactionsApplied).toBe(4);
    expect(snapshot.tableChanges).toEqual({ 'public.a': 6, 'public.b': 6 });
    expect(snapshot.lastAppliedCommitTime).toBe('2026-12-02T10:00:01Z');
    // The rate starts over from the restored count: no jump of the whole history into one second.
    expect(snapshot.appliedChangesPerSecond).toBe(0);
  });

  it('reset forgets everything (Restart starts the job over)', () => {
    const stats = new ReplicationStats();
    stats.appliedPosition = '0/10';
    stats.recordBatch('0/10', 5, 2, null, new Map([['public.a', 5]]), 1_000);
    stats.reset();
    expect(stats.appliedPosition).toBeNull();
    expect(stats.counters()).toEqual({ changesApplied: 0, transactionsApplied: 0, lastAppliedCommitTime: null, tableChanges: {} });
  });

  it('counts changes sent into a long destination transaction in the rate before it commits, and in the counters only at commit', () => {
    const stats = new ReplicationStats();
    stats.recordBatch('0/10', 10, 1, null, new Map([['public.a', 10]]), 1_000);
    // One source transaction of 6,000 rows, sent in chunks of 2,000 over three seconds, not committed yet.
    stats.recordSent(2_000, 2_000);
    stats.recordSent(2_000, 3_000);
    stats.recordSent(2_000, 4_000);
    const during = stats.snapshot(4_100);
    // 6,000 changes since the sample at 1 s, over 3.1 s.
    expect(during.appliedChangesPerSecond).toBeCloseTo(6_000 / 3.1, 0);
    expect(during.changesApplied).toBe(10);
    // The commit moves them to the counters; the rate does not count them twice.
    stats.recordBatch('0/20', 6_000, 1, null, new Map([['public.a', 6_000]]), 4_200);
    const after = stats.snapshot(4_300);
    expect(after.changesApplied).toBe(6_010);
    expect(after.appliedChangesPerSecond).toBeCloseTo(6_000 / 3.3, 0);
    // A rolled-back transaction: what it sent is not applied, and the rate never goes negative.
    stats.recordSent(500, 5_000);
    stats.discardInFlight();
    stats.recordBatch('0/30', 0, 0, null, new Map(), 5_500);
    expect(stats.snapshot(5_600).changesApplied).toBe(6_010);
    expect(stats.snapshot(5_600).appliedChangesPerSecond).toBeGreaterThanOrEqual(0);
  });

  it('keeps a streamed transaction\'s changes in the rate while the main session commits its own batches', () => {
    const stats = new ReplicationStats();
    stats.recordBatch('0/10', 0, 0, null, new Map(), 1_000);
    stats.recordSent(4_000, 2_000, 'streamed');
    // The main session commits a batch of 100 changes meanwhile: the streamed ones stay counted.
    stats.recordSent(100, 2_500);
    stats.recordBatch('0/20', 100, 1, null, new Map([['public.b', 100]]), 2_600);
    stats.recordSent(4_000, 3_000, 'streamed');
    expect(stats.snapshot(3_000).appliedChangesPerSecond).toBeCloseTo(8_100 / 2, 0);
    stats.recordBatch('0/30', 8_000, 1, null, new Map([['public.a', 8_000]]), 3_500, 'streamed');
    const after = stats.snapshot(3_500);
    expect(after.changesApplied).toBe(8_100);
    expect(after.appliedChangesPerSecond).toBeCloseTo(8_100 / 2.5, 0);
  });
});
