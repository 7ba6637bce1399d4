import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { accountForgotten } from '../../src/accounts/account-cache.ts';
import { flushIndexWrites } from '../../src/accounts/artifact-batch.ts';
import type { AdapterFactory } from '../../src/storage/ports.ts';
import type { Database } from '../../src/storage/schema.ts';
import { RP } from './bridge.ts';

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

/**
 * A grant of the test relying party for `subject`, an access token under it and the grant's index
 * row, as a login answered by another instance leaves them (written directly, at a chosen moment).
 */
export async function grantOfAnotherInstance(
  stores: { db: Kysely<Database>; oidcAdapter: AdapterFactory },
  subject: string,
): Promise<{ grantId: string; tokenId: string }> {
  const now = Math.floor(Date.now() / 1000);
  const grantId = `late-grant-${randomUUID()}`;
  const tokenId = `late-token-${randomUUID()}`;
  const common = { accountId: subject, clientId: RP.client_id, iat: now, exp: now + 3600 };
  await stores
    .oidcAdapter('Grant')
    .upsert(grantId, { ...common, jti: grantId, kind: 'Grant', openid: { scope: 'openid' } }, 3600);
  await stores
    .oidcAdapter('AccessToken')
    .upsert(tokenId, { ...common, jti: tokenId, kind: 'AccessToken', grantId, scope: 'openid' }, 3600);
  await stores.db
    .insertInto('account_artifacts')
    .values({
      model: 'Grant',
      id: grantId,
      subject,
      client_id: RP.client_id,
      expires_at: new Date((now + 3600) * 1000),
    })
    .execute();
  return { grantId, tokenId };
}
