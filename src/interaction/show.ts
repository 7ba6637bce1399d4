import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { pageContext } from '../http/views.ts';
import { inReadingOrder, type MessageKey, scopeLabel } from '../i18n/messages.ts';
import { isFirstParty } from '../oidc/grants.ts';
import { interactionPath } from '../oidc/provider.ts';
import { type BrowserKind, browserKind, canUseOfficialAccount, onPhone } from './browser-kind.ts';
import { confirmConsent, consentAfterLogin, consentOnAuthorizePage } from './consent.ts';
import type { Connectors, InteractionDeps } from './deps.ts';
import { clientName, loadInteraction, uiLocales } from './load.ts';
import { callbackUrl, initialScope, officialAccountTrip, weChatAuthorizePath } from './official-account.ts';

/** GET /interaction/:uid — the page for whatever oidc-provider prompts for: login or consent. */
export async function showInteraction(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  if (interaction.prompt.name === 'login') {
    // A login already done whose consent comes next in this interaction (consent.ts).
    const accountId = await consentAfterLogin(deps, interaction);
    if (accountId) return showConsent(ctx, deps, interaction, accountId);
    // A login already done (the Back button after it, a reload): not a QR code again, which the
    // person could scan to no end, but on to the resume, which finishes the login if it has not
    // finished yet, or says that it has.
    if (interaction.result?.login) return ctx.redirect(interaction.returnTo);
    return showLogin(ctx, deps, interaction);
  }
  if (interaction.prompt.name === 'consent') {
    const client = await deps.provider.Client.find(String(interaction.params.client_id));
    // First-party clients normally never get here (loadExistingGrant grants for them), except when
    // the request itself demands prompt=consent; they still skip the page.
    if (isFirstParty(client)) return confirmConsent(ctx, deps, interaction, false);
    return showConsent(ctx, deps, interaction, interaction.session?.accountId);
  }
  throw new Error(`unsupported prompt ${interaction.prompt.name}`);
}

/**
 * GET /interaction/:uid/wechat-authorize — inside WeChat, before the Official Account asks for the
 * person's profile (snsapi_userinfo): what the client will get and why, and a button that starts
 * WeChat's authorization. WeChat's rules have a page say so first: asking the moment a page opens
 * is what sends people to the snapshot page instead (wechat-api.md §3.1). The silent first trip
 * (snsapi_base) needs no page; only the person's consent does.
 */
export async function showWeChatAuthorize(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  const official = deps.connectors.officialAccount;
  if (interaction.prompt.name !== 'login' || !official) return showInteraction(ctx, deps);
  const page = pageContext(ctx, uiLocales(interaction));
  ctx.type = 'html';
  // A third-party client's consent, when this page names all it asks for (consent.ts).
  const consent = await consentOnAuthorizePage(deps, interaction);
  ctx.body = deps.views.render('wechat-authorize', page, {
    clientName: await clientName(deps, interaction, page.t),
    consent,
    authorizeUrl: officialAccountTrip(deps, interaction, official, 'snsapi_userinfo', consent),
    abortUrl: `/interaction/${interaction.uid}/abort`,
    pagePath: weChatAuthorizePath(interaction.uid),
  });
}

/**
 * The login step: inside WeChat's browser to the Official Account's authorization, silently first
 * (snsapi_base) and through our page before it asks for the profile; elsewhere the QR page. When no
 * app suits the browser at hand, the page says so plainly ("open this page in WeChat", "scan with
 * WeChat") instead of failing. The choices per browser are documented in browser-kind.ts.
 */
export async function showLogin(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<void> {
  const browser = browserKind(ctx.get('user-agent'));
  const official = deps.connectors.officialAccount;
  if (official && canUseOfficialAccount(browser)) {
    const location =
      initialScope(official.app) === 'snsapi_userinfo'
        ? weChatAuthorizePath(interaction.uid)
        : officialAccountTrip(deps, interaction, official, 'snsapi_base');
    ctx.status = 303;
    ctx.redirect(location);
    return;
  }
  const page = pageContext(ctx, uiLocales(interaction));
  const notice = loginNotice(browser, deps.connectors);
  // On a phone in WeChat (or a web-view) a QR code on the same screen cannot be scanned.
  const showQr = browser !== 'wechat' && browser !== 'mini_program';
  const connector = showQr ? deps.connectors.website : undefined;
  let qr: { embedUrl: string; authorizeUrl: string } | undefined;
  if (connector) {
    const state = deps.states.issue({ uid: interaction.uid, kind: 'website', appid: connector.app.appid });
    const redirectUri = callbackUrl(deps, interaction.uid);
    const lang = page.lang === 'en' ? 'en' : 'cn';
    qr = {
      embedUrl: connector.embedUrl({ redirectUri, state, lang }),
      authorizeUrl: connector.authorizeUrl({ redirectUri, state, lang }),
    };
  }
  ctx.type = 'html';
  ctx.body = deps.views.render('login', page, {
    qr,
    notice: notice ? page.t(notice) : undefined,
    // A phone's browser (WeCom's too) cannot scan its own screen: its notice says what to do, and
    // "scan the QR code" beneath it would contradict it (the code stays, for a screenshot WeChat can
    // scan).
    scanHint: !onPhone(browser),
    notConfigured: !qr && !notice,
    clientName: await clientName(deps, interaction, page.t),
    abortUrl: `/interaction/${interaction.uid}/abort`,
    // The language switch reloads the interaction's own page, wherever this one was answered.
    pagePath: interactionPath(interaction.uid),
  });
}

/**
 * What the page must say when this browser cannot simply scan: WeCom cannot use the Official Account
 * (on a computer: scan, or open the page in WeChat; on a phone: open the page in WeChat, or on a
 * computer and scan there), a phone (its WeChat without an official account configured,
 * or another browser on it) cannot scan its own screen (open the page in WeChat, or on a computer),
 * and a desktop browser without a website app must move to WeChat. Undefined when the QR code
 * alone says it (or nothing is configured at all).
 */
function loginNotice(browser: BrowserKind, connectors: Connectors): MessageKey | undefined {
  const { website, officialAccount } = connectors;
  switch (browser) {
    case 'wecom':
      if (website) return 'login.wecomScan';
      return officialAccount ? 'login.openInWeChat' : undefined;
    case 'wecom_phone':
      if (website) return 'login.wecomPhone';
      return officialAccount ? 'login.openInWeChat' : undefined;
    case 'wechat':
    case 'mini_program':
      return website ? 'login.scanOnComputer' : undefined;
    case 'wechat_desktop':
      return undefined;
    case 'phone':
      if (officialAccount) return website ? 'login.phoneOpenInWeChat' : 'login.openInWeChat';
      return website ? 'login.phoneUseComputer' : undefined;
    case 'other':
      return !website && officialAccount ? 'login.openInWeChat' : undefined;
  }
}

/**
 * The consent page that follows a login in its own interaction (consent.ts), answered by the WeChat
 * callback itself instead of a redirect to the interaction's page: one request fewer for the
 * browser (a round trip on a phone's network) and the server. A reload of the callback's URL
 * repeats its recorded outcome, the redirect to that page (wechat-callback.ts). False when no
 * consent page follows after all: the caller answers as it would have.
 */
export async function showConsentAfterLogin(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<boolean> {
  const accountId = await consentAfterLogin(deps, interaction);
  if (!accountId) return false;
  await showConsent(ctx, deps, interaction, accountId);
  return true;
}

async function showConsent(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string | undefined,
): Promise<void> {
  const page = pageContext(ctx, uiLocales(interaction));
  const account = accountId ? await deps.accountBySubject(accountId) : undefined;
  const scopes = inReadingOrder(
    String(interaction.params.scope ?? 'openid')
      .split(' ')
      .filter(Boolean),
  ).map((scope) => ({ scope, label: scopeLabel(page.t, scope) }));
  ctx.type = 'html';
  ctx.body = deps.views.render('consent', page, {
    clientName: await clientName(deps, interaction, page.t),
    accountName: account?.nickname ?? undefined,
    scopes,
    confirmUrl: `/interaction/${interaction.uid}/consent`,
    abortUrl: `/interaction/${interaction.uid}/abort`,
    // The language switch reloads the interaction's own page, wherever this one was answered.
    pagePath: interactionPath(interaction.uid),
  });
}
