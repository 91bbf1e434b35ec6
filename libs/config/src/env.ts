/** Raised when an environment variable holds a value the app cannot run with. */
export class ConfigValidationError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    super(`Invalid ${variable}=${JSON.stringify(value)}: ${allowed}`);
    this.name = ConfigValidationError.name;
  }
}

type Env = NodeJS.ProcessEnv;

/** The raw value, or undefined when the variable is unset or blank. */
function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function readOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function readInt(env: Env, name: string, fallback: number, { min, max }: { min: number; max: number }): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigValidationError(name, value, `expected a whole number from ${min} to ${max}`);
  }
  return parsed;
}

export function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const normalized = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(normalized)) return true;
  if (['false', '0', 'no', 'off'].includes(normalized)) return false;
  throw new ConfigValidationError(name, value, 'expected true or false');
}

export function readEnum<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigValidationError(name, value, `expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function isAmqpUrl(value: string): boolean {
  try {
    return ['amqp:', 'amqps:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

export function readAmqpUrl(env: Env, name: string, fallback: string): string {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!isAmqpUrl(value)) {
    throw new ConfigValidationError(name, value, 'expected an amqp:// or amqps:// URL');
  }
  return value;
}

/**
 * One amqp(s):// URL, or a comma-separated list of the nodes of one RabbitMQ cluster. Every item
 * is checked; an empty item or a node listed twice is an error, and the error names the item.
 */
export function readAmqpUrls(env: Env, name: string, fallback: string): string[] {
  const value = raw(env, name);
  if (value === undefined) return [fallback];
  const urls = value.split(',').map((item) => item.trim());
  if (urls.length === 1) return [readAmqpUrl(env, name, fallback)];
  urls.forEach((url, index) => {
    const item = `item ${index + 1} (${JSON.stringify(url)})`;
    if (!isAmqpUrl(url)) {
      throw new ConfigValidationError(
        name,
        value,
        `${item} is not an amqp:// or amqps:// URL; expected one URL or a comma-separated list of a cluster's nodes`,
      );
    }
    if (urls.indexOf(url) !== index) {
      throw new ConfigValidationError(name, value, `${item} lists a node twice`);
    }
  });
  return urls;
}

/** A redis:// or rediss:// URL, or undefined when the variable is unset. */
export function readOptionalRedisUrl(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new ConfigValidationError(name, value, 'expected a redis:// or rediss:// URL with a host');
  }
  return value;
}

export function readHost(env: Env, name: string, fallback: string): string {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
    throw new ConfigValidationError(name, value, 'expected a host name or an IP address');
  }
  return value;
}

/** A queue name prefix: letters, digits and `.-_:` only, so the derived queue names stay readable. */
export function readQueuePrefix(env: Env, name: string, fallback: string): string {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/.test(value)) {
    throw new ConfigValidationError(
      name,
      value,
      'expected 1 to 200 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
    );
  }
  // RabbitMQ refuses to declare such queues (403 ACCESS_REFUSED): the apps would run, retrying for ever.
  if (value.toLowerCase().startsWith('amq.')) {
    throw new ConfigValidationError(name, value, 'expected a prefix not starting with "amq.", which RabbitMQ reserves');
  }
  return value;
}

/** A comma list of shard numbers below `shardsCount`; unset means every shard. */
export function readShardList(env: Env, name: string, shardsCount: number): number[] {
  const all = Array.from({ length: shardsCount }, (_, shard) => shard);
  const value = raw(env, name);
  if (value === undefined || value.toLowerCase() === 'all') return all;
  const parts = value.split(',').map((part) => part.trim());
  const shards = parts.map((part) => (/^\d+$/.test(part) ? Number(part) : Number.NaN));
  if (shards.some((shard) => !Number.isInteger(shard) || shard >= shardsCount)) {
    throw new ConfigValidationError(
      name,
      value,
      `expected "all" or a comma list of shard numbers from 0 to ${shardsCount - 1}`,
    );
  }
  return [...new Set(shards)].sort((a, b) => a - b);
}
