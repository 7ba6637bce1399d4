import { Redis } from 'ioredis';
import type { Cleanup } from './cleanup.ts';

/**
 * Reads the Redis server's count of client reads (INFO stats, total_reads_processed): each is one
 * batch of commands a client sent, so the count's growth over a slice is that slice's round trips.
 * Unlike CPU time it does not move with the machine's speed, so a round trip saved or added shows
 * exactly. The count is the server's: exact only while nothing but the engine under load uses that
 * Redis (the idle engine's health checks add a few per minute).
 */
export async function redisRoundTripCounter(url: string, cleanup: Cleanup): Promise<() => Promise<number>> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  cleanup.add('close the Redis round-trip counter', () => redis.quit());
  return async () => {
    const stats = await redis.info('stats');
    const reads = /^total_reads_processed:(\d+)/m.exec(stats)?.[1];
    if (reads === undefined) throw new Error('this Redis reports no total_reads_processed (INFO stats)');
    // This reading is itself one read.
    return Number(reads) - 1;
  };
}
