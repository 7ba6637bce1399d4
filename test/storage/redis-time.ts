import type { RedisClient } from '../../src/storage/redis/scripts.ts';
import { scanKeys } from '../helpers/redis.ts';

/**
 * Makes `seconds` pass for every key under `prefix`, as far as expiry goes: each TTL is
 * shortened by that much and keys whose TTL runs out are deleted, exactly what Redis would
 * have done by then. Together with a fake clock this tests expiry without sleeping.
 */
export async function advanceRedisTime(redis: RedisClient, prefix: string, seconds: number): Promise<void> {
  const keys = await scanKeys(redis, prefix);
  await Promise.all(
    keys.map(async (key) => {
      const left = await redis.pttl(key);
      if (left < 0) return; // no TTL (or already gone)
      const remaining = left - seconds * 1000;
      if (remaining <= 0) await redis.del(key);
      else await redis.pexpire(key, remaining);
    }),
  );
}
