import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Secret } from '../../src/config/secret.ts';
import type { ClientConfig, Config } from '../../src/config/types.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createSandbox } from '../../src/sandbox/create-sandbox.ts';
import type { SandboxApp, SandboxOptions } from '../../src/sandbox/types.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import type { WeChatAppKind } from '../../src/upstream/wechat/types.ts';
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
  sandboxUrl: string;
  server: RunningServer;
  /** Every log line the server wrote, for secret-leak checks. */
  logs: string[];
  close(): Promise<void>;
}

export interface BridgeOptions {
  storage: StorageSetup;
  /** Which sandbox apps the bridge is configured with (default: the bound website app). */
  apps?: Array<typeof WEBSITE_APP>;
  sandbox?: Partial<SandboxOptions>;
  configure?: (config: Config) => Config;
}

/**
 * The whole stack for a flow test: an independent sandbox on its own port (as WeChat is), and one
 * bridge instance on the chosen storage (its own database and Redis prefix, or a fresh data dir).
 */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const cleanups: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const sandboxApps: SandboxApp[] = [
      { ...WEBSITE_APP, name: 'Sandbox website' },
      { ...UNBOUND_APP, name: 'Unbound website', boundToOpenPlatform: false },
    ];
    const sandbox = await createSandbox({ apps: sandboxApps, ...options.sandbox }).listen(0);
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
    const server = await startServer(config, { logger: createLogger({ level: 'debug', destination }) });
    cleanups.push(() => server.close());
    return { url: server.url, sandboxUrl: sandbox.url, server, logs, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function baseConfig(p: {
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  sandboxUrl: string;
  apps: Array<typeof WEBSITE_APP>;
}): Config {
  return {
    production: false,
    port: 0,
    host: '127.0.0.1',
    issuer: 'http://127.0.0.1:0',
    trustProxy: false,
    dataDir: p.dataDir,
    log: { level: 'debug', pretty: false },
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
      })),
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
  };
}

/** Whether this storage setup can run here (the embedded one always can); in CI a missing service fails. */
export async function storageAvailable(storage: StorageSetup): Promise<boolean> {
  if (storage === 'embedded') return true;
  const { postgres, redis } = await servicesAvailable();
  return postgres && redis;
}
