import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { consumerConfig, runtimeConfig } from '@app/config';
import type { WorkersResponse } from '@app/contracts';
import { describeError } from '@app/observability';
import { BrokerConnection } from '../broker/broker-connection.service';
import type { ShardRuntime } from './shard-runtime';

/** Builds the runtime of one shard (see ShardModule). */
export const SHARD_RUNTIME_FACTORY = Symbol('SHARD_RUNTIME_FACTORY');
export type ShardRuntimeFactory = (shard: number) => ShardRuntime;

/** The graceful drain did not finish within SHUTDOWN_TIMEOUT_MS; unacknowledged work went back to the broker. */
export class ShutdownTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`graceful shutdown did not finish within ${timeoutMs} ms; unacknowledged deliveries return to the broker`);
    this.name = ShutdownTimeoutError.name;
  }
}

/** Resolves true when `work` settles first, false when `ms` pass first. */
async function withinDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one ShardRuntime per shard of CONSUMER_SHARDS and shuts them down in order. */
@Injectable()
export class ShardSupervisor implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(ShardSupervisor.name);
  private readonly runtimes: ShardRuntime[];
  private timedOut = false;

  constructor(
    @Inject(consumerConfig.KEY) consumer: ConfigType<typeof consumerConfig>,
    @Inject(runtimeConfig.KEY) private readonly runtime: ConfigType<typeof runtimeConfig>,
    @Inject(SHARD_RUNTIME_FACTORY) createRuntime: ShardRuntimeFactory,
    private readonly connection: BrokerConnection,
  ) {
    this.runtimes = consumer.shards.map((shard) => createRuntime(shard));
  }

  /** Each shard's workers, live ones first, as `GET /workers` shows them. */
  workerHistory(): WorkersResponse['shards'] {
    return this.runtimes.map((runtime) => ({ shard: runtime.shard, workers: runtime.workerHistory() }));
  }

  /** What keeps shards from being healthy: SHARDS_COUNT disagreements, shards without a consumer past the grace time. */
  shardProblems(): string[] {
    const now = Date.now();
    return this.runtimes.flatMap((runtime) => runtime.problem(now) ?? []);
  }

  /** The shards of CONSUMER_SHARDS that have a live consumer right now, and those that have none. */
  consumingShards(): { consuming: number[]; notConsuming: number[] } {
    const consuming: number[] = [];
    const notConsuming: number[] = [];
    for (const runtime of this.runtimes) (runtime.isConsuming() ? consuming : notConsuming).push(runtime.shard);
    return { consuming, notConsuming };
  }

  /** Consuming starts only here: after every module, the file sink included, is initialised. */
  onApplicationBootstrap(): void {
    for (const runtime of this.runtimes) runtime.start();
    this.logger.log(`consuming shards ${this.runtimes.map((r) => r.shard).join(', ')}`);
  }

  /**
   * Shutdown, in order: stop consuming and write and acknowledge what is buffered (within
   * SHUTDOWN_TIMEOUT_MS), then close the channels, then the connection. Each step runs even if
   * the one before failed.
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.logger.log(`${signal ?? 'shutdown'}: draining ${this.runtimes.length} shards`);
    const stops = Promise.allSettled(this.runtimes.map((runtime) => runtime.stop()));
    this.timedOut = !(await withinDeadline(stops, this.runtime.shutdownTimeoutMs));
    if (this.timedOut) this.logger.error(new ShutdownTimeoutError(this.runtime.shutdownTimeoutMs).message);
    for (const runtime of this.runtimes) {
      try {
        await runtime.close();
      } catch (error) {
        this.logger.error(`closing shard ${runtime.shard}: ${describeError(error)}`);
      }
    }
    try {
      await this.connection.close();
    } catch (error) {
      this.logger.error(`closing the broker connection: ${describeError(error)}`);
    }
  }

  /** Turns a drain that ran out of time into exit code 1. */
  onApplicationShutdown(): void {
    if (this.timedOut) throw new ShutdownTimeoutError(this.runtime.shutdownTimeoutMs);
  }
}
