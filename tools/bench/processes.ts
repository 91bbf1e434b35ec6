import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from '@app/testing';
import type { Cleanup } from './cleanup';
import { ROOT } from './build';

export interface StartOptions {
  /** What the process is, in words, for errors. */
  name: string;
  /** The script (and its arguments) after `node`. */
  args: string[];
  /** On top of this process's environment and LOG_LEVEL=warn. */
  env: Record<string, string>;
  cleanup: Cleanup;
  /** Writes a V8 CPU profile into this folder when the process exits. */
  cpuProfDir?: string;
  /** Pass the child's stdout through this instead of ignoring it. */
  onStdout?: (chunk: Buffer) => void;
}

/** A Node process the benchmark started; killed on an interrupted run. */
export class BenchProcess {
  readonly child: ChildProcess;
  private stderrTail = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  private readonly release: () => Promise<void>;

  constructor(private readonly options: StartOptions) {
    const profile = options.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`];
    this.child = spawn(process.execPath, [...profile, ...options.args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', options.onStdout ? 'pipe' : 'ignore', 'pipe'],
    });
    if (options.onStdout) this.child.stdout?.on('data', options.onStdout);
    // The last of it names the cause when the process dies.
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal === null ? -1 : null);
        resolve();
      }),
    );
    this.release = options.cleanup.add(`stop ${options.name}`, () => this.kill('SIGKILL'));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Polls `url` until it answers 200; fails at once, with the process's last words, if it exits. */
  async waitUntilHealthy(url: string, timeoutMs = 30_000): Promise<void> {
    const outcome = await waitFor(
      async () => (!this.running ? 'exited' : (await fetch(url)).status === 200 && 'healthy'),
      { description: `${this.options.name} to answer ${url} with 200`, timeoutMs, intervalMs: 100 },
    );
    if (outcome === 'exited') this.assertRunning();
  }

  /** Throws if the process has exited (call it while waiting for work it should be doing). */
  assertRunning(): void {
    if (!this.running) throw new ExitedError(this.options.name, this.exitCode, this.stderrTail);
  }

  /** SIGTERM (a CPU profile is written only on a clean exit), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await this.release();
  }

  /** Kills it now, without a graceful shutdown. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      await this.exited;
    }
    await this.release();
  }

  /** Peak resident set size so far, in MB (VmHWM in /proc/<pid>/status, Linux). */
  peakRssMb(): number {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  }

  /** User + system CPU seconds used so far (Linux /proc), or undefined when unknown. */
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

export class ExitedError extends Error {
  constructor(name: string, code: number | null | undefined, stderr: string) {
    super(`${name} exited with code ${code ?? 'null (killed)'}${stderr ? `:\n${stderr}` : ''}`);
    this.name = ExitedError.name;
  }
}
