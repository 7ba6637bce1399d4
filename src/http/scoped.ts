import type { Context, Middleware } from 'koa';

/**
 * A middleware and the requests it acts on. `applies` is a cheap test of the request (its path
 * read once, passed in: koa's ctx.path parses the URL on every read); the middleware itself is
 * still whole, and passes a request it does not act on through.
 */
export interface Scoped {
  applies(ctx: Context, path: string): boolean;
  middleware: Middleware;
}

/**
 * Several middlewares as one koa layer that runs, for each request, only those that apply to it,
 * in the order given. Every koa layer costs each request a dispatch and a promise even when all it
 * does is call next(); the bridge's routers and guards (rate limits, the size limit, the dependency
 * gate, the login page, domain verification) concern none of the token, userinfo and introspection
 * calls that make most of the traffic. As seven layers they cost a userinfo call about 2,300
 * instructions more than as this one (6 Dec, `npm run bench -- --instructions userinfo`: 411,787
 * against 409,446 on the bridge's main thread; the bare engine's 370,900 and 373,449).
 */
export function scoped(list: readonly Scoped[]): Middleware {
  return (ctx, next) => {
    const path = ctx.path;
    // No array for the requests none applies to (most of them).
    let chain: Middleware[] | undefined;
    for (const item of list) {
      if (!item.applies(ctx, path)) continue;
      chain ??= [];
      chain.push(item.middleware);
    }
    return chain ? run(chain, 0, ctx, next) : next();
  };
}

function run(chain: Middleware[], at: number, ctx: Context, next: () => Promise<unknown>): Promise<unknown> {
  const middleware = chain[at];
  if (!middleware) return next();
  return Promise.resolve(middleware(ctx, () => run(chain, at + 1, ctx, next)));
}
