import Router from '@koa/router';
import type { Stores } from '../storage/ports.ts';

/** /healthz: the process is up. /readyz: it can serve, naming any dependency that is down. */
export function createHealthRouter(stores: Pick<Stores, 'ping' | 'kinds'>): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const { database, cache } = await stores.ping();
    const ready = database && cache;
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      status: ready ? 'ready' : 'unavailable',
      dependencies: {
        database: { kind: stores.kinds.accounts, up: database },
        cache: { kind: stores.kinds.artifacts, up: cache },
      },
    };
  });
  return router;
}
