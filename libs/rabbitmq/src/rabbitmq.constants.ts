/**
 * The api publishes through this pre-declared durable direct exchange, with the shard queue's
 * name as the routing key; every shard queue is bound to it under its own name.
 */
export const SHARD_EXCHANGE = 'amq.direct';

/**
 * A quorum queue dead-letters a message returned this many times. Invalid payloads are
 * dead-lettered at the consumer's edge at once; this only stops a message that crashes consumers
 * from looping for ever. Each lost channel or crash returns every unacked delivery and counts, so
 * the limit is far above what ordinary restarts and reconnects add up to.
 */
export const QUORUM_DELIVERY_LIMIT = 100;

export const HEARTBEAT_SECONDS = 5;
export const RECONNECT_SECONDS = 1;
