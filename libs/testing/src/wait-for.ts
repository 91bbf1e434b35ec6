/** Raised when a polled condition does not hold before its deadline. */
export class WaitTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = WaitTimeoutError.name;
  }
}

export interface WaitForOptions {
  /** What is awaited, in words: it names the failure (`timed out waiting for <description>`). */
  description: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Errors of this class end the wait at once instead of counting as "not yet" (e.g. a process that exited). */
  failFast?: abstract new (...args: never[]) => Error;
}

const EXPIRED = Symbol('expired');

type Settled<T> = Exclude<T, false | null | undefined>;

function summarize(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Polls `probe` until it returns something other than false, null or undefined, and resolves with
 * that; a probe that throws counts as "not yet". Rejects with WaitTimeoutError (naming the
 * description and the last result or error) once `timeoutMs` has passed, even if a probe hangs.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { description, timeoutMs = 10_000, intervalMs = 50, failFast }: WaitForOptions,
): Promise<Settled<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no attempt finished';
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof EXPIRED>((resolve) => {
      timer = setTimeout(() => resolve(EXPIRED), Math.max(deadline - Date.now(), 0));
    });
    try {
      const result = await Promise.race([Promise.resolve().then(probe), expired]);
      if (result === EXPIRED) last = 'an attempt was still running at the deadline';
      else if (result !== false && result !== null && result !== undefined) return result as Settled<T>;
      else last = result;
    } catch (error) {
      if (failFast !== undefined && error instanceof failFast) throw error;
      last = error;
    } finally {
      clearTimeout(timer);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new WaitTimeoutError(
        `timed out after ${timeoutMs} ms waiting for ${description} (last: ${summarize(last)})`,
        { cause: last instanceof Error ? last : undefined },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, remaining)));
  }
}

/**
 * Resolves or rejects with `work`, or rejects with WaitTimeoutError naming `description` once
 * `ms` have passed (a function is asked for the description only then, e.g. for a log so far).
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, description: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const what = typeof description === 'string' ? description : description();
      reject(new WaitTimeoutError(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
