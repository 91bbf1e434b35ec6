import { parseRfc3339Seconds } from '@app/rfc3339';
import { shardOfSeconds } from '@app/sharding';

/** The event pattern of every shard message; bump it when the payload changes shape. */
export const ENTRIES_PATTERN = 'entries.v1';

/** The AMQP header every shard message carries: the sending api's SHARDS_COUNT, an integer. */
export const SHARDS_COUNT_HEADER = 'x-shards-count';

/**
 * The AMQP header of a message the api published for a request with an `Idempotency-Key`: when
 * the api forgets that key (ms since the epoch, an integer). Until then a repeat of the request may
 * publish the same message again, with the same message id and the same entry ids; a message
 * without it was published once. A later attempt of the same request carries a later time.
 */
export const IDEMPOTENCY_EXPIRES_HEADER = 'x-idempotency-expires';

/**
 * A shard message holds at most this many entries: the consumer's PREFETCH counts deliveries, so
 * this bounds what a shard buffers in entries, whatever the requests look like.
 */
export const SHARD_MESSAGE_MAX_ENTRIES = 250;

/** A shard message's encoded packet is at most this many bytes, unless one entry alone is larger. */
export const SHARD_MESSAGE_MAX_BYTES = 64 * 1024;

/** An entry on the wire and in the batch files: `value` is left out when absent. */
export interface WireEntry {
  id: string;
  timestamp: string;
  value?: string;
}

/** The payload of one shard message: the entries of one request that fall in one shard. */
export interface ShardMessage {
  shard: number;
  entries: WireEntry[];
}

/** The whole message body as Nest's RMQ transport frames it. */
export interface ShardPacket {
  pattern: typeof ENTRIES_PATTERN;
  data: ShardMessage;
}

/** Raised by the consumer's edge for a delivery that must never be retried. */
export class PermanentMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = PermanentMessageError.name;
  }
}

/**
 * An entry of another shard than the queue it came from: not poison, but a sign that the apps
 * disagree on SHARDS_COUNT. The delivery goes back to its queue, never to a file or the dead letters.
 */
export class ShardMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = ShardMismatchError.name;
  }
}

/**
 * The SHARDS_COUNT a shard message was published with, from its headers: undefined when it has no
 * such header. Any other value than a whole number from 1 (an integer, or its digits as a string,
 * as other AMQP clients may send it) came from no api: a PermanentMessageError, so that it goes to
 * the dead letters rather than hold its shard as a disagreement that never ends.
 */
export function readShardsCountHeader(headers: Record<string, unknown> | undefined): number | undefined {
  const sent = headers?.[SHARDS_COUNT_HEADER];
  if (sent === undefined) return undefined;
  const count = typeof sent === 'number' ? sent : typeof sent === 'string' && /^\d+$/.test(sent) ? Number(sent) : NaN;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new PermanentMessageError(
      `its ${SHARDS_COUNT_HEADER} header is not a whole number of shards: ${JSON.stringify(sent)}`,
    );
  }
  return count;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decodeEntry(value: unknown, index: number, shard: number, shardsCount: number): WireEntry {
  if (!isPlainObject(value)) throw new PermanentMessageError(`entry ${index} is not an object`);
  const { id, timestamp, value: payload } = value;
  if (typeof id !== 'string' || id.length === 0) {
    throw new PermanentMessageError(`entry ${index} has no id`);
  }
  // Parsed once, for the check and for the shard.
  const seconds = typeof timestamp === 'string' ? parseRfc3339Seconds(timestamp) : null;
  if (typeof timestamp !== 'string' || seconds === null) {
    throw new PermanentMessageError(`entry ${index} has no valid timestamp`);
  }
  if (payload !== undefined && typeof payload !== 'string') {
    throw new PermanentMessageError(`entry ${index} has a value that is not a string`);
  }
  const entryShard = shardOfSeconds(seconds, shardsCount);
  if (entryShard !== shard) {
    throw new ShardMismatchError(
      `entry ${index} (${timestamp}) belongs to shard ${entryShard} of ${shardsCount}, not ${shard}: do the apps agree on SHARDS_COUNT?`,
    );
  }
  return payload === undefined ? { id, timestamp } : { id, timestamp, value: payload };
}

/**
 * Decodes and checks one delivery of shard `shard`. Throws PermanentMessageError for anything
 * that is not a non-empty list of valid entries, ShardMismatchError for an entry of another shard.
 */
export function decodeShardPacket(content: Buffer, shard: number, shardsCount: number): WireEntry[] {
  let packet: unknown;
  try {
    packet = JSON.parse(content.toString('utf8'));
  } catch {
    throw new PermanentMessageError('payload is not JSON');
  }
  if (!isPlainObject(packet) || packet.pattern !== ENTRIES_PATTERN || !isPlainObject(packet.data)) {
    throw new PermanentMessageError(`payload is not an ${ENTRIES_PATTERN} packet`);
  }
  const { entries } = packet.data;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new PermanentMessageError('payload holds no entries');
  }
  return entries.map((entry, index) => decodeEntry(entry, index, shard, shardsCount));
}

const PACKET_HEAD = `{"pattern":${JSON.stringify(ENTRIES_PATTERN)},"data":{"shard":`;

/** The packet of `shard` around entries already encoded one by one, as encodeShardPacket writes it. */
function packetText(shard: number, encodedEntries: string[]): string {
  return `${PACKET_HEAD}${shard},"entries":[${encodedEntries.join(',')}]}}`;
}

/** The bytes of one shard message, exactly as `decodeShardPacket` reads them. */
export function encodeShardPacket(message: ShardMessage): Buffer {
  const packet: ShardPacket = { pattern: ENTRIES_PATTERN, data: message };
  return Buffer.from(JSON.stringify(packet));
}

/**
 * The messages the api publishes for the entries of one shard, in order: at most
 * SHARD_MESSAGE_MAX_ENTRIES entries and SHARD_MESSAGE_MAX_BYTES bytes each (an entry larger than
 * that travels alone). A group within both limits, the common case, is encoded in one go;
 * otherwise each entry is encoded once and the messages are joined from the pieces.
 */
export function encodeShardPackets(shard: number, entries: WireEntry[]): Buffer[] {
  if (entries.length <= SHARD_MESSAGE_MAX_ENTRIES) {
    const whole = encodeShardPacket({ shard, entries });
    if (whole.length <= SHARD_MESSAGE_MAX_BYTES || entries.length <= 1) return entries.length === 0 ? [] : [whole];
  }
  const frameBytes = packetText(shard, []).length;
  const packets: Buffer[] = [];
  let group: string[] = [];
  let bytes = frameBytes;
  for (const entry of entries) {
    const encoded = JSON.stringify(entry);
    const entryBytes = Buffer.byteLength(encoded);
    // A comma goes before every entry but the first.
    const full = group.length === SHARD_MESSAGE_MAX_ENTRIES || bytes + 1 + entryBytes > SHARD_MESSAGE_MAX_BYTES;
    if (group.length > 0 && full) {
      packets.push(Buffer.from(packetText(shard, group)));
      group = [];
      bytes = frameBytes;
    }
    bytes += (group.length > 0 ? 1 : 0) + entryBytes;
    group.push(encoded);
  }
  if (group.length > 0) packets.push(Buffer.from(packetText(shard, group)));
  return packets;
}

/**
 * NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR: JSON.stringify leaves them raw, and readers such as
 * Python's `str.splitlines()` end a line at each, so a value holding one would split its entry in two.
 */
const RAW_LINE_BREAK = /[\u0085\u2028\u2029]/;
const RAW_LINE_BREAKS = new RegExp(RAW_LINE_BREAK.source, 'g');

/** One line of a batch file. */
export function encodeEntryLine(entry: WireEntry): string {
  const line = JSON.stringify(entry.value === undefined ? { id: entry.id, timestamp: entry.timestamp } : entry);
  return RAW_LINE_BREAK.test(line) ? line.replace(RAW_LINE_BREAKS, escapeLineBreak) : line;
}

function escapeLineBreak(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
