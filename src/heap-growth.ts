/**
 * A process-level memory setting of `ferry serve`: how far V8 lets the old generation grow
 * past what survived the last full collection before it collects again.
 *
 * V8's default factor is up to 4x on a machine with memory, so a server whose live heap is
 * 50 MiB lets garbage pile up to about 200 MiB before a full collection: during a catch-up
 * (change events live long enough to be promoted, then die) RSS peaked at 270-300 MiB with a
 * live heap of 50-70 MiB. Capping the factor at 1 + HEAP_GROWING_PERCENT/100 keeps the old
 * generation within live x 1.6 (plus V8's minimum step of a few MiB) at the price of more
 * frequent full collections, which mark only the live heap. 60, not lower: at 30 the full
 * collections took a fifth of `ferry serve`'s CPU in a catch-up (`node bench/catchup-cpu.mjs`:
 * 5.3 CPU us per row change at 30, 4.2 at 60, 4.4 at 100; peak RSS 154-160, 164-167 and
 * 169-172 MiB).
 *
 * `--heap-growing-percent` is read at every full collection, so unlike the heap's size flags
 * it can be set after start (v8.setFlagsFromString). A `node --heap-growing-percent=N` given
 * on the command line wins.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 60;

/** Applies HEAP_GROWING_PERCENT unless the process was started with its own; returns the value in force (null: V8's default). */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): number | null {
  const given = execArgv.find((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a));
  if (given !== undefined) {
    const value = Number(given.split('=')[1]);
    return Number.isFinite(value) && value > 0 ? value : null;
  }
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
