import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { accountForgotten } from '../../src/accounts/account-cache.ts';
import { findAccountBySubject, listIdentities } from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { createSealer } from '../../src/mini-program/sealer.ts';
import { createSessionKeyStore, type SessionKeyStore } from '../../src/mini-program/session-keys.ts';
import {
  type Bridge,
  bridgeCookieKeys,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { decodeEntities, type TestBrowser } from '../helpers/browser.ts';
import { createSandboxUser, loginAs, relyingParty, type SandboxUser } from '../helpers/flow.ts';
import { exchangeJsCode, miniProgramClient, wxLogin } from '../helpers/mini-program.ts';

/** The text of the element with this id in a page. */
function textOf(html: string, id: string): string | undefined {
  const match = html.match(new RegExp(`<(\\w+)[^>]*id="${id}"[^>]*>([\\s\\S]*?)</\\1>`));
  return match ? decodeEntities((match[2] as string).replace(/<[^>]+>/g, '')).trim() : undefined;
}

/** The account page's form token, as the logged-in browser's page carries it (single sign-on). */
async function formToken(bridge: Bridge, browser: TestBrowser): Promise<string> {
  const page = await browser.follow(`${bridge.url}/account`);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1];
  if (!csrf) throw new Error(`no account page at ${page.url} (${page.status}): ${page.body.slice(0, 300)}`);
  return csrf;
}

/**
 * What the account page must refuse or must do besides the obvious (the forms, the session keys,
 * the account cache, its own login's code), on each storage setup.
 */
for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`account page guards (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;
    let mp: oidc.Configuration;
    /** The bridge's own session-key store, read with its keys (src/mini-program/session-keys.ts). */
    let sessionKeys: SessionKeyStore;

    beforeAll(async () => {
      bridge = await startBridge({
        storage,
        apps: [WEBSITE_APP, MINI_PROGRAM_APP],
        configure: (config) => ({
          ...config,
          clients: [...config.clients, MINI_PROGRAM_CLIENT],
          // The mini program by its name, as the account page names it.
          wechat: {
            ...config.wechat,
            apps: config.wechat.apps.map((app) =>
              app.kind === 'mini_program' ? { ...app, name: '示例小程序' } : app,
            ),
          },
        }),
      });
      rp = await relyingParty(bridge);
      mp = await miniProgramClient(bridge);
      sessionKeys = createSessionKeyStore({
        kv: bridge.server.stores.kv,
        sealer: createSealer(await bridgeCookieKeys(bridge)),
        ttlSeconds: bridge.config.wechat.miniProgram.sessionKeyTtl,
      });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    const accountOf = async (user: SandboxUser) => {
      const account = await findAccountBySubject(bridge.server.stores.db, user.unionid);
      if (!account) throw new Error(`no account for ${user.nickname}`);
      return account;
    };

    /** A person who logged in through the mini program, then on the web: two identities, one browser. */
    const miniProgramThenWeb = async (nickname: string, scope = 'openid profile') => {
      const user = await createSandboxUser(bridge, nickname);
      await exchangeJsCode(mp, await wxLogin(bridge, user), { scope: 'openid profile' });
      const web = await loginAs(rp, user, { scope });
      const miniProgram = {
        appid: MINI_PROGRAM_APP.appid,
        openid: user.openids[MINI_PROGRAM_APP.appid] as string,
      };
      return { user, browser: web.login.browser, tokens: web.tokens, miniProgram };
    };

    const unbind = async (browser: TestBrowser, identity: { appid: string; openid: string }) => {
      const csrf = await formToken(bridge, browser);
      return browser.request(`${bridge.url}/account/unbind/confirm`, { form: { csrf, ...identity } });
    };

    test('a phone number that is not verified does not let the last WeChat identity be unbound', async () => {
      const user = await createSandboxUser(bridge, '未验证手机');
      await loginAs(rp, user, { scope: 'openid' });
      const { db } = bridge.server.stores;
      const account = await accountOf(user);
      await db
        .updateTable('accounts')
        .set({ phone_number: '+8613800000123', phone_number_verified: false })
        .where('id', '=', account.id)
        .execute();
      const identity = { appid: WEBSITE_APP.appid, openid: user.openids[WEBSITE_APP.appid] as string };
      expect(await unbindIdentity(db, account.id, identity, new Date())).toBe('last_identity_needs_phone');
      expect(await listIdentities(db, account.id)).toHaveLength(1);
    });

    test('the last WeChat without a phone: unbinding is not available now, and the page names the mini program where a phone is bound', async () => {
      const user = await createSandboxUser(bridge, '只有网站');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const zh = await login.browser.follow(`${bridge.url}/account`);
      expect(textOf(zh.body, 'account-unbind-explained')).toBe(
        '这是你的账号唯一绑定的微信应用，暂时不能解除绑定（解除后账号将无法找回）。请先在小程序“示例小程序”中绑定手机号，或注销账号。',
      );
      const en = await login.browser.follow(`${bridge.url}/account?lang=en`);
      expect(textOf(en.body, 'account-unbind-explained')).toBe(
        'This is the only WeChat app linked to your account, so it cannot be unbound for now (the account could not be recovered afterwards). Bind a phone number in the 示例小程序 Mini Program first, or delete the account.',
      );
      // A crafted post is refused with the same words.
      const refused = await unbind(login.browser, {
        appid: WEBSITE_APP.appid,
        openid: user.openids[WEBSITE_APP.appid] as string,
      });
      expect(refused.status).toBe(409);
      expect(textOf(refused.body, 'notice-message')).toContain('请先在小程序“示例小程序”中绑定手机号');
    });

    test("unbinding a mini program's identity on the account page forgets its session key", async () => {
      const { user, browser, miniProgram } = await miniProgramThenWeb('解绑小程序');
      expect(await sessionKeys.get(miniProgram.appid, miniProgram.openid)).toBeDefined();

      const answer = await unbind(browser, miniProgram);
      expect(answer.status).toBe(302);
      expect(new URL(answer.location as string).pathname).toBe('/account');
      const left = await listIdentities(bridge.server.stores.db, (await accountOf(user)).id);
      expect(left.map((identity) => identity.appid)).toEqual([WEBSITE_APP.appid]);
      expect(await sessionKeys.get(miniProgram.appid, miniProgram.openid)).toBeUndefined();
    });

    test("unbinding is seen at once in the claims this instance serves, not after the account cache's time", async () => {
      const { user, browser, tokens, miniProgram } = await miniProgramThenWeb(
        '缓存刷新',
        'openid profile wechat',
      );
      // The profile last changed a day ago; userinfo reads it, and this instance keeps the copy.
      const account = await accountOf(user);
      const dayAgo = new Date(Date.now() - 86_400_000);
      await bridge.server.stores.db
        .updateTable('accounts')
        .set({ profile_updated_at: dayAgo })
        .where('id', '=', account.id)
        .execute();
      accountForgotten(account.id);
      const warm = await oidc.fetchUserInfo(rp, tokens.access_token, user.unionid);
      expect(warm.updated_at).toBe(Math.floor(dayAgo.getTime() / 1000));
      expect(Object.keys(warm.wechat_openids as object).sort()).toEqual(
        [WEBSITE_APP.appid, MINI_PROGRAM_APP.appid].sort(),
      );

      const before = Math.floor(Date.now() / 1000);
      expect((await unbind(browser, miniProgram)).status).toBe(302);
      const after = await oidc.fetchUserInfo(rp, tokens.access_token, user.unionid);
      expect(after.updated_at).toBeGreaterThanOrEqual(before);
      expect(after.wechat_openids).toEqual({ [WEBSITE_APP.appid]: user.openids[WEBSITE_APP.appid] });
    });

    test('deleting the account needs confirm=yes: without it the form only goes back to the account page', async () => {
      const user = await createSandboxUser(bridge, '未确认注销');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const csrf = await formToken(bridge, login.browser);
      // A valid form token and a login a moment ago: everything but the confirmation.
      const forms: Array<Record<string, string>> = [{ csrf }, { csrf, confirm: 'no' }];
      for (const form of forms) {
        const answer = await login.browser.request(`${bridge.url}/account/delete/confirm`, { form });
        expect(answer.status).toBe(302);
        expect(new URL(answer.location as string).pathname).toBe('/account');
      }
      expect(await findAccountBySubject(bridge.server.stores.db, user.unionid)).toBeDefined();
    });

    test("the account page's login uses up its authorization code: it cannot be redeemed afterwards", async () => {
      const user = await createSandboxUser(bridge, '一次性代码');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      // The page's own login, answered at once from the session, stopped at its callback.
      const toCallback = await login.browser.follow(`${bridge.url}/account/login`, {
        stopAt: `${bridge.url}/account/callback`,
      });
      const callback = new URL(toCallback.location as string);
      const code = callback.searchParams.get('code') as string;
      expect(code).toBeTruthy();
      const codes = bridge.server.stores.oidcAdapter('AuthorizationCode');
      expect((await codes.find(code))?.consumed).toBeUndefined();
      // The page's login cookie keeps no PKCE verifier: nobody, the browser included, could redeem
      // the code even before the callback uses it up.
      const raw = login.browser.cookies().find((cookie) => cookie.name === 'account_login')?.value;
      expect(Object.keys(JSON.parse(decodeURIComponent(raw as string)) as object)).toEqual(['state']);

      const answer = await login.browser.request(callback.href);
      expect(answer.status).toBe(302);
      expect((await codes.find(code))?.consumed).toBeTruthy();
      const redeem = await fetch(`${bridge.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: 'account-page',
          code,
          code_verifier: 'a'.repeat(43),
          redirect_uri: `${bridge.url}/account/callback`,
        }),
      });
      expect(redeem.status).toBe(400);
      expect(await redeem.json()).toMatchObject({ error: 'invalid_grant' });
    });
  });
}
