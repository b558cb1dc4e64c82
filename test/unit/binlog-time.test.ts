import { describe, expect, it } from 'vitest';
import { binlogTime } from '../../src/engines/mysql/mysql-change-reader.js';

// Binlog timestamps are whole seconds: the lag must not read up to a second too high.
describe('binlogTime', () => {
  const second = Date.parse('2026-01-01T00:00:07.000Z');

  it('takes the receipt when the event arrives within the second it names (caught up)', () => {
    expect(binlogTime(second, second + 930)).toBe(second + 930);
    expect(binlogTime(second, second + 5)).toBe(second + 5);
  });

  it('never puts the commit after its receipt, even with the source clock ahead', () => {
    expect(binlogTime(second, second - 200)).toBe(second - 200);
  });

  it('takes the middle of the second for a backlog, off by half a second at most', () => {
    expect(binlogTime(second, second + 1000)).toBe(second + 500);
    expect(binlogTime(second, second + 60_000)).toBe(second + 500);
  });

  it('takes the receipt when the event has no timestamp', () => {
    expect(binlogTime(0, second)).toBe(second);
  });
});
