import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SECTION_DEFAULTS } from '../../src/config/defaults.ts';
import { Secret } from '../../src/config/secret.ts';
import type { ClientConfig, Config } from '../../src/config/types.ts';
import { createDemo } from '../../src/demo/demo-client.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { loadProviderKeys } from '../../src/oidc/keys.ts';
import { createSandbox } from '../../src/sandbox/create-sandbox.ts';
import type { SandboxState } from '../../src/sandbox/state.ts';
import type { SandboxApp, SandboxOptions } from '../../src/sandbox/types.ts';
import { type RunningServer, type StartOptions, startServer } from '../../src/server.ts';
import type { OfficialAccountScopePolicy, WeChatAppKind } from '../../src/upstream/wechat/types.ts';
import { createTestDatabase } from './postgres.ts';
import { createTestRedis } from './redis.ts';
import { servicesAvailable } from './services.ts';

export type StorageSetup = 'embedded' | 'postgres+redis';
export const STORAGE_SETUPS: StorageSetup[] = ['embedded', 'postgres+redis'];

export const WEBSITE_APP = {
  appid: 'wx0123456789abcdef',
  secret: 'sandbox-website-secret',
  kind: 'website' as WeChatAppKind,
};
export const UNBOUND_APP = {
  appid: 'wxfedcba9876543210',
  secret: 'sandbox-unbound-secret',
  kind: 'website' as WeChatAppKind,
};

/** A configured WeChat app of the test sandbox; official accounts may carry their scope policy. */
export type TestApp = typeof WEBSITE_APP & { scopePolicy?: OfficialAccountScopePolicy };

/** A service account bound to the same Open Platform account as WEBSITE_APP (same unionids). */
export const OFFICIAL_ACCOUNT_APP: TestApp = {
  appid: 'wx00112233445566aa',
  secret: 'sandbox-official-account-secret',
  kind: 'official_account',
};
/** A second bound service account: one more app of the same kind, still the same people. */
export const OTHER_OFFICIAL_ACCOUNT_APP: TestApp = {
  appid: 'wx00112233445566bb',
  secret: 'sandbox-other-official-account-secret',
  kind: 'official_account',
};
/** A service account not bound to the Open Platform: WeChat never names a unionid for it. */
export const UNBOUND_OFFICIAL_ACCOUNT_APP: TestApp = {
  appid: 'wx00112233445566cc',
  secret: 'sandbox-unbound-official-account-secret',
  kind: 'official_account',
};

/** A mini program bound to the same Open Platform account as WEBSITE_APP (same unionids). */
export const MINI_PROGRAM_APP: TestApp = {
  appid: 'wx4f4bc4dec97d474b',
  secret: 'sandbox-mini-program-secret',
  kind: 'mini_program',
};
/** A mini program not bound to the Open Platform: jscode2session never names a unionid. */
export const UNBOUND_MINI_PROGRAM_APP: TestApp = {
  appid: 'wx99aa88bb77cc66dd',
  secret: 'sandbox-unbound-mini-program-secret',
  kind: 'mini_program',
};

/** The mini program's public client: token exchange of wx.login codes, refresh tokens, no redirects. */
export const MINI_PROGRAM_CLIENT: ClientConfig & { wechat_mini_program_appid: string } = {
  client_id: 'test-mini-program',
  client_name: '测试小程序 Test mini program',
  token_endpoint_auth_method: 'none',
  grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange', 'refresh_token'],
  response_types: [],
  redirect_uris: [],
  scope: 'openid profile phone offline_access wechat',
  wechat_mini_program_appid: MINI_PROGRAM_APP.appid,
};

export const RP: ClientConfig & { client_secret: string; redirect_uris: string[] } = {
  client_id: 'test-rp',
  client_secret: 'test-rp-secret-0123456789abcdefghij',
  client_name: '测试应用 Test RP',
  redirect_uris: ['https://rp.example.test/callback'],
  post_logout_redirect_uris: ['https://rp.example.test/logged-out'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

export interface Bridge {
  url: string;
  /** This instance's own address (equals url unless the issuer is a load balancer in front of it). */
  instanceUrl: string;
  sandboxUrl: string;
  server: RunningServer;
  /** Every log line the server wrote, for secret-leak checks. */
  logs: string[];
  /** The sandbox's memory (users, codes, duplicate deliveries), for assertions. */
  sandboxState: SandboxState;
  /** The configuration the instance was started with (before the issuer and port were settled). */
  config: Config;
  close(): Promise<void>;
}

/**
 * The server's log lines (its chunks joined and split: one JSON line each) that contain `text`, or
 * all of them. `msg` names a line by its message exactly: `"msg":"<msg>"`.
 */
export function logLines(
  bridge: Pick<Bridge, 'logs'>,
  match: { text?: string; msg?: string } = {},
): string[] {
  const needle = match.msg === undefined ? match.text : `"msg":"${match.msg}"`;
  const lines = bridge.logs.join('').split('\n');
  return needle === undefined ? lines : lines.filter((line) => line.includes(needle));
}

export interface BridgeOptions {
  storage: StorageSetup;
  /** Which sandbox apps the bridge is configured with (default: the bound website app). */
  apps?: TestApp[];
  sandbox?: Partial<SandboxOptions>;
  configure?: (config: Config) => Config;
  /** Register the demo relying party at /demo, as `npm start` does. */
  demo?: boolean;
  /** The account-event delivery loop's timing (retries in milliseconds for tests). */
  eventDelivery?: StartOptions['eventDelivery'];
  /**
   * Runs once the server listens and before its application is ready (in the demo's setup, so it
   * also registers the demo relying party).
   */
  whileStarting?: (url: string) => Promise<void>;
}

/**
 * The website and the mini program, with the mini program's client registered: the bridge of the
 * tests whose people use both (`startBridge({ storage, ...WEBSITE_AND_MINI_PROGRAM })`).
 */
export const WEBSITE_AND_MINI_PROGRAM: Pick<BridgeOptions, 'apps' | 'configure'> = {
  apps: [WEBSITE_APP, MINI_PROGRAM_APP],
  configure: (config) => ({ ...config, clients: [...config.clients, MINI_PROGRAM_CLIENT] }),
};

/**
 * The whole stack for a flow test: an independent sandbox on its own port (as WeChat is), and one
 * bridge instance on the chosen storage (its own database and Redis prefix, or a fresh data dir).
 */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const cleanups: Array<() => Promise<void>> = [];
  // Every cleanup runs even when one fails (a Redis gone away must not leave the database behind).
  const close = async () => {
    const failures: unknown[] = [];
    for (const fn of cleanups.reverse()) await fn().catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw failures[0];
  };
  try {
    const sandboxApps: SandboxApp[] = [
      { ...WEBSITE_APP, name: 'Sandbox website' },
      { ...UNBOUND_APP, name: 'Unbound website', boundToOpenPlatform: false },
      { ...OFFICIAL_ACCOUNT_APP, name: 'Sandbox service account' },
      { ...OTHER_OFFICIAL_ACCOUNT_APP, name: 'Other service account' },
      {
        ...UNBOUND_OFFICIAL_ACCOUNT_APP,
        name: 'Unbound service account',
        boundToOpenPlatform: false,
      },
      { ...MINI_PROGRAM_APP, name: 'Sandbox mini program' },
      { ...UNBOUND_MINI_PROGRAM_APP, name: 'Unbound mini program', boundToOpenPlatform: false },
    ];
    const created = createSandbox({ apps: sandboxApps, ...options.sandbox });
    const sandbox = await created.listen(0);
    cleanups.push(() => sandbox.close());

    const dataDir = await mkdtemp(join(tmpdir(), 'wob-test-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let databaseUrl: string | undefined;
    let redisUrl: string | undefined;
    let redisKeyPrefix = 'wob:';
    if (options.storage === 'postgres+redis') {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      const redis = await createTestRedis();
      cleanups.push(() => redis.cleanup());
      databaseUrl = db.url;
      redisUrl = redis.url;
      redisKeyPrefix = redis.prefix;
    }

    const logs: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    let config = baseConfig({
      dataDir,
      databaseUrl,
      redisUrl,
      redisKeyPrefix,
      sandboxUrl: sandbox.url,
      apps: options.apps ?? [WEBSITE_APP],
    });
    if (options.configure) config = options.configure(config);
    const server = await startServer(config, {
      logger: createLogger({ level: 'debug', destination }),
      demo:
        options.demo || options.whileStarting
          ? async (issuer) => {
              await options.whileStarting?.(issuer);
              return createDemo(issuer, createViews({ assetBase: '/assets' }));
            }
          : undefined,
      eventDelivery: options.eventDelivery,
    });
    cleanups.push(() => server.close());
    return {
      url: server.url,
      instanceUrl: `http://127.0.0.1:${server.config.port}`,
      sandboxUrl: sandbox.url,
      server,
      logs,
      sandboxState: created.state,
      config,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * What `npm start` runs, for the browser tests of its pages: the in-process sandbox and the demo
 * relying party, embedded storage; `configure` adds to it.
 */
export function startQuickStartBridge(
  configure: (config: Config) => Config = (config) => config,
  apps?: BridgeOptions['apps'],
) {
  return startBridge({
    storage: 'embedded',
    demo: true,
    ...(apps && { apps }),
    configure: (config) => configure({ ...config, sandbox: { ...config.sandbox, enabled: true } }),
  });
}

/**
 * One more instance of `first`, as a second replica behind a load balancer: the same sandbox,
 * database, Redis and key prefix, issuer, and signing and cookie keys (read from the first's data
 * directory, or from its config when given there). Close it before the first, which owns the stores.
 */
export async function startAnotherInstance(
  first: Bridge,
  options: { configure?: (config: Config) => Config } = {},
): Promise<Bridge> {
  if (first.config.storage.databaseUrl === undefined)
    throw new Error('instances can share PostgreSQL and Redis, not an embedded database');
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const config = options.configure ? options.configure(first.config) : first.config;
  const server = await startServer(config, { logger: createLogger({ level: 'debug', destination }) });
  return {
    url: server.url,
    instanceUrl: `http://127.0.0.1:${server.config.port}`,
    sandboxUrl: first.sandboxUrl,
    server,
    logs,
    sandboxState: first.sandboxState,
    config,
    close: () => server.close(),
  };
}

/** The configuration startBridge gives a bridge (the benchmark starts its own instances from it too). */
/**
 * The bridge's cookie keys, as it loaded them: what signs its WeChat states and seals its session
 * keys, for tests that make such a thing themselves.
 */
export async function bridgeCookieKeys(bridge: Pick<Bridge, 'config'>): Promise<Secret[]> {
  return (await loadProviderKeys(bridge.config, createLogger({ level: 'silent' }))).cookieKeys;
}

export function baseConfig(p: {
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  sandboxUrl: string;
  apps: TestApp[];
}): Config {
  return {
    production: false,
    port: 0,
    host: '127.0.0.1',
    issuer: 'http://127.0.0.1:0',
    trustProxy: false,
    behindTlsProxy: false,
    dataDir: p.dataDir,
    log: { level: 'debug', requests: 'all' },
    storage: { databaseUrl: p.databaseUrl, redisUrl: p.redisUrl, redisKeyPrefix: p.redisKeyPrefix },
    wechat: {
      openBaseUrl: p.sandboxUrl,
      apiBaseUrl: p.sandboxUrl,
      timeoutMs: 2000,
      apps: p.apps.map((app) => ({
        kind: app.kind,
        appid: app.appid,
        name: app.appid,
        secret: new Secret(app.secret),
        ...(app.kind === 'official_account'
          ? { scopePolicy: app.scopePolicy ?? ('base_then_userinfo' as const) }
          : {}),
      })),
      mpVerifyTokens: [],
      miniProgram: { sessionKeyTtl: 86400, encryptedDataMaxAge: 600 },
    },
    oidc: {
      jwks: undefined,
      cookieKeys: undefined,
      ttl: {
        interaction: 600,
        session: 86400,
        grant: 86400,
        accessToken: 3600,
        idToken: 3600,
        refreshToken: 86400,
        authorizationCode: 60,
      },
    },
    clients: [{ ...RP }],
    sandbox: { enabled: false, port: 0, allowInProduction: false },
    demo: { enabled: false },
    // Every test client and the benchmark's workers share one loopback address: the per-IP rate
    // limits a deployment gets by default are off here (test/production/hardening.test.ts turns them on).
    ...SECTION_DEFAULTS,
    limits: {
      ...SECTION_DEFAULTS.limits,
      rateLimits: { ...SECTION_DEFAULTS.limits.rateLimits, enabled: false },
    },
  };
}

/** Whether this storage setup can run here (the embedded one always can); in CI a missing service fails. */
export async function storageAvailable(storage: StorageSetup): Promise<boolean> {
  if (storage === 'embedded') return true;
  const { postgres, redis } = await servicesAvailable();
  return postgres && redis;
}
