import type { Context } from 'koa';
import { linkIdentity } from '../accounts/repository.ts';
import { UpstreamError, type WeChatIdentity } from '../upstream/wechat/types.ts';
import type { InteractionDeps } from './deps.ts';
import { type Failure, renderFailure, UPSTREAM_FAILURES } from './failure.ts';
import { finish, loadInteraction } from './load.ts';
import { takeState } from './wechat-state.ts';

const STATE_INVALID: Failure = { message: 'error.stateInvalid', retry: true, abort: 'failed' };
const DECLINED: Failure = { message: 'error.declined', retry: true, abort: 'declined' };
const SNAPSHOT: Failure = { message: 'error.snapshotUser', retry: true, abort: 'failed' };

/**
 * GET /interaction/:uid/wechat-callback?code&state — WeChat sends the browser back here.
 *
 * Only a code exchanged server-side proves who the person is, and only together with a state this
 * interaction issued, taken once: a forged, replayed or foreign callback logs nobody in.
 */
export async function wechatCallback(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  const uid = interaction.uid;
  const state = queryString(ctx, 'state');
  const code = queryString(ctx, 'code');

  const flow = state ? await takeState(deps.kv, state) : undefined;
  if (!flow || flow.uid !== uid) {
    deps.logger.warn(
      { uid, hasState: Boolean(state), known: Boolean(flow) },
      'wechat callback with an unknown, used or foreign state',
    );
    return renderFailure(ctx, deps, uid, STATE_INVALID);
  }
  // WeChat redirects without a code (or not at all) when the person declines.
  if (!code) return renderFailure(ctx, deps, uid, DECLINED);

  const connector = deps.connectors.byAppid(flow.appid);
  if (!connector || connector.kind !== flow.kind) {
    deps.logger.error(
      { uid, appid: flow.appid, kind: flow.kind },
      'wechat callback for an app that is no longer configured',
    );
    return renderFailure(ctx, deps, uid, UPSTREAM_FAILURES.app_config);
  }

  let identity: WeChatIdentity;
  try {
    identity = await connector.completeLogin(code);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    logUpstreamFailure(deps, uid, flow.appid, error);
    return renderFailure(
      ctx,
      deps,
      uid,
      UPSTREAM_FAILURES[error.code],
      error.code === 'unavailable' ? 503 : 400,
    );
  }

  if (identity.snapshotUser) return renderFailure(ctx, deps, uid, SNAPSHOT);
  const { unionid } = identity;
  if (!unionid) {
    deps.logger.warn(
      { uid, appid: identity.appid, kind: identity.kind },
      'WeChat returned no unionid: bind this app to your WeChat Open Platform account (open.weixin.qq.com) so people can log in',
    );
    return renderFailure(ctx, deps, uid, UPSTREAM_FAILURES.unionid_missing);
  }

  const { account, created } = await linkIdentity(deps.db, { ...identity, unionid }, deps.now());
  deps.logger.info(
    { uid, appid: identity.appid, kind: identity.kind, accountId: account.id, created },
    'wechat login',
  );
  await finish(ctx, deps, { login: { accountId: account.subject, amr: ['wechat'] } }, false);
}

function logUpstreamFailure(deps: InteractionDeps, uid: string, appid: string, error: UpstreamError): void {
  const fields = { uid, appid, api: error.api, code: error.code, errcode: error.errcode };
  if (error.code === 'app_config' || error.code === 'unexpected')
    deps.logger.error(fields, 'wechat login failed: check the app configuration');
  else deps.logger.warn(fields, 'wechat login failed');
}

function queryString(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
