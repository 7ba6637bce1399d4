import { createHmac } from 'node:crypto';
import { CODE_TTL_MS, type Outcome } from './grants.ts';
import { randomAlnum, randomToken } from './ids.ts';
import { SandboxInputError } from './input-error.ts';
import {
  encryptOpenData,
  newSessionKey,
  rawDataSignature,
  sessionKeySignature,
} from './mini-program-crypto.ts';
import type { SandboxState } from './state.ts';
import type { SandboxApp } from './types.ts';
import type { SandboxUser } from './users.ts';

/**
 * How long a session key lives. WeChat does not say (§8: "the more the person uses the mini program,
 * the longer"); a staff reply once said three days. A wx.login after expiry always gets a new key.
 */
export const SESSION_KEY_TTL_MS = 3 * 24 * 3600_000;
/** A wx.login rotates the key only when it is at least this old ("refresh has a minimum period"), unless forced. */
export const SESSION_KEY_MIN_AGE_MS = 24 * 3600_000;
/** getPhoneNumber codes: single use, 5 minutes (§10.1). */
export const PHONE_CODE_TTL_MS = 5 * 60_000;
/** App access tokens: 7200 s; stable_token pre-rotates 5 minutes before expiry (§11). */
export const APP_TOKEN_TTL_S = 7200;
export const APP_TOKEN_OVERLAP_S = 300;
/** force_refresh: at least 30 s apart (else nothing happens), at most 20 a day (§11). */
export const FORCE_REFRESH_MIN_GAP_MS = 30_000;
export const FORCE_REFRESH_PER_DAY = 20;

interface SessionKey {
  key: string;
  issuedAt: number;
  expiresAt: number;
}

interface JsCode {
  appid: string;
  userId: string;
  expiresAt: number;
  used: boolean;
}

interface PhoneCode {
  appid: string;
  userId: string;
  phone: SandboxPhone;
  expiresAt: number;
  used: boolean;
}

interface AppToken {
  token: string;
  expiresAt: number;
}

interface AppTokens {
  current: AppToken;
  /** Still valid until its own expiry after a normal pre-rotation; dropped by force_refresh. */
  previous: AppToken | undefined;
  forced: number[];
}

/** A fake person's phone as getuserphonenumber reports it. */
export interface SandboxPhone {
  countryCode: string;
  purePhoneNumber: string;
}

/** jscode2session's success. */
export interface JsCodeSessionBody {
  openid: string;
  session_key: string;
  unionid?: string;
}

/** What wx.getUserInfo({ withCredentials: true }) hands the mini program. */
export interface EncryptedUserData {
  encryptedData: string;
  iv: string;
  rawData: string;
  signature: string;
}

export interface UserDataOptions {
  /** Encrypt this object instead of the person's profile; the watermark is added unless it has one. */
  data?: Record<string, unknown>;
  /** Watermark overrides, for trying the bridge's checks. */
  watermark?: { appid?: string; timestamp?: number };
}

/**
 * The mini-program side of WeChat (§8-§11): wx.login codes and the session key behind them, the
 * session-key APIs, encrypted open data, phone codes and app access tokens. All in memory, with the
 * sandbox's clock.
 */
export class MiniProgramSandbox {
  readonly #state: SandboxState;
  readonly #sessions = new Map<string, SessionKey>();
  readonly #jsCodes = new Map<string, JsCode>();
  readonly #phoneCodes = new Map<string, PhoneCode>();
  readonly #appTokens = new Map<string, AppTokens>();

  constructor(state: SandboxState) {
    this.#state = state;
  }

  /**
   * wx.login(): a code for this person. The session key is replaced when there is none, it expired,
   * it is older than SESSION_KEY_MIN_AGE_MS, or `rotate` asks for it (another device, say).
   */
  login(appid: string, userId: string, options: { rotate?: boolean } = {}): string {
    const { app } = this.#appAndUser(appid, userId);
    const now = this.#state.now();
    const session = this.#sessions.get(sessionId(app.appid, userId));
    if (
      options.rotate ||
      !session ||
      now >= session.expiresAt ||
      now - session.issuedAt >= SESSION_KEY_MIN_AGE_MS
    ) {
      this.#rotate(app.appid, userId);
    }
    const code = randomAlnum(32);
    this.#jsCodes.set(code, {
      appid: app.appid,
      userId,
      expiresAt: now + CODE_TTL_MS.mini_program,
      used: false,
    });
    return code;
  }

  /** Replaces the person's session key without a code (the old one stops working at once). */
  resetSession(appid: string, userId: string): void {
    const { app } = this.#appAndUser(appid, userId);
    this.#rotate(app.appid, userId);
  }

  /** Ends the session key now, as its expiry would. */
  expireSession(appid: string, userId: string): void {
    this.#sessions.delete(sessionId(appid, userId));
  }

  /** wx.checkSession(): whether the key of the last wx.login is still alive (checked client-side, §8). */
  checkSessionClientSide(appid: string, userId: string): boolean {
    return this.#liveSession(appid, userId) !== undefined;
  }

  /** sns/jscode2session: 40029 unknown, expired or another app's code; 40163 once used. */
  exchange(code: string, app: SandboxApp): Outcome<JsCodeSessionBody> {
    const grant = this.#jsCodes.get(code);
    const now = this.#state.now();
    if (!grant || grant.appid !== app.appid || now >= grant.expiresAt) return { ok: false, errcode: 40029 };
    if (grant.used) return { ok: false, errcode: 40163 };
    grant.used = true;
    const user = this.#state.getUser(grant.userId);
    const session = this.#liveSession(app.appid, grant.userId);
    if (!user || !session) return { ok: false, errcode: 40029 };
    return {
      ok: true,
      value: {
        openid: this.#state.openid(app.appid, user.id),
        session_key: session.key,
        ...(this.#state.isBound(app) ? { unionid: user.unionid } : {}),
      },
    };
  }

  /** wxa/checksession: 0 for the current key's signature, 87009 otherwise, 87008 for another method. */
  checkSignature(app: SandboxApp, openid: string, signature: string, sigMethod: string | undefined): number {
    if (sigMethod !== 'hmac_sha256') return 87008;
    const user = this.userByOpenid(app.appid, openid);
    if (!user) return 40003;
    const session = this.#liveSession(app.appid, user.id);
    if (!session) return 87009;
    return sessionKeySignature(session.key) === signature ? 0 : 87009;
  }

  /**
   * What wx.getUserInfo({ withCredentials: true }) returns: the profile (or `data`) encrypted with
   * the current session key, watermarked, plus rawData and its signature.
   */
  encryptUserData(
    appid: string,
    userId: string,
    origin: string,
    options: UserDataOptions = {},
  ): EncryptedUserData {
    const { app, user } = this.#appAndUser(appid, userId);
    const session = this.#liveSession(app.appid, userId);
    if (!session) throw new SandboxInputError('this user has no live session key: call wx.login first');
    const profile = {
      nickName: user.nickname,
      gender: 0,
      language: user.language,
      city: '',
      province: '',
      country: '',
      avatarUrl: this.#state.avatarUrl(user, origin, 132),
    };
    const watermark = {
      timestamp: options.watermark?.timestamp ?? Math.floor(this.#state.now() / 1000),
      appid: options.watermark?.appid ?? app.appid,
    };
    const plain = options.data
      ? { ...options.data, watermark: options.data.watermark ?? watermark }
      : {
          openId: this.#state.openid(app.appid, user.id),
          ...profile,
          ...(this.#state.isBound(app) ? { unionId: user.unionid } : {}),
          watermark,
        };
    const rawData = JSON.stringify(profile);
    return {
      ...encryptOpenData(session.key, JSON.stringify(plain)),
      rawData,
      signature: rawDataSignature(rawData, session.key),
    };
  }

  /** The person's phone: given, or one derived from the seed (a mainland mobile number). */
  phoneOf(userId: string): SandboxPhone {
    const digits = createHmac('sha256', this.#state.seed).update(`phone:${userId}`).digest().readUInt32BE(0);
    return { countryCode: '86', purePhoneNumber: `13${String(digits % 1_000_000_000).padStart(9, '0')}` };
  }

  /** A getPhoneNumber button's code (a different code from wx.login's, §10.1). */
  issuePhoneCode(appid: string, userId: string, phone?: SandboxPhone): string {
    const { app } = this.#appAndUser(appid, userId);
    if (phone && (!/^\d{1,4}$/.test(phone.countryCode) || !/^\d{4,14}$/.test(phone.purePhoneNumber))) {
      throw new SandboxInputError('countryCode must be 1-4 digits and purePhoneNumber 4-14 digits');
    }
    const code = randomAlnum(64).toLowerCase();
    this.#phoneCodes.set(code, {
      appid: app.appid,
      userId,
      phone: phone ?? this.phoneOf(userId),
      expiresAt: this.#state.now() + PHONE_CODE_TTL_MS,
      used: false,
    });
    return code;
  }

  /** wxa/business/getuserphonenumber: 40029 for a bad, expired, reused or foreign code; 40003 openid mismatch. */
  exchangePhoneCode(
    code: string,
    app: SandboxApp,
    openid: string | undefined,
  ): Outcome<Record<string, unknown>> {
    const grant = this.#phoneCodes.get(code);
    const now = this.#state.now();
    if (!grant || grant.appid !== app.appid || grant.used || now >= grant.expiresAt) {
      return { ok: false, errcode: 40029 };
    }
    if (openid !== undefined && this.#state.openid(app.appid, grant.userId) !== openid) {
      return { ok: false, errcode: 40003 };
    }
    grant.used = true;
    const { countryCode, purePhoneNumber } = grant.phone;
    return {
      ok: true,
      value: {
        phoneNumber: countryCode === '86' ? purePhoneNumber : `+${countryCode}${purePhoneNumber}`,
        purePhoneNumber,
        // A number, as in the official example (the field table says string: §10.1, §14.8).
        countryCode: Number(countryCode),
        watermark: { timestamp: Math.floor(now / 1000), appid: app.appid },
      },
    };
  }

  /**
   * cgi-bin/stable_token (§11): the same token while it has more than 5 minutes left, then a new one
   * (the old one stays valid to its end); force_refresh replaces it at once, at most once per 30 s
   * (a sooner one changes nothing) and 20 times a day (then 45009).
   */
  stableToken(app: SandboxApp, forceRefresh: boolean): Outcome<{ access_token: string; expires_in: number }> {
    const now = this.#state.now();
    let tokens = this.#appTokens.get(app.appid);
    if (!tokens || now >= tokens.current.expiresAt) {
      tokens = { current: newAppToken(now), previous: undefined, forced: tokens?.forced ?? [] };
      this.#appTokens.set(app.appid, tokens);
    } else if (forceRefresh) {
      tokens.forced = tokens.forced.filter((at) => now - at < 24 * 3600_000);
      const last = tokens.forced.at(-1);
      if (tokens.forced.length >= FORCE_REFRESH_PER_DAY) return { ok: false, errcode: 45009 };
      if (last === undefined || now - last >= FORCE_REFRESH_MIN_GAP_MS) {
        tokens.forced.push(now);
        tokens.current = newAppToken(now);
        tokens.previous = undefined;
      }
    } else if (tokens.current.expiresAt - now <= APP_TOKEN_OVERLAP_S * 1000) {
      tokens.previous = tokens.current;
      tokens.current = newAppToken(now);
    }
    return {
      ok: true,
      value: {
        access_token: tokens.current.token,
        expires_in: Math.ceil((tokens.current.expiresAt - now) / 1000),
      },
    };
  }

  /** The app an app access token belongs to: 40001 unknown or replaced, 42001 expired. */
  checkAppToken(token: string): Outcome<string> {
    const now = this.#state.now();
    for (const [appid, tokens] of this.#appTokens) {
      for (const candidate of [tokens.current, tokens.previous]) {
        if (candidate?.token !== token) continue;
        return now < candidate.expiresAt ? { ok: true, value: appid } : { ok: false, errcode: 42001 };
      }
    }
    return { ok: false, errcode: 40001 };
  }

  /** Makes every app access token of this app invalid, as another party's force_refresh would. */
  revokeAppTokens(appid: string): void {
    this.#appTokens.delete(appid);
  }

  userByOpenid(appid: string, openid: string): SandboxUser | undefined {
    return this.#state.listUsers().find((user) => this.#state.openid(appid, user.id) === openid);
  }

  #liveSession(appid: string, userId: string): SessionKey | undefined {
    const session = this.#sessions.get(sessionId(appid, userId));
    return session && this.#state.now() < session.expiresAt ? session : undefined;
  }

  #rotate(appid: string, userId: string): void {
    const now = this.#state.now();
    this.#sessions.set(sessionId(appid, userId), {
      key: newSessionKey(),
      issuedAt: now,
      expiresAt: now + SESSION_KEY_TTL_MS,
    });
  }

  #appAndUser(appid: string, userId: string): { app: SandboxApp; user: SandboxUser } {
    const app = this.#state.app(appid);
    if (app?.kind !== 'mini_program') throw new SandboxInputError(`no mini_program app ${appid}`);
    const user = this.#state.getUser(userId);
    if (!user) throw new SandboxInputError(`unknown user ${userId}`);
    return { app, user };
  }
}

function sessionId(appid: string, userId: string): string {
  return `${appid}:${userId}`;
}

function newAppToken(now: number): AppToken {
  return { token: randomToken(), expiresAt: now + APP_TOKEN_TTL_S * 1000 };
}
