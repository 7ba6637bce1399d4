import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  findAccountBySubject,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  BCL_RP,
  type LogoutReceiver,
  logoutReceiver,
  payloadOf,
  withBackchannelClient,
  withLogoutsDelivered,
} from '../helpers/backchannel.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { attributeOf, decodeEntities, type Hop, type TestBrowser } from '../helpers/browser.ts';
import {
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  loginStarted,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { ageLogin, sessionIdOf } from '../helpers/recent-login.ts';

/** The account page as the logged-in browser sees it (single sign-on: no second WeChat login). */
async function accountPage(bridge: Bridge, browser: TestBrowser) {
  const page = await browser.follow(`${bridge.url}/account`);
  expect(page.url).toBe(`${bridge.url}/account`);
  const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1];
  if (!csrf) throw new Error(`no account page: ${page.body.slice(0, 300)}`);
  return { body: decodeEntities(page.body), csrf };
}

describe('account page actions', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;
  let bclRp: oidc.Configuration;
  let receiver: LogoutReceiver;
  beforeAll(async () => {
    receiver = await logoutReceiver();
    // Its logout client asks for a sid in logout tokens: one naming the sub alone must still carry none.
    const withLogouts = withBackchannelClient(receiver);
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => {
        const configured = withLogouts(config);
        return {
          ...configured,
          clients: configured.clients.map((client) =>
            client.client_id === BCL_RP.client_id
              ? { ...client, backchannel_logout_session_required: true }
              : client,
          ),
        };
      },
    });
    rp = await relyingParty(bridge);
    bclRp = await relyingParty(bridge, BCL_RP);
  });
  afterAll(async () => {
    await bridge?.close();
    receiver?.server.close();
  });

  /** The logout tokens `action` made the bridge send, as their payloads. */
  const logoutsSentBy = async (action: () => Promise<unknown>) => {
    receiver.tokens.length = 0;
    await withLogoutsDelivered(receiver, action);
    return receiver.tokens.map(payloadOf);
  };

  test('sign out everywhere tells the applications with a back-channel logout URI, each session by its sid', async () => {
    const user = await createSandboxUser(bridge, '通知退出');
    const { login, tokens } = await loginAs(bclRp, user, { scope: 'openid' });
    // Another browser, another application: signing out everywhere reaches its grant too.
    await loginAs(rp, user, { scope: 'openid' });
    const { csrf } = await accountPage(bridge, login.browser);
    const sent = await logoutsSentBy(() =>
      login.browser.follow(`${bridge.url}/account/sign-out-everywhere`, { method: 'POST', form: { csrf } }),
    );
    // test-rp registered no back-channel logout URI: only test-bcl-rp hears of it.
    expect(sent).toEqual([
      expect.objectContaining({
        iss: bridge.url,
        aud: BCL_RP.client_id,
        sub: user.unionid,
        events: BACKCHANNEL_LOGOUT_EVENT,
        // test-bcl-rp registered backchannel_logout_session_required: the session's sid, as its ID token had.
        sid: tokens.claims()?.sid,
      }),
    ]);
    expect(tokens.claims()?.sid).toEqual(expect.any(String));
  });

  test("a logout at /session/end to a client on a loopback address is refused by oidc-provider's guard, and logged", async () => {
    const user = await createSandboxUser(bridge, '本机退出');
    const { login, tokens } = await loginAs(bclRp, user, { scope: 'openid' });
    receiver.tokens.length = 0;
    const endSession = oidc.buildEndSessionUrl(bclRp, { id_token_hint: tokens.id_token as string });
    const logoutPage = await login.browser.follow(endSession.href);
    const xsrf = logoutPage.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
    await login.browser.request(`${bridge.url}/session/end/confirm`, {
      form: { xsrf: xsrf ?? '', logout: 'yes' },
    });
    expect(receiver.tokens).toEqual([]);
    await expect
      .poll(() => bridge.logs.join(''))
      .toMatch(
        /"clientId":"test-bcl-rp","why":"session ended","reason":"[^"]*special-use[^"]*".*back-channel logout failed/,
      );
  });

  test('revoking one application tells that application only', async () => {
    const user = await createSandboxUser(bridge, '撤销通知');
    const { login, tokens } = await loginAs(bclRp, user, { scope: 'openid' });
    const { csrf } = await accountPage(bridge, login.browser);
    const revoke = (clientId: string) =>
      login.browser.follow(`${bridge.url}/account/apps/revoke`, { method: 'POST', form: { csrf, clientId } });
    // An application the person never authorized: nothing to revoke, nobody told.
    expect(await logoutsSentBy(() => revoke(RP.client_id))).toEqual([]);
    // A field sent as an array names no application: one value per field, as the page sends.
    const asArray = await login.browser.request(`${bridge.url}/account/apps/revoke`, {
      form: { csrf, 'clientId[]': BCL_RP.client_id },
    });
    expect(asArray.status).toBe(404);
    expect((await oidc.tokenIntrospection(bclRp, tokens.access_token)).active).toBe(true);
    const sent = await logoutsSentBy(() => revoke(BCL_RP.client_id));
    expect(sent).toEqual([expect.objectContaining({ aud: BCL_RP.client_id, sub: user.unionid })]);
    // The session lives on (only this application's access ended): the sub alone, never an empty sid.
    expect(sent[0]).not.toHaveProperty('sid');
    expect((await oidc.tokenIntrospection(bclRp, tokens.access_token)).active).toBe(false);
  });

  test('a form past the size limit, or in an encoding not understood, is refused with its 4xx and a readable page', async () => {
    const user = await createSandboxUser(bridge, '表单太大');
    const { login, tokens } = await loginAs(bclRp, user, { scope: 'openid' });
    const { csrf } = await accountPage(bridge, login.browser);
    const tooLarge = await login.browser.request(`${bridge.url}/account/apps/revoke`, {
      method: 'POST',
      form: { csrf, clientId: BCL_RP.client_id, filler: 'x'.repeat(9000) },
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toContain('无法处理此请求');
    const compressed = await login.browser.request(`${bridge.url}/account/apps/revoke`, {
      method: 'POST',
      form: { csrf, clientId: BCL_RP.client_id },
      headers: { 'content-encoding': 'br-unknown' },
    });
    expect(compressed.status).toBe(415);
    // Neither touched the grant, and neither is logged as the server's failure.
    expect((await oidc.tokenIntrospection(bclRp, tokens.access_token)).active).toBe(true);
    expect(bridge.logs.join('')).not.toContain('unhandled error');
  });

  test('sign out everywhere revokes the tokens of every application and ends the session', async () => {
    const user = await createSandboxUser(bridge, '处处退出');
    const { login, tokens } = await loginAs(rp, user, {
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    const { csrf } = await accountPage(bridge, login.browser);
    const done = await login.browser.follow(`${bridge.url}/account/sign-out-everywhere`, {
      method: 'POST',
      form: { csrf },
    });
    expect(done.status).toBe(200);
    // The notice leads back to the account page, which now asks for a login, in the page's language.
    expect(attributeOf(done.body, 'notice-next', 'href')).toBe('/account?lang=zh-CN');
    const back = await login.browser.request(`${bridge.url}/account?lang=en`);
    expect(back.location).toBe(`${bridge.url}/account/login?lang=en`);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token as string)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    const again = await login.browser.follow(`${bridge.url}/account`);
    expect(attributeOf(again.body, 'wechat-qr', 'src')).toBeDefined();

    // Signed out, not unauthorized: the next login to the application asks nothing again.
    const next = await startLogin(rp, { scope: 'openid profile' });
    const callback = await decideOnWeChat(next, { user, allow: true });
    expect(new URL(callback.location as string, bridge.url).pathname).toMatch(/^\/auth\//);
  });

  test('a post without the page token changes nothing', async () => {
    const user = await createSandboxUser(bridge, '跨站请求');
    const { login, tokens } = await loginAs(rp, user, { scope: 'openid profile' });
    const refused = await login.browser.request(`${bridge.url}/account/sign-out-everywhere`, {
      method: 'POST',
      form: { csrf: 'forged' },
    });
    expect(refused.status).toBe(403);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(true);
    // A page answering a POST has no language link: followed, it would GET a POST-only path (405).
    expect(refused.body).toContain('页面已过期');
    expect(attributeOf(refused.body, 'lang-switch', 'href')).toBeUndefined();
  });

  test('with a verified phone the last WeChat can be unbound from the page; the account stays', async () => {
    const user = await createSandboxUser(bridge, '有手机号');
    const { login } = await loginAs(rp, user, { scope: 'openid profile' });
    const db = bridge.server.stores.db;
    const account = await findAccountBySubject(db, user.unionid);
    await setVerifiedPhoneNumber(db, account?.id as string, '+8613811112222', new Date());
    const { body, csrf } = await accountPage(bridge, login.browser);
    expect(body).toContain('+8613811112222');
    expect(body).toContain('解除绑定');
    const [identity] = await listIdentities(db, account?.id as string);
    const hop = await login.browser.request(`${bridge.url}/account/unbind`, {
      method: 'POST',
      form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
    });
    expect(hop.status).toBe(302);
    expect(await listIdentities(db, account?.id as string)).toEqual([]);
    expect((await findAccountBySubject(db, user.unionid))?.id).toBe(account?.id);
  });

  test('without a phone the last WeChat cannot be unbound, even by a crafted post', async () => {
    const user = await createSandboxUser(bridge, '没手机号');
    const { login } = await loginAs(rp, user, { scope: 'openid profile' });
    const db = bridge.server.stores.db;
    const account = await findAccountBySubject(db, user.unionid);
    const { body, csrf } = await accountPage(bridge, login.browser);
    expect(body).not.toContain('解除绑定</button>');
    const [identity] = await listIdentities(db, account?.id as string);
    const hop = await login.browser.request(`${bridge.url}/account/unbind`, {
      method: 'POST',
      form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
    });
    expect(hop.status).toBe(409);
    expect(decodeEntities(hop.body)).toContain('请先在小程序中绑定手机号');
    expect(await listIdentities(db, account?.id as string)).toHaveLength(1);
  });

  describe('unbinding and deletion need a recent login', () => {
    /** Past the default account.recentLogin (600 seconds). */
    const STALE = 11 * 60;
    let phones = 0;

    /** A person logged in through the test RP with a verified phone (so the last WeChat may be unbound). */
    const loggedInWithPhone = async (nickname: string) => {
      const user = await createSandboxUser(bridge, nickname);
      const { login, tokens } = await loginAs(rp, user, { scope: 'openid' });
      const db = bridge.server.stores.db;
      const account = await findAccountBySubject(db, user.unionid);
      if (!account) throw new Error('no account');
      // A number of their own: one another account waits with would recover that account instead.
      await setVerifiedPhoneNumber(
        db,
        account.id,
        `+86139000011${String(++phones).padStart(2, '0')}`,
        new Date(),
      );
      const [identity] = await listIdentities(db, account.id);
      if (!identity) throw new Error('no identity');
      return { user, browser: login.browser, tokens, account, identity };
    };

    const unbind = (browser: TestBrowser, csrf: string, identity: { appid: string; openid: string }) =>
      browser.request(`${bridge.url}/account/unbind`, {
        method: 'POST',
        form: { csrf, appid: identity.appid, openid: identity.openid },
      });

    /**
     * The "log in again" button, then WeChat as `user`, and on to wherever the account page sends the
     * browser. When someone else logs in, oidc-provider first ends the session's person with its
     * self-submitting form (a browser's script submits it; here the test does); `switched` says so.
     */
    const logInAgain = async (browser: TestBrowser, page: Hop, user: SandboxUser) => {
      const href = attributeOf(page.body, 'account-login-again', 'href');
      if (!href) throw new Error(`no log-in-again button: ${page.body.slice(0, 300)}`);
      const toAuth = await browser.request(new URL(href, bridge.url).href);
      const authorization = new URL(toAuth.location as string);
      const login = loginStarted(browser, { expectedState: '' }, await browser.follow(authorization.href));
      let hop = await decideOnWeChat(login, { user, allow: true });
      let switched = false;
      for (let i = 0; i < 10 && hop.status >= 300 && hop.status < 400 && hop.location; i++) {
        hop = await browser.request(hop.location);
        const xsrf = hop.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
        const action = hop.body.match(/<form method="post" action="([^"]+)"/)?.[1];
        if (hop.status === 200 && xsrf && action?.endsWith('/session/end/confirm')) {
          switched = true;
          hop = await browser.request(action, { form: { xsrf, logout: 'yes' } });
        }
      }
      return { authorization, landed: hop, switched };
    };

    test('an old login gets the log-in-again page, in both languages, and nothing is unbound or deleted', async () => {
      const { browser, account, identity } = await loggedInWithPhone('久未登录');
      const { csrf } = await accountPage(bridge, browser);
      await ageLogin(bridge, sessionIdOf(browser), STALE);
      const db = bridge.server.stores.db;

      const refusedUnbind = await unbind(browser, csrf, identity);
      expect(refusedUnbind.status).toBe(403);
      const unbindPage = decodeEntities(refusedUnbind.body);
      expect(unbindPage).toContain('请重新登录');
      expect(unbindPage).toContain('解除绑定微信前，请再用微信登录一次');
      expect(unbindPage).toContain('只能在登录后 10 分钟内进行');
      expect(attributeOf(refusedUnbind.body, 'account-login-again', 'href')).toBe(
        '/account/login?again=unbind&lang=zh-CN',
      );
      expect(await listIdentities(db, account.id)).toHaveLength(1);

      const post = (path: string, form: Record<string, string>, headers?: Record<string, string>) =>
        browser.request(`${bridge.url}${path}`, { method: 'POST', form, headers });
      const refusedConfirmation = await post('/account/delete', { csrf });
      expect(refusedConfirmation.status).toBe(403);
      expect(refusedConfirmation.body).not.toContain('account-delete-final');
      expect(attributeOf(refusedConfirmation.body, 'account-login-again', 'href')).toBe(
        '/account/login?again=delete&lang=zh-CN',
      );
      // A crafted post of the final form: refused the same way.
      const refusedDeletion = await post(
        '/account/delete/confirm',
        { csrf, confirm: 'yes' },
        { 'accept-language': 'en' },
      );
      expect(refusedDeletion.status).toBe(403);
      const english = decodeEntities(refusedDeletion.body);
      expect(english).toContain('Log in again to continue');
      expect(english).toContain('Before you delete your account, log in with WeChat once more');
      expect(english).toContain('only within 10 minutes of logging in');
      expect(attributeOf(refusedDeletion.body, 'account-login-again', 'href')).toBe(
        '/account/login?again=delete&lang=en',
      );
      // Its language switch reloads the page by GET (the POST it answered cannot be).
      expect(attributeOf(refusedDeletion.body, 'lang-switch', 'href')).toBe(
        '/account/login-again/delete?lang=zh-CN',
      );
      const switched = await browser.request(`${bridge.url}/account/login-again/delete?lang=zh-CN`);
      expect(switched.status).toBe(403);
      expect(decodeEntities(switched.body)).toContain('注销账号前，请再用微信登录一次');
      expect((await browser.request(`${bridge.url}/account/delete`)).status).toBe(403);
      expect(await findAccountBySubject(db, account.subject)).toMatchObject({ id: account.id });
      expect(await listIdentities(db, account.id)).toHaveLength(1);
    });

    test('an old login still revokes an application and signs out everywhere', async () => {
      const { browser, tokens } = await loggedInWithPhone('久未登录也能退出');
      const { csrf } = await accountPage(bridge, browser);
      await ageLogin(bridge, sessionIdOf(browser), STALE);
      const revoked = await browser.request(`${bridge.url}/account/apps/revoke`, {
        method: 'POST',
        form: { csrf, clientId: RP.client_id },
      });
      expect(revoked.status).toBe(302);
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
      const signedOut = await browser.request(`${bridge.url}/account/sign-out-everywhere`, {
        method: 'POST',
        form: { csrf },
      });
      expect(signedOut.status).toBe(200);
      expect(decodeEntities(signedOut.body)).toContain('你已在所有设备和应用上退出登录');
    });

    test('logging in again returns to the account page, where the unbind then works', async () => {
      const { user, browser, account, identity } = await loggedInWithPhone('重新登录解绑');
      const { csrf: oldCsrf } = await accountPage(bridge, browser);
      await ageLogin(bridge, sessionIdOf(browser), STALE);
      const refused = await unbind(browser, oldCsrf, identity);
      expect(refused.status).toBe(403);

      const { authorization, landed, switched } = await logInAgain(browser, refused, user);
      // WeChat login really happens again (OIDC Core 3.1.2.1), though the session was logged in.
      expect(authorization.searchParams.get('prompt')).toBe('login');
      expect(authorization.searchParams.get('max_age')).toBe('0');
      expect(switched).toBe(false);
      expect(landed.url).toBe(`${bridge.url}/account`);
      expect(landed.status).toBe(200);
      // The person repeats the action from the page (nothing was replayed): it works now.
      const db = bridge.server.stores.db;
      expect(await listIdentities(db, account.id)).toHaveLength(1);
      const { csrf } = await accountPage(bridge, browser);
      const done = await unbind(browser, csrf, identity);
      expect(done.status).toBe(302);
      expect(done.location).toBe(`${bridge.url}/account`);
      expect(await listIdentities(db, account.id)).toEqual([]);
    });

    test('logging in again returns to the deletion confirmation, and then the deletion works', async () => {
      const { user, browser, account } = await loggedInWithPhone('重新登录注销');
      const { csrf: oldCsrf } = await accountPage(bridge, browser);
      await ageLogin(bridge, sessionIdOf(browser), STALE);
      const refused = await browser.request(`${bridge.url}/account/delete`, {
        method: 'POST',
        form: { csrf: oldCsrf },
      });
      expect(refused.status).toBe(403);

      const { landed, switched } = await logInAgain(browser, refused, user);
      expect(switched).toBe(false);
      expect(landed.url).toBe(`${bridge.url}/account/delete`);
      expect(landed.status).toBe(200);
      expect(decodeEntities(landed.body)).toContain('要注销的账号：重新登录注销');
      const csrf = landed.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
      const done = await browser.request(`${bridge.url}/account/delete/confirm`, {
        method: 'POST',
        form: { csrf, confirm: 'yes' },
      });
      expect(done.status).toBe(200);
      expect(decodeEntities(done.body)).toContain('你的账号已注销');
      // No account to go back to.
      expect(attributeOf(done.body, 'notice-next', 'href')).toBeUndefined();
      expect(await findAccountBySubject(bridge.server.stores.db, account.subject)).toBeUndefined();
    });

    test('someone else logging in again takes the session over: the page shows and deletes their account, never the first one', async () => {
      const first = await loggedInWithPhone('原来的人');
      const { csrf: firstCsrf } = await accountPage(bridge, first.browser);
      await ageLogin(bridge, sessionIdOf(first.browser), STALE);
      const refused = await first.browser.request(`${bridge.url}/account/delete`, {
        method: 'POST',
        form: { csrf: firstCsrf },
      });
      expect(refused.status).toBe(403);

      const other = await createSandboxUser(bridge, '换了个人');
      const { landed, switched } = await logInAgain(first.browser, refused, other);
      // oidc-provider ended the first person's session before logging the other in.
      expect(switched).toBe(true);
      expect(landed.url).toBe(`${bridge.url}/account/delete`);
      const page = decodeEntities(landed.body);
      expect(page).toContain('要注销的账号：换了个人');
      expect(page).not.toContain('原来的人');
      const db = bridge.server.stores.db;
      const otherAccount = await findAccountBySubject(db, other.unionid);
      expect(otherAccount).toBeDefined();

      // The first person's form token belonged to their session, which is gone.
      const stale = await first.browser.request(`${bridge.url}/account/delete/confirm`, {
        method: 'POST',
        form: { csrf: firstCsrf, confirm: 'yes' },
      });
      expect(stale.status).toBe(403);
      expect(decodeEntities(stale.body)).toContain('页面已过期');
      const { body } = await accountPage(bridge, first.browser);
      expect(body).toContain('换了个人');
      expect(body).not.toContain('原来的人');

      const csrf = landed.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
      const done = await first.browser.request(`${bridge.url}/account/delete/confirm`, {
        method: 'POST',
        form: { csrf, confirm: 'yes' },
      });
      expect(done.status).toBe(200);
      expect(await findAccountBySubject(db, other.unionid)).toBeUndefined();
      expect(await findAccountBySubject(db, first.user.unionid)).toMatchObject({ id: first.account.id });
      expect(await listIdentities(db, first.account.id)).toHaveLength(1);
    });

    test('a forged destination cannot send the browser elsewhere', async () => {
      const user = await createSandboxUser(bridge, '伪造去处');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const { browser } = login;
      // An unknown purpose is no purpose: an ordinary login (single sign-on here), back to the account page.
      const visited: string[] = [];
      let hop = await browser.request(
        `${bridge.url}/account/login?again=${encodeURIComponent('https://evil.example/')}`,
      );
      while (hop.location && hop.status >= 300 && hop.status < 400) {
        visited.push(hop.location);
        hop = await browser.request(hop.location);
      }
      expect(new URL(visited[0] as string).searchParams.has('prompt')).toBe(false);
      expect(visited.map((url) => new URL(url).origin)).toEqual(visited.map(() => bridge.url));
      expect(hop.url).toBe(`${bridge.url}/account`);
      expect(hop.status).toBe(200);

      // A callback with another state (a link from elsewhere) leaves the login under way alone.
      const started = await browser.request(`${bridge.url}/account/login`);
      const foreign = await browser.request(`${bridge.url}/account/callback?state=not-yours&code=c`);
      expect(foreign.location).toBe(`${bridge.url}/account/login`);
      let step = await browser.request(started.location as string);
      while (step.location && !new URL(step.location, bridge.url).pathname.startsWith('/account/callback')) {
        step = await browser.request(new URL(step.location, bridge.url).href);
      }
      const callback = await browser.request(new URL(step.location as string, bridge.url).href);
      expect(callback.location).toBe(`${bridge.url}/account`);

      // A login cookie written by someone else (no valid signature) is no cookie: start again.
      const forged = JSON.stringify({ verifier: 'v', state: 's', again: 'https://evil.example/' });
      const answer = await fetch(`${bridge.url}/account/callback?state=s&code=c`, {
        headers: { cookie: `account_login=${encodeURIComponent(forged)}; account_login.sig=forged` },
        redirect: 'manual',
      });
      expect(answer.headers.get('location')).toBe('/account/login');
    });
  });
});
