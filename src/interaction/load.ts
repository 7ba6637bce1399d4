import type { Context } from 'koa';
import { errors, type Interaction } from 'oidc-provider';
import { clientDisplayName } from '../account-page/client.ts';
import { pageContext } from '../http/views.ts';
import type { Translate } from '../i18n/messages.ts';
import { interactionPath } from '../oidc/provider.ts';
import type { InteractionDeps } from './deps.ts';
import { forgetRestart, restartOf } from './restart.ts';

/**
 * The interaction this browser is in, or undefined after rendering the friendly "start again" page
 * (oidc-provider issue 801): the interaction expired, its cookie is gone, or the URL names another one.
 */
export async function loadInteraction(ctx: Context, deps: InteractionDeps): Promise<Interaction | undefined> {
  const interaction = await findInteraction(ctx, deps);
  if (!interaction) renderExpired(ctx, deps);
  return interaction;
}

/**
 * The interaction this browser is in, or undefined (expired, no interaction cookie, or the URL names
 * another one) without answering: the caller decides what such a request gets.
 */
export async function findInteraction(ctx: Context, deps: InteractionDeps): Promise<Interaction | undefined> {
  const ahead = readsAhead.get(ctx);
  // Taken once: a later look in the same request reads the store again.
  readsAhead.delete(ctx);
  const interaction = await (ahead ?? readInteraction(ctx, deps));
  return interaction?.uid === ctx.params.uid ? interaction : undefined;
}

/** Reads started before the request reached its route (readInteractionAhead), by request. */
const readsAhead = new WeakMap<Context, Promise<Interaction | undefined>>();

/**
 * Starts reading the interaction a request to an interaction route is in, for findInteraction to
 * take: the rate limit calls this just before its own count, and both commands then travel to
 * Redis in one round trip (ioredis auto-pipelining) instead of one after the other. Reading changes
 * nothing, so a request the limit refuses has lost nothing but the read.
 */
export function readInteractionAhead(ctx: Context, deps: InteractionDeps): void {
  if (!ctx.path.startsWith('/interaction/')) return;
  const read = readInteraction(ctx, deps);
  // Taken by findInteraction, or by nobody when the request is refused: never an unhandled rejection.
  read.catch(() => {});
  readsAhead.set(ctx, read);
}

async function readInteraction(ctx: Context, deps: InteractionDeps): Promise<Interaction | undefined> {
  try {
    return await deps.provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    if (error instanceof errors.SessionNotFound) return undefined;
    throw error;
  }
}

/** The languages the client asked for in its authorization request (OIDC ui_locales), for our pages. */
export function uiLocales(interaction: Interaction): string | undefined {
  const value = interaction.params.ui_locales;
  return typeof value === 'string' ? value : undefined;
}

/** Seconds the interaction has left (at least 1). */
export function secondsLeft(deps: InteractionDeps, interaction: Interaction): number {
  return Math.max(1, interaction.exp - Math.floor(deps.now().getTime() / 1000));
}

/**
 * The page of a login that timed out (or of an interaction this browser is not in): where the
 * browser kept the request that started it (restart.ts), a button that starts it again.
 */
export function renderExpired(ctx: Context, deps: InteractionDeps): void {
  const nowSeconds = Math.floor(deps.now().getTime() / 1000);
  const restartUrl = restartOf(ctx, ctx.params.uid, nowSeconds, deps.provider.pathFor('authorization'));
  // In the language the client asked for, as the login's own page was: the kept request names it.
  const page = pageContext(ctx, restartUrl ? requestedLocales(restartUrl) : undefined);
  ctx.status = 400;
  ctx.type = 'html';
  ctx.body = deps.views.render('error', page, {
    heading: page.t('error.title'),
    message: page.t(restartUrl ? 'error.expiredRestart' : 'error.expired'),
    restartUrl,
    requestId: ctx.state.requestId,
    // The language switch leads to the interaction's own page, which answers with this page again
    // (and the same restart): never to the URL shown, which may be WeChat's callback with its code
    // and state (views.ts keeps a code out of the page).
    pagePath: interactionPath(encodeURIComponent(String(ctx.params.uid))),
  });
}

/** The ui_locales of a kept authorization request (a path with its query). */
function requestedLocales(request: string): string | undefined {
  return new URLSearchParams(request.slice(request.indexOf('?') + 1)).get('ui_locales') ?? undefined;
}

/** The display name of the interaction's client (clientDisplayName). */
export async function clientName(
  deps: InteractionDeps,
  interaction: Interaction,
  t: Translate,
): Promise<string> {
  const clientId = String(interaction.params.client_id);
  const client = await deps.provider.Client.find(clientId);
  return clientDisplayName(client ?? { clientId }, t);
}

/**
 * Finishes the interaction this request loaded with `result` (merged into the last submission when
 * `merge`, as a consent is merged into the login) and returns where the browser goes next: oidc-
 * provider's resume. This is what provider.interactionResult does, on the interaction in hand: that
 * helper would read it again, and the session it names, from the store.
 */
export async function saveResult(
  interaction: Interaction,
  result: Record<string, unknown>,
  merge: boolean,
): Promise<string> {
  interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
  await interaction.save(Math.max(1, interaction.exp - Math.floor(Date.now() / 1000)));
  return interaction.returnTo;
}

/** Finishes the interaction with `result` and sends the browser back to the authorization endpoint. */
export async function finish(
  ctx: Context,
  interaction: Interaction,
  result: Record<string, unknown>,
  merge: boolean,
): Promise<void> {
  const returnTo = await saveResult(interaction, result, merge);
  forgetRestart(ctx);
  ctx.status = 303;
  ctx.redirect(returnTo);
}
