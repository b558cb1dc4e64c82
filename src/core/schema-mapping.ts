/**
 * Schema mapping: a PostgreSQL schema or a MySQL database of the source lands under another
 * name on the destination (`--map-schema SRC=DST`). Pure.
 *
 * The job holds the explicit pairs; `resolveSchemaMapping` adds what the destination implies
 * (a MySQL destination profile that names a database receives the one selected source schema)
 * and `mapDatabaseSchema` renames a source schema model to destination names before the
 * destination's writers see it. Names are rebuilt from structured fields where the model has
 * them; SQL text that carries qualified names (PostgreSQL index and foreign key definitions,
 * defaults such as `nextval('public.s'::regclass)`, casts to enum and domain types, MySQL index
 * and foreign key definitions) is rewritten by a tokenizer that skips string literals and
 * quotes what it writes. Only references to the objects the job creates (its tables, sequences,
 * enums, domains) and to the tables its foreign keys reference are renamed: extension types and
 * functions (`public.citext`, `public.uuid_generate_v4()`) keep their schema, as Ferry creates
 * the extension where the destination has it.
 */
import type { EngineKind } from './connection-profile.js';
import type { PairCheck } from './job-checks.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from './schema.js';

/** Source schema (PostgreSQL) or database (MySQL) name → destination name. */
export type SchemaMapping = Record<string, string>;

/** The destination name of a source schema: its mapped name, else its own. */
export function destinationSchemaName(mapping: SchemaMapping, sourceSchema: string): string {
  return Object.hasOwn(mapping, sourceSchema) ? (mapping[sourceSchema] as string) : sourceSchema;
}

/** The object with its schema mapped to the destination's (a copy; other fields kept). */
export function mapQualifiedName<T extends QualifiedName>(mapping: SchemaMapping, name: T): T {
  const schema = destinationSchemaName(mapping, name.schema);
  return schema === name.schema ? name : { ...name, schema };
}

/** True when no schema changes name. */
export function isIdentityMapping(mapping: SchemaMapping): boolean {
  return Object.entries(mapping).every(([source, destination]) => source === destination);
}

/** One problem with a mapping, with the field it is about (`schemaMapping.<source>`). */
export interface SchemaMappingProblem {
  path: string;
  message: string;
}

/** Schema names Ferry keeps for itself on the destination (the applier's position table). */
const FERRY_SCHEMA = '_ferry';
const MYSQL_SYSTEM_DATABASES = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/** Why `name` cannot be a schema (PostgreSQL) or database (MySQL) on `engine`, or null. */
export function destinationNameProblem(engine: EngineKind, name: string): string | null {
  if (name.trim() === '') return 'is empty; name a schema or database';
  if (name.includes('\0')) return 'contains a NUL character, which no identifier may hold';
  if (name === FERRY_SCHEMA) return `"${FERRY_SCHEMA}" is where Ferry keeps its own state on the destination; choose another name`;
  if (engine === 'postgresql') {
    if (new TextEncoder().encode(name).length > 63) return `"${name}" is longer than PostgreSQL's 63 bytes for an identifier`;
    if (name.toLowerCase().startsWith('pg_')) return `"${name}" starts with pg_, which PostgreSQL reserves for system schemas`;
    return null;
  }
  if ([...name].length > 64) return `"${name}" is longer than MySQL's 64 characters for a database name`;
  if (name.endsWith(' ')) return `"${name}" ends with a space, which MySQL does not allow in a database name`;
  if ([...name].some((c) => (c.codePointAt(0) ?? 0) > 0xffff)) return `"${name}" holds a character beyond U+FFFF, which MySQL does not allow in identifiers`;
  if (MYSQL_SYSTEM_DATABASES.has(name.toLowerCase())) return `"${name}" is a MySQL system database; choose another name`;
  return null;
}

/**
 * Problems with explicit pairs, before any server is asked: empty names, two sources onto one
 * destination, destination names the destination engine cannot hold. Empty when valid.
 */
export function validateSchemaMapping(mapping: SchemaMapping, destinationEngine: EngineKind): SchemaMappingProblem[] {
  const problems: SchemaMappingProblem[] = [];
  const bySource = new Map<string, string>();
  for (const [source, destination] of Object.entries(mapping)) {
    const path = `schemaMapping.${source}`;
    if (source.trim() === '') {
      problems.push({ path: 'schemaMapping', message: 'a source schema name is empty; map "SRC" to "DST" with both named' });
      continue;
    }
    const problem = destinationNameProblem(destinationEngine, destination);
    if (problem !== null) problems.push({ path, message: `the destination name ${problem}` });
    const other = bySource.get(destination);
    if (other !== undefined) {
      problems.push({ path, message: `"${source}" and "${other}" both map to "${destination}"; map each source schema to its own destination` });
    }
    bySource.set(destination, source);
  }
  return problems;
}

/** What the job's mapping resolves to once the selection's schemas are known. */
export interface ResolvedSchemaMapping {
  /** Every selected schema that changes name (identity pairs left out). */
  mapping: SchemaMapping;
  /** Checks for verify: `SCHEMA_MAPPING`, ok with the pairs, or errors saying what to change. */
  checks: PairCheck[];
}

/**
 * The mapping a job applies to the selection's `sourceSchemas`: the explicit pairs, or, for a
 * MySQL destination profile that names a database and no explicit pair, that database for the
 * one selected schema. Refuses (checks with severity error): a pair whose source the selection
 * does not include, several schemas bound for one MySQL database without pairs, and two
 * schemas landing under one name.
 */
export function resolveSchemaMapping(options: {
  explicit: SchemaMapping;
  sourceSchemas: string[];
  destinationEngine: EngineKind;
  /** The destination profile's database (MySQL: where the data goes unless mapped; PostgreSQL: the database, not a schema). */
  destinationDatabase: string | null;
}): ResolvedSchemaMapping {
  const { explicit, sourceSchemas, destinationEngine, destinationDatabase } = options;
  const checks: PairCheck[] = [];
  const error = (message: string, objects: string[]): PairCheck => ({ code: 'SCHEMA_MAPPING', side: 'destination', severity: 'error', message, objects });
  const word = destinationEngine === 'mysql' ? 'database' : 'schema';

  const unknown = Object.keys(explicit).filter((s) => !sourceSchemas.includes(s));
  if (unknown.length > 0) {
    checks.push(error(
      `The schema mapping names ${unknown.map((s) => `"${s}"`).join(', ')}, which the job's selection does not include (it spans ${sourceSchemas.length === 0 ? 'no schema' : sourceSchemas.map((s) => `"${s}"`).join(', ')}). Fix the --map-schema pairs or the --include list.`,
      unknown,
    ));
  }

  let mapping: SchemaMapping = {};
  for (const [source, destination] of Object.entries(explicit)) if (sourceSchemas.includes(source)) mapping[source] = destination;
  const defaultDatabase = destinationEngine === 'mysql' && destinationDatabase !== null && destinationDatabase !== '' ? destinationDatabase : null;
  if (defaultDatabase !== null && Object.keys(explicit).length === 0) {
    if (sourceSchemas.length === 1) {
      mapping = { [sourceSchemas[0] as string]: defaultDatabase };
    } else if (sourceSchemas.length > 1) {
      checks.push(error(
        `The destination profile names the MySQL database "${defaultDatabase}", and the selection spans ${sourceSchemas.length} source schemas (${sourceSchemas.join(', ')}): Ferry cannot put them all into one database. Say where each goes with --map-schema SRC=DST (one per schema, e.g. --map-schema ${sourceSchemas[0]}=${defaultDatabase}), or narrow the selection with --include to one schema.`,
        sourceSchemas,
      ));
    }
  }

  const landing = new Map<string, string[]>();
  for (const source of sourceSchemas) {
    const destination = destinationSchemaName(mapping, source);
    landing.set(destination, [...(landing.get(destination) ?? []), source]);
  }
  const collisions = [...landing.entries()].filter(([, sources]) => sources.length > 1);
  for (const [destination, sources] of collisions) {
    checks.push(error(`The source schemas ${sources.join(', ')} would all land in the destination ${word} "${destination}"; map each to its own ${word} with --map-schema.`, sources));
  }

  for (const [source, destination] of Object.entries(mapping)) if (source === destination) delete mapping[source];
  if (!checks.some((c) => c.severity === 'error')) {
    const pairs = sourceSchemas.map((s) => `${s} -> ${destinationSchemaName(mapping, s)}`);
    checks.push({
      code: 'SCHEMA_MAPPING',
      side: 'destination',
      severity: 'ok',
      message: Object.keys(mapping).length === 0
        ? `Every source schema keeps its name on the destination: ${sourceSchemas.join(', ') || '(none)'}.`
        : `Source schemas land on the destination as: ${pairs.join(', ')}.`,
      objects: pairs,
    });
  }
  return { mapping, checks };
}

// ---------------------------------------------------------------------------------------
// Renaming the schema model.

/**
 * The schema model with destination names: schemas, tables, sequences (and their owners),
 * enums, domains, foreign key targets, and the qualified names inside definitions, defaults,
 * checks and types. Order is kept (tables[i] of the result is tables[i] of the source).
 */
export function mapDatabaseSchema(schema: DatabaseSchema, mapping: SchemaMapping): DatabaseSchema {
  if (isIdentityMapping(mapping)) return schema;
  const dialect: SqlDialect = schema.engine === 'mysql' ? 'mysql' : 'postgresql';
  const known = new Set<string>();
  const remember = (o: QualifiedName) => known.add(JSON.stringify([o.schema, o.name]));
  for (const object of [...schema.tables, ...schema.sequences, ...schema.enums, ...schema.domains]) remember(object);
  for (const table of schema.tables) for (const fk of table.foreignKeys) remember(fk.referencedTable);
  const rename = (object: QualifiedName): QualifiedName | null => {
    if (!known.has(JSON.stringify([object.schema, object.name]))) return null;
    const mapped = mapQualifiedName(mapping, object);
    return mapped === object ? null : mapped;
  };
  const sql = (text: string) => rewriteQualifiedNames(text, dialect, rename);
  const sqlOrNull = (text: string | null) => (text === null ? null : sql(text));

  return {
    ...schema,
    schemas: schema.schemas.map((s) => destinationSchemaName(mapping, s)),
    tables: schema.tables.map((table): TableSchema => ({
      ...mapQualifiedName(mapping, table),
      columns: table.columns.map((c) => ({
        ...c,
        nativeType: sql(c.nativeType),
        defaultExpression: sqlOrNull(c.defaultExpression),
        generatedExpression: sqlOrNull(c.generatedExpression),
      })),
      checkConstraints: table.checkConstraints.map((c) => ({ ...c, definition: sql(c.definition) })),
      indexes: table.indexes.map((i) => ({ ...i, definition: sql(i.definition) })),
      foreignKeys: table.foreignKeys.map((f) => ({ ...f, definition: sql(f.definition), referencedTable: mapQualifiedName(mapping, f.referencedTable) })),
      ...(table.nativeDefinition === undefined ? {} : { nativeDefinition: sql(table.nativeDefinition) }),
    })),
    sequences: schema.sequences.map((s) => ({
      ...mapQualifiedName(mapping, s),
      ownedBy: s.ownedBy === null ? null : { ...s.ownedBy, table: mapQualifiedName(mapping, s.ownedBy.table) },
    })),
    enums: schema.enums.map((e) => mapQualifiedName(mapping, e)),
    domains: schema.domains.map((d) => ({
      ...mapQualifiedName(mapping, d),
      baseType: sql(d.baseType),
      defaultExpression: sqlOrNull(d.defaultExpression),
      checks: d.checks.map((c) => ({ ...c, definition: sql(c.definition) })),
    })),
  };
}

// ---------------------------------------------------------------------------------------
// Qualified names inside SQL text.

export type SqlDialect = 'postgresql' | 'mysql';

/**
 * PostgreSQL keywords that cannot stand unquoted as a schema or object name (reserved and
 * type/function-name keywords): a renamed identifier that is one of them is quoted.
 */
const PG_NON_IDENTIFIER_KEYWORDS = new Set(
  ('all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create ' +
    'current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc ' +
    'distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral ' +
    'leading limit localtime localtimestamp not null offset on only or order placing primary references returning ' +
    'select session_user some symmetric system_user table then to trailing true union unique user using variadic when ' +
    'where window with authorization binary collation concurrently cross current_schema freeze full ilike inner is ' +
    'isnull join left like natural notnull outer overlaps right similar tablesample verbose').split(' '),
);

/** An identifier as the dialect writes it: PostgreSQL quotes only when needed (as quote_ident does), MySQL always backquotes. */
export function quoteIdentifier(dialect: SqlDialect, name: string): string {
  if (dialect === 'mysql') return `\`${name.replace(/`/g, '``')}\``;
  if (/^[a-z_][a-z0-9_$]*$/.test(name) && !PG_NON_IDENTIFIER_KEYWORDS.has(name)) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

function isIdentifierStart(ch: string): boolean {
  return /[A-Za-z_]/.test(ch) || ch.charCodeAt(0) >= 0x80;
}

function isIdentifierPart(ch: string, dialect: SqlDialect): boolean {
  return /[A-Za-z0-9_$]/.test(ch) || ch.charCodeAt(0) >= 0x80 || (dialect === 'mysql' && ch === '$');
}

/** Reads a quoted or bare identifier at `i`: its name and where it ends, or null. */
function readIdentifier(text: string, i: number, dialect: SqlDialect): { name: string; end: number } | null {
  const quote = dialect === 'mysql' ? '`' : '"';
  const ch = text[i];
  if (ch === quote) {
    let name = '';
    let j = i + 1;
    for (; j < text.length; j++) {
      if (text[j] === quote) {
        if (text[j + 1] === quote) {
          name += quote;
          j++;
          continue;
        }
        return { name, end: j + 1 };
      }
      name += text[j];
    }
    return null;
  }
  if (ch === undefined || !isIdentifierStart(ch)) return null;
  let j = i + 1;
  while (j < text.length && isIdentifierPart(text[j] as string, dialect)) j++;
  return { name: text.slice(i, j), end: j };
}

/** Reads `a.b.c` at `i`: each part with where it starts and ends. */
function readIdentifierChain(text: string, i: number, dialect: SqlDialect): Array<{ name: string; start: number; end: number; quoted: boolean }> {
  const parts: Array<{ name: string; start: number; end: number; quoted: boolean }> = [];
  let at = i;
  for (;;) {
    const part = readIdentifier(text, at, dialect);
    if (part === null) break;
    parts.push({ name: part.name, start: at, end: part.end, quoted: text[at] === (dialect === 'mysql' ? '`' : '"') });
    if (text[part.end] !== '.') break;
    at = part.end + 1;
  }
  return parts;
}

/** Where the string literal starting at `i` (at its opening quote) ends, and its value. */
function readStringLiteral(text: string, i: number, backslashEscapes: boolean): { value: string; end: number } {
  const quote = text[i] as string;
  let value = '';
  let j = i + 1;
  for (; j < text.length; j++) {
    const ch = text[j] as string;
    if (backslashEscapes && ch === '\\') {
      value += text[j + 1] ?? '';
      j++;
      continue;
    }
    if (ch === quote) {
      if (text[j + 1] === quote) {
        value += quote;
        j++;
        continue;
      }
      return { value, end: j + 1 };
    }
    value += ch;
  }
  return { value, end: text.length };
}

/**
 * Rewrites the qualified names in `sql` that `rename` maps: `schema.name` chains (bare or
 * quoted, with a third part allowed after them), and, in PostgreSQL, a string literal cast to
 * regclass (`'public.s'::regclass`, as nextval defaults print). String literals, dollar-quoted
 * strings and unqualified identifiers are left as they are. Renamed parts are quoted by the
 * dialect's rules.
 */
export function rewriteQualifiedNames(sql: string, dialect: SqlDialect, rename: (object: QualifiedName) => QualifiedName | null): string {
  let out = '';
  let i = 0;
  let previous = '';
  while (i < sql.length) {
    const ch = sql[i] as string;
    // String literals: PostgreSQL '...' (E'...' with backslash escapes), MySQL '...' and "..." with backslash escapes.
    if (ch === "'" || (dialect === 'mysql' && ch === '"')) {
      const escapes = dialect === 'mysql' || previous === 'E' || previous === 'e';
      const literal = readStringLiteral(sql, i, escapes);
      const raw = sql.slice(i, literal.end);
      const cast = dialect === 'postgresql' ? /^::regclass\b/i.exec(sql.slice(literal.end)) : null;
      if (cast !== null && !escapes) {
        const parts = readIdentifierChain(literal.value, 0, 'postgresql');
        const whole = parts.length === 2 && parts[1]?.end === literal.value.length;
        const renamed = whole ? rename({ schema: parts[0]?.name as string, name: parts[1]?.name as string }) : null;
        out += renamed === null ? raw : `'${`${quoteIdentifier('postgresql', renamed.schema)}.${quoteIdentifier('postgresql', renamed.name)}`.replace(/'/g, "''")}'`;
      } else {
        out += raw;
      }
      previous = raw;
      i = literal.end;
      continue;
    }
    if (dialect === 'postgresql' && ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag !== null && !/[A-Za-z0-9_]$/.test(previous)) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close === -1 ? sql.length : close + tag[0].length;
        out += sql.slice(i, end);
        previous = sql.slice(i, end);
        i = end;
        continue;
      }
    }
    const quote = dialect === 'mysql' ? '`' : '"';
    if (ch === quote || isIdentifierStart(ch)) {
      // An identifier right after a letter, digit or $ is part of a longer token (never here: tokens are read whole).
      const chain = readIdentifierChain(sql, i, dialect);
      const last = chain[chain.length - 1];
      if (chain.length === 0 || last === undefined) {
        out += ch;
        previous = ch;
        i++;
        continue;
      }
      // A chain right after a dot is the tail of a longer name: leave it.
      const renamed = chain.length >= 2 && !previous.endsWith('.') ? rename({ schema: chain[0]?.name as string, name: chain[1]?.name as string }) : null;
      if (renamed === null) {
        out += sql.slice(i, last.end);
      } else {
        const second = chain[1] as { end: number };
        out += `${quoteIdentifier(dialect, renamed.schema)}.${quoteIdentifier(dialect, renamed.name)}${sql.slice(second.end, last.end)}`;
      }
      previous = sql.slice(i, last.end);
      i = last.end;
      continue;
    }
    out += ch;
    previous = ch;
    i++;
  }
  return out;
}
