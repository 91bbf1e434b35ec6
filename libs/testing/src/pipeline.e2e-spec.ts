import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { freePort } from './free-port';
import { Pipeline, PipelineDisposedError } from './pipeline';

describe('Pipeline (against the test broker)', () => {
  it('disposes once: a second dispose, as after a failed create in the next test, is quiet', async () => {
    const pipeline = await Pipeline.create('kit-dispose-twice');
    await pipeline.dispose();
    await expect(pipeline.dispose()).resolves.toBeUndefined();
  });

  it('starts nothing once disposed, so a test body outliving its timeout cannot bring queues back', async () => {
    const pipeline = await Pipeline.create('kit-disposed');
    await pipeline.dispose();
    await expect(pipeline.startConsumer()).rejects.toThrow(PipelineDisposedError);
    expect(() => pipeline.spawn('api')).toThrow(PipelineDisposedError);
    expect(pipeline.processes).toHaveLength(0);
  });

  it('a create that cannot reach the broker throws the broker error and leaves no folder behind', async () => {
    const name = `kit-no-broker-${process.pid}`;
    const closed = await freePort();
    const folders = async () => (await readdir(tmpdir())).filter((entry) => entry.startsWith(`${name}-`));
    await expect(
      Pipeline.create(name, { env: { RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${closed}` } }),
    ).rejects.toThrow(/the tests need RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+/);
    expect(await folders()).toEqual([]);
  });
});
