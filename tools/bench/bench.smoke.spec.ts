import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TempDir, tempDir } from '@app/testing';
import { ROOT } from './build';
import { Cleanup } from './cleanup';
import { rows, summarise, summaryTable, targetsFor, writeReport } from './report';
import { type BenchResults, runBench } from './run';

/**
 * `npm run bench` with tiny sizes (a second or less per phase, a few hundred entries), against the
 * real broker and the built apps: every code path runs and every row comes out. The figures of
 * such a run mean nothing, so only their presence is checked.
 */
describe('npm run bench, smoke run', () => {
  const cleanup = new Cleanup();
  let out: TempDir;
  let results: BenchResults;
  const lines: string[] = [];

  beforeAll(async () => {
    out = await tempDir('bench-smoke');
    results = await runBench(
      {
        phases: ['ingest', 'drain', 'e2e'],
        rounds: 1,
        shardsCount: 5,
        ingest: { sizes: [1, 100, 1000], connections: 20, warmupSeconds: 0, durationSeconds: 0.5 },
        drain: {
          entries: 300,
          cases: [
            { fsync: true, batchSize: 5 },
            { fsync: true, batchSize: 500 },
            { fsync: false, batchSize: 5 },
            { fsync: false, batchSize: 500 },
          ],
        },
        endToEnd: { entriesPerSecond: 200, entriesPerRequest: 10, durationSeconds: 0.5 },
        log: (line) => lines.push(line),
      },
      cleanup,
      'bench smoke test',
    );
  }, 120_000);

  afterAll(async () => {
    await cleanup.runAll();
    await out?.remove();
  });

  it('prints a table with every row, ours beside the limit', () => {
    const table = rows(summarise(results), targetsFor(1000));
    expect(table.map((row) => row.key)).toEqual([
      'ingest-1-rate',
      'ingest-1-latency',
      'ingest-100-rate',
      'ingest-100-latency',
      'ingest-1000-rate',
      'ingest-1000-latency',
      'drain-fsync-5-rate',
      'drain-fsync-500-rate',
      'drain-nofsync-5-rate',
      'drain-nofsync-500-rate',
      'e2e-latency',
      'rss',
    ]);
    for (const row of table) {
      expect(row.ours).not.toBe('');
      expect(row.limit).not.toBe('');
    }
    const text = summaryTable(table);
    for (const row of table) expect(text).toContain(row.figure);
    expect(results.ingest.every((f) => f.non2xx === 0 && f.errors === 0 && f.entriesPerSecond > 0)).toBe(true);
    expect(results.endToEnd.map((f) => f.failedRequests)).toEqual([0, 0]);
    expect(results.endToEnd.every((f) => f.entries > 0 && f.p99Ms >= f.p50Ms)).toBe(true);
  });

  it('writes the page and the SVG chart where it is told, with the machine and the versions', async () => {
    const markdownPath = join(out.path, 'benchmarks.md');
    const svgPath = join(out.path, 'benchmarks.svg');
    await writeReport(results, targetsFor(1000), { markdownPath, svgPath });
    const markdown = await readFile(markdownPath, 'utf8');
    expect(markdown).toContain('![throughput as a share of the limit, and latency](benchmarks.svg)');
    expect(markdown).toMatch(/\d+ cores \(/);
    expect(markdown).toContain(`Node ${process.version}`);
    expect(markdown).toMatch(/RabbitMQ \d+\.\d+/);
    expect(markdown).toContain('`bench smoke test`');
    expect(markdown).not.toMatch(/\{\{\w+\}\}/);
    for (const row of rows(summarise(results), targetsFor(1000))) expect(markdown).toContain(`| ${row.figure} `);
    expect(markdown).toContain('## Hot-path tricks');
    const svg = await readFile(svgPath, 'utf8');
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('ingest, 100/request');
    expect(svg).toContain('end to end, 201 to file');

    // A second write regenerates the page and keeps its hand-written section as it was edited.
    const edited = markdown
      .replace('## Hot-path tricks', '## Hot-path tricks\n\nKept by hand.')
      .replace('## What it measures', '## Stale heading');
    await writeFile(markdownPath, edited);
    await writeReport(results, targetsFor(1000), { markdownPath, svgPath });
    const rewritten = await readFile(markdownPath, 'utf8');
    expect(rewritten).toContain('## Hot-path tricks\n\nKept by hand.');
    expect(rewritten).toContain('## What it measures');
    expect(rewritten).not.toContain('## Stale heading');
  });

  it('leaves nothing behind: the build copy is gone and nothing is left to clean up', () => {
    expect(existsSync(join(ROOT, '.tmp', `bench-${process.pid}`))).toBe(false);
    expect(cleanup.pending).toBe(0);
    expect(lines.some((line) => line.startsWith('ingest:'))).toBe(true);
  });
});
