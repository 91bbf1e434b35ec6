/** A request holds the key: it is being processed (for the claim TTL at most, should its api die). */
export interface InFlightRecord {
  state: 'in-flight';
  /** sha256 of the request body, hex. */
  fingerprint: string;
  /** Names this claim, so that only its holder releases it. */
  token: string;
}

/**
 * The key was answered 201. The answer is `{accepted, ids}` and the ids follow from the key and the
 * fingerprint (IdempotentIds), so `accepted` is all of it that needs keeping.
 */
export interface CompletedRecord {
  state: 'completed';
  fingerprint: string;
  accepted: number;
}

export type IdempotencyRecord = InFlightRecord | CompletedRecord;

/** The store did not answer (Redis unreachable or too slow): a keyed request gets 503. */
export class IdempotencyStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = IdempotencyStoreUnavailableError.name;
  }
}

/**
 * Where the api remembers Idempotency-Keys: this process's memory, or Redis shared by every
 * replica. Every method rejects with IdempotencyStoreUnavailableError when the store cannot answer.
 */
export interface IdempotencyStore {
  /**
   * Atomically, across every process sharing the store: when `key` is unknown, records `claim` for
   * `claimTtlMs` and resolves undefined (the caller now processes the request); otherwise resolves
   * with what the key holds and changes nothing.
   */
  claim(key: string, claim: InFlightRecord, claimTtlMs: number): Promise<IdempotencyRecord | undefined>;
  /** Replaces the claim by the answer, kept for `ttlMs`. */
  complete(key: string, record: CompletedRecord, ttlMs: number): Promise<void>;
  /** Forgets `claim` if the key still holds it, so that a repeat is processed again. */
  release(key: string, claim: InFlightRecord): Promise<void>;
  close(): Promise<void>;
}

/** The Nest token of the IdempotencyStore the api uses. */
export const IDEMPOTENCY_STORE = Symbol('IdempotencyStore');

/** What the stores read the time from; tests hand them a fake one. */
export interface Clock {
  now(): number;
}
