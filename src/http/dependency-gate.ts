import type { Middleware } from 'koa';
import type { Logger } from '../observability/logger.ts';
import { OUTAGE_RETRY_AFTER_SECONDS } from '../storage/outage.ts';
import type { StorageKind, Stores } from '../storage/ports.ts';
import type { RequestStage } from './front-door.ts';
import type { Scoped } from './scoped.ts';
import { pageContext, type Views } from './views.ts';

export type Dependency = 'database' | 'cache';
export type DependencyStatus = Record<Dependency, boolean>;

/**
 * What this instance last knew of its stores. The gate answers from it without waiting, so a
 * request never hangs on a store that is down; probes (a timer, /readyz, any 5xx, and requests
 * while something is down) keep it current, so service resumes by itself.
 */
export interface DependencyMonitor {
  /** Probes now and records the result; concurrent callers share one probe. Never rejects. */
  check(): Promise<DependencyStatus>;
  /** The dependencies last seen down (empty when all were up). */
  down(): readonly Dependency[];
  /** Starts probing every intervalMs (the timer does not keep the process alive). */
  start(intervalMs: number): void;
  /** For good, before the stores close: no probe after it, and a probe under way is not recorded. */
  stop(): void;
}

export function createDependencyMonitor(
  stores: Pick<Stores, 'ping' | 'kinds'>,
  logger: Pick<Logger, 'warn' | 'info'>,
): DependencyMonitor {
  let status: DependencyStatus = { database: true, cache: true };
  // What down() answers, made when the status changes rather than on every request the gate sees.
  let down: readonly Dependency[] = [];
  let inFlight: Promise<DependencyStatus> | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Set at the shutdown, once the drain is over and before the stores close. A probe under way
  // then (one a 5xx answered during the drain set off) failed on the closing stores, and the log
  // said "dependency is down" on a deploy with every store up (an operator's review).
  let stopped = false;
  const record = (next: DependencyStatus) => {
    if (stopped) return status;
    for (const dependency of ['database', 'cache'] as const) {
      if (next[dependency] === status[dependency]) continue;
      const fields = { dependency, kind: kindOf(stores.kinds, dependency) };
      if (next[dependency]) logger.info(fields, 'dependency is back: serving again');
      else logger.warn(fields, 'dependency is down: answering 503 until it is back');
    }
    status = next;
    down = (['database', 'cache'] as const).filter((dependency) => !next[dependency]);
    return next;
  };
  const monitor: DependencyMonitor = {
    check() {
      if (stopped) return Promise.resolve(status);
      inFlight ??= stores
        .ping()
        .catch(() => ({ database: false, cache: false }))
        .then(record)
        .finally(() => {
          inFlight = undefined;
        });
      return inFlight;
    },
    down: () => down,
    start(intervalMs) {
      clearInterval(timer);
      timer = setInterval(() => void monitor.check(), intervalMs);
      timer.unref();
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      timer = undefined;
    },
  };
  return monitor;
}

/** Paths served without the stores: probes, metrics, assets, discovery and the JWKS. */
const NEEDS_NO_STORE = [/^\/(healthz|readyz|metrics)$/, /^\/assets\//, /^\/\.well-known\//, /^\/jwks$/];

type GateOptions = { views: Views; kinds: Stores['kinds']; retryAfterSeconds?: number };

/**
 * Fails fast with 503 and a clear message while a store is down: an OAuth error JSON for clients,
 * a readable page for people. Not async: while all is well a request passes straight through.
 */
export function dependencyGate(monitor: DependencyMonitor, options: GateOptions): Scoped {
  return {
    applies: () => monitor.down().length > 0,
    middleware: (ctx, next) => {
      if (monitor.down().length === 0 || needsNoStore(ctx.path)) return next();
      void monitor.check();
      unavailable(ctx, monitor.down(), options);
      return Promise.resolve();
    },
  };
}

/**
 * The front door's stage after every response: a 5xx triggers a probe, so the next request knows.
 * The first request to meet a store that just went down waits for that probe and, when a store is
 * indeed down, answers as every later request will (503, Retry-After) rather than with a bare 500.
 * A 503 is left as it is: the gate's own, or an answer that says more than the gate could (a
 * login's failure page with its "try again", a mini program told to call wx.login() again).
 */
export function probeAfterServerErrors(monitor: DependencyMonitor, options: GateOptions): RequestStage {
  return {
    finish(ctx) {
      if (ctx.status < 500) return;
      // A path that needs no store, or an answer that says "later" already: probe, but never keep
      // the response waiting for it.
      if (needsNoStore(ctx.path) || ctx.status === 503) {
        void monitor.check();
        return;
      }
      // Already known down: it was under way when the store went (a hung one, failing at its
      // timeout) and answers as the gate does now.
      if (monitor.down().length > 0) {
        void monitor.check();
        unavailable(ctx, monitor.down(), options);
        return;
      }
      return monitor.check().then(() => {
        if (monitor.down().length > 0) unavailable(ctx, monitor.down(), options);
      });
    },
  };
}

function needsNoStore(path: string): boolean {
  return NEEDS_NO_STORE.some((pattern) => pattern.test(path));
}

function unavailable(
  ctx: Parameters<Middleware>[0],
  down: readonly Dependency[],
  options: GateOptions,
): void {
  const names = down.map((dependency) => `${describe(dependency)} (${kindOf(options.kinds, dependency)})`);
  // The id given explicitly: the line is written outside the request's log context both after a
  // server error (the front door's finish) and on the paths served without one (request-log.ts,
  // inRequestContext), and README promises it on every line of a request (an operator's review).
  ctx.state.log?.warn({ requestId: ctx.state.requestId, down }, 'refused: a dependency is down');
  ctx.status = 503;
  ctx.set('Retry-After', String(options.retryAfterSeconds ?? OUTAGE_RETRY_AFTER_SECONDS));
  ctx.set('Cache-Control', 'no-store');
  if (ctx.accepts('json', 'html') === 'html') {
    const page = pageContext(ctx);
    ctx.type = 'html';
    ctx.body = options.views.render('error', page, {
      message: page.t('error.serviceUnavailable'),
      requestId: ctx.state.requestId,
    });
    return;
  }
  ctx.body = {
    error: 'temporarily_unavailable',
    error_description: `${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} unavailable: try again shortly`,
  };
}

function describe(dependency: Dependency): string {
  return dependency === 'database' ? 'the account database' : 'the session store';
}

function kindOf(kinds: Stores['kinds'], dependency: Dependency): StorageKind {
  return dependency === 'database' ? kinds.accounts : kinds.artifacts;
}
