/** Time as the pipeline and service see it: injected, so tests and the core stay pure. */
export interface Clock {
  /** ISO 8601 with milliseconds, UTC. */
  now(): string;
}

export const systemClock: Clock = { now: () => new Date().toISOString() };
