/**
 * The validation use cases: start a validation of a job, read one, list a job's, and the check
 * a promote with `requireValidation` makes. A validation runs in this process beside the job's
 * runner (it only reads both databases); its record is kept as job checkpoints
 * (`validation:<id>`, and `validations`: the ids, newest last, at most KEPT_VALIDATIONS), so a
 * Restart, which clears checkpoints, forgets the validations of the data it wipes. Each
 * finished validation also writes one history event with its summary.
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../core/errors.js';
import type { MigrationJob } from '../core/migration-job.js';
import { describeValidation, summarizeValidation, type Validation } from '../core/validation.js';
import { runDataValidation, type DataValidationDeps } from '../pipeline/data-validation.js';
import type { Actor } from './ferry-service.js';

const INDEX_CHECKPOINT = 'validations';
const checkpointKey = (id: string) => `validation:${id}`;
/** Validations kept per job; older ones are dropped from the list. */
const KEPT_VALIDATIONS = 20;

export class ValidationService {
  readonly #deps: DataValidationDeps;
  /** Validations running in this process, by job id: one at a time per job. */
  readonly #running = new Map<string, { id: string; abort: AbortController; done: Promise<void> }>();

  constructor(deps: DataValidationDeps) {
    this.#deps = deps;
  }

  /** Starts a validation of the job and resolves with its RUNNING record; the comparison goes on in the background. */
  async start(job: MigrationJob, actor: Actor): Promise<Validation> {
    if (job.status === 'NOT_STARTED' || job.status === 'STARTING') {
      throw new FerryError('FAILED_PRECONDITION', `Job "${job.id}" is ${job.status === 'NOT_STARTED' ? 'Not started' : 'Starting...'}: there is nothing to validate yet; start it and validate once its full dump is done.`);
    }
    if (job.phase === 'FULL_DUMP' && job.status !== 'COMPLETED') {
      throw new FerryError('FAILED_PRECONDITION', `Job "${job.id}" is still in its full dump: tables are being copied; validate once it reaches ${job.type === 'continuous' ? 'Incremental load' : 'Completed'}.`);
    }
    const running = this.#running.get(job.id);
    if (running !== undefined) {
      throw new FerryError('ALREADY_EXISTS', `Validation ${running.id} of job "${job.id}" is still running; wait for it (ferry jobs validations ${job.id}) before starting another.`);
    }
    const validation: Validation = {
      id: `v-${new Date(this.#deps.clock.now()).toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`,
      jobId: job.id,
      status: 'RUNNING',
      clean: null,
      createTime: this.#deps.clock.now(),
      endTime: null,
      actor,
      recheckedInFlight: false,
      summary: summarizeValidation([]),
      tables: [],
      error: null,
    };
    await this.#deps.store.putCheckpoint(job.id, checkpointKey(validation.id), validation);
    const ids = (await this.#deps.store.getCheckpoint<string[]>(job.id, INDEX_CHECKPOINT)) ?? [];
    await this.#deps.store.putCheckpoint(job.id, INDEX_CHECKPOINT, [...ids, validation.id].slice(-KEPT_VALIDATIONS));
    const abort = new AbortController();
    const done = this.#run(job, validation, abort.signal).finally(() => this.#running.delete(job.id));
    this.#running.set(job.id, { id: validation.id, abort, done });
    return validation;
  }

  async #run(job: MigrationJob, validation: Validation, signal: AbortSignal): Promise<void> {
    const save = (v: Validation) => this.#deps.store.putCheckpoint(job.id, checkpointKey(v.id), v);
    try {
      const result = await runDataValidation(job, validation, this.#deps, signal, save);
      await this.#deps.store.appendJobEvent({
        jobId: job.id,
        time: this.#deps.clock.now(),
        kind: 'info',
        actor: validation.actor,
        message: describeValidation(result),
        details: { code: 'VALIDATION', validationId: result.id, status: result.status, clean: result.clean, summary: result.summary },
      });
    } catch (error) {
      this.#deps.logger.warn({ jobId: job.id, validationId: validation.id, err: String(error) }, 'validation stopped');
    }
  }

  async get(jobId: string, id: string): Promise<Validation> {
    const found = await this.#deps.store.getCheckpoint<Validation>(jobId, checkpointKey(id));
    if (found === null) throw new FerryError('NOT_FOUND', `Job "${jobId}" has no validation "${id}"; list them with GET /v1/migrationJobs/${jobId}/validations (ferry jobs validations ${jobId}).`);
    return this.#orphaned(found);
  }

  /** Newest first. */
  async list(jobId: string): Promise<Validation[]> {
    const ids = (await this.#deps.store.getCheckpoint<string[]>(jobId, INDEX_CHECKPOINT)) ?? [];
    const found = await Promise.all([...ids].reverse().map((id) => this.#deps.store.getCheckpoint<Validation>(jobId, checkpointKey(id))));
    return found.filter((v): v is Validation => v !== null).map((v) => this.#orphaned(v));
  }

  /** Rejects with FAILED_PRECONDITION unless the job's latest validation succeeded with every table equal. */
  async requireClean(jobId: string): Promise<void> {
    const [latest] = await this.list(jobId);
    const how = `run "ferry jobs validate ${jobId}" (POST /v1/migrationJobs/${jobId}:validate), or promote without requiring a validation`;
    if (latest === undefined) throw new FerryError('FAILED_PRECONDITION', `Promote requires a clean validation and job "${jobId}" has none; ${how}.`);
    if (latest.status === 'RUNNING') throw new FerryError('FAILED_PRECONDITION', `Promote requires a clean validation and validation ${latest.id} is still running; promote once it ends.`);
    if (latest.clean !== true) throw new FerryError('FAILED_PRECONDITION', `Promote requires a clean validation; the latest, ${latest.id}, was not (${describeValidation(latest)}). Fix the differences or ${how}.`);
  }

  /** Stops the job's running validation, if any (the job is being deleted); resolves when it let go. */
  async cancel(jobId: string): Promise<void> {
    const running = this.#running.get(jobId);
    if (running === undefined) return;
    running.abort.abort(new FerryError('FAILED_PRECONDITION', `Job "${jobId}" was deleted during the validation.`));
    await running.done;
  }

  /** Stops every validation running in this process (server shutdown). */
  async close(): Promise<void> {
    const all = [...this.#running.values()];
    for (const r of all) r.abort.abort(new FerryError('SERVER_SHUTTING_DOWN', 'The server stopped during the validation; validate again.'));
    await Promise.allSettled(all.map((r) => r.done));
  }

  /** A RUNNING record that no process runs (the server stopped during it) reads as FAILED. */
  #orphaned(v: Validation): Validation {
    if (v.status !== 'RUNNING' || this.#running.get(v.jobId)?.id === v.id) return v;
    return { ...v, status: 'FAILED', clean: false, error: { code: 'SERVER_SHUTTING_DOWN', message: 'The server stopped during this validation; validate again.' } };
  }
}
