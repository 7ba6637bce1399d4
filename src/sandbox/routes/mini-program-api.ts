import { timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { defineApi } from '../define-api.ts';
import type { Outcome } from '../grants.ts';
import type { SandboxState } from '../state.ts';
import type { SandboxApp } from '../types.ts';
import { errorBody, queryParam } from '../wire.ts';

function secretMatches(given: string, app: SandboxApp): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(app.secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The app an app access token (query access_token) belongs to, when it is a mini program. */
function appOfToken(ctx: Context, state: SandboxState): Outcome<SandboxApp> {
  const token = queryParam(ctx, 'access_token');
  if (token === undefined) return { ok: false, errcode: 41001 };
  const checked = state.miniPrograms.checkAppToken(token);
  if (!checked.ok) return checked;
  const app = state.app(checked.value);
  if (app?.kind !== 'mini_program') return { ok: false, errcode: 48001 };
  return { ok: true, value: app };
}

function bodyField(ctx: Context, name: string): unknown {
  return (ctx.request.body as Record<string, unknown> | undefined)?.[name];
}

/**
 * The mini program's server APIs (wechat-api.md §8-§11): GET sns/jscode2session, POST
 * cgi-bin/stable_token, GET wxa/checksession, POST wxa/business/getuserphonenumber.
 */
export function registerMiniProgramApi(router: Router, state: SandboxState): void {
  defineApi(router, state, 'sns/jscode2session', (ctx) => {
    const appid = queryParam(ctx, 'appid');
    if (appid === undefined) return errorBody(41002);
    const app = state.app(appid);
    if (app?.kind !== 'mini_program') return errorBody(40013);
    const secret = queryParam(ctx, 'secret');
    if (secret === undefined) return errorBody(41004);
    if (!secretMatches(secret, app)) return errorBody(40125);
    const code = queryParam(ctx, 'js_code');
    if (code === undefined) return errorBody(41008);
    if (queryParam(ctx, 'grant_type') !== 'authorization_code') return errorBody(40002);
    const exchanged = state.miniPrograms.exchange(code, app);
    return exchanged.ok ? { ...exchanged.value } : errorBody(exchanged.errcode);
  });

  defineApi(
    router,
    state,
    'cgi-bin/stable_token',
    (ctx) => {
      const grantType = bodyField(ctx, 'grant_type');
      const appid = bodyField(ctx, 'appid');
      const secret = bodyField(ctx, 'secret');
      const force = bodyField(ctx, 'force_refresh');
      if (typeof appid !== 'string' || appid === '') return errorBody(41002);
      const app = state.app(appid);
      if (!app) return errorBody(40013);
      if (typeof secret !== 'string' || secret === '') return errorBody(41004);
      if (!secretMatches(secret, app)) return errorBody(40125);
      if (grantType !== 'client_credential') return errorBody(40002);
      if (force !== undefined && typeof force !== 'boolean') return errorBody(47001);
      const issued = state.miniPrograms.stableToken(app, force === true);
      return issued.ok ? { ...issued.value } : errorBody(issued.errcode);
    },
    'POST',
  );

  defineApi(router, state, 'wxa/checksession', (ctx) => {
    const checked = appOfToken(ctx, state);
    if (!checked.ok) return errorBody(checked.errcode);
    const openid = queryParam(ctx, 'openid');
    if (openid === undefined) return errorBody(41009);
    const signature = queryParam(ctx, 'signature') ?? '';
    const errcode = state.miniPrograms.checkSignature(
      checked.value,
      openid,
      signature,
      queryParam(ctx, 'sig_method'),
    );
    return errcode === 0 ? { errcode: 0, errmsg: 'ok' } : errorBody(errcode);
  });

  defineApi(
    router,
    state,
    'wxa/business/getuserphonenumber',
    (ctx) => {
      const checked = appOfToken(ctx, state);
      if (!checked.ok) return errorBody(checked.errcode);
      const code = bodyField(ctx, 'code');
      if (typeof code !== 'string' || code === '') return errorBody(40029);
      const openid = bodyField(ctx, 'openid');
      const exchanged = state.miniPrograms.exchangePhoneCode(
        code,
        checked.value,
        typeof openid === 'string' && openid !== '' ? openid : undefined,
      );
      return exchanged.ok
        ? { errcode: 0, errmsg: 'ok', phone_info: exchanged.value }
        : errorBody(exchanged.errcode);
    },
    'POST',
  );
}
