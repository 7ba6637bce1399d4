import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { Agent, MockAgent } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import {
  createWeChatCall,
  MAX_ANSWER_BYTES,
  RETRY_PAUSE_MS,
  type WeChatCallEvent,
} from '../../src/upstream/wechat/api-call.ts';
import { createWeChatClient, type WeChatClient } from '../../src/upstream/wechat/client.ts';
import { createMiniProgramApi } from '../../src/upstream/wechat/mini-program-api.ts';
import { UpstreamError, type UpstreamErrorCode, type WeChatApp } from '../../src/upstream/wechat/types.ts';

const API = 'https://api.weixin.qq.com';
const SECRET = 'app-secret-0123456789abcdef0123';
const CODE = 'code-061Xa7Ga1LMiHI0y2OGa1tFe9A0Xa7GW';
const ACCESS_TOKEN = 'user-token-ACCESS_TOKEN_86_abcdefghijklmnop';
const REFRESH_TOKEN = 'refresh-token-REFRESH_86_qrstuvwxyz012345';
const OPENID = 'oLVPpjqs9BhvzwPj5A-vTYAX3GLc';
const UNIONID = 'o6_bmasdasdsad6_2sgVt7hMZOPfL';
const TEXT = { headers: { 'content-type': 'text/plain' } };
const JSON_UTF8 = { headers: { 'content-type': 'application/json; charset=utf-8' } };

const app: WeChatApp = {
  kind: 'website',
  appid: 'wx0123456789abcdef',
  name: 'Test',
  secret: new Secret(SECRET),
};

const tokenBody = (extra = '') =>
  `{"access_token":"${ACCESS_TOKEN}","expires_in":7200,"refresh_token":"${REFRESH_TOKEN}","openid":"${OPENID}","scope":"snsapi_login"${extra}}`;
const errorBody = (errcode: number | string, errmsg = 'some error') =>
  `{"errcode":${typeof errcode === 'string' ? `"${errcode}"` : errcode},"errmsg":"${errmsg}, rid: 6270dbb5-47d9f324-018472b7"}`;

let agent: MockAgent | undefined;

interface Harness {
  agent: MockAgent;
  client: WeChatClient;
  events: WeChatCallEvent[];
  /** Replies to the next request whose path starts with `path`. */
  on(path: string): ReturnType<ReturnType<MockAgent['get']>['intercept']>;
  requests(path: string): URLSearchParams[];
}

/** The pauses before retries the last harness made (none really waited). */
let pauses: number[] = [];

function harness(options: { apiBaseUrl?: string; timeoutMs?: number; now?: () => number } = {}): Harness {
  const mock = new MockAgent({ enableCallHistory: true });
  mock.disableNetConnect();
  agent = mock;
  const base = options.apiBaseUrl ?? API;
  const origin = new URL(base).origin;
  const prefix = new URL(base).pathname.replace(/\/+$/, '');
  const events: WeChatCallEvent[] = [];
  const client = createWeChatClient({
    apiBaseUrl: base,
    timeoutMs: options.timeoutMs ?? 5_000,
    dispatcher: mock,
    onCall: (e) => events.push(e),
    ...(options.now ? { now: options.now } : {}),
    pause: async (ms) => {
      pauses.push(ms);
    },
  });
  pauses = [];
  return {
    agent: mock,
    client,
    events,
    on: (path) =>
      mock
        .get(origin)
        .intercept({ path: (p: string) => p.split('?')[0] === `${prefix}/${path}`, method: () => true }),
    requests: (path) =>
      (mock.getCallHistory()?.calls() ?? [])
        .filter((c) => c.path === `${prefix}/${path}`)
        .map((c) => new URL(c.fullUrl).searchParams),
  };
}

afterEach(async () => {
  vi.useRealTimers();
  await agent?.close();
  agent = undefined;
});

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected an UpstreamError');
}

function expectNoSecrets(text: string): void {
  for (const secret of [SECRET, CODE, ACCESS_TOKEN, REFRESH_TOKEN]) expect(text).not.toContain(secret);
}

describe('exchangeCode (sns/oauth2/access_token)', () => {
  it('sends appid, secret, code and grant_type and reads a text/plain token answer', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, tokenBody(`,"unionid":"${UNIONID}"`), TEXT);

    const token = await h.client.exchangeCode(app, CODE);

    expect(token).toEqual({
      accessToken: ACCESS_TOKEN,
      expiresIn: 7200,
      openid: OPENID,
      scope: ['snsapi_login'],
      unionid: UNIONID,
      isSnapshotUser: false,
    });
    const [query] = h.requests('sns/oauth2/access_token');
    expect(Object.fromEntries(query!)).toEqual({
      appid: app.appid,
      secret: SECRET,
      code: CODE,
      grant_type: 'authorization_code',
    });
  });

  it('reads an answer without refresh_token: nothing uses it', async () => {
    const h = harness();
    const body = `{"access_token":"${ACCESS_TOKEN}","expires_in":7200,"openid":"${OPENID}","scope":"snsapi_login"}`;
    h.on('sns/oauth2/access_token').reply(200, body, TEXT);
    const token = await h.client.exchangeCode(app, CODE);
    expect(token).toMatchObject({ accessToken: ACCESS_TOKEN, openid: OPENID });
  });

  it('percent-encodes every value so that a server decodes it as it was', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), TEXT);
    const awkward = "a b+c&d=e/f?g#h%i~j!k*l(m)n'o中文";
    const odd: WeChatApp = { ...app, secret: new Secret(awkward) };

    await h.client.exchangeCode(odd, 'c+d e');

    const [query] = h.requests('sns/oauth2/access_token');
    expect(query?.get('secret')).toBe(awkward);
    expect(query?.get('code')).toBe('c+d e');
  });

  it('reads the same answer served as application/json', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), JSON_UTF8);
    await expect(h.client.exchangeCode(app, CODE)).resolves.toMatchObject({
      openid: OPENID,
      unionid: undefined,
    });
  });

  it('splits a comma-separated scope and drops blanks', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(
      200,
      tokenBody().replace('"scope":"snsapi_login"', '"scope":"snsapi_base, snsapi_userinfo,"'),
      TEXT,
    );
    expect((await h.client.exchangeCode(app, CODE)).scope).toEqual(['snsapi_base', 'snsapi_userinfo']);
  });

  it.each([
    ['1', true],
    ['"1"', true],
    ['0', false],
  ])('reads is_snapshotuser %s as %s', async (value, expected) => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, tokenBody(`,"is_snapshotuser":${value}`), TEXT);
    expect((await h.client.exchangeCode(app, CODE)).isSnapshotUser).toBe(expected);
  });

  it('accepts expires_in as a numeric string and normalises a blank unionid to undefined', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(
      200,
      tokenBody(',"unionid":""').replace('"expires_in":7200', '"expires_in":"3600"'),
      TEXT,
    );
    const token = await h.client.exchangeCode(app, CODE);
    expect(token.expiresIn).toBe(3600);
    expect(token.unionid).toBeUndefined();
  });

  it.each([
    ['openid', tokenBody().replace(`"openid":"${OPENID}",`, '')],
    ['access_token', tokenBody().replace(`"access_token":"${ACCESS_TOKEN}",`, '')],
    ['a blank openid', tokenBody().replace(`"openid":"${OPENID}"`, '"openid":""')],
  ])('treats a success body without %s as unexpected', async (_field, body) => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, body, TEXT);
    const error = await failure(h.client.exchangeCode(app, CODE));
    expect(error.code).toBe('unexpected');
    expect(error.errcode).toBeUndefined();
  });

  it('is retried once on errcode -1, as WeChat documents, and returns the second answer', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, errorBody(-1, 'system error'), TEXT);
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), TEXT);

    const token = await h.client.exchangeCode(app, CODE);

    expect(token.openid).toBe(OPENID);
    expect(h.requests('sns/oauth2/access_token')).toHaveLength(2);
  });

  it.each([
    [40163, 'used'],
    [40029, 'invalid'],
  ])('after -1, a retry answered %s (the code %s: the busy call spent it) fails as busy', async (errcode) => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, errorBody(-1, 'system error'), TEXT);
    h.on('sns/oauth2/access_token').reply(200, errorBody(errcode), TEXT);

    const error = await failure(h.client.exchangeCode(app, CODE));

    expect(error).toMatchObject({ code: 'unavailable', errcode: -1, api: 'sns/oauth2/access_token' });
    expect(h.requests('sns/oauth2/access_token')).toHaveLength(2);
  });

  it('is tried at most twice on errcode -1', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, errorBody(-1), TEXT);
    h.on('sns/oauth2/access_token').reply(200, errorBody(-1), TEXT);
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), TEXT);

    expect(await failure(h.client.exchangeCode(app, CODE))).toMatchObject({
      code: 'unavailable',
      errcode: -1,
    });
    expect(h.requests('sns/oauth2/access_token')).toHaveLength(2);
  });

  it('is never retried on a connection error', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').replyWithError(new Error('socket hang up'));
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), TEXT);

    expect((await failure(h.client.exchangeCode(app, CODE))).code).toBe('unavailable');
    expect(h.requests('sns/oauth2/access_token')).toHaveLength(1);
  });
});

describe('errcode mapping', () => {
  const table: Array<[number, UpstreamErrorCode]> = [
    [40029, 'code_invalid'],
    [42003, 'code_invalid'],
    [40163, 'code_used'],
    [40030, 'refresh_token_invalid'],
    [42002, 'refresh_token_invalid'],
    [42007, 'refresh_token_invalid'],
    // 40001 on this call, which sends the AppSecret and no token: see the next describe.
    [40001, 'app_config'],
    [40014, 'token_invalid'],
    [42001, 'token_invalid'],
    [40003, 'token_invalid'],
    [41001, 'token_invalid'],
    [48001, 'scope_insufficient'],
    [50001, 'scope_insufficient'],
    [40226, 'blocked'],
    [50002, 'blocked'],
    [45009, 'rate_limited'],
    [45011, 'rate_limited'],
    [40013, 'app_config'],
    [40125, 'app_config'],
    [40164, 'app_config'],
    [61004, 'app_config'],
    [40243, 'app_config'],
    [41002, 'app_config'],
    [41004, 'app_config'],
    [48004, 'app_config'],
    [87009, 'signature_invalid'],
    // -1 ('unavailable') is retried on this call: see "is tried at most twice on errcode -1".
    [40002, 'unexpected'],
    [41008, 'unexpected'],
    [99999, 'unexpected'],
  ];

  it.each(table)('maps errcode %i to %s, keeping only the errcode', async (errcode, code) => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, errorBody(errcode, `invalid thing ${CODE}`), TEXT);

    const error = await failure(h.client.exchangeCode(app, CODE));

    expect(error).toMatchObject({ code, errcode, api: 'sns/oauth2/access_token' });
    expect(error.message).not.toContain('invalid thing');
    expect(h.events).toEqual([
      { api: 'sns/oauth2/access_token', durationMs: expect.any(Number), outcome: 'errcode', errcode },
    ]);
  });

  it('accepts an errcode sent as a numeric string', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, errorBody('40029'), TEXT);
    expect(await failure(h.client.exchangeCode(app, CODE))).toMatchObject({
      code: 'code_invalid',
      errcode: 40029,
    });
  });

  it('maps an errcode answered with a non-200 status the same way', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(403, errorBody(40164), JSON_UTF8);
    expect(await failure(h.client.exchangeCode(app, CODE))).toMatchObject({
      code: 'app_config',
      errcode: 40164,
    });
  });

  it('treats errcode 0 alongside the token fields as success', async () => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(200, tokenBody(',"errcode":0,"errmsg":"ok"'), TEXT);
    await expect(h.client.exchangeCode(app, CODE)).resolves.toMatchObject({ openid: OPENID });
  });
});

describe('40001: a wrong AppSecret or an invalid token, depending on what the call sent', () => {
  // wechat-api.md §11: "40001 (bad secret *or* bad token)"; §13: "bad AppSecret on token call, or
  // app/user token invalid/superseded". A call that sent the AppSecret had no token to be invalid.
  const answer40001 = (h: Harness, path: string) =>
    h
      .on(path)
      .reply(200, errorBody(40001, 'invalid credential, access_token is invalid or not latest'), TEXT);
  const miniProgram = (h: Harness) =>
    createMiniProgramApi({ apiBaseUrl: API, timeoutMs: 5_000, dispatcher: h.agent });
  const mpApp: WeChatApp = { ...app, kind: 'mini_program' };

  it.each<[string, string, (h: Harness) => Promise<unknown>]>([
    ['exchangeCode', 'sns/oauth2/access_token', (h) => h.client.exchangeCode(app, CODE)],
    ['code2Session', 'sns/jscode2session', (h) => miniProgram(h).code2Session(mpApp, CODE)],
    ['stableToken', 'cgi-bin/stable_token', (h) => miniProgram(h).stableToken(mpApp, false)],
  ])('%s (sends the AppSecret): app_config, not retried', async (_name, path, run) => {
    const h = harness();
    answer40001(h, path);

    const error = await failure(run(h));

    expect(error).toMatchObject({ code: 'app_config', errcode: 40001, api: path });
    expect(h.agent.getCallHistory()?.calls()).toHaveLength(1);
  });

  it.each<[string, string, (h: Harness) => Promise<unknown>]>([
    ['userInfo', 'sns/userinfo', (h) => h.client.userInfo(ACCESS_TOKEN, OPENID)],
    [
      'checkSession',
      'wxa/checksession',
      (h) => miniProgram(h).checkSession(new Secret(ACCESS_TOKEN), OPENID, 'sig'),
    ],
    [
      'phoneNumber',
      'wxa/business/getuserphonenumber',
      (h) => miniProgram(h).phoneNumber(new Secret(ACCESS_TOKEN), CODE, OPENID),
    ],
  ])('%s (sends an access token): token_invalid', async (_name, path, run) => {
    const h = harness();
    answer40001(h, path);
    expect(await failure(run(h))).toMatchObject({ code: 'token_invalid', errcode: 40001, api: path });
  });
});

describe('unusable answers are unavailable', () => {
  it.each([
    ['an empty body', 200, '', { headers: { 'content-type': 'text/html; charset=gbk' } }],
    ['an HTML body', 200, '<html><body>系统繁忙</body></html>', { headers: { 'content-type': 'text/html' } }],
    ['a JSON array', 200, '[]', TEXT],
    ['HTTP 502', 502, '<html>Bad Gateway</html>', { headers: { 'content-type': 'text/html' } }],
    ['HTTP 503 with a token-shaped body', 503, tokenBody(), TEXT],
  ])('%s', async (_name, status, body, headers) => {
    const h = harness();
    h.on('sns/oauth2/access_token').reply(status, body, headers);

    const error = await failure(h.client.exchangeCode(app, CODE));

    expect(error).toMatchObject({ code: 'unavailable', errcode: undefined });
    expect(h.events.map((e) => e.outcome)).toEqual(['transport']);
  });

  it('gives up when the answer takes longer than timeoutMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const h = harness({ timeoutMs: 1_000 });
    h.on('sns/oauth2/access_token').reply(200, tokenBody(), TEXT).delay(60_000);

    const settled = failure(h.client.exchangeCode(app, CODE));
    await vi.advanceTimersByTimeAsync(1_001);
    const error = await settled;

    expect(error).toMatchObject({ code: 'unavailable', api: 'sns/oauth2/access_token' });
    expect((error.cause as Error).name).toBe('TimeoutError');
    expect(h.requests('sns/oauth2/access_token')).toHaveLength(1);
  });

  it('keeps a connection error as the cause when it quotes nothing of the request', async () => {
    const h = harness();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
    h.on('sns/oauth2/access_token').replyWithError(refused);

    const error = await failure(h.client.exchangeCode(app, CODE));

    expect(error.code).toBe('unavailable');
    expect(error.cause).toBe(refused);
  });
});

describe('secrets stay out of errors and events', () => {
  const leakyAnswers: Array<[string, (h: Harness) => void]> = [
    [
      'an errmsg echoing the code and secret',
      (h) =>
        h
          .on('sns/oauth2/access_token')
          .reply(200, errorBody(40029, `invalid code ${CODE} secret ${SECRET}`), TEXT),
    ],
    [
      'a non-JSON body echoing the request',
      (h) => h.on('sns/oauth2/access_token').reply(200, `<p>${CODE} ${SECRET}</p>`, TEXT),
    ],
    [
      'a transport error quoting the URL',
      (h) =>
        h
          .on('sns/oauth2/access_token')
          .replyWithError(
            new Error(`GET ${API}/sns/oauth2/access_token?appid=x&secret=${SECRET}&code=${CODE} failed`),
          ),
    ],
    // With the network closed, undici's own "no mock matched" error quotes the full path and query.
    ['undici quoting the unmatched path', (h) => h.on('elsewhere').reply(200, '{}', TEXT)],
  ];

  it.each(leakyAnswers)('exchangeCode: %s', async (_name, arrange) => {
    const h = harness();
    arrange(h);

    const error = await failure(h.client.exchangeCode(app, CODE));

    expectNoSecrets(error.message);
    expectNoSecrets(JSON.stringify(error));
    expectNoSecrets(inspect(error, { depth: 10 }));
    expectNoSecrets(JSON.stringify(h.events));
  });

  it('userInfo: a transport error quoting the access token', async () => {
    const h = harness();
    h.on('sns/userinfo')
      .replyWithError(new Error(`bad request access_token=${ACCESS_TOKEN}`))
      .times(2);

    const error = await failure(h.client.userInfo(ACCESS_TOKEN, OPENID));

    expect(error.code).toBe('unavailable');
    expectNoSecrets(inspect(error, { depth: 10 }));
  });

  it('reports one event per attempt with the API path and the injected clock', async () => {
    let tick = 1_000;
    const h = harness({ now: () => (tick += 25) });
    h.on('sns/userinfo').reply(200, errorBody(-1), TEXT);
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}"}`, TEXT);

    await h.client.userInfo(ACCESS_TOKEN, OPENID);

    expect(h.events).toEqual([
      { api: 'sns/userinfo', durationMs: 25, outcome: 'errcode', errcode: -1 },
      { api: 'sns/userinfo', durationMs: 25, outcome: 'ok' },
    ]);
  });

  it('a throwing onCall hook does not fail the call', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    agent = mock;
    const client = createWeChatClient({
      apiBaseUrl: API,
      timeoutMs: 5_000,
      dispatcher: mock,
      onCall: () => {
        throw new Error('metrics down');
      },
    });
    mock
      .get(API)
      .intercept({ path: (p: string) => p.startsWith('/sns/userinfo?') })
      .reply(200, `{"openid":"${OPENID}"}`, TEXT);
    await expect(client.userInfo(ACCESS_TOKEN, OPENID)).resolves.toMatchObject({ openid: OPENID });
  });
});

describe('userInfo (sns/userinfo)', () => {
  it('sends access_token, openid and lang=zh_CN by default, or the lang asked for', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}"}`, TEXT).times(2);

    await h.client.userInfo(ACCESS_TOKEN, OPENID);
    await h.client.userInfo(ACCESS_TOKEN, OPENID, 'en');

    expect(h.requests('sns/userinfo').map((q) => Object.fromEntries(q))).toEqual([
      { access_token: ACCESS_TOKEN, openid: OPENID, lang: 'zh_CN' },
      { access_token: ACCESS_TOKEN, openid: OPENID, lang: 'en' },
    ]);
  });

  it('reads \\/-escaped avatar URLs and raw UTF-8 Chinese and emoji nicknames', async () => {
    const h = harness();
    const body =
      `{"openid":"${OPENID}","nickname":"宁夏杨洋😀🇨🇳","sex":0,"language":"zh_CN","city":"","province":"","country":"",` +
      `"headimgurl":"https:\\/\\/thirdwx.qlogo.cn\\/mmopen\\/vi_32\\/Q0j4TwGTfTK6xc7vGca4Kt\\/132",` +
      `"privilege":["chinaunicom"],"unionid":"${UNIONID}"}`;
    h.on('sns/userinfo').reply(200, Buffer.from(body, 'utf8'), TEXT);

    expect(await h.client.userInfo(ACCESS_TOKEN, OPENID)).toEqual({
      openid: OPENID,
      nickname: '宁夏杨洋😀🇨🇳',
      headimgurl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTK6xc7vGca4Kt/132',
      sex: 0,
      unionid: UNIONID,
      language: 'zh_CN',
      privilege: ['chinaunicom'],
    });
  });

  it('normalises blank fields to undefined and never requires sex or location', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(
      200,
      `{"openid":"${OPENID}","nickname":"","headimgurl":"","unionid":" ","language":"","privilege":[]}`,
      TEXT,
    );

    expect(await h.client.userInfo(ACCESS_TOKEN, OPENID)).toEqual({
      openid: OPENID,
      nickname: undefined,
      headimgurl: undefined,
      sex: undefined,
      unionid: undefined,
      language: undefined,
      privilege: [],
    });
  });

  it('accepts sex as a numeric string and a missing privilege list', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}","sex":"2"}`, JSON_UTF8);
    expect(await h.client.userInfo(ACCESS_TOKEN, OPENID)).toMatchObject({ sex: 2, privilege: [] });
  });

  it('retries once on errcode -1 and returns the second answer', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(200, errorBody(-1, 'system error'), TEXT);
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}","nickname":"second"}`, TEXT);

    expect((await h.client.userInfo(ACCESS_TOKEN, OPENID)).nickname).toBe('second');
    expect(h.requests('sns/userinfo')).toHaveLength(2);
    // "System busy, try again later": not at once, and jittered.
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toBeGreaterThanOrEqual(RETRY_PAUSE_MS);
    expect(pauses[0]).toBeLessThanOrEqual(2 * RETRY_PAUSE_MS);
  });

  it('retries once after a timeout and returns the second answer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const h = harness({ timeoutMs: 1_000 });
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}","nickname":"late"}`, TEXT).delay(60_000);
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}","nickname":"second"}`, TEXT);

    const result = h.client.userInfo(ACCESS_TOKEN, OPENID);
    await vi.advanceTimersByTimeAsync(1_001);

    expect((await result).nickname).toBe('second');
    expect(h.events.map((e) => e.outcome)).toEqual(['transport', 'ok']);
  });

  it('retries only once: two unavailable answers fail', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(502, '', TEXT).times(2);
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}"}`, TEXT);

    expect((await failure(h.client.userInfo(ACCESS_TOKEN, OPENID))).code).toBe('unavailable');
    expect(h.requests('sns/userinfo')).toHaveLength(2);
  });

  it('does not retry a definite error such as 48001', async () => {
    const h = harness();
    h.on('sns/userinfo').reply(200, errorBody(48001, 'api unauthorized'), TEXT);
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}"}`, TEXT);

    expect((await failure(h.client.userInfo(ACCESS_TOKEN, OPENID))).code).toBe('scope_insufficient');
    expect(h.requests('sns/userinfo')).toHaveLength(1);
  });
});

describe('the generic call', () => {
  it('calls under a base URL with a path prefix and a trailing slash', async () => {
    const h = harness({ apiBaseUrl: 'http://127.0.0.1:8081/wechat-api/' });
    h.on('sns/userinfo').reply(200, `{"openid":"${OPENID}"}`, TEXT);
    await expect(h.client.userInfo(ACCESS_TOKEN, OPENID)).resolves.toMatchObject({ openid: OPENID });
  });

  it('POSTs a JSON body with secrets revealed only on the wire', async () => {
    const mock = new MockAgent({ enableCallHistory: true });
    mock.disableNetConnect();
    agent = mock;
    const call = createWeChatCall({ apiBaseUrl: API, timeoutMs: 5_000, dispatcher: mock });
    mock
      .get(API)
      .intercept({ path: '/cgi-bin/stable_token', method: 'POST' })
      .reply(200, '{"access_token":"APP_TOKEN","expires_in":7200}', TEXT);

    const result = await call({
      api: 'cgi-bin/stable_token',
      method: 'POST',
      json: { grant_type: 'client_credential', appid: app.appid, secret: app.secret, force_refresh: false },
      idempotent: true,
      read: (body) => body.access_token,
    });

    expect(result).toBe('APP_TOKEN');
    const [sent] = mock.getCallHistory()?.calls() ?? [];
    expect(sent?.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8' });
    expect(JSON.parse(String(sent?.body))).toEqual({
      grant_type: 'client_credential',
      appid: app.appid,
      secret: SECRET,
      force_refresh: false,
    });
  });
});

describe('through a real dispatcher', () => {
  /** A loopback server whose handler writes the answer as the test says; closed after each test. */
  async function loopback(
    handler: (res: ServerResponse) => void,
  ): Promise<{ url: string; dispatcher: Agent }> {
    const server = createServer((_req, res) => handler(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dispatcher = new Agent();
    closers.push(async () => {
      await dispatcher.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dispatcher };
  }
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  const readNickname = (call: ReturnType<typeof createWeChatCall>) =>
    call({ api: 'sns/userinfo', idempotent: false, read: (body) => body.nickname });

  it('reads a body sent in pieces, a character split between two of them', async () => {
    const bytes = Buffer.from('{"openid":"o1","nickname":"熊猫 Panda"}');
    const cut = bytes.indexOf(Buffer.from('熊')) + 1;
    const { url, dispatcher } = await loopback((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(bytes.subarray(0, cut));
      setTimeout(() => res.end(bytes.subarray(cut)), 20);
    });
    const call = createWeChatCall({ apiBaseUrl: url, timeoutMs: 5_000, dispatcher });

    await expect(readNickname(call)).resolves.toBe('熊猫 Panda');
  });

  it('refuses an answer larger than any of WeChat', async () => {
    const { url, dispatcher } = await loopback((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`{"openid":"o1","nickname":"${'x'.repeat(MAX_ANSWER_BYTES)}"}`);
    });
    const call = createWeChatCall({ apiBaseUrl: url, timeoutMs: 5_000, dispatcher });

    const error = await failure(readNickname(call));

    expect(error.code).toBe('unavailable');
    expect((error.cause as Error).message).toContain('larger than');
  });

  it('gives up at the deadline on a connection that never opens', async () => {
    // A connector that never answers: the request waits for its connection, past the deadline.
    const dispatcher = new Agent({ connect: () => undefined });
    closers.push(async () => {
      await dispatcher.destroy();
    });
    const call = createWeChatCall({ apiBaseUrl: 'http://192.0.2.1', timeoutMs: 200, dispatcher });

    const error = await failure(readNickname(call));

    expect(error.code).toBe('unavailable');
    expect((error.cause as Error).name).toBe('TimeoutError');
  });

  it('gives up on a body that stops coming after the headers', async () => {
    const { url, dispatcher } = await loopback((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('{"openid":');
    });
    const call = createWeChatCall({ apiBaseUrl: url, timeoutMs: 200, dispatcher });

    const error = await failure(readNickname(call));

    expect(error.code).toBe('unavailable');
    expect((error.cause as Error).name).toBe('TimeoutError');
  });
});
