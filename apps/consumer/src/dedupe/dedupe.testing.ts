import type { DedupeClock } from './dedupe-clock';

/** A clock the test moves: `sleep` advances it instead of waiting, and runs what was scheduled by then. */
export class FakeClock implements DedupeClock {
  private readonly scheduled: Array<{ at: number; run: () => void | Promise<void> }> = [];

  constructor(public time = Date.now()) {}

  now(): number {
    return this.time;
  }

  async sleep(ms: number): Promise<void> {
    await this.advance(ms);
  }

  async advance(ms: number): Promise<void> {
    this.time += ms;
    const due = this.scheduled.filter((task) => task.at <= this.time);
    for (const task of due) {
      this.scheduled.splice(this.scheduled.indexOf(task), 1);
      await task.run();
    }
  }

  /** Runs `run` once the clock reaches `at`. */
  at(at: number, run: () => void | Promise<void>): void {
    this.scheduled.push({ at, run });
  }
}
