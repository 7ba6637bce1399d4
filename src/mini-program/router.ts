import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { refuseUnreadableBody } from '../http/errors.ts';
import { isStoreOutage, OUTAGE_RETRY_AFTER_SECONDS } from '../storage/outage.ts';
import { authenticate, type MiniProgramCaller } from './bearer.ts';
import { checkSession } from './check-session.ts';
import { decrypt } from './decrypt.ts';
import type { MiniProgramDeps } from './deps.ts';
import { MiniProgramError, sendError } from './errors.ts';
import { phoneNumber } from './phone-number.ts';

/** The largest JSON body read when no limit is configured (some tests): 256 kB. */
const JSON_LIMIT_BYTES = 256 * 1024;

const jsonLimitOf = (deps: MiniProgramDeps) =>
  Math.min(deps.maxBodyBytes ?? JSON_LIMIT_BYTES, JSON_LIMIT_BYTES);

type Handler = (ctx: Context, deps: MiniProgramDeps, caller: MiniProgramCaller) => Promise<void>;

/**
 * The endpoints a mini program calls with its access token (JSON in and out): decrypt user data,
 * bind the phone number, check the session. Bodies are parsed here only, never in front of
 * oidc-provider.
 */
export function createMiniProgramRouter(deps: MiniProgramDeps): Router {
  const router = new Router({ prefix: '/mini-program' });
  const json = bodyParser({
    enableTypes: ['json'],
    jsonLimit: jsonLimitOf(deps),
    encoding: 'utf-8',
    onError: refuseUnreadableBody,
  });
  const route = (handler: Handler) => async (ctx: Context) => {
    const caller = await authenticate(ctx, deps);
    await limitCalls(deps, caller);
    return handler(ctx, deps, caller);
  };
  router.use(jsonErrors(deps));
  router.post('/decrypt', json, route(decrypt));
  router.post('/phone-number', json, route(phoneNumber));
  router.post('/check-session', route(checkSession));
  return router;
}

/**
 * Per person and mini program, not per address: a mini program's users share their carrier's
 * NATs, while one person's token (or a script holding it) calling in a loop would spend the mini
 * program's daily WeChat quota (getuserphonenumber, checksession) for everyone. Counted after the
 * token is checked, so a stranger cannot spend someone else's allowance.
 */
async function limitCalls(deps: MiniProgramDeps, caller: MiniProgramCaller): Promise<void> {
  if (!deps.rateLimit) return;
  const waitMs = await deps.rateLimit(`${caller.identity.appid}:${caller.account.id}`);
  if (waitMs === undefined) return;
  const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
  deps.onRateLimited?.();
  deps.logger.warn(
    { appid: caller.identity.appid, accountId: caller.account.id, retryAfter },
    'rate limited',
  );
  throw new MiniProgramError(
    429,
    'temporarily_unavailable',
    `too many calls for this person, retry after ${retryAfter} seconds`,
    { retryAfter },
  );
}

/**
 * A body the parser refused, said as precisely as its status allows: too large (413), an encoding
 * or charset it cannot decode (415), else not a JSON object (bad JSON, `null`, a bare string, or a
 * compressed body that does not decompress).
 */
function unreadBody(status: number, limitBytes: number): MiniProgramError {
  if (status === 413)
    return new MiniProgramError(413, 'invalid_request', `the body is larger than ${limitBytes} bytes`);
  if (status === 415) {
    return new MiniProgramError(
      415,
      'invalid_request',
      'the body has a Content-Encoding not supported (gzip, deflate and br are; the body is read as UTF-8)',
    );
  }
  return new MiniProgramError(
    400,
    'invalid_request',
    'the body is not a JSON object: send one with Content-Type: application/json',
  );
}

const STORE_UNAVAILABLE = new MiniProgramError(
  503,
  'temporarily_unavailable',
  "the server's storage did not answer; try again shortly",
  { retryAfter: OUTAGE_RETRY_AFTER_SECONDS },
);

/** Every answer JSON and uncacheable, errors included (a body parser's too). */
function jsonErrors(deps: MiniProgramDeps) {
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (error) {
      if (error instanceof MiniProgramError) return sendError(ctx, error);
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500)
        return sendError(ctx, unreadBody(status, jsonLimitOf(deps)));
      // A store out of reach or not answering (the token's lookup, the account's): try again shortly,
      // as the token exchange and the phone binding say, not a 500 that reads as a bug.
      if (isStoreOutage(error)) {
        (ctx.state.log ?? deps.logger).warn(
          { err: error, path: ctx.path },
          'mini program endpoint failed: a store is unavailable',
        );
        return sendError(ctx, STORE_UNAVAILABLE);
      }
      (ctx.state.log ?? deps.logger).error({ err: error, path: ctx.path }, 'mini program endpoint failed');
      sendError(
        ctx,
        new MiniProgramError(500, 'server_error', 'something went wrong; the server log says what'),
      );
    }
  };
}
