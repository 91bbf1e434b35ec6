import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { ConfigValidationError, type ConsumerConfig, consumerConfig } from '@app/config';
import { DirectorySyncer } from '@app/durable-fs';
import { describeError } from '@app/observability';
import { Dedupe, type DedupeTicket } from '../dedupe/dedupe';
import type { WriteControl } from '../worker-pool/worker-pool.types';
import { makeFolder } from '../common/make-folder';
import { WriteGate } from './write-gate';
import { SinkWriteAbortedError } from './sink-write-aborted.error';
import { StagingThread } from './staging-thread';

/** Staged files wait here, on the same file system, until the rename makes them complete. */
export const STAGING_FOLDER = '.inflight';
/** Another host's staged file this old belongs to a writer that is gone. */
const FOREIGN_STAGED_MAX_AGE_MS = 60 * 60 * 1000;
/** /health probes the folder at most this often; calls in between get the last answer. */
export const PROBE_CACHE_MS = 2_000;
/** First and longest pause between tries of a failed folder fsync after a rename. */
export const DIRECTORY_SYNC_RETRY_MS = { initial: 100, max: 5_000 };

/**
 * Batch writes on the disk at once, across every shard's pool: far above the defaults' 5 shards x 4
 * workers, so it only bites with many shards or a large WORKERS_MAX (see WriteGate).
 */
export const CONCURRENT_WRITES = 32;

export { SinkWriteAbortedError };

/**
 * Below this BATCH_SIZE, and without SINK_FSYNC, staged files are written on the staging thread.
 * It spares each file two hand-overs to libuv's pool, which at batches of 5 were most of the
 * drain's main-thread time (+32 % at batch 5 in an A/B, docs/benchmarks.md); at 500 the same
 * saving per file is a hundredth per entry and did not show, while the thread costs about 18 MB.
 */
export const STAGING_THREAD_BELOW_BATCH = 50;

/**
 * Larger staged files go through fs/promises even then: their hand-overs are a small share of
 * their write, and the thread keeps at most 8 such texts (STAGING_THREAD_DEPTH) in its heap.
 */
export const STAGING_THREAD_MAX_CHARS = 64 * 1024;

/** Whether the sink writes staged files on its staging thread (docs/file-sink.md). */
export function usesStagingThread(config: Pick<ConsumerConfig, 'sinkFsync' | 'batchSize'>): boolean {
  return !config.sinkFsync && config.batchSize < STAGING_THREAD_BELOW_BATCH;
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How a file is staged: `signal` stops it at its next step; `thread` lets it go to the staging thread. */
interface StageOptions {
  signal?: AbortSignal;
  thread: boolean;
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

/**
 * Writes batch files under DATA_OUTPUT_DIR. A file is staged, fsynced (SINK_FSYNC), then renamed
 * to `worker-<shard>-<n>_<time>_<process>-<seq>.jsonl`, so a `.jsonl` file is always complete and
 * its name is unique across processes sharing the folder.
 */
@Injectable()
export class FileSinkService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(FileSinkService.name);
  readonly directory: string;
  private readonly staging: string;
  private readonly host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  /** Unique per process, so two consumers sharing the folder never pick the same name. */
  private readonly processTag = randomBytes(4).toString('hex');
  private readonly syncer: DirectorySyncer;
  private readonly gate = new WriteGate(CONCURRENT_WRITES);
  /** Writes staged files for small batches without SINK_FSYNC (usesStagingThread). */
  private readonly stagingThread?: StagingThread;
  private sequence = 0;
  /** The probe under way, shared by every caller that arrives while it runs. */
  private probing?: Promise<boolean>;
  private probed?: { ok: boolean; at: number };

  constructor(
    @Inject(consumerConfig.KEY) private readonly config: ConfigType<typeof consumerConfig>,
    private readonly dedupe: Dedupe,
  ) {
    this.directory = resolve(config.dataOutputDir);
    this.staging = join(this.directory, STAGING_FOLDER);
    this.syncer = new DirectorySyncer(this.directory);
    if (usesStagingThread(config)) this.stagingThread = new StagingThread();
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

  /**
   * After the shards have drained (ShardSupervisor, before shutdown). A write still under way (the
   * drain ran out of SHUTDOWN_TIMEOUT_MS) fails: its entries were not acknowledged, and come back.
   */
  onApplicationShutdown(): void {
    this.stagingThread?.close();
  }

  /**
   * Whether a file can be created and removed in the folder. /health calls this on an open port,
   * so a real probe runs at most once per PROBE_CACHE_MS; callers meanwhile share the running
   * probe or get the last answer.
   */
  isWritable(): Promise<boolean> {
    if (this.probing) return this.probing;
    if (this.probed && Date.now() - this.probed.at < PROBE_CACHE_MS) return Promise.resolve(this.probed.ok);
    const probing = this.probe().then(
      () => true,
      () => false,
    );
    this.probing = probing;
    void probing.then((ok) => {
      this.probed = { ok, at: Date.now() };
      this.probing = undefined;
    });
    return probing;
  }

  /**
   * Writes one complete batch file (at most CONCURRENT_WRITES at once) and resolves with its name
   * once it is in place (and, with SINK_FSYNC, on disk: the file before the rename, the folder after it). Throws
   * SinkWriteAbortedError if `signal` fired before the commit. A rejection always means no file
   * appeared and nothing is left staged, so the caller may write the batch again; once the file is
   * in place, this never rejects (a failing folder fsync is retried alone, see docs/file-sink.md).
   */
  async write(
    workerId: string,
    lines: readonly string[],
    control: WriteControl,
    record?: BatchRecord,
  ): Promise<string> {
    if (!(await this.gate.enter(control.signal))) throw new SinkWriteAbortedError();
    let name: string;
    try {
      control.started?.();
      name = await this.writeAdmitted(workerId, lines, control, record);
    } finally {
      this.gate.leave();
    }
    // Outside the gate: the file is complete, and a folder fsync that keeps failing (retried
    // alone) must not hold a turn every other shard's writes wait for.
    await this.syncFolder(`the rename of ${name}`);
    return name;
  }

  /** write() up to the rename, once the gate has let it touch the disk. */
  private async writeAdmitted(
    workerId: string,
    lines: readonly string[],
    control: WriteControl,
    record?: BatchRecord,
  ): Promise<string> {
    // Paths joined by hand: both folders are resolved, and path.join's normalising showed in profiles.
    const name = `worker-${workerId}_${compactTime(Date.now())}_${this.processTag}-${++this.sequence}.jsonl`;
    const staged = `${this.staging}${sep}${this.host}~${process.pid}~${this.processTag}-${this.sequence}.tmp`;
    await this.stage(staged, lines.join('\n') + '\n', { signal: control.signal, thread: true });
    // With `record`, the ledger holds `name holds ids` before the rename (docs/exactly-once.md).
    const ticket = record === undefined ? undefined : await this.recordOrUnstage(staged, name, record);
    try {
      // commit() may refuse (a delivery of a closed channel): then the batch does not appear.
      control.commit();
      await this.place(staged, `${this.directory}${sep}${name}`);
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      if (ticket !== undefined) await this.abortRecord(ticket);
      throw error;
    }
    if (ticket !== undefined) this.dedupe.complete(ticket, record?.holders ?? []);
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

  /**
   * Writes (and with SINK_FSYNC fsyncs) the staged file; on any failure or abort it removes it. An
   * abort stops it at its next step: a timed-out write holds no file open nor queues an fsync
   * while its replacement writes the batch (else, with a short WORKER_TIMEOUT_MS, abandoned writes
   * piled up faster than they finished and every write timed out).
   */
  private async stage(staged: string, data: string, how: StageOptions): Promise<void> {
    const { signal } = how;
    if (signal?.aborted) throw new SinkWriteAbortedError();
    try {
      await this.writeStaged(staged, data, how);
      if (signal?.aborted) throw new SinkWriteAbortedError();
    } catch (error) {
      await unlink(staged).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Renames the staged file into place. A failed rename leaves the target absent and the staged
   * file where it was (rename is atomic): remove it, so that a retry does not stage a second copy.
   */
  private async place(staged: string, target: string): Promise<void> {
    try {
      await rename(staged, target);
    } catch (error) {
      // Should the file be in place regardless, it is complete: writing it again would duplicate it.
      if (await exists(target)) return;
      await unlink(staged).catch(() => undefined);
      throw error;
    }
  }

  /**
   * With SINK_FSYNC, resolves once a folder fsync begun after this call has succeeded (a failed one
   * is retried alone, as after a rename); at once without. A delivery whose entries were found in
   * complete files waits for it before its ack: whoever renamed those files may not have synced the
   * folder yet, and a power loss would take their names (docs/exactly-once.md). `what` says in the
   * log what the fsync follows.
   */
  async syncFolder(what: string): Promise<void> {
    if (this.config.sinkFsync) await this.syncFolderUntilDone(what);
  }

  /**
   * The file is complete once renamed; only the folder entry may not be on disk yet. A failed
   * folder fsync is retried alone, never the batch: the write resolves (and the caller acknowledges)
   * only once a folder fsync that began after the rename has succeeded.
   */
  private async syncFolderUntilDone(what: string): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await this.syncer.sync();
        if (failures > 0)
          this.logger.log(`the fsync of ${this.directory} after ${what} succeeded after ${failures} failures`);
        return;
      } catch (error) {
        const { initial, max } = DIRECTORY_SYNC_RETRY_MS;
        const delay = Math.min(max, initial * 2 ** failures);
        this.logger.error(
          `the fsync of ${this.directory} after ${what} failed (${describeError(error)}); ` +
            `its entries stay unacknowledged, next fsync in ${delay} ms`,
        );
        await sleep(delay, undefined, { ref: false });
      }
    }
  }

  /**
   * Writes the staged file: on the staging thread when the sink has one (usesStagingThread) and the
   * text is at most STAGING_THREAD_MAX_CHARS, else through a handle, fsynced with SINK_FSYNC.
   */
  private async writeStaged(path: string, data: string, { signal, thread: mayUseThread }: StageOptions): Promise<void> {
    const thread = mayUseThread ? this.stagingThread : undefined;
    if (thread !== undefined && data.length <= STAGING_THREAD_MAX_CHARS)
      return this.inStagingFolder(() => thread.write(path, data, signal));
    const handle = await this.inStagingFolder(() => open(path, 'w'));
    try {
      if (signal?.aborted) throw new SinkWriteAbortedError();
      await handle.writeFile(data);
      if (signal?.aborted) throw new SinkWriteAbortedError();
      if (this.config.sinkFsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Runs `attempt`; should the staging folder have been removed under us, makes it again and tries once more rather than fail every batch. */
  private async inStagingFolder<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await makeFolder(this.staging);
      return attempt();
    }
  }

  /** Stages a file and renames it into the folder, as a batch write does, then removes it; leaves nothing behind. */
  private async probe(): Promise<void> {
    await makeFolder(this.staging);
    const name = `${this.host}~${process.pid}~${this.processTag}-probe-${++this.sequence}.tmp`;
    const staged = join(this.staging, name);
    // Not on the staging thread: a probe alone must not start it (it starts with the first small batch).
    await this.stage(staged, 'probe\n', { thread: false });
    // Not a .jsonl name: to a reader it is never a batch, even for the moment it exists.
    const placed = join(this.directory, `.${name}`);
    await this.place(staged, placed);
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

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

let compactSecond = Number.NaN;
let compactSecondText = '';
let lastCompactMs = Number.NaN;
let lastCompactTime = '';

/**
 * 2026-11-28T10:15:00.123Z -> 20261128T101500123Z: sortable, and safe in any file system.
 * Files named in the same millisecond share the string, and those of the same second share its
 * formatted part: formatting the whole date for each file cost more than the rest of its name.
 */
export function compactTime(ms: number): string {
  if (ms !== lastCompactMs) {
    const second = Math.floor(ms / 1000);
    if (second !== compactSecond) {
      compactSecond = second;
      // 20261128T101500 of 2026-11-28T10:15:00.000Z
      compactSecondText = new Date(second * 1000).toISOString().slice(0, 19).replace(/[-:]/g, '');
    }
    const millis = ms - second * 1000;
    lastCompactMs = ms;
    lastCompactTime = `${compactSecondText}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
  }
  return lastCompactTime;
}
