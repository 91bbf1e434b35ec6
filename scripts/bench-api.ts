/**
 * Entries per second through `POST /message`: the built api (dist/apps/api/main.js) against a
 * framework-free Fastify + amqplib server that follows the same contract, in the same run, each
 * with its own queue prefix, no consumer running, and its queues deleted afterwards. Rounds
 * alternate the order, since the broker and the other processes share this machine's cores.
 *
 *   npm run bench:api                       # builds the api first
 *   npx ts-node --transpile-only -r tsconfig-paths/register scripts/bench-api.ts \
 *     [--duration 10] [--warmup 2] [--connections 20] [--entries 100] [--rounds 1] [--only api|baseline]
 *     [--cpu-prof <dir>]   # each server writes a V8 CPU profile there (open it in Chrome DevTools)
 *     [--compare <main.js>]  # also measure another build of the api, e.g. of an older commit
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { readRabbitmqConfig } from '@app/config';
import { TestBroker, freePort, testPrefix, waitFor } from '@app/testing';

const ROOT = join(__dirname, '..');
const API_BUILD = join(ROOT, 'dist/apps/api/main.js');
// The run uses a copy of the build, so a rebuild meanwhile (npm test builds) cannot pull it away.
// It stays inside the repository (.tmp/ is ignored), where its node_modules resolve.
const SNAPSHOT_DIR = join(ROOT, '.tmp', `bench-api-${process.pid}`);
const API_MAIN = join(SNAPSHOT_DIR, 'main.js');

interface Target {
  name: string;
  nodeArgs: string[];
}

const TARGETS: Target[] = [
  { name: 'api', nodeArgs: [API_MAIN] },
  {
    name: 'baseline',
    nodeArgs: [
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      join(ROOT, 'scripts/bench/api-baseline.ts'),
    ],
  },
];

interface Figures {
  target: string;
  entriesPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** The server's own CPU time per answered request: steadier than throughput on a busy machine. */
  cpuUsPerRequest?: number;
  non2xx: number;
  errors: number;
  messagesQueued: number;
}

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
const DURATION_S = Number(args.duration);
const WARMUP_S = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const ENTRIES = Number(args.entries);
const ROUNDS = Number(args.rounds);

/** One request body: `ENTRIES` entries a second apart, so every shard gets its share. */
function requestBody(): string {
  const start = Date.UTC(2019, 9, 12, 8, 10, 53, 520);
  return JSON.stringify(
    Array.from({ length: ENTRIES }, (_, i) => ({
      timestamp: new Date(start + i * 1000).toISOString(),
      value: `benchmark entry ${i}`,
    })),
  );
}

function load(url: string, body: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/message`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    duration: seconds,
  });
}

/** User + system CPU seconds a process has used so far (Linux /proc), or undefined elsewhere. */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), in clock ticks of 1/100 s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The server being measured, for an interrupted run to stop it and delete its queues. */
let current: { child: ChildProcess; prefix: string; broker: TestBroker } | undefined;

async function measure(target: Target, broker: TestBroker, body: string): Promise<Figures> {
  const { shardsCount } = readRabbitmqConfig();
  const prefix = testPrefix(`bench-${target.name}`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const profile = args['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`];
  const child = spawn(process.execPath, [...profile, ...target.nodeArgs], {
    cwd: ROOT,
    env: { ...process.env, QUEUE_PREFIX: prefix, API_HOST: '127.0.0.1', API_PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  current = { child, prefix, broker };
  try {
    let exitCode: number | null = null;
    child.once('exit', (code) => (exitCode = code ?? -1));
    const outcome = await waitFor(
      async () => (exitCode !== null ? 'exited' : (await fetch(`${url}/health`)).status === 200 && 'healthy'),
      { description: `${target.name} to answer /health with 200`, timeoutMs: 30_000, intervalMs: 100 },
    );
    if (outcome === 'exited') throw new Error(`${target.name} exited with code ${exitCode} before it was healthy`);
    await load(url, body, WARMUP_S);
    const cpuBefore = cpuSeconds(child.pid);
    const result = await load(url, body, DURATION_S);
    const cpuAfter = cpuSeconds(child.pid);
    const counts = await broker.countAll(prefix, shardsCount);
    return {
      target: target.name,
      entriesPerSecond: (result['2xx'] * ENTRIES) / result.duration,
      requestsPerSecond: result['2xx'] / result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      cpuUsPerRequest:
        cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) * 1e6) / result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      messagesQueued: Object.values(counts).reduce((sum, count) => sum + count, 0),
    };
  } finally {
    current = undefined;
    await stop(child);
    await broker.deleteQueues(prefix, shardsCount);
  }
}

/** On Ctrl-C or SIGTERM: no orphaned server, no full queues, no snapshot left behind. */
async function interrupted(signal: NodeJS.Signals): Promise<void> {
  console.error(`benchmark interrupted by ${signal}; cleaning up`);
  rmSync(SNAPSHOT_DIR, { recursive: true, force: true });
  if (current === undefined) return;
  const { child, prefix, broker } = current;
  child.kill('SIGKILL');
  await broker.deleteQueues(prefix, readRabbitmqConfig().shardsCount);
}

function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US').padStart(9);
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

async function main(): Promise<void> {
  if (!existsSync(API_BUILD)) throw new Error(`${API_BUILD} is missing: run \`npx nest build api\` first`);
  mkdirSync(SNAPSHOT_DIR, { recursive: true });
  copyFileSync(API_BUILD, API_MAIN);
  const all = args.compare === undefined ? TARGETS : [{ name: 'compare', nodeArgs: [args.compare] }, ...TARGETS];
  const targets = all.filter((target) => args.only === undefined || target.name === args.only);
  const broker = await TestBroker.connect();
  const body = requestBody();
  const runs: Figures[] = [];
  try {
    console.log(
      `POST /message, ${ENTRIES} entries per request, ${CONNECTIONS} connections, ` +
        `${WARMUP_S} s warm-up + ${DURATION_S} s, ${ROUNDS} round(s)`,
    );
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
        const figures = await measure(target, broker, body);
        runs.push(figures);
        console.log(
          `round ${round} ${target.name.padEnd(8)} ${formatRate(figures.entriesPerSecond)} entries/s ` +
            `(${Math.round(figures.requestsPerSecond)} req/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, ` +
            `${figures.cpuUsPerRequest === undefined ? '?' : Math.round(figures.cpuUsPerRequest)} us CPU/request, ` +
            `non-2xx ${figures.non2xx}, errors ${figures.errors}, ${figures.messagesQueued} messages queued)`,
        );
      }
    }
  } finally {
    await broker.close();
    rmSync(SNAPSHOT_DIR, { recursive: true, force: true });
  }
  const perTarget = new Map(
    targets.map(({ name }) => {
      const rates = runs.filter((run) => run.target === name).map((run) => run.entriesPerSecond);
      return [name, mean(rates)];
    }),
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

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted(signal).then(
      () => process.exit(130),
      (error: unknown) => {
        console.error('cleaning up failed:', error);
        process.exit(130);
      },
    );
  });
}

main().catch((error: unknown) => {
  console.error('benchmark failed:', error);
  process.exit(1);
});
