import Router from '@koa/router';
import type { Context } from 'koa';
import type { Metrics } from '../observability/metrics.ts';
import type { RequestStage } from './front-door.ts';

/**
 * Counts and times every request by its route template (koa-router's matched path, oidc-provider's
 * included): never the raw path, which carries interaction uids and codes. Unmatched requests share
 * one label.
 */
export function httpMetrics(metrics: Metrics): RequestStage {
  return {
    finish(ctx, elapsedMs) {
      metrics.httpRequest(routeOf(ctx), ctx.method, ctx.status, elapsedMs / 1000);
    },
  };
}

function routeOf(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}

/** GET /metrics in Prometheus's text format. Keep it off the public internet (see the README). */
export function createMetricsRouter(metrics: Metrics): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
