import fc from 'fast-check';
import {
  ENTRIES_PATTERN,
  IDEMPOTENCY_EXPIRES_HEADER,
  PermanentMessageError,
  SHARD_MESSAGE_MAX_BYTES,
  SHARD_MESSAGE_MAX_ENTRIES,
  SHARDS_COUNT_HEADER,
  ShardMismatchError,
  type WireEntry,
  decodeShardPacket,
  encodeEntryLine,
  encodeShardPacket,
  encodeShardPackets,
} from './entry.wire';

const SHARDS = 5;
/** Timestamps of shard 3 of 5: whole seconds 3, 8, 13 ... after 2019-10-12T08:10:50Z (which is shard 0). */
const timestampOfShard3 = (i: number) =>
  new Date(Date.UTC(2019, 9, 12, 8, 10, 53 + 5 * (i % 1000), i % 1000)).toISOString();

const entryOfShard3: fc.Arbitrary<WireEntry> = fc
  .record({
    i: fc.nat(),
    id: fc.uuid(),
    value: fc.option(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), {
      nil: undefined,
    }),
  })
  .map(({ i, id, value }) =>
    value === undefined ? { id, timestamp: timestampOfShard3(i) } : { id, timestamp: timestampOfShard3(i), value },
  );

const entries = (count: number, valueLength: number): WireEntry[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    timestamp: timestampOfShard3(i),
    value: 'v'.repeat(valueLength),
  }));

describe('the wire names', () => {
  // An api and a consumer of different releases share a broker during a rolling upgrade: a renamed
  // pattern or header would make the consumer skip its SHARDS_COUNT check or its ledger look-up.
  it('keeps the pattern and header names every release reads', () => {
    expect(ENTRIES_PATTERN).toBe('entries.v1');
    expect(SHARDS_COUNT_HEADER).toBe('x-shards-count');
    expect(IDEMPOTENCY_EXPIRES_HEADER).toBe('x-idempotency-expires');
  });
});

describe('encodeShardPacket', () => {
  it('writes exactly what JSON.stringify writes of the packet, which decodeShardPacket reads back', () => {
    fc.assert(
      fc.property(fc.array(entryOfShard3, { minLength: 1, maxLength: 20 }), (list) => {
        const message = { shard: 3, entries: list };
        const encoded = encodeShardPacket(message);
        expect(encoded.toString()).toBe(JSON.stringify({ pattern: ENTRIES_PATTERN, data: message }));
        expect(decodeShardPacket(encoded, 3, SHARDS)).toEqual(list);
      }),
      { numRuns: 500 },
    );
  });
});

describe('encodeShardPackets', () => {
  it('keeps every entry once, in order, within both limits unless one entry alone is larger', () => {
    const valueLength = fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 100, max: 80_000 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(entryOfShard3, valueLength), { maxLength: 700 }), (pairs) => {
        const list = pairs.map(([entry, length]) => ({ ...entry, value: 'é'.repeat(length) }));
        const packets = encodeShardPackets(3, list);
        expect(packets.flatMap((packet) => decodeShardPacket(packet, 3, SHARDS))).toEqual(list);
        for (const packet of packets) {
          const decoded = decodeShardPacket(packet, 3, SHARDS);
          // Joined from pieces or encoded in one go, the bytes are the same.
          expect(packet.equals(encodeShardPacket({ shard: 3, entries: decoded }))).toBe(true);
          const count = decoded.length;
          expect(count).toBeLessThanOrEqual(SHARD_MESSAGE_MAX_ENTRIES);
          if (count > 1) expect(packet.length).toBeLessThanOrEqual(SHARD_MESSAGE_MAX_BYTES);
        }
      }),
      { numRuns: 100 },
    );
  });

  it.each([
    ['no entries', entries(0, 1), []],
    ['one entry', entries(1, 1), [1]],
    ['250 small entries in one message', entries(250, 1), [250]],
    ['251 small entries in two', entries(251, 1), [250, 1]],
    ['10,000 small entries in 40', entries(10_000, 1), Array.from({ length: 40 }, () => 250)],
    ['entries of about 1.1 KB, 59 to a message (64 KiB)', entries(130, 1_000), [59, 59, 12]],
  ])('%s', (_case, list, counts) => {
    const packets = encodeShardPackets(3, list);
    expect(packets.map((packet) => decodeShardPacket(packet, 3, SHARDS).length)).toEqual(counts);
  });

  it('sends an entry larger than the byte limit alone, between its neighbours', () => {
    const [small, big, last] = entries(3, 10);
    const huge = { ...big, value: 'x'.repeat(SHARD_MESSAGE_MAX_BYTES) };
    const packets = encodeShardPackets(3, [small, huge, last]);
    expect(packets.map((packet) => decodeShardPacket(packet, 3, SHARDS))).toEqual([[small], [huge], [last]]);
  });

  it('fills a message to the byte limit exactly, and not one byte over', () => {
    const n = 10;
    const list = entries(n + 1, 1_000);
    const bytes = encodeShardPacket({ shard: 3, entries: list.slice(0, n) }).length;
    // Grow the last of the first n entries until their packet is exactly the limit.
    list[n - 1] = { ...list[n - 1], value: 'v'.repeat(1_000 + SHARD_MESSAGE_MAX_BYTES - bytes) };
    expect(encodeShardPacket({ shard: 3, entries: list.slice(0, n) }).length).toBe(SHARD_MESSAGE_MAX_BYTES);
    expect(encodeShardPackets(3, list).map((packet) => decodeShardPacket(packet, 3, SHARDS).length)).toEqual([n, 1]);

    list[n - 1] = { ...list[n - 1], value: `${list[n - 1].value}v` };
    expect(encodeShardPackets(3, list).map((packet) => decodeShardPacket(packet, 3, SHARDS).length)).toEqual([
      n - 1,
      2,
    ]);
  });
});

describe('decodeShardPacket', () => {
  const ID = '00000000-0000-4000-8000-000000000001';
  const T3 = timestampOfShard3(0);
  const packet = (data: unknown, pattern: unknown = ENTRIES_PATTERN): Buffer =>
    Buffer.from(JSON.stringify({ pattern, data }));
  const ofEntries = (list: unknown[]): Buffer => packet({ shard: 3, entries: list });

  /** The error `content` is refused with, as `name: message`. */
  function refusal(content: Buffer): string {
    try {
      decodeShardPacket(content, 3, SHARDS);
    } catch (error) {
      const { name, message } = error as Error;
      expect(error).toBeInstanceOf(name === 'ShardMismatchError' ? ShardMismatchError : PermanentMessageError);
      return `${name}: ${message}`;
    }
    throw new Error(`decoded ${content.toString()}`);
  }

  it('reads the entries of its shard, with or without a value, and nothing else of them', () => {
    const list = [
      { id: ID, timestamp: T3, value: 'v' },
      { id: 'b', timestamp: T3 },
      { id: 'c', timestamp: T3, value: '' },
    ];
    expect(decodeShardPacket(ofEntries(list), 3, SHARDS)).toEqual(list);
    const [entry] = decodeShardPacket(ofEntries([{ id: ID, timestamp: T3, extra: 1 }]), 3, SHARDS);
    expect(Object.keys(entry).sort()).toEqual(['id', 'timestamp']);
  });

  it.each([
    ['no JSON', Buffer.from('{"pattern":'), 'payload is not JSON'],
    ['a JSON array', Buffer.from('[]'), 'payload is not an entries.v1 packet'],
    ['JSON null', Buffer.from('null'), 'payload is not an entries.v1 packet'],
    ['another pattern', packet({ shard: 3, entries: [] }, 'entries.v0'), 'payload is not an entries.v1 packet'],
    ['data that is no object', packet([{ id: ID, timestamp: T3 }]), 'payload is not an entries.v1 packet'],
    ['data null', packet(null), 'payload is not an entries.v1 packet'],
    ['no entries', packet({ shard: 3 }), 'payload holds no entries'],
    [
      'entries that are no list',
      packet({ shard: 3, entries: { 0: { id: ID, timestamp: T3 } } }),
      'payload holds no entries',
    ],
    ['an empty list', ofEntries([]), 'payload holds no entries'],
    ['an entry that is null', ofEntries([{ id: ID, timestamp: T3 }, null]), 'entry 1 is not an object'],
    ['an entry that is a list', ofEntries([[ID, T3]]), 'entry 0 is not an object'],
    ['an entry that is a string', ofEntries([ID]), 'entry 0 is not an object'],
    ['no id', ofEntries([{ timestamp: T3 }]), 'entry 0 has no id'],
    ['an empty id', ofEntries([{ id: '', timestamp: T3 }]), 'entry 0 has no id'],
    ['a numeric id', ofEntries([{ id: 7, timestamp: T3 }]), 'entry 0 has no id'],
    ['no timestamp', ofEntries([{ id: ID }]), 'entry 0 has no valid timestamp'],
    ['an invalid date', ofEntries([{ id: ID, timestamp: '2019-02-29T00:00:00Z' }]), 'entry 0 has no valid timestamp'],
    ['a numeric value', ofEntries([{ id: ID, timestamp: T3, value: 1 }]), 'entry 0 has a value that is not a string'],
    ['a null value', ofEntries([{ id: ID, timestamp: T3, value: null }]), 'entry 0 has a value that is not a string'],
  ])('refuses %s for good, saying why', (_case, content, message) => {
    expect(refusal(content)).toBe(`PermanentMessageError: ${message}`);
  });

  it('refuses an entry of another shard as a mismatch of SHARDS_COUNT, not as poison', () => {
    const content = ofEntries([
      { id: ID, timestamp: T3 },
      { id: ID, timestamp: '2019-10-12T08:10:54Z' },
    ]);
    expect(refusal(content)).toBe(
      'ShardMismatchError: entry 1 (2019-10-12T08:10:54Z) belongs to shard 4 of 5, not 3: do the apps agree on SHARDS_COUNT?',
    );
  });
});

describe('encodeEntryLine', () => {
  it('writes id, timestamp and the value when there is one, as JSON on one line', () => {
    expect(encodeEntryLine({ id: 'a', timestamp: '2019-10-12T08:10:53Z', value: 'x\ny' })).toBe(
      '{"id":"a","timestamp":"2019-10-12T08:10:53Z","value":"x\\ny"}',
    );
    expect(encodeEntryLine({ id: 'a', timestamp: '2019-10-12T08:10:53Z', value: '' })).toBe(
      '{"id":"a","timestamp":"2019-10-12T08:10:53Z","value":""}',
    );
    expect(encodeEntryLine({ id: 'a', timestamp: '2019-10-12T08:10:53Z' })).toBe(
      '{"id":"a","timestamp":"2019-10-12T08:10:53Z"}',
    );
    const withUndefined = { id: 'a', timestamp: '2019-10-12T08:10:53Z', value: undefined, extra: 1 };
    expect(encodeEntryLine(withUndefined as WireEntry)).toBe('{"id":"a","timestamp":"2019-10-12T08:10:53Z"}');
  });

  it("escapes the characters JSON leaves raw that readers such as Python's str.splitlines() break lines at", () => {
    const value = 'a\u2028b\u2029c\u0085d';
    const line = encodeEntryLine({ id: 'a', timestamp: '2019-10-12T08:10:53Z', value });
    expect(line).toBe('{"id":"a","timestamp":"2019-10-12T08:10:53Z","value":"a\\u2028b\\u2029c\\u0085d"}');
    // Every character Python's str.splitlines() splits at.
    const pythonLineBreaks = ['\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x85', '\u2028', '\u2029'];
    expect(pythonLineBreaks.filter((character) => line.includes(character))).toEqual([]);
    expect((JSON.parse(line) as WireEntry).value).toBe(value);
  });
});
