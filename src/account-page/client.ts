import type { ClientConfig } from '../config/types.ts';
import { LANGS, type Lang, type Translate } from '../i18n/messages.ts';

/** Reserved: configured clients must not use this id. */
export const ACCOUNT_PAGE_CLIENT_ID = 'account-page';

/**
 * How a client is named on pages: its registered client_name, else its client_id. The account page,
 * ours, is named in the page's language rather than by its one bilingual client_name.
 */
export function clientDisplayName(
  client: { clientId: string; clientName?: string | undefined },
  t: Translate,
): string {
  if (client.clientId === ACCOUNT_PAGE_CLIENT_ID) return t('account.clientName');
  return client.clientName ?? client.clientId;
}

/**
 * Where oidc-provider's logout (/session/end) returns the account page's "Log out", in the page's
 * language: one registered URI per language, since oidc-provider compares them whole.
 */
export function accountLoggedOutUri(issuer: string, lang: Lang): string {
  return `${issuer}/account/logged-out?lang=${lang}`;
}

/**
 * The account page logs people in as a first-party client of this provider (no consent page),
 * through the same /auth and the same WeChat flows as any relying party. It never redeems its code
 * at the token endpoint: the page reads oidc-provider's own session, so it is a public client with
 * only the authorization_code grant and no tokens to keep. It logs out through oidc-provider's
 * RP-initiated logout, which comes back to /account/logged-out.
 */
export function accountPageClient(issuer: string): ClientConfig {
  return {
    client_id: ACCOUNT_PAGE_CLIENT_ID,
    client_name: '账号管理 Account',
    first_party: true,
    token_endpoint_auth_method: 'none',
    redirect_uris: [`${issuer}/account/callback`],
    post_logout_redirect_uris: LANGS.map((lang) => accountLoggedOutUri(issuer, lang)),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  };
}
