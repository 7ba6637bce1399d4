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
 * the interaction it was set for and when that one times out: a page of another tab's login offers
 * nothing rather than restarting someone else's request, and neither does a login that finished
 * (the cookie is cleared when it does) or a page that is gone for another reason before its time.
 * A pushed authorization request (request_uri) is used up at its first use and cannot be
 * restarted; nor is a request too long for a cookie.
 */
const COOKIE = 'login_restart';

/**
 * Longer requests are not kept. The cookie (base64, a third larger) rides on the login page's answer
 * beside oidc-provider's interaction cookies and the CSP: with 1,000 characters the answer's headers
 * stay near 3 KB, inside the 4 KB a proxy in front buffers by default (nginx's proxy_buffer_size);
 * at 2,000 they were past it, and such a proxy answers 502.
 */
const MAX_REQUEST_LENGTH = 1000;

const COOKIE_OPTIONS = { signed: true, httpOnly: true, sameSite: 'lax', path: '/interaction/' } as const;

interface Restart {
  /** The interaction the request started. */
  uid: string;
  /** The authorization request, path and query, as the browser sent it. */
  request: string;
  /** When the interaction times out (epoch seconds): before then its page is not a timed-out one. */
  exp: number;
}

/** At the authorization request that started `interaction`: remembers it for a restart. */
export function rememberRestart(
  ctx: Context,
  interaction: { uid: string; exp: number },
  authorizationPath: string,
): void {
  const request = ctx.originalUrl;
  if (!request.startsWith(`${authorizationPath}?`) || request.length > MAX_REQUEST_LENGTH) return;
  if (ctx.query.request_uri !== undefined) return;
  const restart: Restart = { uid: interaction.uid, request, exp: interaction.exp };
  ctx.cookies.set(COOKIE, Buffer.from(JSON.stringify(restart)).toString('base64url'), COOKIE_OPTIONS);
}

/** The login finished (logged in, or given up): nothing to start again. */
export function forgetRestart(ctx: Context): void {
  if (ctx.cookies.get(COOKIE) !== undefined) ctx.cookies.set(COOKIE, null, COOKIE_OPTIONS);
}

/**
 * The authorization request to start again for interaction `uid`, timed out by `nowSeconds`, if
 * this browser has it.
 */
export function restartOf(
  ctx: Context,
  uid: string | undefined,
  nowSeconds: number,
  authorizationPath: string,
): string | undefined {
  const raw = ctx.cookies.get(COOKIE, { signed: true });
  if (raw === undefined || uid === undefined) return undefined;
  try {
    const restart = JSON.parse(Buffer.from(raw, 'base64url').toString()) as Partial<Restart>;
    const { request, exp } = restart;
    if (restart.uid !== uid || typeof request !== 'string' || typeof exp !== 'number') return undefined;
    if (nowSeconds < exp) return undefined;
    // Signed by us, and a path of ours all the same: never a way off this site.
    return request.startsWith(`${authorizationPath}?`) ? request : undefined;
  } catch {
    return undefined;
  }
}
