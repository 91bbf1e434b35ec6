import {
  ConflictException,
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  UnprocessableEntityException,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { createHash, randomUUID } from 'node:crypto';
import { apiConfig } from '@app/config';
import { describeError } from '@app/observability';
import { IDEMPOTENCY_KEY_HEADER } from './idempotency-key';
import { type IdempotencyStore, IDEMPOTENCY_STORE, type InFlightRecord } from './idempotency.store';
import { IdempotentIds } from './idempotent-ids';

/** What a keyed request is processed with: its fixed ids, and when the api forgets its key. */
export interface KeyedAttempt {
  ids: IdempotentIds;
  /**
   * ms since the epoch, sent as the x-idempotency-expires header: the api forgets the key no later
   * (the claim lasts at most claimTtlMs, the answer IDEMPOTENCY_TTL_S from the 201).
   */
  expiresAt: number;
}

export interface KeyedAnswer<T> {
  answer: T;
  /** True when the answer repeats the one given earlier: nothing was published this time. */
  replayed: boolean;
}

/** Headroom over the longest a claimed request can take, before a dead api's claim expires. */
const CLAIM_MARGIN_MS = 5_000;

/**
 * Runs a request with an Idempotency-Key at most once per key and body: the first claims the key
 * and is processed with ids fixed by key and body; a repeat after its 201 gets the same answer
 * (`replayed`), a repeat while it is in flight 409, the key with another body 422, and a repeat
 * after a failure (its claim released) is processed again under the same ids.
 */
@Injectable()
export class IdempotencyService implements OnApplicationShutdown {
  private readonly logger = new Logger(IdempotencyService.name);
  /** How long a claim outlives an api that died holding it. */
  readonly claimTtlMs: number;
  private readonly ttlMs: number;

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(apiConfig.KEY) api: ConfigType<typeof apiConfig>,
  ) {
    this.claimTtlMs = api.publishTimeoutMs + api.requestTimeoutMs + CLAIM_MARGIN_MS;
    this.ttlMs = api.idempotencyTtlS * 1_000;
  }

  /**
   * Processes the request with `process` unless the key already answers it; `body` is the body as
   * received. Rejects with 409, 422, or what `process` rejected with
   * (the claim released first), or IdempotencyStoreUnavailableError before anything is published.
   */
  async run<T extends { ids: string[] }>(
    key: string,
    body: string,
    process: (attempt: KeyedAttempt) => Promise<T>,
  ): Promise<KeyedAnswer<T | { accepted: number; ids: string[] }>> {
    const fingerprint = createHash('sha256').update(body).digest('hex');
    const claim: InFlightRecord = { state: 'in-flight', fingerprint, token: randomUUID() };
    const expiresAt = Date.now() + this.claimTtlMs + this.ttlMs;
    const found = await this.store.claim(key, claim, this.claimTtlMs);
    const ids = new IdempotentIds(key, fingerprint);
    if (found !== undefined) {
      if (found.fingerprint !== fingerprint) {
        throw new UnprocessableEntityException(`${IDEMPOTENCY_KEY_HEADER} was already used with another body`);
      }
      if (found.state === 'in-flight') {
        throw new ConflictException(`a request with this ${IDEMPOTENCY_KEY_HEADER} is still being processed`);
      }
      return { answer: { accepted: found.accepted, ids: ids.entryIds(found.accepted) }, replayed: true };
    }

    let answer: T;
    try {
      answer = await process({ ids, expiresAt });
    } catch (error) {
      await this.store.release(key, claim).catch((releaseError: unknown) => {
        this.logger.warn(
          `could not release a claimed ${IDEMPOTENCY_KEY_HEADER} (${describeError(releaseError)}); ` +
            `its repeats get 409 for up to ${this.claimTtlMs} ms`,
        );
      });
      throw error;
    }
    // The entries are in the broker: answer 201 even if the store does not take the answer. A repeat
    // then gets 409 until the claim expires, and is processed again under the same ids.
    await this.store
      .complete(key, { state: 'completed', fingerprint, accepted: answer.ids.length }, this.ttlMs)
      .catch((error: unknown) =>
        this.logger.warn(`answered 201 but could not remember its key: ${describeError(error)}`),
      );
    return { answer, replayed: false };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
