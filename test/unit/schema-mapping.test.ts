import { describe, expect, it } from 'vitest';
import {
  destinationSchemaName,
  mapDatabaseSchema,
  mapQualifiedName,
  resolveSchemaMapping,
  rewriteQualifiedNames,
  validateSchemaMapping,
} from '../../src/core/schema-mapping.js';
import type { DatabaseSchema, TableSchema } from '../../src/core/schema.js';

function table(schema: string, name: string, patch: Partial<TableSchema> = {}): TableSchema {
  return {
    schema, name, columns: [], primaryKey: null, uniqueConstraints: [], checkConstraints: [], indexes: [], foreignKeys: [],
    estimatedRows: 0, estimatedBytes: 0, replicaIdentity: null, ...patch,
  };
}

const column = (name: string, nativeType: string, defaultExpression: string | null = null) => ({
  name, nativeType, nullable: true, defaultExpression, identity: null, generatedExpression: null, collation: null,
});

describe('schema mapping names', () => {
  it('maps a schema and keeps the others', () => {
    expect(destinationSchemaName({ public: 'app' }, 'public')).toBe('app');
    expect(destinationSchemaName({ public: 'app' }, 'other')).toBe('other');
    expect(destinationSchemaName({}, 'constructor')).toBe('constructor');
    expect(mapQualifiedName({ public: 'app' }, { schema: 'public', name: 't' })).toEqual({ schema: 'app', name: 't' });
  });

  it('validates explicit pairs, naming the field', () => {
    expect(validateSchemaMapping({ a: 'x', b: 'y' }, 'postgresql')).toEqual([]);
    expect(validateSchemaMapping({ a: 'x', b: 'x' }, 'mysql').map((p) => p.path)).toEqual(['schemaMapping.b']);
    expect(validateSchemaMapping({ a: '' }, 'mysql')[0]?.message).toMatch(/empty/);
    expect(validateSchemaMapping({ a: 'pg_x' }, 'postgresql')[0]?.message).toMatch(/pg_/);
    expect(validateSchemaMapping({ a: 'x'.repeat(64) }, 'postgresql')[0]?.message).toMatch(/63 bytes/);
    expect(validateSchemaMapping({ a: 'x'.repeat(64) }, 'mysql')).toEqual([]);
    expect(validateSchemaMapping({ a: 'x'.repeat(65) }, 'mysql')[0]?.message).toMatch(/64 characters/);
    expect(validateSchemaMapping({ a: 'x ' }, 'mysql')[0]?.message).toMatch(/ends with a space/);
    expect(validateSchemaMapping({ a: 'mysql' }, 'mysql')[0]?.message).toMatch(/system database/);
    expect(validateSchemaMapping({ a: '_ferry' }, 'postgresql')[0]?.message).toMatch(/Ferry keeps its own state/);
    expect(validateSchemaMapping({ '': 'x' }, 'postgresql')[0]?.path).toBe('schemaMapping');
  });
});

describe('resolveSchemaMapping', () => {
  it('maps the one selected schema onto the MySQL destination profile database', () => {
    const resolved = resolveSchemaMapping({ explicit: {}, sourceSchemas: ['public'], destinationEngine: 'mysql', destinationDatabase: 'shop' });
    expect(resolved.mapping).toEqual({ public: 'shop' });
    expect(resolved.checks).toEqual([expect.objectContaining({ code: 'SCHEMA_MAPPING', severity: 'ok', objects: ['public -> shop'] })]);
  });

  it('refuses several schemas onto one MySQL database without explicit pairs', () => {
    const resolved = resolveSchemaMapping({ explicit: {}, sourceSchemas: ['a', 'b'], destinationEngine: 'mysql', destinationDatabase: 'shop' });
    expect(resolved.checks.map((c) => c.severity)).toEqual(['error']);
    expect(resolved.checks[0]?.message).toMatch(/--map-schema/);
  });

  it('lets explicit pairs win over the profile database and keeps unmapped schemas', () => {
    const resolved = resolveSchemaMapping({ explicit: { a: 'x' }, sourceSchemas: ['a', 'b'], destinationEngine: 'mysql', destinationDatabase: 'shop' });
    expect(resolved.mapping).toEqual({ a: 'x' });
    expect(resolved.checks[0]?.objects).toEqual(['a -> x', 'b -> b']);
  });

  it('ignores the database of a PostgreSQL destination profile', () => {
    const resolved = resolveSchemaMapping({ explicit: {}, sourceSchemas: ['a', 'b'], destinationEngine: 'postgresql', destinationDatabase: 'shop' });
    expect(resolved.mapping).toEqual({});
    expect(resolved.checks[0]?.severity).toBe('ok');
  });

  it('refuses a source schema outside the selection and two schemas landing in one', () => {
    const unknown = resolveSchemaMapping({ explicit: { nope: 'x' }, sourceSchemas: ['a'], destinationEngine: 'postgresql', destinationDatabase: null });
    expect(unknown.checks[0]?.message).toMatch(/"nope", which the job's selection does not include/);
    const collision = resolveSchemaMapping({ explicit: { a: 'b' }, sourceSchemas: ['a', 'b'], destinationEngine: 'postgresql', destinationDatabase: null });
    expect(collision.checks.map((c) => c.severity)).toEqual(['error']);
    expect(collision.checks[0]?.message).toMatch(/a, b would all land in the destination schema "b"/);
  });
});

describe('rewriteQualifiedNames', () => {
  const rename = (o: { schema: string; name: string }) => (o.schema === 'public' || o.schema === 'My.Schema' ? { schema: 'New "App"', name: o.name } : null);

  it('rewrites PostgreSQL chains, regclass literals and casts, but not string contents', () => {
    const simple = (o: { schema: string; name: string }) => (o.schema === 'public' ? { schema: 'app', name: o.name } : null);
    expect(rewriteQualifiedNames("nextval('public.s'::regclass)", 'postgresql', simple)).toBe("nextval('app.s'::regclass)");
    expect(rewriteQualifiedNames("'happy'::public.mood", 'postgresql', simple)).toBe("'happy'::app.mood");
    expect(rewriteQualifiedNames('public.mood[]', 'postgresql', simple)).toBe('app.mood[]');
    expect(rewriteQualifiedNames("CHECK (((a)::text <> 'public.t'::text))", 'postgresql', simple)).toBe("CHECK (((a)::text <> 'public.t'::text))");
    expect(rewriteQualifiedNames('CREATE INDEX i ON public.t USING btree (a) WHERE (b = public.f(a))', 'postgresql', (o) => (o.name === 't' ? simple(o) : null)))
      .toBe('CREATE INDEX i ON app.t USING btree (a) WHERE (b = public.f(a))');
    expect(rewriteQualifiedNames('FOREIGN KEY (a) REFERENCES public.t(id) ON DELETE CASCADE', 'postgresql', simple))
      .toBe('FOREIGN KEY (a) REFERENCES app.t(id) ON DELETE CASCADE');
    expect(rewriteQualifiedNames("E'it''s public.t \\' public.t'", 'postgresql', simple)).toBe("E'it''s public.t \\' public.t'");
    expect(rewriteQualifiedNames('$x$ public.t $x$ || public.t', 'postgresql', simple)).toBe('$x$ public.t $x$ || app.t');
  });

  it('quotes what it writes: mixed case, dots, quotes and keywords', () => {
    expect(rewriteQualifiedNames('REFERENCES "My.Schema"."T""x"(id)', 'postgresql', rename)).toBe('REFERENCES "New ""App"""."T""x"(id)');
    expect(rewriteQualifiedNames("nextval('\"My.Schema\".\"S\"'::regclass)", 'postgresql', rename)).toBe("nextval('\"New \"\"App\"\"\".\"S\"'::regclass)");
    const keyword = (o: { schema: string; name: string }) => (o.schema === 'a' ? { schema: 'user', name: o.name } : null);
    expect(rewriteQualifiedNames('a.t', 'postgresql', keyword)).toBe('"user".t');
    const upper = (o: { schema: string; name: string }) => (o.schema === 'a' ? { schema: 'App', name: o.name } : null);
    expect(rewriteQualifiedNames('a.t.col', 'postgresql', upper)).toBe('"App".t.col');
    expect(rewriteQualifiedNames('x.a.t', 'postgresql', upper)).toBe('x.a.t');
  });

  it('rewrites MySQL backquoted names and skips its string literals', () => {
    const simple = (o: { schema: string; name: string }) => (o.schema === 'shop' ? { schema: 'sh`op2', name: o.name } : null);
    expect(rewriteQualifiedNames('FOREIGN KEY (`a`) REFERENCES `shop`.`t` (`id`) ON DELETE CASCADE', 'mysql', simple))
      .toBe('FOREIGN KEY (`a`) REFERENCES `sh``op2`.`t` (`id`) ON DELETE CASCADE');
    expect(rewriteQualifiedNames("CREATE INDEX `i` ON `shop`.`t` (`a`(10)) COMMENT 'x\\' `shop`.`t`'", 'mysql', simple))
      .toBe("CREATE INDEX `i` ON `sh``op2`.`t` (`a`(10)) COMMENT 'x\\' `shop`.`t`'");
  });
});

describe('mapDatabaseSchema', () => {
  it('renames every object of a PostgreSQL schema and the references to them', () => {
    const schema: DatabaseSchema = {
      engine: 'postgresql',
      schemas: ['public'],
      tables: [
        table('public', 'parent', {
          columns: [column('id', 'integer', "nextval('public.parent_id_seq'::regclass)"), column('m', 'public.mood[]'), column('c', 'public.citext')],
          indexes: [{ name: 'parent_m', definition: 'CREATE INDEX parent_m ON public.parent USING btree (m)' }],
        }),
        table('public', 'child', {
          foreignKeys: [{ name: 'fk', definition: 'FOREIGN KEY (p) REFERENCES public.parent(id)', referencedTable: { schema: 'public', name: 'parent' } }],
          checkConstraints: [{ name: 'ck', definition: "CHECK ((d)::text <> 'x'::public.dom)" }],
        }),
      ],
      sequences: [{ schema: 'public', name: 'parent_id_seq', dataType: 'integer', start: '1', increment: '1', minValue: '1', maxValue: '10', cache: '1', cycle: false, lastValue: null, ownedBy: { table: { schema: 'public', name: 'parent' }, column: 'id' }, identity: false }],
      enums: [{ schema: 'public', name: 'mood', labels: ['a'] }],
      domains: [{ schema: 'public', name: 'dom', baseType: 'public.mood', notNull: false, defaultExpression: null, checks: [] }],
      extensions: ['citext'],
    };
    const mapped = mapDatabaseSchema(schema, { public: 'app' });
    expect(mapped.schemas).toEqual(['app']);
    const [parent, child] = mapped.tables;
    expect(parent?.schema).toBe('app');
    expect(parent?.columns.map((c) => [c.nativeType, c.defaultExpression])).toEqual([
      ['integer', "nextval('app.parent_id_seq'::regclass)"],
      ['app.mood[]', null],
      // An extension's type keeps its schema.
      ['public.citext', null],
    ]);
    expect(parent?.indexes[0]?.definition).toBe('CREATE INDEX parent_m ON app.parent USING btree (m)');
    expect(child?.foreignKeys[0]).toMatchObject({ definition: 'FOREIGN KEY (p) REFERENCES app.parent(id)', referencedTable: { schema: 'app', name: 'parent' } });
    expect(child?.checkConstraints[0]?.definition).toBe("CHECK ((d)::text <> 'x'::app.dom)");
    expect(mapped.sequences[0]).toMatchObject({ schema: 'app', ownedBy: { table: { schema: 'app', name: 'parent' } } });
    expect(mapped.enums[0]?.schema).toBe('app');
    expect(mapped.domains[0]).toMatchObject({ schema: 'app', baseType: 'app.mood' });
    // The source model is not changed.
    expect(schema.tables[0]?.schema).toBe('public');
    expect(mapDatabaseSchema(schema, {})).toBe(schema);
  });
});
