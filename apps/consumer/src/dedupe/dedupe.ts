import type { MessageProperties, MessageFields } from 'amqplib';
import type { InFlightOutcome } from './in-flight-ids';

/** Which of a delivery's entries to write, and which are in a complete file already (done, for its ack). */
export interface Admission {
  write: string[];
  done: string[];
}

/** A recorded batch: what the sink shows to abort it, and the segment its deliveries hold. */
export interface DedupeTicket {
  readonly file: string;
  readonly segment: object;
}

/** What a delivery is asked for: whether it was delivered before, and its headers. */
export interface DeliveryFacts {
  fields: Pick<MessageFields, 'redelivered'>;
  properties: Pick<MessageProperties, 'headers'>;
}

/**
 * Exactly once on the consumer's side (docs/exactly-once.md). An abstract class, so that it is
 * also the injection token: the benchmark overrides it with DisabledDedupe to measure its cost.
 */
export abstract class Dedupe {
  /** Whether a delivery may hold entries already written: redelivered, or keyed by the api. */
  abstract needsLookup(delivery: DeliveryFacts): boolean;

  /** The key expiry a delivery carries (epoch ms), 0 when it has none. */
  abstract expiresOf(delivery: DeliveryFacts): number;

  /**
   * For a delivery that needs a lookup: claims its ids in this process and decides each. The ids
   * to write stay claimed until `settle`; the done ones need nothing more.
   */
  abstract admit(ids: readonly string[]): Promise<Admission>;

  /** Claimed ids reached a complete file (`written`) or were dropped (`discarded`). */
  abstract settle(ids: Iterable<string>, outcome: InFlightOutcome): void;

  /** Records `file holds ids` in the ledger; call right before the rename that completes `file`. */
  abstract record(file: string, ids: readonly string[], exp: number): Promise<DedupeTicket>;

  /**
   * The recorded file is in place. Each of `holders` (the deliveries whose entries it holds) keeps
   * the record until it is released: a delivery not yet acknowledged may come back.
   */
  abstract complete(ticket: DedupeTicket, holders: Iterable<object>): void;

  /** The recorded file will not appear (the rename failed or the batch gave up). */
  abstract abort(ticket: DedupeTicket): Promise<void>;

  /**
   * A delivery settled: acknowledged (`settled`), or `lost` (its channel closed first, so it comes
   * back later to any consumer, and its records stay a day).
   */
  abstract release(holder: object, outcome: 'settled' | 'lost'): void;
}
