import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIRECT_URI, startTestSandbox, type TestSandbox, WEBSITE } from './sandbox-fixture.ts';

const QUERY = {
  appid: WEBSITE.appid,
  redirect_uri: REDIRECT_URI,
  response_type: 'code',
  scope: 'snsapi_login',
  state: 'st-9',
};

describe('QR page polling and the phone page (§2.1, optional path)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  async function openQrPage(): Promise<string> {
    const page = await sandbox.get('/connect/qrconnect', QUERY);
    const uuid = /\/sandbox\/scan\/([A-Za-z0-9]{16})/.exec(page.text)?.[1];
    if (!uuid) throw new Error('no scan link on the QR page');
    return uuid;
  }

  async function poll(uuid: string): Promise<{ errcode: number; code: string; redirect: string }> {
    const answer = await sandbox.get('/connect/l/qrconnect', { uuid, _: '1' });
    const errcode = Number(/window\.wx_errcode=(\d+);/.exec(answer.text)?.[1]);
    const code = /window\.wx_code=("[^"]*"|'[^']*');/.exec(answer.text)?.[1] ?? "''";
    const redirect = /window\.wx_redirecturl=("[^"]*");/.exec(answer.text)?.[1] ?? '""';
    return { errcode, code: code.slice(1, -1), redirect: JSON.parse(redirect) as string };
  }

  it('reports 408 while waiting, 404 once scanned and 405 with the code once allowed', async () => {
    const uuid = await openQrPage();
    expect((await poll(uuid)).errcode).toBe(408);
    const phone = await sandbox.get(`/sandbox/scan/${uuid}`);
    expect(phone.text).toContain('测试网站');
    expect((await poll(uuid)).errcode).toBe(404);
    const user = sandbox.state.listUsers()[2]!;
    await sandbox.postForm(`/sandbox/scan/${uuid}`, { user: user.id, decision: 'allow' });
    const confirmed = await poll(uuid);
    expect(confirmed.errcode).toBe(405);
    expect(confirmed.code).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(confirmed.redirect).toBe(`${REDIRECT_URI}?code=${confirmed.code}&state=st-9`);
  });

  it('reports 403 once declined on the phone', async () => {
    const uuid = await openQrPage();
    await sandbox.get(`/sandbox/scan/${uuid}`);
    await sandbox.postForm(`/sandbox/scan/${uuid}`, { decision: 'deny' });
    const cancelled = await poll(uuid);
    expect(cancelled.errcode).toBe(403);
    expect(cancelled.redirect).toBe(`${REDIRECT_URI}?state=st-9`);
  });

  it('reports 402 once the QR code has expired, and for an unknown uuid', async () => {
    const uuid = await openQrPage();
    sandbox.advance(5 * 60_000);
    expect((await poll(uuid)).errcode).toBe(402);
    expect((await poll('A'.repeat(16))).errcode).toBe(402);
  });

  it('refuses a second decision on the same QR code', async () => {
    const uuid = await openQrPage();
    const user = sandbox.state.listUsers()[0]!.id;
    await sandbox.postForm(`/sandbox/scan/${uuid}`, { user, decision: 'allow' });
    const again = await sandbox.postForm(`/sandbox/scan/${uuid}`, { user, decision: 'allow' });
    expect(again.status).toBe(404);
    expect(again.text).toContain('二维码已失效');
  });

  it("tells a phone that opens a decided QR code so in the QR page's language", async () => {
    const page = await sandbox.get('/connect/qrconnect', { ...QUERY, lang: 'en' });
    const uuid = /\/sandbox\/scan\/([A-Za-z0-9]{16})/.exec(page.text)?.[1] ?? '';
    const user = sandbox.state.listUsers()[0]!.id;
    await sandbox.postForm(`/sandbox/scan/${uuid}`, { user, decision: 'allow' });
    const again = await sandbox.get(`/sandbox/scan/${uuid}`);
    expect(again.status).toBe(404);
    expect(again.text).toContain('QR code expired');
    expect(again.text).not.toContain('二维码已失效');
  });
});
