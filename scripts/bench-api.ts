/**
 * Entries per second through `POST /message` at one request size: the built api against the
 * framework-free baseline (scripts/bench/api-baseline.ts) in the same run, no consumer running.
 * The ingest part of `npm run bench` (scripts/bench/ingest.ts), alone, for profiling the api.
 *
 *   npm run bench:api                       # builds the api first
 *   npm run bench:api -- [--duration 10] [--warmup 2] [--connections 20] [--entries 100] [--rounds 1]
 *     [--only api|baseline]
 *     [--cpu-prof <dir>]   # each server writes a V8 CPU profile there (open it in Chrome DevTools)
 *     [--compare <main.js>]  # also measure another build of the api, e.g. of an older commit
 */
import { parseArgs } from 'node:util';
import { readRabbitmqConfig } from '@app/config';
import { TestBroker } from '@app/testing';
import { prepareBuild } from './bench/build';
import { Cleanup } from './bench/cleanup';
import { type IngestFigures, type IngestTarget, measureIngestRound } from './bench/ingest';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '20' },
    entries: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
  },
});

function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US').padStart(9);
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  cleanup.exitOnInterrupt();
  const build = prepareBuild({ apps: ['api'] });
  const removeBuild = cleanup.add(`remove ${build.dir}`, () => build.remove());
  const all: IngestTarget[] = [
    ...(args.compare === undefined ? [] : [{ name: 'compare', script: args.compare }]),
    { name: 'api', script: build.apiMain },
    { name: 'baseline', script: build.apiBaseline },
  ];
  const targets = all.filter((target) => args.only === undefined || target.name === args.only);
  const load = {
    entriesPerRequest: Number(args.entries),
    connections: Number(args.connections),
    warmupSeconds: Number(args.warmup),
    durationSeconds: Number(args.duration),
  };
  const broker = await TestBroker.connect();
  const runs: IngestFigures[] = [];
  try {
    console.log(
      `POST /message, ${load.entriesPerRequest} entries per request, ${load.connections} connections, ` +
        `${load.warmupSeconds} s warm-up + ${load.durationSeconds} s, ${args.rounds} round(s)`,
    );
    for (let round = 1; round <= Number(args.rounds); round++) {
      const figures = await measureIngestRound(targets, [load], {
        round,
        broker,
        cleanup,
        shardsCount: readRabbitmqConfig().shardsCount,
        cpuProfDir: args['cpu-prof'],
        onResult: (f) =>
          console.log(
            `round ${round} ${f.target.padEnd(8)} ${formatRate(f.entriesPerSecond)} entries/s ` +
              `(${Math.round(f.requestsPerSecond)} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, ` +
              `${f.cpuUsPerRequest === undefined ? '?' : Math.round(f.cpuUsPerRequest)} us CPU/request, ` +
              `non-2xx ${f.non2xx}, errors ${f.errors}, ${f.messagesQueued} messages queued)`,
          ),
      });
      runs.push(...figures);
    }
  } finally {
    await broker.close();
    await removeBuild();
  }
  const perTarget = new Map(
    targets.map(({ name }) => [
      name,
      mean(runs.filter((run) => run.target === name).map((run) => run.entriesPerSecond)),
    ]),
  );
  for (const [name, entriesPerSecond] of perTarget) {
    console.log(`${name.padEnd(8)} ${formatRate(entriesPerSecond)} entries/s`);
  }
  const baseline = perTarget.get('baseline');
  for (const [name, entriesPerSecond] of perTarget) {
    if (name === 'baseline' || baseline === undefined) continue;
    console.log(`${name} / baseline = ${((100 * entriesPerSecond) / baseline).toFixed(1)} % (target: at least 70 %)`);
  }
}

main().catch((error: unknown) => {
  console.error('benchmark failed:', error);
  process.exit(1);
});
