import { deadLetterQueueOptions, shardQueueOptions } from './topology';

describe('topology arguments', () => {
  const quorum = { queuePrefix: 'p', shardsCount: 2, queueType: 'quorum' as const };
  const classic = { ...quorum, queueType: 'classic' as const };

  it('quorum: replicated shard and dead-letter queues, a delivery limit, at-least-once dead-lettering', () => {
    expect(shardQueueOptions(quorum)).toEqual({
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 100,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'p.dead-letter',
      },
    });
    expect(deadLetterQueueOptions(quorum)).toEqual({ durable: true, arguments: { 'x-queue-type': 'quorum' } });
  });

  it('classic: none of the quorum arguments, which a classic queue does not know', () => {
    expect(shardQueueOptions(classic).arguments).toEqual({
      'x-queue-version': 2,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'p.dead-letter',
    });
    expect(deadLetterQueueOptions(classic)).toEqual({ durable: true, arguments: { 'x-queue-version': 2 } });
  });
});
