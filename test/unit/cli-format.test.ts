import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatPercent,
  formatRate,
  formatTime,
  objectFraction,
  progressBar,
  renderConnectionTest,
  renderFields,
  renderJobDetails,
  renderJobsTable,
  renderObjectsTable,
  renderProfilesTable,
  renderTable,
  renderVerifyReport,
  renderWatchFrame,
  statusText,
} from '../../src/cli/format.js';
import type { JobObjectView, JobView, ProfileView } from '../../src/service/inputs.js';

const TIME = '2024-05-01T12:00:03.456Z';

function job(overrides: Partial<JobView> = {}): JobView {
  return {
    id: 'orders-move',
    displayName: 'Orders to new cluster',
    type: 'continuous',
    status: 'RUNNING',
    statusLabel: 'Running',
    substatus: 'Full dump in progress',
    phase: 'FULL_DUMP',
    availableActions: ['stop', 'delete'],
    sourceProfileId: 'old-pg',
    sourceProfileName: 'Old PostgreSQL',
    sourceEngine: 'postgresql',
    destinationProfileId: 'new-pg',
    destinationProfileName: 'New PostgreSQL',
    destinationEngine: 'postgresql',
    connectivityMethod: 'direct',
    selection: { include: ['public'], exclude: ['public.audit_log'] },
    dumpParallelism: 8,
    zeroDatePolicy: 'null',
    schemaMapping: {},
    labels: { env: 'prod', team: 'payments' },
    createTime: TIME,
    updateTime: TIME,
    startTime: TIME,
    endTime: null,
    durationSeconds: 185,
    error: null,
    progress: { tablesTotal: 3, tablesCompleted: 1, rowsCopied: 1_500_000, bytesCopied: 1.5 * 1024 ** 3, estimatedRows: 3_000_000, estimatedBytes: 3 * 1024 ** 3, totalsEstimated: true, percent: 50 },
    replication: null,
    promoteRequested: false,
    node: null,
    ...overrides,
  };
}

function object(overrides: Partial<JobObjectView> = {}): JobObjectView {
  return {
    name: 'public.orders',
    destination: overrides.name ?? 'public.orders',
    state: 'DUMPING',
    rowsCopied: 250_000,
    bytesCopied: 256 * 1024 ** 2,
    estimatedRows: 1_000_000,
    estimatedBytes: 1024 ** 3,
    error: null,
    updateTime: TIME,
    ...overrides,
  };
}

describe('numbers and times', () => {
  it('humanizes bytes in powers of 1024', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 2)).toBe('5.0 MiB');
    expect(formatBytes(150 * 1024 ** 3)).toBe('150 GiB');
    expect(formatBytes(2.25 * 1024 ** 4)).toBe('2.3 TiB');
    expect(formatBytes(-1)).toBe('-');
    expect(formatBytes(Number.NaN)).toBe('-');
    expect(formatRate(12.3 * 1024 ** 2)).toBe('12.3 MiB/s');
  });

  it('groups counts by thousands', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(12.6)).toBe('13');
  });

  it('writes durations with the two largest units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.9)).toBe('42s');
    expect(formatDuration(60)).toBe('1m 00s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(3600 * 2 + 180)).toBe('2h 03m');
    expect(formatDuration(86400 + 4 * 3600 + 59)).toBe('1d 04h');
    expect(formatDuration(-5)).toBe('-');
  });

  it('shows times in UTC to the second, and "-" when absent', () => {
    expect(formatTime(TIME)).toBe('2024-05-01 12:00:03 UTC');
    expect(formatTime(null)).toBe('-');
    expect(formatTime(undefined)).toBe('-');
    expect(formatTime('not a time')).toBe('not a time');
  });
});

describe('progress bars', () => {
  it('fills in proportion and clamps to the width', () => {
    expect(progressBar(0, 10)).toBe('░'.repeat(10));
    expect(progressBar(0.5, 10)).toBe('█████░░░░░');
    expect(progressBar(1, 10)).toBe('█'.repeat(10));
    expect(progressBar(1.7, 10)).toBe('█'.repeat(10));
    expect(progressBar(-1, 10)).toBe('░'.repeat(10));
    expect(progressBar(Number.NaN, 4)).toBe('░░░░');
    expect(progressBar(0.25, 8, true)).toBe('##------');
    for (const fraction of [0, 0.13, 0.5, 0.99, 1]) expect([...progressBar(fraction, 24)]).toHaveLength(24);
  });

  it('never shows 100% before the end', () => {
    expect(formatPercent(0)).toBe('0%');
    expect(formatPercent(0.426)).toBe('42%');
    expect(formatPercent(0.999)).toBe('99%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatPercent(3)).toBe('100%');
  });

  it('measures a table by bytes, then rows, then its state', () => {
    expect(objectFraction(object())).toBe(0.25);
    expect(objectFraction(object({ estimatedBytes: 0, rowsCopied: 10, estimatedRows: 40 }))).toBe(0.25);
    expect(objectFraction(object({ estimatedBytes: 0, estimatedRows: 0 }))).toBe(0);
    // Estimates are estimates: a table past its estimate is not done until it says so.
    expect(objectFraction(object({ bytesCopied: 2 * 1024 ** 3 }))).toBeLessThan(1);
    expect(objectFraction(object({ state: 'DUMPED', bytesCopied: 10 }))).toBe(1);
    expect(objectFraction(object({ state: 'REPLICATING' }))).toBe(1);
  });
});

describe('tables and fields', () => {
  it('renders a borderless table with upper-case headers and aligned columns', () => {
    const text = renderTable(['id', 'name'], [['a', 'Alpha'], ['bbb', 'B']]);
    const lines = text.split('\n');
    expect(lines).toEqual(['ID   NAME', 'a    Alpha', 'bbb  B']);
    expect(text).not.toMatch(/\x1b\[/); // no colour codes
  });

  it('aligns field labels and indents continuation lines', () => {
    expect(renderFields([['ID', 'x'], ['Display name', 'one\ntwo']])).toBe('ID:           x\nDisplay name: one\n              two');
  });

  it('lists profiles, and says how to create one when there are none', () => {
    const profile: ProfileView = {
      id: 'old-pg',
      displayName: 'Old PostgreSQL',
      engine: 'postgresql',
      host: 'db1.internal',
      port: 5432,
      database: 'shop',
      username: 'migrator',
      passwordSet: true,
      tls: { mode: 'server-only', caCertificateSet: true, clientCertificateSet: false },
      connectivityMethod: 'direct',
      labels: {},
      createTime: TIME,
      updateTime: TIME,
    };
    const text = renderProfilesTable([profile]);
    expect(text.split('\n')[0]).toMatch(/^ID\s+NAME\s+ENGINE\s+ENDPOINT\s+DATABASE\s+USER\s+TLS\s+CREATED$/);
    expect(text).toContain('db1.internal:5432');
    expect(text).toContain('server-only');
    expect(text).not.toContain('password');
    expect(renderProfilesTable([])).toContain('ferry profiles create');
  });

  it('lists jobs with status, substatus, route and duration', () => {
    const text = renderJobsTable([job()]);
    const row = text.split('\n')[1]!;
    expect(row).toContain('orders-move');
    expect(row).toContain('Running');
    expect(row).toContain('Full dump in progress');
    expect(row).toContain('Old PostgreSQL → New PostgreSQL');
    expect(row).toContain('3m 05s');
    expect(renderJobsTable([])).toContain('ferry jobs create');
  });
});

describe('job views', () => {
  it('combines status and substatus', () => {
    expect(statusText(job())).toBe('Running (Full dump in progress)');
    expect(statusText(job({ statusLabel: 'Not started', substatus: null }))).toBe('Not started');
  });

  it('renders one row per table with bar, rows and bytes of the estimate, and table errors', () => {
    const text = renderObjectsTable(
      [
        object(),
        object({ name: 'public.items', state: 'COMPLETED', rowsCopied: 10, estimatedRows: 0, bytesCopied: 2048, estimatedBytes: 0 }),
        object({
          name: 'public.bad',
          state: 'FAILED',
          error: { code: 'DATA_ERROR', message: 'invalid byte sequence in row 12', retryable: false, recoverable: false, details: {}, time: TIME },
        }),
      ],
      { barWidth: 10, ascii: true },
    );
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^TABLE\s+STATE\s+PROGRESS\s+ROWS\s+BYTES$/);
    expect(lines[1]).toMatch(/public\.orders\s+dumping\s+###------- {2}25%\s+250,000 \/ ~1,000,000\s+256 MiB \/ ~1\.0 GiB/);
    expect(lines[2]).toMatch(/public\.items\s+completed\s+########## 100%\s+10\s+2\.0 KiB/);
    expect(text).toContain('public.bad: DATA_ERROR: invalid byte sequence in row 12');
    // A renamed schema adds the destination's name.
    const renamed = renderObjectsTable([object({ destination: 'app.orders' }), object({ name: 'public.items', destination: 'app.items' })], { barWidth: 0 }).split('\n');
    expect(renamed[0]).toMatch(/^TABLE\s+DESTINATION\s+STATE\s+PROGRESS/);
    expect(renamed[1]).toMatch(/^public\.orders\s+app\.orders\s+dumping/);
    expect(renderObjectsTable([])).toContain('No tables yet');
  });

  it('describes every field of a job, its error and what to do, progress, tables and events', () => {
    const failed = job({
      status: 'FAILED',
      statusLabel: 'Failed',
      substatus: 'Failed in Full dump',
      availableActions: ['restart', 'delete'],
      error: {
        code: 'AUTHENTICATION_FAILED',
        message: 'password authentication failed for user "migrator": fix the password of profile old-pg',
        retryable: true,
        recoverable: true,
        details: {},
        time: TIME,
      },
    });
    const text = renderJobDetails(failed, {
      objects: [object()],
      events: [{ id: 1, time: TIME, kind: 'action', message: 'Start requested', actor: 'cli' }],
      ascii: true,
    });
    for (const expected of [
      'ID:', 'orders-move',
      'Display name:', 'Orders to new cluster',
      'Type:', 'continuous',
      'Status:', 'Failed',
      'Substatus:', 'Failed in Full dump',
      'Available actions:', 'restart, delete',
      'Old PostgreSQL (old-pg, postgresql)',
      'New PostgreSQL (new-pg, postgresql)',
      'Connectivity:', 'direct',
      'include public; exclude public.audit_log',
      'Dump parallelism:', '8',
      'env=prod, team=payments',
      'Started:', '2024-05-01 12:00:03 UTC',
      'Ended:', 'Duration:', '3m 05s',
      'AUTHENTICATION_FAILED', 'fix the password of profile old-pg', 'recoverable: the job retries by itself',
      'tables 1 / 3', 'rows 1,500,000 / ~3,000,000', 'bytes 1.5 GiB / ~3.0 GiB', '50%',
      'public.orders',
      'Start requested',
    ]) {
      expect(text).toContain(expected);
    }
    expect(renderJobDetails(job())).not.toContain('Error');
    expect(renderJobDetails(job({ selection: { include: [], exclude: [] } }))).toMatch(/Objects:\s+all tables/);
  });

  it('draws a watch frame with status, speed and per-table bars', () => {
    const frame = renderWatchFrame(job(), {
      objects: [object()],
      bytesPerSecond: 20 * 1024 ** 2,
      rowsPerSecond: 12_000,
      ascii: true,
      now: new Date(TIME),
    });
    expect(frame.split('\n')[0]).toBe('Migration job orders-move (Orders to new cluster) · continuous · Old PostgreSQL → New PostgreSQL');
    expect(frame).toMatch(/Status:\s+Running \(Full dump in progress\)/);
    expect(frame).toMatch(/Elapsed:\s+3m 05s/);
    expect(frame).toContain('20.0 MiB/s, 12,000 rows/s');
    expect(frame).toContain('#'.repeat(15) + '-'.repeat(15) + ' 50%');
    expect(frame).toContain('public.orders');
    expect(frame).toContain('Updated 2024-05-01 12:00:03 UTC');
    // Before two polls there is no speed to show.
    expect(renderWatchFrame(job(), { objects: [] })).toMatch(/Speed:\s+-/);
    // A completed job is 100%, whatever its last estimate said.
    expect(renderWatchFrame(job({ status: 'COMPLETED', statusLabel: 'Completed', substatus: null, progress: { ...job().progress, percent: 97 } }), { objects: [], ascii: true })).toContain(
      '#'.repeat(30) + ' 100%',
    );
  });

  it('renders connection tests and verify reports with a verdict', () => {
    const test = renderConnectionTest({
      ok: false,
      serverVersion: '16.3',
      settings: { wal_level: 'replica' },
      privileges: { replication: false },
      checks: [{ code: 'WAL_LEVEL', side: 'source', severity: 'error', message: 'wal_level is replica; set it to logical and restart' }],
      error: null,
    });
    expect(test).toMatch(/Result:\s+FAILED/);
    expect(test).toMatch(/wal_level\s+replica/);
    expect(test).toMatch(/replication\s+NO/);
    expect(test).toMatch(/ERROR\s+source\s+WAL_LEVEL\s+wal_level is replica/);
    // The connection error is printed once, on stderr by the command, not in the report too.
    const refused = renderConnectionTest({
      ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [],
      error: { code: 'AUTHENTICATION_FAILED', message: 'password authentication failed for user "x"', retryable: false, recoverable: false, details: {} },
    } as Parameters<typeof renderConnectionTest>[0]);
    expect(refused).toMatch(/Result:\s+FAILED/);
    expect(refused).not.toContain('password authentication failed');

    const report = renderVerifyReport({
      ok: false,
      checks: [
        { code: 'PRIMARY_KEY', side: 'source', severity: 'warning', message: 'tables without a primary key', objects: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] },
        { code: 'DESTINATION_NOT_EMPTY', side: 'destination', severity: 'error', message: 'the destination has tables' },
      ],
    });
    // More objects than a cell holds: a short form in the table, then every object indented below it.
    expect(report).toMatch(/WARN(ING)?\s+source\s+PRIMARY_KEY\s+tables without a primary key \(details below\)/);
    expect(report).toContain('    7 objects:\n      a\n      b\n');
    expect(report.split('\n').every((line) => line.length <= 140)).toBe(true);
    const many = renderVerifyReport({
      ok: false,
      checks: [{
        code: 'FOREIGN_KEY_ACTIONS', side: 'source', severity: 'error',
        message: `Foreign keys with actions: ${Array.from({ length: 80 }, (_, i) => `shop.t${i}.fk_${i} ON UPDATE CASCADE`).join(', ')}. Remove them.`,
        objects: Array.from({ length: 80 }, (_, i) => `shop.t${i}.fk_${i}`),
      }],
    });
    expect(many.split('\n').every((line) => line.length <= 140), many).toBe(true);
    expect(many).toContain('      shop.t49.fk_49\n      ... and 30 more (-o json lists them all)');
    expect(report).toContain('Verification failed: 1 error, 1 warning. Fix the errors before starting the job.');
    expect(renderVerifyReport({ ok: true, checks: [] })).toBe('Verification passed.');
  });
});
