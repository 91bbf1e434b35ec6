/** Time as the dedupe sees it; tests pass a fake one. */
export interface DedupeClock {
  now(): number;
  /** Resolves after `ms`; the fake clock advances instead of waiting. */
  sleep(ms: number): Promise<void>;
}

export const SYSTEM_CLOCK: DedupeClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
