import type { KeyValueStore } from '../ports.ts';
import { luaScript, type RedisClient, runScript } from './scripts.ts';

/** DEL when the key holds ARGV[1]: a compare-and-delete, one key (cluster-safe). */
const DELETE_IF_EQUALS = luaScript(
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
);

/**
 * KeyValueStore on Redis. Layout: `<prefix>kv:<key>` holds the JSON of the value with a TTL.
 * Every method is one single-key command or script (cluster-safe): take is GETDEL, putIfAbsent is
 * SET NX EX, deleteIfEquals a script, so all three are atomic across instances.
 */
export function createRedisKeyValueStore(redis: RedisClient, options: { prefix: string }): KeyValueStore {
  const keyFor = (key: string) => `${options.prefix}kv:${key}`;
  return {
    async put(key, value, ttl) {
      await redis.set(keyFor(key), encode(value), 'EX', ttlSeconds(ttl));
    },
    async putIfAbsent(key, value, ttl) {
      return (await redis.set(keyFor(key), encode(value), 'EX', ttlSeconds(ttl), 'NX')) === 'OK';
    },
    async get<T>(key: string) {
      return decode<T>(await redis.get(keyFor(key)));
    },
    async take<T>(key: string) {
      return decode<T>(await redis.getdel(keyFor(key)));
    },
    async delete(key) {
      await redis.del(keyFor(key));
    },
    async deleteIfEquals(key, value) {
      return (await runScript(redis, DELETE_IF_EQUALS, [keyFor(key)], [encode(value)])) === 1;
    },
  };
}

function encode(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('KeyValueStore values must be JSON-serialisable');
  return json;
}

function decode<T>(json: string | null): T | undefined {
  return json === null ? undefined : (JSON.parse(json) as T);
}

export function ttlSeconds(ttl: number): number {
  if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError('KeyValueStore TTLs must be positive seconds');
  return Math.ceil(ttl);
}
