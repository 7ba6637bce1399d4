import { timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import { defineApi } from '../define-api.ts';
import { ACCESS_TOKEN_TTL_S, type UserToken } from '../grants.ts';
import type { SandboxState } from '../state.ts';
import type { SandboxApp } from '../types.ts';
import { errorBody, queryParam, type WeChatBody } from '../wire.ts';

function secretMatches(given: string, app: SandboxApp): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(app.secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Scopes whose code exchange names the unionid (§4, §12): an Official Account's snsapi_base does not. */
const UNIONID_SCOPES = ['snsapi_login', 'snsapi_userinfo'];

/**
 * §4's success body; unionid only for apps bound to an Open Platform account (§12) and a scope that
 * reveals it; is_snapshotuser only for a snapshot-page virtual account (§3.1), whose ids are virtual.
 */
function tokenBody(state: SandboxState, app: SandboxApp, token: UserToken, withUnionid: boolean): WeChatBody {
  const ids = state.tokenIds(token);
  const revealsUnionid = token.scope.split(',').some((scope) => UNIONID_SCOPES.includes(scope));
  return {
    access_token: token.accessToken,
    expires_in: ACCESS_TOKEN_TTL_S,
    refresh_token: token.refreshToken,
    openid: ids.openid,
    scope: token.scope,
    ...(withUnionid && revealsUnionid && ids.unionid && state.isBound(app) ? { unionid: ids.unionid } : {}),
    ...(withUnionid && token.snapshot ? { is_snapshotuser: 1 } : {}),
  };
}

/** GET /sns/oauth2/access_token and /sns/oauth2/refresh_token (§4, §5). */
export function registerSnsOAuth2(router: Router, state: SandboxState): void {
  defineApi(router, state, 'sns/oauth2/access_token', (ctx) => {
    const appid = queryParam(ctx, 'appid');
    if (appid === undefined) return errorBody(41002);
    const app = state.app(appid);
    if (!app) return errorBody(40013);
    const secret = queryParam(ctx, 'secret');
    if (secret === undefined) return errorBody(41004);
    if (!secretMatches(secret, app)) return errorBody(40125);
    const code = queryParam(ctx, 'code');
    if (code === undefined) return errorBody(41008);
    if (queryParam(ctx, 'grant_type') !== 'authorization_code') return errorBody(40002);
    const exchanged = state.grants.exchangeCode(code, app.appid, state.now());
    if (!exchanged.ok) return errorBody(exchanged.errcode);
    return tokenBody(state, app, exchanged.value, true);
  });

  // No secret: whoever holds the refresh token can use it (§5).
  defineApi(router, state, 'sns/oauth2/refresh_token', (ctx) => {
    const appid = queryParam(ctx, 'appid');
    if (appid === undefined) return errorBody(41002);
    const app = state.app(appid);
    if (!app) return errorBody(40013);
    const refreshToken = queryParam(ctx, 'refresh_token');
    if (refreshToken === undefined) return errorBody(41003);
    if (queryParam(ctx, 'grant_type') !== 'refresh_token') return errorBody(40002);
    const refreshed = state.grants.refresh(refreshToken, app.appid, state.now());
    if (!refreshed.ok) return errorBody(refreshed.errcode);
    return tokenBody(state, app, refreshed.value, false);
  });
}
