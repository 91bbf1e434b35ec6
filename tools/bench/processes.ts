import { NodeProcess, type NodeProcessOptions } from '@app/testing';
import type { Cleanup } from './cleanup';

export interface BenchProcessOptions extends Omit<NodeProcessOptions, 'keepOutput'> {
  cleanup: Cleanup;
  /** Writes a V8 CPU profile into this folder when the process exits cleanly. */
  cpuProfDir?: string;
}

/**
 * A Node process the benchmark started (the test kit's NodeProcess), at LOG_LEVEL=warn unless
 * told otherwise, keeping the last of its output to name the cause if it dies; killed by
 * `cleanup` if the run is interrupted before it is stopped.
 */
export class BenchProcess extends NodeProcess {
  private release: () => Promise<void> = () => Promise.resolve();

  static start({ cleanup, cpuProfDir, ...options }: BenchProcessOptions): BenchProcess {
    const profile = cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`];
    const resolved = {
      ...options,
      args: [...profile, ...options.args],
      env: { LOG_LEVEL: 'warn', ...options.env },
      keepOutput: 4_000,
    };
    const child = new BenchProcess(options.name, NodeProcess.spawn(resolved), resolved);
    child.release = cleanup.add(`stop ${options.name}`, () => child.kill());
    return child;
  }

  /** Stops it gracefully (a CPU profile is written only on a clean exit), SIGKILL after `graceMs`. */
  override async terminate(graceMs = 10_000): Promise<void> {
    await super.terminate(graceMs);
    await this.release();
  }

  override async kill(): Promise<void> {
    await super.kill();
    await this.release();
  }

  /** Peak resident set size so far, in MB. */
  peakRssMb(): number {
    return this.memoryMb().peak;
  }
}
