/**
 * The use cases: the only door for the API, the CLI (through the API) and the console.
 * Every method validates its input and rejects with a FerryError (INVALID_ARGUMENT,
 * NOT_FOUND, ACTION_NOT_ALLOWED, ...) whose message says what to do.
 */
import type { JobAction } from '../core/lifecycle.js';
import type { z } from 'zod';
import type {
  ConnectionTestView,
  ListTablesInput,
  SourceTableListView,
  CreateJobInput,
  CreateProfileInput,
  JobEventView,
  JobListQuery,
  JobObjectView,
  JobView,
  ListQuery,
  NodeView,
  ProfileView,
  PromoteInput,
  UpdateJobInput,
  UpdateProfileInput,
  SchemaObjectReportView,
  VerifyReportView,
  ValidationView,
} from './inputs.js';

/** Options of a job action: promote may require a clean validation. */
export interface PageView<T> {
  items: T[];
  nextPageToken: string | null;
  /** How many items match the query over all pages, where the list counts them (jobs). */
  totalSize?: number;
}

/** Who asked: recorded in the job's history. */
export type Actor = string;

/** What an action takes besides the job. */
export interface JobActionOptions {
  /**
   * restart only: these tables (source "schema.table", as the job's objects list names them)
   * instead of the whole job; allowed while the job is in Full dump. Unknown names:
   * INVALID_ARGUMENT listing the job's tables.
   */
  objects?: string[];
  /** promote only: promote while tables are parked; they are reported as not migrated. */
  force?: boolean;
  /** promote only: refuse unless the job's latest data validation is clean. */
  requireValidation?: boolean;
}

export interface FerryService {
  createProfile(input: CreateProfileInput, actor: Actor): Promise<ProfileView>;
  getProfile(id: string): Promise<ProfileView>;
  listProfiles(query: z.input<typeof ListQuery>): Promise<PageView<ProfileView>>;
  updateProfile(id: string, input: UpdateProfileInput, actor: Actor): Promise<ProfileView>;
  /** Refused with PROFILE_IN_USE while a job that is not Completed uses it. */
  deleteProfile(id: string, actor: Actor): Promise<void>;
  /** Connects with the stored profile and reports version, settings, privileges and problems. */
  testProfile(id: string): Promise<ConnectionTestView>;
  /** Connects with an unsaved profile (the create form's Test connection). */
  testProfileInput(input: CreateProfileInput): Promise<ConnectionTestView>;
  /** Every table of the (source) profile's database, each marked selected or not by the include/exclude patterns. */
  listProfileTables(id: string, selection: ListTablesInput): Promise<SourceTableListView>;

  createJob(input: CreateJobInput, actor: Actor): Promise<JobView>;
  getJob(id: string): Promise<JobView>;
  listJobs(query: z.input<typeof JobListQuery>): Promise<PageView<JobView>>;
  updateJob(id: string, input: UpdateJobInput, actor: Actor): Promise<JobView>;
  /**
   * start | stop | resume | restart | promote. Refused with ACTION_NOT_ALLOWED (409) naming
   * the status and the allowed actions. Resolves once the action is recorded; the worker
   * carries it out.
   */
  /** `options.objects` (restart only): those tables instead of the whole job. `options.force` (promote only): promote while tables are parked, leaving them not migrated. `options.requireValidation` (promote only): refuse unless the latest validation is clean. */
  applyJobAction(id: string, action: Exclude<JobAction, 'delete'>, actor: Actor, options?: JobActionOptions): Promise<JobView>;
  /**
   * Starts a data validation of the job (row counts, checksums and differing rows per table,
   * docs/validation.md) and resolves with its RUNNING record. Refused before the full dump is
   * done and while another validation of the job runs.
   */
  validateJob(id: string, actor: Actor): Promise<ValidationView>;
  getJobValidation(id: string, validationId: string): Promise<ValidationView>;
  /** Newest first; the last 20. */
  listJobValidations(id: string): Promise<ValidationView[]>;
  /** Stops the job if it runs, removes source-side replication objects, keeps destination data. */
  deleteJob(id: string, actor: Actor): Promise<void>;
  /** Runs every check that would make the job fail, without changing anything. */
  verifyJob(id: string): Promise<VerifyReportView>;
  listJobObjects(id: string): Promise<JobObjectView[]>;
  /**
   * The job's object report: the source's schema objects beyond tables (views, routines,
   * triggers, events, partitioned tables, ...) as they are now, each with what the job does
   * with it (carried, translated, left out), in which phase, and why, with its definition.
   */
  listJobSchemaObjects(id: string): Promise<SchemaObjectReportView>;
  listJobEvents(id: string, afterId?: number): Promise<z.infer<typeof JobEventView>[]>;

  /** Every `ferry serve` recorded on the metadata store (nodes), ordered by id, with its state and the jobs it runs. */
  listNodes(): Promise<NodeView[]>;
  /**
   * Asks the node to drain (`drain` true): it stops taking jobs, stops each of its runners at
   * its next safe point and releases their leases, so that other nodes take the jobs at once;
   * the drain lasts until undrain (`drain` false). NOT_FOUND for an unknown node.
   */
  setNodeDrain(id: string, drain: boolean, actor: Actor): Promise<NodeView>;
  /** Jobs this node took over from another node whose lease expired, since it started. */
  jobTakeovers(): number;
}
