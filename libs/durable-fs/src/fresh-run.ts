/**
 * Runs `task` so that each caller of `run()` waits for a run that began after its call, with as few
 * runs as possible: callers that arrive while a run is under way share the next one. For work whose
 * result must reflect everything done before the call (a directory fsync after a rename, a read of
 * lines appended before the call).
 */
export class FreshRun {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  /** Resolves after a run of the task that began after this call; rejects if that run fails. */
  run(): Promise<void> {
    if (this.running === null) return this.start();
    // The running one may have begun before the caller's call: wait for the one after it.
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    // The next run starts only after this one settled, so `running` is still this one here.
    const run = this.task().finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }
}
