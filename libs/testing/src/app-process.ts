import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait-for';

const ROOT = join(__dirname, '..', '..', '..');

export type AppName = 'api' | 'consumer';

/** A built app (`dist/apps/<name>/main.js`) running as a real child process, as a container runs it. */
export class AppProcess {
  private output = '';
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly name: AppName,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /** Starts the app with `env` on top of this process's environment. */
  static start(name: AppName, env: Record<string, string>): AppProcess {
    const main = join(ROOT, 'dist', 'apps', name, 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
    const child = spawn(process.execPath, [main], {
      cwd: ROOT,
      env: { ...process.env, LOG_FORMAT: 'pretty', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new AppProcess(name, child);
  }

  /** Everything the process printed so far, stdout and stderr. */
  get logs(): string {
    return this.output;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Polls `url` until it answers 200, failing early with the logs if the process exits. */
  async waitUntilHealthy(url: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`${this.name} exited with ${this.exitCode}:\n${this.output}`);
        const response = await fetch(url);
        return response.status === 200;
      },
      { description: `${this.name} healthy at ${url}`, timeoutMs, intervalMs: 100 },
    );
  }

  /** Waits until the logs contain `text`. */
  async waitForLog(text: string | RegExp, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => (typeof text === 'string' ? this.output.includes(text) : text.test(this.output)), {
      description: `${this.name} to log ${String(text)}`,
      timeoutMs,
    });
  }

  /** Sends `signal` and resolves with the exit code (null when killed by the signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 40_000): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.waitForExit(timeoutMs);
  }

  /** Resolves with the exit code once the process has exited on its own. */
  async waitForExit(timeoutMs = 20_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
