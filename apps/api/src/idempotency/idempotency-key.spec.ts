import { BadRequestException } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { readIdempotencyKey } from './idempotency-key';

/** A request head carrying the header once per value, as Node parses it: values joined by ", ". */
function head(...values: string[]): Pick<IncomingMessage, 'headers' | 'rawHeaders'> {
  return {
    headers: values.length === 0 ? {} : { 'idempotency-key': values.join(', ') },
    rawHeaders: [
      'Host',
      'localhost',
      ...values.flatMap((value, i) => [i % 2 ? 'idempotency-key' : 'Idempotency-Key', value]),
    ],
  };
}

describe('readIdempotencyKey', () => {
  it.each([
    ['a UUID', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['one character', 'k'],
    ['255 characters', 'k'.repeat(255)],
    ['spaces and punctuation', 'order 42: "retry" ~!'],
    ['a comma, as a joined pair would have', 'a, b'],
  ])('accepts %s', (_case, key) => {
    expect(readIdempotencyKey(head(key))).toBe(key);
  });

  it('is undefined without the header', () => {
    expect(readIdempotencyKey(head())).toBeUndefined();
  });

  it.each([
    ['empty', head('')],
    ['256 characters', head('k'.repeat(256))],
    ['a tab', head('a\tb')],
    ['a non-ASCII letter', head('clé')],
    ['a DEL', head('a\x7f')],
    ['sent twice (Node joins the two into one valid-looking value)', head('a', 'b')],
    ['sent twice with the same value', head('a', 'a')],
  ])('answers 400 naming the header for a key %s', (_case, request) => {
    expect(() => readIdempotencyKey(request)).toThrow(BadRequestException);
    expect(() => readIdempotencyKey(request)).toThrow(/^Idempotency-Key must /);
  });
});
