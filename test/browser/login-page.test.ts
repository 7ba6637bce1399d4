import { mkdir } from 'node:fs/promises';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { authorizationRequest, createSandboxUser, relyingParty, type SandboxUser } from '../helpers/flow.ts';

const SCREENSHOTS = 'test-results/screenshots';

describe.skipIf(!chromiumAvailable)('the login page in headless Chromium', () => {
  let bridge: Bridge;
  let browser: Browser;
  let rp: oidc.Configuration;
  let user: SandboxUser;

  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded' });
    rp = await relyingParty(bridge);
    user = await createSandboxUser(bridge, '微信用户小明 🐼');
    browser = await launchChromium();
    await mkdir(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  test('a person scans and allows in the embedded QR frame, consents, and the client gets their unionid', async () => {
    const { context, page, landed } = await rpBrowser(browser, 'zh-CN');
    const { url, checks } = await authorizationRequest(rp);
    await page.goto(url.href);
    expect(await page.locator('h1').textContent()).toBe('使用微信登录');
    // The page names its icon, so that a browser does not ask for a /favicon.ico that is not there
    // (a 404 in the access log for every page a person opens).
    expect(await page.locator('link[rel="icon"]').getAttribute('href')).toBe('data:,');
    const frame = page.frameLocator('#wechat-qr');
    await frame.locator('select[name="user"]').selectOption({ label: user.nickname });
    await page.screenshot({ path: `${SCREENSHOTS}/login-zh.png`, fullPage: true });
    await frame.locator('button.allow').click();

    // The top window left the QR page: consent, in Chinese.
    await page.waitForSelector('#consent-allow');
    expect(await page.locator('h1').textContent()).toBe('授权确认');
    expect(await page.content()).toContain(user.nickname);
    await page.screenshot({ path: `${SCREENSHOTS}/consent-zh.png`, fullPage: true });
    await page.click('#consent-allow');
    await page.waitForURL('https://rp.example.test/**');

    const tokens = await oidc.authorizationCodeGrant(rp, landed() as URL, checks);
    expect(tokens.claims()?.sub).toBe(user.unionid);
    await context.close();
  });

  test('allowed on the phone, the QR frame takes the page on by itself, with no click in the frame', async () => {
    // As with WeChat: the person scans with their phone and allows there; the frame, on WeChat's
    // origin, learns it by polling and navigates the top window to our callback. Browsers block a
    // cross-origin frame's top navigation without a user gesture unless it stays on the top
    // window's origin, which the callback does (it is on the login page's origin).
    const { context, page, landed } = await rpBrowser(browser, 'zh-CN');
    const { url, checks } = await authorizationRequest(rp);
    await page.goto(url.href);
    const scanUrl = await page.frameLocator('#wechat-qr').locator('a.phone-link').getAttribute('href');
    // The phone is another device: a context of its own, left open until the end (closing its page
    // while the frame navigated the top window sometimes hung Chromium's page close for minutes).
    const device = await browser.newContext({ locale: 'zh-CN' });
    const phone = await device.newPage();
    await phone.goto(scanUrl as string);
    await phone.locator('input[name="nickname"]').fill('扫码的人');
    await phone.locator('button.allow').click();

    await page.waitForSelector('#consent-allow');
    await page.click('#consent-allow');
    await page.waitForURL('https://rp.example.test/**');
    const tokens = await oidc.authorizationCodeGrant(rp, landed() as URL, checks);
    const scanned = bridge.sandboxState.listUsers().find((person) => person.nickname === '扫码的人');
    expect(tokens.claims()?.sub).toBe(scanned?.unionid);
    await Promise.all([context.close(), device.close()]);
  });

  test("oidc-provider's self-submitting pages run under the Content-Security-Policy: a form_post response and a logout with no session left", async () => {
    const { context, page } = await rpBrowser(browser, 'zh-CN');
    const posted: Array<{ url: string; body: string | null }> = [];
    await page.route('https://rp.example.test/**', async (route) => {
      posted.push({ url: route.request().url(), body: route.request().postData() });
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>RP</p>' });
    });
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });

    // No session here: the answer is login_required, posted to the client by the page's script.
    const { url } = await authorizationRequest(rp, { prompt: 'none', extra: { response_mode: 'form_post' } });
    await page.goto(url.href);
    await page.waitForURL('https://rp.example.test/callback', { timeout: 10_000 });
    expect(new URLSearchParams(posted[0]?.body ?? '').get('error')).toBe('login_required');

    // RP-initiated logout after this provider's session has ended: back to the client with its state.
    const logout = new URL(`${bridge.url}/session/end`);
    logout.search = new URLSearchParams({
      client_id: RP.client_id,
      post_logout_redirect_uri: RP.post_logout_redirect_uris?.[0] as string,
      state: 'after-logout',
    }).toString();
    await page.goto(logout.href);
    await page.waitForURL('https://rp.example.test/logged-out?**', { timeout: 10_000 });
    expect(new URL(page.url()).searchParams.get('state')).toBe('after-logout');
    expect(blocked).toEqual([]);
    await context.close();
  });

  test("without JavaScript, the form that ends the previous person's session when someone else logs in is our page, in Chinese, and its button goes on", async () => {
    const { context, page, landed } = await rpBrowser(browser, 'zh-CN', { javaScriptEnabled: false });
    const first = await createSandboxUser(bridge, '先登录的人');
    const second = await createSandboxUser(bridge, '后登录的人');
    await logInThroughPages(page, rp, first);
    // Another person logs in in the same browser: oidc-provider ends the first person's session
    // through its self-submitting form, which without JavaScript waits for its button.
    const checks = await allowedOnWeChat(page, rp, second, { prompt: 'login' });
    await page.click('#consent-allow');
    await page.waitForSelector('#form-post-continue');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    expect(await page.title()).toBe('正在继续…');
    expect(await page.locator('h1').textContent()).toBe('正在继续…');
    expect(await page.locator('meta[name="viewport"]').count()).toBe(1);
    expect(await page.locator('link[rel="stylesheet"]').getAttribute('href')).toBe('/assets/app.css');
    expect(await page.locator('#form-post-noscript').textContent()).toContain('此浏览器未启用 JavaScript');
    const button = page.getByRole('button', { name: '继续', exact: true });
    expect(await button.isVisible()).toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}/form-post-noscript-zh.png`, fullPage: true });
    await button.click();
    await page.waitForURL('https://rp.example.test/**', { timeout: 10_000 });
    const tokens = await oidc.authorizationCodeGrant(rp, landed() as URL, checks);
    expect(tokens.claims()?.sub).toBe(second.unionid);
    await context.close();
  });

  test('with JavaScript, that form submits itself under the Content-Security-Policy and the other person is logged in', async () => {
    const { context, page } = await rpBrowser(browser, 'zh-CN');
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });
    const first = await createSandboxUser(bridge, '先登录 JS');
    const second = await createSandboxUser(bridge, '后登录 JS');
    await logInThroughPages(page, rp, first);
    const checks = await allowedOnWeChat(page, rp, second, { prompt: 'login' });
    // The redirect to the client, read as the browser asks for it: the page's route does not catch
    // every hop of a redirect chain (Playwright's page.route).
    const toClient = page.waitForRequest(
      (request) => request.url().startsWith(RP.redirect_uris[0] as string),
      {
        timeout: 10_000,
      },
    );
    await page.click('#consent-allow');
    const redirect = new URL((await toClient).url());
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, checks);
    expect(tokens.claims()?.sub).toBe(second.unionid);
    expect(blocked).toEqual([]);
    await context.close();
  });

  test.each([
    ['without JavaScript, through its button', false],
    ['with JavaScript, by itself', true],
  ])(
    'a response_mode=form_post answer delivers the code to the client %s, from our page',
    async (_how, javaScriptEnabled) => {
      const { context, page } = await rpBrowser(browser, 'en-US', { javaScriptEnabled });
      const person = await createSandboxUser(bridge, `Form post ${javaScriptEnabled ? 'JS' : 'no JS'}`);
      await logInThroughPages(page, rp, person);
      const posted: string[] = [];
      await page.route(RP.redirect_uris[0] as string, async (route) => {
        posted.push(route.request().postData() ?? '');
        await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>RP</p>' });
      });
      const { url, checks } = await authorizationRequest(rp, { extra: { response_mode: 'form_post' } });
      await page.goto(url.href);
      if (!javaScriptEnabled) {
        // The page stays, in the browser's language, until its button is pressed.
        expect(await page.locator('html').getAttribute('lang')).toBe('en');
        expect(await page.title()).toBe('Continuing…');
        await page.getByRole('button', { name: 'Continue', exact: true }).click();
      }
      await page.waitForURL(RP.redirect_uris[0] as string, { timeout: 10_000 });
      const fields = new URLSearchParams(posted[0]);
      expect(fields.get('code')).toBeTruthy();
      const callback = new URL(`${RP.redirect_uris[0]}?${fields}`);
      const tokens = await oidc.authorizationCodeGrant(rp, callback, checks);
      expect(tokens.claims()?.sub).toBe(person.unionid);
      await context.close();
    },
  );

  test("a relying party's form posted to the authorization endpoint from its own site finds the provider's session (SameSite=Lax)", async () => {
    const { context, page, landed } = await rpBrowser(browser, 'zh-CN');
    // A first login in this browser, by someone who has not consented yet: the provider's session cookie.
    const person = await createSandboxUser(bridge, '表单提交的人');
    await logInThroughPages(page, rp, person);

    // The relying party's page, on a site of its own, posts the next request as a form, with
    // prompt=none: a code comes back only if the session cookie went along to the GET it became.
    const { url, checks } = await authorizationRequest(rp, { prompt: 'none' });
    const fields = [...url.searchParams]
      .map(([name, value]) => `<input type="hidden" name="${name}" value="${value.replace(/"/g, '&quot;')}">`)
      .join('');
    await page.route('http://rp.example.test/start', (route) =>
      route.fulfill({
        status: 200,
        contentType: 'text/html',
        body: `<form method="post" action="${bridge.url}/auth">${fields}<button id="go">go</button></form>`,
      }),
    );
    await page.goto('http://rp.example.test/start');
    await page.click('#go');
    await page.waitForURL('https://rp.example.test/callback?**', { timeout: 10_000 });
    expect(landed()?.searchParams.get('error')).toBeNull();
    const tokens = await oidc.authorizationCodeGrant(rp, landed() as URL, checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
    await context.close();
  });

  test('the page follows Accept-Language, and declining leads to a readable page with a way back', async () => {
    const { context, page, landed } = await rpBrowser(browser, 'en-US');
    const { url } = await authorizationRequest(rp);
    await page.goto(url.href);
    expect(await page.locator('h1').textContent()).toBe('Log in with WeChat');
    await page.frameLocator('#wechat-qr').locator('button.deny').click();
    await page.waitForSelector('#error-message');
    expect(await page.locator('#error-message').textContent()).toContain('You declined');
    await page.screenshot({ path: `${SCREENSHOTS}/declined-en.png`, fullPage: true });
    await page.click('#back-to-app');
    await page.waitForURL('https://rp.example.test/**');
    expect(landed()?.searchParams.get('error')).toBe('access_denied');
    await context.close();
  });
});

/**
 * A browser context in `locale` whose navigation to the relying party's redirect_uri (not a real
 * site) is caught: `landed()` is where it went.
 */
async function rpBrowser(browser: Browser, locale: string, options: { javaScriptEnabled?: boolean } = {}) {
  const context = await browser.newContext({ locale, ...options });
  const page = await context.newPage();
  let landed: URL | undefined;
  await page.route('https://rp.example.test/**', async (route) => {
    landed = new URL(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>RP</p>' });
  });
  return { context, page, landed: () => landed };
}

/** `person` logs in to the relying party through the pages (the QR frame, consent), JavaScript or not. */
async function logInThroughPages(page: Page, rp: oidc.Configuration, person: SandboxUser): Promise<void> {
  await allowedOnWeChat(page, rp, person);
  await page.click('#consent-allow');
  await page.waitForURL('https://rp.example.test/**', { timeout: 10_000 });
}

/**
 * An authorization request opened in the page, and `person` picked and allowed on the sandbox's
 * WeChat page in its frame, up to the consent page; its PKCE checks, for the code exchange.
 */
async function allowedOnWeChat(
  page: Page,
  rp: oidc.Configuration,
  person: SandboxUser,
  options: Parameters<typeof authorizationRequest>[1] = {},
) {
  const { url, checks } = await authorizationRequest(rp, options);
  await page.goto(url.href);
  const frame = page.frameLocator('#wechat-qr');
  await frame.locator('select[name="user"]').selectOption({ label: person.nickname });
  await frame.locator('button.allow').click();
  await page.waitForSelector('#consent-allow');
  return checks;
}
