import { createHash } from 'node:crypto';

/** Room for the part number of a shard's messages in a message id's counter (SHARDS_COUNT <= 1024). */
const PARTS_PER_SHARD = 2 ** 22;

/**
 * 12 bytes of sha256(`tag`, key, fingerprint) as the first 24 hex digits of a UUIDv8 (RFC 9562):
 * the version nibble 8, the variant bits 10, and 90 bits of the hash.
 */
function seedOf(tag: string, key: string, fingerprint: string): string {
  const bytes = createHash('sha256').update(`${tag}\n${key}\n${fingerprint}`).digest().subarray(0, 12);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 24)}`;
}

/**
 * The ids of a keyed request, fixed by its Idempotency-Key and body fingerprint, so that a repeat
 * publishes exactly what the first attempt did. Each is a UUIDv8: 90 bits from one hash per request
 * and a 32-bit counter (the entry's index; the shard and part of a message), which is what makes
 * the ids of one request distinct by construction and costs no hash per entry (a UUIDv5 would).
 */
export class IdempotentIds {
  private readonly entrySeed: string;
  private readonly messageSeed: string;

  constructor(key: string, fingerprint: string) {
    this.entrySeed = seedOf('entry', key, fingerprint);
    this.messageSeed = seedOf('message', key, fingerprint);
  }

  /** The id of the entry at `index` of the request. */
  entryId(index: number): string {
    return this.entrySeed + counterHex(index);
  }

  /** The AMQP message id of the `part`-th message of `shard`. */
  messageId(shard: number, part: number): string {
    return this.messageSeed + counterHex(shard * PARTS_PER_SHARD + part);
  }

  /** The ids of a request of `count` entries, in request order. */
  entryIds(count: number): string[] {
    return Array.from({ length: count }, (_, index) => this.entryId(index));
  }
}

function counterHex(counter: number): string {
  if (!Number.isInteger(counter) || counter < 0 || counter >= 2 ** 32) {
    throw new RangeError(`an id counter must be a whole number below 2^32, not ${counter}`);
  }
  return counter.toString(16).padStart(8, '0');
}
