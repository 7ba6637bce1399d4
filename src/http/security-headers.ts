import type { RequestStage } from './front-door.ts';

/**
 * Security headers for every response, and a Content-Security-Policy for HTML pages. The login page
 * embeds WeChat's QR page in an iframe, so WeChat's origin (or the sandbox's) is the one frame source.
 * No form-action: after consent the browser is redirected to the client, which form-action would block.
 */
export function securityHeaders(options: { frameOrigins: string[] }): RequestStage {
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `frame-src ${options.frameOrigins.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
  return {
    finish(ctx) {
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Referrer-Policy', 'no-referrer');
      // The header as set (koa writes 'text/html; charset=utf-8' for ctx.type = 'html'), read from
      // the response itself: koa's response.get copies every header first.
      if (String(ctx.res.getHeader('content-type')).toLowerCase().startsWith('text/html')) {
        ctx.set('Content-Security-Policy', csp);
        ctx.set('X-Frame-Options', 'DENY');
      }
    },
  };
}
