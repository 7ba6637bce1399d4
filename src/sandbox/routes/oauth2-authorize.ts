import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { SandboxInputError } from '../input-error.ts';
import type { PageLang, ParamReader } from '../login-request.ts';
import {
  authorizePath,
  type OAuth2Problem,
  type OAuth2Request,
  oauth2Fields,
  parseOAuth2Request,
} from '../oauth2-request.ts';
import { bodyClass, NO_USER_CHOSEN, renderDeclined, renderInvalidChoice } from '../pages.ts';
import { appendQuery } from '../redirect-uri.ts';
import type { SandboxState } from '../state.ts';
import { fill, textsFor } from '../texts.ts';
import type { SandboxUser } from '../users.ts';
import { renderPage } from '../views.ts';
import { queryParam, selfOrigin } from '../wire.ts';

/**
 * Which fake person "is" the WeChat of this browser: set when someone picks a user on an
 * authorization page, and what a silent snsapi_base authorization answers for from then on.
 */
const WECHAT_USER_COOKIE = 'sandbox_wechat_user';

/** WeChat's page only works in its own browser; WeCom's also says MicroMessenger but is refused (§3). */
function isWeChatBrowser(userAgent: string): boolean {
  const ua = userAgent.toLowerCase();
  return ua.includes('micromessenger') && !ua.includes('wxwork');
}

function currentUser(ctx: Context, state: SandboxState): SandboxUser | undefined {
  const id = ctx.cookies.get(WECHAT_USER_COOKIE);
  return id ? state.getUser(id) : undefined;
}

function rememberUser(ctx: Context, user: SandboxUser): void {
  ctx.cookies.set(WECHAT_USER_COOKIE, user.id, { httpOnly: true, sameSite: 'lax', overwrite: true });
}

/** WeChat's answer outside its browser: HTTP 200, no redirect, "请在微信客户端打开链接" (§3). */
function renderOpenInWeChat(ctx: Context, lang: PageLang): void {
  const t = textsFor(lang);
  renderPage(ctx, 'message', { t, title: t.oaTitle, heading: t.openInWeChat, bodyClass: bodyClass(false) });
}

/** WeChat's error page for a bad request: the reason and its code, never a redirect. */
function renderOAuth2Problem(ctx: Context, lang: PageLang, problem: OAuth2Problem): void {
  const t = textsFor(lang);
  renderPage(ctx, 'message', {
    t,
    title: t.errorTitle,
    heading: t[`oaProblem.${problem}`],
    detail: problem === 'appid' ? undefined : fill(t.errorCode, { code: problem }),
    bodyClass: bodyClass(false),
  });
}

function showAuthorizePage(
  ctx: Context,
  state: SandboxState,
  request: OAuth2Request,
  current: SandboxUser | undefined,
): void {
  const t = textsFor(request.lang);
  const origin = selfOrigin(ctx);
  const users = state.listUsers();
  const checkedId = current?.id ?? users[0]?.id;
  const userinfo = request.scope === 'snsapi_userinfo';
  renderPage(ctx, 'oauth2', {
    t,
    title: t.oaTitle,
    bodyClass: bodyClass(false),
    lead: userinfo ? fill(t.oaUserinfoLead, { app: request.app.name ?? request.app.appid }) : t.oaWhoLead,
    fields: oauth2Fields(request),
    users: users.map((user) => ({
      id: user.id,
      nickname: user.nickname,
      avatarUrl: state.avatarUrl(user, origin, 64),
      checked: user.id === checkedId,
      snapshot: userinfo && user.snapshot,
    })),
    anySnapshot: userinfo && users.some((user) => user.snapshot),
    allowLabel: userinfo ? t.oaAllow : t.oaContinue,
    canDeny: userinfo,
  });
}

/** Sends the browser back with a code, and (in deliver-twice mode) WeChat's own copy of that request. */
function redirectWithCode(
  ctx: Context,
  state: SandboxState,
  request: OAuth2Request,
  user: SandboxUser,
): void {
  const code = state.issueCode({
    appid: request.app.appid,
    userId: user.id,
    scope: request.scope,
    snapshot: request.scope === 'snsapi_userinfo' && user.snapshot,
  });
  const location = appendQuery(request.redirectUri, { code, state: request.state });
  state.deliveries.deliver(location, ctx.get('user-agent') || undefined);
  ctx.redirect(location);
}

function chosenUser(state: SandboxState, field: ParamReader): SandboxUser | string {
  const nickname = field('nickname');
  if (nickname?.trim()) {
    try {
      return state.createUser({ nickname });
    } catch (error) {
      if (error instanceof SandboxInputError) return error.message;
      throw error;
    }
  }
  const id = field('user');
  return (id && state.getUser(id)) || NO_USER_CHOSEN;
}

function formReader(ctx: Context): ParamReader {
  const body = (ctx.request.body ?? {}) as Record<string, unknown>;
  return (name) => {
    const value = body[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
}

/**
 * open.weixin.qq.com/connect/oauth2/authorize, the Official Account web authorization (§3, §3.1):
 * snsapi_base is silent for a browser whose WeChat user is known (a page asks once otherwise),
 * snsapi_userinfo asks every time; codes live 5 minutes; snapshot-page users get virtual accounts.
 */
export function registerOAuth2Authorize(router: Router, state: SandboxState): void {
  router.get('/connect/oauth2/authorize', (ctx) => {
    const param: ParamReader = (name) => queryParam(ctx, name);
    if (!isWeChatBrowser(ctx.get('user-agent'))) {
      renderOpenInWeChat(ctx, param('lang') === 'en' ? 'en' : 'cn');
      return;
    }
    const parsed = parseOAuth2Request(param, state);
    if (!parsed.ok) {
      renderOAuth2Problem(ctx, parsed.lang, parsed.problem);
      return;
    }
    const current = currentUser(ctx, state);
    if (parsed.request.scope === 'snsapi_base' && current) {
      redirectWithCode(ctx, state, parsed.request, current);
      return;
    }
    showAuthorizePage(ctx, state, parsed.request, current);
  });

  router.post('/connect/sandbox/oauth2/authorize', bodyParser({ enableTypes: ['form'] }), (ctx) => {
    const field = formReader(ctx);
    const parsed = parseOAuth2Request(field, state);
    if (!parsed.ok) {
      renderOAuth2Problem(ctx, parsed.lang, parsed.problem);
      ctx.status = 400;
      return;
    }
    const request = parsed.request;
    const decision = field('decision');
    if (decision === 'deny') {
      if (state.denyMode === 'no_redirect') return renderDeclined(ctx, request.lang, false);
      ctx.redirect(appendQuery(request.redirectUri, { state: request.state }));
      return;
    }
    if (decision !== 'allow' && decision !== 'full_service') {
      return renderInvalidChoice(ctx, request.lang, false, 'decision must be allow, deny or full_service');
    }
    const user = chosenUser(state, field);
    if (typeof user === 'string') return renderInvalidChoice(ctx, request.lang, false, user);
    rememberUser(ctx, user);
    if (decision === 'full_service') {
      // 使用完整服务: the person leaves the snapshot page and WeChat asks again, for real this time.
      state.updateUser(user.id, { snapshot: false });
      ctx.status = 303;
      ctx.redirect(authorizePath(request));
      return;
    }
    redirectWithCode(ctx, state, request, user);
  });
}
