import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A single node or a cluster: every command this code sends works on both. */
export type RedisClient = Redis | Cluster;

export interface LuaScript {
  readonly source: string;
  readonly sha1: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * EVALSHA, falling back to EVAL the first time a server has not seen the script (after a
 * restart, or on another cluster node). Callers pass the keys the script touches, all of
 * one hash slot, so the script also runs on Redis Cluster.
 */
export async function runScript(
  redis: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha1, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(script.source, keys.length, ...keys, ...args);
  }
}
