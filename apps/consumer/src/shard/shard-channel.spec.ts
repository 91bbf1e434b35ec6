import type { Logger } from '@nestjs/common';
import type { ConsumeMessage } from 'amqplib';
import { RECONNECT_SECONDS } from '@app/rabbitmq';
import { type FakeChannel, FakeChannelManager, deferred } from '@app/testing';
import { ShardChannel } from './shard-channel';

const QUEUE = 'unit.shard.0';
const PREFETCH = 7;
/** After amqp-connection-manager's own reconnect delay, so that its reopen comes first. */
const REOPEN_MS = RECONNECT_SECONDS * 1000 + 500;
const PAUSE_MS = 7_000;

type Level = 'log' | 'warn' | 'error' | 'debug';

function setup() {
  const manager = new FakeChannelManager();
  const logger = { log: jest.fn(), warn: jest.fn(), error: jest.fn(), debug: jest.fn() };
  const deliveries: Array<{ message: ConsumeMessage; generation: number }> = [];
  const closed: number[] = [];
  const channel = new ShardChannel(
    manager,
    { queue: QUEUE, prefetch: () => PREFETCH },
    {
      delivery: (message, generation) => deliveries.push({ message, generation }),
      closed: (generation) => closed.push(generation),
    },
    logger as unknown as Logger,
  );
  /** The lines logged at `level`, in order. */
  const logged = (level: Level): string[] => logger[level].mock.calls.map(([line]) => String(line));
  return { manager, channel, deliveries, closed, logged };
}

/** One delivery on `on`; returns what the handler got for it. */
function deliver(on: FakeChannel, deliveries: ReturnType<typeof setup>['deliveries']) {
  on.deliver({ content: Buffer.from('{}') });
  return deliveries[deliveries.length - 1];
}

/**
 * Makes the next consume() on `on` wait for `release`; `started` resolves once it is called.
 * For the races of a consumer that comes up late.
 */
function holdNextConsume(on: FakeChannel, release: Promise<unknown>, started = deferred()): void {
  const consume = on.consume.bind(on);
  jest.spyOn(on, 'consume').mockImplementationOnce(async (...args) => {
    started.resolve();
    await release;
    return consume(...args);
  });
}

describe('ShardChannel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  describe('holdOff, resume and restart (the shard holds as many bytes as it should)', () => {
    /** Held off, then its channel closed by the broker: the reopen is due, the next connect() makes it. */
    async function heldOffAndReopening() {
      const parts = setup();
      parts.channel.open();
      const first = await parts.manager.connect();
      parts.channel.holdOff();
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      return parts;
    }

    it('holdOff cancels the consumer until resume, which starts one asking for its prefetch again; the shard counts as consumed meanwhile', async () => {
      const manager = new FakeChannelManager();
      const prefetches = [4, 2];
      const channel = new ShardChannel(
        manager,
        { queue: QUEUE, prefetch: () => prefetches.shift() ?? 9 },
        { delivery: () => undefined, closed: () => undefined },
        { log: jest.fn(), warn: jest.fn(), error: jest.fn(), debug: jest.fn() } as unknown as Logger,
      );
      channel.open();
      const amqp = await manager.connect();
      expect(amqp.prefetched).toBe(4);
      channel.holdOff();
      channel.holdOff();
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(false);
      await jest.advanceTimersByTimeAsync(60_000);
      expect(channel.msWithoutConsumer()).toBe(0);
      expect(amqp.consumers).toBe(1);

      channel.resume();
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.consumers).toBe(2);
      expect(amqp.prefetched).toBe(2);
      expect(channel.isConsuming()).toBe(true);
      channel.resume();
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.consumers).toBe(2);
    });

    it('a channel opened while held off waits for resume; a pause outlasting the hold keeps it off', async () => {
      const { manager, channel } = await heldOffAndReopening();
      const second = await manager.connect();
      expect(second.consumers).toBe(0);
      channel.pause(PAUSE_MS);
      channel.resume();
      await jest.advanceTimersByTimeAsync(PAUSE_MS - 1);
      expect(second.consumers).toBe(0);
      await jest.advanceTimersByTimeAsync(1);
      expect(second.consumers).toBe(1);
    });

    it('a resume while a new channel declares its queues starts one consumer, not two', async () => {
      const { manager, channel } = await heldOffAndReopening();
      const declared = deferred();
      jest.spyOn(manager, 'ensureTopology').mockImplementationOnce(() => declared.promise);
      const connecting = manager.connect();
      await jest.advanceTimersByTimeAsync(0);
      channel.resume();
      declared.resolve();
      const second = await connecting;
      await jest.advanceTimersByTimeAsync(0);
      expect(second.consumers).toBe(1);
      expect(channel.isConsuming()).toBe(true);
    });

    it("after a long hold, /health's grace for a consumer starts at the resume", async () => {
      const { manager, channel } = setup();
      channel.open();
      const amqp = await manager.connect();
      channel.holdOff();
      await jest.advanceTimersByTimeAsync(60_000);
      const consumed = deferred();
      holdNextConsume(amqp, consumed.promise);
      channel.resume();
      expect(channel.msWithoutConsumer()).toBeLessThan(1_000);
      consumed.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.msWithoutConsumer()).toBe(0);
    });

    it('a restart asked for by deliveries that came before consume-ok replaces that consumer once it is up', async () => {
      const { manager, channel } = setup();
      channel.open();
      const consumeStarted = deferred();
      const consumed = deferred();
      const connecting = manager.connect((fake) => holdNextConsume(fake, consumed.promise, consumeStarted));
      await consumeStarted.promise;
      channel.restart();
      consumed.resolve();
      const amqp = await connecting;
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(amqp.consumers).toBe(2);
      expect(channel.isConsuming()).toBe(true);
    });

    it('restart replaces the consumer at once, but not while held off, paused or stopping', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      const amqp = await manager.connect();
      channel.restart();
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(amqp.consumers).toBe(2);
      expect(channel.isConsuming()).toBe(true);
      // Routine: only the channel's first consumer is logged at info.
      expect(logged('log')).toEqual([`consuming ${QUEUE}`]);

      channel.holdOff();
      channel.restart();
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.consumers).toBe(2);
      channel.resume();
      await jest.advanceTimersByTimeAsync(0);
      await channel.stopConsuming();
      channel.restart();
      await jest.advanceTimersByTimeAsync(0);
      expect(amqp.consumers).toBe(3);
      expect(channel.isConsuming()).toBe(false);
    });
  });

  it('opens a channel named after its queue, sets the prefetch and consumes with manual acks', async () => {
    const { manager, channel, logged } = setup();
    channel.open();
    expect(manager.wrappers).toHaveLength(1);
    // A consume-only channel: no publisher confirms.
    expect(manager.wrappers[0].options).toMatchObject({ name: QUEUE, confirm: false });
    expect(channel.isConsuming()).toBe(false);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(channel.msWithoutConsumer()).toBe(2_000);

    const amqp = await manager.connect();
    expect(amqp.prefetched).toBe(PREFETCH);
    // An ack is what lets the broker forget a delivery: never auto-ack, whatever the default.
    expect(amqp.consumes).toEqual([{ queue: QUEUE, options: { noAck: false } }]);
    expect(channel.isConsuming()).toBe(true);
    expect(channel.msWithoutConsumer()).toBe(0);
    expect(logged('log')).toEqual([`consuming ${QUEUE}`]);
  });

  it('acks and nacks a delivery on the channel that delivered it, one delivery at a time', async () => {
    const { manager, channel, deliveries } = setup();
    channel.open();
    const amqp = await manager.connect();
    const [a, b, c] = [deliver(amqp, deliveries), deliver(amqp, deliveries), deliver(amqp, deliveries)];
    expect(channel.isCurrent(a.generation)).toBe(true);

    expect(channel.ack(a.message, a.generation)).toBe(true);
    expect(channel.nack(b.message, b.generation, false)).toBe(true);
    expect(channel.nack(c.message, c.generation, true)).toBe(true);
    expect(amqp.acked).toEqual([1]);
    // Never "all up to": the other deliveries in hand are not written yet.
    expect(amqp.nacked).toEqual([
      { tag: 2, allUpTo: false, requeue: false },
      { tag: 3, allUpTo: false, requeue: true },
    ]);
  });

  it('settles nothing for a channel that closed: its deliveries come back on the next one, under a new generation', async () => {
    const { manager, channel, deliveries, closed } = setup();
    expect(channel.isCurrent(0)).toBe(false);
    channel.open();
    const first = await manager.connect();
    const old = deliver(first, deliveries);

    first.closeByBroker();
    expect(closed).toEqual([old.generation]);
    expect(channel.isCurrent(old.generation)).toBe(false);
    expect(channel.ack(old.message, old.generation)).toBe(false);
    expect(channel.nack(old.message, old.generation, true)).toBe(false);

    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await manager.connect();
    const fresh = deliver(second, deliveries);
    expect(fresh.generation).not.toBe(old.generation);
    // The same delivery tag means another delivery on the new channel.
    expect(fresh.message.fields.deliveryTag).toBe(old.message.fields.deliveryTag);
    expect(channel.ack(old.message, old.generation)).toBe(false);
    expect(second.acked).toEqual([]);
    expect(channel.ack(fresh.message, fresh.generation)).toBe(true);
    expect(second.acked).toEqual([1]);
    expect(first.acked).toEqual([]);
    expect(first.nacked).toEqual([]);
  });

  it('settles nothing before its first channel opens', () => {
    const { channel } = setup();
    const message = { fields: { deliveryTag: 1 } } as ConsumeMessage;
    expect(channel.ack(message, 0)).toBe(false);
    expect(channel.ack(message, 1)).toBe(false);
  });

  it('reports a settle the closing channel refused as not sent, naming the delivery', async () => {
    const { manager, channel, deliveries, logged } = setup();
    channel.open();
    const amqp = await manager.connect();
    const { message, generation } = deliver(amqp, deliveries);
    jest.spyOn(amqp, 'ack').mockImplementation(() => {
      throw new Error('Channel closing');
    });
    expect(channel.ack(message, generation)).toBe(false);
    expect(logged('warn')).toEqual([`could not settle delivery 1 of ${QUEUE}: Channel closing`]);
  });

  describe('reopening', () => {
    it('reopens a channel the broker closed on a live connection, after the reconnect delay, and closes the old wrapper', async () => {
      const { manager, channel, closed, logged } = setup();
      channel.open();
      const first = await manager.connect();
      first.closeByBroker();
      expect(channel.isConsuming()).toBe(false);
      // Its close event again (or late) changes nothing.
      first.emit('close');
      expect(closed).toHaveLength(1);

      await jest.advanceTimersByTimeAsync(REOPEN_MS - 1);
      expect(manager.wrappers).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(manager.wrappers).toHaveLength(2);
      expect(manager.wrappers[0].closed).toBe(true);
      expect(logged('warn')).toEqual([`reopening the channel of ${QUEUE}`]);
      expect(manager.wrappers[1].options).toMatchObject({ name: QUEUE, confirm: false });

      const second = await manager.connect();
      expect(second.consumers).toBe(1);
      expect(channel.isConsuming()).toBe(true);
      // One reopen per close.
      await jest.advanceTimersByTimeAsync(REOPEN_MS * 2);
      expect(manager.wrappers).toHaveLength(2);
    });

    it('says so when the old wrapper will not close', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      const first = await manager.connect();
      jest.spyOn(manager.wrappers[0], 'close').mockRejectedValue(new Error('already closed'));
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      expect(manager.wrappers).toHaveLength(2);
      expect(logged('warn')).toContain('closing a stale channel: already closed');
    });

    it('closes a channel whose consumer the broker cancelled, and opens a new one', async () => {
      const { manager, channel, closed, logged } = setup();
      channel.open();
      const first = await manager.connect();
      first.cancelByBroker();
      await jest.advanceTimersByTimeAsync(0);
      // An operator's only sign that the queue was deleted or the consumer cancelled.
      expect(logged('error')).toEqual([`the broker cancelled the consumer of ${QUEUE}; reopening its channel`]);
      expect(first.closed).toBe(true);
      expect(closed).toHaveLength(1);
      expect(channel.isConsuming()).toBe(false);

      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      expect(manager.wrappers).toHaveLength(2);
      await manager.connect();
      expect(channel.isConsuming()).toBe(true);
    });

    it('says so when the channel of a cancelled consumer will not close', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      const first = await manager.connect();
      jest.spyOn(first, 'close').mockRejectedValue(new Error('gone'));
      first.cancelByBroker();
      await jest.advanceTimersByTimeAsync(0);
      expect(logged('warn')).toEqual(['closing the channel: gone']);
    });

    it('leaves the reopen to amqp-connection-manager while the connection is down', async () => {
      const { manager, channel } = setup();
      channel.open();
      const first = await manager.connect();
      manager.connected = false;
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(REOPEN_MS * 2);
      expect(manager.wrappers).toHaveLength(1);
      // The manager reconnects and runs the setup again on a new channel.
      manager.connected = true;
      await manager.connect();
      expect(channel.isConsuming()).toBe(true);
    });

    it('does not open a second channel when amqp-connection-manager reopened it first', async () => {
      const { manager, channel, closed } = setup();
      channel.open();
      const first = await manager.connect();
      first.closeByBroker();
      const second = await manager.connect();
      await jest.advanceTimersByTimeAsync(REOPEN_MS * 2);
      expect(manager.wrappers).toHaveLength(1);
      expect(second.consumers).toBe(1);
      expect(channel.isConsuming()).toBe(true);
      // A late close event of the old channel does not touch the new one.
      first.emit('close');
      expect(closed).toHaveLength(1);
      expect(channel.isConsuming()).toBe(true);
    });

    it('a replaced wrapper that reconnects late closes its channel rather than consume beside the new one', async () => {
      const { manager, channel, deliveries } = setup();
      channel.open();
      const first = await manager.connect();
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      const second = await manager.connect();
      const late = await manager.connect(undefined, 0);
      expect(late.closed).toBe(true);
      expect(late.consumers).toBe(0);
      const fresh = deliver(second, deliveries);
      expect(channel.isCurrent(fresh.generation)).toBe(true);
      expect(channel.ack(fresh.message, fresh.generation)).toBe(true);
    });

    it('opens no channel once consuming stopped, nor once closed', async () => {
      for (const end of ['stopConsuming', 'close'] as const) {
        const { manager, channel } = setup();
        channel.open();
        const first = await manager.connect();
        // Closed before the stop, reopen due after it; and closed after the stop.
        first.closeByBroker();
        await jest.advanceTimersByTimeAsync(REOPEN_MS - 1);
        await channel[end]();
        await jest.advanceTimersByTimeAsync(REOPEN_MS);
        expect(manager.wrappers).toHaveLength(1);
        (await manager.connect()).closeByBroker();
        await jest.advanceTimersByTimeAsync(REOPEN_MS);
        expect(manager.wrappers).toHaveLength(1);
      }
    });
  });

  describe('failures', () => {
    it('explains a failing channel once, with a hint for mismatched queue arguments, until it consumes again', async () => {
      const { manager, channel, logged } = setup();
      const topology = jest
        .spyOn(manager, 'ensureTopology')
        .mockRejectedValueOnce(new Error('PRECONDITION_FAILED - inequivalent arg x-queue-type'))
        .mockRejectedValueOnce(new Error('PRECONDITION_FAILED - inequivalent arg x-queue-type'));
      channel.open();
      const first = await manager.connect();
      // The declaration failed: the channel is closed so that it is tried again.
      expect(first.closed).toBe(true);
      expect(first.consumers).toBe(0);
      expect(logged('error')).toEqual([
        `channel of ${QUEUE} failed: PRECONDITION_FAILED - inequivalent arg x-queue-type (the queues exist with ` +
          'other arguments: do QUEUE_TYPE and QUEUE_PREFIX match the queues already declared?); retrying',
      ]);

      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      const second = await manager.connect();
      expect(second.closed).toBe(true);
      expect(logged('error')).toHaveLength(1);
      expect(logged('warn')).toEqual([]);
      expect(logged('debug')).toEqual([
        `reopening the channel of ${QUEUE}`,
        `channel of ${QUEUE} failed again: PRECONDITION_FAILED - inequivalent arg x-queue-type`,
      ]);

      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      const third = await manager.connect();
      expect(topology).toHaveBeenCalledTimes(3);
      expect(channel.isConsuming()).toBe(true);
      expect(logged('log')).toEqual([`consuming ${QUEUE}`]);
      // Consuming again: the next failure is news.
      third.emit('error', new Error('connection reset'));
      expect(logged('error')).toEqual([expect.any(String), `channel of ${QUEUE} failed: connection reset; retrying`]);
    });

    it('logs the first error of a channel wrapper at error level, without a hint it does not need', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      manager.wrappers[0].emit('error', new Error('ACCESS_REFUSED'));
      expect(logged('error')).toEqual([`channel of ${QUEUE} failed: ACCESS_REFUSED; retrying`]);
      manager.wrappers[0].emit('error', new Error('ACCESS_REFUSED'));
      expect(logged('error')).toHaveLength(1);
      expect(logged('debug')).toEqual([`channel of ${QUEUE} failed again: ACCESS_REFUSED`]);
    });
  });

  describe('pause', () => {
    it('cancels the consumer and consumes again on the same channel when the pause ends', async () => {
      const { manager, channel } = setup();
      channel.open();
      const amqp = await manager.connect();
      await jest.advanceTimersByTimeAsync(1_000);
      channel.pause(PAUSE_MS);
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(false);
      await jest.advanceTimersByTimeAsync(3_000);
      expect(channel.msWithoutConsumer()).toBe(3_000);
      // A second pause under way does not extend the first.
      channel.pause(PAUSE_MS);
      expect(amqp.cancelled).toEqual(['ctag-1']);

      await jest.advanceTimersByTimeAsync(PAUSE_MS - 3_000 - 1);
      expect(amqp.consumers).toBe(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(amqp.consumers).toBe(2);
      expect(channel.isConsuming()).toBe(true);
      // The new consumer is the one cancelled by the next pause, which lasts its full time.
      channel.pause(PAUSE_MS);
      expect(amqp.cancelled).toEqual(['ctag-1', 'ctag-2']);
      await jest.advanceTimersByTimeAsync(PAUSE_MS - 1);
      expect(amqp.consumers).toBe(2);
      await jest.advanceTimersByTimeAsync(1);
      expect(amqp.consumers).toBe(3);
    });

    it('a channel opened during a pause waits for its end before consuming', async () => {
      const { manager, channel } = setup();
      channel.open();
      const first = await manager.connect();
      channel.pause(PAUSE_MS);
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      const second = await manager.connect();
      expect(second.consumers).toBe(0);
      await jest.advanceTimersByTimeAsync(PAUSE_MS - REOPEN_MS);
      expect(second.consumers).toBe(1);
      expect(second.prefetched).toBe(PREFETCH);
      expect(first.consumers).toBe(1);
      expect(channel.isConsuming()).toBe(true);
    });

    it('a pause that ends without a channel leaves the consumer to the next channel', async () => {
      const { manager, channel } = setup();
      channel.open();
      const first = await manager.connect();
      manager.connected = false;
      channel.pause(PAUSE_MS);
      first.closeByBroker();
      await jest.advanceTimersByTimeAsync(PAUSE_MS);
      expect(first.consumers).toBe(1);
      manager.connected = true;
      const second = await manager.connect();
      expect(second.consumers).toBe(1);
      expect(channel.isConsuming()).toBe(true);
    });

    it('a pause before the first channel holds its consumer off', async () => {
      const { manager, channel } = setup();
      channel.open();
      channel.pause(PAUSE_MS);
      const amqp = await manager.connect();
      expect(amqp.consumers).toBe(0);
      expect(amqp.cancelled).toEqual([]);
      await jest.advanceTimersByTimeAsync(PAUSE_MS);
      expect(amqp.consumers).toBe(1);
    });

    it('cancels a consumer that came up during the pause, and starts one when it ends: never two at once', async () => {
      const { manager, channel } = setup();
      channel.open();
      const consumeStarted = deferred();
      const consumed = deferred();
      const connecting = manager.connect((fake) => holdNextConsume(fake, consumed.promise, consumeStarted));
      await consumeStarted.promise;
      channel.pause(PAUSE_MS);
      consumed.resolve();
      const amqp = await connecting;
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(false);
      await jest.advanceTimersByTimeAsync(PAUSE_MS);
      expect(amqp.consumers).toBe(2);
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(true);
    });

    it('says so when the consumer cannot be cancelled or started again', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      const amqp = await manager.connect();
      jest.spyOn(amqp, 'cancel').mockRejectedValueOnce(new Error('channel closing'));
      jest.spyOn(amqp, 'consume').mockRejectedValueOnce(new Error('NOT_FOUND - no queue'));
      channel.pause(PAUSE_MS);
      await jest.advanceTimersByTimeAsync(0);
      expect(logged('warn')).toEqual([`could not cancel the consumer of ${QUEUE}: channel closing`]);
      await jest.advanceTimersByTimeAsync(PAUSE_MS);
      expect(logged('error')).toEqual([`channel of ${QUEUE} failed: NOT_FOUND - no queue; retrying`]);
      expect(channel.isConsuming()).toBe(false);
      // A pause of a channel without a consumer has nothing to cancel.
      channel.pause(PAUSE_MS);
      expect(amqp.cancelled).toStrictEqual([]);
      expect(logged('warn')).toHaveLength(1);
    });

    it('does nothing once consuming stopped or the channel closed', async () => {
      for (const end of ['stopConsuming', 'close'] as const) {
        const { manager, channel } = setup();
        channel.open();
        const amqp = await manager.connect();
        if (end === 'stopConsuming') channel.pause(PAUSE_MS);
        await channel[end]();
        channel.pause(PAUSE_MS);
        await jest.advanceTimersByTimeAsync(PAUSE_MS * 2);
        expect(amqp.consumers).toBe(1);
        expect(amqp.cancelled).toEqual(end === 'close' ? [] : ['ctag-1']);
      }
    });
  });

  describe('stopConsuming', () => {
    it('cancels the consumer and keeps the channel open to settle the deliveries in hand', async () => {
      const { manager, channel, deliveries } = setup();
      channel.open();
      const amqp = await manager.connect();
      const inHand = deliver(amqp, deliveries);
      await channel.stopConsuming();
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(false);
      expect(amqp.closed).toBe(false);
      expect(channel.ack(inHand.message, inHand.generation)).toBe(true);
      expect(amqp.acked).toEqual([1]);
    });

    it('without a consumer, cancels nothing', async () => {
      const { manager, channel, logged } = setup();
      await channel.stopConsuming();
      channel.open();
      const amqp = await manager.connect();
      expect(amqp.consumers).toBe(0);
      await channel.stopConsuming();
      expect(amqp.cancelled).toStrictEqual([]);
      expect(logged('warn')).toEqual([]);
    });

    it('waits for a setup under way: no consumer starts behind it', async () => {
      const { manager, channel } = setup();
      const topology = deferred();
      jest.spyOn(manager, 'ensureTopology').mockReturnValueOnce(topology.promise);
      channel.open();
      const connecting = manager.connect();
      let stopped = false;
      const stopping = channel.stopConsuming().then(() => (stopped = true));
      await jest.advanceTimersByTimeAsync(0);
      expect(stopped).toBe(false);
      topology.resolve();
      const amqp = await connecting;
      await stopping;
      expect(amqp.consumers).toBe(0);
      expect(channel.isConsuming()).toBe(false);
    });

    it('cancels a consumer that came up while it was stopping, before it resolves', async () => {
      const { manager, channel } = setup();
      const consumed = deferred();
      channel.open();
      const connecting = manager.connect((fake) => holdNextConsume(fake, consumed.promise));
      await jest.advanceTimersByTimeAsync(0);
      let stopped = false;
      const stopping = channel.stopConsuming().then(() => (stopped = true));
      await jest.advanceTimersByTimeAsync(0);
      expect(stopped).toBe(false);
      consumed.resolve();
      const amqp = await connecting;
      await stopping;
      expect(amqp.consumers).toBe(1);
      expect(amqp.cancelled).toEqual(['ctag-1']);
      expect(channel.isConsuming()).toBe(false);
    });

    it('waits for a consumer that a pause ending just before it was starting again, and cancels it', async () => {
      const { manager, channel } = setup();
      channel.open();
      const amqp = await manager.connect();
      const consumed = deferred();
      holdNextConsume(amqp, consumed.promise);
      channel.pause(PAUSE_MS);
      await jest.advanceTimersByTimeAsync(PAUSE_MS);
      let stopped = false;
      const stopping = channel.stopConsuming().then(() => (stopped = true));
      await jest.advanceTimersByTimeAsync(0);
      expect(stopped).toBe(false);
      consumed.resolve();
      await stopping;
      // Cancelled before stopConsuming() resolved: no delivery can come during the drain.
      expect(amqp.consumers).toBe(2);
      expect(amqp.cancelled).toEqual(['ctag-1', 'ctag-2']);
      expect(channel.isConsuming()).toBe(false);
    });

    it('says so when the consumer cannot be cancelled, and still resolves', async () => {
      const { manager, channel, logged } = setup();
      channel.open();
      const amqp = await manager.connect();
      jest.spyOn(amqp, 'cancel').mockRejectedValueOnce(new Error('channel closing'));
      await channel.stopConsuming();
      expect(logged('warn')).toEqual([`could not cancel the consumer of ${QUEUE}: channel closing`]);
    });
  });

  it('does not count a consumer that came up on a channel closed meanwhile', async () => {
    const { manager, channel, logged } = setup();
    const consumed = deferred();
    channel.open();
    const connecting = manager.connect((fake) => holdNextConsume(fake, consumed.promise));
    await jest.advanceTimersByTimeAsync(0);
    manager.channels[0].closeByBroker();
    await jest.advanceTimersByTimeAsync(1_000);
    consumed.resolve();
    await connecting;
    expect(channel.isConsuming()).toBe(false);
    expect(channel.msWithoutConsumer()).toBe(1_000);
    expect(logged('log')).toEqual([]);
  });

  it('close() closes the wrapper; before open() it has nothing to close', async () => {
    const { manager, channel } = setup();
    await channel.close();
    channel.open();
    await manager.connect();
    await channel.close();
    expect(manager.wrappers[0].closed).toBe(true);
  });
});
