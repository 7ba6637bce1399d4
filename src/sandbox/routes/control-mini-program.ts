import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { SandboxInputError } from '../input-error.ts';
import type { SandboxState } from '../state.ts';
import { textsFor } from '../texts.ts';
import { renderPage } from '../views.ts';
import { selfOrigin } from '../wire.ts';
import { sendJson, withInput } from './json.ts';

const who = { appid: z.string().min(1), user: z.string().min(1) };

const loginSchema = z.strictObject({ ...who, rotate: z.boolean().optional() });
const userDataSchema = z.strictObject({
  ...who,
  /** Encrypt this object instead of the profile (a watermark is added unless it has one). */
  data: z.record(z.string(), z.unknown()).optional(),
  watermark: z.strictObject({ appid: z.string().optional(), timestamp: z.int().optional() }).optional(),
});
const phoneCodeSchema = z.strictObject({
  ...who,
  countryCode: z.string().optional(),
  purePhoneNumber: z.string().optional(),
});
const whoSchema = z.strictObject(who);

type PageAction = 'login' | 'user-data' | 'phone-code' | 'check-session' | 'reset-session';

/**
 * Plays the mini program for developers and tests: wx.login codes for a fake user, encrypted user
 * data with the current session key, getPhoneNumber codes, wx.checkSession. JSON under
 * /sandbox/mini-program/*, and an HTML page at /sandbox/mini-program doing the same by hand.
 */
export function registerControlMiniProgram(router: Router, state: SandboxState): void {
  const mp = state.miniPrograms;
  const json = bodyParser({ enableTypes: ['json'] });

  router.post('/sandbox/mini-program/login', json, (ctx) =>
    withInput(ctx, loginSchema, (input) =>
      sendJson(ctx, 201, { code: mp.login(input.appid, input.user, { rotate: input.rotate }) }),
    ),
  );

  router.post('/sandbox/mini-program/user-data', json, (ctx) =>
    withInput(ctx, userDataSchema, (input) =>
      sendJson(
        ctx,
        201,
        mp.encryptUserData(input.appid, input.user, selfOrigin(ctx), {
          data: input.data,
          watermark: input.watermark,
        }),
      ),
    ),
  );

  router.post('/sandbox/mini-program/phone-code', json, (ctx) =>
    withInput(ctx, phoneCodeSchema, (input) => {
      const phone =
        input.countryCode !== undefined || input.purePhoneNumber !== undefined
          ? { countryCode: input.countryCode ?? '86', purePhoneNumber: input.purePhoneNumber ?? '' }
          : mp.phoneOf(input.user);
      sendJson(ctx, 201, { code: mp.issuePhoneCode(input.appid, input.user, phone), ...phone });
    }),
  );

  router.get('/sandbox/mini-program/session', (ctx) => {
    const { appid, user } = ctx.query;
    if (typeof appid !== 'string' || typeof user !== 'string') {
      return sendJson(ctx, 400, { error: 'appid and user are required' });
    }
    sendJson(ctx, 200, { valid: mp.checkSessionClientSide(appid, user) });
  });

  router.post('/sandbox/mini-program/session/reset', json, (ctx) =>
    withInput(ctx, whoSchema, (input) => {
      mp.resetSession(input.appid, input.user);
      ctx.status = 204;
    }),
  );

  router.post('/sandbox/mini-program/session/expire', json, (ctx) =>
    withInput(ctx, whoSchema, (input) => {
      mp.expireSession(input.appid, input.user);
      ctx.status = 204;
    }),
  );

  router.post('/sandbox/mini-program/app-tokens/revoke', json, (ctx) =>
    withInput(ctx, z.strictObject({ appid: z.string().min(1) }), (input) => {
      mp.revokeAppTokens(input.appid);
      ctx.status = 204;
    }),
  );

  router.get(['/sandbox/mini-program', '/sandbox/mini-program/'], (ctx) => renderMiniProgramPage(ctx, state));

  router.post('/sandbox/mini-program', bodyParser({ enableTypes: ['form'] }), (ctx) => {
    const form = (ctx.request.body ?? {}) as Record<string, string>;
    const action = form.action as PageAction;
    const appid = form.appid ?? '';
    const user = form.user ?? '';
    let result: unknown;
    try {
      result = runPageAction(ctx, state, action, appid, user, form.rotate === 'on');
    } catch (error) {
      if (!(error instanceof SandboxInputError)) throw error;
      return renderMiniProgramPage(ctx, state, { appid, user, action, error: error.message }, 400);
    }
    renderMiniProgramPage(ctx, state, { appid, user, action, result: JSON.stringify(result, null, 2) });
  });
}

function runPageAction(
  ctx: Context,
  state: SandboxState,
  action: PageAction,
  appid: string,
  user: string,
  rotate: boolean,
): unknown {
  const mp = state.miniPrograms;
  switch (action) {
    case 'login':
      return { code: mp.login(appid, user, { rotate }) };
    case 'user-data':
      return mp.encryptUserData(appid, user, selfOrigin(ctx));
    case 'phone-code': {
      const phone = mp.phoneOf(user);
      return { code: mp.issuePhoneCode(appid, user, phone), ...phone };
    }
    case 'check-session':
      return { valid: mp.checkSessionClientSide(appid, user) };
    case 'reset-session':
      mp.resetSession(appid, user);
      return { reset: true };
    default:
      throw new SandboxInputError('unknown action');
  }
}

interface PageState {
  appid?: string;
  user?: string;
  action?: PageAction;
  result?: string;
  error?: string;
}

function renderMiniProgramPage(ctx: Context, state: SandboxState, page: PageState = {}, status = 200): void {
  const apps = state.apps().filter((app) => app.kind === 'mini_program');
  renderPage(
    ctx,
    'mini-program',
    {
      t: textsFor('en'),
      title: 'Mini program',
      bodyClass: 'full',
      origin: selfOrigin(ctx),
      apps: apps.map((app) => ({ appid: app.appid, name: app.name ?? '', bound: state.isBound(app) })),
      users: state.listUsers().map((user) => ({
        id: user.id,
        nickname: user.nickname,
        phone: state.miniPrograms.phoneOf(user.id),
      })),
      page,
    },
    status,
  );
}
