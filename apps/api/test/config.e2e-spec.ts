import { Pipeline } from '@app/testing';

describe('the built api with a bad variable', () => {
  let pipeline: Pipeline;
  afterAll(async () => pipeline?.dispose());

  it.each([
    ['SHARDS_COUNT', 'abc', 'Invalid SHARDS_COUNT="abc": expected a whole number from 1 to 1024'],
    ['QUEUE_TYPE', 'stream', 'Invalid QUEUE_TYPE="stream": expected one of classic, quorum'],
    ['API_PORT', '-1', 'Invalid API_PORT="-1": expected a whole number from 0 to 65535'],
  ])('stops on %s=%s with one line naming it and exit code 1', async (variable, value, message) => {
    pipeline ??= await Pipeline.create('api-config');
    const api = pipeline.spawn('api', { [variable]: value });
    expect(await api.waitForExit()).toBe(1);
    expect(api.logs.trim()).toBe(`api: configuration error: ${message}`);
  });
});
