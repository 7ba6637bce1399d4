import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import type Provider from 'oidc-provider';
import { accountPageClient } from './account-page/client.ts';
import { createAccountPageRouter } from './account-page/router.ts';
import { formKeys } from './account-page/session.ts';
import { createAccountCache } from './accounts/account-cache.ts';
import { indexAccountArtifacts, startArtifactSweep } from './accounts/artifact-index.ts';
import { createAvatarMirror } from './accounts/avatars/mirror.ts';
import { avatarFetchPolicy } from './accounts/avatars/policy.ts';
import { createAvatarRouter } from './accounts/avatars/router.ts';
import { createSqlAvatarStore } from './accounts/avatars/store.ts';
import { rememberedScopes } from './accounts/consents.ts';
import { startDeletionCleanup } from './accounts/deletion-cleanup.ts';
import { type EventDeliveryOptions, pendingEvents, startEventDelivery } from './accounts/event-delivery.ts';
import { createAccountNotifier } from './accounts/events.ts';
import { createWebhookSender } from './accounts/webhooks.ts';
import { createApp } from './app.ts';
import { refusalProblem } from './config/client-metadata.ts';
import { formatPath } from './config/findings.ts';
import { transportProblems } from './config/policy.ts';
import type { ClientConfig, Config, ManagementListener } from './config/types.ts';
import { type AnswerGate, gatedServerOptions } from './http/committed-answers.ts';
import { createDependencyMonitor } from './http/dependency-gate.ts';
import { keepConnectionsForProxies, requestDeadlines } from './http/keep-alive.ts';
import { address, listenFailure } from './http/listen-failure.ts';
import { createManagementApp } from './http/management.ts';
import { createRateLimiters } from './http/rate-limits.ts';
import { announceShutdown, closeServer, type Drained, trackConnections } from './http/shutdown.ts';
import { createViews } from './http/views.ts';
import { pickLang, translator } from './i18n/messages.ts';
import type { Connectors, LoginConnector } from './interaction/deps.ts';
import { callbackOutcomeWaitMs } from './interaction/wechat-callback.ts';
import { createStateSigner } from './interaction/wechat-state.ts';
import { setUpMiniPrograms } from './mini-program/setup.ts';
import type { Logger } from './observability/logger.ts';
import {
  countLogins,
  createMetrics,
  type Metrics,
  observeDependencies,
  observeOutbox,
  observeProvider,
} from './observability/metrics.ts';
import { cachedAccounts, createFindAccount } from './oidc/find-account.ts';
import { loadProviderKeys } from './oidc/keys.ts';
import { clientRefusals, createProvider } from './oidc/provider.ts';
import { openStores } from './storage/open-stores.ts';
import type { Stores } from './storage/ports.ts';
import { createWeChatClient } from './upstream/wechat/client.ts';
import {
  createOfficialAccountConnector,
  type OfficialAccountConnector,
} from './upstream/wechat/official-account.ts';
import type { ProfileUnread } from './upstream/wechat/sns-identity.ts';
import { createWebsiteQrConnector, type WebsiteQrConnector } from './upstream/wechat/website-qr.ts';

export interface RunningServer {
  /** The issuer (also the base URL of every page). */
  url: string;
  config: Config;
  stores: Stores;
  /** This instance's Prometheus metrics (also served at /metrics). */
  metrics: Metrics;
  /** The in-process WeChat sandbox's URL, when it runs. */
  sandboxUrl: string | undefined;
  /** The management listener's URL (/metrics, /healthz, /readyz), when config.management is set. */
  managementUrl: string | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** The demo relying party, when enabled: gets the issuer and returns its client and routes. */
  demo?: (issuer: string) => Promise<{ client: ClientConfig; router: Router }>;
  now?: () => Date;
  /** The account-event delivery loop's timing (tests use milliseconds); defaults otherwise. */
  eventDelivery?: Pick<EventDeliveryOptions, 'retryDelaysMs' | 'pollIntervalMs' | 'leaseMs' | 'timeoutMs'>;
  /**
   * How often the stores are probed while all is well (default 5 s); 0: only on /readyz, after a
   * server error and while one is down (the benchmark's instruction counts, bench/instructions.ts).
   */
  dependencyProbeMs?: number;
}

/**
 * Starts everything one instance needs: the sandbox (if enabled), storage, keys, the provider, our
 * routes, the HTTP server. With port 0 a free port is chosen and, unless ISSUER was configured, the
 * issuer follows it (tests).
 */
export async function startServer(input: Config, options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const closers: Array<() => Promise<void>> = [];
  // Set once a shutdown begins: /readyz answers 503 from then on, through the shutdown delay.
  const lifecycle = { stopping: false };
  let announce = async () => {};
  // The HTTP server closes first and waits for in-flight requests, which still need the stores.
  let drain = async () => {};
  // What the main server's drain met, for the line that says the instance has stopped.
  let drained: Drained = { inFlight: 0, cut: 0 };
  // Resolves whether everything closed without an error (each error is logged where it happens).
  const close = async (): Promise<boolean> => {
    lifecycle.stopping = true;
    let clean = true;
    const failed = (message: string) => (err: unknown) => {
      clean = false;
      logger.error({ err }, message);
    };
    await announce();
    await drain().catch(failed('error while draining'));
    for (const fn of closers.reverse()) await fn().catch(failed('error while closing'));
    return clean;
  };
  try {
    assertTransportPolicy(input);
    const drainTimeoutMs = input.shutdown.timeout * 1000;
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

    const gate: AnswerGate = {};
    const { limits } = config;
    const { headersTimeout } = limits;
    const server = createServer(
      { ...gatedServerOptions(gate), ...requestDeadlines(headersTimeout) },
      answerWhileStarting,
    );
    keepConnectionsForProxies(server);
    const connections = trackConnections(server);
    drain = async () => {
      drained = await closeServer(server, connections, drainTimeoutMs);
      const { cut } = drained;
      if (cut > 0)
        logger.warn(
          { cut, timeoutSeconds: drainTimeoutMs / 1000 },
          'shutdown timeout: requests still in flight were cut (raise shutdown.timeout, or find what hangs)',
        );
    };
    const port = await listen(server, config.port, config.host).catch((error: NodeJS.ErrnoException) => {
      throw listenFailure(
        'port (or PORT)',
        config.host,
        config.port,
        error,
        'free it or choose another port',
      );
    });
    const issuer =
      config.port === 0 && input.issuer.endsWith(':0') ? `http://127.0.0.1:${port}` : config.issuer;
    config = { ...config, issuer, port };
    // Bound before the stores open, as the main server is: a port in use fails the start at once.
    const management = config.management
      ? await listenForManagement(config.management, drainTimeoutMs, headersTimeout)
      : undefined;
    if (management) {
      const drainMain = drain;
      // Both stop accepting at once and drain together, before any store closes.
      drain = async () => {
        await Promise.all([drainMain(), management.drain()]);
      };
      config = { ...config, management: { host: management.host, port: management.port } };
    }

    const stores = await openStores({
      ...config.storage,
      dataDir: config.dataDir,
      logger,
      onCommitFailure(error) {
        // Requests in flight may have written into what was rolled back: none of them answers.
        logger.error(
          { error: error.message },
          'the embedded store could not commit: closing every connection',
        );
        server.closeAllConnections();
      },
    });
    closers.push(() => stores.close());
    gate.writes = stores.writes;
    logger.info({ accounts: stores.kinds.accounts, artifacts: stores.kinds.artifacts }, 'storage ready');
    const dependencies = createDependencyMonitor(stores, logger);
    const probeMs = options.dependencyProbeMs ?? DEPENDENCY_PROBE_MS;
    if (probeMs > 0) dependencies.start(probeMs);
    closers.push(async () => dependencies.stop());
    // Counted on the stores' own Redis connection, when there is one: a count then travels in the
    // same write as the other commands of that moment (auto-pipelining), where a connection of its
    // own cost every login about one more system call (bench --profile login).
    const rateLimiters = limits.rateLimits.enabled
      ? createRateLimiters(
          limits.rateLimits,
          stores.redis && { client: stores.redis, prefix: config.storage.redisKeyPrefix },
        )
      : undefined;

    const keys = await loadProviderKeys(config, logger);
    const views = createViews({ assetBase: '/assets' });
    const metrics = createMetrics();
    observeDependencies(metrics, dependencies.down);
    const connectors = countLogins(buildConnectors(config, metrics, logger), metrics);
    const demo = options.demo ? await options.demo(issuer) : undefined;
    const now = options.now ?? (() => new Date());
    const avatarStore = createSqlAvatarStore(stores.db);
    const accountCache = createAccountCache();
    closers.push(async () => accountCache.close());
    const avatarsConfig = config.avatars;
    const avatars = createAvatarMirror({
      store: avatarStore,
      kv: stores.kv,
      policy: avatarFetchPolicy(config, sandboxUrl),
      issuer,
      logger,
      now,
      retryAfterSeconds: avatarsConfig.retryAfter,
    });
    const findAccount = createFindAccount(stores.db, { avatars, cache: accountCache });
    const accounts = cachedAccounts(stores.db, accountCache);
    const ownClients = [accountPageClient(issuer), ...(demo ? [demo.client] : [])];
    const provider = createProvider({
      config,
      clients: [...config.clients, ...ownClients],
      keys,
      adapter: stores.oidcAdapter,
      findAccount,
      views,
      logger,
      rememberedScopes: (subject, clientId) => rememberedScopes(stores.db, subject, clientId),
    });
    observeProvider(provider, metrics);
    // Pending index rows are written before the stores close (closers run in reverse).
    closers.push(indexAccountArtifacts(provider, stores.db, logger));
    const stopArtifactSweep = startArtifactSweep(stores.db, logger);
    closers.push(async () => stopArtifactSweep());
    const stopDeletionCleanup = startDeletionCleanup({
      adapter: stores.oidcAdapter,
      db: stores.db,
      kv: stores.kv,
      scrub: stores.scrub,
      logger,
      now,
    });
    closers.push(async () => stopDeletionCleanup());
    // Stopped before the stores close (closers run in reverse): a pass under way finishes first.
    const eventDelivery = startEventDelivery({
      db: stores.db,
      logger,
      onGivenUp: observeOutbox(metrics, () => pendingEvents(stores.db)),
      ...options.eventDelivery,
    });
    closers.push(() => eventDelivery.stop());
    const notifier = createAccountNotifier(
      provider,
      createWebhookSender({
        issuer,
        jwks: keys.jwks,
        logger,
        now,
        onEnqueued: eventDelivery.kick,
      }),
      logger,
    );
    const miniPrograms = setUpMiniPrograms({
      config,
      provider,
      findAccount,
      stores,
      cookieKeys: keys.cookieKeys,
      logger,
      now,
      onWeChatCall: metrics.wechatCall,
      notifier,
      rateLimiter: rateLimiters?.miniProgram,
      onRateLimited: () => metrics.rateLimited('miniProgram'),
    });
    // Every grant type is registered now (the token exchange above): nothing is served yet.
    await refuseUnusableClients(provider, config.clients, ownClients);
    createApp({
      config,
      provider,
      stores,
      views,
      logger,
      metrics,
      dependencies,
      stopping: () => lifecycle.stopping,
      rateLimiters,
      maxBodyBytes: limits.maxBodyBytes,
      interaction: {
        provider,
        connectors,
        kv: stores.kv,
        states: createStateSigner(keys.cookieKeys),
        db: stores.db,
        accountBySubject: async (subject) => (await accounts(subject))?.account,
        views,
        logger,
        issuer,
        now,
        notifier,
        // A duplicate callback waits out the first delivery's code exchange and profile read.
        callbackWaitMs: callbackOutcomeWaitMs(config.wechat.timeoutMs),
      },
      extraRouters: [
        ...(demo ? [demo.router] : []),
        miniPrograms.router,
        createAvatarRouter(avatarStore, { maxAgeSeconds: avatarsConfig.cacheMaxAge }),
        createAccountPageRouter({
          provider,
          db: stores.db,
          adapter: stores.oidcAdapter,
          kv: stores.kv,
          scrub: stores.scrub,
          views,
          avatars,
          avatarStore,
          apps: config.wechat.apps,
          formKeys: formKeys(keys.cookieKeys),
          issuer,
          logger,
          now,
          notifier,
          recentLoginSeconds: config.account.recentLogin,
        }),
      ],
    });
    if (management) {
      const health = { kinds: stores.kinds, ping: dependencies.check, stopping: () => lifecycle.stopping };
      management.serve(createManagementApp({ health, metrics, logger }).callback());
    }
    server.off('request', answerWhileStarting);
    server.on('request', provider.callback());
    const delaySeconds = config.shutdown.delay;
    if (delaySeconds > 0) {
      announce = () => {
        logger.info({ delaySeconds }, 'shutting down: /readyz answers 503 before the server stops accepting');
        return announceShutdown(server, delaySeconds * 1000);
      };
    }
    // The last line of a clean stop: "shutting down" was the last one, and an operator could not
    // tell an instance that had stopped from one hung in its drain (an operator's review). Once:
    // a second close waits for the first.
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= close().then((clean) => {
        const { inFlight, cut } = drained;
        const counts = { inFlight, drained: inFlight - cut, cut };
        // Said as it is: a store that failed to close (its error line above) is no clean stop.
        if (clean) logger.info(counts, 'stopped: server and stores closed');
        else logger.warn(counts, 'stopped, though something failed to close (see the error above)');
      });
      return stopped;
    };
    return { url: issuer, config, stores, metrics, sandboxUrl, managementUrl: management?.url, close: stop };
  } catch (error) {
    await close();
    throw error;
  }
}

/** How often each instance probes its stores, so that it notices an outage and a recovery by itself. */
const DEPENDENCY_PROBE_MS = 5_000;

/**
 * One connector per configured website and official_account app: logins start with the first of
 * each kind; callbacks are completed by the app their state names.
 */
function buildConnectors(config: Config, metrics: Metrics, logger: Logger): Connectors {
  const client = createWeChatClient({
    apiBaseUrl: config.wechat.apiBaseUrl,
    timeoutMs: config.wechat.timeoutMs,
    onCall: metrics.wechatCall,
  });
  // WeChat's errcode, or what was wrong with its answer (a timeout, an HTTP status, a body that is
  // not JSON): never the access token, the code or the openid, which logFields does not carry.
  const onProfileUnread: ProfileUnread = (app, error) =>
    logger.warn(
      { appid: app.appid, ...error.logFields() },
      'WeChat profile not read: the login goes on without the nickname and avatar',
    );
  const { openBaseUrl } = config.wechat;
  const byAppid = new Map<string, LoginConnector>();
  let website: WebsiteQrConnector | undefined;
  let officialAccount: OfficialAccountConnector | undefined;
  for (const app of config.wechat.apps) {
    if (app.kind === 'website') {
      const connector = createWebsiteQrConnector({ app, client, openBaseUrl, onProfileUnread });
      website ??= connector;
      byAppid.set(app.appid, connector);
    } else if (app.kind === 'official_account') {
      const connector = createOfficialAccountConnector({ app, client, openBaseUrl, onProfileUnread });
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

/**
 * The clients oidc-provider would refuse at their first use (a person's login), refused at the
 * start instead with every one named (src/config/client-metadata.ts): loadConfig has checked the
 * configured ones with the same provider, but not a configuration built in code, nor the clients
 * the server adds itself, nor against keys generated at this start.
 */
async function refuseUnusableClients(
  provider: Provider,
  configured: readonly ClientConfig[],
  own: readonly ClientConfig[],
): Promise<void> {
  const indexes = new Map(configured.map((client, index) => [client.client_id, index]));
  const ids = [...configured, ...own].map((client) => client.client_id);
  const refusals = await clientRefusals(provider, ids);
  if (refusals.length === 0) return;
  const lines = refusals.map((refusal) => {
    const [path, message] = refusalProblem(refusal, indexes.get(refusal.clientId));
    return `  ${formatPath(path)}: ${message}`;
  });
  throw new Error(`refusing to start: oidc-provider refuses client metadata:\n${lines.join('\n')}`);
}

/** The management listener, answering 503 (as the main server does) until `serve` is called. */
interface ManagementServer {
  host: string;
  port: number;
  url: string;
  serve(app: (req: IncomingMessage, res: ServerResponse) => void): void;
  drain(): Promise<void>;
}

/**
 * Opens the management listener (config.management). A port it cannot bind stops the start with
 * a message naming the setting (listenFailure).
 */
async function listenForManagement(
  settings: ManagementListener,
  drainTimeoutMs: number,
  headersTimeout: number,
): Promise<ManagementServer> {
  const server = createServer(requestDeadlines(headersTimeout), answerWhileStarting);
  const connections = trackConnections(server);
  const { host } = settings;
  const port = await listen(server, settings.port, host).catch((error: NodeJS.ErrnoException) => {
    throw listenFailure(
      'management.port',
      host,
      settings.port,
      error,
      'free it or choose another management port',
    );
  });
  return {
    host,
    port,
    url: `http://${address(host, port)}`,
    serve(app) {
      server.off('request', answerWhileStarting);
      server.on('request', app);
    },
    // A scrape or probe cut short is retried by its caller: not worth a line.
    drain: async () => {
      await closeServer(server, connections, drainTimeoutMs);
    },
  };
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

/**
 * The answer to a request that arrives after the server listens (it listens first, to learn its
 * port) and before the application is ready (stores opened, migrations run): 503, never silence.
 * An OAuth error for clients; a person's browser gets the "temporarily unavailable" sentence in
 * their language (the views are not loaded yet, so a bare page). Liveness (/healthz) is the
 * exception: the process is up, and a probe failing through a long migration would have the
 * orchestrator restart the instance, and the migration, again and again.
 */
export function answerWhileStarting(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && req.url?.split('?', 1)[0] === '/healthz') {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end('{"status":"ok"}');
    return;
  }
  res.statusCode = 503;
  res.setHeader('Retry-After', '1');
  res.setHeader('Cache-Control', 'no-store');
  if (!req.headers.accept?.includes('text/html')) {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'starting' }));
    return;
  }
  const lang = pickLang(undefined, req.headers['accept-language']);
  const message = translator(lang)('error.serviceUnavailable');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  // A page with nothing to run or frame, said as every page of ours says it.
  res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(
    `<!doctype html><html lang="${lang}"><meta charset="utf-8"><title>${message}</title><p>${message}</p></html>`,
  );
}
