/** The write was abandoned (its worker timed out) before it became visible. */
export class SinkWriteAbortedError extends Error {
  constructor() {
    super('batch write abandoned before commit');
    this.name = SinkWriteAbortedError.name;
  }
}
