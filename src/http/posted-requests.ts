import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware } from 'koa';
import { refuseUnreadableBody } from './errors.ts';
import { routedPath } from './rate-limits.ts';
import type { Scoped } from './scoped.ts';

/**
 * The authorization and end-session endpoints MUST take POST as well as GET (OpenID Connect Core
 * 3.1.2.1, RP-Initiated Logout 1.0 section 2): a relying party may send the request as a form
 * (mod_auth_openidc's `OIDCAuthRequestMethod POST`, a logout button that posts its id_token_hint).
 *
 * oidc-provider takes POST there only with `enableHttpPostMethods`, which demands SameSite=None
 * session cookies, since a form posted from the relying party's site is a cross-site request that
 * would carry no other kind: every site could then send the session cookie along. Instead, a
 * form-encoded POST to either is answered with a 303 to the same endpoint, its parameters as the
 * query. The browser follows with a top-level GET, which carries the SameSite=Lax cookies as any
 * link to the endpoint does, and the request goes on as a GET one would: the login page at the
 * authorization endpoint (login-at-authorization.ts), the logout confirmation at the other. The
 * parameters are those of the body alone (a POSTed request's are); a body is at most 8 KiB, so the
 * address stays within what this server and a proxy in front read.
 */
export function postedRequestsAsQueries(paths: readonly string[]): Scoped {
  const endpoints = new Set(paths);
  const form = bodyParser({ enableTypes: ['form'], formLimit: '8kb', onError: refuseUnreadableBody });
  // POST, and the methods the endpoints take from no one (405) or are asked about (OPTIONS).
  const applies = (ctx: Context, path: string) =>
    ctx.method !== 'GET' && ctx.method !== 'HEAD' && endpoints.has(routedPath(path));
  const middleware: Middleware = (ctx, next) => {
    if (!applies(ctx, ctx.path)) return next();
    if (ctx.method !== 'POST') return next().then(() => allowingPost(ctx));
    // Any other body is none a browser's form sends: 415, as a page (front door's error page).
    if (!ctx.is('application/x-www-form-urlencoded')) {
      ctx.set('Accept-Post', 'application/x-www-form-urlencoded');
      ctx.throw(415, 'a request sent by POST here must be a form (application/x-www-form-urlencoded)');
    }
    return form(ctx, async () => answerWithQuery(ctx));
  };
  return { applies, middleware };
}

/**
 * oidc-provider's router names the methods of its own routes in `Allow` (a 405, or OPTIONS): GET
 * and HEAD here, where this shim takes POST too (RFC 9110 10.2.1: the methods the resource
 * supports).
 */
function allowingPost(ctx: Context): void {
  const allow = ctx.response.get('Allow');
  if (allow && !allow.split(/\s*,\s*/).includes('POST')) ctx.set('Allow', `${allow}, POST`);
}

function answerWithQuery(ctx: Context): void {
  // The body as sent (its parameters in their order, repeated ones kept for the engine to refuse).
  const raw = (ctx.request as { rawBody?: unknown }).rawBody;
  const query = new URLSearchParams(typeof raw === 'string' ? raw : '').toString();
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 303;
  ctx.redirect(query ? `${ctx.path}?${query}` : ctx.path);
}
