import { mkdir } from 'node:fs/promises';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, OFFICIAL_ACCOUNT_APP, startBridge, WEBSITE_APP } from '../helpers/bridge.ts';
import { USER_AGENTS } from '../helpers/browser.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { authorizationRequest, createSandboxUser, relyingParty, type SandboxUser } from '../helpers/flow.ts';

const SCREENSHOTS = 'test-results/screenshots';
const SCOPE = 'openid profile wechat';

describe.skipIf(!chromiumAvailable)('login in headless Chromium, as a desktop browser and as WeChat', () => {
  let bridge: Bridge;
  let browser: Browser;
  let rp: oidc.Configuration;
  let person: SandboxUser;

  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded', apps: [WEBSITE_APP, OFFICIAL_ACCOUNT_APP] });
    rp = await relyingParty(bridge);
    person = await createSandboxUser(bridge, '李雷 📱');
    browser = await launchChromium();
    await mkdir(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  /** A page whose navigation to the relying party's redirect_uri is caught and remembered. */
  async function rpPage(context: BrowserContext): Promise<{ page: Page; landed: () => URL | undefined }> {
    const page = await context.newPage();
    let landed: URL | undefined;
    await page.route('https://rp.example.test/**', async (route) => {
      landed = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>RP</p>' });
    });
    return { page, landed: () => landed };
  }

  test('the same person gets the same sub by QR on a desktop and through the official account inside WeChat', async () => {
    // On a desktop: the QR page; scan and allow in the embedded frame, consent (to less than SCOPE,
    // so that the login in WeChat, asking for the wechat scope too, gets a consent page of its own).
    const desktop = await browser.newContext({ locale: 'zh-CN', userAgent: USER_AGENTS.desktop });
    const onDesktop = await rpPage(desktop);
    const qrLogin = await authorizationRequest(rp, { scope: 'openid profile' });
    await onDesktop.page.goto(qrLogin.url.href);
    const frame = onDesktop.page.frameLocator('#wechat-qr');
    await frame.locator('select[name="user"]').selectOption({ label: person.nickname });
    await frame.locator('button.allow').click();
    await onDesktop.page.waitForSelector('#consent-allow');
    await onDesktop.page.click('#consent-allow');
    await onDesktop.page.waitForURL('https://rp.example.test/**');
    const desktopTokens = await oidc.authorizationCodeGrant(rp, onDesktop.landed() as URL, qrLogin.checks);
    await desktop.close();

    // In WeChat on a phone: no QR code; straight to the official account's authorization.
    const phone = await browser.newContext({
      locale: 'zh-CN',
      userAgent: USER_AGENTS.wechatIos,
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    const inWeChat = await rpPage(phone);
    const oaLogin = await authorizationRequest(rp, { scope: SCOPE });
    await inWeChat.page.goto(oaLogin.url.href);
    // First the sandbox asks who is using WeChat here (snsapi_base is silent in real WeChat)...
    await inWeChat.page.waitForSelector('#oauth2-allow');
    expect(new URL(inWeChat.page.url()).searchParams.get('scope')).toBe('snsapi_base');
    await inWeChat.page.getByLabel(person.nickname).check();
    await inWeChat.page.screenshot({ path: `${SCREENSHOTS}/wechat-base-pick-zh.png`, fullPage: true });
    await inWeChat.page.click('#oauth2-allow');
    // ...then, the person being new to this official account, our page says what the client will
    // get, and its button (not the page's opening) starts the snsapi_userinfo consent.
    await inWeChat.page.waitForSelector('#wechat-authorize');
    expect(await inWeChat.page.locator('#authorize-why').textContent()).toContain('昵称和头像');
    await inWeChat.page.screenshot({ path: `${SCREENSHOTS}/wechat-authorize-zh.png`, fullPage: true });
    await inWeChat.page.click('#wechat-authorize');
    await inWeChat.page.waitForSelector('#oauth2-deny');
    expect(new URL(inWeChat.page.url()).searchParams.get('scope')).toBe('snsapi_userinfo');
    expect(await inWeChat.page.content()).toContain(`value="${person.id}" checked`);
    await inWeChat.page.screenshot({ path: `${SCREENSHOTS}/wechat-userinfo-consent-zh.png`, fullPage: true });
    await inWeChat.page.click('#oauth2-allow');
    await inWeChat.page.waitForSelector('#consent-allow');
    expect(await inWeChat.page.content()).toContain('你在各微信公众号、小程序中的用户标识');
    // The page says the answer is remembered, and where to take it back.
    expect(await inWeChat.page.locator('#consent-remembered').textContent()).toContain('账号管理页取消授权');
    await inWeChat.page.screenshot({ path: `${SCREENSHOTS}/wechat-consent-zh.png`, fullPage: true });
    await inWeChat.page.click('#consent-allow');
    await inWeChat.page.waitForURL('https://rp.example.test/**');
    const weChatTokens = await oidc.authorizationCodeGrant(rp, inWeChat.landed() as URL, oaLogin.checks);

    expect(desktopTokens.claims()?.sub).toBe(person.unionid);
    expect(weChatTokens.claims()?.sub).toBe(person.unionid);
    const userinfo = await oidc.fetchUserInfo(rp, weChatTokens.access_token, person.unionid);
    expect(userinfo.wechat_openids).toEqual({
      [WEBSITE_APP.appid]: person.openids[WEBSITE_APP.appid],
      [OFFICIAL_ACCOUNT_APP.appid]: person.openids[OFFICIAL_ACCOUNT_APP.appid],
    });

    // Next time in the same WeChat: silent (snsapi_base), no WeChat page at all.
    const again = await authorizationRequest(rp, { scope: SCOPE, prompt: 'login' });
    const wechatPages: string[] = [];
    inWeChat.page.on('framenavigated', (frame) => {
      if (frame.url().includes('/connect/')) wechatPages.push(frame.url());
    });
    // One navigation, redirects all the way to the relying party (caught as a request: a redirect
    // chain started by goto is not routed through page.route).
    const [arrival] = await Promise.all([
      inWeChat.page.waitForRequest(/^https:\/\/rp\.example\.test\//),
      inWeChat.page.goto(again.url.href).catch(() => undefined),
    ]);
    expect(wechatPages).toEqual([]);
    const silentTokens = await oidc.authorizationCodeGrant(rp, new URL(arrival.url()), again.checks);
    expect(silentTokens.claims()?.sub).toBe(person.unionid);
    await phone.close();
  });

  test('WeChat’s authorize page opened in a desktop browser says to open it in WeChat', async () => {
    const desktop = await browser.newContext({ locale: 'zh-CN', userAgent: USER_AGENTS.desktop });
    const page = await desktop.newPage();
    const url = new URL('/connect/oauth2/authorize', bridge.sandboxUrl);
    url.search = new URLSearchParams({
      appid: OFFICIAL_ACCOUNT_APP.appid,
      redirect_uri: `${bridge.url}/interaction/x/wechat-callback`,
      response_type: 'code',
      scope: 'snsapi_base',
      state: 'abc',
    }).toString();
    const response = await page.goto(`${url.href}#wechat_redirect`);
    expect(response?.status()).toBe(200);
    expect(await page.locator('h1').textContent()).toBe('请在微信客户端打开链接');
    expect(new URL(page.url()).origin).toBe(bridge.sandboxUrl);
    await desktop.close();
  });
});
