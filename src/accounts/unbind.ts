import type { Kysely } from 'kysely';
import { isSqlite } from '../storage/dialect.ts';
import type { Database } from '../storage/schema.ts';
import { accountForgotten } from './account-cache.ts';
import { findAccountById, type InTransaction } from './repository.ts';

/**
 * unbound: done. last_identity_needs_phone: this is the account's only WeChat identity and no
 * verified phone could recover it, so the choice is to bind a phone first or delete the account.
 * not_found: no such identity on this account.
 */
export type UnbindOutcome = 'unbound' | 'last_identity_needs_phone' | 'not_found';

/**
 * Unlinks one WeChat app's identity from an account, keeping the account recoverable: another
 * identity must remain, or a verified phone (with which the person can link a new identity through
 * the mini program). Runs in one transaction with the account row locked, so two concurrent
 * unbinds cannot both remove "the other" identity; `onUnbound` runs in it once the identity is gone.
 */
export async function unbindIdentity(
  db: Kysely<Database>,
  accountId: string,
  identity: { appid: string; openid: string },
  now: Date,
  onUnbound?: InTransaction,
): Promise<UnbindOutcome> {
  if (!(await findAccountById(db, accountId))) return 'not_found';
  const outcome = await db.transaction().execute(async (trx): Promise<UnbindOutcome> => {
    const account = await trx
      .selectFrom('accounts')
      .select(['id', 'phone_number', 'phone_number_verified'])
      .where('id', '=', accountId)
      // SQLite's one connection is this transaction's until it ends: nothing to lock against.
      .$if(!isSqlite(trx), (qb) => qb.forUpdate())
      .executeTakeFirst();
    if (!account) return 'not_found';
    const identities = await trx
      .selectFrom('identities')
      .select(['appid', 'openid'])
      .where('account_id', '=', accountId)
      .execute();
    const target = identities.find((i) => i.appid === identity.appid && i.openid === identity.openid);
    if (!target) return 'not_found';
    if (identities.length === 1 && !(account.phone_number && account.phone_number_verified))
      return 'last_identity_needs_phone';
    await trx
      .deleteFrom('identities')
      .where('account_id', '=', accountId)
      .where('appid', '=', identity.appid)
      .where('openid', '=', identity.openid)
      .execute();
    await trx
      .updateTable('accounts')
      .set({ updated_at: now, profile_updated_at: now })
      .where('id', '=', accountId)
      .execute();
    await onUnbound?.(trx);
    return 'unbound';
  });
  if (outcome === 'unbound') accountForgotten(accountId);
  return outcome;
}

/** Whether unbinding is allowed at all right now (the page shows the explanation instead of buttons). */
export function canUnbind(identityCount: number, hasVerifiedPhone: boolean): boolean {
  return identityCount > 1 || (identityCount === 1 && hasVerifiedPhone);
}
