import type { Kysely } from 'kysely';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, test } from 'vitest';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { deleteAccount } from '../../src/accounts/deletion.ts';
import {
  findAccountBySubject,
  linkIdentity,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createFindAccount } from '../../src/oidc/find-account.ts';
import type { Database } from '../../src/storage/schema.ts';
import type { WeChatAppKind } from '../../src/upstream/wechat/types.ts';
import { loseIndexRows, signedUpLater } from '../helpers/account-lifecycle.ts';
import { type Bridge, MINI_PROGRAM_APP, startBridge, WEBSITE_AND_MINI_PROGRAM } from '../helpers/bridge.ts';
import { createSandboxUser } from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  miniProgramClient,
  wxLogin,
  wxPhoneCode,
} from '../helpers/mini-program.ts';
import { openSqliteAccountsBackend, type SqlBackend } from '../storage/backends.ts';

const t0 = new Date('2026-11-28T08:00:00.000Z');
const later = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

describe('unbinding rules', () => {
  let backend: SqlBackend;
  let db: Kysely<Database>;
  let n = 0;
  beforeAll(async () => {
    backend = await openSqliteAccountsBackend();
    db = backend.db;
  });
  afterAll(async () => backend?.close());

  /** A person logged in through `kinds`, one identity per app. */
  const person = async (kinds: WeChatAppKind[]) => {
    const unionid = `union-${++n}`;
    let accountId = '';
    for (const [index, kind] of kinds.entries()) {
      const { account } = await linkIdentity(
        db,
        { kind, appid: `wx-app-${index}`, openid: `open-${n}-${index}`, unionid, snapshotUser: false },
        t0,
      );
      accountId = account.id;
    }
    return {
      unionid,
      accountId,
      identity: (index: number) => ({ appid: `wx-app-${index}`, openid: `open-${n}-${index}` }),
    };
  };

  it('unbinds one app while another WeChat identity remains', async () => {
    const p = await person(['website', 'official_account']);
    expect(await unbindIdentity(db, p.accountId, p.identity(0), later(1))).toBe('unbound');
    const left = await listIdentities(db, p.accountId);
    expect(left.map((i) => i.appid)).toEqual(['wx-app-1']);
  });

  it('refuses to unbind the last identity without a verified phone', async () => {
    const p = await person(['website']);
    expect(await unbindIdentity(db, p.accountId, p.identity(0), later(1))).toBe('last_identity_needs_phone');
    expect(await listIdentities(db, p.accountId)).toHaveLength(1);
  });

  it('refuses the second of two unbinds that would leave nothing, without a phone', async () => {
    const p = await person(['website', 'mini_program']);
    expect(await unbindIdentity(db, p.accountId, p.identity(0), later(1))).toBe('unbound');
    expect(await unbindIdentity(db, p.accountId, p.identity(1), later(2))).toBe('last_identity_needs_phone');
  });

  it('unbinds the last identity when a verified phone is bound, keeping the account and its subject', async () => {
    const p = await person(['mini_program']);
    await setVerifiedPhoneNumber(db, p.accountId, '+8613800000001', later(1));
    expect(await unbindIdentity(db, p.accountId, p.identity(0), later(2))).toBe('unbound');
    expect(await listIdentities(db, p.accountId)).toHaveLength(0);
    expect((await findAccountBySubject(db, p.unionid))?.id).toBe(p.accountId);
  });

  it('lets a phone fold only an account made in the last half hour into the account waiting with it', async () => {
    const waiting = await person(['mini_program']);
    await setVerifiedPhoneNumber(db, waiting.accountId, '+8613800000077', later(1));
    expect(await unbindIdentity(db, waiting.accountId, waiting.identity(0), later(2))).toBe('unbound');
    const signUp = async (at: Date) => {
      const unionid = `union-${++n}`;
      const { account } = await linkIdentity(
        db,
        { kind: 'mini_program', appid: 'wx-app-0', openid: `open-${n}-0`, unionid, snapshotUser: false },
        at,
      );
      return account;
    };

    // Someone's account of 31 minutes, proving a number the waiting account has (China reassigns
    // numbers): it stays theirs.
    const established = await signUp(later(3));
    const kept = await setVerifiedPhoneNumber(db, established.id, '+8613800000077', later(34));
    expect(kept?.removedSubject).toBeUndefined();
    expect(kept?.account.id).toBe(established.id);
    expect(await listIdentities(db, waiting.accountId)).toEqual([]);

    // A new WeChat's first minutes: the recovery.
    const fresh = await signUp(later(40));
    const recovered = await setVerifiedPhoneNumber(db, fresh.id, '+8613800000077', later(45));
    expect(recovered?.account.id).toBe(waiting.accountId);
    expect(recovered?.removedSubject).toBe(fresh.subject);
  });

  it('names in wechat_unionid the WeChat used last, when a recovered account holds two', async () => {
    const old = await person(['mini_program']);
    await setVerifiedPhoneNumber(db, old.accountId, '+8613800000088', later(1));
    expect(await unbindIdentity(db, old.accountId, old.identity(0), later(2))).toBe('unbound');
    const renewed = {
      kind: 'mini_program' as const,
      appid: 'wx-app-0',
      openid: `open-new-${n}`,
      snapshotUser: false,
    };
    const { account: fresh } = await linkIdentity(db, { ...renewed, unionid: `union-new-${n}` }, later(3));
    expect((await setVerifiedPhoneNumber(db, fresh.id, '+8613800000088', later(4)))?.account.id).toBe(
      old.accountId,
    );
    const unionidAfter = async () => {
      const found = await createFindAccount(db)({} as never, old.unionid);
      return (await found?.claims('userinfo', 'openid wechat', {}, []))?.wechat_unionid;
    };
    expect(await unionidAfter()).toBe(`union-new-${n}`);
    // The old WeChat logs in again (unbinding is no ban): it is the one used last.
    await linkIdentity(db, { ...renewed, openid: `open-${n}-0`, unionid: old.unionid }, later(5));
    expect(await unionidAfter()).toBe(old.unionid);
    await linkIdentity(db, { ...renewed, unionid: `union-new-${n}` }, later(6));
    expect(await unionidAfter()).toBe(`union-new-${n}`);
  });

  it("answers not_found for another account's identity or an unknown one", async () => {
    const a = await person(['website', 'official_account']);
    const b = await person(['website', 'official_account']);
    expect(await unbindIdentity(db, a.accountId, b.identity(0), later(1))).toBe('not_found');
    expect(await unbindIdentity(db, a.accountId, { appid: 'wx-none', openid: 'x' }, later(1))).toBe(
      'not_found',
    );
    expect(await listIdentities(db, b.accountId)).toHaveLength(2);
  });
});

describe('re-linking through the mini program by the same verified phone', () => {
  let bridge: Bridge;
  let mp: oidc.Configuration;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      ...WEBSITE_AND_MINI_PROGRAM,
    });
    mp = await miniProgramClient(bridge);
  });
  afterAll(async () => bridge?.close());

  const login = async (user: Awaited<ReturnType<typeof createSandboxUser>>) =>
    exchangeJsCode(mp, await wxLogin(bridge, user), { scope: 'openid phone' });
  /** An operator's deletion of the person's account, as the delete-account command runs it. */
  const erase = async (user: Awaited<ReturnType<typeof createSandboxUser>>) => {
    const { db, kv, oidcAdapter } = bridge.server.stores;
    const account = await findAccountBySubject(db, user.unionid);
    await deleteAccount(
      {
        db,
        kv,
        adapter: oidcAdapter,
        avatars: createSqlAvatarStore(db),
        logger: createLogger({ level: 'silent' }),
        now: () => new Date(),
      },
      account as NonNullable<typeof account>,
      'operator',
    );
  };
  const provePhone = async (user: Awaited<ReturnType<typeof createSandboxUser>>, accessToken: string) => {
    const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber: '13912345678' });
    const answer = await callMiniProgram(bridge, 'phone-number', accessToken, { code });
    expect(answer.status).toBe(200);
  };

  test('a person whose WeChat was unbound proves the same phone and gets the same sub back', async () => {
    const db = bridge.server.stores.db;
    const before = await createSandboxUser(bridge, '旧微信');
    const first = await login(before);
    expect(first.claims()?.sub).toBe(before.unionid);
    await provePhone(before, first.access_token);
    const account = await findAccountBySubject(db, before.unionid);
    const [identity] = await listIdentities(db, account?.id as string);
    expect(
      await unbindIdentity(
        db,
        account?.id as string,
        identity as { appid: string; openid: string },
        new Date(),
      ),
    ).toBe('unbound');

    // A new WeChat: its first login is a new account, until it proves the phone.
    const after = await createSandboxUser(bridge, '新微信');
    const fresh = await login(after);
    expect(fresh.claims()?.sub).toBe(after.unionid);
    await provePhone(after, fresh.access_token);

    const again = await login(after);
    expect(again.claims()?.sub).toBe(before.unionid);
    expect(await findAccountBySubject(db, after.unionid)).toBeUndefined();
    const relinked = await listIdentities(db, account?.id as string);
    expect(relinked.map((i) => i.unionid)).toEqual([after.unionid]);
  });

  test("deleting a mini program user's account forgets the session key kept for them and the identity each grant remembered", async () => {
    const { kv, oidcAdapter } = bridge.server.stores;
    const user = await createSandboxUser(bridge, '会话密钥');
    const grantIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { access_token } = await login(user);
      grantIds.push((await oidcAdapter('AccessToken').find(access_token))?.grantId as string);
    }
    const openid = user.openids[MINI_PROGRAM_APP.appid] as string;
    const keys = [
      `mini-program:session-key:${MINI_PROGRAM_APP.appid}:${openid}`,
      ...grantIds.map((grantId) => `mini-program:grant-identity:${grantId}`),
    ];
    expect(new Set(grantIds).size).toBe(2);
    for (const key of keys) expect(await kv.get(key)).toBeDefined();
    await erase(user);
    // Each of them names the person's openid: gone with the account, not at their own expiry.
    for (const key of keys) expect(await kv.get(key)).toBeUndefined();
  });

  test("a mini program token from before a deletion does not serve the person's new account", async () => {
    const { db } = bridge.server.stores;
    const user = await createSandboxUser(bridge, '删了又来');
    const old = await login(user);
    await loseIndexRows(db, user.unionid);
    await erase(user);
    // The same person signs up again, later: the same subject (the unionid), a new account.
    await login(user);
    await signedUpLater(db, user.unionid);
    expect((await callMiniProgram(bridge, 'check-session', old.access_token)).status).toBe(401);
    const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber: '13700000001' });
    expect((await callMiniProgram(bridge, 'phone-number', old.access_token, { code })).status).toBe(401);
  });

  test('a new WeChat proving a phone nobody is waiting with keeps its own account', async () => {
    const user = await createSandboxUser(bridge, '无关的人');
    const tokens = await login(user);
    const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber: '13700000000' });
    expect((await callMiniProgram(bridge, 'phone-number', tokens.access_token, { code })).status).toBe(200);
    expect((await login(user)).claims()?.sub).toBe(user.unionid);
  });
});
