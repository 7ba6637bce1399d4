import type { Context } from 'koa';
import type { InteractionDeps } from './deps.ts';
import { ABORT_ERRORS, type AbortReason } from './failure.ts';
import { finish, loadInteraction } from './load.ts';

/**
 * POST /interaction/:uid/abort — the person gave up (cancel, deny, or "return to the application"
 * after a failure): the client receives the OAuth error that says why.
 */
export async function postAbort(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const reason = (
    typeof body.reason === 'string' && Object.hasOwn(ABORT_ERRORS, body.reason) ? body.reason : 'cancelled'
  ) as AbortReason;
  await finish(ctx, interaction, ABORT_ERRORS[reason], false);
}
