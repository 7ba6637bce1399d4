import { METHODS } from 'node:http';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from './config/types.ts';
import { type DependencyMonitor, dependencyGate, probeAfterServerErrors } from './http/dependency-gate.ts';
import { domainVerification } from './http/domain-verification.ts';
import { errorPage } from './http/errors.ts';
import { frontDoor, type RequestStage } from './http/front-door.ts';
import { createHealthRouter } from './http/health.ts';
import { issuerOrigin } from './http/issuer-origin.ts';
import { createMetricsRouter, httpMetrics } from './http/metrics.ts';
import { postedRequestsAsQueries } from './http/posted-requests.ts';
import { type RateLimiters, rateLimits } from './http/rate-limits.ts';
import { requestSizeLimit } from './http/request-limits.ts';
import { inRequestContext, requestLog } from './http/request-log.ts';
import { type Scoped, scoped } from './http/scoped.ts';
import { securityHeaders } from './http/security-headers.ts';
import { statusPages } from './http/status-pages.ts';
import { pragmaOnTokenResponses } from './http/token-pragma.ts';
import type { Views } from './http/views.ts';
import type { InteractionDeps } from './interaction/deps.ts';
import { readInteractionAhead } from './interaction/load.ts';
import { loginAtAuthorization } from './interaction/login-at-authorization.ts';
import { createInteractionRouter } from './interaction/router.ts';
import type { Logger } from './observability/logger.ts';
import type { Metrics } from './observability/metrics.ts';
import { releasingOnServerError } from './oidc/single-use.ts';
import type { Stores } from './storage/ports.ts';

export interface AppDeps {
  config: Config;
  provider: Provider;
  stores: Stores;
  views: Views;
  logger: Logger;
  interaction: InteractionDeps;
  /**
   * Prometheus metrics: every request is counted, and /metrics serves them, unless the management
   * listener does (config.management).
   */
  metrics?: Metrics;
  /** What is known of the stores: requests fail fast with 503 while one is down. */
  dependencies?: DependencyMonitor;
  /** True once the instance is shutting down: /readyz answers 503 (src/http/shutdown.ts). */
  stopping?: () => boolean;
  /** 429 past these limits on authorization requests, interaction posts, WeChat callbacks and tokens. */
  rateLimiters?: RateLimiters;
  /** 413 for a declared body larger than this. */
  maxBodyBytes?: number;
  /** Extra routers mounted before oidc-provider's own routes (the demo relying party). */
  extraRouters?: Router[];
}

/**
 * The HTTP application is oidc-provider's koa app with our middleware and routes in front of its
 * own (provider.use inserts before the provider's router): one server, one origin.
 */
export function createApp(deps: AppDeps): Provider {
  const { provider, views, config } = deps;
  // With trustProxy, the client address is the one the proxy in front appended to X-Forwarded-For,
  // not the leftmost entry, which the client writes itself (and would use to dodge rate limits).
  provider.maxIpsCount = 1;
  const { dependencies } = deps;
  const gateOptions = { views, kinds: deps.stores.kinds };
  // After a response is decided, in this order: a 503 replacing a 500 still gets its headers,
  // its access line and its count.
  const stages: RequestStage[] = [
    issuerOrigin(config),
    statusPages(views),
    ...(dependencies ? [probeAfterServerErrors(dependencies, gateOptions)] : []),
    securityHeaders({
      frameOrigins: [new URL(config.wechat.openBaseUrl).origin],
      https: new URL(config.issuer).protocol === 'https:',
    }),
    requestLog(deps.logger, { requests: config.log.requests, trustProxy: config.trustProxy }),
    ...(deps.metrics ? [httpMetrics(deps.metrics)] : []),
  ];
  provider.use(frontDoor({ stages, onError: errorPage(views), around: inRequestContext }));
  const { rateLimiters: limiters, metrics, interaction } = deps;
  provider.use(
    scoped([
      // Health and metrics answer even while a store is down: in front of the dependency gate.
      routes([
        createHealthRouter({
          kinds: deps.stores.kinds,
          ping: dependencies ? dependencies.check : () => deps.stores.ping(),
          stopping: deps.stopping,
        }),
        // With a management listener, /metrics is served there alone (src/http/management.ts).
        ...(metrics && !config.management ? [createMetricsRouter(metrics)] : []),
      ]),
      // Around everything a token request meets: the gate's 503 and the rate limit's 429 included.
      pragmaOnTokenResponses(provider.pathFor('token')),
      ...(dependencies ? [dependencyGate(dependencies, gateOptions)] : []),
      ...(deps.maxBodyBytes ? [requestSizeLimit(deps.maxBodyBytes)] : []),
      // Before the rate limits: the GET it leads to is the request counted.
      postedRequestsAsQueries([provider.pathFor('authorization'), provider.pathFor('end_session')]),
      ...(limiters
        ? [
            rateLimits({
              limiters,
              views,
              metrics,
              alongside: (ctx) => readInteractionAhead(ctx, interaction),
              clientIds: new Set(config.clients.map((client) => client.client_id)),
            }),
          ]
        : []),
      // Last before oidc-provider's token endpoint: what it spends, it gives back if it then fails.
      releasingOnServerError(provider.pathFor('token'), deps.logger),
      loginAtAuthorization(interaction, provider.pathFor('authorization')),
      domainVerification(config.wechat.mpVerifyTokens),
      routes([assetsRouter(views), createInteractionRouter(interaction), ...(deps.extraRouters ?? [])]),
    ]),
  );
  return provider;
}

/**
 * The routers merged into one (their routes keep their paths, prefixes and order): a request is
 * matched once, instead of once per router and again by each router's allowedMethods. A request
 * whose path starts with none of the routes' static prefixes (every token, userinfo and
 * introspection call, on its way to oidc-provider's own routes) skips the routers altogether.
 */
function routes(routers: Router[]): Scoped {
  // Every method Node's parser accepts counts as known: one that none of our routes at a path takes
  // (TRACE, PROPFIND...) is refused 405 with Allow, as PUT is, not 501: a 5xx that logged an error,
  // counted as a server error and probed the stores, for any client sending an odd method.
  const merged = new Router({ methods: METHODS });
  for (const router of routers) merged.use(router.routes());
  // The router's own context type is what koa gives every middleware, with params the router adds.
  const matched = merged.routes() as unknown as Middleware;
  const allowedMethods = merged.allowedMethods() as unknown as Middleware;
  const prefixes = staticPrefixes(merged);
  return {
    applies: (_, path) => prefixes.some((prefix) => path.startsWith(prefix)),
    middleware: (ctx, next) => matched(ctx, () => allowedMethods(ctx, next)),
  };
}

/**
 * What every path a router can match starts with: each route's path up to its first parameter or
 * pattern. A route given as a regular expression, or middleware without a path, can match
 * anything ('').
 */
export function staticPrefixes(router: Router): string[] {
  const prefixes = router.stack.map((layer) =>
    typeof layer.path === 'string' ? (layer.path.split(/[:(*?]/, 1)[0] ?? '') : '',
  );
  return [...new Set(prefixes)];
}

function assetsRouter(views: Views): Router {
  const router = new Router();
  router.get('/assets/app.css', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.set('ETag', views.stylesheet.etag);
    ctx.type = 'text/css; charset=utf-8';
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = views.stylesheet.body;
  });
  return router;
}
