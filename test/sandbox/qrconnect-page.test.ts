import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  exchange,
  OFFICIAL_ACCOUNT,
  REDIRECT_URI,
  RESTRICTED,
  startTestSandbox,
  type TestSandbox,
  WEBSITE,
} from './sandbox-fixture.ts';

function loginQuery(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const query: Record<string, string | undefined> = {
    appid: WEBSITE.appid,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'snsapi_login',
    state: 'st-123',
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function decisionForm(fields: Record<string, string>): Record<string, string> {
  return {
    appid: WEBSITE.appid,
    redirect_uri: REDIRECT_URI,
    state: 'st-123',
    scope: 'snsapi_login',
    self_redirect: 'default',
    lang: 'cn',
    ...fields,
  };
}

function formTarget(html: string, decision: 'allow' | 'deny'): string | undefined {
  return new RegExp(`value="${decision}" formtarget="([^"]+)"`).exec(html)?.[1];
}

describe('GET /connect/qrconnect (§2, §2.1)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  it('shows a page that says it is a sandbox, with a QR image and the seeded users', async () => {
    const page = await sandbox.get('/connect/qrconnect', loginQuery());
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('沙箱环境');
    expect(page.text).toMatch(/<img class="qrcode[^"]*" src="data:image\/png;base64,/);
    for (const nickname of ['张三', '🐼熊猫', 'Alice']) expect(page.text).toContain(nickname);
    expect(page.text).toContain('action="/connect/sandbox/authorize"');
    expect(page.text).toContain('测试网站');
  });

  it('speaks English with lang=en', async () => {
    const page = await sandbox.get('/connect/qrconnect', loginQuery({ lang: 'en' }));
    expect(page.text).toContain('Sandbox · this is not the real WeChat');
    expect(page.text).toContain('<html lang="en">');
  });

  it('navigates the top window from the wxLogin.js iframe by default', async () => {
    for (const selfRedirect of [undefined, 'default', 'false']) {
      const page = await sandbox.get(
        '/connect/qrconnect',
        loginQuery({ login_type: 'jssdk', self_redirect: selfRedirect }),
      );
      expect(page.text).toContain('class="embedded');
      expect(formTarget(page.text, 'allow')).toBe('_top');
      expect(formTarget(page.text, 'deny')).toBe('_top');
    }
  });

  it('navigates the iframe itself with self_redirect=true', async () => {
    const page = await sandbox.get(
      '/connect/qrconnect',
      loginQuery({ login_type: 'jssdk', self_redirect: 'true' }),
    );
    expect(formTarget(page.text, 'allow')).toBe('_self');
  });

  it('keeps the full page in its own window', async () => {
    const page = await sandbox.get('/connect/qrconnect', loginQuery());
    expect(page.text).toContain('class="full');
    expect(formTarget(page.text, 'allow')).toBe('_self');
  });

  it('links the app stylesheet given as href in the embedded variant', async () => {
    const href = 'https://rp.example.test/wechat-qr.css';
    const page = await sandbox.get('/connect/qrconnect', loginQuery({ login_type: 'jssdk', href }));
    expect(page.text).toContain(`<link rel="stylesheet" href="${href}">`);
  });

  it.each([
    ['an unknown appid', { appid: 'wx0000000000000000' }, 'AppID 参数错误'],
    ['a missing appid', { appid: undefined }, 'AppID 参数错误'],
    ['an Official Account appid', { appid: OFFICIAL_ACCOUNT.appid }, 'AppID 参数错误'],
    ['a scope without snsapi_login', { scope: 'snsapi_userinfo' }, 'Scope 参数错误或没有 Scope 权限'],
    ['a missing scope', { scope: undefined }, 'Scope 参数错误或没有 Scope 权限'],
    ['a missing redirect_uri', { redirect_uri: undefined }, 'redirect_uri 参数错误'],
    ['a relative redirect_uri', { redirect_uri: '/callback' }, 'redirect_uri 参数错误'],
    ['a javascript: redirect_uri', { redirect_uri: 'javascript:alert(1)' }, 'redirect_uri 参数错误'],
  ])('shows an error page, without redirecting, for %s', async (_name, overrides, message) => {
    const page = await sandbox.get('/connect/qrconnect', loginQuery(overrides));
    expect(page.location).toBeNull();
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).toContain(message);
    expect(page.text).not.toContain('/connect/sandbox/authorize');
  });

  it('refuses a redirect_uri outside the app callback domains, and accepts host:port inside them', async () => {
    const outside = await sandbox.get(
      '/connect/qrconnect',
      loginQuery({ appid: RESTRICTED.appid, redirect_uri: 'https://evil.example.test/cb' }),
    );
    expect(outside.text).toContain('redirect_uri 参数错误');
    const otherPort = await sandbox.get(
      '/connect/qrconnect',
      loginQuery({ appid: RESTRICTED.appid, redirect_uri: 'http://localhost:4000/cb' }),
    );
    expect(otherPort.text).toContain('redirect_uri 参数错误');
    const inside = await sandbox.get(
      '/connect/qrconnect',
      loginQuery({ appid: RESTRICTED.appid, redirect_uri: 'http://localhost:3000/cb' }),
    );
    expect(inside.text).toContain('/connect/sandbox/authorize');
  });

  it('escapes what it echoes into the page', async () => {
    const page = await sandbox.get(
      '/connect/qrconnect',
      loginQuery({ state: '"><script>alert(1)</script>' }),
    );
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&quot;&gt;&lt;script&gt;');
  });
});

describe('POST /connect/sandbox/authorize', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  it('redirects with code and state on allow, and the code belongs to the chosen user', async () => {
    const user = sandbox.state.listUsers()[1]!;
    const answer = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ user: user.id, decision: 'allow' }),
    );
    expect(answer.status).toBe(302);
    const location = new URL(answer.location!);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('state')).toBe('st-123');
    const tokens = await exchange(sandbox, WEBSITE, location.searchParams.get('code')!);
    expect(tokens.json?.openid).toBe(sandbox.state.openid(WEBSITE.appid, user.id));
  });

  it('appends with & to a redirect_uri that has a query and inserts before its #fragment', async () => {
    const redirectUri = 'https://rp.example.test/cb?tenant=a%20b#/after/login';
    const answer = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ redirect_uri: redirectUri, user: sandbox.state.listUsers()[0]!.id, decision: 'allow' }),
    );
    expect(answer.location).toMatch(
      /^https:\/\/rp\.example\.test\/cb\?tenant=a%20b&code=[A-Za-z0-9]{32}&state=st-123#\/after\/login$/,
    );
  });

  it('echoes the state verbatim, encoded, and sends an empty state when there was none', async () => {
    const user = sandbox.state.listUsers()[0]!.id;
    const odd = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ state: 'a&b=c 中', user, decision: 'allow' }),
    );
    expect(new URL(odd.location!).searchParams.get('state')).toBe('a&b=c 中');
    const none = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ state: '', user, decision: 'allow' }),
    );
    expect(none.location).toMatch(/&state=$/);
  });

  it('creates a user from the nickname field, Chinese and emoji included', async () => {
    const answer = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ nickname: '  小明😀  ', decision: 'allow' }),
    );
    const code = new URL(answer.location!).searchParams.get('code')!;
    const tokens = (await exchange(sandbox, WEBSITE, code)).json!;
    const info = await sandbox.get('/sns/userinfo', {
      access_token: tokens.access_token as string,
      openid: tokens.openid as string,
    });
    expect(info.json?.nickname).toBe('小明😀');
    expect(sandbox.state.listUsers().map((u) => u.nickname)).toContain('小明😀');
  });

  it('redirects with only state on deny by default', async () => {
    const answer = await sandbox.postForm('/connect/sandbox/authorize', decisionForm({ decision: 'deny' }));
    expect(answer.status).toBe(302);
    expect(answer.location).toBe(`${REDIRECT_URI}?state=st-123`);
  });

  it('answers 400 without a user or a nickname, and issues nothing', async () => {
    const answer = await sandbox.postForm('/connect/sandbox/authorize', decisionForm({ decision: 'allow' }));
    expect(answer.status).toBe(400);
    expect(answer.location).toBeNull();
    // Said in the page's language, with the way back to the QR page.
    expect(answer.text).toContain('请选择一个沙箱用户，或输入昵称新建用户。');
    expect(answer.text).toContain('id="sandbox-back"');
    const english = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({ decision: 'allow', lang: 'en' }),
    );
    expect(english.text).toContain('Choose a sandbox user, or enter a nickname to create one.');
  });

  it('validates the request again: a forged redirect_uri gets the error page', async () => {
    const answer = await sandbox.postForm(
      '/connect/sandbox/authorize',
      decisionForm({
        appid: RESTRICTED.appid,
        redirect_uri: 'https://evil.example.test/cb',
        user: sandbox.state.listUsers()[0]!.id,
        decision: 'allow',
      }),
    );
    expect(answer.location).toBeNull();
    expect(answer.text).toContain('redirect_uri 参数错误');
  });
});

describe('deny with denyMode no_redirect', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox({ denyMode: 'no_redirect' });
  });
  afterEach(() => sandbox.close());

  it('shows a declined page and does not redirect', async () => {
    const answer = await sandbox.postForm('/connect/sandbox/authorize', decisionForm({ decision: 'deny' }));
    expect(answer.status).toBe(200);
    expect(answer.location).toBeNull();
    expect(answer.text).toContain('你已拒绝此次登录');
  });

  it('keeps the declined page inside the wxLogin.js iframe', async () => {
    const page = await sandbox.get('/connect/qrconnect', loginQuery({ login_type: 'jssdk' }));
    expect(formTarget(page.text, 'allow')).toBe('_top');
    expect(formTarget(page.text, 'deny')).toBe('_self');
  });
});
