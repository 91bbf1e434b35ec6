import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { ConfigValidationError, consumerConfig } from '@app/config';
import { describeError } from '@app/observability';
import { Dedupe, type DedupeTicket } from '../dedupe/dedupe';
import type { WriteControl } from '../worker-pool/worker-pool.types';
import { DirectorySyncer } from './directory-syncer';

/** Staged files wait here, on the same file system, until the rename makes them complete. */
export const STAGING_FOLDER = '.inflight';
/** Another host's staged file this old belongs to a writer that is gone. */
const FOREIGN_STAGED_MAX_AGE_MS = 60 * 60 * 1000;

/** The write was abandoned (its worker timed out) before it became visible. */
export class SinkWriteAbortedError extends Error {
  constructor() {
    super('batch write abandoned before commit');
    this.name = SinkWriteAbortedError.name;
  }
}

/** What the ledger records of a batch before its rename (docs/exactly-once.md). */
export interface BatchRecord {
  /** The ids of the batch's entries. */
  ids: readonly string[];
  /** The latest Idempotency-Key expiry among its deliveries (epoch ms), 0 without keys. */
  exp: number;
  /** Its deliveries: each keeps the record until it is acknowledged (or lost) and released. */
  holders: readonly object[];
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes batch files under DATA_OUTPUT_DIR. A file is staged, fsynced (SINK_FSYNC), then renamed
 * to `worker-<shard>-<n>_<time>_<process>-<seq>.jsonl`, so a `.jsonl` file is always complete and
 * its name is unique across processes sharing the folder.
 */
@Injectable()
export class FileSinkService implements OnModuleInit {
  private readonly logger = new Logger(FileSinkService.name);
  readonly directory: string;
  private readonly staging: string;
  private readonly host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  /** Unique per process, so two consumers sharing the folder never pick the same name. */
  private readonly processTag = randomBytes(4).toString('hex');
  private readonly syncer: DirectorySyncer;
  private sequence = 0;
  private writes = 0;

  constructor(
    @Inject(consumerConfig.KEY) private readonly config: ConfigType<typeof consumerConfig>,
    private readonly dedupe: Dedupe,
  ) {
    this.directory = resolve(config.dataOutputDir);
    this.staging = join(this.directory, STAGING_FOLDER);
    this.syncer = new DirectorySyncer(this.directory);
  }

  /** Creates the folder, proves it writable (a start-up error otherwise) and clears stale staged files. */
  async onModuleInit(): Promise<void> {
    try {
      await this.probe();
    } catch (error) {
      throw new ConfigValidationError(
        'DATA_OUTPUT_DIR',
        this.config.dataOutputDir,
        `expected a writable folder (${describeError(error)})`,
      );
    }
    await this.removeStaleStagedFiles();
    this.logger.log(`writing batch files to ${this.directory}${this.config.sinkFsync ? ' with fsync' : ''}`);
  }

  /** Whether a file can be created and removed in the folder right now. */
  async isWritable(): Promise<boolean> {
    try {
      await this.probe();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes one complete batch file and resolves with its name once it is in place (and, with
   * SINK_FSYNC, on disk). Throws SinkWriteAbortedError if `signal` fired before the commit, and
   * whatever `commit()` throws (the batch then does not appear). With `record`, the ledger holds
   * `file holds ids` before the rename, and an abort line if the file then does not appear.
   */
  async write(
    workerId: string,
    lines: readonly string[],
    control: WriteControl,
    record?: BatchRecord,
  ): Promise<string> {
    // Paths joined by hand: both folders are resolved, and path.join's normalising showed in profiles.
    const name = `worker-${workerId}_${compactTime(Date.now())}_${this.processTag}-${++this.sequence}.jsonl`;
    const staged = `${this.staging}${sep}${this.host}~${process.pid}~${this.processTag}-${this.sequence}.tmp`;
    if (this.config.faultSinkStallEvery > 0) await this.stallIfFaultInjected(control.signal);
    try {
      await this.writeStaged(staged, lines.join('\n') + '\n');
      if (control.signal.aborted) throw new SinkWriteAbortedError();
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      throw error;
    }
    const ticket = record === undefined ? undefined : await this.recordOrUnstage(staged, name, record);
    try {
      control.commit();
      await rename(staged, `${this.directory}${sep}${name}`);
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      if (ticket !== undefined) await this.abortRecord(ticket);
      throw error;
    }
    if (ticket !== undefined) this.dedupe.complete(ticket, record?.holders ?? []);
    if (this.config.sinkFsync) await this.syncer.sync();
    return name;
  }

  /** Appends the ledger record of a staged batch; if that fails, the staged file goes and the write fails. */
  private async recordOrUnstage(staged: string, name: string, record: BatchRecord): Promise<DedupeTicket> {
    try {
      return await this.dedupe.record(name, record.ids, record.exp);
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      throw error;
    }
  }

  /** The recorded file will not appear: say so in the ledger (a failure only delays the rewrite by ~2 s). */
  private async abortRecord(ticket: DedupeTicket): Promise<void> {
    try {
      await this.dedupe.abort(ticket);
    } catch (error) {
      this.logger.warn(`could not record the abort of ${ticket.file} in the ledger: ${describeError(error)}`);
    }
  }

  /** FAULT_SINK_STALL_EVERY: every Nth write hangs until its worker's timeout aborts it. */
  private async stallIfFaultInjected(signal: AbortSignal): Promise<void> {
    if (++this.writes % this.config.faultSinkStallEvery !== 0) return;
    this.logger.warn('FAULT_SINK_STALL_EVERY: stalling this write until it is abandoned');
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    throw new SinkWriteAbortedError();
  }

  private async writeStaged(path: string, data: string): Promise<void> {
    const handle = await open(path, 'w').catch(async (error: NodeJS.ErrnoException) => {
      // The folder was removed under us: make it again rather than fail every batch.
      if (error.code !== 'ENOENT') throw error;
      await mkdir(this.staging, { recursive: true });
      return open(path, 'w');
    });
    try {
      await handle.writeFile(data);
      if (this.config.sinkFsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Stages a file and renames it into the folder, as a batch write does, then removes it. */
  private async probe(): Promise<void> {
    await mkdir(this.staging, { recursive: true });
    const name = `${this.host}~${process.pid}~${this.processTag}-probe-${++this.sequence}.tmp`;
    const staged = join(this.staging, name);
    await this.writeStaged(staged, 'probe\n');
    // Not a .jsonl name: to a reader it is never a batch, even for the moment it exists.
    const placed = join(this.directory, `.${name}`);
    try {
      await rename(staged, placed);
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      throw error;
    }
    await unlink(placed);
  }

  /** Staged files of dead writers on this host, or any older than an hour, are leftovers of a crash. */
  private async removeStaleStagedFiles(): Promise<void> {
    const now = Date.now();
    let removed = 0;
    for (const file of await readdir(this.staging)) {
      const [host, pid] = file.split('~');
      const path = join(this.staging, file);
      try {
        const ours = host === this.host && (Number(pid) === process.pid || !isPidAlive(Number(pid)));
        if (ours || now - (await stat(path)).mtimeMs > FOREIGN_STAGED_MAX_AGE_MS) {
          await unlink(path);
          removed++;
        }
      } catch (error) {
        this.logger.warn(`could not remove stale staged file ${path}: ${describeError(error)}`);
      }
    }
    if (removed > 0) this.logger.log(`removed ${removed} staged files left by a previous run`);
  }
}

let lastCompactMs = Number.NaN;
let lastCompactTime = '';

/**
 * 2026-11-28T10:15:00.123Z -> 20261128T101500123Z: sortable, and safe in any file system.
 * Files named in the same millisecond share the string: formatting it cost more than the rest.
 */
function compactTime(ms: number): string {
  if (ms !== lastCompactMs) {
    lastCompactMs = ms;
    lastCompactTime = new Date(ms).toISOString().replace(/[-:.]/g, '');
  }
  return lastCompactTime;
}
