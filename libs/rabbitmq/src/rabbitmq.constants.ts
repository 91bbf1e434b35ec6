/**
 * The api publishes through this pre-declared durable direct exchange, with the shard queue's
 * name as the routing key; every shard queue is bound to it under its own name.
 */
export const SHARD_EXCHANGE = 'amq.direct';

/** A quorum queue dead-letters a message delivered this many times (a poison message). */
export const QUORUM_DELIVERY_LIMIT = 20;

export const HEARTBEAT_SECONDS = 5;
export const RECONNECT_SECONDS = 1;
