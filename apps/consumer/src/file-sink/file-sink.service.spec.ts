import { Logger } from '@nestjs/common';
import {
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigValidationError, readConsumerConfig } from '@app/config';
import { DirectorySyncer } from '@app/durable-fs';
import { waitFor } from '@app/testing';
import type { Dedupe } from '../dedupe/dedupe';
import { DedupeService } from '../dedupe/dedupe.service';
import { DisabledDedupe } from '../dedupe/disabled-dedupe';
import fc from 'fast-check';
import {
  CONCURRENT_WRITES,
  DIRECTORY_SYNC_RETRY_MS,
  compactTime,
  FileSinkService,
  PROBE_CACHE_MS,
  SinkWriteAbortedError,
  STAGING_FOLDER,
  STAGING_THREAD_BELOW_BATCH,
  STAGING_THREAD_MAX_CHARS,
  usesStagingThread,
} from './file-sink.service';
import { StagingThread } from './staging-thread';

function sinkAt(dataOutputDir: string, sinkFsync = true, dedupe: Dedupe = new DisabledDedupe()): FileSinkService {
  return new FileSinkService({ ...readConsumerConfig({}), dataOutputDir, sinkFsync }, dedupe);
}

const go = () => ({ signal: new AbortController().signal, commit: jest.fn() });

/** What the sink logged at `level`. */
const logged = (level: 'log' | 'warn' | 'error'): unknown[] =>
  jest.mocked(Logger.prototype[level]).mock.calls.map(([message]: unknown[]) => message);

const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
/** A pid no process has: above Linux's highest (2^22). */
const deadPid = 2 ** 22 + 12345;

describe('FileSinkService', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sink-spec-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    jest.spyOn(Logger.prototype, 'error').mockImplementation();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  it('writes one complete file named after the worker, one line per entry, and commits before the rename', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const control = go();
    const name = await sink.write('2-4', ['{"id":"a"}', '{"id":"b"}'], control);
    expect(name).toMatch(/^worker-2-4_\d{8}T\d{9}Z_[0-9a-f]{8}-\d+\.jsonl$/);
    expect(readFileSync(join(dir, name), 'utf8')).toBe('{"id":"a"}\n{"id":"b"}\n');
    expect(control.commit).toHaveBeenCalledTimes(1);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('publishes nothing and leaves nothing staged when aborted before the commit', async () => {
    const sink = sinkAt(dir, false);
    await sink.onModuleInit();
    const controller = new AbortController();
    controller.abort();
    const commit = jest.fn();
    const write = sink.write('0-1', ['x'], { signal: controller.signal, commit });
    await expect(write).rejects.toBeInstanceOf(SinkWriteAbortedError);
    await expect(write).rejects.toMatchObject({
      name: 'SinkWriteAbortedError',
      message: 'batch write abandoned before commit',
    });
    expect(commit).not.toHaveBeenCalled();
    expect(readdirSync(dir)).toEqual([STAGING_FOLDER]);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('gives unique names across processes and concurrent writes', async () => {
    const [a, b] = [sinkAt(dir, false), sinkAt(dir, false)];
    await a.onModuleInit();
    await b.onModuleInit();
    const names = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).write('1-1', [`${i}`], go())),
    );
    expect(new Set(names).size).toBe(200);
    expect(readdirSync(dir).filter((file) => file.endsWith('.jsonl'))).toHaveLength(200);
  });

  it.each([true, false])(
    'makes the folder when missing, and recreates it when removed under it (fsync %s)',
    async (fsync) => {
      const nested = join(dir, 'a', 'b');
      const sink = sinkAt(nested, fsync);
      await sink.onModuleInit();
      rmSync(nested, { recursive: true });
      const name = await sink.write('0-1', ['x'], go());
      expect(readdirSync(nested)).toContain(name);
    },
  );

  it.each([true, false])(
    'refuses to start on a folder it cannot write, naming DATA_OUTPUT_DIR (fsync %s)',
    async (fsync) => {
      const file = join(dir, 'not-a-folder');
      writeFileSync(file, '');
      const sink = sinkAt(file, fsync);
      await expect(sink.onModuleInit()).rejects.toThrow(ConfigValidationError);
      await expect(sink.onModuleInit()).rejects.toThrow(
        `Invalid DATA_OUTPUT_DIR=${JSON.stringify(file)}: expected a writable folder (`,
      );
      await expect(sink.isWritable()).resolves.toBe(false);
    },
  );

  it('removes staged files of dead writers on this host and old ones of other hosts, and keeps the rest', async () => {
    const staging = join(dir, STAGING_FOLDER);
    await sinkAt(dir).onModuleInit();
    writeFileSync(join(staging, `${host}~${deadPid}~1.tmp`), 'half');
    writeFileSync(join(staging, `${host}~${process.pid}~7.tmp`), 'half');
    writeFileSync(join(staging, 'other-host~1~1.tmp'), 'live');
    writeFileSync(join(staging, 'old-host~1~1.tmp'), 'stale');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(staging, 'old-host~1~1.tmp'), twoHoursAgo, twoHoursAgo);
    await sinkAt(dir).onModuleInit();
    expect(readdirSync(staging)).toEqual(['other-host~1~1.tmp']);
    expect(logged('log')).toContain('removed 3 staged files left by a previous run');
  });

  it('keeps a fresh staged file of a live process on this host, and of any process on another host', async () => {
    const staging = join(dir, STAGING_FOLDER);
    await sinkAt(dir).onModuleInit();
    const kept = [`${host}~${process.ppid}~1.tmp`, `other-host~${deadPid}~1.tmp`, `other-host~${process.pid}~1.tmp`];
    for (const file of kept) writeFileSync(join(staging, file), 'live');
    await sinkAt(dir).onModuleInit();
    expect(readdirSync(staging).sort()).toEqual([...kept].sort());
    expect(logged('log').filter((text) => String(text).startsWith('removed'))).toEqual([]);
  });

  it('opens nothing for a write aborted before it starts', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const open = jest.spyOn(fsp, 'open');
    const controller = new AbortController();
    controller.abort();
    await expect(sink.write('0-1', ['x'], { signal: controller.signal, commit: jest.fn() })).rejects.toBeInstanceOf(
      SinkWriteAbortedError,
    );
    expect(open).not.toHaveBeenCalled();
  });

  it('stops a write aborted while staging at its next step: no fsync, nothing staged, no commit', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const controller = new AbortController();
    const syncs: jest.SpyInstance[] = [];
    const realOpen = fsp.open.bind(fsp);
    jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const handle = await realOpen(...args);
      const realWrite = handle.writeFile.bind(handle);
      // The worker times out while the bytes are being written.
      jest.spyOn(handle, 'writeFile').mockImplementation(async (...rest: Parameters<typeof handle.writeFile>) => {
        await realWrite(...rest);
        controller.abort();
      });
      syncs.push(jest.spyOn(handle, 'sync'));
      return handle;
    });
    const commit = jest.fn();
    await expect(sink.write('0-1', ['x'], { signal: controller.signal, commit })).rejects.toBeInstanceOf(
      SinkWriteAbortedError,
    );
    expect(syncs).toHaveLength(1);
    expect(syncs[0]).not.toHaveBeenCalled();
    expect(commit).not.toHaveBeenCalled();
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it.each([true, false])(
    'writes at most CONCURRENT_WRITES batches at once; one aborted while it waits its turn stages nothing (fsync %s)',
    async (fsync) => {
      const sink = sinkAt(dir, fsync);
      await sink.onModuleInit();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      // Where a staged file is begun: opened through fs/promises with SINK_FSYNC, on the staging thread without.
      const begin = fsync
        ? jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
            await held;
            return realOpen(...args);
          })
        : jest.spyOn(StagingThread.prototype, 'write').mockImplementation(async function (
            this: StagingThread,
            ...args
          ) {
            await held;
            return stage.apply(this, args);
          });
      // Staged files only: with SINK_FSYNC the folder is opened for its fsync too.
      const staged = () => begin.mock.calls.filter(([path]) => String(path).includes(STAGING_FOLDER)).length;
      const first = Array.from({ length: CONCURRENT_WRITES }, (_, i) => sink.write(`0-${i}`, ['x'], go()));
      const controller = new AbortController();
      const waiting = sink.write('0-99', ['x'], { signal: controller.signal, commit: jest.fn() });
      await new Promise((resolve) => setImmediate(resolve));
      expect(staged()).toBe(CONCURRENT_WRITES);
      controller.abort();
      await expect(waiting).rejects.toBeInstanceOf(SinkWriteAbortedError);
      release();
      await Promise.all(first);
      expect(staged()).toBe(CONCURRENT_WRITES);
      expect(readdirSync(dir).filter((name) => name.endsWith('.jsonl'))).toHaveLength(CONCURRENT_WRITES);
    },
  );

  it('gives its turn back before the folder fsync: a folder that will not sync holds no turn of the others', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const sync = jest.spyOn(DirectorySyncer.prototype, 'sync').mockImplementation(() => stuck);
    const first = Array.from({ length: CONCURRENT_WRITES }, (_, i) => sink.write(`0-${i}`, ['x'], go()));
    await waitFor(() => sync.mock.calls.length === CONCURRENT_WRITES, {
      description: 'every first write at its folder fsync',
    });
    // Every first write is in place and waits for the folder: one more still gets its turn.
    const more = sink.write('1-1', ['y'], go());
    await waitFor(() => sync.mock.calls.length === CONCURRENT_WRITES + 1, { description: 'one more write renamed' });
    release();
    await Promise.all([...first, more]);
    expect(readdirSync(dir).filter((name) => name.endsWith('.jsonl'))).toHaveLength(CONCURRENT_WRITES + 1);
  });

  it('tells the control the write started once the gate let it in, before any I/O', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const events: string[] = [];
    const realOpen = fsp.open.bind(fsp);
    jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      events.push('open');
      return realOpen(...args);
    });
    await sink.write('0-1', ['x'], { ...go(), started: () => events.push('started') });
    // The staged file's open, then the folder's (its fsync after the rename).
    expect(events).toEqual(['started', 'open', 'open']);
  });

  it('counts a process it may not signal (EPERM) as alive, and one that is gone (ESRCH) as dead', async () => {
    const staging = join(dir, STAGING_FOLDER);
    await sinkAt(dir).onModuleInit();
    const [otherUser, gone] = [4_000_001, 4_000_002];
    writeFileSync(join(staging, `${host}~${otherUser}~1.tmp`), 'live');
    writeFileSync(join(staging, `${host}~${gone}~1.tmp`), 'half');
    const kill = jest.spyOn(process, 'kill').mockImplementation((pid) => {
      throw Object.assign(new Error('kill'), { code: pid === otherUser ? 'EPERM' : 'ESRCH' });
    });
    await sinkAt(dir).onModuleInit();
    expect(kill).toHaveBeenCalledWith(otherUser, 0);
    expect(readdirSync(staging)).toEqual([`${host}~${otherUser}~1.tmp`]);
  });

  it('removes a staged file of another host only once it is more than an hour old', async () => {
    const staging = join(dir, STAGING_FOLDER);
    await sinkAt(dir).onModuleInit();
    const now = 1_700_000_000_000;
    const aged = (file: string, ms: number) => {
      writeFileSync(join(staging, file), 'x');
      utimesSync(join(staging, file), new Date(now - ms), new Date(now - ms));
    };
    aged('other-host~1~hour.tmp', 3_600_000);
    aged('other-host~1~older.tmp', 3_601_000);
    aged('other-host~1~minutes.tmp', 60_000);
    jest.spyOn(Date, 'now').mockReturnValue(now);
    await sinkAt(dir).onModuleInit();
    expect(readdirSync(staging).sort()).toEqual(['other-host~1~hour.tmp', 'other-host~1~minutes.tmp']);
  });

  it('starts despite a staged leftover it cannot remove, warning about it, and removes the others', async () => {
    const staging = join(dir, STAGING_FOLDER);
    await sinkAt(dir).onModuleInit();
    const stuck = join(staging, `${host}~${deadPid}~stuck.tmp`);
    mkdirSync(stuck);
    writeFileSync(join(staging, `${host}~${deadPid}~1.tmp`), 'half');
    await sinkAt(dir).onModuleInit();
    expect(readdirSync(staging)).toEqual([`${host}~${deadPid}~stuck.tmp`]);
    expect(logged('warn')).toEqual([expect.stringMatching(`^could not remove stale staged file ${stuck}: .+`)]);
    expect(logged('log')).toContain('removed 1 staged files left by a previous run');
  });

  it('names its staged files <host>~<pid>~..., the name the sweep at start reads', async () => {
    const sink = sinkAt(dir, false);
    await sink.onModuleInit();
    let staged: string[] = [];
    await sink.write('0-1', ['x'], {
      signal: new AbortController().signal,
      commit: () => (staged = readdirSync(join(dir, STAGING_FOLDER))),
    });
    expect(staged).toEqual([
      expect.stringMatching(new RegExp(`^${host.replace(/\./g, '\\.')}~${process.pid}~[0-9a-f]{8}-\\d+\\.tmp$`)),
    ]);
  });

  it('keeps only letters, digits, dots and dashes of the host name in staged names, so the sweep can split them', async () => {
    const os = jest.requireActual<typeof import('node:os')>('node:os');
    jest.spyOn(os, 'hostname').mockReturnValue('Db-7.rack~2/a b');
    const sink = sinkAt(dir, false);
    await sink.onModuleInit();
    let staged: string[] = [];
    await sink.write('0-1', ['x'], {
      signal: new AbortController().signal,
      commit: () => (staged = readdirSync(join(dir, STAGING_FOLDER))),
    });
    expect(staged).toEqual([expect.stringMatching(new RegExp(`^Db-7\\.rack_2_a_b~${process.pid}~`))]);
    writeFileSync(join(dir, STAGING_FOLDER, `Db-7.rack_2_a_b~${deadPid}~1.tmp`), 'half');
    await sinkAt(dir, false).onModuleInit();
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('says where it writes, and whether with fsync', async () => {
    await sinkAt(dir, true).onModuleInit();
    await sinkAt(dir, false).onModuleInit();
    expect(logged('log')).toEqual([`writing batch files to ${dir} with fsync`, `writing batch files to ${dir}`]);
  });
});

/** The real fs/promises.open and StagingThread.write, kept before any spy replaces them. */
const realOpen = fsp.open.bind(fsp);
const stage = StagingThread.prototype.write;
type Opened = Awaited<ReturnType<typeof fsp.open>>;

/** Every fs call the sink makes that matters for durability, in the order it made them. */
function recordFs(dir: string, events: string[], faults: { dirSync?: () => Error | undefined } = {}) {
  jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
    const [path, flags] = args;
    const handle: Opened = await realOpen(...args);
    const what = path === dir && flags === 'r' ? 'dir' : String(path).includes(STAGING_FOLDER) ? 'file' : 'other';
    const sync = handle.sync.bind(handle);
    const writeFile = handle.writeFile.bind(handle);
    jest.spyOn(handle, 'writeFile').mockImplementation(async (...rest: Parameters<Opened['writeFile']>) => {
      events.push(`${what}-write`);
      return writeFile(...rest);
    });
    jest.spyOn(handle, 'sync').mockImplementation(async () => {
      events.push(`${what}-fsync`);
      const error = what === 'dir' ? faults.dirSync?.() : undefined;
      if (error) throw error;
      return sync();
    });
    return handle;
  });
  const rename = fsp.rename.bind(fsp);
  jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
    events.push('rename');
    return rename(from, to);
  });
}

const jsonlFiles = (dir: string) => readdirSync(dir).filter((file) => file.endsWith('.jsonl'));

describe('FileSinkService error paths', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sink-faults-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'error').mockImplementation();
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves nothing staged when the rename fails after the commit, so each retry stages one copy at most', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const rename = jest.spyOn(fsp, 'rename').mockRejectedValue(Object.assign(new Error('EIO'), { code: 'EIO' }));
    for (let attempt = 0; attempt < 3; attempt++) {
      const control = go();
      await expect(sink.write('0-1', ['a'], control)).rejects.toThrow('EIO');
      expect(control.commit).toHaveBeenCalledTimes(1);
    }
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
    rename.mockRestore();
    const name = await sink.write('0-1', ['a'], go());
    expect(jsonlFiles(dir)).toEqual([name]);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('treats a rename that failed but put the file in place as done: the file is complete, never written again', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const rename = fsp.rename.bind(fsp);
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      await rename(from, to);
      throw new Error('EIO after the rename');
    });
    const name = await sink.write('0-1', ['a'], go());
    expect(jsonlFiles(dir)).toEqual([name]);
  });

  it('never gives a batch file the name of an earlier one, health probes in between', async () => {
    const sink = sinkAt(dir, false);
    await sink.onModuleInit();
    // One millisecond for all: only the sequence tells the names apart.
    jest.spyOn(Date, 'now').mockReturnValue(Date.now());
    const first = await sink.write('0-1', ['a'], go());
    await expect(sink.isWritable()).resolves.toBe(true);
    const second = await sink.write('0-1', ['b'], go());
    const sequence = (name: string) => Number(/-(\d+)\.jsonl$/.exec(name)?.[1]);
    expect(sequence(second)).toBeGreaterThan(sequence(first));
    expect(jsonlFiles(dir).sort()).toEqual([first, second].sort());
    expect(readFileSync(join(dir, first), 'utf8')).toBe('a\n');
  });

  it('reports a full disk as unwritable: the probe writes bytes, not only an empty file', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    // A full disk still creates empty files; it refuses the first byte.
    jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const handle = await realOpen(...args);
      const writeFile = handle.writeFile.bind(handle);
      jest.spyOn(handle, 'writeFile').mockImplementation(async (...rest: Parameters<Opened['writeFile']>) => {
        if (String(rest[0]).length > 0) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
        return writeFile(...rest);
      });
      return handle;
    });
    await expect(sink.isWritable()).resolves.toBe(false);
  });

  it('leaves no staged file when the health probe cannot write', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const handle = await realOpen(...args);
      jest.spyOn(handle, 'writeFile').mockRejectedValue(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
      return handle;
    });
    await expect(sink.isWritable()).resolves.toBe(false);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
    expect(readdirSync(dir)).toEqual([STAGING_FOLDER]);
  });

  it('never puts back a renamed batch when the folder fsync fails: it retries the fsync alone and resolves after one succeeds', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const events: string[] = [];
    let failures = 2;
    recordFs(dir, events, { dirSync: () => (failures-- > 0 ? new Error('EIO on the folder') : undefined) });
    const control = go();
    const name = await sink.write('0-1', ['a', 'b'], control);
    expect(jsonlFiles(dir)).toEqual([name]);
    expect(readFileSync(join(dir, name), 'utf8')).toBe('a\nb\n');
    expect(control.commit).toHaveBeenCalledTimes(1);
    // Written and renamed once; the write resolved (the caller acks) only after the third fsync, the first to succeed.
    expect(events).toEqual(['file-write', 'file-fsync', 'rename', 'dir-fsync', 'dir-fsync', 'dir-fsync']);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('syncFolder: with SINK_FSYNC one folder fsync, begun after the call; without, none', async () => {
    const events: string[] = [];
    const withFsync = sinkAt(dir, true);
    await withFsync.onModuleInit();
    const without = sinkAt(dir, false);
    recordFs(dir, events);
    await without.syncFolder('nothing');
    expect(events).toEqual([]);
    await withFsync.syncFolder('finding 1 entry in complete files');
    expect(events).toEqual(['dir-fsync']);
  });

  it('logs each failed folder fsync with the pause before the next, and the one that succeeded after them', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let failures = 2;
    recordFs(dir, [], { dirSync: () => (failures-- > 0 ? new Error('EIO on the folder') : undefined) });
    const name = await sink.write('0-1', ['a'], go());
    const failed = (delay: number) =>
      `the fsync of ${dir} after the rename of ${name} failed (EIO on the folder); ` +
      `its entries stay unacknowledged, next fsync in ${delay} ms`;
    expect(logged('error')).toEqual([
      failed(DIRECTORY_SYNC_RETRY_MS.initial),
      failed(2 * DIRECTORY_SYNC_RETRY_MS.initial),
    ]);
    expect(logged('log')).toContain(`the fsync of ${dir} after the rename of ${name} succeeded after 2 failures`);
    const before = logged('log').length;
    await sink.write('0-1', ['b'], go());
    expect(logged('log')).toHaveLength(before);
  });

  it('fails a write whose staged file cannot be opened for a reason other than a missing folder, leaving nothing', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    jest.spyOn(fsp, 'open').mockRejectedValueOnce(Object.assign(new Error('EMFILE'), { code: 'EMFILE' }));
    await expect(sink.write('0-1', ['a'], go())).rejects.toThrow('EMFILE');
    expect(readdirSync(dir)).toEqual([STAGING_FOLDER]);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('fails a write whose ledger record fails, before the commit, leaving nothing staged', async () => {
    const dedupe = new DisabledDedupe();
    jest.spyOn(dedupe, 'record').mockRejectedValue(new Error('ENOSPC on the ledger'));
    const sink = sinkAt(dir, false, dedupe);
    await sink.onModuleInit();
    const control = go();
    await expect(sink.write('0-1', ['a'], control, { ids: ['a'], exp: 0, holders: [] })).rejects.toThrow(
      'ENOSPC on the ledger',
    );
    expect(control.commit).not.toHaveBeenCalled();
    expect(readdirSync(dir)).toEqual([STAGING_FOLDER]);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
  });

  it('hands the ledger the holders of a placed batch, and fails with the commit error when the abort cannot be recorded', async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    const dedupe = new DisabledDedupe();
    const complete = jest.spyOn(dedupe, 'complete');
    const sink = sinkAt(dir, false, dedupe);
    await sink.onModuleInit();
    const holders = [{ delivery: 1 }, { delivery: 2 }];
    const name = await sink.write('0-1', ['a'], go(), { ids: ['a'], exp: 0, holders });
    expect(complete).toHaveBeenCalledWith({ file: name, segment: expect.anything() }, holders);

    jest.spyOn(dedupe, 'abort').mockRejectedValue(new Error('ledger gone'));
    const refused = new Error('stale channel');
    const commit = () => {
      throw refused;
    };
    await expect(
      sink.write('0-1', ['b'], { signal: new AbortController().signal, commit }, { ids: ['b'], exp: 0, holders }),
    ).rejects.toBe(refused);
    expect(logged('warn')).toEqual([
      expect.stringMatching(/^could not record the abort of worker-0-1_.*\.jsonl in the ledger: ledger gone$/),
    ]);
    expect(jsonlFiles(dir)).toEqual([name]);
  });

  it('does not hold the process open while it waits to retry a folder fsync', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let failures = 1;
    recordFs(dir, [], { dirSync: () => (failures-- > 0 ? new Error('EIO on the folder') : undefined) });
    // The timers each pause adds to what keeps the event loop alive, counted around its creation.
    const timers = jest.requireActual<typeof import('node:timers/promises')>('node:timers/promises');
    const sleep = timers.setTimeout.bind(timers);
    const holding = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const added: number[] = [];
    jest.spyOn(timers, 'setTimeout').mockImplementation((...args: Parameters<typeof timers.setTimeout>) => {
      const before = holding();
      const pause = sleep(...args);
      added.push(holding() - before);
      return pause;
    });
    await sink.write('0-1', ['a'], go());
    expect(added).toEqual([0]);
  });

  it('closes every file it opens, also when writing the staged file fails', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let [opened, closed] = [0, 0];
    let failWrites = false;
    jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const handle = await realOpen(...args);
      opened++;
      const close = handle.close.bind(handle);
      jest.spyOn(handle, 'close').mockImplementation(async () => {
        closed++;
        return close();
      });
      if (failWrites) jest.spyOn(handle, 'writeFile').mockRejectedValue(new Error('ENOSPC'));
      return handle;
    });
    await sink.write('0-1', ['a'], go());
    failWrites = true;
    await expect(sink.write('0-1', ['b'], go())).rejects.toThrow('ENOSPC');
    // The first write's staged file and folder, the second's staged file.
    expect(opened).toBe(3);
    expect(closed).toBe(opened);
  });

  it('leaves the ledger alone for a write without a record, whether it succeeds or fails', async () => {
    const dedupe = new DisabledDedupe();
    const touched = [jest.spyOn(dedupe, 'record'), jest.spyOn(dedupe, 'complete'), jest.spyOn(dedupe, 'abort')];
    const sink = sinkAt(dir, false, dedupe);
    await sink.onModuleInit();
    await sink.write('0-1', ['a'], go());
    const refused = new Error('stale channel');
    const commit = () => {
      throw refused;
    };
    await expect(sink.write('0-1', ['b'], { signal: new AbortController().signal, commit })).rejects.toBe(refused);
    for (const spy of touched) expect(spy).not.toHaveBeenCalled();
  });

  it('does not resolve a write whose folder fsync keeps failing: its entries stay unacknowledged', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let failing = true;
    recordFs(dir, [], { dirSync: () => (failing ? new Error('EIO on the folder') : undefined) });
    const write = sink.write('0-1', ['a'], go());
    const outcome = await Promise.race([
      write.then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((resolve) => setTimeout(() => resolve('pending'), DIRECTORY_SYNC_RETRY_MS.initial * 4)),
    ]);
    expect(outcome).toBe('pending');
    expect(jsonlFiles(dir)).toHaveLength(1);
    failing = false;
    await expect(write).resolves.toBe(jsonlFiles(dir)[0]);
  });

  it('probes the folder at most once per PROBE_CACHE_MS, concurrent calls sharing one probe', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    const events: string[] = [];
    recordFs(dir, events);
    const probes = () => events.filter((event) => event === 'file-write').length;
    let now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    await expect(Promise.all([sink.isWritable(), sink.isWritable(), sink.isWritable()])).resolves.toEqual([
      true,
      true,
      true,
    ]);
    expect(probes()).toBe(1);
    now += PROBE_CACHE_MS - 1;
    await expect(sink.isWritable()).resolves.toBe(true);
    expect(probes()).toBe(1);
    now += 2;
    await expect(sink.isWritable()).resolves.toBe(true);
    expect(probes()).toBe(2);
  });

  it('reports an unwritable folder from the next probe after the cache runs out', async () => {
    const sink = sinkAt(dir);
    await sink.onModuleInit();
    let now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    await expect(sink.isWritable()).resolves.toBe(true);
    jest.spyOn(fsp, 'mkdir').mockRejectedValue(new Error('EROFS'));
    now += PROBE_CACHE_MS;
    await expect(sink.isWritable()).resolves.toBe(false);
  });
});

describe('FileSinkService durability order', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sink-order-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `sink`; returns the fs calls it makes from then on, in order (recordFs). */
  async function recording(sink: FileSinkService): Promise<string[]> {
    await sink.onModuleInit();
    const events: string[] = [];
    recordFs(dir, events);
    return events;
  }

  it('with SINK_FSYNC: writes, fsyncs the file, commits, renames, then fsyncs the folder, and only then resolves', async () => {
    const sink = sinkAt(dir, true);
    const events = await recording(sink);
    const control = { signal: new AbortController().signal, commit: jest.fn(() => events.push('commit')) };
    await sink.write('1-2', ['x'], control).then(() => events.push('resolved'));
    expect(events).toEqual(['file-write', 'file-fsync', 'commit', 'rename', 'dir-fsync', 'resolved']);
  });

  it('uses the staging thread only without SINK_FSYNC and below STAGING_THREAD_BELOW_BATCH', async () => {
    expect(usesStagingThread({ sinkFsync: true, batchSize: 5 })).toBe(false);
    expect(usesStagingThread({ sinkFsync: false, batchSize: STAGING_THREAD_BELOW_BATCH - 1 })).toBe(true);
    expect(usesStagingThread({ sinkFsync: false, batchSize: STAGING_THREAD_BELOW_BATCH })).toBe(false);
    const sink = new FileSinkService(
      { ...readConsumerConfig({}), dataOutputDir: dir, sinkFsync: false, batchSize: 500 },
      new DisabledDedupe(),
    );
    const events = await recording(sink);
    const thread = jest.spyOn(StagingThread.prototype, 'write');
    await sink.write('1-2', ['x'], go());
    expect(thread).not.toHaveBeenCalled();
    expect(events).toEqual(['file-write', 'rename']);
  });

  it('probes the folder without the staging thread: only a batch starts it', async () => {
    const thread = jest.spyOn(StagingThread.prototype, 'write');
    const sink = sinkAt(dir, false);
    await sink.onModuleInit();
    await expect(sink.isWritable()).resolves.toBe(true);
    expect(thread).not.toHaveBeenCalled();
    await sink.write('1-2', ['x'], go());
    expect(thread).toHaveBeenCalledTimes(1);
  });

  it('writes a staged text over STAGING_THREAD_MAX_CHARS through fs/promises even with the staging thread', async () => {
    const sink = sinkAt(dir, false);
    const events = await recording(sink);
    const thread = jest.spyOn(StagingThread.prototype, 'write');
    const large = 'x'.repeat(STAGING_THREAD_MAX_CHARS);
    const name = await sink.write('1-2', [large], go());
    expect(thread).not.toHaveBeenCalled();
    expect(events).toEqual(['file-write', 'rename']);
    expect(readFileSync(join(dir, name), 'utf8')).toBe(`${large}\n`);
    // Up to the limit (the line and its newline), the thread writes it.
    await sink.write('1-2', [large.slice(1)], go());
    expect(thread).toHaveBeenCalledTimes(1);
  });

  it('without SINK_FSYNC: stages on the staging thread, fsyncs nothing, still commits right before the rename', async () => {
    const sink = sinkAt(dir, false);
    const events = await recording(sink);
    const thread = jest.spyOn(StagingThread.prototype, 'write').mockImplementation(async function (
      this: StagingThread,
      ...args
    ) {
      await stage.apply(this, args);
      events.push('file-write');
    });
    const control = { signal: new AbortController().signal, commit: jest.fn(() => events.push('commit')) };
    await sink.write('1-2', ['x'], control).then(() => events.push('resolved'));
    expect(events).toEqual(['file-write', 'commit', 'rename', 'resolved']);
    expect(thread).toHaveBeenCalledTimes(1);
  });

  it('fsyncs the folder once for writes whose renames land while one folder fsync runs', async () => {
    const sink = sinkAt(dir, true);
    const events = await recording(sink);
    await Promise.all(Array.from({ length: 20 }, (_, i) => sink.write('0-1', [`${i}`], go())));
    const dirSyncs = events.filter((event) => event === 'dir-fsync').length;
    expect(dirSyncs).toBeGreaterThanOrEqual(1);
    expect(dirSyncs).toBeLessThan(20);
    expect(events.filter((event) => event === 'rename')).toHaveLength(20);
    // Every rename is followed, somewhere later, by a folder fsync.
    expect(events.lastIndexOf('dir-fsync')).toBeGreaterThan(events.lastIndexOf('rename'));
  });
});

describe('FileSinkService and the ledger', () => {
  let dir: string;
  let dedupe: DedupeService;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sink-ledger-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    dedupe = new DedupeService({ dataOutputDir: dir });
    await dedupe.onModuleInit();
  });
  afterEach(async () => {
    await dedupe.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  const ledgerText = () =>
    readdirSync(join(dir, '.ledger'))
      .map((name) => readFileSync(join(dir, '.ledger', name), 'utf8'))
      .join('');

  it('records the batch in the ledger before the rename, and the lookup then skips its ids', async () => {
    const sink = sinkAt(dir, false, dedupe);
    await sink.onModuleInit();
    let recordedAtCommit = '';
    const name = await sink.write(
      '0-1',
      ['{"id":"a"}', '{"id":"b"}'],
      { signal: new AbortController().signal, commit: () => (recordedAtCommit = ledgerText()) },
      { ids: ['a', 'b'], exp: 0, holders: [{}] },
    );
    expect(JSON.parse(recordedAtCommit)).toMatchObject({ file: name, ids: ['a', 'b'], exp: 0 });
    expect(await dedupe.lookup(['a', 'b', 'c'])).toEqual(['skip', 'skip', 'write']);
  });

  it('a commit that throws (a delivery of a closed channel) leaves no file, nothing staged, and an abort line', async () => {
    const sink = sinkAt(dir, false, dedupe);
    await sink.onModuleInit();
    const refused = new Error('stale');
    await expect(
      sink.write(
        '0-1',
        ['{"id":"a"}'],
        {
          signal: new AbortController().signal,
          commit: () => {
            throw refused;
          },
        },
        { ids: ['a'], exp: 0, holders: [{}] },
      ),
    ).rejects.toBe(refused);
    expect(readdirSync(dir).filter((file) => file.endsWith('.jsonl'))).toEqual([]);
    expect(readdirSync(join(dir, STAGING_FOLDER))).toEqual([]);
    const lines = ledgerText()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { file?: string; abort?: string });
    expect(lines[1].abort).toBe(lines[0].file);
    expect(await dedupe.lookup(['a'])).toEqual(['write']);
  });
});

describe('compactTime', () => {
  const reference = (ms: number) => new Date(ms).toISOString().replace(/[-:.]/g, '');

  it('is the ISO time without its separators, for any millisecond of years 1 to 9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), (ms) => {
        expect(compactTime(ms)).toBe(reference(ms));
      }),
    );
  });

  it('stays right from one millisecond to the next, across seconds and the padding of 10 and 100 ms, also before 1970', () => {
    // The property above rarely draws a millisecond of exactly 100 (written 0100 by a `<= 100`).
    for (const start of [Date.UTC(2026, 11, 1, 23, 59, 59, 990), Date.UTC(2026, 11, 1, 23, 59, 59, 90), -1_010]) {
      for (let ms = start; ms < start + 25; ms++) expect(compactTime(ms)).toBe(reference(ms));
    }
  });
});
