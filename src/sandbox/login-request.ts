import { isAllowedRedirectUri } from './redirect-uri.ts';
import type { SandboxState } from './state.ts';
import type { SandboxApp } from './types.ts';

export type PageLang = 'cn' | 'en';
export type SelfRedirect = 'true' | 'false' | 'default';

/** A validated /connect/qrconnect request (§2, §2.1), carried through the page to the decision. */
export interface LoginRequest {
  app: SandboxApp;
  redirectUri: string;
  /** Echoed verbatim; '' when absent. */
  state: string;
  /** The scope the code grants: website apps get snsapi_login. */
  scope: string;
  lang: PageLang;
  /** wxLogin.js's iframe (login_type=jssdk): a compact page for 300x400. */
  embedded: boolean;
  /** In the iframe: 'true' navigates the iframe, anything else the top window. */
  selfRedirect: SelfRedirect;
  style: 'black' | 'white';
  /** The app's CSS override (https, http for local development, or data:text/css). */
  href: string | undefined;
}

/** Which parameter WeChat's error page would complain about. */
export type LoginRequestProblem = 'appid' | 'redirect_uri' | 'scope';

export type LoginRequestResult =
  | { ok: true; request: LoginRequest }
  | { ok: false; problem: LoginRequestProblem; lang: PageLang };

export type ParamReader = (name: string) => string | undefined;

function cssHref(href: string | undefined): string | undefined {
  if (!href) return undefined;
  return /^(https?:\/\/|data:text\/css[;,])/i.test(href) ? href : undefined;
}

function selfRedirect(value: string | undefined): SelfRedirect {
  return value === 'true' || value === 'false' ? value : 'default';
}

/** Validates like WeChat: appid of a website app, an allowed redirect_uri, snsapi_login among the scopes. */
export function parseLoginRequest(param: ParamReader, state: SandboxState): LoginRequestResult {
  const lang: PageLang = param('lang') === 'en' ? 'en' : 'cn';
  const appid = param('appid');
  const app = appid === undefined ? undefined : state.app(appid);
  if (app?.kind !== 'website') return { ok: false, problem: 'appid', lang };
  const redirectUri = param('redirect_uri');
  if (!redirectUri || !isAllowedRedirectUri(redirectUri, app))
    return { ok: false, problem: 'redirect_uri', lang };
  const scopes = (param('scope') ?? '').split(',').map((s) => s.trim());
  if (!scopes.includes('snsapi_login')) return { ok: false, problem: 'scope', lang };
  const embedded = param('login_type') === 'jssdk';
  return {
    ok: true,
    request: {
      app,
      redirectUri,
      state: param('state') ?? '',
      scope: 'snsapi_login',
      lang,
      embedded,
      selfRedirect: selfRedirect(param('self_redirect')),
      style: param('style') === 'white' ? 'white' : 'black',
      href: param('stylelite') === '1' ? undefined : cssHref(param('href')),
    },
  };
}

/** The hidden fields that carry a request from a page to its decision POST. */
export function requestFields(request: LoginRequest): Record<string, string> {
  return {
    appid: request.app.appid,
    redirect_uri: request.redirectUri,
    state: request.state,
    scope: request.scope,
    self_redirect: request.selfRedirect,
    lang: request.lang,
    ...(request.embedded ? { login_type: 'jssdk' } : {}),
  };
}
