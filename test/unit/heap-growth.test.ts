import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../src/heap-growth.js';

describe('limitHeapGrowth (ferry serve)', () => {
  it('applies Ferry\'s heap growing percent when node was started without one', () => {
    expect(limitHeapGrowth(['--enable-source-maps'])).toBe(HEAP_GROWING_PERCENT);
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
    expect(HEAP_GROWING_PERCENT).toBeLessThanOrEqual(100);
  });

  it('leaves a value given on node\'s command line in force, in either spelling', () => {
    expect(limitHeapGrowth(['--heap-growing-percent=50'])).toBe(50);
    expect(limitHeapGrowth(['--heap_growing_percent=20'])).toBe(20);
    expect(limitHeapGrowth(['--heap-growing-percent=0'])).toBeNull();
  });
});
