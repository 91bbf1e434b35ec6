import { randomBytes } from 'node:crypto';
import {
  type Channel,
  type ChannelModel,
  type GetMessage,
  IllegalOperationError,
  type Options,
  connect,
} from 'amqplib';
import { readRabbitmqConfig } from '@app/config';
import { redactUrl } from '@app/rabbitmq';
import { allShardQueueNames, deadLetterQueueName } from '@app/sharding';
import { withDeadline } from './wait-for';

/** The longest any one broker call of a test may take before it fails, naming the call. */
const CALL_TIMEOUT_MS = 30_000;

/** The broker the tests run against: `RABBITMQ_URL`, or the local default. */
export function testBrokerUrl(): string {
  return readRabbitmqConfig().url;
}

/** A queue prefix no other test uses: `t-<name>-<random>`. */
export function testPrefix(name: string): string {
  const slug = name
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `t-${slug || 'test'}-${randomBytes(4).toString('hex')}`;
}

/**
 * A direct amqplib connection for looking at and preparing queues from a test. Each call uses its
 * own short-lived channel, so a failed call (a missing queue) does not break the next one, and
 * fails after CALL_TIMEOUT_MS naming what it waited for, so a stalled broker cannot hang a test.
 */
export class TestBroker {
  private constructor(private readonly connection: ChannelModel) {}

  /** Connects to `url` (default: the test broker); throws a clear error if it is not reachable. */
  static async connect(url = testBrokerUrl()): Promise<TestBroker> {
    try {
      return new TestBroker(await connect(url));
    } catch (error) {
      throw new Error(`the tests need RabbitMQ at ${redactUrl(url)}; is it running?`, { cause: error });
    }
  }

  /** Messages ready in `queue` (not counting unacknowledged deliveries). */
  async count(queue: string): Promise<number> {
    return this.withChannel(
      `the message count of ${queue}`,
      async (channel) => (await channel.checkQueue(queue)).messageCount,
    );
  }

  /** Ready messages of every queue of `prefix`, by queue name: the shards, then the dead-letter queue. */
  async countAll(prefix: string, shardsCount: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const queue of prefixQueueNames(prefix, shardsCount)) counts[queue] = await this.count(queue);
    return counts;
  }

  /**
   * Every message ready in `queue`, in queue order, taken one basic.get at a time; with
   * `{ requeue: true }` they are put back afterwards instead of being removed.
   */
  async fetchAll(queue: string, { requeue = false }: { requeue?: boolean } = {}): Promise<GetMessage[]> {
    return this.withChannel(`every message of ${queue}`, async (channel) => {
      const messages: GetMessage[] = [];
      for (let message = await channel.get(queue); message !== false; message = await channel.get(queue)) {
        messages.push(message);
      }
      if (requeue) channel.nackAll(true);
      else channel.ackAll();
      return messages;
    });
  }

  /** Publishes raw bytes straight to `queue` and waits for the broker's confirm. */
  async publishRaw(queue: string, content: Buffer | string, options: Options.Publish = {}): Promise<void> {
    const publish = async () => {
      const channel = watch(await this.connection.createConfirmChannel());
      try {
        channel.sendToQueue(queue, Buffer.from(content), { persistent: true, ...options });
        await channel.waitForConfirms();
      } finally {
        await closeQuietly(channel);
      }
    };
    await withDeadline(publish(), CALL_TIMEOUT_MS, `the broker to confirm a message to ${queue}`);
  }

  /**
   * Publishes many messages to `queue` on one confirm channel, as persistent messages, waiting
   * for the channel to drain when its buffer is full, and resolves once the broker confirmed
   * every one; fails after `timeoutMs`. For backlogs far faster than through the api.
   */
  async publishMany(
    queue: string,
    contents: Iterable<Buffer>,
    options: Options.Publish = {},
    timeoutMs = 120_000,
  ): Promise<number> {
    const publish = async () => {
      const channel = watch(await this.connection.createConfirmChannel());
      let count = 0;
      try {
        for (const content of contents) {
          count++;
          if (!channel.sendToQueue(queue, content, { persistent: true, ...options })) {
            await new Promise((resolve) => channel.once('drain', resolve));
          }
        }
        await channel.waitForConfirms();
        return count;
      } finally {
        await closeQuietly(channel);
      }
    };
    return withDeadline(publish(), timeoutMs, `the broker to confirm messages to ${queue}`);
  }

  /** Empties `queue`; returns how many messages it held. */
  async purge(queue: string): Promise<number> {
    return this.withChannel(`purging ${queue}`, async (channel) => (await channel.purgeQueue(queue)).messageCount);
  }

  /** Deletes `<prefix>.shard.0..n-1` and `<prefix>.dead-letter`, whether or not they exist. */
  async deleteQueues(prefix: string, shardsCount: number): Promise<void> {
    await this.withChannel(`deleting the queues of ${prefix}`, async (channel) => {
      for (const queue of prefixQueueNames(prefix, shardsCount)) await channel.deleteQueue(queue);
    });
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * Runs `use` on a channel of its own, closed afterwards whatever happened; fails after
   * CALL_TIMEOUT_MS naming `description`.
   */
  withChannel<T>(description: string, use: (channel: Channel) => Promise<T>): Promise<T> {
    const run = async () => {
      const channel = watch(await this.connection.createChannel());
      try {
        return await use(channel);
      } finally {
        await closeQuietly(channel);
      }
    };
    return withDeadline(run(), CALL_TIMEOUT_MS, description);
  }
}

/** Every queue the apps declare for `prefix`: the shard queues, then the dead-letter queue. */
export function prefixQueueNames(prefix: string, shardsCount: number): string[] {
  return [...allShardQueueNames(prefix, shardsCount), deadLetterQueueName(prefix)];
}

/** A channel the broker closes on a failed call (404, 406) also emits 'error'; the call itself rejects with it. */
function watch<C extends Channel>(channel: C): C {
  channel.on('error', () => undefined);
  return channel;
}

/** Closes a channel that a failed call may already have closed. */
async function closeQuietly(channel: Channel): Promise<void> {
  try {
    await channel.close();
  } catch (error) {
    if (!(error instanceof IllegalOperationError)) throw error;
  }
}
