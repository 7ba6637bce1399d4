import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisOidcAdapterFactory, redisOidcKeys } from '../../src/storage/redis/oidc-adapter.ts';
import { scanKeys } from '../helpers/redis.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openRedisBackend, type RedisBackend } from './backends.ts';
import { createFakeClock, type FakeClock } from './fake-clock.ts';
import { advanceRedisTime } from './redis-time.ts';

const redis = await serviceAvailable('redis');

// What the conformance suite cannot see: the grant index itself (oidc-provider issue 334).
describe.skipIf(!redis)('Redis oidc adapter: grant index', () => {
  let backend: RedisBackend;
  let clock: FakeClock;
  let factory: ReturnType<typeof createRedisOidcAdapterFactory>;
  let keys: ReturnType<typeof redisOidcKeys>;
  const advance = async (seconds: number) => {
    clock.advance(seconds);
    await advanceRedisTime(backend.redis, backend.prefix, seconds);
  };
  const upsertToken = (model: string, grantId: string, ttl: number | undefined) => {
    const jti = randomUUID();
    return factory(model)
      .upsert(jti, { kind: model, jti, grantId }, ttl)
      .then(() => jti);
  };

  beforeAll(async () => {
    backend = await openRedisBackend();
    clock = createFakeClock();
    factory = createRedisOidcAdapterFactory(backend.redis, { prefix: backend.prefix, now: clock.now });
    keys = redisOidcKeys(backend.prefix);
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('gives the grant index a TTL no shorter than its longest-lived member', async () => {
    const grantId = randomUUID();
    const rt = await upsertToken('RefreshToken', grantId, 1000);
    await upsertToken('AccessToken', grantId, 10);
    const indexTtl = await backend.redis.pttl(keys.grant(grantId));
    const memberTtl = await backend.redis.pttl(keys.artifact('RefreshToken', rt));
    expect(indexTtl).toBeGreaterThanOrEqual(memberTtl);
  });

  it('lets the grant index expire once every member has expired', async () => {
    const grantId = randomUUID();
    await upsertToken('AccessToken', grantId, 30);
    await upsertToken('RefreshToken', grantId, 60);
    await advance(61);
    expect(await backend.redis.exists(keys.grant(grantId))).toBe(0);
  });

  it('keeps the grant index without expiry while a member has none', async () => {
    const grantId = randomUUID();
    await upsertToken('RefreshToken', grantId, undefined);
    await upsertToken('AccessToken', grantId, 30);
    expect(await backend.redis.pttl(keys.grant(grantId))).toBe(-1);
  });

  it('prunes expired members from the grant index on the next write, so it does not grow without bound', async () => {
    const grantId = randomUUID();
    await upsertToken('RefreshToken', grantId, 10_000);
    for (let i = 0; i < 5; i++) {
      await upsertToken('AccessToken', grantId, 60);
      await advance(61);
    }
    await upsertToken('AccessToken', grantId, 60);
    // The refresh token and the one live access token: five expired access tokens pruned.
    expect(await backend.redis.zcard(keys.grant(grantId))).toBe(2);
  });

  it('removes the grant index when the grant is revoked', async () => {
    const grantId = randomUUID();
    await upsertToken('AccessToken', grantId, 60);
    await factory('AccessToken').revokeByGrantId(grantId);
    expect(await backend.redis.exists(keys.grant(grantId))).toBe(0);
  });

  it("keeps a grant index in Redis' compact listpack encoding (about 1 KB less per grant)", async () => {
    const grantId = randomUUID();
    // oidc-provider's ids are 43 characters; a full key would exceed Redis' 64-byte listpack limit.
    for (const model of ['AuthorizationCode', 'AccessToken', 'RefreshToken']) {
      const id = randomBytes(32).toString('base64url');
      await factory(model).upsert(id, { kind: model, jti: id, grantId }, 3600);
    }
    expect(await backend.redis.object('ENCODING', keys.grant(grantId))).toMatch(/^(listpack|ziplist)$/);
  });

  it('writes only keys under the configured prefix', async () => {
    const before = new Set(await scanKeys(backend.redis, backend.prefix));
    const grantId = randomUUID();
    const session = randomUUID();
    await upsertToken('AccessToken', grantId, 60);
    await factory('Session').upsert(session, { kind: 'Session', jti: session, uid: randomUUID() }, 60);
    await factory('DeviceCode').upsert(session, { kind: 'DeviceCode', jti: session, userCode: 'ABCD' }, 60);
    const added = (await scanKeys(backend.redis, backend.prefix)).filter((k) => !before.has(k));
    // artifact + grant index, session + uid index, device code + user code index
    expect(added).toHaveLength(6);
  });

  it('refuses a prefix with a hash tag, which would pin every key to one cluster slot', () => {
    expect(() => createRedisOidcAdapterFactory(backend.redis, { prefix: 'wob:{x}:' })).toThrow(/prefix/);
  });
});

// The marks that let a consume be sent twice and undone by its own request (src/oidc/single-use.ts).
describe.skipIf(!redis)('Redis oidc adapter: marked consumes', () => {
  let backend: RedisBackend;
  let factory: ReturnType<typeof createRedisOidcAdapterFactory>;
  beforeAll(async () => {
    backend = await openRedisBackend();
    factory = createRedisOidcAdapterFactory(backend.redis, { prefix: backend.prefix });
  });
  afterAll(async () => {
    await backend?.close();
  });
  const refreshToken = async () => {
    const jti = randomUUID();
    await factory('RefreshToken').upsert(jti, { kind: 'RefreshToken', jti, grantId: randomUUID() }, 60);
    return jti;
  };

  it('takes a consume sent again with its mark as done, and one with another mark as a replay', async () => {
    const adapter = factory('RefreshToken');
    const jti = await refreshToken();
    await adapter.consume(jti, 'mark-a');
    await expect(adapter.consume(jti, 'mark-a')).resolves.toBeUndefined();
    await expect(adapter.consume(jti, 'mark-b')).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(adapter.consume(jti)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('releases only the consume bearing the mark given', async () => {
    const adapter = factory('RefreshToken');
    const jti = await refreshToken();
    await adapter.consume(jti, 'mark-a');
    await adapter.release(jti, 'mark-b');
    expect((await adapter.find(jti))?.consumed).toBeTypeOf('number');
    await adapter.release(jti, 'mark-a');
    expect((await adapter.find(jti))?.consumed).toBeUndefined();
    // Spendable again, once.
    await adapter.consume(jti, 'mark-c');
    await expect(adapter.consume(jti, 'mark-d')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a release of a token never consumed, or gone, changes nothing', async () => {
    const adapter = factory('RefreshToken');
    const jti = await refreshToken();
    await adapter.release(jti, 'mark-a');
    await adapter.release(randomUUID(), 'mark-a');
    expect((await adapter.find(jti))?.consumed).toBeUndefined();
    await adapter.consume(jti, 'mark-a');
    expect((await adapter.find(jti))?.consumed).toBeTypeOf('number');
  });
});
