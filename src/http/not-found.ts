import type { Context } from 'koa';
import type { RequestStage } from './front-door.ts';
import { pageContext, type Views } from './views.ts';

/**
 * A readable page for a person who reaches an address nothing here answers (a mistyped or stale
 * link): koa's own answer is a bare "Not Found" in English. Only a browser's request gets it (one
 * that prefers HTML to JSON); an API client keeps the plain answer, and any 404 a route gave a body
 * of its own (an account page's notice, an OAuth error) is left as it is.
 */
export function notFoundPage(views: Views): RequestStage {
  return {
    finish(ctx: Context) {
      if (ctx.status !== 404 || ctx.body != null) return;
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return;
      if (ctx.accepts('json', 'html') !== 'html') return;
      const page = pageContext(ctx);
      ctx.status = 404;
      ctx.type = 'html';
      // A mistyped or stale address is no fault to report: no reference.
      ctx.body = views.render('error', page, {
        heading: page.t('error.notFoundTitle'),
        message: page.t('error.notFound'),
      });
    },
  };
}
