import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit, Optional } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigValidationError, consumerConfig } from '@app/config';
import { IDEMPOTENCY_EXPIRES_HEADER } from '@app/contracts';
import { describeError } from '@app/observability';
import { type Admission, Dedupe, type DedupeTicket, type DeliveryFacts } from './dedupe';
import { type DedupeClock, SYSTEM_CLOCK } from './dedupe-clock';
import {
  LEDGER_FOLDER,
  PENDING_POLL_MS,
  PENDING_RECORD_WAIT_MS,
  ROTATE_CHECK_EVERY_MS,
  SWEEP_EVERY_MS,
} from './dedupe.constants';
import { InFlightIds, type InFlightOutcome } from './in-flight-ids';
import { LedgerIndex, type LedgerRecord } from './ledger-index';
import { sweepForeignSegments } from './ledger-janitor';
import { type WriterLiveness, localHost, writerLiveness } from './ledger-segment-name';
import { type LedgerTicket, LedgerWriter, type OwnSegment } from './ledger-writer';
import { makeFolder } from '../common/make-folder';

/** What a lookup decides for one id. */
export type Verdict = 'skip' | 'write';

/** Test seams: time, and whether a writer still runs. */
export const DEDUPE_CLOCK = Symbol('DEDUPE_CLOCK');
export const DEDUPE_LIVENESS = Symbol('DEDUPE_LIVENESS');

/**
 * The ledger under DATA_OUTPUT_DIR/.ledger, its index and the in-flight ids of this process.
 * A record never suppresses a write unless its file exists: at worst an entry is written again.
 */
@Injectable()
export class DedupeService extends Dedupe implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Dedupe');
  readonly directory: string;
  readonly ledgerDir: string;
  readonly writer: LedgerWriter;
  readonly index: LedgerIndex;
  readonly inFlight = new InFlightIds();
  private readonly clock: DedupeClock;
  private readonly liveness: WriterLiveness;
  private timers: NodeJS.Timeout[] = [];
  /** The segments each unsettled delivery's entries are recorded in. */
  private readonly held = new WeakMap<object, OwnSegment[]>();
  private readonly released = new WeakSet<object>();

  private readonly dataOutputDir: string;

  constructor(
    @Inject(consumerConfig.KEY) config: Pick<ConfigType<typeof consumerConfig>, 'dataOutputDir'>,
    @Optional() @Inject(DEDUPE_CLOCK) clock?: DedupeClock,
    @Optional() @Inject(DEDUPE_LIVENESS) liveness?: WriterLiveness,
  ) {
    super();
    this.clock = clock ?? SYSTEM_CLOCK;
    this.liveness = liveness ?? writerLiveness();
    this.dataOutputDir = config.dataOutputDir;
    this.directory = resolve(config.dataOutputDir);
    this.ledgerDir = `${this.directory}/${LEDGER_FOLDER}`;
    this.index = new LedgerIndex(this.ledgerDir);
    this.writer = new LedgerWriter({
      dir: this.ledgerDir,
      host: localHost(),
      pid: process.pid,
      clock: this.clock,
      onDeleted: (name) => this.index.drop(name),
    });
  }

  /** Makes the ledger folder, deletes what writers that are gone left and can no longer matter, starts the timers. */
  async onModuleInit(): Promise<void> {
    try {
      await makeFolder(this.ledgerDir);
    } catch (error) {
      throw new ConfigValidationError(
        'DATA_OUTPUT_DIR',
        this.dataOutputDir,
        `expected a writable folder (${describeError(error)})`,
      );
    }
    await this.sweep();
    this.timers = [
      setInterval(() => this.writer.rotateIfDue(), ROTATE_CHECK_EVERY_MS),
      setInterval(() => void this.sweep(), SWEEP_EVERY_MS),
    ];
    for (const timer of this.timers) timer.unref();
  }

  /** After the drain: everything is acknowledged, so unkeyed segments go. */
  async onApplicationShutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    try {
      await this.writer.close();
    } catch (error) {
      this.logger.warn(`closing the ledger: ${describeError(error)}`);
    }
  }

  /** Deletes own segments that are done, and those of writers that are gone, once they cannot matter. */
  async sweep(): Promise<void> {
    this.writer.sweep();
    try {
      const deleted = await sweepForeignSegments({
        dir: this.ledgerDir,
        ownWriter: this.writer.writer,
        liveness: this.liveness,
        now: this.clock.now(),
        onDeleted: (name) => this.index.drop(name),
      });
      if (deleted.length > 0) this.logger.log(`deleted ${deleted.length} ledger segments of writers that are gone`);
      await this.index.prune();
    } catch (error) {
      this.logger.warn(`sweeping the ledger: ${describeError(error)}`);
    }
  }

  needsLookup({ fields, properties }: DeliveryFacts): boolean {
    return fields.redelivered || properties.headers?.[IDEMPOTENCY_EXPIRES_HEADER] !== undefined;
  }

  expiresOf({ properties }: DeliveryFacts): number {
    const value = Number(properties.headers?.[IDEMPOTENCY_EXPIRES_HEADER]);
    return Number.isFinite(value) && value > 0 ? value : 0;
  }

  async admit(ids: readonly string[]): Promise<Admission> {
    const admission: Admission = { write: [], done: [] };
    let todo = [...new Set(ids)];
    while (todo.length > 0) {
      const claimed: string[] = [];
      const waiting: Array<[string, Promise<InFlightOutcome>]> = [];
      for (const id of todo) {
        const claim = this.inFlight.claim(id);
        if (claim === true) claimed.push(id);
        else waiting.push([id, claim]);
      }
      const verdicts = await this.lookupOrWrite(claimed);
      claimed.forEach((id, i) => {
        if (verdicts[i] === 'write') {
          admission.write.push(id);
        } else {
          admission.done.push(id);
          this.inFlight.settle(id, 'written');
        }
      });
      todo = [];
      for (const [id, outcome] of waiting) {
        if ((await outcome) === 'written') admission.done.push(id);
        else todo.push(id);
      }
    }
    return admission;
  }

  settle(ids: Iterable<string>, outcome: InFlightOutcome): void {
    for (const id of ids) this.inFlight.settle(id, outcome);
  }

  record(file: string, ids: readonly string[], exp: number): Promise<LedgerTicket> {
    return this.writer.record(file, ids, exp);
  }

  abort(ticket: DedupeTicket): Promise<void> {
    return this.writer.abort(ticket as LedgerTicket);
  }

  complete(ticket: DedupeTicket, holders: Iterable<object>): void {
    const segment = (ticket as LedgerTicket).segment;
    for (const holder of holders) {
      if (this.released.has(holder)) {
        // Settled before this batch completed (its delivery was dropped): it comes back, keep the record.
        this.writer.hold(segment);
        this.writer.release(segment, 'lost');
        continue;
      }
      const held = this.held.get(holder);
      if (held === undefined) this.held.set(holder, [segment]);
      else if (held.includes(segment)) continue;
      else held.push(segment);
      this.writer.hold(segment);
    }
    // The ticket's own hold, taken when the record was appended, is handed over to the holders.
    this.writer.release(segment, 'settled');
  }

  release(holder: object, outcome: 'settled' | 'lost'): void {
    this.released.add(holder);
    const held = this.held.get(holder);
    if (held === undefined) return;
    this.held.delete(holder);
    for (const segment of held) this.writer.release(segment, outcome);
  }

  /**
   * Decides each id from the ledger: `skip` when a record of it names a file that exists; `write`
   * when none does and no live writer is about to rename one (waiting up to PENDING_RECORD_WAIT_MS
   * for such a rename or its abort).
   */
  async lookup(ids: readonly string[]): Promise<Verdict[]> {
    if (ids.length === 0) return [];
    await this.index.refresh();
    const verdicts: Verdict[] = new Array<Verdict>(ids.length);
    let open = ids.map((_, i) => i);
    for (;;) {
      const exists = new Map<LedgerRecord, Promise<boolean>>();
      let waitUntil = 0;
      const undecided: number[] = [];
      for (const i of open) {
        const decision = await this.decide(this.index.recordsOf(ids[i]), exists);
        if (typeof decision === 'number') {
          undecided.push(i);
          waitUntil = Math.max(waitUntil, decision);
        } else {
          verdicts[i] = decision;
        }
      }
      if (undecided.length === 0) return verdicts;
      open = undecided;
      await this.clock.sleep(Math.max(1, Math.min(PENDING_POLL_MS, waitUntil - this.clock.now())));
      await this.index.refresh();
    }
  }

  /** Never throws: if the ledger cannot be read, the entries are written (a copy, never a loss). */
  private async lookupOrWrite(ids: string[]): Promise<Verdict[]> {
    try {
      return await this.lookup(ids);
    } catch (error) {
      this.logger.warn(`could not read the ledger (${describeError(error)}); writing ${ids.length} entries again`);
      return ids.map(() => 'write');
    }
  }

  /** `skip`, `write`, or the time until which to wait for a rename under way. */
  private async decide(
    records: readonly LedgerRecord[],
    exists: Map<LedgerRecord, Promise<boolean>>,
  ): Promise<Verdict | number> {
    if (records.length === 0) return 'write';
    for (const record of records) {
      if (record.aborted) continue;
      if (!exists.has(record)) exists.set(record, this.fileExists(record));
      if (await exists.get(record)) return 'skip';
    }
    const now = this.clock.now();
    let waitUntil = 0;
    for (const record of records) {
      if (record.aborted || now - record.at >= PENDING_RECORD_WAIT_MS) continue;
      if (this.liveness(record.segment.writer) !== 'alive') continue;
      waitUntil = Math.max(waitUntil, record.at + PENDING_RECORD_WAIT_MS);
    }
    return waitUntil > now ? waitUntil : 'write';
  }

  private async fileExists(record: LedgerRecord): Promise<boolean> {
    if (record.present) return true;
    try {
      record.present = (await stat(`${this.directory}/${record.file}`)).isFile();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    return record.present;
  }
}
