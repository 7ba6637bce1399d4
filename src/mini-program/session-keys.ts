import { Secret } from '../config/secret.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { Sealer } from './sealer.ts';

/**
 * The session key WeChat gives for each (appid, openid) at every wx.login code exchange. It stays
 * on the server (the mini program never receives it) in the KeyValueStore, sealed, with a TTL:
 * never in the accounts database, never in a log line.
 */
export interface SessionKeyStore {
  /** Replaces the person's key: WeChat keeps one valid key per person and app. */
  put(appid: string, openid: string, sessionKey: Secret): Promise<void>;
  /** undefined when it expired here, was forgotten, or cannot be unsealed. */
  get(appid: string, openid: string): Promise<HeldSessionKey | undefined>;
  /**
   * Forgets a key WeChat reported stale: that one only. A wx.login exchanged while WeChat was
   * being asked has put the person's new key in its place, and forgetting that one sent the mini
   * program, whose wx.checkSession says all is well, round to session_key_missing (a mini-program
   * team's review: a checksession slower than 300 ms was enough).
   */
  forgetStale(appid: string, openid: string, stale: HeldSessionKey): Promise<void>;
}

/** A session key as read, with its stored (sealed) form: what forgetStale compares. */
export interface HeldSessionKey {
  key: Secret;
  readonly sealed: string;
}

/** The key-value store's key of a person's session key in a mini program. */
export const sessionKeyName = (appid: string, openid: string) =>
  `mini-program:session-key:${appid}:${openid}`;

/**
 * Forgets a session key without unsealing anything: for a deletion or an unbinding, which end the
 * identity, and need no sealer to do it.
 */
export async function forgetSessionKey(kv: KeyValueStore, appid: string, openid: string): Promise<void> {
  await kv.delete(sessionKeyName(appid, openid));
}

export function createSessionKeyStore(deps: {
  kv: KeyValueStore;
  sealer: Sealer;
  ttlSeconds: number;
}): SessionKeyStore {
  const { kv, sealer, ttlSeconds } = deps;
  return {
    async put(appid, openid, sessionKey) {
      const key = sessionKeyName(appid, openid);
      await kv.put(key, sealer.seal(sessionKey.reveal(), key), ttlSeconds);
    },
    async get(appid, openid) {
      const key = sessionKeyName(appid, openid);
      const sealed = await kv.get<string>(key);
      if (typeof sealed !== 'string') return undefined;
      const plain = sealer.open(sealed, key);
      return plain === undefined ? undefined : { key: new Secret(plain), sealed };
    },
    async forgetStale(appid, openid, stale) {
      // Each seal has an IV of its own: the same stored text is the same put, not a newer one.
      await kv.deleteIfEquals(sessionKeyName(appid, openid), stale.sealed);
    },
  };
}
