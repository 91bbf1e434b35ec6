/**
 * The results of a run as numbers (means over rounds, ours beside the limit), as the table the
 * command prints, and as docs/benchmarks.md (from benchmarks.template.md, keeping the
 * hand-written section of the document it replaces) with its SVG chart.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { chartSvg } from './chart';
import { drainLabel } from './drain';
import type { BenchResults } from './run';

/** What the issue asks of this machine; the end-to-end bound follows the consumer's BATCH_FLUSH_MS. */
export function targetsFor(batchFlushMs: number): Targets {
  return { ingestRatio: 0.7, ingestSize: 100, drainRatio: 0.8, endToEndP99Ms: batchFlushMs + 100, rssMb: 256 };
}

export interface Targets {
  /** Ingest at `ingestSize` entries per request, as a share of the baseline's entries/s. */
  ingestRatio: number;
  ingestSize: number;
  /** Every drain case, as a share of the plain loop's entries/s. */
  drainRatio: number;
  /** End-to-end p99 must stay under this (BATCH_FLUSH_MS + 100 ms). */
  endToEndP99Ms: number;
  /** The consumer's peak RSS while draining must stay under this. */
  rssMb: number;
}

interface Side {
  rate: number;
  p50: number;
  p99: number;
  cpuUs?: number;
  rssMb: number;
}

/** One ingest size or drain case: ours and the limit (means over rounds) and ours / the limit. */
export interface Comparison {
  rounds: number;
  ours: Side;
  limit: Side;
  ratio: number;
}

export interface Summary {
  ingest: Array<Comparison & { entriesPerRequest: number }>;
  drain: Array<Comparison & { fsync: boolean; batchSize: number }>;
  endToEnd?: { ours: { p50: number; p99: number; failed: number }; limit: { p50: number; p99: number } };
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

const mean = (values: number[]) =>
  values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;

/** What one run contributes to its side; absent figures are NaN. */
type Figures = Partial<Side> & { rate: number };

function side(runs: Figures[]): Side {
  const cpu = runs.flatMap((f) => (f.cpuUs === undefined ? [] : [f.cpuUs]));
  return {
    rate: mean(runs.map((f) => f.rate)),
    p50: mean(runs.map((f) => f.p50 ?? Number.NaN)),
    p99: mean(runs.map((f) => f.p99 ?? Number.NaN)),
    cpuUs: cpu.length === 0 ? undefined : mean(cpu),
    rssMb: Math.max(...runs.map((f) => f.rssMb ?? Number.NaN)),
  };
}

/** Ours beside the limit for each group of runs (a request size, a drain case) in which both ran. */
function compare<F extends { target: string }, K>(
  figures: F[],
  ours: string,
  keyOf: (f: F) => string,
  figuresOf: (f: F) => Figures,
  describe: (f: F) => K,
): Array<Comparison & K> {
  const groups = [...new Set(figures.map(keyOf))];
  return groups.flatMap((key) => {
    const group = figures.filter((f) => keyOf(f) === key);
    const mine = group.filter((f) => f.target === ours).map(figuresOf);
    const limit = group.filter((f) => f.target === 'baseline').map(figuresOf);
    if (mine.length === 0 || limit.length === 0) return [];
    const [o, l] = [side(mine), side(limit)];
    return [{ ...describe(group[0]), rounds: mine.length, ours: o, limit: l, ratio: o.rate / l.rate }];
  });
}

export function summarise(results: BenchResults): Summary {
  const ingest = compare(
    results.ingest,
    'api',
    (f) => String(f.entriesPerRequest),
    (f) => ({ rate: f.entriesPerSecond, p50: f.p50Ms, p99: f.p99Ms, cpuUs: f.cpuUsPerRequest }),
    (f) => ({ entriesPerRequest: f.entriesPerRequest }),
  );
  const drain = compare(
    results.drain,
    'consumer',
    drainLabel,
    (f) => ({ rate: f.entriesPerSecond, cpuUs: f.cpuUsPerEntry, rssMb: f.peakRssMb }),
    (f) => ({ fsync: f.fsync, batchSize: f.batchSize }),
  );
  const ours = results.endToEnd.find((f) => f.target === 'pipeline');
  const limit = results.endToEnd.find((f) => f.target === 'baseline');
  return {
    ingest,
    drain,
    endToEnd:
      ours && limit
        ? {
            ours: { p50: ours.p50Ms, p99: ours.p99Ms, failed: ours.failedRequests },
            limit: { p50: limit.p50Ms, p99: limit.p99Ms },
          }
        : undefined,
    rss:
      drain.length === 0
        ? undefined
        : {
            oursMb: Math.max(...drain.map((d) => d.ours.rssMb)),
            limitMb: Math.max(...drain.map((d) => d.limit.rssMb)),
          },
  };
}

const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '?');
const ms = (value: number) => (!Number.isFinite(value) ? '?' : value < 10 ? value.toFixed(1) : int(value));
const ratio = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '?');
const verdict = (met: boolean) => (met ? 'met' : 'missed');
const pair = (a: string, b: string) => `${a} / ${b}`;

/**
 * One row per figure. Throughput ratios are ours / the limit (1 is as fast as the limit); latency
 * and memory ratios are ours / the limit too (1 is as low as the limit, above 1 is slower).
 */
export function rows(summary: Summary, targets: Targets): Row[] {
  const out: Row[] = [];
  for (const s of summary.ingest) {
    const size = `${s.entriesPerRequest.toLocaleString('en-US')} ${s.entriesPerRequest === 1 ? 'entry' : 'entries'}/request`;
    const targeted = s.entriesPerRequest === targets.ingestSize;
    out.push(
      {
        key: `ingest-${s.entriesPerRequest}-rate`,
        figure: `ingest, ${size}: entries/s`,
        ours: int(s.ours.rate),
        limit: int(s.limit.rate),
        ratio: ratio(s.ratio),
        target: targeted ? `≥ ${targets.ingestRatio.toFixed(2)}` : '',
        verdict: targeted ? verdict(s.ratio >= targets.ingestRatio) : '',
      },
      {
        key: `ingest-${s.entriesPerRequest}-latency`,
        figure: `ingest, ${size}: p50 / p99 ms`,
        ours: pair(ms(s.ours.p50), ms(s.ours.p99)),
        limit: pair(ms(s.limit.p50), ms(s.limit.p99)),
        ratio: pair(ratio(s.ours.p50 / s.limit.p50), ratio(s.ours.p99 / s.limit.p99)),
        target: '',
        verdict: '',
      },
    );
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
      ours: pair(ms(ours.p50), ms(ours.p99)),
      limit: pair(ms(limit.p50), ms(limit.p99)),
      ratio: pair(ratio(ours.p50 / limit.p50), ratio(ours.p99 / limit.p99)),
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

/**
 * A Markdown table with its columns padded as Prettier pads them, so that it reads as well in a
 * terminal as in the document, and `npm run format` leaves the document alone. A column whose
 * header starts with `>` is right-aligned.
 */
export function markdownTable(header: string[], body: string[][]): string {
  const right = header.map((cell) => cell.startsWith('>'));
  const titles = header.map((cell) => cell.replace(/^>/, ''));
  const widths = titles.map((_, c) => Math.max(3, ...[titles, ...body].map((line) => [...line[c]].length)));
  const pad = (cell: string, c: number) => (right[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]));
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((w, c) => (right[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(titles), `| ${rule.join(' | ')} |`, ...body.map(line)].join('\n');
}

/** The summary table, as printed and as in the document. */
export function summaryTable(table: Row[]): string {
  return markdownTable(
    ['figure', '>ours', '>limit', '>of limit', '>target', ''],
    table.map((r) => [r.figure, r.ours, r.limit, r.ratio, r.target, r.verdict === 'missed' ? '**missed**' : r.verdict]),
  );
}

function describeRun({ environment: env, options, seconds }: BenchResults): Record<string, string> {
  const { ingest, drain, endToEnd } = options;
  const packages = Object.entries(env.packages).map(([name, version]) => `${name} ${version}`);
  return {
    command:
      `Command: \`${env.command}\`, ${env.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ` +
      `${(seconds / 60).toFixed(1)} minutes.`,
    machine:
      `Machine: ${env.cores} cores (${env.cpuModel}), ${env.memoryGb} GB, Linux ${env.kernel}; ` +
      `Node ${env.node}; RabbitMQ ${env.rabbitmq} on the same host. Packages: ${packages.join(', ')}.`,
    sizes:
      `Sizes: ${options.rounds} round(s) of ingest and drain, order alternating. ` +
      `Ingest: ${ingest.sizes.join(', ')} entries per request, ${ingest.connections} connections, ` +
      `${ingest.warmupSeconds} s warm-up + ${ingest.durationSeconds} s per server and size. ` +
      `Drain: a backlog of ${drain.entries.toLocaleString('en-US')} entries per run. ` +
      `End to end: ${endToEnd.entriesPerSecond} entries/s as ${endToEnd.entriesPerSecond / endToEnd.entriesPerRequest} ` +
      `requests/s of ${endToEnd.entriesPerRequest} entries for ${endToEnd.durationSeconds} s. ${options.shardsCount} shards.`,
  };
}

function detailTables(results: BenchResults): string {
  const parts: string[] = [];
  if (results.ingest.length > 0) {
    parts.push(
      'Ingest, every run:',
      markdownTable(
        ['>round', 'server', '>entries/request', '>entries/s', '>p50 / p99 ms', '>CPU µs/request', '>non-2xx, errors'],
        results.ingest.map((f) => [
          String(f.round),
          f.target,
          String(f.entriesPerRequest),
          int(f.entriesPerSecond),
          pair(ms(f.p50Ms), ms(f.p99Ms)),
          f.cpuUsPerRequest === undefined ? '?' : int(f.cpuUsPerRequest),
          `${f.non2xx}, ${f.errors}`,
        ]),
      ),
    );
  }
  if (results.drain.length > 0) {
    parts.push(
      'Drain, every run (entries/s over the span from the first to the last completed file):',
      markdownTable(
        ['>round', 'writer', 'case', '>entries/s', '>CPU µs/entry', '>wall s (boot included)', '>peak RSS MB'],
        results.drain.map((f) => [
          String(f.round ?? ''),
          f.target === 'consumer'
            ? 'consumer'
            : f.target === 'consumer-no-dedupe'
              ? 'consumer, dedupe off'
              : 'plain loop',
          drainLabel(f),
          int(f.entriesPerSecond),
          f.cpuUsPerEntry === undefined ? '?' : f.cpuUsPerEntry.toFixed(1),
          f.wallSeconds.toFixed(1),
          int(f.peakRssMb),
        ]),
      ),
    );
  }
  if (results.endToEnd.length > 0) {
    parts.push(
      'End to end:',
      markdownTable(
        ['writer', '>entries', '>p50 / p99 / max ms', '>failed requests', '>entries/s sent'],
        results.endToEnd.map((f) => [
          f.target === 'pipeline' ? 'api + consumer' : 'baseline api + plain loop',
          int(f.entries),
          `${ms(f.p50Ms)} / ${ms(f.p99Ms)} / ${ms(f.maxMs)}`,
          String(f.failedRequests),
          int(f.sentPerSecond),
        ]),
      ),
    );
  }
  return parts.join('\n\n');
}

const TEMPLATE = join(__dirname, 'benchmarks.template.md');
/** Where the hand-written section starts and ends, in the template and in the document. */
const KEPT = /<!-- hand-written: start[^>]*-->[\s\S]*?<!-- hand-written: end -->/;

/**
 * docs/benchmarks.md: the template filled in with this run, and the hand-written section taken
 * from `previous` (the document it replaces) when it has one, else the template's.
 */
export function renderDocument(results: BenchResults, targets: Targets, svgLink: string, previous?: string): string {
  const template = readFileSync(TEMPLATE, 'utf8');
  const kept = previous?.match(KEPT)?.[0];
  const values: Record<string, string> = {
    ...describeRun(results),
    chart: `![throughput as a share of the limit, and latency](${svgLink})`,
    summary: summaryTable(rows(summarise(results), targets)),
    details: detailTables(results),
  };
  return template
    .replace(KEPT, (section) => kept ?? section)
    .replace(/\{\{(\w+)\}\}/g, (placeholder, name: string) => values[name] ?? placeholder);
}

/** Writes the document to `markdownPath` (see renderDocument) and the chart to `svgPath`. */
export async function writeReport(
  results: BenchResults,
  targets: Targets,
  { markdownPath, svgPath }: { markdownPath: string; svgPath: string },
): Promise<void> {
  const env = results.environment;
  const caption = `${env.cores} cores (${env.cpuModel}), Node ${env.node}, RabbitMQ ${env.rabbitmq}, ${env.date.slice(0, 10)}`;
  const previous = await readFile(markdownPath, 'utf8').catch(() => undefined);
  await mkdir(dirname(markdownPath), { recursive: true });
  await mkdir(dirname(svgPath), { recursive: true });
  await writeFile(svgPath, chartSvg(summarise(results), targets, caption));
  await writeFile(markdownPath, renderDocument(results, targets, relative(dirname(markdownPath), svgPath), previous));
}

/**
 * What exactly-once costs the drain (`--dedupe-off`): per case, the consumer's mean entries/s over
 * the same build's with the Dedupe provider overridden (docs/exactly-once.md); one line per case.
 */
export function dedupeCost(results: BenchResults): string[] {
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  return [...new Set(results.drain.map(drainLabel))].flatMap((label) => {
    const rates = (target: string) =>
      results.drain.filter((f) => drainLabel(f) === label && f.target === target).map((f) => f.entriesPerSecond);
    const [on, off] = [rates('consumer'), rates('consumer-no-dedupe')];
    if (on.length === 0 || off.length === 0) return [];
    return [
      `dedupe cost, ${label}: ${Math.round(mean(on))} entries/s with it, ${Math.round(mean(off))} without, ` +
        `ratio ${(mean(on) / mean(off)).toFixed(2)} over ${on.length} round(s)`,
    ];
  });
}
