import type { Context } from 'koa';
import { pageContext, type Views } from './views.ts';

/**
 * Last-resort answer for our own routes (the front door's onError): the person gets a short, kind
 * page with a reference id, the log gets the error. oidc-provider answers its own errors (as OAuth
 * errors or renderError).
 */
export function errorPage(views: Views): (ctx: Context, error: unknown) => void {
  return (ctx, error) => {
    const status = clientErrorStatus(error);
    // The id by name: this runs outside the request's logging context (request-log.ts,
    // inRequestContext), and it is the reference the page shows, which a person reads out.
    const { requestId } = ctx.state;
    if (status === undefined)
      ctx.state.log?.error({ err: error, path: ctx.path, requestId }, 'unhandled error');
    else ctx.state.log?.info({ status, path: ctx.path, requestId }, 'request refused');
    const page = pageContext(ctx);
    ctx.status = status ?? 500;
    ctx.type = 'html';
    ctx.body = views.render('error', page, {
      message: page.t(status === undefined ? 'error.generic' : 'error.badRequest'),
      requestId: ctx.state.requestId,
    });
  };
}

/**
 * The 4xx a body parser or koa's ctx.throw gave a request it refused (too large a form, an
 * encoding it cannot read), which is the request's fault, not ours: koa's own handler answers
 * `status` too. Only the status is kept; the page says no more (a parser's error can carry the
 * raw body, and inflation's has no `expose`).
 */
function clientErrorStatus(error: unknown): number | undefined {
  const status =
    typeof error === 'object' && error !== null ? (error as { status?: unknown }).status : undefined;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * The body parsers' onError: a body they cannot read is the request's fault. Their own refusals
 * carry a 4xx (too large, not JSON, an unknown charset or Content-Encoding), but a body that does
 * not decompress as its Content-Encoding says (gzip, deflate or br over other bytes, or cut short)
 * fails in zlib with no status, and was answered 500 and logged as our failure: it is a 400.
 */
export function refuseUnreadableBody(error: Error): never {
  if ((error as { status?: unknown }).status === undefined) Object.assign(error, { status: 400 });
  throw error;
}
