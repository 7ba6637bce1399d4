import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, startQuickStartBridge } from '../helpers/bridge.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';

/**
 * The quick start as a newcomer lives it: `npm start`'s setup (the in-process sandbox and the demo
 * relying party), a login through the sandbox as a fake user, and the ID token's claims on screen.
 */
describe.skipIf(!chromiumAvailable)('the demo a newcomer opens after npm start', () => {
  let bridge: Bridge;
  let browser: Browser;

  beforeAll(async () => {
    bridge = await startQuickStartBridge();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  test('logs in as a new fake user with an emoji nickname and shows an ID token whose sub is their unionid', async () => {
    const sandboxUrl = bridge.server.sandboxUrl as string;
    expect(sandboxUrl).toBeTruthy();
    const page = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
    await page.goto(`${bridge.url}/demo`);
    await page.click('#demo-login');
    const frame = page.frameLocator('#wechat-qr');
    await frame.locator('input[name="nickname"]').fill('新用户 🌸 Mei');
    await frame.locator('button.allow').click();
    await page.waitForSelector('#consent-allow');
    await page.click('#consent-allow');
    await page.waitForSelector('#id-token-claims');
    const claims = JSON.parse((await page.locator('#id-token-claims').textContent()) as string) as Record<
      string,
      unknown
    >;

    const listed = (await (await fetch(`${sandboxUrl}/sandbox/users`)).json()) as {
      users: Array<{ nickname: string; unionid: string }>;
    };
    const mei = listed.users.find((u) => u.nickname === '新用户 🌸 Mei');
    expect(mei).toBeDefined();
    expect(claims.sub).toBe(mei?.unionid);
    const userinfo = JSON.parse((await page.locator('#userinfo').textContent()) as string) as Record<
      string,
      unknown
    >;
    expect(userinfo.nickname).toBe('新用户 🌸 Mei');
    expect(claims.iss).toBe(bridge.url);
    await page.screenshot({ path: 'test-results/screenshots/demo-claims.png', fullPage: true });
  });

  test("opened under the issuer's other loopback name, it moves to the issuer's host and the login comes back to it", async () => {
    // The issuer is http://127.0.0.1:<port>; localhost reaches the same server under another host,
    // whose cookies the issuer's callback would not see.
    const page = await (await browser.newContext({ locale: 'en-US' })).newPage();
    const elsewhere = new URL('/demo', bridge.url);
    elsewhere.hostname = 'localhost';
    await page.goto(elsewhere.href);
    expect(page.url()).toBe(`${bridge.url}/demo`);
    await page.click('#demo-login');
    await page.frameLocator('#wechat-qr').locator('button.allow').click();
    await page.waitForSelector('#consent-allow, #id-token-claims');
    if (await page.locator('#consent-allow').count()) await page.click('#consent-allow');
    await page.waitForSelector('#id-token-claims');
    expect(new URL(page.url()).origin).toBe(bridge.url);
  });

  test('follows the language chosen on it through the login and back, and says a cancelled login was cancelled', async () => {
    const page = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
    await page.goto(`${bridge.url}/demo`);
    expect(await page.locator('h1').textContent()).toBe('演示应用');
    await page.click('#lang-switch');
    expect(await page.locator('h1').textContent()).toBe('Demo app');
    await page.click('#demo-login');
    // The login page in the demo's language (ui_locales), though the browser prefers Chinese.
    await page.waitForSelector('#wechat-qr');
    expect(await page.locator('h1').textContent()).toBe('Log in with WeChat');
    await page.click('button:has-text("Cancel")');
    await page.waitForSelector('#demo-error');
    expect(await page.locator('#demo-error').textContent()).toBe('You cancelled the login.');
    expect(await page.locator('#demo-error-code').textContent()).toMatch(/^access_denied: /);
    expect(await page.locator('h1').textContent()).toBe('Demo app');
  });
});
