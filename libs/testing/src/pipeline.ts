import { AppProcess, type AppName } from './app-process';
import { TestBroker, testBrokerUrl, testPrefix } from './broker';
import { freePort } from './free-port';
import { type TempDir, tempDir } from './temp-dir';

export interface PipelineOptions {
  shardsCount?: number;
  /** Extra environment for both apps. */
  env?: Record<string, string>;
}

/**
 * The real api and consumer as child processes, with their own queue prefix, output folder and
 * ports, against the test broker. `dispose()` stops them and deletes the queues and the folder.
 */
export class Pipeline {
  readonly processes: AppProcess[] = [];

  private constructor(
    readonly prefix: string,
    readonly output: TempDir,
    readonly broker: TestBroker,
    readonly shardsCount: number,
    private readonly env: Record<string, string>,
  ) {}

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
    const [output, broker] = await Promise.all([tempDir(name), TestBroker.connect(env.RABBITMQ_URL)]);
    return new Pipeline(prefix, output, broker, shardsCount, env);
  }

  get dir(): string {
    return this.output.path;
  }

  /** Starts the api and resolves with its base URL once /health is 200. */
  async startApi(env: Record<string, string> = {}): Promise<{ app: AppProcess; url: string }> {
    const port = await freePort();
    const app = this.spawn('api', { API_HOST: '127.0.0.1', API_PORT: String(port), ...env });
    const url = `http://127.0.0.1:${port}`;
    await app.waitUntilHealthy(`${url}/health`);
    return { app, url };
  }

  /** Starts a consumer over the pipeline's output folder; resolves once /health is 200. */
  async startConsumer(env: Record<string, string> = {}): Promise<{ app: AppProcess; url: string }> {
    const port = await freePort();
    const app = this.spawn('consumer', {
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: String(port),
      DATA_OUTPUT_DIR: this.dir,
      ...env,
    });
    const url = `http://127.0.0.1:${port}`;
    await app.waitUntilHealthy(`${url}/health`);
    return { app, url };
  }

  /** Starts an app without waiting for it, e.g. to see it fail. */
  spawn(name: AppName, env: Record<string, string> = {}): AppProcess {
    const app = AppProcess.start(name, { ...this.env, ...env });
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

  /** Kills what still runs, deletes the queues and the output folder. */
  async dispose(): Promise<void> {
    await Promise.all(this.processes.filter((app) => app.running).map((app) => app.stop('SIGKILL')));
    await this.broker.deleteQueues(this.prefix, this.shardsCount);
    await this.broker.close();
    await this.output.remove();
  }
}
