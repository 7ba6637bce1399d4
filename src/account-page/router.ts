import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { AvatarMirror } from '../accounts/avatars/mirror.ts';
import type { AvatarStore } from '../accounts/avatars/store.ts';
import { deleteAccount } from '../accounts/deletion.ts';
import type { AccountNotifier } from '../accounts/events.ts';
import { unbindAndAnnounce } from '../accounts/identity-events.ts';
import {
  findAccountBySubject,
  listIdentities,
  RECOVERABLE_AFTER_UNBINDING_MS,
  RECOVERY_WINDOW_MS,
} from '../accounts/repository.ts';
import { listAuthorizedApps, revokeApp, revokeEverything } from '../accounts/revocation.ts';
import { canUnbind } from '../accounts/unbind.ts';
import { refuseUnreadableBody } from '../http/errors.ts';
import { pageContext, type Views } from '../http/views.ts';
import {
  inReadingOrder,
  type Lang,
  type MessageKey,
  scopeShortLabel,
  type Translate,
} from '../i18n/messages.ts';
import { ABORT_ERRORS } from '../interaction/failure.ts';
import { forgetSessionKey } from '../mini-program/session-keys.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdapterFactory, KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import type { WeChatApp } from '../upstream/wechat/types.ts';
import { ACCOUNT_PAGE_CLIENT_ID, accountLoggedOutUri } from './client.ts';
import {
  isStepUpPurpose,
  LOG_IN_AGAIN,
  loggedInRecently,
  returnPath,
  type StepUpPurpose,
} from './recent-login.ts';
import { csrfToken, csrfValid, currentSession, type PageSession } from './session.ts';

export interface AccountPageDeps {
  provider: Provider;
  db: Kysely<Database>;
  adapter: AdapterFactory;
  views: Views;
  avatars: AvatarMirror;
  avatarStore: AvatarStore;
  /** The configured WeChat apps, for their kind and human name. */
  apps: readonly WeChatApp[];
  /** Mini-program session keys, forgotten on deletion. */
  kv?: KeyValueStore;
  /** Clears what a deletion leaves in the embedded files (Stores.scrub). */
  scrub?: () => Promise<void>;
  /** Sign and check the page's form tokens, newest first (session.ts, formKeys). */
  formKeys: readonly KeyObject[];
  issuer: string;
  logger: Logger;
  now: () => Date;
  /** Tells relying parties about deletions and identity changes (back-channel logout, webhooks). */
  notifier?: AccountNotifier;
  /** Unbinding and deletion need a login this recent, seconds (account.recentLogin; recent-login.ts). */
  recentLoginSeconds: number;
}

const LOGIN_COOKIE = 'account_login';
/** Why a login of the account page stopped, as /account/login-stopped?why= names it. */
const STOPPED_NOTICES: Record<string, MessageKey | undefined> = {
  cancelled: 'account.loginCancelled',
  declined: 'account.loginDeclined',
};

/**
 * The notice for `why`, a name from the address: looked up as the object's own property only, since
 * a name such as `constructor` or `valueOf` would otherwise find Object's (a 500 an outside review
 * caused at will, with the function's source on the page for `constructor`).
 */
function stoppedNotice(why: unknown): MessageKey {
  const found =
    typeof why === 'string' && Object.hasOwn(STOPPED_NOTICES, why) ? STOPPED_NOTICES[why] : undefined;
  return found ?? 'account.loginFailed';
}

/**
 * From the error the login came back with: access_denied is the person's choice, declined in
 * WeChat (our failure page's "return to the application", src/interaction/failure.ts) or
 * cancelled on the login page; anything else failed.
 */
function stoppedBecause(error: unknown, description: unknown): 'declined' | 'cancelled' | 'failed' {
  if (error !== 'access_denied') return 'failed';
  return description === ABORT_ERRORS.declined.error_description ? 'declined' : 'cancelled';
}

/** What the last action did, for the account page the browser is sent to next (post/redirect/get). */
const DONE_COOKIE = 'account_done';

const KIND_LABEL: Record<WeChatApp['kind'], MessageKey> = {
  website: 'account.kind.website',
  official_account: 'account.kind.officialAccount',
  mini_program: 'account.kind.miniProgram',
};

/** /account: the person's profile, linked WeChat apps, phone, authorized applications, unbind, delete. */
export function createAccountPageRouter(deps: AccountPageDeps): Router {
  if (deps.formKeys.length === 0) throw new Error('the account page needs a key for its form tokens');
  const router = new Router();
  const form = bodyParser({ enableTypes: ['form'], formLimit: '8kb', onError: refuseUnreadableBody });

  router.get('/account', async (ctx) => {
    const session = await currentSession(ctx, deps.provider);
    // The language chosen (?lang=) goes on to the login: its page is in it too (ui_locales).
    const lang =
      typeof ctx.query.lang === 'string' ? `?${new URLSearchParams({ lang: ctx.query.lang })}` : '';
    if (!session) return ctx.redirect(`/account/login${lang}`);
    const shown = await renderAccount(ctx, deps, session);
    // A session whose account is gone (folded into another by a phone recovery, or deleted from
    // another browser): a new login, which replaces it, rather than a page saying nothing is here.
    if (!shown) return ctx.redirect(`/account/login${lang}`);
  });

  // ?again=<purpose>: the login a destructive action asked for (recent-login.ts). Only a known
  // purpose is kept, in the signed cookie, and it names a fixed page to return to.
  router.get('/account/login', async (ctx) => {
    const state = randomBytes(16).toString('base64url');
    const again = isStepUpPurpose(ctx.query.again) ? ctx.query.again : undefined;
    // The language chosen (?lang=) is kept for the pages after WeChat: the account page, or the
    // notice of a login that did not complete (oidc-provider's redirect does not carry it).
    const lang = typeof ctx.query.lang === 'string' ? pageContext(ctx).lang : undefined;
    const checks: LoginChecks = { state, ...(again && { again }), ...(lang && { lang }) };
    ctx.cookies.set(LOGIN_COOKIE, JSON.stringify(checks), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      maxAge: 15 * 60_000,
    });
    const url = new URL(`${deps.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_PAGE_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${deps.issuer}/account/callback`,
      state,
      // PKCE is required of public clients, and the account page is one; its code is only used up
      // at the callback, never exchanged, so no verifier is kept.
      code_challenge: createHash('sha256').update(randomBytes(32)).digest('base64url'),
      code_challenge_method: 'S256',
      ...(again ? LOG_IN_AGAIN : {}),
      ...(typeof ctx.query.lang === 'string' ? { ui_locales: ctx.query.lang } : {}),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/account/callback', async (ctx) => {
    const raw = ctx.cookies.get(LOGIN_COOKIE, { signed: true });
    const checks = raw ? (JSON.parse(raw) as LoginChecks) : undefined;
    // A callback with another state (a link from elsewhere) leaves the login under way alone.
    if (!checks || ctx.query.state !== checks.state) return ctx.redirect('/account/login');
    ctx.cookies.set(LOGIN_COOKIE, null, { signed: true });
    if (typeof ctx.query.code !== 'string') {
      // Cancelled (on the login page, or declined in WeChat) or failed: a page of its own, which a
      // reload or the language switch shows again (this URL's state is used up).
      const query = new URLSearchParams({
        why: stoppedBecause(ctx.query.error, ctx.query.error_description),
        ...(checks.again && { again: checks.again }),
        lang: checks.lang ?? pageContext(ctx).lang,
      });
      return ctx.redirect(`/account/login-stopped?${query}`);
    }
    // The session is what logs the page in; the code is only used up so it cannot be replayed.
    const code = await deps.provider.AuthorizationCode.find(ctx.query.code);
    if (code && code.clientId === ACCOUNT_PAGE_CLIENT_ID) await code.consume();
    // Whoever logged in is the session's person now: when someone else logged in at a login asked
    // for again, oidc-provider ended the previous person's session first, and every page reads the
    // session afresh. In the language the login was started in, when one was chosen.
    ctx.redirect(checks.lang ? `${returnPath(checks.again)}?lang=${checks.lang}` : returnPath(checks.again));
  });

  /**
   * A login of the account page that did not complete: the person cancelled it (or declined in
   * WeChat), or it failed. Logging in again is a choice offered, never where the page leads by
   * itself; back to the account page only while a session remains (a login asked for again).
   */
  router.get('/account/login-stopped', async (ctx) => {
    const page = pageContext(ctx);
    const again = isStepUpPurpose(ctx.query.again) ? ctx.query.again : undefined;
    const login = new URLSearchParams({ ...(again && { again }), lang: page.lang });
    const session = await currentSession(ctx, deps.provider);
    notice(ctx, deps, stoppedNotice(ctx.query.why), 200, {
      loginUrl: `/account/login?${login}`,
      back: session !== undefined,
    });
  });

  /**
   * Where oidc-provider's logout returns the account page's "Log out" (client.ts). "Back to Account
   * management" on its confirmation (logout.eta) comes back here too, with the session alive: on to
   * the account page then.
   */
  router.get('/account/logged-out', async (ctx) => {
    const page = pageContext(ctx);
    if (await currentSession(ctx, deps.provider)) return ctx.redirect(`/account?lang=${page.lang}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = deps.views.render('logged-out', page, { accountUrl: `/account?lang=${page.lang}` });
  });

  /** The language switch of the "log in again" page, and that page again on reload. */
  router.get('/account/login-again/:purpose', async (ctx) => {
    const purpose = ctx.params.purpose;
    if (!isStepUpPurpose(purpose)) return notice(ctx, deps, 'account.notFound', 404);
    const session = await currentSession(ctx, deps.provider);
    if (!session) return ctx.redirect('/account/login');
    if (recent(deps, session)) return ctx.redirect(returnPath(purpose));
    logInAgain(ctx, deps, purpose);
  });

  /** The deletion's confirmation, where a login asked for by deletion returns. */
  router.get('/account/delete', async (ctx) => {
    const session = await currentSession(ctx, deps.provider);
    if (!session) return ctx.redirect('/account/login');
    if (!recent(deps, session)) return logInAgain(ctx, deps, 'delete');
    await renderDeletion(ctx, deps, session);
  });

  /**
   * POST routes: a live session and the page's form token, or nothing happens. With `needsRecentLogin`,
   * also a recent login, or the page that asks for one (nothing happens either).
   */
  const post = (
    path: string,
    handler: (ctx: Context, session: PageSession, body: Record<string, unknown>) => Promise<void>,
    needsRecentLogin?: StepUpPurpose,
  ) =>
    router.post(path, form, async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      const session = await currentSession(ctx, deps.provider);
      if (!session) return ctx.redirect('/account/login');
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      if (!csrfValid(deps.formKeys, session, body.csrf)) return notice(ctx, deps, 'account.formExpired', 403);
      if (needsRecentLogin && !recent(deps, session)) return logInAgain(ctx, deps, needsRecentLogin);
      await handler(ctx, session, body);
    });

  post('/account/apps/revoke', async (ctx, session, body) => {
    const clientId = field(body, 'clientId');
    // A NUL names no client, and PostgreSQL refuses it in a query (a server error, not a 404).
    const named = clientId !== '' && !clientId.includes('\0');
    const ok = named && (await revokeApp(deps, session.subject, clientId));
    if (!ok) return notice(ctx, deps, 'account.notFound', 404);
    deps.logger.info({ event: 'app_revoked', clientId }, 'account page: application access revoked');
    await deps.notifier?.signedOut({ subject: session.subject, clientIds: [clientId] });
    backToAccount(ctx, session, { what: 'revoked', id: clientId });
  });

  post('/account/sign-out-everywhere', async (ctx, session) => {
    const { clientIds, sids } = await revokeEverything(deps, session.subject);
    await deps.notifier?.signedOut({ subject: session.subject, clientIds, sids });
    notice(ctx, deps, 'account.signedOutEverywhere', 200);
  });

  // Signing out everywhere and revoking an application protect the person: they need no recent
  // login. Unbinding and deletion, in the hands of whoever sits at a browser left logged in, would
  // take the account from its owner: they do (recent-login.ts), the unbinding's confirmation page
  // too, as the deletion's. That page names the app (and, for the last WeChat, the days the account
  // can then be recovered in); its form unbinds.
  post('/account/unbind', (ctx, session, body) => renderUnbinding(ctx, deps, session, body), 'unbind');

  post(
    '/account/unbind/confirm',
    async (ctx, session, body) => {
      const account = await findAccountBySubject(deps.db, session.subject);
      if (!account) return notice(ctx, deps, 'account.notFound', 404);
      const identity = { appid: field(body, 'appid'), openid: field(body, 'openid') };
      // The identities-changed event is written with the unbinding, or neither is (a server error).
      const outcome = await unbindAndAnnounce(deps, account, identity, deps.now());
      if (outcome === 'not_found') return notice(ctx, deps, 'account.notFound', 404);
      if (outcome === 'last_identity_needs_phone') return notice(ctx, deps, unbindRefusal(deps), 409);
      deps.logger.info({ accountId: account.id }, 'account page: WeChat identity unbound');
      if (deps.kv) await forgetSessionKey(deps.kv, identity.appid, identity.openid);
      backToAccount(ctx, session, { what: 'unbound', id: identity.appid });
    },
    'unbind',
  );

  post('/account/delete', (ctx, session) => renderDeletion(ctx, deps, session), 'delete');

  post(
    '/account/delete/confirm',
    async (ctx, session, body) => {
      if (body.confirm !== 'yes') return ctx.redirect('/account');
      const account = await findAccountBySubject(deps.db, session.subject);
      if (!account) return notice(ctx, deps, 'account.notFound', 404);
      const notifier = deps.notifier;
      await deleteAccount(
        {
          ...deps,
          avatars: deps.avatarStore,
          notify: notifier ? (event) => notifier.deleted(event) : undefined,
        },
        account,
        'person',
      );
      notice(ctx, deps, 'account.deleted', 200);
    },
    'delete',
  );

  return router;
}

/** What the login cookie holds between /account/login and its callback. */
interface LoginChecks {
  state: string;
  /** The purpose of a login asked for again; read back through returnPath's whitelist only. */
  again?: StepUpPurpose;
  /** The language the login was started in (?lang=), for the pages after it. */
  lang?: Lang;
}

/** An action done, named on the account page the browser goes to next: the client or the app's id. */
interface Done {
  what: 'revoked' | 'unbound';
  id: string;
  /** The account it was done to: another person's account page (the session changed) says nothing. */
  subject: string;
}

/**
 * Post/redirect/get: what was done goes in a short-lived signed cookie, read once by the account
 * page, so that a reload neither repeats the action nor says it again.
 */
function backToAccount(ctx: Context, session: PageSession, done: Omit<Done, 'subject'>): void {
  const value = Buffer.from(JSON.stringify({ ...done, subject: session.subject })).toString('base64url');
  ctx.cookies.set(DONE_COOKIE, value, { signed: true, httpOnly: true, sameSite: 'lax', maxAge: 60_000 });
  ctx.redirect(`/account?lang=${pageContext(ctx).lang}`);
}

function takeDone(ctx: Context, session: PageSession): Done | undefined {
  const raw = ctx.cookies.get(DONE_COOKIE, { signed: true });
  if (raw === undefined) return undefined;
  ctx.cookies.set(DONE_COOKIE, null, { signed: true });
  try {
    const done = JSON.parse(Buffer.from(raw, 'base64url').toString()) as Partial<Done>;
    const known = done.what === 'revoked' || done.what === 'unbound';
    return known && typeof done.id === 'string' && done.subject === session.subject
      ? (done as Done)
      : undefined;
  } catch {
    return undefined;
  }
}

/** What the account page says was done, naming the application or the WeChat app. */
async function doneMessage(deps: AccountPageDeps, t: Translate, done: Done): Promise<string> {
  if (done.what === 'unbound') return t('account.unbound', { app: appName(deps, done.id) });
  const client = await deps.provider.Client.find(done.id).catch(() => undefined);
  return t('account.revoked', { client: client?.clientName ?? done.id });
}

const appName = (deps: AccountPageDeps, appid: string) =>
  deps.apps.find((candidate) => candidate.appid === appid)?.name ?? appid;

const hasVerifiedPhone = (account: { phone_number: string | null; phone_number_verified: boolean | null }) =>
  Boolean(account.phone_number && account.phone_number_verified);

const recent = (deps: AccountPageDeps, session: PageSession) =>
  loggedInRecently(session, deps.now(), deps.recentLoginSeconds);

/**
 * The deletion's confirmation page, naming the account it deletes: after a login asked for again,
 * the session may be another person's (someone else scanned), and this is the page they land on.
 */
async function renderDeletion(ctx: Context, deps: AccountPageDeps, session: PageSession): Promise<void> {
  const account = await findAccountBySubject(deps.db, session.subject);
  if (!account) return notice(ctx, deps, 'account.notFound', 404);
  const page = pageContext(ctx);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.views.render('account-delete', page, {
    nickname: account.nickname || page.t('account.noNickname'),
    csrf: csrfToken(deps.formKeys, session),
    // The language switch reloads the confirmation by GET, not the POST that showed it.
    pagePath: '/account/delete',
  });
}

/**
 * The unbinding's confirmation: the app it unbinds and, for the last WeChat (with a verified phone,
 * or it could not be unbound), how the account can be recovered. An identity that is not the
 * account's, or the last one without a phone, is refused here already, as the unbinding would be.
 * It answers a POST (the identity is in the form, not the URL, where history and logs would keep
 * it): its language switch posts the same form again, which changes nothing.
 */
async function renderUnbinding(
  ctx: Context,
  deps: AccountPageDeps,
  session: PageSession,
  body: Record<string, unknown>,
): Promise<void> {
  const account = await findAccountBySubject(deps.db, session.subject);
  if (!account) return notice(ctx, deps, 'account.notFound', 404);
  const identities = await listIdentities(deps.db, account.id);
  const appid = field(body, 'appid');
  const openid = field(body, 'openid');
  const identity = identities.find((candidate) => candidate.appid === appid && candidate.openid === openid);
  if (!identity) return notice(ctx, deps, 'account.notFound', 404);
  const hasPhone = hasVerifiedPhone(account);
  if (!canUnbind(identities.length, hasPhone)) return notice(ctx, deps, unbindRefusal(deps), 409);
  const page = pageContext(ctx);
  const csrf = csrfToken(deps.formKeys, session);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.views.render('account-unbind', page, {
    question: page.t('account.unbindQuestion', {
      app: appName(deps, identity.appid),
      kind: page.t(KIND_LABEL[identity.kind]),
    }),
    recoveryNote: recoveryNote(page.t, identities.length, hasPhone),
    appid: identity.appid,
    openid: identity.openid,
    csrf,
    langForm: { action: '/account/unbind', fields: { csrf, appid: identity.appid, openid: identity.openid } },
  });
}

/**
 * The answer to a destructive action on a session whose login is not recent: why, and a button that
 * logs in with WeChat again and comes back (recent-login.ts). 403: the action was refused.
 */
function logInAgain(ctx: Context, deps: AccountPageDeps, purpose: StepUpPurpose): void {
  const page = pageContext(ctx);
  const login = new URLSearchParams({ again: purpose, lang: page.lang });
  ctx.status = 403;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.views.render('account-login-again', page, {
    why: page.t(purpose === 'delete' ? 'account.loginAgain.whyDelete' : 'account.loginAgain.whyUnbind'),
    rule: page.t('account.loginAgain.rule', { window: duration(page.t, deps.recentLoginSeconds) }),
    after: page.t(purpose === 'delete' ? 'account.loginAgain.afterDelete' : 'account.loginAgain.afterUnbind'),
    loginUrl: `/account/login?${login}`,
    // The language switch reloads this page by GET, not the POST it answered.
    pagePath: `/account/login-again/${purpose}`,
  });
}

/** The window in words: whole minutes from two on, else seconds (no "1 minutes"). */
function duration(t: Translate, seconds: number): string {
  return seconds >= 120 && seconds % 60 === 0
    ? t('account.loginAgain.minutes', { n: String(seconds / 60) })
    : t('account.loginAgain.seconds', { n: String(seconds) });
}

/** The account page, or false when the session's account no longer exists. */
async function renderAccount(ctx: Context, deps: AccountPageDeps, session: PageSession): Promise<boolean> {
  const page = pageContext(ctx);
  const account = await findAccountBySubject(deps.db, session.subject);
  if (!account) return false;
  const identities = await listIdentities(deps.db, account.id);
  const hasPhone = hasVerifiedPhone(account);
  const done = takeDone(ctx, session);
  // Each application with what it may see, in a line: the consent page's things, in short words.
  const apps = (await listAuthorizedApps(deps, session.subject))
    .filter((app) => app.clientId !== ACCOUNT_PAGE_CLIENT_ID)
    .map((app) => ({
      ...app,
      access: inReadingOrder(app.scopes)
        .map((scope) => scopeShortLabel(page.t, scope))
        .join(page.lang === 'en' ? ', ' : '、'),
    }));
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.views.render('account', page, {
    nickname: account.nickname ?? '',
    picture: ownPicture(deps, await deps.avatars.picture(account)),
    phone: hasPhone ? account.phone_number : undefined,
    done: done && (await doneMessage(deps, page.t, done)),
    identities: identities.map((identity) => ({
      appid: identity.appid,
      openid: identity.openid,
      appName: appName(deps, identity.appid),
      kind: page.t(KIND_LABEL[identity.kind]),
    })),
    canUnbind: canUnbind(identities.length, hasPhone),
    unbindRefusal: unbindRefusal(deps)(page.t),
    recoveryNote: recoveryNote(page.t, identities.length, hasPhone),
    apps,
    csrf: csrfToken(deps.formKeys, session),
    // This browser's logout only: oidc-provider's own (RP-initiated logout), which asks first, ends
    // the session, tells the session's applications by back-channel logout, and comes back to
    // /account/logged-out.
    logoutUrl: `/session/end?${new URLSearchParams({
      client_id: ACCOUNT_PAGE_CLIENT_ID,
      post_logout_redirect_uri: accountLoggedOutUri(deps.issuer, page.lang),
      ui_locales: page.lang,
    })}`,
  });
  return true;
}

/**
 * Why the last WeChat cannot be unbound without a verified phone (the account could not be
 * recovered), and what to do: bind a phone in the mini program, named, when one is configured (a
 * phone is bound there only), or else delete the account.
 */
function unbindRefusal(deps: AccountPageDeps): (t: Translate) => string {
  const miniProgram = deps.apps.find((app) => app.kind === 'mini_program');
  return (t) =>
    miniProgram
      ? t('account.unbindNeedsPhone', { miniProgram: miniProgram.name })
      : t('account.unbindNotPossible');
}

/**
 * With a verified phone and one WeChat left, what unbinding it means; with none left (it was
 * unbound), what remains to do: how long the account can be recovered, and how
 * (repository.ts, recoverAccountByPhone). Undefined otherwise.
 */
function recoveryNote(t: Translate, identityCount: number, hasPhone: boolean): string | undefined {
  if (!hasPhone || identityCount > 1) return undefined;
  const limits = {
    days: String(RECOVERABLE_AFTER_UNBINDING_MS / 86_400_000),
    minutes: String(RECOVERY_WINDOW_MS / 60_000),
  };
  return t(identityCount === 1 ? 'account.unbindLastRecoverable' : 'account.waitingForRecovery', limits);
}

/**
 * The account page's answer in a sentence, with the way back to the account page (which asks for a
 * login where the session has ended): every notice but the deletion's, after which there is no
 * account to go back to, and a login's that did not complete while no session remains (the account
 * page would only start the login again: `loginUrl` offers that instead). Most answer a POST, so
 * the page has no language switch of its own. `message`: a key of the catalogue, or the sentence
 * made in the page's language (one that names something).
 */
function notice(
  ctx: Context,
  deps: AccountPageDeps,
  message: MessageKey | ((t: Translate) => string),
  status: number,
  options: { loginUrl?: string; back?: boolean } = {},
): void {
  const page = pageContext(ctx);
  const deleted = message === 'account.deleted';
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.views.render('notice', page, {
    title: page.t(deleted ? 'account.deletedTitle' : 'account.title'),
    message: typeof message === 'function' ? message(page.t) : page.t(message),
    ...(options.loginUrl && { loginUrl: options.loginUrl, loginLabel: page.t('account.logInAgain') }),
    ...(!deleted &&
      options.back !== false && {
        nextUrl: `/account?lang=${page.lang}`,
        nextLabel: page.t('account.backToAccount'),
      }),
  });
}

/**
 * A form field as the page sends it: one string. Absent, repeated (`a=1&a=2`) or bracketed (`a[]=1`,
 * which the parser makes an array or an object), it is '' and names nothing: String(['x']) would
 * have read a crafted `clientId[]=x` as "x".
 */
function field(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  return typeof value === 'string' ? value : '';
}

/**
 * The account's picture when it is our own copy: the page's policy loads images from this origin
 * only, so WeChat's own URL (the ID token's fallback while no copy could be made) would show as a
 * broken image. No picture then.
 */
function ownPicture(deps: AccountPageDeps, picture: string | undefined): string | undefined {
  return picture?.startsWith(`${deps.issuer}/avatars/`) ? picture : undefined;
}
