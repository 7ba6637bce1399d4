import type { Middleware } from 'koa';
import { pageContext, type Views } from './views.ts';

/**
 * Last-resort handler for our own routes: the person gets a short, kind page with a reference id,
 * the log gets the error. oidc-provider answers its own errors (as OAuth errors or renderError).
 */
export function errorPages(views: Views): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      ctx.state.log?.error({ err: error, path: ctx.path }, 'unhandled error');
      const page = pageContext(ctx);
      ctx.status = 500;
      ctx.type = 'html';
      ctx.body = views.render('error', page, {
        message: page.t('error.generic'),
        requestId: ctx.state.requestId,
      });
    }
  };
}
