import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStores } from '../../src/storage/open-stores.ts';
import { connectRedis, evictingPolicy } from '../../src/storage/redis/connect.ts';
import { redisServerAvailable } from '../helpers/redis-topologies.ts';
import { type OwnRedis, ownRedis } from '../production/own-redis.ts';

/**
 * A Redis that may evict keys (maxmemory-policy other than noeviction, the default of many managed
 * services) is said at start: every key of ours expires, so volatile-* policies evict them too, and
 * an evicted used refresh token would be accepted again.
 */
describe.skipIf(!redisServerAvailable())('a Redis that may evict keys', () => {
  let redis: OwnRedis;
  let dataDir: string;
  beforeAll(async () => {
    redis = await ownRedis();
    dataDir = await mkdtemp(join(tmpdir(), 'redis-eviction-'));
  });
  afterAll(async () => {
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const setPolicy = async (policy: string) => {
    const admin = new Redis(redis.url);
    await admin.config('SET', 'maxmemory-policy', policy);
    admin.disconnect();
  };

  it('is found by its policy, volatile-* as allkeys-*, and noeviction is not', async () => {
    const client = await connectRedis(redis.url);
    try {
      await setPolicy('noeviction');
      expect(await evictingPolicy(client)).toBeUndefined();
      for (const policy of ['allkeys-lru', 'volatile-ttl']) {
        await setPolicy(policy);
        expect(await evictingPolicy(client)).toBe(policy);
      }
    } finally {
      client.disconnect();
    }
  });

  it('gets a warning when the stores open, naming the policy', async () => {
    await setPolicy('volatile-lru');
    const warnings: Array<{ o: object; msg: string }> = [];
    const stores = await openStores({
      redisUrl: redis.url,
      redisKeyPrefix: 'eviction-test:',
      dataDir,
      logger: { info() {}, warn: (o, msg) => warnings.push({ o, msg }) },
    });
    await stores.close();
    expect(warnings).toEqual([
      expect.objectContaining({
        o: expect.objectContaining({ maxmemoryPolicy: 'volatile-lru' }),
        msg: expect.stringContaining('set maxmemory-policy noeviction'),
      }),
    ]);
  });
});
