import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import type { InteractionDeps } from './deps.ts';
import { finish, loadInteraction } from './load.ts';

/** POST /interaction/:uid/consent — the person allowed what the client asked for. */
export async function postConsent(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  if (interaction.prompt.name !== 'consent') {
    ctx.status = 303;
    ctx.redirect(`/interaction/${interaction.uid}`);
    return;
  }
  await confirmConsent(ctx, deps, interaction);
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
  const savedId = await grant.save();
  await finish(ctx, interaction, { consent: { grantId: savedId } }, true);
}
