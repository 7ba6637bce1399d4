import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { fromSqlite, toSqlite } from '../storage/sqlite/kysely-dialect.ts';
import type { WeChatIdentity } from '../upstream/wechat/types.ts';
import type { AvatarInfo } from './avatars/store.ts';
import type { Account, LinkOptions, LinkResult } from './repository.ts';

/**
 * The nickname and avatar URL an account is to have after a returning login, and whether what its
 * claims show changed (repository.ts's rules, refreshedProfile).
 */
export type Refresh = (account: Account) => {
  nickname: string | null;
  avatar_url: string | null;
  changed: boolean;
};

/**
 * A returning person's login in the embedded accounts file, as PostgreSQL's one statement does it
 * (repository.ts, linkKnownPerson): the account found by unionid, this app's identity (linked to
 * it already) touched, the profile refreshed, and the stored avatar and remembered consent read
 * alongside.
 * Prepared statements of node:sqlite, run synchronously on the file's one connection: through
 * Kysely the same steps cost the login about 0.2 ms of building queries (6 Dec, bench/FINDINGS.md),
 * here some 50 microseconds. The two writes commit together.
 *
 * Undefined, with nothing written, when the account does not exist yet, or the identity is not
 * linked yet or belongs to another account: the step-by-step transaction handles those (creating,
 * linking with its account event, or refusing).
 */
export function linkReturningPerson(
  database: DatabaseSync,
  identity: WeChatIdentity & { unionid: string },
  now: Date,
  options: LinkOptions,
  refresh: Refresh,
): LinkResult | undefined {
  const statements = statementsOf(database);
  const { appid, openid, kind, unionid } = identity;
  const found = statements.accountOfUnionid.get(unionid, unionid);
  if (!found) return undefined;
  const account = fromSqlite(found) as Account;
  const prior = statements.identityOwner.get(appid, openid);
  if (prior?.account_id !== account.id) return undefined;

  const at = toSqlite(now);
  const next = refresh(account);
  const profileAt = next.changed ? at : toSqlite(account.profile_updated_at);
  database.exec('begin');
  let updated: Account;
  try {
    // An identity whose kind and unionid are as stored only has its times moved: SQLite rewrites
    // the unionid index's entry whenever the update's set list names the column, unchanged or not,
    // one more page in the log per login (the statement and its commit took 31 microseconds
    // against 17 beside 100,000 identities, 6 Dec).
    if (prior.kind === kind && prior.unionid === unionid) {
      statements.touchIdentity.run(at, at, appid, openid);
    } else {
      statements.updateIdentity.run(kind, unionid, at, at, appid, openid);
    }
    const row = statements.refreshAccount.get(next.nickname, next.avatar_url, at, at, profileAt, account.id);
    if (!row) throw new Error('account vanished while linking an identity');
    updated = fromSqlite(row) as Account;
    database.exec('commit');
  } catch (error) {
    database.exec('rollback');
    throw error;
  }
  return {
    account: updated,
    created: false,
    identityLinked: false,
    alongside: {
      avatar: avatarOf(statements, account.id),
      consentScopes: consentOf(statements, account.id, options.consentFor),
    },
  };
}

function avatarOf(statements: Statements, accountId: string): AvatarInfo | null {
  const row = statements.avatar.get(accountId);
  if (!row) return null;
  const avatar = fromSqlite(row);
  return {
    accountId,
    sourceUrl: avatar.source_url as string,
    contentType: avatar.content_type as AvatarInfo['contentType'],
    etag: avatar.etag as string,
    updatedAt: avatar.updated_at as Date,
  };
}

function consentOf(
  statements: Statements,
  accountId: string,
  clientId: string | undefined,
): ReadonlySet<string> {
  if (clientId === undefined) return new Set();
  const row = statements.consent.get(accountId, clientId);
  return new Set(row ? (fromSqlite(row).scopes as string[]) : []);
}

type Statements = ReturnType<typeof prepare>;

const prepared = new WeakMap<DatabaseSync, Statements>();

function statementsOf(database: DatabaseSync): Statements {
  let statements = prepared.get(database);
  if (!statements) {
    statements = prepare(database);
    prepared.set(database, statements);
  }
  return statements;
}

function prepare(database: DatabaseSync) {
  return {
    // repository.ts's accountIdOfUnionid: the identity's account first, then the account created with it.
    accountOfUnionid: database.prepare(`select * from accounts where id = (
      select id from (
        select account_id as id, 0 as rank from identities where unionid = ?
        union all
        select id, 1 as rank from accounts where subject = ?
      ) order by rank limit 1)`),
    identityOwner: database.prepare(
      'select account_id, kind, unionid from identities where appid = ? and openid = ?',
    ),
    updateIdentity: database.prepare(
      'update identities set kind = ?, unionid = ?, updated_at = ?, last_login_at = ? where appid = ? and openid = ?',
    ),
    touchIdentity: database.prepare(
      'update identities set updated_at = ?, last_login_at = ? where appid = ? and openid = ?',
    ),
    refreshAccount: database.prepare(`update accounts
      set nickname = ?, avatar_url = ?, updated_at = ?, last_login_at = ?, profile_updated_at = ?
      where id = ? returning *`),
    avatar: database.prepare(
      'select source_url, content_type, etag, updated_at from avatars where account_id = ?',
    ),
    consent: database.prepare('select scopes from consents where account_id = ? and client_id = ?'),
  } satisfies Record<string, StatementSync>;
}
