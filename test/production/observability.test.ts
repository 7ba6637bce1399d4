import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  RP,
  startBridge,
  storageAvailable,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import type { TestBrowser } from '../helpers/browser.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  injectFault,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { freePort } from '../helpers/interop.ts';
import { exchangeJsCode, miniProgramClient, wxLogin } from '../helpers/mini-program.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { type LoadBalancer, startLoadBalancer } from './load-balancer.ts';

/** One sample's value from Prometheus's text format, 0 when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf('}'));
    if (wanted.every((pair) => inner.split(',').includes(pair))) return Number(line.split(' ').at(-1));
  }
  return 0;
}

describe('observability: metrics and logs after full logins', () => {
  let bridge: Bridge;
  let wechatApi: LoadBalancer;
  let rp: oidc.Configuration;
  let panda: SandboxUser;
  /** Every secret, code, token and cookie the logins used, to search the log for. */
  const secrets = new Set<string>([RP.client_secret, WEBSITE_APP.secret, MINI_PROGRAM_APP.secret]);

  /**
   * Session cookies are secrets; the interaction cookies hold the interaction's uid, which is in
   * every interaction URL by design (oidc-provider binds the two), so those are not.
   */
  function noteCookies(browser: TestBrowser): void {
    for (const { name, value } of browser.cookies()) if (!name.startsWith('_interaction')) secrets.add(value);
  }

  /** A whole login, noting everything secret it handled on the way. */
  async function login(scope = 'openid profile offline_access') {
    const started = await startLogin(rp, { scope, prompt: 'consent' });
    secrets.add(started.checks.pkceCodeVerifier ?? '');
    secrets.add(started.qrUrl.searchParams.get('state') ?? '');
    const callback = await decideOnWeChat(started, { user: panda, allow: true });
    secrets.add(new URL(callback.url).searchParams.get('code') ?? '');
    noteCookies(started.browser);
    const redirect = await continueToRp(started, callback);
    noteCookies(started.browser);
    secrets.add(redirect.searchParams.get('code') ?? '');
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, started.checks);
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token ?? '');
    secrets.add(tokens.id_token ?? '');
    return tokens;
  }

  beforeAll(async () => {
    // WeChat's API through a relay that keeps its answers: the access and refresh tokens WeChat
    // hands the bridge are secrets too.
    wechatApi = await startLoadBalancer();
    bridge = await startBridge({
      storage: 'embedded',
      apps: [WEBSITE_APP, MINI_PROGRAM_APP],
      configure: (config) => ({
        ...config,
        wechat: { ...config.wechat, apiBaseUrl: wechatApi.url },
        clients: [...config.clients, MINI_PROGRAM_CLIENT],
      }),
    });
    wechatApi.targets = [bridge.sandboxUrl];
    rp = await relyingParty(bridge);
    panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
  });
  afterAll(async () => {
    await bridge?.close();
    await wechatApi?.close();
  });

  test('/metrics counts requests by route template, logins, WeChat calls and errors, and tokens', async () => {
    const tokens = await login();
    await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    const failing = await startLogin(rp);
    await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 1, errcode: 40125 });
    await decideOnWeChat(failing, { user: panda, allow: true });
    const mp = await miniProgramClient(bridge);
    const code = await wxLogin(bridge, panda);
    secrets.add(code);
    const exchanged = await exchangeJsCode(mp, code);
    secrets.add(exchanged.access_token);
    secrets.add(exchanged.refresh_token ?? '');
    expect(exchanged.refresh_token).toBeTruthy();
    await expect(exchangeJsCode(mp, 'not-a-wx-login-code')).rejects.toMatchObject({
      error: 'invalid_request',
    });

    // No management listener configured: /metrics on the main port, as before it existed.
    expect(bridge.server.managementUrl).toBeUndefined();
    const response = await fetch(`${bridge.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(
      sample(text, 'http_requests_total', {
        route: '/interaction/:uid/wechat-callback',
        method: 'GET',
        status: '303',
      }) +
        sample(text, 'http_requests_total', { route: '/interaction/:uid/wechat-callback', status: '302' }) +
        // A third-party client's consent page is the callback's own answer.
        sample(text, 'http_requests_total', { route: '/interaction/:uid/wechat-callback', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'http_requests_total', { route: '/token', method: 'POST', status: '200' })).toBe(3);
    expect(text).not.toMatch(/route="\/interaction\/[^:]/);
    expect(sample(text, 'wechat_logins_total', { kind: 'website', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'wechat_logins_total', { kind: 'website', outcome: 'app_config' })).toBe(1);
    expect(sample(text, 'wechat_logins_total', { kind: 'mini_program', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'wechat_logins_total', { kind: 'mini_program', outcome: 'invalid_request' })).toBe(1);
    expect(
      sample(text, 'wechat_api_duration_seconds_count', { api: 'sns/oauth2/access_token', outcome: 'ok' }),
    ).toBe(1);
    expect(
      sample(text, 'wechat_api_errors_total', { api: 'sns/oauth2/access_token', errcode: '40125' }),
    ).toBe(1);
    // The mini program's calls to WeChat are measured like the browser connectors' ones.
    expect(
      sample(text, 'wechat_api_duration_seconds_count', { api: 'sns/jscode2session', outcome: 'ok' }),
    ).toBe(1);
    expect(sample(text, 'wechat_api_errors_total', { api: 'sns/jscode2session', errcode: '40029' })).toBe(1);
    expect(sample(text, 'oidc_tokens_issued_total', { type: 'access_token' })).toBe(3);
    // The website login, its refresh (rotation) and the mini program's exchange.
    expect(sample(text, 'oidc_tokens_issued_total', { type: 'refresh_token' })).toBe(3);
    expect(sample(text, 'oidc_tokens_issued_total', { type: 'authorization_code' })).toBe(1);
  });

  test('the log holds no secret, code, token, cookie or query string used by full logins', async () => {
    const tokens = await login();
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    secrets.add(refreshed.access_token);
    secrets.add(refreshed.refresh_token ?? '');
    secrets.add(refreshed.id_token ?? '');
    await oidc.fetchUserInfo(rp, refreshed.access_token, panda.unionid);
    await oidc.tokenIntrospection(rp, refreshed.access_token);
    await oidc.tokenRevocation(rp, refreshed.refresh_token as string);
    await login('openid profile');

    const fromWeChat = wechatApi.answers.flatMap((body) =>
      [...body.matchAll(/"(access_token|refresh_token|session_key)"\s*:\s*"([^"]+)"/g)].map(
        (m) => m[2] ?? '',
      ),
    );
    expect(fromWeChat.length).toBeGreaterThan(3);
    for (const token of fromWeChat) secrets.add(token);
    const log = bridge.logs.join('');
    expect(log).toContain('"msg":"request"');
    const used = [...secrets].filter((secret) => secret.length >= 8);
    expect(used.length).toBeGreaterThan(15);
    for (const secret of used) expect(log, `${secret} in the log`).not.toContain(secret);
    expect(log).not.toMatch(/[?&](code|state|access_token|refresh_token|id_token|client_secret)=/);
    expect(log).not.toMatch(/"(path|url)":"[^"]*\?/);
  });
});

describe.skipIf(!(await storageAvailable('postgres+redis')))(
  'observability: a failing store in the log',
  () => {
    let bridge: Bridge;
    beforeAll(async () => {
      bridge = await startBridge({ storage: 'postgres+redis' });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('a Redis error is logged by its message, without the command, whose key holds the token', async () => {
      const { tokens } = await loginAs(await relyingParty(bridge), await createSandboxUser(bridge, 'Panda'));
      const { redisUrl, redisKeyPrefix } = bridge.config.storage;
      const redis = new Redis(redisUrl as string);
      try {
        // The key the token is kept under, made a kind Redis cannot read as a hash: WRONGTYPE.
        await redis.set(`${redisKeyPrefix}oidc:AccessToken:${tokens.access_token}`, 'x');
      } finally {
        redis.disconnect();
      }
      const answer = await fetch(`${bridge.url}/me`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(answer.status).toBe(500);
      const log = bridge.logs.join('');
      expect(log).toContain('WRONGTYPE');
      expect(log).not.toContain(tokens.access_token);
    });
  },
);

describe('observability: why a request was refused, in its access line', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    // Access lines as production writes them: at info for failed requests only, debug otherwise.
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, log: { ...config.log, requests: 'failures' } }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  /** The access lines written since `from`, as objects. */
  const accessLines = (from: number) =>
    bridge.logs
      .slice(from)
      .flatMap((chunk) => chunk.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.msg === 'request');
  const authorize = (params: Record<string, string>) =>
    fetch(`${bridge.url}/auth?${new URLSearchParams({ client_id: RP.client_id, ...params })}`, {
      redirect: 'manual',
      headers: { accept: 'text/html' },
    });
  const basic = (secret: string) =>
    `Basic ${Buffer.from(`${RP.client_id}:${encodeURIComponent(secret)}`).toString('base64')}`;

  test('refusals answered with a page or a redirect name their error, its reason and the client', async () => {
    const from = bridge.logs.length;
    // An unregistered redirect_uri: the person's error page, never a redirect.
    const page = await authorize({
      redirect_uri: 'https://elsewhere.example/cb',
      response_type: 'code',
      scope: 'openid',
    });
    expect(page.status).toBe(400);
    // No PKCE challenge and no nonce: the error goes back to the client by redirect.
    const redirected = await authorize({
      redirect_uri: RP.redirect_uris[0] as string,
      response_type: 'code',
      scope: 'openid',
      state: 's',
    });
    expect(redirected.status).toBe(303);
    expect(redirected.headers.get('location')).toContain('error=invalid_request');
    // prompt=none without a session: an everyday answer, not a refusal to report.
    const silent = await authorize({
      redirect_uri: RP.redirect_uris[0] as string,
      response_type: 'code',
      scope: 'openid',
      nonce: 'n',
      prompt: 'none',
    });
    expect(silent.headers.get('location')).toContain('error=login_required');

    expect(
      accessLines(from).map(({ level, status, error, clientId }) => ({ level, status, error, clientId })),
    ).toEqual([
      { level: 'info', status: 400, error: 'invalid_redirect_uri', clientId: RP.client_id },
      { level: 'info', status: 303, error: 'invalid_request', clientId: RP.client_id },
      { level: 'debug', status: 303, error: 'login_required', clientId: RP.client_id },
    ]);
  });

  test("the token endpoint's refusals say which of the reasons behind one error it was, and never the secret or code", async () => {
    const from = bridge.logs.length;
    const token = (authorization: string, code: string) =>
      fetch(`${bridge.url}/token`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: RP.redirect_uris[0] as string,
        }),
      });
    expect((await token(basic(RP.client_secret), 'a-code-nobody-issued')).status).toBe(400);
    expect((await token(basic('a-wrong-secret-0123456789'), 'another-code-nobody-issued')).status).toBe(401);
    // Userinfo opened in a browser: a readable page, which speaks of no login.
    const userinfo = await fetch(`${bridge.url}/me`, {
      headers: { accept: 'text/html', authorization: 'Bearer an-access-token-nobody-issued' },
    });
    expect(userinfo.status).toBe(401);
    expect(await userinfo.text()).toContain('这个地址供应用程序调用');

    const lines = accessLines(from);
    expect(lines.map(({ status, error, detail, clientId }) => ({ status, error, detail, clientId }))).toEqual(
      [
        {
          status: 400,
          error: 'invalid_grant',
          detail: 'authorization code not found',
          clientId: RP.client_id,
        },
        { status: 401, error: 'invalid_client', detail: 'invalid secret provided', clientId: RP.client_id },
        { status: 401, error: 'invalid_token', detail: 'access token not found', clientId: undefined },
      ],
    );
    const logged = JSON.stringify(lines);
    for (const secret of [
      'a-code-nobody-issued',
      'another-code-nobody-issued',
      'a-wrong-secret',
      'an-access-token-nobody-issued',
      RP.client_secret,
    ])
      expect(logged).not.toContain(secret);
  });
});

describe('observability: the management listener (config.management)', () => {
  let bridge: Bridge;
  let closed = false;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, management: { port: 0, host: '127.0.0.1' } }),
    });
  });
  afterAll(async () => {
    if (!closed) await bridge?.close();
  });

  test('serves /metrics, with what a login moved, while the public port answers 404 there', async () => {
    const management = bridge.server.managementUrl as string;
    expect(management).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(new URL(management).port).not.toBe(new URL(bridge.url).port);
    expect(bridge.server.config.management?.port).toBe(Number(new URL(management).port));
    await loginAs(await relyingParty(bridge), await createSandboxUser(bridge, 'Panda'));

    const response = await fetch(`${management}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(sample(text, 'wechat_logins_total', { kind: 'website', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'http_requests_total', { route: '/token', method: 'POST', status: '200' })).toBe(1);
    expect(sample(text, 'oidc_tokens_issued_total', { type: 'authorization_code' })).toBe(1);

    expect((await fetch(`${bridge.url}/metrics`)).status).toBe(404);
  });

  test('serves the health checks too, and nothing else', async () => {
    const management = bridge.server.managementUrl as string;
    const live = await fetch(`${management}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${management}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
    for (const path of ['/', '/.well-known/openid-configuration', '/jwks', '/auth', '/metrics/x']) {
      expect((await fetch(`${management}${path}`)).status, path).toBe(404);
    }
    // A method nobody routes is the client's mistake (405 with Allow), not a 501 server error.
    const posted = await fetch(`${management}/metrics`, { method: 'POST' });
    expect(posted.status).toBe(405);
    const traced = await rawRequest(management, { method: 'TRACE', target: '/metrics' });
    expect(traced.status).toBe(405);
    expect(traced.headers.allow?.join()).toMatch(/GET/);
    // The public port keeps its probes: load balancers use them.
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
  });

  test('closes with the instance', async () => {
    const management = bridge.server.managementUrl as string;
    closed = true;
    await bridge.close();
    await expect(fetch(`${management}/healthz`)).rejects.toThrow();
    await expect(fetch(`${bridge.url}/healthz`)).rejects.toThrow();
  });
});

// Node's own "listen EADDRINUSE: address already in use 127.0.0.1:4110" read the same for every
// listener: the operator could not tell which setting to change (an operator's review).
describe('a main or sandbox port already in use fails the start, naming the setting', () => {
  let blocker: ReturnType<typeof createServer>;
  let taken: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    taken = (blocker.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => blocker.close(resolve));
  });

  test('the main port', async () => {
    const starting = startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, port: taken, issuer: `http://127.0.0.1:${taken}` }),
    });
    await expect(starting).rejects.toThrow(
      `port (or PORT): cannot listen on 127.0.0.1:${taken}: address already in use (EADDRINUSE); free it or choose another port`,
    );
  });

  test("the in-process sandbox's port", async () => {
    const starting = startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, sandbox: { ...config.sandbox, enabled: true, port: taken } }),
    });
    await expect(starting).rejects.toThrow(
      `sandbox.port: cannot listen on 127.0.0.1:${taken}: address already in use (EADDRINUSE); free it or choose another (0: any free port)`,
    );
  });
});

describe('observability: a management port already in use', () => {
  test('fails the start, naming the setting, and leaves the main port closed', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    const port = await freePort();
    try {
      const starting = startBridge({
        storage: 'embedded',
        configure: (config) => ({
          ...config,
          port,
          issuer: `http://127.0.0.1:${port}`,
          management: { port: taken, host: '127.0.0.1' },
        }),
      });
      await expect(starting).rejects.toThrow(
        `management.port: cannot listen on 127.0.0.1:${taken}: address already in use (EADDRINUSE)`,
      );
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
