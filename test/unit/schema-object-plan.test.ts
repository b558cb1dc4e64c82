import { describe, expect, it } from 'vitest';
import { leftOutDefinitionsSql, planSchemaObjects, schemaObjectsCheck } from '../../src/core/schema-object-plan.js';
import type { SchemaObjectInfo } from '../../src/core/schema.js';
import { applyDefinerPolicy, definerOf, parseDefinerPolicy, plainAccount } from '../../src/engines/mysql/mysql-schema-objects.js';

const VIEW = 'CREATE ALGORITHM=UNDEFINED DEFINER=`app`@`%` SQL SECURITY DEFINER VIEW `v` AS select `shop`.`t`.`id` AS `id` from `shop`.`t`';
const objects: SchemaObjectInfo[] = [
  { kind: 'partitioned table', schema: 'shop', name: 't', definition: 'CREATE TABLE `t` (...) PARTITION BY HASH (id)' },
  { kind: 'function', schema: 'shop', name: 'f', definition: 'CREATE DEFINER=`app`@`%` FUNCTION `f`() RETURNS int RETURN 1', definer: '`app`@`%`' },
  { kind: 'view', schema: 'shop', name: 'v', definition: VIEW, definer: '`app`@`%`', dependsOn: ['shop.t'] },
  { kind: 'view', schema: 'shop', name: 'v2', definition: 'CREATE VIEW `v2` AS select 1 from `shop`.`v`', dependsOn: ['shop.v'] },
  { kind: 'view', schema: 'shop', name: 'orphan', definition: 'CREATE VIEW `orphan` AS select 1 from `shop`.`gone`', dependsOn: ['shop.gone'] },
  { kind: 'view', schema: 'shop', name: 'on_orphan', definition: 'CREATE VIEW `on_orphan` AS select 1 from `shop`.`orphan`', dependsOn: ['shop.orphan'] },
  { kind: 'trigger', schema: 'shop', name: 'stamp', definition: 'CREATE TRIGGER stamp BEFORE UPDATE ON t FOR EACH ROW SET NEW.at = NOW()', dependsOn: ['shop.t'] },
  { kind: 'event', schema: 'shop', name: 'purge', definition: 'CREATE EVENT `purge` ON SCHEDULE EVERY 1 DAY DO DELETE FROM t' },
];
const tables = ['shop.t'];

describe('planSchemaObjects', () => {
  it('MySQL to MySQL: routines and views in pre-data, triggers and events after the data or at promote; dependencies outside the job leave out', () => {
    const oneTime = planSchemaObjects(objects, { sourceEngine: 'mysql', destinationEngine: 'mysql', jobType: 'one-time', tables });
    expect(oneTime.map((p) => `${p.name}:${p.disposition}:${p.phase}`)).toEqual([
      't:carried:pre-data', 'f:carried:pre-data', 'v:carried:pre-data', 'v2:carried:pre-data',
      'orphan:left-out:null', 'on_orphan:left-out:null', 'stamp:carried:post-data', 'purge:carried:post-data',
    ]);
    expect(oneTime[4]?.reason).toContain('shop.gone');
    expect(oneTime[5]?.reason).toContain('shop.orphan');
    const continuous = planSchemaObjects(objects, { sourceEngine: 'mysql', destinationEngine: 'mysql', jobType: 'continuous', tables });
    expect(continuous.filter((p) => p.phase === 'promote').map((p) => p.name)).toEqual(['stamp', 'purge']);
  });

  it('MySQL to PostgreSQL: the partitioned table arrives whole, views, routines, triggers and events are left out with why', () => {
    const plan = planSchemaObjects(objects, { sourceEngine: 'mysql', destinationEngine: 'postgresql', jobType: 'one-time', tables });
    expect(plan[0]).toMatchObject({ disposition: 'translated', phase: 'pre-data' });
    expect(plan[0]?.reason).toContain('one ordinary table');
    expect(plan.slice(1).every((p) => p.disposition === 'left-out' && p.phase === null && (p.reason ?? '') !== '')).toBe(true);
    expect(plan.find((p) => p.kind === 'event')?.reason).toContain('pg_cron');

    const check = schemaObjectsCheck(plan);
    expect(check.severity).toBe('warning');
    expect(check.objects).toEqual(['shop.f', 'shop.v', 'shop.v2', 'shop.orphan', 'shop.on_orphan', 'shop.stamp', 'shop.purge']);
    expect(check.definitions?.['view shop.v']).toBe(VIEW);
    const sql = leftOutDefinitionsSql(plan, 'test');
    expect(sql).toContain(`${VIEW};`);
    expect(sql).toContain('-- trigger shop.stamp');
    expect(sql).not.toContain('PARTITION BY HASH');
  });

  it('PostgreSQL to PostgreSQL carries everything; PostgreSQL to MySQL leaves views and functions out', () => {
    const pg: SchemaObjectInfo[] = [
      { kind: 'view', schema: 'public', name: 'v', definition: 'CREATE VIEW public.v AS SELECT 1' },
      { kind: 'function', schema: 'public', name: 'f()', definition: 'CREATE FUNCTION public.f() ...' },
      { kind: 'index', schema: 'public', name: 'i', definition: 'CREATE INDEX i ON public.t (a)' },
    ];
    expect(planSchemaObjects(pg, { sourceEngine: 'postgresql', destinationEngine: 'postgresql', jobType: 'continuous', tables: [] }).every((p) => p.disposition === 'carried')).toBe(true);
    const toMysql = planSchemaObjects(pg, { sourceEngine: 'postgresql', destinationEngine: 'mysql', jobType: 'one-time', tables: [] });
    expect(toMysql.map((p) => p.disposition)).toEqual(['left-out', 'left-out', 'translated']);
    expect(schemaObjectsCheck([]).severity).toBe('ok');
  });
});

describe('MySQL definer policy', () => {
  it('parses keep, invoker and accounts; refuses the rest', () => {
    expect(parseDefinerPolicy(undefined)).toEqual({ kind: 'keep' });
    expect(parseDefinerPolicy('invoker')).toEqual({ kind: 'invoker' });
    expect(parseDefinerPolicy("'app'@'%'")).toMatchObject({ kind: 'user', user: 'app', host: '%', quoted: '`app`@`%`' });
    expect(() => parseDefinerPolicy('nobody')).toThrow(/keep, invoker, or an account/);
  });

  it('rewrites the DEFINER and SQL SECURITY of views and routines', () => {
    const view = objects[2] as SchemaObjectInfo;
    expect(definerOf(VIEW)).toBe('`app`@`%`');
    expect(plainAccount('`app`@`%`')).toBe('app@%');
    expect(applyDefinerPolicy(view, { kind: 'keep' }).sql).toBe(VIEW);
    expect(applyDefinerPolicy(view, parseDefinerPolicy('ops@localhost')).sql).toBe(VIEW.replace('`app`@`%`', '`ops`@`localhost`'));
    expect(applyDefinerPolicy(view, { kind: 'invoker' })).toEqual({
      sql: 'CREATE ALGORITHM=UNDEFINED SQL SECURITY INVOKER VIEW `v` AS select `shop`.`t`.`id` AS `id` from `shop`.`t`',
      after: [],
    });
    const fn = applyDefinerPolicy(objects[1] as SchemaObjectInfo, { kind: 'invoker' });
    expect(fn.sql).toBe('CREATE FUNCTION `f`() RETURNS int RETURN 1');
    expect(fn.after).toEqual(['ALTER FUNCTION `shop`.`f` SQL SECURITY INVOKER']);
  });
});
