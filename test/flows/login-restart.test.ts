import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Bridge,
  OFFICIAL_ACCOUNT_APP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
} from '../helpers/bridge.ts';
import { decodeEntities, TestBrowser, USER_AGENTS } from '../helpers/browser.ts';
import {
  authorizationRequest,
  callbackFromWeChat,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginStarted,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { followInWeChat, toAuthorizePage } from '../helpers/official-account.ts';

/** How long a login may take in these bridges: seconds, so that one times out within the test. */
const INTERACTION_SECONDS = 2;

const timedOut = () => new Promise((resolve) => setTimeout(resolve, (INTERACTION_SECONDS + 1.5) * 1000));

/**
 * A login page left open past the interaction's lifetime, then scanned: the page that says the
 * login timed out offers to start the same authorization request again (src/interaction/restart.ts),
 * and the application receives a code for its own request, state, nonce and PKCE.
 */
describe.each(STORAGE_SETUPS)('a login that timed out starts again (%s)', (storage) => {
  let bridge: Bridge;
  let person: SandboxUser;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    if (!(await storageAvailable(storage))) throw new Error(`${storage} is not available`);
    bridge = await startBridge({
      storage,
      configure: (c) => ({
        ...c,
        oidc: { ...c.oidc, ttl: { ...c.oidc.ttl, interaction: INTERACTION_SECONDS } },
      }),
    });
    person = await createSandboxUser(bridge, '迟到的人');
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the timed-out page offers the same request again, and the application completes the login with it', async () => {
    const login = await startLogin(rp);
    await timedOut();
    const late = await decideOnWeChat(login, { user: person, allow: true });
    expect(late.status).toBe(400);
    expect(late.body).toContain('登录已超时。你可以重新开始登录。');
    const restart = /<a class="button" id="restart-login" href="([^"]+)"/.exec(late.body)?.[1];
    expect(restart).toBeDefined();
    const again = new URL((restart as string).replaceAll('&amp;', '&'), bridge.url);
    expect(again.pathname).toBe('/auth');
    expect(again.searchParams.get('state')).toBe(login.checks.expectedState);

    const restarted = loginStarted(login.browser, login.checks, await login.browser.follow(again.href));
    expect(restarted.interactionUrl).not.toBe(login.interactionUrl);
    const redirect = await continueToRp(
      restarted,
      await decideOnWeChat(restarted, { user: person, allow: true }),
    );
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
  });

  test("the timed-out page is in the language the client asked for (ui_locales), as the login's page was", async () => {
    // The browser prefers Chinese; the application asked for English.
    const login = await startLogin(rp, { extra: { ui_locales: 'en' } });
    expect(login.loginPage.body).toContain('lang="en"');
    await timedOut();
    const late = await decideOnWeChat(login, { user: person, allow: true });
    expect(late.status).toBe(400);
    expect(late.body).toContain('lang="en"');
    expect(late.body).toContain('id="restart-login"');
    // Its language switch (at WeChat's callback, whose code and state stay out of the page) leads
    // to the interaction's own page, which shows the same page, with the same restart, in Chinese.
    const switchHref = decodeEntities(/<a id="lang-switch" href="([^"]+)"/.exec(late.body)?.[1] ?? '');
    expect(switchHref).toBe(`${new URL(login.interactionUrl).pathname}?lang=zh-CN`);
    expect(late.body).not.toContain(new URL(late.url).searchParams.get('code') as string);
    const chinese = await login.browser.request(new URL(switchHref, bridge.url).href);
    expect(chinese.status).toBe(400);
    expect(chinese.body).toContain('<html lang="zh-CN">');
    expect(chinese.body).toContain('登录已超时。你可以重新开始登录。');
    const restartOf = (body: string) => /id="restart-login" href="([^"]+)"/.exec(body)?.[1];
    expect(restartOf(chinese.body)).toBe(restartOf(late.body));
  });

  test('a login that finished offers nothing to restart once its interaction is gone', async () => {
    const login = await startLogin(rp);
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user: person, allow: true }));
    expect((await oidc.authorizationCodeGrant(rp, redirect, login.checks)).claims()?.sub).toBe(
      person.unionid,
    );
    await timedOut();
    // Back to the login's page, long after: it is over, and restarting it would only replay the
    // application's spent state.
    const back = await login.browser.request(login.interactionUrl);
    expect(back.status).toBe(400);
    expect(back.body).toContain('登录已超时或页面已失效');
    expect(back.body).not.toContain('id="restart-login"');
  });

  test('a request too long to keep beside the login page sets no restart cookie', async () => {
    const browser = new TestBrowser();
    const short = await authorizationRequest(rp);
    const kept = await browser.request(short.url.href);
    expect(kept.headers.getSetCookie().some((line) => line.startsWith('login_restart='))).toBe(true);
    // A long but valid request (a large claims parameter, say): its answer's headers stay small.
    const long = await authorizationRequest(rp, { extra: { ui_locales: `zh-CN ${'x'.repeat(1000)}` } });
    const answer = await browser.request(long.url.href);
    expect(answer.status).toBe(200);
    expect(answer.headers.getSetCookie().some((line) => line.startsWith('login_restart='))).toBe(false);
  });

  test("another browser's timed-out page, or another tab's login, offers nothing to restart", async () => {
    const login = await startLogin(rp);
    await timedOut();
    const callback = await callbackFromWeChat(login, { user: person, allow: true });
    // Without the cookie of the browser that started it.
    const elsewhere = await new TestBrowser().request(callback.href);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body).toContain('登录已超时或页面已失效');
    expect(elsewhere.body).not.toContain('id="restart-login"');
    // Its language switch shows the same page in English, from a URL without the callback's code.
    const switchHref = decodeEntities(/<a id="lang-switch" href="([^"]+)"/.exec(elsewhere.body)?.[1] ?? '');
    expect(switchHref).toBe(`${new URL(login.interactionUrl).pathname}?lang=en`);
    const english = await new TestBrowser().request(new URL(switchHref, bridge.url).href);
    expect(english.body).toContain('This login has timed out or the page is no longer valid.');
    // The same browser, after starting another login in another tab: the cookie names that one.
    await startLogin(rp, { browser: login.browser });
    const sameBrowser = await login.browser.request(callback.href);
    expect(sameBrowser.body).not.toContain('id="restart-login"');
  });
});

describe('a login inside WeChat that timed out on the page before the profile request starts again', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      apps: [OFFICIAL_ACCOUNT_APP],
      configure: (c) => ({
        ...c,
        oidc: { ...c.oidc, ttl: { ...c.oidc.ttl, interaction: INTERACTION_SECONDS } },
      }),
    });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the silent trip that led to the page did not end the login: its timed-out callback offers the restart', async () => {
    const person = await createSandboxUser(bridge, '公众号新人');
    const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
    const { url, checks } = await authorizationRequest(rp);
    // snsapi_base, then our page before the profile request (the person is new): left open.
    const { authorize } = await toAuthorizePage(browser, url.href, person);
    await timedOut();
    const late = await followInWeChat(browser, authorize, { user: person });
    expect(late.last.status).toBe(400);
    const restart = /<a class="button" id="restart-login" href="([^"]+)"/.exec(late.last.body)?.[1];
    expect(restart).toBeDefined();
    const again = await followInWeChat(browser, new URL(decodeEntities(restart as string), bridge.url).href, {
      user: person,
    });
    const tokens = await oidc.authorizationCodeGrant(rp, again.redirect as URL, checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
  });
});
