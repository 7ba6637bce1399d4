import { mkdir } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { linkIdentity, setVerifiedPhoneNumber } from '../../src/accounts/repository.ts';
import {
  type Bridge,
  OFFICIAL_ACCOUNT_APP,
  OTHER_OFFICIAL_ACCOUNT_APP,
  startBridge,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { USER_AGENTS } from '../helpers/browser.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { createSandboxUser } from '../helpers/flow.ts';
import { ageLogin, SESSION_COOKIE } from '../helpers/recent-login.ts';

const SCREENSHOTS = 'test-results/screenshots';

/**
 * What a person on a 360 px phone would find wrong with the page at hand, as sentences: the page
 * wider than the screen (sideways scrolling), the card touching the screen's edges, anything
 * sticking out of the card, WeChat's 300 px QR frame squeezed, and a control lower than 44 px (too
 * small to tap; a checkbox counts as its label, which is what a finger hits). A string: it runs in
 * the page, where `document` is (our tsconfig has no DOM types).
 */
const PHONE_LAYOUT_PROBLEMS = `(() => {
  const problems = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    ' "' + (el.textContent || '').trim().slice(0, 24) + '"';
  const width = window.innerWidth;
  const pageWidth = document.documentElement.scrollWidth;
  if (pageWidth > width) problems.push('the page is ' + pageWidth + ' px wide on a ' + width + ' px screen');
  const card = document.querySelector('main').getBoundingClientRect();
  if (card.left < 8 || card.right > width - 8)
    problems.push('the card spans ' + Math.round(card.left) + '-' + Math.round(card.right) + ' px, at the screen edge');
  for (const el of document.querySelectorAll('main *')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && (box.left < card.left - 0.5 || box.right > card.right + 0.5))
      problems.push(name(el) + ' sticks out of the card');
  }
  const qr = document.getElementById('wechat-qr');
  if (qr && qr.getBoundingClientRect().width < 300) problems.push('the QR frame is squeezed');
  for (const el of document.querySelectorAll('a[href], button, select, input:not([type=hidden])')) {
    const target = el.matches('input[type=checkbox], input[type=radio]') ? el.closest('label') || el : el;
    const box = target.getBoundingClientRect();
    if (box.height > 0 && box.height < 44) problems.push(name(el) + ' is ' + Math.round(box.height) + ' px high');
  }
  return problems;
})()`;

/**
 * Our pages as most people see them, on a 360 px phone (the narrowest common one, and WeChat's
 * in-app browser for the page meant for WeChat), in both languages: the login page with its notice
 * and QR frame, consent, the account page with several linked apps and a phone number, its
 * deletion step, the page asking to log in again, logout, error pages, and the page inside WeChat
 * before the profile is asked for. Each must fit the screen and have controls a finger can hit.
 */
describe.skipIf(!chromiumAvailable)('every page on a 360 px phone fits the screen and can be tapped', () => {
  let bridge: Bridge;
  let browser: Browser;

  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      demo: true,
      apps: [WEBSITE_APP, OFFICIAL_ACCOUNT_APP, OTHER_OFFICIAL_ACCOUNT_APP],
    });
    browser = await launchChromium();
    await mkdir(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  const phone = (locale: string, userAgent: string): Promise<BrowserContext> =>
    browser.newContext({
      locale,
      userAgent,
      viewport: { width: 360, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });

  for (const locale of ['zh-CN', 'en-US']) {
    test(`${locale}: login, consent, account, deletion, log in again, logout, errors, inside WeChat`, async () => {
      // A 32-character nickname with no space in it, the most the sandbox takes.
      const nickname = `Konstantinopoulou_Alexandra_${locale.slice(0, 2)}01`;
      const person = await createSandboxUser(bridge, nickname);
      // Every app of the account linked, one of them by an app no longer configured (named by its
      // appid), and a phone number: the account page at its longest.
      const now = new Date();
      const db = bridge.server.stores.db;
      const { account } = await linkIdentity(
        db,
        {
          kind: 'official_account',
          appid: OFFICIAL_ACCOUNT_APP.appid,
          openid: person.openids[OFFICIAL_ACCOUNT_APP.appid] as string,
          unionid: person.unionid,
          snapshotUser: false,
        },
        now,
      );
      await linkIdentity(
        db,
        {
          kind: 'mini_program',
          appid: 'wx0a1b2c3d4e5f60718',
          openid: `o6_bmjrPTlm6_2sgVt7hMZOPfL2M-a-long-openid-${locale}`,
          unionid: person.unionid,
          snapshotUser: false,
        },
        now,
      );
      await setVerifiedPhoneNumber(db, account.id, '+86 13800138000', now);

      const found: Record<string, string[]> = {};
      const check = async (page: Page, name: string) => {
        await page.waitForLoadState('load');
        found[name] = (await page.evaluate(PHONE_LAYOUT_PROBLEMS)) as string[];
      };

      // A phone's browser (not WeChat): the login page says to open it in WeChat, and shows the QR.
      const context = await phone(locale, USER_AGENTS.mobileSafari);
      const page = await context.newPage();
      await page.goto(`${bridge.url}/demo`);
      await page.click('#demo-login');
      await page.waitForSelector('#login-notice');
      await page.frameLocator('#wechat-qr').locator('button.allow').waitFor();
      await check(page, 'login');
      await page.frameLocator('#wechat-qr').locator('select[name="user"]').selectOption({ label: nickname });
      await page.frameLocator('#wechat-qr').locator('button.allow').click();
      await page.waitForSelector('#consent-allow');
      await check(page, 'consent');
      await page.click('#consent-allow');
      await page.waitForSelector('#id-token-claims');
      await page.goto(`${bridge.url}/account`);
      await page.waitForSelector('button.unbind');
      await check(page, 'account');
      await page.screenshot({ path: `${SCREENSHOTS}/account-phone-${locale}.png`, fullPage: true });
      await page.click('#account-delete');
      await page.waitForSelector('#account-delete-final');
      await check(page, 'account deletion');
      const session = (await context.cookies()).find((cookie) => cookie.name === SESSION_COOKIE);
      await ageLogin(bridge, session?.value as string, 11 * 60);
      await page.goto(`${bridge.url}/account/login-again/delete`);
      await page.waitForSelector('#account-login-again');
      await check(page, 'log in again');
      await page.goto(`${bridge.url}/session/end`);
      await page.waitForSelector('#logout-yes');
      await check(page, 'logout');
      await page.click('#logout-yes');
      await page.waitForSelector('#logged-out');
      await check(page, 'logged out');
      await page.goto(`${bridge.url}/interaction/no-such-interaction`);
      await check(page, 'expired');
      // Declined in the QR frame: the error page with both its buttons and a reference.
      await page.goto(`${bridge.url}/demo`);
      await page.click('#demo-login');
      await page.frameLocator('#wechat-qr').locator('button.deny').click();
      await page.waitForSelector('#back-to-app');
      await check(page, 'declined');
      await context.close();

      // Inside WeChat, someone new to the official account: our page before WeChat asks for the profile.
      const inWeChat = await phone(locale, USER_AGENTS.wechatAndroid);
      const wechatPage = await inWeChat.newPage();
      await wechatPage.goto(`${bridge.url}/demo`);
      await wechatPage.click('#demo-login');
      await wechatPage.click('#oauth2-allow');
      await wechatPage.waitForSelector('#wechat-authorize');
      await check(wechatPage, 'wechat authorize');
      await inWeChat.close();

      expect(Object.keys(found)).toHaveLength(10);
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((name) => [name, []])));
    });
  }
});
