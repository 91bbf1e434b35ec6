import type { ServerResponse } from 'node:http';
import { ByteBudget } from './byte-budget';

/** The api has as much work in progress as it takes: 503 with Retry-After, the request may be sent again. */
export class ApiBusyError extends Error {}

/**
 * Bounds the request bodies the api parses, validates and hands to the broker in one turn of the
 * event loop to a byte budget (MAX_BODY_BYTES). A body that has arrived waits,
 * unparsed, first come first served, for up to `waitMs` (PUBLISH_TIMEOUT_MS), then gets 503 with
 * Retry-After.
 *
 * Two hundred clients each sending a 10,000-entry body at once used to be parsed, validated and
 * published in one turn of the event loop: seconds without a timer firing, so RabbitMQ closed the
 * connection for missed heartbeats and every request got 503. The budget is taken once a body has
 * arrived, not while it arrives (a slow client holds none of it), and given back on the next turn,
 * once the body's synchronous work is done: waiting for the broker's confirms holds none of it.
 */
export class AdmissionGate {
  private readonly budget: ByteBudget;

  constructor(
    capacity: number,
    private readonly waitMs: number,
  ) {
    this.budget = new ByteBudget(capacity);
  }

  /**
   * Resolves once a body of `bytes` may be worked on, with the function that gives its share back;
   * rejects with ApiBusyError after `waitMs`, or if the client leaves (`response` closes) meanwhile.
   */
  async admit(bytes: number, response: ServerResponse): Promise<() => void> {
    const release = this.budget.tryTake(bytes) ?? (await this.wait(bytes, response));
    if (release === undefined) {
      throw new ApiBusyError(
        `the api is busy with ${this.budget.inUse} bytes of other requests and ${this.budget.waiting} more ` +
          'waiting; send the request again',
      );
    }
    return release;
  }

  private async wait(bytes: number, response: ServerResponse): Promise<(() => void) | undefined> {
    // One controller and a plain timer: a signal of AbortSignal.any() over AbortSignal.timeout()
    // never aborted here (Node 20), and the wait did not end.
    const stop = new AbortController();
    const abort = () => stop.abort();
    const timer = setTimeout(abort, this.waitMs);
    response.once('close', abort);
    try {
      return await this.budget.take(bytes, stop.signal);
    } finally {
      clearTimeout(timer);
      response.off('close', abort);
    }
  }
}
