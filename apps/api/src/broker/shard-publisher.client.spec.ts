import { Logger } from '@nestjs/common';
import { ClientRMQ } from '@nestjs/microservices';
import { EventEmitter } from 'node:events';
import { SHARD_EXCHANGE } from '@app/rabbitmq';
import { ShardPublisherClient, UnroutableMessageError } from './shard-publisher.client';

/**
 * A contract test of the ClientRMQ internals ShardPublisherClient overrides or calls, so that an
 * upgrade of @nestjs/microservices that changes them fails here, loudly, rather than in
 * production. Pinned: connect() builds its connection with createClient() and registers listeners
 * given to on() before it; on the first 'connect' it calls createChannel() (twice), whose
 * `client.createChannel({ json: false, setup })` sets `this.channel` synchronously and whose
 * setup calls setupChannel(channel, resolve); setupChannel (wildcards) asserts the exchange,
 * sets the prefetch, consumes the reply queue and resolves; `this.channel` is the
 * amqp-connection-manager ChannelWrapper, whose publish() the client calls with
 * `this.options.exchange`; close() closes the channel, then the connection, and forgets both.
 */

/** amqplib's Channel as setupChannel uses it. */
class FakeAmqpChannel extends EventEmitter {
  readonly calls: string[] = [];
  assertQueue = jest.fn(async (queue: string) => {
    this.calls.push(`assertQueue ${queue}`);
    return { queue, messageCount: 0, consumerCount: 0 };
  });
  bindQueue = jest.fn(
    async (queue: string, exchange: string) => void this.calls.push(`bindQueue ${queue} ${exchange}`),
  );
  assertExchange = jest.fn(async (exchange: string, type: string) => {
    this.calls.push(`assertExchange ${exchange} ${type}`);
    return { exchange };
  });
  prefetch = jest.fn(async () => void this.calls.push('prefetch'));
  consume = jest.fn(async (queue: string) => {
    this.calls.push(`consume ${queue}`);
    return { consumerTag: 'reply' };
  });
}

/** amqp-connection-manager's ChannelWrapper, as createChannel() returns it. */
class FakeChannelWrapper extends EventEmitter {
  publish = jest.fn(async (..._args: unknown[]) => true);
  close = jest.fn(async () => undefined);
  constructor(readonly options: { json?: boolean; setup: (channel: unknown) => Promise<void> }) {
    super();
  }
}

/** amqp-connection-manager's connection, as createClient() returns it. */
class FakeConnection extends EventEmitter {
  readonly channels: FakeChannelWrapper[] = [];
  close = jest.fn(async () => undefined);
  /** amqplib's connection behind the manager (its public `connection` getter). */
  readonly amqp = { close: jest.fn(async () => undefined) };
  get connection() {
    return this.amqp;
  }
  createChannel(options: FakeChannelWrapper['options']): FakeChannelWrapper {
    const channel = new FakeChannelWrapper(options);
    this.channels.push(channel);
    return channel;
  }
}

const internals = (client: ShardPublisherClient) => client as unknown as { channel: unknown; client: unknown };

describe('ShardPublisherClient on ClientRMQ (a contract test of its internals)', () => {
  let connection: FakeConnection;
  let client: ShardPublisherClient;
  let disconnects: number;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  beforeEach(() => {
    connection = new FakeConnection();
    jest.spyOn(ClientRMQ.prototype as never, 'createClient').mockReturnValue(connection as never);
    client = new ShardPublisherClient(
      { urls: ['amqp://unused'], wildcards: true, exchange: SHARD_EXCHANGE, exchangeType: 'direct', persistent: true },
      { queuePrefix: 'unit', shardsCount: 2, queueType: 'classic' },
    );
    disconnects = 0;
    client.on('disconnect', () => disconnects++);
    void client.connect().catch(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  it('has the methods it overrides and calls', () => {
    for (const name of ['connect', 'createClient', 'createChannel', 'setupChannel', 'close', 'on']) {
      expect(typeof (ClientRMQ.prototype as unknown as Record<string, unknown>)[name]).toBe('function');
    }
  });

  /**
   * Connects, has ClientRMQ create the channel and runs its setup; resolves with the channel it
   * publishes on (`this.channel`) and the amqplib channel behind it. ClientRMQ 11 creates two
   * channels on the first connect (its 'connect' listener and its connect$ stream each call
   * createChannel()) and keeps the second; both are set up.
   */
  async function connected(): Promise<{ wrapper: FakeChannelWrapper; amqp: FakeAmqpChannel }> {
    connection.emit('connect', { connection: {}, url: 'amqp://unused' });
    expect(connection.channels).toHaveLength(2);
    const amqps = connection.channels.map(() => new FakeAmqpChannel());
    await Promise.all(connection.channels.map((wrapper, i) => wrapper.options.setup(amqps[i])));
    const wrapper = connection.channels[1];
    expect(internals(client).channel).toBe(wrapper);
    return { wrapper, amqp: amqps[1] };
  }

  it('creates the channels on the first connect, raw (json: false), each with an error listener that unreadies', async () => {
    expect(client.isReady()).toBe(false);
    await connected();
    for (const wrapper of connection.channels) {
      expect(wrapper.options.json).toBe(false);
      // The listener that keeps a refused declaration (406) from crashing the process.
      expect(() => wrapper.emit('error', new Error('PRECONDITION_FAILED'))).not.toThrow();
    }
    expect(client.isReady()).toBe(false);
  });

  it('declares the topology, then lets ClientRMQ assert the exchange, prefetch and consume the reply queue', async () => {
    const { amqp } = await connected();
    expect(amqp.calls).toEqual([
      'assertQueue unit.dead-letter',
      'assertQueue unit.shard.0',
      `bindQueue unit.shard.0 ${SHARD_EXCHANGE}`,
      'assertQueue unit.shard.1',
      `bindQueue unit.shard.1 ${SHARD_EXCHANGE}`,
      `assertExchange ${SHARD_EXCHANGE} direct`,
      'prefetch',
      'consume amq.rabbitmq.reply-to',
    ]);
    expect(client.isReady()).toBe(true);
  });

  it('publishes the bytes on this.channel to options.exchange, mandatory with a message id', async () => {
    const { wrapper } = await connected();
    const content = Buffer.from('{}');
    await client.dispatchConfirmed('unit.shard.1', content, { persistent: true, timeout: 50 });
    expect(wrapper.publish).toHaveBeenCalledWith(SHARD_EXCHANGE, 'unit.shard.1', content, {
      persistent: true,
      timeout: 50,
      mandatory: true,
      messageId: expect.any(String),
    });
  });

  it('turns a return before the confirm into UnroutableMessageError', async () => {
    const { wrapper, amqp } = await connected();
    wrapper.publish.mockImplementationOnce(async (...args: unknown[]) => {
      const { messageId } = args[3] as { messageId: string };
      amqp.emit('return', { properties: { messageId } });
      return true;
    });
    await expect(client.dispatchConfirmed('unit.shard.9', Buffer.from('{}'), {})).rejects.toThrow(
      UnroutableMessageError,
    );
  });

  it("knows from the connection's blocked and unblocked events why the broker blocks publishing, until a new connection", async () => {
    await connected();
    expect(client.blockedReason()).toBeUndefined();
    connection.emit('blocked', { reason: 'low on disk' });
    expect(client.blockedReason()).toBe('low on disk');
    connection.emit('unblocked');
    expect(client.blockedReason()).toBeUndefined();

    connection.emit('blocked', { reason: 'low on memory' });
    connection.emit('disconnect', { err: new Error('gone') });
    expect(client.blockedReason()).toBeUndefined();
    connection.emit('blocked', { reason: 'low on memory' });
    connection.emit('connect', { connection: {}, url: 'amqp://next' });
    expect(client.blockedReason()).toBeUndefined();
  });

  it("passes on()'s listeners to the connection: unready on disconnect", async () => {
    await connected();
    connection.emit('disconnect', { err: new Error('gone') });
    expect(disconnects).toBe(1);
    expect(client.isReady()).toBe(false);
  });

  describe('recycling the connection after a failed publish', () => {
    const publish = () => client.dispatchConfirmed('unit.shard.1', Buffer.from('{}'), { timeout: 50 });

    it('a nack closes the connection once and unreadies until the next connect; a nack there recycles it too', async () => {
      const { wrapper } = await connected();
      wrapper.publish.mockRejectedValue(new Error('message nacked'));
      await expect(publish()).rejects.toThrow('message nacked');
      await expect(publish()).rejects.toThrow('message nacked');
      expect(connection.amqp.close).toHaveBeenCalledTimes(1);
      expect(client.isReady()).toBe(false);
      expect(client.isRecycling()).toBe(true);

      connection.emit('connect', { connection: {}, url: 'amqp://next' });
      expect(client.isRecycling()).toBe(false);
      await expect(publish()).rejects.toThrow('message nacked');
      expect(connection.amqp.close).toHaveBeenCalledTimes(2);
    });

    it('a failure of a publish sent on an earlier connection recycles nothing', async () => {
      const { wrapper } = await connected();
      let fail: (error: Error) => void = () => undefined;
      wrapper.publish.mockImplementationOnce(() => new Promise((_, reject) => (fail = reject)));
      const early = publish();
      connection.emit('connect', { connection: {}, url: 'amqp://next' });
      fail(new Error('message nacked'));
      await expect(early).rejects.toThrow('message nacked');
      expect(connection.amqp.close).not.toHaveBeenCalled();
    });

    it('a timeout recycles only when nothing was confirmed since the publish was sent', async () => {
      const { wrapper } = await connected();
      let timeOut: (error: Error) => void = () => undefined;
      wrapper.publish.mockImplementationOnce(() => new Promise((_, reject) => (timeOut = reject)));
      const slow = publish();
      await publish(); // confirmed meanwhile: the broker is slow, not stuck
      timeOut(new Error('timeout'));
      await expect(slow).rejects.toThrow('timeout');
      expect(connection.amqp.close).not.toHaveBeenCalled();

      wrapper.publish.mockRejectedValueOnce(new Error('timeout'));
      await expect(publish()).rejects.toThrow('timeout');
      expect(connection.amqp.close).toHaveBeenCalledTimes(1);
    });

    it('a timeout while the broker blocks publishing recycles nothing: its alarm holds on every node', async () => {
      const { wrapper } = await connected();
      connection.emit('blocked', { reason: 'low on memory' });
      wrapper.publish.mockRejectedValueOnce(new Error('timeout'));
      await expect(publish()).rejects.toThrow('timeout');
      expect(connection.amqp.close).not.toHaveBeenCalled();
      expect(client.isReady()).toBe(true);

      connection.emit('unblocked');
      wrapper.publish.mockRejectedValueOnce(new Error('timeout'));
      await expect(publish()).rejects.toThrow('timeout');
      expect(connection.amqp.close).toHaveBeenCalledTimes(1);
    });

    it('any other failure, and a failure while closing, recycles nothing', async () => {
      const { wrapper } = await connected();
      wrapper.publish.mockRejectedValueOnce(new Error('Channel closed'));
      await expect(publish()).rejects.toThrow('Channel closed');
      let nack: (error: Error) => void = () => undefined;
      wrapper.publish.mockImplementationOnce(() => new Promise((_, reject) => (nack = reject)));
      const pending = publish();
      const closing = client.close();
      nack(new Error('message nacked'));
      await expect(pending).rejects.toThrow('message nacked');
      await closing;
      expect(connection.amqp.close).not.toHaveBeenCalled();
    });
  });

  it('closes the channel, then the connection, once each, and forgets both', async () => {
    const { wrapper } = await connected();
    await client.close();
    expect(wrapper.close).toHaveBeenCalledTimes(1);
    expect(connection.close).toHaveBeenCalledTimes(1);
    expect(wrapper.close.mock.invocationCallOrder[0]).toBeLessThan(connection.close.mock.invocationCallOrder[0]);
    expect(internals(client)).toMatchObject({ channel: null, client: null });
    expect(client.isReady()).toBe(false);
    await expect(client.dispatchConfirmed('unit.shard.1', Buffer.from('{}'), {})).rejects.toThrow('no channel');
  });
});
