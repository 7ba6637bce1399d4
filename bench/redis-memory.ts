import { Redis } from 'ioredis';
import { scanKeys } from '../test/helpers/redis.ts';

export interface RedisMemory {
  keys: number;
  /** Sum of MEMORY USAGE over every key under the prefix (key, value and Redis' per-key overhead). */
  bytes: number;
  /** What outlives the login: keys without expiry or expiring after `loginScopedSeconds`. */
  lastingKeys: number;
  lastingBytes: number;
  /** Per kind of key, e.g. "oidc:Session", "oidc-grant", "kv:wechat-state-used". */
  byKind: Record<string, { keys: number; bytes: number; lasting: boolean }>;
}

/**
 * What this run's keys occupy in Redis. MEMORY USAGE per key rather than INFO used_memory: the
 * Redis server is shared (other test runs write to it at the same time), the prefix is ours alone.
 *
 * Keys that expire within `loginScopedSeconds` (the interaction lifetime) belong to the login, not
 * to the session: spent authorization codes kept for replay detection, used WeChat states. Their total
 * follows the login rate times their lifetime, not the number of sessions, so they are counted
 * apart.
 */
export async function redisMemory(
  url: string,
  prefix: string,
  loginScopedSeconds: number,
): Promise<RedisMemory> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const keys = await scanKeys(redis, prefix);
    const result: RedisMemory = { keys: keys.length, bytes: 0, lastingKeys: 0, lastingBytes: 0, byKind: {} };
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const pipeline = redis.pipeline();
      for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', '0').pttl(key);
      const answers = (await pipeline.exec()) ?? [];
      batch.forEach((key, j) => {
        const bytes = Number(answers[2 * j]?.[1] ?? 0);
        const pttl = Number(answers[2 * j + 1]?.[1] ?? -2);
        const lasting = pttl === -1 || pttl > loginScopedSeconds * 1000;
        const kind = kindOf(key.slice(prefix.length));
        const entry = result.byKind[kind] ?? { keys: 0, bytes: 0, lasting };
        result.byKind[kind] = entry;
        entry.keys++;
        entry.bytes += bytes;
        result.bytes += bytes;
        if (lasting) {
          result.lastingKeys++;
          result.lastingBytes += bytes;
        }
      });
    }
    return result;
  } finally {
    redis.disconnect();
  }
}

/** "oidc:Session:<id>" -> "oidc:Session"; "oidc-grant:<id>" -> "oidc-grant"; "kv:wechat-code:<c>" -> "kv:wechat-code". */
function kindOf(key: string): string {
  const parts = key.split(':');
  if (parts[0] === 'oidc-grant') return 'oidc-grant';
  return parts.slice(0, 2).join(':');
}
