import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { rememberConsent } from '../../src/accounts/consents.ts';
import {
  findAccountById,
  findAccountBySubject,
  findAccountByUnionid,
  IdentityConflictError,
  isPlaceholderAvatar,
  linkIdentity,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import type { Database } from '../../src/storage/schema.ts';
import { serviceAvailable } from '../helpers/services.ts';
import {
  openPostgresBackend,
  openSqliteAccountsBackend,
  type SqlBackend,
  useSqlBackend,
  websiteLogin,
} from './backends.ts';

const postgres = await serviceAvailable('postgres');

const PLACEHOLDER_AVATAR =
  'https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132';

describeAccountsRepository('PostgreSQL', openPostgresBackend, { skip: !postgres });
describeAccountsRepository('SQLite', openSqliteAccountsBackend);

describe('isPlaceholderAvatar', () => {
  it.each([
    PLACEHOLDER_AVATAR,
    PLACEHOLDER_AVATAR.replace('https:', 'http:'),
    PLACEHOLDER_AVATAR.replace(/\/132$/, '/0'),
    PLACEHOLDER_AVATAR.replace(/\/132$/, '/46'),
  ])('recognises WeChat’s grey default avatar %s', (url) => {
    expect(isPlaceholderAvatar(url)).toBe(true);
  });

  it('does not mistake a real avatar for the placeholder', () => {
    expect(isPlaceholderAvatar('https://thirdwx.qlogo.cn/mmopen/vi_32/RealPersonAvatar/132')).toBe(false);
  });
});

function describeAccountsRepository(
  name: string,
  open: () => Promise<SqlBackend>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`accounts repository on ${name}`, () => {
    let db: Kysely<Database>;
    useSqlBackend(open, (backend) => {
      db = backend.db;
    });

    const t0 = new Date('2026-11-25T08:00:00.000Z');
    const later = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
    const login = websiteLogin;

    it('creates an account on the first login, with subject = unionid, the profile and the identity', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      const { account, created } = await linkIdentity(db, identity, t0);
      expect(created).toBe(true);
      expect(account).toMatchObject({
        subject: unionid,
        nickname: 'Alice',
        avatar_url: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
      });
      expect(account.last_login_at.getTime()).toBe(t0.getTime());
      expect(await findAccountBySubject(db, unionid)).toEqual(account);
      expect(await findAccountById(db, account.id)).toEqual(account);
      expect(await listIdentities(db, account.id)).toMatchObject([
        { appid: 'wx-website', openid: identity.openid, kind: 'website', unionid, account_id: account.id },
      ]);
    });

    it('finds the same account on the next login with the same app and records the login time', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      const first = await linkIdentity(db, identity, t0);
      const second = await linkIdentity(db, identity, later(5));
      expect(second.created).toBe(false);
      expect(second.identityLinked).toBe(false);
      expect(second.account.id).toBe(first.account.id);
      expect(second.account.last_login_at.getTime()).toBe(later(5).getTime());
      const [linked] = await listIdentities(db, first.account.id);
      expect(linked?.last_login_at.getTime()).toBe(later(5).getTime());
      expect(linked?.created_at.getTime()).toBe(t0.getTime());
    });

    it('links a second app with the same unionid to the same account', async () => {
      const unionid = `u-${randomUUID()}`;
      const website = await linkIdentity(db, login(unionid), t0);
      const miniProgram = await linkIdentity(
        db,
        login(unionid, { kind: 'mini_program', appid: 'wx-mini', profile: undefined }),
        later(1),
      );
      expect(website.identityLinked).toBe(true);
      expect(miniProgram).toMatchObject({
        created: false,
        identityLinked: true,
        account: { id: website.account.id },
      });
      const identities = await listIdentities(db, website.account.id);
      expect(identities.map((i) => [i.appid, i.kind])).toEqual([
        ['wx-website', 'website'],
        ['wx-mini', 'mini_program'],
      ]);
    });

    it('says whether the identity is new also when a placeholder profile takes the step-by-step path', async () => {
      const unionid = `u-${randomUUID()}`;
      const placeholder = { nickname: '微信用户' };
      const first = await linkIdentity(db, login(unionid), t0);
      const again = login(unionid, { appid: 'wx-oa', kind: 'official_account', profile: placeholder });
      const linked = await linkIdentity(db, again, later(1));
      const repeated = await linkIdentity(db, again, later(2));
      expect(linked).toMatchObject({ created: false, identityLinked: true, account: { nickname: 'Alice' } });
      expect(repeated).toMatchObject({
        created: false,
        identityLinked: false,
        account: { id: first.account.id },
      });
    });

    it('finds an account by unionid through an identity, or else by subject', async () => {
      const unionid = `u-${randomUUID()}`;
      const { account } = await linkIdentity(db, login(unionid), t0);
      expect((await findAccountByUnionid(db, unionid))?.id).toBe(account.id);

      const bare = `u-${randomUUID()}`;
      const inserted = await db
        .insertInto('accounts')
        .values({ subject: bare, profile_updated_at: t0 })
        .returningAll()
        .executeTakeFirstOrThrow();
      expect((await findAccountByUnionid(db, bare))?.id).toBe(inserted.id);
      expect(await findAccountByUnionid(db, `u-${randomUUID()}`)).toBeUndefined();
    });

    it('prefers the account an identity links to over an account whose subject merely equals the unionid', async () => {
      const unionid = `u-${randomUUID()}`;
      const linked = await db
        .insertInto('accounts')
        .values({ subject: `other-${randomUUID()}`, profile_updated_at: t0 })
        .returningAll()
        .executeTakeFirstOrThrow();
      await db
        .insertInto('identities')
        .values({
          appid: 'wx-website',
          openid: `o-${randomUUID()}`,
          account_id: linked.id,
          kind: 'website',
          unionid,
        })
        .execute();
      await db.insertInto('accounts').values({ subject: unionid, profile_updated_at: t0 }).execute();
      expect((await findAccountByUnionid(db, unionid))?.id).toBe(linked.id);
    });

    it('answers "not found" for an account id that is not a uuid', async () => {
      expect(await findAccountById(db, 'not-a-uuid')).toBeUndefined();
      expect(await listIdentities(db, 'not-a-uuid')).toEqual([]);
    });

    it('never overwrites the profile with blanks', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      await linkIdentity(db, identity, t0);
      const { account } = await linkIdentity(
        db,
        { ...identity, profile: { nickname: '  ', avatarUrl: '' } },
        later(1),
      );
      expect(account).toMatchObject({
        nickname: 'Alice',
        avatar_url: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
      });
    });

    it('never overwrites a real nickname or avatar with WeChat’s placeholders (any scheme, any size)', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      await linkIdentity(db, identity, t0);
      const { account } = await linkIdentity(
        db,
        {
          ...identity,
          profile: {
            nickname: '微信用户',
            avatarUrl: PLACEHOLDER_AVATAR.replace('https:', 'http:').replace(/132$/, '0'),
          },
        },
        later(1),
      );
      expect(account).toMatchObject({
        nickname: 'Alice',
        avatar_url: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
      });
    });

    it('keeps placeholders when there is nothing better, and replaces them with real values later', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid, { profile: { nickname: '微信用户', avatarUrl: PLACEHOLDER_AVATAR } });
      const first = await linkIdentity(db, identity, t0);
      expect(first.account).toMatchObject({ nickname: '微信用户', avatar_url: PLACEHOLDER_AVATAR });
      const { account } = await linkIdentity(
        db,
        {
          ...identity,
          profile: { nickname: 'Bob', avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/bob/132' },
        },
        later(1),
      );
      expect(account).toMatchObject({
        nickname: 'Bob',
        avatar_url: 'https://thirdwx.qlogo.cn/mmopen/vi_32/bob/132',
      });
    });

    it('updates the profile with new real values', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      await linkIdentity(db, identity, t0);
      const { account } = await linkIdentity(db, { ...identity, profile: { nickname: 'Alice 2' } }, later(1));
      expect(account.nickname).toBe('Alice 2');
      expect(account.avatar_url).toBe('https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132');
      expect(account.updated_at.getTime()).toBe(later(1).getTime());
    });

    it('moves profile_updated_at (the updated_at claim) only when what the claims show changes', async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      const profileTime = async () => (await findAccountBySubject(db, unionid))?.profile_updated_at.getTime();
      const first = await linkIdentity(db, identity, t0);
      expect(first.account.profile_updated_at.getTime()).toBe(t0.getTime());

      // The same person again, the same profile: a login, not a change.
      const again = await linkIdentity(db, identity, later(1));
      expect(again.account.updated_at.getTime()).toBe(later(1).getTime());
      expect(again.account.profile_updated_at.getTime()).toBe(t0.getTime());
      // WeChat's placeholders take the step-by-step path, and change nothing either.
      await linkIdentity(db, { ...identity, profile: { nickname: '微信用户' } }, later(2));
      expect(await profileTime()).toBe(t0.getTime());

      await linkIdentity(db, { ...identity, profile: { nickname: 'Alice 2' } }, later(3));
      expect(await profileTime()).toBe(later(3).getTime());
      await linkIdentity(
        db,
        { ...identity, profile: { avatarUrl: 'https://thirdwx.qlogo.cn/a2/132' } },
        later(4),
      );
      expect(await profileTime()).toBe(later(4).getTime());
      // Another app's identity joins the wechat claims.
      const second = login(unionid, { appid: 'wx-other', profile: { nickname: 'Alice 2' } });
      const linked = await linkIdentity(db, second, later(5));
      expect(linked.account.profile_updated_at.getTime()).toBe(later(5).getTime());

      await setVerifiedPhoneNumber(db, linked.account.id, '+8613800000001', later(6));
      expect(await profileTime()).toBe(later(6).getTime());
      await setVerifiedPhoneNumber(db, linked.account.id, '+8613800000001', later(7));
      expect(await profileTime()).toBe(later(6).getTime());
      expect(await unbindIdentity(db, linked.account.id, second, later(8))).toBe('unbound');
      expect(await profileTime()).toBe(later(8).getTime());
    });

    it('folds only one of two fresh accounts proving the same phone at once into the waiting account', async () => {
      const phone = `+86139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
      const before = login(`u-${randomUUID()}`, { kind: 'mini_program', appid: 'wx-mp' });
      const waiting = (await linkIdentity(db, before, t0)).account;
      await setVerifiedPhoneNumber(db, waiting.id, phone, later(1));
      expect(await unbindIdentity(db, waiting.id, before, later(2))).toBe('unbound');
      const fresh = await Promise.all(
        [1, 2].map(async () => {
          const identity = login(`u-${randomUUID()}`, { kind: 'mini_program', appid: 'wx-mp' });
          return (await linkIdentity(db, identity, later(3))).account;
        }),
      );
      const bindings = await Promise.all(
        fresh.map((account) => setVerifiedPhoneNumber(db, account.id, phone, later(4))),
      );
      expect(bindings.filter((binding) => binding?.removedSubject !== undefined)).toHaveLength(1);
      expect(await listIdentities(db, waiting.id)).toHaveLength(1);
    });

    it('creates exactly one account when eight first logins of one person race', async () => {
      const unionid = `u-${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          linkIdentity(db, login(unionid, { appid: `wx-app-${i % 3}`, openid: `o-${unionid}-${i % 3}` }), t0),
        ),
      );
      expect(new Set(results.map((r) => r.account.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const accounts = await db.selectFrom('accounts').select('id').where('subject', '=', unionid).execute();
      expect(accounts).toHaveLength(1);
      expect(await listIdentities(db, results[0]!.account.id)).toHaveLength(3);
    });

    it('refuses, writing nothing, when the app identity already belongs to another account', async () => {
      const owner = `u-${randomUUID()}`;
      const intruder = `u-${randomUUID()}`;
      const identity = login(owner);
      const { account } = await linkIdentity(db, identity, t0);

      const attempt = linkIdentity(
        db,
        { ...identity, unionid: intruder, profile: { nickname: 'Mallory' } },
        later(1),
      );
      await expect(attempt).rejects.toBeInstanceOf(IdentityConflictError);

      expect(await findAccountBySubject(db, intruder)).toBeUndefined();
      expect(await findAccountBySubject(db, owner)).toEqual(account);
      const [linked] = await listIdentities(db, account.id);
      expect(linked).toMatchObject({ unionid: owner, account_id: account.id });
      expect(linked?.last_login_at.getTime()).toBe(t0.getTime());
    });

    it('keeps the openid and unionid out of the conflict message', async () => {
      const identity = login(`u-${randomUUID()}`);
      await linkIdentity(db, identity, t0);
      const error = await linkIdentity(db, { ...identity, unionid: `u-${randomUUID()}` }, t0).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(IdentityConflictError);
      expect((error as Error).message).not.toContain(identity.openid);
      expect((error as Error).message).not.toContain(identity.unionid);
    });

    it('deletes the identities of a deleted account', async () => {
      const { account } = await linkIdentity(db, login(`u-${randomUUID()}`), t0);
      await db.deleteFrom('accounts').where('id', '=', account.id).execute();
      expect(await listIdentities(db, account.id)).toEqual([]);
    });

    it("reads a returning person's stored avatar and remembered consent with the account, in the same statement", async () => {
      const unionid = `u-${randomUUID()}`;
      const identity = login(unionid);
      const first = await linkIdentity(db, identity, t0, { consentFor: 'rp' });
      // A first login takes the step-by-step path: nothing read alongside.
      expect(first.alongside).toBeUndefined();

      const bare = await linkIdentity(db, identity, later(1), { consentFor: 'rp' });
      expect(bare.alongside).toEqual({ avatar: null, consentScopes: new Set() });

      const stored = {
        accountId: first.account.id,
        sourceUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
        contentType: 'image/png' as const,
        etag: '"abc"',
        updatedAt: later(2),
      };
      await createSqlAvatarStore(db).put({ ...stored, bytes: new Uint8Array([1, 2, 3]) });
      await rememberConsent(db, unionid, 'rp', ['openid', 'profile'], later(2));
      await rememberConsent(db, unionid, 'other-rp', ['openid', 'phone'], later(2));
      const next = await linkIdentity(db, identity, later(3), { consentFor: 'rp' });
      expect(next.alongside).toEqual({ avatar: stored, consentScopes: new Set(['openid', 'profile']) });
      expect(next.account.last_login_at.getTime()).toBe(later(3).getTime());
      // No client named: no consent read.
      expect((await linkIdentity(db, identity, later(4))).alongside?.consentScopes).toEqual(new Set());
    });
  });
}
