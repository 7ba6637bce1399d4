import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../storage/schema.ts';
import type { WeChatIdentity } from '../upstream/wechat/types.ts';
import { clientsWithGrants } from './artifact-index.ts';
import { listConsents } from './consents.ts';
import type { AccountNotifier, Announcement } from './events.ts';
import {
  type Account,
  type LinkOptions,
  type LinkResult,
  linkIdentity,
  listIdentities,
  type PhoneBinding,
  setVerifiedPhoneNumber,
} from './repository.ts';
import { type UnbindOutcome, unbindIdentity } from './unbind.ts';

export interface IdentityEventDeps {
  db: Kysely<Database>;
  /** Absent (some tests and tools): nobody is told. */
  notifier?: AccountNotifier | undefined;
}

type AccountRef = Pick<Account, 'id' | 'subject'>;

/**
 * A login's link (repository.ts, linkIdentity) and, when it adds an app to an existing account,
 * the identities-changed event, written in the link's transaction: should the event not be
 * written, neither is the link, and the login fails for the person to try again. A new account is
 * announced to nobody (no relying party knows it yet), nor is a returning login.
 */
export async function linkAndAnnounce(
  deps: IdentityEventDeps,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  options: Omit<LinkOptions, 'inTransaction'> = {},
): Promise<LinkResult> {
  const events = deps.notifier && changeEvents(deps.db, deps.notifier);
  const link = await linkIdentity(deps.db, identity, now, {
    ...options,
    ...(events && {
      inTransaction: async (trx, linked) => {
        if (addsAppToKnownAccount(linked)) await events.identitiesChanged(trx, linked.account);
      },
    }),
  });
  await events?.send();
  return link;
}

/**
 * Unbinds an app on the account page (unbind.ts) and writes the identities-changed event in the
 * same transaction: both happen or neither does.
 */
export async function unbindAndAnnounce(
  deps: IdentityEventDeps,
  account: AccountRef,
  identity: { appid: string; openid: string },
  now: Date,
): Promise<UnbindOutcome> {
  const events = deps.notifier && changeEvents(deps.db, deps.notifier);
  const outcome = await unbindIdentity(
    deps.db,
    account.id,
    identity,
    now,
    events && ((trx) => events.identitiesChanged(trx, account)),
  );
  await events?.send();
  return outcome;
}

/**
 * Binds a verified phone (repository.ts, setVerifiedPhoneNumber). When it recovers a waiting
 * account, that account's clients hear of its identities, and the clients of the fresh account
 * folded into it hear of a deletion (with back-channel logout), since that `sub` is gone: both
 * events are written in the recovery's transaction.
 */
export async function bindPhoneAndAnnounce(
  deps: IdentityEventDeps,
  accountId: string,
  phoneNumber: string,
  now: Date,
): Promise<PhoneBinding | undefined> {
  const events = deps.notifier && changeEvents(deps.db, deps.notifier);
  const binding = await setVerifiedPhoneNumber(
    deps.db,
    accountId,
    phoneNumber,
    now,
    events &&
      (async (trx, recovered) => {
        await events.identitiesChanged(trx, recovered.account);
        await events.deleted(trx, recovered.removedSubject);
      }),
  );
  await events?.send();
  return binding;
}

/** A login that linked an app to an account that existed before it: its clients are told. */
function addsAppToKnownAccount(link: LinkResult): boolean {
  return link.identityLinked && !link.created;
}

/**
 * The account events of one change, each written in the change's transaction (the transactional
 * outbox) for the clients holding a grant for its subject, and all sent once it has committed.
 * Made for each change: it remembers what it wrote.
 */
function changeEvents(db: Kysely<Database>, notifier: AccountNotifier) {
  const written: Announcement[] = [];
  const write = async (trx: Transaction<Database>, announcement: Announcement) => {
    await announcement.write(trx);
    written.push(announcement);
  };
  return {
    /** The identities-changed event, listing the apps linked as the transaction sees them. */
    async identitiesChanged(trx: Transaction<Database>, account: AccountRef): Promise<void> {
      const clientIds = await clientsKnowing(db, trx, account.subject);
      if (clientIds.length === 0) return;
      const appids = (await listIdentities(trx, account.id)).map((identity) => identity.appid);
      await write(trx, notifier.identitiesChanged({ subject: account.subject, clientIds, appids }));
    },
    /** The account-deleted event for a subject that no longer exists. */
    async deleted(trx: Transaction<Database>, subject: string): Promise<void> {
      const clientIds = await clientsKnowing(db, trx, subject);
      if (clientIds.length > 0) await write(trx, notifier.deleted({ subject, clientIds }));
    },
    /** After the commit: delivery starts at once, back-channel logouts go. Never throws. */
    async send(): Promise<void> {
      await Promise.all(written.map((announcement) => announcement.send()));
    },
  };
}

/**
 * The clients that know the subject: those holding a grant, and those the person allowed at an
 * earlier login (a remembered consent), which got the `sub` then. A grant without offline_access
 * ends when the person logs out of the client, and the client still keeps what it knows of them:
 * counted by grants alone, it never heard of the deletion of an account it had logged out of.
 */
export async function clientsKnowing(
  db: Kysely<Database>,
  trx: Transaction<Database>,
  subject: string,
): Promise<string[]> {
  const granted = await clientsWithGrants(db, trx, subject);
  const consented = (await listConsents(trx, subject)).map((consent) => consent.clientId);
  return [...new Set([...granted, ...consented])];
}
