// What a node loss costs the consuming side, on the test cluster.
//
//   flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start
//   flock /tmp/heavy.lock node tools/cluster/consumer-window.js [--down 10]
//
// Five quorum queues with their leaders on node 1; a publisher on node 3 (warm, so never stuck)
// sends one numbered persistent message to each queue every 100 ms. Two consumers (prefetch 20,
// ack after receipt) drain every queue:
//   stay   connected to node 2, which survives: its channels predate the kill
//   moved  amqp-connection-manager over the node list, connected to node 1 first: it loses its
//          connection with the node and consumes again from another
// Node 1 (connection of `moved` and every leader) is SIGKILLed, and started again after --down s.
// Printed: for each consumer, the longest gap between deliveries after the kill, its redeliveries;
// and at the end every confirmed message is looked for among the deliveries (lost must be 0).
const amqplib = require('amqplib');
const amqp = require('amqp-connection-manager');
const { cluster, quorumArgs, sleep, urlOf } = require('./cluster');

const args = process.argv.slice(2);
const at = args.indexOf('--down');
const DOWN_S = at >= 0 ? Number(args[at + 1]) : 10;
const QUEUES = 5;

async function main() {
  const prefix = `consumewin-${process.pid}`;
  const queues = Array.from({ length: QUEUES }, (_, i) => `${prefix}.q${i}`);
  const declarer = await amqplib.connect(urlOf(1));
  declarer.on('error', () => undefined);
  const setup = await declarer.createChannel();
  for (const queue of queues) await setup.assertQueue(queue, quorumArgs({ 'x-delivery-limit': 100 }));

  const consumers = {};
  const track = (name) => (consumers[name] = { seen: new Set(), redelivered: 0, last: 0, gaps: [], errors: [] });
  const onMessage = (name, channel) => (message) => {
    if (message === null) return; // cancelled by the broker
    const c = consumers[name];
    const now = performance.now();
    if (c.last) c.gaps.push({ at: now, ms: now - c.last });
    c.last = now;
    if (message.fields.redelivered) c.redelivered++;
    c.seen.add(message.content.toString());
    channel.ack(message);
  };

  // stay: plain amqplib on node 2.
  track('stay');
  const stayConnection = await amqplib.connect(urlOf(2));
  const stay = await stayConnection.createChannel();
  stay.on('error', (error) => consumers.stay.errors.push(error.message));
  await stay.prefetch(20);
  for (const queue of queues) await stay.consume(queue, onMessage('stay', stay));

  // moved: the library the consumer app uses, node 1 first.
  track('moved');
  const manager = amqp.connect([1, 2, 3].map(urlOf), { heartbeatIntervalInSeconds: 5, reconnectTimeInSeconds: 1 });
  let killedAt = 0;
  const since = () => ((performance.now() - killedAt) / 1000).toFixed(2);
  manager.on('connect', ({ url }) => killedAt && console.log(`  t=${since()} s moved: connected to ${url.slice(-4)}`));
  const moved = manager.createChannel({
    confirm: false,
    setup: async (channel) => {
      channel.on('error', (error) => consumers.moved.errors.push(error.message));
      await channel.prefetch(20);
      for (const queue of queues) await channel.consume(queue, onMessage('moved', channel));
    },
  });
  await moved.waitForConnect();

  // The publisher: node 3, warm before the kill.
  const pubConnection = await amqplib.connect(urlOf(3));
  const pub = await pubConnection.createConfirmChannel();
  const confirmed = new Set();
  let sequence = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      for (const queue of queues) {
        const body = `${queue}#${++sequence}`;
        pub.sendToQueue(queue, Buffer.from(body), { persistent: true }, (error) => error || confirmed.add(body));
      }
      await sleep(100);
    }
  })();

  await sleep(2_000);
  killedAt = performance.now();
  console.log(await cluster('kill', 1));
  await sleep(DOWN_S * 1000);
  console.log(`  t=${since()} s ${await cluster('start-node', 1)}`);
  await sleep(3_000);
  publishing = false;
  await publisher;
  await pub.waitForConfirms();
  await sleep(2_000);

  const received = new Set([...consumers.stay.seen, ...consumers.moved.seen]);
  const lost = [...confirmed].filter((body) => !received.has(body)).length;
  for (const [name, c] of Object.entries(consumers)) {
    const after = c.gaps.filter((g) => g.at >= killedAt);
    const worst = after.reduce((max, g) => (g.ms > max.ms ? g : max), { ms: 0, at: killedAt });
    console.log(
      `${name}: deliveries ${c.seen.size}, redelivered ${c.redelivered}, longest gap after the kill ` +
        `${(worst.ms / 1000).toFixed(2)} s (ending at t=${((worst.at - killedAt) / 1000).toFixed(2)} s)` +
        `${c.errors.length ? `, channel errors: ${[...new Set(c.errors)].join('; ')}` : ''}`,
    );
  }
  console.log(`confirmed ${confirmed.size}, received ${received.size}, lost ${lost}`);

  const cleanup = await pubConnection.createChannel();
  for (const queue of queues) await cleanup.deleteQueue(queue);
  await Promise.all([manager.close(), stayConnection.close(), pubConnection.close()]);
  await declarer.close().catch(() => undefined);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
