import { createHmac } from 'node:crypto';
import type { Secret } from '../../config/secret.ts';
import type { AppTokenCache } from './app-token.ts';
import type { MiniProgramApi, PhoneInfo } from './mini-program-api.ts';
import { UpstreamError, type WeChatApp, type WeChatIdentity } from './types.ts';

/** A wx.login code exchanged: who the person is, and the session key only the server keeps. */
export interface MiniProgramLogin {
  identity: WeChatIdentity;
  sessionKey: Secret;
}

export interface MiniProgramConnector {
  readonly kind: 'mini_program';
  readonly app: WeChatApp;
  /** sns/jscode2session; the identity's unionid may be undefined (the caller refuses it). */
  login(jsCode: string): Promise<MiniProgramLogin>;
  /** wxa/checksession: true while WeChat still holds this session key, false once it is stale (87009). */
  checkSession(openid: string, sessionKey: Secret): Promise<boolean>;
  /**
   * wxa/business/getuserphonenumber for a getPhoneNumber button code, bound to this openid.
   * A phone_info watermarked for another app is refused ('unexpected').
   */
  phoneNumber(code: string, openid: string): Promise<PhoneInfo>;
}

export interface MiniProgramConnectorDeps {
  app: WeChatApp;
  api: MiniProgramApi;
  appTokens: AppTokenCache;
}

/** A mini program's server side (wechat-api.md §8-§11): a pure upstream adapter, no koa, no storage of its own. */
export function createMiniProgramConnector(deps: MiniProgramConnectorDeps): MiniProgramConnector {
  const { app, api, appTokens } = deps;
  return {
    kind: 'mini_program',
    app,

    login: async (jsCode) => {
      const session = await api.code2Session(app, jsCode);
      return {
        identity: {
          kind: 'mini_program',
          appid: app.appid,
          openid: session.openid,
          unionid: session.unionid,
          snapshotUser: false,
        },
        sessionKey: session.sessionKey,
      };
    },

    checkSession: async (openid, sessionKey) => {
      const signature = sessionSignature(sessionKey, '');
      try {
        await appTokens.withToken(app, (token) => api.checkSession(token, openid, signature));
        return true;
      } catch (error) {
        if (error instanceof UpstreamError && error.code === 'signature_invalid') return false;
        throw error;
      }
    },

    phoneNumber: async (code, openid) => {
      const info = await appTokens.withToken(app, (token) => api.phoneNumber(token, code, openid));
      if (info.watermark !== undefined && info.watermark.appid !== app.appid) {
        throw new UpstreamError('unexpected', 'wxa/business/getuserphonenumber', undefined, {
          detail: 'phone_info watermarked for another app',
        });
      }
      return info;
    },
  };
}

/**
 * The signature of the session-key APIs (§9): HMAC-SHA256 keyed with the session key's base64
 * text as WeChat sent it (not the decoded bytes), over the request body ("" for GET), lowercase hex.
 */
export function sessionSignature(sessionKey: Secret, body: string): string {
  return createHmac('sha256', sessionKey.reveal()).update(body, 'utf8').digest('hex');
}
