import type { Client, Configuration, Grant, KoaContextWithOIDC } from 'oidc-provider';
import { SUPPORTED_SCOPES } from './find-account.ts';

/** Our client metadata extra: first-party applications skip the consent page. */
export function isFirstParty(client: Client | undefined): boolean {
  return (client as (Client & { first_party?: boolean }) | undefined)?.first_party === true;
}

/** What a person allowed a client at an earlier login (accounts/consents.ts), empty when nothing. */
export type RememberedScopes = (subject: string, clientId: string) => Promise<ReadonlySet<string>>;

/** The OpenID scopes of an authorization request that the provider offers. */
export function offeredScopes(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter((name) => SUPPORTED_SCOPES.has(name));
}

/** Whether what was allowed (remembered, or granted) holds every scope asked for. */
export function allowsAll(allowed: ReadonlySet<string>, requested: readonly string[]): boolean {
  return requested.every((scope) => allowed.has(scope));
}

/**
 * A new grant with its id already chosen: oidc-provider picks one at the first save otherwise, and
 * then whatever refers to the grant (an interaction result) must wait for that save instead of
 * being written together with it.
 */
export function newGrant(
  GrantModel: KoaContextWithOIDC['oidc']['provider']['Grant'],
  accountId: string,
  clientId: string,
): Grant {
  const grant = new GrantModel({ accountId, clientId });
  grant.jti = (grant as Grant & { generateTokenId(): string }).generateTokenId();
  return grant;
}

/**
 * oidc-provider asks this before prompting for consent, with the session's grant for the client if
 * it has one. Two kinds of request are resolved here without a consent prompt:
 * - a first-party client: the grant is created (or widened) with what the request asks for;
 * - a third-party client the person has allowed everything asked for at an earlier login (remembered
 *   consent), unless the request demands prompt=consent: the grant is created (or widened) with it.
 * Anything else gets the session's grant as it is, and the engine prompts for what it lacks.
 */
export function createLoadExistingGrant(remembered: RememberedScopes): Configuration['loadExistingGrant'] {
  return async (ctx: KoaContextWithOIDC): Promise<Grant | undefined> => {
    const { oidc } = ctx;
    const client = oidc.client;
    const accountId = oidc.session?.accountId;
    if (!client || !accountId) return undefined;
    const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(client.clientId);
    const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    const requested = offeredScopes([...(oidc.requestParamScopes ?? [])].join(' '));
    if (!isFirstParty(client)) {
      if (oidc.prompts.has('consent')) return existing;
      if (existing && allowsAll(new Set(existing.getOIDCScope().split(' ')), requested)) return existing;
      if (!allowsAll(await remembered(accountId, client.clientId), requested)) return existing;
    }
    const grant = existing ?? newGrant(oidc.provider.Grant, accountId, client.clientId);
    const before = grant.getOIDCScope();
    grant.addOIDCScope(requested.join(' '));
    const claims = [...(oidc.requestParamClaims ?? [])];
    if (claims.length) grant.addOIDCClaims(claims);
    if (!existing || grant.getOIDCScope() !== before || claims.length) await grant.save();
    return grant;
  };
}
