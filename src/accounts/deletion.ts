import { setTimeout } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Logger } from '../observability/logger.ts';
import type { AdapterFactory, KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import { accountForgotten } from './account-cache.ts';
import { INDEX_SETTLE_MS } from './artifact-batch.ts';
import type { AvatarStore } from './avatars/store.ts';
import type { AccountEvent } from './events.ts';
import { type Account, findAccountBySubject, type Identity, listIdentities } from './repository.ts';
import { revokeEverything, type SessionIds } from './revocation.ts';

export interface DeletionDeps {
  adapter: AdapterFactory;
  db: Kysely<Database>;
  avatars: AvatarStore;
  /** Where mini-program session keys live (they are forgotten with the account). */
  kv?: KeyValueStore;
  logger: Logger;
  now: () => Date;
  /**
   * Told which relying parties held a grant, after everything is revoked (back-channel logout,
   * webhooks). Failures are logged by the caller's implementation, never undo the deletion.
   */
  notify?: (event: AccountEvent) => Promise<void>;
}

export interface DeletionReport {
  identities: number;
  grantsRevoked: number;
  sessionsEnded: number;
}

/**
 * Erases an account: every grant, token and session first (so nothing keeps working), then the
 * avatar, identities, phone and profile, and leaves an audit row with counts only. A token checked
 * after this finds no grant and no account (findAccount), so introspection says inactive and
 * refresh fails.
 */
export async function deleteAccount(
  deps: DeletionDeps,
  account: Account,
  requestedBy: 'person' | 'operator',
): Promise<DeletionReport> {
  const revoked = await revokeEverything(deps, account.subject);
  await deps.avatars.delete(account.id);
  if (deps.kv) await forgetSessionKeys(deps.kv, await listIdentities(deps.db, account.id));
  const { identities, auditId } = await deps.db.transaction().execute(async (trx) => {
    const removed = await trx
      .deleteFrom('identities')
      .where('account_id', '=', account.id)
      .executeTakeFirst();
    // Cascades to anything else keyed by the account (the avatar row in the SQL store).
    await trx.deleteFrom('accounts').where('id', '=', account.id).execute();
    const count = Number(removed.numDeletedRows);
    const audit = await trx
      .insertInto('account_deletions')
      .values({
        deleted_at: deps.now(),
        requested_by: requestedBy,
        identities: count,
        grants_revoked: revoked.grants,
        sessions_ended: revoked.sessions,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { identities: count, auditId: audit.id };
  });
  accountForgotten(account.id);
  // Again, once another instance's index rows of a login that raced this have had time to land
  // (they are written in batches, INDEX_SETTLE_MS late at most): its grant is revoked and its
  // relying party told too. Sessions created between the first pass and the delete die here.
  await setTimeout(INDEX_SETTLE_MS);
  const late = await revokeEverything(deps, account.subject);
  const grants = revoked.grants + late.grants;
  const clientIds = [...new Set([...revoked.clientIds, ...late.clientIds])];
  if (late.grants + late.sessions > 0) {
    await deps.db
      .updateTable('account_deletions')
      .set({ grants_revoked: grants, sessions_ended: revoked.sessions + late.sessions })
      .where('id', '=', auditId)
      .execute();
  }
  deps.logger.info({ requestedBy, identities, grants }, 'account deleted');
  const sids = mergeSids(revoked.sids, late.sids);
  if (deps.notify) await deps.notify({ subject: account.subject, clientIds, sids });
  return { identities, grantsRevoked: grants, sessionsEnded: revoked.sessions + late.sessions };
}

function mergeSids(first: SessionIds, second: SessionIds): SessionIds {
  const merged: SessionIds = { ...first };
  for (const [clientId, sids] of Object.entries(second))
    merged[clientId] = [...(merged[clientId] ?? []), ...sids];
  return merged;
}

/** The account an operator names by unionid (its subject, or any identity's) or by openid. */
export async function findAccountForOperator(
  db: Kysely<Database>,
  id: { unionid: string } | { openid: string },
): Promise<Account | undefined> {
  if ('unionid' in id) {
    const bySubject = await findAccountBySubject(db, id.unionid);
    if (bySubject) return bySubject;
    const identity = await db
      .selectFrom('identities')
      .select('account_id')
      .where('unionid', '=', id.unionid)
      .executeTakeFirst();
    return identity
      ? db.selectFrom('accounts').selectAll().where('id', '=', identity.account_id).executeTakeFirst()
      : undefined;
  }
  const identity = await db
    .selectFrom('identities')
    .select('account_id')
    .where('openid', '=', id.openid)
    .executeTakeFirst();
  return identity
    ? db.selectFrom('accounts').selectAll().where('id', '=', identity.account_id).executeTakeFirst()
    : undefined;
}

/**
 * The sealed session keys the mini program's server side keeps per (appid, openid) — the key format
 * of src/mini-program/session-keys.ts, which expires them only after sessionKeyTtl.
 */
export async function forgetSessionKeys(kv: KeyValueStore, identities: readonly Identity[]): Promise<void> {
  for (const identity of identities)
    if (identity.kind === 'mini_program') await forgetSessionKey(kv, identity.appid, identity.openid);
}

export async function forgetSessionKey(kv: KeyValueStore, appid: string, openid: string): Promise<void> {
  await kv.delete(`mini-program:session-key:${appid}:${openid}`);
}
