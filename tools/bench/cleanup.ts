/**
 * What a benchmark run has to undo (processes to stop, queues to delete, folders to remove),
 * kept so that an interrupted run undoes it too. Every task is idempotent: on Ctrl-C a task may
 * run once from the interrupt and once more from the `finally` it was registered in.
 */
export class Cleanup {
  private readonly tasks = new Map<number, { description: string; run: () => Promise<void> | void }>();
  private next = 0;

  /**
   * Registers `run` and returns the function that runs it now and forgets it, for the `finally`
   * of the code that made the mess.
   */
  add(description: string, run: () => Promise<void> | void): () => Promise<void> {
    const key = this.next++;
    this.tasks.set(key, { description, run });
    return async () => {
      if (!this.tasks.delete(key)) return;
      await run();
    };
  }

  /** Tasks registered and not yet run. */
  get pending(): number {
    return this.tasks.size;
  }

  /** Runs every task still registered, newest first; one failing does not skip the rest. */
  async runAll(): Promise<void> {
    const pending = [...this.tasks.entries()].reverse();
    this.tasks.clear();
    for (const [, { description, run }] of pending) {
      try {
        await run();
      } catch (error) {
        console.error(`cleaning up (${description}) failed:`, error);
      }
    }
  }

  /**
   * On SIGINT or SIGTERM: run every task, then exit with 130. For command-line entry points only;
   * a test runner has its own way of stopping.
   */
  exitOnInterrupt(): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        console.error(`\nbenchmark interrupted by ${signal}; cleaning up`);
        void this.runAll().finally(() => process.exit(130));
      });
    }
  }
}
