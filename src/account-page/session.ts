import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { derivedKeyBytes, type Secret } from '../config/secret.ts';

export interface PageSession {
  /** The account's subject (oidc-provider's accountId). */
  subject: string;
  /** The session's id, which CSRF tokens are bound to. */
  sessionId: string;
  /** When the person last logged in on this session (oidc-provider's loginTs, epoch seconds). */
  loginTs: number | undefined;
}

/**
 * The person logged in on this browser, from oidc-provider's own session cookie: the account page
 * is on the provider's origin, so it shares the single sign-on session rather than keeping a second
 * one (and "sign out everywhere" ends both at once).
 */
export async function currentSession(ctx: Context, provider: Provider): Promise<PageSession | undefined> {
  const session = await provider.Session.get(ctx);
  if (!session.accountId) return undefined;
  return { subject: session.accountId, sessionId: session.jti, loginTs: session.authTime() };
}

/**
 * The keys of the page's form tokens, newest first: one for each cookie key, derived (HKDF) so that
 * no key signs both cookies and forms, and all of them kept, so that a page opened before the
 * cookie keys rotated still posts.
 */
export function formKeys(cookieKeys: readonly Secret[]): KeyObject[] {
  return cookieKeys.map((secret) => createSecretKey(derivedKeyBytes(secret, FORM_KEY_INFO)));
}

const FORM_KEY_INFO = 'wechat-oidc-bridge account-page form token';

/** A per-session form token: forms post only from our own page (SameSite=Lax is not enough for POST on old browsers). */
export function csrfToken(keys: readonly KeyObject[], session: PageSession): string {
  return tokenWith(keys[0] as KeyObject, session);
}

export function csrfValid(keys: readonly KeyObject[], session: PageSession, token: unknown): boolean {
  if (typeof token !== 'string') return false;
  const given = Buffer.from(token);
  return keys.some((key) => {
    const expected = Buffer.from(tokenWith(key, session));
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function tokenWith(key: KeyObject, session: PageSession): string {
  return createHmac('sha256', key).update(`account-page\n${session.sessionId}`).digest('base64url');
}
