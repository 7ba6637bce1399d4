import type { Context } from 'koa';
import { pageContext, type Views } from './views.ts';

/**
 * Last-resort answer for our own routes (the front door's onError): the person gets a short, kind
 * page with a reference id, the log gets the error. oidc-provider answers its own errors (as OAuth
 * errors or renderError).
 */
export function errorPage(views: Views): (ctx: Context, error: unknown) => void {
  return (ctx, error) => {
    ctx.state.log?.error({ err: error, path: ctx.path }, 'unhandled error');
    const page = pageContext(ctx);
    ctx.status = 500;
    ctx.type = 'html';
    ctx.body = views.render('error', page, {
      message: page.t('error.generic'),
      requestId: ctx.state.requestId,
    });
  };
}
