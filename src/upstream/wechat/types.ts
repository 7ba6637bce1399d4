import type { Secret } from '../../config/secret.ts';

export type WeChatAppKind = 'website' | 'official_account' | 'mini_program';

/** One configured WeChat app; the secret is resolved at startup and never printed. */
export interface WeChatApp {
  kind: WeChatAppKind;
  appid: string;
  /** Human name shown on pages (account page, errors); defaults to the appid. */
  name: string;
  secret: Secret;
  /**
   * official_account apps only: which scope a login inside WeChat asks for. Absent for other kinds;
   * for official accounts the config fills in its default, base_then_userinfo.
   */
  scopePolicy?: OfficialAccountScopePolicy | undefined;
}

/**
 * base_then_userinfo: a silent snsapi_base trip first; snsapi_userinfo (a consent screen) only when
 * the person is not known yet or their account lacks a unionid or a profile.
 * userinfo: always snsapi_userinfo.
 */
export type OfficialAccountScopePolicy = 'base_then_userinfo' | 'userinfo';

/** The two scopes of the Official Account web authorization (wechat-api.md §3). */
export type OfficialAccountScope = 'snsapi_base' | 'snsapi_userinfo';

/** Profile fields as WeChat gives them, normalised (blank strings become undefined). */
export interface WeChatProfile {
  nickname?: string | undefined;
  /** headimgurl / avatarUrl; undefined when the person has none. */
  avatarUrl?: string | undefined;
  /** 0 unknown, 1 male, 2 female. Always 0 since 2021; kept for completeness. */
  sex?: number | undefined;
  language?: string | undefined;
}

/**
 * What a connector returns after a successful upstream login (dex's "connector
 * identity"). The interaction layer decides what to do with it; connectors never
 * touch sessions or storage.
 */
export interface WeChatIdentity {
  kind: WeChatAppKind;
  appid: string;
  openid: string;
  /** Absent when the app is not bound to an Open Platform account (or for snsapi_base). */
  unionid?: string | undefined;
  profile?: WeChatProfile | undefined;
  /** WeChat's snapshot-page virtual account (is_snapshotuser: 1): never a real person. */
  snapshotUser: boolean;
}

/**
 * Why an upstream call failed, as a closed set the edges translate:
 * the interaction layer into a page, the token endpoint into an OAuth error.
 */
export type UpstreamErrorCode =
  /** 40029, 42003: the code is wrong, expired or issued to another app. */
  | 'code_invalid'
  /** 40163: the code was already exchanged. */
  | 'code_used'
  /** 40030, 42002, 42007: the refresh token is no longer valid. */
  | 'refresh_token_invalid'
  /** 40001, 40014, 42001, 40003: an access token (user or app) is invalid or expired. */
  | 'token_invalid'
  /** 48001, 50001: the token's scope does not allow the call (for example snsapi_base -> userinfo). */
  | 'scope_insufficient'
  /** The app returned no unionid: it is not bound to an Open Platform account. */
  | 'unionid_missing'
  /** 40226: WeChat's risk control blocked this user; 50002: WeChat restricts their account. */
  | 'blocked'
  /** 45009, 45011: quota or rate limit. */
  | 'rate_limited'
  /**
   * 40013, 40125, 40164, 61004, 40243, 41002, 41004, 48004, and 40001 on a call that sent the
   * AppSecret (a wrong secret): our app configuration is wrong.
   */
  | 'app_config'
  /** 87009: the session_key signature does not match. */
  | 'signature_invalid'
  /** -1, timeouts, connection errors, HTTP 5xx, empty or non-JSON bodies. */
  | 'unavailable'
  /** Anything else WeChat answered with a non-zero errcode, or a body missing required fields. */
  | 'unexpected';

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;
  /** WeChat's errcode when it gave one. errmsg is deliberately not kept: it can echo inputs. */
  readonly errcode: number | undefined;
  /** Which WeChat API failed, e.g. "sns/oauth2/access_token" (never a URL: URLs carry secrets). */
  readonly api: string;
  /**
   * What was wrong with an answer that carried no errcode (an HTTP status, a body that is not JSON,
   * a missing field), or why no answer came: names and numbers only, never a value from it.
   */
  readonly detail: string | undefined;

  constructor(
    code: UpstreamErrorCode,
    api: string,
    errcode?: number,
    options: { cause?: unknown; detail?: string } = {},
  ) {
    super(
      `WeChat ${api} failed: ${code}${errcode === undefined ? '' : ` (errcode ${errcode})`}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.api = api;
    this.errcode = errcode;
    this.detail = options.detail;
  }

  /** WeChat down or rate limiting: a passing state, not the caller's doing (a 503 and a warning). */
  get transient(): boolean {
    return this.code === 'unavailable' || this.code === 'rate_limited';
  }

  /**
   * How long a caller should wait before trying again, for Retry-After; undefined when waiting will
   * not help. 45011 is WeChat's per-minute quota ("retry next minute"); 45009 its daily quota, which
   * starts again at midnight China time (UTC+8, no daylight saving); -1, timeouts and 5xx are
   * usually momentary.
   */
  retryAfterSeconds(now: Date = new Date()): number | undefined {
    if (this.code === 'unavailable') return 5;
    if (this.code !== 'rate_limited') return undefined;
    if (this.errcode !== 45009) return 60;
    const day = 86_400_000;
    const china = 8 * 3_600_000;
    const untilMidnight = day - ((now.getTime() + china) % day);
    return Math.max(60, Math.ceil(untilMidnight / 1000));
  }

  /**
   * What a log line says of this failure (no secret: see `errcode` and `detail`). The kind goes
   * under `failure`: the logger redacts every field named `code`, which is WeChat's login code.
   */
  logFields(): { api: string; failure: UpstreamErrorCode; errcode?: number; detail?: string } {
    return {
      api: this.api,
      failure: this.code,
      ...(this.errcode === undefined ? {} : { errcode: this.errcode }),
      ...(this.detail === undefined ? {} : { detail: this.detail }),
    };
  }
}
