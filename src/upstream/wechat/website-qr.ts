import type { WeChatClient } from './client.ts';
import { queryString } from './query-string.ts';
import { type ProfileUnread, snsIdentity } from './sns-identity.ts';
import type { WeChatApp, WeChatIdentity } from './types.ts';

export interface WebsiteQrConnector {
  readonly kind: 'website';
  readonly app: WeChatApp;
  /** Full-page https://open.weixin.qq.com/connect/qrconnect?appid&redirect_uri&response_type=code&scope=snsapi_login&state&lang#wechat_redirect */
  authorizeUrl(p: { redirectUri: string; state: string; lang: 'cn' | 'en' }): string;
  /** The iframe URL wxLogin.js builds: .../connect/qrconnect?appid&scope&redirect_uri&state&login_type=jssdk&self_redirect&styletype=&sizetype=&bgcolor=&rst=[&style][&href]&lang */
  embedUrl(p: {
    redirectUri: string;
    state: string;
    lang: 'cn' | 'en';
    selfRedirect?: boolean;
    style?: 'black' | 'white';
    href?: string;
  }): string;
  /** Exchange the callback code and read the profile; returns the normalised identity (unionid from the token response, else from userinfo; may be undefined: the caller refuses it). */
  completeLogin(code: string): Promise<WeChatIdentity>;
}

export interface WebsiteQrConnectorDeps {
  app: WeChatApp;
  client: WeChatClient;
  /** e.g. https://open.weixin.qq.com (the sandbox in development and tests). */
  openBaseUrl: string;
  /** A profile read that failed while the login went on without it (sns-identity.ts). */
  onProfileUnread?: ProfileUnread;
}

/** Open Platform website-app login by QR code (wechat-api.md §2, §4, §7). */
export function createWebsiteQrConnector(deps: WebsiteQrConnectorDeps): WebsiteQrConnector {
  const { app, client } = deps;
  const qrconnect = `${deps.openBaseUrl.replace(/\/+$/, '')}/connect/qrconnect`;

  return {
    kind: 'website',
    app,

    authorizeUrl: ({ redirectUri, state, lang }) => {
      const query = queryString({
        appid: app.appid,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'snsapi_login',
        state,
        lang,
      });
      return `${qrconnect}?${query}#wechat_redirect`;
    },

    // The parameters of the iframe wxLogin.js creates, in its order, so that the page can embed the
    // QR without loading WeChat's script (wechat-api.md §2.1); wxLogin.js always sends style= and
    // href= (empty when unset), this only when set, and adds lang, as the qrconnect page takes it.
    embedUrl: ({ redirectUri, state, lang, selfRedirect, style, href }) => {
      const query = queryString({
        appid: app.appid,
        scope: 'snsapi_login',
        redirect_uri: redirectUri,
        state,
        login_type: 'jssdk',
        self_redirect: selfRedirect === undefined ? 'default' : String(selfRedirect),
        styletype: '',
        sizetype: '',
        bgcolor: '',
        rst: '',
        ...(style === undefined ? {} : { style }),
        ...(href === undefined ? {} : { href }),
        lang,
      });
      return `${qrconnect}?${query}`;
    },

    completeLogin: async (code) =>
      snsIdentity(client, app, await client.exchangeCode(app, code), true, deps.onProfileUnread),
  };
}
