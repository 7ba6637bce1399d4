import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  OFFICIAL_ACCOUNT,
  OTHER_WEBSITE,
  startTestSandbox,
  type TestSandbox,
  tokensFor,
  UNBOUND,
  WEBSITE,
} from './sandbox-fixture.ts';

const HOUR = 3600_000;

describe('GET /sns/auth (§6) and GET /sns/userinfo (§7)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  const auth = (accessToken: string, openid: string) =>
    sandbox.get('/sns/auth', { access_token: accessToken, openid });
  const userinfo = (accessToken: string, openid: string) =>
    sandbox.get('/sns/userinfo', { access_token: accessToken, openid, lang: 'zh_CN' });

  it('answers a valid token with exactly {"errcode":0,"errmsg":"ok"}', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await auth(tokens.access_token, tokens.openid)).text).toBe('{"errcode":0,"errmsg":"ok"}');
  });

  it('answers 40003 when the openid is not the token owner in this app', async () => {
    const [first, second] = sandbox.state.listUsers();
    const tokens = await tokensFor(sandbox, WEBSITE, first!.id);
    expect(
      (await auth(tokens.access_token, sandbox.state.openid(WEBSITE.appid, second!.id))).json?.errcode,
    ).toBe(40003);
    expect(
      (await auth(tokens.access_token, sandbox.state.openid(OTHER_WEBSITE.appid, first!.id))).json?.errcode,
    ).toBe(40003);
  });

  it('answers 42001 for an expired token and 40001 for an unknown one', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    sandbox.advance(2 * HOUR);
    expect((await auth(tokens.access_token, tokens.openid)).json?.errcode).toBe(42001);
    expect((await auth('unknown-token', tokens.openid)).json?.errcode).toBe(40001);
  });

  it('answers missing access_token with 41001 and missing openid with 41009', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await sandbox.get('/sns/auth', { openid: tokens.openid })).json?.errcode).toBe(41001);
    expect((await sandbox.get('/sns/userinfo', { access_token: tokens.access_token })).json?.errcode).toBe(
      41009,
    );
  });

  it('returns the post-2021 userinfo shape: sex 0, blank regions, empty privilege, a /132 avatar', async () => {
    const user = sandbox.state.listUsers().find((u) => u.nickname === 'Alice')!;
    const tokens = await tokensFor(sandbox, WEBSITE, user.id);
    const answer = await userinfo(tokens.access_token, tokens.openid);
    expect(Object.keys(answer.json!)).toEqual([
      'openid',
      'nickname',
      'sex',
      'language',
      'city',
      'province',
      'country',
      'headimgurl',
      'privilege',
      'unionid',
    ]);
    expect(answer.json).toEqual({
      openid: tokens.openid,
      nickname: 'Alice',
      sex: 0,
      language: 'en',
      city: '',
      province: '',
      country: '',
      headimgurl: expect.stringMatching(/\/132$/),
      privilege: [],
      unionid: user.unionid,
    });
  });

  it('leaves unionid out of userinfo for an unbound app', async () => {
    const tokens = await tokensFor(sandbox, UNBOUND);
    const answer = await userinfo(tokens.access_token, tokens.openid);
    expect(answer.json?.nickname).toEqual(expect.any(String));
    expect(answer.json).not.toHaveProperty('unionid');
  });

  it('gives an empty headimgurl to a person without an avatar', async () => {
    const user = sandbox.state.createUser({ nickname: '无头像', avatarColor: null });
    const tokens = await tokensFor(sandbox, WEBSITE, user.id);
    expect((await userinfo(tokens.access_token, tokens.openid)).json?.headimgurl).toBe('');
  });

  it('answers 48001 api unauthorized for a snsapi_base token', async () => {
    const tokens = await tokensFor(sandbox, OFFICIAL_ACCOUNT, undefined, 'snsapi_base');
    expect((await auth(tokens.access_token, tokens.openid)).json?.errcode).toBe(0);
    const answer = await userinfo(tokens.access_token, tokens.openid);
    expect(answer.json?.errcode).toBe(48001);
    expect(answer.json?.errmsg).toMatch(/^api unauthorized, rid: /);
  });

  it('answers userinfo with 42001 expired, 40001 unknown and 40003 for another openid', async () => {
    const [first, second] = sandbox.state.listUsers();
    const tokens = await tokensFor(sandbox, WEBSITE, first!.id);
    expect(
      (await userinfo(tokens.access_token, sandbox.state.openid(WEBSITE.appid, second!.id))).json?.errcode,
    ).toBe(40003);
    expect((await userinfo('unknown-token', tokens.openid)).json?.errcode).toBe(40001);
    sandbox.advance(2 * HOUR);
    expect((await userinfo(tokens.access_token, tokens.openid)).json?.errcode).toBe(42001);
  });
});
