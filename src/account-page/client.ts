import type { ClientConfig } from '../config/types.ts';

/** Reserved: configured clients must not use this id. */
export const ACCOUNT_PAGE_CLIENT_ID = 'account-page';

/**
 * The account page logs people in as a first-party client of this provider (no consent page),
 * through the same /auth and the same WeChat flows as any relying party. It never redeems its code
 * at the token endpoint: the page reads oidc-provider's own session, so it is a public client with
 * only the authorization_code grant and no tokens to keep.
 */
export function accountPageClient(issuer: string): ClientConfig {
  return {
    client_id: ACCOUNT_PAGE_CLIENT_ID,
    client_name: '账号管理 Account',
    first_party: true,
    token_endpoint_auth_method: 'none',
    redirect_uris: [`${issuer}/account/callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  };
}
