import * as oidc from 'openid-client';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SECTION_DEFAULTS } from '../../src/config/defaults.ts';
import { ENGINE_MAX_BODY_BYTES } from '../../src/http/request-limits.ts';
import {
  type Bridge,
  type BridgeOptions,
  logLines,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  RP,
  startAnotherInstance,
  startBridge,
  storageAvailable,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  callbackFromWeChat,
  consentAction,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  interactionUid,
  loginAs,
  loginStarted,
  relyingParty,
  startLogin,
} from '../helpers/flow.ts';
import { callMiniProgram, exchangeJsCode, miniProgramClient, wxLogin } from '../helpers/mini-program.ts';
import { recordWrites } from '../helpers/redis.ts';

const available = await storageAvailable('postgres+redis');

const LIMITS = {
  maxBodyBytes: 4096,
  headersTimeout: 20,
  rateLimits: {
    enabled: true,
    interaction: { points: 3, durationSeconds: 600 },
    callback: { points: 2, durationSeconds: 600 },
    token: { points: 3, durationSeconds: 600 },
    miniProgram: { points: 2, durationSeconds: 600 },
  },
};

/** Login pages and callbacks limited far above what one test needs. */
const GENEROUS = {
  interaction: { points: 1000, durationSeconds: 600 },
  callback: { points: 1000, durationSeconds: 600 },
};

type LimitRules = Partial<Omit<typeof LIMITS.rateLimits, 'enabled'>>;

/** A bridge with LIMITS, the login pages and callbacks GENEROUS, and `rules` on top. */
function startWithLimits(storage: 'embedded' | 'postgres+redis', rules: LimitRules = {}): Promise<Bridge> {
  return startBridge({
    storage,
    configure: (config) => ({
      ...config,
      limits: { ...LIMITS, rateLimits: { ...LIMITS.rateLimits, ...GENEROUS, ...rules } },
    }),
  });
}

/** Two instances sharing PostgreSQL and Redis, the second answering under the first's issuer. */
async function startTwoInstances(options: BridgeOptions): Promise<[Bridge, Bridge]> {
  const first = await startBridge(options);
  try {
    const second = await startAnotherInstance(first, {
      configure: (config) => ({ ...config, issuer: first.url }),
    });
    return [first, second];
  } catch (error) {
    await first.close();
    throw error;
  }
}

/** Confidential clients the tests call with a wrong secret, each spending a count of its own. */
const WRONG_SECRET_CLIENTS = ['wrong-secret-client', 'par-client', 'case-client'].map((clientId) => ({
  ...RP,
  client_id: clientId,
  client_secret: `${clientId}-secret-0123456789abcdefghij`,
}));

function tokenRequest(base: string, body = 'grant_type=refresh_token&refresh_token=nope') {
  return fetch(`${base}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body,
  });
}

describe.skipIf(!available)('hardening: rate limits shared in Redis, request size, cookies', () => {
  let first: Bridge;
  let second: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    [first, second] = await startTwoInstances({
      storage: 'postgres+redis',
      // Registered clients whose wrong secrets the tests below send: each its own count.
      configure: (config) => ({
        ...config,
        limits: LIMITS,
        clients: [...config.clients, ...WRONG_SECRET_CLIENTS],
      }),
    });
    rp = await relyingParty(first);
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  test('the token endpoint answers 429 with Retry-After and an OAuth error once the limit is spent, across instances', async () => {
    expect((await tokenRequest(first.instanceUrl)).status).toBe(400);
    expect((await tokenRequest(second.instanceUrl)).status).toBe(400);
    expect((await tokenRequest(first.instanceUrl)).status).toBe(400);
    const limited = await tokenRequest(second.instanceUrl);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // A token endpoint answer as any other (RFC 6749 5.1): refused before the engine, all the same.
    expect(limited.headers.get('cache-control')).toBe('no-store');
    expect(limited.headers.get('pragma')).toBe('no-cache');
    expect(await limited.json()).toMatchObject({ error: 'temporarily_unavailable' });
    const metrics = await (await fetch(`${second.instanceUrl}/metrics`)).text();
    expect(metrics).toMatch(/http_rate_limited_total\{endpoint="token"\} 1/);
  });

  test("a 429 in place of a wrong client secret's 401 carries no Basic challenge", async () => {
    // Another key than the test above spends: this address with another registered client.
    const wrongSecret = () =>
      fetch(`${first.instanceUrl}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('wrong-secret-client:wrong').toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=refresh_token&refresh_token=nope',
      });
    for (let i = 0; i < 3; i++) {
      const refused = await wrongSecret();
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
    const limited = await wrongSecret();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('www-authenticate')).toBeNull();
    expect(await limited.json()).toMatchObject({ error: 'temporarily_unavailable' });
  });

  test("a browser-based client can read the token endpoint's 429, the first and those refused before the engine", async () => {
    const origin = 'https://spa.example';
    // A client id nobody registered (oidc-provider refuses a registered one's unknown origin first):
    // the address's own count, which no other test here spends.
    const failing = () =>
      fetch(`${first.instanceUrl}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('cors-client:wrong').toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          origin,
        },
        body: 'grant_type=refresh_token&refresh_token=nope',
      });
    for (let i = 0; i < 3; i++) expect((await failing()).status).toBe(401);
    // The failure spending the last point, then one this instance refuses without the engine.
    for (const limited of [await failing(), await failing()]) {
      expect(limited.status).toBe(429);
      expect(limited.headers.get('access-control-allow-origin')).toBe(origin);
      expect(limited.headers.get('access-control-expose-headers')).toBe('Retry-After');
      expect(limited.headers.get('vary')).toMatch(/Origin/);
      expect(await limited.json()).toMatchObject({ error: 'temporarily_unavailable' });
    }
  });

  test('failed pushed authorization requests are counted as failed token requests', async () => {
    const failing = () =>
      fetch(`${first.instanceUrl}/request`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('par-client:wrong').toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fexample.test%2Fcb',
      });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await failing()).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test('a path in other letter case or with a trailing slash reaches the same endpoint and is counted as it', async () => {
    const failing = (path: string) =>
      fetch(`${first.instanceUrl}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('case-client:wrong').toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=refresh_token&refresh_token=nope',
      });
    const statuses = [];
    for (const path of ['/Token', '/token/', '/TOKEN', '/token']) statuses.push((await failing(path)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test('the login pages answer 429 with Retry-After and a readable page once the limit is spent', async () => {
    const browser = new TestBrowser();
    const statuses: number[] = [];
    let last = await browser.request((await authorizationRequest(rp)).url.href);
    for (let i = 0; i < 3; i++) {
      statuses.push(last.status);
      last = await browser.request((await authorizationRequest(rp)).url.href);
    }
    // Each one the login page itself (login-at-authorization.ts).
    expect(statuses).toEqual([200, 200, 200]);
    expect(last.status).toBe(429);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
    // Counted alongside its work, the refused request answers nothing of it: no redirect, no cookie.
    expect(last.location).toBeUndefined();
    expect(last.headers.get('set-cookie')).toBeNull();
    expect(last.headers.get('content-type')).toMatch(/^text\/html/);
    expect(last.body).toContain('请求过于频繁');
    // The line says whom it limited: the address it counted.
    const limited = [
      ...logLines(first, { msg: 'rate limited' }),
      ...logLines(second, { msg: 'rate limited' }),
    ];
    expect(limited.map((line) => JSON.parse(line))).toContainEqual(
      expect.objectContaining({ group: 'interaction', ip: expect.stringMatching(/127\.0\.0\.1$/) }),
    );
  });

  test('WeChat callbacks are limited on their own counter', async () => {
    const browser = new TestBrowser();
    const url = `${first.url}/interaction/unknown-uid/wechat-callback?code=x&state=y`;
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await browser.request(url)).status);
    expect(answers.slice(0, 2)).not.toContain(429);
    expect(answers[2]).toBe(429);
  });

  test('a request body larger than the limit is refused with 413 before it is read', async () => {
    const answer = await fetch(`${first.url}/interaction/some-uid/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `x=${'a'.repeat(5000)}`,
    });
    expect(answer.status).toBe(413);
  });

  test('the defaults limit every group, with room for many people behind one address', () => {
    expect(SECTION_DEFAULTS.limits.rateLimits.enabled).toBe(true);
    expect(SECTION_DEFAULTS.limits.rateLimits.interaction.points).toBeGreaterThanOrEqual(100);
    expect(SECTION_DEFAULTS.limits.maxBodyBytes).toBeLessThanOrEqual(1024 * 1024);
  });
});

describe.skipIf(!available)('hardening: the token endpoint counts failed requests only', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    bridge = await startWithLimits('postgres+redis', { token: { points: 2, durationSeconds: 600 } });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('successful refreshes are never limited; failures are, and then the key is refused at once', async () => {
    const user = await createSandboxUser(bridge, 'Refresher');
    const { tokens } = await loginAs(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
    let refreshToken = tokens.refresh_token as string;
    for (let i = 0; i < 4; i++) {
      const refreshed = await oidc.refreshTokenGrant(rp, refreshToken);
      refreshToken = refreshed.refresh_token as string;
    }
    const failures = [];
    for (let i = 0; i < 3; i++) failures.push((await tokenRequest(bridge.url)).status);
    expect(failures).toEqual([400, 400, 429]);
    // Refused before oidc-provider sees it: a valid refresh token too, which the refusal leaves unspent.
    const valid = await tokenRequest(bridge.url, `grant_type=refresh_token&refresh_token=${refreshToken}`);
    expect(valid.status).toBe(429);
    expect(await valid.json()).toMatchObject({ error: 'temporarily_unavailable' });
  });

  test('client ids nobody registered share their address count: a made-up id per request gets no fresh one', async () => {
    // From another address than the test above (a loopback alias), so that its count is this test's.
    const elsewhere = new Agent({ connect: { localAddress: '127.0.0.2' } });
    const failing = (clientId: string) =>
      request(`${bridge.url}/token`, {
        method: 'POST',
        dispatcher: elsewhere,
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:wrong`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=refresh_token&refresh_token=nope',
      }).then(async (answer) => {
        await answer.body.dump();
        return answer.statusCode;
      });
    const statuses = [];
    for (const clientId of ['made-up-1', 'made-up-2', 'made-up-3']) statuses.push(await failing(clientId));
    await elsewhere.close();
    expect(statuses).toEqual([401, 401, 429]);
  });
});

describe.skipIf(!available)('hardening: the mini-program endpoints are limited per person', () => {
  let first: Bridge;
  let second: Bridge;
  let mp: oidc.Configuration;

  beforeAll(async () => {
    [first, second] = await startTwoInstances({
      storage: 'postgres+redis',
      apps: [WEBSITE_APP, MINI_PROGRAM_APP],
      configure: (config) => ({
        ...config,
        clients: [...config.clients, MINI_PROGRAM_CLIENT],
        limits: { ...LIMITS, rateLimits: { ...LIMITS.rateLimits, ...GENEROUS } },
      }),
    });
    mp = await miniProgramClient(first);
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  const loginInMiniProgram = async (name: string) => {
    const person = await createSandboxUser(first, name);
    return (await exchangeJsCode(mp, await wxLogin(first, person))).access_token;
  };

  test('one person past the limit gets 429 on every instance; others, from the same address, do not', async () => {
    // A stranger's calls (no valid token) spend nobody's allowance.
    for (let i = 0; i < 3; i++)
      expect((await callMiniProgram(first, 'check-session', 'made-up')).status).toBe(401);
    const panda = await loginInMiniProgram('Limited Panda');
    const statuses = [
      (await callMiniProgram(first, 'check-session', panda)).status,
      (await callMiniProgram({ ...first, url: second.instanceUrl }, 'check-session', panda)).status,
    ];
    expect(statuses).toEqual([200, 200]);
    const limited = await callMiniProgram(first, 'phone-number', panda, { code: 'any' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(String(limited.body.error_description)).toMatch(/retry after \d+ seconds/);

    const other = await loginInMiniProgram('Unlimited Fox');
    expect((await callMiniProgram(first, 'check-session', other)).status).toBe(200);
    const metrics = await (await fetch(`${first.instanceUrl}/metrics`)).text();
    expect(metrics).toMatch(/http_rate_limited_total\{endpoint="miniProgram"\} 1/);
  });
});

/** What oidc-provider reads at most on its endpoints (lib/shared/selective_body.js): 56 KiB. */
const ENGINE_LIMIT = 57_344;

describe("hardening: the body limit is the engine's", () => {
  let bridge: Bridge;

  beforeAll(async () => {
    // The default limits (test/helpers/bridge.ts takes SECTION_DEFAULTS.limits, rate limits aside).
    bridge = await startBridge({ storage: 'embedded' });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  /** A refresh-token request of exactly `bytes` bytes, with RP's credentials. */
  function tokenRequestOf(bytes: number) {
    const prefix = 'grant_type=refresh_token&refresh_token=';
    return tokenRequest(bridge.url, `${prefix}${'a'.repeat(bytes - prefix.length)}`);
  }

  // Regression: the default limit was 65,536 bytes while oidc-provider reads at most 56 KiB, so a
  // 60 KB POST /token got 400 "failed to parse the request body" instead of the 413 promised.
  test('a 60 KB token request is refused 413 before anything reads it, as is one byte past 56 KiB', async () => {
    for (const bytes of [60_000, ENGINE_LIMIT + 1]) {
      const answer = await tokenRequestOf(bytes);
      expect(answer.status).toBe(413);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await answer.json()).toEqual({
        error: 'invalid_request',
        error_description: `request body larger than ${ENGINE_LIMIT} bytes`,
      });
    }
    expect(SECTION_DEFAULTS.limits.maxBodyBytes).toBe(ENGINE_LIMIT);
    expect(ENGINE_MAX_BODY_BYTES).toBe(ENGINE_LIMIT);
  });

  test('a body of 56 KiB reaches oidc-provider, which reads it', async () => {
    const answer = await tokenRequestOf(ENGINE_LIMIT);
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ error: 'invalid_grant' });
  });

  // Regression: a person's browser posting past the limit to a page route got the JSON meant for
  // clients (a smaller form is refused by the page's own parser, with the page already).
  test('a page route answers its 413 with the readable error page', async () => {
    const answer = await fetch(`${bridge.url}/interaction/some-uid/abort`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'zh-CN' },
      body: `x=${'a'.repeat(70_000)}`,
    });
    expect(answer.status).toBe(413);
    expect(answer.headers.get('content-type')).toMatch(/^text\/html/);
    expect(answer.headers.get('connection')).toBe('close');
    expect(await answer.text()).toContain('无法处理此请求');
  });
});

describe('hardening: what a login counts against the interaction limit', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    // Exactly one login with consent: the authorization request and the consent post.
    bridge = await startWithLimits('embedded', { interaction: { points: 2, durationSeconds: 600 } });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the pages and resumes of a login are not counted; the next authorization request is', async () => {
    const user = await createSandboxUser(bridge, 'Counted');
    const { tokens } = await loginAs(rp, user);
    expect(tokens.access_token).toBeTruthy();
    const next = await new TestBrowser().request((await authorizationRequest(rp)).url.href);
    expect(next.status).toBe(429);
  });
});

describe('hardening: the account page', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startWithLimits('embedded', { interaction: { points: 2, durationSeconds: 600 } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('its posts count against the interaction limit; its pages do not', async () => {
    const browser = new TestBrowser();
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push((await browser.request(`${bridge.url}/account`)).status);
    const signOut = () =>
      browser.request(`${bridge.url}/account/sign-out-everywhere`, { form: { csrf: 'x' } });
    const posts = [];
    for (let i = 0; i < 3; i++) posts.push((await signOut()).status);
    // Without a session a post only sends the browser to log in, but it is counted all the same.
    expect(pages).toEqual([302, 302, 302]);
    expect(posts).toEqual([302, 302, 429]);
  });
});

describe.skipIf(!available)('hardening: what a counted request costs Redis', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    bridge = await startWithLimits('postgres+redis');
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test("the WeChat callback's count and its read of the interaction travel to Redis in one write", async () => {
    const user = await createSandboxUser(bridge, 'Pipelined');
    const login = await startLogin(rp);
    const callback = await callbackFromWeChat(login, { user, allow: true });
    const redis = bridge.server.stores.redis;
    if (!redis) throw new Error('no Redis client on a postgres+redis bridge');
    const recorded = recordWrites(redis);
    const hop = await login.browser.request(callback.href);
    recorded.stop();

    const counted = recorded.writes.filter((write) => write.includes('rate:callback'));
    expect(counted).toHaveLength(1);
    expect(counted[0]).toContain(`oidc:Interaction:${callback.pathname.split('/')[2]}`);
    // And the login goes on as before.
    const redirect = await continueToRp(login, hop);
    expect((await oidc.authorizationCodeGrant(rp, redirect, login.checks)).claims()?.sub).toBe(user.unionid);
  });

  test("the authorization request's count travels to Redis in the same write as the interaction it saves", async () => {
    const redis = bridge.server.stores.redis;
    if (!redis) throw new Error('no Redis client on a postgres+redis bridge');
    const recorded = recordWrites(redis);
    const login = await startLogin(rp);
    recorded.stop();

    const uid = interactionUid(login);
    const counted = recorded.writes.filter((write) => write.includes('rate:interaction'));
    expect(counted).toHaveLength(1);
    expect(counted[0]).toContain(`oidc:Interaction:${uid}`);
  });

  test('a refused callback read its interaction for nothing, and answers 429 all the same', async () => {
    const tight = await startWithLimits('postgres+redis', { callback: LIMITS.rateLimits.callback });
    try {
      const user = await createSandboxUser(tight, 'Refused');
      const login = await startLogin(await relyingParty(tight));
      const callback = await callbackFromWeChat(login, { user, allow: true });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await login.browser.request(callback.href)).status);
      expect(statuses[2]).toBe(429);
      expect(tight.logs.join('')).not.toMatch(/"level":(50|60)/);
    } finally {
      await tight.close();
    }
  });
});

describe('hardening: cookies', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, trustProxy: true, behindTlsProxy: true }),
    });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('pages carry the Content-Security-Policy and frame denial; every answer nosniff; pages and redirects no referrer', async () => {
    const login = await new TestBrowser().follow((await authorizationRequest(rp)).url.href);
    expect(login.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = login.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    // The QR code is WeChat's page in a frame: its origin (here the sandbox's) is the one frame source.
    expect(csp).toContain(`frame-src ${new URL(bridge.sandboxUrl).origin}`);
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    const discovery = await fetch(`${bridge.url}/.well-known/openid-configuration`);
    expect(discovery.headers.get('content-type')).toMatch(/^application\/json/);
    expect(discovery.headers.get('content-security-policy')).toBeNull();
    for (const answer of [login.headers, discovery.headers]) {
      expect(answer.get('x-content-type-options')).toBe('nosniff');
    }
    // A referrer policy does something on a page and a redirect (the authorization response's
    // URL never becomes the next site's Referer), nothing on JSON.
    expect(login.headers.get('referrer-policy')).toBe('no-referrer');
    // Asked for by a client that does not take HTML, so the redirect's own body is not a page.
    const redirect = await fetch((await authorizationRequest(rp, { prompt: 'none' })).url, {
      redirect: 'manual',
      headers: { accept: 'application/json' },
    });
    expect(redirect.headers.get('content-type')).not.toMatch(/^text\/html/);
    expect(redirect.status).toBeGreaterThanOrEqual(300);
    expect(redirect.status).toBeLessThan(400);
    expect(redirect.headers.get('referrer-policy')).toBe('no-referrer');
    expect(discovery.headers.get('referrer-policy')).toBeNull();
  });

  test("the session cookie a login's resume sets is signed, HttpOnly, SameSite=Lax and, behind the TLS proxy, Secure", async () => {
    const user = await createSandboxUser(bridge, 'Session cookie');
    const login = await startLogin(rp);
    // On through the consent page, up to the resume (/auth/<uid>), which sets the session cookie.
    let hop = await decideOnWeChat(login, { user, allow: true });
    for (let i = 0; i < 10 && !hop.location?.startsWith(`${bridge.url}/auth/`); i++) {
      const consent = consentAction(hop);
      hop = consent
        ? await login.browser.request(consent, { method: 'POST', form: {} })
        : await login.browser.request(hop.location as string);
    }
    // The proxy in front terminated TLS: it says so.
    const resume = await login.browser.request(hop.location as string, {
      headers: { 'x-forwarded-proto': 'https' },
    });
    expect(resume.location).toMatch(/^https:\/\/rp\.example\.test\/callback\?/);
    const session = resume.headers.getSetCookie().filter((cookie) => /^_session(\.sig)?=/.test(cookie));
    expect(session.map((cookie) => cookie.split('=')[0]).sort()).toEqual(['_session', '_session.sig']);
    for (const cookie of session) {
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).toMatch(/;\s*samesite=lax/i);
      expect(cookie).toMatch(/;\s*secure/i);
    }
  });

  test('session cookies are HttpOnly, SameSite=Lax and, behind a TLS proxy, Secure', async () => {
    const { url } = await authorizationRequest(rp);
    const answer = await fetch(url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    const cookies = answer.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) {
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).toMatch(/;\s*samesite=lax/i);
      expect(cookie).toMatch(/;\s*secure/i);
    }
  });
});

describe('hardening: the session cookie of an https issuer', () => {
  const ISSUER = 'https://id.example.test';
  let bridge: Bridge;

  beforeAll(async () => {
    // As production runs: an https issuer, served by a TLS-terminating proxy in front.
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, issuer: ISSUER, trustProxy: true, behindTlsProxy: true }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('is __Host-session, Secure, on the whole path and without a domain, and keeps the person logged in', async () => {
    // The proxy's part: the issuer's URLs reach this instance, told they came over https.
    const browser = new TestBrowser();
    const go = (url: string, init: { method?: string; form?: Record<string, string> } = {}) => {
      const target = new URL(url);
      const local =
        target.origin === ISSUER
          ? `http://127.0.0.1:${bridge.server.config.port}${target.pathname}${target.search}`
          : url;
      return browser.request(local, { ...init, headers: { 'x-forwarded-proto': 'https' } });
    };
    const rp = new oidc.Configuration(
      { issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth` },
      RP.client_id,
      RP.client_secret,
    );
    const { url, checks } = await authorizationRequest(rp);
    const login = loginStarted(browser, checks, await go(url.href));
    const user = await createSandboxUser(bridge, 'Host cookie');
    // On through the consent page, up to the resume (/auth/<uid>), which sets the session cookie.
    let hop = await go((await callbackFromWeChat(login, { user, allow: true })).href);
    for (let i = 0; i < 10 && !hop.location?.startsWith(`${ISSUER}/auth/`); i++) {
      const consent = consentAction(hop);
      hop = consent ? await go(consent, { method: 'POST', form: {} }) : await go(hop.location as string);
    }
    const resume = await go(hop.location as string);
    expect(resume.location).toMatch(/^https:\/\/rp\.example\.test\/callback\?code=/);
    const set = resume.headers.getSetCookie();
    const session = set.filter((cookie) => /^__Host-session(\.sig)?=/.test(cookie));
    expect(session.map((cookie) => cookie.split('=')[0]).sort()).toEqual([
      '__Host-session',
      '__Host-session.sig',
    ]);
    for (const cookie of session) {
      // What browsers demand of the prefix: Secure, Path=/, no Domain.
      expect(cookie).toMatch(/;\s*secure/i);
      expect(cookie).toMatch(/;\s*path=\/(;|$)/i);
      expect(cookie).not.toMatch(/;\s*domain=/i);
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).toMatch(/;\s*samesite=lax/i);
    }
    expect(set.filter((cookie) => cookie.startsWith('_session'))).toEqual([]);

    // The cookie is the session: the next authorization needs no WeChat.
    const again = await authorizationRequest(rp, { prompt: 'none' });
    const silent = await go(again.url.href);
    expect(silent.location).toMatch(/^https:\/\/rp\.example\.test\/callback\?code=/);
  });
});

describe('hardening: cookies without a trusted proxy', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded' });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('a client claiming https in X-Forwarded-Proto gets no Secure cookie: only a trusted proxy is believed', async () => {
    expect(bridge.config.trustProxy).toBe(false);
    const { url } = await authorizationRequest(await relyingParty(bridge));
    const answer = await fetch(url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    const cookies = answer.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) {
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).not.toMatch(/;\s*secure/i);
    }
  });
});

describe('hardening: client address behind a proxy', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({
        ...config,
        trustProxy: true,
        limits: {
          ...LIMITS,
          rateLimits: { ...LIMITS.rateLimits, callback: { points: 1, durationSeconds: 600 } },
        },
      }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('a client cannot dodge the rate limit by writing its own X-Forwarded-For entries', async () => {
    const callback = (forged: string) =>
      fetch(`${bridge.url}/interaction/unknown-uid/wechat-callback?code=x&state=y`, {
        redirect: 'manual',
        // The proxy appends the real client address after whatever the client sent.
        headers: { 'x-forwarded-for': `${forged}, 203.0.113.7` },
      });
    // The first callback is counted and answered (an unknown interaction: the start-again page).
    expect((await callback('198.51.100.1')).status).toBe(400);
    expect((await callback('198.51.100.2')).status).toBe(429);
  });
});

/** Discovery's URLs (the issuer, every endpoint, the JWKS), asked for with these request headers. */
async function discoveredUrls(origin: string, headers: Record<string, string>): Promise<string[]> {
  const answer = await request(`${origin}/.well-known/openid-configuration`, { headers });
  expect(answer.statusCode).toBe(200);
  const metadata = (await answer.body.json()) as Record<string, unknown>;
  const urls = Object.entries(metadata).flatMap(([name, value]) =>
    name === 'issuer' || name === 'jwks_uri' || name.endsWith('_endpoint') ? [String(value)] : [],
  );
  expect(urls.length).toBeGreaterThan(6);
  return urls;
}

describe('hardening: the issuer is the one origin of every URL the provider derives', () => {
  let plain: Bridge;
  let tls: Bridge;

  beforeAll(async () => {
    plain = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, trustProxy: true }),
    });
    // As production runs: an https issuer, served by a TLS-terminating proxy in front.
    tls = await startBridge({
      storage: 'embedded',
      configure: (config) => ({
        ...config,
        issuer: 'https://id.example.test',
        trustProxy: true,
        behindTlsProxy: true,
      }),
    });
  });
  afterAll(async () => {
    await plain?.close();
    await tls?.close();
  });

  test('a forged Host or X-Forwarded-Host names no other server in discovery', async () => {
    const forgeries: Array<Record<string, string>> = [
      { host: 'evil.example' },
      { 'x-forwarded-host': 'evil.example' },
    ];
    for (const forged of forgeries) {
      for (const url of await discoveredUrls(plain.url, forged)) expect(new URL(url).origin).toBe(plain.url);
    }
  });

  test('with an https issuer, pages carry HSTS (a year, this host only); with an http one they do not', async () => {
    const page = (origin: string) =>
      request(`${origin}/interaction/no-such-interaction`, { headers: { accept: 'text/html' } });
    const secure = await page(`http://127.0.0.1:${tls.server.config.port}`);
    expect(secure.headers['content-type']).toMatch(/^text\/html/);
    expect(secure.headers['strict-transport-security']).toBe('max-age=31536000');
    const plainPage = await page(plain.url);
    expect(plainPage.headers['content-type']).toMatch(/^text\/html/);
    expect(plainPage.headers['strict-transport-security']).toBeUndefined();
    await Promise.all([secure.body.dump(), plainPage.body.dump()]);
  });

  test('behind the TLS proxy, a client claiming plain HTTP or another host still reads https URLs of the issuer', async () => {
    const origin = `http://127.0.0.1:${tls.server.config.port}`;
    const forged = { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' };
    for (const url of await discoveredUrls(origin, forged))
      expect(new URL(url).origin).toBe('https://id.example.test');
  });
});
