import { allShardQueueNames, deadLetterQueueName, shardQueueName } from './queue-names';

describe('queue names', () => {
  it('names shard n <prefix>.shard.<n>', () => {
    expect(shardQueueName('messages', 0)).toBe('messages.shard.0');
    expect(shardQueueName('test-7', 12)).toBe('test-7.shard.12');
  });

  it('names the dead-letter queue <prefix>.dead-letter', () => {
    expect(deadLetterQueueName('messages')).toBe('messages.dead-letter');
  });

  it('lists one queue per shard, in shard order', () => {
    expect(allShardQueueNames('p', 3)).toEqual(['p.shard.0', 'p.shard.1', 'p.shard.2']);
    expect(allShardQueueNames('p', 0)).toEqual([]);
  });
});
