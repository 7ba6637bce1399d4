import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findAccountBySubject, listIdentities } from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { type Bridge, startBridge, storageAvailable, WEBSITE_AND_MINI_PROGRAM } from '../helpers/bridge.ts';
import { deletedWhileRunning } from '../helpers/deletion-race.ts';
import {
  callbackFromWeChat,
  continueToRp,
  createSandboxUser,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  miniProgramClient,
  wxLogin,
  wxPhoneCode,
} from '../helpers/mini-program.ts';

/**
 * Regression: a login racing the deletion of the person's account (account page, delete-account)
 * ended on the generic error page, or the token exchange's server_error, when the deletion committed
 * between the login finding the account and writing its identity row; the person's retry then
 * created a new account. Now the login itself does. Likewise a phone recovery whose waiting account
 * is deleted while it waits for that account's lock: it answered 500 (the identities moved to a row
 * gone), and now binds the phone to the new account, recovering nothing. PostgreSQL only: the embedded store cannot
 * interleave the two (src/accounts/repository.ts, linkIdentity). The deletion is the same two
 * statements as deleteAccount's transaction, held open until the login waits for it
 * (test/helpers/deletion-race.ts), so no timing decides the interleaving.
 */
const available = await storageAvailable('postgres+redis');
describe.skipIf(!available)('a login racing the deletion of its account (postgres+redis)', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;
  let mp: oidc.Configuration;

  const accountOf = async (user: SandboxUser) => {
    const account = await findAccountBySubject(bridge.server.stores.db, user.unionid);
    if (!account) throw new Error(`no account for ${user.nickname}`);
    return account;
  };

  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'postgres+redis',
      ...WEBSITE_AND_MINI_PROGRAM,
    });
    rp = await relyingParty(bridge);
    mp = await miniProgramClient(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the website login goes on, into a new account, instead of the error page', async () => {
    const panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
    await loginAs(rp, panda);
    const deleted = await accountOf(panda);

    const login = await startLogin(rp);
    const callback = await callbackFromWeChat(login, { user: panda, allow: true });
    const answer = await deletedWhileRunning(bridge.server.stores.db, deleted.id, () =>
      login.browser.request(callback.href),
    );

    expect(answer.status).toBeLessThan(400);
    const tokens = await oidc.authorizationCodeGrant(rp, await continueToRp(login, answer), login.checks);
    expect(tokens.claims()?.sub).toBe(panda.unionid);
    const account = await accountOf(panda);
    expect(account.id).not.toBe(deleted.id);
    expect(account.nickname).toBe(panda.nickname);
  });

  test('the mini program token exchange answers with tokens of a new account, not server_error', async () => {
    const koala = await createSandboxUser(bridge, '🐨 考拉 Koala');
    await exchangeJsCode(mp, await wxLogin(bridge, koala), { scope: 'openid profile' });
    const deleted = await accountOf(koala);

    const code = await wxLogin(bridge, koala);
    const tokens = await deletedWhileRunning(bridge.server.stores.db, deleted.id, () =>
      exchangeJsCode(mp, code, { scope: 'openid profile' }),
    );

    expect(tokens.claims()?.sub).toBe(koala.unionid);
    expect((await accountOf(koala)).id).not.toBe(deleted.id);
  });

  test('a phone recovery whose waiting account is deleted meanwhile binds the phone to the new account, not a server error', async () => {
    const db = bridge.server.stores.db;
    const provePhone = async (user: SandboxUser, accessToken: string) => {
      const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber: '13955500001' });
      return callMiniProgram(bridge, 'phone-number', accessToken, { code });
    };
    // Someone proved the number and unbound their last WeChat: their account waits with it.
    const before = await createSandboxUser(bridge, '旧微信');
    const old = await exchangeJsCode(mp, await wxLogin(bridge, before), { scope: 'openid phone' });
    expect((await provePhone(before, old.access_token)).status).toBe(200);
    const waiting = await accountOf(before);
    const [identity] = await listIdentities(db, waiting.id);
    expect(
      await unbindIdentity(db, waiting.id, identity as { appid: string; openid: string }, new Date()),
    ).toBe('unbound');

    // A new WeChat proves the number while the waiting account is being deleted: the recovery has
    // found it and waits for its lock, and finds it gone once the deletion commits.
    const after = await createSandboxUser(bridge, '新微信');
    const fresh = await exchangeJsCode(mp, await wxLogin(bridge, after), { scope: 'openid phone' });
    const answer = await deletedWhileRunning(db, waiting.id, () => provePhone(after, fresh.access_token));

    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ phone_number: '+8613955500001', phone_number_verified: true });
    expect(await findAccountBySubject(db, before.unionid)).toBeUndefined();
    const kept = await accountOf(after);
    expect(kept).toMatchObject({ phone_number: '+8613955500001', phone_number_verified: true });
    expect(await listIdentities(db, kept.id)).toHaveLength(1);
  });
});
