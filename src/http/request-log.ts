import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { type Logger, requestIds } from '../observability/logger.ts';
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
      const { refusal } = ctx.state as { refusal?: Refusal };
      const level = levelOf(ctx.status, options.requests, refusal, ctx.path);
      // A line pino would drop is not built (most successful requests, at the default level).
      if (!logger.isLevelEnabled(level)) return;
      const ms = Math.round(elapsedMs * 10) / 10;
      const { requestId } = ctx.state;
      const line = { requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms };
      // A refusal's OAuth error code (invalid_grant, invalid_client...): what an operator needs to
      // tell a failing client's trouble, and never a secret. Its description is left out.
      const why = refusal ?? oauthErrorOf(ctx.body);
      logger[level](why === undefined ? line : { ...line, ...why }, 'request');
    },
  };
}

/** The `error` of a JSON error answer (an OAuth error, a mini-program endpoint's), when it is one. */
function oauthErrorOf(body: unknown): { error: string } | undefined {
  if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) return undefined;
  const { error } = body as { error?: unknown };
  return typeof error === 'string' && OAUTH_ERROR.test(error) ? { error } : undefined;
}

/**
 * An access line's level: error for a failure of ours; warn for a 503 (debug at /readyz), which
 * says a store is down or the instance is starting or stopping (each logged once where it happens: an outage would
 * otherwise write an error line per request refused); info for a refused request (a 4xx, or an
 * authorization error sent back to the client by redirect, but not the answers to prompt=none,
 * a silent check's everyday outcome), and for the rest with `requests: all`; debug otherwise.
 */
function levelOf(
  status: number,
  requests: 'all' | 'failures',
  refusal: Refusal | undefined,
  path: string,
): 'error' | 'warn' | 'info' | 'debug' {
  // A readiness probe's 503 is its answer, not a failure: a load balancer polling a stopping
  // instance wrote a warning a second (an operator's review); the state it reports is logged once.
  if (status === 503) return path === '/readyz' ? 'debug' : 'warn';
  if (status >= 500) return 'error';
  if (status >= 400 || requests === 'all') return 'info';
  return refusal && !SILENT_OUTCOMES.has(refusal.error) ? 'info' : 'debug';
}

/** What prompt=none is answered with when the person would have to act (OIDC Core 3.1.2.6). */
const SILENT_OUTCOMES: ReadonlySet<string> = new Set([
  'login_required',
  'consent_required',
  'interaction_required',
  'account_selection_required',
]);

/**
 * What oidc-provider said when it refused a request (recordRefusals): the OAuth error, its
 * `error_detail` (the reason it keeps from the client: "authorization code already consumed",
 * "invalid secret provided", "client mismatch"...) and the registered client that asked.
 */
export interface Refusal {
  error: string;
  detail?: string;
  clientId?: string;
}

/** The events oidc-provider emits for the errors it answers itself, one per endpoint. */
const REFUSAL_EVENTS = [
  'authorization.error',
  'grant.error',
  'userinfo.error',
  'introspection.error',
  'revocation.error',
  'pushed_authorization_request.error',
  'end_session.error',
  'end_session_confirm.error',
  'end_session_success.error',
  'discovery.error',
  'jwks.error',
] as const;

/**
 * Keeps on the request's state why oidc-provider refused it, for its access line: the answer itself
 * may be an HTML page (an unregistered redirect_uri) or a redirect to the client (a missing PKCE
 * challenge), where the error is nowhere the line could read it, and the description the client
 * reads says the same for many reasons (an invalid_grant for a spent code, another client's code,
 * a wrong verifier). Errors of the server's own are server_error's (provider.ts).
 */
export function recordRefusals(provider: {
  on(event: string, listener: (ctx: Context, error: unknown) => void): unknown;
}): void {
  for (const event of REFUSAL_EVENTS) {
    provider.on(event, (ctx, error) => {
      const refusal = refusalOf(ctx, error);
      if (refusal && ctx.state instanceof RequestState) ctx.state.refusal = refusal;
    });
  }
}

function refusalOf(ctx: Context, error: unknown): Refusal | undefined {
  const { error: code, error_detail: detail } = (error ?? {}) as { error?: unknown; error_detail?: unknown };
  if (typeof code !== 'string' || !OAUTH_ERROR.test(code)) return undefined;
  const clientId = (ctx as { oidc?: { client?: { clientId?: string } } }).oidc?.client?.clientId;
  return {
    error: code,
    ...(typeof detail === 'string' && loggableDetail(detail) && { detail }),
    ...(clientId && { clientId }),
  };
}

const OAUTH_ERROR = /^[\w.-]{1,64}$/;

/**
 * oidc-provider's details are its own sentences, a few naming what the request sent (a parameter's
 * name, an Origin): kept when short and plain, and never with a run of token-like characters, so
 * that no code, token or secret could reach the log through one.
 */
function loggableDetail(detail: string): boolean {
  return /^[\w .,:;'"()/=-]{1,200}$/.test(detail) && !/[\w-]{24,}/.test(detail);
}

/**
 * Runs the rest of a request with its id in the logger's request context (logger.ts, requestIds):
 * every line logged while serving it carries the id, from the handler's own logger or the
 * process's, however far from the request the line is written.
 *
 * Not userinfo and introspection: nothing of ours logs while oidc-provider serves them (its
 * server_error line names the id itself, provider.ts), and the context costs them about 1 % of
 * their instructions (4,400 of some 390,000 a userinfo call, counted with --instructions).
 */
export function inRequestContext(ctx: Context, next: () => Promise<unknown>): Promise<unknown> {
  const { requestId } = ctx.state as { requestId?: string };
  if (requestId === undefined || UNLOGGED_PATHS.has(ctx.path)) return next();
  return requestIds.run(requestId, next);
}

const UNLOGGED_PATHS: ReadonlySet<string> = new Set(['/me', '/token/introspection']);

/**
 * A request's `ctx.state`: its id, and the logger, whose lines carry the id while the request is
 * served (inRequestContext).
 *
 * The logger is a getter of the class, not an accessor defined on each request's state with a
 * closure of its own: V8 turns every object given such an accessor (after the first) into a
 * dictionary-mode object and keeps the accessor in the old generation, where it holds what its
 * closure reaches through the young generation's collections. The same pattern over a whole
 * request is what made ioredis and oidc-provider promote megabytes per collection (patches/README.md).
 */
class RequestState {
  readonly requestId: string;
  /** Why oidc-provider refused the request, if it did (recordRefusals). */
  refusal: Refusal | undefined = undefined;
  readonly #logger: Logger;

  constructor(logger: Logger, requestId: string) {
    this.#logger = logger;
    this.requestId = requestId;
  }

  get log(): Logger {
    return this.#logger;
  }
}
