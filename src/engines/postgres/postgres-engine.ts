/**
 * The PostgreSQL engine: connection test, source and destination checks, and the factory of
 * the parts that move a PostgreSQL database (introspector, snapshot reader, schema writer,
 * table writer, replication objects, change reader, error classifier).
 */
import type pg from 'pg';
import type { ConnectionParams, EngineKind } from '../../core/connection-profile.js';
import { describeEndpoint } from '../../core/connection-profile.js';
import { FerryError } from '../../core/errors.js';
import type { JobType } from '../../core/lifecycle.js';
import { isTableSelected } from '../../core/object-selection.js';
import type { ObjectSelection } from '../../core/object-selection.js';
import type { DatabaseSchema, QualifiedName, TableSchema } from '../../core/schema.js';
import { mapMysqlSchemaToPostgres } from '../../core/type-mapping.js';
import type { MappedSchema } from '../../core/type-mapping.js';
import type { ChangeApplier, ChangeApplierOptions, ChangeReader, ConnectionReport, CopyOptions, DestinationFence, Engine, ReplicationSpec, SchemaObjectInfo, SchemaObjectOptions, SchemaReadOptions, SchemaWriter, SourceSnapshot, TableReader, TableWriter, VerifyCheck } from '../engine.js';
import { schemaObjectsOf } from './postgres-schema-script.js';
import { loadSql } from './load-sql.js';
import { Lsn } from './lsn.js';
import { pgDumpToolsFor } from './pg-dump-tools.js';
import { openPostgresChangeApplier } from './postgres-change-applier.js';
import { openPostgresChangeReader } from './postgres-change-reader.js';
import { dropPostgresFence, raisePostgresFence } from './postgres-job-fence.js';
import { connectPostgres, endQuietly, errorContext, pgBool, pgText, quoteIdent, quoteQualified } from './postgres-connection.js';
import { classifyPostgresError } from './postgres-error-classifier.js';
import { PostgresIntrospector } from './postgres-introspector.js';
import { PostgresReplication } from './postgres-replication.js';
import { PostgresSchemaWriter, openPostgresSchemaWriter } from './postgres-schema-writer.js';
import { introspectOptionsFor, openPostgresSnapshot, openSnapshotTableReader } from './postgres-snapshot-reader.js';
import { openPostgresTableWriter } from './postgres-table-writer.js';
import { postgisCheck } from './postgis-check.js';

type Row = Record<string, unknown>;

/** What server-settings.sql reports. */
interface ServerFacts {
  serverVersion: string;
  /** e.g. 120022 */
  serverVersionNum: number;
  settings: Record<string, string>;
  privileges: { superuser: boolean; replication: boolean; createdb: boolean };
  currentUser: string;
  currentDatabase: string;
  replicationSlotsUsed: number;
  walSendersUsed: number;
}

/** Times a lease holder terminates the backend that holds its job's slot before it gives up (the step is retried). */
const SLOT_TAKEOVER_ATTEMPTS = 3;
const SETTING_NAMES = ['server_version_num', 'wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size', 'server_encoding'] as const;

function names(objects: QualifiedName[]): string[] {
  return objects.map((o) => `${o.schema}.${o.name}`);
}

function list(objects: string[], max = 10): string {
  return objects.length <= max ? objects.join(', ') : `${objects.slice(0, max).join(', ')} and ${objects.length - max} more`;
}

async function readServerFacts(client: pg.Client): Promise<ServerFacts> {
  const row = (await client.query(loadSql('server-settings.sql'))).rows[0] as Row | undefined;
  if (row === undefined) {
    throw new FerryError('INTERNAL', 'The server did not describe the current role (pg_roles has no row for current_user); check that this is a PostgreSQL server.');
  }
  const settings: Record<string, string> = {};
  // A setting this server does not have (max_slot_wal_keep_size before 13) is left out.
  for (const name of SETTING_NAMES) if (row[name] !== null && row[name] !== undefined) settings[name] = String(row[name]);
  return {
    serverVersion: `PostgreSQL ${String(row.server_version).split(' ')[0] ?? ''}`,
    serverVersionNum: Number(row.server_version_num),
    settings,
    privileges: { superuser: pgBool(row.superuser), replication: pgBool(row.replication), createdb: pgBool(row.createdb) },
    currentUser: String(row.current_user),
    currentDatabase: String(row.current_database),
    replicationSlotsUsed: Number(row.replication_slots_used),
    walSendersUsed: Number(row.wal_senders_used),
  };
}

/**
 * A PostgreSQL-to-PostgreSQL job takes the schema with the local pg_dump, which refuses
 * servers of a newer major version than its own: the source must not be newer.
 */
function pgDumpCheck(facts: ServerFacts): VerifyCheck {
  try {
    const tools = pgDumpToolsFor(facts.serverVersionNum);
    return { code: 'PG_DUMP_UNAVAILABLE', side: 'source', severity: 'ok', message: `${tools.versionText} (${tools.pgDump}) can read ${facts.serverVersion}.`, objects: [tools.pgDump] };
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    return { code: error.code, side: 'source', severity: 'error', message: error.message };
  }
}

function walLevelCheck(side: VerifyCheck['side'], walLevel: string, severity: 'warning' | 'error'): VerifyCheck {
  return walLevel === 'logical'
    ? { code: 'WAL_LEVEL', side, severity: 'ok', message: 'wal_level is logical.', objects: ['wal_level'] }
    : {
        code: 'WAL_LEVEL',
        side,
        severity,
        message: `wal_level is ${walLevel}; logical is needed for continuous jobs: set wal_level = logical and restart PostgreSQL.`,
        objects: ['wal_level'],
      };
}

export class PostgresEngine implements Engine {
  readonly kind = 'postgresql' as const;

  async testConnection(params: ConnectionParams): Promise<ConnectionReport> {
    let client: pg.Client;
    try {
      client = await connectPostgres(params);
    } catch (error) {
      return { ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [], error: this.classifyError(error) };
    }
    try {
      const facts = await readServerFacts(client);
      const checks: VerifyCheck[] = [];
      const wal = walLevelCheck('source', facts.settings.wal_level ?? '', 'warning');
      if (wal.severity !== 'ok') checks.push(wal);
      if (!facts.privileges.superuser && !facts.privileges.replication) {
        checks.push({
          code: 'REPLICATION_PRIVILEGE',
          side: 'source',
          severity: 'warning',
          message: `${facts.currentUser} has no REPLICATION attribute, needed for continuous jobs from this server: ALTER ROLE ${quoteIdent(facts.currentUser)} WITH REPLICATION;`,
          objects: [facts.currentUser],
        });
      }
      return { ok: true, serverVersion: facts.serverVersion, settings: facts.settings, privileges: facts.privileges, checks, error: null };
    } catch (error) {
      return { ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [], error: this.classifyError(error) };
    } finally {
      await endQuietly(client);
    }
  }

  async verifySource(
    params: ConnectionParams,
    selection: ObjectSelection,
    jobType: JobType,
    options: { destinationEngine?: EngineKind } = {},
  ): Promise<VerifyCheck[]> {
    const side = 'source';
    const checks: VerifyCheck[] = [];
    let client: pg.Client;
    try {
      client = await connectPostgres(params, { operation: 'read' });
    } catch (error) {
      return [{ code: 'CONNECTIVITY', side, severity: 'error', message: this.classifyError(error).message }];
    }
    try {
      const facts = await readServerFacts(client);
      checks.push({ code: 'CONNECTIVITY', side, severity: 'ok', message: `Connected to ${facts.serverVersion} at ${describeEndpoint(params)}.` });
      if (options.destinationEngine === 'postgresql') checks.push(pgDumpCheck(facts));

      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const found = await new PostgresIntrospector(client).introspect(selection, { readSequenceValues: false, ...introspectOptionsFor(options) });
      await client.query('COMMIT');
      const tables = found.tables;
      const schema = found.schema;

      if (tables.length === 0) {
        const why = found.partitioned.length > 0 ? ` Only partitioned tables match (${list(names(found.partitioned))}), and they are not supported yet.` : '';
        checks.push({
          code: 'NO_TABLES_SELECTED',
          side,
          severity: 'error',
          message: `No table of database ${facts.currentDatabase} matches the job's selection.${why} Check the include and exclude patterns ("schema" or "schema.table").`,
        });
      } else {
        checks.push({
          code: 'NO_TABLES_SELECTED',
          side,
          severity: 'ok',
          message: `${tables.length} table(s) selected.`,
          objects: names(tables),
        });
      }

      const user = quoteIdent(facts.currentUser);
      const noUsage = [...new Set(tables.filter((t) => !t.schemaUsage).map((t) => t.schema))];
      const noSelect = tables.filter((t) => !t.tableSelect);
      if (noUsage.length > 0 || noSelect.length > 0 || found.unreadableSequences.length > 0) {
        const grants = [
          ...noUsage.map((s) => `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${user};`),
          ...noSelect.map((t) => `GRANT SELECT ON TABLE ${quoteQualified(t)} TO ${user};`),
          ...found.unreadableSequences.map((s) => `GRANT SELECT ON SEQUENCE ${quoteQualified(s)} TO ${user};`),
        ];
        const objects = [...noUsage.map((s) => `schema ${s}`), ...names(noSelect), ...names(found.unreadableSequences)];
        checks.push({
          code: 'PRIVILEGES',
          side,
          severity: 'error',
          message: `${facts.currentUser} cannot read ${list(objects)}. Run: ${grants.join(' ')}`,
          objects,
        });
      } else {
        checks.push({ code: 'PRIVILEGES', side, severity: 'ok', message: `${facts.currentUser} can read every selected table, schema and sequence.` });
      }

      const noKey = tables.filter((t) => !t.hasPrimaryKey);
      if (noKey.length > 0) {
        const uncovered = noKey.filter((t) => t.replicaIdentity !== 'full' && t.replicaIdentity !== 'index');
        const message =
          jobType === 'continuous'
            ? uncovered.length > 0
              ? `${list(names(noKey))} ${noKey.length === 1 ? 'has' : 'have'} no primary key. ${list(names(uncovered))}: INSERTs and TRUNCATEs are replicated, UPDATEs and DELETEs are NOT (these tables are published for inserts only, so the source's own UPDATEs and DELETEs keep working). To replicate every change, add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL before starting.${uncovered.length < noKey.length ? ' The others replicate fully through their replica identity.' : ''}`
              : `${list(names(noKey))} ${noKey.length === 1 ? 'has' : 'have'} no primary key; ${noKey.length === 1 ? 'it replicates' : 'they replicate'} through REPLICA IDENTITY FULL or a unique index (an UPDATE or DELETE is applied by matching the whole old row).`
            : `${list(names(noKey))} ${noKey.length === 1 ? 'has' : 'have'} no primary key. A one-time job copies them as they are; a continuous job would need a primary key or REPLICA IDENTITY FULL.`;
        checks.push({ code: 'TABLE_WITHOUT_PRIMARY_KEY', side, severity: 'warning', message, objects: names(noKey) });
      } else {
        checks.push({ code: 'TABLE_WITHOUT_PRIMARY_KEY', side, severity: 'ok', message: 'Every selected table has a primary key.' });
      }

      const partitionedRoots = found.tables.filter((t) => t.kind === 'p');
      const sameEngine = (options.destinationEngine ?? 'postgresql') === 'postgresql';
      checks.push(
        sameEngine
          ? {
              code: 'PARTITIONED_TABLE', side, severity: 'ok', objects: names(found.partitioned),
              message: found.partitioned.length > 0
                ? `Partitioned tables are created as on the source, and their data is copied and replicated per leaf partition: ${list(names(found.partitioned))}.`
                : 'No partitioned table is selected.',
            }
          : {
              code: 'PARTITIONED_TABLE', side, severity: 'ok', objects: names(partitionedRoots),
              message: partitionedRoots.length > 0
                ? `These partitioned tables arrive whole, as one table each, with every partition's rows (their changes are published through the root): ${list(names(partitionedRoots))}.`
                : 'No partitioned table is selected.',
            },
      );
      if (!sameEngine && partitionedRoots.length > 0 && jobType === 'continuous' && Number(facts.settings.server_version_num ?? '0') < 130_000 && Number(facts.settings.server_version_num ?? '0') > 0) {
        checks.push({
          code: 'PARTITIONED_TABLE', side, severity: 'error', objects: names(partitionedRoots),
          message: `PostgreSQL before 13 cannot publish a partitioned table through its root, which a continuous job to another engine needs for ${list(names(partitionedRoots))}. Upgrade the source, run a one-time job, or exclude these tables.`,
        });
      }
      if (sameEngine && (selection.include.length > 0 || selection.exclude.length > 0)) {
        // The schema script carries every view of the selected schemas: one that reads a table
        // the job leaves out cannot be created on the destination.
        const schemas = [...new Set(found.tables.map((t) => t.schema))];
        const rows = (await client.query(loadSql('view-dependencies.sql'), [schemas])).rows as Row[];
        const broken = rows.filter((r) => {
          const schemaName = String(r.table_schema);
          const tableName = String(r.table_name);
          if (r.table_kind === 'v' || r.table_kind === 'm') return !schemas.includes(schemaName);
          return !isTableSelected(selection, schemaName, tableName) && !found.partitioned.some((p) => p.schema === schemaName && p.name === tableName);
        });
        checks.push(
          broken.length > 0
            ? {
                code: 'DEPENDS_ON_UNSELECTED', side, severity: 'error',
                objects: broken.map((r) => `${String(r.view_schema)}.${String(r.view_name)}`),
                message: `These views read tables the job leaves out, so they cannot be created on the destination: ${list(broken.map((r) => `${String(r.view_schema)}.${String(r.view_name)} reads ${String(r.table_schema)}.${String(r.table_name)}`))}. Include those tables, or exclude the views' schemas from the job.`,
              }
            : { code: 'DEPENDS_ON_UNSELECTED', side, severity: 'ok', message: 'No view of the selected schemas reads a table the job leaves out.' },
        );
      }

      const unlogged = found.tables.filter((t) => t.unlogged === true);
      if (jobType === 'continuous' && unlogged.length > 0) {
        checks.push({
          code: 'UNLOGGED_TABLE', side, severity: 'warning', objects: names(unlogged),
          message: `${list(names(unlogged))} ${unlogged.length === 1 ? 'is' : 'are'} UNLOGGED: the full dump copies ${unlogged.length === 1 ? 'it' : 'them'}, but PostgreSQL writes no WAL for unlogged tables, so their later changes are not replicated. Make them logged (ALTER TABLE ... SET LOGGED) before starting if their changes matter.`,
        });
      }

      if (found.unsupportedColumns.length > 0) {
        const objects = found.unsupportedColumns.map((c) => `${c.table.schema}.${c.table.name}.${c.column}`);
        checks.push({
          code: 'UNSUPPORTED_TYPE',
          side,
          severity: 'error',
          message: `These columns use types Ferry cannot create on the destination: ${found.unsupportedColumns
            .map((c) => `${c.table.schema}.${c.table.name}.${c.column} (${c.type}: ${c.reason})`)
            .join('; ')}. Exclude their tables from the job, or change the column types.`,
          objects,
        });
      } else {
        checks.push({ code: 'UNSUPPORTED_TYPE', side, severity: 'ok', message: 'Every column type can be created on the destination.' });
      }

      // A partitioned table counts as selected with its partitions (foreign keys may reference the parent).
      const selected = new Set([...names(tables), ...names(found.partitioned)]);
      const dangling = schema.tables.flatMap((t) =>
        t.foreignKeys.filter((f) => !selected.has(`${f.referencedTable.schema}.${f.referencedTable.name}`)).map((f) => `${t.schema}.${t.name}.${f.name}`),
      );
      if (dangling.length > 0) {
        checks.push({
          code: 'FOREIGN_KEY_TO_UNSELECTED_TABLE',
          side,
          severity: 'warning',
          message: `These foreign keys reference tables outside the selection and are created only if the destination already has the referenced table: ${list(dangling)}. Include the referenced tables to keep them.`,
          objects: dangling,
        });
      } else {
        checks.push({ code: 'FOREIGN_KEY_TO_UNSELECTED_TABLE', side, severity: 'ok', message: 'Every foreign key references a selected table.' });
      }

      if (jobType === 'continuous') {
        checks.push(walLevelCheck(side, facts.settings.wal_level ?? '', 'error'));
        const maxSlots = Number(facts.settings.max_replication_slots);
        const free = maxSlots - facts.replicationSlotsUsed;
        checks.push(
          free > 0
            ? { code: 'REPLICATION_SLOTS', side, severity: 'ok', message: `${free} of ${maxSlots} replication slots are free.`, objects: ['max_replication_slots'] }
            : {
                code: 'REPLICATION_SLOTS',
                side,
                severity: 'error',
                message: `All ${maxSlots} replication slots are in use. Drop unused slots (pg_drop_replication_slot) or raise max_replication_slots and restart PostgreSQL.`,
                objects: ['max_replication_slots'],
              },
        );
        const maxSenders = Number(facts.settings.max_wal_senders);
        const freeSenders = maxSenders - facts.walSendersUsed;
        checks.push(
          freeSenders > 0
            ? { code: 'WAL_SENDERS', side, severity: 'ok', message: `${freeSenders} of ${maxSenders} WAL senders are free.`, objects: ['max_wal_senders'] }
            : {
                code: 'WAL_SENDERS',
                side,
                severity: 'error',
                message: `All ${maxSenders} WAL senders are in use; the change stream needs one (a dump of a continuous job briefly needs a second). Raise max_wal_senders and restart PostgreSQL, or stop another replication client.`,
                objects: ['max_wal_senders'],
              },
        );
        const keep = facts.settings.max_slot_wal_keep_size;
        checks.push(
          keep === undefined
            ? {
                code: 'MAX_SLOT_WAL_KEEP_SIZE', side, severity: 'warning', objects: ['max_slot_wal_keep_size'],
                message: `${facts.serverVersion} has no max_slot_wal_keep_size (it arrives in PostgreSQL 13): while the job is stopped or failing, the slot keeps WAL on the source without limit and can fill its disk. Watch the source's disk, and Delete or promote the job rather than leave it stopped.`,
              }
            : keep === '-1'
            ? {
                code: 'MAX_SLOT_WAL_KEEP_SIZE', side, severity: 'warning', objects: ['max_slot_wal_keep_size'],
                message: 'max_slot_wal_keep_size is -1 (unlimited): while the job is stopped or failing, the slot keeps WAL on the source without limit and can fill its disk. Consider a limit (e.g. max_slot_wal_keep_size = 50GB); a slot that exceeds it is invalidated and the job must be restarted.',
              }
            : {
                code: 'MAX_SLOT_WAL_KEEP_SIZE', side, severity: 'ok', objects: ['max_slot_wal_keep_size'],
                message: `max_slot_wal_keep_size is ${keep}: a job stopped long enough to exceed it loses its slot and must be restarted.`,
              },
        );
        const canReplicate = facts.privileges.superuser || facts.privileges.replication;
        checks.push(
          canReplicate
            ? { code: 'REPLICATION_PRIVILEGE', side, severity: 'ok', message: `${facts.currentUser} may replicate.` }
            : {
                code: 'REPLICATION_PRIVILEGE',
                side,
                severity: 'error',
                message: `${facts.currentUser} lacks the REPLICATION attribute that continuous jobs need. Run: ALTER ROLE ${user} WITH REPLICATION;`,
                objects: [facts.currentUser],
              },
        );
      }
      return checks;
    } catch (error) {
      const classified = this.classifyError(error);
      checks.push({ code: classified.code, side, severity: 'error', message: classified.message });
      return checks;
    } finally {
      await endQuietly(client);
    }
  }

  async verifyDestination(params: ConnectionParams, source: DatabaseSchema): Promise<VerifyCheck[]> {
    const side = 'destination';
    // A MySQL/MariaDB schema is checked as PostgreSQL would create it (docs/type-mapping.md).
    const mapped: MappedSchema | null = source.engine === 'mysql' ? mapMysqlSchemaToPostgres(source) : null;
    const schema = mapped?.schema ?? source;
    const checks: VerifyCheck[] = [];
    let client: pg.Client;
    try {
      client = await connectPostgres(params, { operation: 'ddl' });
    } catch (error) {
      return [{ code: 'CONNECTIVITY', side, severity: 'error', message: this.classifyError(error).message }];
    }
    try {
      const facts = await readServerFacts(client);
      checks.push({ code: 'CONNECTIVITY', side, severity: 'ok', message: `Connected to ${facts.serverVersion} at ${describeEndpoint(params)}.` });
      const user = quoteIdent(facts.currentUser);

      const writer = new PostgresSchemaWriter(client, errorContext(params, { operation: 'ddl' }));
      const states = await writer.inspectRelations(schema.tables);
      const toCreate = schema.tables.filter((_, i) => states[i]?.exists !== true);

      const schemaNames = [...new Set([...schema.tables.map((t) => t.schema), ...schema.enums.map((t) => t.schema), ...schema.domains.map((t) => t.schema), ...schema.sequences.map((s) => s.schema)])];
      const privilegeRows = (await client.query(loadSql('destination-privileges.sql'), [schemaNames])).rows as Row[];
      const canCreateSchemas = pgBool(privilegeRows.find((r) => r.schema === null)?.can_create);
      const existingSchemas = new Map(privilegeRows.filter((r) => r.schema !== null).map((r) => [String(r.schema), pgBool(r.can_create)]));
      const missingSchemas = schemaNames.filter((s) => !existingSchemas.has(s));
      const grants: string[] = [];
      const objects: string[] = [];
      if (missingSchemas.length > 0 && !canCreateSchemas) {
        grants.push(`GRANT CREATE ON DATABASE ${quoteIdent(facts.currentDatabase)} TO ${user};`);
        objects.push(`database ${facts.currentDatabase}`);
      }
      const needCreateIn = new Set([...toCreate.map((t) => t.schema), ...schema.enums.map((t) => t.schema), ...schema.domains.map((t) => t.schema)]);
      for (const [name, canCreate] of existingSchemas) {
        if (!canCreate && needCreateIn.has(name)) {
          grants.push(`GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(name)} TO ${user};`);
          objects.push(`schema ${name}`);
        }
      }
      checks.push(
        grants.length > 0
          ? {
              code: 'PRIVILEGES',
              side,
              severity: 'error',
              message: `${facts.currentUser} cannot create ${list(objects)}${missingSchemas.length > 0 ? ` (schemas to create: ${missingSchemas.join(', ')})` : ''}. Run: ${grants.join(' ')}`,
              objects,
            }
          : { code: 'PRIVILEGES', side, severity: 'ok', message: `${facts.currentUser} can create the schemas and tables the job needs.` },
      );

      const problems = await writer.findTableProblems(schema);
      const mismatched = problems.filter((p) => p.code === 'DESTINATION_TABLE_MISMATCH');
      const notEmpty = problems.filter((p) => p.code === 'DESTINATION_NOT_EMPTY');
      checks.push(
        notEmpty.length > 0
          ? {
              code: 'DESTINATION_NOT_EMPTY',
              side,
              severity: 'error',
              message: `These destination tables already hold rows: ${list(names(notEmpty.map((p) => p.table)))}. Empty them (TRUNCATE) or drop them on the destination, or exclude them from the job.`,
              objects: names(notEmpty.map((p) => p.table)),
            }
          : { code: 'DESTINATION_NOT_EMPTY', side, severity: 'ok', message: 'No destination table that the job loads holds rows.' },
      );
      checks.push(
        mismatched.length > 0
          ? {
              code: 'DESTINATION_TABLE_MISMATCH',
              side,
              severity: 'error',
              message: `These destination tables already exist with a different shape: ${mismatched.map((p) => `${p.table.schema}.${p.table.name} (${p.reason})`).join('; ')}. Drop or rename them on the destination, or exclude them from the job.`,
              objects: names(mismatched.map((p) => p.table)),
            }
          : {
              code: 'DESTINATION_TABLE_MISMATCH',
              side,
              severity: 'ok',
              message: `${toCreate.length} table(s) to create; ${schema.tables.length - toCreate.length} existing empty table(s) with matching columns to reuse.`,
            },
      );

      const grantRoles = source.grantRoles ?? [];
      if (source.engine === 'postgresql' && grantRoles.length > 0) {
        const present = new Set(((await client.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [grantRoles])).rows as Row[]).map((r) => String(r.rolname)));
        const missingRoles = grantRoles.filter((r) => !present.has(r));
        checks.push(
          missingRoles.length > 0
            ? {
                code: 'MISSING_ROLES', side, severity: 'warning', objects: missingRoles,
                message: `The source grants privileges to roles that do not exist on the destination: ${list(missingRoles)}. Those GRANTs are left out (everything else is carried); create the roles on the destination before starting to keep them.`,
              }
            : { code: 'MISSING_ROLES', side, severity: 'ok', objects: grantRoles, message: `Every role the source grants privileges to exists on the destination (${list(grantRoles)}).` },
        );
      }

      if (mapped !== null) {
        const postgis = await postgisCheck(client, mapped.schema);
        if (postgis !== null) checks.push(postgis);
        // Without PostGIS the rehearsal would only repeat that error less clearly.
        checks.push(...(await this.verifyMappedSchema(writer, source, mapped, grants.length === 0 && postgis?.severity !== 'error')));
      } else if (schema.extensions.length > 0) {
        const available = new Map(
          ((await client.query(loadSql('available-extensions.sql'))).rows as Row[]).map((r) => [String(r.name), pgText(r.installed_version)]),
        );
        const missing = schema.extensions.filter((e) => !available.has(e));
        checks.push(
          missing.length > 0
            ? {
                code: 'UNSUPPORTED_TYPE',
                side,
                severity: 'error',
                message: `The destination cannot install the extensions ${missing.join(', ')} that the selected tables use. Install their packages on the destination server, or exclude the tables that use them.`,
                objects: missing,
              }
            : { code: 'UNSUPPORTED_TYPE', side, severity: 'ok', message: `The extensions the tables use are available: ${schema.extensions.join(', ')}.`, objects: schema.extensions },
        );
      } else {
        checks.push({ code: 'UNSUPPORTED_TYPE', side, severity: 'ok', message: 'The selected tables need no extension.' });
      }
      return checks;
    } catch (error) {
      const classified = this.classifyError(error);
      checks.push({ code: classified.code, side, severity: 'error', message: classified.message });
      return checks;
    } finally {
      await endQuietly(client);
    }
  }

  /**
   * The checks of a schema mapped from MySQL/MariaDB: columns PostgreSQL cannot hold
   * (UNSUPPORTED_TYPE), what the mapping does not carry over (TYPE_MAPPING warnings), and a
   * rehearsal of the creation in a rolled-back transaction (SCHEMA_ERROR), which also finds the
   * check constraints PostgreSQL refuses.
   */
  private async verifyMappedSchema(writer: PostgresSchemaWriter, source: DatabaseSchema, mapped: MappedSchema, canCreate: boolean): Promise<VerifyCheck[]> {
    const side = 'destination';
    const checks: VerifyCheck[] = [];
    if (mapped.unsupported.length > 0) {
      const objects = mapped.unsupported.map((c) => `${c.table.schema}.${c.table.name}.${c.column}`);
      checks.push({ code: 'UNSUPPORTED_TYPE', side, severity: 'error', message: mapped.unsupported.map((c) => c.message).join(' '), objects });
    } else {
      checks.push({ code: 'UNSUPPORTED_TYPE', side, severity: 'ok', message: 'Every column type has a PostgreSQL mapping (docs/type-mapping.md).' });
    }
    const warnings = [...mapped.warnings];
    if (mapped.unsupported.length === 0 && canCreate) {
      try {
        const { skippedChecks } = await writer.rehearsePreDataObjects(source);
        warnings.push(...skippedChecks);
        checks.push({ code: 'SCHEMA_ERROR', side, severity: 'ok', message: 'The mapped tables, types and sequences can be created (rehearsed in a rolled-back transaction).' });
      } catch (error) {
        const classified = this.classifyError(error);
        checks.push({
          code: 'SCHEMA_ERROR',
          side,
          severity: 'error',
          message: `Creating the mapped schema on PostgreSQL fails: ${classified.message} Exclude the table concerned from the job, or change it on the source.`,
        });
      }
    }
    checks.push(
      warnings.length > 0
        ? { code: 'TYPE_MAPPING', side, severity: 'warning', message: warnings.join(' ') }
        : { code: 'TYPE_MAPPING', side, severity: 'ok', message: 'Every column, default and constraint carries over as docs/type-mapping.md describes.' },
    );
    return checks;
  }

  openSnapshotReader(params: ConnectionParams, snapshotId: string): Promise<TableReader> {
    return openSnapshotTableReader(params, snapshotId);
  }

  openSnapshot(params: ConnectionParams, options?: { alignedWithChanges?: boolean }): Promise<SourceSnapshot> {
    return options?.alignedWithChanges === true ? new PostgresReplication(params).openAlignedSnapshot() : openPostgresSnapshot(params);
  }

  async readSchema(params: ConnectionParams, selection: ObjectSelection, options: SchemaReadOptions = {}): Promise<DatabaseSchema> {
    const client = await connectPostgres(params, { operation: 'read' });
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const schema = await new PostgresIntrospector(client).readSchema(selection, introspectOptionsFor(options));
      await client.query('COMMIT');
      return schema;
    } catch (error) {
      throw classifyPostgresError(error, errorContext(params, { operation: 'read' }));
    } finally {
      await endQuietly(client);
    }
  }

  /** Every object pg_dump would carry for the selection, read now (not at a snapshot). */
  async listSchemaObjects(params: ConnectionParams, selection: ObjectSelection): Promise<SchemaObjectInfo[]> {
    const snapshot = await openPostgresSnapshot(params);
    try {
      const schema = await snapshot.readSchema(selection);
      const script = await snapshot.readSchemaScript(selection, schema);
      const client = await connectPostgres(params, { operation: 'read' });
      let partitioned: Set<string>;
      try {
        const rows = (await client.query("SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'")).rows as Row[];
        partitioned = new Set(rows.map((r) => `${String(r.schema)}.${String(r.name)}`));
      } finally {
        await endQuietly(client);
      }
      return schemaObjectsOf(script, partitioned);
    } finally {
      await snapshot.close();
    }
  }

  openSchemaWriter(params: ConnectionParams, options?: SchemaObjectOptions): Promise<SchemaWriter> {
    return openPostgresSchemaWriter(params, options);
  }

  openTableWriter(params: ConnectionParams): Promise<TableWriter> {
    return openPostgresTableWriter(params);
  }

  classifyError(error: unknown): FerryError {
    return classifyPostgresError(error);
  }

  createReplication(
    params: ConnectionParams,
    spec: ReplicationSpec,
    tables: QualifiedName[],
    options: { insertOnlyTables?: QualifiedName[] } = {},
  ): Promise<{ startPosition: string }> {
    return new PostgresReplication(params).create(spec, tables, options.insertOnlyTables ?? []);
  }

  dropReplication(params: ConnectionParams, spec: ReplicationSpec): Promise<void> {
    return new PostgresReplication(params).drop(spec);
  }

  async openChangeReader(
    params: ConnectionParams,
    spec: ReplicationSpec,
    startPosition: string,
    options: CopyOptions & { takeOverSlot?: boolean; streamInProgress?: boolean } = {},
  ): Promise<ChangeReader> {
    // How much the source's walsender decodes in memory before it streams (or spills) a transaction: its own setting unless the operator sets one.
    const decodingWorkMem = process.env.FERRY_PG_DECODING_WORK_MEM;
    const readerOptions = { streamInProgress: options.streamInProgress === true, ...(decodingWorkMem === undefined || decodingWorkMem === '' ? {} : { decodingWorkMem }) };
    for (let attempt = 1; ; attempt++) {
      try {
        return await openPostgresChangeReader(params, spec, startPosition, readerOptions);
      } catch (error) {
        // A stale walsender (a node that lost the lease, paused or gone) holds the slot until
        // wal_sender_timeout at best: the lease holder ends it, a bounded number of times.
        if (options.takeOverSlot !== true || attempt > SLOT_TAKEOVER_ATTEMPTS || !(error instanceof FerryError) || error.details.slotActive !== true) throw error;
        await new PostgresReplication(params).takeOverSlot(spec.slotName);
      }
    }
  }

  openChangeApplier(params: ConnectionParams, jobId: string, tables: TableSchema[], options?: ChangeApplierOptions): Promise<ChangeApplier> {
    return openPostgresChangeApplier(params, jobId, tables, options);
  }

  raiseFence(params: ConnectionParams, fence: DestinationFence & { nodeId: string }): Promise<void> {
    return raisePostgresFence(params, fence);
  }

  dropFence(params: ConnectionParams, fence: DestinationFence): Promise<void> {
    return dropPostgresFence(params, fence);
  }

  currentPosition(params: ConnectionParams): Promise<string> {
    return new PostgresReplication(params).currentPosition();
  }

  transactionsEndedAt(params: ConnectionParams, xids: number[]): Promise<string | null> {
    return new PostgresReplication(params).transactionsEndedAt(xids);
  }

  emitMarker(params: ConnectionParams, content: string): Promise<string> {
    return new PostgresReplication(params).emitMarker(content);
  }

  comparePositions(a: string, b: string): number {
    return Lsn.compareText(a, b);
  }

  positionDistance(a: string, b: string): number | null {
    return Number(Lsn.parse(a).distance(Lsn.parse(b)));
  }
}

export const postgresEngine = new PostgresEngine();
