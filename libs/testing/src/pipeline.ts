import { type AppEntry, AppProcess, type AppName } from './app-process';
import { TestBroker, testBrokerUrl, testPrefix } from './broker';
import { type TempDir, tempDir } from './temp-dir';

export interface PipelineOptions {
  shardsCount?: number;
  /** Extra environment for both apps. */
  env?: Record<string, string>;
}

/** Raised when a test starts an app on a pipeline already disposed, e.g. a body running on after jest's timeout. */
export class PipelineDisposedError extends Error {
  constructor(prefix: string, what: string) {
    super(`pipeline ${prefix} is disposed; not starting ${what}`);
    this.name = PipelineDisposedError.name;
  }
}

/**
 * The real api and consumer as child processes, with their own queue prefix, output folder and
 * ports, against the test broker. `dispose()` stops them and deletes the queues and the folder;
 * nothing starts on it afterwards.
 */
export class Pipeline {
  readonly processes: AppProcess[] = [];
  private disposing?: Promise<void>;

  private constructor(
    readonly prefix: string,
    readonly output: TempDir,
    readonly broker: TestBroker,
    readonly shardsCount: number,
    private readonly env: Record<string, string>,
  ) {}

  /** Makes the folder and connects to the broker; if either fails, undoes the other and throws its error. */
  static async create(name: string, options: PipelineOptions = {}): Promise<Pipeline> {
    const prefix = testPrefix(name);
    const shardsCount = options.shardsCount ?? 5;
    const env = {
      RABBITMQ_URL: testBrokerUrl(),
      QUEUE_PREFIX: prefix,
      SHARDS_COUNT: String(shardsCount),
      LOG_LEVEL: 'info',
      ...options.env,
    };
    const [output, broker] = await Promise.allSettled([tempDir(name), TestBroker.connect(env.RABBITMQ_URL)]);
    if (output.status === 'fulfilled' && broker.status === 'fulfilled') {
      return new Pipeline(prefix, output.value, broker.value, shardsCount, env);
    }
    if (output.status === 'fulfilled') await output.value.remove();
    if (broker.status === 'fulfilled') await broker.value.close();
    throw output.status === 'rejected' ? output.reason : (broker as PromiseRejectedResult).reason;
  }

  get dir(): string {
    return this.output.path;
  }

  /** Starts the api on a port of its own choosing; resolves with its base URL once /health is 200. */
  async startApi(env: Record<string, string> = {}): Promise<{ app: AppProcess; url: string }> {
    return this.startListening('api', { API_HOST: '127.0.0.1', API_PORT: '0', ...env });
  }

  /**
   * Starts a consumer over the pipeline's output folder (the built one, or a test `entry`);
   * resolves once /health is 200.
   */
  async startConsumer(
    env: Record<string, string> = {},
    entry: AppEntry = {},
  ): Promise<{ app: AppProcess; url: string }> {
    return this.startListening(
      'consumer',
      { CONSUMER_HOST: '127.0.0.1', CONSUMER_PORT: '0', DATA_OUTPUT_DIR: this.dir, ...env },
      entry,
    );
  }

  /** Starts an app without waiting for it, e.g. to see it fail. */
  spawn(name: AppName, env: Record<string, string> = {}, entry: AppEntry = {}): AppProcess {
    if (this.disposing) throw new PipelineDisposedError(this.prefix, name);
    const app = AppProcess.start(name, { ...this.env, ...env }, entry);
    this.processes.push(app);
    return app;
  }

  /** Ready messages left in the shard queues, all together. */
  async queuedMessages(): Promise<number> {
    const counts = await this.broker.countAll(this.prefix, this.shardsCount);
    return Object.entries(counts)
      .filter(([queue]) => !queue.endsWith('.dead-letter'))
      .reduce((sum, [, count]) => sum + count, 0);
  }

  /** Kills what still runs, deletes the queues and the output folder; the second call returns the first's promise. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      await Promise.all(this.processes.map((app) => app.kill()));
      try {
        await this.broker.deleteQueues(this.prefix, this.shardsCount);
      } finally {
        await this.broker.close();
        await this.output.remove();
      }
    })();
    return this.disposing;
  }

  /**
   * Port 0: the app binds a free port itself and names it in its ready line, so no other test can
   * take the port between choosing it and binding it.
   */
  private async startListening(
    name: AppName,
    env: Record<string, string>,
    entry: AppEntry = {},
  ): Promise<{ app: AppProcess; url: string }> {
    // The port is read from the `listening at` line, which is logged at info.
    if (['warn', 'error', 'fatal'].includes(env.LOG_LEVEL ?? this.env.LOG_LEVEL ?? 'info')) {
      throw new RangeError(`${name}: LOG_LEVEL must be info or lower for the pipeline to read its port`);
    }
    const app = this.spawn(name, env, entry);
    // ts-node compiles a test entry on start: give it longer than a built app needs.
    const url = await app.listeningUrl(entry.entry === undefined ? 20_000 : 60_000);
    await app.waitUntilHealthy(`${url}/health`);
    if (this.disposing) throw new PipelineDisposedError(this.prefix, `more work with ${name}`);
    return { app, url };
  }
}
