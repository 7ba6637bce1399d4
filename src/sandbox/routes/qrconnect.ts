import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { toDataURL } from 'qrcode';
import { decideLogin } from '../login-decision.ts';
import { type LoginRequest, type ParamReader, parseLoginRequest, requestFields } from '../login-request.ts';
import { bodyClass, renderDeclined, renderInvalidChoice, renderProblem, userChoices } from '../pages.ts';
import type { SandboxState } from '../state.ts';
import { fill, textsFor } from '../texts.ts';
import { renderPage, scriptJson } from '../views.ts';
import { queryParam, selfOrigin } from '../wire.ts';

/** Where the decision lands: the top window for wxLogin.js's default, the iframe for self_redirect=true. */
function navigationTargets(request: LoginRequest, state: SandboxState): { allow: string; deny: string } {
  const allow = request.embedded && request.selfRedirect !== 'true' ? '_top' : '_self';
  return { allow, deny: state.denyMode === 'no_redirect' ? '_self' : allow };
}

async function showQrPage(ctx: Context, state: SandboxState, request: LoginRequest): Promise<void> {
  const session = state.qrSessions.create(request, state.now());
  const scanUrl = `${selfOrigin(ctx)}/sandbox/scan/${session.uuid}`;
  const targets = navigationTargets(request, state);
  const t = textsFor(request.lang);
  renderPage(ctx, 'qrconnect', {
    t,
    href: request.href,
    bodyClass: bodyClass(request.embedded, request.style),
    embedded: request.embedded,
    appLine: fill(t.appLine, { app: request.app.name ?? request.app.appid }),
    qrDataUrl: await toDataURL(scanUrl, { margin: 1, width: 240 }),
    fields: requestFields(request),
    users: userChoices(state, selfOrigin(ctx)),
    allowTarget: targets.allow,
    denyTarget: targets.deny,
    scanUrl,
    refreshUrl: ctx.originalUrl,
    pollConfig: scriptJson({
      pollUrl: `/connect/l/qrconnect?uuid=${session.uuid}`,
      selfRedirect: !request.embedded || request.selfRedirect === 'true',
    }),
  });
}

function formReader(ctx: Context): ParamReader {
  const body = (ctx.request.body ?? {}) as Record<string, unknown>;
  return (name) => {
    const value = body[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
}

/**
 * open.weixin.qq.com's website QR login (§2), full page and wxLogin.js iframe (§2.1),
 * and the sandbox's own decision endpoint the page posts to.
 */
export function registerQrConnect(router: Router, state: SandboxState): void {
  router.get('/connect/qrconnect', async (ctx) => {
    const parsed = parseLoginRequest((name) => queryParam(ctx, name), state);
    if (!parsed.ok) {
      renderProblem(ctx, parsed.lang, parsed.problem, queryParam(ctx, 'login_type') === 'jssdk', 200);
      return;
    }
    await showQrPage(ctx, state, parsed.request);
  });

  router.post('/connect/sandbox/authorize', bodyParser({ enableTypes: ['form'] }), (ctx) => {
    const field = formReader(ctx);
    const parsed = parseLoginRequest(field, state);
    if (!parsed.ok) {
      renderProblem(ctx, parsed.lang, parsed.problem, field('login_type') === 'jssdk', 400);
      return;
    }
    const request = parsed.request;
    const outcome = decideLogin(state, request, {
      decision: field('decision'),
      userId: field('user'),
      nickname: field('nickname'),
    });
    if (outcome.kind === 'redirect') {
      if (outcome.code) state.deliveries.deliver(outcome.location, ctx.get('user-agent') || undefined);
      ctx.redirect(outcome.location);
      return;
    }
    if (outcome.kind === 'declined') {
      renderDeclined(ctx, request.lang, request.embedded);
      return;
    }
    renderInvalidChoice(ctx, request.lang, request.embedded, outcome.message);
  });
}
