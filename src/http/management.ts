import { METHODS } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createHealthRouter, type Readiness } from './health.ts';
import { createMetricsRouter } from './metrics.ts';

export interface ManagementDeps {
  /** What /readyz asks: the dependency monitor's probe, as on the main port. */
  health: Readiness;
  metrics: Metrics;
  logger: Logger;
}

/**
 * The management listener's application (config `management`): /metrics, /healthz and /readyz,
 * and 404 for anything else. A koa app of its own rather than oidc-provider's: nothing of the
 * provider, its pages or its cookies is reachable on this port, and none of the public port's
 * middleware (rate limits, the dependency gate, security headers for pages) has anything to do here.
 */
export function createManagementApp(deps: ManagementDeps): Koa {
  const app = new Koa();
  // Every method Node accepts is known: TRACE and the like get 405 with Allow, not a 501 (as src/app.ts).
  const router = new Router({ methods: METHODS });
  router.use(createHealthRouter(deps.health).routes(), createMetricsRouter(deps.metrics).routes());
  app.use(router.routes());
  app.use(router.allowedMethods());
  // Koa would print to stderr otherwise: errors go to the log, as the public port's do.
  app.on('error', (err: unknown) => deps.logger.error({ err }, 'management listener error'));
  return app;
}
