/**
 * oidc-provider artifacts in Redis.
 *
 * Key layout (<prefix> is the configured redisKeyPrefix, e.g. "wob:"):
 *
 *   <prefix>oidc:<Model>:<id>                  hash   payload = JSON of the payload without `consumed`,
 *                                                     consumed = epoch seconds, set once by consume(),
 *                                                     consumer = that consume's mark (release());
 *                                                     TTL = expiresIn (none when oidc-provider gives none)
 *   <prefix>oidc-grant:<grantId>               zset   member = <Model>:<id> of a grantable artifact (its key
 *                                                     without "<prefix>oidc:", short enough for Redis to keep
 *                                                     a grant's few members in its compact listpack encoding:
 *                                                     a full key is over zset-max-listpack-value, 64 bytes,
 *                                                     and costs ~1 KB more per grant),
 *                                                     score = when that member expires (epoch ms, or +inf);
 *                                                     TTL = the latest score (+1 s), so the index lives
 *                                                     exactly as long as its longest-lived member, and
 *                                                     members past their score are pruned on every write
 *                                                     (oidc-provider issue 334: unbounded grant lists)
 *   <prefix>oidc-uid:<Model>:<uid>             string the id whose payload has this uid (Session); same TTL
 *   <prefix>oidc-user-code:<Model>:<userCode>  string the id whose payload has this userCode; same TTL
 *
 * Redis Cluster: every Lua script touches exactly one key, so no hash tags are needed and
 * none may appear in the prefix. Work spanning keys (an artifact and its indexes, a grant's
 * members) is sent as separate commands, concurrently, so auto-pipelining still makes
 * upsert one round trip. Index entries are not removed by destroy(): they point at a
 * missing artifact (a miss), are checked against the payload on read, and expire on their
 * own. destroy() of an Interaction only shortens its TTL to a grace, and destroy() of a Session
 * leaves a tombstone in its key (a `destroyed` field, no payload) that upsert will not overwrite
 * (see ../destroy-grace.ts).
 */

import type { AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { destroyGraceSeconds, leavesTombstone, SESSION_TOMBSTONE_SECONDS } from '../destroy-grace.ts';
import { GRANTABLE_MODELS } from '../grantable.ts';
import type { ReleasableAdapter } from '../ports.ts';
import { luaScript, type RedisClient, runScript } from './scripts.ts';

/** Slack on the grant index TTL: the member keys' own TTLs are counted by the Redis clock. */
const GRANT_INDEX_SLACK_MS = 1_000;

// KEYS[1] artifact; ARGV: payload JSON, consumed ('' = not consumed), ttl seconds ('' = none).
// 0, writing nothing, when the key holds a destroyed Session's tombstone (../destroy-grace.ts).
const UPSERT = luaScript(`
if redis.call('HEXISTS', KEYS[1], 'destroyed') == 1 then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'payload', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'consumed', ARGV[2])
end
if ARGV[3] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
`);

// KEYS[1] artifact; ARGV[1] epoch seconds, ARGV[2] the call's mark ('' = none). 1 when this call
// consumed it, or consumed it already: ioredis sends a command again after a reconnection when its
// answer was lost, and the copy must not read its own consume as someone else's (a replay, which
// revokes the grant). 0 when another consumed it, or it is gone (HSETNX alone would recreate a
// missing key without a TTL).
const CONSUME = luaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1]) == 1 then
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'consumer', ARGV[2]) end
  return 1
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'consumer') == ARGV[2] then return 1 end
return 0
`);

// KEYS[1] artifact; ARGV[1] a consume's mark. Undoes that consume, and only that one.
const RELEASE = luaScript(`
if redis.call('HGET', KEYS[1], 'consumer') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'consumed', 'consumer')
return 1
`);

// KEYS[1] artifact; ARGV[1] seconds. The artifact replaced by a tombstone: a hash without payload,
// which reads as missing and which UPSERT will not overwrite, until it expires.
const DESTROY_LEAVING_TOMBSTONE = luaScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'destroyed', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`);

// KEYS[1] artifact; ARGV[1] grace ms. Shortens the remaining life to the grace, never lengthens
// it (as EXPIRE ... LT, which needs Redis 7). 0 when the artifact is gone already.
const SHORTEN_TTL = luaScript(`
local left = redis.call('PTTL', KEYS[1])
if left == -2 then return 0 end
if left == -1 or left > tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
`);

// KEYS[1] grant index; ARGV: member, member expiry (epoch ms or 'inf'), now (epoch ms), slack ms.
const ADD_GRANT_MEMBER = luaScript(`
redis.call('ZADD', KEYS[1], ARGV[2] == 'inf' and '+inf' or ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then return 0 end
local latest = tonumber(last[2])
if last[2] == 'inf' or latest == math.huge then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(latest - tonumber(ARGV[3]) + tonumber(ARGV[4]))))
end
return 1
`);

export interface RedisOidcAdapterOptions {
  /** Prepended to every key; must not contain '{' or '}' (see the key layout above). */
  prefix: string;
  /** Injected clock (tests); the default is the system clock. */
  now?: () => Date;
}

export function createRedisOidcAdapterFactory(
  redis: RedisClient,
  options: RedisOidcAdapterOptions,
): (model: string) => ReleasableAdapter {
  if (/[{}]/.test(options.prefix)) throw new Error('the Redis key prefix must not contain { or }');
  const keys = redisOidcKeys(options.prefix);
  const now = options.now ?? (() => new Date());
  return (model) => createAdapter(redis, model, keys, now);
}

/** The key layout above, as functions (tests use it to look behind the adapter). */
export function redisOidcKeys(prefix: string) {
  return {
    artifact: (model: string, id: string) => `${prefix}oidc:${model}:${id}`,
    grant: (grantId: string) => `${prefix}oidc-grant:${grantId}`,
    /** A grant index member, and the artifact key it stands for. */
    grantMember: (model: string, id: string) => `${model}:${id}`,
    grantMemberKey: (member: string) => `${prefix}oidc:${member}`,
    uid: (model: string, uid: string) => `${prefix}oidc-uid:${model}:${uid}`,
    userCode: (model: string, userCode: string) => `${prefix}oidc-user-code:${model}:${userCode}`,
  };
}

type Keys = ReturnType<typeof redisOidcKeys>;

function createAdapter(redis: RedisClient, model: string, keys: Keys, now: () => Date): ReleasableAdapter {
  const grace = destroyGraceSeconds(model);
  const tombstone = leavesTombstone(model);
  const find = async (id: string): Promise<AdapterPayload | undefined> =>
    decode(await redis.hgetall(keys.artifact(model, id)));

  const findByIndex = async (
    indexKey: string,
    field: 'uid' | 'userCode',
    value: string,
  ): Promise<AdapterPayload | undefined> => {
    const id = await redis.get(indexKey);
    if (id === null) return undefined;
    const payload = await find(id);
    // The index may be stale (the artifact was replaced or destroyed): trust only the payload.
    return payload?.[field] === value ? payload : undefined;
  };

  return {
    async upsert(id, payload, expiresIn) {
      const key = keys.artifact(model, id);
      const ttl = ttlSeconds(expiresIn);
      const { consumed, ...rest } = payload;
      const writes: Promise<unknown>[] = [
        runScript(redis, UPSERT, [key], [JSON.stringify(rest), consumed ? String(consumed) : '', ttl ?? '']),
      ];
      if (GRANTABLE_MODELS.has(model) && payload.grantId) {
        const at = now().getTime();
        const expiresAt = ttl === undefined ? 'inf' : String(at + ttl * 1000);
        writes.push(
          runScript(
            redis,
            ADD_GRANT_MEMBER,
            [keys.grant(payload.grantId)],
            [keys.grantMember(model, id), expiresAt, at, GRANT_INDEX_SLACK_MS],
          ),
        );
      }
      if (payload.uid) writes.push(setIndex(redis, keys.uid(model, payload.uid), id, ttl));
      if (payload.userCode) writes.push(setIndex(redis, keys.userCode(model, payload.userCode), id, ttl));
      await Promise.all(writes);
    },

    find,

    findByUid: (uid) => findByIndex(keys.uid(model, uid), 'uid', uid),

    findByUserCode: (userCode) => findByIndex(keys.userCode(model, userCode), 'userCode', userCode),

    async consume(id, mark = '') {
      const seconds = Math.floor(now().getTime() / 1000);
      const consumed = await runScript(redis, CONSUME, [keys.artifact(model, id)], [seconds, mark]);
      if (consumed !== 1) throw new errors.InvalidGrant(`${model} already consumed`);
    },

    async release(id, mark) {
      // EVAL, not EVALSHA first: a release follows a failure, maybe a Redis that stopped answering,
      // and must reach it in one command, not wait for a NOSCRIPT answer before sending the script.
      await redis.eval(RELEASE.source, 1, keys.artifact(model, id), mark);
    },

    async destroy(id) {
      const key = keys.artifact(model, id);
      if (tombstone) await runScript(redis, DESTROY_LEAVING_TOMBSTONE, [key], [SESSION_TOMBSTONE_SECONDS]);
      else if (grace === undefined) await redis.del(key);
      else await runScript(redis, SHORTEN_TTL, [key], [grace * 1000]);
    },

    // The members are read, deleted, and only then taken off the index: a revocation cut short (a
    // store that stopped answering) leaves the index naming what is left, for the next attempt to
    // find. A member added meanwhile stays indexed; the grant destroyed with it, it is dead anyway.
    async revokeByGrantId(grantId) {
      const index = keys.grant(grantId);
      const members = await redis.zrange(index, 0, -1);
      if (members.length === 0) return;
      // One DEL per key: members live in different hash slots on a cluster.
      await Promise.all(members.map((member) => redis.del(keys.grantMemberKey(member))));
      await redis.zrem(index, ...members);
    },
  };
}

function decode(hash: Record<string, string>): AdapterPayload | undefined {
  if (hash.payload === undefined) return undefined;
  const payload = JSON.parse(hash.payload) as AdapterPayload;
  if (hash.consumed !== undefined) payload.consumed = Number(hash.consumed);
  return payload;
}

async function setIndex(redis: RedisClient, key: string, id: string, ttl: number | undefined): Promise<void> {
  if (ttl === undefined) await redis.set(key, id);
  else await redis.set(key, id, 'EX', ttl);
}

/** Redis counts TTLs in whole seconds (> 0); oidc-provider gives seconds, or nothing for "forever". */
function ttlSeconds(expiresIn: number | undefined): number | undefined {
  if (expiresIn === undefined || !Number.isFinite(expiresIn)) return undefined;
  return Math.max(1, Math.ceil(expiresIn));
}
