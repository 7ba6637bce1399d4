import { join } from 'node:path';
import { Eta } from 'eta';
import type { Context } from 'koa';
import { PACKAGE_ROOT } from '../package-root.ts';

const eta = new Eta({ views: join(PACKAGE_ROOT, 'views', 'sandbox'), cache: true });

/** Embeds a value in an inline <script> without letting it close the tag. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

export function renderPage(ctx: Context, template: string, data: object, status = 200): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.body = eta.render(`./${template}`, data);
}
