import type { Context } from 'koa';
import type { Grant, Interaction } from 'oidc-provider';
import { SUPPORTED_SCOPES } from '../oidc/find-account.ts';
import { isFirstParty } from '../oidc/grants.ts';
import type { InteractionDeps } from './deps.ts';
import { finish, loadInteraction } from './load.ts';

/**
 * Consent comes in one of two places.
 *
 * - **In the login's own interaction**, right after the WeChat callback, when the login is sure to
 *   need it: a third-party client, and a browser without a session of this account. Such a session
 *   holds no grant for the client, so oidc-provider's policy would prompt for consent at the resume
 *   (at least `openid` is missing). Asking first saves the browser a resume and the engine a second
 *   interaction. The resume still runs the policy on the result; anything left missing (the claims
 *   parameter and resource indicators are off, so nothing should be) gets the ordinary prompt below.
 * - **As oidc-provider's consent prompt**, in an interaction of its own: when this browser's session
 *   already belongs to the person (a new scope, prompt=consent), and whenever the engine asks.
 */

/**
 * The account a login interaction has logged in and whose consent page comes next in it (see above),
 * or undefined: the login is not done, or continues straight to the resume.
 */
export async function consentAfterLogin(
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<string | undefined> {
  const { prompt, result } = interaction;
  const accountId = (result?.login as { accountId?: unknown } | undefined)?.accountId;
  if (prompt.name !== 'login' || typeof accountId !== 'string' || result?.consent) return undefined;
  return (await consentFollowsLogin(deps, interaction, accountId)) ? accountId : undefined;
}

/** Whether a login as `accountId` in this interaction must be followed by the consent page. */
export async function consentFollowsLogin(
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string,
): Promise<boolean> {
  if (interaction.session?.accountId === accountId) return false;
  const client = await deps.provider.Client.find(String(interaction.params.client_id));
  return client !== undefined && !isFirstParty(client);
}

/** POST /interaction/:uid/consent — the person allowed what the client asked for. */
export async function postConsent(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  if (interaction.prompt.name === 'consent') return confirmConsent(ctx, deps, interaction);
  const accountId = await consentAfterLogin(deps, interaction);
  if (accountId) return confirmConsentAfterLogin(ctx, deps, interaction, accountId);
  // Nothing to consent to yet (the login is not done): back to the interaction's page.
  ctx.status = 303;
  ctx.redirect(`/interaction/${interaction.uid}`);
}

/** Grants exactly what oidc-provider reports missing, on the session's grant (or a new one). */
export async function confirmConsent(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
): Promise<void> {
  const { Grant } = deps.provider;
  const { prompt, params, session, grantId } = interaction;
  const accountId = session?.accountId;
  if (!accountId) throw new Error('consent without a logged-in session');
  const grant =
    (grantId ? await Grant.find(grantId) : undefined) ??
    new Grant({ accountId, clientId: String(params.client_id) });
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
  await finish(ctx, interaction, { consent: { grantId: await grant.save() } }, true);
}

/**
 * The consent that follows a login in its own interaction: a new grant of the OpenID scopes the
 * request asks for (what the engine's policy would report missing from a session without one), added
 * to the login's result.
 */
async function confirmConsentAfterLogin(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  accountId: string,
): Promise<void> {
  const grant: Grant = new deps.provider.Grant({ accountId, clientId: String(interaction.params.client_id) });
  const requested = String(interaction.params.scope ?? '').split(' ');
  grant.addOIDCScope(requested.filter((scope) => SUPPORTED_SCOPES.has(scope)).join(' '));
  const consent = { grantId: await grant.save() };
  await finish(ctx, interaction, { ...interaction.result, consent }, false);
}
