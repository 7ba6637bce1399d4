import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { describe, expect, test } from 'vitest';
import {
  createDependencyMonitor,
  type Dependency,
  type DependencyMonitor,
  dependencyGate,
  probeAfterServerErrors,
} from '../../src/http/dependency-gate.ts';
import { errorPage } from '../../src/http/errors.ts';
import { frontDoor } from '../../src/http/front-door.ts';
import { inRequestContext, requestLog } from '../../src/http/request-log.ts';
import { scoped } from '../../src/http/scoped.ts';
import { createViews } from '../../src/http/views.ts';
import { capturedLog } from '../helpers/captured-log.ts';

const KINDS = { accounts: 'postgres', artifacts: 'redis' } as const;

/** A monitor whose probe reports `next` when released (or never, if `hang`). */
function fakeMonitor(
  initiallyDown: Dependency[],
  options: { hang?: boolean; next?: Dependency[]; probeMs?: number } = {},
) {
  let down = initiallyDown;
  const monitor: DependencyMonitor & { probes: number } = {
    probes: 0,
    check() {
      monitor.probes++;
      if (options.hang) return new Promise(() => {});
      down = options.next ?? down;
      const status = { database: !down.includes('database'), cache: !down.includes('cache') };
      return options.probeMs ? sleep(options.probeMs, status) : Promise.resolve(status);
    },
    down: () => down,
    start() {},
    stop() {},
  };
  return monitor;
}

/**
 * The app's arrangement: the front door with the probe stage and the request log (its lines in
 * `logs`), then the gate, then a handler.
 */
async function serve(monitor: DependencyMonitor, handler: Koa.Middleware) {
  const views = createViews({ assetBase: '/assets' });
  const app = new Koa();
  const options = { views, kinds: KINDS };
  const { logger, lines: logs } = capturedLog();
  app.use(
    frontDoor({
      stages: [
        probeAfterServerErrors(monitor, options),
        requestLog(logger, { requests: 'failures', trustProxy: false }),
      ],
      onError: errorPage(views),
      around: inRequestContext,
    }),
  );
  app.use(scoped([dependencyGate(monitor, options)]));
  app.use(handler);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    logs,
    get: (path: string) => fetch(`${base}${path}`, { signal: AbortSignal.timeout(2000) }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('dependency gate', () => {
  test('while a store is known down, answers 503 at once, even when the probe hangs', async () => {
    const monitor = fakeMonitor(['cache'], { hang: true });
    const app = await serve(monitor, (ctx) => {
      ctx.body = 'served';
    });
    try {
      const refused = await app.get('/token');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
      expect(monitor.probes).toBeGreaterThan(0);
      // Paths that need no store are served all the same.
      expect((await app.get('/.well-known/openid-configuration')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  test('the first request to meet a store that just went down gets the 503, not a bare 500', async () => {
    const monitor = fakeMonitor([], { next: ['database'] });
    const app = await serve(monitor, () => {
      throw new Error('connection refused');
    });
    try {
      const response = await app.get('/auth');
      expect(response.status).toBe(503);
      expect(monitor.probes).toBe(1);
    } finally {
      await app.close();
    }
  });

  // A login's failure page (its "try again", its way back to the application), or a mini program
  // told to call wx.login() again, says more than the gate's page could.
  test('a 503 the handler answered itself is kept as it is, even when the probe then finds a store down', async () => {
    const monitor = fakeMonitor([], { next: ['database'] });
    const app = await serve(monitor, (ctx) => {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'call wx.login() again' };
    });
    try {
      const response = await app.get('/token');
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: 'temporarily_unavailable',
        error_description: 'call wx.login() again',
      });
      expect(monitor.probes).toBe(1);
    } finally {
      await app.close();
    }
  });

  test('a server error with every store up stays a 500 page, after one probe', async () => {
    const monitor = fakeMonitor([]);
    const app = await serve(monitor, () => {
      throw new Error('a bug');
    });
    try {
      const response = await app.get('/interaction/abc');
      expect(response.status).toBe(500);
      expect(response.headers.get('content-type')).toContain('text/html');
      expect(monitor.probes).toBe(1);
    } finally {
      await app.close();
    }
  });

  // README: every line written while serving a request carries its requestId. The refusal's line
  // did not where it is written outside the request's log context: after a server error (the front
  // door's finish), and on the paths served without a context (/me, introspection).
  test.each([
    ['refused by the gate, on a path served without a log context', '/me', ['cache'] as Dependency[], false],
    ['turned into a 503 after its server error', '/token', [] as Dependency[], true],
  ])('the refusal line of a request %s names its request id', async (_, path, initiallyDown, throws) => {
    const monitor = fakeMonitor(initiallyDown, { next: ['cache'] });
    const app = await serve(monitor, () => {
      if (throws) throw new Error('connection refused');
    });
    try {
      const response = await app.get(path);
      expect(response.status).toBe(503);
      const requestId = response.headers.get('x-request-id');
      const refused = app.logs.filter((line) => line.msg === 'refused: a dependency is down');
      expect(refused).toEqual([expect.objectContaining({ requestId, down: ['cache'] })]);
    } finally {
      await app.close();
    }
  });
});

// The probe after a server error is awaited in the front door's finish, after the time was taken:
// a client that waited 3.0 s for its 503 had an access line saying 1101 ms (an operator's review).
test("the access line's ms counts the probe a server error waited for", async () => {
  const monitor = fakeMonitor([], { next: ['cache'], probeMs: 300 });
  const app = await serve(monitor, () => {
    throw new Error('connection refused');
  });
  try {
    const response = await app.get('/token');
    expect(response.status).toBe(503);
    const access = app.logs.find((line) => line.msg === 'request');
    expect(access).toMatchObject({ status: 503 });
    expect(access?.ms).toBeGreaterThanOrEqual(300);
  } finally {
    await app.close();
  }
});

describe('dependency monitor at the shutdown', () => {
  // A 5xx answered during the drain set off a probe that was still under way when the stores
  // closed: it failed on them, and the log said "dependency is down" with every store up (an
  // operator's review). The monitor stops after the drain, before the stores close.
  test('a probe under way when it stops is not recorded, and none starts after', async () => {
    let pings = 0;
    let answer: (status: { database: boolean; cache: boolean }) => void = () => {};
    const stores = {
      kinds: KINDS,
      ping: () => {
        pings++;
        return new Promise<{ database: boolean; cache: boolean }>((resolve) => {
          answer = resolve;
        });
      },
    };
    const { logger, lines } = capturedLog('debug');
    const monitor = createDependencyMonitor(stores, logger);
    const underWay = monitor.check();
    monitor.stop();
    // The stores close: the probe under way fails on them.
    answer({ database: false, cache: false });
    expect(await underWay).toEqual({ database: true, cache: true });
    expect(monitor.down()).toEqual([]);
    expect(await monitor.check()).toEqual({ database: true, cache: true });
    expect(pings).toBe(1);
    expect(lines).toEqual([]);
  });
});
