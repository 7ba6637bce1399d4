import type { Context, Next } from 'koa';
import type { Scoped } from './scoped.ts';

const FILE = /^\/MP_verify_([^/]+)\.txt$/;

/**
 * The Official Account console's domain verification (网页授权域名, wechat-api.md §3): it asks for
 * /MP_verify_<token>.txt at the site root holding exactly <token>, and checks it once, when the
 * domain is set. Configured tokens are answered as text/plain with the token and nothing else (no
 * newline); any other MP_verify_*.txt is a 404.
 */
export function domainVerification(tokens: readonly string[]): Scoped {
  const known = new Set(tokens);
  return { applies: (_, path) => path.startsWith('/MP_verify_'), middleware };

  function middleware(ctx: Context, next: Next): Promise<unknown> {
    const token = FILE.exec(ctx.path)?.[1];
    if (token === undefined || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    ctx.set('Cache-Control', 'no-cache');
    if (!known.has(token)) {
      ctx.status = 404;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'Not Found';
      return Promise.resolve();
    }
    ctx.status = 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = token;
    return Promise.resolve();
  }
}
