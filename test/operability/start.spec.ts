import { readFile, readdir } from 'node:fs/promises';
import {
  NodeProcess,
  type TempDir,
  TestBroker,
  freePort,
  healthStatus,
  tempDir,
  testBrokerUrl,
  testPrefix,
  waitFor,
} from '@app/testing';

/** The pids whose parent is `pid`, from /proc (Linux). */
async function childPids(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(name));
  }
  return children;
}

/** `node scripts/start.js` as `npm start` runs it after the build, in its own process group. */
class Launcher {
  private constructor(private readonly process: NodeProcess) {}

  static start(env: Record<string, string>): Launcher {
    // Its own process group, so that a test can send it a terminal's Ctrl-C.
    return new Launcher(NodeProcess.launch({ name: 'start.js', args: ['scripts/start.js'], env, detached: true }));
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Everything it printed, without colours (a terminal running jest passes FORCE_COLOR on). */
  get logs(): string {
    // eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
    return this.process.logs.replace(/\x1b\[[0-9;]*m/g, '');
  }

  /** The pid of the running app whose command line names `dist/apps/<app>/main.js`. */
  async appPid(app: 'api' | 'consumer'): Promise<number> {
    for (const pid of await childPids(this.pid)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(`dist/apps/${app}/main.js`)) return pid;
    }
    throw new Error(`no running ${app} under start.js (pid ${this.pid}):\n${this.logs}`);
  }

  waitForExit(timeoutMs = 30_000): Promise<number | null> {
    return this.process.waitForExit(timeoutMs);
  }

  /** Kills start.js and the apps it started (they run in their own process groups). */
  async kill(): Promise<void> {
    if (!this.process.running) return;
    const apps = await childPids(this.pid);
    for (const pid of apps) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await this.process.kill();
  }
}

describe('npm start (scripts/start.js over the built apps)', () => {
  let launcher: Launcher | undefined;
  let output: TempDir | undefined;
  let prefix: string | undefined;

  afterEach(async () => {
    await launcher?.kill();
    await output?.remove();
    if (prefix !== undefined) {
      const broker = await TestBroker.connect();
      await broker.deleteQueues(prefix, 5);
      await broker.close();
    }
    launcher = output = prefix = undefined;
  });

  async function startBoth(rabbitmqUrl: string) {
    prefix = testPrefix('start');
    output = await tempDir('start');
    // Port 0: each app binds a free port itself and names it in its ready line.
    launcher = Launcher.start({
      RABBITMQ_URL: rabbitmqUrl,
      QUEUE_PREFIX: prefix,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: '0',
      DATA_OUTPUT_DIR: output.path,
      LOG_FORMAT: 'pretty',
    });
    const started = launcher;
    const urlOf = (app: string) =>
      waitFor(() => new RegExp(`^\\[${app} *\\] .*listening at (http://\\S+?): `, 'm').exec(started.logs)?.[1], {
        description: `the ${app}'s ready line\n${started.logs}`,
        timeoutMs: 20_000,
      });
    return { launcher, api: await urlOf('api'), consumer: await urlOf('consumer') };
  }

  it.each([
    ['SIGTERM to start.js', 'SIGTERM', false],
    ["a terminal's Ctrl-C (SIGINT to the whole process group)", 'SIGINT', true],
  ] as const)(
    'runs both apps with their lines told apart and stops both gracefully on %s',
    async (_, signal, group) => {
      const { launcher, api, consumer } = await startBoth(testBrokerUrl());
      for (const url of [api, consumer]) {
        await waitFor(async () => (await healthStatus(url)) === 200, {
          description: `${url}/health 200\n${launcher.logs}`,
          timeoutMs: 20_000,
        });
      }
      // Each app named once per line, Nest's wiring left to debug, and one line each saying where it listens.
      const logs = launcher.logs;
      expect(logs).toMatch(/^\[api {5}\] \d+ /m);
      expect(logs).toMatch(/^\[consumer\] \d+ /m);
      expect(logs).not.toMatch(/\] \[(api|consumer)\] /);
      expect(logs).not.toMatch(/InstanceLoader|RoutesResolver|RouterExplorer|Mapped \{/);
      expect(logs).toMatch(
        new RegExp(`^\\[api {5}\\] .*listening at ${api}: POST /message, /docs, /health, /metrics$`, 'm'),
      );
      expect(logs).toMatch(
        new RegExp(
          `^\\[consumer\\] .*listening at ${consumer}: /health, /workers, /metrics; batch files in ${output?.path}$`,
          'm',
        ),
      );
      expect(logs.split('\n').filter((line) => line.includes('listening at'))).toHaveLength(2);
      expect(logs).not.toContain('RabbitMQ is not reachable');

      process.kill(group ? -launcher.pid : launcher.pid, signal);
      expect(await launcher.waitForExit()).toBe(0);
      expect(launcher.logs).toMatch(/^\[consumer\] .*final worker history/m);
      expect(launcher.logs).toMatch(/^\[api {5}\] exited with 0$/m);
      expect(launcher.logs).toMatch(/^\[consumer\] exited with 0$/m);
    },
  );

  it('says in one line that RabbitMQ is unreachable, starts both anyway, and exits 1 when an app dies', async () => {
    const closedPort = await freePort();
    const { launcher, api, consumer } = await startBoth(`amqp://guest:guest@127.0.0.1:${closedPort}`);
    // Both apps serve, and say 503 while there is no broker.
    for (const url of [api, consumer]) {
      await waitFor(async () => (await healthStatus(url)) === 503, {
        description: `${url}/health 503\n${launcher.logs}`,
        timeoutMs: 20_000,
      });
    }
    const notice = launcher.logs.split('\n').filter((line) => line.startsWith('[start] '));
    expect(notice).toHaveLength(1);
    expect(notice[0]).toMatch(/RabbitMQ is not reachable at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(notice[0]).toContain('docker compose up -d rabbitmq');
    expect(notice[0]).toContain('rabbitmq-server -detached');

    process.kill(await launcher.appPid('consumer'), 'SIGKILL');
    expect(await launcher.waitForExit()).toBe(1);
    expect(launcher.logs).toContain('[start] consumer exited on its own; stopping api');
    expect(launcher.logs).toMatch(/^\[api {5}\] exited with 0$/m);
  });
});
