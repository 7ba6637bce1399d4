import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  findAccountById,
  findAccountBySubject,
  linkIdentity,
  listIdentities,
} from '../../src/accounts/repository.ts';
import type { Database } from '../../src/storage/schema.ts';
import { deletedWhileRunning } from '../helpers/deletion-race.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPostgresBackend, useSqlBackend, websiteLogin } from './backends.ts';

const postgres = await serviceAvailable('postgres');

/**
 * Regression: a login whose account was deleted (account page, delete-account) after the login found
 * it and before its identity row was written failed with PostgreSQL's foreign-key violation (23503),
 * and the person saw the generic error page. The deletion is held open in a transaction of its own
 * while the login runs, so the login reads the account as it was and then waits for the deletion's
 * row locks; the deletion commits once PostgreSQL reports the login waiting on it
 * (test/helpers/deletion-race.ts). No timing decides the interleaving. The embedded SQLite store cannot
 * interleave them (see linkIdentity), so this is PostgreSQL's only.
 */
describe.skipIf(!postgres)('a login racing the deletion of its account, on PostgreSQL', () => {
  let db: Kysely<Database>;
  useSqlBackend(openPostgresBackend, (backend) => {
    db = backend.db;
  });

  const t0 = new Date('2026-12-08T08:00:00.000Z');
  const later = new Date('2026-12-08T08:05:00.000Z');
  const login = websiteLogin;

  it.each([
    ['a returning login through the same app (one statement)', {}],
    [
      'the first login through another app (the step-by-step transaction, which links and announces)',
      { appid: 'wx-oa', kind: 'official_account' },
    ],
    [
      'a returning login with a placeholder profile (the step-by-step transaction)',
      { profile: { nickname: '微信用户' } },
    ],
  ] as const)('creates the new account at once for %s', async (_, overrides) => {
    const unionid = `u-${randomUUID()}`;
    const first = login(unionid);
    const old = (await linkIdentity(db, first, t0)).account;
    // Another app knows the person by another openid.
    const again = 'appid' in overrides ? login(unionid, overrides) : { ...first, ...overrides };

    const result = await deletedWhileRunning(db, old.id, () => linkIdentity(db, again, later));

    expect(await findAccountById(db, old.id)).toBeUndefined();
    expect(result).toMatchObject({ created: true, identityLinked: true, account: { subject: unionid } });
    expect(result.account.id).not.toBe(old.id);
    expect(await findAccountBySubject(db, unionid)).toEqual(result.account);
    expect(await listIdentities(db, result.account.id)).toMatchObject([
      { appid: again.appid, openid: again.openid, unionid, account_id: result.account.id },
    ]);
  });
});
