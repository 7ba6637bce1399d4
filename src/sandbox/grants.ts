import { randomAlnum, randomToken } from './ids.ts';
import type { SandboxAppKind } from './types.ts';

/** Code lifetimes (§2, §3, §8): 10 minutes for website QR login, 5 for Official Accounts and mini programs. */
export const CODE_TTL_MS: Record<SandboxAppKind, number> = {
  website: 10 * 60_000,
  official_account: 5 * 60_000,
  mini_program: 5 * 60_000,
};
export const ACCESS_TOKEN_TTL_S = 7200;
export const REFRESH_TOKEN_TTL_MS = 30 * 24 * 3600_000;
const SWEEP_INTERVAL_MS = 60_000;

export interface CodeGrant {
  appid: string;
  userId: string;
  scope: string;
  expiresAt: number;
  used: boolean;
  /** Issued on the snapshot page (§3.1): its token is a virtual account's. */
  snapshot?: boolean;
}

/** One user authorization of one app: a user access token and its refresh token (§4, §5). */
export interface UserToken {
  accessToken: string;
  refreshToken: string;
  appid: string;
  userId: string;
  scope: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
  /** A snapshot-page virtual account's token: virtual ids, userinfo refused (48001). */
  snapshot?: boolean;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; errcode: number };

const fail = (errcode: number): { ok: false; errcode: number } => ({ ok: false, errcode });

/** Codes and user tokens, in memory. Decisions are WeChat's errcodes, so routes only serialise them. */
export class GrantStore {
  readonly #codes = new Map<string, CodeGrant>();
  readonly #byAccess = new Map<string, UserToken>();
  readonly #byRefresh = new Map<string, UserToken>();
  #lastSweep = Number.NEGATIVE_INFINITY;

  issueCode(
    grant: { appid: string; userId: string; scope: string; kind: SandboxAppKind; snapshot?: boolean },
    now: number,
  ): string {
    this.#sweep(now);
    const code = randomAlnum(32);
    this.#codes.set(code, {
      appid: grant.appid,
      userId: grant.userId,
      scope: grant.scope,
      expiresAt: now + CODE_TTL_MS[grant.kind],
      used: false,
      ...(grant.snapshot ? { snapshot: true } : {}),
    });
    return code;
  }

  /** 40029 for unknown, expired or another app's code; 40163 once it has been used. */
  exchangeCode(code: string, appid: string, now: number): Outcome<UserToken> {
    const grant = this.#codes.get(code);
    if (!grant || grant.appid !== appid || now >= grant.expiresAt) return fail(40029);
    if (grant.used) return fail(40163);
    grant.used = true;
    const token: UserToken = {
      accessToken: randomToken(),
      refreshToken: randomToken(),
      appid,
      userId: grant.userId,
      scope: grant.scope,
      accessExpiresAt: now + ACCESS_TOKEN_TTL_S * 1000,
      refreshExpiresAt: now + REFRESH_TOKEN_TTL_MS,
      ...(grant.snapshot ? { snapshot: true } : {}),
    };
    this.#byAccess.set(token.accessToken, token);
    this.#byRefresh.set(token.refreshToken, token);
    return { ok: true, value: token };
  }

  /**
   * §5: an unexpired access token is kept and its expiry extended; an expired one is
   * replaced. The refresh token keeps its 30 days ("无法续期").
   */
  refresh(refreshToken: string, appid: string, now: number): Outcome<UserToken> {
    const token = this.#byRefresh.get(refreshToken);
    if (!token || token.appid !== appid) return fail(40030);
    if (now >= token.refreshExpiresAt) return fail(42002);
    if (now >= token.accessExpiresAt) {
      this.#byAccess.delete(token.accessToken);
      token.accessToken = randomToken();
      this.#byAccess.set(token.accessToken, token);
    }
    token.accessExpiresAt = now + ACCESS_TOKEN_TTL_S * 1000;
    return { ok: true, value: token };
  }

  /** 40001 for an unknown (or replaced) token, 42001 for an expired one. */
  checkAccessToken(accessToken: string, now: number): Outcome<UserToken> {
    const token = this.#byAccess.get(accessToken);
    if (!token) return fail(40001);
    if (now >= token.accessExpiresAt) return fail(42001);
    return { ok: true, value: token };
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_INTERVAL_MS) return;
    this.#lastSweep = now;
    for (const [code, grant] of this.#codes) if (now >= grant.expiresAt) this.#codes.delete(code);
    for (const token of this.#byRefresh.values()) {
      if (now < token.refreshExpiresAt) continue;
      this.#byRefresh.delete(token.refreshToken);
      this.#byAccess.delete(token.accessToken);
    }
  }
}
