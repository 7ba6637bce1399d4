import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../observability/logger.ts';

/**
 * Gives every request an id (kept from a trusted proxy's X-Request-Id when it looks sane), a child
 * logger carrying it, and one access log line. Only the path is logged: query strings carry codes,
 * states and tokens.
 *
 * With `requests: 'failures'` (the default) a successful request's line is written at debug: at
 * info, pino drops it before building it. An access line per token or userinfo call was a tenth of
 * the call's cost, for what the HTTP metrics (and the proxy in front) already tell; logins, failures
 * and everything handlers log keep their request id either way.
 */
export function requestLog(logger: Logger, options: { requests: 'all' | 'failures' }): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = /^[\w.-]{8,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    // Made when a handler first logs: most requests write only the access line below.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', {
      get: () => {
        child ??= logger.child({ requestId });
        return child;
      },
      enumerable: true,
      configurable: true,
    });
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const level =
        ctx.status >= 500 ? 'error' : ctx.status >= 400 || options.requests === 'all' ? 'info' : 'debug';
      // A line pino would drop is not built (most successful requests, at the default level).
      if (logger.isLevelEnabled(level)) {
        const line = { method: ctx.method, path: ctx.path, status: ctx.status, ms };
        if (child) child[level](line, 'request');
        else logger[level]({ requestId, ...line }, 'request');
      }
    }
  };
}
