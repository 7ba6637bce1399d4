import type { AvatarInfo } from './avatars/store.ts';
import type { Account } from './repository.ts';

/**
 * A short-lived copy of accounts as oidc-provider's findAccount reads them. One login asks for its
 * account three or four times within a second (the authorization resume, the code exchange, the ID
 * token's claims, userinfo), and a relying party polling userinfo asks again and again: without a
 * copy each is a database round trip, the largest part of the bridge's cost per token call.
 *
 * It is not flow state: losing it costs a query, nothing else. Writes made by this process reach
 * every cache in it at once (accountWritten / accountForgotten, called by the repository after
 * commit). Another instance's write is seen here within the time to live at the latest; that is
 * how stale a profile claim may be. It keeps no token alive: a deleted account's grants,
 * sessions and tokens are revoked in the shared store as soon as the deletion has committed
 * (deletion.ts), and oidc-provider checks that store before it asks for the account.
 */
export interface AccountCache {
  get(subject: string): CachedAccount | undefined;
  remember(account: Account, avatar?: AvatarInfo | null): CachedAccount;
  /** Stops hearing of this process's writes (a stopped server). */
  close(): void;
}

/** An account as read, and what is derived from it on demand. */
export interface CachedAccount {
  account: Account;
  /** When this copy stops being used (epoch milliseconds). */
  readonly expiresAt: number;
  /**
   * The `picture` claim for the avatar URL it was made from, used until `until` (the expiry of the
   * entry it was made for): a newer row of the account (a login writes one each time) keeps it
   * while the avatar URL is the same, and a failed download is retried by a later login.
   */
  picture?: { source: string | null; url: Promise<string | undefined>; until: number };
  /**
   * The stored avatar's metadata as read with the account (null: none stored), when it was: the
   * picture claim is then made without reading it again. Undefined: not read.
   */
  avatar?: AvatarInfo | null;
}

export interface AccountCacheOptions {
  /** How long a copy is used, milliseconds; 0 turns the cache off. */
  ttlMs: number;
  /** The oldest entries go first past this many. */
  maxEntries: number;
  now?: () => number;
}

export const ACCOUNT_CACHE_DEFAULTS: AccountCacheOptions = { ttlMs: 5_000, maxEntries: 10_000 };

// Every cache of this process, so that a write anywhere in it reaches all of them.
const caches = new Set<LocalAccountCache>();

/**
 * After a commit that changed an account: every cache of this process takes the new row (a login
 * writes its account just before oidc-provider asks for it).
 */
export function accountWritten(account: Account, avatar?: AvatarInfo | null): void {
  for (const cache of caches) cache.replace(account, avatar);
}

/** After a commit that removed or changed an account by id (deletion, unbinding, recovery). */
export function accountForgotten(accountId: string): void {
  for (const cache of caches) cache.forget(accountId);
}

export function createAccountCache(options: AccountCacheOptions = ACCOUNT_CACHE_DEFAULTS): AccountCache {
  const cache = new LocalAccountCache(options);
  if (options.ttlMs > 0) caches.add(cache);
  return cache;
}

class LocalAccountCache implements AccountCache {
  readonly #options: AccountCacheOptions;
  readonly #now: () => number;
  /** By subject, oldest first (a Map keeps insertion order). */
  readonly #entries = new Map<string, CachedAccount>();
  readonly #subjectOf = new Map<string, string>();

  constructor(options: AccountCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get(subject: string): CachedAccount | undefined {
    const entry = this.#entries.get(subject);
    if (!entry) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    this.#drop(entry.account);
    return undefined;
  }

  remember(account: Account, avatar?: AvatarInfo | null): CachedAccount {
    const entry: CachedAccount = { account, expiresAt: this.#now() + this.#options.ttlMs };
    if (avatar !== undefined) entry.avatar = avatar;
    if (this.#options.ttlMs <= 0) return entry;
    const picture = this.#entries.get(account.subject)?.picture;
    if (picture?.source === account.avatar_url && picture.until > this.#now()) entry.picture = picture;
    this.#drop(account);
    this.#entries.set(account.subject, entry);
    this.#subjectOf.set(account.id, account.subject);
    for (const [, oldest] of this.#entries) {
      if (this.#entries.size <= this.#options.maxEntries) break;
      this.#drop(oldest.account);
    }
    return entry;
  }

  /**
   * A row just written. Two writes of one account may report their rows out of order: an older
   * row (by updated_at) never replaces a newer one.
   */
  replace(account: Account, avatar?: AvatarInfo | null): void {
    const held = this.#entries.get(account.subject)?.account;
    if (held && held.updated_at.getTime() > account.updated_at.getTime()) return;
    this.remember(account, avatar);
  }

  forget(accountId: string): void {
    const subject = this.#subjectOf.get(accountId);
    const entry = subject === undefined ? undefined : this.#entries.get(subject);
    if (entry) this.#drop(entry.account);
  }

  close(): void {
    caches.delete(this);
    this.#entries.clear();
    this.#subjectOf.clear();
  }

  #drop(account: Account): void {
    this.#entries.delete(account.subject);
    this.#subjectOf.delete(account.id);
  }
}
