// What the probes under tools/cluster share: the test cluster's nodes (scripts/rabbitmq-cluster.sh),
// queue declaration, and publishing one message with its confirm outcome. Plain amqplib, no project code.
const { execFile } = require('node:child_process');
const { join } = require('node:path');
const { promisify } = require('node:util');

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'rabbitmq-cluster.sh');
const run = promisify(execFile);

/** AMQP URL of node n (1..3). */
const urlOf = (n) => `amqp://guest:guest@127.0.0.1:${5680 + n}`;

async function cluster(...args) {
  const { stdout } = await run(SCRIPT, args.map(String));
  return stdout.trim();
}

/** rabbitmqctl against node n of the test cluster (its own cookie). */
async function ctl(n, ...args) {
  const { stdout } = await run('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-q', '-n', `rc${n}@localhost`, ...args], {
    env: { ...process.env, HOME: `${process.env.RABBITMQ_CLUSTER_DIR ?? '/tmp/rabbitmq-cluster'}/home` },
  });
  return stdout;
}

/**
 * Each queue of `prefix` as node n sees it: the node its record (the amqqueue pid, which a channel
 * reads when it first publishes to the queue) names as leader, and the node ra_leaderboard knows
 * as the leader now: { name: { record, leader } }.
 */
async function leaders(n, prefix) {
  const text = await ctl(
    n,
    'eval',
    `lists:flatten([io_lib:format("~s ~s ~s~n", [element(4, amqqueue:get_name(Q)), element(2, amqqueue:get_pid(Q)),
       case ra_leaderboard:lookup_leader(element(1, amqqueue:get_pid(Q))) of undefined -> none; {_, L} -> L end])
     || Q <- rabbit_amqqueue:list(<<"/">>)]).`,
  );
  const out = {};
  // eval prints the string as an Erlang term: one "name record leader" line per queue.
  for (const line of JSON.parse(text.trim()).split('\n')) {
    const [name, record, leader] = line.split(' ');
    if (name?.startsWith(prefix)) out[name] = { record, leader };
  }
  return out;
}

/**
 * Publishes one persistent message on a confirm channel and resolves with what became of it:
 * 'ack', 'nack', 'closed' (the channel went away first) or 'timeout' (no answer in timeoutMs).
 */
function publishOne(channel, queue, { timeoutMs = 5_000, mandatory = false } = {}) {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ outcome, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    try {
      channel.sendToQueue(queue, Buffer.from('probe'), { persistent: true, mandatory }, (error) =>
        done(error ? (/closed/i.test(error.message) ? 'closed' : 'nack') : 'ack'),
      );
    } catch {
      done('closed');
    }
  });
}

/** Quorum queue arguments, with what a probe adds (e.g. a leader locator). */
function quorumArgs(extra = {}) {
  return { durable: true, arguments: { 'x-queue-type': 'quorum', ...extra } };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { cluster, ctl, leaders, publishOne, quorumArgs, sleep, urlOf };
