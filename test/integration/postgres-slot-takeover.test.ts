/**
 * Slot takeover on the real PostgreSQL source: a job's slot still streamed by another
 * connection (the walsender of a node that lost the job's lease) refuses a second reader, unless
 * the reader is the lease holder's (`takeOverSlot`), which terminates that walsender and streams:
 * the stale reader's stream ends, the new one receives the changes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { ChangeEvent, ChangeReader, ReplicationSpec } from '../../src/engines/engine.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { createTestDatabase, PG_SOURCE_PORT, type TestDatabase } from '../helpers/postgres.js';

/** Reads a reader's events in the background until its stream ends or fails. */
function collect(reader: ChangeReader): { events: ChangeEvent[]; ended: Promise<unknown> } {
  const events: ChangeEvent[] = [];
  const ended = (async () => {
    try {
      for await (const chunk of reader.events()) events.push(...chunk);
      return null;
    } catch (error) {
      return error;
    }
  })();
  return { events, ended };
}

describe('taking over a PostgreSQL slot held by a stale reader', () => {
  let source: TestDatabase;
  const suffix = randomBytes(5).toString('hex');
  const spec: ReplicationSpec = { slotName: `ferry_test_takeover_${suffix}`, publicationName: `ferry_test_takeover_${suffix}` };
  let start = '';
  const readers: ChangeReader[] = [];

  beforeAll(async () => {
    source = await createTestDatabase(PG_SOURCE_PORT, 'ferry_takeover');
    await source.client.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
    start = (await postgresEngine.createReplication(source.params, spec, [{ schema: 'public', name: 'items' }])).startPosition;
  }, 60_000);

  afterAll(async () => {
    for (const reader of readers) await reader.close().catch(() => undefined);
    await postgresEngine.dropReplication(source.params, spec).catch(() => undefined);
    await source?.drop();
  }, 60_000);

  it('refuses a second reader, and the lease holder takes the slot over', async () => {
    const stale = await postgresEngine.openChangeReader(source.params, spec, start);
    readers.push(stale);
    const staleStream = collect(stale);

    const refused = await postgresEngine.openChangeReader(source.params, spec, start).then(() => null, (error: unknown) => error);
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).details.slotActive).toBe(true);

    const owner = await postgresEngine.openChangeReader(source.params, spec, start, { takeOverSlot: true });
    readers.push(owner);
    const ownerStream = collect(owner);
    // The stale walsender was terminated: its stream ends with an error.
    expect(await staleStream.ended).toBeInstanceOf(FerryError);

    await source.client.query(`INSERT INTO items VALUES (1, 'after the takeover')`);
    const deadline = Date.now() + 20_000;
    while (!ownerStream.events.some((e) => e.kind === 'change')) {
      if (Date.now() > deadline) throw new Error('the new reader received no change');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(staleStream.events.some((e) => e.kind === 'change')).toBe(false);
  }, 60_000);
});
