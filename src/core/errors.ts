/**
 * One error type for the whole of Ferry. Engines turn driver errors into FerryErrors once
 * (their error classifier); everything above reads only `code`, `retryable` and `message`.
 */

export const ERROR_CODES = {
  // Input and lifecycle: the caller's to fix.
  INVALID_ARGUMENT: { http: 400 },
  NOT_FOUND: { http: 404 },
  ALREADY_EXISTS: { http: 409 },
  FAILED_PRECONDITION: { http: 409 },
  ACTION_NOT_ALLOWED: { http: 409 },
  PROFILE_IN_USE: { http: 409 },
  /** A stored secret (password, client key) does not decrypt: wrong key or damaged; the message says how to fix it. */
  SECRET_UNREADABLE: { http: 409 },
  UNAUTHENTICATED: { http: 401 },
  /** A cross-site request or a Host this server does not answer to (DNS rebinding). */
  PERMISSION_DENIED: { http: 403 },
  METHOD_NOT_ALLOWED: { http: 405 },
  REQUEST_TIMEOUT: { http: 408 },
  PAYLOAD_TOO_LARGE: { http: 413 },
  UNSUPPORTED_MEDIA_TYPE: { http: 415 },
  REQUEST_HEADERS_TOO_LARGE: { http: 431 },
  NOT_IMPLEMENTED: { http: 501 },
  // Reaching and using a database.
  CONNECTION_REFUSED: { http: 422 },
  CONNECTION_TIMEOUT: { http: 422 },
  HOST_NOT_FOUND: { http: 422 },
  AUTHENTICATION_FAILED: { http: 422 },
  DATABASE_NOT_FOUND: { http: 422 },
  TLS_ERROR: { http: 422 },
  SSH_TUNNEL_FAILED: { http: 422 },
  INSUFFICIENT_PRIVILEGE: { http: 422 },
  SERVER_SHUTTING_DOWN: { http: 422 },
  CONNECTION_LOST: { http: 422 },
  TOO_MANY_CONNECTIONS: { http: 422 },
  LOCK_TIMEOUT: { http: 422 },
  SERIALIZATION_FAILURE: { http: 422 },
  CONSTRAINT_VIOLATION: { http: 422 },
  DISK_FULL: { http: 422 },
  // Migration checks.
  DESTINATION_NOT_EMPTY: { http: 422 },
  DESTINATION_TABLE_MISMATCH: { http: 422 },
  UNSUPPORTED_TYPE: { http: 422 },
  UNSUPPORTED_ENGINE_PAIR: { http: 501 },
  NO_TABLES_SELECTED: { http: 422 },
  TABLE_WITHOUT_PRIMARY_KEY: { http: 422 },
  SNAPSHOT_LOST: { http: 422 },
  REPLICATION_SLOT_LOST: { http: 422 },
  SCHEMA_CHANGED: { http: 422 },
  REPLICATION_NOT_CONFIGURED: { http: 422 },
  CANCELLED: { http: 409 },
  /** This node no longer holds the job's lease (another node took the job over): it stops and writes nothing more. */
  LEASE_LOST: { http: 409 },
  SCHEMA_ERROR: { http: 422 },
  PG_DUMP_UNAVAILABLE: { http: 422 },
  DATA_ERROR: { http: 422 },
  INTERNAL: { http: 500 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FerryErrorOptions {
  /** True when trying again later may succeed without anyone changing anything. */
  retryable?: boolean;
  /**
   * True when the job may resume by itself once the cause is fixed outside Ferry
   * (a server back up, a password corrected). Implies the job keeps probing while Failed.
   */
  recoverable?: boolean;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly recoverable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.recoverable = options.recoverable ?? this.retryable;
    this.details = options.details ?? {};
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown>; retryable: boolean } {
    return { code: this.code, message: this.message, details: this.details, retryable: this.retryable };
  }
}

export function isFerryError(value: unknown): value is FerryError {
  return value instanceof FerryError;
}

/** Wraps anything thrown into a FerryError without losing it; engine classifiers do better. */
export function toFerryError(value: unknown, fallbackMessage = 'Unexpected internal error'): FerryError {
  if (value instanceof FerryError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new FerryError('INTERNAL', `${fallbackMessage}: ${message}`, { cause: value });
}

/** The error a job stores and shows: stable fields only. */
export interface JobError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  recoverable: boolean;
  details: Record<string, unknown>;
  /** ISO time the error was first seen. */
  time: string;
}

export function toJobError(error: FerryError, time: string): JobError {
  return {
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    recoverable: error.recoverable,
    details: error.details,
    time,
  };
}
