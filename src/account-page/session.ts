import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';

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

/** A per-session form token: forms post only from our own page (SameSite=Lax is not enough for POST on old browsers). */
export function csrfToken(key: string, session: PageSession): string {
  return createHmac('sha256', key).update(`account-page\n${session.sessionId}`).digest('base64url');
}

export function csrfValid(key: string, session: PageSession, token: unknown): boolean {
  if (typeof token !== 'string') return false;
  const expected = Buffer.from(csrfToken(key, session));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
