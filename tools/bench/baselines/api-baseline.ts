/**
 * The benchmark's yardstick: the api's contract for a valid `POST /message`, with no framework
 * around it (plain Fastify and one amqplib confirm channel). Same validation function, same shard
 * math, same queue layout and wire format (messages of at most SHARD_MESSAGE_MAX_ENTRIES entries per
 * shard, with the shards-count header), persistent and mandatory, and 201 only once the broker has
 * confirmed every one. Started by the benchmark (tools/bench/ingest.ts, end-to-end.ts); not a product.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import Fastify from 'fastify';
import { readApiConfig, readRabbitmqConfig } from '@app/config';
import { SHARDS_COUNT_HEADER, type WireEntry, encodeShardPackets } from '@app/contracts';
import { SHARD_EXCHANGE, assertTopology } from '@app/rabbitmq';
import { parseRfc3339Seconds } from '@app/rfc3339';
import { shardOfSeconds, shardQueueName } from '@app/sharding';

const TIMESTAMP_MESSAGE = 'timestamp must be an RFC 3339 date-time with a time zone';

async function main(): Promise<void> {
  const rabbitmq = readRabbitmqConfig();
  const api = readApiConfig();
  const connection = await connect(rabbitmq.url);
  const channel = await connection.createConfirmChannel();
  await assertTopology(channel, rabbitmq);

  // Mandatory publishes, as the api's: a message the broker routes nowhere comes back before its confirm.
  const returned = new Set<string>();
  channel.on('return', (message: { properties: { messageId?: unknown } }) => {
    if (typeof message.properties.messageId === 'string') returned.add(message.properties.messageId);
  });

  const headers = { [SHARDS_COUNT_HEADER]: rabbitmq.shardsCount };
  const publishPacket = (shard: number, packet: Buffer): Promise<void> => {
    const messageId = randomUUID();
    return new Promise<void>((resolve, reject) => {
      channel.publish(
        SHARD_EXCHANGE,
        shardQueueName(rabbitmq.queuePrefix, shard),
        packet,
        { persistent: true, contentType: 'application/json', mandatory: true, messageId, headers },
        (error: unknown) => {
          if (error) reject(new Error('nacked by the broker', { cause: error }));
          else if (returned.delete(messageId)) reject(new Error('routed to no queue'));
          else resolve();
        },
      );
    });
  };
  const publish = async (shard: number, entries: WireEntry[]): Promise<void> => {
    await Promise.all(encodeShardPackets(shard, entries).map((packet) => publishPacket(shard, packet)));
  };

  const app = Fastify({ bodyLimit: api.maxBodyBytes });
  app.removeContentTypeParser(['text/plain']);
  app.get('/health', () => Promise.resolve({ status: 'ok' }));
  app.post('/message', async (request, reply) => {
    const body = request.body;
    if (!Array.isArray(body) || body.length === 0) {
      return reply.code(400).send({ statusCode: 400, message: 'body must be a non-empty JSON array of entries' });
    }
    if (body.length > api.maxEntries) return reply.code(413).send({ statusCode: 413 });

    const messages: string[] = [];
    const byShard = new Map<number, WireEntry[]>();
    const ids = body.map((item: unknown, index): string => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        messages.push(`${index} must be an object with a timestamp`);
        return '';
      }
      const entry = item as Record<string, unknown>;
      for (const key of Object.keys(entry)) {
        if (key !== 'timestamp' && key !== 'value') messages.push(`${index}.property ${key} should not exist`);
      }
      const { timestamp, value } = entry;
      const seconds = typeof timestamp === 'string' ? parseRfc3339Seconds(timestamp) : null;
      if (seconds === null) messages.push(`${index}.${TIMESTAMP_MESSAGE}`);
      if (value != null && typeof value !== 'string') messages.push(`${index}.value must be a string`);
      if (seconds === null || messages.length > 0) return '';

      const id = randomUUID();
      const shard = shardOfSeconds(seconds, rabbitmq.shardsCount);
      const text = timestamp as string;
      const wire: WireEntry = value == null ? { id, timestamp: text } : { id, timestamp: text, value: value as string };
      const group = byShard.get(shard);
      if (group) group.push(wire);
      else byShard.set(shard, [wire]);
      return id;
    });
    if (messages.length > 0) return reply.code(400).send({ statusCode: 400, message: messages });

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('no confirm in time')), api.publishTimeoutMs);
    });
    try {
      await Promise.race([Promise.all([...byShard].map(([shard, group]) => publish(shard, group))), timedOut]);
    } catch (error) {
      return reply
        .code(503)
        .header('Retry-After', '1')
        .send({ statusCode: 503, message: String(error) });
    } finally {
      clearTimeout(timer);
    }
    return reply.code(201).send({ accepted: ids.length, ids });
  });

  const close = async (): Promise<void> => {
    await app.close();
    await channel.close();
    await connection.close();
  };
  const stop = (): void => {
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('baseline failed to close:', error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await app.listen({ host: api.host, port: api.port });
}

main().catch((error: unknown) => {
  console.error('baseline failed:', error);
  process.exit(1);
});
