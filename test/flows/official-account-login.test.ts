import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStateSigner } from '../../src/interaction/wechat-state.ts';
import {
  type Bridge,
  bridgeCookieKeys,
  OFFICIAL_ACCOUNT_APP,
  OTHER_OFFICIAL_ACCOUNT_APP,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  UNBOUND_APP,
  UNBOUND_OFFICIAL_ACCOUNT_APP,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { type Hop, TestBrowser, USER_AGENTS } from '../helpers/browser.ts';
import {
  authorizationRequest,
  callbackFromWeChat,
  consentAction,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  interactionUid,
  loginAs,
  relyingParty,
  startLogin,
} from '../helpers/flow.ts';
import {
  followInWeChat,
  loginInWeChat,
  loginInWeChatAs,
  setDeliverTwice,
  setSnapshot,
  toAuthorizePage,
} from '../helpers/official-account.ts';

const WECHAT_SCOPE = 'openid profile wechat';

async function accountsFor(bridge: Bridge, unionid: string) {
  return bridge.server.stores.db.selectFrom('accounts').selectAll().where('subject', '=', unionid).execute();
}

async function identitiesOf(bridge: Bridge, unionid: string) {
  return bridge.server.stores.db
    .selectFrom('identities')
    .select(['appid', 'openid', 'kind'])
    .where('unionid', '=', unionid)
    .orderBy('appid')
    .execute();
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);

  describe.skipIf(!available)(`login inside WeChat through the official account (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;

    beforeAll(async () => {
      bridge = await startBridge({ storage, apps: [WEBSITE_APP, OFFICIAL_ACCOUNT_APP] });
      rp = await relyingParty(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('the same person gets the same sub by QR on a desktop and inside WeChat, and the wechat scope shows both openids', async () => {
      const person = await createSandboxUser(bridge, '韩梅梅 🌸');
      const desktop = await loginAs(rp, person, { scope: WECHAT_SCOPE });
      const inWeChat = await loginInWeChatAs(rp, person, { scope: WECHAT_SCOPE });

      expect(desktop.tokens.claims()?.sub).toBe(person.unionid);
      expect(inWeChat.tokens.claims()?.sub).toBe(person.unionid);
      // One account, holding one identity per app.
      expect(await accountsFor(bridge, person.unionid)).toHaveLength(1);
      expect(await identitiesOf(bridge, person.unionid)).toEqual(
        [
          { appid: WEBSITE_APP.appid, openid: person.openids[WEBSITE_APP.appid], kind: 'website' },
          {
            appid: OFFICIAL_ACCOUNT_APP.appid,
            openid: person.openids[OFFICIAL_ACCOUNT_APP.appid],
            kind: 'official_account',
          },
        ].sort((a, b) => a.appid.localeCompare(b.appid)),
      );

      const userinfo = await oidc.fetchUserInfo(rp, inWeChat.tokens.access_token, person.unionid);
      expect(userinfo.wechat_unionid).toBe(person.unionid);
      expect(userinfo.wechat_openids).toEqual({
        [WEBSITE_APP.appid]: person.openids[WEBSITE_APP.appid],
        [OFFICIAL_ACCOUNT_APP.appid]: person.openids[OFFICIAL_ACCOUNT_APP.appid],
      });
      expect(userinfo.nickname).toBe('韩梅梅 🌸');
    });

    test("a third-party client asking for no more than the page before the profile request names gets its consent there: no consent page after WeChat's own, and the consent is remembered", async () => {
      const person = await createSandboxUser(bridge, '一次同意 Once');
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      const { url, checks } = await authorizationRequest(rp, { scope: 'openid profile' });
      const { page, authorize } = await toAuthorizePage(browser, url.href, person);
      expect(page.body).toContain('id="authorize-consent"');
      expect(page.body).toContain('同意并用微信登录');
      const rest = await followInWeChat(browser, authorize, { user: person });
      expect(rest.consentPages).toBe(0);
      const tokens = await oidc.authorizationCodeGrant(rp, rest.redirect as URL, checks);
      expect(tokens.claims()?.sub).toBe(person.unionid);
      // Remembered as the consent page's allow is: the website login of another browser asks nothing.
      const desktop = await startLogin(rp, { scope: 'openid profile' });
      const callback = await decideOnWeChat(desktop, { user: person, allow: true });
      expect(consentAction(callback)).toBeUndefined();
      expect(
        (
          await oidc.authorizationCodeGrant(rp, await continueToRp(desktop, callback), desktop.checks)
        ).claims()?.sub,
      ).toBe(person.unionid);
    });

    test('a trip whose page did not say it was the consent page (an instance of the release before, during a rollout) gets the consent page after the login', async () => {
      const person = await createSandboxUser(bridge, '滚动发布 Rollout');
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      const { url, checks } = await authorizationRequest(rp, { scope: 'openid profile' });
      const authorize = new URL((await toAuthorizePage(browser, url.href, person)).authorize);
      // The same trip, its state as a page without the consent text would have signed it.
      const redirectUri = new URL(authorize.searchParams.get('redirect_uri') as string);
      const uid = redirectUri.pathname.split('/')[2] as string;
      const state = createStateSigner(await bridgeCookieKeys(bridge)).issue({
        uid,
        kind: 'official_account',
        appid: OFFICIAL_ACCOUNT_APP.appid,
        scope: 'snsapi_userinfo',
      });
      authorize.searchParams.set('state', state);
      const rest = await followInWeChat(browser, authorize.href, { user: person });
      expect(rest.consentPages).toBe(1);
      expect((await oidc.authorizationCodeGrant(rp, rest.redirect as URL, checks)).claims()?.sub).toBe(
        person.unionid,
      );
    });

    test('asking for more than that page names, or demanding prompt=consent, still gets the consent page after the login', async () => {
      for (const options of [
        { scope: 'openid profile phone' },
        { scope: 'openid profile', prompt: 'consent' },
      ]) {
        const person = await createSandboxUser(bridge, '再问 Again');
        const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
        const { url, checks } = await authorizationRequest(rp, options);
        const { page, authorize } = await toAuthorizePage(browser, url.href, person);
        expect(page.body).not.toContain('id="authorize-consent"');
        const rest = await followInWeChat(browser, authorize, { user: person });
        expect(rest.consentPages).toBe(1);
        expect((await oidc.authorizationCodeGrant(rp, rest.redirect as URL, checks)).claims()?.sub).toBe(
          person.unionid,
        );
      }
    });

    test('without the wechat scope no WeChat claim is released, and discovery lists them', async () => {
      const person = await createSandboxUser(bridge, 'Lily');
      const { tokens } = await loginInWeChatAs(rp, person);
      const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, person.unionid);
      expect(userinfo).not.toHaveProperty('wechat_unionid');
      expect(userinfo).not.toHaveProperty('wechat_openids');
      const metadata = rp.serverMetadata();
      expect(metadata.scopes_supported).toContain('wechat');
      expect(metadata.claims_supported).toEqual(expect.arrayContaining(['wechat_unionid', 'wechat_openids']));
    });

    test("inside WeChat the authorization request sends the browser straight to the official account's authorization", async () => {
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      const { url } = await authorizationRequest(rp);
      const answer = await browser.request(url.href);
      expect(answer.status).toBe(303);
      const trip = new URL(answer.location as string);
      expect(trip.pathname).toBe('/connect/oauth2/authorize');
      expect(trip.searchParams.get('appid')).toBe(OFFICIAL_ACCOUNT_APP.appid);
      expect(trip.searchParams.get('redirect_uri')).toMatch(/\/interaction\/[^/]+\/wechat-callback/);
    });

    test('a first login asks snsapi_base, then snsapi_userinfo; a later one is silent with snsapi_base alone', async () => {
      const person = await createSandboxUser(bridge, '静默 Silent');
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatAndroid });
      const first = await loginInWeChatAs(rp, person, { browser });
      expect(first.login.trips.map((trip) => trip.scope)).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(first.login.trips.every((trip) => trip.appid === OFFICIAL_ACCOUNT_APP.appid)).toBe(true);
      // A new state for the second trip: a state is good for one code only.
      expect(first.login.trips[0]?.state).not.toBe(first.login.trips[1]?.state);
      // The profile is asked for from our page's button, never as a page opens (WeChat's rule).
      expect(first.login.authorizePages).toBe(1);

      const again = await loginInWeChatAs(rp, person, { browser, prompt: 'login' });
      expect(again.login.trips.map((trip) => trip.scope)).toEqual(['snsapi_base']);
      expect(again.login.sandboxPages).toBe(0);
      expect(again.login.authorizePages).toBe(0);
      expect(again.tokens.claims()?.sub).toBe(person.unionid);
      expect(bridge.logs.join('')).toContain('wechat login (silent, snsapi_base)');
    });

    test('someone known to the official account whose account has no name is asked for the profile, not logged in silently', async () => {
      const person = await createSandboxUser(bridge, '无名 Nameless');
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      await loginInWeChatAs(rp, person, { browser });
      await bridge.server.stores.db
        .updateTable('accounts')
        .set({ nickname: null })
        .where('subject', '=', person.unionid)
        .execute();

      const again = await loginInWeChatAs(rp, person, { browser, prompt: 'login' });
      expect(again.login.trips.map((trip) => trip.scope)).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(again.tokens.claims()?.sub).toBe(person.unionid);
      // The profile WeChat gave with snsapi_userinfo is the account's again.
      expect((await accountsFor(bridge, person.unionid))[0]?.nickname).toBe('无名 Nameless');
    });

    test('someone known only through the website app is asked for snsapi_userinfo once, then linked', async () => {
      const person = await createSandboxUser(bridge, 'Website first');
      await loginAs(rp, person);
      const { login, tokens } = await loginInWeChatAs(rp, person);
      expect(login.trips.map((trip) => trip.scope)).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(tokens.claims()?.sub).toBe(person.unionid);
      expect(await accountsFor(bridge, person.unionid)).toHaveLength(1);
      expect(await identitiesOf(bridge, person.unionid)).toHaveLength(2);
    });

    test('a snapshot-page user is refused with a page asking for 使用完整服务, and nothing is created', async () => {
      const person = await createSandboxUser(bridge, '快照 Snapshot');
      await setSnapshot(bridge, person, true);
      const refused = await loginInWeChat(rp, { user: person });
      expect(refused.redirect).toBeUndefined();
      expect(refused.last.status).toBe(400);
      // WeChat's button in its own words, marked as Chinese.
      expect(refused.last.body).toContain('请点击页面下方的“<span lang="zh-CN">使用完整服务</span>”后重试。');
      expect(refused.last.body).toContain('id="try-again"');
      expect(await accountsFor(bridge, person.unionid)).toHaveLength(0);
      const identities = await bridge.server.stores.db
        .selectFrom('identities')
        .select('openid')
        .where('appid', '=', OFFICIAL_ACCOUNT_APP.appid)
        .execute();
      expect(identities.map((row) => row.openid)).not.toContain(person.openids[OFFICIAL_ACCOUNT_APP.appid]);

      // The person taps 使用完整服务 and tries again: the real identity logs in.
      await setSnapshot(bridge, person, false);
      const retryHref = refused.last.body.match(/id="try-again" href="([^"]+)"/)?.[1] as string;
      const retry = await refused.browser.request(new URL(retryHref, bridge.url).href);
      expect(retry.status).toBe(303);
      expect(new URL(retry.location as string).pathname).toBe('/connect/oauth2/authorize');
      const after = await loginInWeChatAs(rp, person, { browser: refused.browser });
      expect(after.tokens.claims()?.sub).toBe(person.unionid);
    });

    test("on the English snapshot page, WeChat's Chinese button label is marked as Chinese", async () => {
      const person = await createSandboxUser(bridge, 'Snapshot in English');
      await setSnapshot(bridge, person, true);
      const refused = await loginInWeChat(rp, { user: person, extra: { ui_locales: 'en' } });
      expect(refused.last.status).toBe(400);
      expect(refused.last.body).toContain('<html lang="en">');
      expect(refused.last.body).toContain(
        'Tap “<span lang="zh-CN">使用完整服务</span>” (Use full service) at the bottom of the page and try again.',
      );
      await setSnapshot(bridge, person, false);
    });

    test.each([
      ['', false],
      [', also after the refusal was reloaded', true],
    ])(
      'after the snapshot page, 使用完整服务 runs the same authorization again: its new code, with the same state, logs the person in%s',
      async (_, reload) => {
        const person = await createSandboxUser(bridge, '快照之后 After snapshot');
        await setSnapshot(bridge, person, true);
        const refused = await loginInWeChat(rp, { user: person });
        expect(refused.last.body).toContain('使用完整服务');
        if (reload) {
          // The same refused callback again: the same page, and the state stays free for what follows.
          const again = await refused.browser.request(refused.last.url);
          expect(again.status).toBe(400);
          expect(again.body).toContain('使用完整服务');
        }
        // WeChat re-opens the authorization the snapshot page came from (wechat-api.md §3.1).
        await setSnapshot(bridge, person, false);
        const again = await followInWeChat(refused.browser, refused.trips.at(-1)?.href as string, {
          user: person,
        });
        expect(again.trips.map((trip) => trip.state)).toEqual([refused.trips.at(-1)?.state]);
        expect(again.redirect).toBeDefined();
        const tokens = await oidc.authorizationCodeGrant(rp, again.redirect as URL, refused.checks);
        expect(tokens.claims()?.sub).toBe(person.unionid);
      },
    );

    test('a callback WeChat delivers twice is acted on once: one code exchange, one login, no error', async () => {
      const person = await createSandboxUser(bridge, '重复 Twice');
      await setDeliverTwice(bridge, true);
      bridge.sandboxState.deliveries.clear();
      const failuresBefore = countLines(bridge, 'wechat login failed');
      try {
        const { login, tokens } = await loginInWeChatAs(rp, person);
        expect(tokens.claims()?.sub).toBe(person.unionid);
        await bridge.sandboxState.deliveries.settled();
        const copies = bridge.sandboxState.deliveries.list();
        // Both trips (snsapi_base, then snsapi_userinfo) were delivered twice.
        expect(copies).toHaveLength(login.trips.length);
        for (const copy of copies) {
          // WeChat's copy gets a neutral page: no error, no cookie, nothing to follow.
          expect(copy.status).toBe(200);
          expect(copy.setCookie).toBe(false);
          expect(copy.location).toBeUndefined();
          expect(copy.body).toContain('此次登录已在处理中');
        }
        // A second exchange would have been answered 40163 (code been used) and logged as a failure.
        expect(countLines(bridge, 'wechat login failed')).toBe(failuresBefore);
        expect(bridge.logs.join('')).toContain('duplicate wechat callback without cookies');

        // Late copies, after the login finished, change nothing either.
        for (const copy of copies) {
          const late = await new TestBrowser().request(copy.url);
          expect(late.status).toBe(200);
          expect(late.headers.getSetCookie()).toEqual([]);
        }
      } finally {
        await setDeliverTwice(bridge, false);
      }
    });

    test('a QR login delivered twice is acted on once as well', async () => {
      const person = await createSandboxUser(bridge, 'QR twice');
      await setDeliverTwice(bridge, true);
      bridge.sandboxState.deliveries.clear();
      try {
        const { tokens } = await loginAs(rp, person);
        expect(tokens.claims()?.sub).toBe(person.unionid);
        await bridge.sandboxState.deliveries.settled();
        const [copy] = bridge.sandboxState.deliveries.list();
        expect(copy).toMatchObject({ status: 200, setCookie: false });
      } finally {
        await setDeliverTwice(bridge, false);
      }
    });

    test('one callback sent twice at once by the same browser is exchanged once and both go to the same place', async () => {
      const person = await createSandboxUser(bridge, '并发 Concurrent');
      const login = await startLogin(rp);
      const callback = (await callbackFromWeChat(login, { user: person, allow: true })).href;
      const logins = countLines(bridge, '"msg":"wechat login"');
      const [first, second] = await Promise.all([
        login.browser.request(callback),
        login.browser.request(callback),
      ]);
      // The delivery that logged in answers with the consent page (test-rp is third-party), the
      // other is sent to it: both to the consent of the same interaction.
      const leadsTo = (hop: Hop) =>
        hop.location
          ? new URL(hop.location, hop.url).pathname
          : consentAction(hop)?.replace(/^.*?(\/interaction\/[^/]+)\/consent$/, '$1');
      const interactionPage = new URL(login.interactionUrl).pathname;
      expect([first, second].map((hop) => hop.status).sort()).toEqual([200, 303]);
      expect(leadsTo(first)).toBe(interactionPage);
      expect(leadsTo(second)).toBe(interactionPage);
      expect(countLines(bridge, '"msg":"wechat login"')).toBe(logins + 1);
      const redirect = await continueToRp(login, first);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(person.unionid);
    });

    test("a callback replayed into another browser's interaction logs nobody in", async () => {
      const person = await createSandboxUser(bridge, '回放 Replay');
      await setDeliverTwice(bridge, true);
      bridge.sandboxState.deliveries.clear();
      try {
        await loginInWeChatAs(rp, person);
        await bridge.sandboxState.deliveries.settled();
      } finally {
        await setDeliverTwice(bridge, false);
      }
      const delivered = new URL(bridge.sandboxState.deliveries.list().at(-1)?.url as string);
      const attacker = await startLogin(rp);
      const attackerUid = interactionUid(attacker);
      delivered.pathname = `/interaction/${attackerUid}/wechat-callback`;
      const replay = await attacker.browser.request(delivered.href);
      expect(replay.status).toBe(400);
      expect(replay.location).toBeUndefined();
      expect(replay.body).toContain('此登录链接已失效或已被使用');
    });

    test("another person's code brought with the attacker's own valid state logs nobody in", async () => {
      /** A login started in WeChat's browser: the callback its first trip to the official account names. */
      const startInWeChat = async (browser: TestBrowser) => {
        const { url } = await authorizationRequest(rp);
        const toWeChat = await browser.request(url.href);
        const trip = new URL(toWeChat.location as string);
        expect(trip.pathname).toBe('/connect/oauth2/authorize');
        const callback = new URL(trip.searchParams.get('redirect_uri') as string);
        callback.searchParams.set('state', trip.searchParams.get('state') as string);
        return callback;
      };
      const person = await createSandboxUser(bridge, '受害者 Victim');
      await loginInWeChatAs(rp, person);
      // The victim's trip comes back with their code, which their delivery claims (a silent login).
      const victim = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      const victimCallback = await startInWeChat(victim);
      const code = bridge.sandboxState.issueCode({
        appid: OFFICIAL_ACCOUNT_APP.appid,
        userId: person.id,
        scope: 'snsapi_base',
      });
      victimCallback.searchParams.set('code', code);
      const delivered = await victim.request(victimCallback.href);
      expect(delivered.status).toBeLessThan(400);

      // The attacker's own login and own (valid) state, with the victim's code.
      const attacker = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      const attackerCallback = await startInWeChat(attacker);
      expect(attackerCallback.pathname).not.toBe(victimCallback.pathname);
      attackerCallback.searchParams.set('code', code);
      const replay = await attacker.request(attackerCallback.href);
      expect(replay.status).toBe(400);
      expect(replay.location).toBeUndefined();
      expect(replay.body).toContain('此登录链接已失效或已被使用');
    });

    test('desktop WeChat and a mini program web-view take the official account route; WeCom gets the QR page', async () => {
      const person = await createSandboxUser(bridge, 'Routes');
      for (const userAgent of [USER_AGENTS.windowsWechat, USER_AGENTS.macWechat, USER_AGENTS.miniProgram]) {
        const { login, tokens } = await loginInWeChatAs(rp, person, { userAgent });
        expect(login.trips[0]?.appid).toBe(OFFICIAL_ACCOUNT_APP.appid);
        expect(tokens.claims()?.sub).toBe(person.unionid);
      }
      const wecom = await loginInWeChat(rp, { userAgent: USER_AGENTS.wecom });
      expect(wecom.trips).toEqual([]);
      expect(wecom.last.status).toBe(200);
      expect(wecom.last.body).toContain('id="wechat-qr"');
      expect(wecom.last.body).toContain('企业微信中无法使用微信授权登录');
      // Another browser on a phone: the QR page, which tells it to open the page in WeChat.
      const phone = await loginInWeChat(rp, { userAgent: USER_AGENTS.mobileSafari });
      expect(phone.trips).toEqual([]);
      expect(phone.last.body).toContain('id="wechat-qr"');
      expect(phone.last.body).toContain('请在微信中打开此页面登录，或在电脑上打开此页面');
      // Not also "scan the QR code", which a phone cannot do with its own screen.
      expect(phone.last.body).not.toContain('id="login-scan"');
    });

    test('no secret, code or token reached the logs', () => {
      const text = bridge.logs.join('');
      for (const secret of [WEBSITE_APP.secret, OFFICIAL_ACCOUNT_APP.secret, RP.client_secret]) {
        expect(text).not.toContain(secret);
      }
      for (const copy of bridge.sandboxState.deliveries.list()) {
        expect(text).not.toContain(new URL(copy.url).searchParams.get('code'));
      }
    });
  });

  describe.skipIf(!available)(`an official account not bound to the Open Platform (${storage})`, () => {
    let bridge: Bridge;
    beforeAll(async () => {
      bridge = await startBridge({ storage, apps: [UNBOUND_OFFICIAL_ACCOUNT_APP] });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('is refused with a page naming the cause, a log line for the admin, and no account', async () => {
      const rp = await relyingParty(bridge);
      const person = await createSandboxUser(bridge, 'Unbound Alice');
      const login = await loginInWeChat(rp, { user: person });
      expect(login.trips.map((trip) => trip.scope)).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(login.last.status).toBe(400);
      expect(login.last.body).toContain('未绑定微信开放平台账号');
      expect(bridge.logs.join('')).toContain('bind this app to your WeChat Open Platform account');
      expect(await bridge.server.stores.db.selectFrom('accounts').select('id').execute()).toHaveLength(0);
      expect(await bridge.server.stores.db.selectFrom('identities').select('openid').execute()).toHaveLength(
        0,
      );
    });
  });
}

describe('several apps of each kind, the first official account with the policy "userinfo"', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      apps: [
        WEBSITE_APP,
        { ...OTHER_OFFICIAL_ACCOUNT_APP, scopePolicy: 'userinfo' },
        OFFICIAL_ACCOUNT_APP,
        UNBOUND_APP,
      ],
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('logs in through the first official account, asking snsapi_userinfo every time, to the same account', async () => {
    const rp = await relyingParty(bridge);
    const person = await createSandboxUser(bridge, 'Always asked');
    const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
    const first = await loginInWeChatAs(rp, person, { browser, scope: WECHAT_SCOPE });
    const again = await loginInWeChatAs(rp, person, { browser, prompt: 'login', scope: WECHAT_SCOPE });
    const desktop = await loginAs(rp, person, { scope: WECHAT_SCOPE });
    expect(first.login.trips).toEqual([
      expect.objectContaining({ appid: OTHER_OFFICIAL_ACCOUNT_APP.appid, scope: 'snsapi_userinfo' }),
    ]);
    expect(again.login.trips).toEqual([
      expect.objectContaining({ appid: OTHER_OFFICIAL_ACCOUNT_APP.appid, scope: 'snsapi_userinfo' }),
    ]);
    for (const tokens of [first.tokens, again.tokens, desktop.tokens]) {
      expect(tokens.claims()?.sub).toBe(person.unionid);
    }
    const userinfo = await oidc.fetchUserInfo(rp, desktop.tokens.access_token, person.unionid);
    expect(userinfo.wechat_openids).toEqual({
      [WEBSITE_APP.appid]: person.openids[WEBSITE_APP.appid],
      [OTHER_OFFICIAL_ACCOUNT_APP.appid]: person.openids[OTHER_OFFICIAL_ACCOUNT_APP.appid],
    });
  });

  test("in a browser with a session the page before the profile request promises no consent: the engine's own prompt asks after the login", async () => {
    const rp = await relyingParty(bridge);
    const person = await createSandboxUser(bridge, '已登录 Session');
    const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
    await loginInWeChatAs(rp, person, { browser, scope: 'openid' });
    // Logged in, this browser asks for more: the page says nothing about consent, and the consent
    // comes after the login, from the engine's prompt.
    const { url, checks } = await authorizationRequest(rp, { scope: 'openid profile', prompt: 'login' });
    const { page, authorize } = await toAuthorizePage(browser, url.href, person);
    expect(page.body).not.toContain('id="authorize-consent"');
    const rest = await followInWeChat(browser, authorize, { user: person });
    expect(rest.consentPages).toBe(1);
    expect((await oidc.authorizationCodeGrant(rp, rest.redirect as URL, checks)).claims()?.sub).toBe(
      person.unionid,
    );
  });
});

describe('a browser with no suitable app configured gets a plain page, never a crash', () => {
  const apps = { websiteOnly: [WEBSITE_APP], officialAccountOnly: [OFFICIAL_ACCOUNT_APP] };
  const bridges: Partial<Record<keyof typeof apps, Bridge>> = {};
  beforeAll(async () => {
    bridges.websiteOnly = await startBridge({ storage: 'embedded', apps: apps.websiteOnly });
    bridges.officialAccountOnly = await startBridge({ storage: 'embedded', apps: apps.officialAccountOnly });
  });
  afterAll(async () => {
    await bridges.websiteOnly?.close();
    await bridges.officialAccountOnly?.close();
  });

  test.each([
    [
      'WeChat on a phone',
      'websiteOnly',
      USER_AGENTS.wechatIos,
      '请在电脑浏览器中打开此页面，用微信扫码登录',
      false,
    ],
    ['a mini program web-view', 'websiteOnly', USER_AGENTS.miniProgram, '请在电脑浏览器中打开此页面', false],
    [
      'desktop WeChat',
      'websiteOnly',
      USER_AGENTS.windowsWechat,
      '<p id="login-scan">请使用微信扫描二维码登录',
      true,
    ],
    ['a desktop browser', 'officialAccountOnly', USER_AGENTS.desktop, '请在微信中打开此页面登录', false],
    ['WeCom', 'officialAccountOnly', USER_AGENTS.wecom, '请在微信中打开此页面登录', false],
    ['a phone browser', 'websiteOnly', USER_AGENTS.mobileSafari, '手机无法扫描自己屏幕上的二维码', true],
    ['a phone browser', 'officialAccountOnly', USER_AGENTS.mobileSafari, '请在微信中打开此页面登录', false],
  ] as const)('%s (%s)', async (_name, setup, userAgent, text, qr) => {
    const bridge = bridges[setup] as Bridge;
    const rp = await relyingParty(bridge);
    const login = await loginInWeChat(rp, { userAgent });
    expect(login.trips).toEqual([]);
    expect(login.last.status).toBe(200);
    expect(login.last.body).toContain(text);
    expect(login.last.body.includes('id="wechat-qr"')).toBe(qr);
    expect(login.last.body).toContain('name="reason" value="cancelled"');
  });

  test('WeCom on a phone is told to open the page in WeChat or on a computer, not to scan its own screen; on a computer it scans', async () => {
    const rp = await relyingParty(bridges.websiteOnly as Bridge);
    const phone = await loginInWeChat(rp, { userAgent: USER_AGENTS.wecom });
    expect(phone.trips).toEqual([]);
    expect(phone.last.body).toContain(
      '<p class="notice" id="login-notice">企业微信中无法使用微信授权登录。请在微信中打开此页面，或在电脑浏览器中打开后用手机微信扫码。</p>',
    );
    expect(phone.last.body).not.toContain('id="login-scan"');
    const computer = await loginInWeChat(rp, { userAgent: USER_AGENTS.wecomDesktop });
    expect(computer.last.body).toContain('请用手机微信扫描下方二维码');
    expect(computer.last.body).toContain('<p id="login-scan">');
    expect(computer.last.body).toContain('id="wechat-qr"');
  });
});

function countLines(bridge: Bridge, text: string): number {
  return bridge.logs.filter((line) => line.includes(text)).length;
}
