import { BadRequestException } from '@nestjs/common';
import { readIdempotencyKey } from './idempotency-key';

describe('readIdempotencyKey', () => {
  it.each([
    ['a UUID', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['one character', 'k'],
    ['255 characters', 'k'.repeat(255)],
    ['spaces and punctuation', 'order 42: "retry" ~!'],
  ])('accepts %s', (_case, key) => {
    expect(readIdempotencyKey(key)).toBe(key);
  });

  it('is undefined without the header', () => {
    expect(readIdempotencyKey(undefined)).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a tab', 'a\tb'],
    ['a non-ASCII letter', 'clé'],
    ['a DEL', 'a\x7f'],
    ['sent twice', ['a', 'b']],
  ])('answers 400 naming the header for a key %s', (_case, key) => {
    expect(() => readIdempotencyKey(key)).toThrow(BadRequestException);
    expect(() => readIdempotencyKey(key)).toThrow(/^Idempotency-Key must /);
  });
});
