/**
 * The engine parts of work spread, against the two real clusters: a reader that imports a
 * snapshot exported by another session reads that instant (and is refused with SNAPSHOT_LOST
 * once the exporter closed it); the destination's work item markers let an item's load commit
 * once (a second copy rolls back, saying the item is already committed), refuse a load of an
 * earlier attempt, and leave nothing behind once forgotten.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { TableSchema } from '../../src/core/schema.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { createDatabasePair } from '../helpers/postgres.js';

const rowsOf = (text: string) => Readable.from([text]);

describe('work items on PostgreSQL: snapshot import and destination markers', () => {
  let dbs: Awaited<ReturnType<typeof createDatabasePair>>;
  let table: TableSchema;

  beforeAll(async () => {
    dbs = await createDatabasePair('ferry_workitems');
    for (const db of [dbs.source, dbs.destination]) await db.client.query('CREATE TABLE public.t (id int PRIMARY KEY, v text)');
    await dbs.source.client.query(`INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 1000) g`);
    const schema = await postgresEngine.readSchema(dbs.source.params, { include: [], exclude: [] });
    table = schema.tables.find((t) => t.name === 't') as TableSchema;
  });

  afterAll(async () => {
    await dbs?.drop();
  });

  it('a reader on another session\'s exported snapshot reads its instant, and is refused once the snapshot is closed', async () => {
    const snapshot = await postgresEngine.openSnapshot(dbs.source.params);
    await dbs.source.client.query(`DELETE FROM public.t WHERE id > 900`);
    try {
      const reader = await postgresEngine.openSnapshotReader(dbs.source.params, snapshot.id);
      const chunks: Buffer[] = [];
      for await (const chunk of reader.copyOut(table)) chunks.push(chunk as Buffer);
      await reader.close();
      expect(Buffer.concat(chunks).toString().trim().split('\n')).toHaveLength(1000);
    } finally {
      await snapshot.close();
      await dbs.source.client.query(`INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(901, 1000) g`);
    }
    const refused = await postgresEngine.openSnapshotReader(dbs.source.params, snapshot.id).then(() => null, (error: unknown) => error);
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).code).toBe('SNAPSHOT_LOST');
  });

  it('an item commits once; a load of an earlier attempt rolls back; forgetting leaves no _ferry', async () => {
    const [a, b] = await Promise.all([postgresEngine.openTableWriter(dbs.destination.params), postgresEngine.openTableWriter(dbs.destination.params)]);
    try {
      await a.prepareWorkItems?.('job-w', ['x1-0', 'x1-1']);
      const first = await a.appendTableData?.(table, rowsOf('1\tone\n2\ttwo\n'), AbortSignal.timeout(30_000), { workItem: { jobKey: 'job-w', itemId: 'x1-0' } });
      expect(first?.rows).toBe(2);
      // A second copy of the same item (its first node was thought dead): rolled back, nothing kept.
      const again = await b.appendTableData?.(table, rowsOf('1\tone\n2\ttwo\n'), AbortSignal.timeout(30_000), { workItem: { jobKey: 'job-w', itemId: 'x1-0' } }).then(() => null, (error: unknown) => error);
      expect((again as FerryError).code).toBe('FAILED_PRECONDITION');
      expect((again as FerryError).details).toMatchObject({ superseded: true, alreadyCommitted: true });
      // A new attempt replaces the markers: the earlier attempt's other item can no longer commit.
      await a.prepareWorkItems?.('job-w', ['x2-0']);
      const stale = await b.appendTableData?.(table, rowsOf('3\tthree\n'), AbortSignal.timeout(30_000), { workItem: { jobKey: 'job-w', itemId: 'x1-1' } }).then(() => null, (error: unknown) => error);
      expect((stale as FerryError).details).toMatchObject({ superseded: true, alreadyCommitted: false });
      // A whole-table item replaces the table under its marker.
      const whole = await b.replaceTableData(table, rowsOf('7\tseven\n'), AbortSignal.timeout(30_000), { workItem: { jobKey: 'job-w', itemId: 'x2-0' } });
      expect(whole.rows).toBe(1);
      expect((await dbs.destination.client.query('SELECT id FROM public.t ORDER BY id')).rows).toEqual([{ id: 7 }]);
      await a.forgetWorkItems?.('job-w');
      expect((await dbs.destination.client.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_ferry'`)).rowCount).toBe(0);
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
});
