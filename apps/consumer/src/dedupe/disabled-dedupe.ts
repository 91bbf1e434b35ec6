import { type Admission, Dedupe, type DedupeTicket } from './dedupe';

const NO_SEGMENT = {};

/**
 * No ledger, no lookups: what the consumer did before exactly-once. Only for measuring what the
 * dedupe costs (the drain benchmark overrides the Dedupe provider with it); never configurable.
 */
export class DisabledDedupe extends Dedupe {
  needsLookup(): boolean {
    return false;
  }

  expiresOf(): number {
    return 0;
  }

  admit(ids: readonly string[]): Promise<Admission> {
    return Promise.resolve({ write: [...ids], done: [] });
  }

  settle(): void {}

  record(file: string): Promise<DedupeTicket> {
    return Promise.resolve({ file, segment: NO_SEGMENT });
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }

  complete(): void {}

  release(): void {}
}
