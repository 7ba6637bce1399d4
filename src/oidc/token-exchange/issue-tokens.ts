import type { Account, KoaContextWithOIDC } from 'oidc-provider';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE } from './constants.ts';

/** RFC 8693 §2.2.1's successful response, plus OpenID Connect's id_token. */
export interface TokenExchangeResponse {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: string;
  expires_in: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
}

/**
 * Run once the exchange's grant is saved, with its id and how many seconds it lives, beside the
 * writes of its tokens: the identity the grant was issued for is remembered this way.
 */
export type OnGrantSaved = (grantId: string, ttlSeconds: number) => Promise<void>;

/**
 * The tokens of one exchange, built the way oidc-provider's own grants build them (lib/actions/grants):
 * a Grant holding the scopes (so refresh, userinfo and revocation treat them like any other), an
 * access token, a refresh token when the client may refresh, and an ID token when openid was asked.
 */
export async function issueExchangeTokens(
  ctx: KoaContextWithOIDC,
  account: Account,
  scopes: Set<string>,
  authTime: number,
  onGrantSaved?: OnGrantSaved,
): Promise<TokenExchangeResponse> {
  const { provider } = ctx.oidc;
  const client = ctx.oidc.client!;
  ctx.oidc.entity('Account', account);

  const grant = new provider.Grant({ clientId: client.clientId, accountId: account.accountId });
  grant.addOIDCScope(scopes);
  await grant.save();
  ctx.oidc.entity('Grant', grant);
  const scope = grant.getOIDCScopeFiltered(scopes);
  const grantId = grant.jti;

  const at = new provider.AccessToken({
    accountId: account.accountId,
    client,
    grantId,
    gty: TOKEN_EXCHANGE_GRANT_TYPE,
    scope,
  });
  ctx.oidc.entity('AccessToken', at);
  const [accessToken] = await Promise.all([
    at.save(),
    onGrantSaved?.(grantId, Math.max(1, grant.remainingTTL)),
  ]);

  let refreshToken: string | undefined;
  if (client.grantTypeAllowed('refresh_token')) {
    const rt = new provider.RefreshToken({
      accountId: account.accountId,
      client,
      grantId,
      gty: TOKEN_EXCHANGE_GRANT_TYPE,
      scope,
      authTime,
      amr: ['wechat'],
      rotations: 0,
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }

  let idToken: string | undefined;
  if (scopes.has('openid')) {
    const claims = await account.claims('id_token', scope, {}, []);
    const token = new provider.IdToken({ ...claims }, { ctx });
    // As oidc-provider's grants do under conformIdTokenClaims (its default): the ID token names
    // the person; profile, phone and WeChat claims come from userinfo with the access token.
    Object.assign(token, { scope: 'openid', mask: {}, rejected: [] });
    token.set('auth_time', authTime);
    idToken = await token.issue({ use: 'idtoken' });
  }

  return {
    access_token: accessToken,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: at.tokenType,
    expires_in: at.expiration,
    ...(scope ? { scope } : {}),
    ...(idToken ? { id_token: idToken } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}
