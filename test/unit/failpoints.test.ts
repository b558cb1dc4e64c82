import { describe, expect, it } from 'vitest';
import { parseFailpoints } from '../../src/pipeline/failpoints.js';

describe('FERRY_FAILPOINTS parsing', () => {
  it('reads kill, kill@N and pause; absent or empty arms nothing', () => {
    const armed = parseFailpoints('after-destination-commit=kill@3, after-table-copy=pause,in-create-replication=kill');
    expect(Object.fromEntries(armed)).toEqual({
      'after-destination-commit': { action: 'kill', at: 3, hits: 0 },
      'after-table-copy': { action: 'pause', at: 1, hits: 0 },
      'in-create-replication': { action: 'kill', at: 1, hits: 0 },
    });
    expect(parseFailpoints(undefined).size).toBe(0);
    expect(parseFailpoints('').size).toBe(0);
  });

  it('refuses an unknown name or action with the valid forms', () => {
    expect(() => parseFailpoints('after-commit=kill')).toThrow(/cannot read "after-commit=kill".*after-destination-commit/);
    expect(() => parseFailpoints('after-table-copy=crash')).toThrow(/name=kill, name=kill@N or name=pause/);
    expect(() => parseFailpoints('after-table-copy=kill@0')).toThrow(/cannot read/);
  });
});
