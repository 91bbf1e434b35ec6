import { Logger } from '@nestjs/common';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigValidationError, readConsumerConfig } from '@app/config';
import type { Dedupe } from '../dedupe/dedupe';
import { DedupeService } from '../dedupe/dedupe.service';
import { DisabledDedupe } from '../dedupe/disabled-dedupe';
import { DirectorySyncer } from './directory-syncer';
import { FileSinkService, SinkWriteAbortedError, STAGING_FOLDER } from './file-sink.service';

function sinkAt(dataOutputDir: string, sinkFsync = true, dedupe: Dedupe = new DisabledDedupe()): FileSinkService {
  return new FileSinkService({ ...readConsumerConfig({}), dataOutputDir, sinkFsync }, dedupe);
}

const go = () => ({ signal: new AbortController().signal, commit: jest.fn() });

describe('FileSinkService', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sink-spec-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
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
    await expect(sink.write('0-1', ['x'], { signal: controller.signal, commit })).rejects.toBeInstanceOf(
      SinkWriteAbortedError,
    );
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

  it('makes the folder when missing, and recreates it when removed under it', async () => {
    const nested = join(dir, 'a', 'b');
    const sink = sinkAt(nested);
    await sink.onModuleInit();
    rmSync(nested, { recursive: true });
    const name = await sink.write('0-1', ['x'], go());
    expect(readdirSync(nested)).toContain(name);
  });

  it('refuses to start on a folder it cannot write, naming DATA_OUTPUT_DIR', async () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, '');
    const sink = sinkAt(file);
    await expect(sink.onModuleInit()).rejects.toThrow(ConfigValidationError);
    await expect(sink.onModuleInit()).rejects.toThrow(/DATA_OUTPUT_DIR/);
    await expect(sink.isWritable()).resolves.toBe(false);
  });

  it('removes staged files of dead writers on this host and old ones of other hosts, and keeps the rest', async () => {
    const staging = join(dir, STAGING_FOLDER);
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    await sinkAt(dir).onModuleInit();
    const deadPid = 2 ** 22 + 12345;
    writeFileSync(join(staging, `${host}~${deadPid}~1.tmp`), 'half');
    writeFileSync(join(staging, `${host}~${process.pid}~7.tmp`), 'half');
    writeFileSync(join(staging, 'other-host~1~1.tmp'), 'live');
    writeFileSync(join(staging, 'old-host~1~1.tmp'), 'stale');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(staging, 'old-host~1~1.tmp'), twoHoursAgo, twoHoursAgo);
    await sinkAt(dir).onModuleInit();
    expect(readdirSync(staging)).toEqual(['other-host~1~1.tmp']);
  });
});

describe('DirectorySyncer', () => {
  it('shares one fsync among callers that arrive while one runs, and always starts one after the call', async () => {
    const started: Array<() => void> = [];
    const syncer = new DirectorySyncer('/x', () => new Promise<void>((resolve) => started.push(resolve)));
    const first = syncer.sync();
    const second = syncer.sync();
    const third = syncer.sync();
    expect(started).toHaveLength(1);
    started[0]();
    await first;
    await new Promise(setImmediate);
    expect(started).toHaveLength(2);
    started[1]();
    await Promise.all([second, third]);
    expect(started).toHaveLength(2);
  });
});

describe('FileSinkService fault seam', () => {
  it('FAULT_SINK_STALL_EVERY stalls every Nth write until it is abandoned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-stall-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    try {
      const sink = new FileSinkService(
        { ...readConsumerConfig({}), dataOutputDir: dir, faultSinkStallEvery: 2 },
        new DisabledDedupe(),
      );
      await sink.onModuleInit();
      await sink.write('0-1', ['a'], go());
      const controller = new AbortController();
      const stalled = sink.write('0-1', ['b'], { signal: controller.signal, commit: jest.fn() });
      await expect(Promise.race([stalled, new Promise((r) => setTimeout(() => r('still waiting'), 50))])).resolves.toBe(
        'still waiting',
      );
      controller.abort();
      await expect(stalled).rejects.toBeInstanceOf(SinkWriteAbortedError);
      expect(readdirSync(dir).filter((file) => file.endsWith('.jsonl'))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      jest.restoreAllMocks();
    }
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
