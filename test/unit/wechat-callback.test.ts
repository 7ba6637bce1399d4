import { MockAgent } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { exchangeCode } from '../../src/interaction/complete-login.ts';
import type { InteractionDeps } from '../../src/interaction/deps.ts';
import { callbackOutcomeWaitMs } from '../../src/interaction/wechat-callback.ts';
import { createWeChatClient } from '../../src/upstream/wechat/client.ts';
import type { WeChatApp } from '../../src/upstream/wechat/types.ts';
import { createWebsiteQrConnector } from '../../src/upstream/wechat/website-qr.ts';
import { capturedLog } from '../helpers/captured-log.ts';
import { fakeTimeTaken } from '../helpers/fake-time.ts';

const API = 'https://api.weixin.qq.com';
const TEXT = { headers: { 'content-type': 'text/plain' } };
const OPENID = 'oLVPpjqs9BhvzwPj5A-vTYAX3GLc';
const app: WeChatApp = { kind: 'website', appid: 'wxbdc5610cc59c1631', name: 'Web', secret: new Secret('s') };

let agent: MockAgent | undefined;

afterEach(async () => {
  vi.useRealTimers();
  await agent?.close();
  agent = undefined;
});

describe('callbackOutcomeWaitMs', () => {
  // A repeated delivery that stops waiting too early takes over a claim whose first delivery is still
  // at work and exchanges the code again: WeChat answers 40163 (wechat-api.md §3, §4).
  it.each([2_000, 5_000, 10_000])(
    'outlasts the slowest first delivery still alive, with a WeChat timeout of %i ms',
    async (timeoutMs) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const mock = new MockAgent();
      mock.disableNetConnect();
      agent = mock;
      const api = mock.get(API);
      const path = (name: string) => (p: string) => p.split('?')[0] === `/${name}`;
      // Each attempt as slow as the timeout allows, and each call takes its one retry: the code
      // exchange's first attempt answers busy (-1, retried although the code is single-use), the
      // first userinfo attempt times out.
      api
        .intercept({ path: path('sns/oauth2/access_token') })
        .reply(200, '{"errcode":-1,"errmsg":"system error"}', TEXT)
        .delay(timeoutMs - 1);
      api
        .intercept({ path: path('sns/oauth2/access_token') })
        .reply(200, `{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"${OPENID}"}`, TEXT)
        .delay(timeoutMs - 1);
      api
        .intercept({ path: path('sns/userinfo') })
        .reply(200, `{"openid":"${OPENID}"}`, TEXT)
        .delay(10 * timeoutMs);
      api
        .intercept({ path: path('sns/userinfo') })
        .reply(200, `{"openid":"${OPENID}","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`, TEXT)
        .delay(timeoutMs - 1);
      const client = createWeChatClient({ apiBaseUrl: API, timeoutMs, dispatcher: mock });
      const qr = createWebsiteQrConnector({ app, client, openBaseUrl: 'https://open.weixin.qq.com' });

      const login = qr.completeLogin('CODE');
      const elapsed = await fakeTimeTaken(login);

      await expect(login).resolves.toMatchObject({ openid: OPENID });
      expect(elapsed).toBeGreaterThan(4 * timeoutMs - 300);
      expect(callbackOutcomeWaitMs(timeoutMs)).toBeGreaterThan(elapsed);
    },
  );
});

describe('exchangeCode', () => {
  // WeChat's answer lacked a field the login reads: not our configuration's fault, and the line
  // says so, with the field (detail), as it said "check the app configuration" before.
  it('logs an answer it cannot use as such, naming the missing field', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    agent = mock;
    mock
      .get(API)
      .intercept({ path: (p) => p.startsWith('/sns/oauth2/access_token') })
      .reply(
        200,
        '{"access_token":"AT","expires_in":7200,"refresh_token":"RT","scope":"snsapi_login"}',
        TEXT,
      );
    const client = createWeChatClient({ apiBaseUrl: API, timeoutMs: 2000, dispatcher: mock });
    const qr = createWebsiteQrConnector({ app, client, openBaseUrl: 'https://open.weixin.qq.com' });
    const { logger, lines } = capturedLog();
    const deps = { logger: logger } as unknown as InteractionDeps;

    const outcome = await exchangeCode(deps, 'uid-1', app.appid, () => qr.completeLogin('CODE'));

    expect(outcome).toMatchObject({ kind: 'failure', status: 502 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'error',
      msg: 'wechat login failed: WeChat answered in a form this server cannot use',
      api: 'sns/oauth2/access_token',
      failure: 'unexpected',
      detail: 'missing or malformed field "openid"',
    });
  });
});
