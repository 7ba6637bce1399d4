import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OTHER_WEBSITE, startTestSandbox, type TestSandbox, tokensFor, WEBSITE } from './sandbox-fixture.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('GET /sns/oauth2/refresh_token (§5)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  const refresh = (refreshToken: string, appid = WEBSITE.appid, grantType = 'refresh_token') =>
    sandbox.get('/sns/oauth2/refresh_token', { appid, grant_type: grantType, refresh_token: refreshToken });
  const auth = (accessToken: string, openid: string) =>
    sandbox.get('/sns/auth', { access_token: accessToken, openid });

  it('keeps an unexpired access token and extends its expiry', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    sandbox.advance(1.5 * HOUR);
    const refreshed = await refresh(tokens.refresh_token);
    expect(refreshed.json).toMatchObject({
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_in: 7200,
      openid: tokens.openid,
      scope: 'snsapi_login',
    });
    sandbox.advance(1 * HOUR); // 2.5 h after issue, 1 h after the refresh
    expect((await auth(tokens.access_token, tokens.openid)).json?.errcode).toBe(0);
  });

  it('replaces an expired access token with a new one and retires the old', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    sandbox.advance(2 * HOUR);
    const refreshed = await refresh(tokens.refresh_token);
    const newToken = refreshed.json?.access_token as string;
    expect(newToken).toEqual(expect.any(String));
    expect(newToken).not.toBe(tokens.access_token);
    expect(refreshed.json?.refresh_token).toBe(tokens.refresh_token);
    expect((await auth(newToken, tokens.openid)).json?.errcode).toBe(0);
    expect((await auth(tokens.access_token, tokens.openid)).json?.errcode).toBe(40001);
  });

  it('leaves unionid out of the refresh answer, as documented', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await refresh(tokens.refresh_token)).json).not.toHaveProperty('unionid');
  });

  it('lets the refresh token live 30 days from issue, without extension by use', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    sandbox.advance(29 * DAY);
    expect((await refresh(tokens.refresh_token)).json?.access_token).toBeDefined();
    sandbox.advance(1 * DAY);
    const expired = await refresh(tokens.refresh_token);
    expect(expired.json?.errcode).toBe(42002);
  });

  it('answers 40030 for an unknown refresh token', async () => {
    expect((await refresh('not-a-refresh-token')).json?.errcode).toBe(40030);
  });

  it('answers 40030 when another app presents the refresh token', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await refresh(tokens.refresh_token, OTHER_WEBSITE.appid)).json?.errcode).toBe(40030);
  });

  it('answers 40002 for a wrong grant_type and 41003 without a refresh token', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await refresh(tokens.refresh_token, WEBSITE.appid, 'authorization_code')).json?.errcode).toBe(
      40002,
    );
    const missing = await sandbox.get('/sns/oauth2/refresh_token', {
      appid: WEBSITE.appid,
      grant_type: 'refresh_token',
    });
    expect(missing.json?.errcode).toBe(41003);
  });

  it('answers 40013 for an unknown appid', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect((await refresh(tokens.refresh_token, 'wx0000000000000000')).json?.errcode).toBe(40013);
  });
});
