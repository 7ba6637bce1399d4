import type { Context } from 'koa';

/**
 * A login page left open past the interaction's lifetime (the person came back to scan after ten
 * minutes) would end on "this login has timed out", with no way on but back to the application.
 * As Keycloak's KC_RESTART does, the authorization request that started the login is kept in a
 * signed cookie of this browser, and the timed-out page offers to start it again: a fresh
 * interaction for the same request (the application's state, nonce and PKCE challenge), which the
 * application completes as if the first had worked. Nothing is stored on the server.
 *
 * The cookie goes only to the interaction's routes, lives as long as the browser session, and names
 * the interaction it was set for: a page of another tab's login, timed out, offers nothing rather
 * than restarting someone else's request. A pushed authorization request (request_uri) is used up
 * at its first use and cannot be restarted; nor is a request too long for a cookie.
 */
const COOKIE = 'login_restart';

/** Longer requests are not kept: the cookie, with its signature, stays within browsers' 4 KB. */
const MAX_REQUEST_LENGTH = 2048;

interface Restart {
  /** The interaction the request started. */
  uid: string;
  /** The authorization request, path and query, as the browser sent it. */
  request: string;
}

/** At the authorization request that started interaction `uid`: remembers it for a restart. */
export function rememberRestart(ctx: Context, uid: string, authorizationPath: string): void {
  const request = ctx.originalUrl;
  if (!request.startsWith(`${authorizationPath}?`) || request.length > MAX_REQUEST_LENGTH) return;
  if (ctx.query.request_uri !== undefined) return;
  const value = Buffer.from(JSON.stringify({ uid, request } satisfies Restart)).toString('base64url');
  ctx.cookies.set(COOKIE, value, { signed: true, httpOnly: true, sameSite: 'lax', path: '/interaction/' });
}

/** The authorization request to start again for the timed-out interaction `uid`, if this browser has it. */
export function restartOf(
  ctx: Context,
  uid: string | undefined,
  authorizationPath: string,
): string | undefined {
  const raw = ctx.cookies.get(COOKIE, { signed: true });
  if (raw === undefined || uid === undefined) return undefined;
  try {
    const restart = JSON.parse(Buffer.from(raw, 'base64url').toString()) as Partial<Restart>;
    const { request } = restart;
    if (restart.uid !== uid || typeof request !== 'string') return undefined;
    // Signed by us, and a path of ours all the same: never a way off this site.
    return request.startsWith(`${authorizationPath}?`) ? request : undefined;
  } catch {
    return undefined;
  }
}
