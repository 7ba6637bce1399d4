import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { ACCESS_TOKEN_TYPE, JS_CODE_TOKEN_TYPE } from './constants.ts';

/** Every parameter RFC 8693 defines, so that the ones we do not support are refused rather than dropped. */
export const TOKEN_EXCHANGE_PARAMETERS = [
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'scope',
  'audience',
  'resource',
  'actor_token',
  'actor_token_type',
] as const;

export interface TokenExchangeRequest {
  /** The wx.login code. */
  jsCode: string;
  /** Scopes to grant, already checked against the client's registration. */
  scopes: Set<string>;
}

type Params = Partial<Record<(typeof TOKEN_EXCHANGE_PARAMETERS)[number], unknown>>;

/**
 * Reads and checks an exchange request (RFC 8693 §2.1). `supportedScopes` are the provider's; a
 * client that registered `scope` may ask only for those. Without `scope` the client's registered
 * scopes are granted, or just openid.
 */
export function readTokenExchangeRequest(
  ctx: KoaContextWithOIDC,
  supportedScopes: ReadonlySet<string>,
): TokenExchangeRequest {
  const params = ctx.oidc.params as Params;
  const text = (name: keyof Params): string | undefined => {
    const value = params[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };

  const jsCode = text('subject_token');
  if (jsCode === undefined) throw new errors.InvalidRequest('missing required parameter(s) (subject_token)');
  const subjectType = text('subject_token_type');
  if (subjectType === undefined) {
    throw new errors.InvalidRequest('missing required parameter(s) (subject_token_type)');
  }
  if (subjectType !== JS_CODE_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported subject_token_type: only ${JS_CODE_TOKEN_TYPE} is accepted`);
  }
  const requested = text('requested_token_type');
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported requested_token_type: only ${ACCESS_TOKEN_TYPE} is issued`);
  }
  if (text('actor_token') !== undefined || text('actor_token_type') !== undefined) {
    throw new errors.InvalidRequest('delegation (actor_token) is not supported');
  }
  if (params.audience !== undefined || params.resource !== undefined) {
    // The only audience is this provider's own userinfo and the mini-program endpoints.
    throw new errors.InvalidTarget('audience and resource are not supported for this exchange');
  }
  if (ctx.get('dpop')) throw new errors.InvalidRequest('DPoP is not supported for this grant');

  return { jsCode, scopes: grantedScopes(ctx, supportedScopes, text('scope')) };
}

function grantedScopes(
  ctx: KoaContextWithOIDC,
  supported: ReadonlySet<string>,
  requested: string | undefined,
): Set<string> {
  const registered = ctx.oidc.client?.scope?.split(' ').filter(Boolean);
  const asked = requested?.split(' ').filter(Boolean) ?? registered ?? ['openid'];
  const allowed = registered ? new Set(registered) : supported;
  const refused = asked.filter((scope) => supported.has(scope) && !allowed.has(scope));
  if (refused.length > 0) {
    throw new errors.InvalidScope('requested scope is not allowed for this client', refused.join(' '));
  }
  // Unknown scopes are ignored, as oidc-provider does at the authorization endpoint.
  return new Set(asked.filter((scope) => supported.has(scope)));
}
