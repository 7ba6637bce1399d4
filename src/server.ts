import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import { createApp } from './app.ts';
import { transportProblems } from './config/policy.ts';
import type { ClientConfig, Config } from './config/types.ts';
import { createViews } from './http/views.ts';
import type { Connectors, LoginConnector } from './interaction/deps.ts';
import { setUpMiniPrograms } from './mini-program/setup.ts';
import type { Logger } from './observability/logger.ts';
import { createFindAccount } from './oidc/find-account.ts';
import { loadProviderKeys } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';
import { openStores } from './storage/open-stores.ts';
import type { Stores } from './storage/ports.ts';
import { createWeChatClient } from './upstream/wechat/client.ts';
import {
  createOfficialAccountConnector,
  type OfficialAccountConnector,
} from './upstream/wechat/official-account.ts';
import { createWebsiteQrConnector, type WebsiteQrConnector } from './upstream/wechat/website-qr.ts';

export interface RunningServer {
  /** The issuer (also the base URL of every page). */
  url: string;
  config: Config;
  stores: Stores;
  /** The in-process WeChat sandbox's URL, when it runs. */
  sandboxUrl: string | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** The demo relying party, when enabled: gets the issuer and returns its client and routes. */
  demo?: (issuer: string) => Promise<{ client: ClientConfig; router: Router }>;
  now?: () => Date;
}

/**
 * Starts everything one instance needs: the sandbox (if enabled), storage, keys, the provider, our
 * routes, the HTTP server. With port 0 a free port is chosen and, unless ISSUER was configured, the
 * issuer follows it (tests).
 */
export async function startServer(input: Config, options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of closers.reverse())
      await fn().catch((err) => logger.error({ err }, 'error while closing'));
  };
  try {
    assertTransportPolicy(input);
    let config = input;
    let sandboxUrl: string | undefined;
    if (config.sandbox.enabled) {
      // Loaded only when enabled: production instances never import the emulator.
      const { startSandbox } = await import('./sandbox/embedded.ts');
      const sandbox = await startSandbox(config);
      closers.push(sandbox.close);
      sandboxUrl = sandbox.url;
      config = { ...config, wechat: { ...config.wechat, openBaseUrl: sandbox.url, apiBaseUrl: sandbox.url } };
      logger.warn({ sandboxUrl }, 'WeChat sandbox enabled: logins go to the emulator, not to WeChat');
    }

    const server = createServer();
    closers.push(() => closeServer(server));
    const port = await listen(server, config.port, config.host);
    const issuer =
      config.port === 0 && input.issuer.endsWith(':0') ? `http://127.0.0.1:${port}` : config.issuer;
    config = { ...config, issuer, port };

    const stores = await openStores({
      databaseUrl: config.storage.databaseUrl,
      redisUrl: config.storage.redisUrl,
      redisKeyPrefix: config.storage.redisKeyPrefix,
      dataDir: config.dataDir,
      logger,
    });
    closers.push(() => stores.close());
    logger.info({ accounts: stores.kinds.accounts, artifacts: stores.kinds.artifacts }, 'storage ready');

    const keys = await loadProviderKeys(config, logger);
    const views = createViews({ assetBase: '/assets' });
    const connectors = buildConnectors(config);
    const demo = options.demo ? await options.demo(issuer) : undefined;
    const provider = createProvider({
      config,
      clients: [...config.clients, ...(demo ? [demo.client] : [])],
      keys,
      adapter: stores.oidcAdapter,
      findAccount: createFindAccount(stores.db),
      views,
      logger,
    });
    const now = options.now ?? (() => new Date());
    const miniPrograms = setUpMiniPrograms({
      config,
      provider,
      stores,
      cookieKeys: keys.cookieKeys,
      logger,
      now,
    });
    createApp({
      config,
      provider,
      stores,
      views,
      logger,
      interaction: {
        provider,
        connectors,
        kv: stores.kv,
        db: stores.db,
        views,
        logger,
        issuer,
        now,
        // A duplicate callback waits out the first delivery's code exchange and profile read.
        callbackWaitMs: 2 * config.wechat.timeoutMs + 2000,
      },
      extraRouters: [...(demo ? [demo.router] : []), miniPrograms.router],
    });
    server.on('request', provider.callback());
    return { url: issuer, config, stores, sandboxUrl, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * One connector per configured website and official_account app: logins start with the first of
 * each kind; callbacks are completed by the app their state names.
 */
function buildConnectors(config: Config): Connectors {
  const client = createWeChatClient({
    apiBaseUrl: config.wechat.apiBaseUrl,
    timeoutMs: config.wechat.timeoutMs,
  });
  const { openBaseUrl } = config.wechat;
  const byAppid = new Map<string, LoginConnector>();
  let website: WebsiteQrConnector | undefined;
  let officialAccount: OfficialAccountConnector | undefined;
  for (const app of config.wechat.apps) {
    if (app.kind === 'website') {
      const connector = createWebsiteQrConnector({ app, client, openBaseUrl });
      website ??= connector;
      byAppid.set(app.appid, connector);
    } else if (app.kind === 'official_account') {
      const connector = createOfficialAccountConnector({ app, client, openBaseUrl });
      officialAccount ??= connector;
      byAppid.set(app.appid, connector);
    }
  }
  return { website, officialAccount, byAppid: (appid) => byAppid.get(appid) };
}

/** The HTTPS policy (config/policy.ts) again, for configurations built in code rather than loaded. */
function assertTransportPolicy(config: Config): void {
  const problems = transportProblems(config);
  if (problems.length === 0) return;
  throw new Error(
    `refusing to start: ${problems.map(([field, message]) => `${field} ${message}`).join('; ')}`,
  );
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
