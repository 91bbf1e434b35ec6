import { Pipeline, waitFor } from '@app/testing';

async function statusOf(url: string): Promise<number> {
  return (await fetch(url)).status;
}

// The queues exist as classic ones, then both apps start with QUEUE_TYPE=quorum: the broker refuses
// their declarations (406 PRECONDITION_FAILED). Neither may crash; both say why, once. The api
// answers 503; the consumer's /health, which the contract bases on the connection and the folder
// alone, names the shards that have no consumer.
describe('apps started against queues declared with other arguments', () => {
  let pipeline: Pipeline;
  afterEach(async () => pipeline?.dispose());

  it('stay up, tell in /health and explain the mismatch without repeating it', async () => {
    pipeline = await Pipeline.create('mismatch');
    const classic = await pipeline.startApi();
    expect(await classic.app.stop('SIGTERM')).toBe(0);

    // Port 0 and the ready line: no other process can take a port between choosing and binding it.
    const api = pipeline.spawn('api', { QUEUE_TYPE: 'quorum', API_HOST: '127.0.0.1', API_PORT: '0' });
    const consumer = pipeline.spawn('consumer', {
      QUEUE_TYPE: 'quorum',
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: '0',
      DATA_OUTPUT_DIR: pipeline.dir,
      LOG_LEVEL: 'debug',
    });
    const [apiUrl, consumerUrl] = await Promise.all([api.listeningUrl(), consumer.listeningUrl()]);
    await api.waitForLog('PRECONDITION_FAILED');
    await consumer.waitForLog('do QUEUE_TYPE and QUEUE_PREFIX match');
    // Retries show at debug level only; wait for a few rounds of them.
    await waitFor(() => (consumer.logs.match(/failed again/g) ?? []).length >= 10, {
      description: 'the consumer to retry its channels a few times',
    });

    expect(api.running).toBe(true);
    expect(consumer.running).toBe(true);
    expect(await statusOf(`${apiUrl}/health`)).toBe(503);
    const health = await fetch(`${consumerUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ details: { shards: { notConsuming: [0, 1, 2, 3, 4] } } });
    const post = await fetch(`${apiUrl}/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ timestamp: '2019-10-12T08:10:53Z' }]),
    });
    expect(post.status).toBe(503);
    // One explanation per shard, not one per retry.
    expect((consumer.logs.match(/do QUEUE_TYPE and QUEUE_PREFIX match/g) ?? []).length).toBe(5);
  });
});
