import { type RequestStage, setAnswerHeader } from './front-door.ts';

const HTML = /^text\/html/i;

/**
 * nosniff on every response; no referrer on pages and redirects; a Content-Security-Policy and
 * frame denial on HTML pages; with an https issuer, HSTS on pages and redirects (where browsers
 * arrive: a browser told once goes on to use https for the issuer's host, even from an http link).
 * The login page embeds WeChat's QR page in an iframe, so WeChat's origin (or the sandbox's) is the
 * one frame source. No form-action: after consent the browser is redirected to the client, which
 * form-action would block.
 */
export function securityHeaders(options: { frameOrigins: string[]; https: boolean }): RequestStage {
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
    // oidc-provider's self-submitting pages (a form_post authorization response; the logout form,
    // also shown when no session is left) run one inline script, whose hash it adds to the
    // Content-Security-Policy already on the response. Set first on its routes that may render one,
    // so that script runs and no other inline script does.
    start(ctx) {
      const url = ctx.req.url ?? '';
      if (url.startsWith('/auth') || url.startsWith('/session/end'))
        setAnswerHeader(ctx, 'Content-Security-Policy', csp);
    },
    finish(ctx) {
      setAnswerHeader(ctx, 'X-Content-Type-Options', 'nosniff');
      // The header as set (koa writes 'text/html; charset=utf-8' for ctx.type = 'html'), read from
      // the response itself: koa's response.get copies every header first.
      const page = HTML.test(String(ctx.res.getHeader('content-type')));
      // A referrer policy acts on a page's own requests and on where a redirect leads (the
      // authorization response's URL is not to be the next site's Referer); on a JSON or other
      // answer it does nothing, so they go without it.
      if (page || (ctx.status >= 300 && ctx.status < 400)) {
        setAnswerHeader(ctx, 'Referrer-Policy', 'no-referrer');
        // A year, this host only: the issuer's host serves nothing but this provider.
        if (options.https) setAnswerHeader(ctx, 'Strict-Transport-Security', 'max-age=31536000');
      }
      if (page) {
        if (!ctx.res.hasHeader('content-security-policy'))
          setAnswerHeader(ctx, 'Content-Security-Policy', csp);
        setAnswerHeader(ctx, 'X-Frame-Options', 'DENY');
      }
    },
  };
}
