import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { ConsumerConfig } from '@app/config';
import { FileSinkService, SinkWriteAbortedError } from '../../src/file-sink/file-sink.service';
import type { WriteControl } from '../../src/worker-pool/worker-pool.types';

/** The consumer entry point whose sink stalls (for `pipeline.startConsumer(env, { entry, args: [N] })`). */
export const STALLING_CONSUMER = join(__dirname, 'stalling-consumer.main.ts');

/** What the stalling sink logs once per stalled write; the tests count it. */
export const STALL_LOG = 'test sink: stalling this write until it is abandoned';

/** Every `every`th write hangs until its worker's timeout aborts it; the others are real writes. */
export class StallingFileSink extends FileSinkService {
  private readonly stallLogger = new Logger('StallingFileSink');
  private writes = 0;

  constructor(
    config: ConsumerConfig,
    private readonly every: number,
  ) {
    super(config);
  }

  override async write(workerId: string, lines: readonly string[], control: WriteControl): Promise<string> {
    if (++this.writes % this.every !== 0) return super.write(workerId, lines, control);
    this.stallLogger.warn(`${STALL_LOG} (worker ${workerId})`);
    await new Promise<void>((resolve) => control.signal.addEventListener('abort', () => resolve(), { once: true }));
    throw new SinkWriteAbortedError();
  }
}

/**
 * The slowest of `count` real batch writes (staged, fsynced, renamed, folder fsynced) of `lines`
 * entries into a scratch folder beside the system temp folder, in ms: what a worker timeout must
 * comfortably exceed so that only stalled writes time out.
 */
export async function slowestWriteMs(config: ConsumerConfig, count = 40, lines = 5): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'write-time-'));
  try {
    const sink = new FileSinkService({ ...config, dataOutputDir: dir, sinkFsync: true });
    await sink.onModuleInit();
    const control = { signal: new AbortController().signal, commit: () => undefined };
    const batch = Array.from({ length: lines }, (_, i) => JSON.stringify({ id: `calibration-${i}`, timestamp: 'x' }));
    let slowest = 0;
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      await sink.write('0-0', batch, control);
      slowest = Math.max(slowest, performance.now() - started);
    }
    return slowest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
