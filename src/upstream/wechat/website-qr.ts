import type { SnsAccessToken, SnsUserInfo, WeChatClient } from './client.ts';
import { UpstreamError, type WeChatApp, type WeChatIdentity, type WeChatProfile } from './types.ts';

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
}

/** Open Platform website-app login by QR code (wechat-api.md §2, §4, §7). */
export function createWebsiteQrConnector(deps: WebsiteQrConnectorDeps): WebsiteQrConnector {
  const { app, client } = deps;
  const qrconnect = `${deps.openBaseUrl.replace(/\/+$/, '')}/connect/qrconnect`;

  return {
    kind: 'website',
    app,

    authorizeUrl: ({ redirectUri, state, lang }) => {
      const params = new URLSearchParams({
        appid: app.appid,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'snsapi_login',
        state,
        lang,
      });
      return `${qrconnect}?${params}#wechat_redirect`;
    },

    // Same parameters, in the same order, as the iframe wxLogin.js creates, so the
    // page can embed the QR without loading WeChat's script.
    embedUrl: ({ redirectUri, state, lang, selfRedirect, style, href }) => {
      const params = new URLSearchParams({
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
      });
      if (style !== undefined) params.append('style', style);
      if (href !== undefined) params.append('href', href);
      params.append('lang', lang);
      return `${qrconnect}?${params}`;
    },

    completeLogin: async (code) => {
      const token = await client.exchangeCode(app, code);
      const info = await readUserInfo(client, token);
      if (info !== undefined && info.openid !== token.openid) {
        throw new UpstreamError('unexpected', 'sns/userinfo');
      }
      if (info?.unionid !== undefined && token.unionid !== undefined && info.unionid !== token.unionid) {
        throw new UpstreamError('unexpected', 'sns/userinfo');
      }
      return {
        kind: 'website',
        appid: app.appid,
        openid: token.openid,
        unionid: token.unionid ?? info?.unionid,
        profile: info === undefined ? undefined : toProfile(info),
        snapshotUser: token.isSnapshotUser,
      };
    },
  };
}

/**
 * The profile is a nicety once the token already names the unionid: the code is
 * spent, so failing the login over a nickname would make the person scan again.
 * Without a unionid from the token, userinfo is the only source and its failure stands.
 */
async function readUserInfo(client: WeChatClient, token: SnsAccessToken): Promise<SnsUserInfo | undefined> {
  try {
    return await client.userInfo(token.accessToken, token.openid);
  } catch (error) {
    if (error instanceof UpstreamError && token.unionid !== undefined) return undefined;
    throw error;
  }
}

function toProfile(info: SnsUserInfo): WeChatProfile {
  return { nickname: info.nickname, avatarUrl: info.headimgurl, sex: info.sex, language: info.language };
}
