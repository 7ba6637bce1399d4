import { createDecipheriv, createHash, createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APP_TOKEN_TTL_S,
  FORCE_REFRESH_MIN_GAP_MS,
  PHONE_CODE_TTL_MS,
  SESSION_KEY_MIN_AGE_MS,
  SESSION_KEY_TTL_MS,
} from '../../src/sandbox/mini-program.ts';
import type { SandboxApp } from '../../src/sandbox/types.ts';
import { ALL_APPS, firstUser, RID, startTestSandbox, type TestSandbox, WEBSITE } from './sandbox-fixture.ts';

const MP: SandboxApp = { appid: 'wxa1b2c3d4e5f60010', secret: 'mp-secret-0010', kind: 'mini_program' };
const OTHER_MP: SandboxApp = { appid: 'wxa1b2c3d4e5f60011', secret: 'mp-secret-0011', kind: 'mini_program' };
const UNBOUND_MP: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60012',
  secret: 'mp-secret-0012',
  kind: 'mini_program',
  boundToOpenPlatform: false,
};

let sandbox: TestSandbox;
beforeEach(async () => {
  sandbox = await startTestSandbox({ apps: [...ALL_APPS, MP, OTHER_MP, UNBOUND_MP] });
});
afterEach(async () => {
  await sandbox.close();
});

const user = () => firstUser(sandbox);
const wxLogin = (app = MP, options: { rotate?: boolean } = {}) =>
  sandbox.state.miniPrograms.login(app.appid, user().id, options);
const code2Session = (code: string, app = MP, secret = app.secret) =>
  sandbox.get('/sns/jscode2session', {
    appid: app.appid,
    secret,
    js_code: code,
    grant_type: 'authorization_code',
  });
const sessionKey = async (app = MP) => (await code2Session(wxLogin(app), app)).json?.session_key as string;
const appToken = async (app = MP, forceRefresh = false) =>
  (
    await sandbox.send('POST', '/cgi-bin/stable_token', {
      grant_type: 'client_credential',
      appid: app.appid,
      secret: app.secret,
      force_refresh: forceRefresh,
    })
  ).json as { access_token: string; expires_in: number };
const checkSession = (token: string, signature: string, sigMethod = 'hmac_sha256') =>
  sandbox.get('/wxa/checksession', {
    access_token: token,
    openid: sandbox.state.openid(MP.appid, user().id),
    signature,
    sig_method: sigMethod,
  });
const hmac = (key: string) => createHmac('sha256', key).update('').digest('hex');

describe('sns/jscode2session', () => {
  it('answers openid, a 16-byte base64 session_key and the unionid, in WeChat’s wire format', async () => {
    const answer = await code2Session(wxLogin());
    expect(answer.headers.get('content-type')).toBe('text/plain');
    expect(answer.json).toEqual({
      openid: sandbox.state.openid(MP.appid, user().id),
      session_key: expect.stringMatching(/^[A-Za-z0-9+/]{22}==$/),
      unionid: user().unionid,
    });
    expect(answer.json?.errcode).toBeUndefined();
    const key = String(answer.json?.session_key);
    expect(Buffer.from(key, 'base64')).toHaveLength(16);
    // `/` is escaped as WeChat escapes it.
    if (key.includes('/')) expect(answer.text).toContain('\\/');
  });

  it('leaves the unionid out for a mini program not bound to the Open Platform', async () => {
    const answer = await code2Session(wxLogin(UNBOUND_MP), UNBOUND_MP);
    expect(answer.json?.openid).toBeTruthy();
    expect(answer.json).not.toHaveProperty('unionid');
  });

  it('leaves the unionid out once the mini program is unbound at run time, and names it again once bound', async () => {
    const setBound = (bound: boolean) =>
      sandbox.send('PATCH', '/sandbox/settings', { boundToOpenPlatform: { [MP.appid]: bound } });
    expect((await setBound(false)).status).toBe(200);
    const unbound = await code2Session(wxLogin());
    expect(unbound.json?.openid).toBe(sandbox.state.openid(MP.appid, user().id));
    expect(unbound.json).not.toHaveProperty('unionid');
    await setBound(true);
    expect((await code2Session(wxLogin())).json?.unionid).toBe(user().unionid);
  });

  it('spends a code once (40163), refuses it after 5 minutes or for another app (40029)', async () => {
    const code = wxLogin();
    expect((await code2Session(code)).json?.openid).toBeTruthy();
    const reused = await code2Session(code);
    expect(reused.json?.errcode).toBe(40163);
    expect(reused.json?.errmsg).toMatch(RID);
    expect((await code2Session(wxLogin(), OTHER_MP)).json?.errcode).toBe(40029);
    const late = wxLogin();
    sandbox.advance(5 * 60_000);
    expect((await code2Session(late)).json?.errcode).toBe(40029);
  });

  it('checks appid, secret, js_code and grant_type like WeChat', async () => {
    const code = wxLogin();
    expect(
      (await sandbox.get('/sns/jscode2session', { secret: MP.secret, js_code: code })).json?.errcode,
    ).toBe(41002);
    expect((await code2Session(code, MP, 'wrong-secret')).json?.errcode).toBe(40125);
    expect((await code2Session(code, WEBSITE, WEBSITE.secret)).json?.errcode).toBe(40013);
    const noGrant = await sandbox.get('/sns/jscode2session', {
      appid: MP.appid,
      secret: MP.secret,
      js_code: code,
    });
    expect(noGrant.json?.errcode).toBe(40002);
  });

  it('keeps the session key across wx.login calls, replaces it when forced, when old, or once expired', async () => {
    const first = await sessionKey();
    expect(await sessionKey()).toBe(first);
    const rotated = (await code2Session(wxLogin(MP, { rotate: true }))).json?.session_key;
    expect(rotated).not.toBe(first);
    sandbox.advance(SESSION_KEY_MIN_AGE_MS);
    const aged = await sessionKey();
    expect(aged).not.toBe(rotated);
    sandbox.advance(SESSION_KEY_TTL_MS);
    expect(sandbox.state.miniPrograms.checkSessionClientSide(MP.appid, user().id)).toBe(false);
    expect(await sessionKey()).not.toBe(aged);
  });
});

describe('cgi-bin/stable_token', () => {
  it('returns the same token while it is valid, then a new one in the last 5 minutes, the old one still working', async () => {
    const first = await appToken();
    expect(first.expires_in).toBe(APP_TOKEN_TTL_S);
    sandbox.advance(1000 * 1000);
    const same = await appToken();
    expect(same).toEqual({ access_token: first.access_token, expires_in: APP_TOKEN_TTL_S - 1000 });
    sandbox.advance((APP_TOKEN_TTL_S - 1000 - 200) * 1000);
    const next = await appToken();
    expect(next.access_token).not.toBe(first.access_token);
    expect(next.expires_in).toBe(APP_TOKEN_TTL_S);
    const key = await sessionKey();
    expect((await checkSession(first.access_token, hmac(key))).json).toEqual({ errcode: 0, errmsg: 'ok' });
    sandbox.advance(200 * 1000);
    expect((await checkSession(first.access_token, hmac(key))).json?.errcode).toBe(42001);
  });

  it('force_refresh replaces the token at once, but not twice within 30 seconds', async () => {
    const first = await appToken();
    sandbox.advance(FORCE_REFRESH_MIN_GAP_MS);
    const forced = await appToken(MP, true);
    expect(forced.access_token).not.toBe(first.access_token);
    expect((await checkSession(first.access_token, 'x')).json?.errcode).toBe(40001);
    expect((await appToken(MP, true)).access_token).toBe(forced.access_token);
  });

  it('checks the JSON body: bad JSON 47001, wrong secret 40125, wrong grant_type 40002', async () => {
    const badJson = await fetch(`${sandbox.url}/cgi-bin/stable_token`, { method: 'POST', body: '{' });
    expect(JSON.parse(await badJson.text()).errcode).toBe(47001);
    const wrong = await sandbox.send('POST', '/cgi-bin/stable_token', {
      grant_type: 'client_credential',
      appid: MP.appid,
      secret: 'nope',
    });
    expect(wrong.json?.errcode).toBe(40125);
    const grant = await sandbox.send('POST', '/cgi-bin/stable_token', {
      grant_type: 'x',
      appid: MP.appid,
      secret: MP.secret,
    });
    expect(grant.json?.errcode).toBe(40002);
  });
});

describe('wxa/checksession', () => {
  it('accepts the HMAC-SHA256 of the current session key and refuses a stale one (87009)', async () => {
    const { access_token: token } = await appToken();
    const key = await sessionKey();
    expect((await checkSession(token, hmac(key))).json).toEqual({ errcode: 0, errmsg: 'ok' });
    expect((await checkSession(token, hmac(key), 'md5')).json?.errcode).toBe(87008);
    sandbox.state.miniPrograms.resetSession(MP.appid, user().id);
    expect((await checkSession(token, hmac(key))).json?.errcode).toBe(87009);
    expect((await checkSession('unknown-token', hmac(key))).json?.errcode).toBe(40001);
  });
});

describe('encrypted user data', () => {
  it('is AES-128-CBC with the session key, PKCS#7 to 16 bytes, watermarked, with rawData signed', async () => {
    const key = await sessionKey();
    const answer = await sandbox.send('POST', '/sandbox/mini-program/user-data', {
      appid: MP.appid,
      user: user().id,
    });
    expect(answer.status).toBe(201);
    const { encryptedData, iv, rawData, signature } = answer.json as Record<string, string>;
    const cipher = Buffer.from(encryptedData!, 'base64');
    expect(cipher.length % 16).toBe(0);
    const decipher = createDecipheriv('aes-128-cbc', Buffer.from(key, 'base64'), Buffer.from(iv!, 'base64'));
    const plain = JSON.parse(Buffer.concat([decipher.update(cipher), decipher.final()]).toString('utf8'));
    expect(plain).toMatchObject({
      openId: sandbox.state.openid(MP.appid, user().id),
      nickName: user().nickname,
      unionId: user().unionid,
      watermark: { appid: MP.appid, timestamp: Math.floor(sandbox.state.now() / 1000) },
    });
    expect(signature).toBe(
      createHash('sha1')
        .update(rawData! + key)
        .digest('hex'),
    );
    expect(JSON.parse(rawData!).nickName).toBe(user().nickname);
  });

  it('is refused before wx.login (no session key)', async () => {
    const answer = await sandbox.send('POST', '/sandbox/mini-program/user-data', {
      appid: MP.appid,
      user: user().id,
    });
    expect(answer.status).toBe(400);
  });
});

describe('wxa/business/getuserphonenumber', () => {
  const phoneCode = async (phone: Record<string, string> = {}) =>
    (
      await sandbox.send('POST', '/sandbox/mini-program/phone-code', {
        appid: MP.appid,
        user: user().id,
        ...phone,
      })
    ).json as { code: string; countryCode: string; purePhoneNumber: string };
  const exchangePhone = (token: string, body: unknown) =>
    sandbox.send('POST', `/wxa/business/getuserphonenumber?access_token=${encodeURIComponent(token)}`, body);

  it('exchanges a button code once for phone_info (countryCode a number), checking the openid', async () => {
    const { access_token: token } = await appToken();
    const openid = sandbox.state.openid(MP.appid, user().id);
    const { code, purePhoneNumber } = await phoneCode();
    expect(purePhoneNumber).toMatch(/^13\d{9}$/);
    const answer = await exchangePhone(token, { code, openid });
    expect(answer.json).toEqual({
      errcode: 0,
      errmsg: 'ok',
      phone_info: {
        phoneNumber: purePhoneNumber,
        purePhoneNumber,
        countryCode: 86,
        watermark: { appid: MP.appid, timestamp: expect.any(Number) },
      },
    });
    expect((await exchangePhone(token, { code, openid })).json?.errcode).toBe(40029);
  });

  it('refuses another person’s openid (40003), an expired code (40029) and a bad app token (40001)', async () => {
    const { access_token: token } = await appToken();
    const { code } = await phoneCode();
    const other = sandbox.state.listUsers()[1]!;
    expect(
      (await exchangePhone(token, { code, openid: sandbox.state.openid(MP.appid, other.id) })).json?.errcode,
    ).toBe(40003);
    sandbox.advance(PHONE_CODE_TTL_MS);
    expect((await exchangePhone(token, { code })).json?.errcode).toBe(40029);
    expect((await exchangePhone('nope', { code })).json?.errcode).toBe(40001);
  });

  it('gives non-mainland numbers their country prefix in phoneNumber', async () => {
    const { access_token: token } = await appToken();
    const { code } = await phoneCode({ countryCode: '852', purePhoneNumber: '61234567' });
    const answer = await exchangePhone(token, { code });
    expect(answer.json?.phone_info).toMatchObject({ phoneNumber: '+85261234567', countryCode: 852 });
  });
});

describe('the developer page', () => {
  it('plays the mini program: a wx.login code for a chosen user, shown on the page', async () => {
    const page = await sandbox.get('/sandbox/mini-program');
    expect(page.status).toBe(200);
    expect(page.text).toContain(MP.appid);
    const result = await sandbox.postForm('/sandbox/mini-program', {
      action: 'login',
      appid: MP.appid,
      user: user().id,
    });
    expect(result.status).toBe(200);
    const code = /&quot;code&quot;: &quot;([A-Za-z0-9]+)&quot;/.exec(result.text)?.[1];
    expect(code).toBeTruthy();
    expect((await code2Session(code!)).json?.openid).toBe(sandbox.state.openid(MP.appid, user().id));
    const refused = await sandbox.postForm('/sandbox/mini-program', {
      action: 'login',
      appid: WEBSITE.appid,
      user: user().id,
    });
    expect(refused.status).toBe(400);
    expect((await sandbox.get('/sandbox')).text).toContain('/sandbox/mini-program');
  });
});
