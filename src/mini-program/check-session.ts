import type { Context } from 'koa';
import { UpstreamError } from '../upstream/wechat/types.ts';
import type { MiniProgramCaller } from './bearer.ts';
import type { MiniProgramDeps } from './deps.ts';
import { reloginRequired, upstreamFailure } from './errors.ts';

/**
 * POST /mini-program/check-session — asks WeChat (wxa/checksession, HMAC of §9) whether the session
 * key the server holds for the caller is still current. 200 { valid: true }, or wx_login_required
 * (the stale key is forgotten).
 */
export async function checkSession(
  ctx: Context,
  deps: MiniProgramDeps,
  caller: MiniProgramCaller,
): Promise<void> {
  const { identity, connector } = caller;
  const held = await deps.sessionKeys.get(identity.appid, identity.openid);
  if (!held) throw reloginRequired('session_key_missing');
  let valid: boolean;
  try {
    valid = await connector.checkSession(identity.openid, held.key);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    const fields = { appid: identity.appid, ...error.logFields() };
    deps.logger[error.transient ? 'warn' : 'error'](fields, 'session check failed');
    throw upstreamFailure(error);
  }
  if (!valid) {
    await deps.sessionKeys.forgetStale(identity.appid, identity.openid, held);
    throw reloginRequired('session_key_stale');
  }
  ctx.status = 200;
  ctx.body = { valid: true };
}
