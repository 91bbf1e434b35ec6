// The publishing design of docs/cluster.md, proved on the test cluster with the library the api
// uses (amqp-connection-manager over amqplib), and what a node loss costs it.
//
//   flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start
//   flock /tmp/heavy.lock node tools/cluster/failover-publisher.js [--no-guard] [--kills 2] [--down 12]
//                                               [--start N] [--victim N]
//
// One connection over the node list (in turn from --start, default node 1), one confirm channel, and
// every 100 ms, while connected with the queues declared (else counted as a 503, as the api does),
// one persistent message to each of 5 quorum queues whose leaders are on node 1 (1 s
// publish timeout). The guard: a publish the broker nacks makes the publisher reconnect (the
// channel's per-queue state on RabbitMQ 3.10 may be stuck on a dead leader; a new channel reads
// the repaired record). The last queue gets its first publish only after the first kill, so that
// a stuck state can happen on a channel that was not moved.
// Each round SIGKILLs the node holding the publisher's connection, or --victim N, restarts it
// after --down seconds, and prints the unavailability: from the kill to the first publish of the
// steady run of confirms that follows (publishes are then confirmed, every one, for 2 s or more).
const amqp = require('amqp-connection-manager');
const { cluster, leaders, quorumArgs, sleep, urlOf } = require('./cluster');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const GUARD = !args.includes('--no-guard');
const KILLS = option('kills', 2);
const DOWN_S = option('down', 12);
const VICTIM = option('victim', 0);
const QUEUES = 5;
const TICK_MS = 100;
const STEADY_MS = 2_000;

function shuffled(list) {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function main() {
  const prefix = `failover-${process.pid}`;
  const queues = Array.from({ length: QUEUES }, (_, i) => `${prefix}.q${i}`);
  // In turn from --start (default node 1, the leaders' node), the others shuffled.
  const start = option('start', 1);
  const urls = [start, ...shuffled([1, 2, 3].filter((n) => n !== start))].map(urlOf);
  let connectedTo = null;
  let lastGuard = 0;
  let guardReconnects = 0;
  // Leaders on node 1: declare through it first (the default locator is client-local).
  const direct = amqp.connect([urlOf(1)]);
  const declaring = direct.createChannel({
    setup: (c) => Promise.all(queues.map((q) => c.assertQueue(q, quorumArgs()))),
  });
  await declaring.waitForConnect();
  await direct.close();

  const manager = amqp.connect(urls, { heartbeatIntervalInSeconds: 5, reconnectTimeInSeconds: 1 });
  let killedAt = 0;
  const at = () => `t=${((performance.now() - killedAt) / 1000).toFixed(2)} s`;
  manager.on('connect', ({ url }) => {
    connectedTo = Number(new URL(url).port) - 5680;
    if (killedAt) console.log(`  ${at()} connected to node ${connectedTo}`);
  });
  manager.on('disconnect', ({ err }) => {
    if (killedAt) console.log(`  ${at()} disconnected from node ${connectedTo}: ${err?.message ?? 'closed'}`);
    connectedTo = null;
  });
  manager.on('connectFailed', ({ url }) => console.log(`  ${at()} could not connect to ${url.slice(-4)}`));
  const channel = manager.createChannel({
    confirm: true,
    publishTimeout: 1_000,
    // What the apps do on every (re)connect: declare the topology.
    setup: async (ch) => {
      for (const queue of queues) await ch.assertQueue(queue, quorumArgs());
    },
  });
  // As the api does: publish only while connected with the topology declared, else answer 503.
  let ready = false;
  channel.on('connect', () => (ready = true));
  manager.on('disconnect', () => (ready = false));
  await channel.waitForConnect();
  console.log(`urls in turn from ${urls.map((u) => u.slice(-4)).join(' ')}; guard ${GUARD ? 'on' : 'off'}`);
  console.log('record/leader:', await leaders(2, prefix));

  const log = []; // { t, queue, ok, why }
  let warmQueues = QUEUES - 1;
  let running = true;
  const publisher = (async () => {
    while (running) {
      const t = performance.now();
      for (const queue of queues.slice(0, warmQueues)) {
        if (!ready) {
          log.push({ t, queue, ok: false, why: 'not connected' });
          continue;
        }
        channel.sendToQueue(queue, Buffer.from('x'), { persistent: true }).then(
          () => log.push({ t, queue, ok: true }),
          (error) => {
            const why = /nack/i.test(error.message) ? 'nack' : error.message;
            log.push({ t, queue, ok: false, why });
            if (GUARD && why === 'nack' && performance.now() - lastGuard > 1_000) {
              lastGuard = performance.now();
              guardReconnects++;
              console.log(`  ${at()} nacked: reconnecting`);
              manager.reconnect();
            }
          },
        );
      }
      await sleep(TICK_MS);
    }
  })();

  await sleep(2_000);
  for (let kill = 1; kill <= KILLS; kill++) {
    const victim = VICTIM || connectedTo || 1;
    const holding = connectedTo;
    killedAt = performance.now();
    console.log(`kill ${kill}: ${await cluster('kill', victim)} (publisher connected to node ${holding})`);
    warmQueues = QUEUES;
    await sleep(DOWN_S * 1000);
    console.log(`  ${await cluster('start-node', victim)}`);
    await sleep(3_000);
    const after = log.filter((r) => r.t >= killedAt).sort((a, b) => a.t - b.t);
    // The first publish from which every publish is confirmed for STEADY_MS.
    let steadyFrom = null;
    for (let i = 0; i < after.length; i++) {
      const windowEnd = after[i].t + STEADY_MS;
      const span = after.filter((r) => r.t >= after[i].t && r.t <= windowEnd);
      if (span.every((r) => r.ok) && after.at(-1).t >= windowEnd) {
        steadyFrom = after[i].t;
        break;
      }
    }
    const failed = after.filter((r) => !r.ok);
    const reasons = [...new Set(failed.map((r) => r.why))].join(', ') || 'none';
    const lastFail = failed.at(-1);
    console.log(
      `  unavailable ${steadyFrom === null ? 'past the run' : ((steadyFrom - killedAt) / 1000).toFixed(2) + ' s'}` +
        `; failed publishes ${failed.length} (${reasons}), last at ${lastFail ? ((lastFail.t - killedAt) / 1000).toFixed(2) + ' s' : '-'}` +
        `; guard reconnects so far ${guardReconnects}; now on node ${connectedTo}`,
    );
  }
  running = false;
  await publisher;
  await sleep(1_500);
  const cleanup = amqp.connect([urlOf(2)]);
  const ch = cleanup.createChannel({ setup: (c) => Promise.all(queues.map((q) => c.deleteQueue(q))) });
  await ch.waitForConnect();
  await Promise.all([cleanup.close(), manager.close()]);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
