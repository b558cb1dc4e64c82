/**
 * The use cases behind the API, the CLI and the console. Validates, checks the lifecycle,
 * writes the store, and wakes the job's worker; the pipeline does the migrating.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { DEFAULT_PORTS, type ConnectionParams, type SshTunnelSettings } from '../core/connection-profile.js';
import { FerryError } from '../core/errors.js';
import {
  STATUS_LABELS,
  availableActions,
  nextStatusForAction,
  substatusOf,
  type JobAction,
} from '../core/lifecycle.js';
import { DEFAULT_MAX_PARKED_CHANGES, runningMillisAt, withStatus, type JobObject, type MigrationJob } from '../core/migration-job.js';
import { isTableSelected, SELECT_ALL, validateSelection } from '../core/object-selection.js';
import { resolveSchemaMapping, mapDatabaseSchema, validateSchemaMapping } from '../core/schema-mapping.js';
import { pairChecks } from '../core/job-checks.js';
import { qualifiedName, type DatabaseSchema } from '../core/schema.js';
import { planSchemaObjects, schemaObjectsCheck } from '../core/schema-object-plan.js';
import type { ConnectionReport, Engine, SchemaObjectPlan, VerifyCheck } from '../engines/engine.js';
import type { EngineRegistry } from '../engines/engine-registry.js';
import type { ConnectionTunnels } from '../engines/ssh-tunnel.js';
import type { Clock } from '../pipeline/clock.js';
import type { Logger } from '../pipeline/logger.js';
import type { JobObjectTotals, MetadataStore, StoredJobLease, StoredProfile } from '../store/metadata-store.js';
import type { Actor, FerryService, JobActionOptions, PageView } from './ferry-service.js';
import {
  CreateJobInput,
  CreateProfileInput,
  JobListQuery,
  ListQuery,
  ListTablesInput,
  RestartJobInput,
  UpdateJobInput,
  UpdateProfileInput,
  type ConnectionTestView,
  type JobEventView,
  type JobObjectView,
  type JobView,
  type ProfileView,
  type SchemaObjectReportView,
  type SourceTableListView,
  type VerifyReportView,
  type ValidationView,
  type NodeView,
} from './inputs.js';
import { nodeState } from './node-heartbeat.js';
import type { SecretBox } from './secret-box.js';
import { openSecret } from './secret-keys.js';
import type { ReplicationSnapshot } from '../pipeline/replication-stats.js';
import { REPLICATION_CHECKPOINT, type ReplicationCheckpoint } from '../pipeline/incremental-load.js';
import { PROMOTE_FORCE_CHECKPOINT, RESTART_OBJECTS_CHECKPOINT } from '../pipeline/job-runner.js';
import { parseInput } from './parse-input.js';
import { ValidationService } from './validation-service.js';

/** The part of the job supervisor the service drives. */
export interface JobWorkers {
  /** The job's status changed: make its worker act on it. */
  wake(jobId: string): void;
  /** Stop working on the job without changing its status; resolves when let go. */
  cancel(jobId: string): Promise<void>;
  /** Live incremental-load numbers of a job this process runs, or null. */
  replicationStats(jobId: string): ReplicationSnapshot | null;
  /** Jobs this node took over from another node whose lease expired, since it started. */
  readonly takeovers: number;
}

export interface MigrationServiceDeps {
  store: MetadataStore;
  engines: EngineRegistry;
  workers: JobWorkers;
  clock: Clock;
  secrets: SecretBox;
  logger: Logger;
  /** Opens the SSH tunnels of profiles with connectivityMethod "ssh-tunnel". */
  tunnels: ConnectionTunnels;
  /** A running node whose heartbeat is older than this is LOST; default that of a 15 s lease (15 s). */
  nodeLostAfterMs?: number;
}

/** Engine pairs and job types this build runs. Anything else is refused with NOT_IMPLEMENTED. */
const SUPPORTED_JOBS: Array<{ source: string; destination: string; type: string }> = (['postgresql', 'mysql'] as const).flatMap(
  (source) => (['postgresql', 'mysql'] as const).flatMap((destination) => (['one-time', 'continuous'] as const).map((type) => ({ source, destination, type }))),
);

/** How many distinct job list queries keep their last answer (the console's pages and filters). */
const JOB_LIST_MEMO_SIZE = 64;

interface JobListMemo {
  dataVersion: string;
  /** The clock's second it was computed in: durations and replication numbers move with time. */
  second: string;
  page: PageView<JobView>;
}

export class MigrationService implements FerryService {
  readonly #deps: MigrationServiceDeps;
  /**
   * The last answer per list query. Many clients polling the same page share one computation:
   * it is reused while the store's data version and the clock's second are unchanged, so a
   * write shows in the next list, and time-derived numbers are at most a second old.
   */
  readonly #jobLists = new Map<string, JobListMemo>();

  readonly #validations: ValidationService;

  constructor(deps: MigrationServiceDeps) {
    this.#deps = deps;
    this.#validations = new ValidationService({
      store: deps.store, engines: deps.engines, clock: deps.clock, logger: deps.logger,
      resolveConnection: (profileId) => this.resolveConnection(profileId),
      appliedPosition: (jobId) => deps.workers.replicationStats(jobId)?.appliedPosition ?? null,
    });
  }

  // Connection profiles

  async createProfile(raw: z.input<typeof CreateProfileInput>, actor: Actor): Promise<ProfileView> {
    const input = parseInput(CreateProfileInput, raw);
    const now = this.#deps.clock.now();
    const id = input.id ?? (await generateId(input.displayName, async (candidate) => (await this.#deps.store.getProfile(candidate)) !== null));
    if (await this.#deps.store.getProfile(id)) {
      throw new FerryError('ALREADY_EXISTS', `A connection profile with id "${id}" exists already; choose another id or update that profile.`);
    }
    const profile: StoredProfile = {
      id,
      displayName: input.displayName,
      engine: input.engine,
      host: input.host,
      port: input.port ?? DEFAULT_PORTS[input.engine],
      database: input.database ?? (input.engine === 'postgresql' ? 'postgres' : null),
      username: input.username,
      connectivityMethod: input.connectivityMethod,
      labels: input.labels,
      createTime: now,
      updateTime: now,
      tlsMode: input.tls?.mode ?? 'none',
      encryptedPassword: input.password === undefined ? null : this.#deps.secrets.encrypt(input.password),
      caCertificate: input.tls?.caCertificate ?? null,
      clientCertificate: input.tls?.clientCertificate ?? null,
      encryptedClientKey: input.tls?.clientKey === undefined ? null : this.#deps.secrets.encrypt(input.tls.clientKey),
      sshTunnel: input.sshTunnel === undefined ? null : { host: input.sshTunnel.host, port: input.sshTunnel.port, username: input.sshTunnel.username, hostKeyFingerprint: input.sshTunnel.hostKeyFingerprint ?? null },
      encryptedSshPrivateKey: input.sshTunnel?.privateKey === undefined ? null : this.#deps.secrets.encrypt(this.#checkedPrivateKey(input.sshTunnel.privateKey)),
    };
    if (profile.connectivityMethod === 'direct' && profile.sshTunnel !== null) {
      throw new FerryError('INVALID_ARGUMENT', 'sshTunnel: given, but connectivityMethod is "direct"; set connectivityMethod to "ssh-tunnel" to connect through it.', { details: { fields: [{ path: 'sshTunnel', message: 'only with connectivityMethod ssh-tunnel' }] } });
    }
    validateProfile(profile);
    await this.#deps.store.insertProfile(profile);
    this.#deps.logger.info({ profileId: id, actor }, 'connection profile created');
    return toProfileView(profile);
  }

  async getProfile(id: string): Promise<ProfileView> {
    return toProfileView(await this.#profile(id));
  }

  async listProfiles(raw: z.input<typeof ListQuery>): Promise<PageView<ProfileView>> {
    const query = parseInput(ListQuery, raw);
    const page = await this.#deps.store.listProfiles({ pageSize: query.pageSize, pageToken: query.pageToken ?? null });
    return { items: page.items.map(toProfileView), nextPageToken: page.nextPageToken };
  }

  async updateProfile(id: string, raw: z.input<typeof UpdateProfileInput>, actor: Actor): Promise<ProfileView> {
    const input = parseInput(UpdateProfileInput, raw);
    const current = await this.#profile(id);
    const { secrets } = this.#deps;
    const updated: StoredProfile = {
      ...current,
      displayName: input.displayName ?? current.displayName,
      host: input.host ?? current.host,
      port: input.port ?? current.port,
      database: input.database === undefined ? current.database : input.database,
      username: input.username ?? current.username,
      connectivityMethod: input.connectivityMethod ?? current.connectivityMethod,
      labels: input.labels ?? current.labels,
      tlsMode: input.tls?.mode ?? current.tlsMode,
      caCertificate: input.tls?.caCertificate ?? current.caCertificate,
      clientCertificate: input.tls?.clientCertificate ?? current.clientCertificate,
      encryptedClientKey: input.tls?.clientKey === undefined ? current.encryptedClientKey : secrets.encrypt(input.tls.clientKey),
      encryptedPassword:
        input.password === undefined ? current.encryptedPassword : input.password === null ? null : secrets.encrypt(input.password),
      ...this.#updatedSsh(current, input.sshTunnel),
      updateTime: this.#deps.clock.now(),
    };
    if (updated.connectivityMethod === 'direct' && input.connectivityMethod === 'direct') {
      // Switching to direct forgets the SSH server and its key.
      updated.sshTunnel = null;
      updated.encryptedSshPrivateKey = null;
    }
    validateProfile(updated);
    await this.#deps.store.updateProfile(updated);
    await this.#deps.tunnels.release(id);
    this.#deps.logger.info({ profileId: id, actor }, 'connection profile updated');
    // A job probing after an authentication failure picks the new password up at its next probe.
    return toProfileView(updated);
  }

  async deleteProfile(id: string, actor: Actor): Promise<void> {
    await this.#profile(id);
    const users = (await this.#deps.store.listJobsUsingProfile(id)).filter((job) => job.status !== 'COMPLETED');
    if (users.length > 0) {
      throw new FerryError(
        'PROFILE_IN_USE',
        `Connection profile "${id}" is used by ${users.length === 1 ? 'job' : 'jobs'} ${users.map((j) => `"${j.id}" (${STATUS_LABELS[j.status]})`).join(', ')}; delete ${users.length === 1 ? 'that job' : 'those jobs'} or wait until ${users.length === 1 ? 'it is' : 'they are'} Completed.`,
        { details: { jobs: users.map((j) => j.id) } },
      );
    }
    await this.#deps.store.deleteProfile(id);
    await this.#deps.tunnels.release(id);
    this.#deps.logger.info({ profileId: id, actor }, 'connection profile deleted');
  }

  async testProfile(id: string): Promise<ConnectionTestView> {
    const profile = await this.#profile(id);
    let params: ConnectionParams;
    try {
      params = await this.#routedParams(profile);
    } catch (error) {
      // A tunnel that cannot be opened is a test result; a secret that cannot be read is the caller's to fix (409).
      if (error instanceof FerryError && error.code !== 'SSH_TUNNEL_FAILED') throw error;
      return tunnelFailureView(error);
    }
    return toTestView(await this.#deps.engines.get(params.engine).testConnection(params));
  }

  async testProfileInput(raw: z.input<typeof CreateProfileInput>): Promise<ConnectionTestView> {
    const input = parseInput(CreateProfileInput, raw);
    const params: ConnectionParams = {
      engine: input.engine,
      host: input.host,
      port: input.port ?? DEFAULT_PORTS[input.engine],
      database: input.database ?? (input.engine === 'postgresql' ? 'postgres' : null),
      username: input.username,
      password: input.password ?? null,
      tls: { mode: input.tls?.mode ?? 'none', caCertificate: input.tls?.caCertificate, clientCertificate: input.tls?.clientCertificate, clientKey: input.tls?.clientKey },
    };
    if (input.connectivityMethod === 'direct') {
      return toTestView(await this.#deps.engines.get(params.engine).testConnection(params));
    }
    const ssh = input.sshTunnel;
    if (ssh === undefined || ssh.privateKey === undefined) {
      throw new FerryError('INVALID_ARGUMENT', 'sshTunnel: host, username and privateKey are required with connectivityMethod "ssh-tunnel".', { details: { fields: [{ path: 'sshTunnel', message: 'required' }] } });
    }
    // A tunnel of its own, closed after the test: the profile does not exist, so no host key is recorded.
    const key = `test-${randomBytes(6).toString('hex')}`;
    try {
      const route = await this.#deps.tunnels.open({
        key,
        ssh: { host: ssh.host, port: ssh.port, username: ssh.username, hostKeyFingerprint: ssh.hostKeyFingerprint ?? null },
        privateKey: this.#checkedPrivateKey(ssh.privateKey),
        target: { host: params.host, port: params.port },
      });
      return toTestView(await this.#deps.engines.get(params.engine).testConnection({ ...params, route }));
    } catch (error) {
      return tunnelFailureView(error);
    } finally {
      await this.#deps.tunnels.release(key);
    }
  }

  /**
   * The tables a job with this profile as its source can migrate (the schema read verify and
   * the full dump use, every table), each marked with whether the include/exclude patterns
   * select it: the create form's preview of a selection. A database it cannot reach rejects
   * with that error (CONNECTION_REFUSED, AUTHENTICATION_FAILED, ...).
   */
  async listProfileTables(id: string, raw: z.input<typeof ListTablesInput>): Promise<SourceTableListView> {
    const selection = parseInput(ListTablesInput, raw) ?? SELECT_ALL;
    checkSelection(selection);
    const params = await this.resolveConnection(id);
    const schema = await this.#deps.engines.get(params.engine).readSchema(params, SELECT_ALL);
    const tables = schema.tables
      .map((t) => ({ schema: t.schema, name: t.name, estimatedRows: Math.round(t.estimatedRows), selected: isTableSelected(selection, t.schema, t.name) }))
      .sort((a, b) => (a.schema === b.schema ? (a.name < b.name ? -1 : 1) : a.schema < b.schema ? -1 : 1));
    return { tables };
  }

  /**
   * The profile's connection parameters with secrets decrypted, through its SSH tunnel when
   * it has one (opened, or logged in again, here). For the pipeline; never returned by the API.
   * A secret that cannot be decrypted rejects with SECRET_UNREADABLE (recoverable), naming the profile and the fix.
   */
  async resolveConnection(profileId: string): Promise<ConnectionParams> {
    return this.#routedParams(await this.#profile(profileId));
  }

  // Migration jobs

  async createJob(raw: z.input<typeof CreateJobInput>, actor: Actor): Promise<JobView> {
    const input = parseInput(CreateJobInput, raw);
    checkSelection(input.selection);
    const [source, destination] = await Promise.all([
      this.#profile(input.sourceProfileId, 'sourceProfileId'),
      this.#profile(input.destinationProfileId, 'destinationProfileId'),
    ]);
    if (source.id === destination.id) {
      throw new FerryError('INVALID_ARGUMENT', 'sourceProfileId and destinationProfileId are the same profile; a job copies from one database to another.');
    }
    requireSupported(source.engine, destination.engine, input.type);
    const mappingProblems = validateSchemaMapping(input.schemaMapping, destination.engine);
    if (mappingProblems.length > 0) {
      throw new FerryError('INVALID_ARGUMENT', mappingProblems.map((p) => `${p.path}: ${p.message}`).join('; '), { details: { fields: mappingProblems } });
    }
    if (input.definerPolicy !== 'keep' && (source.engine !== 'mysql' || destination.engine !== 'mysql')) {
      throw new FerryError('INVALID_ARGUMENT', `definerPolicy "${input.definerPolicy}" applies to MySQL/MariaDB to MySQL/MariaDB jobs only (views, routines, triggers and events carried with their DEFINER); leave it out for a ${source.engine} to ${destination.engine} job.`, { details: { fields: [{ path: 'definerPolicy', message: 'MySQL to MySQL only' }] } });
    }
    const id = input.id ?? (await generateId(input.displayName, async (candidate) => (await this.#deps.store.getJob(candidate)) !== null));
    if (await this.#deps.store.getJob(id)) {
      throw new FerryError('ALREADY_EXISTS', `A migration job with id "${id}" exists already; choose another id.`);
    }
    const now = this.#deps.clock.now();
    const job: MigrationJob = {
      id,
      displayName: input.displayName,
      type: input.type,
      sourceProfileId: source.id,
      destinationProfileId: destination.id,
      sourceEngine: source.engine,
      destinationEngine: destination.engine,
      connectivityMethod: source.connectivityMethod,
      selection: input.selection,
      dumpParallelism: input.dumpParallelism,
      ...(input.zeroDatePolicy === 'refuse' ? { zeroDatePolicy: 'refuse' as const } : {}),
      ...(input.enumErrorValuePolicy === 'null' ? { enumErrorValuePolicy: 'null' as const } : {}),
      ...(input.nulCharacterPolicy === 'strip' ? { nulCharacterPolicy: 'strip' as const } : {}),
      ...(Object.keys(input.schemaMapping).length > 0 ? { schemaMapping: input.schemaMapping } : {}),
      ...(input.definerPolicy !== 'keep' ? { definerPolicy: input.definerPolicy } : {}),
      ...(input.maxParkedChanges === undefined ? {} : { maxParkedChanges: input.maxParkedChanges }),
      ...(input.requireValidation ? { requireValidation: true } : {}),
      labels: input.labels,
      status: 'NOT_STARTED',
      phase: null,
      error: null,
      promoteRequested: false,
      createTime: now,
      updateTime: now,
      startTime: null,
      endTime: null,
      runningMillis: 0,
      runStartTime: null,
    };
    await this.#deps.store.insertJob(job);
    await this.#deps.store.appendJobEvent({ jobId: id, time: now, kind: 'created', actor, status: 'NOT_STARTED', message: `Job created by ${actor}` });
    return this.#toJobView(job);
  }

  async getJob(id: string): Promise<JobView> {
    return this.#toJobView(await this.#job(id));
  }

  /**
   * Identical queries within the same second and data version get the same object back
   * (callers must not change it): the API serializes it once for all of them.
   */
  async listJobs(raw: z.input<typeof JobListQuery>): Promise<PageView<JobView>> {
    const query = parseInput(JobListQuery, raw);
    const options = {
      pageSize: query.pageSize,
      pageToken: query.pageToken ?? null,
      status: query.status ?? [],
      search: query.search?.trim() ?? '',
      orderBy: query.orderBy,
    };
    const key = JSON.stringify(options);
    const [dataVersion, second] = [await this.#deps.store.dataVersion(), this.#deps.clock.now().slice(0, 19)];
    const memo = this.#jobLists.get(key);
    if (memo !== undefined && memo.dataVersion === dataVersion && memo.second === second) return memo.page;

    const stored = await this.#deps.store.listJobs(options);
    const page: PageView<JobView> = {
      items: await this.#toJobViews(stored.items),
      nextPageToken: stored.nextPageToken,
      totalSize: stored.totalSize ?? stored.items.length,
    };
    // Map order is insertion order: re-inserting keeps the most recent last, the oldest first.
    this.#jobLists.delete(key);
    this.#jobLists.set(key, { dataVersion, second, page });
    if (this.#jobLists.size > JOB_LIST_MEMO_SIZE) this.#jobLists.delete(this.#jobLists.keys().next().value!);
    return page;
  }

  async updateJob(id: string, raw: z.input<typeof UpdateJobInput>, actor: Actor): Promise<JobView> {
    const input = parseInput(UpdateJobInput, raw);
    const job = await this.#job(id);
    if ((input.selection !== undefined || input.dumpParallelism !== undefined) && job.status !== 'NOT_STARTED') {
      throw new FerryError('FAILED_PRECONDITION', `The selection and dump parallelism of job "${id}" can change only while it is Not started; it is ${STATUS_LABELS[job.status]}. Create a new job instead.`);
    }
    if (input.selection !== undefined) {
      const problems = validateSelection(input.selection);
      if (problems.length > 0) throw new FerryError('INVALID_ARGUMENT', `selection: ${problems.join('; ')}`);
    }
    const updated: MigrationJob = {
      ...job,
      displayName: input.displayName ?? job.displayName,
      labels: input.labels ?? job.labels,
      selection: input.selection ?? job.selection,
      dumpParallelism: input.dumpParallelism ?? job.dumpParallelism,
      ...(input.maxParkedChanges === undefined ? {} : { maxParkedChanges: input.maxParkedChanges }),
      ...(input.requireValidation === undefined ? {} : { requireValidation: input.requireValidation }),
      updateTime: this.#deps.clock.now(),
    };
    if (!(await this.#deps.store.updateJob(updated, job.status))) {
      throw new FerryError('FAILED_PRECONDITION', `Job "${id}" changed status while it was being updated; read it again and retry.`);
    }
    this.#deps.logger.info({ jobId: id, actor }, 'job updated');
    return this.#toJobView(updated);
  }

  /**
   * Start, stop, resume, restart or promote. Restart takes `objects` (those tables only, in
   * Full dump). Promote is refused while tables are parked (the destination refuses their
   * changes) unless `force`, which promotes the other tables and leaves the parked ones not migrated.
   */
  async applyJobAction(id: string, action: Exclude<JobAction, 'delete'>, actor: Actor, options: JobActionOptions = {}): Promise<JobView> {
    const job = await this.#job(id);
    const target = this.#allowed(job, action);
    if (action === 'promote' && (options.requireValidation === true || job.requireValidation === true)) await this.#validations.requireClean(id);
    if (action === 'start') requireSupported(job.sourceEngine, job.destinationEngine, job.type);
    if (options.force !== undefined && action !== 'promote') {
      throw new FerryError('INVALID_ARGUMENT', `Only promote takes force; ${action} does not.`, { details: { action } });
    }
    const force = options.force === true;
    const objects = await this.#restartObjects(job, action, options);
    if (action === 'promote') await this.#requireNothingParked(job, force);
    const now = this.#deps.clock.now();
    let updated: MigrationJob;
    if (action === 'promote' && target === job.status) {
      updated = { ...job, promoteRequested: true, updateTime: now };
    } else {
      updated = withStatus(job, target as MigrationJob['status'], job.phase, now);
      if (action === 'start' || action === 'restart') updated = { ...updated, error: null, phase: null, endTime: null };
      if (action === 'promote') updated = { ...updated, promoteRequested: true };
    }
    // Written before the move, so the worker never sees Restarting without knowing which restart it is.
    if (action === 'restart') await this.#deps.store.putCheckpoint(id, RESTART_OBJECTS_CHECKPOINT, objects);
    if (!(await this.#deps.store.updateJob(updated, job.status))) {
      if (objects !== null) await this.#deps.store.putCheckpoint(id, RESTART_OBJECTS_CHECKPOINT, null);
      const fresh = await this.#job(id);
      throw this.#notAllowed(fresh, action);
    }
    await this.#deps.store.appendJobEvent({
      jobId: id, time: now, kind: 'action', actor, action, status: updated.status, phase: updated.phase,
      message: objects === null
        ? `${capitalize(action)}${force ? ' with force' : ''} requested by ${actor}`
        : `Restart of ${objects.length === 1 ? 'table' : 'tables'} ${objects.join(', ')} requested by ${actor}`,
      ...(objects === null ? (force ? { details: { force: true } } : {}) : { details: { objects } }),
    });
    this.#deps.workers.wake(id);
    return this.#toJobView(updated);
  }

  /**
   * The tables a restart names, checked: null for a whole restart. Only in Full dump (later
   * the tables replicate from one stream position), and only tables of the job.
   */
  async #restartObjects(job: MigrationJob, action: JobAction, options: JobActionOptions): Promise<string[] | null> {
    if (options.objects === undefined) return null;
    if (action !== 'restart') {
      throw new FerryError('INVALID_ARGUMENT', `Only restart takes a list of tables; ${action} applies to the whole job.`, { details: { action } });
    }
    const requested = [...new Set(parseInput(RestartJobInput, { objects: options.objects })?.objects ?? [])];
    if (job.phase !== 'FULL_DUMP' && job.phase !== null) {
      throw new FerryError(
        'ACTION_NOT_ALLOWED',
        `Cannot restart chosen tables of migration job "${job.id}": it is ${STATUS_LABELS[job.status]} (${substatusOf(job) ?? job.phase}), and tables can be restarted one by one only while the job is in Full dump. Restart the whole job instead (ferry jobs restart ${job.id}).`,
        { details: { status: job.status, substatus: substatusOf(job), availableActions: availableActions(job), action } },
      );
    }
    const known = (await this.#deps.store.listJobObjects(job.id)).map((o) => o.name).sort();
    if (known.length === 0) {
      throw new FerryError('FAILED_PRECONDITION', `Migration job "${job.id}" has no tables yet (its full dump never read the source's schema): restart the whole job (ferry jobs restart ${job.id}).`, { details: { objects: [] } });
    }
    const unknown = requested.filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      const listed = known.length > 50 ? `${known.slice(0, 50).join(', ')}, ... (${known.length} in all; ferry jobs describe ${job.id})` : known.join(', ');
      throw new FerryError(
        'INVALID_ARGUMENT',
        `objects: ${unknown.map((n) => `"${n}"`).join(', ')} ${unknown.length === 1 ? 'is not a table' : 'are not tables'} of migration job "${job.id}"; name tables as "schema.table" as the source names them. The job's tables: ${listed}.`,
        { details: { unknown, objects: known.slice(0, 1000) } },
      );
    }
    return requested;
  }

  async #requireNothingParked(job: MigrationJob, force: boolean): Promise<void> {
    const parked = (await this.#deps.store.listJobObjects(job.id)).filter((o) => o.state === 'ERROR');
    if (force) {
      // Recorded before the promote is: the runner reads it when the promote begins.
      await this.#deps.store.putCheckpoint(job.id, PROMOTE_FORCE_CHECKPOINT, true);
      return;
    }
    await this.#deps.store.putCheckpoint(job.id, PROMOTE_FORCE_CHECKPOINT, false);
    if (parked.length === 0) return;
    const list = parked.map((o) => `${o.name} (${o.parkedChanges ?? 0} changes waiting${o.error === null ? '' : `: ${o.error.message}`})`).join('; ');
    throw new FerryError(
      'FAILED_PRECONDITION',
      `Promote refused: ${parked.length === 1 ? 'table' : `${parked.length} tables`} ${parked.map((o) => o.name).join(', ')} ${parked.length === 1 ? 'is' : 'are'} parked (the destination refuses their changes, which wait on the destination): ${list}. Fix the destination so that they apply (Ferry retries by itself and the tables rejoin the stream), then promote; or promote with force (ferry jobs promote ${job.id} --force; API body {"force": true}) to promote the other tables and leave these not migrated.`,
      { details: { parkedTables: parked.map((o) => ({ table: o.name, parkedChanges: o.parkedChanges ?? 0 })) } },
    );
  }

  async validateJob(id: string, actor: Actor): Promise<ValidationView> {
    return this.#validations.start(await this.#job(id), actor);
  }

  async getJobValidation(id: string, validationId: string): Promise<ValidationView> {
    await this.#job(id);
    return this.#validations.get(id, validationId);
  }

  async listJobValidations(id: string): Promise<ValidationView[]> {
    await this.#job(id);
    return this.#validations.list(id);
  }

  /** Stops the validations running in this process. */
  async close(): Promise<void> {
    await this.#validations.close();
  }

  async deleteJob(id: string, actor: Actor): Promise<void> {
    const job = await this.#job(id);
    this.#allowed(job, 'delete');
    await this.#deps.workers.cancel(id);
    await this.#validations.cancel(id);
    const replication = await this.#deps.store.getCheckpoint<ReplicationCheckpoint>(id, REPLICATION_CHECKPOINT);
    if (replication !== null) {
      // A slot left behind would keep WAL on the source forever: the job goes only once it is gone.
      const source = this.#deps.engines.get(job.sourceEngine);
      try {
        await source.dropReplication(await this.resolveConnection(job.sourceProfileId), replication.spec);
      } catch (error) {
        this.#deps.workers.wake(id);
        const cause = error instanceof FerryError ? error : source.classifyError(error);
        throw new FerryError(cause.code, `Job "${id}" was not deleted: its replication slot "${replication.spec.slotName}" and publication "${replication.spec.publicationName}" could not be removed from the source (${cause.message}). Retry once the source is reachable, or drop them yourself (SELECT pg_drop_replication_slot('${replication.spec.slotName}'); DROP PUBLICATION "${replication.spec.publicationName}";) and retry.`, { retryable: cause.retryable, details: { ...cause.details, slot: replication.spec.slotName }, cause });
      }
    }
    await this.#deps.store.deleteJob(id);
    this.#deps.logger.info({ jobId: id, actor, status: job.status }, 'job deleted; destination data kept');
  }

  async verifyJob(id: string): Promise<VerifyReportView> {
    const job = await this.#job(id);
    const checks: VerifyCheck[] = [];
    const unsupported = supportError(job.sourceEngine, job.destinationEngine, job.type);
    if (unsupported) {
      checks.push({ code: 'UNSUPPORTED_ENGINE_PAIR', side: 'source', severity: 'error', message: unsupported.message });
      return { ok: false, checks };
    }
    const source = this.#deps.engines.get(job.sourceEngine);
    const destination = this.#deps.engines.get(job.destinationEngine);
    const [sourceParams, destinationParams] = await Promise.all([
      this.resolveConnection(job.sourceProfileId),
      this.resolveConnection(job.destinationProfileId),
    ]);
    checks.push(...(await source.verifySource(sourceParams, job.selection, job.type, { destinationEngine: job.destinationEngine, zeroDatePolicy: job.zeroDatePolicy ?? 'null', enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label', nulCharacterPolicy: job.nulCharacterPolicy ?? 'refuse' })));
    if (!checks.some((c) => c.severity === 'error')) {
      const schema = await source.readSchema(sourceParams, job.selection, { destinationEngine: job.destinationEngine });
      checks.push(...pairChecks(schema, job.sourceEngine, job.destinationEngine, job.type));
      const mapping = resolveSchemaMapping({ explicit: job.schemaMapping ?? {}, sourceSchemas: schema.schemas, destinationEngine: job.destinationEngine, destinationDatabase: destinationParams.database });
      checks.push(...mapping.checks);
      if (!mapping.checks.some((c) => c.severity === 'error')) checks.push(...(await destination.verifyDestination(destinationParams, mapDatabaseSchema(schema, mapping.mapping), job.definerPolicy === undefined ? {} : { definerPolicy: job.definerPolicy })));
      try {
        checks.push(schemaObjectsCheck(await this.#planSchemaObjects(job, source, sourceParams, schema)));
      } catch (error) {
        const message = error instanceof FerryError ? error.message : String(error);
        checks.push({ code: 'SCHEMA_OBJECTS', side: 'source', severity: 'warning', message: `The source's schema objects could not be listed: ${message}` });
      }
    } else {
      const report = await destination.testConnection(destinationParams);
      checks.push(...connectivityChecks(report, 'destination'));
    }
    return { ok: !checks.some((c) => c.severity === 'error'), checks };
  }

  async listJobSchemaObjects(id: string): Promise<SchemaObjectReportView> {
    const job = await this.#job(id);
    const source = this.#deps.engines.get(job.sourceEngine);
    const sourceParams = await this.resolveConnection(job.sourceProfileId);
    const schema = await source.readSchema(sourceParams, job.selection, { destinationEngine: job.destinationEngine });
    return { objects: await this.#planSchemaObjects(job, source, sourceParams, schema) };
  }

  /**
   * The plan of the source's objects for this job: those the schema carries (MySQL reads them
   * with it), else what the engine lists; an engine that cannot list them gives none.
   */
  async #planSchemaObjects(job: MigrationJob, source: Engine, sourceParams: ConnectionParams, schema: DatabaseSchema): Promise<SchemaObjectPlan[]> {
    const objects = schema.objects ?? (await source.listSchemaObjects?.(sourceParams, job.selection)) ?? [];
    return planSchemaObjects(objects, {
      sourceEngine: job.sourceEngine,
      destinationEngine: job.destinationEngine,
      jobType: job.type,
      tables: schema.tables.map(qualifiedName),
    });
  }

  async listJobObjects(id: string): Promise<JobObjectView[]> {
    await this.#job(id);
    return (await this.#deps.store.listJobObjects(id)).map(toObjectView);
  }

  async listNodes(): Promise<NodeView[]> {
    const [nodes, leases] = await Promise.all([this.#deps.store.listNodes(), this.#deps.store.listJobLeases()]);
    const now = this.#deps.clock.now();
    const jobsOf = new Map<string, string[]>();
    for (const [jobId, nodeId] of liveLeaseHolders(leases, now)) jobsOf.set(nodeId, [...(jobsOf.get(nodeId) ?? []), jobId]);
    return nodes.map((node) => {
      const jobs = jobsOf.get(node.id) ?? [];
      return { ...node, state: nodeState(node, now, jobs.length, this.#deps.nodeLostAfterMs), jobs };
    });
  }

  jobTakeovers(): number {
    return this.#deps.workers.takeovers;
  }

  async setNodeDrain(id: string, drain: boolean, actor: Actor): Promise<NodeView> {
    await this.#deps.store.setNodeDrain(id, drain ? this.#deps.clock.now() : null);
    this.#deps.logger.info({ nodeId: id, actor }, drain ? 'drain of a node asked: its jobs move to other nodes' : 'drain of a node lifted: it takes jobs again');
    const node = (await this.listNodes()).find((n) => n.id === id);
    if (node === undefined) throw new FerryError('NOT_FOUND', `Node "${id}" vanished from the metadata store; list nodes to check`, { details: { nodeId: id } });
    return node;
  }

  async listJobEvents(id: string, afterId?: number): Promise<z.infer<typeof JobEventView>[]> {
    await this.#job(id);
    return (await this.#deps.store.listJobEvents(id, { afterId, limit: 1000 })).map((event) => ({
      id: event.id, time: event.time, kind: event.kind, message: event.message, actor: event.actor,
      ...(event.action === undefined ? {} : { action: event.action }),
      ...(event.status === undefined ? {} : { status: event.status }),
      ...(event.phase === undefined ? {} : { phase: event.phase }),
      ...(event.details === undefined ? {} : { details: event.details }),
    }));
  }

  // Helpers

  async #profile(id: string, field?: string): Promise<StoredProfile> {
    const profile = await this.#deps.store.getProfile(id);
    if (profile === null) {
      throw new FerryError('NOT_FOUND', `${field ? `${field}: ` : ''}connection profile "${id}" does not exist; list profiles with \`ferry profiles list\`.`, { details: { profileId: id } });
    }
    return profile;
  }

  async #job(id: string): Promise<MigrationJob> {
    const job = await this.#deps.store.getJob(id);
    if (job === null) {
      throw new FerryError('NOT_FOUND', `Migration job "${id}" does not exist; list jobs with \`ferry jobs list\`.`, { details: { jobId: id } });
    }
    return job;
  }

  #allowed(job: MigrationJob, action: JobAction): ReturnType<typeof nextStatusForAction> & string {
    const target = nextStatusForAction(job, action);
    if (target === null) throw this.#notAllowed(job, action);
    return target;
  }

  #notAllowed(job: MigrationJob, action: JobAction): FerryError {
    const substatus = substatusOf(job);
    const allowed = availableActions(job);
    return new FerryError(
      'ACTION_NOT_ALLOWED',
      `Cannot ${action} migration job "${job.id}": it is ${STATUS_LABELS[job.status]}${substatus ? ` (${substatus})` : ''}. Allowed now: ${allowed.length > 0 ? allowed.join(', ') : 'none'}.`,
      { details: { status: job.status, substatus, availableActions: allowed, action } },
    );
  }

  async #routedParams(profile: StoredProfile): Promise<ConnectionParams> {
    const params = this.#connectionParams(profile);
    if (profile.connectivityMethod !== 'ssh-tunnel') return params;
    const ssh = profile.sshTunnel;
    if (ssh === null || profile.encryptedSshPrivateKey === null) {
      throw new FerryError('FAILED_PRECONDITION', `Connection profile "${profile.id}" uses an SSH tunnel but has no SSH server or private key; set them with \`ferry profiles update ${profile.id} --ssh-host ... --ssh-user ... --ssh-private-key-file ...\`.`);
    }
    const route = await this.#deps.tunnels.open({
      key: profile.id,
      ssh,
      privateKey: openSecret(this.#deps.secrets, { ownerId: profile.id, field: 'sshPrivateKey', value: profile.encryptedSshPrivateKey }),
      target: { host: profile.host, port: profile.port },
      onHostKeyLearned: (fingerprint) => this.#recordHostKey(profile.id, ssh, fingerprint),
    });
    return { ...params, route };
  }

  /** Trust on first use: the first host key seen is written to the profile, so a different one is refused later. */
  async #recordHostKey(profileId: string, ssh: SshTunnelSettings, fingerprint: string): Promise<void> {
    const current = await this.#deps.store.getProfile(profileId);
    const now = current?.sshTunnel;
    if (current === null || now === null || now === undefined || now.hostKeyFingerprint !== null || now.host !== ssh.host || now.port !== ssh.port) return;
    await this.#deps.store.updateProfile({ ...current, sshTunnel: { ...now, hostKeyFingerprint: fingerprint }, updateTime: this.#deps.clock.now() });
    this.#deps.logger.info({ profileId, sshHost: ssh.host, sshPort: ssh.port, fingerprint }, 'recorded the SSH server host key (first use)');
  }

  #checkedPrivateKey(privateKey: string): string {
    const problem = this.#deps.tunnels.checkPrivateKey(privateKey);
    if (problem !== null) {
      throw new FerryError('INVALID_ARGUMENT', `sshTunnel.privateKey: cannot be read (${problem}). Give an unencrypted OpenSSH or PEM private key, e.g. the file ssh-keygen -t ed25519 -N '' wrote.`, { details: { fields: [{ path: 'sshTunnel.privateKey', message: problem }] } });
    }
    return privateKey;
  }

  #updatedSsh(current: StoredProfile, input: z.output<typeof UpdateProfileInput>['sshTunnel']): Pick<StoredProfile, 'sshTunnel' | 'encryptedSshPrivateKey'> {
    if (input === undefined) return { sshTunnel: current.sshTunnel, encryptedSshPrivateKey: current.encryptedSshPrivateKey };
    if (input === null) return { sshTunnel: null, encryptedSshPrivateKey: null };
    const before = current.sshTunnel;
    const host = input.host ?? before?.host;
    const username = input.username ?? before?.username;
    if (host === undefined || username === undefined) {
      throw new FerryError('INVALID_ARGUMENT', 'sshTunnel: host and username are required when the profile has no SSH server yet.', { details: { fields: [{ path: 'sshTunnel', message: 'host and username required' }] } });
    }
    const port = input.port ?? before?.port ?? 22;
    const sameServer = before !== null && before.host === host && before.port === port;
    // Another SSH server has another host key: forget the recorded one unless a new one is given.
    const hostKeyFingerprint = input.hostKeyFingerprint !== undefined ? input.hostKeyFingerprint : sameServer ? before.hostKeyFingerprint : null;
    return {
      sshTunnel: { host, port, username, hostKeyFingerprint },
      encryptedSshPrivateKey: input.privateKey === undefined ? current.encryptedSshPrivateKey : this.#deps.secrets.encrypt(this.#checkedPrivateKey(input.privateKey)),
    };
  }

  #connectionParams(profile: StoredProfile): ConnectionParams {
    const { secrets } = this.#deps;
    return {
      engine: profile.engine,
      host: profile.host,
      port: profile.port,
      database: profile.database,
      username: profile.username,
      password: profile.encryptedPassword === null ? null : openSecret(secrets, { ownerId: profile.id, field: 'password', value: profile.encryptedPassword }),
      tls: {
        mode: profile.tlsMode,
        caCertificate: profile.caCertificate ?? undefined,
        clientCertificate: profile.clientCertificate ?? undefined,
        clientKey: profile.encryptedClientKey === null ? undefined : openSecret(secrets, { ownerId: profile.id, field: 'clientKey', value: profile.encryptedClientKey }),
      },
    };
  }

  async #toJobView(job: MigrationJob): Promise<JobView> {
    return (await this.#toJobViews([job]))[0]!;
  }

  /**
   * Views of many jobs from two more reads, whatever their number: the tables' totals of
   * every job and the names of every profile they use. (One read per job made a page of
   * 100 jobs 300 reads, and 200 clients listing queued behind each other.)
   */
  async #toJobViews(jobs: readonly MigrationJob[]): Promise<JobView[]> {
    if (jobs.length === 0) return [];
    const profileIds = [...new Set(jobs.flatMap((job) => [job.sourceProfileId, job.destinationProfileId]))];
    const [totals, names, leases] = await Promise.all([
      this.#deps.store.totalJobObjects(jobs.map((job) => job.id)),
      this.#deps.store.getProfileNames(profileIds),
      this.#deps.store.listJobLeases(),
    ]);
    const totalsByJob = new Map<string, JobObjectTotals[]>();
    for (const row of totals) {
      const list = totalsByJob.get(row.jobId);
      if (list) list.push(row);
      else totalsByJob.set(row.jobId, [row]);
    }
    const now = this.#deps.clock.now();
    const holders = liveLeaseHolders(leases, now);
    return jobs.map((job) => this.#jobView(job, totalsByJob.get(job.id) ?? [], names, now, holders.get(job.id) ?? null));
  }

  #jobView(job: MigrationJob, totals: JobObjectTotals[], profileNames: Map<string, string>, now: string, node: string | null): JobView {
    return {
      id: job.id,
      displayName: job.displayName,
      type: job.type,
      status: job.status,
      statusLabel: STATUS_LABELS[job.status],
      substatus: substatusOf(job),
      phase: job.phase,
      availableActions: availableActions(job),
      sourceProfileId: job.sourceProfileId,
      sourceProfileName: profileNames.get(job.sourceProfileId) ?? null,
      sourceEngine: job.sourceEngine,
      destinationProfileId: job.destinationProfileId,
      destinationProfileName: profileNames.get(job.destinationProfileId) ?? null,
      destinationEngine: job.destinationEngine,
      connectivityMethod: job.connectivityMethod,
      selection: job.selection,
      dumpParallelism: job.dumpParallelism,
      zeroDatePolicy: job.zeroDatePolicy ?? 'null',
      enumErrorValuePolicy: job.enumErrorValuePolicy ?? 'label',
      nulCharacterPolicy: job.nulCharacterPolicy ?? 'refuse',
      schemaMapping: job.schemaMapping ?? {},
      definerPolicy: job.definerPolicy ?? 'keep',
      maxParkedChanges: job.maxParkedChanges ?? DEFAULT_MAX_PARKED_CHANGES,
      requireValidation: job.requireValidation === true,
      labels: job.labels,
      createTime: job.createTime,
      updateTime: job.updateTime,
      startTime: job.startTime,
      endTime: job.endTime,
      durationSeconds: Math.round(runningMillisAt(job, now) / 1000),
      error: job.error,
      progress: summarizeProgress(totals),
      replication: this.#deps.workers.replicationStats(job.id),
      promoteRequested: job.promoteRequested,
      node,
    };
  }
}

/** Job id -> the node holding its lease, for the leases still live at `now` (held and not expired). */
function liveLeaseHolders(leases: readonly StoredJobLease[], now: string): Map<string, string> {
  const at = Date.parse(now);
  const holders = new Map<string, string>();
  for (const lease of leases) {
    if (lease.nodeId !== null && Date.parse(lease.expireTime) > at) holders.set(lease.jobId, lease.nodeId);
  }
  return holders;
}

/** Tables whose copy is finished: their totals are what was copied, not an estimate. */
const COPIED_STATES = new Set<JobObjectTotals['state']>(['DUMPED', 'COMPLETED', 'REPLICATING', 'ERROR']);

function summarizeProgress(totals: JobObjectTotals[]): JobView['progress'] {
  let tablesTotal = 0;
  let rowsCopied = 0;
  let bytesCopied = 0;
  let totalRows = 0;
  let totalBytes = 0;
  let tablesCompleted = 0;
  for (const t of totals) {
    tablesTotal += t.tables;
    rowsCopied += t.rowsCopied;
    bytesCopied += t.bytesCopied;
    if (COPIED_STATES.has(t.state)) {
      tablesCompleted += t.tables;
      totalRows += t.rowsCopied;
      totalBytes += t.bytesCopied;
    } else {
      // The planner's estimate, but never less than what is already copied.
      totalRows += Math.max(t.estimatedRows, t.rowsCopied);
      totalBytes += Math.max(t.estimatedBytes, t.bytesCopied);
    }
  }
  const byTables = tablesTotal === 0 ? 0 : tablesCompleted / tablesTotal;
  const byRows = totalRows > 0 ? Math.min(1, rowsCopied / totalRows) : byTables;
  // Rows copied of the estimate, but never more than the tables finished allow (estimates drift).
  const fraction = tablesCompleted === tablesTotal && tablesTotal > 0 ? 1 : Math.min(byRows, 0.99);
  return {
    tablesTotal, tablesCompleted, rowsCopied, bytesCopied, estimatedRows: totalRows, estimatedBytes: totalBytes,
    totalsEstimated: tablesCompleted < tablesTotal,
    percent: Math.round(fraction * 1000) / 10,
  };
}

function toObjectView(o: JobObject): JobObjectView {
  return {
    name: o.name, destination: o.destinationName ?? o.name, state: o.state, rowsCopied: o.rowsCopied, bytesCopied: o.bytesCopied,
    estimatedRows: o.estimatedRows, estimatedBytes: o.estimatedBytes, error: o.error,
    parkedChanges: o.parkedChanges ?? 0, lastRetryTime: o.lastRetryTime ?? null, updateTime: o.updateTime,
  };
}

function toProfileView(p: StoredProfile): ProfileView {
  return {
    id: p.id,
    displayName: p.displayName,
    engine: p.engine,
    host: p.host,
    port: p.port,
    database: p.database,
    username: p.username,
    passwordSet: p.encryptedPassword !== null,
    tls: { mode: p.tlsMode, caCertificateSet: p.caCertificate !== null, clientCertificateSet: p.clientCertificate !== null },
    connectivityMethod: p.connectivityMethod,
    sshTunnel: p.sshTunnel === null ? null : { ...p.sshTunnel, privateKeySet: p.encryptedSshPrivateKey !== null },
    labels: p.labels,
    createTime: p.createTime,
    updateTime: p.updateTime,
  };
}

function toTestView(report: ConnectionReport): ConnectionTestView {
  return {
    ok: report.ok,
    serverVersion: report.serverVersion,
    settings: report.settings,
    privileges: report.privileges,
    checks: report.checks,
    error: report.error === null ? null : { code: report.error.code, message: report.error.message },
  };
}

/** Refuses malformed include/exclude patterns with INVALID_ARGUMENT naming each. */
function checkSelection(selection: { include: string[]; exclude: string[] }): void {
  const problems = validateSelection(selection);
  if (problems.length > 0) {
    throw new FerryError('INVALID_ARGUMENT', `selection: ${problems.join('; ')}`, { details: { fields: problems.map((message) => ({ path: 'selection', message })) } });
  }
}

/** A test whose SSH tunnel could not open: reported like a failed connection. */
function tunnelFailureView(error: unknown): ConnectionTestView {
  if (!(error instanceof FerryError) || error.code === 'INVALID_ARGUMENT') throw error;
  return { ok: false, serverVersion: null, settings: {}, privileges: {}, checks: [], error: { code: error.code, message: error.message } };
}

function connectivityChecks(report: ConnectionReport, side: 'source' | 'destination'): VerifyCheck[] {
  if (report.ok) return [{ code: 'CONNECTIVITY', side, severity: 'ok', message: `Connected to ${report.serverVersion ?? 'the server'}.` }];
  return [{ code: report.error?.code ?? 'CONNECTIVITY', side, severity: 'error', message: report.error?.message ?? 'The server could not be reached.' }];
}

function validateProfile(p: StoredProfile): void {
  if (p.engine === 'postgresql' && (p.database === null || p.database === '')) {
    throw new FerryError('INVALID_ARGUMENT', 'database: required for PostgreSQL profiles (the database to migrate from or to).', { details: { fields: [{ path: 'database', message: 'required for PostgreSQL' }] } });
  }
  if ((p.tlsMode === 'server-only' || p.tlsMode === 'server-client') && p.caCertificate === null) {
    throw new FerryError('INVALID_ARGUMENT', `tls.caCertificate: required with tls.mode "${p.tlsMode}" (the PEM of the CA that signed the server's certificate).`, { details: { fields: [{ path: 'tls.caCertificate', message: 'required' }] } });
  }
  if (p.tlsMode === 'server-client' && (p.clientCertificate === null || p.encryptedClientKey === null)) {
    throw new FerryError('INVALID_ARGUMENT', 'tls.clientCertificate and tls.clientKey: required with tls.mode "server-client".', { details: { fields: [{ path: 'tls.clientCertificate', message: 'required' }] } });
  }
  if (p.connectivityMethod === 'ssh-tunnel' && (p.sshTunnel === null || p.encryptedSshPrivateKey === null)) {
    throw new FerryError('INVALID_ARGUMENT', 'sshTunnel: host, username and privateKey are required with connectivityMethod "ssh-tunnel" (the SSH server to tunnel through and the key to log in with).', { details: { fields: [{ path: 'sshTunnel', message: 'required' }] } });
  }
}

function supportError(source: string, destination: string, type: string): FerryError | null {
  if (SUPPORTED_JOBS.some((s) => s.source === source && s.destination === destination && s.type === type)) return null;
  const pair = `${source} to ${destination}`;
  if (!SUPPORTED_JOBS.some((s) => s.source === source && s.destination === destination)) {
    return new FerryError('NOT_IMPLEMENTED', `${pair} migrations are not built yet: this Ferry runs PostgreSQL to PostgreSQL jobs (one-time and continuous). MySQL/MariaDB support is on the way.`, { details: { source, destination, type } });
  }
  return new FerryError('NOT_IMPLEMENTED', `${type} jobs are not built yet for ${pair}.`, { details: { source, destination, type } });
}

function requireSupported(source: string, destination: string, type: string): void {
  const error = supportError(source, destination, type);
  if (error) throw error;
}

/**
 * An id a person can read and type, from the display name: "Move shop" -> "move-shop-1", then
 * "move-shop-2" when that one is taken. Ids of other resources do not count.
 */
async function generateId(displayName: string, taken: (id: string) => Promise<boolean>): Promise<string> {
  const slug = displayName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
  const prefix = /^[a-z]/.test(slug) ? slug : `x-${slug}`.replace(/-+$/, '');
  for (let n = 1; n <= 1000; n++) {
    const candidate = `${prefix}-${n}`;
    if (!(await taken(candidate))) return candidate;
  }
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
