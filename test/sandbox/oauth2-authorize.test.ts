import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSandboxArgs } from '../../src/sandbox/cli-options.ts';
import type { SandboxApp } from '../../src/sandbox/types.ts';
import {
  ALL_APPS,
  exchange,
  OFFICIAL_ACCOUNT,
  REDIRECT_URI,
  startTestSandbox,
  type TestSandbox,
  WEBSITE,
} from './sandbox-fixture.ts';

const WECHAT_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN';
const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36';
const WECOM_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.26 MicroMessenger/7.0.1 Language/zh';

const UNBOUND_OA: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60006',
  secret: 'oa-secret-0006',
  kind: 'official_account',
  boundToOpenPlatform: false,
};
const RESTRICTED_OA: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60007',
  secret: 'oa-secret-0007',
  kind: 'official_account',
  callbackDomains: ['rp.example.test'],
};

interface Reply {
  status: number;
  text: string;
  location: string | null;
  cookies: string[];
}

/** A phone's WeChat browser (or another browser): one cookie jar for the sandbox's origin. */
class Phone {
  readonly #cookies = new Map<string, string>();
  readonly #sandbox: TestSandbox;
  readonly #userAgent: string;

  constructor(sandbox: TestSandbox, userAgent = WECHAT_UA) {
    this.#sandbox = sandbox;
    this.#userAgent = userAgent;
  }

  authorize(query: Record<string, string>): Promise<Reply> {
    const url = new URL('/connect/oauth2/authorize', this.#sandbox.url);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    return this.#send(url, {});
  }

  decide(page: string, decision: string, extra: Record<string, string> = {}): Promise<Reply> {
    const form: Record<string, string> = { decision, ...extra };
    for (const match of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      form[match[1]!] = decode(match[2]!);
    }
    if (!('user' in form)) {
      const checked = /name="user" value="([^"]+)" checked/.exec(page)?.[1];
      if (checked) form.user = checked;
    }
    return this.#send(new URL('/connect/sandbox/oauth2/authorize', this.#sandbox.url), {
      method: 'POST',
      body: new URLSearchParams(form),
    });
  }

  async #send(url: URL, init: RequestInit): Promise<Reply> {
    const cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { 'user-agent': this.#userAgent, ...(cookie ? { cookie } : {}) },
    });
    const cookies = response.headers.getSetCookie();
    for (const line of cookies) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return {
      status: response.status,
      text: await response.text(),
      location: response.headers.get('location'),
      cookies,
    };
  }
}

function decode(text: string): string {
  return text
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function query(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    appid: OFFICIAL_ACCOUNT.appid,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'snsapi_base',
    state: 'st-oa-1',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

function codeOf(location: string | null): string {
  const url = new URL(location ?? 'about:blank');
  expect(`${url.origin}${url.pathname}`).toBe(REDIRECT_URI);
  expect(url.searchParams.get('state')).toBe('st-oa-1');
  return url.searchParams.get('code') ?? '';
}

describe('GET /connect/oauth2/authorize (§3)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox({ apps: [...ALL_APPS, UNBOUND_OA, RESTRICTED_OA] });
  });
  afterEach(() => sandbox.close());

  it.each([
    ['a desktop browser', DESKTOP_UA],
    ['WeCom', WECOM_UA],
  ])('answers %s with "请在微信客户端打开链接": HTTP 200 and no redirect', async (_name, userAgent) => {
    const reply = await new Phone(sandbox, userAgent).authorize(query());
    expect(reply.status).toBe(200);
    expect(reply.location).toBeNull();
    expect(reply.text).toContain('请在微信客户端打开链接');
  });

  it.each([
    ['a website appid', { appid: WEBSITE.appid }, '不支持微信开放平台的Appid', '10016'],
    ['no appid', { appid: undefined }, 'appid不能为空', '10012'],
    ['no redirect_uri', { redirect_uri: undefined }, 'redirect_uri不能为空', '10011'],
    ['no scope', { scope: undefined }, 'scope不能为空', '10010'],
    ['the website scope', { scope: 'snsapi_login' }, '此公众号并没有这些scope的权限', '10005'],
    [
      'a redirect_uri off the authorized domain',
      { appid: RESTRICTED_OA.appid, redirect_uri: 'https://evil.example/cb' },
      'redirect_uri域名与后台配置不一致',
      '10003',
    ],
  ])('shows WeChat error page for %s, never a redirect', async (_name, overrides, text, code) => {
    const reply = await new Phone(sandbox).authorize(query(overrides));
    expect(reply.status).toBe(200);
    expect(reply.location).toBeNull();
    expect(reply.text).toContain(text);
    expect(reply.text).toContain(code);
  });

  it('asks once which user this WeChat is, then answers snsapi_base silently with an openid-only code', async () => {
    const phone = new Phone(sandbox);
    const user = sandbox.state.listUsers()[1]!;
    const first = await phone.authorize(query());
    expect(first.status).toBe(200);
    expect(first.text).toContain('id="oauth2-allow"');
    expect(first.text).not.toContain('id="oauth2-deny"');
    const chosen = await phone.decide(first.text, 'allow', { user: user.id });
    expect(chosen.status).toBe(302);
    expect(chosen.cookies.join()).toContain('sandbox_wechat_user=');
    codeOf(chosen.location);

    const silent = await phone.authorize(query());
    expect(silent.status).toBe(302);
    const token = (await exchange(sandbox, OFFICIAL_ACCOUNT, codeOf(silent.location))).json!;
    expect(token).toMatchObject({
      scope: 'snsapi_base',
      openid: sandbox.state.openid(OFFICIAL_ACCOUNT.appid, user.id),
    });
    // snsapi_base never names the unionid (§4), and its token may not read the profile (§7).
    expect(token).not.toHaveProperty('unionid');
    const info = await sandbox.get('/sns/userinfo', {
      access_token: token.access_token as string,
      openid: token.openid as string,
    });
    expect(info.json?.errcode).toBe(48001);
  });

  it('asks for consent on every snsapi_userinfo request, with the known user preselected', async () => {
    const phone = new Phone(sandbox);
    const alice = sandbox.state.listUsers()[2]!;
    const pick = await phone.authorize(query());
    await phone.decide(pick.text, 'allow', { user: alice.id });

    const consent = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('id="oauth2-deny"');
    expect(consent.text).toContain(`value="${alice.id}" checked`);
    const allowed = await phone.decide(consent.text, 'allow');
    const token = (await exchange(sandbox, OFFICIAL_ACCOUNT, codeOf(allowed.location))).json!;
    expect(token).toMatchObject({ scope: 'snsapi_userinfo', unionid: alice.unionid });
    expect(token).not.toHaveProperty('is_snapshotuser');
    const info = await sandbox.get('/sns/userinfo', {
      access_token: token.access_token as string,
      openid: token.openid as string,
    });
    expect(info.json).toMatchObject({ nickname: 'Alice', unionid: alice.unionid });
  });

  it('redirects with the state only when the person declines', async () => {
    const phone = new Phone(sandbox);
    const consent = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    const declined = await phone.decide(consent.text, 'deny');
    const url = new URL(declined.location ?? 'about:blank');
    expect(url.searchParams.get('state')).toBe('st-oa-1');
    expect(url.searchParams.has('code')).toBe(false);
  });

  it('never names a unionid for an official account not bound to the Open Platform', async () => {
    const phone = new Phone(sandbox);
    const consent = await phone.authorize(query({ appid: UNBOUND_OA.appid, scope: 'snsapi_userinfo' }));
    const allowed = await phone.decide(consent.text, 'allow');
    const token = (await exchange(sandbox, UNBOUND_OA, codeOf(allowed.location))).json!;
    expect(token).not.toHaveProperty('unionid');
    const info = await sandbox.get('/sns/userinfo', {
      access_token: token.access_token as string,
      openid: token.openid as string,
    });
    expect(info.json).not.toHaveProperty('unionid');
    expect(info.json?.nickname).toEqual(expect.any(String));
  });

  it('keeps an Official Account code valid for 5 minutes, not 10', async () => {
    const phone = new Phone(sandbox);
    const consent = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    const fresh = codeOf((await phone.decide(consent.text, 'allow')).location);
    const stale = codeOf((await phone.decide(consent.text, 'allow')).location);
    sandbox.advance(5 * 60_000 - 1);
    expect((await exchange(sandbox, OFFICIAL_ACCOUNT, fresh)).json).toHaveProperty('access_token');
    sandbox.advance(1);
    expect((await exchange(sandbox, OFFICIAL_ACCOUNT, stale)).json?.errcode).toBe(40029);
  });

  it('gives a snapshot-page user a virtual account, refuses its userinfo, and lifts it with 使用完整服务', async () => {
    const created = await sandbox.send('POST', '/sandbox/users', { nickname: '快照用户', snapshot: true });
    expect(created.json).toMatchObject({ snapshot: true });
    const user = sandbox.state.getUser(created.json!.id as string)!;
    const phone = new Phone(sandbox);
    const consent = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    expect(consent.text).toContain('id="oauth2-full-service"');

    const allowed = await phone.decide(consent.text, 'allow', { user: user.id });
    const token = (await exchange(sandbox, OFFICIAL_ACCOUNT, codeOf(allowed.location))).json!;
    expect(token.is_snapshotuser).toBe(1);
    expect(token.openid).not.toBe(sandbox.state.openid(OFFICIAL_ACCOUNT.appid, user.id));
    expect(token.unionid).toEqual(expect.any(String));
    expect(token.unionid).not.toBe(user.unionid);
    const info = await sandbox.get('/sns/userinfo', {
      access_token: token.access_token as string,
      openid: token.openid as string,
    });
    expect(info.json?.errcode).toBe(48001);

    const full = await phone.decide(consent.text, 'full_service', { user: user.id });
    expect(full.status).toBe(303);
    expect(full.location).toMatch(/^\/connect\/oauth2\/authorize\?/);
    expect(sandbox.state.getUser(user.id)?.snapshot).toBe(false);
    const again = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    const real = (
      await exchange(sandbox, OFFICIAL_ACCOUNT, codeOf((await phone.decide(again.text, 'allow')).location))
    ).json!;
    expect(real).not.toHaveProperty('is_snapshotuser');
    expect(real.unionid).toBe(user.unionid);
  });

  it('marks a snapshot-page user in the page language', async () => {
    await sandbox.send('POST', '/sandbox/users', { nickname: '快照用户', snapshot: true });
    const phone = new Phone(sandbox);
    const chinese = await phone.authorize(query({ scope: 'snsapi_userinfo' }));
    expect(chinese.text).toContain('>快照页</span>');
    const english = await phone.authorize(query({ scope: 'snsapi_userinfo', lang: 'en' }));
    expect(english.text).toContain('>Snapshot page</span>');
    expect(english.text).not.toContain('快照页');
  });
});

describe('the deliver-twice mode (§3 double callback)', () => {
  let sandbox: TestSandbox;
  let app: Server;
  let appUrl: string;
  const received: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

  beforeEach(async () => {
    received.length = 0;
    app = createServer((req, res) => {
      received.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'text/plain');
      res.end('app got it');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/cb`;
    sandbox = await startTestSandbox();
  });
  afterEach(async () => {
    await sandbox.close();
    await new Promise((resolve) => app.close(resolve));
  });

  it('is off by default, and once switched on requests the redirect_uri once more without cookies', async () => {
    const phone = new Phone(sandbox);
    const url = { ...query({ redirect_uri: appUrl, scope: 'snsapi_userinfo' }) };
    let consent = await phone.authorize(url);
    await phone.decide(consent.text, 'allow');
    expect((await sandbox.send('GET', '/sandbox/deliveries')).json?.deliveries).toEqual([]);
    expect(received).toHaveLength(0);

    const settings = await sandbox.send('PATCH', '/sandbox/settings', { deliverTwice: true });
    expect(settings.json).toMatchObject({ deliverTwice: true });
    consent = await phone.authorize(url);
    const allowed = await phone.decide(consent.text, 'allow');
    const deliveries = (await sandbox.send('GET', '/sandbox/deliveries')).json?.deliveries as Array<{
      url: string;
      status: number;
      body: string;
    }>;
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ url: allowed.location, status: 200, body: 'app got it' });
    // The copy reached the app with the same code and state, and none of the browser's cookies.
    expect(received).toHaveLength(1);
    expect(`http://127.0.0.1:${new URL(appUrl).port}${received[0]!.url}`).toBe(allowed.location);
    expect(received[0]!.headers.cookie).toBeUndefined();
  });
});

describe('the sandbox CLI', () => {
  it('switches the deliver-twice mode on with --deliver-twice, off by default', () => {
    expect(parseSandboxArgs([]).deliverTwice).toBe(false);
    expect(parseSandboxArgs(['--deliver-twice']).deliverTwice).toBe(true);
  });
});
