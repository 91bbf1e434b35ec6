import { Logger } from '@nestjs/common';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDEMPOTENCY_EXPIRES_HEADER } from '@app/contracts';
import { PENDING_RECORD_WAIT_MS } from './dedupe.constants';
import { DedupeService } from './dedupe.service';
import { FakeClock } from './dedupe.testing';
import { DisabledDedupe } from './disabled-dedupe';
import { formatSegmentName, localHost } from './ledger-segment-name';

const OTHER_PID = 777_777;

describe('DedupeService', () => {
  let dir: string;
  let clock: FakeClock;
  let alive: Set<number>;
  let dedupe: DedupeService;

  function make(): DedupeService {
    const service = new DedupeService({ dataOutputDir: dir }, clock, (name) =>
      name.host !== localHost() ? 'unknown' : alive.has(name.pid) ? 'alive' : 'gone',
    );
    return service;
  }

  /** Another consumer's record, as its ledger line. */
  function foreignRecord(file: string, ids: string[], at = clock.time, pid = OTHER_PID): string {
    const path = join(dir, '.ledger', formatSegmentName(localHost(), pid, 1, 1));
    appendFileSync(path, `${JSON.stringify({ file, ids, exp: 0, at })}\n`);
    return path;
  }

  const complete = (file: string) => writeFileSync(join(dir, file), '{}\n');

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dedupe-spec-'));
    clock = new FakeClock(1_800_000_000_000);
    alive = new Set([process.pid]);
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    dedupe = make();
    await dedupe.onModuleInit();
  });
  afterEach(async () => {
    await dedupe.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  describe('which deliveries are looked up', () => {
    it('only redelivered or keyed ones; the expiry comes from the header', () => {
      const facts = (redelivered: boolean, headers?: Record<string, unknown>) => ({
        fields: { redelivered },
        properties: { headers },
      });
      expect(dedupe.needsLookup(facts(false))).toBe(false);
      expect(dedupe.needsLookup(facts(false, { 'x-shards-count': 5 }))).toBe(false);
      expect(dedupe.needsLookup(facts(true))).toBe(true);
      expect(dedupe.needsLookup(facts(false, { [IDEMPOTENCY_EXPIRES_HEADER]: 123 }))).toBe(true);
      expect(dedupe.expiresOf(facts(false, { [IDEMPOTENCY_EXPIRES_HEADER]: 123 }))).toBe(123);
      expect(dedupe.expiresOf(facts(false, { [IDEMPOTENCY_EXPIRES_HEADER]: 'soon' }))).toBe(0);
      expect(dedupe.expiresOf(facts(true))).toBe(0);
    });
  });

  describe('lookup', () => {
    it('skips an id whose record names a file that exists; writes one never recorded', async () => {
      await dedupe.record('w-1.jsonl', ['a', 'b'], 0);
      complete('w-1.jsonl');
      expect(await dedupe.lookup(['a', 'b', 'c'])).toEqual(['skip', 'skip', 'write']);
    });

    it("reads another writer's records, only those appended so far, then what came since", async () => {
      const path = foreignRecord('o-1.jsonl', ['x']);
      complete('o-1.jsonl');
      expect(await dedupe.lookup(['x', 'y'])).toEqual(['skip', 'write']);
      appendFileSync(path, `${JSON.stringify({ file: 'o-2.jsonl', ids: ['y'], exp: 0, at: clock.time })}\n`);
      complete('o-2.jsonl');
      expect(await dedupe.lookup(['y'])).toEqual(['skip']);
    });

    it('writes again an id whose file is missing and whose writer is gone: a record never suppresses a write alone', async () => {
      foreignRecord('never-renamed.jsonl', ['x']);
      const started = clock.time;
      expect(await dedupe.lookup(['x'])).toEqual(['write']);
      expect(clock.time).toBe(started);
    });

    it('writes at once when the missing file was aborted, or its live writer recorded it long ago', async () => {
      alive.add(OTHER_PID);
      const path = foreignRecord('aborted.jsonl', ['x']);
      appendFileSync(path, '{"abort":"aborted.jsonl","at":1}\n');
      foreignRecord('stale.jsonl', ['y'], clock.time - PENDING_RECORD_WAIT_MS);
      const started = clock.time;
      expect(await dedupe.lookup(['x', 'y'])).toEqual(['write', 'write']);
      expect(clock.time).toBe(started);
    });

    it('waits for a live writer renaming its file right now, then skips', async () => {
      alive.add(OTHER_PID);
      foreignRecord('renaming.jsonl', ['x']);
      clock.at(clock.time + 300, () => complete('renaming.jsonl'));
      const started = clock.time;
      expect(await dedupe.lookup(['x'])).toEqual(['skip']);
      expect(clock.time - started).toBeGreaterThanOrEqual(300);
      expect(clock.time - started).toBeLessThan(PENDING_RECORD_WAIT_MS);
    });

    it('waits for a live writer that then aborts, then writes', async () => {
      alive.add(OTHER_PID);
      const path = foreignRecord('gives-up.jsonl', ['x']);
      clock.at(clock.time + 200, () => appendFileSync(path, '{"abort":"gives-up.jsonl","at":2}\n'));
      const started = clock.time;
      expect(await dedupe.lookup(['x'])).toEqual(['write']);
      expect(clock.time - started).toBeLessThan(PENDING_RECORD_WAIT_MS);
    });

    it('gives up waiting PENDING_RECORD_WAIT_MS after the record and writes', async () => {
      alive.add(OTHER_PID);
      foreignRecord('stuck.jsonl', ['x']);
      const started = clock.time;
      expect(await dedupe.lookup(['x'])).toEqual(['write']);
      expect(clock.time - started).toBeGreaterThanOrEqual(PENDING_RECORD_WAIT_MS);
      expect(clock.time - started).toBeLessThan(PENDING_RECORD_WAIT_MS + 100);
    });

    it('skips an id written twice before when either file exists, even after an aborted attempt', async () => {
      const first = await dedupe.record('first.jsonl', ['x'], 0);
      await dedupe.abort(first);
      await dedupe.record('second.jsonl', ['x'], 0);
      complete('second.jsonl');
      expect(await dedupe.lookup(['x'])).toEqual(['skip']);
    });
  });

  describe('admit and the in-flight ids', () => {
    it('a second copy of an id being written waits, and is done once the first is written', async () => {
      const first = await dedupe.admit(['a', 'b']);
      expect(first).toEqual({ write: ['a', 'b'], done: [] });
      let second: unknown;
      const admitted = dedupe.admit(['b', 'c']).then((result) => (second = result));
      await new Promise((resolve) => setImmediate(resolve));
      expect(second).toBeUndefined();
      dedupe.settle(['a', 'b'], 'written');
      expect(await admitted).toEqual({ write: ['c'], done: ['b'] });
      expect(dedupe.inFlight.size).toBe(1);
    });

    it('takes over an id whose first copy was discarded', async () => {
      await dedupe.admit(['a']);
      const admitted = dedupe.admit(['a']);
      dedupe.settle(['a'], 'discarded');
      expect(await admitted).toEqual({ write: ['a'], done: [] });
    });

    it('counts an id already in a complete file as done without claiming it', async () => {
      await dedupe.record('w.jsonl', ['a'], 0);
      complete('w.jsonl');
      expect(await dedupe.admit(['a', 'a'])).toEqual({ write: [], done: ['a'] });
      expect(dedupe.inFlight.size).toBe(0);
    });

    it('writes everything if the ledger cannot be read: a copy, never a loss', async () => {
      rmSync(join(dir, '.ledger'), { recursive: true });
      writeFileSync(join(dir, '.ledger'), 'not a folder');
      expect(await dedupe.admit(['a'])).toEqual({ write: ['a'], done: [] });
    });
  });

  describe('retention', () => {
    it('deletes on start what a writer gone left more than a day ago, and own segments at a clean shutdown', async () => {
      const stale = foreignRecord('old.jsonl', ['old'], 1);
      const { utimesSync } = await import('node:fs');
      const dayAndMore = new Date(clock.time - 25 * 60 * 60 * 1000);
      utimesSync(stale, dayAndMore, dayAndMore);
      const ticket = await dedupe.record('mine.jsonl', ['m'], 0);
      const delivery = {};
      dedupe.complete(ticket, [delivery]);
      dedupe.release(delivery, 'settled');
      await dedupe.sweep();
      expect(readdirSync(join(dir, '.ledger'))).toHaveLength(1);
      await dedupe.onApplicationShutdown();
      expect(readdirSync(join(dir, '.ledger'))).toEqual([]);
    });
  });

  describe('holding records for the deliveries not yet settled', () => {
    it('keeps a segment while a delivery whose entries it records is unsettled, deletes it after', async () => {
      const [a, b] = [{}, {}];
      const first = await dedupe.record('1.jsonl', ['x'], 0);
      dedupe.complete(first, [a, b]);
      const second = await dedupe.record('2.jsonl', ['y'], 0);
      dedupe.complete(second, [a, a]);
      expect(first.segment).toBe(second.segment);
      dedupe.writer.rotateIfDue();
      await clock.advance(60_000);
      dedupe.writer.rotateIfDue();
      dedupe.release(a, 'settled');
      await dedupe.writer.deletions();
      expect(readdirSync(join(dir, '.ledger'))).toHaveLength(1);
      dedupe.release(b, 'settled');
      await dedupe.writer.deletions();
      expect(readdirSync(join(dir, '.ledger'))).toEqual([]);
    });

    it('keeps a day the records of a delivery lost before its ack, and of one settled before its batch completed', async () => {
      const [lost, early] = [{}, {}];
      const ticket = await dedupe.record('1.jsonl', ['x'], 0);
      dedupe.release(early, 'lost');
      dedupe.complete(ticket, [lost, early]);
      dedupe.release(lost, 'lost');
      await clock.advance(60_000);
      dedupe.writer.rotateIfDue();
      await dedupe.writer.deletions();
      expect(readdirSync(join(dir, '.ledger'))).toHaveLength(1);
      await clock.advance(24 * 60 * 60 * 1000);
      await dedupe.sweep();
      await dedupe.writer.deletions();
      expect(readdirSync(join(dir, '.ledger'))).toEqual([]);
    });
  });

  it('DisabledDedupe looks nothing up and records nothing', async () => {
    const disabled = new DisabledDedupe();
    expect(disabled.needsLookup()).toBe(false);
    expect(await disabled.admit(['a'])).toEqual({ write: ['a'], done: [] });
    await disabled.record('x.jsonl');
    expect(readdirSync(join(dir, '.ledger'))).toEqual([]);
  });
});
