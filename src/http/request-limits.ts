import type { Context } from 'koa';
import type { Scoped } from './scoped.ts';

/**
 * Refuses a declared body larger than maxBytes before anything reads it (413). Chunked bodies
 * (no Content-Length) are left to the parsers, which cap what they read: our form routes at 8 KiB,
 * oidc-provider at its own limit.
 */
export function requestSizeLimit(maxBytes: number): Scoped {
  const tooLarge = (ctx: Context) => {
    const header = ctx.req.headers['content-length'];
    return header !== undefined && Number(header) > maxBytes;
  };
  return {
    applies: tooLarge,
    middleware: (ctx, next) => {
      if (!tooLarge(ctx)) return next();
      ctx.status = 413;
      ctx.set('Connection', 'close');
      ctx.body = {
        error: 'invalid_request',
        error_description: `request body larger than ${maxBytes} bytes`,
      };
      return Promise.resolve();
    },
  };
}
