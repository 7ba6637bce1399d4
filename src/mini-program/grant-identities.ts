import type { KeyValueStore } from '../storage/ports.ts';
import { forgetSessionKey } from './session-keys.ts';

/** The mini-program identity a token exchange logged in: the one its grant's tokens act as. */
export interface GrantIdentity {
  appid: string;
  openid: string;
}

/**
 * Which (appid, openid) each token-exchange grant was issued for, kept in the KeyValueStore for as
 * long as the grant lives. An account almost always has one identity per mini program; but a
 * recovered account whose old WeChat logged in again holds two of the same mini program (README,
 * Unbinding), and then each device's token must act as its own identity, with its own session
 * key, whichever logged in last, and stop acting once its own is unbound. One key per
 * grant, a single-key command each (Redis Cluster needs no hash tag); refresh keeps the grant, so
 * refreshed tokens find the same entry.
 */
export interface GrantIdentityStore {
  remember(grantId: string, identity: GrantIdentity, ttlSeconds: number): Promise<void>;
  /** undefined when never remembered (a grant older than this store) or expired. */
  find(grantId: string): Promise<GrantIdentity | undefined>;
}

const keyFor = (grantId: string) => `mini-program:grant-identity:${grantId}`;

export function createGrantIdentityStore(kv: KeyValueStore): GrantIdentityStore {
  return {
    async remember(grantId, { appid, openid }, ttlSeconds) {
      await kv.put(keyFor(grantId), { appid, openid }, ttlSeconds);
    },
    async find(grantId) {
      const found = await kv.get<Partial<GrantIdentity>>(keyFor(grantId));
      return typeof found?.appid === 'string' && typeof found.openid === 'string'
        ? { appid: found.appid, openid: found.openid }
        : undefined;
    },
  };
}

/**
 * Forgets the identities these grants remembered, as a deletion revokes them: each names an openid,
 * which would otherwise outlive the account for the grant's lifetime (14 days by default). And the
 * session key of each: the deletion forgets the account's keys by its identities, before its
 * transaction, and a mini-program login racing it can put one after that, for an identity the
 * deletion then removes; its grant, found by the passes after the commit, is what still names it.
 */
export async function forgetGrantIdentities(kv: KeyValueStore, grantIds: readonly string[]): Promise<void> {
  for (const grantId of grantIds) {
    const identity = await createGrantIdentityStore(kv).find(grantId);
    if (identity) await forgetSessionKey(kv, identity.appid, identity.openid);
    await kv.delete(keyFor(grantId));
  }
}
