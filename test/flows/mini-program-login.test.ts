import { createCipheriv, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  type Bridge,
  logLines,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  UNBOUND_MINI_PROGRAM_APP,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { embeddedArtifactRows } from '../helpers/embedded-artifacts.ts';
import {
  createSandboxUser,
  injectFault,
  loginAs,
  pendingFaults,
  relyingParty,
  type SandboxUser,
  setBoundToOpenPlatform,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  JS_CODE,
  miniProgramClient,
  TOKEN_EXCHANGE,
  tokenRequest,
  wxLogin,
  wxPhoneCode,
  wxUserData,
} from '../helpers/mini-program.ts';
import { scanKeys, testRedisUrl } from '../helpers/redis.ts';

const UNBOUND_CLIENT = {
  ...MINI_PROGRAM_CLIENT,
  client_id: 'test-unbound-mini-program',
  wechat_mini_program_appid: UNBOUND_MINI_PROGRAM_APP.appid,
};
/** A mini program client that may not refresh. */
const NO_REFRESH_CLIENT = {
  ...MINI_PROGRAM_CLIENT,
  client_id: 'test-mini-program-no-refresh',
  grant_types: [TOKEN_EXCHANGE],
  scope: 'openid profile offline_access',
};

/** The session key WeChat holds for the person now, asked of the sandbox the way the bridge asks. */
async function currentSessionKey(bridge: Bridge, user: SandboxUser): Promise<string> {
  const code = await wxLogin(bridge, user);
  const query = new URLSearchParams({
    appid: MINI_PROGRAM_APP.appid,
    secret: MINI_PROGRAM_APP.secret,
    js_code: code,
    grant_type: 'authorization_code',
  });
  const answer = await fetch(`${bridge.sandboxUrl}/sns/jscode2session?${query}`);
  return (JSON.parse(await answer.text()) as { session_key: string }).session_key;
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`mini program login by token exchange (${storage})`, () => {
    let bridge: Bridge;
    let mp: oidc.Configuration;
    let panda: SandboxUser;
    /** Every answer the bridge gave in these tests, searched for session keys at the end. */
    const answers: string[] = [];
    const sessionKeys = new Set<string>();
    /** Codes and tokens the mini program held: they must not reach the logs either. */
    const secrets = new Set<string>([MINI_PROGRAM_APP.secret, UNBOUND_MINI_PROGRAM_APP.secret]);
    const remember = <T>(value: T): T => {
      answers.push(JSON.stringify(value));
      return value;
    };

    /** A fresh login of `user` through the mini program: its tokens. */
    const miniProgramLogin = async (user: SandboxUser, scope = 'openid profile phone offline_access') => {
      const code = await wxLogin(bridge, user);
      const tokens = remember(await exchangeJsCode(mp, code, { scope }));
      for (const secret of [code, tokens.access_token, tokens.refresh_token ?? '']) secrets.add(secret);
      return tokens;
    };
    const call = async (...args: Parameters<typeof callMiniProgram>) =>
      remember(await callMiniProgram(...args));
    const accountOf = (user: SandboxUser) =>
      bridge.server.stores.db
        .selectFrom('accounts')
        .selectAll()
        .where('subject', '=', user.unionid)
        .executeTakeFirst();

    beforeAll(async () => {
      bridge = await startBridge({
        storage,
        apps: [WEBSITE_APP, MINI_PROGRAM_APP, UNBOUND_MINI_PROGRAM_APP],
        configure: (config) => ({
          ...config,
          clients: [...config.clients, MINI_PROGRAM_CLIENT, UNBOUND_CLIENT, NO_REFRESH_CLIENT],
        }),
      });
      mp = await miniProgramClient(bridge);
      panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('discovery lists the token exchange grant and the phone scope and claims', () => {
      const metadata = mp.serverMetadata();
      expect(metadata.grant_types_supported).toContain(TOKEN_EXCHANGE);
      expect(metadata.scopes_supported).toContain('phone');
      expect(metadata.claims_supported).toEqual(
        expect.arrayContaining(['phone_number', 'phone_number_verified']),
      );
    });

    test('a wx.login code exchanged by openid-client yields RFC 8693 tokens whose sub is the unionid', async () => {
      const tokens = await miniProgramLogin(panda);
      expect(tokens.issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token');
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.expires_in).toBeGreaterThan(0);
      expect(tokens.refresh_token).toBeTruthy();
      const claims = tokens.claims();
      expect(claims?.sub).toBe(panda.unionid);
      expect(claims?.aud).toBe(MINI_PROGRAM_CLIENT.client_id);
      expect(claims?.iss).toBe(bridge.url);
      expect(claims?.auth_time).toEqual(expect.any(Number));
      // As the website login's: no claim the discovery document does not list (amr is not one).
      const discovery = await fetch(`${bridge.url}/.well-known/openid-configuration`);
      const { claims_supported: supported } = (await discovery.json()) as { claims_supported: string[] };
      const standard = ['iss', 'aud', 'exp', 'iat', 'azp', 'at_hash', 'c_hash', 'nonce', 'sid', 'jti'];
      expect(
        Object.keys(claims ?? {}).filter((claim) => ![...supported, ...standard].includes(claim)),
      ).toEqual([]);

      const userinfo = await oidc.fetchUserInfo(mp, tokens.access_token, panda.unionid);
      expect(userinfo.sub).toBe(panda.unionid);
      const introspected = await fetch(`${bridge.url}/mini-program/check-session`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(introspected.status).toBe(200);
    });

    test('the same person gets the same sub through the mini program and the website QR login, on one account', async () => {
      const person = await createSandboxUser(bridge, '张三');
      const viaMiniProgram = await miniProgramLogin(person);
      const viaWebsite = await loginAs(await relyingParty(bridge), person);
      expect(viaMiniProgram.claims()?.sub).toBe(person.unionid);
      expect(viaWebsite.tokens.claims()?.sub).toBe(viaMiniProgram.claims()?.sub);

      const db = bridge.server.stores.db;
      const accounts = await db
        .selectFrom('accounts')
        .select('id')
        .where('subject', '=', person.unionid)
        .execute();
      expect(accounts).toHaveLength(1);
      const identities = await db
        .selectFrom('identities')
        .select(['appid', 'openid', 'kind'])
        .where('account_id', '=', accounts[0]!.id)
        .orderBy('appid')
        .execute();
      expect(identities).toEqual(
        [
          { appid: WEBSITE_APP.appid, openid: person.openids[WEBSITE_APP.appid], kind: 'website' },
          {
            appid: MINI_PROGRAM_APP.appid,
            openid: person.openids[MINI_PROGRAM_APP.appid],
            kind: 'mini_program',
          },
        ].sort((a, b) => a.appid.localeCompare(b.appid)),
      );
    });

    test('the refresh token rotates, and the refreshed access token still reaches the mini-program endpoints', async () => {
      const tokens = await miniProgramLogin(panda);
      const refreshed = remember(await oidc.refreshTokenGrant(mp, tokens.refresh_token as string));
      expect(refreshed.claims()?.sub).toBe(panda.unionid);
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      const check = await call(bridge, 'check-session', refreshed.access_token);
      expect(check.status).toBe(200);
      expect(check.body).toEqual({ valid: true });
    });

    test('a client without the refresh_token grant gets no refresh token', async () => {
      const client = await oidc.discovery(
        new URL(bridge.url),
        NO_REFRESH_CLIENT.client_id,
        undefined,
        oidc.None(),
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const tokens = remember(
        await exchangeJsCode(client, await wxLogin(bridge, panda), { scope: 'openid offline_access' }),
      );
      expect(tokens.access_token).toBeTruthy();
      expect(tokens.refresh_token).toBeUndefined();
      // A grant type it may not use, asked for anyway: unauthorized_client (RFC 6749 5.2).
      const refused = await tokenRequest(bridge, {
        client_id: NO_REFRESH_CLIENT.client_id,
        grant_type: 'refresh_token',
        refresh_token: 'whatever',
      });
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('unauthorized_client');
    });

    test('a scope outside the client registration is refused; an unknown one is ignored', async () => {
      const exchange = (scope: string) =>
        wxLogin(bridge, panda).then((code) =>
          tokenRequest(bridge, {
            client_id: NO_REFRESH_CLIENT.client_id,
            grant_type: TOKEN_EXCHANGE,
            subject_token: code,
            subject_token_type: JS_CODE,
            scope,
          }),
        );
      const refused = await exchange('openid phone');
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_scope');
      const ignored = await exchange('openid made_up_scope');
      expect(ignored.status).toBe(200);
      expect(ignored.body.scope).toBe('openid');
    });

    test('the phone number from a getPhoneNumber code becomes a verified claim, on the web too', async () => {
      const person = await createSandboxUser(bridge, 'Phone Person');
      const tokens = await miniProgramLogin(person);
      const { code, countryCode, purePhoneNumber } = await wxPhoneCode(bridge, person);
      secrets.add(code);
      const bound = await call(bridge, 'phone-number', tokens.access_token, { code });
      expect(bound.status).toBe(200);
      expect(bound.body).toEqual({
        phone_number: `+${countryCode}${purePhoneNumber}`,
        phone_number_verified: true,
      });

      const userinfo = await oidc.fetchUserInfo(mp, tokens.access_token, person.unionid);
      expect(userinfo.phone_number).toBe(`+${countryCode}${purePhoneNumber}`);
      expect(userinfo.phone_number_verified).toBe(true);
      const withoutPhone = await miniProgramLogin(person, 'openid profile');
      const narrow = await oidc.fetchUserInfo(mp, withoutPhone.access_token, person.unionid);
      expect(narrow.phone_number).toBeUndefined();

      const web = await loginAs(await relyingParty(bridge), person, { scope: 'openid phone' });
      const webUserinfo = await oidc.fetchUserInfo(
        await relyingParty(bridge),
        web.tokens.access_token,
        person.unionid,
      );
      expect(webUserinfo.phone_number).toBe(`+${countryCode}${purePhoneNumber}`);
      expect(webUserinfo.phone_number_verified).toBe(true);

      // The code is single use: a second exchange is refused precisely and changes nothing.
      const again = await call(bridge, 'phone-number', tokens.access_token, { code });
      expect(again.status).toBe(400);
      expect(again.body.error).toBe('invalid_phone_code');
    });

    test('WeChat busy after spending the phone code: the answer says to press the button again, not to retry the code', async () => {
      const tokens = await miniProgramLogin(panda);
      const { code } = await wxPhoneCode(bridge, panda);
      // -1 once the code is spent: the bridge's one retry finds it used.
      await injectFault(bridge, {
        api: 'wxa/business/getuserphonenumber',
        errcode: -1,
        afterProcessing: true,
      });
      const answer = await call(bridge, 'phone-number', tokens.access_token, { code });
      await fetch(`${bridge.sandboxUrl}/sandbox/faults`, { method: 'DELETE' });
      expect(answer.status).toBe(503);
      expect(answer.body.error_description).toBe(
        'WeChat answered that it is busy (errcode -1); the getPhoneNumber code may be spent: ask again with the button shortly',
      );
      expect((await call(bridge, 'phone-number', tokens.access_token, { code })).body.error).toBe(
        'invalid_phone_code',
      );
    });

    test('a phone number outside mainland China keeps its country code', async () => {
      const person = await createSandboxUser(bridge, 'HK Person');
      const tokens = await miniProgramLogin(person);
      const { code } = await wxPhoneCode(bridge, person, { countryCode: '852', purePhoneNumber: '61234567' });
      const bound = await call(bridge, 'phone-number', tokens.access_token, { code });
      expect(bound.body).toEqual({ phone_number: '+85261234567', phone_number_verified: true });
    });

    test('an answer without an errcode that cannot be used is logged with what was wrong with it', async () => {
      const tokens = await miniProgramLogin(panda);
      const { code } = await wxPhoneCode(bridge, panda);
      await injectFault(bridge, { api: 'wxa/business/getuserphonenumber', emptyBody: true, times: 2 });
      const answer = await call(bridge, 'phone-number', tokens.access_token, { code });
      await fetch(`${bridge.sandboxUrl}/sandbox/faults`, { method: 'DELETE' });
      expect(answer.status).toBe(503);
      expect(answer.body.error).toBe('temporarily_unavailable');
      expect(answer.body.error_description).toBe(
        'WeChat did not answer; the getPhoneNumber code may be spent: ask again with the button shortly',
      );
      const line = bridge.logs.findLast((entry) => entry.includes('phone number exchange failed'));
      expect(JSON.parse(line as string)).toMatchObject({
        api: 'wxa/business/getuserphonenumber',
        failure: 'unavailable',
        detail: 'HTTP 200, an empty body',
      });
    });

    test('another person’s phone code is refused (WeChat checks it against the openid)', async () => {
      const tokens = await miniProgramLogin(panda);
      const stranger = await createSandboxUser(bridge, 'Stranger');
      const { code } = await wxPhoneCode(bridge, stranger);
      const before = await accountOf(panda);
      const answer = await call(bridge, 'phone-number', tokens.access_token, { code });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_phone_code');
      expect(await accountOf(panda)).toEqual(before);
    });

    test('decrypted user data is returned, its rawData signature checked, and the profile saved', async () => {
      const person = await createSandboxUser(bridge, 'Profile Person');
      const tokens = await miniProgramLogin(person);
      expect((await accountOf(person))?.nickname).toBeNull();
      const data = await wxUserData(bridge, person);
      const answer = await call(bridge, 'decrypt', tokens.access_token, data);
      expect(answer.status).toBe(200);
      const decrypted = answer.body.data as Record<string, unknown>;
      expect(decrypted.nickName).toBe('Profile Person');
      expect(decrypted.openId).toBe(person.openids[MINI_PROGRAM_APP.appid]);
      expect(decrypted.unionId).toBe(person.unionid);
      expect(decrypted.watermark).toEqual({ appid: MINI_PROGRAM_APP.appid, timestamp: expect.any(Number) });
      expect((await accountOf(person))?.nickname).toBe('Profile Person');
      const userinfo = await oidc.fetchUserInfo(mp, tokens.access_token, person.unionid);
      expect(userinfo.nickname).toBe('Profile Person');
    });

    test("WeChat's answer may be sent as it came (errMsg, cloudID, userInfo beside the data); a misspelt or missing field is named", async () => {
      const tokens = await miniProgramLogin(panda);
      const data = await wxUserData(bridge, panda);
      const asItCame = {
        ...data,
        errMsg: 'getUserInfo:ok',
        cloudID: '62_abc',
        userInfo: { nickName: 'Panda', avatarUrl: 'https://thirdwx.qlogo.cn/x/132' },
      };
      expect((await call(bridge, 'decrypt', tokens.access_token, asItCame)).status).toBe(200);

      const { encryptedData, ...rest } = data;
      const misspelt = await call(bridge, 'decrypt', tokens.access_token, {
        ...rest,
        encrypteddata: encryptedData,
      });
      expect(misspelt.body).toMatchObject({
        error: 'invalid_request',
        field: 'encrypteddata',
        error_description: 'encrypteddata: is not a field this endpoint takes',
      });
      const missing = await call(bridge, 'decrypt', tokens.access_token, { encryptedData });
      expect(missing.body).toMatchObject({
        error: 'invalid_request',
        field: 'iv',
        error_description: 'iv: missing',
      });
      const phone = await call(bridge, 'phone-number', tokens.access_token, {
        errMsg: 'getPhoneNumber:fail user deny',
      });
      expect(phone.body).toMatchObject({ field: 'code', error_description: 'code: missing' });
    });

    test('a decrypted nickname holding control characters (NUL, BEL) is saved without them', async () => {
      const person = await createSandboxUser(bridge, 'A\u0000B\u0007C', { allowControlCharacters: true });
      const tokens = await miniProgramLogin(person);
      const answer = await call(bridge, 'decrypt', tokens.access_token, await wxUserData(bridge, person));
      expect(answer.status).toBe(200);
      // The mini program gets what WeChat encrypted; the account keeps what can be stored and shown.
      expect((answer.body.data as Record<string, unknown>).nickName).toBe('A\u0000B\u0007C');
      expect((await accountOf(person))?.nickname).toBe('ABC');
      const userinfo = await oidc.fetchUserInfo(mp, tokens.access_token, person.unionid);
      expect(userinfo.nickname).toBe('ABC');
    });

    test.each([
      {
        name: 'iv that is not base64 (a "+" lost to form encoding)',
        tamper: (d: Record<string, string>) => ({ ...d, iv: d.iv!.replace(/[+/A-Za-z0-9]/, ' ') }),
        error: 'invalid_base64',
        field: 'iv',
      },
      {
        name: 'iv of the wrong length',
        tamper: (d: Record<string, string>) => ({ ...d, iv: Buffer.alloc(12).toString('base64') }),
        error: 'invalid_length',
        field: 'iv',
      },
      {
        name: 'encryptedData not a multiple of 16 bytes',
        tamper: (d: Record<string, string>) => ({
          ...d,
          encryptedData: Buffer.from(d.encryptedData!, 'base64').subarray(0, 20).toString('base64'),
        }),
        error: 'invalid_length',
        field: 'encryptedData',
      },
      {
        name: 'encryptedData whose last block was altered (bad padding)',
        tamper: (d: Record<string, string>) => {
          const bytes = Buffer.from(d.encryptedData!, 'base64');
          bytes[bytes.length - 17] = bytes[bytes.length - 17]! ^ 0xff;
          return { ...d, encryptedData: bytes.toString('base64') };
        },
        error: 'undecryptable',
        field: 'encryptedData',
      },
      {
        name: 'rawData altered after signing',
        tamper: (d: Record<string, string>) => ({
          ...d,
          rawData: d.rawData!.replace('"gender":0', '"gender":1'),
        }),
        error: 'signature_mismatch',
        field: 'signature',
      },
    ])('$name is refused with $error and nothing is written', async ({ tamper, error, field }) => {
      const tokens = await miniProgramLogin(panda);
      const data = (await wxUserData(bridge, panda)) as unknown as Record<string, string>;
      const before = await accountOf(panda);
      const answer = await call(bridge, 'decrypt', tokens.access_token, tamper(data));
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error, field, error_description: expect.any(String) });
      // The field named once, then what is wrong with it ("signature signature is not..." before).
      expect(answer.body.error_description).toMatch(new RegExp(`^${field} (?!${field} )`));
      expect(await accountOf(panda)).toEqual(before);
      // The key was fine: it is still there for the next, correct call.
      expect((await call(bridge, 'decrypt', tokens.access_token, data)).status).toBe(200);
    });

    test('data watermarked for another mini program, or too old, is refused and nothing is written', async () => {
      const tokens = await miniProgramLogin(panda);
      const before = await accountOf(panda);
      const foreign = await wxUserData(bridge, panda, { watermark: { appid: 'wx1111111111111111' } });
      const wrongApp = await call(bridge, 'decrypt', tokens.access_token, foreign);
      expect(wrongApp.status).toBe(400);
      expect(wrongApp.body.error).toBe('watermark_appid_mismatch');
      const old = await wxUserData(bridge, panda, {
        watermark: { timestamp: Math.floor(Date.now() / 1000) - 3600 },
      });
      const stale = await call(bridge, 'decrypt', tokens.access_token, old);
      expect(stale.status).toBe(400);
      expect(stale.body.error).toBe('watermark_stale');
      // Dated well ahead of this server's clock: the description says that it may be the clock.
      const ahead = await wxUserData(bridge, panda, {
        watermark: { timestamp: Math.floor(Date.now() / 1000) + 3600 },
      });
      const future = await call(bridge, 'decrypt', tokens.access_token, ahead);
      expect(future.body).toMatchObject({ error: 'watermark_stale' });
      expect(future.body.error_description).toContain("or dated ahead of this server's clock");
      expect(await accountOf(panda)).toEqual(before);
    });

    test('data about another WeChat user is refused', async () => {
      const tokens = await miniProgramLogin(panda);
      const forged = await wxUserData(bridge, panda, {
        data: { openId: 'oSomeoneElse000000000000000', nickName: 'Mallory' },
      });
      const answer = await call(bridge, 'decrypt', tokens.access_token, forged);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('identity_mismatch');
      expect((await accountOf(panda))?.nickname).not.toBe('Mallory');
    });

    test("data naming another person's unionid, and no openid, is refused and the profile kept", async () => {
      const person = await createSandboxUser(bridge, 'Union Person');
      const other = await createSandboxUser(bridge, 'Other Union');
      const tokens = await miniProgramLogin(person);
      const forged = await wxUserData(bridge, person, {
        data: { unionId: other.unionid, nickName: 'Mallory' },
      });
      const answer = await call(bridge, 'decrypt', tokens.access_token, forged);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: 'identity_mismatch', field: 'encryptedData' });
      expect((await accountOf(person))?.nickname).toBeNull();
      // The same data naming the person's own unionid is theirs.
      const own = await wxUserData(bridge, person, { data: { unionId: person.unionid, nickName: 'Mine' } });
      expect((await call(bridge, 'decrypt', tokens.access_token, own)).status).toBe(200);
      // The profile written is the one WeChat signed (rawData), not the encrypted data's.
      expect((await accountOf(person))?.nickname).toBe('Union Person');
    });

    test('the profile is written from the signed rawData only: encrypted data alone updates nothing', async () => {
      const person = await createSandboxUser(bridge, 'Unsigned Person');
      const tokens = await miniProgramLogin(person);
      const { encryptedData, iv } = await wxUserData(bridge, person);
      const answer = await call(bridge, 'decrypt', tokens.access_token, { encryptedData, iv });
      expect(answer.status).toBe(200);
      expect((answer.body.data as Record<string, unknown>).nickName).toBe('Unsigned Person');
      expect((await accountOf(person))?.nickname).toBeNull();
    });

    test('data that does not decrypt gets one answer, whether its padding or its JSON failed (no padding oracle)', async () => {
      const person = await createSandboxUser(bridge, 'Oracle Person');
      const tokens = await miniProgramLogin(person);
      const key = Buffer.from(await currentSessionKey(bridge, person), 'base64');
      const iv = randomBytes(16);
      // Valid PKCS#7 padding around text that is not JSON, and a block whose padding is wrong.
      const cipher = createCipheriv('aes-128-cbc', key, iv);
      const notJson = Buffer.concat([cipher.update('not json at all'), cipher.final()]);
      const raw = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false);
      const badPadding = Buffer.concat([raw.update(Buffer.alloc(16, 0x41)), raw.final()]);
      const answers = [];
      for (const ciphertext of [notJson, badPadding]) {
        const answer = await call(bridge, 'decrypt', tokens.access_token, {
          encryptedData: ciphertext.toString('base64'),
          iv: iv.toString('base64'),
        });
        answers.push({ status: answer.status, body: answer.body });
      }
      expect(answers[0]).toMatchObject({
        status: 400,
        body: { error: 'undecryptable', field: 'encryptedData' },
      });
      expect(answers[1]).toEqual(answers[0]);
    });

    test('a session key WeChat replaced tells the mini program to call wx.login again', async () => {
      const person = await createSandboxUser(bridge, 'Rotated Person');
      const tokens = await miniProgramLogin(person);
      // The person logs in on another device: WeChat has a new key, the bridge still the old one.
      await wxLogin(bridge, person, { rotate: true });
      const data = await wxUserData(bridge, person);
      const stale = await call(bridge, 'decrypt', tokens.access_token, data);
      expect(stale.status).toBe(400);
      expect(stale.body).toMatchObject({ error: 'wx_login_required', reason: 'session_key_stale' });
      expect(String(stale.body.error_description)).toContain('wx.login()');
      // The stale key is forgotten.
      const gone = await call(bridge, 'check-session', tokens.access_token);
      expect(gone.body).toMatchObject({ error: 'wx_login_required', reason: 'session_key_missing' });

      // A new wx.login and exchange, and the same data decrypts.
      const renewed = await miniProgramLogin(person);
      expect((await call(bridge, 'decrypt', renewed.access_token, data)).status).toBe(200);
    });

    test('a stale key reported while a new wx.login is exchanged forgets the stale key only, never the new one', async () => {
      const person = await createSandboxUser(bridge, 'Racing Person');
      const tokens = await miniProgramLogin(person);
      // A new wx.login on the phone: WeChat has a new key, the bridge still the old one.
      const code = await wxLogin(bridge, person, { rotate: true });
      const data = await wxUserData(bridge, person);
      for (const endpoint of ['decrypt', 'check-session'] as const) {
        // WeChat is slow to answer whether the old key is stale; meanwhile the mini program
        // exchanges its new code, as the README's login() does at once.
        await injectFault(bridge, { api: 'wxa/checksession', delayMs: 1_000, times: 1 });
        const asking = call(bridge, endpoint, tokens.access_token, endpoint === 'decrypt' ? data : undefined);
        await vi.waitFor(async () => expect(await pendingFaults(bridge, 'wxa/checksession')).toBe(0), {
          timeout: 5_000,
          interval: 20,
        });
        const renewed =
          endpoint === 'decrypt'
            ? remember(await exchangeJsCode(mp, code, { scope: 'openid profile' }))
            : await miniProgramLogin(person);
        const stale = await asking;
        expect(stale.body).toMatchObject({ error: 'wx_login_required', reason: 'session_key_stale' });
        // The key the exchange stored stays: the new token decrypts and its session is valid.
        if (endpoint === 'decrypt')
          expect((await call(bridge, 'decrypt', renewed.access_token, data)).status).toBe(200);
        expect((await call(bridge, 'check-session', renewed.access_token)).body).toEqual({ valid: true });
        // The next round's old key: the one the bridge holds now, replaced at WeChat by another wx.login.
        Object.assign(tokens, renewed);
        await wxLogin(bridge, person, { rotate: true });
      }
    });

    test('check-session asks WeChat with the HMAC of the session key, and answers wx_login_required once it is stale', async () => {
      const person = await createSandboxUser(bridge, 'Checked Person');
      const tokens = await miniProgramLogin(person);
      expect((await call(bridge, 'check-session', tokens.access_token)).body).toEqual({ valid: true });
      await fetch(`${bridge.sandboxUrl}/sandbox/mini-program/session/reset`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ appid: MINI_PROGRAM_APP.appid, user: person.id }),
      });
      const stale = await call(bridge, 'check-session', tokens.access_token);
      expect(stale.status).toBe(400);
      expect(stale.body).toMatchObject({ error: 'wx_login_required', reason: 'session_key_stale' });
    });

    test('an app token WeChat rejects (40001) is refreshed once and the call retried', async () => {
      const tokens = await miniProgramLogin(panda);
      await injectFault(bridge, { api: 'wxa/checksession', errcode: 40001, times: 1 });
      const answer = await call(bridge, 'check-session', tokens.access_token);
      expect(answer.body).toEqual({ valid: true });
      await injectFault(bridge, { api: 'wxa/checksession', errcode: 42001, times: 2 });
      const twice = await call(bridge, 'check-session', tokens.access_token);
      expect(twice.status).toBe(500);
      expect(twice.body.error).toBe('server_error');
      expect(await pendingFaults(bridge, 'wxa/checksession')).toBe(0);
    });

    test('the app access token is fetched once and reused, not fetched per request', async () => {
      const tokens = await miniProgramLogin(panda);
      // A no-op fault on stable_token counts its calls: each call uses one up.
      await injectFault(bridge, { api: 'cgi-bin/stable_token', delayMs: 0, times: 1000 });
      for (let i = 0; i < 5; i++)
        expect((await call(bridge, 'check-session', tokens.access_token)).status).toBe(200);
      const { code } = await wxPhoneCode(bridge, panda);
      expect((await call(bridge, 'phone-number', tokens.access_token, { code })).status).toBe(200);
      expect(1000 - (await pendingFaults(bridge, 'cgi-bin/stable_token'))).toBeLessThanOrEqual(1);
      await fetch(`${bridge.sandboxUrl}/sandbox/faults`, { method: 'DELETE' });
    });

    test('the mini-program endpoints want a live access token issued to a mini program client', async () => {
      const anonymous = await call(bridge, 'check-session', undefined);
      expect(anonymous.status).toBe(401);
      // RFC 6750 §3.1: a request without any token is told the scheme, with no error code.
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
      const unknown = await call(bridge, 'check-session', 'not-a-token');
      expect(unknown.status).toBe(401);
      expect(unknown.headers.get('www-authenticate')).toContain('invalid_token');

      const web = await loginAs(await relyingParty(bridge), panda);
      const fromWeb = await call(bridge, 'check-session', web.tokens.access_token);
      expect(fromWeb.status).toBe(401);
      expect(fromWeb.body.error_description).toContain('mini program');

      const tokens = await miniProgramLogin(panda);
      await oidc.tokenRevocation(mp, tokens.access_token);
      expect((await call(bridge, 'check-session', tokens.access_token)).status).toBe(401);

      const live = await miniProgramLogin(panda);
      const notJson = await call(bridge, 'decrypt', live.access_token, '{"encryptedData":');
      expect(notJson.status).toBe(400);
      expect(notJson.body.error).toBe('invalid_request');
      for (const body of ['null', '"x"', '{"encryptedData":']) {
        const refused = await call(bridge, 'decrypt', live.access_token, body);
        expect(refused.status).toBe(400);
        expect(refused.body.error_description).toContain('the body is not a JSON object');
      }
      const missing = await call(bridge, 'decrypt', live.access_token, { iv: 'AAAAAAAAAAAAAAAAAAAAAA==' });
      expect(missing.body).toMatchObject({ error: 'invalid_request', field: 'encryptedData' });
    });

    test('a body past the limit is refused 413 whether it declares its length or not', async () => {
      const tokens = await miniProgramLogin(panda);
      const limit = bridge.config.limits?.maxBodyBytes as number;
      const body = JSON.stringify({ encryptedData: 'A'.repeat(limit), iv: 'AAAAAAAAAAAAAAAAAAAAAA==' });
      const send = (chunked: boolean) =>
        fetch(`${bridge.url}/mini-program/decrypt`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
          // A stream has no length: sent chunked, as wx.request's underlying client may.
          body: chunked ? new Blob([body]).stream() : body,
          ...(chunked ? { duplex: 'half' } : {}),
        } as RequestInit);
      for (const chunked of [false, true]) {
        const answer = await send(chunked);
        expect(answer.status, chunked ? 'chunked' : 'with Content-Length').toBe(413);
        expect(((await answer.json()) as { error: string }).error).toBe('invalid_request');
      }
    });

    test('an access token whose grant is gone is refused with invalid_token', async () => {
      const tokens = await miniProgramLogin(panda);
      expect((await call(bridge, 'check-session', tokens.access_token)).status).toBe(200);
      const { oidcAdapter } = bridge.server.stores;
      const stored = await oidcAdapter('AccessToken').find(tokens.access_token);
      expect(stored?.grantId).toEqual(expect.any(String));
      // Only the grant: the token itself is still stored, unexpired.
      await oidcAdapter('Grant').destroy(stored?.grantId as string);
      expect(await oidcAdapter('AccessToken').find(tokens.access_token)).toBeDefined();
      const refused = await call(bridge, 'check-session', tokens.access_token);
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe('invalid_token');
      expect(refused.headers.get('www-authenticate')).toContain('invalid_token');
    });

    test('a wrong AppSecret (40125) is a server_error, logged once by us, not again by the engine', async () => {
      const lines = (msg: string) => logLines(bridge, { msg });
      const ours = lines('mini program login failed: check the app configuration').length;
      const engine = lines('oidc server_error').length;
      await injectFault(bridge, { api: 'sns/jscode2session', errcode: 40125, times: 1 });
      const answer = await tokenRequest(bridge, {
        grant_type: TOKEN_EXCHANGE,
        subject_token: await wxLogin(bridge, panda),
        subject_token_type: JS_CODE,
      });
      expect(answer.status).toBe(500);
      expect(answer.body.error).toBe('server_error');
      expect(answer.body.error_description).toBe(
        "WeChat refused this server's own credentials for the mini program: an administrator must fix its configuration (the server log says why); retrying will not help",
      );
      const logged = lines('mini program login failed: check the app configuration');
      expect(logged).toHaveLength(ours + 1);
      expect(logged.at(-1)).toContain('"errcode":40125');
      expect(lines('oidc server_error')).toHaveLength(engine);
    });

    test('an errcode jscode2session does not document (40002) is logged as an answer the server cannot use, not as its configuration', async () => {
      await injectFault(bridge, { api: 'sns/jscode2session', errcode: 40002, times: 1 });
      const answer = await tokenRequest(bridge, {
        grant_type: TOKEN_EXCHANGE,
        subject_token: await wxLogin(bridge, panda),
        subject_token_type: JS_CODE,
      });
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({
        error: 'server_error',
        error_description: 'WeChat answered in a form this server cannot use; the server log says why',
      });
      const line = logLines(bridge, { text: '"errcode":40002' }).at(-1);
      expect(JSON.parse(line as string)).toMatchObject({
        level: 'error',
        msg: 'mini program login failed: WeChat answered in a form this server cannot use',
        failure: 'unexpected',
      });
    });

    test.each([
      { name: 'an invalid code (40029)', errcode: 40029, error: 'invalid_request', status: 400, calls: 1 },
      { name: 'a used code (40163)', errcode: 40163, error: 'invalid_request', status: 400, calls: 1 },
      {
        name: "WeChat's risk control (40226)",
        errcode: 40226,
        error: 'invalid_request',
        status: 400,
        calls: 1,
      },
      {
        name: 'a restricted account (50002)',
        errcode: 50002,
        error: 'invalid_request',
        status: 400,
        calls: 1,
      },
      {
        name: 'the rate limit (45011)',
        errcode: 45011,
        error: 'temporarily_unavailable',
        status: 503,
        calls: 1,
      },
      {
        name: 'the daily quota (45009)',
        errcode: 45009,
        error: 'temporarily_unavailable',
        status: 503,
        calls: 1,
      },
      {
        name: 'a system error (-1) twice',
        errcode: -1,
        error: 'temporarily_unavailable',
        status: 503,
        calls: 2,
      },
    ])(
      '$name is answered $error, with jscode2session called $calls time(s)',
      async ({ errcode, error, status, calls }) => {
        await injectFault(bridge, { api: 'sns/jscode2session', errcode, times: 3 });
        const answer = await tokenRequest(bridge, {
          grant_type: TOKEN_EXCHANGE,
          subject_token: await wxLogin(bridge, panda),
          subject_token_type: JS_CODE,
        });
        remember(answer.body);
        expect(answer.status).toBe(status);
        expect(answer.body.error).toBe(error);
        expect(answer.body.error_description).toEqual(expect.any(String));
        // A spent (or possibly spent) wx.login code is tried again only after WeChat answered busy.
        expect(await pendingFaults(bridge, 'sns/jscode2session')).toBe(3 - calls);
        await fetch(`${bridge.sandboxUrl}/sandbox/faults`, { method: 'DELETE' });
        if (errcode === 40226 || errcode === 50002) {
          expect(answer.body.error_description).toContain(
            `risk control refused this login (errcode ${errcode}: ${errcode === 40226 ? 'a risky login' : 'a restricted account'}); do not retry`,
          );
        }
        if (status === 503) expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
        if (errcode === 45011) expect(answer.headers.get('retry-after')).toBe('60');
        // Until the quota starts again at midnight China time: at least a minute, at most a day.
        if (errcode === 45009) expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(60);
        if (errcode === 45009) expect(Number(answer.headers.get('retry-after'))).toBeLessThanOrEqual(86_400);
      },
    );

    test('a busy answer (-1) from jscode2session is retried once, as WeChat documents, and the login completes', async () => {
      await injectFault(bridge, { api: 'sns/jscode2session', errcode: -1, times: 1 });
      const tokens = await miniProgramLogin(panda);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
      expect(await pendingFaults(bridge, 'sns/jscode2session')).toBe(0);
    });

    test('a reused or made-up wx.login code is an invalid subject_token, invalid_request (RFC 8693), through openid-client', async () => {
      const code = await wxLogin(bridge, panda);
      await exchangeJsCode(mp, code);
      await expect(exchangeJsCode(mp, code)).rejects.toMatchObject({ error: 'invalid_request' });
      await expect(exchangeJsCode(mp, 'made-up-code')).rejects.toMatchObject({ error: 'invalid_request' });
    });

    test('a malformed exchange request is invalid_request', async () => {
      const code = await wxLogin(bridge, panda);
      const requests: Array<Record<string, string>> = [
        { grant_type: TOKEN_EXCHANGE, subject_token: code },
        {
          grant_type: TOKEN_EXCHANGE,
          subject_token: code,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        },
        { grant_type: TOKEN_EXCHANGE, subject_token_type: JS_CODE },
        {
          grant_type: TOKEN_EXCHANGE,
          subject_token: code,
          subject_token_type: JS_CODE,
          actor_token: 'x',
          actor_token_type: JS_CODE,
        },
      ];
      for (const params of requests) {
        const answer = await tokenRequest(bridge, params);
        expect(answer.status).toBe(400);
        expect(answer.body.error).toBe('invalid_request');
      }
    });

    test('without a unionid from WeChat, someone who logged in through this mini program before keeps their sub; nobody new gets in', async () => {
      const known = await createSandboxUser(bridge, 'Known Person');
      const stranger = await createSandboxUser(bridge, 'New Person');
      const first = await miniProgramLogin(known);
      expect(first.claims()?.sub).toBe(known.unionid);
      await setBoundToOpenPlatform(bridge, MINI_PROGRAM_APP.appid, false);
      try {
        // A new session key (as from another device): the one this login gets must be the one kept.
        const code = await wxLogin(bridge, known, { rotate: true });
        const again = remember(await exchangeJsCode(mp, code, { scope: 'openid profile offline_access' }));
        for (const secret of [code, again.access_token, again.refresh_token ?? '']) secrets.add(secret);
        expect(again.claims()?.sub).toBe(known.unionid);
        const userinfo = await oidc.fetchUserInfo(mp, again.access_token, known.unionid);
        expect(userinfo.sub).toBe(known.unionid);
        // The session key of this wx.login was kept, as on any login: check-session finds it current.
        expect((await call(bridge, 'check-session', again.access_token)).body).toEqual({ valid: true });
        expect(bridge.logs.join('')).toContain('"unionidFrom":"stored_identity"');
        const accounts = await bridge.server.stores.db
          .selectFrom('accounts')
          .select('subject')
          .where('subject', 'in', [known.unionid, known.openids[MINI_PROGRAM_APP.appid]!])
          .execute();
        expect(accounts).toEqual([{ subject: known.unionid }]);

        const strangerCode = await wxLogin(bridge, stranger);
        secrets.add(strangerCode);
        const refused = await tokenRequest(bridge, {
          grant_type: TOKEN_EXCHANGE,
          subject_token: strangerCode,
          subject_token_type: JS_CODE,
        });
        expect(refused.status).toBe(400);
        expect(refused.body.error).toBe('invalid_request');
        expect(refused.body.error_description).toContain('WeChat named no unionid');
        expect(refused.body.error_description).toContain('not logged in through this mini program before');
        expect(await accountOf(stranger)).toBeUndefined();
      } finally {
        await setBoundToOpenPlatform(bridge, MINI_PROGRAM_APP.appid, true);
      }
    });

    test('a mini program without a unionid (not bound to the Open Platform) is refused, with no account', async () => {
      const person = await createSandboxUser(bridge, 'Unbound Person');
      const answer = await tokenRequest(bridge, {
        client_id: UNBOUND_CLIENT.client_id,
        grant_type: TOKEN_EXCHANGE,
        subject_token: await wxLogin(bridge, person, { appid: UNBOUND_MINI_PROGRAM_APP.appid }),
        subject_token_type: JS_CODE,
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('invalid_request');
      expect(answer.body.error_description).toContain(
        'WeChat named no unionid for this person and they have not logged in through this mini program before',
      );
      expect(answer.body.error_description).toContain('not bound to a WeChat Open Platform account');
      expect(bridge.logs.join('')).toContain('bind this app to your WeChat Open Platform account');
      expect(await accountOf(person)).toBeUndefined();
    });

    test('the session key never appears in a response, a log line, a database row or a Redis value', async () => {
      sessionKeys.add(await currentSessionKey(bridge, panda));
      const person = await createSandboxUser(bridge, 'Secret Keeper');
      await miniProgramLogin(person);
      sessionKeys.add(await currentSessionKey(bridge, person));
      expect(sessionKeys.size).toBeGreaterThan(1);
      const forms = [...sessionKeys].flatMap((key) => [
        key,
        encodeURIComponent(key),
        Buffer.from(key, 'base64').toString('hex'),
        Buffer.from(key, 'base64').toString('base64url'),
      ]);

      const db = bridge.server.stores.db;
      const rows: string[] = [];
      const tables = ['accounts', 'identities', 'oidc_artifacts', 'kv_entries'] as const;
      for (const table of storage === 'embedded' ? tables.slice(0, 2) : tables) {
        const result = await db.selectFrom(table).selectAll().execute();
        rows.push(...result.map((row) => JSON.stringify(row)));
      }
      if (storage === 'embedded') {
        // Artifacts and entries live in a SQLite file of their own there.
        for (const table of ['oidc_artifacts', 'kv_entries'] as const)
          rows.push(...embeddedArtifactRows(bridge.server.stores, table).map((r) => JSON.stringify(r)));
      }
      const redisValues: string[] = [];
      if (storage === 'postgres+redis') {
        const redis = new Redis(testRedisUrl(), { lazyConnect: true });
        await redis.connect();
        try {
          for (const key of await scanKeys(redis, bridge.server.config.storage.redisKeyPrefix)) {
            const dumped = await redis.dumpBuffer(key);
            redisValues.push(dumped?.toString('latin1') ?? '');
            if ((await redis.type(key)) === 'string') redisValues.push((await redis.get(key)) ?? '');
          }
        } finally {
          redis.disconnect();
        }
        expect(redisValues.length).toBeGreaterThan(0);
      }
      expect(rows.length).toBeGreaterThan(0);
      // The app access token (stable_token answers the current one again) is a secret too.
      const stable = await fetch(`${bridge.sandboxUrl}/cgi-bin/stable_token`, {
        method: 'POST',
        body: JSON.stringify({
          grant_type: 'client_credential',
          appid: MINI_PROGRAM_APP.appid,
          secret: MINI_PROGRAM_APP.secret,
        }),
      });
      const appToken = (JSON.parse(await stable.text()) as { access_token: string }).access_token;
      forms.push(appToken);
      const haystacks = {
        responses: answers.join('\n'),
        logs: bridge.logs.join(''),
        rows: rows.join('\n'),
        redis: redisValues.join('\n'),
      };
      for (const [where, text] of Object.entries(haystacks)) {
        for (const form of forms)
          expect(text.includes(form), `${where} contains a session key or app token`).toBe(false);
      }
      for (const secret of secrets) if (secret) expect(haystacks.logs.includes(secret)).toBe(false);
    });
  });
}
