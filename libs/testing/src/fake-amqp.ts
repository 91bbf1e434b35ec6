import { EventEmitter } from 'node:events';
import type { ChannelWrapper, CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Message, Options } from 'amqplib';

/**
 * Fakes of an amqplib channel and of amqp-connection-manager's channel wrappers, for unit tests
 * of code that consumes (no RabbitMQ). They record what was sent; a test makes one call fail or
 * wait with `jest.spyOn(channel, 'cancel')` and the like.
 */

/** An amqplib channel as far as a consumer uses it; it records what was sent on it. */
export class FakeChannel extends EventEmitter {
  readonly acked: number[] = [];
  readonly nacked: Array<{ tag: number; allUpTo: boolean; requeue: boolean }> = [];
  /** The consumer tags cancelled on this channel, in order. */
  readonly cancelled: string[] = [];
  /** Every consume() call: the queue and its options. */
  readonly consumes: Array<{ queue: string; options?: Options.Consume }> = [];
  prefetched?: number;
  closed = false;
  private onMessage?: (message: ConsumeMessage | null) => void;
  private nextTag = 0;

  /** Consumers started on this channel. */
  get consumers(): number {
    return this.consumes.length;
  }

  /** The tag of the newest consumer: `ctag-<n>`, n counting the consumers of this channel. */
  get consumerTag(): string {
    return `ctag-${this.consumes.length}`;
  }

  async prefetch(count: number): Promise<void> {
    this.prefetched = count;
  }

  async consume(queue: string, onMessage: (message: ConsumeMessage | null) => void, options?: Options.Consume) {
    this.onMessage = onMessage;
    this.consumes.push({ queue, options });
    return { consumerTag: this.consumerTag };
  }

  async cancel(consumerTag: string): Promise<void> {
    this.cancelled.push(consumerTag);
  }

  ack(message: Message): void {
    this.acked.push(message.fields.deliveryTag);
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    this.nacked.push({ tag: message.fields.deliveryTag, allUpTo, requeue });
  }

  async close(): Promise<void> {
    if (this.closed) throw new Error('Channel closed');
    this.closeByBroker();
  }

  /** Hands `message` (its delivery tag filled in) to the consumer; returns the delivery tag. */
  deliver(message: { content: Buffer; fields?: Partial<ConsumeMessage['fields']>; properties?: object }): number {
    const deliveryTag = ++this.nextTag;
    this.onMessage?.({
      content: message.content,
      fields: {
        exchange: '',
        routingKey: '',
        consumerTag: this.consumerTag,
        redelivered: false,
        ...message.fields,
        deliveryTag,
      },
      properties: message.properties ?? { headers: {} },
    } as ConsumeMessage);
    return deliveryTag;
  }

  /** The broker cancels the consumer (the queue was deleted, say). */
  cancelByBroker(): void {
    this.onMessage?.(null);
  }

  /** The broker closes the channel (a 406, say); the connection stays up. */
  closeByBroker(): void {
    this.closed = true;
    this.emit('close');
  }
}

/** One channel wrapper of FakeChannelManager: its options, whether it was closed, its error listeners. */
export class FakeChannelWrapper extends EventEmitter {
  closed = false;

  constructor(readonly options: CreateChannelOpts) {
    super();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * amqp-connection-manager as a shard channel sees it (ChannelSource): `connect()` opens a new
 * channel and runs the newest wrapper's setup on it, as the manager does on every (re)connect; a
 * setup that fails is reported as an 'error' of its wrapper, as the manager reports it.
 */
export class FakeChannelManager {
  readonly channels: FakeChannel[] = [];
  readonly wrappers: FakeChannelWrapper[] = [];
  connected = true;

  /** A new wrapper (see `wrappers`), typed as the part of ChannelWrapper a consumer uses. */
  createChannel(options: CreateChannelOpts): Pick<ChannelWrapper, 'on' | 'close'> {
    const wrapper = new FakeChannelWrapper(options);
    this.wrappers.push(wrapper);
    return wrapper as unknown as Pick<ChannelWrapper, 'on' | 'close'>;
  }

  isConnected(): boolean {
    return this.connected;
  }

  async ensureTopology(_channel: Channel): Promise<void> {}

  /**
   * Opens a channel and runs the setup of wrapper `index` (the newest by default) on it; `prepare`
   * sees the channel first (to make one of its calls fail or wait).
   */
  async connect(prepare?: (channel: FakeChannel) => void, index = this.wrappers.length - 1): Promise<FakeChannel> {
    const channel = new FakeChannel();
    prepare?.(channel);
    this.channels.push(channel);
    const wrapper = this.wrappers[index];
    try {
      const setup = wrapper.options.setup as ((channel: Channel) => Promise<void>) | undefined;
      await setup?.(channel as unknown as Channel);
    } catch (error) {
      wrapper.emit('error', error);
    }
    return channel;
  }
}
