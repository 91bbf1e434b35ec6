import { Logger } from '@nestjs/common';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEGMENT_MAX_AGE_MS, SEGMENT_MAX_RECORDS, UNSETTLED_KEEP_MS } from './dedupe.constants';
import { FakeClock } from './dedupe.testing';
import { LedgerIndex } from './ledger-index';
import { sweepForeignSegments } from './ledger-janitor';
import { formatSegmentName, localHost, parseSegmentName, writerLiveness } from './ledger-segment-name';
import { LedgerWriter } from './ledger-writer';

const HOUR = 60 * 60 * 1000;

describe('the ledger', () => {
  let dir: string;
  let clock: FakeClock;
  const writers: LedgerWriter[] = [];

  function writer(pid = 4242, host = 'host-a'): LedgerWriter {
    const made = new LedgerWriter({ dir, host, pid, clock });
    writers.push(made);
    return made;
  }

  const segments = () => readdirSync(dir).sort();
  const lines = (name: string) =>
    readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-spec-'));
    clock = new FakeClock(1_800_000_000_000);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
  });
  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.close().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  describe('segment names', () => {
    it('name the writer and the sequence, never end in .jsonl, and parse back (hostnames with dashes too)', () => {
      const name = formatSegmentName('my-host.local', 17, 1_800_000_000_000, 3);
      expect(name).toBe('my-host.local-17-1800000000000.3.log');
      expect(name.endsWith('.jsonl')).toBe(false);
      expect(parseSegmentName(name)).toEqual({
        host: 'my-host.local',
        pid: 17,
        startMs: 1_800_000_000_000,
        seq: 3,
        writer: 'my-host.local-17-1800000000000',
      });
      expect(parseSegmentName('worker-1-1_x.jsonl')).toBeUndefined();
      expect(parseSegmentName('host-1-2.3.log.tmp')).toBeUndefined();
    });

    it('a writer is alive only on this host with a running pid; another host cannot be proven gone', () => {
      const liveness = writerLiveness('here', (pid) => pid === 1);
      const on = (host: string, pid: number) => liveness(parseSegmentName(formatSegmentName(host, pid, 1, 1))!);
      expect(on('here', 1)).toBe('alive');
      expect(on('here', 2)).toBe('gone');
      expect(on('there', 1)).toBe('unknown');
      expect(writerLiveness()(parseSegmentName(formatSegmentName(localHost(), process.pid, 1, 1))!)).toBe('alive');
    });
  });

  describe('LedgerWriter', () => {
    it('appends one line per batch, before it resolves, with the ids, the expiry and the time', async () => {
      const w = writer();
      const ticket = await w.record('worker-0-1_a.jsonl', ['id-1', 'id-2'], 0);
      expect(segments()).toEqual([`host-a-4242-${clock.time}.1.log`]);
      expect(lines(segments()[0])).toEqual([
        { file: 'worker-0-1_a.jsonl', ids: ['id-1', 'id-2'], exp: 0, at: clock.time },
      ]);
      expect(ticket.file).toBe('worker-0-1_a.jsonl');
      expect(ticket.segment.holders).toBe(1);
    });

    it('puts appends that come while one is written into one write, each resolved after it', async () => {
      const w = writer();
      const tickets = await Promise.all(Array.from({ length: 50 }, (_, i) => w.record(`f${i}.jsonl`, [`id-${i}`], 0)));
      const written = lines(segments()[0]);
      expect(written.map((line) => line.file)).toEqual(tickets.map((t) => t.file));
      expect(tickets[0].segment.records).toBe(50);
    });

    it('an abort line names the file and lets go of the ticket', async () => {
      const w = writer();
      const ticket = await w.record('f.jsonl', ['a'], 0);
      await w.abort(ticket);
      expect(lines(segments()[0])[1]).toEqual({ abort: 'f.jsonl', at: clock.time });
      expect(ticket.segment.holders).toBe(0);
    });

    it('rotates after SEGMENT_MAX_AGE_MS and after SEGMENT_MAX_RECORDS records', async () => {
      const w = writer();
      await w.record('a.jsonl', ['a'], 0);
      await clock.advance(SEGMENT_MAX_AGE_MS);
      await w.record('b.jsonl', ['b'], 0);
      expect(segments().map((name) => parseSegmentName(name)?.seq)).toEqual([1, 2]);
      await Promise.all(Array.from({ length: SEGMENT_MAX_RECORDS }, (_, i) => w.record(`c${i}.jsonl`, ['c'], 0)));
      await w.record('d.jsonl', ['d'], 0);
      expect(
        segments()
          .map((name) => parseSegmentName(name)?.seq)
          .sort(),
      ).toEqual([1, 2, 3]);
    });

    it('deletes a rotated segment once every delivery recorded in it is acknowledged', async () => {
      const w = writer();
      const ticket = await w.record('a.jsonl', ['a'], 0);
      // Two deliveries contributed; the ticket hands over to them.
      w.hold(ticket.segment);
      w.hold(ticket.segment);
      w.release(ticket.segment, 'settled');
      await clock.advance(SEGMENT_MAX_AGE_MS);
      w.rotateIfDue();
      w.release(ticket.segment, 'settled');
      await w.deletions();
      expect(segments()).toHaveLength(1);
      w.release(ticket.segment, 'settled');
      await w.deletions();
      expect(segments()).toEqual([]);
    });

    it('keeps a segment with keys until they expire, and one with a lost delivery a day', async () => {
      const w = writer();
      const keyed = await w.record('k.jsonl', ['k'], clock.time + 3 * HOUR);
      w.release(keyed.segment, 'settled');
      await clock.advance(SEGMENT_MAX_AGE_MS);
      const lost = await w.record('l.jsonl', ['l'], 0);
      w.release(lost.segment, 'lost');
      await clock.advance(SEGMENT_MAX_AGE_MS);
      w.rotateIfDue();
      await w.deletions();
      expect(segments()).toHaveLength(2);
      await clock.advance(3 * HOUR);
      w.sweep();
      await w.deletions();
      expect(segments()).toEqual([lost.segment.name]);
      await clock.advance(UNSETTLED_KEEP_MS);
      w.sweep();
      await w.deletions();
      expect(segments()).toEqual([]);
    });

    it('makes the folder again if it was removed', async () => {
      const w = writer();
      rmSync(dir, { recursive: true });
      await w.record('a.jsonl', ['a'], 0);
      expect(segments()).toHaveLength(1);
    });
  });

  describe('LedgerIndex', () => {
    it('reads other writers incrementally, leaving a torn last line for later', async () => {
      const name = formatSegmentName('host-b', 99, 1, 1);
      const path = join(dir, name);
      writeFileSync(path, '{"file":"a.jsonl","ids":["1","2"],"exp":0,"at":5}\n{"file":"b.js');
      const index = new LedgerIndex(dir);
      await index.refresh();
      expect(index.recordsOf('1').map((r) => r.file)).toEqual(['a.jsonl']);
      expect(index.idCount).toBe(2);
      const offset = index.segment(name)?.offset;
      appendFileSync(path, 'onl","ids":["3"],"exp":7,"at":6}\n');
      await index.refresh();
      expect(index.segment(name)?.offset).toBeGreaterThan(offset ?? 0);
      expect(index.recordsOf('3').map((r) => r.file)).toEqual(['b.jsonl']);
      expect(index.segment(name)?.maxExp).toBe(7);
      expect(index.idCount).toBe(3);
    });

    it('marks a record aborted by a line in a later segment, keeps every record of an id written twice', async () => {
      writeFileSync(join(dir, formatSegmentName('h', 1, 1, 1)), '{"file":"a.jsonl","ids":["x"],"exp":0,"at":1}\n');
      writeFileSync(
        join(dir, formatSegmentName('h', 1, 1, 2)),
        '{"abort":"a.jsonl","at":2}\n{"file":"b.jsonl","ids":["x"],"exp":0,"at":3}\nnot json\n',
      );
      const index = new LedgerIndex(dir);
      await index.refresh();
      expect(index.recordsOf('x').map((r) => [r.file, r.aborted])).toEqual([
        ['a.jsonl', true],
        ['b.jsonl', false],
      ]);
    });

    it('forgets a segment that disappeared, with its ids', async () => {
      const name = formatSegmentName('h', 1, 1, 1);
      writeFileSync(join(dir, name), '{"file":"a.jsonl","ids":["x","y"],"exp":0,"at":1}\n');
      const index = new LedgerIndex(dir);
      await index.refresh();
      rmSync(join(dir, name));
      await index.refresh();
      expect(index.recordsOf('x')).toEqual([]);
      expect(index.idCount).toBe(0);
      expect(index.segmentCount).toBe(0);
    });

    it("indexes the api's keyed ids by seed and counter: every record of each, none of an id never recorded, all gone with their segment", async () => {
      const seedA = 'a1b2c3d4-e5f6-8a7b-9c8d-0e1f';
      const seedB = 'a1b2c3d4-e5f6-8a7b-9c8d-0e2f';
      const keyed = (seed: string, counter: number) => seed + counter.toString(16).padStart(8, '0');
      const plain = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
      const first = formatSegmentName('h', 1, 1, 1);
      const second = formatSegmentName('h', 1, 1, 2);
      writeFileSync(
        join(dir, first),
        `${JSON.stringify({ file: 'a.jsonl', ids: [keyed(seedA, 0), keyed(seedA, 9999), plain], exp: 9, at: 1 })}\n`,
      );
      writeFileSync(
        join(dir, second),
        `${JSON.stringify({ file: 'b.jsonl', ids: [keyed(seedA, 0), keyed(seedB, 0), keyed(seedA, 2 ** 32 - 1), keyed(seedA, 2 ** 31), keyed(seedA, 2 ** 31), keyed(seedB, 10).toUpperCase()], exp: 9, at: 2 })}\n`,
      );
      const index = new LedgerIndex(dir);
      await index.refresh();
      const files = (id: string) => index.recordsOf(id).map((r) => r.file);
      expect(files(keyed(seedA, 0))).toEqual(['a.jsonl', 'b.jsonl']);
      expect(files(keyed(seedA, 9999))).toEqual(['a.jsonl']);
      expect(files(keyed(seedA, 2 ** 32 - 1))).toEqual(['b.jsonl']);
      // Twice in one record: the record once per occurrence, as the ids were; one id all the same.
      expect(files(keyed(seedA, 2 ** 31))).toEqual(['b.jsonl', 'b.jsonl']);
      expect(files(keyed(seedB, 0))).toEqual(['b.jsonl']);
      // Not the api's (upper case): kept whole, found only as written.
      expect(files(keyed(seedB, 10).toUpperCase())).toEqual(['b.jsonl']);
      expect(files(keyed(seedB, 10))).toEqual([]);
      expect(files(plain)).toEqual(['a.jsonl']);
      expect(files(keyed(seedA, 1))).toEqual([]);
      expect(files(keyed(seedB, 9999))).toEqual([]);
      expect(index.idCount).toBe(7);

      rmSync(join(dir, first));
      await index.refresh();
      expect(files(keyed(seedA, 0))).toEqual(['b.jsonl']);
      expect(files(keyed(seedA, 9999))).toEqual([]);
      expect(files(plain)).toEqual([]);
      expect(index.idCount).toBe(5);
      rmSync(join(dir, second));
      await index.refresh();
      const all = [keyed(seedA, 0), keyed(seedB, 0), keyed(seedA, 2 ** 32 - 1), keyed(seedA, 2 ** 31)];
      expect([...all, keyed(seedB, 10).toUpperCase()].flatMap(files)).toEqual([]);
      expect(index.idCount).toBe(0);
    });

    it('shares one read among callers that come while one runs, and each sees what was appended before it asked', async () => {
      const name = formatSegmentName('h', 1, 1, 1);
      writeFileSync(join(dir, name), '{"file":"a.jsonl","ids":["1"],"exp":0,"at":1}\n');
      const index = new LedgerIndex(dir);
      const first = index.refresh();
      appendFileSync(join(dir, name), '{"file":"b.jsonl","ids":["2"],"exp":0,"at":1}\n');
      const second = index.refresh();
      const third = index.refresh();
      expect(third).toBe(second);
      await Promise.all([first, second]);
      expect(index.recordsOf('2')).toHaveLength(1);
    });
  });

  describe('sweeping the segments of other writers', () => {
    function foreign(host: string, pid: number, text: string, ageMs: number): string {
      const name = formatSegmentName(host, pid, 1, 1);
      writeFileSync(join(dir, name), text);
      const when = new Date(clock.time - ageMs);
      utimesSync(join(dir, name), when, when);
      return name;
    }

    it('deletes those of writers gone (or elsewhere) a day after their last write, once their keys expired', async () => {
      const liveness = writerLiveness('host-a', (pid) => pid === 1);
      const alive = foreign('host-a', 1, '{"file":"a","ids":["a"],"exp":0,"at":1}\n', 48 * HOUR);
      const recent = foreign('host-a', 2, '{"file":"b","ids":["b"],"exp":0,"at":1}\n', 23 * HOUR);
      const old = foreign('host-a', 3, '{"file":"c","ids":["c"],"exp":0,"at":1}\n', 25 * HOUR);
      const keyed = foreign('host-a', 4, `{"file":"d","ids":["d"],"exp":${clock.time + HOUR},"at":1}\n`, 25 * HOUR);
      const elsewhere = foreign('host-z', 1, '{"file":"e","ids":["e"],"exp":0,"at":1}\n', 25 * HOUR);
      const own = foreign('host-a', 5, '', 48 * HOUR);
      const forgotten: string[] = [];
      const deleted = await sweepForeignSegments({
        dir,
        ownWriter: parseSegmentName(own)!.writer,
        liveness,
        now: clock.time,
        onDeleted: (name) => forgotten.push(name),
      });
      expect(deleted.sort()).toEqual([old, elsewhere].sort());
      expect(forgotten.sort()).toEqual(deleted.sort());
      expect(existsSync(join(dir, alive)) && existsSync(join(dir, recent)) && existsSync(join(dir, keyed))).toBe(true);
      expect(existsSync(join(dir, own))).toBe(true);
    });
  });
});
