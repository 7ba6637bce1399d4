import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  findAccountBySubject,
  linkIdentity,
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
import { type Bridge, OFFICIAL_ACCOUNT_APP, RP, startBridge, WEBSITE_APP } from '../helpers/bridge.ts';
import { attributeOf, decodeEntities, type Hop, TestBrowser } from '../helpers/browser.ts';
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

/** The form on `page` that posts to a path ending in `action`: where it posts, and its hidden fields. */
function formOf(page: Hop, action: string): { url: string; fields: Record<string, string> } {
  const form = [...page.body.matchAll(/<form method="post" action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)].find(
    (match) =>
      decodeEntities(match[1] as string)
        .split('?')[0]
        ?.endsWith(action),
  );
  if (!form) throw new Error(`no form to ${action} at ${page.url}: ${page.body.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const input of (form[2] as string).matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[input[1] as string] = decodeEntities(input[2] as string);
  return { url: new URL(decodeEntities(form[1] as string), page.url).href, fields };
}

/** The text of the element with this id (its markup's text, entities decoded). */
function textOf(html: string, id: string): string | undefined {
  const match = html.match(new RegExp(`<(\\w+)[^>]*id="${id}"[^>]*>([\\s\\S]*?)</\\1>`));
  return match ? decodeEntities((match[2] as string).replace(/<[^>]+>/g, '')).trim() : undefined;
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
    // The button asks first: a page naming the app and, as it is the last WeChat, the recovery.
    const confirmation = await login.browser.request(`${bridge.url}/account/unbind?lang=zh-CN`, {
      method: 'POST',
      form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
    });
    expect(confirmation.status).toBe(200);
    expect(textOf(confirmation.body, 'account-unbind-what')).toBe(
      `确定要解除绑定“${WEBSITE_APP.appid}”（网站应用）吗？`,
    );
    expect(textOf(confirmation.body, 'account-unbind-recovery')).toContain(
      '解除绑定后，你有 30 天时间找回账号',
    );
    expect(attributeOf(confirmation.body, 'account-unbind-cancel', 'href')).toBe('/account?lang=zh-CN');
    expect(await listIdentities(db, account?.id as string)).toHaveLength(1);
    // Its language switch posts the same form again (a link would GET a POST-only path): the same
    // question in English, and nothing unbound.
    const switchForm = formOf(confirmation, '/account/unbind');
    expect(switchForm.url).toBe(`${bridge.url}/account/unbind?lang=en`);
    const english = await login.browser.request(switchForm.url, { form: switchForm.fields });
    expect(english.status).toBe(200);
    expect(english.body).toContain('<html lang="en">');
    expect(textOf(english.body, 'account-unbind-what')).toBe(
      `Unbind ${WEBSITE_APP.appid} (Website app) from your account?`,
    );
    expect(textOf(english.body, 'lang-switch')).toBe('中文');
    expect(await listIdentities(db, account?.id as string)).toHaveLength(1);

    const form = formOf(confirmation, '/account/unbind/confirm');
    expect(form.fields).toEqual({ csrf, appid: identity?.appid, openid: identity?.openid });
    const hop = await login.browser.request(form.url, { form: form.fields });
    // Post/redirect/get: the account page says what was done, once; a reload repeats nothing.
    expect(hop.status).toBe(302);
    expect(hop.location).toBe(`${bridge.url}/account?lang=zh-CN`);
    expect(await listIdentities(db, account?.id as string)).toEqual([]);
    expect((await findAccountBySubject(db, user.unionid))?.id).toBe(account?.id);
    const after = await login.browser.request(hop.location as string);
    expect(textOf(after.body, 'account-done')).toBe(`已解除绑定“${WEBSITE_APP.appid}”。`);
    expect(textOf(after.body, 'account-recovery-explained')).toContain('请在解除绑定后 30 天内找回账号');
    const reloaded = await login.browser.request(hop.location as string);
    expect(reloaded.status).toBe(200);
    expect(textOf(reloaded.body, 'account-done')).toBeUndefined();
  });

  test('unbinding one of two WeChat apps is confirmed first, in the page language, and then named on the account page', async () => {
    const user = await createSandboxUser(bridge, '两个微信应用');
    const { login } = await loginAs(rp, user, { scope: 'openid profile' });
    const db = bridge.server.stores.db;
    const second = { appid: OFFICIAL_ACCOUNT_APP.appid, openid: `oa-${user.unionid}` };
    await linkIdentity(
      db,
      { kind: 'official_account', ...second, unionid: user.unionid, snapshotUser: false },
      new Date(),
    );
    const account = await findAccountBySubject(db, user.unionid);
    // The English page, in a browser whose Accept-Language is Chinese: its forms keep the language.
    const page = await login.browser.request(`${bridge.url}/account?lang=en`);
    const unbindForm = formOf(page, '/account/unbind');
    expect(unbindForm.url).toBe(`${bridge.url}/account/unbind?lang=en`);
    const confirmation = await login.browser.request(unbindForm.url, {
      form: { csrf: unbindForm.fields.csrf as string, ...second },
    });
    expect(confirmation.status).toBe(200);
    expect(textOf(confirmation.body, 'account-unbind-what')).toBe(
      `Unbind ${OFFICIAL_ACCOUNT_APP.appid} (Official Account) from your account?`,
    );
    // Another WeChat remains: no recovery to explain.
    expect(textOf(confirmation.body, 'account-unbind-recovery')).toBeUndefined();
    expect(attributeOf(confirmation.body, 'account-unbind-cancel', 'href')).toBe('/account?lang=en');
    // An identity that is not the account's is refused at the confirmation already.
    const foreign = await login.browser.request(unbindForm.url, {
      form: { csrf: unbindForm.fields.csrf as string, appid: second.appid, openid: 'someone-else' },
    });
    expect(foreign.status).toBe(404);
    expect(await listIdentities(db, account?.id as string)).toHaveLength(2);

    const form = formOf(confirmation, '/account/unbind/confirm');
    // The form token counts at the confirmation as on the account page.
    const forged = await login.browser.request(form.url, { form: { ...form.fields, csrf: 'forged' } });
    expect(forged.status).toBe(403);
    expect(await listIdentities(db, account?.id as string)).toHaveLength(2);
    const done = await login.browser.follow(form.url, { form: form.fields });
    expect(done.url).toBe(`${bridge.url}/account?lang=en`);
    expect(textOf(done.body, 'account-done')).toBe(
      `${OFFICIAL_ACCOUNT_APP.appid} has been unbound from your account.`,
    );
    expect((await listIdentities(db, account?.id as string)).map((identity) => identity.appid)).toEqual([
      WEBSITE_APP.appid,
    ]);
  });

  test("the account page's forms keep the page's language, whatever the browser's", async () => {
    const user = await createSandboxUser(bridge, '表单语言');
    const { login } = await loginAs(rp, user, { scope: 'openid' });
    const { browser } = login;
    // The test browser's Accept-Language is Chinese; the person chose English.
    const page = await browser.request(`${bridge.url}/account?lang=en`);
    const remove = formOf(page, '/account/delete');
    const confirmation = await browser.request(remove.url, { form: remove.fields });
    expect(confirmation.body).toContain('<h1>Delete account</h1>');
    expect(formOf(confirmation, '/account/delete/confirm').url).toBe(
      `${bridge.url}/account/delete/confirm?lang=en`,
    );
    expect(attributeOf(confirmation.body, 'account-delete-cancel', 'href')).toBe('/account?lang=en');
    const everywhere = formOf(page, '/account/sign-out-everywhere');
    const signedOut = await browser.request(everywhere.url, { form: everywhere.fields });
    expect(textOf(signedOut.body, 'notice-message')).toBe(
      'You have been logged out of every device and application.',
    );
  });

  test('revoking an application names it on the account page, in the page language, once', async () => {
    const user = await createSandboxUser(bridge, '撤销提示');
    const { login, tokens } = await loginAs(rp, user, { scope: 'openid profile' });
    const page = await login.browser.request(`${bridge.url}/account?lang=en`);
    const form = formOf(page, '/account/apps/revoke');
    expect(form.fields.clientId).toBe(RP.client_id);
    const hop = await login.browser.request(form.url, { form: form.fields });
    expect(hop.status).toBe(302);
    expect(hop.location).toBe(`${bridge.url}/account?lang=en`);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
    const after = await login.browser.request(hop.location as string);
    expect(textOf(after.body, 'account-done')).toBe(`Access revoked for ${RP.client_name}.`);
    expect(textOf(after.body, 'account-no-apps')).toBe('No authorized applications yet');
    const reloaded = await login.browser.request(hop.location as string);
    expect(textOf(reloaded.body, 'account-done')).toBeUndefined();
    // In Chinese the same (another browser, which Accept-Language makes Chinese).
    const again = await loginAs(rp, user, { scope: 'openid profile' });
    const { browser } = again.login;
    const chinese = formOf(await browser.request(`${bridge.url}/account`), '/account/apps/revoke');
    const revoked = await browser.follow(chinese.url, { form: chinese.fields });
    expect(textOf(revoked.body, 'account-done')).toBe(`已取消“${RP.client_name}”的授权。`);
    expect((await oidc.tokenIntrospection(rp, again.tokens.access_token)).active).toBe(false);
  });

  test('what was done is said only on the account page of the account it was done to', async () => {
    const first = await loginAs(rp, await createSandboxUser(bridge, '撤销的人'), { scope: 'openid' });
    const form = formOf(await first.login.browser.request(`${bridge.url}/account`), '/account/apps/revoke');
    const revoked = await first.login.browser.request(form.url, { form: form.fields });
    expect(revoked.status).toBe(302);
    const done = first.login.browser.cookies().filter((cookie) => cookie.name.startsWith('account_done'));
    expect(done.map((cookie) => cookie.name).sort()).toEqual(['account_done', 'account_done.sig']);
    // The same cookie, with another person's session (a browser whose session changed hands).
    const other = await loginAs(rp, await createSandboxUser(bridge, '别人'), { scope: 'openid' });
    const cookie = [...other.login.browser.cookies(), ...done].map((c) => `${c.name}=${c.value}`).join('; ');
    const page = await fetch(`${bridge.url}/account`, { headers: { cookie }, redirect: 'manual' });
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(textOf(body, 'account-nickname')).toBe('别人');
    expect(textOf(body, 'account-done')).toBeUndefined();
    // Its own account page says it.
    const own = await first.login.browser.request(`${bridge.url}/account`);
    expect(textOf(own.body, 'account-done')).toBe(`已取消“${RP.client_name}”的授权。`);
  });

  test('an address under /account that nothing answers leads back to the account page', async () => {
    const browser = new TestBrowser({ navigation: true });
    const page = await browser.request(`${bridge.url}/account/settings`);
    expect(page.status).toBe(404);
    expect(textOf(page.body, 'error-message')).toBe('此页面不存在。请检查网址，或返回账号管理。');
    expect(attributeOf(page.body, 'back-to-account', 'href')).toBe('/account?lang=zh-CN');
    expect(textOf(page.body, 'back-to-account')).toBe('返回账号管理');
    const english = await browser.request(`${bridge.url}/account/settings?lang=en`);
    expect(attributeOf(english.body, 'back-to-account', 'href')).toBe('/account?lang=en');
    // Elsewhere, the page names the application, as before.
    const elsewhere = await browser.request(`${bridge.url}/settings`);
    expect(textOf(elsewhere.body, 'error-message')).toBe('此页面不存在。请检查网址，或返回应用。');
    expect(attributeOf(elsewhere.body, 'back-to-account', 'href')).toBeUndefined();
  });

  test('without a phone the last WeChat cannot be unbound, even by a crafted post', async () => {
    const user = await createSandboxUser(bridge, '没手机号');
    const { login } = await loginAs(rp, user, { scope: 'openid profile' });
    const db = bridge.server.stores.db;
    const account = await findAccountBySubject(db, user.unionid);
    const { body, csrf } = await accountPage(bridge, login.browser);
    expect(body).not.toContain('解除绑定</button>');
    // Not available, and why; no mini program is configured here, so none is named for a phone.
    const refusal =
      '这是你的账号唯一绑定的微信应用，不能解除绑定（解除后账号将无法找回）。如果不再使用此账号，可以注销账号。';
    expect(textOf(body, 'account-unbind-explained')).toBe(refusal);
    const [identity] = await listIdentities(db, account?.id as string);
    const hop = await login.browser.request(`${bridge.url}/account/unbind`, {
      method: 'POST',
      form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
    });
    expect(hop.status).toBe(409);
    expect(textOf(hop.body, 'notice-message')).toBe(refusal);
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

    /** The account page's unbind button: the confirmation page, or the log-in-again page. */
    const unbind = (browser: TestBrowser, csrf: string, identity: { appid: string; openid: string }) =>
      browser.request(`${bridge.url}/account/unbind`, {
        method: 'POST',
        form: { csrf, appid: identity.appid, openid: identity.openid },
      });
    /** The confirmation page's button. */
    const confirmUnbinding = (browser: TestBrowser, confirmation: Hop) => {
      const form = formOf(confirmation, '/account/unbind/confirm');
      return browser.request(form.url, { form: form.fields });
    };

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
      // Its cancel button goes back to the account page in the same language.
      expect(attributeOf(refusedDeletion.body, 'login-again-cancel', 'href')).toBe('/account?lang=en');
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
      // In the language the log-in-again button named.
      expect(landed.url).toBe(`${bridge.url}/account?lang=zh-CN`);
      expect(landed.status).toBe(200);
      // The person repeats the action from the page (nothing was replayed): it works now.
      const db = bridge.server.stores.db;
      expect(await listIdentities(db, account.id)).toHaveLength(1);
      const { csrf } = await accountPage(bridge, browser);
      const confirmation = await unbind(browser, csrf, identity);
      expect(confirmation.status).toBe(200);
      const done = await confirmUnbinding(browser, confirmation);
      expect(done.status).toBe(302);
      expect(done.location).toBe(`${bridge.url}/account?lang=zh-CN`);
      expect(await listIdentities(db, account.id)).toEqual([]);
    });

    test("the unbinding's confirmation asks for a recent login too, when it is shown and when it is confirmed", async () => {
      const { browser, account, identity } = await loggedInWithPhone('确认时已过期');
      const { csrf } = await accountPage(bridge, browser);
      const confirmation = await unbind(browser, csrf, identity);
      expect(confirmation.status).toBe(200);
      // The page was left open past the window: its button is refused, with the log-in-again page.
      await ageLogin(bridge, sessionIdOf(browser), STALE);
      const refused = await confirmUnbinding(browser, confirmation);
      expect(refused.status).toBe(403);
      expect(attributeOf(refused.body, 'account-login-again', 'href')).toBe(
        '/account/login?again=unbind&lang=zh-CN',
      );
      expect(await listIdentities(bridge.server.stores.db, account.id)).toHaveLength(1);
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
      expect(landed.url).toBe(`${bridge.url}/account/delete?lang=zh-CN`);
      expect(landed.status).toBe(200);
      expect(decodeEntities(landed.body)).toContain('要注销的账号：重新登录注销');
      expect(attributeOf(landed.body, 'account-delete-cancel', 'href')).toBe('/account?lang=zh-CN');
      const csrf = landed.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
      const done = await browser.request(`${bridge.url}/account/delete/confirm`, {
        method: 'POST',
        form: { csrf, confirm: 'yes' },
      });
      expect(done.status).toBe(200);
      // Titled for what happened, not "your account" (there is none), and saying the page can go.
      expect(textOf(done.body, 'notice-message')).toBe(
        '你的账号已注销，所有数据已删除。现在可以关闭此页面。',
      );
      expect(done.body).toContain('<h1>账号已注销</h1>');
      expect(done.body).toContain('<title>账号已注销</title>');
      // No account to go back to, and no login to offer.
      expect(attributeOf(done.body, 'notice-next', 'href')).toBeUndefined();
      expect(attributeOf(done.body, 'notice-login', 'href')).toBeUndefined();
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
      expect(landed.url).toBe(`${bridge.url}/account/delete?lang=zh-CN`);
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
      const done = await first.browser.request(`${bridge.url}/account/delete/confirm?lang=en`, {
        method: 'POST',
        form: { csrf, confirm: 'yes' },
      });
      expect(done.status).toBe(200);
      expect(done.body).toContain('<h1>Account deleted</h1>');
      expect(textOf(done.body, 'notice-message')).toBe(
        'Your account has been deleted, with all its data. You can close this page now.',
      );
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
      const forged = JSON.stringify({ state: 's', again: 'https://evil.example/' });
      const answer = await fetch(`${bridge.url}/account/callback?state=s&code=c`, {
        headers: { cookie: `account_login=${encodeURIComponent(forged)}; account_login.sig=forged` },
        redirect: 'manual',
      });
      expect(answer.headers.get('location')).toBe('/account/login');
    });
  });
  describe("the account page's own login, cancelled or failed", () => {
    /**
     * The account page in a new browser (no session), in `lang` when given: on through the account
     * page's authorization request to the WeChat login page. The browser's Accept-Language is Chinese.
     */
    const accountLoginPage = async (lang?: string) => {
      const browser = new TestBrowser();
      const start = await browser.request(`${bridge.url}/account${lang ? `?lang=${lang}` : ''}`);
      const toAuth = await browser.request(start.location as string);
      const authorization = new URL(toAuth.location as string);
      const login = loginStarted(browser, { expectedState: '' }, await browser.follow(authorization.href));
      return { browser, authorization, login };
    };

    /** A form's abort button, as the login page and the failure page show it; followed to the end. */
    const abort = (browser: TestBrowser, page: Hop, reason?: string) => {
      const form = formOf(page, '/abort');
      return browser.follow(form.url, { form: { ...form.fields, ...(reason && { reason }) } });
    };

    test('cancelling the login says so, offers to log in again, and its language switch shows the same page', async () => {
      const { browser, authorization, login } = await accountLoginPage('en');
      // The language chosen goes on to the login page (ui_locales).
      expect(authorization.searchParams.get('ui_locales')).toBe('en');
      const page = await abort(browser, login.loginPage);
      expect(page.status).toBe(200);
      expect(page.url).toBe(`${bridge.url}/account/login-stopped?why=cancelled&lang=en`);
      expect(textOf(page.body, 'notice-message')).toBe('You cancelled the login.');
      // Logging in again is a choice (in the same language); no "back to your account", which
      // would only start the login again.
      expect(attributeOf(page.body, 'notice-login', 'href')).toBe('/account/login?lang=en');
      expect(textOf(page.body, 'notice-login')).toBe('Log in again');
      expect(attributeOf(page.body, 'notice-next', 'href')).toBeUndefined();
      // The language switch and a reload show this page again, never a new login.
      const switchedHref = attributeOf(page.body, 'lang-switch', 'href') as string;
      expect(switchedHref).toBe('/account/login-stopped?why=cancelled&lang=zh-CN');
      const switched = await browser.request(new URL(switchedHref, bridge.url).href);
      expect(switched.status).toBe(200);
      expect(textOf(switched.body, 'notice-message')).toBe('你已取消登录。');
      expect(textOf(switched.body, 'notice-login')).toBe('重新登录');
      expect(attributeOf(switched.body, 'notice-login', 'href')).toBe('/account/login?lang=zh-CN');
      const reloaded = await browser.request(page.url);
      expect(textOf(reloaded.body, 'notice-message')).toBe('You cancelled the login.');
    });

    test('declining in WeChat ends on a page that says so; a failed one says to try again', async () => {
      const declining = await accountLoginPage();
      const person = await createSandboxUser(bridge, '拒绝授权');
      const declined = await decideOnWeChat(declining.login, { user: person, allow: false });
      // Our page after WeChat's refusal; its "return to the application" goes back to the account page.
      const failurePage = declined.location ? await declining.browser.request(declined.location) : declined;
      const page = await abort(declining.browser, failurePage);
      expect(page.url).toBe(`${bridge.url}/account/login-stopped?why=declined&lang=zh-CN`);
      expect(textOf(page.body, 'notice-message')).toBe('你已在微信中拒绝授权，未登录。');
      expect(attributeOf(page.body, 'notice-login', 'href')).toBe('/account/login?lang=zh-CN');

      const failing = await accountLoginPage('zh-CN');
      const failed = await abort(failing.browser, failing.login.loginPage, 'unavailable');
      expect(failed.url).toBe(`${bridge.url}/account/login-stopped?why=failed&lang=zh-CN`);
      expect(textOf(failed.body, 'notice-message')).toBe('登录未完成，请重试。');
      expect(attributeOf(failed.body, 'notice-login', 'href')).toBe('/account/login?lang=zh-CN');

      // Any other reason in the address, Object's own property names too, reads as a failed login.
      for (const why of ['constructor', 'valueOf', 'hasOwnProperty', '__proto__', 'unheard-of']) {
        const odd = await new TestBrowser().request(
          `${bridge.url}/account/login-stopped?why=${why}&lang=zh-CN`,
        );
        expect(odd.status, why).toBe(200);
        expect(textOf(odd.body, 'notice-message'), why).toBe('登录未完成，请重试。');
      }
    });

    test('cancelling a login asked for again offers it again, and the way back to the account page', async () => {
      const user = await createSandboxUser(bridge, '取消重新登录');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const { browser } = login;
      const { csrf } = await accountPage(bridge, browser);
      await ageLogin(bridge, sessionIdOf(browser), 11 * 60);
      const refused = await browser.request(`${bridge.url}/account/delete`, { form: { csrf } });
      const again = attributeOf(refused.body, 'account-login-again', 'href') as string;
      const loginPage = await browser.follow(new URL(again, bridge.url).href);
      const page = await abort(browser, loginPage);
      expect(page.url).toBe(`${bridge.url}/account/login-stopped?why=cancelled&again=delete&lang=zh-CN`);
      expect(textOf(page.body, 'notice-message')).toBe('你已取消登录。');
      expect(attributeOf(page.body, 'notice-login', 'href')).toBe('/account/login?again=delete&lang=zh-CN');
      // The session is still there: the account page shows.
      expect(attributeOf(page.body, 'notice-next', 'href')).toBe('/account?lang=zh-CN');
      expect((await browser.request(`${bridge.url}/account?lang=zh-CN`)).status).toBe(200);
    });
  });

  describe("logging out of this browser only (oidc-provider's RP-initiated logout)", () => {
    /** The account page's "Log out" link, followed to oidc-provider's confirmation page. */
    const logoutPage = async (browser: TestBrowser, lang: string) => {
      const page = await browser.request(`${bridge.url}/account?lang=${lang}`);
      const href = attributeOf(page.body, 'account-log-out', 'href');
      if (!href) throw new Error(`no log-out link: ${page.body.slice(0, 300)}`);
      const url = new URL(href, bridge.url);
      const confirmation = await browser.request(url.href);
      const xsrf = confirmation.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
      if (!xsrf) throw new Error(`no logout confirmation: ${confirmation.body.slice(0, 300)}`);
      return { url, confirmation, xsrf };
    };

    test("ends this browser's session and tells its applications; another browser stays logged in", async () => {
      const user = await createSandboxUser(bridge, '只退出这里');
      const here = await loginAs(bclRp, user, { scope: 'openid' });
      const elsewhere = await loginAs(rp, user, { scope: 'openid' });
      const { browser } = here.login;
      const { url, confirmation, xsrf } = await logoutPage(browser, 'zh-CN');
      expect(url.pathname).toBe('/session/end');
      expect(Object.fromEntries(url.searchParams)).toEqual({
        client_id: 'account-page',
        post_logout_redirect_uri: `${bridge.url}/account/logged-out?lang=zh-CN`,
        ui_locales: 'zh-CN',
      });
      // oidc-provider's page asks first. The account page's own link led there: no line saying it
      // asks, and the question is about every application, since "no" keeps the account page too.
      expect(textOf(confirmation.body, 'logout-client')).toBeUndefined();
      expect(textOf(confirmation.body, 'logout-question')).toBe('要退出此浏览器上用微信登录的所有应用吗？');
      expect(textOf(confirmation.body, 'logout-yes')).toBe('全部退出');
      expect(textOf(confirmation.body, 'logout-no')).toBe('返回账号管理');

      let done: Hop | undefined;
      const sent = await logoutsSentBy(async () => {
        done = await browser.request(`${bridge.url}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
      });
      expect(sent).toEqual([
        expect.objectContaining({ aud: BCL_RP.client_id, sub: user.unionid, sid: here.tokens.claims()?.sid }),
      ]);
      expect(done?.location).toBe(`${bridge.url}/account/logged-out?lang=zh-CN`);
      const loggedOut = await browser.request(done?.location as string);
      expect(loggedOut.status).toBe(200);
      expect(textOf(loggedOut.body, 'logged-out')).toBe('你已退出登录。现在可以关闭此页面。');
      expect(attributeOf(loggedOut.body, 'to-account', 'href')).toBe('/account?lang=zh-CN');
      // This browser is logged out, and the session's grant revoked with its tokens.
      expect((await browser.request(`${bridge.url}/account`)).location).toBe(`${bridge.url}/account/login`);
      expect((await oidc.tokenIntrospection(bclRp, here.tokens.access_token)).active).toBe(false);
      // The other browser's session, and its application's tokens, are untouched.
      expect((await elsewhere.login.browser.request(`${bridge.url}/account`)).status).toBe(200);
      expect((await oidc.tokenIntrospection(rp, elsewhere.tokens.access_token)).active).toBe(true);
    });

    test('"back to the account page" on the confirmation comes back to the account page, still logged in, in English', async () => {
      const user = await createSandboxUser(bridge, 'Stays logged in');
      const { login } = await loginAs(rp, user, { scope: 'openid' });
      const { browser } = login;
      const { confirmation, xsrf } = await logoutPage(browser, 'en');
      expect(textOf(confirmation.body, 'logout-client')).toBeUndefined();
      expect(textOf(confirmation.body, 'logout-question')).toBe(
        'Log out of all the applications you signed in to with WeChat in this browser?',
      );
      expect(textOf(confirmation.body, 'logout-yes')).toBe('Log out of all applications');
      expect(textOf(confirmation.body, 'logout-no')).toBe('Back to Account management');
      const stayed = await browser.follow(`${bridge.url}/session/end/confirm`, { form: { xsrf } });
      expect(stayed.url).toBe(`${bridge.url}/account?lang=en`);
      expect(stayed.status).toBe(200);
      expect(textOf(stayed.body, 'account-nickname')).toBe('Stays logged in');
    });
  });
});
