/**
 * The order a process tries the nodes of a cluster in: the list rotated to start at a random node,
 * then node after node, back to the first (amqp-connection-manager goes through its list in turn
 * and moves to the next URL after each loss or failed attempt). The random start spreads the
 * replicas of both apps over the nodes, so one node's loss moves only the processes that were on
 * it; going in turn makes the next attempt after a loss another node, not the one that just went.
 * One URL stays as it is.
 */
export function nodeOrder<T>(urls: readonly T[], random: () => number = Math.random): T[] {
  const start = Math.min(urls.length - 1, Math.floor(random() * urls.length));
  return [...urls.slice(start), ...urls.slice(0, start)];
}
