// Does dead-lettering survive the loss of the node that leads both the source and the
// dead-letter queue? And does a delivery limit end a message that keeps coming back?
//
//   flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start
//   flock /tmp/heavy.lock node tools/cluster/dead-letter.js [--at-most-once] [--down 8]
//
// A quorum dead-letter queue and a quorum source queue (x-delivery-limit 3, dead-lettering to the
// former), both led by node 1. The source queue uses x-dead-letter-strategy at-least-once with
// x-overflow reject-publish (at-least-once needs it; with the default drop-head RabbitMQ falls back
// to at-most-once), or, with --at-most-once, neither. 1,000 messages are published and confirmed
// from node 3; a consumer on node 2 rejects every one: odd ones without requeue (poison: straight
// to the dead-letter queue), even ones with requeue (so each comes back until the delivery limit
// dead-letters it). Node 1 is SIGKILLed mid-way and started again after --down s. At the end,
// every message must be in the dead-letter queue once: printed are the missing and the extra.
const amqplib = require('amqplib');
const { cluster, quorumArgs, sleep, urlOf } = require('./cluster');

const args = process.argv.slice(2);
const AT_MOST_ONCE = args.includes('--at-most-once');
const at = args.indexOf('--down');
const DOWN_S = at >= 0 ? Number(args[at + 1]) : 8;
const MESSAGES = 1_000;

async function main() {
  const dlq = `deadletter-${process.pid}.dlq`;
  const source = `deadletter-${process.pid}.source`;
  const declarer = await amqplib.connect(urlOf(1));
  declarer.on('error', () => undefined);
  const setup = await declarer.createChannel();
  await setup.assertQueue(dlq, quorumArgs());
  await setup.assertQueue(
    source,
    quorumArgs({
      'x-delivery-limit': 3,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': dlq,
      ...(AT_MOST_ONCE ? {} : { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }),
    }),
  );

  const pubConnection = await amqplib.connect(urlOf(3));
  const pub = await pubConnection.createConfirmChannel();
  for (let i = 0; i < MESSAGES; i++) pub.sendToQueue(source, Buffer.from(String(i)), { persistent: true });
  await pub.waitForConfirms();

  const consumerConnection = await amqplib.connect(urlOf(2));
  const consumer = await consumerConnection.createChannel();
  await consumer.prefetch(20);
  let rejected = 0;
  await consumer.consume(source, (message) => {
    if (message === null) return;
    rejected++;
    consumer.nack(message, false, Number(message.content.toString()) % 2 === 0);
  });

  while (rejected < MESSAGES / 4) await sleep(10);
  console.log(`after ${rejected} rejections: ${await cluster('kill', 1)}`);
  await sleep(DOWN_S * 1000);
  console.log(await cluster('start-node', 1));

  const reader = await pubConnection.createChannel();
  const deadline = Date.now() + 60_000;
  let counts;
  for (;;) {
    counts = {
      source: (await reader.checkQueue(source)).messageCount,
      dlq: (await reader.checkQueue(dlq)).messageCount,
    };
    if ((counts.source === 0 && counts.dlq >= MESSAGES) || Date.now() > deadline) break;
    await sleep(500);
  }
  await consumerConnection.close();
  const seen = new Map();
  for (let message = await reader.get(dlq); message; message = await reader.get(dlq)) {
    const body = message.content.toString();
    seen.set(body, (seen.get(body) ?? 0) + 1);
    reader.ack(message);
  }
  const missing = Array.from({ length: MESSAGES }, (_, i) => String(i)).filter((body) => !seen.has(body));
  const extra = [...seen.values()].reduce((n, count) => n + count - 1, 0);
  console.log(
    `${AT_MOST_ONCE ? 'at-most-once' : 'at-least-once'}: published ${MESSAGES}, rejections ${rejected}, ` +
      `left in source ${counts.source}, dead-lettered ${seen.size} distinct, missing ${missing.length}, extra copies ${extra}`,
  );
  await reader.deleteQueue(source);
  await reader.deleteQueue(dlq);
  await pubConnection.close();
  await declarer.close().catch(() => undefined);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
