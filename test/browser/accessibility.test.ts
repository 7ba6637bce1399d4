import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, OFFICIAL_ACCOUNT_APP, startQuickStartBridge, WEBSITE_APP } from '../helpers/bridge.ts';
import { USER_AGENTS } from '../helpers/browser.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { ageLogin, SESSION_COOKIE } from '../helpers/recent-login.ts';

/** What axe-core (Deque's accessibility engine) reports of a page's WCAG 2.1 A and AA rules. */
interface AxeViolation {
  id: string;
  nodes: Array<{ target: string[] }>;
}

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The WCAG 2.1 A and AA rules axe checks, on the page as served: evaluated through the browser's
 * debugging protocol, which the pages' Content-Security-Policy (no inline scripts) does not govern.
 * Each violation as "rule: element".
 */
async function violations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const options = {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  };
  // A string: the expression runs in the page, where `axe` and `document` are.
  const found = (await page.evaluate(`axe.run(document, ${JSON.stringify(options)})`)) as {
    violations: AxeViolation[];
  };
  return found.violations.flatMap((v) => v.nodes.map((node) => `${v.id}: ${node.target.join(' ')}`));
}

/**
 * Every page a person meets on our side of a login, in both languages: the login page, the consent
 * page, the account page (with what an action did, its deletion step, the page asking to log in
 * again before it, and its login cancelled), the logout page, an error page. The demo
 * relying party's pages come along (they are part of the quick start). WeChat's own pages (the
 * sandbox's QR page in its frame) are WeChat's, not scanned.
 */
describe.skipIf(!chromiumAvailable)('the pages meet WCAG 2.1 AA as axe-core checks it', () => {
  let bridge: Bridge;
  let browser: Browser;

  beforeAll(async () => {
    // With an official account too, for its page inside WeChat.
    bridge = await startQuickStartBridge(undefined, [WEBSITE_APP, OFFICIAL_ACCOUNT_APP]);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  for (const locale of ['zh-CN', 'en-US']) {
    test(`${locale}: login, consent, account, deletion, logout and error pages`, async () => {
      const context = await browser.newContext({ locale });
      const page = await context.newPage();
      const found: Record<string, string[]> = {};
      const scan = async (name: string) => {
        found[name] = await violations(page);
      };
      await page.goto(`${bridge.url}/demo`);
      await scan('demo');
      await page.click('#demo-login');
      await page.waitForSelector('#wechat-qr');
      await scan('login');
      const frame = page.frameLocator('#wechat-qr');
      await frame.locator('input[name="nickname"]').fill(`无障碍 ${locale}`);
      await frame.locator('button.allow').click();
      await page.waitForSelector('#consent-allow');
      await scan('consent');
      await page.screenshot({ path: `test-results/screenshots/consent-${locale}.png`, fullPage: true });
      await page.click('#consent-allow');
      await page.waitForSelector('#id-token-claims');
      await scan('demo callback');
      await page.goto(`${bridge.url}/account`);
      await page.waitForSelector('#account-delete');
      await scan('account');
      // What an action did, said on the account page (revoking the demo: nothing below needs it).
      await page.click('#account-apps button.revoke');
      await page.waitForSelector('#account-done');
      await scan('account after revoking');
      await page.click('#account-delete');
      await page.waitForLoadState();
      await scan('account deletion');
      // The same session, its login made old: the page that asks to log in again.
      const session = (await context.cookies()).find((cookie) => cookie.name === SESSION_COOKIE);
      await ageLogin(bridge, session?.value as string, 11 * 60);
      await page.goto(`${bridge.url}/account/login-again/delete`);
      await page.waitForSelector('#account-login-again');
      await scan('log in again');
      await page.goto(`${bridge.url}/interaction/no-such-interaction`);
      await scan('error');
      await page.goto(`${bridge.url}/account/login-stopped?why=cancelled`);
      await page.waitForSelector('#notice-login');
      await scan('account login cancelled');
      await page.goto(`${bridge.url}/session/end`);
      await page.waitForSelector('#logout-yes');
      await scan('logout');
      await page.click('#logout-yes');
      await page.waitForLoadState();
      await scan('logged out');
      await page.screenshot({ path: `test-results/screenshots/logged-out-${locale}.png`, fullPage: true });
      await context.close();

      // Inside WeChat, a person the official account does not know yet: our page before WeChat asks
      // for their profile.
      const phone = await browser.newContext({ locale, userAgent: USER_AGENTS.wechatIos, isMobile: true });
      const inWeChat = await phone.newPage();
      await inWeChat.goto(`${bridge.url}/demo`);
      await inWeChat.click('#demo-login');
      await inWeChat.waitForSelector('#oauth2-allow');
      await inWeChat.click('#oauth2-allow');
      await inWeChat.waitForSelector('#wechat-authorize');
      found['wechat authorize'] = await violations(inWeChat);
      await phone.close();

      expect(Object.keys(found)).toHaveLength(13);
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((name) => [name, []])));
    });
  }
});
