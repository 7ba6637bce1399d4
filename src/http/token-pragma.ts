import { routedPath } from './rate-limits.ts';
import type { Scoped } from './scoped.ts';

/**
 * RFC 6749 section 5.1: a token response carries `Cache-Control: no-store` "as well as" `Pragma:
 * no-cache`, the one an HTTP/1.0 cache reads. oidc-provider sends the first only (OAuth 2.1 drops
 * the second); an OAuth 2.0 conformance check looks for both (an outside review). Set on the token
 * endpoint's answers that carry no-store, its errors too, which the RFC's 5.2 answers the same way.
 */
export function pragmaOnTokenResponses(tokenPath: string): Scoped {
  return {
    // As the router matches it: /Token and /token/ reach the same endpoint.
    applies: (ctx, path) => ctx.method === 'POST' && routedPath(path) === tokenPath,
    middleware: async (ctx, next) => {
      await next();
      if (ctx.response.get('Cache-Control') === 'no-store') ctx.set('Pragma', 'no-cache');
    },
  };
}
