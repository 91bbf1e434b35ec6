/**
 * The consumer's drain rate from a preloaded backlog to completed files, beside the limit of the
 * same work with no framework (a plain amqplib consume-write-ack loop), alternating which runs
 * first because file creation on this disk varies from minute to minute.
 *
 *   npm run build && npx ts-node --transpile-only -r tsconfig-paths/register scripts/bench-drain.ts \
 *     [--entries 200000] [--rounds 1] [--cases fsync:5,fsync:500,nofsync:5,nofsync:500]
 */
import { parseArgs } from 'node:util';
import { readRabbitmqConfig } from '@app/config';
import { type DrainCase, type DrainFigures, type DrainTarget, measureDrain } from './bench/drain';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '1' },
    cases: { type: 'string', default: 'fsync:5,nofsync:5,fsync:500,nofsync:500' },
  },
});

function parseCase(text: string): DrainCase {
  const [mode, size] = text.split(':');
  return { fsync: mode === 'fsync', batchSize: Number(size) };
}

async function main(): Promise<void> {
  const url = readRabbitmqConfig().url;
  const entries = Number(args.entries);
  const results: DrainFigures[] = [];
  let order: DrainTarget[] = ['consumer', 'baseline'];
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const drainCase of args.cases.split(',').map(parseCase)) {
      for (const target of order) {
        const figures = await measureDrain(target, drainCase, { url, entries });
        results.push(figures);
        console.log(
          `${target.padEnd(8)} fsync=${String(drainCase.fsync).padEnd(5)} batch=${String(drainCase.batchSize).padEnd(4)} ` +
            `${Math.round(figures.entriesPerSecond).toLocaleString('en-US').padStart(9)} entries/s ` +
            `wall ${figures.wallSeconds.toFixed(1)} s, peak RSS ${figures.peakRssMb.toFixed(0)} MB`,
        );
      }
      order = [...order].reverse();
    }
  }
  console.log('\nratio consumer / baseline (mean over rounds):');
  for (const drainCase of args.cases.split(',').map(parseCase)) {
    const mean = (target: DrainTarget) => {
      const runs = results.filter(
        (r) => r.target === target && r.fsync === drainCase.fsync && r.batchSize === drainCase.batchSize,
      );
      return runs.reduce((sum, r) => sum + r.entriesPerSecond, 0) / runs.length;
    };
    console.log(
      `  fsync=${drainCase.fsync} batch=${drainCase.batchSize}: ${(mean('consumer') / mean('baseline')).toFixed(2)}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
