import type { Context } from 'koa';
import type { Scoped } from './scoped.ts';

/**
 * The largest body oidc-provider reads on its own endpoints (/token, introspection, revocation,
 * userinfo, /auth, logout): its parser (lib/shared/selective_body.js) stops at 56 KiB and answers
 * a larger body 400 "failed to parse the request body". `limits.maxBodyBytes` is at most this, so
 * that a body the engine would not read is refused here, 413, before anything reads it.
 */
export const ENGINE_MAX_BODY_BYTES = 56 * 1024;

/**
 * Refuses a declared body larger than maxBytes (never more than the engine's limit) before
 * anything reads it: 413, an OAuth error JSON for clients, and for a person's browser on a page
 * route the readable error page (thrown to the front door's error page, src/http/errors.ts).
 * Chunked bodies (no Content-Length) are left to the parsers, which cap what they read: our form
 * routes at 8 KiB, oidc-provider at its own limit.
 */
export function requestSizeLimit(maxBytes: number): Scoped {
  const limit = Math.min(maxBytes, ENGINE_MAX_BODY_BYTES);
  const tooLarge = (ctx: Context) => {
    const header = ctx.req.headers['content-length'];
    return header !== undefined && Number(header) > limit;
  };
  return {
    applies: tooLarge,
    middleware: (ctx, next) => {
      if (!tooLarge(ctx)) return next();
      ctx.set('Connection', 'close');
      if (answersWithPages(ctx.path)) ctx.throw(413, `request body larger than ${limit} bytes`);
      ctx.status = 413;
      ctx.body = {
        error: 'invalid_request',
        error_description: `request body larger than ${limit} bytes`,
      };
      return Promise.resolve();
    },
  };
}

/**
 * The routes a person's browser posts to, which answer with pages: the authorization request
 * (POST /auth) and its resume, our interaction pages, the account page, RP-initiated logout
 * (oidc-provider's default paths, which the provider keeps) and the demo. Every other route
 * answers clients, in JSON.
 */
const PAGE_ROUTES = [
  /^\/auth(\/|$)/,
  /^\/interaction\//,
  /^\/account(\/|$)/,
  /^\/session\/end(\/|$)/,
  /^\/demo(\/|$)/,
];

export function answersWithPages(path: string): boolean {
  return PAGE_ROUTES.some((route) => route.test(path));
}
