import { Secret } from '../../config/secret.ts';
import { createWeChatCall, type WeChatCallOptions } from './api-call.ts';
import type { WeChatApp } from './types.ts';
import { optionalInteger, optionalString, requiredString, stringList, type WireObject } from './wire.ts';

export type { WeChatCallEvent } from './api-call.ts';

/** What the client needs: the API's base URL, the per-attempt timeout, and the test hooks. */
export type WeChatClientOptions = WeChatCallOptions;

/** A user access token from sns/oauth2/access_token. */
export interface SnsAccessToken {
  accessToken: string;
  /** Seconds; 7200 when WeChat leaves it out (every documented answer says 7200). */
  expiresIn: number;
  openid: string;
  /** Granted scopes, WeChat's comma-separated string split. */
  scope: string[];
  /** Only when the app is bound to an Open Platform account and the scope allows it. */
  unionid?: string | undefined;
  /** is_snapshotuser: 1, a snapshot-page virtual account (never a real person). */
  isSnapshotUser: boolean;
}

/** sns/userinfo, blank strings normalised to undefined. */
export interface SnsUserInfo {
  openid: string;
  nickname?: string | undefined;
  headimgurl?: string | undefined;
  /** 0 unknown, 1 male, 2 female; WeChat sends 0 for everyone since 2021. */
  sex?: number | undefined;
  unionid?: string | undefined;
  /** Undocumented but present in real answers, e.g. "zh_CN". */
  language?: string | undefined;
  privilege: string[];
}

export type SnsUserInfoLang = 'zh_CN' | 'zh_TW' | 'en';

export interface WeChatClient {
  /** sns/oauth2/access_token. Retried on WeChat's -1 (busy) only: the code is single-use. */
  exchangeCode(app: WeChatApp, code: string): Promise<SnsAccessToken>;
  /** sns/userinfo; `lang` is always sent because WeChat's default is documented inconsistently. */
  userInfo(accessToken: string, openid: string, lang?: SnsUserInfoLang): Promise<SnsUserInfo>;
}

const DEFAULT_EXPIRES_IN = 7200;

export function createWeChatClient(options: WeChatClientOptions): WeChatClient {
  const call = createWeChatCall(options);

  return {
    exchangeCode: (app, code) =>
      call({
        api: 'sns/oauth2/access_token',
        query: {
          appid: app.appid,
          secret: app.secret,
          code: new Secret(code),
          grant_type: 'authorization_code',
        },
        idempotent: false,
        read: readAccessToken,
      }),

    userInfo: (accessToken, openid, lang = 'zh_CN') =>
      call({
        api: 'sns/userinfo',
        query: { access_token: new Secret(accessToken), openid, lang },
        idempotent: true,
        read: readUserInfo,
      }),
  };
}

function readAccessToken(body: WireObject): SnsAccessToken {
  return {
    accessToken: requiredString(body, 'access_token'),
    expiresIn: optionalInteger(body, 'expires_in') ?? DEFAULT_EXPIRES_IN,
    // refresh_token is not read: the login uses the access token once, at once, and never renews it;
    // requiring it failed a login over a field nothing uses (an outside review).
    openid: requiredString(body, 'openid'),
    scope: stringList(body, 'scope'),
    unionid: optionalString(body, 'unionid'),
    isSnapshotUser: optionalInteger(body, 'is_snapshotuser') === 1,
  };
}

function readUserInfo(body: WireObject): SnsUserInfo {
  return {
    openid: requiredString(body, 'openid'),
    nickname: optionalString(body, 'nickname'),
    headimgurl: optionalString(body, 'headimgurl'),
    sex: optionalInteger(body, 'sex'),
    unionid: optionalString(body, 'unionid'),
    language: optionalString(body, 'language'),
    privilege: stringList(body, 'privilege'),
  };
}
