import { nodeOrder } from './node-order';

describe('nodeOrder', () => {
  const nodes = ['amqp://a', 'amqp://b', 'amqp://c'];

  it.each([
    [0, ['amqp://a', 'amqp://b', 'amqp://c']],
    [0.34, ['amqp://b', 'amqp://c', 'amqp://a']],
    [0.67, ['amqp://c', 'amqp://a', 'amqp://b']],
    [0.9999, ['amqp://c', 'amqp://a', 'amqp://b']],
  ])('starts at the node the random draw %p picks, then goes round in turn', (draw, order) => {
    expect(nodeOrder(nodes, () => draw)).toEqual(order);
  });

  it('keeps a single URL, and leaves its input alone', () => {
    expect(nodeOrder(['amqp://only'], () => 0.9)).toEqual(['amqp://only']);
    nodeOrder(nodes, () => 0.5);
    expect(nodes).toEqual(['amqp://a', 'amqp://b', 'amqp://c']);
  });

  it('spreads the starts over every node', () => {
    const firsts = new Set(Array.from({ length: 200 }, () => nodeOrder(nodes)[0]));
    expect(firsts).toEqual(new Set(nodes));
  });
});
