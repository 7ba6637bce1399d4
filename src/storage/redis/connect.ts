import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { connectionFailure, describeUrl } from '../describe-url.ts';
import type { RedisClient } from './scripts.ts';
import { parseRedisTarget, type RedisTarget } from './target.ts';

export interface RedisConnectOptions {
  /** Connection trouble after the first connect; ioredis keeps reconnecting by itself. */
  onError?: (error: Error) => void;
  /** How long the first connection may take, in all: STARTUP_TIMEOUT_MS by default (tests shorten it). */
  startupTimeoutMs?: number;
}

/**
 * The first connection's whole budget: a server's own connect timeout (10 s) and its first answer.
 * ioredis retries a cluster's nodes and a master's sentinels for as long as none answers, so a
 * cluster or Sentinel URL naming nothing reachable held the start-up for good (an outside review:
 * over a minute and counting); a single server's first connect fails within its connect timeout.
 */
export const STARTUP_TIMEOUT_MS = 15_000;

/**
 * A command Redis has not answered within this many milliseconds fails: a Redis that hangs (paused,
 * swapping, a network that drops packets without resetting) would otherwise hold every request
 * waiting on it as long as it hangs. Every command of ours is a key lookup or a short script.
 */
export const COMMAND_TIMEOUT_MS = 3000;

/** What every connection shares, whatever the topology. */
const COMMON: RedisOptions = {
  lazyConnect: true,
  enableAutoPipelining: true,
  maxRetriesPerRequest: 3,
  connectTimeout: 10_000,
  commandTimeout: COMMAND_TIMEOUT_MS,
  // A connection that has sent commands and hears nothing back for twice as long is dropped, and
  // ioredis opens a new one. commandTimeout alone fails the commands but keeps the socket: one the
  // network had silently forgotten (a NAT or firewall's lost state, a failover without a reset) kept
  // every later command timing out, and the instance answering 503, until it was restarted (an
  // outside review's fault injection). No command of ours blocks, so silence is never an answer;
  // twice the command's limit, so that a Redis only slow for a moment keeps its connection (a new
  // one sends again what was in flight, adding to its load).
  socketTimeout: 2 * COMMAND_TIMEOUT_MS,
};

/**
 * Connects to the Redis a URL names (target.ts: one server, a cluster, or a master through
 * Sentinel) and waits until it answers, so a wrong URL fails at startup instead of on the first
 * login. Afterwards ioredis reconnects on its own (to the new master after a Sentinel failover,
 * following a cluster's slot moves); commands issued while it is down fail after a few retries
 * instead of hanging.
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const redis = createClient(parseRedisTarget(url));
  const firstConnect = watchFirstConnect(redis);
  // Without a listener ioredis prints every connection error to stderr itself.
  redis.on('error', (error: Error) => options.onError?.(error));
  const budget = options.startupTimeoutMs ?? STARTUP_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    // Said with how long it waited, and whether the server answered at all (watchFirstConnect).
    timer = setTimeout(() => reject(new Error('timed out')), budget);
  });
  try {
    await Promise.race([
      redis
        .connect()
        .then(() => selectDatabase(redis))
        .then(() => redis.ping()),
      deadline,
    ]);
  } catch (error) {
    const loading = firstConnect.connected() ? await stillLoading(redis) : undefined;
    redis.disconnect();
    const cause = connectionFailure(loading ?? firstConnect.failure(error));
    throw new Error(`cannot connect to Redis at ${describeUrl(url)}`, { cause });
  } finally {
    clearTimeout(timer);
    firstConnect.stop();
  }
  return redis;
}

/**
 * Selects the URL's database (/N, one server or Sentinel's master) and waits for Redis's answer.
 * ioredis sends that SELECT itself once connected, but only emits its error as an event and goes
 * on in db 0: a REDIS_URL naming a database the server lacks (past its `databases`, or any but 0
 * on a managed Redis) started, said "Redis connected", and shared db 0 with whatever else uses it
 * (an operator's review). A cluster has db 0 alone, and target.ts refuses a path on its URL.
 */
async function selectDatabase(redis: RedisClient): Promise<void> {
  if (redis instanceof Cluster) return;
  const db = redis.options.db ?? 0;
  if (db !== 0) await redis.select(db);
}

/**
 * Why the first connection failed. ioredis rejects connect() with "Connection is closed." whatever
 * closed it, a refused connection as a hung server (after its timeouts); what closed it came as an
 * 'error' event before: ECONNREFUSED with the address, Redis's WRONGPASS or NOAUTH, a timeout. A
 * timeout is said with how long it waited, and whether the server had accepted the connection.
 */
function watchFirstConnect(redis: RedisClient) {
  const started = performance.now();
  let connected = false;
  let seen: Error | undefined;
  const onConnect = () => {
    connected = true;
  };
  const onError = (error: Error) => {
    seen = error;
  };
  redis.on('connect', onConnect);
  redis.on('error', onError);
  return {
    failure(rejection: unknown): unknown {
      const error = seen ?? rejection;
      if (!isTimeout(error)) return error;
      const seconds = Math.round((performance.now() - started) / 1000);
      return new Error(
        connected
          ? `timed out after ${seconds} s: the server accepted the connection but did not answer (hung, or not Redis)`
          : `timed out after ${seconds} s connecting`,
      );
    },
    /** The server accepted the connection (whatever came after). */
    connected: () => connected,
    stop() {
      redis.off('connect', onConnect);
      redis.off('error', onError);
    },
  };
}

/** How long the start-up asks a server that did not become ready whether it is loading its data. */
const LOADING_PROBE_MS = 1000;

/**
 * Why a server that accepted the connection is not ready, when the reason is that it is still
 * loading its dataset into memory (a restart with a large RDB or AOF): ioredis's ready check waits
 * for that, silently, and the start-up's deadline would otherwise report a server that "did not
 * answer". INFO is one of the commands Redis answers while loading, and ioredis sends it before the
 * connection is ready. Undefined when it is not loading, or does not say (a cluster, whose nodes
 * ioredis does not reach until the cluster is ready).
 */
async function stillLoading(redis: RedisClient): Promise<Error | undefined> {
  if (!(redis instanceof Redis)) return undefined;
  // A second at most: a server that hangs would otherwise hold the failed start-up another
  // command timeout.
  const info = await Promise.race([redis.info('persistence').catch(() => ''), sleep(LOADING_PROBE_MS, '')]);
  if (!/^loading:1\b/m.test(info)) return undefined;
  const eta = /^loading_eta_seconds:(\d+)/m.exec(info)?.[1];
  return new Error(
    `Redis is still loading its dataset into memory${eta === undefined ? '' : ` (about ${eta} s more, by its estimate)`}: start again once it has (a restart policy does)`,
  );
}

function isTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    (error as { code?: unknown }).code === 'ETIMEDOUT' || /timed out|timeout|ETIMEDOUT/i.test(error.message)
  );
}

function createClient(target: RedisTarget): RedisClient {
  if (target.mode === 'server') return new Redis(target.url, COMMON);
  const { username, password } = target;
  const auth = { ...(username && { username }), ...(password && { password }) };
  const tls = target.tls ? { tls: {} } : {};
  if (target.mode === 'cluster')
    return new Cluster(target.nodes, clusterOptions(target, { ...auth, ...tls }));
  return new Redis({
    ...COMMON,
    ...auth,
    ...tls,
    sentinels: target.sentinels,
    name: target.masterName,
    db: target.db,
    ...(target.sentinelUsername && { sentinelUsername: target.sentinelUsername }),
    ...(target.sentinelPassword && { sentinelPassword: target.sentinelPassword }),
    ...(target.tls && { enableTLSForSentinelMode: true, sentinelTLS: {} }),
  });
}

/**
 * ioredis resolves a cluster's host names and connects to the addresses, so a TLS certificate
 * issued for the name (managed clusters such as ElastiCache) would not match; with TLS the name is
 * kept and resolved by the socket itself, as ioredis's documentation advises.
 */
export function clusterOptions(target: { tls: boolean }, node: RedisOptions): ClusterOptions {
  return {
    lazyConnect: true,
    enableAutoPipelining: true,
    redisOptions: { ...COMMON, ...node },
    ...(target.tls && { dnsLookup: (address, callback) => callback(null, address) }),
  };
}

/**
 * The eviction policy of the Redis behind `redis` (every master of a cluster) when it is not
 * `noeviction`, else undefined (also when INFO is refused). Every key of ours must stay until it
 * expires, and all of them expire, so `volatile-*` policies evict them as `allkeys-*` do: an
 * evicted used refresh token or spent code would be accepted again (its reuse detection gone), an
 * evicted session logs a person out, an evicted rate-limit count forgets. Many managed services
 * default to an evicting policy. Read from INFO, which works where CONFIG is disabled.
 */
export async function evictingPolicy(redis: RedisClient): Promise<string | undefined> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    const info = await node.info('memory').catch(() => '');
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (policy && policy !== 'noeviction') return policy;
  }
  return undefined;
}
