import type { Context } from 'koa';
import type { UpstreamError } from '../upstream/wechat/types.ts';
import type { UserDataError, UserDataProblem } from './user-data.ts';

/** Why a call to a mini-program endpoint was refused; each is documented in the README (Mini program integration). */
export type MiniProgramErrorCode =
  | 'invalid_token'
  | 'invalid_request'
  /** Each way encrypted user data can be refused (user-data.ts). */
  | UserDataProblem
  | 'identity_mismatch'
  | 'invalid_phone_code'
  | 'wx_login_required'
  | 'temporarily_unavailable'
  | 'server_error';

/** Why the mini program has to call wx.login() again. */
export type ReloginReason = 'session_key_missing' | 'session_key_stale' | 'identity_missing';

/**
 * A refused call, answered as JSON `{ error, error_description, field?, reason? }` (the shape of an
 * OAuth error, so one error handler in the mini program serves the token endpoint too).
 * Descriptions are ours: never WeChat's errmsg, never a code, token or key.
 */
export class MiniProgramError extends Error {
  override readonly name = 'MiniProgramError';
  readonly status: number;
  readonly code: MiniProgramErrorCode;
  readonly field: string | undefined;
  readonly reason: ReloginReason | undefined;
  /** Seconds, for Retry-After. */
  readonly retryAfter: number | undefined;
  /** A 401 for a request that sent no bearer token at all (RFC 6750 §3.1: no error in the challenge). */
  readonly noCredentials: boolean;

  constructor(
    status: number,
    code: MiniProgramErrorCode,
    description: string,
    extra: { field?: string; reason?: ReloginReason; retryAfter?: number; noCredentials?: boolean } = {},
  ) {
    super(description);
    this.status = status;
    this.code = code;
    this.field = extra.field;
    this.reason = extra.reason;
    this.retryAfter = extra.retryAfter;
    this.noCredentials = extra.noCredentials ?? false;
  }
}

const USER_DATA_DESCRIPTIONS: Record<UserDataError['problem'], string> = {
  invalid_base64:
    'is not standard base64 (A-Z a-z 0-9 + / with = padding); send it as WeChat gave it, in a JSON body',
  invalid_length:
    'has the wrong length: iv must decode to 16 bytes, encryptedData to a non-empty multiple of 16',
  undecryptable:
    "does not decrypt with the session key of the last wx.login to WeChat's data (a JSON object with a watermark): damaged, altered, or from another session",
  watermark_appid_mismatch: 'was produced for another mini program (watermark.appid)',
  watermark_stale:
    "is too old, or dated ahead of this server's clock (watermark.timestamp): get fresh data from WeChat and send it at once",
  signature_mismatch: 'is not sha1(rawData + session_key): rawData was altered or belongs to another session',
};

export function userDataError(error: UserDataError): MiniProgramError {
  const field = error.field ?? 'encryptedData';
  return new MiniProgramError(400, error.problem, `${field} ${USER_DATA_DESCRIPTIONS[error.problem]}`, {
    field,
  });
}

export function reloginRequired(reason: ReloginReason): MiniProgramError {
  const why: Record<ReloginReason, string> = {
    session_key_missing: 'the server holds no WeChat session key for this person any more',
    session_key_stale:
      'WeChat no longer accepts the session key the server holds (a newer wx.login replaced it, or it expired)',
    identity_missing: 'the server knows no identity of this person in this mini program',
  };
  return new MiniProgramError(
    400,
    'wx_login_required',
    `${why[reason]}: call wx.login() and exchange the new code at the token endpoint, then retry`,
    { reason },
  );
}

/**
 * WeChat's answer to a mini-program call, as the endpoint's answer (config errors are logged by the
 * caller). `whatNext` tells the mini program what to do when WeChat is busy or silent: the phone
 * number's code may have been spent by then, so retrying it cannot help.
 */
export function upstreamFailure(error: UpstreamError, whatNext = 'retry shortly'): MiniProgramError {
  switch (error.code) {
    case 'rate_limited':
      return new MiniProgramError(
        503,
        'temporarily_unavailable',
        'WeChat is rate limiting this mini program',
        { retryAfter: error.retryAfterSeconds() },
      );
    case 'unavailable':
      return new MiniProgramError(
        503,
        'temporarily_unavailable',
        // -1 is WeChat's own "system busy"; the rest never came (a timeout, a 5xx, an empty body).
        `${error.errcode === -1 ? 'WeChat answered that it is busy (errcode -1)' : 'WeChat did not answer'}; ${whatNext}`,
        { retryAfter: error.retryAfterSeconds() },
      );
    case 'unexpected':
      return new MiniProgramError(
        500,
        'server_error',
        'WeChat answered in a form this server cannot use; the server log says why',
      );
    default:
      return new MiniProgramError(500, 'server_error', 'WeChat refused the call; the server log says why');
  }
}

export function sendError(ctx: Context, error: MiniProgramError): void {
  ctx.status = error.status;
  // A request without a token is told only which scheme to use; one with a bad token, what is wrong.
  if (error.status === 401) {
    ctx.set('WWW-Authenticate', error.noCredentials ? 'Bearer' : 'Bearer error="invalid_token"');
  }
  if (error.retryAfter !== undefined) ctx.set('Retry-After', String(error.retryAfter));
  ctx.body = {
    error: error.code,
    error_description: error.message,
    ...(error.field === undefined ? {} : { field: error.field }),
    ...(error.reason === undefined ? {} : { reason: error.reason }),
  };
}
