import { setTimeout } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import { GRANTABLE_MODELS } from '../storage/grantable.ts';
import type { AdapterFactory } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import { INDEX_SETTLE_MS } from './artifact-batch.ts';
import { forgetArtifact, indexedArtifacts } from './artifact-index.ts';
import { forgetConsent, listConsents } from './consents.ts';

/** Only storage: the operator CLI revokes without starting a provider. */
export interface RevocationDeps {
  adapter: AdapterFactory;
  db: Kysely<Database>;
}

/** One application a person has authorized, as the account page lists it. */
export interface AuthorizedApp {
  clientId: string;
  clientName: string;
  /** What it may ask for without asking the person: the remembered consent and its live grants. */
  scopes: string[];
}

/**
 * The clients the person has authorized, one entry each: those with a remembered consent and those
 * holding a live grant (expired or vanished grants are dropped from the index on the way).
 */
export async function listAuthorizedApps(
  deps: RevocationDeps & { provider: Provider },
  subject: string,
): Promise<AuthorizedApp[]> {
  const scopesByClient = new Map<string, Set<string>>();
  const add = (clientId: string, scopes: Iterable<string>) => {
    const known = scopesByClient.get(clientId) ?? new Set<string>();
    for (const scope of scopes) if (scope) known.add(scope);
    scopesByClient.set(clientId, known);
  };
  for (const consent of await listConsents(deps.db, subject)) add(consent.clientId, consent.scopes);
  for (const { id } of await indexedArtifacts(deps.db, subject, 'Grant')) {
    const grant = await deps.provider.Grant.find(id);
    if (!grant || grant.accountId !== subject || !grant.clientId) {
      await forgetArtifact(deps.db, 'Grant', id);
      continue;
    }
    add(grant.clientId, grant.getOIDCScope().split(' '));
  }
  const apps: AuthorizedApp[] = [];
  for (const [clientId, scopes] of scopesByClient) {
    const client = await deps.provider.Client.find(clientId);
    apps.push({ clientId, clientName: client?.clientName ?? clientId, scopes: [...scopes].sort() });
  }
  return apps;
}

/**
 * Takes back what the person allowed a client: the remembered consent (its next login asks again)
 * and every grant the client holds, with their tokens. Resolves false when there was neither.
 *
 * Twice, the second time once another instance's index rows of the moment have landed (they are
 * written in batches, INDEX_SETTLE_MS late at most): a login to the client that another instance
 * answered just before was missed, and its tokens worked on after the page said "revoked" (an
 * outside review: 20 of 20 at 0 and 30 ms). A deletion does the same (deletion.ts).
 */
export async function revokeApp(deps: RevocationDeps, subject: string, clientId: string): Promise<boolean> {
  const forgotten = await forgetConsent(deps.db, subject, clientId);
  const clientGrants = async () =>
    (await indexedArtifacts(deps.db, subject, 'Grant')).filter((entry) => entry.clientId === clientId);
  const grants = await clientGrants();
  for (const { id } of grants) await revokeGrant(deps, subject, id);
  await setTimeout(INDEX_SETTLE_MS);
  const late = await clientGrants();
  for (const { id } of late) await revokeGrant(deps, subject, id);
  return forgotten || grants.length + late.length > 0;
}

/**
 * Revokes one grant as oidc-provider's own revocation does: every token and code issued under it,
 * then the grant itself. Resolves false when the grant is not the subject's.
 */
export async function revokeGrant(deps: RevocationDeps, subject: string, grantId: string): Promise<boolean> {
  const grant = await deps.adapter('Grant').find(grantId);
  const owned = grant
    ? grant.accountId === subject
    : (await indexedArtifacts(deps.db, subject, 'Grant')).some((entry) => entry.id === grantId);
  if (!owned) return false;
  for (const model of GRANTABLE_MODELS) await deps.adapter(model).revokeByGrantId?.(grantId);
  await deps.adapter('Grant').destroy(grantId);
  await forgetArtifact(deps.db, 'Grant', grantId);
  return true;
}

/**
 * The session ids (`sid`) each client was given in the sessions ended, by client id: what a
 * back-channel logout token names for a client that registered backchannel_logout_session_required.
 */
export type SessionIds = Record<string, string[]>;

/** oidc-provider keeps, per session, each client's authorization with the sid it was told. */
function collectSids(session: { authorizations?: unknown } | undefined, into: SessionIds): void {
  const authorizations = session?.authorizations;
  if (typeof authorizations !== 'object' || authorizations === null) return;
  for (const [clientId, authorization] of Object.entries(authorizations)) {
    const sid = (authorization as { sid?: unknown } | undefined)?.sid;
    if (typeof sid === 'string') into[clientId] = [...(into[clientId] ?? []), sid];
  }
}

/** An account's grants and sessions as the index lists them, and what back-channel logout needs. */
export interface Found {
  grantIds: string[];
  sessionIds: string[];
  /**
   * How many of them still exist: the index may name a session that is gone (expired, ended, or
   * a save a logout's tombstone refused after oidc-provider had already announced it: its row is
   * written all the same), which is forgotten but not counted as ended.
   */
  liveSessions: number;
  /** The clients that held a grant. */
  clientIds: string[];
  /** The sids the sessions gave each client. */
  sids: SessionIds;
}

/** What a revocation ended: the clients that held a grant, counts, and the sessions' sids. */
export interface Revoked {
  clientIds: string[];
  grants: number;
  sessions: number;
  sids: SessionIds;
}

/**
 * "Sign out everywhere": every grant (and so every token) and every session of the account.
 * Returns the client ids that held a grant and the sids the sessions gave each client (for
 * back-channel logout). Twice, as revokeApp: the second pass finds what another instance saved
 * just before the first.
 */
export async function revokeEverything(deps: RevocationDeps, subject: string): Promise<Revoked> {
  const first = await revokeFound(deps, subject, await findEverything(deps, subject));
  await setTimeout(INDEX_SETTLE_MS);
  const late = await revokeFound(deps, subject, await findEverything(deps, subject));
  const sids: SessionIds = { ...first.sids };
  for (const [clientId, ids] of Object.entries(late.sids))
    sids[clientId] = [...(sids[clientId] ?? []), ...ids];
  return {
    clientIds: [...new Set([...first.clientIds, ...late.clientIds])],
    grants: first.grants + late.grants,
    sessions: first.sessions + late.sessions,
    sids,
  };
}

/**
 * The first half of revokeEverything, which only reads: for a caller that records something about
 * what it will revoke before revoking it (a deletion tells the clients in its transaction).
 */
export async function findEverything(deps: RevocationDeps, subject: string): Promise<Found> {
  const grants = await indexedArtifacts(deps.db, subject, 'Grant');
  const sessionIds = (await indexedArtifacts(deps.db, subject, 'Session')).map(({ id }) => id);
  const sids: SessionIds = {};
  let liveSessions = 0;
  for (const id of sessionIds) {
    const session = await deps.adapter('Session').find(id);
    if (session) liveSessions += 1;
    collectSids(session ?? undefined, sids);
  }
  const clientIds = new Set(grants.flatMap(({ clientId }) => (clientId ? [clientId] : [])));
  return { grantIds: grants.map(({ id }) => id), sessionIds, liveSessions, clientIds: [...clientIds], sids };
}

/** The second half: revokes what findEverything found, and forgets its index rows. */
export async function revokeFound(deps: RevocationDeps, subject: string, found: Found): Promise<Revoked> {
  for (const id of found.grantIds) await revokeGrant(deps, subject, id);
  for (const id of found.sessionIds) {
    await deps.adapter('Session').destroy(id);
    await forgetArtifact(deps.db, 'Session', id);
  }
  // Only the rows listed are forgotten (revokeGrant forgets each grant's): a row written meanwhile
  // names a grant or session that was not revoked, which a later pass must still find.
  return {
    clientIds: found.clientIds,
    grants: found.grantIds.length,
    sessions: found.liveSessions,
    sids: found.sids,
  };
}
