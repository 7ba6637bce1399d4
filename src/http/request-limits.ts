import type { Middleware } from 'koa';

/**
 * Refuses a declared body larger than maxBytes before anything reads it (413). Chunked bodies
 * (no Content-Length) are left to the parsers, which cap what they read: our form routes at 8 KiB,
 * oidc-provider at its own limit.
 */
export function requestSizeLimit(maxBytes: number): Middleware {
  // Not async: a request within the limit passes straight through, without a promise of its own.
  return (ctx, next) => {
    const header = ctx.req.headers['content-length'];
    if (header === undefined || Number(header) <= maxBytes) return next();
    ctx.status = 413;
    ctx.set('Connection', 'close');
    ctx.body = { error: 'invalid_request', error_description: `request body larger than ${maxBytes} bytes` };
    return Promise.resolve();
  };
}
