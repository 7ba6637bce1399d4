import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Account,
  findAccountBySubject,
  type Identity,
  listIdentities,
  RECOVERABLE_AFTER_UNBINDING_MS,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  WEBSITE_AND_MINI_PROGRAM,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { decodeEntities, type TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  createSandboxUser,
  injectFault,
  loginAs,
  relyingParty,
  type SandboxUser,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  miniProgramClient,
  wxLogin,
  wxPhoneCode,
  wxUserData,
} from '../helpers/mini-program.ts';

/**
 * Recovery by a verified phone (README, Unbinding), through the bridge over HTTP: openid-client as
 * the mini program and the website's relying party, the sandbox as WeChat. The last WeChat is
 * unbound through the repository (test/account/account-actions.test.ts unbinds through the page),
 * at a chosen time where the rule is about time.
 */
for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`recovering an account by its verified phone (${storage})`, () => {
    let bridge: Bridge;
    let mp: oidc.Configuration;
    let rp: oidc.Configuration;
    let numbers = 0;
    /** A number of its own for each test: another test's waiting account must not compete for it. */
    const freshNumber = () => `1391200${String(++numbers).padStart(4, '0')}`;

    beforeAll(async () => {
      bridge = await startBridge({
        storage,
        ...WEBSITE_AND_MINI_PROGRAM,
      });
      mp = await miniProgramClient(bridge);
      rp = await relyingParty(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    const db = () => bridge.server.stores.db;
    const miniProgramLogin = async (user: SandboxUser) =>
      exchangeJsCode(mp, await wxLogin(bridge, user), { scope: 'openid phone wechat offline_access' });
    const provePhone = async (user: SandboxUser, accessToken: string, purePhoneNumber: string) => {
      const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber });
      return callMiniProgram(bridge, 'phone-number', accessToken, { code });
    };
    const accountOf = async (user: SandboxUser): Promise<Account> => {
      const account = await findAccountBySubject(db(), user.unionid);
      if (!account) throw new Error(`no account for ${user.nickname}`);
      return account;
    };
    /** Someone who logged in through the mini program, proved `number`, and unbound that WeChat at `unboundAt`. */
    const waitingWith = async (number: string, unboundAt = new Date()) => {
      const user = await createSandboxUser(bridge, '旧微信');
      const tokens = await miniProgramLogin(user);
      expect((await provePhone(user, tokens.access_token, number)).status).toBe(200);
      const account = await accountOf(user);
      const [identity] = await listIdentities(db(), account.id);
      const unbound = await unbindIdentity(
        db(),
        account.id,
        identity as { appid: string; openid: string },
        unboundAt,
      );
      expect(unbound).toBe('unbound');
      return { user, account };
    };

    test("a new WeChat that scanned the website's QR code before opening the mini program gets the account back, and is told so", async () => {
      const number = freshNumber();
      const waiting = await waitingWith(number);
      const renewed = await createSandboxUser(bridge, '新微信');
      // The natural order: the website first, then the mini program. Two identities, one new person.
      const website = await loginAs(rp, renewed, { scope: 'openid' });
      const fresh = await miniProgramLogin(renewed);
      expect(fresh.claims()?.sub).toBe(renewed.unionid);

      const answer = await provePhone(renewed, fresh.access_token, number);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        phone_number: `+86${number}`,
        phone_number_verified: true,
        account_recovered: true,
      });
      // The token named the account folded in, which is gone: the mini program logs in again.
      expect((await callMiniProgram(bridge, 'check-session', fresh.access_token)).status).toBe(401);
      expect((await miniProgramLogin(renewed)).claims()?.sub).toBe(waiting.user.unionid);
      // The website's browser held a session of the account folded away: no login any more, never
      // a server error. prompt=none hears login_required; the account page starts a new login.
      const { browser } = website.login;
      const silent = await authorizationRequest(rp, { scope: 'openid', prompt: 'none' });
      const none = await browser.follow(silent.url.href, { stopAt: RP.redirect_uris[0] as string });
      expect(new URL(none.location as string).searchParams.get('error')).toBe('login_required');
      const accountPage = await browser.request(`${bridge.url}/account`);
      expect(accountPage.status).toBe(302);
      expect(accountPage.location).toBe(`${bridge.url}/account/login`);
      // A login in that browser, scanning again, reaches the account recovered.
      expect((await loginAs(rp, renewed, { scope: 'openid', browser })).tokens.claims()?.sub).toBe(
        waiting.user.unionid,
      );
      expect((await loginAs(rp, renewed, { scope: 'openid' })).tokens.claims()?.sub).toBe(
        waiting.user.unionid,
      );
      const moved = await listIdentities(db(), waiting.account.id);
      expect(moved.map((identity) => identity.appid).sort()).toEqual(
        [WEBSITE_APP.appid, MINI_PROGRAM_APP.appid].sort(),
      );
      expect(moved.every((identity) => identity.unionid === renewed.unionid)).toBe(true);
      expect(await findAccountBySubject(db(), renewed.unionid)).toBeUndefined();
    });

    test('a proof that recovered nothing can be repeated: the right number after another one recovers the account', async () => {
      const number = freshNumber();
      const waiting = await waitingWith(number);
      const renewed = await createSandboxUser(bridge, '先绑错号');
      const fresh = await miniProgramLogin(renewed);
      // Another number of theirs first: bound to the new account, nothing recovered, and no field says so.
      const other = await provePhone(renewed, fresh.access_token, freshNumber());
      expect(other.status).toBe(200);
      expect(other.body).toEqual({ phone_number: expect.any(String), phone_number_verified: true });

      const right = await provePhone(renewed, fresh.access_token, number);
      expect(right.status).toBe(200);
      expect(right.body.account_recovered).toBe(true);
      expect((await miniProgramLogin(renewed)).claims()?.sub).toBe(waiting.user.unionid);
    });

    test('a waiting account is recovered within 30 days of its unbinding, and after that no longer (the number may be reassigned)', async () => {
      const expiredNumber = freshNumber();
      const expired = await waitingWith(
        expiredNumber,
        new Date(Date.now() - RECOVERABLE_AFTER_UNBINDING_MS - 60 * 60_000),
      );
      // Whoever holds the number now proves it: they keep their own account.
      const holder = await createSandboxUser(bridge, '号码新主人');
      const holderTokens = await miniProgramLogin(holder);
      const kept = await provePhone(holder, holderTokens.access_token, expiredNumber);
      expect(kept.status).toBe(200);
      expect(kept.body.account_recovered).toBeUndefined();
      expect((await miniProgramLogin(holder)).claims()?.sub).toBe(holder.unionid);
      expect(await listIdentities(db(), expired.account.id)).toEqual([]);

      const recentNumber = freshNumber();
      const recent = await waitingWith(
        recentNumber,
        new Date(Date.now() - RECOVERABLE_AFTER_UNBINDING_MS + 60 * 60_000),
      );
      const renewed = await createSandboxUser(bridge, '29天后');
      const renewedTokens = await miniProgramLogin(renewed);
      const recovered = await provePhone(renewed, renewedTokens.access_token, recentNumber);
      expect(recovered.body.account_recovered).toBe(true);
      expect((await miniProgramLogin(renewed)).claims()?.sub).toBe(recent.user.unionid);
    });

    test('the account page says how long an unbound account can be recovered, before and after the unbinding, in both languages', async () => {
      const user = await createSandboxUser(bridge, '解绑提示');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const account = await accountOf(user);
      await setVerifiedPhoneNumber(db(), account.id, `+86${freshNumber()}`, new Date());
      const page = async (browser: TestBrowser, lang: string) => {
        const answer = await browser.follow(`${bridge.url}/account?lang=${lang}`);
        expect(answer.status).toBe(200);
        return {
          text: decodeEntities(answer.body),
          csrf: answer.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? '',
        };
      };

      const before = await page(login.browser, 'zh-CN');
      expect(before.text).toContain('解除绑定后，你有 30 天时间找回账号');
      expect(before.text).toContain('首次登录后 30 分钟内');
      expect((await page(login.browser, 'en')).text).toContain(
        'Once you unbind it, you have 30 days to get the account back',
      );

      const [identity] = await listIdentities(db(), account.id);
      const unbound = await login.browser.request(`${bridge.url}/account/unbind/confirm`, {
        method: 'POST',
        form: { csrf: before.csrf, appid: identity?.appid ?? '', openid: identity?.openid ?? '' },
      });
      expect(unbound.status).toBe(302);
      const after = await page(login.browser, 'zh-CN');
      expect(after.text).toContain('请在解除绑定后 30 天内找回账号');
      expect(after.text).not.toContain('请先在小程序中绑定手机号');
      expect((await page(login.browser, 'en')).text).toContain('within 30 days of unbinding');
    });

    test("a recovered account that its old WeChat logs in to again: each device's token acts as its own identity, and the wechat claims name the WeChat used last", async () => {
      const number = freshNumber();
      const old = await waitingWith(number);
      const renewed = await createSandboxUser(bridge, '新设备');
      const fresh = await miniProgramLogin(renewed);
      expect((await provePhone(renewed, fresh.access_token, number)).body.account_recovered).toBe(true);
      const newDevice = await miniProgramLogin(renewed);
      // Unbinding is not a ban: the old WeChat logs in to its account again, last.
      const oldDevice = await miniProgramLogin(old.user);
      expect(oldDevice.claims()?.sub).toBe(old.user.unionid);
      expect(newDevice.claims()?.sub).toBe(old.user.unionid);
      expect(await listIdentities(db(), old.account.id)).toHaveLength(2);

      // The new device's token acts as the new WeChat's identity though the old one logged in last:
      // its phone code is checked by WeChat against that openid, its data decrypts with its key.
      const newNumber = await provePhone(renewed, newDevice.access_token, number);
      expect(newNumber.status).toBe(200);
      const decrypted = await callMiniProgram(
        bridge,
        'decrypt',
        newDevice.access_token,
        await wxUserData(bridge, renewed),
      );
      expect(decrypted.status).toBe(200);
      expect((decrypted.body.data as { openId: string }).openId).toBe(
        renewed.openids[MINI_PROGRAM_APP.appid],
      );
      // A refreshed token keeps its grant, and so its identity.
      const refreshed = await oidc.refreshTokenGrant(mp, newDevice.refresh_token as string);
      expect((await provePhone(renewed, refreshed.access_token, number)).status).toBe(200);
      // And the old device's token its own.
      expect((await provePhone(old.user, oldDevice.access_token, number)).status).toBe(200);

      const wechatClaims = async (accessToken: string) => {
        const userinfo = await oidc.fetchUserInfo(mp, accessToken, old.user.unionid);
        return {
          unionid: userinfo.wechat_unionid,
          openid: (userinfo.wechat_openids as Record<string, string>)[MINI_PROGRAM_APP.appid],
        };
      };
      expect(await wechatClaims(oldDevice.access_token)).toEqual({
        unionid: old.user.unionid,
        openid: old.user.openids[MINI_PROGRAM_APP.appid],
      });
      const newest = await miniProgramLogin(renewed);
      expect(await wechatClaims(newest.access_token)).toEqual({
        unionid: renewed.unionid,
        openid: renewed.openids[MINI_PROGRAM_APP.appid],
      });
    });

    test('a token whose identity left the account, while two others of its mini program remain, must log in again', async () => {
      const number = freshNumber();
      const old = await waitingWith(number);
      const second = await createSandboxUser(bridge, '第二个微信');
      const secondFresh = await miniProgramLogin(second);
      expect((await provePhone(second, secondFresh.access_token, number)).body.account_recovered).toBe(true);
      const secondDevice = await miniProgramLogin(second);
      // Both of its identities unbound again (the phone stays): the account waits once more.
      const unbindAll = async () => {
        for (const identity of await listIdentities(db(), old.account.id))
          expect(await unbindIdentity(db(), old.account.id, identity, new Date())).toBe('unbound');
      };
      await unbindAll();
      const third = await createSandboxUser(bridge, '第三个微信');
      const thirdFresh = await miniProgramLogin(third);
      expect((await provePhone(third, thirdFresh.access_token, number)).body.account_recovered).toBe(true);
      await miniProgramLogin(old.user);
      expect(await listIdentities(db(), old.account.id)).toHaveLength(2);

      const answer = await callMiniProgram(bridge, 'check-session', secondDevice.access_token);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: 'wx_login_required', reason: 'identity_missing' });
    });

    test('a token whose own identity was unbound does not act as the one identity of its mini program left', async () => {
      const number = freshNumber();
      const old = await waitingWith(number);
      const renewed = await createSandboxUser(bridge, '丢了的手机');
      const fresh = await miniProgramLogin(renewed);
      expect((await provePhone(renewed, fresh.access_token, number)).body.account_recovered).toBe(true);
      const newDevice = await miniProgramLogin(renewed);
      const oldDevice = await miniProgramLogin(old.user);
      // The new WeChat's identity unbound (its phone was lost): the old one remains.
      const identities = await listIdentities(db(), old.account.id);
      const lost = identities.find((identity) => identity.unionid === renewed.unionid);
      expect(await unbindIdentity(db(), old.account.id, lost as Identity, new Date())).toBe('unbound');

      const answer = await callMiniProgram(bridge, 'check-session', newDevice.access_token);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: 'wx_login_required', reason: 'identity_missing' });
      // The old WeChat's own token goes on acting as it.
      expect((await callMiniProgram(bridge, 'check-session', oldDevice.access_token)).status).toBe(200);
    });

    test('a phone proven while the account is deleted answers as a token whose account is gone', async () => {
      const user = await createSandboxUser(bridge, '验证中被删');
      const tokens = await miniProgramLogin(user);
      const account = await accountOf(user);
      const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber: freshNumber() });
      // WeChat holds the exchange of the phone code while the account is deleted (its rows, as
      // deleteAccount's transaction removes them), then answers.
      await injectFault(bridge, { api: 'wxa/business/getuserphonenumber', delayMs: 1_500 });
      const answering = callMiniProgram(bridge, 'phone-number', tokens.access_token, { code });
      await expect.poll(() => bridge.sandboxState.faults.pendingDelays).toBe(1);
      await db()
        .transaction()
        .execute(async (trx) => {
          await trx.deleteFrom('identities').where('account_id', '=', account.id).execute();
          await trx.deleteFrom('accounts').where('id', '=', account.id).execute();
        });
      await fetch(`${bridge.sandboxUrl}/sandbox/faults`, { method: 'DELETE' });
      const answer = await answering;
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe('invalid_token');
      expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    });
  });
}
