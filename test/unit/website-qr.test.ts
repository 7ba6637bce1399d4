import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createWeChatClient } from '../../src/upstream/wechat/client.ts';
import { UpstreamError, type WeChatApp } from '../../src/upstream/wechat/types.ts';
import { createWebsiteQrConnector, type WebsiteQrConnector } from '../../src/upstream/wechat/website-qr.ts';

const API = 'https://api.weixin.qq.com';
const OPEN = 'https://open.weixin.qq.com';
const SECRET = 'website-secret-0123456789abcdef';
const CODE = '071Xa7Ga1LMiHI0y2OGa1tFe9A0Xa7GW';
const OPENID = 'oLVPpjqs9BhvzwPj5A-vTYAX3GLc';
const UNIONID = 'o6_bmasdasdsad6_2sgVt7hMZOPfL';
const TEXT = { headers: { 'content-type': 'text/plain' } };
// A callback with its own query, a non-ASCII path segment and characters URLSearchParams must escape.
const REDIRECT_URI = 'https://id.example.com/interaction/wechat/callback?kind=website&x=一 2';
const STATE = 'st+/=ate_Z3k9-~';

const app: WeChatApp = {
  kind: 'website',
  appid: 'wxbdc5610cc59c1631',
  name: 'Web',
  secret: new Secret(SECRET),
};

let agent: MockAgent | undefined;

afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

function connector(openBaseUrl = OPEN): { qr: WebsiteQrConnector; mock: MockAgent } {
  const mock = new MockAgent({ enableCallHistory: true });
  mock.disableNetConnect();
  agent = mock;
  const client = createWeChatClient({ apiBaseUrl: API, timeoutMs: 5_000, dispatcher: mock });
  return { qr: createWebsiteQrConnector({ app, client, openBaseUrl }), mock };
}

function reply(mock: MockAgent, path: string, body: string, status = 200): void {
  mock
    .get(API)
    .intercept({ path: (p: string) => p.split('?')[0] === `/${path}` })
    .reply(status, body, TEXT);
}

function calls(mock: MockAgent, path: string): Record<string, string>[] {
  return (mock.getCallHistory()?.calls() ?? [])
    .filter((c) => c.path === `/${path}`)
    .map((c) => Object.fromEntries(new URL(c.fullUrl).searchParams));
}

const token = (extra = '') =>
  `{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"${OPENID}","scope":"snsapi_login"${extra}}`;
const profile = (extra = '') =>
  `{"openid":"${OPENID}","nickname":"张三🐼","sex":0,"province":"","city":"","country":"",` +
  `"headimgurl":"https:\\/\\/thirdwx.qlogo.cn\\/mmopen\\/vi_32\\/abc\\/132","privilege":[],"language":"zh_CN"${extra}}`;

describe('authorizeUrl', () => {
  it('builds the qrconnect URL with every parameter encoded once and #wechat_redirect', () => {
    const { qr } = connector();

    const raw = qr.authorizeUrl({ redirectUri: REDIRECT_URI, state: STATE, lang: 'cn' });
    const url = new URL(raw);

    expect(`${url.origin}${url.pathname}`).toBe('https://open.weixin.qq.com/connect/qrconnect');
    expect(url.hash).toBe('#wechat_redirect');
    expect([...url.searchParams]).toEqual([
      ['appid', app.appid],
      ['redirect_uri', REDIRECT_URI],
      ['response_type', 'code'],
      ['scope', 'snsapi_login'],
      ['state', STATE],
      ['lang', 'cn'],
    ]);
    // Encoded exactly once: the callback's own "?" and "&" are escaped, never double-escaped.
    expect(raw).toContain(
      'redirect_uri=https%3A%2F%2Fid.example.com%2Finteraction%2Fwechat%2Fcallback%3Fkind%3Dwebsite%26x%3D',
    );
    expect(raw).not.toContain('%25');
    expect(raw.endsWith('#wechat_redirect')).toBe(true);
  });

  it('passes lang=en through and follows the configured open base URL', () => {
    const { qr } = connector('http://127.0.0.1:9090/open/');

    const url = new URL(qr.authorizeUrl({ redirectUri: REDIRECT_URI, state: STATE, lang: 'en' }));

    expect(`${url.origin}${url.pathname}`).toBe('http://127.0.0.1:9090/open/connect/qrconnect');
    expect(url.searchParams.get('lang')).toBe('en');
  });
});

describe('embedUrl', () => {
  it('builds the iframe URL wxLogin.js builds, with self_redirect=default when unset', () => {
    const { qr } = connector();

    const raw = qr.embedUrl({ redirectUri: REDIRECT_URI, state: STATE, lang: 'cn' });
    const url = new URL(raw);

    expect(`${url.origin}${url.pathname}`).toBe('https://open.weixin.qq.com/connect/qrconnect');
    expect(url.hash).toBe('');
    expect([...url.searchParams]).toEqual([
      ['appid', app.appid],
      ['scope', 'snsapi_login'],
      ['redirect_uri', REDIRECT_URI],
      ['state', STATE],
      ['login_type', 'jssdk'],
      ['self_redirect', 'default'],
      ['styletype', ''],
      ['sizetype', ''],
      ['bgcolor', ''],
      ['rst', ''],
      ['lang', 'cn'],
    ]);
    expect(raw).not.toContain('%25');
  });

  it.each([
    [true, 'true'],
    [false, 'false'],
  ])('sends self_redirect=%s as "%s" and adds style, href and lang', (selfRedirect, expected) => {
    const { qr } = connector();
    const href = 'data:text/css;base64,LmltcG93ZXJCb3ggLnFyY29kZSB7d2lkdGg6IDIwMHB4O30=';

    const url = new URL(
      qr.embedUrl({
        redirectUri: REDIRECT_URI,
        state: STATE,
        lang: 'en',
        selfRedirect,
        style: 'white',
        href,
      }),
    );

    expect(url.searchParams.get('self_redirect')).toBe(expected);
    expect([...url.searchParams.keys()].slice(-3)).toEqual(['style', 'href', 'lang']);
    expect(url.searchParams.get('style')).toBe('white');
    expect(url.searchParams.get('href')).toBe(href);
    expect(url.searchParams.get('lang')).toBe('en');
  });
});

describe('completeLogin', () => {
  it("exchanges the code with the app's credentials and returns the identity with the token's unionid", async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(`,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', profile());

    const identity = await qr.completeLogin(CODE);

    expect(identity).toEqual({
      kind: 'website',
      appid: app.appid,
      openid: OPENID,
      unionid: UNIONID,
      profile: {
        nickname: '张三🐼',
        avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132',
        sex: 0,
        language: 'zh_CN',
      },
      snapshotUser: false,
    });
    expect(calls(mock, 'sns/oauth2/access_token')).toEqual([
      { appid: app.appid, secret: SECRET, code: CODE, grant_type: 'authorization_code' },
    ]);
    expect(calls(mock, 'sns/userinfo')).toEqual([{ access_token: 'AT', openid: OPENID, lang: 'zh_CN' }]);
  });

  it('takes the unionid from userinfo when the token has none', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token());
    reply(mock, 'sns/userinfo', profile(`,"unionid":"${UNIONID}"`));

    expect((await qr.completeLogin(CODE)).unionid).toBe(UNIONID);
  });

  it('returns an undefined unionid when neither answer has one, for the caller to refuse', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(',"unionid":""'));
    reply(mock, 'sns/userinfo', profile(',"unionid":""'));

    const identity = await qr.completeLogin(CODE);

    expect(identity.unionid).toBeUndefined();
    expect(identity.openid).toBe(OPENID);
  });

  it('marks a snapshot-page virtual account', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(`,"unionid":"${UNIONID}","is_snapshotuser":1`));
    reply(mock, 'sns/userinfo', profile());

    expect((await qr.completeLogin(CODE)).snapshotUser).toBe(true);
  });

  it('still logs in without a profile when userinfo fails but the token named the unionid', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(`,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', '{"errcode":48001,"errmsg":"api unauthorized"}');

    const identity = await qr.completeLogin(CODE);

    expect(identity).toMatchObject({ unionid: UNIONID, profile: undefined });
  });

  it('fails when userinfo fails and only userinfo could name the unionid', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token());
    reply(mock, 'sns/userinfo', '{"errcode":48001,"errmsg":"api unauthorized"}');

    await expect(qr.completeLogin(CODE)).rejects.toMatchObject({
      code: 'scope_insufficient',
      api: 'sns/userinfo',
    });
  });

  it('refuses a userinfo answer about another openid', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(`,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', profile().replace(OPENID, 'oSomeoneElse'));

    await expect(qr.completeLogin(CODE)).rejects.toMatchObject({ code: 'unexpected', api: 'sns/userinfo' });
  });

  it('refuses answers that disagree about the unionid', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token(`,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', profile(',"unionid":"oAnotherUnionid"'));

    await expect(qr.completeLogin(CODE)).rejects.toMatchObject({ code: 'unexpected' });
  });

  it('passes a failed exchange on and never calls userinfo', async () => {
    const { qr, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', '{"errcode":40163,"errmsg":"code been used, rid: 1-2-3"}');

    const error = await qr.completeLogin(CODE).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'code_used', errcode: 40163 });
    expect(calls(mock, 'sns/userinfo')).toEqual([]);
  });
});
