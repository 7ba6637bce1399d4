import type { Context } from 'koa';
import type { MessageKey } from '../i18n/messages.ts';
import type { RequestStage } from './front-door.ts';
import { pageContext, type Views } from './views.ts';

/**
 * A readable page for a person who reaches an address nothing here answers (a mistyped or stale
 * link, 404), or an address that takes other methods (405: a form's target opened as a link, such
 * as a bookmarked logout confirmation): koa's own answer is a bare "Not Found" or "Method Not
 * Allowed" in English. Only a browser's GET gets it (one that prefers HTML to JSON); an API client
 * keeps the plain answer, and any answer a route gave a body of its own (an account page's notice,
 * an OAuth error) is left as it is. A 405 keeps its status and its Allow header.
 */
export function statusPages(views: Views): RequestStage {
  return {
    finish(ctx: Context) {
      const texts = STATUS_TEXTS[ctx.status];
      if (!texts || ctx.body != null) return;
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return;
      if (ctx.accepts('json', 'html') !== 'html') return;
      const page = pageContext(ctx);
      const status = ctx.status;
      // A stale or mistyped link under the account page leads back to it, not to "the application".
      const underAccount = status === 404 && ctx.path.startsWith('/account/');
      ctx.type = 'html';
      // Neither is a fault to report: no reference.
      ctx.body = views.render('error', page, {
        heading: page.t(texts.heading),
        message: page.t(underAccount ? 'error.notFoundAccount' : texts.message),
        ...(underAccount && {
          accountUrl: `/account?lang=${page.lang}`,
          accountLabel: page.t('account.backToAccount'),
        }),
      });
      // koa sets 200 with a body given to a response whose status was never set (a 404's).
      ctx.status = status;
    },
  };
}

const STATUS_TEXTS: Record<number, { heading: MessageKey; message: MessageKey } | undefined> = {
  404: { heading: 'error.notFoundTitle', message: 'error.notFound' },
  405: { heading: 'error.methodNotAllowedTitle', message: 'error.methodNotAllowed' },
};
