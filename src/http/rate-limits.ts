import type { Context } from 'koa';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type { LimitsConfig } from '../config/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RedisClient } from '../storage/redis/scripts.ts';
import type { Scoped } from './scoped.ts';
import { pageContext, type Views } from './views.ts';

/**
 * The endpoint groups limited: authorization requests and interaction posts, WeChat callbacks and
 * failed token requests (each per client IP, by the middleware below), and the mini-program
 * endpoints (per person, by their router, with `spendPoint`).
 */
export type RateLimitGroup = 'interaction' | 'callback' | 'token' | 'miniProgram';

export type RateLimitsConfig = LimitsConfig['rateLimits'];

export type RateLimiters = Record<RateLimitGroup, RateLimiterAbstract>;

/**
 * Counters shared by every instance in Redis when there is one (an in-memory insurance limiter
 * takes over while Redis is unreachable); in memory otherwise, which is exact for the embedded
 * store since it runs as a single instance.
 */
export function createRateLimiters(
  rules: RateLimitsConfig,
  redis?: { client: RedisClient; prefix: string },
): RateLimiters {
  const build = (group: RateLimitGroup): RateLimiterAbstract => {
    const { points, durationSeconds: duration } = rules[group];
    const memory = new RateLimiterMemory({ points, duration, keyPrefix: group });
    if (!redis) return memory;
    return new RateLimiterRedis({
      storeClient: redis.client,
      keyPrefix: `${redis.prefix}rate:${group}`,
      points,
      duration,
      insuranceLimiter: memory,
    });
  };
  return {
    interaction: build('interaction'),
    callback: build('callback'),
    token: build('token'),
    miniProgram: build('miniProgram'),
  };
}

/**
 * Spends one of `key`'s points: undefined while within the limit, else the milliseconds until the
 * key may go on. A store error with no insurance left also answers undefined: the request goes
 * through rather than fail for want of a counter.
 */
export async function spendPoint(limiter: RateLimiterAbstract, key: string): Promise<number | undefined> {
  try {
    await limiter.consume(key);
    return undefined;
  } catch (rejection) {
    return rejection instanceof RateLimiterRes ? rejection.msBeforeNext : undefined;
  }
}

/**
 * Which group a request counts against, if any: the steps of a browser's login that write to the
 * stores or spend WeChat's quota, and the account page's posts (the mini-program endpoints are
 * counted per person by their own router, not here). The authorization request
 * creates an interaction; the consent and abort posts write a grant or a result; a callback
 * exchanges a code with WeChat. The pages of an interaction (login, consent) only read it, and its
 * resume (`/auth/:uid`) only continues what a counted request began: counting them cost every login
 * two Redis round trips, for nothing a flood of them could fill.
 */
export function groupOf(
  method: string,
  requested: string,
): Exclude<RateLimitGroup, 'miniProgram'> | undefined {
  const path = routedPath(requested);
  if (path === '/auth') return 'interaction';
  // A pushed authorization request (RFC 9126) comes from the relying party's server, as a token
  // request does, and is counted as one: its failures, per address and client.
  if (path === '/token' || path === '/request') return method === 'POST' ? 'token' : undefined;
  // The account page's posts revoke, sign out, unbind and delete: each writes to both stores.
  if (method === 'POST' && path.startsWith('/account/')) return 'interaction';
  // Most requests (userinfo, introspection, pages, assets) end here, without a regular expression.
  if (!path.startsWith('/interaction/')) return undefined;
  if (/^\/interaction\/[^/]+\/wechat-callback$/.test(path)) return 'callback';
  if (method === 'POST' && /^\/interaction\/[^/]+\/(consent|abort)$/.test(path)) return 'interaction';
  return undefined;
}

/**
 * The path as the routers match it: oidc-provider's and ours ignore letter case and a trailing
 * slash, so /Token and /auth/ reach the same endpoints as /token and /auth, and must be counted
 * as them.
 */
export function routedPath(path: string): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') || '/' : path;
  return /[A-Z]/.test(trimmed) ? trimmed.toLowerCase() : trimmed;
}

interface RateLimitOptions {
  limiters: RateLimiters;
  views: Views;
  metrics?: Metrics | undefined;
  /**
   * Called just before a request's count is sent: reads the route would make first (and that change
   * nothing) start here, so that they travel to the store together with the count.
   */
  alongside?: ((ctx: Context) => void) | undefined;
  /**
   * The registered clients' ids: a token request's failures are counted per address and client
   * only for these (clients sharing an address do not block each other); any other id shares the
   * address's own count, since a made-up id per request would otherwise get a fresh count each time.
   */
  clientIds?: ReadonlySet<string> | undefined;
}

/**
 * 429 with Retry-After once a client spends its points: an OAuth error JSON on the token endpoint,
 * a readable page on the others. The key is the client's IP (X-Forwarded-For only with trustProxy).
 */
export function rateLimits(options: RateLimitOptions): Scoped {
  const tokenBlocks = new BlockedKeys();
  const authorizationBlocks = new BlockedKeys();
  return {
    applies: (ctx, path) => groupOf(ctx.method, path) !== undefined,
    middleware(ctx, next) {
      const group = groupOf(ctx.method, ctx.path);
      if (!group) return next();
      if (group === 'token') return limitTokenFailures(ctx, next, options, tokenBlocks);
      if (routedPath(ctx.path) === '/auth') {
        return limitAuthorizationRequests(ctx, next, options, authorizationBlocks);
      }
      return limitRequests(ctx, next, group, options);
    },
  };
}

/**
 * The authorization request is counted alongside its own work instead of before it: the count
 * then travels to Redis in the same write as the interaction the request saves (or the session it
 * reads), one round trip fewer per login. All such a request can have done when it turns out to be
 * over the limit is save an interaction nobody will use (it expires); its answer becomes the 429,
 * and this instance refuses the address at once, without Redis, until the window ends, so a flood
 * leaves at most one such interaction per instance and window.
 */
async function limitAuthorizationRequests(
  ctx: Context,
  next: () => Promise<unknown>,
  options: RateLimitOptions,
  blocks: BlockedKeys,
): Promise<void> {
  const key = ctx.ip;
  const blockedMs = blocks.empty() ? 0 : blocks.msLeft(key);
  if (blockedMs > 0) return refuse(ctx, 'interaction', blockedMs, options);
  const counted = spendPoint(options.limiters.interaction, key);
  await next();
  const waitMs = await counted;
  if (waitMs === undefined) return;
  blocks.block(key, waitMs);
  // Nothing of the answer it replaces: not the redirect, nor the interaction's cookies.
  ctx.remove('Location');
  ctx.remove('Set-Cookie');
  refuse(ctx, 'interaction', waitMs, options);
}

async function limitRequests(
  ctx: Context,
  next: () => Promise<unknown>,
  group: Exclude<RateLimitGroup, 'token'>,
  options: RateLimitOptions,
): Promise<unknown> {
  options.alongside?.(ctx);
  const waitMs = await spendPoint(options.limiters[group], ctx.ip);
  if (waitMs === undefined) return next();
  refuse(ctx, group, waitMs, options);
}

/**
 * The token endpoint counts failures only (400 and 401: a wrong secret, a spent or forged code or
 * refresh token), which is what a flood or a guessing client produces: a relying party's successful
 * calls cost no Redis round trip (they are most of the endpoint's traffic, and the counter was a
 * tenth of a refresh's cost). The failure that spends the last point is answered 429 instead, and
 * this instance then refuses the key without asking Redis until the window ends; other instances
 * learn it at the key's next failure there. The counter itself stays shared in Redis.
 */
async function limitTokenFailures(
  ctx: Context,
  next: () => Promise<unknown>,
  options: RateLimitOptions,
  blocks: BlockedKeys,
): Promise<void> {
  // The key (which decodes the Authorization header) is made only when it is needed: while some
  // key is blocked, and after a failure.
  const blockedMs = blocks.empty() ? 0 : blocks.msLeft(tokenKeyOf(ctx, options.clientIds));
  if (blockedMs > 0) {
    allowOriginUnchecked(ctx);
    return refuse(ctx, 'token', blockedMs, options);
  }
  await next();
  if (ctx.status !== 400 && ctx.status !== 401) return;
  const key = tokenKeyOf(ctx, options.clientIds);
  const waitMs = await spendPoint(options.limiters.token, key);
  if (waitMs === undefined) return;
  blocks.block(key, waitMs);
  refuse(ctx, 'token', waitMs, options);
}

/**
 * A refusal made before the engine has seen the request carries the CORS headers the engine gives
 * every token request before it knows the client (oidc-provider's shared/cors.js): without them a
 * browser-based client sees a network error instead of the 429. The answer tells the origin
 * nothing but "too many requests".
 */
function allowOriginUnchecked(ctx: Context): void {
  const origin = ctx.get('Origin');
  if (!origin) return;
  ctx.vary('Origin');
  ctx.set('Access-Control-Allow-Origin', origin);
}

/** Keys refused until a time: a copy of what the shared counter decided, bounded in size. */
class BlockedKeys {
  readonly #until = new Map<string, number>();

  empty(): boolean {
    return this.#until.size === 0;
  }

  msLeft(key: string): number {
    const until = this.#until.get(key);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left <= 0) this.#until.delete(key);
    return left;
  }

  block(key: string, ms: number): void {
    if (this.#until.size >= 10_000) {
      const now = Date.now();
      for (const [each, until] of this.#until) if (until <= now) this.#until.delete(each);
      if (this.#until.size >= 10_000) this.#until.clear();
    }
    this.#until.set(key, Date.now() + ms);
  }
}

/** A token request's key: its address, and the registered client its Basic credentials name. */
function tokenKeyOf(ctx: Context, clientIds: ReadonlySet<string> | undefined): string {
  const clientId = basicClientId(ctx.get('authorization'));
  return clientId !== undefined && clientIds?.has(clientId) ? `${ctx.ip}|${clientId}` : `${ctx.ip}|`;
}

/** The client_id of an HTTP Basic Authorization header (the secret is never read). */
function basicClientId(header: string): string | undefined {
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon)).slice(0, 200);
  } catch {
    return undefined;
  }
}

function refuse(
  ctx: Context,
  group: RateLimitGroup,
  msBeforeNext: number,
  options: { views: Views; metrics?: Metrics | undefined },
): void {
  const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
  options.metrics?.rateLimited(group);
  // The address counted (the proxy's forwarded one with trustProxy): who is being limited, for
  // an operator looking into a flood or a customer's complaint.
  ctx.state.log?.warn({ group, retryAfter, ip: ctx.ip }, 'rate limited');
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfter));
  ctx.set('Cache-Control', 'no-store');
  if (group === 'token') {
    // A 429 in place of a 401 challenges nothing: the client's credentials are not what is refused.
    ctx.remove('WWW-Authenticate');
    // Retry-After is not a header a browser lets a script read unless it is exposed.
    if (ctx.response.get('Access-Control-Allow-Origin'))
      ctx.set('Access-Control-Expose-Headers', 'Retry-After');
    ctx.body = {
      error: 'temporarily_unavailable',
      error_description: `too many requests, retry after ${retryAfter} seconds`,
    };
    return;
  }
  const page = pageContext(ctx);
  ctx.type = 'html';
  ctx.body = options.views.render('error', page, {
    message: page.t('error.rateLimited'),
    requestId: ctx.state.requestId,
  });
}
