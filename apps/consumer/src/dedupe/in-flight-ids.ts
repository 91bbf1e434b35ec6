/** What became of an entry held in this process: in a complete file, or dropped (to be written by whoever gets it next). */
export type InFlightOutcome = 'written' | 'discarded';

interface Holder {
  waiters: Array<(outcome: InFlightOutcome) => void>;
}

/**
 * The ids this process is writing right now (buffered or in a batch being written) out of
 * deliveries that may repeat entries. A second copy of an id does not go into a batch beside the
 * first: it waits for the first's outcome and is done if it was written, or takes over if not.
 */
export class InFlightIds {
  private readonly holders = new Map<string, Holder>();

  get size(): number {
    return this.holders.size;
  }

  /** Claims `id`: true when nobody held it (the caller now does), else the current holder's outcome. */
  claim(id: string): true | Promise<InFlightOutcome> {
    const holder = this.holders.get(id);
    if (holder === undefined) {
      this.holders.set(id, { waiters: [] });
      return true;
    }
    return new Promise((resolve) => holder.waiters.push(resolve));
  }

  /** The holder of `id` is done with it: the id is free again and its waiters learn the outcome. */
  settle(id: string, outcome: InFlightOutcome): void {
    const holder = this.holders.get(id);
    if (holder === undefined) return;
    this.holders.delete(id);
    for (const wake of holder.waiters) wake(outcome);
  }
}
