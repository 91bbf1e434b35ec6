/**
 * The limit for the consumer's drain rate: a plain amqplib consume-write-ack loop, no framework,
 * no validation, writing the same files (staged, fsynced when SINK_FSYNC, renamed, the directory
 * fsynced after the rename with the consumer's own DirectorySyncer) with up to WORKERS_MAX writes
 * in flight per shard, acking a delivery once all its entries are written. It reads the
 * consumer's variables through libs/config, so it runs with the consumer's defaults. Run as a
 * child process by the benchmark (tools/bench/drain.ts, end-to-end.ts); prints `processed <n>` lines.
 */
import { open, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Channel, type ConsumeMessage, connect } from 'amqplib';
import { readConsumerAppConfig } from '@app/config';
// The consumer's own class (a framework-free lib), so that both writers make renames durable the same way.
import { DirectorySyncer } from '@app/durable-fs';
import { assertTopology } from '@app/rabbitmq';
import { shardQueueName } from '@app/sharding';

const { rabbitmq, consumer } = readConsumerAppConfig();
const { queuePrefix: prefix, shardsCount: shards } = rabbitmq;
const { dataOutputDir: dir, batchSize, sinkFsync: fsync, prefetch, workersMax: maxWrites, batchFlushMs } = consumer;

let processed = 0;
let sequence = 0;

// The same directory fsync as the consumer's, so that a rename survives a crash before the ack.
const directory = new DirectorySyncer(dir);

async function writeFile(name: string, data: string): Promise<void> {
  const staged = join(dir, '.inflight', `${name}.tmp`);
  const handle = await open(staged, 'w');
  await handle.writeFile(data);
  if (fsync) await handle.sync();
  await handle.close();
  await rename(staged, join(dir, name));
  if (fsync) await directory.sync();
}

function consumeShard(channel: Channel, shard: number): void {
  const buffer: Array<{ line: string; delivery: { message: ConsumeMessage; remaining: number } }> = [];
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  const pump = (force: boolean): void => {
    while (inFlight < maxWrites && (buffer.length >= batchSize || (force && buffer.length > 0))) {
      const batch = buffer.splice(0, batchSize);
      inFlight++;
      const name = `worker-${shard}-${inFlight}_${Date.now()}_${process.pid}-${++sequence}.jsonl`;
      void writeFile(name, batch.map((item) => item.line).join('\n') + '\n').then(() => {
        inFlight--;
        processed += batch.length;
        for (const { delivery } of batch) if (--delivery.remaining === 0) channel.ack(delivery.message);
        pump(false);
      });
    }
    clearTimeout(timer);
    if (buffer.length > 0) timer = setTimeout(() => pump(true), batchFlushMs);
  };
  void channel.consume(shardQueueName(prefix, shard), (message) => {
    if (message === null) return;
    const entries = (JSON.parse(message.content.toString()) as { data: { entries: unknown[] } }).data.entries;
    const delivery = { message, remaining: entries.length };
    for (const entry of entries) buffer.push({ line: JSON.stringify(entry), delivery });
    pump(false);
  });
}

async function main(): Promise<void> {
  await mkdir(join(dir, '.inflight'), { recursive: true });
  const connection = await connect(rabbitmq.url);
  // As the consumer does at start, so that it can be the first to run against a fresh prefix.
  const setup = await connection.createChannel();
  await assertTopology(setup, rabbitmq);
  await setup.close();
  for (let shard = 0; shard < shards; shard++) {
    const channel = await connection.createChannel();
    await channel.prefetch(prefetch);
    consumeShard(channel, shard);
  }
  // As often as the benchmark reads it (PROGRESS_INTERVAL_MS in tools/bench/drain.ts).
  setInterval(() => process.stdout.write(`processed ${processed}\n`), 250);
  // Exit (rather than die) on SIGTERM, so that --cpu-prof writes its profile.
  process.once('SIGTERM', () => process.exit(0));
}

void main();
