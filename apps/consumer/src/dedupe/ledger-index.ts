import { Logger } from '@nestjs/common';
import { open, readdir } from 'node:fs/promises';
import { FreshRun } from '@app/durable-fs';
import { type SegmentName, parseSegmentName } from './ledger-segment-name';

/** One line `file holds ids` of some writer's segment, as read back (its ids only in the index). */
export interface LedgerRecord {
  /** The batch file, relative to DATA_OUTPUT_DIR. */
  file: string;
  /**
   * Where the index holds each of its ids, in pairs: a keyed id's seed and counter, or any other id
   * and -1. The ids themselves are not kept: a keyed request's seed is one string for all its entries.
   */
  keys: Array<string | number>;
  /** Latest key expiry (epoch ms) among its entries, 0 without keys. */
  exp: number;
  /** When the writer made the record (its clock). */
  at: number;
  aborted: boolean;
  /** Its file was seen in place: complete, for good. */
  present: boolean;
  segment: ReadSegment;
}

/** A segment as far as it has been read. */
export interface ReadSegment {
  name: string;
  writer: SegmentName;
  /** Bytes read and parsed: only whole lines, a torn tail waits for the rest. */
  offset: number;
  records: LedgerRecord[];
  maxExp: number;
}

const NEWLINE = 0x0a;

/**
 * The api's keyed entry ids (docs/idempotency.md): a UUIDv8 whose first 28 characters are the
 * request's seed (from its key and body) and whose last 8 hex digits count its entries. The index
 * keeps them by seed, then counter, so that a day of keyed records costs a slot per id rather than
 * a 36-character string and a map entry (docs/consumer-memory.md).
 */
const KEYED_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SEED_LENGTH = 28;

type Found = LedgerRecord | LedgerRecord[];

/** A keyed request's ids in the index: records by counter, and how many counters have any. */
interface Seed {
  seed: string;
  slots: Array<Found | undefined>;
  used: number;
}

function isRecordLine(value: unknown): value is { file: string; ids: string[]; exp: number; at: number } {
  const line = value as Record<string, unknown>;
  return (
    typeof line.file === 'string' &&
    Array.isArray(line.ids) &&
    line.ids.every((id) => typeof id === 'string') &&
    typeof line.exp === 'number' &&
    typeof line.at === 'number'
  );
}

/**
 * What every writer's segments say, in memory: id -> the records naming it. Segments are read
 * incrementally (from the byte offset reached last time), and only when a lookup needs them.
 * A segment that disappeared from the folder is forgotten with all its records.
 */
export class LedgerIndex {
  private readonly logger = new Logger('LedgerIndex');
  private readonly segments = new Map<string, ReadSegment>();
  /** Ids not from a keyed request: id -> the records naming it. */
  private readonly byId = new Map<string, Found>();
  /** Keyed ids: seed -> counter -> the records naming it. */
  private readonly bySeed = new Map<string, Seed>();
  private ids = 0;
  /** The latest record of each file, for its abort line (which may sit in a later segment). */
  private readonly byFile = new Map<string, LedgerRecord>();
  private readonly reads = new FreshRun(() => this.readAll());

  constructor(private readonly dir: string) {}

  /** Ids indexed; what the index costs in memory is about proportional to it. */
  get idCount(): number {
    return this.ids;
  }

  get segmentCount(): number {
    return this.segments.size;
  }

  /** The records naming `id`, oldest first. */
  recordsOf(id: string): readonly LedgerRecord[] {
    const found = KEYED_ID.test(id)
      ? this.bySeed.get(id.slice(0, SEED_LENGTH))?.slots[parseInt(id.slice(SEED_LENGTH), 16)]
      : this.byId.get(id);
    if (found === undefined) return [];
    return Array.isArray(found) ? found : [found];
  }

  /** The segment as read so far, if it has been. */
  segment(name: string): ReadSegment | undefined {
    return this.segments.get(name);
  }

  /**
   * Resolves after a read of the folder that began after this call, so that it sees every line
   * appended before the call. Callers that come while a read runs share the next one.
   */
  refresh(): Promise<void> {
    return this.reads.run();
  }

  /** Forgets a segment and its records (it was deleted). */
  drop(name: string): void {
    const segment = this.segments.get(name);
    if (segment === undefined) return;
    this.segments.delete(name);
    for (const record of segment.records) {
      if (this.byFile.get(record.file) === record) this.byFile.delete(record.file);
      for (let i = 0; i < record.keys.length; i += 2)
        this.unindex(record.keys[i] as string, record.keys[i + 1] as number, record);
    }
  }

  /** Forgets segments no longer in the folder. */
  async prune(): Promise<void> {
    const names = new Set(await this.list());
    for (const name of [...this.segments.keys()]) if (!names.has(name)) this.drop(name);
  }

  private async list(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private async readAll(): Promise<void> {
    const names = await this.list();
    const present = new Set(names);
    for (const name of [...this.segments.keys()]) if (!present.has(name)) this.drop(name);
    // A writer's segments in order, so that an abort line is read after the record it aborts.
    const found = names
      .map((name) => ({ name, writer: parseSegmentName(name) }))
      .filter((s): s is { name: string; writer: SegmentName } => s.writer !== undefined)
      .sort((a, b) =>
        a.writer.writer === b.writer.writer ? a.writer.seq - b.writer.seq : a.writer.writer < b.writer.writer ? -1 : 1,
      );
    for (const { name, writer } of found) await this.readSegment(name, writer);
  }

  private async readSegment(name: string, writer: SegmentName): Promise<void> {
    let handle;
    try {
      handle = await open(`${this.dir}/${name}`, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.drop(name);
        return;
      }
      throw error;
    }
    try {
      let segment = this.segments.get(name);
      const { size } = await handle.stat();
      if (size <= (segment?.offset ?? 0)) return;
      if (segment === undefined) {
        segment = { name, writer, offset: 0, records: [], maxExp: 0 };
        this.segments.set(name, segment);
      }
      const buffer = Buffer.alloc(size - segment.offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, segment.offset);
      const end = buffer.subarray(0, bytesRead).lastIndexOf(NEWLINE);
      if (end < 0) return;
      segment.offset += end + 1;
      this.parse(segment, buffer.toString('utf8', 0, end));
    } finally {
      await handle.close();
    }
  }

  private parse(segment: ReadSegment, text: string): void {
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      if (isRecordLine(value)) {
        const { file, exp, at } = value;
        const record: LedgerRecord = { file, keys: [], exp, at, aborted: false, present: false, segment };
        segment.records.push(record);
        segment.maxExp = Math.max(segment.maxExp, record.exp);
        this.byFile.set(record.file, record);
        for (const id of value.ids) this.index(id, record);
      } else if (typeof (value as { abort?: unknown }).abort === 'string') {
        const record = this.byFile.get((value as { abort: string }).abort);
        if (record !== undefined) record.aborted = true;
      } else {
        skipped++;
      }
    }
    // A line that is not a record never suppresses a write: at worst an entry is written again.
    if (skipped > 0) this.logger.warn(`ignored ${skipped} unreadable lines in ledger segment ${segment.name}`);
  }

  private index(id: string, record: LedgerRecord): void {
    if (!KEYED_ID.test(id)) {
      const found = this.byId.get(id);
      this.byId.set(id, this.added(found, record));
      record.keys.push(id, -1);
      return;
    }
    const text = id.slice(0, SEED_LENGTH);
    const counter = parseInt(id.slice(SEED_LENGTH), 16);
    let seed = this.bySeed.get(text);
    if (seed === undefined) {
      seed = { seed: text, slots: [], used: 0 };
      this.bySeed.set(text, seed);
    }
    const found = seed.slots[counter];
    if (found === undefined) seed.used++;
    seed.slots[counter] = this.added(found, record);
    // The seed's own string: one per keyed request, however many of its ids are recorded.
    record.keys.push(seed.seed, counter);
  }

  /** `found` with `record` added; counts a new id. */
  private added(found: Found | undefined, record: LedgerRecord): Found {
    if (found === undefined) {
      this.ids++;
      return record;
    }
    if (Array.isArray(found)) {
      found.push(record);
      return found;
    }
    return [found, record];
  }

  /** `found` without `record`, or undefined when nothing is left (an id less). */
  private removed(found: Found | undefined, record: LedgerRecord): Found | undefined {
    if (found === undefined) return undefined;
    const kept = found === record ? [] : Array.isArray(found) ? found.filter((r) => r !== record) : [found];
    if (kept.length === 0) {
      this.ids--;
      return undefined;
    }
    return kept.length === 1 ? kept[0] : kept;
  }

  private unindex(text: string, counter: number, record: LedgerRecord): void {
    if (counter < 0) {
      const left = this.removed(this.byId.get(text), record);
      if (left === undefined) this.byId.delete(text);
      else this.byId.set(text, left);
      return;
    }
    const seed = this.bySeed.get(text);
    const found = seed?.slots[counter];
    if (seed === undefined || found === undefined) return;
    const left = this.removed(found, record);
    seed.slots[counter] = left;
    if (left === undefined && --seed.used === 0) this.bySeed.delete(text);
  }
}
