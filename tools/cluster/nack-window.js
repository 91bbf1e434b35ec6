// The minimal reproduction of the long nack window (issue 9), with bare amqplib on the test cluster.
//
//   flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start
//   flock /tmp/heavy.lock node tools/cluster/nack-window.js [--queues 5] [--down 30] [--after 8]
//                                                   [--passive | --redeclare] [--mandatory] [--locator]
//
// Declares quorum queues through node 1 (their leaders go there: the default locator is
// client-local), SIGKILLs node 1, and every 250 ms publishes one persistent message to every
// queue from node 2 on five kinds of confirm channel:
//   warm      opened before the kill, had published to every queue once before it; kept
//   cold      opened before the kill, never published before it; first publish at once after; kept
//   fresh     opened right after the kill, first publish at once; kept
//   recycled  like fresh, but closed and replaced by a new channel after any publish not acked
//   new       a new channel every round, closed after it
// It prints, every second, what came back per queue (A ack, N nack, T no answer in 5 s, C closed)
// and, per queue, the node its record names as leader / the node that leads it (ra_leaderboard).
// After --down seconds node 1 starts again; probing goes on for --after seconds.
// --passive / --redeclare: every channel passively declares / declares each queue before its
// first publish. --locator: declare with x-queue-leader-locator=balanced.
const amqp = require('amqplib');
const { cluster, leaders, publishOne, quorumArgs, sleep, urlOf } = require('./cluster');

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const QUEUES = option('queues', 5);
const DOWN_S = option('down', 30);
const AFTER_S = option('after', 8);
const ROUND_MS = 250;
const KINDS = ['warm', 'cold', 'fresh', 'recycled', 'new'];
const LETTER = { ack: 'A', nack: 'N', timeout: 'T', closed: 'C' };

async function main() {
  const prefix = `nackwin-${process.pid}`;
  const queues = Array.from({ length: QUEUES }, (_, i) => `${prefix}.q${i}`);
  const declareArgs = quorumArgs(flag('locator') ? { 'x-queue-leader-locator': 'balanced' } : {});

  const declarer = await amqp.connect(urlOf(1));
  declarer.on('error', () => undefined);
  const setup = await declarer.createChannel();
  for (const queue of queues) await setup.assertQueue(queue, declareArgs);

  const probe = await amqp.connect(urlOf(2));
  probe.on('error', (error) => console.log(`probe connection error: ${error.message}`));
  const open = async () => {
    const channel = await probe.createConfirmChannel();
    channel.on('error', () => undefined);
    for (const queue of queues) {
      if (flag('passive')) await channel.checkQueue(queue);
      if (flag('redeclare')) await channel.assertQueue(queue, declareArgs);
    }
    return channel;
  };
  const publishAll = (channel) =>
    Promise.all(queues.map((queue) => publishOne(channel, queue, { mandatory: flag('mandatory') })));

  const channels = { warm: await open(), cold: await open() };
  await publishAll(channels.warm);
  console.log('before the kill, record/leader:', await leaders(2, prefix));

  console.log(await cluster('kill', 1));
  const killedAt = performance.now();
  const since = () => (performance.now() - killedAt) / 1000;
  channels.fresh = await open();
  channels.recycled = await open();

  let leaderLine = '';
  let done = false;
  const watch = (async () => {
    while (!done) {
      try {
        const seen = await leaders(2, prefix);
        leaderLine = queues.map((q) => `${seen[q]?.record.slice(0, 3)}/${seen[q]?.leader.slice(0, 3)}`).join(' ');
      } catch (error) {
        leaderLine = `(no answer: ${error.message.split('\n')[0]})`;
      }
      await sleep(500);
    }
  })();

  const rounds = [];
  let restart;
  for (let round = 0; since() < DOWN_S + AFTER_S; round++) {
    const roundStart = performance.now();
    if (restart === undefined && since() >= DOWN_S) {
      restart = cluster('start-node', 1).then((out) => console.log(`t=${since().toFixed(2)} ${out}`));
    }
    channels.new = await open();
    const results = await Promise.all(KINDS.map((kind) => publishAll(channels[kind])));
    const row = { t: since(), node1: restart === undefined ? 'down' : 'back' };
    KINDS.forEach((kind, i) => (row[kind] = results[i].map((r) => LETTER[r.outcome]).join('')));
    rounds.push(row);
    channels.new.close().catch(() => undefined);
    if (/[^A]/.test(row.recycled)) {
      channels.recycled.close().catch(() => undefined);
      channels.recycled = await open();
    }
    if (round % 4 === 0) {
      const cells = KINDS.map((kind) => `${kind}=${row[kind]}`).join(' ');
      console.log(`t=${row.t.toFixed(2).padStart(6)} ${cells}  record/leader: ${leaderLine}`);
    }
    await sleep(Math.max(0, ROUND_MS - (performance.now() - roundStart)));
  }
  done = true;
  await Promise.all([watch, restart]);

  // For each kind: publishes not acked, and the last moment one was not acked while node 1 was down.
  const figures = KINDS.map((kind) => {
    const bad = rounds.filter((r) => /[^A]/.test(r[kind]));
    const lastDown = bad.filter((r) => r.node1 === 'down').at(-1);
    const notAcked = bad.reduce((n, r) => n + r[kind].replace(/A/g, '').length, 0);
    return `${kind}: notAcked=${notAcked} lastWhileDown=${lastDown ? lastDown.t.toFixed(2) + 's' : 'none'}`;
  });
  console.log(`summary (${rounds.length} rounds x ${QUEUES} queues, node 1 down ${DOWN_S}s): ${figures.join('; ')}`);

  const cleanup = await probe.createChannel();
  for (const queue of queues) await cleanup.deleteQueue(queue);
  await probe.close();
  await declarer.close().catch(() => undefined);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
