import { type Kysely, type RawBuilder, type Selectable, sql, type Transaction } from 'kysely';
import { isSqlite } from '../storage/dialect.ts';
import type { AccountsTable, Database, IdentitiesTable } from '../storage/schema.ts';
import { onSqliteConnection } from '../storage/sqlite/kysely-dialect.ts';
import type { WeChatIdentity, WeChatProfile } from '../upstream/wechat/types.ts';
import { accountForgotten, accountWritten } from './account-cache.ts';
import type { AvatarInfo } from './avatars/store.ts';
import { linkReturningPerson } from './sqlite-login.ts';

export type Account = Selectable<AccountsTable>;
export type Identity = Selectable<IdentitiesTable>;

/** A Kysely or a transaction: every function here runs on either. */
type Db = Kysely<Database> | Transaction<Database>;

/**
 * Work that must commit with a change or not at all, run in the change's transaction once the
 * change is written, with what it did: how the account events announcing it reach the outbox
 * (identity-events.ts). Throwing rolls the change back.
 */
export type InTransaction<T = void> = (trx: Transaction<Database>, change: T) => Promise<void>;

/** WeChat's stand-in nickname for people who have not shared theirs (since 2021). */
const PLACEHOLDER_NICKNAME = '微信用户';

/** WeChat's grey default avatar, without scheme and size segment (see isPlaceholderAvatar). */
const PLACEHOLDER_AVATAR =
  'thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg';

/**
 * The same (appid, openid) is already linked to another account. Logins cannot repair
 * this on their own (it means two accounts claim one WeChat identity), so nothing is
 * written and an operator has to look. The message carries no openid or unionid.
 */
export class IdentityConflictError extends Error {
  override readonly name = 'IdentityConflictError';
  readonly appid: string;
  /** The account the identity is linked to now. */
  readonly linkedAccountId: string;
  /** The account the login resolved to. */
  readonly resolvedAccountId: string;

  constructor(appid: string, linkedAccountId: string, resolvedAccountId: string) {
    super(
      `WeChat identity of app ${appid} is linked to account ${linkedAccountId}, not to ${resolvedAccountId}`,
    );
    this.appid = appid;
    this.linkedAccountId = linkedAccountId;
    this.resolvedAccountId = resolvedAccountId;
  }
}

export async function findAccountBySubject(db: Db, subject: string): Promise<Account | undefined> {
  return db.selectFrom('accounts').selectAll().where('subject', '=', subject).executeTakeFirst();
}

export async function findAccountById(db: Db, id: string): Promise<Account | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The account that has an identity with this unionid, else the account created with it
 * as subject. Identities come first: they record where the person logs in today.
 */
export async function findAccountByUnionid(db: Db, unionid: string): Promise<Account | undefined> {
  return db
    .selectFrom('accounts')
    .selectAll()
    .where('id', '=', accountIdOfUnionid(unionid))
    .executeTakeFirst();
}

/**
 * The id of the account a unionid belongs to (findAccountByUnionid's rule), or null: a scalar
 * subquery for a statement's where clause. Two index lookups, one per table, in one union: the
 * same rule written as `id in (identities of the unionid) or subject = unionid` made PostgreSQL
 * read every account (a sequential scan, and at a few hundred thousand accounts its JIT compiler
 * too: most of a second per login).
 */
function accountIdOfUnionid(unionid: string): RawBuilder<string | null> {
  return sql<string | null>`(
    select id from (
      select account_id as id, 0 as rank from identities where unionid = ${unionid}
      union all
      select id, 1 as rank from accounts where subject = ${unionid}
    ) as candidates
    order by rank
    limit 1
  )`;
}

export async function listIdentities(db: Db, accountId: string): Promise<Identity[]> {
  if (!isUuid(accountId)) return [];
  return db
    .selectFrom('identities')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('created_at')
    .orderBy('appid')
    .execute();
}

/**
 * The identity one app knows a person by, with its account: how a silent Official Account login
 * (snsapi_base, openid only) recognises someone who has logged in through that app before.
 */
export async function findIdentity(
  db: Db,
  appid: string,
  openid: string,
): Promise<{ identity: Identity; account: Account } | undefined> {
  const identity = await db
    .selectFrom('identities')
    .selectAll()
    .where('appid', '=', appid)
    .where('openid', '=', openid)
    .executeTakeFirst();
  if (!identity) return undefined;
  const account = await findAccountById(db, identity.account_id);
  return account ? { identity, account } : undefined;
}

/** What a login did to the accounts: `identityLinked` is true when this app's (appid, openid) was new. */
export interface LinkResult {
  account: Account;
  created: boolean;
  /**
   * The identity was not linked before this login (always so for a new account). Two concurrent
   * first logins of one identity may both report it: it drives notifications, which repeat harmlessly.
   */
  identityLinked: boolean;
  /**
   * Read by a returning person's one statement beside the account, so that the login does not read
   * them again (each is a round trip); undefined when the login took the step-by-step path:
   * `avatar`, the stored avatar's metadata (null: none), and `consentScopes`, what the person has
   * allowed the client named by LinkOptions.consentFor (empty: nothing, or no client named).
   */
  alongside?: { avatar: AvatarInfo | null; consentScopes: ReadonlySet<string> };
}

export interface LinkOptions {
  /** The client being logged in to, whose remembered consent (accounts/consents.ts) to read alongside. */
  consentFor?: string;
  /**
   * Run in the link's transaction when the link takes the step-by-step path, which every link that
   * creates an account or adds an identity does (the one-statement paths only touch an identity
   * linked already, a change nobody is told of).
   */
  inTransaction?: InTransaction<LinkResult>;
}

/**
 * Records a successful WeChat login: finds the person's account by unionid or creates it
 * (subject = unionid), links this app's (appid, openid) to it and refreshes the profile,
 * atomically. Two concurrent first logins of one person produce one account, and a login whose
 * account is deleted while it links gets a new account (see linkedOnceMore).
 *
 * Throws IdentityConflictError, writing nothing, when (appid, openid) belongs to another
 * account. Pass a Kysely, not a transaction: this opens its own.
 */
export async function linkIdentity(
  db: Kysely<Database>,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  options: LinkOptions = {},
): Promise<LinkResult> {
  const result = await linkedOnceMore(() => linkOnce(db, identity, now, options));
  accountWritten(result.account, result.alongside?.avatar);
  return result;
}

async function linkOnce(
  db: Kysely<Database>,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  options: LinkOptions,
): Promise<LinkResult> {
  // linkKnownPerson's one statement is PostgreSQL's (a writable CTE); SQLite takes the same steps
  // as prepared statements of its own (./sqlite-login.ts).
  const known = isSqlite(db)
    ? await onSqliteConnection(db, (database) =>
        linkReturningPerson(database, identity, now, options, (account) =>
          refreshedProfile(account, identity, false),
        ),
      )
    : await linkKnownPerson(db, identity, now, options);
  return known ?? (await linkInTransaction(db, identity, now, options.inTransaction));
}

/**
 * The link, once more when the account it found was deleted before its identity row was written.
 * On PostgreSQL a deletion (account page, delete-account: ./deletion.ts) can commit between the
 * step-by-step transaction's finding the account and its identity's foreign-key check, which
 * waits for the deletion's row locks and then fails (23503). Nothing was written, and the account
 * is gone for good, so a second link creates the new account at once, as the person's own retry
 * would. Only that error, and only once: anything else is not this race. (linkKnownPerson's one
 * statement waits for the deletion's lock on the identity row, finds it gone and leaves the link
 * to the transaction, which then finds no account and creates one.)
 *
 * The embedded SQLite file cannot interleave them: one process holds it (exclusively locked), and
 * there a link's find and write run on its one connection with no other statement between
 * (./sqlite-login.ts synchronously, the step-by-step transaction holding the connection).
 */
async function linkedOnceMore(link: () => Promise<LinkResult>): Promise<LinkResult> {
  try {
    return await link();
  } catch (error) {
    if (!isAccountGoneWhileLinking(error)) throw error;
    return link();
  }
}

/** PostgreSQL's foreign_key_violation, on the identity's reference to its account. */
function isAccountGoneWhileLinking(error: unknown): boolean {
  const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  return code === '23503' && constraint === IDENTITY_ACCOUNT_FOREIGN_KEY;
}

/** PostgreSQL's name for identities.account_id's reference (migration 2026-11-25-01, unnamed there). */
const IDENTITY_ACCOUNT_FOREIGN_KEY = 'identities_account_id_fkey';

/**
 * The common case, a returning person whose identity is linked to their account already, as one
 * statement (one round trip instead of a five-statement transaction: most of a login's database
 * time). Undefined when the statement does not apply - no account yet, the identity is not linked
 * yet (its first login through this app: its account event is written in the step-by-step
 * transaction, with the link) or belongs to another account, or the profile carries a WeChat
 * placeholder (whether it may replace the stored value depends on that value; the rule lives in
 * nextNickname/nextAvatar) - and then nothing was written.
 */
async function linkKnownPerson(
  db: Kysely<Database>,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  options: LinkOptions,
): Promise<LinkResult | undefined> {
  const nickname = presentNickname(identity.profile?.nickname);
  const avatarUrl = presentAvatar(identity.profile?.avatarUrl);
  if ((nickname && isPlaceholderNickname(nickname)) || (avatarUrl && isPlaceholderAvatar(avatarUrl)))
    return undefined;
  const { appid, openid, kind, unionid } = identity;
  // The update only touches an identity of the account found (else it returns nothing and so does
  // the account's update). The avatar's metadata and the remembered consent come back with the
  // account, for the ID token's picture claim and the consent step.
  const { rows } = await sql<Account & KnownPersonExtras>`
    with linked as (
      update identities
      set kind = ${kind}, unionid = ${unionid}, updated_at = ${now}, last_login_at = ${now}
      where appid = ${appid} and openid = ${openid} and account_id = ${accountIdOfUnionid(unionid)}
      returning account_id
    )
    update accounts
    set nickname = coalesce(${nickname ?? null}, accounts.nickname),
        avatar_url = coalesce(${avatarUrl ?? null}, accounts.avatar_url),
        updated_at = ${now}, last_login_at = ${now},
        profile_updated_at = case
          when coalesce(${nickname ?? null}, accounts.nickname) is distinct from accounts.nickname
            or coalesce(${avatarUrl ?? null}, accounts.avatar_url) is distinct from accounts.avatar_url
          then ${now} else accounts.profile_updated_at end
    from linked left join avatars on avatars.account_id = linked.account_id
    where accounts.id = linked.account_id
    returning accounts.*,
      avatars.source_url as avatar_source_url, avatars.content_type as avatar_content_type,
      avatars.etag as avatar_etag, avatars.updated_at as avatar_updated_at,
      (select scopes from consents
       where consents.account_id = accounts.id and consents.client_id = ${options.consentFor ?? null}
      ) as consent_scopes
  `.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const {
    avatar_source_url: sourceUrl,
    avatar_content_type: contentType,
    avatar_etag: etag,
    avatar_updated_at: updatedAt,
    consent_scopes: consentScopes,
    ...account
  } = row;
  const avatar =
    sourceUrl !== null && contentType !== null && etag !== null && updatedAt !== null
      ? { accountId: account.id, sourceUrl, contentType, etag, updatedAt: new Date(updatedAt) }
      : null;
  return {
    account,
    created: false,
    identityLinked: false,
    alongside: { avatar, consentScopes: new Set(consentScopes ?? []) },
  };
}

/** What linkKnownPerson's statement returns besides the account's own columns. */
interface KnownPersonExtras {
  avatar_source_url: string | null;
  avatar_content_type: AvatarInfo['contentType'] | null;
  avatar_etag: string | null;
  avatar_updated_at: Date | string | null;
  consent_scopes: string[] | null;
}

/** Every case, the first login and the conflict included, step by step in one transaction. */
async function linkInTransaction(
  db: Kysely<Database>,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  inTransaction: InTransaction<LinkResult> | undefined,
): Promise<LinkResult> {
  return db.transaction().execute(async (trx) => {
    const { account, created } = await findOrCreateAccount(trx, identity, now);
    const identityLinked = await upsertIdentity(trx, identity, account.id, now, created);
    const link = created
      ? { account, created, identityLinked }
      : {
          account: await refreshAccount(trx, account, identity, now, identityLinked),
          created,
          identityLinked,
        };
    await inTransaction?.(trx, link);
    return link;
  });
}

async function findOrCreateAccount(
  trx: Transaction<Database>,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
): Promise<{ account: Account; created: boolean }> {
  const existing = await findAccountByUnionid(trx, identity.unionid);
  if (existing) return { account: existing, created: false };

  const inserted = await trx
    .insertInto('accounts')
    .values({
      subject: identity.unionid,
      nickname: presentNickname(identity.profile?.nickname) ?? null,
      avatar_url: presentAvatar(identity.profile?.avatarUrl) ?? null,
      created_at: now,
      updated_at: now,
      profile_updated_at: now,
      last_login_at: now,
    })
    // A concurrent first login of the same person inserted it first: PostgreSQL waits for
    // that transaction, then this does nothing and the lookup below sees its row.
    .onConflict((oc) => oc.column('subject').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { account: inserted, created: true };

  const raced = await findAccountBySubject(trx, identity.unionid);
  if (!raced) throw new Error('account vanished while linking an identity');
  return { account: raced, created: false };
}

async function upsertIdentity(
  trx: Transaction<Database>,
  identity: WeChatIdentity & { unionid: string },
  accountId: string,
  now: Date,
  /** The account was created a moment ago: the identity cannot have been linked to it before. */
  accountIsNew: boolean,
): Promise<boolean> {
  const before = accountIsNew ? undefined : await ownerOf(trx, identity);
  const linked = await trx
    .insertInto('identities')
    .values({
      appid: identity.appid,
      openid: identity.openid,
      account_id: accountId,
      kind: identity.kind,
      unionid: identity.unionid,
      created_at: now,
      updated_at: now,
      last_login_at: now,
    })
    .onConflict((oc) =>
      oc
        .columns(['appid', 'openid'])
        .doUpdateSet((eb) => ({
          kind: eb.ref('excluded.kind'),
          unionid: eb.ref('excluded.unionid'),
          updated_at: eb.ref('excluded.updated_at'),
          last_login_at: eb.ref('excluded.last_login_at'),
        }))
        .where('identities.account_id', '=', accountId),
    )
    .returning('account_id')
    .executeTakeFirst();
  if (linked) return before === undefined;
  // Throwing rolls the transaction back, including an account created a moment ago. The owner
  // read before the upsert: a row inserted concurrently since is another account's too.
  const owner = before ?? (await ownerOf(trx, identity));
  throw new IdentityConflictError(identity.appid, owner?.account_id ?? 'unknown', accountId);
}

async function ownerOf(
  trx: Transaction<Database>,
  identity: WeChatIdentity,
): Promise<{ account_id: string } | undefined> {
  return trx
    .selectFrom('identities')
    .select('account_id')
    .where('appid', '=', identity.appid)
    .where('openid', '=', identity.openid)
    .executeTakeFirst();
}

async function refreshAccount(
  trx: Transaction<Database>,
  account: Account,
  identity: WeChatIdentity,
  now: Date,
  identityLinked: boolean,
): Promise<Account> {
  const { nickname, avatar_url, changed } = refreshedProfile(account, identity, identityLinked);
  return trx
    .updateTable('accounts')
    .set({
      nickname,
      avatar_url,
      updated_at: now,
      last_login_at: now,
      profile_updated_at: changed ? now : account.profile_updated_at,
    })
    .where('id', '=', account.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * The nickname and avatar URL the account is to have after a login with `identity`, and whether
 * what its claims show changed (profile_updated_at, the updated_at claim): the profile, or the
 * identities when this one was linked now. linkKnownPerson's statement applies the same rule in SQL.
 */
function refreshedProfile(
  account: Account,
  identity: WeChatIdentity,
  identityLinked: boolean,
): { nickname: string | null; avatar_url: string | null; changed: boolean } {
  const nickname = nextNickname(account.nickname, identity.profile?.nickname);
  const avatar_url = nextAvatar(account.avatar_url, identity.profile?.avatarUrl);
  const changed = identityLinked || nickname !== account.nickname || avatar_url !== account.avatar_url;
  return { nickname, avatar_url, changed };
}

/**
 * The person's identities in one app, by account, the most recently used first: how a mini
 * program's access token (which names the account and, through its client, the app) finds the
 * openid WeChat knows the person by there. Almost always one; a recovered account whose old WeChat
 * logged in again holds two (see recoverAccountByPhone), and the token's grant then says which
 * (src/mini-program/grant-identities.ts).
 */
export async function findAppIdentities(db: Db, accountId: string, appid: string): Promise<Identity[]> {
  if (!isUuid(accountId)) return [];
  return db
    .selectFrom('identities')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('appid', '=', appid)
    .orderBy('last_login_at', 'desc')
    .execute();
}

/**
 * Profile fields from outside a login (a mini program's decrypted user data), under the same rules
 * as a login: blanks never overwrite, WeChat's placeholders never replace a real value.
 */
export async function updateAccountProfile(
  db: Db,
  accountId: string,
  profile: WeChatProfile,
  now: Date,
): Promise<Account | undefined> {
  const account = await findAccountById(db, accountId);
  if (!account) return undefined;
  const nickname = nextNickname(account.nickname, profile.nickname);
  const avatarUrl = nextAvatar(account.avatar_url, profile.avatarUrl);
  if (nickname === account.nickname && avatarUrl === account.avatar_url) return account;
  const updated = await db
    .updateTable('accounts')
    .set({ nickname, avatar_url: avatarUrl, updated_at: now, profile_updated_at: now })
    .where('id', '=', accountId)
    .returningAll()
    .executeTakeFirst();
  if (updated) accountWritten(updated);
  return updated;
}

/** What binding a verified phone did. */
export interface PhoneBinding {
  /** The account the caller's identity belongs to now. */
  account: Account;
  /**
   * Set when the phone recovered a waiting account (see recoverAccountByPhone): the subject of the
   * fresh account the identity came from, which no longer exists.
   */
  removedSubject?: string;
}

/**
 * Binds a phone number WeChat vouched for (E.164) to the account as verified, and recovers an
 * account whose WeChat was unbound (see recoverAccountByPhone), in one transaction; `onRecovered`
 * runs in it after a recovery. Every binding looks for a recovery, not only the account's first:
 * one that found nothing (another number first, the waiting account busy) may be tried again.
 * Undefined when there is no such account.
 */
export async function setVerifiedPhoneNumber(
  db: Kysely<Database>,
  accountId: string,
  phoneNumber: string,
  now: Date,
  onRecovered?: InTransaction<Required<PhoneBinding>>,
): Promise<PhoneBinding | undefined> {
  if (!isUuid(accountId)) return undefined;
  const binding = await db.transaction().execute(async (trx): Promise<PhoneBinding | undefined> => {
    const before = await findAccountById(trx, accountId);
    const unchanged = before?.phone_number === phoneNumber && before.phone_number_verified;
    const account = await trx
      .updateTable('accounts')
      .set({
        phone_number: phoneNumber,
        phone_number_verified: true,
        phone_verified_at: now,
        updated_at: now,
        ...(unchanged ? {} : { profile_updated_at: now }),
      })
      .where('id', '=', accountId)
      .returningAll()
      .executeTakeFirst();
    if (!account) return undefined;
    const recovered = await recoverAccountByPhone(trx, account, now);
    if (!recovered) return { account };
    const binding = { account: recovered, removedSubject: account.subject };
    await onRecovered?.(trx, binding);
    return binding;
  });
  if (binding?.removedSubject) accountForgotten(accountId);
  if (binding) accountWritten(binding.account);
  return binding;
}

/**
 * How new an account must be for a phone it proves to fold it into a waiting one: the recovery is
 * one sitting (log in through the mini program, tap the phone button). An account someone has had
 * longer is theirs, and a phone number it proves (China reassigns numbers) must not hand it over to
 * whoever bound that number before.
 */
export const RECOVERY_WINDOW_MS = 30 * 60_000;

/**
 * How long an account waits to be recovered after its last WeChat was unbound (its updated_at, which
 * nothing changes while it has no identity). Chinese carriers give a cancelled number to someone
 * else after a freeze of about 90 days: without a bound, whoever holds the number then (months or
 * years later) could prove it and receive the account. 30 days leave the person time to set up a
 * new WeChat and stay well inside that freeze.
 */
export const RECOVERABLE_AFTER_UNBINDING_MS = 30 * 24 * 60 * 60_000;

/**
 * Unbinding a person's last WeChat identity is allowed only while a verified phone remains, so that
 * they can come back: they log in through the mini program (with any WeChat, which creates a fresh
 * account for a new unionid), prove the same phone, and here that fresh account's identities move to
 * the waiting account and the fresh one is removed. The waiting account keeps its subject (`sub`).
 * The mini program's tokens named the fresh account, which is gone: its next token exchange logs in
 * as the recovered one.
 *
 * Only a fresh account qualifies: created within RECOVERY_WINDOW_MS, after the waiting account last
 * changed, and all its identities the new WeChat's own (its unionid, so none came from elsewhere:
 * the person may have scanned the website's QR code before opening the mini program). Only a
 * waiting account qualifies: no identity left, this same verified phone, and unbound within
 * RECOVERABLE_AFTER_UNBINDING_MS; with several such accounts nothing is moved (an operator decides).
 * The waiting account is locked and checked again before anything moves, so two fresh accounts
 * proving the phone at once cannot both fold into it, nor one into an account deleted meanwhile.
 */
async function recoverAccountByPhone(
  trx: Transaction<Database>,
  fresh: Account,
  now: Date,
): Promise<Account | undefined> {
  const phone = fresh.phone_number;
  if (!phone || !fresh.phone_number_verified) return undefined;
  if (now.getTime() - new Date(fresh.created_at).getTime() > RECOVERY_WINDOW_MS) return undefined;
  const identities = await trx
    .selectFrom('identities')
    .select('unionid')
    .where('account_id', '=', fresh.id)
    .execute();
  if (identities.length === 0 || identities.some((identity) => identity.unionid !== fresh.subject))
    return undefined;
  const waitingSince = new Date(now.getTime() - RECOVERABLE_AFTER_UNBINDING_MS);
  const waiting = await trx
    .selectFrom('accounts')
    .selectAll()
    .where('phone_number', '=', phone)
    .where('phone_number_verified', '=', true)
    .where('id', '!=', fresh.id)
    .where('updated_at', '>=', waitingSince)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb.selectFrom('identities').select('appid').whereRef('identities.account_id', '=', 'accounts.id'),
        ),
      ),
    )
    .limit(2)
    .execute();
  if (waiting.length !== 1) return undefined;
  const target = waiting[0] as Account;
  const recoverable = (account: Account) =>
    account.phone_number === phone &&
    account.phone_number_verified &&
    account.updated_at.getTime() >= waitingSince.getTime() &&
    fresh.created_at.getTime() >= account.updated_at.getTime();
  if (!recoverable(target)) return undefined;
  const locked = await lockStillWaiting(trx, target.id);
  if (!locked || !recoverable(locked)) return undefined;
  await trx
    .updateTable('identities')
    .set({ account_id: target.id, updated_at: now })
    .where('account_id', '=', fresh.id)
    .execute();
  await trx.deleteFrom('accounts').where('id', '=', fresh.id).execute();
  // Its identities changed (the wechat claims show the fresh account's now): a profile change too.
  return trx
    .updateTable('accounts')
    .set({ updated_at: now, last_login_at: now, profile_updated_at: now })
    .where('id', '=', target.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * The waiting account locked and read again, if it still exists and still has no identity;
 * undefined otherwise. The lock waits for a transaction changing it (a deletion, another
 * recovery), and what that committed is what this reads: the row itself (gone when the deletion
 * committed first: moving identities to it would break their foreign key) and, in a statement of
 * its own run after the lock, its identities (PostgreSQL's read committed). SQLite's one connection
 * is this transaction's: nothing can have come between.
 */
async function lockStillWaiting(trx: Transaction<Database>, accountId: string): Promise<Account | undefined> {
  const account = await trx
    .selectFrom('accounts')
    .selectAll()
    .where('id', '=', accountId)
    .$if(!isSqlite(trx), (qb) => qb.forUpdate())
    .executeTakeFirst();
  if (!account) return undefined;
  const linked = await trx
    .selectFrom('identities')
    .select('appid')
    .where('account_id', '=', accountId)
    .limit(1)
    .executeTakeFirst();
  return linked === undefined ? account : undefined;
}

/**
 * What a nickname or an avatar URL cannot keep: control characters (C0 and DEL, which include NUL, which PostgreSQL
 * refuses in text with error 22021 and so would fail the login; and C1) and lone UTF-16 surrogates,
 * which have no UTF-8 form (they would reach a page or the database as U+FFFD). Format characters
 * stay: emoji sequences need their zero-width joiners, and so do several scripts.
 */
const UNKEEPABLE = /[\p{Cc}\p{Cs}]/gu;

/**
 * A nickname as WeChat gives it (documented as any UTF-8) made fit to store and show: without the
 * characters above, trimmed; undefined when nothing is left, as for a blank one.
 */
export function presentNickname(value: string | undefined): string | undefined {
  const trimmed = value?.replace(UNKEEPABLE, '').trim();
  return trimmed ? trimmed : undefined;
}

/**
 * An avatar URL as WeChat gives it, or undefined when blank or unusable: a control character (NUL
 * would fail the statement, as in a nickname) or a lone surrogate has no place in a URL, so such a
 * value counts as no avatar rather than being repaired into another address; and only an absolute
 * http(s) URL is one (WeChat's are https), never javascript: or data: for a relying party to follow.
 */
export function presentAvatar(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  // search(), unlike test(), ignores where the global expression's last match ended.
  if (!trimmed || trimmed.search(UNKEEPABLE) !== -1) return undefined;
  return /^https?:\/\/[^/?#]/i.test(trimmed) && URL.canParse(trimmed) ? trimmed : undefined;
}

/** A blank never overwrites; a placeholder only fills an empty (or placeholder) value. */
function nextNickname(current: string | null, incoming: string | undefined): string | null {
  const value = presentNickname(incoming);
  if (value === undefined) return current;
  if (isPlaceholderNickname(value) && current !== null && !isPlaceholderNickname(current)) return current;
  return value;
}

function nextAvatar(current: string | null, incoming: string | undefined): string | null {
  const value = presentAvatar(incoming);
  if (value === undefined) return current;
  if (isPlaceholderAvatar(value) && current !== null && !isPlaceholderAvatar(current)) return current;
  return value;
}

export function isPlaceholderNickname(nickname: string): boolean {
  return nickname.trim() === PLACEHOLDER_NICKNAME;
}

/**
 * A profile value as a claim. WeChat's placeholders (the nickname 微信用户 and the grey avatar, given
 * when a person shares no profile) are kept with the account until a real value replaces them, but
 * are not the person's name or picture: the claim is left out, as OIDC Core 5.1 has unknown claims
 * be, rather than every such person being called "WeChat user" by the relying party.
 */
export function published(
  value: string | null,
  isPlaceholder: (value: string) => boolean,
): string | undefined {
  return value === null || isPlaceholder(value) ? undefined : value;
}

/** WeChat serves the default avatar over http or https and at sizes /0, /46, /64, /96, /132. */
export function isPlaceholderAvatar(url: string): boolean {
  const normalised = url
    .trim()
    .replace(/^https?:\/\//i, '')
    .replace(/\/\d*$/, '');
  return normalised === PLACEHOLDER_AVATAR;
}

// A malformed id would make PostgreSQL reject the query ("invalid input syntax for type
// uuid"); callers asking for an account by a made-up id just get "not found".
function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
