import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Secret } from '../../config/secret.ts';
import type { KeyValueStore } from '../../storage/ports.ts';
import { longestCallMs } from './api-call.ts';
import type { AppAccessToken } from './mini-program-api.ts';
import { UpstreamError, type WeChatApp } from './types.ts';

/** Turns the token into what is stored and back (the bridge encrypts it at rest). */
export interface StoredValueCodec {
  seal(plain: string, context: string): string;
  /** undefined: unreadable (another key, tampered): treated as a miss. */
  open(sealed: string, context: string): string | undefined;
}

export interface AppTokenCacheOptions {
  /** Shared by every instance: one token per app for the whole deployment. */
  kv: KeyValueStore;
  /** cgi-bin/stable_token for the app. */
  fetch(app: WeChatApp, forceRefresh: boolean): Promise<AppAccessToken>;
  codec: StoredValueCodec;
  /** Milliseconds clock (tests inject one). */
  now?: () => number;
  /**
   * Refresh this many seconds before WeChat's expiry. Must stay under 300: stable_token pre-rotates
   * 5 minutes before expiry, so only then does a call return a new token rather than the old one
   * with a few minutes left (which would send every request to WeChat until it rotates).
   */
  refreshMarginSeconds?: number;
  /**
   * The refresh lock's lifetime: longer than one refresh at its slowest (refreshLockSeconds), short
   * enough to outlive a crash briefly. Default 15 s.
   */
  lockSeconds?: number;
  /** How long a caller without a usable token waits for another instance's refresh before fetching itself. */
  peerWaitMs?: number;
  /** Pause between looks at the store while waiting (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
}

export interface AppTokenCache {
  /** The app's current access token: from the shared cache, fetched only near expiry. */
  get(app: WeChatApp): Promise<Secret>;
  /**
   * Runs `call` with the token. When WeChat says the token is invalid or expired (40001, 40014,
   * 42001: another party force-refreshed it, or clocks disagree), gets a new token once and
   * retries once.
   */
  withToken<T>(app: WeChatApp, call: (token: Secret) => Promise<T>): Promise<T>;
}

interface StoredToken {
  token: string;
  /** Epoch ms: WeChat's expiry. */
  expiresAt: number;
  /** Epoch ms: from here on the next caller refreshes. */
  refreshAt: number;
}

interface UsableToken {
  token: Secret;
  entry: StoredToken;
}

const TOKEN_ERRCODES = new Set([40001, 40014, 42001]);

/**
 * A refresh lock that outlives the refresh holding it, for a WeChat timeout of `timeoutMs`: a
 * refresh makes up to two stable_token calls (normal mode, then force_refresh when WeChat hands
 * back the bad token), each at its longest, and a second between the store's reads and writes.
 * Were the lock to lapse first, another instance could force a refresh within WeChat's 30 s
 * between force_refresh calls (wechat-api.md §11).
 */
export function refreshLockSeconds(timeoutMs: number): number {
  return Math.ceil((2 * longestCallMs(timeoutMs) + 1000) / 1000);
}
const POLL_MS = 50;

/**
 * WeChat's app access token (wechat-api.md §11), cached in the KeyValueStore so that every instance
 * uses the same one and WeChat sees one refresh per app a few minutes before expiry, never a fetch
 * per request. The refresh is single flight: within an instance by sharing one promise, across
 * instances by a short lock taken with putIfAbsent; the others keep using the still-valid token, or
 * wait briefly for the winner's result.
 */
export function createAppTokenCache(options: AppTokenCacheOptions): AppTokenCache {
  const { kv, codec } = options;
  const now = options.now ?? Date.now;
  const margin = (options.refreshMarginSeconds ?? 180) * 1000;
  const lockSeconds = options.lockSeconds ?? 15;
  const peerWaitMs = options.peerWaitMs ?? 3000;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const inFlight = new Map<string, Promise<Secret>>();

  const tokenKey = (app: WeChatApp) => `wechat:app-token:${app.appid}`;
  const lockKey = (app: WeChatApp) => `wechat:app-token-lock:${app.appid}`;

  const read = async (app: WeChatApp): Promise<UsableToken | undefined> => {
    const entry = await kv.get<StoredToken>(tokenKey(app));
    if (!entry || typeof entry.token !== 'string' || now() >= entry.expiresAt) return undefined;
    const plain = codec.open(entry.token, tokenKey(app));
    return plain === undefined ? undefined : { token: new Secret(plain), entry };
  };

  const fresh = (usable: UsableToken | undefined, bad: Secret | undefined): usable is UsableToken =>
    usable !== undefined && now() < usable.entry.refreshAt && !same(usable.token, bad);

  const store = async (app: WeChatApp, fetched: AppAccessToken): Promise<Secret> => {
    const at = now();
    const lifetime = Math.max(1, fetched.expiresIn) * 1000;
    // A token that arrives with less than the margin left is still used, but not refetched for a
    // while: asking again at once would only return the same token.
    const refreshIn = Math.max(lifetime - margin, Math.min(30_000, lifetime / 2));
    const entry: StoredToken = {
      token: codec.seal(fetched.accessToken.reveal(), tokenKey(app)),
      expiresAt: at + lifetime,
      refreshAt: at + refreshIn,
    };
    await kv.put(tokenKey(app), entry, Math.ceil(lifetime / 1000));
    return fetched.accessToken;
  };

  /** A token other than `bad`: normal mode first; force_refresh only when WeChat hands back the bad one. */
  const fetchNew = async (app: WeChatApp, bad: Secret | undefined): Promise<Secret> => {
    let fetched = await options.fetch(app, false);
    if (bad !== undefined && same(fetched.accessToken, bad)) fetched = await options.fetch(app, true);
    return store(app, fetched);
  };

  const refresh = async (app: WeChatApp, stale: UsableToken | undefined, bad: Secret | undefined) => {
    if (await kv.putIfAbsent(lockKey(app), randomUUID(), lockSeconds)) {
      try {
        // Someone may have finished a refresh between our read and our lock.
        const current = await read(app);
        if (fresh(current, bad)) return current.token;
        return await fetchNew(app, bad);
      } finally {
        // The store has no compare-and-delete; the lock outlives one stable_token call (with its
        // retry), so this is our own lock unless WeChat took longer than lockSeconds.
        await kv.delete(lockKey(app));
      }
    }
    // Another instance is refreshing. The token we have is still valid (we are only inside the margin).
    if (stale !== undefined && !same(stale.token, bad)) return stale.token;
    for (let waited = 0; waited < peerWaitMs; waited += POLL_MS) {
      await sleep(POLL_MS);
      const current = await read(app);
      if (fresh(current, bad)) return current.token;
    }
    // The other refresher is slow or gone; stable_token is safe to call concurrently.
    return fetchNew(app, bad);
  };

  /** Concurrent callers of one instance share one refresh: per app, and per bad token for retries. */
  const singleFlight = (key: string, run: () => Promise<Secret>): Promise<Secret> => {
    const running = inFlight.get(key);
    if (running) return running;
    const started = run().finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };

  const get = async (app: WeChatApp): Promise<Secret> => {
    const current = await read(app);
    if (fresh(current, undefined)) return current.token;
    return singleFlight(app.appid, () => refresh(app, current, undefined));
  };

  return {
    get,
    async withToken(app, call) {
      const token = await get(app);
      try {
        return await call(token);
      } catch (error) {
        if (!isTokenError(error)) throw error;
      }
      const renewed = await singleFlight(`${app.appid}:${fingerprint(token)}`, async () =>
        refresh(app, await read(app), token),
      );
      return call(renewed);
    },
  };
}

function isTokenError(error: unknown): boolean {
  return error instanceof UpstreamError && error.errcode !== undefined && TOKEN_ERRCODES.has(error.errcode);
}

function fingerprint(token: Secret): string {
  return createHash('sha256').update(token.reveal()).digest('base64url');
}

function same(a: Secret, b: Secret | undefined): boolean {
  return b !== undefined && a.reveal() === b.reveal();
}
