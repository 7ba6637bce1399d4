import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../helpers/chromium.ts';
import { REDIRECT_URI, startTestSandbox, type TestSandbox, WEBSITE } from './sandbox-fixture.ts';

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
