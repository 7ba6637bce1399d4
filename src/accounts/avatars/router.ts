import Router from '@koa/router';
import type { AvatarStore } from './store.ts';

/**
 * GET /avatars/:accountId: the mirrored avatar. The `v` query parameter in the picture claim only
 * busts caches; every version's URL answers with the current image (relying parties that stored an
 * older claim get today's avatar, not a broken image).
 */
export function createAvatarRouter(store: AvatarStore, options: { maxAgeSeconds: number }): Router {
  const router = new Router();
  router.get('/avatars/:accountId', async (ctx) => {
    const avatar = await store.get(ctx.params.accountId ?? '');
    if (!avatar) {
      ctx.status = 404;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = 'Not Found';
      return;
    }
    ctx.set('Cache-Control', `public, max-age=${options.maxAgeSeconds}`);
    ctx.set('ETag', avatar.etag);
    ctx.set('Last-Modified', avatar.updatedAt.toUTCString());
    ctx.set('X-Content-Type-Options', 'nosniff');
    // Relying parties show it in <img> on their own origins.
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
    ctx.type = avatar.contentType;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = Buffer.from(avatar.bytes);
  });
  return router;
}
