import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../../src/storage/redis/scripts.ts';

export function testRedisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/**
 * A unique key prefix (`wob-test-<random>:`) on the shared test Redis, so parallel test
 * files never collide. `cleanup()` deletes every key under the prefix.
 */
export async function createTestRedis(): Promise<{ url: string; prefix: string; cleanup(): Promise<void> }> {
  const url = testRedisUrl();
  const prefix = `wob-test-${randomBytes(6).toString('hex')}:`;
  return {
    url,
    prefix,
    async cleanup() {
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      try {
        await deleteKeys(redis, prefix);
      } finally {
        redis.disconnect();
      }
    },
  };
}

/** Every key under `prefix` (SCAN, never KEYS: the server may be shared). */
export async function scanKeys(redis: RedisClient, prefix: string): Promise<string[]> {
  // A cluster's keys are spread over its masters: each is scanned.
  if (redis instanceof Cluster) {
    const perNode = await Promise.all(redis.nodes('master').map((node) => scanKeys(node, prefix)));
    return perNode.flat();
  }
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await scanKeys(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
}

/**
 * What `client` hands its socket from now on, one string per write (ioredis writes an auto-
 * pipelined batch in one), until stop(): which commands travel to Redis together.
 */
export function recordWrites(client: RedisClient): { writes: string[]; stop(): void } {
  // A cluster writes to one socket per node: one write is not one round trip to "Redis".
  if (client instanceof Cluster) throw new Error('recordWrites watches a single server connection');
  const socket = client.stream;
  const write = socket.write;
  const writes: string[] = [];
  socket.write = function (this: typeof socket, chunk: unknown, ...rest: unknown[]) {
    writes.push(String(chunk));
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof socket.write;
  const stop = () => {
    socket.write = write;
  };
  return { writes, stop };
}
