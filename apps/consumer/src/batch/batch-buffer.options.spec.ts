import { BatchBuffer } from './batch-buffer';

describe('BatchBuffer options', () => {
  it.each([
    [{ size: 0, flushMs: 1 }, 'batch size must be a whole number of at least 1, got 0'],
    [{ size: -3, flushMs: 1 }, 'batch size must be a whole number of at least 1, got -3'],
    [{ size: 2.5, flushMs: 1 }, 'batch size must be a whole number of at least 1, got 2.5'],
    [{ size: 5, flushMs: 0 }, 'batch flush interval must be positive, got 0'],
    [{ size: 5, flushMs: -1 }, 'batch flush interval must be positive, got -1'],
    [{ size: 5, flushMs: Number.NaN }, 'batch flush interval must be positive, got NaN'],
  ])('refuses %j, saying what is wrong', (options, message) => {
    expect(() => new BatchBuffer(options)).toThrow(new RangeError(message));
  });

  it('takes a size of 1 and any positive interval', () => {
    const batch = new BatchBuffer<number>({ size: 1, flushMs: 0.5 }, () => 0);
    batch.add([7, 8]);
    expect(batch.take()).toEqual([7]);
    expect(batch.take()).toEqual([8]);
    expect(batch.take(true)).toEqual([]);
  });
});
