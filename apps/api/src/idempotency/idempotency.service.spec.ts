import { ConflictException, UnprocessableEntityException } from '@nestjs/common';
import type { ApiConfig } from '@app/config';
import { IdempotencyService, type KeyedAttempt } from './idempotency.service';
import { IdempotencyStoreUnavailableError, type IdempotencyStore } from './idempotency.store';
import { MemoryIdempotencyStore } from './memory-idempotency.store';

const API = { publishTimeoutMs: 1_000, requestTimeoutMs: 2_000, idempotencyTtlS: 60 } as ApiConfig;
const BODY = '[{"timestamp":"2019-10-12T08:10:53.52Z"}]';

/** A request's processing that the test settles: it records the attempt it was given. */
function deferredProcess() {
  const attempts: KeyedAttempt[] = [];
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const process = (attempt: KeyedAttempt) => {
    attempts.push(attempt);
    return new Promise<{ accepted: number; ids: string[] }>((resolve, reject) => {
      settle = { resolve: () => resolve({ accepted: 2, ids: attempt.ids.entryIds(2) }), reject };
    });
  };
  return { attempts, process, settle: () => settle! };
}

const answered = (ids: string[]) => ({ accepted: ids.length, ids });

describe('IdempotencyService', () => {
  let store: MemoryIdempotencyStore;
  let service: IdempotencyService;

  beforeEach(() => {
    store = new MemoryIdempotencyStore();
    service = new IdempotencyService(store, API);
  });

  it('lets a claim outlive the longest request: PUBLISH_TIMEOUT_MS + REQUEST_TIMEOUT_MS and a margin', () => {
    expect(service.claimTtlMs).toBeGreaterThan(API.publishTimeoutMs + API.requestTimeoutMs);
  });

  it('processes a first request with ids its key fixes, and replays its answer without processing again', async () => {
    const first = deferredProcess();
    const running = service.run('k', BODY, first.process);
    await new Promise(setImmediate);
    first.settle().resolve();
    const { answer, replayed } = await running;
    expect(replayed).toBe(false);
    expect(first.attempts).toHaveLength(1);
    const before = Date.now();
    expect(first.attempts[0].expiresAt).toBeGreaterThan(before + API.idempotencyTtlS * 1_000);

    const repeat = deferredProcess();
    await expect(service.run('k', BODY, repeat.process)).resolves.toEqual({
      answer: answered(answer.ids),
      replayed: true,
    });
    expect(repeat.attempts).toHaveLength(0);
  });

  it('answers 409 to a repeat while the first is in flight, and 422 to another body, in flight or not', async () => {
    const first = deferredProcess();
    const running = service.run('k', BODY, first.process);
    await new Promise(setImmediate);
    await expect(service.run('k', BODY, deferredProcess().process)).rejects.toThrow(ConflictException);
    await expect(service.run('k', `${BODY} `, deferredProcess().process)).rejects.toThrow(UnprocessableEntityException);
    first.settle().resolve();
    await running;
    await expect(service.run('k', `${BODY} `, deferredProcess().process)).rejects.toThrow(UnprocessableEntityException);
  });

  it('releases the claim of a failed request: its repeat is processed again, under the same ids', async () => {
    const first = deferredProcess();
    const failing = service.run('k', BODY, first.process);
    await new Promise(setImmediate);
    const refusal = new Error('503');
    first.settle().reject(refusal);
    await expect(failing).rejects.toBe(refusal);

    const repeat = deferredProcess();
    const running = service.run('k', BODY, repeat.process);
    await new Promise(setImmediate);
    repeat.settle().resolve();
    const { answer, replayed } = await running;
    expect(replayed).toBe(false);
    expect(repeat.attempts[0].ids.entryIds(2)).toEqual(first.attempts[0].ids.entryIds(2));
    expect(repeat.attempts[0].ids.messageId(3, 0)).toBe(first.attempts[0].ids.messageId(3, 0));
    expect(answer.ids).toEqual(first.attempts[0].ids.entryIds(2));
  });

  it('processes nothing when the store does not answer the claim', async () => {
    const down: IdempotencyStore = {
      claim: () => Promise.reject(new IdempotencyStoreUnavailableError('Redis did not claim')),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const process = deferredProcess();
    await expect(new IdempotencyService(down, API).run('k', BODY, process.process)).rejects.toThrow(
      IdempotencyStoreUnavailableError,
    );
    expect(process.attempts).toHaveLength(0);
  });

  it('answers 201 when the store does not take the answer: the entries are in the broker', async () => {
    jest.spyOn(store, 'complete').mockRejectedValue(new IdempotencyStoreUnavailableError('Redis did not complete'));
    const first = deferredProcess();
    const running = service.run('k', BODY, first.process);
    await new Promise(setImmediate);
    first.settle().resolve();
    await expect(running).resolves.toMatchObject({ replayed: false, answer: { accepted: 2 } });
  });
});
