import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxApp } from '../../src/sandbox/types.ts';
import { USER_AGENTS } from '../helpers/browser.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import {
  OFFICIAL_ACCOUNT,
  REDIRECT_URI,
  startTestSandbox,
  type TestSandbox,
  WEBSITE,
} from './sandbox-fixture.ts';

function qrUrl(sandbox: TestSandbox, extra: Record<string, string>): string {
  const url = new URL('/connect/qrconnect', sandbox.url);
  const params = {
    appid: WEBSITE.appid,
    scope: 'snsapi_login',
    redirect_uri: REDIRECT_URI,
    state: 'st-b',
    ...extra,
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.href;
}

/**
 * An RP page embedding the QR page as wxLogin.js does: 300x400, no scrolling. It is a local
 * page (about:blank), as a public page framing a loopback origin would meet Local Network Access.
 */
async function rpPageWithFrame(page: Page, src: string): Promise<void> {
  await page.route('https://rp.example.test/**', (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<p id="rp">RP</p>' }),
  );
  await page.setContent(
    `<iframe id="qr" src="${src}" width="300" height="400" frameborder="0" scrolling="no"></iframe>`,
  );
}

describe.skipIf(!chromiumAvailable)('the QR page in headless Chromium', () => {
  let sandbox: TestSandbox;
  let browser: Browser;
  beforeAll(async () => {
    sandbox = await startTestSandbox();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
  });

  it('fits the 300x400 iframe of wxLogin.js and sends the top window to redirect_uri on allow', async () => {
    const page = await browser.newPage();
    await rpPageWithFrame(page, qrUrl(sandbox, { login_type: 'jssdk', self_redirect: 'default' }));
    const frame = page.frameLocator('#qr');
    await frame.locator('button.allow').waitFor({ timeout: 10_000 });
    const size = await frame
      .locator('body')
      .evaluate((body) => ({ width: body.scrollWidth, height: body.scrollHeight }));
    expect(size.width).toBeLessThanOrEqual(300);
    expect(size.height).toBeLessThanOrEqual(400);
    await frame.locator('select[name="user"]').selectOption({ label: 'Alice' });
    await frame.locator('button.allow').click();
    await page.waitForURL(/^https:\/\/rp\.example\.test\/wechat\/callback\?code=/, { timeout: 10_000 });
    expect(new URL(page.url()).searchParams.get('state')).toBe('st-b');
    await page.close();
  });

  it('follows a decision made on the phone page by polling, as WeChat QR pages do', async () => {
    const page = await browser.newPage();
    await page.route('https://rp.example.test/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<p>RP</p>' }),
    );
    await page.goto(qrUrl(sandbox, {}));
    const scanUrl = await page.locator('a.phone-link').getAttribute('href');
    const phone = await browser.newPage();
    await phone.goto(scanUrl!);
    await page.locator('#wx_after_scan').waitFor({ state: 'visible' });
    await phone.locator('input[name="nickname"]').fill('手机用户🐱');
    await phone.locator('button.allow').click();
    await page.waitForURL(/^https:\/\/rp\.example\.test\/wechat\/callback\?code=/);
    expect(sandbox.state.listUsers().at(-1)?.nickname).toBe('手机用户🐱');
    await phone.close();
    await page.close();
  });
});

/**
 * What a person on a 360 px phone would find wrong with the sandbox page at hand, as sentences: the
 * page wider than the screen (sideways scrolling), and a control lower than 44 px (a radio button
 * counts as its label, which is what a finger hits). Links inside a sentence are left alone. A string:
 * it runs in the page, where `document` is (our tsconfig has no DOM types).
 */
const PHONE_PROBLEMS = `(() => {
  const problems = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    ' "' + (el.textContent || el.getAttribute('placeholder') || '').trim().slice(0, 24) + '"';
  // The layout viewport: a phone zooms out to show a wider page, and innerWidth grows with it.
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth)
    problems.push('the page is ' + root.scrollWidth + ' px wide on a ' + root.clientWidth + ' px screen');
  if (window.top !== window && root.scrollHeight > root.clientHeight)
    problems.push('the frame content is ' + root.scrollHeight + ' px high in a ' + root.clientHeight + ' px frame');
  for (const el of document.querySelectorAll('a[href], button, select, input:not([type=hidden])')) {
    if (el.matches('p a, li a, td a') || el.closest('[hidden]')) continue;
    const target = el.matches('input[type=checkbox], input[type=radio]') ? el.closest('label') || el : el;
    const box = target.getBoundingClientRect();
    if (box.height > 0 && box.height < 44) problems.push(name(el) + ' is ' + Math.round(box.height) + ' px high');
  }
  return problems;
})()`;

/**
 * Every screen of the sandbox a demo meets, on a 360 px phone in both languages: the QR frame of
 * wxLogin.js (300x400), the full QR page, the phone's scan page, the Official Account authorization
 * inside WeChat with a snapshot-page user, a page that stops the login, and the developer's own
 * pages (the sandbox page with its users' long openids, and the mini program with an encrypted
 * result). Each must fit the screen, and have controls a finger can hit.
 */
describe.skipIf(!chromiumAvailable)('the sandbox pages on a 360 px phone', () => {
  const MINI_PROGRAM: SandboxApp = {
    appid: 'wxa1b2c3d4e5f60010',
    secret: 'mp-secret-0010',
    kind: 'mini_program',
    name: 'Sandbox mini program',
  };
  let sandbox: TestSandbox;
  let browser: Browser;
  beforeAll(async () => {
    sandbox = await startTestSandbox({
      apps: [
        { ...WEBSITE, name: 'Example Technology Official Website 示例科技官方网站' },
        { ...OFFICIAL_ACCOUNT, name: 'Example Technology Customer Service Account' },
        MINI_PROGRAM,
      ],
    });
    // The longest nickname the sandbox takes, with no space to break it.
    sandbox.state.createUser({ nickname: 'Konstantinopoulou_Alexandra_0001' });
    sandbox.state.updateUser(sandbox.state.createUser({ nickname: '快照用户' }).id, { snapshot: true });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
  });

  const phone = (userAgent: string): Promise<BrowserContext> =>
    browser.newContext({
      userAgent,
      viewport: { width: 360, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });

  for (const lang of ['cn', 'en']) {
    it(`lang=${lang}: fits the screen and every control can be tapped`, async () => {
      const found: Record<string, string[]> = {};
      const check = async (where: Page | Frame, name: string) => {
        await where.waitForLoadState('load');
        found[name] = (await where.evaluate(PHONE_PROBLEMS)) as string[];
      };
      const qr = qrUrl(sandbox, { lang });

      const browserContext = await phone(USER_AGENTS.mobileSafari);
      const page = await browserContext.newPage();
      await rpPageWithFrame(page, qrUrl(sandbox, { lang, login_type: 'jssdk' }));
      await page.frameLocator('#qr').locator('button.allow').waitFor();
      await check(page.frames()[1] as Frame, 'QR frame');
      await page.goto(qr);
      await check(page, 'QR page');
      const scanUrl = (await page.locator('a.phone-link').getAttribute('href')) as string;
      await page.evaluate(
        "document.querySelectorAll('input[name=user]').forEach((radio) => { radio.checked = false; })",
      );
      await page.click('button.allow');
      await check(page, 'no user chosen');
      await page.goto(`${sandbox.url}/sandbox`);
      await check(page, 'sandbox page');
      await page.goto(`${sandbox.url}/sandbox/mini-program`);
      await page.click('button[value="login"]');
      await page.waitForSelector('#mini-program-result');
      await page.click('button[value="user-data"]');
      await page.waitForSelector('#mini-program-result');
      await check(page, 'mini program');
      await browserContext.close();

      const wechat = await phone(USER_AGENTS.wechatIos);
      const inWeChat = await wechat.newPage();
      await inWeChat.goto(scanUrl);
      await check(inWeChat, 'scan page');
      const authorize = new URL('/connect/oauth2/authorize', sandbox.url);
      for (const [key, value] of Object.entries({
        appid: OFFICIAL_ACCOUNT.appid,
        redirect_uri: REDIRECT_URI,
        response_type: 'code',
        scope: 'snsapi_userinfo',
        state: 'st-p',
        lang,
      }))
        authorize.searchParams.set(key, value);
      await inWeChat.goto(authorize.href);
      await check(inWeChat, 'official account');
      await wechat.close();

      expect(Object.keys(found)).toHaveLength(7);
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((name) => [name, []])));
    });
  }
});
