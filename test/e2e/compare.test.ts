/**
 * The oracle must be able to fail: equal databases give no difference, and a single changed
 * cell, a missing row, a missing table, a changed type, a sequence behind, a missing index or
 * constraint each give one. So does each thing the destination has in excess or otherwise
 * different: an extra table, schema, view, function, trigger, index or constraint, a column's
 * collation, nullability or default, a table's replica identity, a foreign key's action.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compareDatabases, formatDifferences } from '../helpers/compare.js';
import { createDatabasePair } from '../helpers/postgres.js';

type Pair = Awaited<ReturnType<typeof createDatabasePair>>;

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE SCHEMA other;
  CREATE TABLE public.items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    price numeric(12, 2),
    tags text[],
    m mood,
    p posint,
    data jsonb,
    at timestamptz,
    CONSTRAINT items_price_check CHECK (price >= 0)
  );
  CREATE INDEX items_name_idx ON public.items (name);
  CREATE TABLE other."Mixed" (k bigint PRIMARY KEY, item_id integer REFERENCES public.items (id), v double precision);
  CREATE TABLE public.nopk (a integer, b text);
  CREATE VIEW public.cheap AS SELECT id, name FROM public.items WHERE price < 10;
  CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
  CREATE TRIGGER items_touch BEFORE UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.touch();
`;

const DATA = `
  INSERT INTO public.items (name, price, tags, m, p, data, at)
  SELECT 'item ' || g, g * 1.5, ARRAY['a', NULL, 'c' || g], 'ok', g, jsonb_build_object('g', g), '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
    FROM generate_series(1, 1000) g;
  INSERT INTO other."Mixed" SELECT g, (g % 500) + 1, g / 7.0 FROM generate_series(1, 2000) g;
  INSERT INTO public.nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL);
`;

describe('compareDatabases (the oracle)', () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await createDatabasePair('ferry_cmp');
  });

  afterAll(async () => {
    await pair?.drop();
  });

  beforeEach(async () => {
    for (const db of [pair.source, pair.destination]) {
      await db.client.query('DROP SCHEMA IF EXISTS other CASCADE; DROP SCHEMA IF EXISTS extra CASCADE; DROP SCHEMA IF EXISTS _ferry CASCADE; DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
      await db.client.query('DROP TYPE IF EXISTS mood; DROP DOMAIN IF EXISTS posint;');
      await db.client.query(SCHEMA);
      await db.client.query(DATA);
    }
  });

  const compare = (chunkSize?: number) =>
    compareDatabases(pair.source.client, pair.destination.client, chunkSize === undefined ? {} : { chunkSize });

  it('finds no difference between identical databases', async () => {
    const differences = await compare();
    expect(differences, formatDifferences(differences)).toEqual([]);
    // Small chunks: many cursor round trips, same answer.
    expect(await compare(7)).toEqual([]);
  });

  it('reports one changed cell, with both values of the row', async () => {
    await pair.destination.client.query(`UPDATE public.items SET price = 1500.01 WHERE id = 1000`);
    const differences = await compare();
    expect(differences).toHaveLength(1);
    const [d] = differences;
    expect(d!.kind).toBe('row');
    expect(d!.object).toBe('public.items');
    expect(String(d!.source)).toContain('1500.00');
    expect(String(d!.destination)).toContain('1500.01');
  });

  it('reports a changed cell found in a late chunk', async () => {
    await pair.destination.client.query(`UPDATE other."Mixed" SET v = v + 1e-12 WHERE k = 1999`);
    const differences = await compare(64);
    expect(differences.map((d) => [d.kind, d.object])).toEqual([['row', 'other.Mixed']]);
  });

  it('reports a NULL that became an empty string, and a lost duplicate row', async () => {
    await pair.destination.client.query(`UPDATE public.nopk SET b = '' WHERE a IS NULL`);
    let differences = await compare();
    expect(differences.map((d) => d.kind)).toEqual(['row']);

    await pair.destination.client.query(`DELETE FROM public.nopk; INSERT INTO public.nopk VALUES (1, 'x'), (NULL, NULL), (NULL, NULL)`);
    differences = await compare();
    expect(differences.map((d) => d.kind)).toEqual(['row']);

    await pair.destination.client.query(`DELETE FROM public.nopk; INSERT INTO public.nopk VALUES (1, 'x'), (NULL, NULL)`);
    differences = await compare();
    expect(differences.map((d) => d.kind).sort()).toEqual(['row', 'row-count']);
  });

  it('reports a missing table, a changed column type and a missing row', async () => {
    await pair.destination.client.query(`DROP TABLE public.nopk`);
    await pair.destination.client.query(`ALTER TABLE other."Mixed" ALTER COLUMN v TYPE real`);
    await pair.destination.client.query(`DELETE FROM public.items WHERE id = 700`);
    const differences = await compare();
    const kinds = differences.map((d) => `${d.kind} ${d.object}`).sort();
    expect(kinds).toContain('missing-table public.nopk');
    expect(kinds).toContain('column-type other.Mixed.v');
    expect(kinds).toContain('row-count public.items');
    expect(kinds).toContain('row public.items');
  });

  it('reports a sequence behind, a missing index, a missing constraint and a changed enum', async () => {
    await pair.destination.client.query(`SELECT setval('public.items_id_seq', 10)`);
    await pair.destination.client.query(`DROP INDEX public.items_name_idx`);
    await pair.destination.client.query(`ALTER TABLE public.items DROP CONSTRAINT items_price_check`);
    await pair.destination.client.query(`ALTER TYPE mood ADD VALUE 'meh'`);
    const differences = await compare();
    const kinds = differences.map((d) => `${d.kind} ${d.object}`).sort();
    expect(kinds).toEqual([
      'constraint public.items.items_price_check',
      'index public.items.items_name_idx',
      'sequence public.items_id_seq',
      'type public.mood',
    ]);
  });

  /** The one difference a single change on the destination makes, as `kind object`. */
  const only = async (sql: string) => {
    await pair.destination.client.query(sql);
    const differences = await compare();
    return differences.map((d) => `${d.kind} ${d.object}`);
  };

  it('reports an extra table, an extra schema, an extra view, function and trigger on the destination', async () => {
    expect(await only(`CREATE TABLE public.leftover (x int)`)).toEqual(['extra-table public.leftover']);
    await pair.destination.client.query(`DROP TABLE public.leftover`);
    expect(await only(`CREATE SCHEMA extra`)).toEqual(['extra-schema extra']);
    await pair.destination.client.query(`DROP SCHEMA extra`);
    expect(await only(`CREATE VIEW public.everything AS SELECT * FROM public.items`)).toEqual(['view public.everything']);
    await pair.destination.client.query(`DROP VIEW public.everything`);
    expect(await only(`CREATE FUNCTION public.two() RETURNS int LANGUAGE sql AS 'SELECT 2'`)).toEqual(['function public.two()']);
    await pair.destination.client.query(`DROP FUNCTION public.two()`);
    expect(await only(`CREATE TRIGGER items_touch_too BEFORE INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.touch()`)).toEqual(['trigger public.items.items_touch_too']);
    await pair.destination.client.query(`DROP TRIGGER items_touch_too ON public.items`);
    expect(await only(`ALTER TABLE public.items DISABLE TRIGGER items_touch`)).toEqual(['trigger public.items.items_touch']);
    await pair.destination.client.query(`ALTER TABLE public.items ENABLE TRIGGER items_touch`);
    // A view whose definition changed, and one missing.
    expect(await only(`CREATE OR REPLACE VIEW public.cheap AS SELECT id, name FROM public.items WHERE price < 11`)).toEqual(['view public.cheap']);
    expect(await only(`DROP VIEW public.cheap`)).toEqual(['view public.cheap']);
    expect(await compare()).toHaveLength(1);
  });

  it("leaves out Ferry's bookkeeping schema _ferry (and only it)", async () => {
    await pair.destination.client.query(`CREATE SCHEMA _ferry; CREATE TABLE _ferry.replication_position (job_id text PRIMARY KEY, position text NOT NULL)`);
    const differences = await compare();
    expect(differences, formatDifferences(differences)).toEqual([]);
  });

  it('reports a different collation, replica identity, nullability, default and type, each named', async () => {
    expect(await only(`ALTER TABLE public.nopk ALTER COLUMN b TYPE text COLLATE "C"`)).toEqual(['collation public.nopk.b']);
    await pair.destination.client.query(`ALTER TABLE public.nopk ALTER COLUMN b TYPE text COLLATE "default"`);
    expect(await only(`ALTER TABLE public.nopk REPLICA IDENTITY FULL`)).toEqual(['replica-identity public.nopk']);
    await pair.destination.client.query(`ALTER TABLE public.nopk REPLICA IDENTITY DEFAULT`);
    expect(await only(`ALTER TABLE other."Mixed" ALTER COLUMN v SET NOT NULL`)).toEqual(['column-nullability other.Mixed.v']);
    await pair.destination.client.query(`ALTER TABLE other."Mixed" ALTER COLUMN v DROP NOT NULL`);
    expect(await only(`ALTER TABLE public.items ALTER COLUMN at SET DEFAULT now()`)).toEqual(['column-default public.items.at']);
    await pair.destination.client.query(`ALTER TABLE public.items ALTER COLUMN at DROP DEFAULT`);
    expect(await only(`ALTER TABLE public.items ALTER COLUMN at TYPE timestamp(3) with time zone`)).toEqual(['column-type public.items.at']);
  });

  it('reports an extra index, an extra constraint and a changed foreign key action', async () => {
    expect(await only(`CREATE INDEX items_at_idx ON public.items (at)`)).toEqual(['index public.items.items_at_idx']);
    await pair.destination.client.query(`DROP INDEX public.items_at_idx`);
    expect(await only(`ALTER TABLE public.items ADD CONSTRAINT items_name_key UNIQUE (name)`).then((k) => k.sort())).toEqual(['constraint public.items.items_name_key', 'index public.items.items_name_key']);
    await pair.destination.client.query(`ALTER TABLE public.items DROP CONSTRAINT items_name_key`);
    expect(
      await only(`ALTER TABLE other."Mixed" DROP CONSTRAINT "Mixed_item_id_fkey", ADD CONSTRAINT "Mixed_item_id_fkey" FOREIGN KEY (item_id) REFERENCES public.items (id) ON DELETE CASCADE`),
    ).toEqual(['constraint other.Mixed.Mixed_item_id_fkey']);
  });
});
