import type { SnsAccessToken, WeChatClient } from './client.ts';
import { queryString } from './query-string.ts';
import { type ProfileUnread, snsIdentity } from './sns-identity.ts';
import type { OfficialAccountScope, WeChatApp, WeChatIdentity } from './types.ts';

export interface OfficialAccountConnector {
  readonly kind: 'official_account';
  readonly app: WeChatApp;
  /** https://open.weixin.qq.com/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state#wechat_redirect */
  authorizeUrl(p: { redirectUri: string; state: string; scope: OfficialAccountScope }): string;
  /**
   * Exchange the callback code. With snsapi_userinfo the profile (and the unionid, when the token
   * lacks it) come from sns/userinfo; with snsapi_base only the token is read: userinfo would answer
   * 48001, and the unionid is normally absent (the caller decides whether to ask for more).
   */
  completeLogin(code: string, scope: OfficialAccountScope): Promise<WeChatIdentity>;
}

export interface OfficialAccountConnectorDeps {
  app: WeChatApp;
  client: WeChatClient;
  /** e.g. https://open.weixin.qq.com (the sandbox in development and tests). */
  openBaseUrl: string;
  /** A profile read that failed while the login went on without it (sns-identity.ts). */
  onProfileUnread?: ProfileUnread;
}

/** Official Account (服务号) web authorization inside the WeChat browser (wechat-api.md §3, §4, §7). */
export function createOfficialAccountConnector(deps: OfficialAccountConnectorDeps): OfficialAccountConnector {
  const { app, client } = deps;
  const authorize = `${deps.openBaseUrl.replace(/\/+$/, '')}/connect/oauth2/authorize`;

  return {
    kind: 'official_account',
    app,

    // "#wechat_redirect" is required whether the page is opened directly or reached by a redirect (§3).
    authorizeUrl: ({ redirectUri, state, scope }) => {
      const query = queryString({
        appid: app.appid,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope,
        state,
      });
      return `${authorize}?${query}#wechat_redirect`;
    },

    completeLogin: async (code, scope) => {
      const token = await client.exchangeCode(app, code);
      return snsIdentity(client, app, token, mayReadProfile(token, scope), deps.onProfileUnread);
    },
  };
}

/**
 * Only a snsapi_userinfo token may read the profile. A snapshot-page token is refused by userinfo
 * (48001) and its data is virtual anyway, and a token whose granted scope names only snsapi_base is
 * a base token whatever we asked for.
 */
function mayReadProfile(token: SnsAccessToken, requested: OfficialAccountScope): boolean {
  if (requested !== 'snsapi_userinfo' || token.isSnapshotUser) return false;
  return token.scope.length === 0 || token.scope.includes('snsapi_userinfo');
}
