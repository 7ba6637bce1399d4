import type { Client, Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { ACCOUNT_PAGE_CLIENT_ID, clientDisplayName } from '../account-page/client.ts';
import { pageContext, type Views } from '../http/views.ts';

type RenderError = NonNullable<Configuration['renderError']>;

/**
 * The page of oidc-provider's self-submitting form, a hook of our patch to it
 * (patches/oidc-provider+9.13.3.patch, patches/README.md): `form` is its form with the hidden
 * inputs, `script` the script that submits it, whose hash is already in the page's
 * Content-Security-Policy. Synchronous: it sets ctx.body.
 */
export type FormPostSource = (ctx: KoaContextWithOIDC, form: string, script: string) => void;

declare module 'oidc-provider' {
  interface Configuration {
    formPostSource?: FormPostSource;
    /**
     * Whether an authorization request without prompt=consent keeps its offline_access scope (a
     * hook of our patch, patches/README.md; the engine's default drops it). Synchronous.
     */
    offlineAccessWithoutConsentPrompt?: (ctx: KoaContextWithOIDC, client: Client) => boolean;
  }
}

/**
 * oidc-provider's own pages (its error page, the RP-initiated logout pages and its self-submitting
 * form's) rendered with our templates, so a person sees one consistent, bilingual site.
 */
export function createPages(views: Views) {
  /**
   * The engine renders its errors for the authorization endpoint and for RP-initiated logout, when
   * it cannot send them back to the application (an unknown client, an unregistered redirect_uri).
   * The person reads, in their language, that the application's request is at fault; the engine's
   * own words (English, for the application's developer) follow under "technical details", as
   * Google's and Keycloak's pages show theirs. They name parameters, never a secret or a token.
   * It renders them for a browser at its other endpoints too (userinfo opened as a page): no login
   * is under way there, and the page says the address is an application's.
   */
  const renderError: RenderError = async (ctx, out, _error) => {
    const page = pageContext(ctx, uiLocales(ctx));
    const route = ctx.oidc?.route ?? '';
    ctx.type = 'html';
    const heading = engineErrorHeading(route);
    // A logout the application asked for wrongly (an id_token_hint signed by a key since retired,
    // another issuer's) would leave the person logged in with no way out: the page offers this
    // browser's logout without the application's request, which asks them first.
    const logoutAnyway = route.startsWith('end_session') && (await stillLoggedIn(ctx).catch(() => false));
    ctx.body = views.render('error', page, {
      ...(heading && { heading: page.t(heading) }),
      ...(logoutAnyway && { logoutUrl: `/session/end?ui_locales=${page.lang}` }),
      message: page.t(engineErrorMessage(route, String(out.error))),
      detail: { error: String(out.error), description: out.error_description },
      requestId: ctx.state.requestId,
    });
  };

  async function logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
    const page = pageContext(ctx, uiLocales(ctx));
    ctx.type = 'html';
    // `form` is oidc-provider's own hidden form (with its xsrf token); it is trusted markup.
    // The application that asked, when the request names it (client_id or id_token_hint): the
    // person knows it, where this server's host name means nothing to them. Not the account page,
    // whose own "Log out" led here: its page has a question and buttons of its own (logout.eta).
    const { client } = ctx.oidc;
    const accountPage = client?.clientId === ACCOUNT_PAGE_CLIENT_ID;
    ctx.body = views.render('logout', page, {
      form,
      client: client && !accountPage ? clientDisplayName(client, page.t) : undefined,
      accountPage,
    });
  }

  /**
   * After the logout, when no post_logout_redirect_uri takes the person back. The engine names the
   * client (client_id) only when the person logged out of that client alone ("no" on the logout
   * page): the page then says which one, and that the others stay logged in, rather than a bare
   * "you have been logged out" read as all of them. Only while this browser's session lives on, as
   * it does after that choice: the address is anyone's to open, and a link to it must not tell a
   * browser without a session that it is still logged in elsewhere (a review of the day's diff).
   */
  async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
    const page = pageContext(ctx, uiLocales(ctx));
    const { client } = ctx.oidc;
    const named = client && client.clientId !== ACCOUNT_PAGE_CLIENT_ID;
    const only = named && (await stillLoggedIn(ctx)) ? clientDisplayName(client, page.t) : undefined;
    ctx.type = 'html';
    ctx.body = views.render('logged-out', page, { client: only });
  }

  /**
   * The engine's self-submitting form, seen for a moment (a form_post response; the logout that
   * ends the previous person's session when someone else logs in in this browser; a logout with
   * no session left), and for good without JavaScript: one of our pages, in the person's language.
   * No language switch: its URL (an authorization request, its resume) would run again.
   */
  const formPostSource: FormPostSource = (ctx, form, script) => {
    const { lang, t } = pageContext(ctx, uiLocales(ctx));
    ctx.body = views.render('form-post', { lang, t }, { form, script });
  };

  return { renderError, logoutSource, postLogoutSuccessSource, formPostSource };
}

/** Whether this browser still has a logged-in session (the success page's route loads none itself). */
async function stillLoggedIn(ctx: KoaContextWithOIDC): Promise<boolean> {
  return (await ctx.oidc.provider.Session.get(ctx)).accountId !== undefined;
}

/** The engine's routes a person's login goes through: the authorization request and its resume. */
const LOGIN_ROUTES: ReadonlySet<string> = new Set(['authorization', 'resume']);

/**
 * The page's title, by route: a login's pages say the login did not complete, RP-initiated
 * logout's that the logout did not (the person asked to log out, not to log in); any other, the
 * template's "something went wrong" (undefined).
 */
function engineErrorHeading(route: string): 'error.title' | 'error.logoutTitle' | undefined {
  if (LOGIN_ROUTES.has(route)) return 'error.title';
  return route.startsWith('end_session') ? 'error.logoutTitle' : undefined;
}

/**
 * What the page says, by route. RP-initiated logout's request is at fault at its routes. Elsewhere
 * a failure of ours (a store down) is nobody's request's fault. At the resume (/auth/:uid, after
 * the login pages) nothing the application sent is at fault either: the login timed out, or this
 * browser already finished it (a reload, the Back button) and its resume cookie is gone. At the
 * authorization endpoint the request itself is what the engine refused; at the endpoints for
 * applications (userinfo...) no login is under way.
 */
function engineErrorMessage(
  route: string,
  error: string,
): 'error.logoutRequest' | 'error.generic' | 'error.expired' | 'error.oauth' | 'error.forApplications' {
  if (route.startsWith('end_session')) return 'error.logoutRequest';
  if (error === 'server_error') return 'error.generic';
  if (route === 'resume') return 'error.expired';
  return route === 'authorization' ? 'error.oauth' : 'error.forApplications';
}

/**
 * The ui_locales the request named (the authorization request's, or RP-initiated logout's: section
 * 2 of that specification lists it), which come before the browser's Accept-Language. At the
 * resume, before the engine has put the authorization request's parameters back, the interaction's.
 */
function uiLocales(ctx: KoaContextWithOIDC): string | undefined {
  const value =
    (ctx.oidc?.params as { ui_locales?: unknown } | undefined)?.ui_locales ??
    ctx.oidc?.entities?.Interaction?.params.ui_locales;
  return typeof value === 'string' ? value : undefined;
}
