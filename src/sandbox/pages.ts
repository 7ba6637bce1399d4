import type { Context } from 'koa';
import type { LoginRequestProblem, PageLang } from './login-request.ts';
import type { SandboxState } from './state.ts';
import { problemText, textsFor } from './texts.ts';
import { renderPage } from './views.ts';

/** Pages in wxLogin.js's iframe must not scroll or show a full-size layout. */
export function bodyClass(embedded: boolean, style: 'black' | 'white' = 'black'): string {
  return `${embedded ? 'embedded' : 'full'} style-${style}`;
}

/** WeChat's answer to a bad appid, redirect_uri or scope: an HTML page, never a redirect. */
export function renderProblem(
  ctx: Context,
  lang: PageLang,
  problem: LoginRequestProblem,
  embedded: boolean,
  status: number,
): void {
  const t = textsFor(lang);
  renderPage(
    ctx,
    'message',
    { t, title: t.errorTitle, heading: problemText(lang, problem), bodyClass: bodyClass(embedded) },
    status,
  );
}

/** Declined with denyMode no_redirect (§2, 2022 wording): the page stays, nothing reaches the app. */
export function renderDeclined(ctx: Context, lang: PageLang, embedded: boolean): void {
  const t = textsFor(lang);
  renderPage(ctx, 'message', {
    t,
    title: t.declinedTitle,
    heading: t.declinedTitle,
    detail: t.declinedBody,
    bodyClass: bodyClass(embedded),
  });
}

/** The people a page offers to scan as. */
export function userChoices(state: SandboxState, origin: string) {
  return state.listUsers().map((user) => ({
    id: user.id,
    nickname: user.nickname,
    avatarUrl: state.avatarUrl(user, origin, 64),
  }));
}

/**
 * The reason a decision gives when nobody was picked (the QR scan's and the Official Account's): the
 * one a person meets, shown in the page's language; the other reasons are for developers.
 */
export const NO_USER_CHOSEN = 'choose a user or enter a nickname';

/** The decision could not be carried out (no user chosen, a bad nickname): say why, offer the way back. */
export function renderInvalidChoice(ctx: Context, lang: PageLang, embedded: boolean, reason: string): void {
  const t = textsFor(lang);
  renderPage(
    ctx,
    'message',
    {
      t,
      heading: t.invalidChoice,
      detail: reason === NO_USER_CHOSEN ? t.chooseUser : reason,
      back: true,
      bodyClass: bodyClass(embedded),
    },
    400,
  );
}
