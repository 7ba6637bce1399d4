import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Eta } from 'eta';
import type { Context } from 'koa';
import { type Lang, pickLang, type Translate, translator } from '../i18n/messages.ts';
import { PACKAGE_ROOT } from '../package-root.ts';

export const VIEWS_DIR = join(PACKAGE_ROOT, 'views');

export interface PageContext {
  lang: Lang;
  t: Translate;
  /** The request the page answers, for the language switch's link when no pagePath is given. */
  request?: Pick<Context, 'method' | 'path' | 'querystring'>;
}

export interface Views {
  /** Renders `views/<name>.eta` inside the layout (`@layout`); templates escape everything by default. */
  render(name: string, page: PageContext, data?: Record<string, unknown>): string;
  /** The stylesheet, kept in memory: one small file does not need a static file server. */
  stylesheet: { body: string; etag: string };
}

/**
 * Every template is compiled once, at start, and named (`@login`, `@layout`): a page is rendered
 * from memory. Rendered by file name, eta resolved and checked the template's path (path.join,
 * path.relative, a JSON cache key) on every page, some 50,000 instructions of each: a tenth of what
 * the consent page adds to a login (bench/FINDINGS.md, "The consent page's templates").
 */
export function createViews(options: { assetBase: string }): Views {
  const eta = new Eta({ autoEscape: true, autoTrim: false });
  for (const file of readdirSync(VIEWS_DIR)) {
    if (file.endsWith('.eta'))
      eta.loadTemplate(`@${basename(file, '.eta')}`, readFileSync(join(VIEWS_DIR, file), 'utf8'));
  }
  const css = readFileSync(join(VIEWS_DIR, 'assets', 'app.css'), 'utf8');
  return {
    render(name, page, data = {}) {
      const langForm = languageForm(page, data.langForm);
      const langHref = langForm ? undefined : languageSwitch(page, data.pagePath);
      return eta.render(`@${name}`, {
        ...data,
        lang: page.lang,
        t: page.t,
        assetBase: options.assetBase,
        langHref,
        langForm,
      });
    },
    stylesheet: { body: css, etag: `"${hash(css)}"` },
  };
}

/**
 * The link to the page in the other language: the page's own path when it has one (pagePath), else
 * the request's URL with its query kept, so that an error page shown at an authorization request
 * shows the same again. None for an answer to a POST, nor where the query holds a code (WeChat's
 * callback): the code is not to be written into the page, and that URL's answer would not be the
 * same page again (without its code, a declined login). A page answered there that a safe URL shows
 * again (the timed-out login's, at the interaction's own page) names that URL as its pagePath.
 */
function languageSwitch(page: PageContext, pagePath: unknown): string | undefined {
  const other = page.lang === 'en' ? 'zh-CN' : 'en';
  if (typeof pagePath === 'string') return `${pagePath}?lang=${other}`;
  if (!page.request) return undefined;
  // An answer to a POST: its URL, followed as a link, would not give this page again (405 or a
  // different page), and the form is not to be sent twice. Such pages name a pagePath, or go without.
  if (page.request.method !== 'GET' && page.request.method !== 'HEAD') return undefined;
  const query = new URLSearchParams(page.request.querystring);
  if (query.has('code')) return undefined;
  query.set('lang', other);
  return `${ownPath(page.request.path)}?${query}`;
}

/** What a page answering a POST sends again to be shown in the other language (`langForm`). */
export interface LanguageForm {
  /** The path the page's own request was posted to. */
  action: string;
  /** That request's fields (a CSRF token among them): sending them again must change nothing. */
  fields: Record<string, string>;
}

/**
 * The language switch of a page answering a POST that is safe to send again (a confirmation page):
 * the same form, posted to the same path with the other language. A link would GET a path that
 * takes POST only.
 */
function languageForm(page: PageContext, form: unknown): LanguageForm | undefined {
  if (typeof form !== 'object' || form === null) return undefined;
  const { action, fields } = form as LanguageForm;
  return { action: `${ownPath(action)}?lang=${page.lang === 'en' ? 'zh-CN' : 'en'}`, fields };
}

/**
 * The request's path as a link to this site: one that begins with two slashes (or a backslash,
 * which browsers read as one) would be a link to another host (//evil.example/...), a page of ours
 * leading away to a look-alike.
 */
function ownPath(path: string): string {
  return `/${path.replace(/^[/\\]+/, '')}`;
}

/** The language for this request: ?lang=, then the OIDC ui_locales, then Accept-Language. */
export function pageContext(ctx: Context, uiLocales?: string): PageContext {
  const explicit = typeof ctx.query.lang === 'string' ? ctx.query.lang : uiLocales;
  const lang = pickLang(explicit, ctx.get('accept-language') || undefined);
  return { lang, t: translator(lang), request: ctx };
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16);
}
