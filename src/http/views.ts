import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';
import type { Context } from 'koa';
import { type Lang, pickLang, type Translate, translator } from '../i18n/messages.ts';
import { PACKAGE_ROOT } from '../package-root.ts';

export const VIEWS_DIR = join(PACKAGE_ROOT, 'views');

export interface PageContext {
  lang: Lang;
  t: Translate;
}

export interface Views {
  /** Renders `views/<name>.eta` inside the layout; templates escape everything by default. */
  render(name: string, page: PageContext, data?: Record<string, unknown>): string;
  /** The stylesheet, kept in memory: one small file does not need a static file server. */
  stylesheet: { body: string; etag: string };
}

/** Templates are compiled once and cached: never per request. */
export function createViews(options: { assetBase: string }): Views {
  const eta = new Eta({ views: VIEWS_DIR, cache: true, autoEscape: true, autoTrim: false });
  const css = readFileSync(join(VIEWS_DIR, 'assets', 'app.css'), 'utf8');
  return {
    render(name, page, data = {}) {
      return eta.render(name, { ...data, lang: page.lang, t: page.t, assetBase: options.assetBase });
    },
    stylesheet: { body: css, etag: `"${hash(css)}"` },
  };
}

/** The language for this request: ?lang=, then the OIDC ui_locales, then Accept-Language. */
export function pageContext(ctx: Context, uiLocales?: string): PageContext {
  const explicit = typeof ctx.query.lang === 'string' ? ctx.query.lang : uiLocales;
  const lang = pickLang(explicit, ctx.get('accept-language') || undefined);
  return { lang, t: translator(lang) };
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}
