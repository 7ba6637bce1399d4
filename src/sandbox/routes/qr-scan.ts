import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { decideLogin } from '../login-decision.ts';
import { renderInvalidChoice, userChoices } from '../pages.ts';
import type { QrSession, QrStatus } from '../qr-sessions.ts';
import type { SandboxState } from '../state.ts';
import { fill, textsFor } from '../texts.ts';
import { renderPage } from '../views.ts';
import { queryParam, selfOrigin } from '../wire.ts';

const WX_ERRCODE: Record<QrStatus, number> = { waiting: 408, scanned: 404, confirmed: 405, cancelled: 403 };
const EXPIRED = 402;

function jsString(value: string): string {
  return JSON.stringify(value).replaceAll('<', '\\u003c');
}

/** The long-poll answer WeChat's QR page loads as a script (§2.1): `window.wx_errcode=…;`. */
function pollScript(session: QrSession | undefined): string {
  if (!session) return `window.wx_errcode=${EXPIRED};window.wx_code='';`;
  return (
    `window.wx_errcode=${WX_ERRCODE[session.status]};window.wx_code=${jsString(session.code ?? '')};` +
    `window.wx_redirecturl=${jsString(session.redirectUrl ?? '')};`
  );
}

/**
 * The phone's page for a QR code it can no longer act on: in the language the QR page was asked in,
 * where the code is still known (decided already); Chinese, WeChat's default, for one gone.
 */
function renderExpired(ctx: Context, session: QrSession | undefined): void {
  const t = textsFor(session?.request.lang ?? 'cn');
  renderPage(ctx, 'message', { t, heading: t.expired, bodyClass: 'full' }, 404);
}

/**
 * The optional phone path: the QR encodes /sandbox/scan/<uuid>; a phone (or a second
 * tab) picks the user there, and the QR page polls /connect/l/qrconnect to follow.
 */
export function registerQrScan(router: Router, state: SandboxState): void {
  router.get('/connect/l/qrconnect', (ctx) => {
    const uuid = queryParam(ctx, 'uuid');
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.body = pollScript(uuid === undefined ? undefined : state.qrSessions.get(uuid, state.now()));
  });

  router.get('/sandbox/scan/:uuid', (ctx) => {
    const session = state.qrSessions.get(ctx.params.uuid!, state.now());
    if (!session || session.status === 'confirmed' || session.status === 'cancelled') {
      renderExpired(ctx, session);
      return;
    }
    session.status = 'scanned';
    const { request } = session;
    const t = textsFor(request.lang);
    renderPage(ctx, 'scan', {
      t,
      bodyClass: 'full',
      lead: fill(t.scanLead, { app: request.app.name ?? request.app.appid }),
      action: `/sandbox/scan/${session.uuid}`,
      users: userChoices(state, selfOrigin(ctx)),
    });
  });

  router.post('/sandbox/scan/:uuid', bodyParser({ enableTypes: ['form'] }), (ctx) => {
    const session = state.qrSessions.get(ctx.params.uuid!, state.now());
    if (!session || session.status === 'confirmed' || session.status === 'cancelled') {
      renderExpired(ctx, session);
      return;
    }
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const field = (name: string) => (typeof body[name] === 'string' ? body[name] : undefined);
    const { request } = session;
    const outcome = decideLogin(state, request, {
      decision: field('decision'),
      userId: field('user'),
      nickname: field('nickname'),
    });
    if (outcome.kind === 'invalid') {
      renderInvalidChoice(ctx, request.lang, false, outcome.message);
      return;
    }
    const t = textsFor(request.lang);
    const allowed = field('decision') === 'allow';
    session.status = allowed ? 'confirmed' : 'cancelled';
    session.redirectUrl = outcome.kind === 'redirect' ? outcome.location : undefined;
    session.code = outcome.kind === 'redirect' ? outcome.code : undefined;
    renderPage(ctx, 'message', { t, heading: allowed ? t.scanDone : t.scanDeclined, bodyClass: 'full' });
  });
}
