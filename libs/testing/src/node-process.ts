import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, withDeadline } from './wait-for';

/** The repository root: where the apps' builds and scripts are. */
export const REPO_ROOT = join(__dirname, '..', '..', '..');

export interface NodeProcessOptions {
  /** What the process is, in words, for errors. */
  name: string;
  /** The script and its arguments after `node` (and any Node flags before the script). */
  args: string[];
  /** On top of this process's environment; undefined unsets a variable. */
  env?: Record<string, string | undefined>;
  /** Its own process group, e.g. to send it a terminal's Ctrl-C. */
  detached?: boolean;
  /** Keep only the last this many characters of the output (all of it by default). */
  keepOutput?: number;
  /** Also hands each chunk of stdout here. */
  onStdout?: (chunk: Buffer) => void;
}

/** Raised when a process a test waits on has exited; carries what it printed. */
export class ProcessExitedError extends Error {
  constructor(name: string, code: number | null | undefined, output: string) {
    super(`${name} exited with ${code === null ? 'a signal' : `code ${code}`}${output ? `:\n${output}` : ''}`);
    this.name = ProcessExitedError.name;
  }
}

/**
 * A Node process a test or the benchmark started (`node <args>` from the repository root): its
 * output, its exit, waits with deadlines that fail early if it dies, and its CPU and memory from
 * /proc. The one wrapper the apps' tests, the fault suite and the benchmark share.
 */
export class NodeProcess {
  private output = '';
  private code: number | null | undefined;
  private readonly exited: Promise<number | null>;

  protected constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    options: NodeProcessOptions,
  ) {
    const append = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (options.keepOutput !== undefined) this.output = this.output.slice(-options.keepOutput);
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      append(chunk);
      options.onStdout?.(chunk);
    });
    child.stderr?.on('data', append);
    // 'close' comes once the output is read to its end, so `logs` is complete when this resolves.
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.code = code ?? (signal === null ? -1 : null);
        resolve(this.code);
      }),
    );
  }

  static launch(options: NodeProcessOptions): NodeProcess {
    return new NodeProcess(options.name, NodeProcess.spawn(options), options);
  }

  protected static spawn(options: NodeProcessOptions): ChildProcess {
    return spawn(process.execPath, options.args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached,
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Everything it printed so far, stdout and stderr (the last `keepOutput` characters of it). */
  get logs(): string {
    return this.output;
  }

  get running(): boolean {
    return this.code === undefined;
  }

  /** The exit code once exited (null when a signal ended it), undefined while it runs. */
  get exitCode(): number | null | undefined {
    return this.code;
  }

  /** Throws ProcessExitedError, with its output, if it has exited. */
  assertRunning(): void {
    if (!this.running) throw new ProcessExitedError(this.name, this.code, this.output);
  }

  /** Polls `url` until it answers 200; fails at once, with the output, if the process exits. */
  async waitUntilHealthy(url: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        this.assertRunning();
        return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200;
      },
      { description: `${this.name} to answer 200 at ${url}`, timeoutMs, intervalMs: 100, failFast: ProcessExitedError },
    );
  }

  /** Waits until the output matches `text`; resolves with the match. Fails at once if it exits first. */
  async waitForLog(text: string | RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    const pattern = typeof text === 'string' ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : text;
    return waitFor(
      () => {
        const match = pattern.exec(this.output);
        if (match === null) this.assertRunning();
        return match;
      },
      { description: `${this.name} to print ${String(text)}`, timeoutMs, failFast: ProcessExitedError },
    );
  }

  /** Resolves with the exit code once it has exited on its own. */
  waitForExit(timeoutMs = 20_000): Promise<number | null> {
    return withDeadline(this.exited, timeoutMs, () => `${this.name} to exit\n${this.output}`);
  }

  /** Sends `signal` (if it still runs) and resolves with the exit code (null when the signal ended it). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 40_000): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.waitForExit(timeoutMs);
  }

  /** SIGTERM, then SIGKILL if it is still alive after `graceMs`; resolves once it has exited. */
  async terminate(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL now; resolves once it has exited. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Resident memory now and at its peak, in MB (VmRSS and VmHWM of /proc/<pid>/status). */
  memoryMb(): { rss: number; peak: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  }

  /** User + system CPU seconds used so far, all threads (/proc/<pid>/stat), or undefined once gone. */
  cpuSeconds(): number | undefined {
    try {
      const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), in clock ticks of 1/100 s on Linux.
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return undefined;
    }
  }
}
