import type Router from '@koa/router';
import { parseHexColor, solidPng } from '../png.ts';
import type { SandboxState } from '../state.ts';

/** WeChat's size segment (§7): 0 means 640x640; other values are the edge in pixels. */
const MAX_SIZE = 640;
const CACHE_LIMIT = 256;

/** GET /sandbox/avatars/<avatar id>/<size>: a solid-colour PNG; a replaced avatar's URL is gone (404). */
export function registerAvatars(router: Router, state: SandboxState): void {
  const cache = new Map<string, Buffer>();

  router.get('/sandbox/avatars/:id/:size', (ctx) => {
    const color = state.avatarColor(ctx.params.id!);
    const sizeSegment = ctx.params.size!;
    const rgb = color === undefined ? undefined : parseHexColor(color);
    if (!rgb || !/^\d{1,4}$/.test(sizeSegment)) {
      ctx.status = 404;
      return;
    }
    const requested = Number(sizeSegment);
    const size = requested === 0 ? MAX_SIZE : Math.min(requested, MAX_SIZE);
    const key = `${color}:${size}`;
    let png = cache.get(key);
    if (!png) {
      if (cache.size >= CACHE_LIMIT) cache.clear();
      png = solidPng(size, rgb);
      cache.set(key, png);
    }
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.type = 'image/png';
    ctx.body = png;
  });
}
