import type { PageLang, ParamReader } from './login-request.ts';
import { isAllowedRedirectUri } from './redirect-uri.ts';
import type { SandboxState } from './state.ts';
import type { SandboxApp } from './types.ts';

export type OAuth2Scope = 'snsapi_base' | 'snsapi_userinfo';

/** A validated /connect/oauth2/authorize request (§3), carried through the page to the decision. */
export interface OAuth2Request {
  app: SandboxApp;
  redirectUri: string;
  scope: OAuth2Scope;
  /** Echoed verbatim; '' when absent. */
  state: string;
  lang: PageLang;
}

/** WeChat's error page codes (§3, OA-ERRPAGE); 'appid' for an appid WeChat does not know. */
export type OAuth2Problem = '10003' | '10005' | '10010' | '10011' | '10012' | '10016' | 'appid';

export type OAuth2RequestResult =
  | { ok: true; request: OAuth2Request }
  | { ok: false; problem: OAuth2Problem; lang: PageLang };

/**
 * Validates like WeChat's authorize page: an official account's appid (a website app's gets 10016),
 * a redirect_uri on the app's domain, and snsapi_base or snsapi_userinfo.
 */
export function parseOAuth2Request(param: ParamReader, state: SandboxState): OAuth2RequestResult {
  const lang: PageLang = param('lang') === 'en' ? 'en' : 'cn';
  const fail = (problem: OAuth2Problem): OAuth2RequestResult => ({ ok: false, problem, lang });
  const appid = param('appid');
  if (appid === undefined) return fail('10012');
  const app = state.app(appid);
  if (!app) return fail('appid');
  if (app.kind === 'website') return fail('10016');
  if (app.kind !== 'official_account') return fail('appid');
  const redirectUri = param('redirect_uri');
  if (redirectUri === undefined) return fail('10011');
  if (!isAllowedRedirectUri(redirectUri, app)) return fail('10003');
  const scopes = (param('scope') ?? '').split(',').map((scope) => scope.trim());
  if (scopes.every((scope) => scope === '')) return fail('10010');
  const scope = scopes.includes('snsapi_userinfo')
    ? 'snsapi_userinfo'
    : scopes.includes('snsapi_base')
      ? 'snsapi_base'
      : undefined;
  if (!scope) return fail('10005');
  return { ok: true, request: { app, redirectUri, scope, state: param('state') ?? '', lang } };
}

/** The hidden fields that carry a request from the page to its decision POST. */
export function oauth2Fields(request: OAuth2Request): Record<string, string> {
  return {
    appid: request.app.appid,
    redirect_uri: request.redirectUri,
    scope: request.scope,
    state: request.state,
    lang: request.lang,
  };
}

/** The authorize URL again (after 使用完整服务), without the fragment browsers never send. */
export function authorizePath(request: OAuth2Request): string {
  const query = new URLSearchParams({
    appid: request.app.appid,
    redirect_uri: request.redirectUri,
    response_type: 'code',
    scope: request.scope,
    state: request.state,
    ...(request.lang === 'en' ? { lang: 'en' } : {}),
  });
  return `/connect/oauth2/authorize?${query}`;
}
