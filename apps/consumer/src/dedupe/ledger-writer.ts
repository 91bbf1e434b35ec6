import { Logger } from '@nestjs/common';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { describeError } from '@app/observability';
import type { DedupeClock } from './dedupe-clock';
import { SEGMENT_MAX_AGE_MS, SEGMENT_MAX_IDS, SEGMENT_MAX_RECORDS, UNSETTLED_KEEP_MS } from './dedupe.constants';
import { formatSegmentName } from './ledger-segment-name';
import { makeFolder } from '../common/make-folder';

/** One of this process's segments, and what keeps it on disk. */
export class OwnSegment {
  records = 0;
  ids = 0;
  /** The latest expiry (epoch ms) of a keyed entry recorded in it; 0 without keys. */
  maxExp = 0;
  /** Deliveries (and tickets) whose entries it records and which are neither acknowledged nor given up. */
  holders = 0;
  /** It stays at least until then: the expiry of its keys, or a day after a delivery of it was lost. */
  keepUntil = 0;
  /** No longer written to; deletable once nothing holds or keeps it. */
  rotated = false;
  deleted = false;
  handle?: FileHandle;

  constructor(
    readonly name: string,
    readonly path: string,
    readonly openedAt: number,
  ) {}
}

/** What the sink gets back for a batch it recorded: the proof to show when it aborts, and the segment to hold. */
export interface LedgerTicket {
  file: string;
  segment: OwnSegment;
}

interface PendingLine {
  text: string;
  ids: number;
  exp: number;
  resolve(segment: OwnSegment): void;
  reject(error: unknown): void;
}

export interface LedgerWriterOptions {
  dir: string;
  host: string;
  pid: number;
  clock: DedupeClock;
  /** Called once a segment is deleted, so the index can forget it. */
  onDeleted?(name: string): void;
}

/**
 * This process's ledger segments. Lines are plain appends (in the page cache, they survive a
 * SIGKILL); appends that arrive while one is being written go together in the next write, so
 * that concurrent workers share the system calls. A segment rotates by age, records or ids and is
 * deleted once no delivery it records can come back: all acknowledged and its keys expired.
 */
export class LedgerWriter {
  private readonly logger = new Logger('Ledger');
  private readonly startMs: number;
  private readonly segments = new Set<OwnSegment>();
  private current?: OwnSegment;
  private seq = 0;
  private queue: PendingLine[] = [];
  private writing = false;
  /** The running flush, which close() waits for. */
  private flushing: Promise<void> = Promise.resolve();
  private readonly unlinks = new Set<Promise<void>>();

  constructor(private readonly options: LedgerWriterOptions) {
    this.startMs = options.clock.now();
  }

  /** `<host>-<pid>-<startMs>`: how this writer's segments are named. */
  get writer(): string {
    return `${this.options.host}-${this.options.pid}-${this.startMs}`;
  }

  /** Segments on disk, current and rotated. */
  get segmentCount(): number {
    return this.segments.size;
  }

  /**
   * Appends the record `file holds ids` and resolves once it is written (before the rename that
   * completes `file`). The ticket holds its segment until released or aborted.
   */
  async record(file: string, ids: readonly string[], exp: number): Promise<LedgerTicket> {
    const at = this.options.clock.now();
    const text = `{"file":${JSON.stringify(file)},"ids":${JSON.stringify(ids)},"exp":${exp},"at":${at}}\n`;
    const segment = await this.append(text, ids.length, exp);
    return { file, segment };
  }

  /** Appends `file will not appear` and lets go of the ticket's hold. */
  async abort(ticket: LedgerTicket): Promise<void> {
    try {
      await this.append(`{"abort":${JSON.stringify(ticket.file)},"at":${this.options.clock.now()}}\n`, 0, 0);
    } finally {
      this.release(ticket.segment, 'settled');
    }
  }

  /** One more delivery recorded in `segment` that is not settled yet. */
  hold(segment: OwnSegment): void {
    segment.holders++;
  }

  /**
   * A holder settled: acknowledged (`settled`), or `lost` (its channel closed before the ack, so it
   * comes back later, to any consumer: the segment then stays a day).
   */
  release(segment: OwnSegment, outcome: 'settled' | 'lost'): void {
    segment.holders--;
    if (outcome === 'lost')
      segment.keepUntil = Math.max(segment.keepUntil, this.options.clock.now() + UNSETTLED_KEEP_MS);
    this.deleteIfDone(segment);
  }

  /** Rotates the current segment when it is due but idle, so it can be deleted. */
  rotateIfDue(): void {
    const segment = this.current;
    if (segment === undefined || this.writing || !this.isDue(segment)) return;
    void this.retire(segment);
  }

  /** Deletes every rotated segment nothing holds or keeps any more. */
  sweep(): void {
    for (const segment of this.segments) this.deleteIfDone(segment);
  }

  /** Resolves once the deletions begun so far are done. */
  async deletions(): Promise<void> {
    await Promise.all([...this.unlinks]);
  }

  /** Waits for the appends under way, closes the current segment and deletes what is done. */
  async close(): Promise<void> {
    while (this.writing) await this.flushing;
    if (this.current !== undefined) await this.retire(this.current);
    this.sweep();
    await this.deletions();
  }

  private append(text: string, ids: number, exp: number): Promise<OwnSegment> {
    return new Promise((resolve, reject) => {
      this.queue.push({ text, ids, exp, resolve, reject });
      if (this.writing) return;
      this.writing = true;
      // The first write starts once this turn of the event loop is over, so that the lines of every
      // batch whose staged file completed in the same turn share it: each write is a round trip
      // through libuv's thread pool, which showed in the drain's profile (docs/benchmarks.md).
      this.flushing = new Promise<void>((next) => setImmediate(next)).then(() => this.flush());
    });
  }

  /** Writes what is queued, in groups; never rejects (each line's promise carries its error). */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        try {
          const segment = await this.segmentFor();
          const handle = segment.handle as FileHandle;
          await handle.write(group.length === 1 ? group[0].text : group.map((line) => line.text).join(''));
          for (const line of group) {
            if (line.ids > 0) {
              segment.records++;
              segment.ids += line.ids;
              segment.maxExp = Math.max(segment.maxExp, line.exp);
              segment.keepUntil = Math.max(segment.keepUntil, line.exp);
              // The ticket's hold, taken before anyone can see the record: a sweep cannot delete it meanwhile.
              segment.holders++;
            }
            line.resolve(segment);
          }
        } catch (error) {
          for (const line of group) line.reject(error);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private isDue(segment: OwnSegment): boolean {
    return (
      this.options.clock.now() - segment.openedAt >= SEGMENT_MAX_AGE_MS ||
      segment.records >= SEGMENT_MAX_RECORDS ||
      segment.ids >= SEGMENT_MAX_IDS
    );
  }

  private async segmentFor(): Promise<OwnSegment> {
    if (this.current !== undefined && !this.isDue(this.current)) return this.current;
    if (this.current !== undefined) void this.retire(this.current);
    const name = formatSegmentName(this.options.host, this.options.pid, this.startMs, ++this.seq);
    const segment = new OwnSegment(name, `${this.options.dir}/${name}`, this.options.clock.now());
    segment.handle = await open(segment.path, 'a').catch(async (error: NodeJS.ErrnoException) => {
      // The folder was removed under us: make it again rather than fail every batch.
      if (error.code !== 'ENOENT') throw error;
      await makeFolder(this.options.dir);
      return open(segment.path, 'a');
    });
    this.segments.add(segment);
    this.current = segment;
    return segment;
  }

  /** No more lines go to `segment`; resolves once its file is closed (never rejects). */
  private retire(segment: OwnSegment): Promise<void> {
    if (this.current === segment) this.current = undefined;
    segment.rotated = true;
    const handle = segment.handle;
    segment.handle = undefined;
    this.deleteIfDone(segment);
    return (handle?.close() ?? Promise.resolve()).catch((error: unknown) =>
      this.logger.warn(`closing ledger segment ${segment.name}: ${describeError(error)}`),
    );
  }

  private deleteIfDone(segment: OwnSegment): void {
    if (segment.deleted || !segment.rotated || segment.holders > 0) return;
    if (this.options.clock.now() < segment.keepUntil) return;
    segment.deleted = true;
    this.segments.delete(segment);
    this.options.onDeleted?.(segment.name);
    const removal = unlink(segment.path)
      .catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT')
          this.logger.warn(`could not delete ledger segment ${segment.name}: ${describeError(error)}`);
      })
      .finally(() => this.unlinks.delete(removal));
    this.unlinks.add(removal);
  }
}
