import { Redis } from 'ioredis';
import { describeUrl } from '../describe-url.ts';

export interface RedisConnectOptions {
  /** Connection trouble after the first connect; ioredis keeps reconnecting by itself. */
  onError?: (error: Error) => void;
}

/**
 * Connects to a redis:// or rediss:// (TLS) URL and waits until the server answers, so a
 * wrong URL fails at startup instead of on the first login. Afterwards ioredis reconnects
 * on its own; commands issued while it is down fail after a few retries instead of hanging.
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 3,
    connectTimeout: 10_000,
  });
  // Without a listener ioredis prints every connection error to stderr itself.
  redis.on('error', (error: Error) => options.onError?.(error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${describeUrl(url)}`, { cause: scrub(error) });
  }
  return redis;
}

// Connection errors carry host and port, never the URL, but keep only the message to be sure.
function scrub(error: unknown): Error {
  return new Error(error instanceof Error ? error.message : String(error));
}
