import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  forgetConsent,
  listConsents,
  rememberConsent,
  rememberedScopes,
} from '../../src/accounts/consents.ts';
import { linkIdentity } from '../../src/accounts/repository.ts';
import type { Database } from '../../src/storage/schema.ts';
import { serviceAvailable } from '../helpers/services.ts';
import {
  openPostgresBackend,
  openSqliteAccountsBackend,
  type SqlBackend,
  useSqlBackend,
} from './backends.ts';

const postgres = await serviceAvailable('postgres');

describeConsents('PostgreSQL', openPostgresBackend, { skip: !postgres });
describeConsents('SQLite', openSqliteAccountsBackend);

function describeConsents(name: string, open: () => Promise<SqlBackend>, options: { skip?: boolean } = {}) {
  describe.skipIf(options.skip ?? false)(`remembered consents on ${name}`, () => {
    let db: Kysely<Database>;
    useSqlBackend(open, (backend) => {
      db = backend.db;
    });

    const now = new Date('2026-12-03T08:00:00.000Z');
    async function newAccount() {
      const unionid = `u-${randomUUID()}`;
      const identity = { kind: 'website' as const, appid: 'wx-web', openid: `o-${randomUUID()}`, unionid };
      const { account } = await linkIdentity(db, { ...identity, snapshotUser: false }, now);
      return account;
    }

    it('remembers scopes per client, widens and never narrows them', async () => {
      const { subject } = await newAccount();
      expect([...(await rememberedScopes(db, subject, 'rp'))]).toEqual([]);
      await rememberConsent(db, subject, 'rp', ['profile', 'openid'], now);
      await rememberConsent(db, subject, 'rp', ['openid'], now);
      await rememberConsent(db, subject, 'rp', ['phone', 'openid'], now);
      // Allowed a second later: the list is in the order the clients were first allowed.
      await rememberConsent(db, subject, 'other-rp', ['openid'], new Date(now.getTime() + 1000));
      expect([...(await rememberedScopes(db, subject, 'rp'))]).toEqual(['openid', 'phone', 'profile']);
      expect(await listConsents(db, subject)).toEqual([
        { clientId: 'rp', scopes: ['openid', 'phone', 'profile'] },
        { clientId: 'other-rp', scopes: ['openid'] },
      ]);
    });

    it('forgets one client and reports whether there was anything', async () => {
      const { subject } = await newAccount();
      await rememberConsent(db, subject, 'rp', ['openid'], now);
      await rememberConsent(db, subject, 'other-rp', ['openid'], now);
      expect(await forgetConsent(db, subject, 'rp')).toBe(true);
      expect(await forgetConsent(db, subject, 'rp')).toBe(false);
      expect((await listConsents(db, subject)).map((consent) => consent.clientId)).toEqual(['other-rp']);
    });

    it("keeps each person's consents apart, and erases them with the account", async () => {
      const alice = await newAccount();
      const bob = await newAccount();
      await rememberConsent(db, alice.subject, 'rp', ['openid', 'profile'], now);
      await rememberConsent(db, bob.subject, 'rp', ['openid'], now);
      expect([...(await rememberedScopes(db, bob.subject, 'rp'))]).toEqual(['openid']);
      expect(await forgetConsent(db, bob.subject, 'other-rp')).toBe(false);

      await db.deleteFrom('identities').where('account_id', '=', alice.id).execute();
      await db.deleteFrom('accounts').where('id', '=', alice.id).execute();
      const left = await db
        .selectFrom('consents')
        .select('account_id')
        .where('account_id', '=', alice.id)
        .execute();
      expect(left).toEqual([]);
      expect(await listConsents(db, bob.subject)).toEqual([{ clientId: 'rp', scopes: ['openid'] }]);
    });

    it('remembers nothing for an unknown subject or an empty consent', async () => {
      const nobodysClient = `rp-${randomUUID()}`;
      await rememberConsent(db, `u-${randomUUID()}`, nobodysClient, ['openid'], now);
      const rows = await db
        .selectFrom('consents')
        .select('account_id')
        .where('client_id', '=', nobodysClient)
        .execute();
      expect(rows).toEqual([]);
      const { subject } = await newAccount();
      await rememberConsent(db, subject, 'rp', [], now);
      expect(await listConsents(db, subject)).toEqual([]);
    });
  });
}
