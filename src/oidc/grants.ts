import type { Client, Grant, KoaContextWithOIDC } from 'oidc-provider';

/** Our client metadata extra: first-party applications skip the consent page. */
export function isFirstParty(client: Client | undefined): boolean {
  return (client as (Client & { first_party?: boolean }) | undefined)?.first_party === true;
}

/**
 * oidc-provider asks this before prompting for consent. For a first-party client the grant is
 * created (or widened) here with what the request asks for, so no consent prompt arises and the
 * login needs no extra round trip; everyone else gets the session's existing grant, if any.
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
  const { oidc } = ctx;
  const client = oidc.client;
  if (!client || !oidc.session?.accountId) return undefined;
  const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(client.clientId);
  const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!isFirstParty(client)) return existing;

  const grant =
    existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId: oidc.session.accountId });
  const requested = [...(oidc.requestParamScopes ?? [])].join(' ');
  const before = grant.getOIDCScope();
  grant.addOIDCScope(requested);
  const claims = [...(oidc.requestParamClaims ?? [])];
  if (claims.length) grant.addOIDCClaims(claims);
  if (!existing || grant.getOIDCScope() !== before || claims.length) await grant.save();
  return grant;
}
