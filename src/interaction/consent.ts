import type { Context } from 'koa';
import type { Grant, Interaction } from 'oidc-provider';
import { rememberConsent, rememberedScopes } from '../accounts/consents.ts';
import { allowsAll, isFirstParty, newGrant, offeredScopes } from '../oidc/grants.ts';
import type { InteractionDeps } from './deps.ts';
import { finish, loadInteraction } from './load.ts';

/**
 * Consent comes in one of two places, and not at all when the person allowed the client everything
 * it asks for at an earlier login (remembered consent, accounts/consents.ts; asked again when the
 * request demands prompt=consent).
 *
 * - **In the login's own interaction**, right after the WeChat callback, when the login is sure to
 *   need it: a third-party client, and a browser without a session of this account. Such a session
 *   holds no grant for the client, so oidc-provider's policy would prompt for consent at the resume
 *   (at least `openid` is missing). Asking first saves the browser a resume and the engine a second
 *   interaction. The resume still runs the policy on the result; anything left missing (the claims
 *   parameter and resource indicators are off, so nothing should be) gets the ordinary prompt below.
 *   A remembered consent is granted by the callback itself, in the login's result.
 * - **As oidc-provider's consent prompt**, in an interaction of its own: when this browser's session
 *   already belongs to the person (a new scope, prompt=consent), and whenever the engine asks. A
 *   remembered consent is granted before it arises, by loadExistingGrant (oidc/grants.ts).
 */

/**
 * The account a login interaction has logged in and whose consent page comes next in it (see above),
 * or undefined: the login is not done, or continues straight to the resume. The login's callback
 * took the decision (consentStep), and a consent it found remembered is in the result already.
 */
export async function consentAfterLogin(
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<string | undefined> {
  const { prompt, result } = interaction;
  const accountId = (result?.login as { accountId?: unknown } | undefined)?.accountId;
  if (prompt.name !== 'login' || typeof accountId !== 'string' || result?.consent) return undefined;
  return (await asksThirdParty(deps, interaction, accountId)) ? accountId : undefined;
}

/**
 * What follows a login as `accountId` in this interaction: nothing but the resume; the consent page;
 * or a consent the person gave this client at an earlier login that covers every scope asked for
 * (accounts/consents.ts), granted without asking unless the request demands prompt=consent.
 */
export type ConsentStep =
  | { kind: 'none' }
  /** `confirmsRemembered`: everything asked for was allowed before; the request demands the page. */
  | { kind: 'page'; confirmsRemembered: boolean }
  /** `remember`: allowed on the page before the Official Account's profile request; to be remembered. */
  | { kind: 'remembered'; grant: Grant; remember?: boolean };

/**
 * What the page before the Official Account's profile request (show.ts, showWeChatAuthorize) says
 * the client will receive, the nickname and avatar, is all a third-party client asks for: that page
 * is then its consent page, and its button allows. Inside WeChat a first login otherwise asked three
 * times in a row: that page, WeChat's own, and the consent page with the same words. A request that
 * demands prompt=consent, or asks for more (the phone, the WeChat ids, offline access), still gets
 * the consent page after the login.
 */
export async function consentOnAuthorizePage(
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<boolean> {
  // A browser with a session: the engine's own consent prompt decides after the login (the same
  // person's session), or the login page of another person's; this page promises nothing then.
  if (interaction.session?.accountId) return false;
  const prompts = String(interaction.params.prompt ?? '').split(' ');
  if (prompts.includes('consent')) return false;
  if (!requestedScopes(interaction).every((scope) => AUTHORIZE_PAGE_SCOPES.has(scope))) return false;
  const client = await deps.provider.Client.find(String(interaction.params.client_id));
  return client !== undefined && !isFirstParty(client);
}

/** What the page before the profile request names: the account itself, its nickname and avatar. */
const AUTHORIZE_PAGE_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile']);

/**
 * The key of a login's result (beside `login`) saying that the consent page following it confirms
 * what is remembered already: allowing it again writes nothing to the database. oidc-provider
 * ignores keys it does not know; the consent's own result drops it.
 */
export const PAGE_CONFIRMS_REMEMBERED = 'consentRemembered';

export async function consentStep(
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string,
  /** What the person has allowed the client, when the caller has read it already. */
  remembered?: ReadonlySet<string>,
  /** The login came through the page before the profile request (its button was pressed). */
  throughAuthorizePage = false,
): Promise<ConsentStep> {
  if (!(await asksThirdParty(deps, interaction, accountId))) return { kind: 'none' };
  const prompts = String(interaction.params.prompt ?? '').split(' ');
  // A demanded page needs no read of what was allowed; one the caller has read tells the page's
  // POST whether it has anything to remember.
  if (prompts.includes('consent')) {
    const confirmsRemembered =
      remembered !== undefined && allowsAll(remembered, requestedScopes(interaction));
    return { kind: 'page', confirmsRemembered };
  }
  const allowed =
    remembered ?? (await rememberedScopes(deps.db, accountId, String(interaction.params.client_id)));
  const grant = requestedGrant(deps, interaction, accountId);
  if (allowsAll(allowed, requestedScopes(interaction))) return { kind: 'remembered', grant };
  // Allowed on the page before the Official Account's profile request, which named all of it.
  if (throughAuthorizePage && (await consentOnAuthorizePage(deps, interaction)))
    return { kind: 'remembered', grant, remember: true };
  return { kind: 'page', confirmsRemembered: false };
}

/** A login as `accountId` in a browser without their session, for a third-party client. */
async function asksThirdParty(
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string,
): Promise<boolean> {
  if (interaction.session?.accountId === accountId) return false;
  const client = await deps.provider.Client.find(String(interaction.params.client_id));
  return client !== undefined && !isFirstParty(client);
}

/**
 * A new grant of the OpenID scopes the request asks for (what the engine's policy would report
 * missing from a session without a grant), its id chosen so that it is saved with the result.
 */
function requestedGrant(deps: InteractionDeps, interaction: Interaction, accountId: string): Grant {
  const grant = newGrant(deps.provider.Grant, accountId, String(interaction.params.client_id));
  grant.addOIDCScope(requestedScopes(interaction).join(' '));
  return grant;
}

const requestedScopes = (interaction: Interaction) => offeredScopes(String(interaction.params.scope ?? ''));

/** POST /interaction/:uid/consent — the person allowed what the client asked for. */
export async function postConsent(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  if (interaction.prompt.name === 'consent') return confirmConsent(ctx, deps, interaction, true);
  const accountId = await consentAfterLogin(deps, interaction);
  if (accountId) return confirmConsentAfterLogin(ctx, deps, interaction, accountId);
  // Nothing to consent to yet (the login is not done): back to the interaction's page.
  ctx.status = 303;
  ctx.redirect(`/interaction/${interaction.uid}`);
}

/**
 * Grants exactly what oidc-provider reports missing, on the session's grant (or a new one), and
 * remembers it when the person allowed it on the page (`remember`; a first-party client's prompt
 * is confirmed without a page).
 */
export async function confirmConsent(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  remember: boolean,
): Promise<void> {
  const { prompt, params, session, grantId } = interaction;
  const accountId = session?.accountId;
  if (!accountId) throw new Error('consent without a logged-in session');
  const clientId = String(params.client_id);
  const grant =
    (grantId ? await deps.provider.Grant.find(grantId) : undefined) ??
    newGrant(deps.provider.Grant, accountId, clientId);
  const details = prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  // Finished only once its grant is saved: a result naming a grant never written sends the resume
  // on without one. The consent is remembered meanwhile, in the database while the result is saved.
  await grant.save();
  await Promise.all([
    remember ? rememberGrant(deps, grant, accountId, clientId) : undefined,
    finish(ctx, interaction, { consent: { grantId: grant.jti } }, true),
  ]);
}

/**
 * The consent page that follows a login in its own interaction, allowed: granted, and remembered
 * unless the login found every scope remembered already (a page demanded with prompt=consent). Were
 * the consent forgotten on the account page in the seconds between, it stays forgotten: the next
 * login from a new browser asks again, which is the safe side.
 */
async function confirmConsentAfterLogin(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string,
): Promise<void> {
  const grant = requestedGrant(deps, interaction, accountId);
  const { [PAGE_CONFIRMS_REMEMBERED]: confirmsRemembered, ...result } = interaction.result ?? {};
  // As confirmConsent: the grant first, then the result, with the consent remembered meanwhile.
  await grant.save();
  await Promise.all([
    confirmsRemembered
      ? undefined
      : rememberGrant(deps, grant, accountId, String(interaction.params.client_id)),
    finish(ctx, interaction, { ...result, consent: { grantId: grant.jti } }, false),
  ]);
}

/**
 * Remembers what the person allowed (accounts/consents.ts), for their next login from another
 * browser. Best effort, and never rejects: the login needs the grant alone, so a failed write is a
 * warning and the login goes on; the next login from a new browser asks again, the safe side. (A
 * rejection raced the login's own writes: whichever settled first decided between a 500 that kept
 * the resume's Location and a login answered while the failure went unhandled.)
 */
export async function rememberGrant(
  deps: InteractionDeps,
  grant: Grant,
  accountId: string,
  clientId: string,
): Promise<void> {
  try {
    await rememberConsent(deps.db, accountId, clientId, grant.getOIDCScope().split(' '), deps.now());
  } catch (error) {
    deps.logger.warn(
      { clientId, err: error },
      'consent not remembered: the login goes on, and the next login from a new browser asks again',
    );
  }
}
