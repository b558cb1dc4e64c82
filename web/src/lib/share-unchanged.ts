/**
 * Structural sharing for polled data: returns `next`, but with every part that is equal to
 * the same part of `previous` replaced by the previous object. When nothing changed it
 * returns `previous` itself, so React skips the render; when one job changed, only that
 * job is a new object, so memoized rows of the others skip theirs. Arrays of objects with
 * an `id` are matched by id (a row that moved keeps its object).
 */
export function shareUnchanged<T>(previous: T, next: T): T {
  if (Object.is(previous, next)) return previous;
  if (typeof previous !== 'object' || typeof next !== 'object' || previous === null || next === null) return next;
  if (Array.isArray(previous) !== Array.isArray(next)) return next;

  if (Array.isArray(previous) && Array.isArray(next)) {
    const byId = new Map<unknown, unknown>();
    for (const item of previous) if (hasId(item)) byId.set(item.id, item);
    let same = previous.length === next.length;
    const shared = next.map((item, index) => {
      const before = hasId(item) && byId.has(item.id) ? byId.get(item.id) : previous[index];
      const kept = shareUnchanged(before, item);
      if (kept !== previous[index]) same = false;
      return kept;
    });
    return (same ? previous : shared) as T;
  }

  const before = previous as Record<string, unknown>;
  const after = next as Record<string, unknown>;
  const keys = Object.keys(after);
  let same = keys.length === Object.keys(before).length;
  const shared: Record<string, unknown> = {};
  for (const key of keys) {
    const kept = key in before ? shareUnchanged(before[key], after[key]) : after[key];
    if (kept !== before[key] || !(key in before)) same = false;
    shared[key] = kept;
  }
  return (same ? previous : shared) as T;
}

function hasId(value: unknown): value is { id: unknown } {
  return typeof value === 'object' && value !== null && 'id' in value;
}
