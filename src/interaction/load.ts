import type { Context } from 'koa';
import { errors, type Interaction } from 'oidc-provider';
import { pageContext } from '../http/views.ts';
import type { InteractionDeps } from './deps.ts';

/**
 * The interaction this browser is in, or undefined after rendering the friendly "start again" page
 * (oidc-provider issue 801): the interaction expired, its cookie is gone, or the URL names another one.
 */
export async function loadInteraction(ctx: Context, deps: InteractionDeps): Promise<Interaction | undefined> {
  let interaction: Interaction;
  try {
    interaction = await deps.provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    if (error instanceof errors.SessionNotFound) {
      renderExpired(ctx, deps);
      return undefined;
    }
    throw error;
  }
  if (interaction.uid !== ctx.params.uid) {
    renderExpired(ctx, deps);
    return undefined;
  }
  return interaction;
}

export function renderExpired(ctx: Context, deps: InteractionDeps): void {
  const page = pageContext(ctx);
  ctx.status = 400;
  ctx.type = 'html';
  ctx.body = deps.views.render('error', page, {
    message: page.t('error.expired'),
    requestId: ctx.state.requestId,
  });
}

/** The client's display name: its registered client_name, else its client_id. */
export async function clientName(deps: InteractionDeps, interaction: Interaction): Promise<string> {
  const clientId = String(interaction.params.client_id);
  const client = await deps.provider.Client.find(clientId);
  return client?.clientName ?? clientId;
}

/** Finishes the interaction with `result` and sends the browser back to the authorization endpoint. */
export async function finish(
  ctx: Context,
  deps: InteractionDeps,
  result: Record<string, unknown>,
  merge: boolean,
): Promise<void> {
  const returnTo = await deps.provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: merge,
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
}
