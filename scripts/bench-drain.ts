/**
 * The consumer's drain rate from a preloaded backlog to completed files, beside the limit of the
 * same work with no framework (a plain amqplib consume-write-ack loop), alternating which runs
 * first because file creation on this disk varies from minute to minute. The drain part of
 * `npm run bench` (scripts/bench/drain.ts), alone, for profiling the consumer.
 *
 *   npm run bench:drain -- [--entries 200000] [--rounds 1] [--cases fsync:5,fsync:500,nofsync:5,nofsync:500]
 *     [--only consumer|baseline] [--cpu-prof <dir>]
 */
import { parseArgs } from 'node:util';
import { readRabbitmqConfig } from '@app/config';
import { tempDir } from '@app/testing';
import { prepareBuild } from './bench/build';
import { Cleanup } from './bench/cleanup';
import { type DrainCase, type DrainFigures, type DrainTarget, drainLabel, measureDrain } from './bench/drain';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '1' },
    cases: { type: 'string', default: 'fsync:5,nofsync:5,fsync:500,nofsync:500' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});

function parseCase(text: string): DrainCase {
  const [mode, size] = text.split(':');
  return { fsync: mode === 'fsync', batchSize: Number(size) };
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  cleanup.exitOnInterrupt();
  const build = prepareBuild();
  const removeBuild = cleanup.add(`remove ${build.dir}`, () => build.remove());
  const outputs = await tempDir('bench-drain');
  const removeOutputs = cleanup.add(`remove ${outputs.path}`, () => outputs.remove());
  const url = readRabbitmqConfig().url;
  const entries = Number(args.entries);
  const cases = args.cases.split(',').map(parseCase);
  const targets: DrainTarget[] = ['consumer', 'baseline'];
  const results: DrainFigures[] = [];
  try {
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const [index, drainCase] of cases.entries()) {
        const order = (round + index) % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order.filter((t) => args.only === undefined || t === args.only)) {
          const figures = await measureDrain(target, drainCase, {
            url,
            entries,
            build,
            cleanup,
            outputRoot: outputs.path,
            cpuProfDir: args['cpu-prof'],
          });
          results.push(figures);
          console.log(
            `${target.padEnd(8)} ${drainLabel(drainCase).padEnd(22)} ` +
              `${Math.round(figures.entriesPerSecond).toLocaleString('en-US').padStart(9)} entries/s ` +
              `${figures.cpuUsPerEntry?.toFixed(1) ?? '?'} us CPU/entry, wall ${figures.wallSeconds.toFixed(1)} s, ` +
              `peak RSS ${figures.peakRssMb.toFixed(0)} MB`,
          );
        }
      }
    }
  } finally {
    await removeBuild();
    await removeOutputs();
  }
  if (args.only !== undefined) return;
  console.log('\nratio consumer / baseline (mean over rounds):');
  for (const drainCase of cases) {
    const mean = (target: DrainTarget) => {
      const runs = results.filter(
        (r) => r.target === target && r.fsync === drainCase.fsync && r.batchSize === drainCase.batchSize,
      );
      return runs.reduce((sum, r) => sum + r.entriesPerSecond, 0) / runs.length;
    };
    console.log(`  ${drainLabel(drainCase)}: ${(mean('consumer') / mean('baseline')).toFixed(2)}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
