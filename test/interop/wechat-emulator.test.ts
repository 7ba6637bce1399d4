import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Bridge,
  MINI_PROGRAM_CLIENT,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  type TestApp,
} from '../helpers/bridge.ts';
import { attributeOf, decodeEntities, type Hop, TestBrowser, USER_AGENTS } from '../helpers/browser.ts';
import {
  authorizationRequest,
  consentAction,
  continueToRp,
  relyingParty,
  type StartedLogin,
  startLogin,
} from '../helpers/flow.ts';
import { DEBIAN_PYTHON, freePort, interopAvailable, randomSecret, TestProcess } from '../helpers/interop.ts';
import { callMiniProgram, exchangeJsCode, miniProgramClient } from '../helpers/mini-program.ts';

/**
 * The bridge against a WeChat emulator written from wechat-api.md alone (wechat_emulator.py, Python's
 * standard library), not from our sandbox: JSON served as text/plain with "\/" escapes, errors as
 * HTTP 200 errcode bodies, single-use short-lived codes, connect_redirect=1 and #wechat_redirect,
 * unionids only for apps bound to an Open Platform account. What passes here works with anything
 * that behaves as WeChat documents, not only with our sandbox's habits.
 */
const available = interopAvailable('python3', existsSync(DEBIAN_PYTHON), 'python3');

const SCRIPT = fileURLToPath(new URL('./wechat_emulator.py', import.meta.url));
/** The one Open Platform account the bound apps belong to (the emulator's name for it). */
const OPEN_PLATFORM = 'open-platform-1';

/** The apps, with secrets of this run only; the emulator knows them as WeChat's console would. */
const WEBSITE: TestApp = { kind: 'website', appid: 'wx5e6b5c1d2a3f4e01', secret: randomSecret() };
const OFFICIAL_ACCOUNT: TestApp = {
  kind: 'official_account',
  appid: 'wx5e6b5c1d2a3f4e02',
  secret: randomSecret(),
};
const MINI_PROGRAM: TestApp = { kind: 'mini_program', appid: 'wx5e6b5c1d2a3f4e03', secret: randomSecret() };
const UNBOUND_MINI_PROGRAM: TestApp = {
  kind: 'mini_program',
  appid: 'wx5e6b5c1d2a3f4e04',
  secret: randomSecret(),
};
const APPS = [WEBSITE, OFFICIAL_ACCOUNT, MINI_PROGRAM, UNBOUND_MINI_PROGRAM];
const EMULATOR_APPS = APPS.map((app) => ({
  ...app,
  open_platform: app === UNBOUND_MINI_PROGRAM ? null : OPEN_PLATFORM,
  domains: ['127.0.0.1'],
}));

/** The mini program's public client (client_id as helpers/mini-program.ts expects), bound to ours. */
const MP_CLIENT = { ...MINI_PROGRAM_CLIENT, wechat_mini_program_appid: MINI_PROGRAM.appid };
const UNBOUND_MP_CLIENT = {
  ...MINI_PROGRAM_CLIENT,
  client_id: 'emulator-unbound-mini-program',
  wechat_mini_program_appid: UNBOUND_MINI_PROGRAM.appid,
};

/** A person as the emulator's control API describes them. */
interface Person {
  id: string;
  nickname: string;
  unionid: string;
  openids: Record<string, string>;
  headimgurl: string;
}

interface ApiCall {
  api: string;
  appid: string;
  errcode: number;
}

/** The emulator process and its control API (under /_control/, never a WeChat path). */
class Emulator {
  readonly url: string;
  readonly process: TestProcess;

  constructor(url: string, process: TestProcess) {
    this.url = url;
    this.process = process;
  }

  async control<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}/_control/${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`emulator ${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  createPerson(nickname: string, options: { snapshot?: boolean } = {}): Promise<Person> {
    return this.control('POST', 'users', { nickname, ...options });
  }

  settings(patch: Record<string, unknown>): Promise<unknown> {
    return this.control('PATCH', 'settings', patch);
  }

  /** The person's phone scans the QR code `uuid` and decides; where the QR page then sends the browser. */
  scan(uuid: string, person: Person, decision: 'allow' | 'deny' = 'allow') {
    return this.control<{ wx_errcode: number; redirect: string | null }>('POST', 'qr/scan', {
      uuid,
      user: person.id,
      decision,
    });
  }

  async calls(): Promise<ApiCall[]> {
    return (await this.control<{ calls: ApiCall[] }>('GET', 'calls')).calls;
  }

  /** Every code, token and session key the emulator issued. */
  async issued(): Promise<string[]> {
    return Object.values(await this.control<Record<string, string[]>>('GET', 'issued')).flat();
  }

  /** Calls of `api` made since `before` (a calls() length). */
  async callsSince(before: number, api: string): Promise<ApiCall[]> {
    return (await this.calls()).slice(before).filter((call) => call.api === api);
  }
}

async function startEmulator(): Promise<Emulator> {
  const port = await freePort();
  const process = new TestProcess(
    'wechat_emulator.py',
    DEBIAN_PYTHON,
    ['-I', SCRIPT, '--port', String(port)],
    {
      env: {
        PATH: '/usr/bin:/bin',
        LANG: 'C.UTF-8',
        PYTHONDONTWRITEBYTECODE: '1',
        WECHAT_EMULATOR_APPS: JSON.stringify(EMULATOR_APPS),
      },
      secrets: APPS.map((app) => app.secret),
    },
  );
  await process.waitUntilListening(port, () => process.printed(`listening on 127.0.0.1:${port}`));
  return new Emulator(`http://127.0.0.1:${port}`, process);
}

/** The uuid of the QR code the bridge's login page embeds (the emulator's qrconnect iframe). */
async function qrUuid(login: StartedLogin): Promise<string> {
  const frame = await login.browser.request(login.qrUrl.href);
  expect(frame.status).toBe(200);
  const uuid = attributeOf(frame.body, 'wx-qrcode', 'data-uuid');
  if (!uuid) throw new Error(`no QR code in WeChat's page: ${frame.body.slice(0, 400)}`);
  return uuid;
}

/** What the client hears after the person presses "return to the application" on our error page. */
async function abortFromPage(browser: TestBrowser, page: Hop): Promise<URL> {
  const reason = page.body.match(/name="reason" value="([^"]+)"/)?.[1];
  const uid = new URL(page.url).pathname.split('/')[2];
  const hop = await browser.follow(`${new URL(page.url).origin}/interaction/${uid}/abort`, {
    method: 'POST',
    form: { reason: reason ?? '' },
    stopAt: RP.redirect_uris[0],
  });
  return new URL(hop.location ?? 'about:blank');
}

/** One login in WeChat's in-app browser, as far as it went. */
interface WeChatLogin {
  browser: TestBrowser;
  checks: Awaited<ReturnType<typeof authorizationRequest>>['checks'];
  /** The scope of every authorize trip the bridge sent the browser on, in order. */
  trips: string[];
  /** Those trips' URLs, as WeChat would open them again. */
  tripUrls: string[];
  /** How many times WeChat's snsapi_userinfo popup asked the person. */
  popups: number;
  /** How many times our page before the profile request was shown. */
  authorizePages: number;
  redirect: URL | undefined;
  last: Hop;
}

for (const storage of STORAGE_SETUPS) {
  const storageReady = available && (await storageAvailable(storage));

  describe.skipIf(!storageReady)(`the bridge against an independent WeChat emulator (${storage})`, () => {
    let emulator: Emulator;
    let bridge: Bridge;
    let rp: oidc.Configuration;
    /** Every page of the bridge a browser saw, searched for codes and tokens at the end. */
    const pages: string[] = [];
    /** Secrets of the relying parties' side, searched for in the logs at the end. */
    const seen = new Set<string>([RP.client_secret, ...APPS.map((app) => app.secret)]);

    const keep = (hop: Hop): Hop => {
      if (hop.url.startsWith(bridge.url)) pages.push(hop.body);
      return hop;
    };

    beforeAll(async () => {
      emulator = await startEmulator();
      bridge = await startBridge({
        storage,
        apps: APPS,
        configure: (config) => ({
          ...config,
          wechat: { ...config.wechat, openBaseUrl: emulator.url, apiBaseUrl: emulator.url },
          sandbox: { ...config.sandbox, enabled: false },
          clients: [...config.clients, MP_CLIENT, UNBOUND_MP_CLIENT],
        }),
      });
      rp = await relyingParty(bridge);
      // A test cannot listen on port 80, and WeChat refuses an Official Account redirect_uri with a
      // port (10003): the emulator's one concession, switched on here and checked below.
      await emulator.settings({ allow_redirect_port: true });
    });
    afterAll(async () => {
      await bridge?.close();
      await emulator?.process.stop();
    });

    /** A website QR login up to the relying party's redirect, the person allowing on their phone. */
    async function websiteLogin(person: Person) {
      const login = await startLogin(rp);
      keep(login.loginPage);
      const scanned = await emulator.scan(await qrUuid(login), person);
      expect(scanned.wx_errcode).toBe(405);
      const callback = keep(await login.browser.request(scanned.redirect as string));
      const redirect = await continueToRp(login, callback);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      seen.add(tokens.access_token);
      return { login, redirect, tokens };
    }

    /**
     * A login in WeChat's in-app browser (phone UA), the browser being `person`'s WeChat: every
     * redirect, WeChat's popup (allowed), our page before it and our consent page, up to the relying
     * party's redirect or a page that stops the login.
     */
    async function weChatLogin(person: Person, options: { deny?: boolean } = {}): Promise<WeChatLogin> {
      const browser = new TestBrowser({ userAgent: USER_AGENTS.wechatIos });
      await browser.request(`${emulator.url}/_control/wechat-browser?user=${person.id}`);
      const { url, checks } = await authorizationRequest(rp);
      return followInWeChat(browser, checks, url.href, options);
    }

    /** From `href` on, what the person's WeChat browser does (see weChatLogin). */
    async function followInWeChat(
      browser: TestBrowser,
      checks: WeChatLogin['checks'],
      href: string,
      options: { deny?: boolean } = {},
    ): Promise<WeChatLogin> {
      const trips: string[] = [];
      const tripUrls: string[] = [];
      let popups = 0;
      let authorizePages = 0;
      const go = async (next: string, init?: Parameters<TestBrowser['request']>[1]) => {
        const target = new URL(next);
        if (target.pathname === '/connect/oauth2/authorize' && !target.searchParams.has('connect_redirect')) {
          trips.push(target.searchParams.get('scope') ?? '');
          tripUrls.push(next);
        }
        return keep(await browser.request(next, init));
      };
      let hop = await go(href);
      for (let i = 0; i < 30; i++) {
        const done = { browser, checks, trips, tripUrls, popups, authorizePages, last: hop };
        if (hop.location?.startsWith(RP.redirect_uris[0] as string))
          return { ...done, redirect: new URL(hop.location) };
        if (hop.location) {
          hop = await go(hop.location);
          continue;
        }
        if (hop.body.includes('id="wx-oauth2-form"')) {
          popups += 1;
          const form: Record<string, string> = { decision: options.deny ? 'deny' : 'allow' };
          for (const [, name = '', value = ''] of hop.body.matchAll(
            /<input type="hidden" name="([^"]+)" value="([^"]*)">/g,
          ))
            form[name] = decodeEntities(value);
          hop = await go(new URL('/connect/oauth2/authorize_reply', hop.url).href, { form });
          continue;
        }
        const authorize = attributeOf(hop.body, 'wechat-authorize', 'href');
        if (authorize) {
          authorizePages += 1;
          hop = await go(authorize);
          continue;
        }
        const allow = consentAction(hop);
        if (allow) {
          hop = await go(allow, { method: 'POST', form: {} });
          continue;
        }
        return { ...done, redirect: undefined };
      }
      throw new Error('the WeChat login went round in circles');
    }

    async function weChatLoginTokens(person: Person) {
      const login = await weChatLogin(person);
      if (!login.redirect)
        throw new Error(
          `stuck at ${login.last.url} (${login.last.status}): ${login.last.body.slice(0, 400)}`,
        );
      const tokens = await oidc.authorizationCodeGrant(rp, login.redirect, login.checks);
      seen.add(tokens.access_token);
      return { login, tokens };
    }

    const accountsOf = (unionid: string) =>
      bridge.server.stores.db.selectFrom('accounts').select('id').where('subject', '=', unionid).execute();
    const identitiesOf = (unionid: string) =>
      bridge.server.stores.db
        .selectFrom('identities')
        .select(['appid', 'openid'])
        .where('unionid', '=', unionid)
        .orderBy('appid')
        .execute();

    test('website QR login: the ID token sub is the emulator person’s unionid, the claims are sane', async () => {
      // A "/" and non-ASCII in the nickname: WeChat sends "\/" escapes and raw UTF-8.
      const panda = await emulator.createPerson('🐼 熊猫/Panda');
      const before = (await emulator.calls()).length;
      const { login, tokens } = await websiteLogin(panda);

      // What the bridge sent the browser to: wxLogin.js's iframe URL, which the emulator accepted.
      const asked = login.qrUrl.searchParams;
      expect(asked.get('appid')).toBe(WEBSITE.appid);
      expect(asked.get('scope')).toBe('snsapi_login');
      expect(asked.get('login_type')).toBe('jssdk');
      // And the page's full-page fallback (qrconnect with response_type=code and #wechat_redirect).
      const fallback = attributeOf(login.loginPage.body, 'wechat-fallback', 'href') as string;
      expect(new URL(fallback).hash).toBe('#wechat_redirect');
      expect((await login.browser.request(fallback)).body).toContain('id="wx-qrcode"');

      const claims = tokens.claims();
      expect(claims?.sub).toBe(panda.unionid);
      expect(claims?.iss).toBe(bridge.url);
      expect(claims?.aud).toBe(RP.client_id);
      expect(claims?.nonce).toBe(login.checks.expectedNonce);
      expect(claims?.exp).toBeGreaterThan(Math.floor(Date.now() / 1000));
      const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, panda.unionid);
      expect(userinfo).toMatchObject({
        sub: panda.unionid,
        name: '🐼 熊猫/Panda',
        nickname: '🐼 熊猫/Panda',
      });
      // The avatar was fetched from WeChat's image host (the emulator) and is served by the bridge.
      expect(userinfo.picture).toMatch(new RegExp(`^${bridge.url}/avatars/`));
      expect((await fetch(userinfo.picture as string)).headers.get('content-type')).toBe('image/png');

      // One code exchange and one profile read, both answered without an errcode.
      expect(await emulator.callsSince(before, 'sns/oauth2/access_token')).toEqual([
        { api: 'sns/oauth2/access_token', appid: WEBSITE.appid, errcode: 0 },
      ]);
      expect((await emulator.callsSince(before, 'sns/userinfo')).map((c) => c.errcode)).toEqual([0]);
    });

    test('Official Account in WeChat’s browser: silent snsapi_base, our page, the snsapi_userinfo popup; then silent', async () => {
      const cat = await emulator.createPerson('🐱 小猫 Cat');
      const first = await weChatLoginTokens(cat);
      expect(first.login.trips).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(first.login.authorizePages).toBe(1);
      expect(first.login.popups).toBe(1);
      expect(first.tokens.claims()?.sub).toBe(cat.unionid);
      const userinfo = await oidc.fetchUserInfo(rp, first.tokens.access_token, cat.unionid);
      expect(userinfo.nickname).toBe('🐱 小猫 Cat');

      // Another day, another browser session, the same WeChat: snsapi_base only, no popup, no profile read.
      const before = (await emulator.calls()).length;
      const again = await weChatLoginTokens(cat);
      expect(again.login.trips).toEqual(['snsapi_base']);
      expect(again.login.popups).toBe(0);
      expect(again.login.authorizePages).toBe(0);
      expect(again.tokens.claims()?.sub).toBe(cat.unionid);
      expect(await emulator.callsSince(before, 'sns/userinfo')).toEqual([]);
      // A base-scope token never went to sns/userinfo (WeChat would answer 48001).
      expect((await emulator.calls()).filter((call) => call.errcode === 48001)).toEqual([]);
    });

    test('the same person through the website app, the Official Account and the mini program: one account, one sub', async () => {
      const dog = await emulator.createPerson('🐶 小狗 Dog');
      const web = await websiteLogin(dog);
      const inWeChat = await weChatLoginTokens(dog);
      expect(web.tokens.claims()?.sub).toBe(dog.unionid);
      expect(inWeChat.tokens.claims()?.sub).toBe(dog.unionid);
      // The base trip found nobody under the Official Account's openid: the popup gave the unionid.
      expect(inWeChat.login.trips).toEqual(['snsapi_base', 'snsapi_userinfo']);

      // The mini program, as README "Mini program integration" has it: wx.login, then the token
      // exchange of its code at the token endpoint.
      const mp = await miniProgramClient(bridge);
      const { code } = await emulator.control<{ code: string }>('POST', 'mini-program/login', {
        appid: MINI_PROGRAM.appid,
        user: dog.id,
      });
      const tokens = await exchangeJsCode(mp, code, { scope: 'openid profile phone offline_access' });
      seen.add(tokens.access_token).add(tokens.refresh_token ?? '');
      expect(tokens.claims()?.sub).toBe(dog.unionid);
      expect(tokens.claims()?.aud).toBe(MP_CLIENT.client_id);

      expect(await accountsOf(dog.unionid)).toHaveLength(1);
      const appids = [WEBSITE.appid, OFFICIAL_ACCOUNT.appid, MINI_PROGRAM.appid];
      expect(await identitiesOf(dog.unionid)).toEqual(
        appids.map((appid) => ({ appid, openid: dog.openids[appid] })),
      );
    });

    test('mini program: phone number (stable_token, getuserphonenumber) and session check (checksession HMAC)', async () => {
      const bird = await emulator.createPerson('🐦 小鸟 Bird');
      const mp = await miniProgramClient(bridge);
      const wxLogin = async (rotate = false) =>
        (
          await emulator.control<{ code: string }>('POST', 'mini-program/login', {
            appid: MINI_PROGRAM.appid,
            user: bird.id,
            rotate,
          })
        ).code;
      const tokens = await exchangeJsCode(mp, await wxLogin(), { scope: 'openid profile phone' });
      seen.add(tokens.access_token);
      expect(tokens.claims()?.sub).toBe(bird.unionid);

      const phone = await emulator.control<{ code: string }>('POST', 'mini-program/phone-code', {
        appid: MINI_PROGRAM.appid,
        user: bird.id,
        purePhoneNumber: '13800138000',
      });
      const before = (await emulator.calls()).length;
      const answer = await callMiniProgram(bridge, 'phone-number', tokens.access_token, { code: phone.code });
      expect(answer.status, answer.text).toBe(200);
      // WeChat sent countryCode as the number 86 (wechat-api.md §10.1's example).
      expect(answer.body).toEqual({ phone_number: '+8613800138000', phone_number_verified: true });
      expect((await emulator.callsSince(before, 'cgi-bin/stable_token')).map((c) => c.errcode)).toEqual([0]);
      // The same button code again: WeChat's 40029, the client told to ask again.
      const reused = await callMiniProgram(bridge, 'phone-number', tokens.access_token, { code: phone.code });
      expect(reused.status).toBe(400);
      expect(reused.body.error).toBe('invalid_phone_code');

      const valid = await callMiniProgram(bridge, 'check-session', tokens.access_token);
      expect(valid.status, valid.text).toBe(200);
      expect(valid.body).toEqual({ valid: true });
      // Another wx.login replaced WeChat's session key: checksession answers 87009.
      await wxLogin(true);
      const stale = await callMiniProgram(bridge, 'check-session', tokens.access_token);
      expect(stale.status).toBe(400);
      expect(stale.body.error).toBe('wx_login_required');
      expect((await emulator.calls()).slice(before).map((c) => `${c.api} ${c.errcode}`)).toContain(
        'wxa/checksession 87009',
      );
    });

    test('a code WeChat already took (40163): a readable page, and server_error for the client', async () => {
      const fox = await emulator.createPerson('🦊 狐狸 Fox');
      const login = await startLogin(rp);
      const scanned = await emulator.scan(await qrUuid(login), fox);
      const callback = new URL(scanned.redirect as string);
      const code = callback.searchParams.get('code') as string;
      // Someone spent the code first (a leaked callback URL): WeChat exchanges a code once.
      const spent = await fetch(
        `${emulator.url}/sns/oauth2/access_token?${new URLSearchParams({
          appid: WEBSITE.appid,
          secret: WEBSITE.secret,
          code,
          grant_type: 'authorization_code',
        })}`,
      );
      expect(spent.headers.get('content-type')).toBe('text/plain');
      expect(JSON.parse(await spent.text())).toHaveProperty('access_token');

      const before = (await emulator.calls()).length;
      const page = keep(await login.browser.request(callback.href));
      expect(page.status).toBe(400);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.body).toContain('微信授权码无效或已过期');
      expect(page.body).not.toContain(code);
      expect((await emulator.callsSince(before, 'sns/oauth2/access_token')).map((c) => c.errcode)).toEqual([
        40163,
      ]);
      const redirect = await abortFromPage(login.browser, page);
      expect(redirect.searchParams.get('error')).toBe('server_error');
      expect(redirect.searchParams.get('state')).toBe(login.checks.expectedState);
      expect(await accountsOf(fox.unionid)).toHaveLength(0);
    });

    test('a code past its ten minutes (WeChat answers 40029): the same page', async () => {
      const owl = await emulator.createPerson('🦉 猫头鹰 Owl');
      const login = await startLogin(rp);
      const scanned = await emulator.scan(await qrUuid(login), owl);
      // WeChat's clock moves on; the bridge's does not (its interaction lives on).
      await emulator.control('POST', 'clock', { advance: 601 });
      const before = (await emulator.calls()).length;
      const page = keep(await login.browser.request(scanned.redirect as string));
      expect(page.status).toBe(400);
      expect(page.body).toContain('微信授权码无效或已过期');
      expect((await emulator.callsSince(before, 'sns/oauth2/access_token')).map((c) => c.errcode)).toEqual([
        40029,
      ]);
      expect((await abortFromPage(login.browser, page)).searchParams.get('error')).toBe('server_error');
    });

    test('an app not bound to the Open Platform names no unionid: the documented refusals', async () => {
      // The website app unbound in WeChat's console: its token and userinfo answers lose the unionid.
      await emulator.control('PATCH', `apps/${WEBSITE.appid}`, { open_platform: null });
      try {
        const newt = await emulator.createPerson('🦎 蝾螈 Newt');
        const login = await startLogin(rp);
        const scanned = await emulator.scan(await qrUuid(login), newt);
        const page = keep(await login.browser.request(scanned.redirect as string));
        expect(page.status).toBe(400);
        expect(page.body).toContain('未绑定微信开放平台账号');
        expect(bridge.logs.join('')).toContain('bind this app to your WeChat Open Platform account');
        expect((await abortFromPage(login.browser, page)).searchParams.get('error')).toBe('server_error');
        const nobody = await bridge.server.stores.db
          .selectFrom('identities')
          .select('openid')
          .where('openid', '=', newt.openids[WEBSITE.appid] as string)
          .execute();
        expect(nobody).toHaveLength(0);
      } finally {
        await emulator.control('PATCH', `apps/${WEBSITE.appid}`, { open_platform: OPEN_PLATFORM });
      }

      // A mini program never bound: jscode2session names no unionid; a new person gets invalid_request.
      const mole = await emulator.createPerson('鼹鼠 Mole');
      const { code } = await emulator.control<{ code: string }>('POST', 'mini-program/login', {
        appid: UNBOUND_MINI_PROGRAM.appid,
        user: mole.id,
      });
      const unbound = await oidc.discovery(
        new URL(bridge.url),
        UNBOUND_MP_CLIENT.client_id,
        undefined,
        oidc.None(),
        { execute: [oidc.allowInsecureRequests] },
      );
      const refused = await exchangeJsCode(unbound, code).then(
        () => undefined,
        (error: unknown) => error as oidc.ResponseBodyError,
      );
      expect(refused?.error).toBe('invalid_request');
    });

    test('the person declines on the phone (WeChat redirecting with the state only): access_denied', async () => {
      const yak = await emulator.createPerson('🐃 牦牛 Yak');
      // wechat-api.md §2 "User deny": older copies say redirect_uri?state=STATE, without a code.
      await emulator.settings({ deny_mode: 'state_only' });
      try {
        const login = await startLogin(rp);
        const scanned = await emulator.scan(await qrUuid(login), yak, 'deny');
        expect(scanned.wx_errcode).toBe(403);
        const callback = new URL(scanned.redirect as string);
        expect(callback.searchParams.has('code')).toBe(false);
        const page = keep(await login.browser.request(callback.href));
        expect(page.status).toBe(400);
        expect(page.body).toContain('你已拒绝微信授权');
        expect((await abortFromPage(login.browser, page)).searchParams.get('error')).toBe('access_denied');
      } finally {
        await emulator.settings({ deny_mode: 'no_redirect' });
      }
    });

    test('the person declines WeChat’s snsapi_userinfo popup (state only): access_denied', async () => {
      await emulator.settings({ deny_mode: 'state_only' });
      try {
        const login = await weChatLogin(await emulator.createPerson('🦔 刺猬 Hedgehog'), { deny: true });
        expect(login.redirect).toBeUndefined();
        expect(login.popups).toBe(1);
        expect(login.last.status).toBe(400);
        expect(login.last.body).toContain('你已拒绝微信授权');
        expect((await abortFromPage(login.browser, login.last)).searchParams.get('error')).toBe(
          'access_denied',
        );
      } finally {
        await emulator.settings({ deny_mode: 'no_redirect' });
      }
    });

    test('WeChat busy (-1) on the code exchange, without spending the code: one retry, and the login completes', async () => {
      const bee = await emulator.createPerson('🐝 蜜蜂 Bee');
      await emulator.control('POST', 'faults', { api: 'sns/oauth2/access_token', errcode: -1, times: 1 });
      const before = (await emulator.calls()).length;
      const { tokens } = await websiteLogin(bee);
      expect(tokens.claims()?.sub).toBe(bee.unionid);
      expect((await emulator.callsSince(before, 'sns/oauth2/access_token')).map((c) => c.errcode)).toEqual([
        -1, 0,
      ]);
    });

    test('the older mini-program unionid rule: a newcomer is refused until another bound app has their consent', async () => {
      const ant = await emulator.createPerson('🐜 蚂蚁 Ant');
      const mp = await miniProgramClient(bridge);
      const wxLogin = async () =>
        (
          await emulator.control<{ code: string }>('POST', 'mini-program/login', {
            appid: MINI_PROGRAM.appid,
            user: ant.id,
          })
        ).code;
      await emulator.settings({ mp_unionid: 'legacy' });
      try {
        const refused = await exchangeJsCode(mp, await wxLogin()).then(
          () => undefined,
          (error: unknown) => error as oidc.ResponseBodyError,
        );
        expect(refused?.error).toBe('invalid_request');
        // The person logs in on the website once: WeChat now names their unionid to the mini program.
        await websiteLogin(ant);
        const tokens = await exchangeJsCode(mp, await wxLogin());
        seen.add(tokens.access_token).add(tokens.refresh_token ?? '');
        expect(tokens.claims()?.sub).toBe(ant.unionid);
      } finally {
        await emulator.settings({ mp_unionid: 'always' });
      }
    });

    test('a snapshot-page person (is_snapshotuser: 1) is not logged in, and nothing is created', async () => {
      const ghost = await emulator.createPerson('快照 Ghost', { snapshot: true });
      const login = await weChatLogin(ghost);
      expect(login.redirect).toBeUndefined();
      expect(login.trips).toEqual(['snsapi_base', 'snsapi_userinfo']);
      expect(login.last.status).toBe(400);
      expect(login.last.body).toContain('使用完整服务');
      expect(await accountsOf(ghost.unionid)).toHaveLength(0);

      // The person taps 使用完整服务: WeChat runs the same authorization (same state) for real.
      await emulator.control('PATCH', `users/${ghost.id}`, { snapshot: false });
      const full = await followInWeChat(login.browser, login.checks, login.tripUrls.at(-1) as string);
      expect(full.redirect, full.last.body.slice(0, 400)).toBeDefined();
      const tokens = await oidc.authorizationCodeGrant(rp, full.redirect as URL, login.checks);
      seen.add(tokens.access_token);
      expect(tokens.claims()?.sub).toBe(ghost.unionid);
    });

    test('WeChat delivers the callback twice (once from its servers): one exchange, one login', async () => {
      const elk = await emulator.createPerson('🦌 麋鹿 Elk');
      await emulator.settings({ deliver_twice: true });
      try {
        const before = (await emulator.calls()).length;
        const { login, tokens } = await weChatLoginTokens(elk);
        expect(tokens.claims()?.sub).toBe(elk.unionid);
        expect(login.trips).toEqual(['snsapi_base', 'snsapi_userinfo']);
        // Two codes (base, then userinfo), each exchanged once: the copies were not exchanged again.
        expect((await emulator.callsSince(before, 'sns/oauth2/access_token')).map((c) => c.errcode)).toEqual([
          0, 0,
        ]);
      } finally {
        await emulator.settings({ deliver_twice: false });
      }
    });

    test('WeChat refuses an Official Account redirect_uri with a port (10003), as the README warns', async () => {
      await emulator.settings({ allow_redirect_port: false });
      try {
        const login = await weChatLogin(await emulator.createPerson('港口 Port'));
        expect(login.redirect).toBeUndefined();
        expect(login.last.url.startsWith(emulator.url)).toBe(true);
        expect(login.last.body).toContain('10003');
      } finally {
        await emulator.settings({ allow_redirect_port: true });
      }
    });

    test('no secret, code or token reached the logs or the pages', async () => {
      const issued = await emulator.issued();
      expect(issued.length).toBeGreaterThan(20);
      const logs = bridge.logs.join('');
      expect(logs.length).toBeGreaterThan(0);
      const everything = [...seen, ...issued].filter((secret) => secret.length >= 16);
      for (const secret of everything) {
        expect(logs).not.toContain(secret);
        for (const body of pages) expect(body).not.toContain(secret);
      }
      // Nor the emulator's own output (it never prints request lines, which carry them).
      for (const secret of everything) expect(emulator.process.printed(secret)).toBe(false);
    });
  });
}
