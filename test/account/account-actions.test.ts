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
import { attributeOf, decodeEntities, type TestBrowser } from '../helpers/browser.ts';
import { createSandboxUser, decideOnWeChat, loginAs, relyingParty, startLogin } from '../helpers/flow.ts';

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
});
