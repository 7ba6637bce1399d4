import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { authenticate, type MiniProgramCaller } from './bearer.ts';
import { checkSession } from './check-session.ts';
import { decrypt } from './decrypt.ts';
import type { MiniProgramDeps } from './deps.ts';
import { MiniProgramError, sendError } from './errors.ts';
import { phoneNumber } from './phone-number.ts';

type Handler = (ctx: Context, deps: MiniProgramDeps, caller: MiniProgramCaller) => Promise<void>;

/**
 * The endpoints a mini program calls with its access token (JSON in and out): decrypt user data,
 * bind the phone number, check the session. Bodies are parsed here only, never in front of
 * oidc-provider.
 */
export function createMiniProgramRouter(deps: MiniProgramDeps): Router {
  const router = new Router({ prefix: '/mini-program' });
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '256kb', encoding: 'utf-8' });
  const route = (handler: Handler) => async (ctx: Context) =>
    handler(ctx, deps, await authenticate(ctx, deps));
  router.use(jsonErrors(deps));
  router.post('/decrypt', json, route(decrypt));
  router.post('/phone-number', json, route(phoneNumber));
  router.post('/check-session', route(checkSession));
  return router;
}

/** Every answer JSON and uncacheable, errors included (a body parser's too). */
function jsonErrors(deps: MiniProgramDeps) {
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (error) {
      if (error instanceof MiniProgramError) return sendError(ctx, error);
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        const why = status === 413 ? 'the body is larger than 256 kB' : 'the body is not valid JSON';
        return sendError(ctx, new MiniProgramError(400, 'invalid_request', why));
      }
      (ctx.state.log ?? deps.logger).error({ err: error, path: ctx.path }, 'mini program endpoint failed');
      sendError(
        ctx,
        new MiniProgramError(500, 'server_error', 'something went wrong; the server log says what'),
      );
    }
  };
}
