import { type Client, errors, type KoaContextWithOIDC } from 'oidc-provider';

/** Our client metadata extra: PKCE on every authorization request, even a confidential client's. */
export const REQUIRE_PKCE_METADATA = 'require_pkce';

/**
 * oidc-provider asks this when an authorization request for a code carries no code_challenge.
 * What protects a code from being injected into another browser's session (RFC 9700 section 2.1.1):
 *
 * - a public client has nothing but PKCE: always required;
 * - a confidential OpenID Connect client may bind the code with `nonce` instead, which comes back
 *   in the ID token it checks. Debian's mod_auth_openidc and authlib, as they come, send a nonce
 *   and no PKCE; refusing them would turn away standard relying parties for no gain in safety;
 * - a request with neither (plain OAuth, or no nonce) is refused, naming what would do;
 * - `require_pkce: true` on a client asks PKCE of it whatever it sends.
 *
 * A token request with a code_verifier for a code issued without a challenge is refused by
 * oidc-provider itself (no PKCE downgrade).
 */
export function pkceRequired(ctx: KoaContextWithOIDC, client: Client): boolean {
  if (client.clientAuthMethod === 'none' || client[REQUIRE_PKCE_METADATA] === true) return true;
  const { nonce, scope } = ctx.oidc.params as { nonce?: unknown; scope?: unknown };
  const openid = typeof scope === 'string' && scope.split(' ').includes('openid');
  if (openid && typeof nonce === 'string' && nonce.length > 0) return false;
  throw new errors.InvalidRequest(
    'PKCE (code_challenge) is required; a confidential OpenID Connect client may send nonce instead',
  );
}
