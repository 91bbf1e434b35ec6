/**
 * The results of a run as numbers (means over rounds, ours beside the limit), as the table the
 * command prints, as the Markdown section of docs/benchmarks.md and as its SVG chart.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { chartSvg } from './chart';
import { type DrainFigures, drainLabel } from './drain';
import type { IngestFigures } from './ingest';
import type { BenchResults } from './run';

/** What the issue asks of this machine; the end-to-end bound follows the consumer's BATCH_FLUSH_MS. */
export function targetsFor(batchFlushMs: number): Targets {
  return { ingestRatio: 0.7, ingestSize: 100, drainRatio: 0.8, endToEndP99Ms: batchFlushMs + 100, rssMb: 256 };
}

export interface Targets {
  /** Ingest at 100 entries per request, as a share of the baseline's entries/s. */
  ingestRatio: number;
  ingestSize: number;
  /** Every drain case, as a share of the plain loop's entries/s. */
  drainRatio: number;
  /** End-to-end p99 must stay under this (BATCH_FLUSH_MS + 100 ms). */
  endToEndP99Ms: number;
  /** The consumer's peak RSS while draining must stay under this. */
  rssMb: number;
}

interface Spread {
  mean: number;
  min: number;
  max: number;
}

export interface IngestSummary {
  entriesPerRequest: number;
  rounds: number;
  ours: { rate: number; p50: number; p99: number; cpuUs?: number };
  limit: { rate: number; p50: number; p99: number; cpuUs?: number };
  /** Mean of ours / mean of the limit. */
  ratio: number;
  /** The ratio of each round, lowest and highest. */
  roundRatios: Spread;
  failures: number;
}

export interface DrainSummary {
  fsync: boolean;
  batchSize: number;
  rounds: number;
  ours: { rate: number; rssMb: number };
  limit: { rate: number; rssMb: number };
  ratio: number;
  roundRatios: Spread;
}

export interface Summary {
  ingest: IngestSummary[];
  drain: DrainSummary[];
  endToEnd?: {
    ours: { p50: number; p99: number; max: number; entries: number; failed: number };
    limit: { p50: number; p99: number; max: number; entries: number; failed: number };
  };
  /** The consumer's and the plain loop's highest peak RSS over every drain run. */
  rss?: { oursMb: number; limitMb: number };
}

export interface Row {
  /** Stable name of the row, e.g. `ingest-100-rate`. */
  key: string;
  figure: string;
  ours: string;
  limit: string;
  ratio: string;
  target: string;
  verdict: 'met' | 'missed' | '';
}

function spread(values: number[]): Spread {
  return {
    mean: mean(values),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}

function meanOf<T>(items: T[], pick: (item: T) => number | undefined): number | undefined {
  const values = items.map(pick).filter((value): value is number => value !== undefined);
  return values.length === 0 ? undefined : mean(values);
}

/** Ours over the limit for each round where both ran. */
function perRound<T extends { round?: number }>(ours: T[], limit: T[], value: (item: T) => number): number[] {
  return ours.flatMap((item) => {
    const other = limit.find((candidate) => candidate.round === item.round);
    return other === undefined ? [] : [value(item) / value(other)];
  });
}

function summariseIngest(figures: IngestFigures[]): IngestSummary[] {
  const sizes = [...new Set(figures.map((f) => f.entriesPerRequest))];
  return sizes.flatMap((size) => {
    const ours = figures.filter((f) => f.entriesPerRequest === size && f.target === 'api');
    const limit = figures.filter((f) => f.entriesPerRequest === size && f.target === 'baseline');
    if (ours.length === 0 || limit.length === 0) return [];
    const side = (runs: IngestFigures[]) => ({
      rate: mean(runs.map((f) => f.entriesPerSecond)),
      p50: mean(runs.map((f) => f.p50Ms)),
      p99: mean(runs.map((f) => f.p99Ms)),
      cpuUs: meanOf(runs, (f) => f.cpuUsPerRequest),
    });
    const oursSide = side(ours);
    const limitSide = side(limit);
    return [
      {
        entriesPerRequest: size,
        rounds: ours.length,
        ours: oursSide,
        limit: limitSide,
        ratio: oursSide.rate / limitSide.rate,
        roundRatios: spread(perRound(ours, limit, (f) => f.entriesPerSecond)),
        failures: [...ours, ...limit].reduce((sum, f) => sum + f.non2xx + f.errors, 0),
      },
    ];
  });
}

function summariseDrain(figures: DrainFigures[]): DrainSummary[] {
  const cases = [...new Map(figures.map((f) => [`${f.fsync}:${f.batchSize}`, f])).values()];
  return cases.flatMap(({ fsync, batchSize }) => {
    const of = (target: string) =>
      figures.filter((f) => f.target === target && f.fsync === fsync && f.batchSize === batchSize);
    const ours = of('consumer');
    const limit = of('baseline');
    if (ours.length === 0 || limit.length === 0) return [];
    const side = (runs: DrainFigures[]) => ({
      rate: mean(runs.map((f) => f.entriesPerSecond)),
      rssMb: Math.max(...runs.map((f) => f.peakRssMb)),
    });
    const oursSide = side(ours);
    const limitSide = side(limit);
    return [
      {
        fsync,
        batchSize,
        rounds: ours.length,
        ours: oursSide,
        limit: limitSide,
        ratio: oursSide.rate / limitSide.rate,
        roundRatios: spread(perRound(ours, limit, (f) => f.entriesPerSecond)),
      },
    ];
  });
}

export function summarise(results: BenchResults): Summary {
  const drain = summariseDrain(results.drain);
  const ours = results.endToEnd.find((f) => f.target === 'pipeline');
  const limit = results.endToEnd.find((f) => f.target === 'baseline');
  const side = (f: NonNullable<typeof ours>) => ({
    p50: f.p50Ms,
    p99: f.p99Ms,
    max: f.maxMs,
    entries: f.entries,
    failed: f.failedRequests,
  });
  return {
    ingest: summariseIngest(results.ingest),
    drain,
    endToEnd: ours && limit ? { ours: side(ours), limit: side(limit) } : undefined,
    rss:
      drain.length === 0
        ? undefined
        : {
            oursMb: Math.max(...drain.map((d) => d.ours.rssMb)),
            limitMb: Math.max(...drain.map((d) => d.limit.rssMb)),
          },
  };
}

function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '?';
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return '?';
  return value < 10 ? value.toFixed(1) : int(value);
}

function ratio(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : '?';
}

function verdict(met: boolean): 'met' | 'missed' {
  return met ? 'met' : 'missed';
}

/**
 * One row per figure. Throughput ratios are ours / the limit (1 is as fast as the limit); latency
 * and memory ratios are ours / the limit too (1 is as low as the limit, above 1 is slower).
 */
export function rows(summary: Summary, targets: Targets): Row[] {
  const out: Row[] = [];
  for (const s of summary.ingest) {
    const size = `${s.entriesPerRequest.toLocaleString('en-US')} ${s.entriesPerRequest === 1 ? 'entry' : 'entries'}/request`;
    const targeted = s.entriesPerRequest === targets.ingestSize;
    out.push({
      key: `ingest-${s.entriesPerRequest}-rate`,
      figure: `ingest, ${size}: entries/s`,
      ours: int(s.ours.rate),
      limit: int(s.limit.rate),
      ratio: ratio(s.ratio),
      target: targeted ? `≥ ${targets.ingestRatio.toFixed(2)}` : '',
      verdict: targeted ? verdict(s.ratio >= targets.ingestRatio) : '',
    });
    out.push({
      key: `ingest-${s.entriesPerRequest}-latency`,
      figure: `ingest, ${size}: p50 / p99 ms`,
      ours: `${ms(s.ours.p50)} / ${ms(s.ours.p99)}`,
      limit: `${ms(s.limit.p50)} / ${ms(s.limit.p99)}`,
      ratio: `${ratio(s.ours.p50 / s.limit.p50)} / ${ratio(s.ours.p99 / s.limit.p99)}`,
      target: '',
      verdict: '',
    });
  }
  for (const d of summary.drain) {
    out.push({
      key: `drain-${d.fsync ? 'fsync' : 'nofsync'}-${d.batchSize}-rate`,
      figure: `drain, ${drainLabel(d)}: entries/s`,
      ours: int(d.ours.rate),
      limit: int(d.limit.rate),
      ratio: ratio(d.ratio),
      target: `≥ ${targets.drainRatio.toFixed(2)}`,
      verdict: verdict(d.ratio >= targets.drainRatio),
    });
  }
  if (summary.endToEnd) {
    const { ours, limit } = summary.endToEnd;
    out.push({
      key: 'e2e-latency',
      figure: 'end to end, 201 to file: p50 / p99 ms',
      ours: `${ms(ours.p50)} / ${ms(ours.p99)}`,
      limit: `${ms(limit.p50)} / ${ms(limit.p99)}`,
      ratio: `${ratio(ours.p50 / limit.p50)} / ${ratio(ours.p99 / limit.p99)}`,
      target: `p99 < ${int(targets.endToEndP99Ms)}`,
      verdict: verdict(ours.p99 < targets.endToEndP99Ms && ours.failed === 0),
    });
  }
  if (summary.rss) {
    out.push({
      key: 'rss',
      figure: 'peak RSS while draining: MB',
      ours: int(summary.rss.oursMb),
      limit: int(summary.rss.limitMb),
      ratio: ratio(summary.rss.oursMb / summary.rss.limitMb),
      target: `< ${int(targets.rssMb)}`,
      verdict: verdict(summary.rss.oursMb < targets.rssMb),
    });
  }
  return out;
}

const HEADER = ['figure', 'ours', 'limit', 'of limit', 'target', ''];

function cells(row: Row): string[] {
  return [row.figure, row.ours, row.limit, row.ratio, row.target, row.verdict];
}

/** The table as aligned plain text, for the terminal. */
export function textTable(table: Row[]): string {
  const lines = [HEADER, ...table.map(cells)];
  const widths = HEADER.map((_, column) => Math.max(...lines.map((line) => line[column].length)));
  const format = (line: string[]) =>
    line
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  return [
    format(HEADER),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...table.slice().map((row) => format(cells(row))),
  ].join('\n');
}

/** The table as Markdown. */
export function markdownTable(table: Row[]): string {
  const line = (values: string[]) => `| ${values.join(' | ')} |`;
  return [
    line(HEADER),
    line(['---', '---:', '---:', '---:', '---:', '---']),
    ...table.map((row) =>
      line(cells(row).map((cell, column) => (column === 5 && cell === 'missed' ? '**missed**' : cell))),
    ),
  ].join('\n');
}

const START = '<!-- bench:results:start (written by `npm run bench`; edit outside these markers) -->';
const END = '<!-- bench:results:end -->';

function describeRun(results: BenchResults): string[] {
  const { environment: env, options } = results;
  const packages = Object.entries(env.packages)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  const { ingest, drain, endToEnd } = options;
  return [
    `Command: \`${env.command}\`, ${env.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ` +
      `${(results.seconds / 60).toFixed(1)} minutes.`,
    '',
    `Machine: ${env.cores} cores (${env.cpuModel}), ${env.memoryGb} GB, Linux ${env.kernel}; ` +
      `Node ${env.node}; RabbitMQ ${env.rabbitmq} on the same host. Packages: ${packages}.`,
    '',
    `Sizes: ${options.rounds} round(s) of ingest and drain, order alternating. ` +
      `Ingest: ${ingest.sizes.join(', ')} entries per request, ${ingest.connections} connections, ` +
      `${ingest.warmupSeconds} s warm-up + ${ingest.durationSeconds} s per server and size. ` +
      `Drain: a backlog of ${drain.entries.toLocaleString('en-US')} entries per run. ` +
      `End to end: ${endToEnd.entriesPerSecond} entries/s as ${endToEnd.entriesPerSecond / endToEnd.entriesPerRequest} ` +
      `requests/s of ${endToEnd.entriesPerRequest} entries for ${endToEnd.durationSeconds} s. ` +
      `${options.shardsCount} shards.`,
  ];
}

function detailTables(results: BenchResults): string[] {
  const out: string[] = [];
  if (results.ingest.length > 0) {
    out.push(
      '',
      'Ingest, every run:',
      '',
      '| round | server | entries/request | entries/s | p50 / p99 ms | CPU µs/request | non-2xx, errors |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
      ...results.ingest.map(
        (f) =>
          `| ${f.round} | ${f.target} | ${f.entriesPerRequest} | ${int(f.entriesPerSecond)} | ${ms(f.p50Ms)} / ${ms(f.p99Ms)} | ` +
          `${f.cpuUsPerRequest === undefined ? '?' : int(f.cpuUsPerRequest)} | ${f.non2xx}, ${f.errors} |`,
      ),
    );
  }
  if (results.drain.length > 0) {
    out.push(
      '',
      'Drain, every run (entries/s over the span from the first to the last completed file):',
      '',
      '| round | writer | case | entries/s | wall s (boot included) | peak RSS MB |',
      '| ---: | --- | --- | ---: | ---: | ---: |',
      ...results.drain.map(
        (f) =>
          `| ${f.round ?? ''} | ${f.target === 'consumer' ? 'consumer' : 'plain loop'} | ${drainLabel(f)} | ` +
          `${int(f.entriesPerSecond)} | ${f.wallSeconds.toFixed(1)} | ${int(f.peakRssMb)} |`,
      ),
    );
  }
  if (results.endToEnd.length > 0) {
    out.push(
      '',
      'End to end:',
      '',
      '| writer | entries | p50 / p99 / max ms | failed requests | entries/s sent |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...results.endToEnd.map(
        (f) =>
          `| ${f.target === 'pipeline' ? 'api + consumer' : 'baseline api + plain loop'} | ${int(f.entries)} | ` +
          `${ms(f.p50Ms)} / ${ms(f.p99Ms)} / ${ms(f.maxMs)} | ${f.failedRequests} | ${int(f.sentPerSecond)} |`,
      ),
    );
  }
  return out;
}

/** The generated part of docs/benchmarks.md. */
export function markdownSection(results: BenchResults, targets: Targets, svgLink: string): string {
  const table = rows(summarise(results), targets);
  return [
    START,
    '',
    ...describeRun(results),
    '',
    `![throughput as a share of the limit, and latency](${svgLink})`,
    '',
    markdownTable(table),
    ...detailTables(results),
    '',
    END,
  ].join('\n');
}

/**
 * Writes the results into `markdownPath` between the markers, keeping what is around them (the
 * hand-written analysis), or as a new file; and the chart to `svgPath`.
 */
export async function writeReport(
  results: BenchResults,
  targets: Targets,
  { markdownPath, svgPath }: { markdownPath: string; svgPath: string },
): Promise<void> {
  const summary = summarise(results);
  const env = results.environment;
  const caption = `${env.cores} cores (${env.cpuModel}), Node ${env.node}, RabbitMQ ${env.rabbitmq}, ${env.date.slice(0, 10)}`;
  await mkdir(dirname(svgPath), { recursive: true });
  await mkdir(dirname(markdownPath), { recursive: true });
  await writeFile(svgPath, chartSvg(summary, targets, caption));
  const section = markdownSection(results, targets, relative(dirname(markdownPath), svgPath));
  const existing = await readFile(markdownPath, 'utf8').catch(() => undefined);
  const start = existing?.indexOf(START) ?? -1;
  const end = existing?.indexOf(END) ?? -1;
  const document =
    existing !== undefined && start !== -1 && end > start
      ? existing.slice(0, start) + section + existing.slice(end + END.length)
      : `# Benchmarks\n\n${section}\n`;
  await writeFile(markdownPath, document);
}
