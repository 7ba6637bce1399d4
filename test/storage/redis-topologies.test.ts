import { Cluster, Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECTION_DEFAULTS } from '../../src/config/defaults.ts';
import type { Config } from '../../src/config/types.ts';
import { connectRedis, evictingPolicy } from '../../src/storage/redis/connect.ts';
import { createRedisKeyValueStore } from '../../src/storage/redis/key-value.ts';
import { createRedisOidcAdapterFactory } from '../../src/storage/redis/oidc-adapter.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty } from '../helpers/flow.ts';
import { scanKeys } from '../helpers/redis.ts';
import {
  type RedisCluster,
  type RedisSentinel,
  redisServerAvailable,
  startRedisCluster,
  startRedisSentinel,
} from '../helpers/redis-topologies.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { createFakeClock } from './fake-clock.ts';
import { describeKeyValueConformance } from './key-value-conformance.ts';
import { describeOidcAdapterConformance } from './oidc-adapter-conformance.ts';
import { advanceRedisTime } from './redis-time.ts';

/**
 * REDIS_URL naming a Redis Cluster (redis+cluster://) or a master behind Sentinel
 * (redis+sentinel://): the storage contracts on a real three-master cluster, and whole logins
 * through the bridge on each, a Sentinel failover included. The servers are private to this file
 * (test/helpers/redis-topologies.ts); the bridge's PostgreSQL is the test server's.
 */
const postgres = await serviceAvailable('postgres');
const servers = redisServerAvailable();
// Started once for the file (a second or two); the suites below skip without redis-server.
const cluster: RedisCluster | undefined = servers ? await startRedisCluster() : undefined;
afterAll(() => cluster?.stop());

/** A client of the cluster through the bridge's own connect, with keys under a prefix of its own. */
async function clusterHarness() {
  const redis = await connectRedis((cluster as RedisCluster).url);
  const prefix = `wob-topology-${Math.random().toString(36).slice(2)}:`;
  return { redis, prefix, close: async () => redis.disconnect() };
}

describeKeyValueConformance(
  'Redis Cluster',
  async () => {
    const { redis, prefix, close } = await clusterHarness();
    return {
      kv: createRedisKeyValueStore(redis, { prefix }),
      advance: (seconds) => advanceRedisTime(redis, prefix, seconds),
      close,
    };
  },
  { skip: !servers },
);

describeOidcAdapterConformance(
  'Redis Cluster',
  async () => {
    const { redis, prefix, close } = await clusterHarness();
    const clock = createFakeClock();
    return {
      factory: createRedisOidcAdapterFactory(redis, { prefix, now: clock.now }),
      nowSeconds: () => Math.floor(clock.now().getTime() / 1000),
      async advance(seconds) {
        clock.advance(seconds);
        await advanceRedisTime(redis, prefix, seconds);
      },
      close,
    };
  },
  { skip: !servers },
);

/** A bridge on the test PostgreSQL whose Redis is `redisUrl` (its key prefix unchanged). */
function bridgeOn(
  redisUrl: string,
  configure: (config: Config) => Config = (config) => config,
): Promise<Bridge> {
  return startBridge({
    storage: 'postgres+redis',
    configure: (config) => configure({ ...config, storage: { ...config.storage, redisUrl } }),
  });
}

describe.skipIf(!cluster)('the eviction policy of a Redis Cluster', () => {
  it('is read from every master: one that may evict keys is found', async () => {
    const { redis, close } = await clusterHarness();
    const last = new Redis((cluster as RedisCluster).ports.at(-1) as number, '127.0.0.1');
    try {
      expect(await evictingPolicy(redis)).toBeUndefined();
      await last.config('SET', 'maxmemory-policy', 'allkeys-lru');
      expect(await evictingPolicy(redis)).toBe('allkeys-lru');
    } finally {
      await last.config('SET', 'maxmemory-policy', 'noeviction');
      last.disconnect();
      await close();
    }
  });
});

describe.skipIf(!postgres || !cluster)('a bridge on a Redis Cluster', () => {
  let bridge: Bridge;
  const { url, ports } = cluster ?? { url: '', ports: [] };
  beforeAll(async () => {
    bridge = await bridgeOn(url);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('logs people in, refreshes and answers userinfo, its keys spread over the masters', async () => {
    const rp = await relyingParty(bridge);
    const users = await Promise.all(
      ['一', '二', '三', '四'].map((n) => createSandboxUser(bridge, `集群${n}`)),
    );
    for (const user of users) {
      const { tokens } = await loginAs(rp, user, {
        scope: 'openid profile offline_access',
        prompt: 'consent',
      });
      expect(tokens.claims()?.sub).toBe(user.unionid);
      const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
      expect(refreshed.claims()?.sub).toBe(user.unionid);
      const userinfo = await oidc.fetchUserInfo(rp, refreshed.access_token, user.unionid);
      expect(userinfo.sub).toBe(user.unionid);
    }
    // Really a cluster: the sessions' keys live on more than one master.
    expect(bridge.server.stores.redis).toBeInstanceOf(Cluster);
    const prefix = bridge.config.storage.redisKeyPrefix;
    const perMaster = await Promise.all(
      ports.map(async (port) => {
        const node = await connectRedis(`redis://127.0.0.1:${port}`);
        try {
          return (await scanKeys(node, prefix)).length;
        } finally {
          node.disconnect();
        }
      }),
    );
    expect(perMaster.filter((keys) => keys > 0).length).toBeGreaterThan(1);
  });
});

describe.skipIf(!postgres || !cluster)('rate limits on a Redis Cluster', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await bridgeOn(cluster?.url ?? '', (config) => ({
      ...config,
      limits: {
        ...SECTION_DEFAULTS.limits,
        rateLimits: { ...SECTION_DEFAULTS.limits.rateLimits, token: { points: 2, durationSeconds: 600 } },
      },
    }));
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it("count in the cluster and refuse past the limit, as on one server (the limiter's script touches one key)", async () => {
    const basic = Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await fetch(`${bridge.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=refresh_token&refresh_token=nope',
      });
      statuses.push(answer.status);
    }
    // The token endpoint counts failed requests: two refused grants, then the limit.
    expect(statuses).toEqual([400, 400, 429]);
    expect(bridge.server.stores.redis).toBeInstanceOf(Cluster);
  });
});

describe.skipIf(!postgres || !servers)('a bridge on a master found through Sentinel', () => {
  let sentinel: RedisSentinel;
  let bridge: Bridge;
  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    bridge = await bridgeOn(sentinel.url);
  });
  afterAll(async () => {
    await bridge?.close();
    await sentinel?.stop();
  });

  it('logs people in, and after a failover follows the new master with the sessions it held', async () => {
    const rp = await relyingParty(bridge);
    const before = await createSandboxUser(bridge, 'Before failover');
    const { tokens } = await loginAs(rp, before, {
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    const oldMaster = await sentinel.masterPort();

    await sentinel.failover();
    expect(await sentinel.masterPort()).not.toBe(oldMaster);

    // At once, no retry: the refresh token written to the old master is read from the new one (the
    // replica had it); Sentinel closed the bridge's connections to the demoted master and ioredis
    // asked the sentinel for the new one, holding the commands issued meanwhile.
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    expect(refreshed.claims()?.sub).toBe(before.unionid);
    const after = await createSandboxUser(bridge, 'After failover');
    const again = await loginAs(rp, after);
    expect(again.tokens.claims()?.sub).toBe(after.unionid);
  });
});
