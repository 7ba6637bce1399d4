import type { Kysely } from 'kysely';
import { accountForgotten } from '../../src/accounts/account-cache.ts';
import { flushIndexWrites } from '../../src/accounts/artifact-batch.ts';
import type { Database } from '../../src/storage/schema.ts';

/**
 * The account's grant and session index rows lost, as when an instance crashed before writing them:
 * a deletion then cannot find the grants, so their tokens outlive the account.
 */
export async function loseIndexRows(db: Kysely<Database>, subject: string): Promise<void> {
  await flushIndexWrites(db);
  await db.deleteFrom('account_artifacts').where('subject', '=', subject).execute();
}

/**
 * The account of `subject`, made again after a deletion, as if that was later than a token's
 * clock skew allows: its created_at moved two minutes ahead, and no process's cached copy kept.
 */
export async function signedUpLater(db: Kysely<Database>, subject: string): Promise<void> {
  const renewed = await db
    .updateTable('accounts')
    .set({ created_at: new Date(Date.now() + 120_000) })
    .where('subject', '=', subject)
    .returning('id')
    .executeTakeFirstOrThrow();
  accountForgotten(renewed.id);
}
