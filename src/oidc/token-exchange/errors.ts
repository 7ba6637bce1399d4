import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { UpstreamError } from '../../upstream/wechat/types.ts';
import { loggedAlready } from '../logged-errors.ts';

/** An OAuth error whose description is meant for the mini program's developer (never an errmsg or a code). */
export function describedError(error: string, description: string, status = 400): errors.OIDCProviderError {
  const thrown = new errors.CustomOIDCProviderError(error, description);
  thrown.status = status;
  thrown.statusCode = status;
  return thrown;
}

/**
 * The token endpoint's answer to a failed sns/jscode2session: a wx.login code WeChat refuses is an
 * invalid subject_token, which RFC 8693 §2.2.2 answers with invalid_request (not RFC 6749's
 * invalid_grant); WeChat's rate limits and outages are temporary; our configuration is a server
 * error. Retry-After goes on the response before the error is thrown; oidc-provider's
 * error handler keeps headers.
 */
export function tokenErrorForUpstream(ctx: KoaContextWithOIDC, error: UpstreamError): Error {
  switch (error.code) {
    case 'code_invalid':
      return describedError(
        'invalid_request',
        'the wx.login code is invalid, expired or was issued to another mini program: call wx.login() again',
      );
    case 'code_used':
      return describedError('invalid_request', 'the wx.login code was already used: call wx.login() again');
    case 'blocked':
      return describedError(
        'invalid_request',
        `WeChat's risk control refused this login (errcode ${error.errcode}: ${error.errcode === 50002 ? 'a restricted account' : 'a risky login'}); do not retry: tell the person WeChat refused the login, which they may try again later`,
      );
    case 'rate_limited':
      ctx.set('Retry-After', String(error.retryAfterSeconds()));
      return describedError(
        'temporarily_unavailable',
        'WeChat is rate limiting logins for this mini program; retry after the time Retry-After gives',
        503,
      );
    case 'unavailable':
      ctx.set('Retry-After', String(error.retryAfterSeconds()));
      return describedError(
        'temporarily_unavailable',
        'WeChat did not answer; call wx.login() again and retry (a wx.login code may be spent)',
        503,
      );
    default:
      // Our configuration (AppSecret, IP allowlist) or an answer we cannot use: nothing the client
      // can fix. The grant logged it (grant.ts): the engine's server_error line is not repeated.
      // Said as such, where the engine's own 500 says "oops! something went wrong" (a mini-program
      // team's review): the mini program can tell the person it is not their doing.
      return loggedAlready(
        describedError(
          'server_error',
          error.code === 'app_config'
            ? "WeChat refused this server's own credentials for the mini program: an administrator must fix its configuration (the server log says why); retrying will not help"
            : 'WeChat answered in a form this server cannot use; the server log says why',
          500,
        ),
      );
  }
}
