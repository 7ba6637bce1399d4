import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';

/** views/sandbox from src/sandbox (tsx, tests) or from dist/src/sandbox (the build). */
function findViewsDir(): string {
  for (const relative of ['../../views/sandbox', '../../../views/sandbox']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error('views/sandbox not found next to the sandbox code');
}

const eta = new Eta({ views: findViewsDir(), cache: true });

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
