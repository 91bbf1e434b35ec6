import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's full collection, without starting node with --expose-gc (a new context sees the flag). */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Collects garbage once every `everyBytes` of large messages handled. A large entry is copied
 * several times on its way to a file (the delivery, its text, the parsed value, its line, the
 * batch's text and bytes), each copy a large object that only a full collection frees; V8, with a
 * heap limit in gigabytes, lets hundreds of megabytes of them pile up first (docs/consumer-memory.md).
 */
export class LargeGarbage {
  private readonly gc = exposeGc();
  private since = 0;

  constructor(private readonly everyBytes: number) {}

  handled(bytes: number): void {
    this.since += bytes;
    if (this.since < this.everyBytes) return;
    this.since = 0;
    this.gc();
  }
}
