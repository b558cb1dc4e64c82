/**
 * The console's confirmations (web/src/lib/job-actions.ts): Delete, Restart and Promote say
 * what will happen; Promote shows the lag and warns unless it is zero.
 */
import { describe, expect, it } from 'vitest';
import type { Job, JobObject } from '../../web/src/api/types.js';
import { CONFIRMED_ACTIONS, confirmationFor, failedTables, lagText, restartTablesConfirmation } from '../../web/src/lib/job-actions.js';

function job(overrides: Partial<Job> = {}): Job {
  return {
    id: 'shop',
    displayName: 'Shop',
    type: 'continuous',
    status: 'RUNNING',
    statusLabel: 'Running',
    substatus: 'Incremental load',
    phase: 'INCREMENTAL_LOAD',
    availableActions: ['stop', 'promote', 'delete'],
    sourceProfileId: 'a',
    sourceProfileName: 'A',
    sourceEngine: 'postgresql',
    destinationProfileId: 'b',
    destinationProfileName: 'B',
    destinationEngine: 'postgresql',
    connectivityMethod: 'direct',
    selection: { include: [], exclude: [] },
    dumpParallelism: 4,
    labels: {},
    createTime: '2026-01-01T00:00:00.000Z',
    updateTime: '2026-01-01T00:00:00.000Z',
    startTime: null,
    endTime: null,
    durationSeconds: 0,
    error: null,
    progress: { tablesTotal: 0, tablesCompleted: 0, rowsCopied: 0, bytesCopied: 0, estimatedRows: 0, estimatedBytes: 0, totalsEstimated: false, percent: 0 },
    replication: null,
    node: null,
    ...overrides,
  };
}

describe('console confirmations', () => {
  it('asks before Delete, Restart and Promote only', () => {
    expect([...CONFIRMED_ACTIONS].sort()).toEqual(['delete', 'promote', 'restart']);
    expect(confirmationFor('start', [job()])).toBeNull();
    expect(confirmationFor('stop', [job()])).toBeNull();
    expect(confirmationFor('delete', [job()])!.paragraphs.join(' ')).toContain('The data already copied to the destination is kept');
    expect(confirmationFor('restart', [job()])!.paragraphs.join(' ')).toContain('removes everything the job wrote on the destination');
    expect(confirmationFor('delete', [job(), job({ id: 'b' })])!.title).toBe('Delete 2 migration jobs?');
  });

  it('shows the lag on Promote and warns unless it is zero', () => {
    const zero = confirmationFor('promote', [job({ replication: { lagSeconds: 0, lagBytes: 0, appliedChangesPerSecond: 12 } })])!;
    expect(zero.paragraphs.join(' ')).toContain('Current replication lag: 0 s, 0 B.');
    expect(zero.warning).toBeNull();

    const behind = confirmationFor('promote', [job({ replication: { lagSeconds: 42, lagBytes: 3 * 1024 * 1024 } })])!;
    expect(behind.paragraphs.join(' ')).toContain('Current replication lag: 42 s, 3.0 MiB.');
    expect(behind.warning).toContain('The destination is behind the source');

    const unknown = confirmationFor('promote', [job()])!;
    expect(unknown.paragraphs.join(' ')).toContain('not reported yet');
    expect(unknown.warning).toContain('not known');
    expect(lagText(job({ replication: { lagSeconds: 5, lagBytes: null } }))).toBe('5 s');
  });
});

describe('Restart failed tables', () => {
  const object = (name: string, state: JobObject['state']) => ({ name, state }) as JobObject;
  const objects = [object('shop.customers', 'DUMPED'), object('shop.items', 'FAILED'), object('shop.orders', 'FAILED')];
  const failedInDump = job({ status: 'FAILED', statusLabel: 'Failed', substatus: 'Failed in Full dump', phase: 'FULL_DUMP', availableActions: ['restart', 'delete'] });

  it('offers the tables whose copy failed, only while the job may be restarted in Full dump', () => {
    expect(failedTables(failedInDump, objects)).toEqual(['shop.items', 'shop.orders']);
    expect(failedTables(failedInDump, [object('shop.customers', 'DUMPED')])).toEqual([]);
    expect(failedTables({ ...failedInDump, phase: 'INCREMENTAL_LOAD' }, objects)).toEqual([]);
    expect(failedTables({ ...failedInDump, availableActions: ['delete'] }, objects)).toEqual([]);
  });

  it('says which tables are emptied and copied again and that the others are kept', () => {
    const one = restartTablesConfirmation(failedInDump, ['shop.items']);
    expect(one.title).toBe('Restart table shop.items of migration job "Shop"?');
    expect(one.paragraphs.join(' ')).toContain('The tables already copied are kept and are not copied again');
    const two = restartTablesConfirmation(failedInDump, ['shop.items', 'shop.orders']);
    expect(two.title).toBe('Restart 2 failed tables of migration job "Shop"?');
    expect(two.paragraphs.join(' ')).toContain('shop.items, shop.orders');
  });
});
