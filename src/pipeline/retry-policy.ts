/** When to try again, and when to give up and mark a job Failed. Pure. */
export interface RetryPolicy {
  /** First wait after a failure. */
  initialDelayMs: number;
  /** Longest wait between two attempts. */
  maxDelayMs: number;
  /** How long an error may last before the job goes from Running with errors to Failed. */
  budgetMs: number;
  /** How often a Failed job with a recoverable error probes whether the cause is gone. */
  probeIntervalMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  budgetMs: 5 * 60_000,
  probeIntervalMs: 10_000,
};

/** The wait before attempt number `attempt` (1 for the first retry): doubling, capped. */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
}

/** Reads overrides from the environment (seconds), for operators and for fault tests. */
export function retryPolicyFromEnv(env: NodeJS.ProcessEnv): RetryPolicy {
  const seconds = (name: string, fallbackMs: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallbackMs;
    const value = Number(raw);
    return Number.isFinite(value) && value >= 0 ? value * 1000 : fallbackMs;
  };
  return {
    initialDelayMs: seconds('FERRY_RETRY_INITIAL_SECONDS', DEFAULT_RETRY_POLICY.initialDelayMs),
    maxDelayMs: seconds('FERRY_RETRY_MAX_SECONDS', DEFAULT_RETRY_POLICY.maxDelayMs),
    budgetMs: seconds('FERRY_RETRY_BUDGET_SECONDS', DEFAULT_RETRY_POLICY.budgetMs),
    probeIntervalMs: seconds('FERRY_PROBE_INTERVAL_SECONDS', DEFAULT_RETRY_POLICY.probeIntervalMs),
  };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
