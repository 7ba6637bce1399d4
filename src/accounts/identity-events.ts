import type { Kysely } from 'kysely';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';
import { clientsWithGrants } from './artifact-index.ts';
import type { AccountNotifier } from './events.ts';
import { type Account, type LinkResult, listIdentities, type PhoneBinding } from './repository.ts';
import { errorClass } from './webhooks.ts';

export interface IdentityEventDeps {
  db: Kysely<Database>;
  logger: Logger;
  /** Absent (some tests and tools): nobody is told. */
  notifier?: AccountNotifier | undefined;
}

/**
 * The identities-changed event about an account, for the clients holding a grant for it (the
 * relying parties that know its `sub`), listing the apps linked now. Sending enqueues, so this
 * costs a few statements, never a wait on a relying party.
 */
export async function announceIdentities(
  deps: IdentityEventDeps,
  account: Pick<Account, 'id' | 'subject'>,
): Promise<void> {
  if (!deps.notifier) return;
  const clientIds = await clientsWithGrants(deps.db, account.subject);
  if (clientIds.length === 0) return;
  const appids = (await listIdentities(deps.db, account.id)).map((identity) => identity.appid);
  await deps.notifier.identitiesChanged({ subject: account.subject, clientIds, appids });
}

/**
 * After a login: an app linked to an existing account for the first time changes its identities.
 * A new account is announced to nobody (no relying party knows it yet), nor is a returning login.
 * Never fails the login: a failure is logged.
 */
export async function announceLinkedApp(deps: IdentityEventDeps, link: LinkResult): Promise<void> {
  if (!deps.notifier || !link.identityLinked || link.created) return;
  await logFailure(deps, () => announceIdentities(deps, link.account));
}

/**
 * After a verified phone was bound: when it recovered a waiting account, that account's clients
 * hear of its identities, and the clients of the fresh account that was folded into it hear of a
 * deletion (with back-channel logout), since that `sub` is gone. Call it after the commit.
 */
export async function announcePhoneBinding(
  deps: IdentityEventDeps,
  binding: PhoneBinding | undefined,
): Promise<void> {
  const { notifier } = deps;
  const removedSubject = binding?.removedSubject;
  if (!notifier || !binding || removedSubject === undefined) return;
  await logFailure(deps, async () => {
    await announceIdentities(deps, binding.account);
    const clientIds = await clientsWithGrants(deps.db, removedSubject);
    if (clientIds.length > 0) await notifier.deleted({ subject: removedSubject, clientIds });
  });
}

async function logFailure(deps: IdentityEventDeps, announce: () => Promise<void>): Promise<void> {
  try {
    await announce();
  } catch (err) {
    deps.logger.error({ reason: errorClass(err) }, 'could not announce an account event');
  }
}
