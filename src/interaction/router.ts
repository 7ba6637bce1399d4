import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import { refuseUnreadableBody } from '../http/errors.ts';
import { postAbort } from './abort.ts';
import { postConsent } from './consent.ts';
import type { InteractionDeps } from './deps.ts';
import { showInteraction, showWeChatAuthorize } from './show.ts';
import { wechatCallback } from './wechat-callback.ts';

/**
 * Our pages between oidc-provider's authorization endpoint and its resume: login (WeChat), the
 * WeChat callback, consent and abort. A body is parsed only where it carries something (the abort's
 * reason; the consent form sends none, its button has no name), never in front of oidc-provider
 * (which parses its own). An unread body is discarded by Node when the response ends.
 */
export function createInteractionRouter(deps: InteractionDeps): Router {
  const router = new Router();
  const form = bodyParser({ enableTypes: ['form'], formLimit: '8kb', onError: refuseUnreadableBody });
  router.use('/interaction/:uid', noStore);
  router.get('/interaction/:uid', (ctx) => showInteraction(ctx, deps));
  router.get('/interaction/:uid/wechat-authorize', (ctx) => showWeChatAuthorize(ctx, deps));
  router.get('/interaction/:uid/wechat-callback', (ctx) => wechatCallback(ctx, deps));
  router.post('/interaction/:uid/consent', (ctx) => postConsent(ctx, deps));
  router.post('/interaction/:uid/abort', form, (ctx) => postAbort(ctx, deps));
  return router;
}

async function noStore(ctx: import('koa').Context, next: () => Promise<unknown>): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  await next();
}
