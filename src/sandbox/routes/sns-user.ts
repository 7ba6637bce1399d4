import type Router from '@koa/router';
import type { Context } from 'koa';
import { defineApi } from '../define-api.ts';
import type { Outcome, UserToken } from '../grants.ts';
import type { SandboxState } from '../state.ts';
import { errorBody, queryParam, selfOrigin, type WeChatBody } from '../wire.ts';

/** Scopes whose tokens may read the profile (§7): snsapi_base may not. */
const PROFILE_SCOPES = ['snsapi_login', 'snsapi_userinfo'];

/** access_token and openid given, the token live and issued to this openid; errcode otherwise. */
function checkTokenForOpenid(ctx: Context, state: SandboxState): Outcome<UserToken> {
  const accessToken = queryParam(ctx, 'access_token');
  if (accessToken === undefined) return { ok: false, errcode: 41001 };
  const openid = queryParam(ctx, 'openid');
  if (openid === undefined) return { ok: false, errcode: 41009 };
  const checked = state.grants.checkAccessToken(accessToken, state.now());
  if (!checked.ok) return checked;
  if (state.tokenIds(checked.value).openid !== openid) return { ok: false, errcode: 40003 };
  return checked;
}

function userinfoBody(ctx: Context, state: SandboxState, token: UserToken): WeChatBody {
  const user = state.getUser(token.userId);
  const app = state.app(token.appid);
  if (!user || !app) return errorBody(40001);
  // Post-2021 shape (§7): keys kept, sex and regions blanked; language is present though undocumented.
  return {
    openid: state.openid(app.appid, user.id),
    nickname: user.nickname,
    sex: 0,
    language: user.language,
    city: '',
    province: '',
    country: '',
    headimgurl: state.avatarUrl(user, selfOrigin(ctx), 132),
    privilege: [],
    ...(state.isBound(app) ? { unionid: user.unionid } : {}),
  };
}

/** GET /sns/auth (§6) and GET /sns/userinfo (§7). */
export function registerSnsUser(router: Router, state: SandboxState): void {
  defineApi(router, state, 'sns/auth', (ctx) => {
    const checked = checkTokenForOpenid(ctx, state);
    return checked.ok ? { errcode: 0, errmsg: 'ok' } : errorBody(checked.errcode);
  });

  defineApi(router, state, 'sns/userinfo', (ctx) => {
    const checked = checkTokenForOpenid(ctx, state);
    if (!checked.ok) return errorBody(checked.errcode);
    const scopes = checked.value.scope.split(',');
    if (!scopes.some((scope) => PROFILE_SCOPES.includes(scope))) return errorBody(48001);
    // A snapshot-page token reads no profile (§3.1: developers report 48001).
    if (checked.value.snapshot) return errorBody(48001);
    return userinfoBody(ctx, state, checked.value);
  });
}
