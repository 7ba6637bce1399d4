import { setTimeout } from 'node:timers/promises';
import type { Kysely, Transaction } from 'kysely';
import { forgetGrantIdentities } from '../mini-program/grant-identities.ts';
import { forgetSessionKey } from '../mini-program/session-keys.ts';
import { errorClass } from '../observability/causes.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdapterFactory, KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import { accountForgotten } from './account-cache.ts';
import { INDEX_SETTLE_MS } from './artifact-batch.ts';
import type { AvatarStore } from './avatars/store.ts';
import { listConsents } from './consents.ts';
import { scheduleCleanup } from './deletion-cleanup.ts';
import type { AccountEvent, Announcement } from './events.ts';
import { type Account, findAccountBySubject, type Identity, listIdentities } from './repository.ts';
import { type Found, findEverything, revokeFound } from './revocation.ts';

export interface DeletionDeps {
  adapter: AdapterFactory;
  db: Kysely<Database>;
  avatars: AvatarStore;
  /** Where mini-program session keys live (they are forgotten with the account). */
  kv?: KeyValueStore;
  /** Clears what the deleted rows leave in the embedded files (Stores.scrub). */
  scrub?: () => Promise<void>;
  logger: Logger;
  now: () => Date;
  /**
   * The account-deleted announcement for the relying parties that held a grant (events.ts:
   * back-channel logout and the account event), written in the transaction that deletes and sent
   * once their grants and sessions are revoked. Absent: nobody is told.
   */
  notify?: (event: AccountEvent) => Announcement;
}

export interface DeletionReport {
  identities: number;
  grantsRevoked: number;
  sessionsEnded: number;
}

/**
 * Erases an account: the profile, identities and phone, leaving an audit row with counts only, in
 * one transaction with the account event that tells its relying parties (the outbox: both commit or
 * neither) and a note to look for its leftovers again (deletion-cleanup.ts); then, outside this
 * database, every grant, token and session, the avatar and the identities mini-program grants
 * remembered, and back-channel logout. What is revoked and who is told are found before that
 * transaction and changed only after it: a deletion that fails in it has changed nothing, and the
 * person's retry finds the same clients to tell. The mini-program session keys go before it, since
 * they are found by the identities it deletes: a deletion that fails after that costs the mini
 * program a wx.login, nothing more. Its tokens stop working at the commit (findAccount finds no
 * account) and are revoked in the shared store a moment later; a token checked after this finds no
 * grant and no account, so introspection says inactive and refresh fails. Once committed, the
 * deletion is done for the person, whatever the store then does: what it could not remove is
 * logged, and the noted cleanup removes it later.
 */
export async function deleteAccount(
  deps: DeletionDeps,
  account: Account,
  requestedBy: 'person' | 'operator',
): Promise<DeletionReport> {
  const { subject } = account;
  const found = await findEverything(deps, subject);
  // Told: the clients holding a grant, and those with a remembered consent, which got the `sub` at
  // an earlier login and may have logged the person out since (identity-events.ts, clientsKnowing).
  const consented = (await listConsents(deps.db, subject)).map((consent) => consent.clientId);
  const recipients = { ...found, clientIds: [...new Set([...found.clientIds, ...consented])] };
  if (deps.kv) await forgetSessionKeys(deps.kv, await listIdentities(deps.db, account.id));
  const erased = await withDeletedEvent(deps, subject, recipients, async (trx) => {
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
        grants_revoked: found.grantIds.length,
        sessions_ended: found.liveSessions,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await scheduleCleanup(trx, subject, deps.now());
    return { identities: count, auditId: audit.id };
  });
  accountForgotten(account.id);
  const { identities } = erased.result;
  // The announcement goes once: removeLeftovers sends it after its first pass, and the failure
  // below only if that pass did not get so far (a second logout token to every client otherwise).
  const told = once(() => erased.told?.send());
  try {
    const { grants, sessions } = await removeLeftovers(deps, account, found, { ...erased, told });
    deps.logger.info({ requestedBy, identities, grants }, 'account deleted');
    return { identities, grantsRevoked: grants, sessionsEnded: sessions };
  } catch (error) {
    await told().catch(() => undefined);
    await deps.scrub?.().catch(() => undefined);
    deps.logger.error(
      { requestedBy, identities, reason: errorClass(error) },
      'account deleted, but its grants, tokens and sessions in the store could not all be revoked yet: ' +
        'they no longer work, and the cleanup of deleted accounts removes them within minutes',
    );
    return { identities, grantsRevoked: found.grantIds.length, sessionsEnded: found.liveSessions };
  }
}

/**
 * After the commit: what the deletion found, revoked; then again, once another instance's index
 * rows of a login that raced it have had time to land (they are written in batches,
 * INDEX_SETTLE_MS late at most): its grant is revoked and its relying party told too (again, if it
 * was told above: that login gave it the `sub` anew). Sessions created between the first pass and
 * the delete die here. Resolves the grants and sessions ended in all.
 */
async function removeLeftovers(
  deps: DeletionDeps,
  account: Account,
  found: Found,
  erased: { result: { auditId: string }; told: () => Promise<void> },
): Promise<{ grants: number; sessions: number }> {
  const { subject } = account;
  const revoked = await revokeFound(deps, subject, found);
  await deps.avatars.delete(account.id);
  if (deps.kv) await forgetGrantIdentities(deps.kv, found.grantIds);
  await erased.told();
  await setTimeout(INDEX_SETTLE_MS);
  const late = await findEverything(deps, subject);
  const grants = revoked.grants + late.grantIds.length;
  const sessions = revoked.sessions + late.liveSessions;
  if (late.grantIds.length + late.sessionIds.length > 0) {
    const { told } = await withDeletedEvent(deps, subject, late, (trx) =>
      trx
        .updateTable('account_deletions')
        .set({ grants_revoked: grants, sessions_ended: sessions })
        .where('id', '=', erased.result.auditId)
        .execute(),
    );
    await revokeFound(deps, subject, late);
    if (deps.kv) await forgetGrantIdentities(deps.kv, late.grantIds);
    await told?.send();
  }
  await deps.scrub?.();
  return { grants, sessions };
}

/**
 * Runs `change` in a transaction that also writes the account-deleted event for the clients that
 * `found` lists; the announcement, to send once what it found is revoked.
 */
async function withDeletedEvent<T>(
  deps: DeletionDeps,
  subject: string,
  found: Found,
  change: (trx: Transaction<Database>) => Promise<T>,
): Promise<{ result: T; told: Announcement | undefined }> {
  const told = deps.notify?.({ subject, clientIds: found.clientIds, sids: found.sids });
  const result = await deps.db.transaction().execute(async (trx) => {
    const changed = await change(trx);
    await told?.write(trx);
    return changed;
  });
  return { result, told };
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
 * The sealed session keys the mini program's server side keeps per (appid, openid)
 * (src/mini-program/session-keys.ts, which expires them only after sessionKeyTtl).
 */
export async function forgetSessionKeys(kv: KeyValueStore, identities: readonly Identity[]): Promise<void> {
  for (const identity of identities)
    if (identity.kind === 'mini_program') await forgetSessionKey(kv, identity.appid, identity.openid);
}

/** `send` run at most once, however often the result is called: the first call's promise after. */
function once(send: () => Promise<void> | undefined): () => Promise<void> {
  let sent: Promise<void> | undefined;
  return () => {
    sent ??= Promise.resolve(send());
    return sent;
  };
}
