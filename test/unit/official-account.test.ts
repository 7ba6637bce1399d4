import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createWeChatClient } from '../../src/upstream/wechat/client.ts';
import {
  createOfficialAccountConnector,
  type OfficialAccountConnector,
} from '../../src/upstream/wechat/official-account.ts';
import { UpstreamError, type WeChatApp } from '../../src/upstream/wechat/types.ts';

const API = 'https://api.weixin.qq.com';
const OPEN = 'https://open.weixin.qq.com';
const SECRET = 'oa-secret-0123456789abcdef';
const CODE = '081Xa7Ga1LMiHI0y2OGa1tFe9A0Xa7GW';
const OPENID = 'oDF3iY9ffA-hqb2vVvbr7qxf6A0Q';
const UNIONID = 'o6_bmasdasdsad6_2sgVt7hMZOPfL';
const TEXT = { headers: { 'content-type': 'text/plain' } };
const REDIRECT_URI = 'https://id.example.com/interaction/abc/wechat-callback';
const STATE = 'Zk3p-state_0123456789';

const app: WeChatApp = {
  kind: 'official_account',
  appid: 'wx520c15f417810387',
  name: 'Service account',
  secret: new Secret(SECRET),
  scopePolicy: 'base_then_userinfo',
};

let agent: MockAgent | undefined;
afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

function connector(openBaseUrl = OPEN): { oa: OfficialAccountConnector; mock: MockAgent } {
  const mock = new MockAgent({ enableCallHistory: true });
  mock.disableNetConnect();
  agent = mock;
  const client = createWeChatClient({ apiBaseUrl: API, timeoutMs: 5_000, dispatcher: mock });
  return { oa: createOfficialAccountConnector({ app, client, openBaseUrl }), mock };
}

function reply(mock: MockAgent, path: string, body: string): void {
  mock
    .get(API)
    .intercept({ path: (p: string) => p.split('?')[0] === `/${path}` })
    .reply(200, body, TEXT);
}

function calls(mock: MockAgent, path: string): Record<string, string>[] {
  return (mock.getCallHistory()?.calls() ?? [])
    .filter((c) => c.path === `/${path}`)
    .map((c) => Object.fromEntries(new URL(c.fullUrl).searchParams));
}

const token = (scope: string, extra = '') =>
  `{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"${OPENID}","scope":"${scope}"${extra}}`;
const profile = (extra = '') =>
  `{"openid":"${OPENID}","nickname":"李雷","sex":0,"province":"","city":"","country":"",` +
  `"headimgurl":"http:\\/\\/thirdwx.qlogo.cn\\/mmopen\\/vi_32\\/xyz\\/132","privilege":[]${extra}}`;

describe('authorizeUrl', () => {
  it.each(['snsapi_base', 'snsapi_userinfo'] as const)(
    'builds connect/oauth2/authorize with scope %s, in the documented order, and #wechat_redirect',
    (scope) => {
      const { oa } = connector();
      const raw = oa.authorizeUrl({ redirectUri: REDIRECT_URI, state: STATE, scope });
      const url = new URL(raw);
      expect(`${url.origin}${url.pathname}`).toBe('https://open.weixin.qq.com/connect/oauth2/authorize');
      expect([...url.searchParams]).toEqual([
        ['appid', app.appid],
        ['redirect_uri', REDIRECT_URI],
        ['response_type', 'code'],
        ['scope', scope],
        ['state', STATE],
      ]);
      expect(raw.endsWith('#wechat_redirect')).toBe(true);
      expect(raw).toContain(
        'redirect_uri=https%3A%2F%2Fid.example.com%2Finteraction%2Fabc%2Fwechat-callback',
      );
    },
  );

  it('follows the configured open base URL (the sandbox)', () => {
    const { oa } = connector('http://127.0.0.1:9090/');
    const url = new URL(oa.authorizeUrl({ redirectUri: REDIRECT_URI, state: STATE, scope: 'snsapi_base' }));
    expect(`${url.origin}${url.pathname}`).toBe('http://127.0.0.1:9090/connect/oauth2/authorize');
  });
});

describe('completeLogin', () => {
  it('with snsapi_base exchanges the code and never calls userinfo', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token('snsapi_base'));

    const identity = await oa.completeLogin(CODE, 'snsapi_base');

    expect(identity).toEqual({
      kind: 'official_account',
      appid: app.appid,
      openid: OPENID,
      unionid: undefined,
      profile: undefined,
      snapshotUser: false,
    });
    expect(calls(mock, 'sns/oauth2/access_token')).toEqual([
      { appid: app.appid, secret: SECRET, code: CODE, grant_type: 'authorization_code' },
    ]);
    expect(calls(mock, 'sns/userinfo')).toEqual([]);
  });

  it('with snsapi_userinfo reads the profile, and the unionid from the token', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token('snsapi_userinfo', `,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', profile(`,"unionid":"${UNIONID}"`));

    const identity = await oa.completeLogin(CODE, 'snsapi_userinfo');

    expect(identity).toMatchObject({
      kind: 'official_account',
      openid: OPENID,
      unionid: UNIONID,
      profile: { nickname: '李雷', avatarUrl: 'http://thirdwx.qlogo.cn/mmopen/vi_32/xyz/132', sex: 0 },
      snapshotUser: false,
    });
    expect(calls(mock, 'sns/userinfo')).toEqual([{ access_token: 'AT', openid: OPENID, lang: 'zh_CN' }]);
  });

  it('does not read the profile with a token whose granted scope is only snsapi_base', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token('snsapi_base'));

    const identity = await oa.completeLogin(CODE, 'snsapi_userinfo');

    expect(identity.profile).toBeUndefined();
    expect(calls(mock, 'sns/userinfo')).toEqual([]);
  });

  it('marks a snapshot-page virtual account and leaves its userinfo (48001) alone', async () => {
    const { oa, mock } = connector();
    reply(
      mock,
      'sns/oauth2/access_token',
      token('snsapi_userinfo', `,"unionid":"${UNIONID}","is_snapshotuser":1`),
    );

    const identity = await oa.completeLogin(CODE, 'snsapi_userinfo');

    expect(identity.snapshotUser).toBe(true);
    expect(calls(mock, 'sns/userinfo')).toEqual([]);
  });

  it('returns no unionid when neither answer has one (an app not bound to the Open Platform)', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token('snsapi_userinfo'));
    reply(mock, 'sns/userinfo', profile());

    const identity = await oa.completeLogin(CODE, 'snsapi_userinfo');

    expect(identity.unionid).toBeUndefined();
    expect(identity.profile?.nickname).toBe('李雷');
  });

  it('refuses a userinfo answer about another openid', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', token('snsapi_userinfo', `,"unionid":"${UNIONID}"`));
    reply(mock, 'sns/userinfo', profile().replace(OPENID, 'oSomeoneElse000000000000000'));

    await expect(oa.completeLogin(CODE, 'snsapi_userinfo')).rejects.toMatchObject({ code: 'unexpected' });
  });

  it('passes WeChat errors on as UpstreamError (40163: the code was used)', async () => {
    const { oa, mock } = connector();
    reply(mock, 'sns/oauth2/access_token', '{"errcode":40163,"errmsg":"code been used, rid: 1-2-3"}');

    const error = await oa.completeLogin(CODE, 'snsapi_base').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'code_used', errcode: 40163 });
  });
});
