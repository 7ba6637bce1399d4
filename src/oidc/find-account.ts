import type { Kysely } from 'kysely';
import type { FindAccount, Account as OidcAccount } from 'oidc-provider';
import type { AccountCache, CachedAccount } from '../accounts/account-cache.ts';
import type { AvatarMirror } from '../accounts/avatars/mirror.ts';
import {
  type Account,
  findAccountBySubject,
  type Identity,
  isPlaceholderAvatar,
  isPlaceholderNickname,
  listIdentities,
  published,
} from '../accounts/repository.ts';
import type { Database } from '../storage/schema.ts';

/** The standard claims each scope releases (OIDC Core 5.4), limited to what WeChat gives us. */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'nickname', 'picture', 'updated_at'],
  /** Ours: for relying parties that message people through WeChat without asking WeChat themselves. */
  wechat: ['wechat_unionid', 'wechat_openids'],
  /** A number WeChat vouched for (a mini program's getPhoneNumber button), so always verified when present. */
  phone: ['phone_number', 'phone_number_verified'],
} as const;

/** The scopes the provider knows: one per claims group, plus offline_access. */
export const SUPPORTED_SCOPES: ReadonlySet<string> = new Set([
  'openid',
  'offline_access',
  'profile',
  'wechat',
  'phone',
]);

/**
 * oidc-provider's account hook. The accountId oidc-provider keeps in sessions and tokens is the
 * account's subject (the unionid it was created with), so `sub` is the unionid and never changes.
 * A deleted account is not found, which makes its tokens stop working.
 */
export function createFindAccount(
  db: Kysely<Database>,
  options: { avatars?: AvatarMirror; cache?: AccountCache } = {},
): FindAccount {
  const { avatars, cache } = options;
  const load = cachedAccounts(db, cache);
  return async (_ctx, sub, token): Promise<OidcAccount | undefined> => {
    const entry = await load(sub);
    if (!entry) return undefined;
    const { account } = entry;
    if (issuedBeforeAccount(token, account)) return undefined;
    return {
      accountId: account.subject,
      async claims(_use, scope) {
        const name = published(account.nickname, isPlaceholderNickname);
        return {
          sub: account.subject,
          name,
          nickname: name,
          // The provider's own copy (downloaded here when WeChat's URL changed): WeChat's URLs die.
          picture:
            avatars && hasScope(scope, 'profile')
              ? await pictureOf(entry, avatars)
              : published(account.avatar_url, isPlaceholderAvatar),
          // When what these claims show last changed, not the last login (OIDC Core 5.1).
          updated_at: Math.floor(new Date(account.profile_updated_at).getTime() / 1000),
          ...(account.phone_number
            ? { phone_number: account.phone_number, phone_number_verified: account.phone_number_verified }
            : {}),
          // Read only when asked for: most logins do not need the identities.
          ...(hasScope(scope, 'wechat') ? await wechatClaims(db, account) : {}),
        };
      },
    };
  };
}

/**
 * How far apart the clocks of the instances may be: a token issued by one instance moments after
 * another created the account must not look older than it.
 */
const CLOCK_SKEW_SECONDS = 60;

/**
 * A token older than its account was issued to an earlier account of the same person: the subject
 * is the unionid, so a person who deleted their account and signs up again gets the same one.
 * Deletion revokes every grant the index knows; a grant it could not know of (its index row lost
 * with a crashed instance) must not come back to life with the new account. A rotated refresh
 * token is as old as the first of its chain (iiat).
 */
export function issuedBeforeAccount(
  token: { iat?: number; iiat?: number } | undefined,
  account: Account,
): boolean {
  const issued = token?.iiat ?? token?.iat;
  if (typeof issued !== 'number') return false;
  const created = Math.floor(new Date(account.created_at).getTime() / 1000);
  return issued < created - CLOCK_SKEW_SECONDS;
}

/** Accounts by subject, through the cache when there is one (what findAccount reads). */
export function cachedAccounts(
  db: Kysely<Database>,
  cache: AccountCache | undefined,
): (subject: string) => Promise<CachedAccount | undefined> {
  return async (subject) => {
    const cached = cache?.get(subject);
    if (cached) return cached;
    const account = await findAccountBySubject(db, subject);
    if (!account) return undefined;
    return cache ? cache.remember(account) : { account, expiresAt: 0 };
  };
}

/**
 * Once per cached avatar URL: the lookup reads the avatar table, unless the login read it with the
 * account (and may download a new image).
 */
function pictureOf(entry: CachedAccount, avatars: AvatarMirror): Promise<string | undefined> {
  const source = entry.account.avatar_url;
  if (entry.picture?.source !== source)
    entry.picture = { source, url: avatars.picture(entry.account, entry.avatar), until: entry.expiresAt };
  return entry.picture.url;
}

/**
 * Whether the space-separated `scope` holds `name`, found in place: splitting the string made an
 * array and a string per scope on every claims call (about 1,800 instructions of a userinfo call).
 */
export function hasScope(scope: string, name: string): boolean {
  for (let at = scope.indexOf(name); at !== -1; at = scope.indexOf(name, at + 1)) {
    const end = at + name.length;
    if ((at === 0 || scope[at - 1] === ' ') && (end === scope.length || scope[end] === ' ')) return true;
  }
  return false;
}

/**
 * wechat_unionid: the person's unionid, that of the WeChat they used last (after a phone recovery
 * an account's identities carry the new WeChat's, while its subject stays the first one's);
 * wechat_openids: { appid: openid } for every app they have logged in through (an OpenID is what
 * WeChat's messaging APIs address a person by, per app). A recovered account whose old WeChat
 * logged in again has two identities in an app: its openid is the one used last there, so that the
 * two claims name the same WeChat when it was the last used in that app too.
 */
async function wechatClaims(
  db: Kysely<Database>,
  account: Account,
): Promise<{ wechat_unionid: string; wechat_openids: Record<string, string> }> {
  const identities = await listIdentities(db, account.id);
  const lastByApp = new Map<string, Identity>();
  for (const identity of identities) {
    const held = lastByApp.get(identity.appid);
    if (!held || usedLater(identity, held)) lastByApp.set(identity.appid, identity);
  }
  const openids: Record<string, string> = {};
  for (const [appid, identity] of lastByApp) openids[appid] = identity.openid;
  return {
    wechat_unionid: lastUsedUnionid(identities) ?? account.subject,
    wechat_openids: openids,
  };
}

function lastUsedUnionid(identities: readonly Identity[]): string | undefined {
  let last: Identity | undefined;
  for (const identity of identities) {
    if (!identity.unionid) continue;
    if (!last || usedLater(identity, last)) last = identity;
  }
  return last?.unionid ?? undefined;
}

function usedLater(identity: Identity, than: Identity): boolean {
  return new Date(identity.last_login_at) > new Date(than.last_login_at);
}
