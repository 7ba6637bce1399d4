import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findAccountBySubject, setVerifiedPhoneNumber } from '../../src/accounts/repository.ts';
import { type Bridge, startQuickStartBridge } from '../helpers/bridge.ts';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { ageLogin, SESSION_COOKIE } from '../helpers/recent-login.ts';

/**
 * Logs in to the demo relying party (a third-party client) as the sandbox person `nickname`, allowing it on the consent
 * page when one is shown; resolves whether one was (the pages the top frame showed in between).
 */
async function logInToDemo(page: Page, bridge: Bridge, nickname: string): Promise<{ consentPage: boolean }> {
  const pages: string[] = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) pages.push(new URL(frame.url()).pathname);
  });
  await page.goto(`${bridge.url}/demo`);
  await page.click('#demo-login');
  const frame = page.frameLocator('#wechat-qr');
  // The sandbox's person of that name when there is one, else a new one.
  const known = frame.locator('select[name="user"] option', { hasText: nickname });
  if ((await known.count()) > 0) await frame.locator('select[name="user"]').selectOption({ label: nickname });
  else await frame.locator('input[name="nickname"]').fill(nickname);
  await frame.locator('button.allow').click();
  await page.waitForSelector('#consent-allow, #id-token-claims');
  const consentPage = (await page.locator('#consent-allow').count()) > 0;
  if (consentPage) await page.click('#consent-allow');
  await page.waitForSelector('#id-token-claims');
  // The login page is the authorization request's answer, and the consent page, when shown, the
  // WeChat callback's: the browser never loads the interaction's own page.
  expect(pages.filter((path) => path === '/auth')).toHaveLength(1);
  expect(pages.filter((path) => /^\/interaction\/[^/]+\/wechat-callback$/.test(path))).toHaveLength(
    consentPage ? 1 : 0,
  );
  expect(pages.filter((path) => /^\/interaction\/[^/]+$/.test(path))).toHaveLength(0);
  return { consentPage };
}

describe.skipIf(!chromiumAvailable)('the account page on a phone', () => {
  let bridge: Bridge;
  let browser: Browser;

  beforeAll(async () => {
    bridge = await startQuickStartBridge((config) => ({
      ...config,
      wechat: { ...config.wechat, apps: config.wechat.apps.map((app) => ({ ...app, name: '示例网站' })) },
    }));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  const phone = () =>
    browser.newContext({ locale: 'zh-CN', viewport: { width: 375, height: 740 }, isMobile: true });

  test('shows the profile, avatar, linked app, authorized app, and revokes the app', async () => {
    const page = await (await phone()).newPage();
    expect(await logInToDemo(page, bridge, '账号页 Ann')).toEqual({ consentPage: true });
    // From another phone the demo app is not asked for again (remembered consent), and listed once.
    const other = await (await phone()).newPage();
    expect(await logInToDemo(other, bridge, '账号页 Ann')).toEqual({ consentPage: false });
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');
    expect(await page.locator('#account-nickname').textContent()).toBe('账号页 Ann');
    const avatar = await page.locator('#account-avatar').getAttribute('src');
    expect(avatar?.startsWith(`${bridge.url}/avatars/`)).toBe(true);
    expect(
      await page
        .locator('#account-avatar')
        .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
    ).toBeGreaterThan(0);
    expect(await page.locator('#account-identities').textContent()).toContain('示例网站');
    expect(await page.locator('#account-identities').textContent()).toContain('网站应用');
    expect(await page.locator('#account-phone').textContent()).toBe('未绑定手机号');
    // The only WeChat and no phone: no unbind button, the page explains the choice.
    expect(await page.locator('button.unbind').count()).toBe(0);
    expect(await page.locator('#account-unbind-explained').textContent()).toContain('不能解除绑定');
    expect(await page.locator('#account-apps li').allTextContents()).toEqual([
      expect.stringContaining('Demo app'),
    ]);
    // What it may see, in a line of short words (not the consent page's sentences, joined).
    expect(await page.locator('#account-apps .account-app-access').textContent()).toBe(
      '账号标识、昵称和头像',
    );
    // Usable on a phone: nothing wider than the screen.
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await page.screenshot({ path: 'test-results/screenshots/account-page.png', fullPage: true });

    // The button is named for its application, as a screen reader lists it, beginning with its
    // visible words.
    const revoke = page.getByRole('button', { name: '取消授权“Demo app”', exact: true });
    expect(await revoke.count()).toBe(1);
    expect(await revoke.textContent()).toBe('取消授权');
    await revoke.click();
    await page.waitForSelector('#account-profile');
    // One tap, and the page says what it did.
    expect(await page.locator('#account-done').textContent()).toBe('已取消“Demo app”的授权。');
    expect(await page.locator('#account-apps').textContent()).not.toContain('Demo app');
    expect(await page.locator('#account-no-apps').isVisible()).toBe(true);
    // A reload is a GET of the account page: it neither repeats the action nor says it again.
    await page.reload();
    await page.waitForSelector('#account-profile');
    expect(await page.locator('#account-done').count()).toBe(0);
    // Revoked: the next login asks again.
    const third = await (await phone()).newPage();
    expect(await logInToDemo(third, bridge, '账号页 Ann')).toEqual({ consentPage: true });
  });

  test('speaks English when asked', async () => {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 375, height: 740 } });
    const page = await context.newPage();
    await logInToDemo(page, bridge, 'English Bo');
    await page.goto(`${bridge.url}/account?lang=en`);
    await page.waitForSelector('#account-profile');
    // Named as its login names it (the client's name), and as the Chinese 账号管理.
    expect(await page.locator('h1').textContent()).toBe('Account management');
    expect(await page.title()).toBe('Account management');
    expect(await page.locator('#account-delete').textContent()).toBe('Delete account');
    expect(await page.getByRole('button', { name: 'Revoke Demo app', exact: true }).count()).toBe(1);
    expect(await page.locator('#account-apps .account-app-access').textContent()).toBe(
      'account ID, nickname and avatar',
    );
  });

  test('deletes the account after two confirmations and signs the browser out', async () => {
    const page = await (await phone()).newPage();
    await logInToDemo(page, bridge, '要注销 Cy');
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');
    const avatar = (await page.locator('#account-avatar').getAttribute('src')) as string;

    await page.click('#account-delete');
    await page.waitForSelector('#account-delete-warning');
    // The final button refuses without the confirmation box.
    await page.click('#account-delete-final');
    expect(await page.locator('#account-delete-warning').isVisible()).toBe(true);
    await page.check('#account-delete-confirm');
    await page.click('#account-delete-final');
    await page.waitForSelector('#notice-message');
    expect(await page.locator('#notice-message').textContent()).toContain('已注销');
    // Titled for what happened: there is no account to manage any more.
    expect(await page.locator('h1').textContent()).toBe('账号已注销');
    expect(await page.title()).toBe('账号已注销');
    expect(await page.locator('#notice-message').textContent()).toContain('现在可以关闭此页面');

    expect((await fetch(avatar)).status).toBe(404);
    await page.goto(`${bridge.url}/account`);
    // The session is gone: the account page starts a new WeChat login, naming itself in the page's
    // language.
    await page.waitForSelector('#wechat-qr');
    expect(await page.content()).toContain('继续使用“账号管理”');
    await page.goto(`${bridge.url}/account?lang=en`);
    await page.waitForSelector('#wechat-qr');
    expect(await page.content()).toContain('to continue to Account management');
  });

  test('an old login logs in with WeChat again before deleting; someone else scanning gets their own account', async () => {
    const context = await phone();
    const page = await context.newPage();
    await logInToDemo(page, bridge, '旧登录 Di');
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');
    const session = (await context.cookies()).find((cookie) => cookie.name === SESSION_COOKIE);
    await ageLogin(bridge, session?.value as string, 11 * 60);

    await page.click('#account-delete');
    await page.waitForSelector('#account-login-again');
    expect(await page.locator('h1').textContent()).toBe('请重新登录');
    await page.click('#account-login-again');
    // The QR page again, though the browser is logged in; another person scans it. oidc-provider
    // ends Di's session through its self-submitting form (its script allowed by the page's CSP).
    const frame = page.frameLocator('#wechat-qr');
    await frame.locator('input[name="nickname"]').fill('换人 Ed');
    await frame.locator('button.allow').click();
    await page.waitForSelector('#account-delete-who');
    expect(new URL(page.url()).pathname).toBe('/account/delete');
    expect(await page.locator('#account-delete-who').textContent()).toBe('要注销的账号：换人 Ed');
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');
    expect(await page.locator('#account-nickname').textContent()).toBe('换人 Ed');
  });
  test('unbinding asks first, naming the app and what the last WeChat means, then says it is done', async () => {
    const context = await phone();
    const page = await context.newPage();
    await logInToDemo(page, bridge, '解绑 Fay');
    // The person the demo's ID token names (the QR page's sandbox is the quick start's own).
    const { sub } = JSON.parse((await page.locator('#id-token-claims').textContent()) as string);
    const db = bridge.server.stores.db;
    const account = await findAccountBySubject(db, sub);
    await setVerifiedPhoneNumber(db, account?.id as string, '+8613955556666', new Date());
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');

    // Named for the app it unbinds, as a screen reader lists it.
    const unbind = page.getByRole('button', { name: '解除绑定“示例网站”', exact: true });
    expect(await unbind.count()).toBe(1);
    await unbind.click();
    await page.waitForSelector('#account-unbind-what');
    expect(await page.locator('h1').textContent()).toBe('解除绑定微信应用');
    expect(await page.locator('#account-unbind-what').textContent()).toBe(
      '确定要解除绑定“示例网站”（网站应用）吗？',
    );
    expect(await page.locator('#account-unbind-recovery').textContent()).toContain('你有 30 天时间找回账号');
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await page.screenshot({ path: 'test-results/screenshots/account-unbind-confirm.png', fullPage: true });
    // Cancel changes nothing.
    await page.click('#account-unbind-cancel');
    await page.waitForSelector('#account-profile');
    expect(await page.locator('button.unbind').count()).toBe(1);

    await page.click('button.unbind');
    await page.click('#account-unbind-confirm');
    await page.waitForSelector('#account-done');
    expect(new URL(page.url()).pathname).toBe('/account');
    expect(await page.locator('#account-done').textContent()).toBe('已解除绑定“示例网站”。');
    expect(await page.locator('#account-recovery-explained').textContent()).toContain(
      '请在解除绑定后 30 天内找回账号',
    );
    expect(await page.locator('#account-identities li').count()).toBe(0);
    // Done, not a warning: the notice does not look like the amber one below it.
    const background = (id: string) =>
      page.evaluate<string>(`getComputedStyle(document.querySelector('${id}')).backgroundColor`);
    expect(await background('#account-done')).not.toBe(await background('#account-recovery-explained'));
    await page.screenshot({ path: 'test-results/screenshots/account-after-unbind.png', fullPage: true });
    await page.reload();
    await page.waitForSelector('#account-profile');
    expect(await page.locator('#account-done').count()).toBe(0);
  });

  test('logs out of this browser only, through the logout page, and can log in again from there', async () => {
    const page = await (await phone()).newPage();
    await logInToDemo(page, bridge, '退出 Gus');
    await page.goto(`${bridge.url}/account`);
    await page.waitForSelector('#account-profile');
    expect(await page.locator('#account-log-out').textContent()).toBe('退出登录');

    await page.click('#account-log-out');
    await page.waitForSelector('#logout-yes');
    // The page came from the account page's own link: it does not say the account page asks.
    expect(await page.locator('#logout-client').count()).toBe(0);
    expect(await page.locator('#logout-yes').textContent()).toBe('全部退出');
    await page.click('#logout-yes');
    await page.waitForSelector('#logged-out');
    expect(new URL(page.url()).pathname).toBe('/account/logged-out');
    expect(await page.locator('#logged-out').textContent()).toBe('你已退出登录。现在可以关闭此页面。');
    // The session is over: the account page starts a WeChat login.
    await page.click('#to-account');
    await page.waitForSelector('#wechat-qr');
  });

  test('cancelling the login says so and offers it again; the language switch shows the same page', async () => {
    const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 375, height: 740 } });
    const page = await context.newPage();
    await page.goto(`${bridge.url}/account?lang=en`);
    await page.waitForSelector('#wechat-qr');
    expect(await page.content()).toContain('to continue to Account management');
    await page.click('form[action$="/abort"] button');
    await page.waitForSelector('#notice-message');
    expect(await page.locator('#notice-message').textContent()).toBe('You cancelled the login.');
    expect(await page.locator('#notice-next').count()).toBe(0);

    await page.click('#lang-switch');
    await page.waitForSelector('#notice-message');
    expect(new URL(page.url()).pathname).toBe('/account/login-stopped');
    expect(await page.locator('#notice-message').textContent()).toBe('你已取消登录。');
    await page.screenshot({ path: 'test-results/screenshots/account-login-cancelled.png', fullPage: true });
    // Logging in again, when chosen, in the language now shown.
    await page.click('#notice-login');
    await page.waitForSelector('#wechat-qr');
    expect(await page.content()).toContain('继续使用“账号管理”');
  });
});
