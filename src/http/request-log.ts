import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import { type RequestStage, setAnswerHeader } from './front-door.ts';

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
export function requestLog(
  logger: Logger,
  options: { requests: 'all' | 'failures'; trustProxy: boolean },
): RequestStage {
  return {
    start(ctx) {
      // Only a proxy we trust names the request: a client's own id would let it forge or reuse ids
      // in the log.
      const incoming = options.trustProxy ? ctx.get('x-request-id') : '';
      const requestId = /^[\w.-]{8,64}$/.test(incoming) ? incoming : randomUUID();
      // Whatever an earlier middleware put in the state is kept.
      ctx.state = Object.assign(new RequestState(logger, requestId), ctx.state);
    },
    finish(ctx, elapsedMs) {
      setAnswerHeader(ctx, 'X-Request-Id', ctx.state.requestId);
      const level =
        ctx.status >= 500 ? 'error' : ctx.status >= 400 || options.requests === 'all' ? 'info' : 'debug';
      // A line pino would drop is not built (most successful requests, at the default level).
      if (!logger.isLevelEnabled(level)) return;
      const ms = Math.round(elapsedMs * 10) / 10;
      const { requestId } = ctx.state;
      logger[level]({ requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms }, 'request');
    },
  };
}

/**
 * A request's `ctx.state`: its id, and a child logger carrying it, made when a handler first logs
 * (most requests write at most the access line).
 *
 * The logger is a getter of the class, not an accessor defined on each request's state with a
 * closure of its own: V8 turns every object given such an accessor (after the first) into a
 * dictionary-mode object and keeps the accessor in the old generation, where it holds what its
 * closure reaches through the young generation's collections. Here that was only the id and the
 * logger; the same pattern over a whole request is what made ioredis and oidc-provider promote
 * megabytes per collection (patches/README.md).
 */
class RequestState {
  readonly requestId: string;
  readonly #logger: Logger;
  #child: Logger | undefined;

  constructor(logger: Logger, requestId: string) {
    this.#logger = logger;
    this.requestId = requestId;
  }

  get log(): Logger {
    this.#child ??= this.#logger.child({ requestId: this.requestId });
    return this.#child;
  }
}
