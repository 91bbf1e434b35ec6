import type { Logger } from '@nestjs/common';
import type { ChannelWrapper, CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Message } from 'amqplib';
import { describeError } from '@app/observability';
import { RECONNECT_SECONDS } from '@app/rabbitmq';

/** What a shard channel needs of the broker connection (BrokerConnection; a fake in unit tests). */
export interface ChannelSource {
  createChannel(options: CreateChannelOpts): Pick<ChannelWrapper, 'on' | 'close'>;
  isConnected(): boolean;
  /** Resolves once the queues are declared on this channel's connection. */
  ensureTopology(channel: Channel): Promise<void>;
}

export interface ShardChannelOptions {
  queue: string;
  /** The prefetch of each consumer, asked as it starts (DeliveryWindow). */
  prefetch: () => number;
}

/**
 * Pause before a channel the broker closed (or whose consumer it cancelled) on a live connection
 * is opened again: longer than amqp-connection-manager's reconnect delay, so that after a lost
 * connection the manager's own reopen comes first.
 */
const CHANNEL_REOPEN_MS = RECONNECT_SECONDS * 1000 + 500;

export interface ShardChannelHandlers {
  /** A delivery of the channel of `generation`: settle it with ack() or nack() and that generation. */
  delivery(message: ConsumeMessage, generation: number): void;
  /** The channel of `generation` closed: its unacknowledged deliveries are back in the queue. */
  closed(generation: number): void;
}

interface OpenChannel {
  channel: Channel;
  generation: number;
  consumerTag?: string;
  /** A consumer is being started on it. */
  starting?: boolean;
  /** Its first consumer was logged. */
  announced?: boolean;
  /** restart() came while a consumer was starting: replace that one once it is up. */
  restartWhenUp?: boolean;
}

/**
 * One shard's channel and its consumer, kept alive: amqp-connection-manager reopens it after a
 * reconnect, and this class reopens it when the broker closes it (or cancels its consumer) on a
 * live connection. Every channel gets a new generation; a delivery is settled only on the
 * channel of its own generation, because a delivery tag means nothing on another channel.
 */
export class ShardChannel {
  private wrapper?: Pick<ChannelWrapper, 'on' | 'close'>;
  private current?: OpenChannel;
  /** Counts channels: a delivery may only be settled while its channel's generation is current. */
  private generation = 0;
  private stopping = false;
  private reopenTimer?: NodeJS.Timeout;
  /** Identifies the current channel wrapper: a stale one's late setup closes its channel instead. */
  private wrapperToken?: object;
  /** The running channel setup, which stopConsuming() waits for so that no consumer starts behind it. */
  private settingUp: Promise<void> = Promise.resolve();
  /** The consumer being started (by a setup, resume(), restart() or a pause's end), which stopConsuming() waits for too. */
  private starting: Promise<void> = Promise.resolve();
  /** Set by the first channel error, cleared once consuming: a failure is explained once, not per retry. */
  private failing = false;
  /** pause() holds the consumer off until this timer fires. */
  private resumeTimer?: NodeJS.Timeout;
  /** holdOff() holds the consumer off until resume(): the shard holds as many bytes as it should. */
  private held = false;
  /** When the queue last lost its consumer (or the channel was created); undefined while consuming. */
  private withoutConsumerSince: number | undefined = Date.now();

  constructor(
    private readonly connection: ChannelSource,
    private readonly options: ShardChannelOptions,
    private readonly handlers: ShardChannelHandlers,
    /** The shard's logger: its lines are the operator's view of the channel. */
    private readonly logger: Logger,
  ) {}

  /**
   * Opens the channel and starts consuming (again after every reconnect). A wrapper opened before
   * is closed: one consumer per shard.
   */
  open(): void {
    const stale = this.wrapper;
    const token = {};
    this.wrapperToken = token;
    const wrapper = this.connection.createChannel({
      name: this.options.queue,
      confirm: false,
      setup: (channel: Channel) => {
        // A replaced wrapper may still finish a reconnect: it must not consume beside the new one.
        if (token !== this.wrapperToken) return channel.close();
        const run = this.setup(channel);
        this.settingUp = run.catch(() => undefined);
        return run;
      },
    });
    wrapper.on('error', (error: Error) => this.logError(error));
    this.wrapper = wrapper;
    stale?.close().catch((error: unknown) => this.logger.warn(`closing a stale channel: ${describeError(error)}`));
  }

  /** Whether a consumer is live on the queue right now. */
  isConsuming(): boolean {
    return this.current?.consumerTag !== undefined;
  }

  /** Milliseconds the queue has been without a consumer; 0 while consuming or held off with work in hand. */
  msWithoutConsumer(now = Date.now()): number {
    if (this.held && this.current !== undefined) return 0;
    return this.withoutConsumerSince === undefined ? 0 : now - this.withoutConsumerSince;
  }

  /**
   * Cancels the consumer until resume(); the deliveries in hand are settled as usual. For a shard
   * that holds as many bytes as it should: RabbitMQ's prefetch counts deliveries, not bytes.
   */
  holdOff(): void {
    if (this.held || this.stopping) return;
    this.held = true;
    this.cancelConsumer();
  }

  /** Consumes again after holdOff(), unless a pause() or a stop holds the consumer off too. */
  resume(): void {
    if (!this.held) return;
    this.held = false;
    // Without a consumer from now on, not for the whole hold: /health's grace starts here.
    if (this.withoutConsumerSince !== undefined) this.withoutConsumerSince = Date.now();
    this.consumeIfFree();
  }

  /** Cancels the consumer and starts a new one at once, which asks for its prefetch again. */
  restart(): void {
    if (this.held || this.resumeTimer !== undefined || this.stopping) return;
    // Deliveries can come before basic.consume-ok is handled: then there is no tag to cancel yet.
    if (this.current?.starting) {
      this.current.restartWhenUp = true;
      return;
    }
    this.cancelConsumer();
    this.consumeIfFree();
  }

  /**
   * Cancels the consumer and consumes again `ms` later (on whatever channel is open then); the
   * deliveries in hand are settled as usual. A pause under way is not extended.
   */
  pause(ms: number): void {
    if (this.resumeTimer !== undefined || this.stopping) return;
    this.resumeTimer = setTimeout(() => {
      // stopConsuming() and close() clear this timer.
      this.resumeTimer = undefined;
      this.consumeIfFree();
    }, ms);
    this.cancelConsumer();
  }

  private cancelConsumer(): void {
    const open = this.current;
    if (open?.consumerTag === undefined) return;
    const tag = open.consumerTag;
    this.lostConsumer(open);
    open.channel
      .cancel(tag)
      .catch((error: unknown) =>
        this.logger.warn(`could not cancel the consumer of ${this.options.queue}: ${describeError(error)}`),
      );
  }

  /** Starts a consumer on the open channel unless one runs or something holds it off. */
  private consumeIfFree(): void {
    const open = this.current;
    if (open === undefined || open.consumerTag !== undefined || open.starting) return;
    if (this.held || this.resumeTimer !== undefined || this.stopping) return;
    this.starting = this.consume(open).catch((error: Error) => this.logError(error));
  }

  /** Whether `generation` is the open channel's: only then can its deliveries be settled. */
  isCurrent(generation: number): boolean {
    return this.current?.generation === generation;
  }

  /**
   * Acknowledges a delivery on the channel that delivered it. A delivery of a closed channel is
   * not acked (the broker delivers it again); returns whether the ack was sent.
   */
  ack(message: Message, generation: number): boolean {
    return this.settle(message, generation, (channel) => channel.ack(message));
  }

  /** Rejects a delivery: back to the queue with `requeue`, else to the dead-letter queue. */
  nack(message: Message, generation: number, requeue: boolean): boolean {
    return this.settle(message, generation, (channel) => channel.nack(message, false, requeue));
  }

  /** Cancels the consumer (the deliveries in hand stay unacked); no channel is reopened after this. */
  async stopConsuming(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reopenTimer);
    clearTimeout(this.resumeTimer);
    // A setup or a consumer start under way sees `stopping` and cancels its own consumer; wait for it.
    await this.settingUp;
    await this.starting;
    const open = this.current;
    if (open?.consumerTag === undefined) return;
    try {
      await open.channel.cancel(open.consumerTag);
      this.lostConsumer(open);
    } catch (error) {
      this.logger.warn(`could not cancel the consumer of ${this.options.queue}: ${describeError(error)}`);
    }
  }

  /** Closes the channel; its unacknowledged deliveries go back to the queue. */
  async close(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reopenTimer);
    clearTimeout(this.resumeTimer);
    await this.wrapper?.close();
  }

  private settle(message: Message, generation: number, send: (channel: Channel) => void): boolean {
    const open = this.current;
    if (open?.generation !== generation) return false;
    try {
      send(open.channel);
      return true;
    } catch (error) {
      // The channel is closing under us: the broker delivers it again.
      this.logger.warn(
        `could not settle delivery ${message.fields.deliveryTag} of ${this.options.queue}: ${describeError(error)}`,
      );
      return false;
    }
  }

  /** Runs on every new channel: a new generation, the topology (once per connection), the prefetch, the consumer. */
  private async setup(channel: Channel): Promise<void> {
    const open: OpenChannel = { channel, generation: ++this.generation };
    this.current = open;
    channel.on('error', (error: Error) => this.logError(error));
    channel.on('close', () => this.onClosed(open.generation));
    try {
      await this.connection.ensureTopology(channel);
      // While paused or held off, the resume timer or resume() starts the consumer.
      if (this.resumeTimer === undefined && !this.held) await this.consume(open);
    } catch (error) {
      // The declaration may have failed on another channel of the connection, leaving this one
      // open without a consumer: close it, so that the reopen below tries again.
      channel.close().catch(() => undefined);
      throw error;
    }
  }

  private async consume(open: OpenChannel): Promise<void> {
    // One consumer per channel: a resume() during the setup's topology wait may have started one.
    if (this.stopping || open.starting || open.consumerTag !== undefined) return;
    const { channel, generation } = open;
    open.starting = true;
    let consumerTag: string;
    try {
      // basic.qos before basic.consume: the prefetch (global false) of the consumers started after it.
      await channel.prefetch(this.options.prefetch());
      ({ consumerTag } = await channel.consume(
        this.options.queue,
        (message) => this.onMessage(message, channel, generation),
        { noAck: false },
      ));
    } finally {
      open.starting = false;
    }
    if (this.stopping) {
      // stopConsuming() began while the consumer was being set up: it waits for this cancel.
      await channel.cancel(consumerTag);
      return;
    }
    if (this.current !== open) return;
    open.consumerTag = consumerTag;
    if (this.held || this.resumeTimer !== undefined) {
      // holdOff() or pause() came while it was being set up, when there was nothing to cancel yet.
      this.cancelConsumer();
      return;
    }
    if (open.restartWhenUp) {
      open.restartWhenUp = false;
      this.cancelConsumer();
      this.consumeIfFree();
      return;
    }
    this.withoutConsumerSince = undefined;
    this.failing = false;
    // Once per channel at info: a consumer restarted for its prefetch (DeliveryWindow) is routine.
    if (open.announced) {
      this.logger.debug(`consuming ${this.options.queue} again`);
      return;
    }
    open.announced = true;
    this.logger.log(`consuming ${this.options.queue}`);
  }

  private lostConsumer(open: OpenChannel): void {
    open.consumerTag = undefined;
    this.withoutConsumerSince ??= Date.now();
  }

  private onMessage(message: ConsumeMessage | null, channel: Channel, generation: number): void {
    if (message !== null) {
      this.handlers.delivery(message, generation);
      return;
    }
    // Closing the channel returns its unacked deliveries; a new one resubscribes.
    this.logger.error(`the broker cancelled the consumer of ${this.options.queue}; reopening its channel`);
    channel.close().catch((error: unknown) => this.logger.warn(`closing the channel: ${describeError(error)}`));
  }

  private logError(error: Error): void {
    if (this.failing) {
      this.logger.debug(`channel of ${this.options.queue} failed again: ${error.message}`);
      return;
    }
    this.failing = true;
    const hint = /PRECONDITION_FAILED|inequivalent arg/.test(error.message)
      ? ' (the queues exist with other arguments: do QUEUE_TYPE and QUEUE_PREFIX match the queues already declared?)'
      : '';
    this.logger.error(`channel of ${this.options.queue} failed: ${error.message}${hint}; retrying`);
  }

  private onClosed(generation: number): void {
    const open = this.current;
    if (open === undefined || generation !== open.generation) return;
    this.lostConsumer(open);
    this.current = undefined;
    this.handlers.closed(generation);
    this.scheduleReopen();
  }

  /**
   * amqp-connection-manager reopens channels only when the connection comes back; a channel the
   * broker closed on a live connection stays closed, so reopen it here.
   */
  private scheduleReopen(): void {
    if (this.stopping) return;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => {
      // stopConsuming() and close() clear this timer.
      if (this.current !== undefined || !this.connection.isConnected()) return;
      if (this.failing) this.logger.debug(`reopening the channel of ${this.options.queue}`);
      else this.logger.warn(`reopening the channel of ${this.options.queue}`);
      this.open();
    }, CHANNEL_REOPEN_MS);
  }
}
