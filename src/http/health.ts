import Router from '@koa/router';
import type { Stores } from '../storage/ports.ts';

/** What /readyz reports on. */
export interface Readiness extends Pick<Stores, 'ping' | 'kinds'> {
  /** True once a shutdown has begun (src/http/shutdown.ts). */
  stopping?: () => boolean;
}

/**
 * /healthz: the process is up. /readyz: it can serve, naming any dependency that is down; 503
 * "stopping" once a shutdown has begun, so that a load balancer stops sending here while the
 * instance still answers (config.shutdown.delay).
 */
export function createHealthRouter(readiness: Readiness): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (readiness.stopping?.()) {
      ctx.status = 503;
      ctx.body = { status: 'stopping' };
      return;
    }
    const { database, cache } = await readiness.ping();
    const ready = database && cache;
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      status: ready ? 'ready' : 'unavailable',
      dependencies: {
        database: { kind: readiness.kinds.accounts, up: database },
        cache: { kind: readiness.kinds.artifacts, up: cache },
      },
    };
  });
  return router;
}
