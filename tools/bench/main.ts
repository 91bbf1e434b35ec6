/**
 * `npm run bench`, the one entry point of the benchmark: ingest, drain and end to end, each beside
 * its framework-free limit in the same run, against the local RabbitMQ (RABBITMQ_URL). Prints a
 * table and writes docs/benchmarks.md (with the machine, the versions and every run) and its chart.
 *
 *   npm run bench                         # the full run, about 10 minutes
 *   npm run bench -- --quick              # smaller sizes, about 1.5 minutes; leaves docs/ alone
 *   npm run bench -- [--only ingest,drain,e2e] [--rounds 4] [--duration 8] [--warmup 2]
 *                    [--connections 20] [--sizes 1,100,1000]
 *                    [--backlog 200000] [--cases fsync:5,fsync:500,nofsync:5,nofsync:500]
 *                    [--e2e-seconds 30] [--e2e-rate 200] [--e2e-per-request 10]
 *                    [--cpu-prof <dir>] [--compare <api main.js>] [--out <file.md>] [--no-write]
 *                    [--dedupe-off]           # drain also with the consumer's dedupe disabled
 *                    [--keys memory,redis]   # ingest again with an Idempotency-Key on every request
 *   npm run bench:api                     # = npm run bench -- --only ingest --sizes 100 --rounds 1
 *   npm run bench:drain                   # = npm run bench -- --only drain --rounds 1
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readConsumerConfig } from '@app/config';
import { ROOT } from './build';
import { Cleanup } from './cleanup';
import { type DrainCase } from './drain';
import { dedupeCost, rows, summarise, summaryTable, targetsFor, writeReport } from './report';
import { type BenchOptions, PHASES, type Phase, runBench } from './run';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '20' },
    sizes: { type: 'string', default: '1,100,1000' },
    backlog: { type: 'string' },
    cases: { type: 'string', default: 'fsync:5,fsync:500,nofsync:5,nofsync:500' },
    'e2e-seconds': { type: 'string' },
    'e2e-rate': { type: 'string', default: '200' },
    'e2e-per-request': { type: 'string', default: '10' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
    keys: { type: 'string' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'dedupe-off': { type: 'boolean', default: false },
    // The flag of the old bench-api.ts and bench-drain.ts, which meant a different thing in each.
    entries: { type: 'string' },
  },
});

function number(name: string, text: string | undefined, fallback: number): number {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return value;
}

function parseCase(text: string): DrainCase {
  const match = /^(fsync|nofsync):(\d+)$/.exec(text.trim());
  if (match === null) throw new Error(`--cases takes fsync:<batch> or nofsync:<batch>, got ${text}`);
  return { fsync: match[1] === 'fsync', batchSize: Number(match[2]) };
}

function parsePhases(text: string | undefined): Phase[] {
  if (text === undefined) return [...PHASES];
  const phases = text.split(',').map((phase) => phase.trim());
  for (const phase of phases) {
    if (!PHASES.includes(phase as Phase)) throw new Error(`--only takes ${PHASES.join(', ')}; got ${phase}`);
  }
  return phases as Phase[];
}

function parseKeyStores(text: string | undefined): ('memory' | 'redis')[] {
  if (text === undefined) return [];
  const stores = text.split(',').map((store) => store.trim());
  for (const store of stores) {
    if (store !== 'memory' && store !== 'redis') throw new Error(`--keys takes memory, redis; got ${store}`);
  }
  return stores as ('memory' | 'redis')[];
}

function options(): BenchOptions {
  if (args.entries !== undefined) {
    throw new Error('--entries is gone: --sizes <entries per request> for ingest, --backlog <entries> for the drain');
  }
  const quick = args.quick;
  return {
    phases: parsePhases(args.only),
    rounds: number('rounds', args.rounds, quick ? 1 : 4),
    shardsCount: 5,
    ingest: {
      sizes: args.sizes.split(',').map((size) => number('sizes', size, 0)),
      connections: number('connections', args.connections, 20),
      warmupSeconds: number('warmup', args.warmup, quick ? 1 : 2),
      durationSeconds: number('duration', args.duration, quick ? 3 : 8),
    },
    drain: {
      entries: number('backlog', args.backlog, quick ? 50_000 : 200_000),
      cases: args.cases.split(',').map(parseCase),
      dedupeOff: args['dedupe-off'],
    },
    endToEnd: {
      entriesPerSecond: number('e2e-rate', args['e2e-rate'], 200),
      entriesPerRequest: number('e2e-per-request', args['e2e-per-request'], 10),
      durationSeconds: number('e2e-seconds', args['e2e-seconds'], quick ? 10 : 30),
    },
    cpuProfDir: args['cpu-prof'],
    compareApi: args.compare,
    ingestKeys: parseKeyStores(args.keys),
    log: (line) => console.log(line),
  };
}

/** The command as run, for the record (`npm run bench:api` runs `npm run bench -- --only ingest ...`). */
function command(): string {
  const argv = process.argv.slice(2).join(' ');
  return `npm run bench${argv ? ` -- ${argv}` : ''}`;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  cleanup.exitOnInterrupt();
  const results = await runBench(options(), cleanup, command());
  const targets = targetsFor(readConsumerConfig().batchFlushMs);
  console.log(`\n${summaryTable(rows(summarise(results), targets))}`);
  for (const line of dedupeCost(results)) console.log(line);
  console.log(`\n${(results.seconds / 60).toFixed(1)} minutes`);
  // A quick or partial run is a look, not a record: it leaves the committed figures alone.
  const partial = args.quick || args.only !== undefined;
  if (args['no-write'] || (partial && args.out === undefined)) {
    console.log('results not written (pass --out <file.md> to write them)');
    return;
  }
  const markdownPath = args.out ?? join(ROOT, 'docs', 'benchmarks.md');
  const svgPath = markdownPath.replace(/\.md$/, '') + '.svg';
  await writeReport(results, targets, { markdownPath, svgPath });
  console.log(`written to ${markdownPath} and ${svgPath}`);
}

main().catch((error: unknown) => {
  console.error('benchmark failed:', error);
  process.exit(1);
});
