import { Secret } from '../../config/secret.ts';
import { createWeChatCall, type WeChatCallOptions } from './api-call.ts';
import type { WeChatApp } from './types.ts';
import {
  optionalInteger,
  optionalString,
  requiredString,
  toInteger,
  type WireObject,
  WireShapeError,
} from './wire.ts';

/** sns/jscode2session's answer (wechat-api.md §8). The session key never leaves the server. */
export interface JsCodeSession {
  openid: string;
  /** base64 of 16 bytes, exactly as WeChat sent it: the AES key of §10 and the HMAC key of §9. */
  sessionKey: Secret;
  /** Only when the mini program is bound to an Open Platform account (§12). */
  unionid?: string | undefined;
}

/** An app access token from cgi-bin/stable_token (§11). */
export interface AppAccessToken {
  accessToken: Secret;
  /** Seconds from now; WeChat guarantees at least 300 in normal mode. */
  expiresIn: number;
}

/** wxa/business/getuserphonenumber's phone_info (§10.1), countryCode as a string whatever WeChat sent. */
export interface PhoneInfo {
  /** With the country prefix for numbers outside mainland China. */
  phoneNumber: string;
  purePhoneNumber: string;
  countryCode: string;
  watermark: { appid: string; timestamp: number } | undefined;
}

/**
 * The mini program's server APIs, one small function each over the shared WeChat call (retries,
 * errcode mapping and secret hygiene live there). Calls needing the app access token take it as an
 * argument: the cache that owns it (app-token.ts) decides when to fetch a new one.
 */
export interface MiniProgramApi {
  /** sns/jscode2session. Retried on WeChat's -1 (busy) only: the code is single use. */
  code2Session(app: WeChatApp, jsCode: string): Promise<JsCodeSession>;
  /** cgi-bin/stable_token (POST JSON). Normal mode may repeat; force_refresh may not (it rotates). */
  stableToken(app: WeChatApp, forceRefresh: boolean): Promise<AppAccessToken>;
  /** wxa/checksession: resolves for errcode 0; 87009 (stale key) rejects with signature_invalid. */
  checkSession(accessToken: Secret, openid: string, signature: string): Promise<void>;
  /** wxa/business/getuserphonenumber with the openid the code must belong to. Retried on -1 only (single-use code). */
  phoneNumber(accessToken: Secret, code: string, openid: string): Promise<PhoneInfo>;
}

const DEFAULT_EXPIRES_IN = 7200;

export function createMiniProgramApi(options: WeChatCallOptions): MiniProgramApi {
  const call = createWeChatCall(options);
  return {
    code2Session: (app, jsCode) =>
      call({
        api: 'sns/jscode2session',
        query: {
          appid: app.appid,
          secret: app.secret,
          js_code: new Secret(jsCode),
          grant_type: 'authorization_code',
        },
        idempotent: false,
        read: readJsCodeSession,
      }),

    stableToken: (app, forceRefresh) =>
      call({
        api: 'cgi-bin/stable_token',
        method: 'POST',
        json: {
          grant_type: 'client_credential',
          appid: app.appid,
          secret: app.secret,
          force_refresh: forceRefresh,
        },
        idempotent: !forceRefresh,
        read: readAppToken,
      }),

    checkSession: (accessToken, openid, signature) =>
      call({
        api: 'wxa/checksession',
        query: { access_token: accessToken, openid, signature, sig_method: 'hmac_sha256' },
        idempotent: true,
        read: readErrcodeZero,
      }),

    phoneNumber: (accessToken, code, openid) =>
      call({
        api: 'wxa/business/getuserphonenumber',
        method: 'POST',
        query: { access_token: accessToken },
        json: { code: new Secret(code), openid },
        idempotent: false,
        read: readPhoneInfo,
      }),
  };
}

function readJsCodeSession(body: WireObject): JsCodeSession {
  const sessionKey = requiredString(body, 'session_key');
  // Anything else cannot key AES-128 nor match the data WeChat encrypts with it.
  if (Buffer.from(sessionKey, 'base64').length !== 16 || !/^[A-Za-z0-9+/]{22}==$/.test(sessionKey)) {
    throw new WireShapeError('session_key');
  }
  return {
    openid: requiredString(body, 'openid'),
    sessionKey: new Secret(sessionKey),
    unionid: optionalString(body, 'unionid'),
  };
}

function readAppToken(body: WireObject): AppAccessToken {
  return {
    accessToken: new Secret(requiredString(body, 'access_token')),
    expiresIn: optionalInteger(body, 'expires_in') ?? DEFAULT_EXPIRES_IN,
  };
}

/** checksession states its verdict: an answer without errcode 0 proves nothing. */
function readErrcodeZero(body: WireObject): undefined {
  if (toInteger(body.errcode) !== 0) throw new WireShapeError('errcode');
  return undefined;
}

/** EasyWeChat's rule: errcode 0 without phone_info is not a success. countryCode: string or number (§10.1). */
function readPhoneInfo(body: WireObject): PhoneInfo {
  const info = body.phone_info;
  if (typeof info !== 'object' || info === null || Array.isArray(info))
    throw new WireShapeError('phone_info');
  const phone = info as WireObject;
  const country = phone.countryCode;
  const countryCode =
    typeof country === 'number' && Number.isInteger(country)
      ? String(country)
      : optionalString(phone, 'countryCode');
  if (countryCode === undefined || !/^\d{1,4}$/.test(countryCode)) throw new WireShapeError('countryCode');
  const watermark = phone.watermark as WireObject | undefined;
  const appid = watermark ? optionalString(watermark, 'appid') : undefined;
  const timestamp = watermark ? optionalInteger(watermark, 'timestamp') : undefined;
  return {
    phoneNumber: requiredString(phone, 'phoneNumber'),
    purePhoneNumber: requiredString(phone, 'purePhoneNumber'),
    countryCode,
    watermark: appid !== undefined && timestamp !== undefined ? { appid, timestamp } : undefined,
  };
}
