/**
 * One benchmark run, as `npm run bench` makes it: ingest, drain and end to end, each beside its
 * framework-free limit, against the local RabbitMQ. Everything it starts and creates (processes,
 * queues, folders, the build copy) goes again when it returns, or through `cleanup` when the run
 * is interrupted.
 */
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { TestBroker, tempDir, testBrokerUrl, testRedisUrl } from '@app/testing';
import { type BenchBuild, ROOT, prepareBuild } from './build';
import type { Cleanup } from './cleanup';
import { type DrainCase, type DrainFigures, type DrainTarget, measureDrain } from './drain';
import { type EndToEndFigures, measureEndToEnd } from './end-to-end';
import { type IngestFigures, type IngestTarget, measureIngestRound } from './ingest';

export type Phase = 'ingest' | 'drain' | 'e2e';
export const PHASES: readonly Phase[] = ['ingest', 'drain', 'e2e'];

export interface BenchOptions {
  phases: readonly Phase[];
  /** Rounds of ingest and of drain; each alternates the order of ours and the limit. */
  rounds: number;
  shardsCount: number;
  ingest: { sizes: number[]; connections: number; warmupSeconds: number; durationSeconds: number };
  /** `dedupeOff`: also drain with the consumer's dedupe disabled (a bench-only entry point), to show its cost. */
  drain: { entries: number; cases: DrainCase[]; dedupeOff?: boolean };
  endToEnd: { entriesPerSecond: number; entriesPerRequest: number; durationSeconds: number };
  /** Every process started writes a V8 CPU profile here. */
  cpuProfDir?: string;
  /** Another build of the api to measure beside it (ingest only), e.g. of an older commit. */
  compareApi?: string;
  /** The api again with an Idempotency-Key on every request, keys kept in these stores (ingest only). */
  ingestKeys?: readonly ('memory' | 'redis')[];
  /** The Redis of the `redis` key store; by default the tests' (REDIS_URL, or the local one). */
  redisUrl?: string;
  /** Where progress goes, one line at a time. */
  log: (line: string) => void;
}

export interface Environment {
  date: string;
  command: string;
  cores: number;
  cpuModel: string;
  memoryGb: number;
  kernel: string;
  node: string;
  rabbitmq: string;
  packages: Record<string, string>;
}

export interface BenchResults {
  options: Omit<BenchOptions, 'log'>;
  environment: Environment;
  ingest: IngestFigures[];
  drain: DrainFigures[];
  endToEnd: EndToEndFigures[];
  /** Wall time of the whole run. */
  seconds: number;
}

/** Packages whose versions shape the figures. */
const PACKAGES = [
  '@nestjs/core',
  '@nestjs/microservices',
  '@nestjs/platform-fastify',
  'fastify',
  'amqplib',
  'amqp-connection-manager',
  'autocannon',
];

function packageVersion(name: string): string {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
    version: string;
  };
  return version;
}

async function describeEnvironment(url: string, command: string): Promise<Environment> {
  const connection = await connect(url);
  const rabbitmq = String(connection.connection.serverProperties.version ?? 'unknown');
  await connection.close();
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    date: new Date().toISOString(),
    command,
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    rabbitmq,
    packages: { 'async-data-processor': version, ...Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(p)])) },
  };
}

function rate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Runs the benchmark; `command` is recorded with the results. */
export async function runBench(options: BenchOptions, cleanup: Cleanup, command: string): Promise<BenchResults> {
  const startedAt = Date.now();
  const { log, ...recorded } = options;
  const url = testBrokerUrl();
  const undo: Array<() => Promise<void>> = [];
  try {
    // First, for its clear error when RabbitMQ is not there.
    const broker = await TestBroker.connect(url);
    undo.push(cleanup.add('close the broker connection', () => broker.close()));
    const environment = await describeEnvironment(url, command);
    const build = prepareBuild();
    undo.push(cleanup.add(`remove ${build.dir}`, () => build.remove()));
    // Every batch file of the run, deleted only at its end (see DrainOptions.outputRoot).
    const outputs = await tempDir('bench-output');
    undo.push(
      cleanup.add(`remove ${outputs.path}`, async () => {
        const removing = Date.now();
        await outputs.remove();
        log(`removed the run's batch files in ${((Date.now() - removing) / 1000).toFixed(1)} s`);
      }),
    );
    const results: BenchResults = { options: recorded, environment, ingest: [], drain: [], endToEnd: [], seconds: 0 };
    await runPhases(options, { url, broker, build, outputRoot: outputs.path, cleanup }, results);
    results.seconds = (Date.now() - startedAt) / 1000;
    return results;
  } finally {
    for (const step of undo.reverse()) await step();
  }
}

interface RunContext {
  url: string;
  broker: TestBroker;
  build: BenchBuild;
  outputRoot: string;
  cleanup: Cleanup;
}

async function runPhases(options: BenchOptions, context: RunContext, results: BenchResults): Promise<void> {
  const { log, shardsCount, rounds } = options;
  const { url, broker, build, outputRoot, cleanup } = context;
  if (options.phases.includes('ingest')) {
    const { sizes, connections, warmupSeconds, durationSeconds } = options.ingest;
    log(
      `ingest: POST /message at ${sizes.join(', ')} entries per request, ${connections} connections, ` +
        `${warmupSeconds} s warm-up + ${durationSeconds} s each, ${rounds} round(s), no consumer`,
    );
    const targets: IngestTarget[] = [
      ...(options.compareApi === undefined ? [] : [{ name: 'compare', script: options.compareApi }]),
      { name: 'api', script: build.apiMain },
      ...(options.ingestKeys ?? []).map((store): IngestTarget => ({
        name: `key:${store}`,
        script: build.apiMain,
        keyed: true,
        env: store === 'redis' ? { REDIS_URL: options.redisUrl ?? testRedisUrl() } : {},
      })),
      { name: 'baseline', script: build.apiBaseline },
    ];
    const loads = sizes.map((entriesPerRequest) => ({
      entriesPerRequest,
      connections,
      warmupSeconds,
      durationSeconds,
    }));
    for (let round = 1; round <= rounds; round++) {
      const figures = await measureIngestRound(targets, loads, {
        round,
        broker,
        cleanup,
        shardsCount,
        cpuProfDir: options.cpuProfDir,
        onResult: (f) =>
          log(
            `  round ${round} ${f.target.padEnd(10)} ${String(f.entriesPerRequest).padStart(4)}/request ` +
              `${rate(f.entriesPerSecond).padStart(9)} entries/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, ` +
              `${f.cpuUsPerRequest === undefined ? '?' : Math.round(f.cpuUsPerRequest)} us CPU/request, ` +
              `non-2xx ${f.non2xx}, errors ${f.errors}, ${f.messagesQueued} messages queued`,
          ),
      });
      results.ingest.push(...figures);
    }
  }

  if (options.phases.includes('drain')) {
    const { entries, cases } = options.drain;
    log(`drain: a backlog of ${rate(entries)} entries to completed files, ${rounds} round(s)`);
    for (let round = 1; round <= rounds; round++) {
      for (const [index, drainCase] of cases.entries()) {
        // Alternate who goes first, by round and by case: this disk's speed swings minute to minute.
        const targets: DrainTarget[] = options.drain.dedupeOff
          ? ['consumer', 'consumer-no-dedupe', 'baseline']
          : ['consumer', 'baseline'];
        const order = (round + index) % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order) {
          const f = await measureDrain(target, drainCase, {
            url,
            entries,
            shardsCount,
            build,
            cleanup,
            outputRoot,
            cpuProfDir: options.cpuProfDir,
          });
          results.drain.push({ ...f, round });
          log(
            `  round ${round} ${target.padEnd(options.drain.dedupeOff ? 18 : 8)} fsync ${drainCase.fsync ? 'on ' : 'off'} batch ` +
              `${String(drainCase.batchSize).padEnd(4)}${rate(f.entriesPerSecond).padStart(9)} entries/s, ` +
              `${f.cpuUsPerEntry?.toFixed(1) ?? '?'} us CPU/entry, wall ${f.wallSeconds.toFixed(1)} s, ` +
              `peak RSS ${f.peakRssMb.toFixed(0)} MB`,
          );
        }
      }
    }
  }

  if (options.phases.includes('e2e')) {
    const { entriesPerSecond, entriesPerRequest, durationSeconds } = options.endToEnd;
    log(
      `end to end: ${entriesPerSecond} entries/s as ${entriesPerSecond / entriesPerRequest} requests/s of ` +
        `${entriesPerRequest} entries for ${durationSeconds} s, api and writer running with default settings`,
    );
    for (const target of ['pipeline', 'baseline'] as const) {
      const f = await measureEndToEnd(target, {
        ...options.endToEnd,
        build,
        cleanup,
        broker,
        shardsCount,
        outputRoot,
        cpuProfDir: options.cpuProfDir,
      });
      results.endToEnd.push(f);
      log(
        `  ${target.padEnd(8)} p50 ${f.p50Ms.toFixed(0)} ms, p99 ${f.p99Ms.toFixed(0)} ms, max ${f.maxMs.toFixed(0)} ms ` +
          `over ${rate(f.entries)} entries (${f.sentPerSecond.toFixed(0)} entries/s sent, ` +
          `${f.failedRequests} failed requests)`,
      );
    }
  }
}
