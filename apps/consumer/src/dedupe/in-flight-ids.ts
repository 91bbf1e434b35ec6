/** What became of an entry held in this process: in a complete file, or dropped (to be written by whoever gets it next). */
export type InFlightOutcome = 'written' | 'discarded';

type Waiter = (outcome: InFlightOutcome) => void;

/**
 * The ids this process is writing right now (buffered or in a batch being written) out of
 * deliveries that may repeat entries. A second copy of an id does not go into a batch beside the
 * first: it waits for the first's outcome and is done if it was written, or takes over if not.
 */
export class InFlightIds {
  /** Held ids, with the copies waiting for them (none, the usual case, costs no array per id). */
  private readonly holders = new Map<string, Waiter[] | undefined>();

  get size(): number {
    return this.holders.size;
  }

  /** Claims `id`: true when nobody held it (the caller now does), else the current holder's outcome. */
  claim(id: string): true | Promise<InFlightOutcome> {
    if (!this.holders.has(id)) {
      this.holders.set(id, undefined);
      return true;
    }
    const waiters = this.holders.get(id) ?? [];
    this.holders.set(id, waiters);
    return new Promise((resolve) => waiters.push(resolve));
  }

  /** The holder of `id` is done with it: the id is free again and its waiters learn the outcome. */
  settle(id: string, outcome: InFlightOutcome): void {
    if (!this.holders.has(id)) return;
    const waiters = this.holders.get(id);
    this.holders.delete(id);
    for (const wake of waiters ?? []) wake(outcome);
  }
}
